//! Crash recovery: the nightly run as a child process (feeds from the feed
//! simulator, pushes to the platform simulator, both on 127.0.0.1) killed
//! with SIGKILL at every stage boundary, inside and between the sends of
//! its push batches (4 changes each) and at random instants, then run
//! again for the same business date. Every time, the published version is
//! byte for byte that of an uninterrupted run, the platform accepted every
//! change exactly once, nothing partial is visible, the killed run is on
//! record as interrupted and every watermark points at data that landed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use qinglian::catalog::Published;
use qinglian::layout::warnings::{INBOX_DIR, RECEIVED_DIR};
use qinglian::ledger::{Ledger, RunStatus};
use qinglian::platform::{PlatformFault, PlatformSimulator};
use rand::{Rng, SeedableRng};

use crate::ingest::{KEY, date, generate};
use crate::support::root;

const SECRET: &str = "crash-test-secret";

struct World {
    _feeds: tempfile::TempDir,
    _sim: qinglian::simulator::FeedSimulator,
    project: tempfile::TempDir,
}

impl World {
    async fn new(orgs: u64) -> Self {
        let feeds = tempfile::tempdir().expect("tmp");
        generate(feeds.path(), orgs);
        let sim = qinglian::simulator::FeedSimulator::start(feeds.path(), 0, None)
            .await
            .expect("feed simulator");
        let project = tempfile::tempdir().expect("tmp");
        qinglian::simulator::write_http_project(&root(), project.path(), &sim.url())
            .expect("project");
        Self {
            _feeds: feeds,
            _sim: sim,
            project,
        }
    }

    fn command(&self, warehouse: &Path, platform: &PlatformSimulator) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_qinglian"));
        c.args([
            "run",
            "nightly",
            "--date",
            "2026-11-28",
            "--lease-seconds",
            "30",
        ])
        .arg("--project")
        .arg(self.project.path())
        .arg("--warehouse")
        .arg(warehouse)
        .env("QINGLIAN_PERSON_KEY", KEY)
        .env("QINGLIAN_PLATFORM_URL", platform.url())
        .env("QINGLIAN_PLATFORM_SECRET", SECRET)
        .env_remove("QINGLIAN_PLATFORM_BUCKET")
        .env_remove("QINGLIAN_LOG");
        c
    }

    /// Runs to the end (in a thread: the simulators live on this runtime).
    async fn run(&self, warehouse: &Path, platform: &PlatformSimulator) -> Output {
        let mut c = self.command(warehouse, platform);
        tokio::task::spawn_blocking(move || c.output().expect("qinglian"))
            .await
            .expect("join")
    }
}

/// Checksums of the datasets that must not depend on the attempt.
async fn checksums(warehouse: &Path) -> BTreeMap<String, Vec<String>> {
    let (store, prefix) =
        qinglian::store::open(warehouse.to_str().expect("utf-8")).expect("warehouse");
    let p = Published::latest(&store, &prefix, date())
        .await
        .expect("readable manifest")
        .expect("published");
    p.verify(&["profiles", "hits", "codes", "changes", "quarantine", "runs"])
        .await
        .expect("nothing partial or altered is visible");
    crate::support::reproducible_sums(&p)
}

/// A moment of the run, seen from the warehouse.
fn reached(warehouse: &Path, point: &str) -> bool {
    use qinglian::layout;
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 28).expect("a date");
    let count = |dir: &str| {
        std::fs::read_dir(warehouse.join(dir)).map_or(0, |d| d.filter_map(Result::ok).count())
    };
    let feeds_recorded = || -> usize {
        let Ok(dir) = std::fs::read_dir(warehouse.join(layout::runs_dir(day))) else {
            return 0;
        };
        dir.filter_map(Result::ok)
            .filter_map(|e| std::fs::read(e.path()).ok())
            .filter_map(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .filter(|r| r["status"] == "running")
            .map(|r| r["feeds"].as_array().map_or(0, Vec::len))
            .max()
            .unwrap_or(0)
    };
    match point {
        "started" => count(&layout::runs_dir(day)) > 0,
        "scored" => count(&layout::published_day("profiles", day)) > 0,
        "published" => count(&layout::manifest_dir(day)) > 0,
        "queued" => {
            count(&layout::outbox_area("pending")) + count(&layout::outbox_area("acknowledged")) > 0
        }
        "delivering" => count(&layout::outbox_area("acknowledged")) > 0,
        feeds => feeds
            .strip_prefix("feeds ")
            .and_then(|n| n.parse::<usize>().ok())
            .is_some_and(|n| feeds_recorded() >= n),
    }
}

