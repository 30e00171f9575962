//! Operating it: the run lease, shutdown at a stage boundary, the
//! scheduler on an injected clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use qinglian::catalog::Published;
use qinglian::lease::{Lease, LeaseError};
use qinglian::ledger::{FeedRecord, FeedStatus, RunStatus};
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
    // Feeds land concurrently, one per core: those already started when the
    // stop came finish and are recorded whole; no later feed starts.
    let pipeline = &project.pipelines["nightly"];
    let parallel = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    assert!(
        run.feeds.len() >= 3 && run.feeds.len() < (3 + parallel).min(pipeline.sources.len()),
        "{} feeds recorded",
        run.feeds.len()
    );
    assert!(
        run.feeds
            .iter()
            .all(|f| f.status == FeedStatus::Landed && f.reconciles()),
        "{:#?}",
        run.feeds
    );
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

mod scheduling {
    use std::collections::VecDeque;
    use std::sync::Arc;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone, Utc};
    use futures::future::BoxFuture;
    use qinglian::clock::{Clock, ManualClock};
    use qinglian::ledger::JobState;
    use qinglian::ledger::{Ledger, RunStatus};
    use qinglian::project::{CatchUp, Job, Project};
    use qinglian::schedule::{JobRunner, Outcome, Scheduler, business_date, next_fires};
    use tokio_util::sync::CancellationToken;

    use crate::support::{copy_project, qinglian};

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .expect("instant")
    }

    fn day(m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, d).expect("date")
    }

    /// The shipped project plus jobs written for the test.
    fn project_with(jobs: &[(&str, &str)]) -> (tempfile::TempDir, Project) {
        let dir = tempfile::tempdir().expect("tmp");
        copy_project(dir.path());
        for (name, text) in jobs {
            std::fs::write(dir.path().join(format!("jobs/{name}.toml")), text).expect("job");
        }
        let project = Project::load(dir.path()).expect("project");
        (dir, project)
    }

    /// A runner that takes `duration` of scheduler time per run and answers
    /// from a script (then `Succeeded`), never running two at once.
    struct Fake {
        clock: Arc<ManualClock>,
        duration: TimeDelta,
        script: Mutex<VecDeque<Outcome>>,
        in_flight: AtomicUsize,
        most_in_flight: AtomicUsize,
    }

    impl Fake {
        fn new(clock: &Arc<ManualClock>, duration: TimeDelta, script: Vec<Outcome>) -> Self {
            Self {
                clock: Arc::clone(clock),
                duration,
                script: Mutex::new(script.into()),
                in_flight: AtomicUsize::new(0),
                most_in_flight: AtomicUsize::new(0),
            }
        }
    }

    impl JobRunner for Fake {
        fn run<'a>(
            &'a self,
            _job: &'a Job,
            _date: NaiveDate,
            _cancel: CancellationToken,
        ) -> BoxFuture<'a, Outcome> {
            Box::pin(async move {
                let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                self.most_in_flight.fetch_max(now, Ordering::SeqCst);
                self.clock.advance(self.duration);
                tokio::task::yield_now().await;
                self.in_flight.fetch_sub(1, Ordering::SeqCst);
                self.script
                    .lock()
                    .ok()
                    .and_then(|mut s| s.pop_front())
                    .unwrap_or(Outcome::Finished(RunStatus::Succeeded))
            })
        }
    }

    async fn scheduler(
        job: Job,
        clock: &Arc<ManualClock>,
        runner: Fake,
        planned_through: Option<DateTime<Utc>>,
    ) -> (tempfile::TempDir, Scheduler<Fake>) {
        let warehouse = tempfile::tempdir().expect("tmp");
        let (store, prefix) =
            qinglian::store::open_for_write(warehouse.path().to_str().expect("utf-8")).expect("wh");
        let ledger = Ledger::new(store, prefix);
        if let Some(t) = planned_through {
            ledger
                .set_job_state(&JobState {
                    job: job.name.clone(),
                    planned_through: t,
                })
                .await
                .expect("state");
        }
        let clock: Arc<dyn Clock> = Arc::clone(clock) as Arc<dyn Clock>;
        let s = Scheduler::new(vec![job], clock, ledger, runner, CancellationToken::new());
        (warehouse, s)
    }

    fn dates(s: &Scheduler<Fake>) -> Vec<NaiveDate> {
        s.events.iter().map(|e| e.business_date).collect()
    }

    #[test]
    fn ticks_fire_at_shanghai_instants_and_process_the_previous_local_day() {
        let (dir, project) = project_with(&[(
            "early",
            "name = \"early\"\npipeline = \"nightly\"\ncron = \"30 0 * * *\"\ntimezone = \"Asia/Shanghai\"\nbusiness_date = \"previous_day\"\nmax_run_minutes = 60\nretries = 0\nretry_backoff_seconds = 60\n[catch_up]\npolicy = \"skip\"\n",
        )]);
        let early = &project.jobs["early"];
        // 00:30 in Shanghai is 16:30 UTC of the day before.
        let fires = next_fires(&early.schedule, early.timezone, at(2026, 11, 28, 0, 0), 2);
        assert_eq!(fires, [at(2026, 11, 28, 16, 30), at(2026, 11, 29, 16, 30)]);
        // A tick at 00:30 local on 11-29 processes 11-28 (not the UTC date's eve).
        assert_eq!(
            business_date(early.business_date, early.timezone, fires[0]),
            day(11, 28)
        );
        let nightly = &project.jobs["nightly"];
        let fires = next_fires(
            &nightly.schedule,
            nightly.timezone,
            at(2026, 11, 28, 0, 0),
            1,
        );
        assert_eq!(fires, [at(2026, 11, 28, 18, 0)]);

        // The operator's view of the same.
        let out = qinglian(
            &[
                "jobs",
                "next",
                "early",
                "--after",
                "2026-11-28T00:00:00Z",
                "--count",
                "2",
                "--json",
                "--project",
                dir.path().to_str().expect("utf-8"),
            ],
            None,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(json["fires"][0]["utc"], "2026-11-28T16:30:00Z");
        assert_eq!(json["fires"][0]["local"], "2026-11-29T00:30:00+08:00");
        assert_eq!(json["fires"][0]["business_date"], "2026-11-28");
        let out = qinglian(
            &[
                "jobs",
                "next",
                "--cron",
                "0 2 * * *",
                "--tz",
                "Asia/Shanghai",
                "--after",
                "2026-11-28T00:00:00Z",
            ],
            None,
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("2026-11-28T18:00:00Z")
                && text.contains("2026-11-29 02:00:00 +08:00")
                && text.contains("2026-11-28"),
            "{text}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn after_a_week_down_each_catch_up_policy_runs_what_it_says() {
        let (_dir, project) = project_with(&[]);
        // Down from 11-20 19:00 UTC to 11-27 20:00 UTC: seven nightly ticks
        // (18:00 UTC = 02:00 next day in Shanghai) processing 11-21 … 11-27.
        let down = at(2026, 11, 20, 19, 0);
        let back = at(2026, 11, 27, 20, 0);
        let cases = [
            (
                CatchUp::All { max_dates: 7 },
                (21..=27).map(|d| day(11, d)).collect::<Vec<_>>(),
                0,
            ),
            (
                CatchUp::All { max_dates: 3 },
                (25..=27).map(|d| day(11, d)).collect(),
                4,
            ),
            (CatchUp::Latest, vec![day(11, 27)], 6),
            (CatchUp::Skip, vec![], 7),
        ];
        for (policy, expected, skipped) in cases {
            let mut job = project.jobs["nightly"].clone();
            job.catch_up = policy;
            let clock = Arc::new(ManualClock::new(back));
            let runner = Fake::new(&clock, TimeDelta::minutes(20), vec![]);
            let (_wh, mut s) = scheduler(job, &clock, runner, Some(down)).await;
            s.run(Some(back + TimeDelta::minutes(1))).await;
            assert_eq!(dates(&s), expected, "{policy:?}");
            assert_eq!(s.skipped.len(), skipped, "{policy:?}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_run_longer_than_its_interval_never_overlaps_the_next() {
        let (_dir, project) = project_with(&[(
            "hourly",
            "name = \"hourly\"\npipeline = \"nightly\"\ncron = \"0 * * * *\"\ntimezone = \"Asia/Shanghai\"\nbusiness_date = \"same_day\"\nmax_run_minutes = 600\nretries = 0\nretry_backoff_seconds = 60\n[catch_up]\npolicy = \"latest\"\n",
        )]);
        let job = project.jobs["hourly"].clone();
        let start = at(2026, 11, 28, 0, 0);
        let clock = Arc::new(ManualClock::new(start));
        // Every run takes 2 h 30 min of an hourly schedule.
        let runner = Fake::new(&clock, TimeDelta::minutes(150), vec![]);
        let (_wh, mut s) = scheduler(job, &clock, runner, Some(start)).await;
        s.run(Some(start + TimeDelta::hours(12))).await;
        let events = &s.events;
        assert!(events.len() >= 4, "{events:#?}");
        for pair in events.windows(2) {
            assert!(pair[1].started_at >= pair[0].finished_at, "{pair:#?}");
        }
        assert!(!s.skipped.is_empty() || events.len() < 12);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_run_is_retried_with_backoff_and_never_stops_the_daemon() {
        let (_dir, project) = project_with(&[]);
        let job = project.jobs["nightly"].clone(); // retries 2, backoff 300 s
        let start = at(2026, 11, 28, 17, 0);
        let clock = Arc::new(ManualClock::new(start));
        let script = vec![
            Outcome::Finished(RunStatus::Failed),
            Outcome::Error("warehouse unreachable".into()),
            Outcome::Finished(RunStatus::Succeeded),
            // The next night fails every attempt; the daemon goes on.
            Outcome::Finished(RunStatus::Failed),
            Outcome::Finished(RunStatus::Failed),
            Outcome::Finished(RunStatus::Failed),
        ];
        let runner = Fake::new(&clock, TimeDelta::minutes(10), script);
        let (_wh, mut s) = scheduler(job, &clock, runner, Some(start)).await;
        s.run(Some(at(2026, 11, 30, 19, 0))).await;
        let attempts: Vec<(NaiveDate, u32)> = s
            .events
            .iter()
            .map(|e| (e.business_date, e.attempt))
            .collect();
        assert_eq!(
            attempts,
            [
                (day(11, 28), 1),
                (day(11, 28), 2),
                (day(11, 28), 3),
                (day(11, 29), 1),
                (day(11, 29), 2),
                (day(11, 29), 3),
                (day(11, 30), 1),
            ]
        );
        // Backoff: 300 s after the first failure, 600 s after the second.
        let gap = |i: usize| s.events[i + 1].started_at - s.events[i].finished_at;
        assert_eq!(
            (gap(0), gap(1)),
            (TimeDelta::seconds(300), TimeDelta::seconds(600))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_serves_its_metrics_in_the_prometheus_text_format() {
    use qinglian::schedule::{Event, Observer, Outcome};
    let feeds = tempfile::tempdir().expect("tmp");
    let warehouse = tempfile::tempdir().expect("tmp");
    generate(feeds.path(), 30);
    let run = crate::ingest::ingest(feeds.path(), warehouse.path()).await;
    let metrics = Arc::new(qinglian::metrics::Metrics::new());
    metrics.run_finished("nightly", &run);
    metrics.attempt(&Event {
        job: "nightly".into(),
        business_date: date(),
        attempt: 1,
        started_at: run.started_at,
        finished_at: run.started_at,
        outcome: Outcome::Finished(RunStatus::Succeeded),
    });
    metrics.warehouse_error("nightly");
    let addr = qinglian::metrics::serve(Arc::clone(&metrics), "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("serve");
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("get")
        .text()
        .await
        .expect("text");
    let registry = run
        .feeds
        .iter()
        .find(|f| f.feed == "registry")
        .expect("registry");
    for line in [
        "qinglian_runs_total{job=\"nightly\",outcome=\"succeeded\"} 1".to_string(),
        format!(
            "qinglian_feed_rows_total{{feed=\"registry\",kind=\"landed\"}} {}",
            registry.landed
        ),
        "qinglian_warehouse_errors_total{job=\"nightly\"} 1".to_string(),
        "qinglian_stage_duration_seconds{job=\"nightly\",stage=\"score\"}".to_string(),
        "qinglian_last_success_timestamp_seconds{job=\"nightly\"}".to_string(),
        format!(
            "qinglian_warnings{{job=\"nightly\",state=\"generated\"}} {}",
            run.warnings.as_ref().expect("warnings").by_state["generated"]
        ),
        "qinglian_warnings{job=\"nightly\",state=\"closed\"} 0".to_string(),
        "qinglian_warnings_overdue{job=\"nightly\",kind=\"signature\"} 0".to_string(),
    ] {
        assert!(text.contains(&line), "{line} missing from:\n{text}");
    }
}

fn qinglian_with_feeds(feeds: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_qinglian"))
        .args(args)
        .env("QINGLIAN_FEEDS", feeds)
        .env("QINGLIAN_PERSON_KEY", crate::ingest::KEY)
        .env_remove("QINGLIAN_PLATFORM_URL")
        .env_remove("QINGLIAN_PLATFORM_BUCKET")
        .output()
        .expect("qinglian")
}

#[test]
fn backfill_runs_dates_in_order_and_resumes_past_published_ones() {
    let feeds = tempfile::tempdir().expect("tmp");
    let warehouse = tempfile::tempdir().expect("tmp");
    generate(feeds.path(), 30);
    let root = root();
    let args = |force: bool| {
        let mut a = vec![
            "backfill",
            "nightly",
            "--from",
            "2026-11-26",
            "--to",
            "2026-11-28",
            "--project",
            root.to_str().expect("utf-8"),
            "--warehouse",
            warehouse.path().to_str().expect("utf-8"),
        ];
        if force {
            a.push("--force");
        }
        a
    };
    let out = qinglian_with_feeds(feeds.path(), &args(false));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let runs: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("run "))
        .map(|l| l.split_whitespace().next().unwrap_or_default())
        .collect();
    assert_eq!(
        runs,
        [
            "nightly-20261126-01",
            "nightly-20261127-01",
            "nightly-20261128-01"
        ]
    );
    // Again: every date is published, nothing runs.
    let out = qinglian_with_feeds(feeds.path(), &args(false));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert_eq!(text.matches("already published").count(), 3, "{text}");
    assert!(!text.contains("\nrun "), "{text}");
    // --force re-runs them as new attempts.
    let out = qinglian_with_feeds(feeds.path(), &args(true));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("run nightly-20261128-02"), "{text}");
}

#[test]
fn the_scheduler_refuses_a_bad_job_at_start_naming_file_and_key() {
    let jobs = tempfile::tempdir().expect("tmp");
    std::fs::write(
        jobs.path().join("weekly.toml"),
        "name = \"weekly\"\npipeline = \"nightly\"\ncron = \"0 2 * * 8\"\ntimezone = \"Asia/Shanghia\"\nbusiness_date = \"previous_day\"\nmax_run_minutes = 60\nretries = 0\nretry_backoff_seconds = 60\n[catch_up]\npolicy = \"skip\"\n",
    )
    .expect("job");
    let out = crate::support::qinglian(
        &[
            "schedule",
            "--project",
            root().to_str().expect("utf-8"),
            "--jobs",
            jobs.path().to_str().expect("utf-8"),
        ],
        None,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("weekly.toml") && err.contains("timezone") && err.contains("Asia/Shanghia"),
        "{err}"
    );
    assert!(err.contains("cron"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_warehouse_is_retried_with_backoff_and_counted() {
    use std::sync::Mutex;

    use chrono::TimeDelta;
    use qinglian::clock::{Clock, ManualClock};
    use qinglian::schedule::{JobRunner, Observer, Outcome, Scheduler};

    /// Counts warehouse errors with the scheduler time they happened at.
    struct Errors(Arc<ManualClock>, Mutex<Vec<chrono::DateTime<Utc>>>);
    impl Observer for Errors {
        fn warehouse_error(&self, _job: &str) {
            if let Ok(mut e) = self.1.lock() {
                e.push(self.0.now());
            }
        }
    }
    struct NeverRuns;
    impl JobRunner for NeverRuns {
        fn run<'a>(
            &'a self,
            _job: &'a qinglian::project::Job,
            _date: chrono::NaiveDate,
            _cancel: CancellationToken,
        ) -> futures::future::BoxFuture<'a, Outcome> {
            Box::pin(async { Outcome::Error("must not run without its state".into()) })
        }
    }

    let project = qinglian::project::Project::load(&root()).expect("project");
    let warehouse = tempfile::tempdir().expect("tmp");
    // `state` is a file: every read of the scheduler's state fails.
    std::fs::write(warehouse.path().join("state"), b"not a folder").expect("write");
    let (store, prefix) = warehouse_store(warehouse.path());
    let start = Utc
        .with_ymd_and_hms(2026, 11, 28, 12, 0, 0)
        .single()
        .expect("t");
    let clock = Arc::new(ManualClock::new(start));
    let errors = Arc::new(Errors(Arc::clone(&clock), Mutex::new(Vec::new())));
    let mut s = Scheduler::new(
        vec![project.jobs["nightly"].clone()],
        Arc::clone(&clock) as Arc<dyn Clock>,
        qinglian::ledger::Ledger::new(store, prefix),
        NeverRuns,
        CancellationToken::new(),
    )
    .observe(Arc::clone(&errors) as Arc<dyn Observer>);
    s.run(Some(start + TimeDelta::hours(1))).await;
    let at = errors.1.lock().expect("errors").clone();
    assert!(at.len() >= 5, "{at:?}");
    let gaps: Vec<i64> = at.windows(2).map(|w| (w[1] - w[0]).num_seconds()).collect();
    assert_eq!(&gaps[..4], &[5, 10, 20, 40], "doubling backoff");
    assert!(
        s.events.is_empty(),
        "nothing runs without its schedule state"
    );
}
