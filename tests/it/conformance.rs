//! One conformance suite for every object-store backend: the object_store
//! source and the warehouse behave the same on the local filesystem and on
//! a real S3-compatible server (moto's standalone server, started here on
//! 127.0.0.1; `./scripts/test` installs it).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use qinglian::catalog::Published;
use qinglian::clock::FixedClock;
use qinglian::lease::{Lease, LeaseError};
use qinglian::ledger::{FeedStatus, Ledger, RunRecord, RunStatus};
use qinglian::project::Project;
use qinglian::run::{RunOptions, run_pipeline};

use crate::ingest::{KEY, date, generate};
use crate::support::root;

/// A moto S3 server on 127.0.0.1 for the life of the value.
pub(crate) struct Moto {
    child: Child,
    pub(crate) port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    /// Starts moto on a port the OS chooses (`-p 0`; the server prints the
    /// one it bound), so no other process can take the port between its
    /// choice and the bind.
    pub(crate) async fn start(bucket: &str) -> Moto {
        let mut child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("moto_server must be installed (pip install 'moto[server]'); ./scripts/test does it");
        // Under a loaded machine moto's start can take seconds: wait long.
        let port = crate::support::announced(&mut child, "Running on http://127.0.0.1:")
            .and_then(|p| p.parse::<u16>().ok())
            .expect("moto_server announces the port it listens on");
        let moto = Moto { child, port };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            // Buckets are created with a plain PUT: object_store cannot.
            match client
                .put(format!("http://127.0.0.1:{port}/{bucket}"))
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => break,
                _ if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                other => panic!("moto did not start on port {port}: {other:?}"),
            }
        }
        moto
    }

    pub(crate) fn vars(&self) -> BTreeMap<String, String> {
        [
            ("AWS_ENDPOINT", format!("http://127.0.0.1:{}", self.port)),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

/// Copies a local directory into an object-store URL.
async fn upload(dir: &Path, url: &str, vars: &BTreeMap<String, String>) {
    let (store, prefix) = qinglian::store::open_with(url, true, vars).expect("store");
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let rel = p
                .strip_prefix(dir)
                .expect("prefix")
                .to_string_lossy()
                .replace('\\', "/");
            qinglian::store::upload_file(&store, &p, &qinglian::store::join(&prefix, &rel))
                .await
                .expect("upload");
        }
    }
}

