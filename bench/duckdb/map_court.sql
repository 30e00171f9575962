-- map_court.sql: court records (pipelines/sources/court.toml). NDJSON with
-- the court's own keys; dates as epoch milliseconds. Record id: caseCode|recordType.
CREATE OR REPLACE TABLE stage_court AS
WITH lines AS (SELECT * FROM ndjson_lines({files})),
parsed AS (
    SELECT line AS _original, NOT is_json_object(line) AS _malformed,
           from_json(CASE WHEN is_json_object(line) THEN line ELSE '{}' END,
                     '{"cardNum": "VARCHAR", "iname": "VARCHAR", "caseCode": "VARCHAR", "recordType": "VARCHAR",
                       "courtName": "VARCHAR", "businessEntity": "VARCHAR", "regDate": "VARCHAR",
                       "publishDate": "VARCHAR", "duty": "VARCHAR", "performance": "VARCHAR",
                       "disruptTypeName": "VARCHAR", "delistedDate": "VARCHAR", "execMoney": "VARCHAR",
                       "unperformedMoney": "VARCHAR", "caseState": "VARCHAR"}') AS j
    FROM lines WHERE line IS NOT NULL
),
raw AS (
    SELECT _original, _malformed,
           txt(j.cardNum) AS _k, txt(j.iname) AS _nm,
           nullif(concat_ws('|', txt(j.caseCode), txt(j.recordType)), '') AS _rid,
           txt(j.recordType) AS t_record_type, txt(j.caseCode) AS t_case_code,
           txt(j.courtName) AS t_court_name, txt(j.businessEntity) AS t_legal_rep,
           txt(j.regDate) AS t_registered_on, txt(j.publishDate) AS t_published_on,
           txt(j.duty) AS t_duty, txt(j.performance) AS t_performance,
           txt(j.disruptTypeName) AS t_disrupt_type, txt(j.delistedDate) AS t_delisted_on,
           txt(j.execMoney) AS t_exec_amount, txt(j.unperformedMoney) AS t_unperformed_amount,
           txt(j.caseState) AS t_case_state
    FROM parsed
),
typed AS (
    SELECT *,
           p_enum(t_record_type, MAP {'失信被执行人': 'dishonest_debtor', '被执行人': 'enforced_party', '涉诉': 'lawsuit'},
                  ['dishonest_debtor', 'enforced_party', 'lawsuit']) AS record_type,
           t_case_code AS case_code,
           t_court_name AS court_name,
           t_legal_rep AS legal_rep,
           p_date(t_registered_on) AS registered_on,
           p_date(t_published_on) AS published_on,
           t_duty AS duty,
           p_enum(t_performance, MAP {'全部未履行': 'none', '部分未履行': 'partial', '全部履行': 'full'},
                  ['none', 'partial', 'full']) AS performance,
           t_disrupt_type AS disrupt_type,
           p_date(t_delisted_on) AS delisted_on,
           p_dec(t_exec_amount, 0) AS exec_amount,
           p_dec(t_unperformed_amount, 0) AS unperformed_amount,
           t_case_state AS case_state
    FROM raw
)
SELECT _original, _malformed, _k, _nm, _rid, false AS _hashed,
       coalesce(value_error('record_type', t_record_type, record_type, true, 'bad_enum'),
                value_error('case_code', t_case_code, case_code, true, 'bad_value'),
                value_error('registered_on', t_registered_on, registered_on, false, 'bad_value'),
                value_error('published_on', t_published_on, published_on, false, 'bad_value'),
                value_error('performance', t_performance, performance, false, 'bad_enum'),
                value_error('delisted_on', t_delisted_on, delisted_on, false, 'bad_value'),
                value_error('exec_amount', t_exec_amount, exec_amount, false, 'bad_value'),
                value_error('unperformed_amount', t_unperformed_amount, unperformed_amount, false, 'bad_value')) AS _err,
       record_type, case_code, court_name, legal_rep, registered_on, published_on, duty, performance,
       disrupt_type, delisted_on, exec_amount, unperformed_amount, case_state
FROM typed;
