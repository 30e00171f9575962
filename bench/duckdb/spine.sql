-- spine.sql: the registry as the spine, after it landed (src/run.rs,
-- src/score/mod.rs `resolve_feeds`).

-- Organization codes resolve to the registry's USCCs. Our code keeps the
-- last registry row of an organization code; two registered USCCs sharing
-- one are not expected, and here the greatest USCC wins.
CREATE OR REPLACE TABLE registry_codes AS
SELECT substr(uscc, 9, 9) AS org_code, max(uscc) AS uscc
FROM registry_landed WHERE uscc IS NOT NULL
GROUP BY 1;

-- Normalized names that name exactly one registry row.
CREATE OR REPLACE TABLE registry_names AS
SELECT subject_name_key, min(uscc) AS uscc
FROM registry_landed
WHERE subject_name_key IS NOT NULL
GROUP BY subject_name_key
HAVING count(*) = 1;

-- The registry as rules see it.
CREATE OR REPLACE TABLE registry AS
SELECT *, 'uscc' AS "match" FROM registry_landed;
