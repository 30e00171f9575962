-- score.sql: hits, points, red lines and colours (src/score/mod.rs
-- `run_rules`, `aggregate`; src/score/outputs.rs). pipeline.py has loaded
-- `rules` (id, title, dimension, points, red_line, flag) and `bands`
-- (colour, min_points, max_points) from the TOML files and set the
-- variables business_date, start_points and rules_version.

-- Rows a rule must not return: pipeline.py fails the run on any, naming
-- the rule and the record, as our scorer does.
CREATE OR REPLACE TABLE bad_hits AS
SELECT * FROM rule_hits
WHERE uscc IS NULL OR uscc_class(uscc) <> 'valid' OR key_norm(uscc) <> uscc OR event_date IS NULL;

-- Hits distinct by organization, rule and record (the earliest event
-- kept); evidence matched by name alone is low confidence.
CREATE OR REPLACE TABLE scored_hits AS
WITH distinct_hits AS (
    SELECT rule_id, uscc, coalesce(source_feed, '') AS source_feed,
           coalesce(source_record_id, '') AS source_record_id, event_date,
           coalesce(detail, '') AS detail
    FROM rule_hits
    QUALIFY row_number() OVER (
        PARTITION BY uscc, rule_id, coalesce(source_feed, ''), coalesce(source_record_id, '')
        ORDER BY event_date, detail) = 1
)
SELECT h.*, r.title, r.dimension, r.points AS rule_points, r.red_line AS rule_red_line, r.flag,
       e.feed IS NOT NULL AS low_confidence
FROM distinct_hits h
JOIN rules r ON r.rule_id = h.rule_id
LEFT JOIN evidence_by_name e ON e.feed = h.source_feed AND e.source_record_id = h.source_record_id;

-- The published hits: a low-confidence hit carries no points and no red line.
CREATE OR REPLACE TABLE hits AS
SELECT uscc, rule_id, title, dimension,
       (CASE WHEN low_confidence THEN 0 ELSE rule_points END)::INTEGER AS points,
       NOT low_confidence AND rule_red_line AS red_line,
       flag, source_feed, source_record_id, event_date, detail,
       CASE WHEN low_confidence THEN 'low' ELSE 'high' END AS confidence,
       getvariable('rules_version') AS rules_version,
       getvariable('business_date') AS business_date
FROM scored_hits
ORDER BY uscc, rule_id, source_feed, source_record_id;

-- Per organization: deductions and red lines per dimension (high
-- confidence only; a red-line rule deducts nothing), flags, hit count.
CREATE OR REPLACE TABLE org_scores AS
WITH counted AS (
    SELECT *, NOT low_confidence AND rule_red_line AS red,
           CASE WHEN low_confidence OR rule_red_line THEN 0 ELSE rule_points END AS deduction
    FROM scored_hits
)
SELECT uscc,
       count(*)::INTEGER AS hits,
       bool_or(flag = 'zombie_suspect') AS zombie_suspect,
       bool_or(flag = 'illegal_org_name_match') AS illegal_org_name_match,
       bool_or(low_confidence) AS low_confidence_evidence,
       coalesce(sum(deduction) FILTER (WHERE dimension = 'organization'), 0) AS ded_organization,
       coalesce(sum(deduction) FILTER (WHERE dimension = 'institutions'), 0) AS ded_institutions,
       coalesce(sum(deduction) FILTER (WHERE dimension = 'operations'), 0) AS ded_operations,
       coalesce(sum(deduction) FILTER (WHERE dimension = 'culture'), 0) AS ded_culture,
       coalesce(sum(deduction) FILTER (WHERE dimension = 'government'), 0) AS ded_government,
       coalesce(bool_or(red) FILTER (WHERE dimension = 'organization'), false) AS red_organization,
       coalesce(bool_or(red) FILTER (WHERE dimension = 'institutions'), false) AS red_institutions,
       coalesce(bool_or(red) FILTER (WHERE dimension = 'operations'), false) AS red_operations,
       coalesce(bool_or(red) FILTER (WHERE dimension = 'culture'), false) AS red_culture,
       coalesce(bool_or(red) FILTER (WHERE dimension = 'government'), false) AS red_government
FROM counted
GROUP BY uscc;

-- Dimension sub-score 0-100: 0 with a red line in it.
CREATE OR REPLACE MACRO dimension_score(red, deduction) AS (
    CASE WHEN red OR getvariable('start_points') = 0 THEN 0.0
         ELSE 100.0 * greatest(getvariable('start_points') - deduction, 0) / getvariable('start_points') END);

-- One profile per registry row; deregistered organizations get no colour,
-- no points and no dimension scores.
CREATE OR REPLACE TABLE profiles AS
WITH scored AS (
    SELECT r.uscc, r.name, r.org_type, r.registrar_division, r.status,
           r.status <> 'deregistered' AS active,
           coalesce(s.hits, 0) AS hits,
           coalesce(s.zombie_suspect, false) AS zombie_suspect,
           coalesce(s.illegal_org_name_match, false) AS illegal_org_name_match,
           coalesce(s.low_confidence_evidence, false) AS low_confidence_evidence,
           coalesce(s.ded_organization, 0) AS d1, coalesce(s.ded_institutions, 0) AS d2,
           coalesce(s.ded_operations, 0) AS d3, coalesce(s.ded_culture, 0) AS d4,
           coalesce(s.ded_government, 0) AS d5,
           coalesce(s.red_organization, false) AS r1, coalesce(s.red_institutions, false) AS r2,
           coalesce(s.red_operations, false) AS r3, coalesce(s.red_culture, false) AS r4,
           coalesce(s.red_government, false) AS r5
    FROM registry r
    LEFT JOIN org_scores s ON s.uscc = r.uscc
),
pointed AS (
    SELECT *, greatest(getvariable('start_points') - (d1 + d2 + d3 + d4 + d5), 0)::INTEGER AS pts,
           r1 OR r2 OR r3 OR r4 OR r5 AS any_red
    FROM scored
)
SELECT p.uscc, p.name, p.org_type, p.registrar_division, p.status,
       CASE WHEN p.active THEN CASE WHEN p.any_red THEN 'red' ELSE coalesce(b.colour, 'red') END END AS colour,
       CASE WHEN p.active THEN p.pts END AS points,
       p.active AND p.any_red AS red_line,
       CASE WHEN p.active THEN dimension_score(r1, d1) END AS score_organization,
       CASE WHEN p.active THEN dimension_score(r2, d2) END AS score_institutions,
       CASE WHEN p.active THEN dimension_score(r3, d3) END AS score_operations,
       CASE WHEN p.active THEN dimension_score(r4, d4) END AS score_culture,
       CASE WHEN p.active THEN dimension_score(r5, d5) END AS score_government,
       p.zombie_suspect, p.illegal_org_name_match, p.low_confidence_evidence,
       '' AS stale_inputs,
       p.hits,
       getvariable('rules_version') AS rules_version,
       getvariable('business_date') AS business_date
FROM pointed p
LEFT JOIN bands b ON p.pts BETWEEN b.min_points AND b.max_points
ORDER BY p.uscc;

-- The codes the platform consumes: organizations with a colour, issued
-- for the business date and valid until the next one.
CREATE OR REPLACE TABLE codes AS
SELECT uscc, name, org_type, registrar_division, status, colour,
       getvariable('business_date') AS issued_on,
       getvariable('business_date') + 1 AS valid_until,
       rules_version
FROM profiles
WHERE colour IS NOT NULL
ORDER BY uscc;
