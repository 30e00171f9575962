-- coerce.sql: raw text to typed values, as src/validate/coerce.rs does, and
-- the per-column check that decides quarantine (src/validate/mod.rs).
-- Every parser takes text already trimmed by txt() and returns NULL when the
-- text does not parse; value_error() then names the column and the reason.

-- parse_date: 2017年03月24日, 2019-11-18, 2019/11/18, 2019.11.18,
-- 2019-11-18 00:00:00(.fff), 20191118, RFC 3339, or epoch milliseconds
-- (10-13 digits; the date in Beijing time).
CREATE OR REPLACE MACRO p_date(t) AS (
    CASE
        WHEN regexp_full_match(t, '[0-9]+') THEN
            CASE WHEN length(t) = 8 THEN try_strptime(t, '%Y%m%d')::DATE
                 WHEN length(t) BETWEEN 10 AND 13 THEN
                     timezone('Asia/Shanghai', epoch_ms(t::BIGINT) AT TIME ZONE 'UTC')::DATE
            END
        WHEN ends_with(t, '日') THEN try_strptime(t, '%Y年%m月%d日')::DATE
        ELSE coalesce(
            try_strptime(t, ['%Y-%m-%d', '%Y/%m/%d', '%Y.%m.%d', '%Y-%m-%d %H:%M:%S',
                             '%Y-%m-%d %H:%M:%S.%f', '%Y/%m/%d %H:%M:%S'])::DATE,
            CASE WHEN regexp_full_match(t, '[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})')
                 THEN timezone('Asia/Shanghai', try_cast(t AS TIMESTAMPTZ))::DATE END)
    END);

-- parse_bool: 是/否, true/false, 1/0, y/n, yes/no, t/f.
CREATE OR REPLACE MACRO p_bool(t) AS (
    CASE WHEN lower(t) IN ('是', 'true', '1', 'y', 'yes', 't') THEN true
         WHEN lower(t) IN ('否', 'false', '0', 'n', 'no', 'f') THEN false END);

-- parse_int: a whole number, `.0` accepted. (Our code fails the batch on an
-- int32 overflow; here it is a bad value.)
CREATE OR REPLACE MACRO p_int(t) AS (
    CASE WHEN regexp_full_match(t, '[+-]?[0-9]+(\.0)?')
         THEN try_cast(regexp_replace(t, '\.0$', '') AS INTEGER) END);

-- parse_float: a finite number.
CREATE OR REPLACE MACRO p_float(t) AS (
    CASE WHEN isfinite(try_cast(t AS DOUBLE)) THEN try_cast(t AS DOUBLE) END);

-- parse_decimal into DECIMAL(18,2) yuan, after scaling by 10^places
-- (0 for yuan, 4 for 万元): thousands separators accepted, no exponent,
-- no more decimals than fit exactly, at most 16 digits before the point.
CREATE OR REPLACE MACRO p_dec(t, places) AS (
    CASE WHEN regexp_full_match(replace(t, ',', ''), '[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)')
          AND length(rtrim(regexp_extract(replace(t, ',', ''), '\.([0-9]*)$', 1), '0')) <= 2 + places
          AND abs(try_cast(replace(t, ',', '') AS DECIMAL(38, 8)) * (10 ** places)::BIGINT) < 10000000000000000
         THEN (try_cast(replace(t, ',', '') AS DECIMAL(38, 8)) * (10 ** places)::BIGINT)::DECIMAL(18, 2) END);

-- An enum column: the label mapped through the source's table, else taken
-- as delivered; NULL unless it lies in the column's domain.
CREATE OR REPLACE MACRO p_enum(t, labels, domain) AS (
    CASE WHEN list_contains(domain, coalesce(labels[t], t)) THEN coalesce(labels[t], t) END);

-- The keyed hash of a person identity number. Our code uses HMAC-SHA256
-- under QINGLIAN_PERSON_KEY; here SHA-256 of key, NUL and the number
-- (trimmed, ASCII upper case): different values, the same joins.
CREATE OR REPLACE MACRO person_hash(t) AS
    sha256(getvariable('person_key') || chr(0) || upper_ascii(t));

-- Why a column rejects its row, or NULL: an empty required column is
-- missing_value; text that did not parse is `reason` (bad_value, bad_enum).
CREATE OR REPLACE MACRO value_error(col, t, v, required, reason) AS (
    CASE WHEN t IS NULL THEN
             CASE WHEN required THEN {'field': col, 'reason': 'missing_value'} END
         WHEN v IS NULL THEN {'field': col, 'reason': reason} END);

-- A line or array element that is a JSON object (anything else is a
-- malformed record).
CREATE OR REPLACE MACRO is_json_object(s) AS
    coalesce(CASE WHEN json_valid(s) THEN json_type(s) = 'OBJECT' END, false);

-- The lines of NDJSON files (gzip undone by the reader), each trimmed as
-- our reader trims a line; every NDJSON feed's map starts here.
CREATE OR REPLACE MACRO ndjson_lines(files) AS TABLE
    SELECT txt(line) AS line
    FROM read_csv(files, columns = {'line': 'VARCHAR'}, header = false, auto_detect = false,
                  delim = E'\x01', quote = '', escape = '');
