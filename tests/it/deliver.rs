//! Stage 6, delivery: code changes reach the platform simulator exactly
//! once through faults, outages, wrong secrets and re-runs, and `status`
//! reconciles with the platform's own count.

use std::path::Path;

use chrono::NaiveDate;
use qinglian::deliver::{Endpoint, Outbox, SignedRequest};
use qinglian::ledger::DeliverySummary;
use qinglian::ledger::{RunRecord, RunStatus};
use qinglian::platform::{PlatformFault, PlatformSimulator};
use qinglian::project::Project;

use crate::ingest::{Extras, date, generate, run_project};
use crate::support::{copy_project, qinglian};

const SECRET: &str = "shared-test-secret";

/// The shipped project with a push tuned for tests.
fn project(dir: &Path) -> Project {
    copy_project(dir);
    tune_push(dir);
    Project::load(dir).expect("project")
}

/// Small batches and fast retries for the push of the project in `dir`.
/// The push timeout stays the shipped 30 s, which a busy machine never
/// reaches, so that how many requests a run makes is decided by the
/// platform's faults, not by the load; a test of timeouts shortens it
/// ([`push_timeout`]).
pub(crate) fn tune_push(dir: &Path) {
    let path = dir.join("pipelines/nightly.toml");
    let text = std::fs::read_to_string(&path).expect("pipeline");
    let text = text
        .replace("batch_size = 500", "batch_size = 25")
        .replace("max_retries = 6", "max_retries = 8")
        .replace("retry_base_ms = 500", "retry_base_ms = 20")
        .replace("retry_budget_seconds = 300", "retry_budget_seconds = 20");
    std::fs::write(&path, text).expect("write");
}

/// Sets the push timeout of a project (shipped: 30 s): short only in a
/// test whose platform stalls an answer past it.
pub(crate) fn push_timeout(dir: &Path, seconds: u64) {
    let path = dir.join("pipelines/nightly.toml");
    let text = std::fs::read_to_string(&path).expect("pipeline");
    assert_eq!(
        text.matches("timeout_seconds = 30\n").count(),
        1,
        "one push timeout"
    );
    let text = text.replace(
        "timeout_seconds = 30\n",
        &format!("timeout_seconds = {seconds}\n"),
    );
    std::fs::write(&path, text).expect("write");
}

fn vars(sim: &PlatformSimulator, secret: &str) -> Vec<(String, String)> {
    vec![
        ("QINGLIAN_PLATFORM_URL".into(), sim.url()),
        ("QINGLIAN_PLATFORM_SECRET".into(), secret.into()),
    ]
}

/// A project tuned for tests, generated feeds, a warehouse and a platform.
struct Setup {
    dir: tempfile::TempDir,
    project: Project,
    feeds: tempfile::TempDir,
    warehouse: tempfile::TempDir,
    sim: PlatformSimulator,
}

impl Setup {
    async fn new(orgs: u64) -> Self {
        let dir = tempfile::tempdir().expect("tmp");
        let project = project(dir.path());
        let feeds = tempfile::tempdir().expect("tmp");
        generate(feeds.path(), orgs);
        let sim = PlatformSimulator::start(0, SECRET.as_bytes(), 300)
            .await
            .expect("platform");
        Self {
            dir,
            project,
            feeds,
            warehouse: tempfile::tempdir().expect("tmp"),
            sim,
        }
    }

    async fn run_with(&self, day: NaiveDate, extras: Extras) -> RunRecord {
        run_project(
            &self.project,
            self.feeds.path(),
            self.warehouse.path(),
            day,
            extras,
        )
        .await
    }

    async fn run(&self, day: NaiveDate, secret: &str, full: bool) -> RunRecord {
        let extras = Extras {
            vars: vars(&self.sim, secret),
            full,
            ..Extras::default()
        };
        self.run_with(day, extras).await
    }

    fn status(&self) -> serde_json::Value {
        status(self.dir.path(), self.warehouse.path())
    }

    /// The reconciliation in `status` agrees with the platform's own count.
    fn assert_reconciles(&self) {
        let stats = self.sim.stats();
        let s = self.status();
        assert_eq!(
            s["outbox"]["acknowledged_batches"], stats.accepted_batches,
            "{s:#}"
        );
        assert_eq!(
            s["outbox"]["acknowledged_rows"], stats.accepted_rows,
            "{s:#}"
        );
    }
}

fn delivery(r: &RunRecord) -> &DeliverySummary {
    r.delivery.as_ref().expect("delivery recorded")
}

