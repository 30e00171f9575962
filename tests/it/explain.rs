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
    assert!(
        text.contains("hit OPS-09 [operations]") && text.contains("RED LINE"),
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
