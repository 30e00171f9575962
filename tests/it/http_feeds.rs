//! The HTTP source against the feed simulator: every feed over its own
//! paging style, then one row per fault with what was retried, held,
//! quarantined and recorded, and every row accounted for.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use qinglian::clock::FixedClock;
use qinglian::ledger::{FeedRecord, FeedStatus, RunRecord, RunStatus};
use qinglian::project::Project;
use qinglian::run::{RunOptions, run_pipeline};
use qinglian::simulator::{Fault, FeedSimulator, http_source_table};

use crate::ingest::{KEY, date, generate};
use crate::support::copy_project;

/// A copy of the shipped project whose sources fetch from the simulator,
/// with the declared-count guard on.
pub(crate) fn http_project(dir: &Path, base: &str, token: Option<&str>) -> Project {
    copy_project(dir);
    let sources = dir.join("pipelines/sources");
    for entry in std::fs::read_dir(&sources).expect("sources") {
        let path = entry.expect("entry").path();
        let feed = path
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .into_owned();
        let mut table: toml::Table = std::fs::read_to_string(&path)
            .expect("read")
            .parse()
            .expect("toml");
        let mut source = http_source_table(&feed, base);
        if token.is_some() {
            let mut auth = toml::Table::new();
            auth.insert("scheme".into(), "bearer".into());
            auth.insert("token_env".into(), "FEED_TOKEN".into());
            source.insert("auth".into(), toml::Value::Table(auth));
        }
        source.insert("max_retries".into(), toml::Value::Integer(3));
        table.insert("source".into(), toml::Value::Table(source));
        let guards = table
            .entry("guards")
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let toml::Value::Table(g) = guards {
            g.insert("declared_count".into(), toml::Value::Boolean(true));
        }
        std::fs::write(&path, toml::to_string(&table).expect("toml")).expect("write");
    }
    Project::load(dir).expect("http project loads")
}

pub(crate) async fn run(project: &Project, warehouse: &Path, token: Option<&str>) -> RunRecord {
    let token: Vec<(&str, &str)> = token.map(|t| ("FEED_TOKEN", t)).into_iter().collect();
    run_with(project, warehouse, &token).await
}

/// The nightly pipeline on its fixed clock with the person key and `vars`.
pub(crate) async fn run_with(
    project: &Project,
    warehouse: &Path,
    more: &[(&str, &str)],
) -> RunRecord {
    let mut vars = BTreeMap::new();
    vars.insert("QINGLIAN_PERSON_KEY".to_string(), KEY.to_string());
    for (k, v) in more {
        vars.insert(k.to_string(), v.to_string());
    }
    run_pipeline(
        project,
        "nightly",
        RunOptions {
            business_date: date(),
            clock: Arc::new(FixedClock(
                Utc.with_ymd_and_hms(2026, 11, 28, 18, 30, 0)
                    .single()
                    .expect("t"),
            )),
            warehouse: Some(warehouse.to_string_lossy().into_owned()),
            vars,
            ..RunOptions::new(date())
        },
    )
    .await
    .expect("run")
}

pub(crate) fn feed<'a>(run: &'a RunRecord, name: &str) -> &'a FeedRecord {
    run.feeds.iter().find(|f| f.feed == name).expect("feed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_feed_lands_over_its_paging_style() {
    let feeds = tempfile::tempdir().expect("tmp");
    let written = generate(feeds.path(), 250);
    let sim = FeedSimulator::start(feeds.path(), 0, None)
        .await
        .expect("simulator");
    let project_dir = tempfile::tempdir().expect("tmp");
    let project = http_project(project_dir.path(), &sim.url(), None);
    let warehouse = tempfile::tempdir().expect("tmp");
    let first = run(&project, warehouse.path(), None).await;
    assert_eq!(first.status, RunStatus::Succeeded, "{first:#?}");
    for f in &first.feeds {
        assert_eq!(f.status, FeedStatus::Landed, "{f:#?}");
        assert!(f.reconciles());
        assert_eq!(Some(&f.read), written.get(&f.feed), "{}", f.feed);
        assert_eq!(f.read as usize, sim.records(&f.feed));
        assert_eq!(f.retries, 0);
        assert!(f.units >= 1);
    }
    // Pages were walked in every style.
    let hits = sim.hits();
    assert!(
        hits.iter()
            .any(|h| h.feed == "registry" && h.query.contains("page=2"))
    );
    assert!(
        hits.iter()
            .any(|h| h.feed == "persons" && h.query.contains("offset=100"))
    );
    assert!(
        hits.iter()
            .any(|h| h.feed == "annual_reports" && h.query.contains("cursor=c100"))
    );
    assert!(
        hits.iter()
            .any(|h| h.feed == "court" && h.query.contains("page=2"))
    );

    // Nothing changed upstream: every feed answers 304 and keeps its snapshot.
    let second = run(&project, warehouse.path(), None).await;
    assert_eq!(second.status, RunStatus::Succeeded);
    for (a, b) in first.feeds.iter().zip(&second.feeds) {
        assert_eq!(b.status, FeedStatus::Unchanged, "{b:#?}");
        assert_eq!(a.snapshot, b.snapshot);
        assert_eq!(b.read, 0);
    }
}

