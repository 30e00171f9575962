//! Hostile values through a real mapping: amounts, dates and numbers out
//! of their column's range are a `bad_value` quarantine of their row,
//! never a failed feed and never a silently different value.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Date32Type, Decimal128Type, TimeUnit};
use proptest::prelude::*;
use qinglian::project::{ColumnMapping, ColumnSpec, FeedSchema, Project, Source};
use qinglian::source::{RawBatch, RawRow};
use qinglian::validate::{Mapped, Mapper, Reason};

const KEY: &str = "53330000501874064B";

fn project() -> &'static Project {
    static P: OnceLock<Project> = OnceLock::new();
    P.get_or_init(|| Project::load(&crate::support::root()).expect("project"))
}

fn column(name: &str, data_type: DataType, nullable: bool) -> ColumnSpec {
    ColumnSpec {
        name: name.to_string(),
        data_type,
        nullable,
        domain: None,
        description: String::new(),
        negative: false,
        dates: (
            qinglian::project::DEFAULT_EARLIEST,
            qinglian::project::DEFAULT_LATEST,
        ),
    }
}

/// A mapper for one feed whose columns each read the raw field of the
/// same name, `scale` times (10,000 for 万元).
fn mapper(columns: &[ColumnSpec], scale: i64) -> Mapper {
    let mut source: Source = project().sources["annual_reports"].clone();
    source.key_fields = vec!["key".into()];
    source.name_field = None;
    source.record_id = vec!["id".into()];
    source.columns = columns
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                ColumnMapping::Field {
                    field: c.name.clone(),
                    scale,
                    labels: None,
                    hash: false,
                },
            )
        })
        .collect::<BTreeMap<_, _>>();
    let schema = FeedSchema {
        feed: "t".into(),
        version: 1,
        description: String::new(),
        key: "uscc".into(),
        columns: columns.to_vec(),
    };
    let mut fields = vec!["key".to_string(), "id".to_string()];
    fields.extend(columns.iter().map(|c| c.name.clone()));
    Mapper::new(
        &source,
        &schema,
        fields,
        None,
        0,
        Arc::new(qinglian::keys::RegistryCodes::default()),
    )
    .expect("mapper")
}

/// Maps one row per value, each value in every column.
fn map(mapper: &Mapper, columns: usize, values: &[&str]) -> Mapped {
    let rows = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut values = vec![Some(KEY.to_string()), Some(format!("r{i}"))];
            values.extend((0..columns).map(|_| Some(v.to_string())));
            RawRow {
                position: format!("x.csv:{}", i + 2),
                values,
                original: (*v).to_string(),
                malformed: None,
            }
        })
        .collect();
    let batch = RawBatch {
        fields: Vec::new(),
        rows,
    };
    let mapped = mapper
        .map(&batch)
        .expect("a bad value never fails the feed");
    assert_eq!(
        mapped.accepted.len() + mapped.quarantined.len(),
        values.len()
    );
    assert_eq!(mapped.batch.num_rows(), mapped.accepted.len());
    mapped
}

/// The single row's outcome: its reason code or "landed".
fn outcome(mapper: &Mapper, value: &str) -> String {
    let mapped = map(mapper, 1, &[value]);
    match mapped.quarantined.first() {
        Some(q) => format!("{} {}: {}", q.reason.code(), q.field, q.message),
        None => "landed".into(),
    }
}

fn numeric_types() -> Vec<DataType> {
    vec![
        DataType::Int32,
        DataType::Int64,
        DataType::Float64,
        DataType::Decimal128(18, 2),
        DataType::Decimal128(38, 2),
        DataType::Decimal128(38, 0),
        DataType::Date32,
        DataType::Timestamp(TimeUnit::Millisecond, Some(Arc::from("UTC"))),
    ]
}

