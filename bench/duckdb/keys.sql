-- keys.sql: the key library of src/keys/ as DuckDB macros.
--
--   key_norm(raw)      normalize a raw key: full-width forms folded, white
--                      space and the dash family removed, ASCII upper case
--                      (src/keys/normalize.rs `normalize`)
--   uscc_class(n)      class of a normalized key: valid, bad_checksum,
--                      bad_org_code_checksum, repaired, org_code_only,
--                      reg_no_only, name_only, missing (src/keys/classify.rs)
--   name_norm(raw)     organization name folded for matching across feeds
--                      (src/keys/normalize.rs `normalize_name`)
--
-- Rust folds with full Unicode NFKC. DuckDB has no NFKC function, so NFKC is
-- approximated by the compatibility forms departments actually type: the
-- full-width ASCII block U+FF01..U+FF5E and the compatibility spaces (NBSP,
-- U+2000..U+200A, U+202F, U+205F, U+3000). Other compatibility characters
-- (circled digits, ligatures, CJK compatibility ideographs) are not folded.

-- Characters Rust's `char::is_whitespace` accepts (Unicode White_Space).
SET VARIABLE ws_chars = chr(9) || chr(10) || chr(11) || chr(12) || chr(13) || chr(32)
    || chr(133) || chr(160) || chr(5760)
    || (SELECT string_agg(chr(cp::INTEGER), '') FROM range(8192, 8203) t(cp))   -- U+2000..U+200A
    || chr(8232) || chr(8233) || chr(8239) || chr(8287) || chr(12288);

-- NFKC approximation, as a `translate` pair: full-width ASCII to ASCII and
-- every compatibility space to U+0020.
SET VARIABLE nfkc_from = (SELECT string_agg(chr(cp::INTEGER), '' ORDER BY cp) FROM range(65281, 65375) t(cp))
    || chr(160) || (SELECT string_agg(chr(cp::INTEGER), '') FROM range(8192, 8203) t(cp))
    || chr(8239) || chr(8287) || chr(12288);
SET VARIABLE nfkc_to = (SELECT string_agg(chr(cp::INTEGER), '' ORDER BY cp) FROM range(33, 127) t(cp))
    || repeat(' ', 1 + 11 + 3);

-- Separators removed from keys (normalize.rs `is_separator`): white space,
-- the dash family, underscore, zero-width space and BOM.
SET VARIABLE key_separators = getvariable('ws_chars')
    || '-' || chr(8208) || chr(8209) || chr(8210) || chr(8211) || chr(8212) || chr(8213)
    || '_' || chr(8203) || chr(65279);

-- Characters normalize_name removes: white space, zero-width space, BOM;
-- and a regular expression matching any character it changes.
SET VARIABLE name_removed = getvariable('ws_chars') || chr(8203) || chr(65279);
SET VARIABLE name_fold_re = '[' || getvariable('nfkc_from') || '\[【〔〖（\]】〕〗）a-z'
    || getvariable('name_removed') || ']';

-- The USCC character set (GB 32100-2015): value = position - 1.
SET VARIABLE uscc_charset = '0123456789ABCDEFGHJKLMNPQRTUWXY';

-- Place prefixes normalize_name strips, in the order Rust tries them: one
-- prefix, and a run of stacked prefixes.
SET VARIABLE place_prefixes = '浙江省|浙江|杭州市|杭州|上城区|下城区|江干区|拱墅区|西湖区|滨江区|萧山区|余杭区|富阳区|临安区|临平区|钱塘区|桐庐县|淳安县|建德市';
SET VARIABLE place_prefix_re = '^(?:' || getvariable('place_prefixes') || ')';
SET VARIABLE place_prefixes_re = '^(?:' || getvariable('place_prefixes') || ')+';