/// `qinglian status --json` of a warehouse.
fn status(project: &Path, warehouse: &Path) -> serde_json::Value {
    let out = qinglian(
        &[
            "status",
            "--json",
            "--limit",
            "20",
            "--project",
            project.to_str().expect("utf-8"),
            "--warehouse",
            warehouse.to_str().expect("utf-8"),
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("status json")
}

/// Every stored batch has a distinct key and every record went once.
fn assert_each_record_once(sim: &PlatformSimulator) {
    let mut seen = std::collections::BTreeSet::new();
    for b in sim.batches() {
        let day = b.body["business_date"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let kind = b.body["kind"].as_str().unwrap_or_default().to_string();
        for r in b.body["records"].as_array().expect("records") {
            let uscc = r["uscc"].as_str().unwrap_or_default().to_string();
            assert!(
                seen.insert((day.clone(), kind.clone(), uscc.clone())),
                "{uscc} of {day} ({kind}) delivered twice"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_after_the_platform_stored_a_batch_still_leave_one_copy() {
    let mut t = Setup::new(90).await;
    // The stalls below (2.5 s) must outlast the push timeout.
    push_timeout(t.dir.path(), 1);
    t.project = Project::load(t.dir.path()).expect("project");
    let sim = &t.sim;
    sim.inject([
        PlatformFault::ServerErrorAfterStore,
        PlatformFault::TimeoutAfterStore { millis: 2500 },
        PlatformFault::CloseAfterBody,
        PlatformFault::TooManyRequests { seconds: 1 },
        PlatformFault::ServerError,
        PlatformFault::Timeout { millis: 2500 },
    ]);
    let r = t.run(date(), SECRET, false).await;
    assert_eq!(r.status, RunStatus::Succeeded, "{:#?}", r.delivery);
    let d = delivery(&r);
    let changes = r.scoring.as_ref().expect("scored").changes;
    assert!(
        changes > 50,
        "the first run delivers every colour: {changes}"
    );
    assert_eq!(d.rows, changes);
    assert_eq!(d.batches as u64, changes.div_ceil(25));
    assert_eq!((d.acknowledged, d.pending, d.parked), (d.batches, 0, 0));
    // Each fault costs a retry; on a loaded machine a push may also take
    // longer than the one-second timeout and be sent again: a bound.
    assert!(
        d.requests >= d.batches + 6,
        "at least one retry per fault: {} requests for {} batches",
        d.requests,
        d.batches
    );
    let stats = sim.stats();
    assert_eq!(stats.accepted_batches, d.batches as u64);
    assert_eq!(stats.accepted_rows, changes);
    // The first batch was stored by the first fault; three later answers to it
    // (two faults that replay the stored receipt, then success) were repeats.
    assert!(stats.repeats >= 3, "{stats:?}");
    assert_each_record_once(sim);
    crate::oracles::assert_nothing_sent_after_its_acknowledgement(&sim.requests());
    t.assert_reconciles();
    // Bodies follow the documented contract.
    let bodies: Vec<serde_json::Value> = sim.batches().into_iter().map(|b| b.body).collect();
    crate::support::assert_valid_json("push.schema.json", &bodies);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_down_for_a_whole_run_gets_everything_from_the_next() {
    let t = Setup::new(60).await;
    let sim = &t.sim;
    sim.set_down(true);
    let first = t.run(date(), SECRET, false).await;
    assert_eq!(first.status, RunStatus::Degraded);
    let d = delivery(&first);
    assert_eq!((d.acknowledged, d.pending), (0, d.batches));
    assert!(
        d.error.as_deref().unwrap_or_default().contains("503"),
        "{d:#?}"
    );
    assert_eq!(sim.stats().accepted_batches, 0);
    // Published all the same: the version is there for the next run to send.
    assert!(first.manifest.is_some());

    sim.set_down(false);
    let next_day = date().succ_opt().expect("day");
    let second = t.run(next_day, SECRET, false).await;
    assert_eq!(
        second.status,
        RunStatus::Succeeded,
        "{:#?}",
        second.delivery
    );
    let d2 = delivery(&second);
    assert_eq!(d2.acknowledged, d.batches + d2.batches);
    let stats = sim.stats();
    assert_eq!(stats.accepted_rows, d.rows + d2.rows);
    // The first day's batches went before the second day's.
    let mut batches = sim.batches();
    batches.sort_by(|a, b| {
        a.receipt["receipt_id"]
            .as_str()
            .cmp(&b.receipt["receipt_id"].as_str())
    });
    let days: Vec<&str> = batches
        .iter()
        .filter_map(|b| b.body["business_date"].as_str())
        .collect();
    let mut sorted = days.clone();
    sorted.sort();
    assert_eq!(days, sorted);
    crate::oracles::assert_nothing_sent_after_its_acknowledgement(&sim.requests());
    t.assert_reconciles();
    let s = t.status();
    for rec in s["delivery"].as_array().expect("per run") {
        assert_eq!(rec["reconciled"], true, "{rec:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_is_refused_reported_and_not_retried() {
    let t = Setup::new(40).await;
    let sim = &t.sim;
    let r = t.run(date(), "not-the-secret", false).await;
    assert_eq!(r.status, RunStatus::Degraded);
    let d = delivery(&r);
    assert_eq!((d.requests, d.parked, d.acknowledged), (1, 1, 0));
    assert_eq!(d.pending, d.batches - 1, "the rest wait for a fixed secret");
    let error = d.error.clone().unwrap_or_default();
    assert!(
        error.contains("HTTP 401") && error.contains("shared secret"),
        "{error}"
    );
    assert!(
        !error.contains("not-the-secret"),
        "the secret never appears: {error}"
    );
    let stats = sim.stats();
    assert_eq!(
        (
            stats.requests,
            stats.rejected_signatures,
            stats.accepted_batches
        ),
        (1, 1, 0)
    );
    let s = t.status();
    assert_eq!(s["outbox"]["dead_batches"], 1);
    assert_eq!(s["outbox"]["dead"][0]["status"], 401);
    assert!(!s.to_string().contains("not-the-secret"));

    // Fixed: the dead letter goes back to the outbox and everything is delivered once.
    let pipeline = &t.project.pipelines["nightly"];
    let vars = vars(sim, SECRET).into_iter().collect();
    let endpoint = Endpoint::resolve(pipeline, &vars)
        .expect("endpoint")
        .expect("configured");
    let (store, prefix) =
        qinglian::store::open_for_write(t.warehouse.path().to_str().expect("utf-8"))
            .expect("store");
    let outbox = Outbox::new(store, prefix);
    assert_eq!(outbox.requeue_dead().await.expect("requeue"), 1);
    let mut summary = DeliverySummary::default();
    qinglian::deliver::drain(
        &outbox,
        &endpoint,
        &qinglian::clock::SystemClock,
        &mut summary,
    )
    .await
    .expect("drain");
    assert!(summary.complete(), "{summary:#?}");
    assert_eq!(summary.acknowledged, d.batches);
    assert_eq!(sim.stats().accepted_rows, d.rows);
    t.assert_reconciles();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_of_a_published_date_delivers_nothing_twice_and_full_resends_the_state() {
    let t = Setup::new(50).await;
    let sim = &t.sim;
    let first = t.run(date(), SECRET, false).await;
    assert_eq!(first.status, RunStatus::Succeeded);
    let before = sim.stats();
    let again = t.run(date(), SECRET, false).await;
    assert_eq!(again.attempt, 2);
    assert_eq!(again.status, RunStatus::Succeeded, "{:#?}", again.delivery);
    let d = delivery(&again);
    assert_eq!(
        (d.queued, d.already_acknowledged, d.requests),
        (0, d.batches, 0)
    );
    assert_eq!(sim.stats(), before, "nothing sent twice");

    let full = t.run(date(), SECRET, true).await;
    let f = delivery(&full);
    assert_eq!(f.kind, "full");
    let codes = full
        .scoring
        .as_ref()
        .expect("scored")
        .colours
        .iter()
        .filter(|(c, _)| c.as_str() != "none")
        .map(|(_, n)| n)
        .sum::<u64>();
    assert_eq!(f.rows, codes);
    assert_eq!(sim.stats().accepted_rows, before.accepted_rows + codes);
    assert_each_record_once(sim);
    crate::oracles::assert_nothing_sent_after_its_acknowledgement(&sim.requests());
    t.assert_reconciles();
}

/// Sends `body` to `url` with the given key, timestamp and signature
/// header; the platform's status and answer.
async fn post_signed(
    url: &str,
    key: &str,
    ts: &str,
    signature: &str,
    body: Vec<u8>,
) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .post(url)
        .header("Content-Type", "application/json")
        .header("Idempotency-Key", key)
        .header("X-Qinglian-Timestamp", ts)
        .header("X-Qinglian-Signature", signature)
        .body(body)
        .send()
        .await
        .expect("send");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_refuses_a_replayed_or_unsigned_request() {
    let sim = PlatformSimulator::start(0, SECRET.as_bytes(), 300)
        .await
        .expect("platform");
    let body = r#"{"format":1,"records":[{"uscc":"x"}]}"#;
    let send = |ts: i64, secret: &str| {
        let signature = qinglian::deliver::sign(
            secret.as_bytes(),
            &SignedRequest {
                timestamp: ts,
                method: "POST",
                path: qinglian::platform::INTAKE_PATH,
                idempotency_key: "k-1",
                body: body.as_bytes(),
            },
        );
        let url = sim.url();
        async move {
            post_signed(
                &url,
                "k-1",
                &ts.to_string(),
                &signature,
                body.as_bytes().to_vec(),
            )
            .await
            .0
        }
    };
    let now = chrono::Utc::now().timestamp();
    assert_eq!(
        send(now - 3600, SECRET).await,
        401,
        "an hour-old signature is a replay"
    );
    assert_eq!(send(now, "other").await, 401);
    assert_eq!(send(now, SECRET).await, 200);
    assert_eq!(
        send(now, SECRET).await,
        200,
        "a repeat returns the original receipt"
    );
    let stats = sim.stats();
    assert_eq!(
        (
            stats.accepted_batches,
            stats.repeats,
            stats.rejected_signatures
        ),
        (1, 1, 2)
    );
}

/// The signature covers the key and the path: a request captured from a
/// real run, replayed within the window under a new `Idempotency-Key` or to
/// another intake, is refused and stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_captured_push_replayed_under_a_new_key_or_path_is_refused() {
    let t = Setup::new(40).await;
    let r = t.run(date(), SECRET, false).await;
    assert_eq!(r.status, RunStatus::Succeeded, "{:#?}", r.delivery);
    let before = t.sim.stats();
    assert!(before.accepted_batches > 0);
    let captured = t
        .sim
        .requests()
        .into_iter()
        .find(|c| c.path == qinglian::platform::INTAKE_PATH)
        .expect("a pushed request was captured");
    let key = captured.idempotency_key.clone().expect("key");
    let ts = captured.timestamp.clone().expect("timestamp");
    let signature = captured.signature.clone().expect("signature");
    assert!(signature.starts_with("v2="), "{signature}");
    let intake = t.sim.url();
    let other = intake.replace(
        qinglian::platform::INTAKE_PATH,
        qinglian::platform::OTHER_INTAKE_PATH,
    );

    // The same request again is a repeat: the original receipt, nothing new.
    let (status, receipt) =
        post_signed(&intake, &key, &ts, &signature, captured.body.to_vec()).await;
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(receipt["idempotency_key"], key.as_str());

    // Under a new key: refused, with the reason.
    let (status, answer) = post_signed(
        &intake,
        &format!("{key}-replayed"),
        &ts,
        &signature,
        captured.body.to_vec(),
    )
    .await;
    assert_eq!(status, 401, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("idempotency key")),
        "{answer}"
    );
    // To another intake of the same platform: refused.
    let (status, answer) = post_signed(&other, &key, &ts, &signature, captured.body.to_vec()).await;
    assert_eq!(status, 401, "{answer}");

    let after = t.sim.stats();
    assert_eq!(
        after.accepted_batches, before.accepted_batches,
        "no second batch"
    );
    assert_eq!(after.accepted_rows, before.accepted_rows);
    assert_eq!(after.repeats, before.repeats + 1);
    assert_eq!(after.rejected_signatures, before.rejected_signatures + 2);
    assert_eq!(t.sim.batches().len() as u64, before.accepted_batches);
    t.assert_reconciles();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_parquet_drop_lands_a_verified_version_in_the_platforms_bucket() {
    let moto = crate::conformance::Moto::start("platform").await;
    let t = Setup::new(40).await;
    let mut vars: Vec<(String, String)> = moto.vars().into_iter().collect();
    vars.push((
        "QINGLIAN_PLATFORM_BUCKET".into(),
        "s3://platform/qinglian".into(),
    ));
    let extras = Extras {
        vars: vars.clone(),
        ..Extras::default()
    };
    let r = t.run_with(date(), extras).await;
    assert_eq!(r.status, RunStatus::Succeeded, "{:#?}", r.drop);
    let drop = r.drop.as_ref().expect("drop recorded");
    assert_eq!(drop.manifest, r.manifest);
    let (store, prefix) =
        qinglian::store::open_with("s3://platform/qinglian", false, &vars.into_iter().collect())
            .expect("bucket");
    let there = qinglian::catalog::Published::latest(&store, &prefix, date())
        .await
        .expect("readable")
        .expect("the manifest is in the bucket");
    assert_eq!(Some(there.path.clone()), r.manifest);
    there
        .verify(&["profiles", "hits", "codes", "changes", "quarantine", "runs"])
        .await
        .expect("every file arrived intact");
    assert_eq!(
        drop.files as usize,
        there
            .manifest
            .datasets
            .values()
            .map(|d| d.files.len())
            .sum::<usize>()
    );
}
