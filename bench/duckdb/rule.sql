-- rule.sql: one rule's hits (src/score/mod.rs `run_rule`). {sql} is the
-- rule's SQL from pipelines/rules/*.toml with its placeholders replaced and
-- its window applied by pipeline.py.
INSERT INTO rule_hits
SELECT {rule_id}, h.uscc, h.source_feed, h.source_record_id, h.event_date, h.detail
FROM ({sql}) AS h;
