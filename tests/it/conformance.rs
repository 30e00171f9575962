//! One conformance suite for every object-store backend: the object_store
//! source and the warehouse behave the same on the local filesystem and on
//! a real S3-compatible server (moto's standalone server, started here on
//! 127.0.0.1; `./scripts/test` installs it).

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use futures::TryStreamExt;
use qinglian::clock::FixedClock;
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
    pub(crate) async fn start(bucket: &str) -> Moto {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server must be installed (pip install 'moto[server]'); ./scripts/test does it");
        let moto = Moto { child, port };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
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
        vars,
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
}
