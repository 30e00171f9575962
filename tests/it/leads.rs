//! Subjects outside the registry (DOMAIN.md §4): a record whose valid USCC
//! names no registered organization is no hit but a lead, published in the
//! `leads` dataset, never in the public ones, counted in `status` and the
//! report. Over the hand-written deliveries of `tests/fixtures/leads/`
//! (its README works the expected lead out).

use std::path::Path;

use chrono::NaiveDate;
use qinglian::catalog::Published;
use qinglian::ledger::RunStatus;
use qinglian::project::Project;

use crate::ingest::{Extras, date, run_project};
use crate::support::{copy_project, fixtures, qinglian, read_parquet, strings};

const REGISTERED: &str = "51330100MJ0000018T";
const UNREGISTERED: &str = "51330106MJ0000771R";

/// The shipped project with a nightly pipeline of the fixture's feeds.
fn project(dir: &Path) -> Project {
    copy_project(dir);
    let path = dir.join("pipelines/nightly.toml");
    let text = std::fs::read_to_string(&path).expect("nightly");
    let start = text.find("sources = [").expect("sources");
    let end = start + text[start..].find(']').expect("end of sources");
    let text = format!(
        "{}sources = [\"registry\", \"police\", \"court\"{}",
        &text[..start],
        &text[end..]
    );
    std::fs::write(&path, text).expect("write");
    Project::load(dir).expect("project")
}

async fn published(warehouse: &Path, on: NaiveDate) -> Published {
    let (store, prefix) =
        qinglian::store::open_for_write(warehouse.to_str().expect("utf-8")).expect("warehouse");
    Published::latest(&store, &prefix, on)
        .await
        .expect("readable")
        .expect("published")
}

async fn dataset(
    warehouse: &Path,
    p: &Published,
    name: &str,
) -> Vec<datafusion::arrow::array::RecordBatch> {
    let mut out = Vec::new();
    for f in &p.manifest.datasets[name].files {
        out.extend(read_parquet(&warehouse.join(&f.path)).await);
    }
    out
}

/// Every row of `leads` as `column=value` pairs joined by ` | `.
fn rows(batches: &[datafusion::arrow::array::RecordBatch]) -> Vec<String> {
    let columns = [
        "uscc",
        "name",
        "feeds",
        "records",
        "first_seen",
        "last_seen",
        "first_listed_on",
        "business_date",
    ];
    let values: Vec<Vec<Option<String>>> = columns.iter().map(|c| strings(batches, c)).collect();
    (0..values[0].len())
        .map(|r| {
            columns
                .iter()
                .zip(&values)
                .map(|(c, v)| format!("{c}={}", v[r].as_deref().unwrap_or("NULL")))
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unregistered_subject_is_a_lead_never_a_hit_and_never_public() {
    let project_dir = tempfile::tempdir().expect("tmp");
    let project = project(project_dir.path());
    let feeds = fixtures().join("leads/feeds");
    let warehouse = tempfile::tempdir().expect("tmp");
    let w = warehouse.path();
    let run = run_project(&project, &feeds, w, date(), Extras::default()).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    let p = published(w, date()).await;

    // The lead, field by field (worked out in the fixture's README).
    let leads = dataset(w, &p, "leads").await;
    assert_eq!(
        rows(&leads),
        [format!(
            "uscc={UNREGISTERED} | name=杭州市民间互助总会 | feeds=court,police | records=3 \
             | first_seen=2025-11-03 | last_seen=2026-06-15 | first_listed_on=2026-11-28 \
             | business_date=2026-11-28"
        )]
    );
    assert_eq!(p.manifest.datasets["leads"].rows, 1);
    let scoring = run.scoring.as_ref().expect("scored");
    assert_eq!((scoring.leads, scoring.new_leads), (1, 1));

    // No hit on it; the registered organization's case is one (XD-03).
    let hits = dataset(w, &p, "hits").await;
    let hit_rows: Vec<(String, String)> = strings(&hits, "uscc")
        .into_iter()
        .zip(strings(&hits, "rule_id"))
        .map(|(u, r)| (u.unwrap_or_default(), r.unwrap_or_default()))
        .collect();
    assert!(
        hit_rows.iter().all(|(u, _)| u != UNREGISTERED),
        "{hit_rows:?}"
    );
    assert!(
        hit_rows.contains(&(REGISTERED.to_string(), "XD-03".to_string())),
        "{hit_rows:?}"
    );

    // Nothing of it in a public dataset, nor in profiles or codes.
    for name in ["public", "public_events", "profiles", "codes"] {
        let batches = dataset(w, &p, name).await;
        let codes = strings(&batches, "uscc");
        assert!(
            !codes.iter().flatten().any(|u| u == UNREGISTERED),
            "{name} names the lead"
        );
        for b in &batches {
            for c in b.columns() {
                let text = datafusion::arrow::compute::cast(
                    c,
                    &datafusion::arrow::datatypes::DataType::Utf8,
                )
                .expect("cast");
                let text = datafusion::arrow::array::AsArray::as_string::<i32>(&text);
                assert!(
                    !text.iter().flatten().any(|v| v.contains("互助总会")),
                    "{name} names the lead"
                );
            }
        }
    }

    // The next night over the same deliveries: the same lead, listed
    // since the first night, new no more.
    let next = date().succ_opt().expect("date");
    let run = run_project(&project, &feeds, w, next, Extras::default()).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    let p2 = published(w, next).await;
    let leads = dataset(w, &p2, "leads").await;
    assert_eq!(
        rows(&leads),
        [format!(
            "uscc={UNREGISTERED} | name=杭州市民间互助总会 | feeds=court,police | records=3 \
             | first_seen=2025-11-03 | last_seen=2026-06-15 | first_listed_on=2026-11-28 \
             | business_date=2026-11-29"
        )]
    );
    let scoring = run.scoring.as_ref().expect("scored");
    assert_eq!((scoring.leads, scoring.new_leads), (1, 0));

    // Counted in `status` and shown in the report.
    let out = qinglian(
        &[
            "status",
            "--limit",
            "1",
            "--project",
            project_dir.path().to_str().expect("utf-8"),
            "--warehouse",
            w.to_str().expect("utf-8"),
        ],
        None,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("leads tonight 1, new since the previous version 0"),
        "{text}"
    );
    let report =
        std::fs::read_to_string(w.join(run.report.as_deref().expect("a report"))).expect("report");
    assert!(
        report.contains("Leads (unregistered subjects)")
            && report.contains("1 lead(s) tonight, 0 new since the previous version")
            && report.contains(UNREGISTERED)
            && report.contains("杭州市民间互助总会"),
        "{report}"
    );
}
