//! Stages 1–3 over the generator's files: every feed lands, every row read
//! is landed, quarantined or counted as a duplicate, and the canonical data
//! is what the departments meant.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use chrono::{NaiveDate, TimeZone, Utc};
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::Decimal128Type;
use qinglian::clock::FixedClock;
use qinglian::ledger::{FeedStatus, RunRecord, RunStatus};
use qinglian::project::Project;
use qinglian::run::{RunOptions, run_pipeline};

use crate::support::{qinglian, read_parquet, root, strings};

pub(crate) const KEY: &str = "test-person-hash-key";

pub(crate) fn date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 28).expect("date")
}

pub(crate) fn generate(dir: &Path, orgs: u64) -> BTreeMap<String, u64> {
    let out = qinglian(
        &[
            "generate",
            "--orgs",
            &orgs.to_string(),
            "--seed",
            "42",
            "--as-of",
            "2026-11-28",
            "--out",
            dir.to_str().expect("utf-8"),
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // "  feed   N" lines of the summary.
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let feed = parts.next()?;
            let n = parts.next()?.parse().ok()?;
            parts.next().is_none().then(|| (feed.to_string(), n))
        })
        .collect()
}

pub(crate) async fn ingest(feeds: &Path, warehouse: &Path) -> RunRecord {
    ingest_on(feeds, warehouse, date()).await
}

pub(crate) async fn ingest_on(
    feeds: &Path,
    warehouse: &Path,
    business_date: NaiveDate,
) -> RunRecord {
    ingest_into(feeds, warehouse, business_date, None).await
}

/// A run of the shipped project over generated feeds; `store` replaces the
/// warehouse store (a wrapper that fails on purpose).
pub(crate) async fn ingest_into(
    feeds: &Path,
    warehouse: &Path,
    business_date: NaiveDate,
    store: Option<(Arc<dyn object_store::ObjectStore>, object_store::path::Path)>,
) -> RunRecord {
    let project = Project::load(&root()).expect("project");
    let extras = Extras {
        store,
        ..Extras::default()
    };
    run_project(&project, feeds, warehouse, business_date, extras).await
}

/// What a test adds to a run.
#[derive(Default)]
pub(crate) struct Extras {
    /// Replaces the warehouse store.
    pub(crate) store: Option<(Arc<dyn object_store::ObjectStore>, object_store::path::Path)>,
    /// More variables (endpoint, secrets).
    pub(crate) vars: Vec<(String, String)>,
    /// `--full`.
    pub(crate) full: bool,
    /// Shutdown.
    pub(crate) cancel: tokio_util::sync::CancellationToken,
    /// Progress callbacks.
    pub(crate) progress: Option<Arc<dyn qinglian::run::Progress>>,
}

/// A run of a given project over generated feeds.
pub(crate) async fn run_project(
    project: &Project,
    feeds: &Path,
    warehouse: &Path,
    business_date: NaiveDate,
    extras: Extras,
) -> RunRecord {
    let mut vars = BTreeMap::new();
    vars.insert(
        "QINGLIAN_FEEDS".to_string(),
        feeds.to_string_lossy().into_owned(),
    );
    vars.insert("QINGLIAN_PERSON_KEY".to_string(), KEY.to_string());
    vars.extend(extras.vars);
    let clock = FixedClock(
        Utc.with_ymd_and_hms(2026, 11, 28, 18, 30, 0)
            .single()
            .expect("instant"),
    );
    run_pipeline(
        project,
        "nightly",
        RunOptions {
            business_date,
            clock: Arc::new(clock),
            warehouse: Some(warehouse.to_string_lossy().into_owned()),
            vars,
            store: extras.store,
            full: extras.full,
            cancel: extras.cancel,
            progress: extras.progress,
            ..RunOptions::new(business_date)
        },
    )
    .await
    .expect("run")
}

pub(crate) async fn landed(warehouse: &Path, run: &RunRecord, feed: &str) -> Vec<RecordBatch> {
    let snapshot = run
        .feeds
        .iter()
        .find(|f| f.feed == feed)
        .and_then(|f| f.snapshot.clone())
        .expect("snapshot");
    read_parquet(&warehouse.join(snapshot)).await
}