/// The suite: ingest from `feeds_url` into `warehouse_url` and check what
/// every backend must do.
async fn conformance(
    feeds_url: &str,
    warehouse_url: &str,
    mut vars: BTreeMap<String, String>,
    written: &BTreeMap<String, u64>,
) -> RunRecord {
    let project = Project::load(&root()).expect("project");
    vars.insert("QINGLIAN_FEEDS".into(), feeds_url.into());
    vars.insert("QINGLIAN_PERSON_KEY".into(), KEY.into());
    let options = RunOptions {
        business_date: date(),
        clock: Arc::new(FixedClock(
            Utc.with_ymd_and_hms(2026, 11, 28, 18, 30, 0)
                .single()
                .expect("t"),
        )),
        warehouse: Some(warehouse_url.into()),
        vars: vars.clone(),
        ..RunOptions::new(date())
    };
    let run = run_pipeline(&project, "nightly", options.clone())
        .await
        .expect("run");
    assert_eq!(
        run.status,
        RunStatus::Succeeded,
        "{warehouse_url}: {run:#?}"
    );
    for f in &run.feeds {
        assert_eq!(f.status, FeedStatus::Landed, "{warehouse_url}: {f:#?}");
        assert!(f.reconciles());
        assert_eq!(
            Some(&f.read),
            written.get(&f.feed),
            "{warehouse_url}: {}",
            f.feed
        );
    }
    // The warehouse holds the ledger, the snapshots and the raw payloads.
    let (store, prefix) = qinglian::store::open_with(warehouse_url, false, &vars).expect("store");
    let ledger = Ledger::new(Arc::clone(&store), prefix.clone());
    let runs = ledger.all_runs().await.expect("ledger");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0], run);
    let state = ledger
        .feed_state("court")
        .await
        .expect("state")
        .expect("court state");
    assert_eq!(
        state.rows,
        run.feeds
            .iter()
            .find(|f| f.feed == "court")
            .map_or(0, |f| f.landed)
    );
    let raw: Vec<_> = store
        .list(Some(&qinglian::store::join(&prefix, "landing/registry")))
        .try_collect()
        .await
        .expect("list");
    assert!(
        raw.iter()
            .any(|m| m.location.as_ref().ends_with("raw/registry.csv.gz")),
        "{raw:?}"
    );
    assert!(
        raw.iter()
            .any(|m| m.location.as_ref().ends_with("data.parquet"))
    );
    // A second attempt lands beside the first.
    let again = run_pipeline(&project, "nightly", options)
        .await
        .expect("run");
    assert_eq!(again.attempt, 2);
    run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_filesystem_and_s3_behave_the_same() {
    let feeds = tempfile::tempdir().expect("tmp");
    let written = generate(feeds.path(), 120);

    let warehouse = tempfile::tempdir().expect("tmp");
    let local = conformance(
        &format!("file://{}", feeds.path().display()),
        &format!("file://{}", warehouse.path().display()),
        BTreeMap::new(),
        &written,
    )
    .await;

    let moto = Moto::start("qinglian").await;
    let vars = moto.vars();
    upload(feeds.path(), "s3://qinglian/feeds", &vars).await;
    let s3 = conformance(
        "s3://qinglian/feeds",
        "s3://qinglian/warehouse",
        vars.clone(),
        &written,
    )
    .await;

    // The generator writes to an object-store URL as well.
    let out = Command::new(env!("CARGO_BIN_EXE_qinglian"))
        .args([
            "generate",
            "--orgs",
            "30",
            "--seed",
            "1",
            "--out",
            "s3://qinglian/generated",
        ])
        .envs(moto.vars())
        .output()
        .expect("generate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (store, prefix) =
        qinglian::store::open_with("s3://qinglian/generated", false, &moto.vars()).expect("store");
    let names: Vec<String> = store
        .list(Some(&prefix))
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .expect("list");
    for file in [
        "registry/registry.csv",
        "court/court.ndjson",
        "inspection/inspection.ndjson.gz",
        "ground_truth.csv",
    ] {
        assert!(
            names.iter().any(|n| n.ends_with(file)),
            "{file} in {names:?}"
        );
    }

    let figures = |r: &RunRecord| -> Vec<(String, u64, u64, u64, u64)> {
        r.feeds
            .iter()
            .map(|f| {
                (
                    f.feed.clone(),
                    f.read,
                    f.landed,
                    f.quarantined,
                    f.duplicates,
                )
            })
            .collect()
    };
    assert_eq!(figures(&local), figures(&s3));
    // Both backends hold what the generator wrote.
    let counts = crate::reconcile::written(feeds.path());
    for run in [&local, &s3] {
        let wrong = crate::reconcile::run_mismatches(run, &counts, &[]);
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    // The same inputs publish the same bytes on S3 as on the local disk:
    // every reproducible dataset's checksums, file by file.
    let (local_store, local_prefix) = qinglian::store::open_with(
        &format!("file://{}", warehouse.path().display()),
        false,
        &BTreeMap::new(),
    )
    .expect("local store");
    let (s3_store, s3_prefix) =
        qinglian::store::open_with("s3://qinglian/warehouse", false, &vars).expect("s3 store");
    let local_version = Published::latest(&local_store, &local_prefix, date())
        .await
        .expect("local manifest")
        .expect("published locally");
    let s3_version = Published::latest(&s3_store, &s3_prefix, date())
        .await
        .expect("s3 manifest")
        .expect("published on s3");
    assert_eq!(
        crate::support::reproducible_sums(&local_version),
        crate::support::reproducible_sums(&s3_version),
        "the S3 run published other bytes than the local run"
    );
    s3_version
        .verify(&["profiles", "hits", "codes", "changes", "quarantine"])
        .await
        .expect("the S3 version verifies");

    // A manifest is created once: a second writer of the same manifest on S3
    // is refused, and the first one's bytes stay.
    let manifest_path = qinglian::store::join(&s3_prefix, &s3_version.path);
    let before = s3_store
        .get(&manifest_path)
        .await
        .expect("manifest")
        .bytes()
        .await
        .expect("bytes");
    let mut other = s3_version.manifest.clone();
    other.rules_version = "a second writer".into();
    match qinglian::publish::commit(&s3_store, &s3_prefix, &s3_version.path, &other).await {
        Err(qinglian::publish::PublishError::AlreadyCommitted(_)) => {}
        other => panic!("a second commit of {manifest_path} on S3: {other:?}"),
    }
    let after = s3_store
        .get(&manifest_path)
        .await
        .expect("manifest")
        .bytes()
        .await
        .expect("bytes");
    assert_eq!(before, after, "the committed manifest was overwritten");

    // Leases on S3 are exclusive: contenders racing for one lease (each
    // reads "nobody holds it", then writes create-only), exactly one wins,
    // round after round, and the lease file names the winner.
    for round in 0..6 {
        let dir = Lease::dir(&s3_prefix, "race", date() + chrono::Days::new(round));
        let now = Utc::now();
        let contenders: Vec<_> = (0..6)
            .map(|i| {
                let (store, dir) = (Arc::clone(&s3_store), dir.clone());
                tokio::spawn(async move {
                    Lease::acquire(
                        store,
                        dir,
                        "race",
                        &format!("runner-{i}"),
                        Duration::from_secs(600),
                        now,
                    )
                    .await
                    .map(|l| l.info().holder.clone())
                })
            })
            .collect();
        let mut winners = Vec::new();
        for c in contenders {
            match c.await.expect("task") {
                Ok(holder) => winners.push(holder),
                Err(LeaseError::Held(_)) => {}
                Err(e) => panic!("round {round}: {e}"),
            }
        }
        assert_eq!(
            winners.len(),
            1,
            "round {round}: {winners:?} hold the lease"
        );
        let files: Vec<_> = s3_store.list(Some(&dir)).try_collect().await.expect("list");
        assert_eq!(files.len(), 1, "round {round}: {files:?}");
        let bytes = s3_store
            .get(&files[0].location)
            .await
            .expect("lease")
            .bytes()
            .await
            .expect("bytes");
        let info: serde_json::Value = serde_json::from_slice(&bytes).expect("lease json");
        assert_eq!(info["holder"], winners[0], "round {round}");
    }

    // A runner finding the lease of its pipeline and date held on S3 by
    // another runner does not start: nothing lands, the ledger keeps one
    // record of the date, the holder's.
    let busy_date = date() + chrono::Days::new(1);
    let _held = Lease::acquire(
        Arc::clone(&s3_store),
        Lease::dir(&s3_prefix, "nightly", busy_date),
        "nightly (another runner)",
        "another-runner",
        Duration::from_secs(6 * 3600),
        Utc.with_ymd_and_hms(2026, 11, 29, 18, 0, 0)
            .single()
            .expect("t"),
    )
    .await
    .expect("the other runner's lease");
    let project = Project::load(&root()).expect("project");
    let mut busy_vars = vars.clone();
    busy_vars.insert("QINGLIAN_FEEDS".into(), "s3://qinglian/feeds".into());
    busy_vars.insert("QINGLIAN_PERSON_KEY".into(), KEY.into());
    let refused = run_pipeline(
        &project,
        "nightly",
        RunOptions {
            business_date: busy_date,
            clock: Arc::new(FixedClock(
                Utc.with_ymd_and_hms(2026, 11, 29, 18, 30, 0)
                    .single()
                    .expect("t"),
            )),
            warehouse: Some("s3://qinglian/warehouse".into()),
            vars: busy_vars,
            ..RunOptions::new(busy_date)
        },
    )
    .await;
    assert!(
        matches!(refused, Err(qinglian::run::RunError::Busy(_))),
        "a second runner while the lease is held: {refused:?}"
    );
    let ledger = Ledger::new(Arc::clone(&s3_store), s3_prefix.clone());
    assert!(
        ledger.runs_of(busy_date).await.expect("ledger").is_empty(),
        "the refused runner recorded a run"
    );
    assert!(
        Published::latest(&s3_store, &s3_prefix, busy_date)
            .await
            .expect("manifests")
            .is_none(),
        "the refused runner published"
    );
}
