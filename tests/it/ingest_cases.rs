//! Golden ingest cases: each folder under `tests/fixtures/ingest/` holds
//! `feeds/<feed>/…` files, `FEEDS` (the feeds to run, registry first) and
//! `expected.txt`: the run's per-feed reconciliation and every quarantined
//! row with its position, field, reason code and message (and, for the
//! feeds an optional `SHOW_LANDED` lists, every landed row's key, key
//! class and resolved USCC); an optional
//! `project/` is laid over the shipped project (a source's own guards). A
//! new case is a
//! new folder; `QINGLIAN_BLESS=1` rewrites `expected.txt` for review.

use crate::ingest::date;
use crate::support::{fixtures, read_parquet, strings};

async fn quarantine_lines(warehouse: &std::path::Path, feed: &str, run_id: &str) -> Vec<String> {
    let path = warehouse.join(qinglian::layout::quarantine_file(feed, date(), run_id));
    if !path.exists() {
        return Vec::new();
    }
    let batches = read_parquet(&path).await;
    let (pos, field, reason, message) = (
        strings(&batches, "position"),
        strings(&batches, "field"),
        strings(&batches, "reason_code"),
        strings(&batches, "message"),
    );
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let mut lines = Vec::new();
    for i in 0..pos.len() {
        lines.push(format!(
            "quarantine {} | {} | {} | {}",
            text(&pos[i]),
            text(&field[i]),
            text(&reason[i]),
            text(&message[i])
        ));
    }
    lines
}

async fn landed_lines(warehouse: &std::path::Path, feed: &str, run_id: &str) -> Vec<String> {
    let path = warehouse.join(qinglian::layout::landed_data(feed, date(), run_id));
    let batches = read_parquet(&path).await;
    let column = |name: &str| strings(&batches, name);
    let (ids, uscc, raw, class, name) = (
        column("source_record_id"),
        column("uscc"),
        column("uscc_raw"),
        column("key_class"),
        column("subject_name"),
    );
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    (0..ids.len())
        .map(|i| {
            format!(
                "landed {} | key {} | {} | uscc {} | name {}",
                text(&ids[i]),
                text(&raw[i]),
                text(&class[i]),
                text(&uscc[i]),
                text(&name[i])
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_ingest_case_yields_its_expected_output() {
    let dir = fixtures().join("ingest");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .expect("ingest fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 4);
    let bless = crate::support::blessing();
    let mut blessed = Vec::new();
    let mut failures = Vec::new();
    for case in &cases {
        let name = case
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let feeds = std::fs::read_to_string(case.join("FEEDS")).expect("FEEDS");
        // `SHOW_LANDED` lists feeds whose landed rows the output shows:
        // which organization each resolved to, by which kind of key.
        let show: Vec<String> = std::fs::read_to_string(case.join("SHOW_LANDED"))
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let (_project_dir, project) = crate::support::case_project(case, &feeds);
        let warehouse = tempfile::tempdir().expect("tmp");
        let run = crate::support::run_case(&project, &case.join("feeds"), warehouse.path()).await;
        let mut out = vec![format!("run: {:?}", run.status)];
        for f in &run.feeds {
            assert!(f.reconciles(), "{name}: {f:#?}");
            out.push(format!(
                "feed {}: {:?} read={} landed={} quarantined={} duplicates={}",
                f.feed, f.status, f.read, f.landed, f.quarantined, f.duplicates
            ));
            if !f.missing_fields.is_empty() || !f.unmapped_fields.is_empty() {
                out.push(format!(
                    "feed {}: missing_fields={:?} unmapped_fields={:?}",
                    f.feed, f.missing_fields, f.unmapped_fields
                ));
            }
            if let Some(e) = &f.error {
                out.push(format!("feed {}: error: {e}", f.feed));
            }
            out.extend(quarantine_lines(warehouse.path(), &f.feed, &run.run_id).await);
            if show.iter().any(|s| s == &f.feed) {
                out.extend(landed_lines(warehouse.path(), &f.feed, &run.run_id).await);
            }
        }
        let got = out.join("\n") + "\n";
        let expected_path = case.join("expected.txt");
        if bless {
            blessed.extend(crate::support::bless(&expected_path, &got));
            continue;
        }
        let want = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if got != want {
            failures.push(format!("{name}:\n--- expected\n{want}--- got\n{got}"));
        }
    }
    if bless {
        crate::support::blessed("ingest_cases", &blessed);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