/// What one fault must produce.
struct Case {
    feed: &'static str,
    fault: Fault,
    status: FeedStatus,
    run: RunStatus,
    retries: std::ops::RangeInclusive<u64>,
    error: Option<&'static str>,
    check: fn(&FeedRecord) -> bool,
}

fn all_rows_landed(f: &FeedRecord) -> bool {
    f.quarantined == 0 && f.landed + f.duplicates == f.read
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_is_retried_held_or_quarantined_as_it_should() {
    let feeds = tempfile::tempdir().expect("tmp");
    generate(feeds.path(), 250);
    let written = crate::reconcile::written(feeds.path());
    let cases = vec![
        Case {
            feed: "registry",
            fault: Fault::RateLimited {
                times: 2,
                retry_after_secs: 1,
            },
            status: FeedStatus::Landed,
            run: RunStatus::Succeeded,
            retries: 2..=2,
            error: None,
            check: all_rows_landed,
        },
        Case {
            feed: "persons",
            fault: Fault::ServerErrors { times: 3 },
            status: FeedStatus::Landed,
            run: RunStatus::Succeeded,
            retries: 3..=3,
            error: None,
            check: all_rows_landed,
        },
        Case {
            feed: "ratings",
            // With `timeout_seconds = 2` for this case (below): the slow
            // answer times out once; on a loaded machine another page may
            // too, so a bound.
            fault: Fault::Slow {
                times: 1,
                delay: Duration::from_secs(6),
            },
            status: FeedStatus::Landed,
            run: RunStatus::Succeeded,
            retries: 1..=3,
            error: None,
            check: all_rows_landed,
        },
        Case {
            feed: "credit",
            fault: Fault::HtmlOk { times: 1 },
            status: FeedStatus::Landed,
            run: RunStatus::Succeeded,
            retries: 1..=1,
            error: None,
            check: |f| f.landed + f.quarantined + f.duplicates == f.read,
        },
        Case {
            feed: "drc",
            fault: Fault::TruncatedJson { times: 1 },
            status: FeedStatus::Landed,
            run: RunStatus::Succeeded,
            retries: 1..=1,
            error: None,
            check: |f| f.reconciles(),
        },
        Case {
            feed: "projects",
            fault: Fault::TruncatedJson { times: 99 },
            status: FeedStatus::Held,
            run: RunStatus::Degraded,
            retries: 3..=3,
            error: Some("malformed JSON"),
            check: |f| f.reconciles(),
        },
        Case {
            feed: "police",
            fault: Fault::ServerErrors { times: 99 },
            status: FeedStatus::Held,
            run: RunStatus::Degraded,
            retries: 3..=3,
            error: Some("HTTP status 503 after 3 retries"),
            check: |f| f.reconciles(),
        },
        Case {
            feed: "inspection",
            fault: Fault::RepeatingCursor,
            status: FeedStatus::Held,
            run: RunStatus::Degraded,
            retries: 0..=0,
            error: Some("repeats: the API would loop forever"),
            check: |f| f.reconciles(),
        },
        Case {
            feed: "persons",
            fault: Fault::DuplicatePage { page: 1 },
            status: FeedStatus::Failed,
            run: RunStatus::Failed,
            retries: 0..=0,
            error: Some("page 2 repeats page 1"),
            check: |f| f.reconciles(),
        },
        Case {
            feed: "credit",
            fault: Fault::TruncatedDump { missing: 5 },
            status: FeedStatus::Held,
            run: RunStatus::Degraded,
            retries: 0..=0,
            error: Some("records would be missing"),
            check: |f| f.reconciles(),
        },
        Case {
            feed: "court",
            fault: Fault::DropField {
                field: "caseCode".into(),
            },
            status: FeedStatus::Held,
            run: RunStatus::Degraded,
            retries: 0..=0,
            error: Some("max_quarantined"),
            check: |f| {
                f.missing_fields == ["caseCode"]
                    && f.landed == 0
                    && f.quarantine_reasons
                        .get("missing_value")
                        .is_some_and(|n| *n > f.read / 2)
            },
        },
        Case {
            feed: "inspection",
            fault: Fault::RenameField {
                from: "creditCode".into(),
                to: "orgCode".into(),
            },
            // Schema drift holds the feed: never landed with an empty key.
            status: FeedStatus::Held,
            run: RunStatus::Degraded,
            retries: 0..=0,
            error: Some("absent_fields"),
            check: |f| {
                f.missing_fields == ["creditCode"]
                    && f.unmapped_fields.contains(&"orgCode".to_string())
                    && f.keyed == 0
            },
        },
        Case {
            feed: "annual_reports",
            fault: Fault::AddField {
                field: "新字段".into(),
            },
            status: FeedStatus::Landed,
            run: RunStatus::Succeeded,
            retries: 0..=0,
            error: None,
            check: |f| f.unmapped_fields.contains(&"新字段".to_string()) && all_rows_landed(f),
        },
        Case {
            feed: "credit",
            fault: Fault::ChangeType {
                field: "处罚种类".into(),
            },
            status: FeedStatus::Held,
            run: RunStatus::Degraded,
            retries: 0..=0,
            error: Some("max_quarantined"),
            check: |f| f.quarantine_reasons.get("bad_enum").is_some_and(|n| *n > 0),
        },
        Case {
            feed: "registry",
            fault: Fault::HugeBody,
            status: FeedStatus::Failed,
            run: RunStatus::Failed,
            retries: 0..=0,
            error: Some("response declares 10737418240 bytes, above the limit"),
            check: |f| f.reconciles(),
        },
        Case {
            feed: "court",
            fault: Fault::EndlessBody,
            status: FeedStatus::Held,
            run: RunStatus::Degraded,
            retries: 0..=0,
            error: Some("response exceeds the limit"),
            check: |f| f.reconciles(),
        },
    ];
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let sim = FeedSimulator::start(feeds.path(), 0, None)
            .await
            .expect("simulator");
        sim.inject(case.feed, case.fault.clone());
        let project_dir = tempfile::tempdir().expect("tmp");
        let mut project = http_project(project_dir.path(), &sim.url(), None);
        if matches!(case.fault, Fault::Slow { .. }) {
            // The one case about a timeout: a short limit (every other feed
            // keeps the simulator's long one, which a busy machine never
            // reaches).
            let path = project_dir
                .path()
                .join(format!("pipelines/sources/{}.toml", case.feed));
            let mut table: toml::Table = std::fs::read_to_string(&path)
                .expect("read")
                .parse()
                .expect("toml");
            if let Some(toml::Value::Table(s)) = table.get_mut("source") {
                s.insert("timeout_seconds".into(), toml::Value::Integer(2));
            }
            std::fs::write(&path, toml::to_string(&table).expect("toml")).expect("write");
            project = Project::load(project_dir.path()).expect("project");
        }
        let warehouse = tempfile::tempdir().expect("tmp");
        let record = run(&project, warehouse.path(), None).await;
        let f = feed(&record, case.feed);
        let label = format!("case {i}: {} {:?}", case.feed, case.fault);
        if f.status != case.status || record.status != case.run {
            failures.push(format!(
                "{label}: feed {:?} run {:?}, expected {:?} {:?}\n{f:#?}",
                f.status, record.status, case.status, case.run
            ));
            continue;
        }
        if !case.retries.contains(&f.retries) {
            failures.push(format!(
                "{label}: {} retries, expected {:?}",
                f.retries, case.retries
            ));
        }
        match (case.error, &f.error) {
            (Some(want), Some(got)) if got.contains(want) => {}
            (None, None) => {}
            (want, got) => failures.push(format!("{label}: error {got:?}, expected {want:?}")),
        }
        if !f.reconciles() || !(case.check)(f) {
            failures.push(format!("{label}: check failed\n{f:#?}"));
        }
        // Every feed that landed, the faulty one included, holds what the
        // generator wrote (a fault of the transport or a field added changes
        // no count).
        failures.extend(
            crate::reconcile::run_mismatches(&record, &written, &[])
                .into_iter()
                .map(|m| format!("{label}: {m}")),
        );
        // Every other feed is untouched by the fault.
        for other in record.feeds.iter().filter(|o| o.feed != case.feed) {
            if other.status != FeedStatus::Landed && case.run != RunStatus::Failed {
                failures.push(format!("{label}: {} is {:?}", other.feed, other.status));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_come_from_the_environment_and_a_wrong_one_fails_clearly() {
    let feeds = tempfile::tempdir().expect("tmp");
    generate(feeds.path(), 40);
    let sim = FeedSimulator::start(feeds.path(), 0, Some("s3cret-token".into()))
        .await
        .expect("simulator");
    let project_dir = tempfile::tempdir().expect("tmp");
    let project = http_project(project_dir.path(), &sim.url(), Some("x"));
    let warehouse = tempfile::tempdir().expect("tmp");
    let ok = run(&project, warehouse.path(), Some("s3cret-token")).await;
    assert_eq!(ok.status, RunStatus::Succeeded, "{ok:#?}");
    let wrong = run(
        &project,
        tempfile::tempdir().expect("tmp").path(),
        Some("wrong"),
    )
    .await;
    assert_eq!(wrong.status, RunStatus::Failed);
    let registry = feed(&wrong, "registry");
    let error = registry.error.clone().unwrap_or_default();
    assert!(error.contains("HTTP status 401"), "{error}");
    // The secret never appears in the ledger.
    let ledger = serde_json::to_string(&wrong).expect("json");
    assert!(
        !ledger.contains("s3cret-token") && !ledger.contains("wrong"),
        "{ledger}"
    );
}
