//! Operating it: the run lease, shutdown at a stage boundary, the
//! scheduler on an injected clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use qinglian::lease::{Lease, LeaseError};
use qinglian::ledger::{FeedRecord, RunStatus};
use qinglian::publish::Published;
use qinglian::run::Progress;
use tokio_util::sync::CancellationToken;

use crate::ingest::{Extras, date, generate, ingest_into, run_project};
use crate::support::root;

fn warehouse_store(
    dir: &std::path::Path,
) -> (Arc<dyn object_store::ObjectStore>, object_store::path::Path) {
    qinglian::store::open_for_write(dir.to_str().expect("utf-8")).expect("warehouse")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_lapses_after_its_holder_dies_and_is_taken_over_once() {
    let warehouse = tempfile::tempdir().expect("tmp");
    let (store, prefix) = warehouse_store(warehouse.path());
    let dir = Lease::dir(&prefix, "nightly", date());
    let t0 = Utc
        .with_ymd_and_hms(2026, 11, 28, 18, 0, 0)
        .single()
        .expect("t");
    let ttl = Duration::from_secs(300);
    let minutes = |m: i64| t0 + chrono::TimeDelta::minutes(m);
    // A takes the lease, then its process dies without releasing it.
    let mut a = Lease::acquire(
        Arc::clone(&store),
        dir.clone(),
        "nightly 2026-11-28",
        "host-a:1:aa",
        ttl,
        t0,
    )
    .await
    .expect("a takes it");
    a.renew(minutes(2)).await.expect("a renews while alive");
    // B is refused while A's lease lives, and told who holds it until when.
    let held = Lease::acquire(
        Arc::clone(&store),
        dir.clone(),
        "nightly 2026-11-28",
        "host-b:2:bb",
        ttl,
        minutes(6),
    )
    .await
    .expect_err("still held");
    let text = held.to_string();
    assert!(
        text.contains("host-a:1:aa") && text.contains("2026-11-28T18:07:00"),
        "{text}"
    );
    // After expiry B takes it over; A, should it wake up, has lost it.
    let b = Lease::acquire(
        Arc::clone(&store),
        dir.clone(),
        "nightly 2026-11-28",
        "host-b:2:bb",
        ttl,
        minutes(8),
    )
    .await
    .expect("b takes over");
    assert_eq!(b.info().generation, 2);
    assert!(matches!(
        a.renew(minutes(9)).await,
        Err(LeaseError::Lost(_))
    ));
    assert!(matches!(
        a.clone().release().await,
        Err(LeaseError::Lost(_))
    ));
    // Two contenders after B releases: exactly one wins.
    b.release().await.expect("b releases");
    let (x, y) = tokio::join!(
        Lease::acquire(Arc::clone(&store), dir.clone(), "p", "x", ttl, minutes(10)),
        Lease::acquire(Arc::clone(&store), dir.clone(), "p", "y", ttl, minutes(10)),
    );
    assert_eq!(x.is_ok() as u8 + y.is_ok() as u8, 1, "{x:?} {y:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_start_of_a_running_date_reports_who_holds_it() {
    let feeds = tempfile::tempdir().expect("tmp");
    let warehouse = tempfile::tempdir().expect("tmp");
    generate(feeds.path(), 20);
    let (store, prefix) = warehouse_store(warehouse.path());
    // A live lease of another scheduler (the runs use the system clock).
    let _other = Lease::acquire(
        store,
        Lease::dir(&prefix, "nightly", date()),
        "nightly 2026-11-28",
        "scheduler-2:4242:0001",
        Duration::from_secs(600),
        Utc::now(),
    )
    .await
    .expect("lease");
    let project = qinglian::project::Project::load(&root()).expect("project");
    let mut options = qinglian::run::RunOptions::new(date());
    options.warehouse = Some(warehouse.path().to_string_lossy().into_owned());
    options.vars.insert(
        "QINGLIAN_FEEDS".into(),
        feeds.path().to_string_lossy().into_owned(),
    );
    options
        .vars
        .insert("QINGLIAN_PERSON_KEY".into(), crate::ingest::KEY.into());
    let err = qinglian::run::run_pipeline(&project, "nightly", options)
        .await
        .expect_err("busy");
    let text = err.to_string();
    assert!(
        text.contains("nightly 2026-11-28 is already running")
            && text.contains("scheduler-2:4242:0001")
            && text.contains("until"),
        "{text}"
    );
    assert!(!warehouse.path().join("ledger").exists(), "nothing started");
}

/// Cancels the run when its `n`th feed is done: a shutdown mid-run.
struct StopAfter {
    n: usize,
    done: AtomicUsize,
    cancel: CancellationToken,
}

impl Progress for StopAfter {
    fn feed_done(&self, _feed: &FeedRecord) {
        if self.done.fetch_add(1, Ordering::SeqCst) + 1 == self.n {
            self.cancel.cancel();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_mid_run_stops_at_a_boundary_and_the_next_run_resumes() {
    let feeds = tempfile::tempdir().expect("tmp");
    let warehouse = tempfile::tempdir().expect("tmp");
    generate(feeds.path(), 40);
    let project = qinglian::project::Project::load(&root()).expect("project");
    let cancel = CancellationToken::new();
    let stop = Arc::new(StopAfter {
        n: 3,
        done: AtomicUsize::new(0),
        cancel: cancel.clone(),
    });
    let extras = Extras {
        cancel,
        progress: Some(stop),
        ..Extras::default()
    };
    let run = run_project(&project, feeds.path(), warehouse.path(), date(), extras).await;
    assert_eq!(run.status, RunStatus::Interrupted, "{run:#?}");
    assert_eq!(run.feeds.len(), 3, "the fourth feed never started");
    assert!(run.manifest.is_none() && run.scoring.is_none());
    assert!(
        run.error
            .as_deref()
            .unwrap_or_default()
            .contains("interrupted before fetching"),
        "{:?}",
        run.error
    );
    let (store, prefix) = warehouse_store(warehouse.path());
    assert!(
        Published::latest(&store, &prefix, date())
            .await
            .expect("readable")
            .is_none(),
        "nothing published"
    );
    let ledger = qinglian::ledger::Ledger::new(store, prefix);
    let recorded = ledger.runs_of(date()).await.expect("ledger");
    assert_eq!(recorded[0].status, RunStatus::Interrupted);
    // The lease was released: the next run starts at once and completes.
    let next = ingest_into(feeds.path(), warehouse.path(), date(), None).await;
    assert_eq!(next.status, RunStatus::Succeeded);
    assert_eq!(next.attempt, 2);
    assert!(next.manifest.is_some());
}