/// Text shaped like numbers, dates and their hostile variants.
fn number_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,24}",
        "[-+]?[0-9０-９,，.．]{0,42}",
        "[-+]?[0-9]{1,40}(\\.[0-9]{0,40})?",
        "[-+]?[0-9]{1,20}[eE][-+]?[0-9]{1,4}",
        "(-?[0-9]{1,6})-[0-9]{2}-[0-9]{2}( 00:00:00)?",
        "[0-9]{10,13}",
        prop::sample::select(vec![
            "NaN".to_string(),
            "inf".into(),
            "-inf".into(),
            "1e309".into(),
            "3000000000".into(),
            "-2147483649".into(),
            "9223372036854775808".into(),
            "0000-01-01".into(),
            "-0001-12-31".into(),
            "+275760-09-13".into(),
            "9999999999999".into(),
        ]),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    /// Any text into every numeric and date column type, as is and in
    /// 万元: the batch maps, each row lands or is quarantined as a bad
    /// value naming its column, and what lands is in range.
    #[test]
    fn any_text_in_any_typed_column_lands_or_is_quarantined(
        texts in proptest::collection::vec(number_like(), 1..8),
        scale in prop::sample::select(vec![1i64, 10_000]),
    ) {
        for data_type in numeric_types() {
            let columns = [column("v", data_type.clone(), true)];
            let m = mapper(&columns, scale);
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let mapped = map(&m, 1, &refs);
            for q in &mapped.quarantined {
                prop_assert!(
                    matches!(q.reason, Reason::BadValue) && q.field == "v",
                    "{data_type}: {q:?}"
                );
            }
            let landed = mapped.batch.column_by_name("v").expect("v");
            match &data_type {
                DataType::Date32 => {
                    for d in landed.as_primitive::<Date32Type>().iter().flatten() {
                        // 1900-01-01 is day -25567, 2099-12-31 day 47481.
                        prop_assert!((-25567..=47481).contains(&d), "{data_type}: day {d}");
                    }
                }
                DataType::Decimal128(..) => {
                    for v in landed.as_primitive::<Decimal128Type>().iter().flatten() {
                        prop_assert!(v >= 0, "{data_type}: {v}");
                    }
                }
                _ => {}
            }
        }
    }

    /// Thousands separators are accepted exactly where they group
    /// thousands, in ASCII and full width.
    #[test]
    fn commas_only_between_groups_of_three(int in 0u64..10_000_000_000, cut in 1usize..4) {
        let digits = int.to_string();
        let grouped: Vec<String> = {
            let mut groups = Vec::new();
            let mut rest = digits.as_str();
            while rest.len() > 3 {
                let (head, tail) = rest.split_at(rest.len() - 3);
                groups.push(tail.to_string());
                rest = head;
            }
            groups.push(rest.to_string());
            groups.reverse();
            groups
        };
        let m = mapper(&[column("v", DataType::Decimal128(18, 2), true)], 1);
        let good = grouped.join(",");
        prop_assert_eq!(outcome(&m, &good), "landed");
        prop_assert_eq!(outcome(&m, &good.replace(',', "，")), "landed");
        // Moving one comma off its place is refused.
        if digits.len() > cut {
            let bad = format!("{},{}", &digits[..cut], &digits[cut..]);
            let groups_ok = (digits.len() - cut) % 3 == 0 && cut <= 3;
            if !groups_ok {
                prop_assert!(outcome(&m, &bad).starts_with("bad_value v:"), "{}", bad);
            }
        }
    }
}

