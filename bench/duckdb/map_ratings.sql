-- map_ratings.sql: grade assessments (pipelines/sources/ratings.toml).
-- One JSON document; the records are the array at the pointer {records}.
-- The reader parses the document once and hands over the array's elements
-- ({records_columns}, {records_array}: the pointer as a column type and
-- a field path; {max_object_size}: the largest file). Extracting the array
-- as text and casting it to JSON[] parsed it twice and needed over 4 GB
-- for a 240 MB document.
CREATE OR REPLACE TABLE stage_ratings AS
WITH recs AS (
    SELECT unnest(CASE WHEN {records_array} IS NOT NULL THEN {records_array}
                       ELSE error('ratings: no record array at JSON pointer ' || {records}) END)::VARCHAR AS rec
    FROM read_json({files}, format = 'unstructured', columns = {records_columns},
                   maximum_object_size = {max_object_size})
),
parsed AS (
    SELECT rec AS _original, json_type(rec) <> 'OBJECT' AS _malformed,
           from_json(CASE WHEN json_type(rec) = 'OBJECT' THEN rec ELSE '{}' END,
                     '{"creditCode": "VARCHAR", "orgName": "VARCHAR", "recordId": "VARCHAR", "level": "VARCHAR",
                       "score": "VARCHAR", "assessDate": "VARCHAR", "validUntil": "VARCHAR"}') AS j
    FROM recs
),
raw AS (
    SELECT _original, _malformed,
           txt(j.creditCode) AS _k, txt(j.orgName) AS _nm, txt(j.recordId) AS _rid,
           txt(j.level) AS t_level, txt(j.score) AS t_score,
           txt(j.assessDate) AS t_assessed_on, txt(j.validUntil) AS t_valid_until
    FROM parsed
),
typed AS (
    SELECT *,
           p_enum(t_level, MAP {}::MAP(VARCHAR, VARCHAR), ['1A', '2A', '3A', '4A', '5A']) AS level,
           p_float(t_score) AS score,
           p_date(t_assessed_on) AS assessed_on,
           p_date(t_valid_until) AS valid_until
    FROM raw
)
SELECT _original, _malformed, _k, _nm, _rid, false AS _hashed,
       coalesce(value_error('level', t_level, level, true, 'bad_enum'),
                value_error('score', t_score, score, false, 'bad_value'),
                value_error('assessed_on', t_assessed_on, assessed_on, true, 'bad_value'),
                value_error('valid_until', t_valid_until, valid_until, true, 'bad_value')) AS _err,
       level, score, assessed_on, valid_until
FROM typed;