/// Changes per push batch in the harness's project (the shipped 500 would
/// put every change of 60 organizations in one batch, and no kill could
/// fall between two sends).
const BATCH_SIZE: u32 = 4;

/// How long the platform holds the request a kill is meant to fall inside
/// (or the one after a boundary between sends): far longer than the
/// poller's period even on a loaded machine.
const HOLD_MS: u64 = 3_000;

/// Batches the platform stored (changes and warnings).
fn stored(platform: &PlatformSimulator) -> u64 {
    let s = platform.stats();
    s.accepted_batches + s.accepted_warning_batches
}

/// Batches whose receipt an outbox recorded (the changes' and the
/// warnings' own).
fn acknowledged(warehouse: &Path) -> u64 {
    let area = qinglian::layout::outbox_area("acknowledged");
    [area.clone(), format!("warnings/{area}")]
        .iter()
        .map(|dir| {
            std::fs::read_dir(warehouse.join(dir)).map_or(0, |d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                    .count() as u64
            })
        })
        .sum()
}

/// Where a kill is aimed.
#[derive(Debug, Clone)]
enum Aim {
    /// A stage boundary seen from the warehouse ([`reached`]).
    Stage(String),
    /// While the platform holds batch `k`: stored, not yet answered.
    InsideSend(u64),
    /// After the receipt of batch `k` was recorded, before batch `k + 1`
    /// was stored (the platform holds it unstored).
    BetweenSends(u64),
    /// At an instant.
    After(Duration),
}

impl Aim {
    /// Faults that hold the platform where the kill is aimed, so that the
    /// poller sees the moment however loaded the machine is; `done` batches
    /// were acknowledged before this attempt (an earlier kill), which sends
    /// the rest from the first unacknowledged one, in order.
    fn faults(&self, done: u64) -> Vec<PlatformFault> {
        let pass = PlatformFault::TimeoutAfterStore { millis: 0 };
        match self {
            // Delivery held at its first request: the process lives on
            // after every earlier boundary.
            Aim::Stage(_) => vec![PlatformFault::Timeout { millis: HOLD_MS }],
            Aim::InsideSend(k) => {
                let mut f = vec![pass; (*k - done - 1) as usize];
                f.push(PlatformFault::TimeoutAfterStore { millis: HOLD_MS });
                f
            }
            Aim::BetweenSends(k) => {
                let mut f = vec![pass; (*k - done) as usize];
                f.push(PlatformFault::Timeout { millis: HOLD_MS });
                f
            }
            Aim::After(_) => Vec::new(),
        }
    }

    fn due(
        &self,
        warehouse: &Path,
        platform: &PlatformSimulator,
        since: Instant,
        fault_count: u64,
    ) -> bool {
        match self {
            Aim::Stage(p) => reached(warehouse, p),
            Aim::InsideSend(k) => stored(platform) >= *k && acknowledged(warehouse) < *k,
            // The next batch already held unstored: no fault is left over
            // for the re-run.
            Aim::BetweenSends(k) => {
                acknowledged(warehouse) >= *k
                    && stored(platform) == *k
                    && platform.stats().faults_served == fault_count
            }
            Aim::After(d) => since.elapsed() >= *d,
        }
    }
}

/// How a kill went.
#[derive(Debug, PartialEq, Eq)]
enum Kill {
    /// Killed while the run was where the kill was aimed.
    Hit,
    /// The run finished first.
    Finished,
    /// Never reached in two minutes (killed then).
    Missed,
}

