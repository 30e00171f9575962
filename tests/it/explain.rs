//! `qinglian explain` answers for any organization of a scored run.

use crate::ingest::{generate, ingest};
use crate::support::{qinglian, root};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_names_every_hit_and_refuses_bad_codes_clearly() {
    let feeds = tempfile::tempdir().expect("tmp");
    let warehouse = tempfile::tempdir().expect("tmp");
    generate(feeds.path(), 80);
    let run = ingest(feeds.path(), warehouse.path()).await;
    assert!(run.scoring.is_some());
    let mut reader = csv::Reader::from_path(feeds.path().join("ground_truth.csv")).expect("truth");
    let truth: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    // An organization with a red-line situation (OPS-09: registration revoked).
    let revoked = truth
        .iter()
        .find(|r| &r[0] == "OPS-09")
        .expect("OPS-09 injected");
    let args = |uscc: &str, json: bool| {
        let mut a = vec![
            "explain".to_string(),
            uscc.to_string(),
            "--warehouse".into(),
            warehouse.path().to_string_lossy().into_owned(),
            "--project".into(),
            root().to_string_lossy().into_owned(),
        ];
        if json {
            a.push("--json".into());
        }
        a
    };
    let run_explain = |a: Vec<String>| {
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        qinglian(&refs, None)
    };
    let out = run_explain(args(&revoked[1], false));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("colour red"), "{text}");
    // Dimensions in Chinese, scores rounded for people.
    assert!(text.contains("dimensions: 组织体系 "), "{text}");
    assert!(!text.contains(".666") && !text.contains(".333"), "{text}");
    assert!(
        text.contains("hit OPS-09 [运行管理] 被撤销登记或吊销登记证书:")
            && text.contains("RED LINE"),
        "{text}"
    );

    let out = run_explain(args(&revoked[1], true));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["profile"]["uscc"], revoked[1].to_string());
    let hit = &json["hits"][0];
    for key in [
        "rule_id",
        "title",
        "dimension",
        "points",
        "red_line",
        "source_feed",
        "source_record_id",
        "event_date",
        "detail",
        "confidence",
    ] {
        assert!(hit.get(key).is_some(), "{key} in {hit}");
    }

    // A dirty form is normalized and says so; an invalid code is refused.
    let out = run_explain(args(&format!(" {} ", revoked[1].to_lowercase()), false));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("(read "));
    let out = run_explain(args("53330000501874064X", false));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("is not a valid USCC (bad_checksum): check character is 'X', expected 'B'")
    );
    let out = run_explain(args("53330000501874064B", false));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a registered organization"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_listing_changes_a_colour_and_the_change_says_why() {
    use chrono::NaiveDate;
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::prelude::{ParquetReadOptions, SessionContext};

    let feeds = tempfile::tempdir().expect("tmp");
    let warehouse = tempfile::tempdir().expect("tmp");
    generate(feeds.path(), 80);
    let day1 = NaiveDate::from_ymd_opt(2026, 11, 27).expect("date");
    let first = crate::ingest::ingest_on(feeds.path(), warehouse.path(), day1).await;
    let s1 = first.scoring.clone().expect("scored");
    let ctx = SessionContext::new();
    let profiles = ctx
        .read_parquet(
            warehouse
                .path()
                .join(&s1.outputs["profiles"])
                .to_str()
                .expect("utf-8"),
            ParquetReadOptions::default(),
        )
        .await
        .expect("read")
        .collect()
        .await
        .expect("collect");
    // A green organization goes on the serious violation list.
    let mut green = None;
    for b in &profiles {
        let uscc = datafusion::arrow::compute::cast(
            b.column(0),
            &datafusion::arrow::datatypes::DataType::Utf8,
        )
        .expect("cast");
        let colour = datafusion::arrow::compute::cast(
            b.column_by_name("colour").expect("colour"),
            &datafusion::arrow::datatypes::DataType::Utf8,
        )
        .expect("cast");
        let (uscc, colour) = (uscc.as_string::<i32>(), colour.as_string::<i32>());
        for r in 0..b.num_rows() {
            if !colour.is_null(r) && colour.value(r) == "green" && green.is_none() {
                green = Some(uscc.value(r).to_string());
            }
        }
    }
    let green = green.expect("a green organization");
    let credit = feeds.path().join("credit/credit.csv");
    let mut text = std::fs::read_to_string(&credit).expect("credit");
    text += &format!(
        "YZTEST1,严重违法失信名单,{green},某组织,被列入活动异常名录满2年,杭民失〔2026〕99号,2026-11-28 00:00:00,,,,,杭州市民政局,信用浙江\n"
    );
    std::fs::write(&credit, text).expect("append");
    let second = crate::ingest::ingest(feeds.path(), warehouse.path()).await;
    let s2 = second.scoring.clone().expect("scored");
    assert_eq!(s2.changes, 1, "{s2:#?}");
    let changes = ctx
        .read_parquet(
            warehouse
                .path()
                .join(&s2.outputs["changes"])
                .to_str()
                .expect("utf-8"),
            ParquetReadOptions::default(),
        )
        .await
        .expect("read")
        .collect()
        .await
        .expect("collect");
    let table = datafusion::arrow::util::pretty::pretty_format_batches(&changes)
        .expect("format")
        .to_string();
    assert!(
        table.contains(&green)
            && table.contains("| green ")
            && table.contains("| red ")
            && table.contains("INS-06"),
        "{table}"
    );
    // Codes carry the colour and no internals.
    let codes_schema = qinglian::score::codes_schema();
    assert!(codes_schema.field_with_name("points").is_err());
    assert!(warehouse.path().join(&s2.outputs["codes"]).exists());
}
