//! Hostile inputs to the run, round 2: a spine with one organization
//! twice, an empty or collapsed delivery, a previous snapshot that cannot
//! be read, a run that panics, a lease written from another PID namespace,
//! output to a pipe closed early, rules that are not queries, numbers past
//! their range.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, TimeZone, Utc};
use object_store::ObjectStoreExt;
use qinglian::catalog::Published;
use qinglian::lease::{Lease, LeaseInfo, ProcessIdentity};
use qinglian::ledger::{FeedRecord, FeedStatus, RunRecord, RunStatus};

use crate::ingest::{date, generate, ingest, ingest_into, ingest_on};
use crate::support::{qinglian, read_parquet, root, strings};

fn warehouse_store(dir: &Path) -> (Arc<dyn object_store::ObjectStore>, object_store::path::Path) {
    qinglian::store::open_for_write(dir.to_str().expect("utf-8")).expect("warehouse")
}

fn feed<'a>(run: &'a RunRecord, name: &str) -> &'a FeedRecord {
    run.feeds.iter().find(|f| f.feed == name).expect("feed")
}

fn reconciles(f: &FeedRecord) {
    assert_eq!(
        f.read,
        f.landed + f.quarantined + f.duplicates,
        "{} does not reconcile: {f:#?}",
        f.feed
    );
}

/// The registry CSV of generated feeds: its one file, decoded.
fn registry_csv(feeds: &Path) -> (std::path::PathBuf, String) {
    let dir = feeds.join("registry");
    let file = std::fs::read_dir(&dir)
        .expect("registry dir")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|x| x == "csv"))
        .expect("a registry file");
    let bytes = std::fs::read(&file).expect("read");
    let (text, _, bad) = encoding_rs::GB18030.decode(&bytes);
    assert!(!bad, "GB18030");
    (file, text.into_owned())
}

fn write_gb18030(path: &Path, text: &str) {
    let (bytes, _, _) = encoding_rs::GB18030.encode(text);
    std::fs::write(path, bytes).expect("write");
}

/// The column index of a header in a CSV header line.
fn column(header: &str, name: &str) -> usize {
    header
        .split(',')
        .position(|h| h.trim_matches('"') == name)
        .unwrap_or_else(|| panic!("no column {name} in {header}"))
}