-- Trim like Rust's `str::trim` (Unicode white space); empty becomes NULL.
-- trim() with a character set is slow, so it runs only on text that starts
-- or ends with white space (or is empty).
CREATE OR REPLACE MACRO txt(v) AS nullif(
    CASE WHEN contains(getvariable('ws_chars'), left(v, 1)) OR contains(getvariable('ws_chars'), right(v, 1))
         THEN trim(v, getvariable('ws_chars')) ELSE v END, '');

-- ASCII-only upper case (`to_ascii_uppercase`).
CREATE OR REPLACE MACRO upper_ascii(s) AS
    translate(s, 'abcdefghijklmnopqrstuvwxyz', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ');

-- normalize(): NFKC (approximated), separators removed, ASCII upper case.
-- translate() maps the first list and deletes the characters of the
-- second, which have no counterpart.
-- translate() is slow on long character lists, so keys that are already
-- digits and capital letters (nearly all) skip it.
CREATE OR REPLACE MACRO key_norm(raw) AS (
    CASE WHEN regexp_matches(raw, '[^0-9A-Z]')
         THEN translate(translate(raw, getvariable('nfkc_from'), getvariable('nfkc_to')),
                        'abcdefghijklmnopqrstuvwxyz' || getvariable('key_separators'),
                        'ABCDEFGHIJKLMNOPQRSTUVWXYZ')
         ELSE raw END);

-- Value of character i of a code: its position in the USCC character set
-- (GB 32100) or in 0-9A-Z (GB 11714), less one. The weighted sums are
-- written out term by term: DuckDB evaluates plain arithmetic vectorized,
-- where a lambda over a list costs a list per row.
CREATE OR REPLACE MACRO uscc_value(n, i) AS strpos(getvariable('uscc_charset'), substr(n, i, 1)) - 1;
CREATE OR REPLACE MACRO org_value(b, i) AS strpos('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ', substr(b, i, 1)) - 1;

-- GB 11714 organization-code check character of an 8-character body:
-- weights 3 7 9 10 5 8 4 2; d = 11 - sum mod 11, written 1-9, X (10), 0 (11).
CREATE OR REPLACE MACRO org_check_char(b) AS substr('123456789X0',
    11 - (org_value(b, 1) * 3 + org_value(b, 2) * 7 + org_value(b, 3) * 9 + org_value(b, 4) * 10
          + org_value(b, 5) * 5 + org_value(b, 6) * 8 + org_value(b, 7) * 4 + org_value(b, 8) * 2) % 11, 1);

-- GB 32100 mod-31 check character of the first 17 characters, weights
-- 3^(i-1) mod 31 = 1 3 9 27 19 26 16 17 20 29 25 13 8 24 10 30 28.
CREATE OR REPLACE MACRO mod31_char(n) AS substr(getvariable('uscc_charset'),
    (31 - (uscc_value(n, 1) + uscc_value(n, 2) * 3 + uscc_value(n, 3) * 9 + uscc_value(n, 4) * 27
           + uscc_value(n, 5) * 19 + uscc_value(n, 6) * 26 + uscc_value(n, 7) * 16 + uscc_value(n, 8) * 17
           + uscc_value(n, 9) * 20 + uscc_value(n, 10) * 29 + uscc_value(n, 11) * 25 + uscc_value(n, 12) * 13
           + uscc_value(n, 13) * 8 + uscc_value(n, 14) * 24 + uscc_value(n, 15) * 10 + uscc_value(n, 16) * 30
           + uscc_value(n, 17) * 28) % 31) % 31 + 1, 1);

-- An 18-character normalized key passing every check of Uscc::parse.
CREATE OR REPLACE MACRO uscc_ok(n) AS
    regexp_full_match(n, '[0-9A-HJ-NP-RTUW-Y]{2}[0-9]{6}[0-9A-HJ-NP-RTUW-Y]{10}')
    AND substr(n, 18, 1) = mod31_char(n)
    AND substr(n, 17, 1) = org_check_char(substr(n, 9, 8));

-- Class of an 18-character key, in the order Uscc::parse checks: character
-- set (then the I/O/Z/S/V repair, a suggestion), division digits, mod 31,
-- embedded organization code.
CREATE OR REPLACE MACRO uscc18_class(n) AS (
    CASE
        WHEN NOT regexp_full_match(n, '[0-9A-HJ-NP-RTUW-Y]{18}') THEN
            CASE WHEN uscc_ok(translate(n, 'OIZSV', '0125U')) THEN 'repaired' ELSE 'bad_checksum' END
        WHEN NOT regexp_full_match(substr(n, 3, 6), '[0-9]{6}') THEN 'bad_checksum'
        WHEN substr(n, 18, 1) <> mod31_char(n) THEN 'bad_checksum'
        WHEN substr(n, 17, 1) <> org_check_char(substr(n, 9, 8)) THEN 'bad_org_code_checksum'
        ELSE 'valid'
    END);

-- ISO 7064 MOD 11,10 check of a 15-digit registration number; the list
-- starts with 10, the initial product, so list_reduce folds from it.
CREATE OR REPLACE MACRO reg_no_ok(n) AS
    ((11 - list_reduce([10] || list_transform(range(1, 15), lambda i: substr(n, i, 1)::INTEGER),
        lambda p, d: ((CASE WHEN (p + d) % 10 = 0 THEN 10 ELSE (p + d) % 10 END) * 2) % 11)) % 10)
    = substr(n, 15, 1)::INTEGER;

-- classify_normalized(): the class of a normalized key.
CREATE OR REPLACE MACRO uscc_class(n) AS (
    CASE
        WHEN n = '' THEN 'missing'
        WHEN NOT regexp_full_match(n, '[0-9A-Za-z]+') THEN 'name_only'
        WHEN length(n) = 18 THEN uscc18_class(n)
        WHEN length(n) = 9 THEN
            CASE WHEN substr(n, 9, 1) = org_check_char(substr(n, 1, 8))
                 THEN 'org_code_only' ELSE 'bad_org_code_checksum' END
        WHEN length(n) = 15 AND regexp_full_match(n, '[0-9]{15}') THEN
            CASE WHEN reg_no_ok(n) THEN 'reg_no_only' ELSE 'bad_checksum' END
        ELSE 'bad_checksum'
    END);

-- One step of the place-prefix loop: strip the first listed prefix that
-- matches, unless nothing would be left.
CREATE OR REPLACE MACRO strip_place_once(s) AS (
    CASE WHEN regexp_replace(s, getvariable('place_prefix_re'), '') <> ''
         THEN regexp_replace(s, getvariable('place_prefix_re'), '') ELSE s END);

-- normalize_name(): NFKC (approximated), white space removed, brackets
-- unified to ( ), ASCII upper case, stacked place prefixes stripped.
-- RE2 alternation is leftmost-first, so the repeated group strips prefixes
-- exactly as Rust's loop does; only when that would leave nothing (a name
-- that is only places) is the loop unrolled, to keep the last prefix.
-- Names with nothing to fold (nearly all) skip the slow translate().
CREATE OR REPLACE MACRO name_fold(raw) AS (
    CASE WHEN regexp_matches(raw, getvariable('name_fold_re'))
         THEN translate(translate(raw, getvariable('nfkc_from'), getvariable('nfkc_to')),
                        '[【〔〖（]】〕〗）abcdefghijklmnopqrstuvwxyz' || getvariable('name_removed'),
                        '((((()))))ABCDEFGHIJKLMNOPQRSTUVWXYZ')
         ELSE raw END);
CREATE OR REPLACE MACRO strip_places(s) AS (
    CASE WHEN regexp_replace(s, getvariable('place_prefixes_re'), '') <> ''
         THEN regexp_replace(s, getvariable('place_prefixes_re'), '')
         ELSE strip_place_once(strip_place_once(strip_place_once(strip_place_once(s)))) END);
CREATE OR REPLACE MACRO name_norm(raw) AS strip_places(name_fold(raw));
