//! Scoring on a real Ballista cluster on 127.0.0.1: one scheduler and two
//! executors, each a child process of the built binary with its own
//! function registry, scoring a generated tier with the warehouse on the
//! local disk and on moto's S3. What they publish is byte for byte what a
//! local run publishes; a scheduler that is not there fails the run at the
//! start of scoring, naming its URL, with nothing published.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use qinglian::catalog::Published;
use qinglian::ledger::{RunRecord, RunStatus};
use qinglian::project::Project;

use crate::ingest::{Extras, date, generate, run_project};
use crate::support::{copy_project, reproducible_sums, root};

/// A port nothing listens on now (the OS's choice, released at once).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A scheduler and executors, killed when dropped; each writes its log
/// to a file in `logs`.
struct Cluster {
    children: Vec<(String, Child)>,
    logs: tempfile::TempDir,
    port: u16,
}

impl Cluster {
    fn start(executors: usize, env: &BTreeMap<String, String>) -> Cluster {
        Cluster::start_with(executors, env, &[], &[])
    }

    /// With more arguments for the scheduler and for each executor.
    fn start_with(
        executors: usize,
        env: &BTreeMap<String, String>,
        scheduler_args: &[&str],
        executor_args: &[&str],
    ) -> Cluster {
        let logs = tempfile::tempdir().expect("tmp");
        let port = free_port();
        let mut cluster = Cluster {
            children: Vec::new(),
            logs,
            port,
        };
        let bind = format!("127.0.0.1:{port}");
        let mut args = vec!["ballista", "scheduler", "--bind", &bind];
        args.extend(scheduler_args);
        cluster.spawn("scheduler", &args, env);
        cluster.wait_for("scheduler", "Ballista scheduler listening", 1);
        let scheduler = cluster.url();
        for i in 0..executors {
            let work = cluster.logs.path().join(format!("work-{i}"));
            let flight = format!("127.0.0.1:{}", free_port());
            let grpc = free_port().to_string();
            let mut args = vec![
                "ballista",
                "executor",
                "--scheduler",
                &scheduler,
                "--bind",
                &flight,
                "--grpc-port",
                &grpc,
                "--vcores",
                "2",
                "--memory-mb",
                "512",
                "--work-dir",
                work.to_str().expect("utf-8"),
            ];
            args.extend(executor_args);
            cluster.spawn(&format!("executor-{i}"), &args, env);
        }
        cluster.wait_for("scheduler", "Received register executor request", executors);
        cluster
    }

    fn url(&self) -> String {
        format!("df://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self, name: &str, args: &[&str], env: &BTreeMap<String, String>) {
        let log = std::fs::File::create(self.log_path(name)).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_qinglian"))
            .args(args)
            .envs(env)
            .env("QINGLIAN_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start a cluster node");
        self.children.push((name.to_string(), child));
    }

    /// The process id of a node.
    fn pid(&self, name: &str) -> u32 {
        self.children
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c.id())
            .expect("a node of that name")
    }

    fn log_path(&self, name: &str) -> PathBuf {
        self.logs.path().join(format!("{name}.log"))
    }

