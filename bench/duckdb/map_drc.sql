-- map_drc.sql: development-reform public credit (pipelines/sources/drc.toml).
-- One JSON document; the records are the array at the pointer {records}.
-- The reader parses the document once and hands over the array's elements
-- ({records_columns}, {records_array}: the pointer as a column type and
-- a field path; {max_object_size}: the largest file). Extracting the array
-- as text and casting it to JSON[] parsed it twice and needed over 4 GB
-- for a 240 MB document.
CREATE OR REPLACE TABLE stage_drc AS
WITH recs AS (
    SELECT unnest(CASE WHEN {records_array} IS NOT NULL THEN {records_array}
                       ELSE error('drc: no record array at JSON pointer ' || {records}) END)::VARCHAR AS rec
    FROM read_json({files}, format = 'unstructured', columns = {records_columns},
                   maximum_object_size = {max_object_size})
),
parsed AS (
    SELECT rec AS _original, json_type(rec) <> 'OBJECT' AS _malformed,
           from_json(CASE WHEN json_type(rec) = 'OBJECT' THEN rec ELSE '{}' END,
                     '{"tyshxydm": "VARCHAR", "jgmc": "VARCHAR", "id": "VARCHAR", "recordType": "VARCHAR",
                       "evalVersion": "VARCHAR", "score": "VARCHAR", "grade": "VARCHAR", "evalDate": "VARCHAR",
                       "listName": "VARCHAR", "startDate": "VARCHAR", "endDate": "VARCHAR"}') AS j
    FROM recs
),
raw AS (
    SELECT _original, _malformed,
           txt(j.tyshxydm) AS _k, txt(j.jgmc) AS _nm, txt(j.id) AS _rid,
           txt(j.recordType) AS t_record_type, txt(j.evalVersion) AS t_evaluation_version,
           txt(j.score) AS t_score, txt(j.grade) AS t_grade, txt(j.evalDate) AS t_evaluated_on,
           txt(j.listName) AS t_list_name, txt(j.startDate) AS t_listed_from, txt(j.endDate) AS t_listed_to
    FROM parsed
),
typed AS (
    SELECT *,
           p_enum(t_record_type, MAP {'信用评价': 'evaluation', '联合惩戒': 'joint_punishment'},
                  ['evaluation', 'joint_punishment']) AS record_type,
           t_evaluation_version AS evaluation_version,
           p_int(t_score) AS score,
           p_enum(t_grade, MAP {'优秀': 'excellent', '良好': 'good', '中等': 'medium', '较差': 'poor'},
                  ['excellent', 'good', 'medium', 'poor']) AS grade,
           p_date(t_evaluated_on) AS evaluated_on,
           t_list_name AS list_name,
           p_date(t_listed_from) AS listed_from,
           p_date(t_listed_to) AS listed_to
    FROM raw
)
SELECT _original, _malformed, _k, _nm, _rid, false AS _hashed,
       coalesce(value_error('record_type', t_record_type, record_type, true, 'bad_enum'),
                value_error('score', t_score, score, false, 'bad_value'),
                value_error('grade', t_grade, grade, false, 'bad_enum'),
                value_error('evaluated_on', t_evaluated_on, evaluated_on, false, 'bad_value'),
                value_error('listed_from', t_listed_from, listed_from, false, 'bad_value'),
                value_error('listed_to', t_listed_to, listed_to, false, 'bad_value')) AS _err,
       record_type, evaluation_version, score, grade, evaluated_on, list_name, listed_from, listed_to
FROM typed;