async fn colours(warehouse: &Path, day: NaiveDate) -> Vec<(String, Option<String>)> {
    let (store, prefix) = warehouse_store(warehouse);
    let p = Published::latest(&store, &prefix, day)
        .await
        .expect("readable")
        .expect("published");
    let file = &p.manifest.datasets["codes"].files[0].path;
    let rows = read_parquet(&warehouse.join(file)).await;
    strings(&rows, "uscc")
        .into_iter()
        .map(|u| u.expect("uscc"))
        .zip(strings(&rows, "colour"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_copy_of_a_registered_organization_is_quarantined_and_one_code_published() {
    let feeds = tempfile::tempdir().expect("tmp");
    generate(feeds.path(), 80);
    let clean = tempfile::tempdir().expect("tmp");
    let baseline = ingest(feeds.path(), clean.path()).await;
    assert_eq!(baseline.status, RunStatus::Succeeded, "{baseline:#?}");
    let before = colours(clean.path(), date()).await;

    // The same organization again at the end of the export, as a stale
    // revoked copy (撤销).
    let (file, text) = registry_csv(feeds.path());
    let mut lines: Vec<&str> = text.lines().collect();
    let header = lines[0];
    let (key, status) = (
        column(header, "统一社会信用代码"),
        column(header, "登记状态"),
    );
    let active = lines[1..]
        .iter()
        .find(|l| l.split(',').nth(status) == Some("正常"))
        .expect("an active organization");
    let uscc = active.split(',').nth(key).expect("key").to_string();
    let mut stale: Vec<&str> = active.split(',').collect();
    stale[status] = "撤销";
    let stale = stale.join(",");
    lines.push(&stale);
    write_gb18030(&file, &(lines.join("\r\n") + "\r\n"));

    let warehouse = tempfile::tempdir().expect("tmp");
    let run = ingest(feeds.path(), warehouse.path()).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    let registry = feed(&run, "registry");
    reconciles(registry);
    assert_eq!(registry.quarantine_reasons.get("duplicate_key"), Some(&1));
    let after = colours(warehouse.path(), date()).await;
    let codes: Vec<_> = after.iter().filter(|(u, _)| *u == uscc).collect();
    assert_eq!(codes.len(), 1, "one code for {uscc}: {codes:?}");
    let was = before.iter().find(|(u, _)| *u == uscc).expect("before");
    assert_eq!(codes[0], was, "the stale copy changed the colour");
    assert_eq!(after, before, "every code is as without the stale copy");

    // The quarantined copy names where the kept one was.
    let q = read_parquet(&warehouse.path().join(qinglian::layout::quarantine_file(
        "registry",
        date(),
        &run.run_id,
    )))
    .await;
    let messages = strings(&q, "message");
    let reasons = strings(&q, "reason_code");
    let i = reasons
        .iter()
        .position(|r| r.as_deref() == Some("duplicate_key"))
        .expect("quarantined");
    let message = messages[i].clone().expect("message");
    assert!(
        message.contains(&uscc) && message.contains("already delivered at"),
        "{message}"
    );

    // A registry full of conflicting copies is held (the run fails: the
    // registry is required) and its last good snapshot stays.
    let (_, text) = registry_csv(feeds.path());
    let lines: Vec<&str> = text.lines().collect();
    let mut doubled: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    for l in &lines[1..] {
        let mut copy: Vec<&str> = l.split(',').collect();
        copy[status] = if copy[status] == "注销" {
            "正常"
        } else {
            "注销"
        };
        doubled.push(copy.join(","));
    }
    write_gb18030(&file, &(doubled.join("\r\n") + "\r\n"));
    let day2 = date().succ_opt().expect("date");
    let run = ingest_on(feeds.path(), warehouse.path(), day2).await;
    assert_eq!(run.status, RunStatus::Failed, "{run:#?}");
    let registry = feed(&run, "registry");
    reconciles(registry);
    assert!(
        registry
            .guards
            .iter()
            .any(|g| g.name == "max_duplicate_keys" && !g.passed),
        "{registry:#?}"
    );
}

/// Truncates every file of a feed to 0 bytes.
fn empty_feed(feeds: &Path, name: &str) {
    for e in std::fs::read_dir(feeds.join(name)).expect("feed dir") {
        std::fs::write(e.expect("entry").path(), b"").expect("truncate");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_delivery_never_replaces_a_snapshot_that_had_rows() {
    let feeds = tempfile::tempdir().expect("tmp");
    let warehouse = tempfile::tempdir().expect("tmp");
    generate(feeds.path(), 80);
    let first = ingest(feeds.path(), warehouse.path()).await;
    assert_eq!(first.status, RunStatus::Succeeded, "{first:#?}");
    let before = colours(warehouse.path(), date()).await;
    // An optional feed delivered as 0-byte files: held at its snapshot.
    let court = feed(&first, "court").clone();
    assert!(court.landed > 0);
    empty_feed(feeds.path(), "court");
    let day2 = date().succ_opt().expect("date");
    let run = ingest_on(feeds.path(), warehouse.path(), day2).await;
    assert_eq!(run.status, RunStatus::Degraded, "{run:#?}");
    let held = feed(&run, "court");
    assert_eq!(held.status, FeedStatus::Held, "{held:#?}");
    assert_eq!(held.landed, 0);
    assert!(
        held.guards
            .iter()
            .any(|g| g.name == "max_shrink" && !g.passed && (g.value - 1.0).abs() < 1e-9),
        "{held:#?}"
    );
    assert_eq!(
        held.snapshot, court.snapshot,
        "the last good snapshot stays"
    );
    let after = colours(warehouse.path(), day2).await;
    assert_eq!(after, before, "no colour changed because a feed came empty");

    // The required registry empty: the run fails, nothing replaces it.
    let registry = feed(&run, "registry").clone();
    empty_feed(feeds.path(), "registry");
    let day3 = day2.succ_opt().expect("date");
    let run = ingest_on(feeds.path(), warehouse.path(), day3).await;
    assert_eq!(run.status, RunStatus::Failed, "{run:#?}");
    let r = feed(&run, "registry");
    assert_eq!(r.snapshot, registry.snapshot);
    assert!(
        r.guards.iter().any(|g| g.name == "max_shrink" && !g.passed),
        "{r:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_previous_snapshot_holds_the_feed_instead_of_skipping_its_guard() {
    let feeds = tempfile::tempdir().expect("tmp");
    let warehouse = tempfile::tempdir().expect("tmp");
    generate(feeds.path(), 60);
    let first = ingest(feeds.path(), warehouse.path()).await;
    assert_eq!(first.status, RunStatus::Succeeded, "{first:#?}");
    // persons has max_churn: its last good snapshot is corrupted.
    let snapshot = feed(&first, "persons").snapshot.clone().expect("snapshot");
    std::fs::write(warehouse.path().join(&snapshot), b"not parquet").expect("corrupt");
    // Tonight's delivery is read (not carried forward as unchanged).
    crate::support::redeliver(feeds.path());
    let day2 = date().succ_opt().expect("date");
    let run = ingest_on(feeds.path(), warehouse.path(), day2).await;
    let persons = feed(&run, "persons");
    assert_eq!(persons.status, FeedStatus::Failed, "{persons:#?}");
    let error = persons.error.clone().unwrap_or_default();
    assert!(
        error.contains("max_churn") && error.contains(&snapshot),
        "{error}"
    );
    assert_eq!(run.status, RunStatus::Failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_panics_is_recorded_failed_never_left_running() {
    let feeds = tempfile::tempdir().expect("tmp");
    let warehouse = tempfile::tempdir().expect("tmp");
    generate(feeds.path(), 40);
    let (inner, prefix) = warehouse_store(warehouse.path());
    // A defect in the middle of the run: writing the codes panics.
    let store: Arc<dyn object_store::ObjectStore> = Arc::new(crate::support::FaultyStore {
        panic_on_puts_under: Some("published/codes".into()),
        ..crate::support::FaultyStore::new(Arc::clone(&inner))
    });
    let project = qinglian::project::Project::load(&root()).expect("project");
    let mut vars = BTreeMap::new();
    vars.insert(
        "QINGLIAN_FEEDS".to_string(),
        feeds.path().to_string_lossy().into_owned(),
    );
    vars.insert(
        "QINGLIAN_PERSON_KEY".to_string(),
        crate::ingest::KEY.to_string(),
    );
    let options = qinglian::run::RunOptions {
        vars,
        store: Some((store, prefix.clone())),
        clock: Arc::new(qinglian::clock::FixedClock(
            Utc.with_ymd_and_hms(2026, 11, 28, 18, 0, 0)
                .single()
                .expect("t"),
        )),
        ..qinglian::run::RunOptions::new(date())
    };
    let result = qinglian::run::run_pipeline(&project, "nightly", options).await;
    let err = result.expect_err("the defect stops the run");
    assert!(
        matches!(err, qinglian::run::RunError::Internal(_))
            && err.to_string().contains("simulated defect"),
        "{err}"
    );
    let ledger = qinglian::ledger::Ledger::new(Arc::clone(&inner), prefix);
    let runs = ledger.runs_of(date()).await.expect("ledger");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, RunStatus::Failed, "{:#?}", runs[0]);
    assert!(runs[0].finished_at.is_some());
    // The lease was given back: the next run starts at once and completes.
    let next = ingest_into(feeds.path(), warehouse.path(), date(), None).await;
    assert_eq!(next.status, RunStatus::Succeeded, "{next:#?}");
    assert_eq!(next.attempt, 2);
}

/// A lease as a process in another PID namespace of the same host would
/// write it: same host name, a process id that does not exist here (or
/// ours), another namespace.
async fn lease_from_elsewhere(dir: &Path, pid: u32, namespace: Option<&str>) -> LeaseInfo {
    let (store, prefix) = warehouse_store(dir);
    let lock = Lease::dir(&prefix, "nightly", date());
    let here = ProcessIdentity::current();
    let t0 = Utc
        .with_ymd_and_hms(2026, 11, 28, 18, 0, 0)
        .single()
        .expect("t");
    let info = LeaseInfo {
        holder: format!("{}:{pid}:0123456789abcdef", here.host),
        purpose: "nightly 2026-11-28".into(),
        generation: 1,
        acquired_at: t0,
        expires_at: t0 + chrono::TimeDelta::minutes(5),
        released: false,
        process: Some(ProcessIdentity {
            instance: "0123456789abcdef".into(),
            pid,
            pid_namespace: namespace.map(str::to_string),
            ..here
        }),
    };
    let body = serde_json::to_vec_pretty(&info).expect("json");
    store
        .put(&lock.clone().join("0000000001.json"), body.into())
        .await
        .expect("put");
    let taken = Lease::acquire(
        store,
        lock,
        "nightly 2026-11-28",
        &qinglian::lease::holder_id(),
        Duration::from_secs(300),
        t0 + chrono::TimeDelta::minutes(1),
    )
    .await;
    match taken {
        Ok(lease) => lease.info().clone(),
        Err(qinglian::lease::LeaseError::Held(holder)) => holder,
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_from_another_pid_namespace_is_never_taken_as_dead() {
    // No such process here; in its own namespace it runs.
    let absent = 4_194_000;
    assert!(!Path::new(&format!("/proc/{absent}")).exists());
    for (pid, namespace) in [
        (absent, Some("pid:[1]")),
        (std::process::id(), Some("pid:[1]")),
        (absent, None),
    ] {
        let w = tempfile::tempdir().expect("tmp");
        let got = lease_from_elsewhere(w.path(), pid, namespace).await;
        assert_eq!(
            got.generation, 1,
            "pid {pid} in {namespace:?} was taken over while its lease lives"
        );
    }
    // A lease of any length is a long lease, never an overflow.
    let w = tempfile::tempdir().expect("tmp");
    let (store, prefix) = warehouse_store(w.path());
    let long = Lease::acquire(
        store,
        Lease::dir(&prefix, "nightly", date()),
        "nightly 2026-11-28",
        &qinglian::lease::holder_id(),
        Duration::from_secs(u64::MAX),
        Utc::now(),
    )
    .await
    .expect("taken");
    assert_eq!(long.info().expires_at, chrono::DateTime::<Utc>::MAX_UTC);
    // The same namespace and the process gone: certainly dead, taken over.
    let w = tempfile::tempdir().expect("tmp");
    let here = ProcessIdentity::current().pid_namespace;
    if here.is_some() {
        let got = lease_from_elsewhere(w.path(), absent, here.as_deref()).await;
        assert_eq!(got.generation, 2, "a dead holder here is taken over");
    }
}

/// Runs the binary with its standard output on a pipe whose reader is
/// already gone.
fn with_closed_stdout(args: &[&str]) -> std::process::Output {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    std::process::Command::new(env!("CARGO_BIN_EXE_qinglian"))
        .args(args)
        .env_remove("QINGLIAN_LOG")
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("spawn")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_to_a_closed_pipe_ends_quietly_with_the_commands_result() {
    let feeds = tempfile::tempdir().expect("tmp");
    let warehouse = tempfile::tempdir().expect("tmp");
    generate(feeds.path(), 40);
    let project = root();
    let (p, w, f) = (
        project.to_str().expect("utf-8"),
        warehouse.path().to_str().expect("utf-8"),
        feeds.path().to_str().expect("utf-8"),
    );
    // `qinglian run … | head`: the run completes and says so by its exit code.
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_qinglian"))
        .args(["run", "nightly", "--date", "2026-11-28", "--project", p])
        .args(["--warehouse", w])
        .env("QINGLIAN_FEEDS", f)
        .env("QINGLIAN_PERSON_KEY", crate::ingest::KEY)
        .env_remove("QINGLIAN_PLATFORM_URL")
        .stdout({
            let (reader, writer) = std::io::pipe().expect("pipe");
            drop(reader);
            writer
        })
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("spawn");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    let (store, prefix) = warehouse_store(warehouse.path());
    let runs = qinglian::ledger::Ledger::new(store, prefix)
        .runs_of(date())
        .await
        .expect("ledger");
    assert_eq!(runs[0].status, RunStatus::Succeeded);

    for args in [
        vec!["status", "--project", p, "--warehouse", w],
        vec!["status", "--json", "--project", p, "--warehouse", w],
        vec!["jobs", "next", "nightly", "--count", "50", "--project", p],
        vec!["validate", "--project", p],
        vec!["uscc", "check", "-"],
        vec!["--help"],
    ] {
        let out = with_closed_stdout(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    }
}

/// A copy of the shipped project with one file replaced.
/// `qinglian validate` on a project: its exit status and what it printed.
fn validate(project: &tempfile::TempDir) -> (std::process::Output, String) {
    let out = qinglian(
        &[
            "validate",
            "--project",
            project.path().to_str().expect("utf-8"),
        ],
        None,
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out, stdout)
}

fn project_with(file: &str, edit: impl FnOnce(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tmp");
    crate::support::copy_project(dir.path());
    let path = dir.path().join(file);
    let text = std::fs::read_to_string(&path).expect("read");
    std::fs::write(&path, edit(text)).expect("write");
    dir
}

#[test]
fn validate_plans_rules_without_executing_them() {
    let target = tempfile::tempdir().expect("tmp");
    let location = target.path().join("made-by-validate");
    std::fs::create_dir(&location).expect("dir");
    std::fs::write(location.join("x.csv"), "a\n1\n").expect("csv");
    let ddl = format!(
        "CREATE EXTERNAL TABLE leaked STORED AS CSV LOCATION '{}/'",
        location.display()
    );
    let copy = format!(
        "COPY (SELECT 1 AS a) TO '{}/written.csv' STORED AS CSV",
        target.path().display()
    );
    for (id, sql) in [("DDL-01", ddl.as_str()), ("COPY-01", copy.as_str())] {
        let project = project_with("pipelines/rules/operations.toml", |text| {
            format!(
                "{text}\n[[rule]]\nid = \"{id}\"\ntitle = \"not a query\"\ndimension = \"operations\"\npoints = 1\nwindow = \"in_force\"\nsql = \"\"\"{sql}\"\"\"\n"
            )
        });
        let (out, stdout) = validate(&project);
        assert_eq!(out.status.code(), Some(2), "{stdout}");
        assert!(
            stdout.contains(id) && stdout.contains("is not a query"),
            "{stdout}"
        );
    }
    assert!(
        !target.path().join("written.csv").exists(),
        "validate executed a COPY"
    );
}

#[test]
fn configuration_numbers_past_their_range_are_refused_with_the_range() {
    // 2^44 MiB wrapped to 0 bytes; a value past u64 is already not TOML.
    for value in ["17592186044416", "0"] {
        let project = project_with("pipelines/nightly.toml", |text| {
            text.replace(
                "memory_limit_mb = 1024",
                &format!("memory_limit_mb = {value}"),
            )
        });
        let (out, stdout) = validate(&project);
        assert_eq!(out.status.code(), Some(2), "{value}: {stdout}");
        assert!(
            stdout.contains("memory_limit_mb") && stdout.contains("expected 64 to 1048576"),
            "{stdout}"
        );
    }
    // The job's numbers the scheduler adds and doubles.
    for (key, value) in [
        ("retries = 2", "retries = 4294967295"),
        (
            "retry_backoff_seconds = 300",
            "retry_backoff_seconds = 18446744073709551",
        ),
        ("max_run_minutes = 180", "max_run_minutes = 0"),
    ] {
        let project = project_with("jobs/nightly.toml", |text| text.replace(key, value));
        let (out, stdout) = validate(&project);
        let name = key.split(' ').next().expect("key");
        assert_eq!(out.status.code(), Some(2), "{value}: {stdout}");
        assert!(
            stdout.contains(name) && stdout.contains("expected"),
            "{stdout}"
        );
    }
    let project = project_with("pipelines/nightly.toml", |text| {
        text.replace("start_points = 12", "start_points = 4294967295")
    });
    let (out, stdout) = validate(&project);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(stdout.contains("start_points"), "{stdout}");
}

#[test]
fn the_demo_outside_a_project_names_the_project_it_needs() {
    let elsewhere = tempfile::tempdir().expect("tmp");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_qinglian"))
        .args(["demo", "--orgs", "10"])
        .current_dir(elsewhere.path())
        .output()
        .expect("spawn");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is not a qinglian project")
            && stderr.contains("pipelines/")
            && stderr.contains("--project"),
        "{stderr}"
    );
    assert!(
        !elsewhere.path().join("demo").exists(),
        "nothing is generated first"
    );
}

#[test]
fn a_business_date_outside_the_years_data_can_have_is_refused_before_anything_runs() {
    for (date, says) in [
        ("+262142-12-31", "outside the business dates qinglian runs"),
        (
            "0001-01-01",
            "outside the business dates qinglian runs (1900-01-01 to 2099-12-31)",
        ),
        ("2026-02-30", "is not a date YYYY-MM-DD"),
    ] {
        let out = crate::support::qinglian(&["run", "nightly", "--date", date], None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{date}: {stderr}");
        assert!(stderr.contains(says), "{date}: {stderr}");
        let out = crate::support::qinglian(
            &["backfill", "nightly", "--from", "2026-11-01", "--to", date],
            None,
        );
        assert_eq!(out.status.code(), Some(2), "backfill to {date}");
    }
}