#[test]
fn amounts_in_wan_yuan_keep_their_meaning() {
    let m = mapper(
        &[column("amount", DataType::Decimal128(18, 2), true)],
        10_000,
    );
    let value = |text: &str| {
        let mapped = map(&m, 1, &[text]);
        if let Some(q) = mapped.quarantined.first() {
            return Err(format!("{}: {}", q.reason.code(), q.message));
        }
        let a = mapped.batch.column_by_name("amount").expect("amount");
        Ok(a.as_primitive::<Decimal128Type>().value(0))
    };
    // In cents: 1,500 万元 is 15,000,000.00 yuan.
    assert_eq!(value("1,500"), Ok(1_500_000_000));
    assert_eq!(value("12,345.67"), Ok(12_345_670_000));
    assert_eq!(value("１，５００．５"), Ok(1_500_500_000));
    assert_eq!(value("1.5"), Ok(1_500_000));
    for refused in [
        "1,5", "1,50,000", ",5", "1,,500", "1500,", "1.500,5", "1 500", "-5", "－5", "−0.5",
    ] {
        let got = value(refused);
        assert!(
            got.as_ref()
                .is_err_and(|e| e.starts_with("bad_value: feed annual_reports: x.csv:2: amount:")),
            "{refused:?}: {got:?}"
        );
    }
    assert!(
        value("-5").is_err_and(|e| e.contains("amount takes no negative values")),
        "the message says why"
    );
    assert_eq!(value("-0.00"), Ok(0));
    let mut net = column("net", DataType::Decimal128(18, 2), true);
    net.negative = true;
    let m = mapper(&[net], 10_000);
    let mapped = map(&m, 1, &["-1,234.5"]);
    assert!(mapped.quarantined.is_empty(), "{:?}", mapped.quarantined);
    let a = mapped.batch.column_by_name("net").expect("net");
    assert_eq!(a.as_primitive::<Decimal128Type>().value(0), -1_234_500_000);
}

#[test]
fn whole_numbers_out_of_their_type_are_bad_values() {
    let m = mapper(&[column("year", DataType::Int32, false)], 1);
    let mapped = map(&m, 1, &["2025", "3000000000", "-1", "２０２４", "1e3"]);
    let reasons: Vec<String> = mapped
        .quarantined
        .iter()
        .map(|q| format!("{} {} {}", q.position, q.reason.code(), q.field))
        .collect();
    assert_eq!(
        reasons,
        [
            "x.csv:3 bad_value year",
            "x.csv:4 bad_value year",
            "x.csv:6 bad_value year"
        ]
    );
    assert!(
        mapped.quarantined[0]
            .message
            .contains("expected a whole number from -2147483648 to 2147483647"),
        "{}",
        mapped.quarantined[0].message
    );
    let m = mapper(&[column("score", DataType::Float64, true)], 10_000);
    assert!(outcome(&m, "1e305").starts_with("bad_value score:"));
    assert!(outcome(&m, "NaN").starts_with("bad_value score:"));
    assert_eq!(outcome(&m, "-0"), "landed");
}

#[test]
fn dates_out_of_range_are_bad_values_and_1900_01_01_is_no_date() {
    let nullable = mapper(&[column("on", DataType::Date32, true)], 1);
    for bad in [
        "0000-01-01",
        "-0001-06-01",
        "0001-01-01",
        "1899-12-31",
        "2100-01-01",
        "9999-12-31",
        "99991231",
        "9999999999999",
        "+12345-01-01",
        "0000年01月01日",
    ] {
        let got = outcome(&nullable, bad);
        assert!(got.starts_with("bad_value on:"), "{bad:?}: {got}");
    }
    let got = outcome(&nullable, "0000-01-01");
    assert!(
        got.contains("expected a date from 1900-01-01 to 2099-12-31 for on"),
        "{got}"
    );
    for fine in ["1900-01-02", "2099-12-31", "1949-10-01", "1574006400000"] {
        assert_eq!(outcome(&nullable, fine), "landed", "{fine}");
    }
    // The placeholder: no date where the column may be empty …
    for placeholder in [
        "1900-01-01",
        "1900年01月01日",
        "1900-01-01 00:00:00",
        "19000101",
    ] {
        let mapped = map(&nullable, 1, &[placeholder]);
        assert!(mapped.quarantined.is_empty(), "{placeholder}");
        let on = mapped.batch.column_by_name("on").expect("on");
        assert!(on.is_null(0), "{placeholder} lands as NULL");
    }
    // … and a missing value where it may not.
    let required = mapper(&[column("on", DataType::Date32, false)], 1);
    let got = outcome(&required, "1900-01-01");
    assert!(
        got.starts_with("missing_value on:") && got.contains("placeholder for no date"),
        "{got}"
    );
    // A column may widen its range.
    let mut old = column("on", DataType::Date32, true);
    old.dates.0 = chrono::NaiveDate::from_ymd_opt(1800, 1, 1).expect("date");
    assert_eq!(outcome(&mapper(&[old], 1), "1850-05-01"), "landed");
    let ts = mapper(
        &[column(
            "at",
            DataType::Timestamp(TimeUnit::Millisecond, Some(Arc::from("UTC"))),
            true,
        )],
        1,
    );
    assert!(outcome(&ts, "0000-01-01T00:00:00Z").starts_with("bad_value at:"));
    assert!(outcome(&ts, "9999999999999").starts_with("bad_value at:"));
    assert_eq!(outcome(&ts, "2026-11-28T10:00:00+08:00"), "landed");
}

