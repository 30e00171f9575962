-- map_inspection.sql: random inspections (pipelines/sources/inspection.toml).
-- gzip NDJSON (read_csv decompresses .gz). result_code is the source's SQL
-- mapping lpad("resultCode", 2, '0'): it runs on the raw, untrimmed field,
-- and only an all-blank result counts as empty, as in our mapper.
CREATE OR REPLACE TABLE stage_inspection AS
WITH lines AS (SELECT * FROM ndjson_lines({files})),
parsed AS (
    SELECT line AS _original, NOT is_json_object(line) AS _malformed,
           from_json(CASE WHEN is_json_object(line) THEN line ELSE '{}' END,
                     '{"creditCode": "VARCHAR", "orgName": "VARCHAR", "taskId": "VARCHAR",
                       "checkAuthority": "VARCHAR", "checkDate": "VARCHAR", "resultCode": "VARCHAR",
                       "rectifyBy": "VARCHAR", "rectifiedOn": "VARCHAR"}') AS j
    FROM lines WHERE line IS NOT NULL
),
raw AS (
    SELECT _original, _malformed,
           txt(j.creditCode) AS _k, txt(j.orgName) AS _nm, txt(j.taskId) AS _rid,
           txt(j.taskId) AS t_task_id, txt(j.checkAuthority) AS t_authority,
           txt(j.checkDate) AS t_checked_on,
           CASE WHEN txt(lpad(j.resultCode, 2, '0')) IS NOT NULL THEN lpad(j.resultCode, 2, '0') END AS t_result_code,
           txt(j.rectifyBy) AS t_rectify_by, txt(j.rectifiedOn) AS t_rectified_on
    FROM parsed
),
typed AS (
    SELECT *,
           t_task_id AS task_id,
           t_authority AS authority,
           p_date(t_checked_on) AS checked_on,
           p_enum(t_result_code, MAP {}::MAP(VARCHAR, VARCHAR),
                  ['01', '02', '04', '09', '10', '13', '14', '99']) AS result_code,
           p_date(t_rectify_by) AS rectify_by,
           p_date(t_rectified_on) AS rectified_on
    FROM raw
)
SELECT _original, _malformed, _k, _nm, _rid, false AS _hashed,
       coalesce(value_error('task_id', t_task_id, task_id, true, 'bad_value'),
                value_error('checked_on', t_checked_on, checked_on, true, 'bad_value'),
                value_error('result_code', t_result_code, result_code, true, 'bad_enum'),
                value_error('rectify_by', t_rectify_by, rectify_by, false, 'bad_value'),
                value_error('rectified_on', t_rectified_on, rectified_on, false, 'bad_value')) AS _err,
       task_id, authority, checked_on, result_code, rectify_by, rectified_on
FROM typed;