/// Kills `child` with SIGKILL when `aim` is due, polling every 10 ms.
async fn kill_at(
    mut child: Child,
    warehouse: &Path,
    platform: &PlatformSimulator,
    aim: &Aim,
    fault_count: u64,
) -> Kill {
    let start = Instant::now();
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return Kill::Finished;
        }
        let due = aim.due(warehouse, platform, start, fault_count);
        if due || start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = tokio::task::spawn_blocking(move || child.wait()).await;
            return if due { Kill::Hit } else { Kill::Missed };
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_every_boundary_and_at_random_the_rerun_publishes_and_delivers_exactly_once() {
    let world = World::new(60).await;
    let nightly = world.project.path().join("pipelines/nightly.toml");
    let text = std::fs::read_to_string(&nightly).expect("nightly");
    assert!(text.contains("batch_size = 500"), "the shipped batch size");
    std::fs::write(
        &nightly,
        text.replace("batch_size = 500", &format!("batch_size = {BATCH_SIZE}")),
    )
    .expect("write");
    // The uninterrupted run.
    let reference = tempfile::tempdir().expect("tmp");
    let platform = PlatformSimulator::start(0, SECRET.as_bytes(), 300)
        .await
        .expect("platform");
    let started = Instant::now();
    let out = world.run(reference.path(), &platform).await;
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = checksums(reference.path()).await;
    let delivered = platform.stats();
    let bodies = bodies(&platform);
    let states = feed_states(reference.path()).await;
    assert!(delivered.accepted_rows > 40);
    let batches = stored(&platform);
    assert_eq!(acknowledged(reference.path()), batches);
    assert!(
        delivered.accepted_batches >= 10,
        "{} batches of at most {BATCH_SIZE} changes",
        delivered.accepted_batches
    );
    println!(
        "uninterrupted: {took:?}, {batches} batches ({} of changes, {} rows)",
        delivered.accepted_batches, delivered.accepted_rows
    );

    let mut aims: Vec<(String, Vec<Aim>)> = ["started"]
        .into_iter()
        .map(str::to_string)
        .chain((1..=10).map(|n| format!("feeds {n}")))
        .chain(["scored", "published", "queued"].map(str::to_string))
        .map(|p| (p.clone(), vec![Aim::Stage(p)]))
        .collect();
    // Inside the first, a middle and the last send; between the first two,
    // two in the middle and the last two.
    let mid = batches / 2;
    for k in [1, mid, batches] {
        aims.push((
            format!("inside send {k} of {batches}"),
            vec![Aim::InsideSend(k)],
        ));
    }
    for k in [1, mid, batches - 1] {
        aims.push((
            format!("between sends {k} and {} of {batches}", k + 1),
            vec![Aim::BetweenSends(k)],
        ));
    }
    // Two crashes in a row: the re-run killed too, further on.
    aims.push((
        format!(
            "inside send {mid}, then between sends {} and {}",
            mid + 2,
            mid + 3
        ),
        vec![Aim::InsideSend(mid), Aim::BetweenSends(mid + 2)],
    ));
    aims.push((
        format!("between sends 1 and 2, then inside send {batches}"),
        vec![Aim::BetweenSends(1), Aim::InsideSend(batches)],
    ));
    aims.push((
        "inside send 1, then inside send 2".to_string(),
        vec![Aim::InsideSend(1), Aim::InsideSend(2)],
    ));
    let required = aims.len();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(20_261_129);
    for i in 0..20 {
        let ms = rng.random_range(0..took.as_millis().max(1) as u64);
        aims.push((
            format!("random {i} at {ms} ms"),
            vec![Aim::After(Duration::from_millis(ms))],
        ));
    }
    let mut outcomes = Vec::new();
    for (i, (name, sequence)) in aims.iter().enumerate() {
        let warehouse = tempfile::tempdir().expect("tmp");
        let platform = PlatformSimulator::start(0, SECRET.as_bytes(), 300)
            .await
            .expect("platform");
        // Every child started is an attempt on record, whether the kill
        // fell before its end or it finished first (a random instant on a
        // machine that got faster than the reference run).
        let mut started = 0;
        for aim in sequence {
            let faults = aim.faults(acknowledged(warehouse.path()));
            let fault_count = platform.stats().faults_served + faults.len() as u64;
            platform.inject(faults);
            let child = world
                .command(warehouse.path(), &platform)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn");
            let kill = kill_at(child, warehouse.path(), &platform, aim, fault_count).await;
            if i < required {
                assert_eq!(
                    kill,
                    Kill::Hit,
                    "{name}: the kill at {aim:?} did not fall where aimed"
                );
            }
            started += 1;
            outcomes.push((name.clone(), kill));
        }
        // Run the same date again, to the end.
        let out = world.run(warehouse.path(), &platform).await;
        assert!(
            out.status.success(),
            "{name}: the re-run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(checksums(warehouse.path()).await, expected, "{name}");
        let stats = platform.stats();
        assert_eq!(
            (stats.accepted_batches, stats.accepted_rows),
            (delivered.accepted_batches, delivered.accepted_rows),
            "{name}: every change accepted exactly once"
        );
        assert_eq!(
            (stats.accepted_warning_batches, stats.accepted_warnings),
            (
                delivered.accepted_warning_batches,
                delivered.accepted_warnings
            ),
            "{name}: every warning accepted exactly once"
        );
        assert_eq!(
            self::bodies(&platform),
            bodies,
            "{name}: the batches stored, key by key, are the uninterrupted run's"
        );
        check_ledger_and_watermarks(warehouse.path(), started, name, &states).await;
    }
    let aimed = aims[..required].iter().map(|(_, s)| s.len()).sum::<usize>();
    let random_hits = outcomes[aimed..]
        .iter()
        .filter(|(_, k)| *k == Kill::Hit)
        .count();
    println!(
        "{aimed} aimed kills all hit; {random_hits} of {} random instants fell before the end",
        outcomes.len() - aimed
    );
}

/// The batches the platform stored, by idempotency key.
fn bodies(platform: &PlatformSimulator) -> BTreeMap<String, serde_json::Value> {
    platform
        .batches()
        .into_iter()
        .chain(platform.warning_batches())
        .map(|b| (b.key, b.body))
        .collect()
}

/// Every feed's state after a run, by feed.
async fn feed_states(warehouse: &Path) -> BTreeMap<String, qinglian::ledger::FeedState> {
    let (store, prefix) =
        qinglian::store::open(warehouse.to_str().expect("utf-8")).expect("warehouse");
    let ledger = Ledger::new(store, prefix);
    let mut out = BTreeMap::new();
    for feed in FEEDS {
        let state = ledger
            .feed_state(feed)
            .await
            .expect("state")
            .expect("every feed has a snapshot");
        out.insert(feed.to_string(), state);
    }
    out
}

const FEEDS: [&str; 10] = [
    "registry",
    "persons",
    "annual_reports",
    "ratings",
    "projects",
    "drc",
    "police",
    "court",
    "credit",
    "inspection",
];

async fn check_ledger_and_watermarks(
    warehouse: &Path,
    started: usize,
    name: &str,
    reference: &BTreeMap<String, qinglian::ledger::FeedState>,
) {
    let (store, prefix) =
        qinglian::store::open(warehouse.to_str().expect("utf-8")).expect("warehouse");
    let ledger = Ledger::new(store.clone(), prefix.clone());
    let runs = ledger.runs_of(date()).await.expect("ledger");
    let last = runs.last().expect("a run");
    assert!(
        matches!(last.status, RunStatus::Succeeded),
        "{name}: {last:#?}"
    );
    // A killed attempt is on record as interrupted (found abandoned by the
    // re-run), or as succeeded when the kill came after it had finished.
    for r in &runs[..runs.len() - 1] {
        assert!(
            matches!(r.status, RunStatus::Interrupted | RunStatus::Succeeded),
            "{name}: the killed run is on record as {:?}",
            r.status
        );
    }
    assert!(
        runs.len() <= started + 1,
        "{name}: {} attempts on record for {started} started and one re-run",
        runs.len()
    );
    // Each watermark against the snapshot it names: the landed data of its
    // run and date, holding the rows it counts, the one the published
    // version scored, and the source position of the uninterrupted run.
    let published = Published::latest(&store, &prefix, date())
        .await
        .expect("readable manifest")
        .expect("published");
    let states = feed_states(warehouse).await;
    for (feed, state) in &states {
        let want = &reference[feed];
        assert_eq!(
            state.snapshot,
            qinglian::layout::landed_data(feed, state.business_date, &state.run_id),
            "{name}: {feed}'s watermark names a snapshot of another run or date"
        );
        assert_eq!(state.business_date, date(), "{name}: {feed}");
        let snapshot: PathBuf = warehouse.join(&state.snapshot);
        assert!(
            snapshot.is_file(),
            "{name}: {feed}'s watermark points at {snapshot:?}, which did not land"
        );
        let rows: usize = crate::support::read_parquet(&snapshot)
            .await
            .iter()
            .map(|b| b.num_rows())
            .sum();
        assert_eq!(
            (rows as u64, state.rows),
            (want.rows, want.rows),
            "{name}: {feed}'s snapshot rows and the rows its watermark counts"
        );
        assert_eq!(
            state.watermark, want.watermark,
            "{name}: {feed}'s source watermark"
        );
        assert_eq!(
            published.manifest.inputs[feed].path.as_deref(),
            Some(state.snapshot.as_str()),
            "{name}: the published version scored {feed}'s snapshot the watermark names"
        );
    }
}

/// The receive → record boundary of the disposition intake: `qinglian
/// intake` killed with SIGKILL after it kept a request and before it
/// recorded the disposition (the intake waits there on purpose), then
/// started again. The restart replays the kept request; the platform, which
/// never got an answer, sends it again: the disposition is recorded once,
/// and the answer is a duplicate of the one recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_between_receiving_and_recording_a_disposition_loses_nothing_and_applies_nothing_twice()
 {
    let world = World::new(40).await;
    let warehouse = tempfile::tempdir().expect("tmp");
    let platform = PlatformSimulator::start(0, SECRET.as_bytes(), 300)
        .await
        .expect("platform");
    let out = world.run(warehouse.path(), &platform).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (store, prefix) =
        qinglian::store::open(warehouse.path().to_str().expect("utf-8")).expect("warehouse");
    let p = Published::latest(&store, &prefix, date())
        .await
        .expect("readable")
        .expect("published");
    let warnings = qinglian::warnings::published_warnings(&p)
        .await
        .expect("warnings");
    let w = warnings.first().expect("a warning");
    let body = serde_json::json!({"format": 1, "records": [{
        "warning_id": w.warning_id, "sequence": 1, "uscc": w.uscc, "state": "signed",
        "time": "2026-11-29T10:00:00+08:00", "handling_unit": "杭州市民政局"
    }]})
    .to_string();
    // Each intake binds a port the OS picks and says which on stderr; the
    // test reads it there, so no port is chosen, closed and hoped free.
    let intake = |pause_ms: u64| -> (Child, String) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_qinglian"))
            .args(["intake", "--listen", "127.0.0.1:0"])
            .arg("--pause-after-receive-ms")
            .arg(pause_ms.to_string())
            .arg("--project")
            .arg(world.project.path())
            .arg("--warehouse")
            .arg(warehouse.path())
            .env("QINGLIAN_PLATFORM_SECRET", SECRET)
            .env_remove("QINGLIAN_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn intake");
        let url = crate::support::announced(&mut child, "listening for dispositions at ")
            .expect("the intake never said where it listens");
        (child, url)
    };
    let send = |url: &str| {
        let (url, body) = (url.to_string(), body.clone());
        async move {
            let ts = chrono::Utc::now().timestamp();
            let signature = qinglian::deliver::sign(
                SECRET.as_bytes(),
                &qinglian::deliver::SignedRequest {
                    timestamp: ts,
                    method: "POST",
                    path: "/intake/dispositions",
                    idempotency_key: "crash-1",
                    body: body.as_bytes(),
                },
            );
            reqwest::Client::new()
                .post(&url)
                .header("Idempotency-Key", "crash-1")
                .header("X-Qinglian-Timestamp", ts.to_string())
                .header("X-Qinglian-Signature", signature)
                .body(body)
                .timeout(Duration::from_secs(30))
                .send()
                .await
        }
    };
    let files = |dir: &str| -> usize { walk(&warehouse.path().join(dir)) };
    // Killed after keeping the request, before recording it.
    let (mut child, url) = intake(5_000);
    let pending = tokio::spawn(send(&url));
    let started = Instant::now();
    while files(RECEIVED_DIR) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the request was never kept"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    assert!(
        pending.await.expect("join").is_err(),
        "no answer came from a killed intake"
    );
    assert_eq!(files(INBOX_DIR), 0, "nothing recorded before the kill");
    // Started again: the kept request is replayed and recorded.
    let (mut child, url) = intake(0);
    assert_eq!(
        files(INBOX_DIR),
        1,
        "the kept request was recorded on restart"
    );
    assert_eq!(files(RECEIVED_DIR), 0);
    // The platform sends it again: the receipt of the replay, nothing twice.
    let answer = send(&url).await.expect("answer");
    assert_eq!(answer.status(), 200);
    let receipt: serde_json::Value = answer.json().await.expect("receipt");
    assert_eq!(receipt["accepted_rows"], 1, "{receipt}");
    assert_eq!(receipt["records"][0]["status"], "recorded", "{receipt}");
    assert_eq!(files(INBOX_DIR), 1, "recorded once");
    child.kill().expect("stop");
    let _ = child.wait();
    // The next night applies it exactly once.
    let inbox = qinglian::warnings::inbox::Inbox::new(store, prefix);
    let recorded = inbox.of_warning(&w.warning_id).await.expect("inbox");
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].disposition.state, "signed");
}

/// Complete JSON files under a directory, recursively (0 when it does not
/// exist); a put still being staged is not one.
fn walk(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| {
            if e.path().is_dir() {
                walk(&e.path())
            } else {
                usize::from(e.path().extension().is_some_and(|x| x == "json"))
            }
        })
        .sum()
}