#[test]
fn identity_numbers_hash_the_same_through_invisible_and_full_width_forms() {
    use qinglian::validate::person_hash;
    let key = b"k";
    let clean = person_hash(key, "33010619800101001X");
    for dirty in [
        " 33010619800101001x ",
        "330106\u{200b}19800101001X",
        "\u{feff}33010619800101001X\u{2060}",
        "３３０１０６１９８００１０１００１Ｘ",
        "330106 19800101 001X",
    ] {
        assert_eq!(person_hash(key, dirty), clean, "{dirty:?}");
    }
    assert_ne!(person_hash(key, "33010619800101002X"), clean);
}

/// Record ids come from normalized keys, and an identity number never
/// stands in `source_record_id` in clear.
#[test]
fn record_ids_are_built_from_normalized_keys_and_never_carry_an_identity_number() {
    let mut source: Source = project().sources["annual_reports"].clone();
    source.key_fields = vec!["key".into()];
    source.name_field = None;
    source.record_id = vec!["key".into(), "id".into()];
    source.columns = BTreeMap::new();
    let schema = FeedSchema {
        feed: "t".into(),
        version: 1,
        description: String::new(),
        key: "uscc".into(),
        columns: Vec::new(),
    };
    let mapper = Mapper::new(
        &source,
        &schema,
        vec!["key".into(), "id".into()],
        Some(b"record-id-key".to_vec()),
        0,
        Arc::new(qinglian::keys::RegistryCodes::default()),
    )
    .expect("mapper");
    // The same code plain, full-width and with a zero-width space; an id
    // that is a resident identity number (check character computed by the
    // GB 11643 weights: 11010519491231002X).
    let full_width: String = KEY
        .chars()
        .map(|c| char::from_u32(c as u32 + 0xFEE0).unwrap_or(c))
        .collect();
    let rows: Vec<(String, &str)> = vec![
        (KEY.to_string(), "A-1"),
        (full_width, "A-1"),
        ("5333\u{200B}0000501874064B".to_string(), "A-1"),
        (KEY.to_string(), "11010519491231002X"),
        // Inside an id, and one miskeyed digit off its check character.
        (KEY.to_string(), "RY11010519491231002X"),
        (KEY.to_string(), "110105194912310021"),
    ];
    let batch = RawBatch {
        fields: Vec::new(),
        rows: rows
            .iter()
            .enumerate()
            .map(|(i, (k, id))| RawRow {
                position: format!("x.csv:{}", i + 2),
                values: vec![Some(k.clone()), Some(id.to_string())],
                original: String::new(),
                malformed: None,
            })
            .collect(),
    };
    let mapped = mapper.map(&batch).expect("maps");
    assert!(mapped.quarantined.is_empty(), "{:?}", mapped.quarantined);
    let ids = mapped
        .batch
        .column_by_name("source_record_id")
        .expect("column")
        .as_string::<i32>()
        .clone();
    let ids: Vec<String> = (0..ids.len()).map(|i| ids.value(i).to_string()).collect();
    assert_eq!(ids[0], format!("{KEY}|A-1"));
    assert_eq!(ids[1], ids[0], "full-width form: one record");
    assert_eq!(ids[2], ids[0], "invisible character: one record");
    assert!(!ids[3].contains("11010519491231002X"), "{}", ids[3]);
    let hash = |n: &str| qinglian::validate::person_hash(b"record-id-key", n);
    assert_eq!(ids[3], format!("{KEY}|{}", hash("11010519491231002X")));
    assert_eq!(ids[4], format!("{KEY}|RY{}", hash("11010519491231002X")));
    assert_eq!(ids[5], format!("{KEY}|{}", hash("110105194912310021")));
}

