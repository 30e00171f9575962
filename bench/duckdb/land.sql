-- land.sql: VALIDATE and LAND one feed, after map_{feed}.sql staged it
-- (src/validate/mod.rs `map_row`, src/run.rs `land_feed`). Run once per
-- feed, the registry first; {feed} and {columns} (the feed's own canonical
-- columns, schemas/{feed}.toml order) are filled in by pipeline.py.
--
-- 1. Classify the delivered key; a key missing but a name given is
--    name_only. A valid USCC is the key; an organization code resolves
--    through the registry's codes; a name is matched at scoring.
-- 2. The first reason a row cannot be trusted, in our order: malformed,
--    invalid or repairable key, missing record id, a column's value, no key
--    at all (no code, no name, no hashed person).
-- 3. Accepted rows land without exact duplicates (identical records as
--    delivered, found by a 128-bit fingerprint of the record, as ours
--    does: src/validate/dedup.rs); rejected rows go to quarantine with
--    the record as delivered. Only rejected rows keep that text here: the
--    staged table, which holds every record's, is dropped after landing.
CREATE OR REPLACE TABLE checked_{feed} AS
WITH normalized AS (
    SELECT * EXCLUDE (_original), key_norm(coalesce(_k, '')) AS _kn,
           md5_number(_original) AS _fp, _original AS _record
    FROM stage_{feed}
),
classified AS (
    SELECT *, uscc_class(_kn) AS _class FROM normalized
),
resolved AS (
    SELECT c.*,
           CASE WHEN c._class = 'missing' AND c._nm IS NOT NULL THEN 'name_only' ELSE c._class END AS key_class,
           CASE c._class WHEN 'valid' THEN c._kn WHEN 'org_code_only' THEN rc.uscc END AS uscc,
           coalesce(c._nm, CASE WHEN c._class = 'name_only' THEN c._kn END) AS subject_name
    FROM classified c
    LEFT JOIN registry_codes rc ON c._class = 'org_code_only' AND rc.org_code = c._kn
)
SELECT * EXCLUDE (_record, _rejected), _rejected,
       CASE WHEN _rejected IS NOT NULL THEN _record END AS _original
FROM (
SELECT *,
       name_norm(subject_name) AS subject_name_key,
       coalesce(
           CASE WHEN _malformed THEN {'field': '', 'reason': 'malformed_record'} END,
           CASE WHEN key_class IN ('bad_checksum', 'bad_org_code_checksum') THEN {'field': 'key', 'reason': 'invalid_key'}
                WHEN key_class = 'repaired' THEN {'field': 'key', 'reason': 'repairable_key'} END,
           CASE WHEN _rid IS NULL THEN {'field': 'record_id', 'reason': 'missing_record_id'} END,
           _err,
           CASE WHEN uscc IS NULL AND subject_name IS NULL AND _k IS NULL AND NOT _hashed
                THEN {'field': 'key', 'reason': 'missing_key'} END) AS _rejected
FROM resolved
);

-- Of identical accepted records one lands. Identical records map to
-- identical rows, so which one does not change the landed rows; their
-- order is not kept (preserve_insertion_order is off, to bound memory).
CREATE OR REPLACE TABLE {feed}_landed AS
SELECT uscc, _k AS uscc_raw, key_class, subject_name, subject_name_key, _rid AS source_record_id,
       get_current_timestamp() AS fetched_at, {columns}
FROM checked_{feed}
WHERE rowid IN (SELECT min(rowid) FROM checked_{feed} WHERE _rejected IS NULL GROUP BY _fp);

INSERT INTO quarantine
SELECT '{feed}' AS feed, _rejected.field, _rejected.reason AS reason_code, _rid AS source_record_id,
       _k AS key, _original AS original
FROM checked_{feed} WHERE _rejected IS NOT NULL;
