-- resolve.sql: {feed} as the rules see it (src/score/mod.rs
-- `resolve_feeds`): a row without a USCC takes the registry's by its
-- normalized name when that name names one organization; `match` says how
-- the row was joined (uscc, org_code, name).
CREATE OR REPLACE TABLE {feed} AS
SELECT coalesce(f.uscc, n.uscc) AS uscc, f.* EXCLUDE (uscc),
       CASE WHEN f.uscc IS NOT NULL AND f.key_class = 'org_code_only' THEN 'org_code'
            WHEN f.uscc IS NOT NULL THEN 'uscc'
            WHEN n.uscc IS NOT NULL THEN 'name' END AS "match"
FROM {feed}_landed f
LEFT JOIN registry_names n ON f.uscc IS NULL AND f.subject_name_key = n.subject_name_key;

INSERT INTO evidence_by_name
SELECT DISTINCT '{feed}', source_record_id FROM {feed} WHERE "match" = 'name';
