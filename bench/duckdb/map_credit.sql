-- map_credit.sql: credit lists and 双公示 penalties (pipelines/sources/credit.toml).
-- UTF-8 CSV; fines arrive in 万元 and land in yuan.
CREATE OR REPLACE TABLE stage_credit AS
WITH raw AS (
    SELECT to_json(r)::VARCHAR              AS _original,
           txt(r."统一社会信用代码")        AS _k,
           txt(r."组织名称")                AS _nm,
           txt(r."记录编号")                AS _rid,
           txt(r."名录类型")                AS t_list_type,
           txt(r."列入原因")                AS t_reason,
           txt(r."决定书文号")              AS t_decision_no,
           txt(r."列入日期")                AS t_listed_on,
           txt(r."移出日期")                AS t_removed_on,
           txt(r."处罚种类")                AS t_penalty_kind,
           txt(r."罚款金额(万元)")          AS t_amount,
           txt(r."处罚决定日期")            AS t_decided_on,
           txt(r."处罚机关")                AS t_authority
    FROM read_csv({files}, header = true, all_varchar = true, delim = ',', quote = '"', escape = '"',
                  null_padding = false, ignore_errors = true, store_rejects = true,
                  rejects_table = 'rejects_credit', rejects_scan = 'rejects_scan_credit') r
),
typed AS (
    SELECT *,
           p_enum(t_list_type, MAP {'活动异常名录': 'abnormal', '严重违法失信名单': 'serious', '行政处罚': 'penalty'},
                  ['abnormal', 'serious', 'penalty']) AS list_type,
           t_reason AS reason,
           t_decision_no AS decision_no,
           p_date(t_listed_on) AS listed_on,
           p_date(t_removed_on) AS removed_on,
           p_enum(t_penalty_kind, MAP {'警告': 'warning', '罚款': 'fine', '没收违法所得': 'confiscation',
                                       '没收非法财物': 'confiscation', '限期停止活动': 'suspension',
                                       '撤销登记': 'revocation'},
                  ['warning', 'fine', 'confiscation', 'suspension', 'revocation']) AS penalty_kind,
           p_dec(t_amount, 4) AS amount,          -- unit = "wan_yuan": × 10,000
           p_date(t_decided_on) AS decided_on,
           t_authority AS authority
    FROM raw
)
SELECT _original, false AS _malformed, _k, _nm, _rid, false AS _hashed,
       coalesce(value_error('list_type', t_list_type, list_type, true, 'bad_enum'),
                value_error('listed_on', t_listed_on, listed_on, false, 'bad_value'),
                value_error('removed_on', t_removed_on, removed_on, false, 'bad_value'),
                value_error('penalty_kind', t_penalty_kind, penalty_kind, false, 'bad_enum'),
                value_error('amount', t_amount, amount, false, 'bad_value'),
                value_error('decided_on', t_decided_on, decided_on, false, 'bad_value')) AS _err,
       list_type, reason, decision_no, listed_on, removed_on, penalty_kind, amount, decided_on, authority
FROM typed;
