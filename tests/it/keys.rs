//! The key library against the GB rules: shared vectors, properties, SQL.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::prelude::SessionContext;
use proptest::prelude::*;
use qinglian::keys::{self, CHARSET, KeyClass, classify, normalize};

use crate::support::{fixtures, reference_check, reference_valid};

fn vectors() -> serde_json::Value {
    let text = std::fs::read_to_string(fixtures().join("uscc_vectors.json")).expect("vectors");
    serde_json::from_str(&text).expect("vectors are JSON")
}

fn list<'a>(v: &'a serde_json::Value, key: &str) -> Vec<&'a str> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("vector list {key}"))
        .iter()
        .map(|x| x.as_str().expect("string"))
        .collect()
}

#[test]
fn shared_vectors_classify_as_the_standard_says() {
    let v = vectors();
    for key in [
        "valid_social_org",
        "valid_other",
        "valid_synthetic_hangzhou",
    ] {
        for code in list(&v, key) {
            let check = classify(code);
            assert_eq!(
                check.class,
                KeyClass::Valid,
                "{key}: {code}: {:?}",
                check.reason
            );
            assert_eq!(check.normalized, code);
        }
    }
    for code in list(&v, "invalid") {
        let check = classify(code);
        assert!(
            matches!(
                check.class,
                KeyClass::BadChecksum | KeyClass::BadOrgCodeChecksum
            ),
            "{code}: {:?}",
            check.class
        );
        assert!(check.reason.is_some(), "{code} has a reason");
    }
    for dirty in list(&v, "dirty_normalize_to_53330000501874064B") {
        let check = classify(dirty);
        assert_eq!(check.class, KeyClass::Valid, "{dirty:?}");
        assert_eq!(check.normalized, "53330000501874064B");
    }
    for code in list(&v, "mod31_valid_org_code_invalid") {
        assert_eq!(classify(code).class, KeyClass::BadOrgCodeChecksum, "{code}");
    }
    for n in list(&v, "reg_no_15_valid") {
        assert_eq!(classify(n).class, KeyClass::RegNoOnly, "{n}");
    }
    for n in list(&v, "reg_no_15_invalid") {
        assert_eq!(classify(n).class, KeyClass::BadChecksum, "{n}");
    }
}

#[test]
fn decoding_names_authority_type_and_division() {
    let d = keys::decode("53330000501874064B");
    assert_eq!(d.authority, Some("民政"));
    assert_eq!(d.org_type, Some("基金会"));
    assert_eq!(d.division, Some("浙江省"));
    let d = keys::decode("121200004013590816");
    assert_eq!(d.authority, Some("机构编制"));
    assert_eq!(d.org_type, Some("事业单位"));
    assert!(d.warnings.is_empty());
}

/// 16 leading characters of a code: authority and type from the set, a
/// six-digit division, eight body characters.
fn first16() -> impl Strategy<Value = String> {
    let set: Vec<char> = CHARSET.iter().map(|b| char::from(*b)).collect();
    (
        proptest::sample::select(set.clone()),
        proptest::sample::select(set.clone()),
        "[0-9]{6}",
        proptest::collection::vec(proptest::sample::select(set), 8),
    )
        .prop_map(|(a, t, div, body)| {
            format!("{a}{t}{div}{}", body.into_iter().collect::<String>())
        })
}

fn valid_code() -> impl Strategy<Value = String> {
    first16().prop_filter_map("both checks defined", |s| reference_check(&s))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn valid_codes_round_trip(code in valid_code()) {
        let check = classify(&code);
        prop_assert_eq!(check.class, KeyClass::Valid);
        prop_assert_eq!(&check.normalized, &code);
        prop_assert_eq!(check.uscc().map(|u| u.to_string()), Some(code.clone()));
        let lower = code.to_ascii_lowercase();
        let spaced = format!(" {} {} ", &code[..9], &code[9..]);
        prop_assert_eq!(classify(&lower).normalized, code.clone());
        prop_assert_eq!(classify(&spaced).normalized, code);
    }

    #[test]
    fn every_single_substitution_is_rejected(code in valid_code(), pos in 0usize..18) {
        let original = code.as_bytes()[pos];
        for &c in CHARSET.iter().filter(|c| **c != original) {
            if (2..8).contains(&pos) && !c.is_ascii_digit() {
                continue; // not a division code at all
            }
            let mut bytes = code.clone().into_bytes();
            bytes[pos] = c;
            let mutated = String::from_utf8(bytes).expect("ascii");
            prop_assert_ne!(classify(&mutated).class, KeyClass::Valid, "{} -> {}", code, mutated);
        }
    }

    #[test]
    fn every_adjacent_transposition_is_rejected(code in valid_code(), pos in 0usize..17) {
        let b = code.as_bytes();
        prop_assume!(b[pos] != b[pos + 1]);
        let mut bytes = b.to_vec();
        bytes.swap(pos, pos + 1);
        let mutated = String::from_utf8(bytes).expect("ascii");
        prop_assert_ne!(classify(&mutated).class, KeyClass::Valid, "{} -> {}", code, mutated);
    }

    #[test]
    fn normalize_is_idempotent(raw in "\\PC{0,24}") {
        let once = normalize(&raw);
        prop_assert_eq!(normalize(&once), once.clone());
        // Classification depends only on the normalized form.
        prop_assert_eq!(classify(&raw).class, classify(&once).class);
    }

    #[test]
    fn classification_agrees_with_the_reference(raw in "[0-9A-Z]{18}") {
        let valid = classify(&raw).class == KeyClass::Valid;
        prop_assert_eq!(valid, reference_valid(&raw), "{}", raw);
    }
}

