-- map_persons.sql: key persons (pipelines/sources/persons.toml). UTF-8 CSV;
-- identity numbers are hashed here and never land in clear.
CREATE OR REPLACE TABLE stage_persons AS
WITH raw AS (
    SELECT to_json(r)::VARCHAR              AS _original,
           txt(r."统一社会信用代码")        AS _k,
           txt(r."社会组织名称")            AS _nm,
           txt(r."记录编号")                AS _rid,
           txt(r."身份证号")                AS t_person_id,
           txt(r."姓名")                    AS t_person_name,
           txt(r."职务")                    AS t_role,
           txt(r."任职开始日期")            AS t_start_on,
           txt(r."任职结束日期")            AS t_end_on,
           txt(r."是否公职人员")            AS t_public_official,
           txt(r."是否退休干部")            AS t_retired_cadre,
           txt(r."兼职审批文号")            AS t_approval_doc,
           txt(r."审批日期")                AS t_approval_on,
           txt(r."是否领取报酬")            AS t_paid,
           txt(r."出生年份")                AS t_birth_year,
           txt(r."任职届数")                AS t_terms
    FROM read_csv({files}, header = true, all_varchar = true, delim = ',', quote = '"', escape = '"',
                  null_padding = false, ignore_errors = true, store_rejects = true,
                  rejects_table = 'rejects_persons', rejects_scan = 'rejects_scan_persons') r
),
typed AS (
    SELECT *,
           person_hash(t_person_id) AS person_id_hash,
           t_person_name AS person_name,
           p_enum(t_role, MAP {'发起人': 'founder', '负责人': 'leader', '法定代表人': 'legal_rep',
                               '党组织负责人': 'party_secretary', '监事': 'supervisor', '纪检委员': 'discipline_member'},
                  ['founder', 'leader', 'legal_rep', 'party_secretary', 'supervisor', 'discipline_member']) AS role,
           p_date(t_start_on) AS start_on,
           p_date(t_end_on) AS end_on,
           p_bool(t_public_official) AS public_official,
           p_bool(t_retired_cadre) AS retired_cadre,
           t_approval_doc AS approval_doc,
           p_date(t_approval_on) AS approval_on,
           p_bool(t_paid) AS paid,
           p_int(t_birth_year) AS birth_year,
           p_int(t_terms) AS terms
    FROM raw
)
SELECT _original, false AS _malformed, _k, _nm, _rid, t_person_id IS NOT NULL AS _hashed,
       coalesce(value_error('person_id_hash', t_person_id, person_id_hash, true, 'bad_value'),
                value_error('role', t_role, role, true, 'bad_enum'),
                value_error('start_on', t_start_on, start_on, false, 'bad_value'),
                value_error('end_on', t_end_on, end_on, false, 'bad_value'),
                value_error('public_official', t_public_official, public_official, false, 'bad_value'),
                value_error('retired_cadre', t_retired_cadre, retired_cadre, false, 'bad_value'),
                value_error('approval_on', t_approval_on, approval_on, false, 'bad_value'),
                value_error('paid', t_paid, paid, false, 'bad_value'),
                value_error('birth_year', t_birth_year, birth_year, false, 'bad_value'),
                value_error('terms', t_terms, terms, false, 'bad_value')) AS _err,
       person_id_hash, person_name, role, start_on, end_on, public_official, retired_cadre,
       approval_doc, approval_on, paid, birth_year, terms
FROM typed;
