-- map_police.sql: public-security cases (pipelines/sources/police.toml).
-- NDJSON; the subject person's identity number is hashed here.
CREATE OR REPLACE TABLE stage_police AS
WITH lines AS (SELECT * FROM ndjson_lines({files})),
parsed AS (
    SELECT line AS _original, NOT is_json_object(line) AS _malformed,
           from_json(CASE WHEN is_json_object(line) THEN line ELSE '{}' END,
                     '{"subjectCode": "VARCHAR", "subjectName": "VARCHAR", "caseNo": "VARCHAR",
                       "subjectPersonId": "VARCHAR", "caseType": "VARCHAR", "filedDate": "VARCHAR",
                       "status": "VARCHAR", "outcome": "VARCHAR", "closedDate": "VARCHAR"}') AS j
    FROM lines WHERE line IS NOT NULL
),
raw AS (
    SELECT _original, _malformed,
           txt(j.subjectCode) AS _k, txt(j.subjectName) AS _nm, txt(j.caseNo) AS _rid,
           txt(j.caseNo) AS t_case_no, txt(j.subjectPersonId) AS t_subject_person,
           txt(j.caseType) AS t_case_type, txt(j.filedDate) AS t_filed_on, txt(j.status) AS t_status,
           txt(j.outcome) AS t_outcome, txt(j.closedDate) AS t_closed_on
    FROM parsed
),
typed AS (
    SELECT *,
           t_case_no AS case_no,
           person_hash(t_subject_person) AS subject_person_hash,
           p_enum(t_case_type, MAP {'非法集资': 'illegal_fundraising', '诈骗': 'fraud',
                                    '非法社会组织': 'illegal_org', '其他': 'other'},
                  ['illegal_fundraising', 'fraud', 'illegal_org', 'other']) AS case_type,
           p_date(t_filed_on) AS filed_on,
           p_enum(t_status, MAP {'立案侦查': 'open', '已结案': 'closed', '已取缔': 'banned'},
                  ['open', 'closed', 'banned']) AS status,
           p_enum(t_outcome, MAP {'有罪判决': 'convicted', '无罪': 'acquitted', '撤案': 'withdrawn'},
                  ['convicted', 'acquitted', 'withdrawn']) AS outcome,
           p_date(t_closed_on) AS closed_on
    FROM raw
)
SELECT _original, _malformed, _k, _nm, _rid, t_subject_person IS NOT NULL AS _hashed,
       coalesce(value_error('case_no', t_case_no, case_no, true, 'bad_value'),
                value_error('case_type', t_case_type, case_type, true, 'bad_enum'),
                value_error('filed_on', t_filed_on, filed_on, false, 'bad_value'),
                value_error('status', t_status, status, true, 'bad_enum'),
                value_error('outcome', t_outcome, outcome, false, 'bad_enum'),
                value_error('closed_on', t_closed_on, closed_on, false, 'bad_value')) AS _err,
       case_no, subject_person_hash, case_type, filed_on, status, outcome, closed_on
FROM typed;