#[tokio::test]
async fn sql_functions_classify_whole_columns_like_rust() {
    let inputs = [
        Some("53330000501874064B"),
        Some(" 53330000 501874064b "),
        Some("91350100M000100Y4Z"),
        Some("50187406-4"),
        Some("杭州市西湖区阳光公益服务中心"),
        Some("5333OOOO5O1874O64B"),
        None,
    ];
    let table = udf_table(
        &inputs,
        "SELECT uscc_class(k) AS class, uscc_of(k) AS uscc, uscc_org_code(k) AS org FROM t",
    )
    .await;
    let expected = "\
+---------------+--------------------+-----------+
| class         | uscc               | org       |
+---------------+--------------------+-----------+
| valid         | 53330000501874064B | 501874064 |
| valid         | 53330000501874064B | 501874064 |
| bad_checksum  |                    |           |
| org_code_only |                    | 501874064 |
| name_only     |                    |           |
| repaired      |                    |           |
|               |                    |           |
+---------------+--------------------+-----------+";
    assert_eq!(table, expected);
}

/// Characters that cannot be seen: any format character (Cf, from the
/// regex engine's own Unicode tables) and the other default-ignorables and
/// space-likes we promise to drop.
fn invisible() -> impl Strategy<Value = char> {
    prop_oneof![
        "\\p{Cf}".prop_map(|s| s.chars().next().unwrap_or('\u{200b}')),
        proptest::sample::select(vec![
            '\u{34f}',
            '\u{115f}',
            '\u{3164}',
            '\u{fe0f}',
            '\u{ffa0}',
            '\u{e0100}',
            '\u{a0}',
            '\u{3000}',
            '\u{2007}',
            '\u{202f}',
        ]),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// A USCC with invisible characters anywhere is the USCC: in Rust, in
    /// the SQL functions, and `uscc check` says what it removed.
    #[test]
    fn invisible_characters_anywhere_leave_a_valid_code(
        code in valid_code(),
        inserts in proptest::collection::vec((0usize..=18, invisible()), 1..4),
    ) {
        let mut chars: Vec<char> = code.chars().collect();
        for (at, c) in &inserts {
            chars.insert((*at).min(chars.len()), *c);
        }
        let dirty: String = chars.into_iter().collect();
        let check = classify(&dirty);
        prop_assert_eq!(check.class, KeyClass::Valid, "{:?}: {:?}", dirty, check.reason);
        prop_assert_eq!(&check.normalized, &code);
        prop_assert_eq!(keys::normalize_name(&dirty), code);
    }
}

#[tokio::test]
async fn sql_functions_drop_invisible_characters_like_rust() {
    let inputs = [
        "5333\u{2060}0000501874064B",
        "53330000\u{200d}501874064B",
        "\u{202e}53330000501874064B\u{202c}",
        "5333\u{ad}0000501874064B",
        "5333\u{3000}0000\u{a0}501874064B",
    ];
    let table = udf_table(
        &inputs.map(Some),
        "SELECT uscc_normalize(k) AS n, uscc_class(k) AS class FROM t",
    )
    .await;
    let row = "| 53330000501874064B | valid |";
    assert_eq!(table.matches(row).count(), inputs.len(), "{table}");
}

/// The key functions over `inputs` as a column `k` of table `t`: `sql`'s
/// result as a printed table.
async fn udf_table(inputs: &[Option<&str>], sql: &str) -> String {
    let array: ArrayRef = Arc::new(StringArray::from(inputs.to_vec()));
    let batch = RecordBatch::try_from_iter([("k", array)]).expect("batch");
    let ctx = SessionContext::new();
    keys::udf::register(&ctx);
    ctx.register_batch("t", batch).expect("register");
    let batches = ctx
        .sql(sql)
        .await
        .expect("plan")
        .collect()
        .await
        .expect("run");
    pretty_format_batches(&batches).expect("format").to_string()
}
