-- setup.sql: tables every stage appends to, created before the first feed.

-- Rejected rows of every feed (published as quarantine.parquet).
CREATE OR REPLACE TABLE quarantine (
    feed VARCHAR, field VARCHAR, reason_code VARCHAR, source_record_id VARCHAR,
    key VARCHAR, original VARCHAR);

-- Organization code (USCC positions 9-17) -> USCC of the registry. Empty
-- while the registry itself is mapped, as on a first run of our pipeline.
CREATE OR REPLACE TABLE registry_codes (org_code VARCHAR, uscc VARCHAR);

-- (feed, source_record_id) of records matched to an organization by name
-- alone: their hits are low confidence.
CREATE OR REPLACE TABLE evidence_by_name (feed VARCHAR, source_record_id VARCHAR);

-- Every rule's rows before de-duplication (rule.sql appends).
CREATE OR REPLACE TABLE rule_hits (
    rule_id VARCHAR, uscc VARCHAR, source_feed VARCHAR, source_record_id VARCHAR,
    event_date DATE, detail VARCHAR);