/// A `sql` mapping reads the raw fields as a field mapping does: a padded
/// `2 ` (a fixed-width export) is `2`, so `lpad` restores the dropped zero,
/// and an empty field is NULL, so `COALESCE` passes over it. Before, the
/// expression saw `2 `, gave `2 ` and the row was a `bad_enum`.
#[test]
fn sql_mappings_read_fields_without_their_padding() {
    let mut code = column("result_code", DataType::Utf8, false);
    code.domain = Some(vec!["01".into(), "02".into(), "09".into()]);
    let pick = column("pick", DataType::Utf8, true);
    let mut source: Source = project().sources["inspection"].clone();
    source.key_fields = vec!["key".into()];
    source.name_field = None;
    source.record_id = vec!["id".into()];
    let sql = |e: &str| ColumnMapping::Sql {
        sql: e.into(),
        scale: 1,
        labels: None,
        hash: false,
    };
    source.columns = BTreeMap::from([
        ("result_code".to_string(), sql("lpad(\"v\", 2, '0')")),
        ("pick".to_string(), sql("COALESCE(\"a\", \"b\")")),
    ]);
    let schema = FeedSchema {
        feed: "t".into(),
        version: 1,
        description: String::new(),
        key: "uscc".into(),
        columns: vec![code, pick],
    };
    let fields: Vec<String> = ["key", "id", "v", "a", "b"].map(String::from).into();
    let mapper = Mapper::new(
        &source,
        &schema,
        fields,
        None,
        0,
        Arc::new(qinglian::keys::RegistryCodes::default()),
    )
    .expect("mapper");
    let rows: Vec<RawRow> = [("2 ", " ", "乙"), (" 9", "甲 ", "乙"), ("1", "", "")]
        .iter()
        .enumerate()
        .map(|(i, (v, a, b))| RawRow {
            position: format!("x.ndjson:{}", i + 1),
            values: [KEY, &format!("r{i}"), v, a, b]
                .iter()
                .map(|s| Some(s.to_string()))
                .collect(),
            original: String::new(),
            malformed: None,
        })
        .collect();
    let mapped = mapper
        .map(&RawBatch {
            fields: Vec::new(),
            rows,
        })
        .expect("mapped");
    let reasons: Vec<String> = mapped
        .quarantined
        .iter()
        .map(|q| format!("{} {}", q.reason.code(), q.message))
        .collect();
    assert!(reasons.is_empty(), "{reasons:?}");
    let text = |name: &str| -> Vec<Option<String>> {
        let a = mapped.batch.column_by_name(name).expect(name);
        let a = a.as_string::<i32>();
        (0..a.len())
            .map(|i| (!a.is_null(i)).then(|| a.value(i).to_string()))
            .collect()
    };
    assert_eq!(
        text("result_code"),
        [Some("02".into()), Some("09".into()), Some("01".into())]
    );
    assert_eq!(
        text("pick"),
        [Some("乙".to_string()), Some("甲".into()), None]
    );
}