    fn log(&self, name: &str) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(self.log_path(name)) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    /// Waits until `name`'s log says `what` `times` times.
    fn wait_for(&mut self, name: &str, what: &str, times: usize) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if self.log(name).matches(what).count() >= times {
                return;
            }
            let exited = self
                .children
                .iter_mut()
                .find_map(|(n, child)| Some((n.clone(), child.try_wait().ok()??)));
            if let Some((n, status)) = exited {
                panic!("{n} exited ({status}):\n{}", self.log(&n));
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not log {what:?} {times} time(s):\n{}",
                self.log(name)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The shipped project with the nightly pipeline scoring on the cluster
/// at `${QINGLIAN_SCHEDULER}`.
fn cluster_project(dir: &Path) -> Project {
    copy_project(dir);
    let pipeline = dir.join("pipelines/nightly.toml");
    let mut text = std::fs::read_to_string(&pipeline).expect("pipeline");
    text.push_str(
        "\n[engine]\nkind = \"ballista\"\nurl = \"df://${QINGLIAN_SCHEDULER}\"\ntarget_partitions = 4\n",
    );
    std::fs::write(&pipeline, text).expect("write");
    Project::load(dir).expect("the cluster project loads")
}

fn scheduler_var(cluster_url: &str) -> Vec<(String, String)> {
    vec![(
        "QINGLIAN_SCHEDULER".to_string(),
        cluster_url.trim_start_matches("df://").to_string(),
    )]
}

async fn published(url: &str, vars: &BTreeMap<String, String>) -> Option<Published> {
    let (store, prefix) = qinglian::store::open_with(url, false, vars).expect("warehouse");
    Published::latest(&store, &prefix, date())
        .await
        .expect("readable")
}

/// The scored datasets' checksums (the quarantine's, which depends on
/// ingest only, too).
async fn sums(url: &str, vars: &BTreeMap<String, String>) -> BTreeMap<String, Vec<String>> {
    reproducible_sums(&published(url, vars).await.expect("published"))
}

async fn scratch_left(url: &str, vars: &BTreeMap<String, String>) -> Vec<String> {
    use futures::TryStreamExt;
    let (store, prefix) = qinglian::store::open_with(url, false, vars).expect("warehouse");
    store
        .list(Some(&qinglian::store::join(&prefix, "tmp/score")))
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .expect("list")
}

fn assert_scored_on(run: &RunRecord, cluster: &Cluster) {
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    let score = run.scoring.as_ref().expect("a score summary");
    assert_eq!(score.engine, format!("ballista {}", cluster.url()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_scores_what_a_local_run_scores_byte_for_byte() {
    let feeds = tempfile::tempdir().expect("tmp");
    generate(feeds.path(), 160);
    let local = tempfile::tempdir().expect("tmp");
    let shipped = Project::load(&root()).expect("project");
    let run = run_project(
        &shipped,
        feeds.path(),
        local.path(),
        date(),
        Extras::default(),
    )
    .await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    assert_eq!(
        run.scoring.as_ref().map(|s| s.engine.as_str()),
        Some("local")
    );
    let none = BTreeMap::new();
    let expected = sums(local.path().to_str().expect("utf-8"), &none).await;

    let moto = crate::conformance::Moto::start("cluster").await;
    let s3 = moto.vars();
    // Every node opens the warehouse itself: its S3 credentials come from
    // its own environment.
    let cluster = Cluster::start(2, &s3);
    let dir = tempfile::tempdir().expect("tmp");
    let project = cluster_project(dir.path());

    // The warehouse on the local disk, a path every node sees.
    let on_disk = tempfile::tempdir().expect("tmp");
    let run = run_project(
        &project,
        feeds.path(),
        on_disk.path(),
        date(),
        Extras {
            vars: scheduler_var(&cluster.url()),
            ..Extras::default()
        },
    )
    .await;
    assert_scored_on(&run, &cluster);
    let disk_url = on_disk.path().to_str().expect("utf-8");
    assert_eq!(
        sums(disk_url, &none).await,
        expected,
        "the cluster published other bytes than the local run"
    );
    assert!(scratch_left(disk_url, &none).await.is_empty());

    // The plans ran on the cluster: the scheduler finished one job per
    // query (30 rules alone), and both executors ran tasks.
    let jobs = cluster
        .log("scheduler")
        .matches("Job finished successfully")
        .count();
    assert!(jobs >= 30, "{jobs} jobs:\n{}", cluster.log("scheduler"));
    for executor in ["executor-0", "executor-1"] {
        assert!(
            cluster.log(executor).contains("Execute task"),
            "{executor} ran no task:\n{}",
            cluster.log(executor)
        );
    }

    // The warehouse on S3.
    let warehouse = "s3://cluster/warehouse";
    let mut vars = scheduler_var(&cluster.url());
    vars.extend(s3.clone());
    let run = run_project(
        &project,
        feeds.path(),
        Path::new(warehouse),
        date(),
        Extras {
            vars,
            ..Extras::default()
        },
    )
    .await;
    assert_scored_on(&run, &cluster);
    assert_eq!(
        sums(warehouse, &s3).await,
        expected,
        "the cluster published other bytes on S3 than the local run"
    );
    assert!(scratch_left(warehouse, &s3).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_scheduler_fails_the_run_at_scoring_naming_it() {
    let feeds = tempfile::tempdir().expect("tmp");
    generate(feeds.path(), 40);
    let dir = tempfile::tempdir().expect("tmp");
    let project = cluster_project(dir.path());
    let warehouse = tempfile::tempdir().expect("tmp");
    let url = format!("df://127.0.0.1:{}", free_port());
    let run = run_project(
        &project,
        feeds.path(),
        warehouse.path(),
        date(),
        Extras {
            vars: scheduler_var(&url),
            ..Extras::default()
        },
    )
    .await;
    assert_ne!(run.status, RunStatus::Succeeded, "{run:#?}");
    let error = run.error.clone().unwrap_or_default();
    assert!(
        error.contains(&url) && error.contains("cannot be reached"),
        "{error}"
    );
    // Ingest landed the feeds; nothing was published.
    assert!(run.feeds.iter().all(|f| f.snapshot.is_some()), "{run:#?}");
    assert!(
        published(warehouse.path().to_str().expect("utf-8"), &BTreeMap::new())
            .await
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_executor_killed_while_scoring_is_survived_or_fails_the_run_whole() {
    let feeds = tempfile::tempdir().expect("tmp");
    generate(feeds.path(), 160);
    let local = tempfile::tempdir().expect("tmp");
    let shipped = Project::load(&root()).expect("project");
    let run = run_project(
        &shipped,
        feeds.path(),
        local.path(),
        date(),
        Extras::default(),
    )
    .await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    let none = BTreeMap::new();
    let expected = sums(local.path().to_str().expect("utf-8"), &none).await;

    // Short heartbeats, so that the scheduler notices the loss in seconds.
    let cluster = Cluster::start_with(
        2,
        &none,
        &["--executor-timeout-seconds", "6"],
        &["--heartbeat-seconds", "1"],
    );
    let dir = tempfile::tempdir().expect("tmp");
    let project = cluster_project(dir.path());
    // SIGKILL one executor once the scheduler has finished a few of the
    // night's jobs: scoring is under way, with more jobs to come.
    let (victim, scheduler_log) = (cluster.pid("executor-1"), cluster.log_path("scheduler"));
    let killer = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            let log = std::fs::read_to_string(&scheduler_log).unwrap_or_default();
            if log.matches("Job finished successfully").count() >= 5 {
                return Command::new("kill")
                    .args(["-9", &victim.to_string()])
                    .status()
                    .is_ok_and(|s| s.success());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    });
    let warehouse = tempfile::tempdir().expect("tmp");
    let run = tokio::time::timeout(
        Duration::from_secs(300),
        run_project(
            &project,
            feeds.path(),
            warehouse.path(),
            date(),
            Extras {
                vars: scheduler_var(&cluster.url()),
                ..Extras::default()
            },
        ),
    )
    .await
    .expect("the run ends, with or without the lost executor");
    assert!(
        killer.join().expect("killer"),
        "the executor was not killed while scoring"
    );
    let url = warehouse.path().to_str().expect("utf-8");
    eprintln!(
        "after the kill the run {:?}: {}",
        run.status,
        run.error.as_deref().unwrap_or("no error")
    );
    match run.status {
        RunStatus::Succeeded => {
            assert_scored_on(&run, &cluster);
            assert_eq!(
                sums(url, &none).await,
                expected,
                "survived, but other bytes"
            );
        }
        _ => {
            assert!(run.error.is_some(), "{run:#?}");
            assert!(
                published(url, &none).await.is_none(),
                "a failed run published"
            );
        }
    }
    assert!(scratch_left(url, &none).await.is_empty());
}