async fn quarantine(warehouse: &Path, feed: &str, run_id: &str) -> Vec<RecordBatch> {
    read_parquet(&warehouse.join(qinglian::layout::quarantine_file(feed, date(), run_id))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_feed_lands_and_every_row_is_accounted_for() {
    let feeds = tempfile::tempdir().expect("tmp");
    let warehouse = tempfile::tempdir().expect("tmp");
    let written = generate(feeds.path(), 400);
    let run = ingest(feeds.path(), warehouse.path()).await;

    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    assert_eq!(run.feeds.len(), 10);
    for f in &run.feeds {
        assert_eq!(f.status, FeedStatus::Landed, "{f:#?}");
        assert!(
            f.reconciles(),
            "read = landed + quarantined + duplicates: {f:#?}"
        );
        // Nothing lost between the files and the ledger.
        assert_eq!(
            Some(&f.read),
            written.get(&f.feed),
            "records read from {}",
            f.feed
        );
        assert!(
            f.missing_fields.is_empty(),
            "{}: {:?}",
            f.feed,
            f.missing_fields
        );
    }
    // Against the generator's own count of what it wrote: every row it
    // duplicated is a duplicate, every key it corrupted is quarantined, the
    // rest landed, and the files hold exactly those rows.
    let counts = crate::reconcile::written(feeds.path());
    let wrong = crate::reconcile::run_mismatches(&run, &counts, &[]);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    for f in &run.feeds {
        let rows =
            |batches: &[RecordBatch]| batches.iter().map(|b| b.num_rows() as u64).sum::<u64>();
        let data = landed(warehouse.path(), &run, &f.feed).await;
        assert_eq!(
            rows(&data),
            counts[&f.feed].landing(),
            "{}: rows in the snapshot",
            f.feed
        );
        let file = warehouse.path().join(qinglian::layout::quarantine_file(
            &f.feed,
            date(),
            &run.run_id,
        ));
        let q = if file.exists() {
            quarantine(warehouse.path(), &f.feed, &run.run_id).await
        } else {
            Vec::new()
        };
        assert_eq!(
            rows(&q),
            counts[&f.feed].invalid_keys,
            "{}: rows in the quarantine file",
            f.feed
        );
    }
    let total =
        |pick: fn(&qinglian::ledger::FeedRecord) -> u64| run.feeds.iter().map(pick).sum::<u64>();
    assert!(total(|f| f.duplicates) > 0, "the generator duplicates rows");
    assert!(
        total(|f| f.quarantined) > 0,
        "the generator writes invalid codes"
    );
    let reasons: Vec<&String> = run
        .feeds
        .iter()
        .flat_map(|f| f.quarantine_reasons.keys())
        .collect();
    assert!(reasons.iter().all(|r| *r == "invalid_key"), "{reasons:?}");

    // Quarantined rows name feed, position, field and reason, and keep the record.
    let drc = run.feeds.iter().find(|f| f.feed == "drc").expect("drc");
    if drc.quarantined > 0 {
        let q = quarantine(warehouse.path(), "drc", &run.run_id).await;
        let positions = strings(&q, "position");
        assert!(
            positions
                .iter()
                .flatten()
                .all(|p| p.starts_with("drc.json/result/records/"))
        );
        let messages = strings(&q, "message");
        assert!(
            messages
                .iter()
                .flatten()
                .all(|m| m.starts_with("feed drc: ") && m.contains("tyshxydm"))
        );
        assert!(
            strings(&q, "original")
                .iter()
                .flatten()
                .all(|o| o.starts_with('{'))
        );
    }

    // Person identity numbers never land in clear.
    let persons = landed(warehouse.path(), &run, "persons").await;
    let hashes = strings(&persons, "person_id_hash");
    assert!(
        hashes
            .iter()
            .all(|h| h.as_ref().is_some_and(|h| h.len() == 64))
    );
    for b in &persons {
        for c in b.columns() {
            if let Some(s) = c.as_string_opt::<i32>() {
                for v in s.iter().flatten() {
                    let digits = v.chars().filter(char::is_ascii_digit).count();
                    assert!(
                        !(v.len() == 18 && digits >= 17 && v.starts_with("33")),
                        "clear id {v}"
                    );
                }
            }
        }
    }

    // Organization codes in the court feed resolve through the registry.
    let court = landed(warehouse.path(), &run, "court").await;
    let classes = strings(&court, "key_class");
    let usccs = strings(&court, "uscc");
    let org_code_rows: Vec<_> = classes
        .iter()
        .zip(&usccs)
        .filter(|(c, _)| c.as_deref() == Some("org_code_only"))
        .collect();
    assert!(!org_code_rows.is_empty());
    assert!(
        org_code_rows.iter().all(|(_, u)| u.is_some()),
        "org codes resolved"
    );
    // Epoch milliseconds became dates; lawsuits are name-only with a name key.
    assert!(strings(&court, "registered_on").iter().all(Option::is_some));
    assert!(classes.iter().any(|c| c.as_deref() == Some("name_only")));

    // GB18030 names decoded; every registry row keyed.
    let registry = landed(warehouse.path(), &run, "registry").await;
    let names = strings(&registry, "name");
    assert!(names.iter().flatten().all(|n| !n.contains('\u{fffd}')
        && (n.ends_with('会')
            || n.contains("中心")
            || n.contains("社")
            || n.contains("学校")
            || n.contains("院"))));
    assert!(strings(&registry, "uscc").iter().all(Option::is_some));

    // 万元 became yuan exactly: every fine is a whole multiple of 100 yuan.
    let credit = landed(warehouse.path(), &run, "credit").await;
    for b in &credit {
        let amounts = b
            .column_by_name("amount")
            .expect("amount")
            .as_primitive::<Decimal128Type>();
        for v in amounts.iter().flatten() {
            assert_eq!(
                v % 10_000,
                0,
                "{v} (in fen) is a whole multiple of 100 yuan"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerunning_a_date_lands_beside_the_first_run() {
    let feeds = tempfile::tempdir().expect("tmp");
    let warehouse = tempfile::tempdir().expect("tmp");
    generate(feeds.path(), 60);
    let first = ingest(feeds.path(), warehouse.path()).await;
    // Delivered again (the same files would be carried forward unread).
    crate::support::redeliver(feeds.path());
    let second = ingest(feeds.path(), warehouse.path()).await;
    assert_eq!(first.run_id, "nightly-20261128-01");
    assert_eq!(second.run_id, "nightly-20261128-02");
    for (a, b) in first.feeds.iter().zip(&second.feeds) {
        assert_eq!(
            (a.read, a.landed, a.quarantined),
            (b.read, b.landed, b.quarantined)
        );
        assert_ne!(a.snapshot, b.snapshot);
        assert!(
            warehouse
                .path()
                .join(a.snapshot.as_ref().expect("snapshot"))
                .exists()
        );
    }
    let out = qinglian(
        &[
            "status",
            "--json",
            "--warehouse",
            warehouse.path().to_str().expect("utf-8"),
            "--project",
            root().to_str().expect("utf-8"),
        ],
        None,
    );
    assert!(out.status.success());
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let runs = status["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["run_id"], "nightly-20261128-02");
    for feed in runs[0]["feeds"].as_array().expect("feeds") {
        for key in [
            "feed",
            "read",
            "landed",
            "quarantined",
            "duplicates",
            "status",
        ] {
            assert!(feed.get(key).is_some(), "{key} in {feed}");
        }
    }
}

#[test]
fn a_feed_with_person_numbers_and_no_key_is_refused_before_fetching() {
    let warehouse = tempfile::tempdir().expect("tmp");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_qinglian"))
        .args(["run", "nightly", "--date", "2026-11-28", "--warehouse"])
        .arg(warehouse.path())
        .arg("--project")
        .arg(root())
        .env_remove("QINGLIAN_PERSON_KEY")
        .env("QINGLIAN_FEEDS", "/nonexistent")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "feed persons hashes person identity numbers but QINGLIAN_PERSON_KEY is not set"
        ),
        "{stderr}"
    );
    assert!(!warehouse.path().join("landing").exists(), "nothing landed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guards_hold_optional_feeds_and_fail_required_ones() {
    let feeds = tempfile::tempdir().expect("tmp");
    let warehouse = tempfile::tempdir().expect("tmp");
    generate(feeds.path(), 80);
    let first = ingest(feeds.path(), warehouse.path()).await;
    assert_eq!(first.status, RunStatus::Succeeded);
    let snapshot = |run: &RunRecord, feed: &str| {
        run.feeds
            .iter()
            .find(|f| f.feed == feed)
            .and_then(|f| f.snapshot.clone())
    };

    // A truncated JSON document: the optional drc feed is held at its last
    // good snapshot and the run is degraded.
    let drc = feeds.path().join("drc/drc.json");
    let text = std::fs::read_to_string(&drc).expect("drc");
    std::fs::write(&drc, &text[..text.len() / 2]).expect("truncate");
    let second = ingest(feeds.path(), warehouse.path()).await;
    assert_eq!(second.status, RunStatus::Degraded);
    let held = second.feeds.iter().find(|f| f.feed == "drc").expect("drc");
    assert_eq!(held.status, FeedStatus::Held);
    assert!(
        held.error
            .as_deref()
            .is_some_and(|e| e.contains("feed drc: drc.json line")),
        "{held:#?}"
    );
    assert!(held.reconciles());
    assert_eq!(
        snapshot(&second, "drc"),
        snapshot(&first, "drc"),
        "snapshot not advanced"
    );
    std::fs::write(&drc, &text).expect("restore");

    // Half the registry gone: churn trips on a required feed, the run fails
    // and the registry keeps its last good snapshot.
    let registry = feeds.path().join("registry/registry.csv");
    let bytes = std::fs::read(&registry).expect("registry");
    let lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    let kept: Vec<&[u8]> = lines[..lines.len() / 2].to_vec();
    std::fs::write(&registry, kept.join(&b'\n')).expect("shrink");
    let third = ingest(feeds.path(), warehouse.path()).await;
    assert_eq!(third.status, RunStatus::Failed);
    let reg = third
        .feeds
        .iter()
        .find(|f| f.feed == "registry")
        .expect("registry");
    assert_eq!(reg.status, FeedStatus::Failed);
    let churn = reg
        .guards
        .iter()
        .find(|g| g.name == "max_churn")
        .expect("churn guard");
    assert!(!churn.passed && churn.value > 0.4, "{churn:?}");
    assert_eq!(snapshot(&third, "registry"), snapshot(&second, "registry"));
}
