-- map_projects.sql: welfare and government-purchase projects
-- (pipelines/sources/projects.toml). NDJSON, read line by line.
CREATE OR REPLACE TABLE stage_projects AS
WITH lines AS (SELECT * FROM ndjson_lines({files})),
parsed AS (
    SELECT line AS _original, NOT is_json_object(line) AS _malformed,
           from_json(CASE WHEN is_json_object(line) THEN line ELSE '{}' END,
                     '{"orgCreditCode": "VARCHAR", "orgName": "VARCHAR", "projectId": "VARCHAR",
                       "programme": "VARCHAR", "funder": "VARCHAR", "contractAmount": "VARCHAR",
                       "disbursedAmount": "VARCHAR", "spentAmount": "VARCHAR", "startDate": "VARCHAR",
                       "endDate": "VARCHAR", "evaluation": "VARCHAR", "evaluatedOn": "VARCHAR",
                       "auditFindings": "VARCHAR"}') AS j
    FROM lines WHERE line IS NOT NULL
),
raw AS (
    SELECT _original, _malformed,
           txt(j.orgCreditCode) AS _k, txt(j.orgName) AS _nm, txt(j.projectId) AS _rid,
           txt(j.projectId) AS t_project_id, txt(j.programme) AS t_programme, txt(j.funder) AS t_funder,
           txt(j.contractAmount) AS t_contract_amount, txt(j.disbursedAmount) AS t_disbursed_amount,
           txt(j.spentAmount) AS t_spent_amount, txt(j.startDate) AS t_start_on, txt(j.endDate) AS t_end_on,
           txt(j.evaluation) AS t_evaluation, txt(j.evaluatedOn) AS t_evaluated_on,
           txt(j.auditFindings) AS t_audit_findings
    FROM parsed
),
typed AS (
    SELECT *,
           t_project_id AS project_id,
           p_enum(t_programme, MAP {'公益创投': 'welfare_venture', '政府购买服务': 'government_purchase'},
                  ['welfare_venture', 'government_purchase']) AS programme,
           t_funder AS funder,
           p_dec(t_contract_amount, 0) AS contract_amount,
           p_dec(t_disbursed_amount, 0) AS disbursed_amount,
           p_dec(t_spent_amount, 0) AS spent_amount,
           p_date(t_start_on) AS start_on,
           p_date(t_end_on) AS end_on,
           p_enum(t_evaluation, MAP {'优秀': 'excellent', '良好': 'good', '合格': 'pass', '不合格': 'fail', '未评估': 'pending'},
                  ['excellent', 'good', 'pass', 'fail', 'pending']) AS evaluation,
           p_date(t_evaluated_on) AS evaluated_on,
           t_audit_findings AS audit_findings
    FROM raw
)
SELECT _original, _malformed, _k, _nm, _rid, false AS _hashed,
       coalesce(value_error('project_id', t_project_id, project_id, true, 'bad_value'),
                value_error('programme', t_programme, programme, false, 'bad_enum'),
                value_error('contract_amount', t_contract_amount, contract_amount, false, 'bad_value'),
                value_error('disbursed_amount', t_disbursed_amount, disbursed_amount, false, 'bad_value'),
                value_error('spent_amount', t_spent_amount, spent_amount, false, 'bad_value'),
                value_error('start_on', t_start_on, start_on, false, 'bad_value'),
                value_error('end_on', t_end_on, end_on, false, 'bad_value'),
                value_error('evaluation', t_evaluation, evaluation, false, 'bad_enum'),
                value_error('evaluated_on', t_evaluated_on, evaluated_on, false, 'bad_value')) AS _err,
       project_id, programme, funder, contract_amount, disbursed_amount, spent_amount, start_on,
       end_on, evaluation, evaluated_on, audit_findings
FROM typed;
