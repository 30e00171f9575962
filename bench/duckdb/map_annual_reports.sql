-- map_annual_reports.sql: annual inspections and reports
-- (pipelines/sources/annual_reports.toml). UTF-8 CSV with a BOM.
CREATE OR REPLACE TABLE stage_annual_reports AS
WITH raw AS (
    SELECT to_json(r)::VARCHAR              AS _original,
           txt(r."统一社会信用代码")        AS _k,
           txt(r."社会组织名称")            AS _nm,
           txt(r."记录编号")                AS _rid,
           txt(r."年度")                    AS t_report_year,
           txt(r."年检结论")                AS t_conclusion,
           txt(r."结论日期")                AS t_concluded_on,
           txt(r."总收入")                  AS t_total_income,
           txt(r."捐赠收入")                AS t_donation_income,
           txt(r."政府购买服务收入")        AS t_government_purchase_income,
           txt(r."总支出")                  AS t_total_expense,
           txt(r."慈善活动支出")            AS t_charitable_expense,
           txt(r."管理费用")                AS t_management_expense,
           txt(r."年末净资产")              AS t_net_assets,
           txt(r."上年总收入")              AS t_previous_year_income,
           txt(r."上年末净资产")            AS t_previous_net_assets
    FROM read_csv({files}, header = true, all_varchar = true, delim = ',', quote = '"', escape = '"',
                  null_padding = false, ignore_errors = true, store_rejects = true,
                  rejects_table = 'rejects_annual_reports', rejects_scan = 'rejects_scan_annual_reports') r
),
typed AS (
    SELECT *,
           p_int(t_report_year) AS report_year,
           p_enum(t_conclusion, MAP {'合格': 'passed', '基本合格': 'basically_passed', '不合格': 'failed',
                                     '未参检': 'not_submitted', '新成立免检': 'exempt'},
                  ['passed', 'basically_passed', 'failed', 'not_submitted', 'exempt']) AS conclusion,
           p_date(t_concluded_on) AS concluded_on,
           p_dec(t_total_income, 0) AS total_income,
           p_dec(t_donation_income, 0) AS donation_income,
           p_dec(t_government_purchase_income, 0) AS government_purchase_income,
           p_dec(t_total_expense, 0) AS total_expense,
           p_dec(t_charitable_expense, 0) AS charitable_expense,
           p_dec(t_management_expense, 0) AS management_expense,
           p_dec(t_net_assets, 0) AS net_assets,
           p_dec(t_previous_year_income, 0) AS previous_year_income,
           p_dec(t_previous_net_assets, 0) AS previous_net_assets
    FROM raw
)
SELECT _original, false AS _malformed, _k, _nm, _rid, false AS _hashed,
       coalesce(value_error('report_year', t_report_year, report_year, true, 'bad_value'),
                value_error('conclusion', t_conclusion, conclusion, true, 'bad_enum'),
                value_error('concluded_on', t_concluded_on, concluded_on, false, 'bad_value'),
                value_error('total_income', t_total_income, total_income, false, 'bad_value'),
                value_error('donation_income', t_donation_income, donation_income, false, 'bad_value'),
                value_error('government_purchase_income', t_government_purchase_income, government_purchase_income, false, 'bad_value'),
                value_error('total_expense', t_total_expense, total_expense, false, 'bad_value'),
                value_error('charitable_expense', t_charitable_expense, charitable_expense, false, 'bad_value'),
                value_error('management_expense', t_management_expense, management_expense, false, 'bad_value'),
                value_error('net_assets', t_net_assets, net_assets, false, 'bad_value'),
                value_error('previous_year_income', t_previous_year_income, previous_year_income, false, 'bad_value'),
                value_error('previous_net_assets', t_previous_net_assets, previous_net_assets, false, 'bad_value')) AS _err,
       report_year, conclusion, concluded_on, total_income, donation_income,
       government_purchase_income, total_expense, charitable_expense, management_expense,
       net_assets, previous_year_income, previous_net_assets
FROM typed;
