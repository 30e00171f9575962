//! Stage 6: a run's datasets become visible together through one manifest
//! committed last; readers trust nothing else.

use std::path::Path;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::path::Path as StorePath;
use qinglian::catalog::Published;
use qinglian::ledger::RunStatus;

use crate::ingest::{date, generate, ingest, ingest_into};
use crate::support::{FaultyStore, qinglian, root};

fn warehouse_store(dir: &Path) -> (Arc<dyn ObjectStore>, StorePath) {
    qinglian::store::open_for_write(dir.to_str().expect("utf-8")).expect("warehouse")
}

async fn current(dir: &Path) -> Published {
    let (store, prefix) = warehouse_store(dir);
    Published::latest(&store, &prefix, date())
        .await
        .expect("readable")
        .expect("published")
}

fn explain(warehouse: &Path, uscc: &str) -> std::process::Output {
    qinglian(
        &[
            "explain",
            uscc,
            "--date",
            "2026-11-28",
            "--json",
            "--warehouse",
            warehouse.to_str().expect("utf-8"),
            "--project",
            root().to_str().expect("utf-8"),
        ],
        None,
    )
}

async fn some_uscc(warehouse: &Path, p: &Published) -> String {
    let file = &p.manifest.datasets["codes"].files[0].path;
    let rows = crate::support::read_parquet(&warehouse.join(file)).await;
    crate::support::strings(&rows, "uscc")[0]
        .clone()
        .expect("a code")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_commits_one_manifest_that_lists_every_file_with_its_checksum() {
    let feeds = tempfile::tempdir().expect("tmp");
    let warehouse = tempfile::tempdir().expect("tmp");
    generate(feeds.path(), 120);
    let run = ingest(feeds.path(), warehouse.path()).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    let published = current(warehouse.path()).await;
    assert_eq!(run.manifest.as_deref(), Some(published.path.as_str()));
    let m = &published.manifest;
    assert_eq!(m.run_id, run.run_id);
    assert_eq!(
        m.datasets.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "changes",
            "codes",
            "demonstration",
            "hits",
            "leads",
            "profiles",
            "public",
            "public_events",
            "quarantine",
            "runs",
            "warnings"
        ]
    );
    let scoring = run.scoring.as_ref().expect("scored");
    assert_eq!(m.datasets["profiles"].rows, scoring.profiles);
    assert_eq!(m.datasets["hits"].rows, scoring.hits);
    assert_eq!(m.datasets["runs"].rows, 10);
    let quarantined: u64 = run.feeds.iter().map(|f| f.quarantined).sum();
    assert!(quarantined > 0);
    assert_eq!(m.datasets["quarantine"].rows, quarantined);
    assert_eq!(m.datasets["quarantine"].files.len(), 10);
    assert_eq!(m.inputs.len(), 10);
    assert!(m.inputs.values().all(|i| i.path.is_some()));
    // Every listed checksum is that of the file on disk.
    for d in m.datasets.values() {
        for f in &d.files {
            let bytes = std::fs::read(warehouse.path().join(&f.path)).expect("listed file");
            use sha2::Digest;
            let sha = qinglian::digest::hex(&sha2::Sha256::digest(&bytes));
            assert_eq!((sha, bytes.len() as u64), (f.sha256.clone(), f.bytes));
        }
    }
    published
        .verify(&["profiles", "hits", "codes", "changes", "quarantine", "runs"])
        .await
        .expect("verified");
    let text = std::fs::read(warehouse.path().join(&published.path)).expect("manifest");
    crate::support::assert_valid_json(
        "manifest.schema.json",
        &[serde_json::from_slice(&text).expect("json")],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_parquet_is_read_by_pyarrow_with_the_manifest_row_counts() {
    let feeds = tempfile::tempdir().expect("tmp");
    let warehouse = tempfile::tempdir().expect("tmp");
    generate(feeds.path(), 60);
    ingest(feeds.path(), warehouse.path()).await;
    let published = current(warehouse.path()).await;
    let script = "import json, sys\n\
        import pyarrow.parquet as pq\n\
        m = json.load(open(sys.argv[1]))\n\
        for name, d in sorted(m['datasets'].items()):\n\
        \x20   rows = sum(pq.read_table(sys.argv[2] + '/' + f['path']).num_rows for f in d['files'])\n\
        \x20   print(name, rows)\n";
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(warehouse.path().join(&published.path))
        .arg(warehouse.path())
        .output()
        .expect("python3 (./scripts/test installs pyarrow)");
    assert!(
        out.status.success(),
        "pyarrow could not read the published files (./scripts/test installs pyarrow): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected: String = published
        .manifest
        .datasets
        .iter()
        .map(|(n, d)| format!("{n} {}\n", d.rows))
        .collect();
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_before_the_manifest_leaves_the_previous_version_and_nothing_partial() {
    let feeds = tempfile::tempdir().expect("tmp");
    let warehouse = tempfile::tempdir().expect("tmp");
    generate(feeds.path(), 60);
    let first = ingest(feeds.path(), warehouse.path()).await;
    assert_eq!(first.status, RunStatus::Succeeded);

    // Attempt 2 writes every data file, then cannot write its manifest.
    let (inner, prefix) = warehouse_store(warehouse.path());
    let refusing: Arc<dyn ObjectStore> = Arc::new(FaultyStore {
        refuse_puts_under: Some("published/manifests/".into()),
        ..FaultyStore::new(inner)
    });
    let second = ingest_into(
        feeds.path(),
        warehouse.path(),
        date(),
        Some((refusing, prefix)),
    )
    .await;
    assert_eq!(second.status, RunStatus::Failed);
    assert!(second.manifest.is_none());
    let error = second.error.clone().unwrap_or_default();
    assert!(
        error.contains("publish") && error.contains("published/manifests/dt=2026-11-28"),
        "{error}"
    );
    // Its data files exist, but no reader sees them.
    let orphan = warehouse.path().join(qinglian::layout::published_data(
        "profiles",
        second.business_date,
        &second.run_id,
    ));
    assert!(orphan.exists());
    let published = current(warehouse.path()).await;
    assert_eq!(published.manifest.run_id, first.run_id);
    let out = explain(
        warehouse.path(),
        &some_uscc(warehouse.path(), &published).await,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["run_id"], first.run_id.as_str());

    // A third attempt publishes and becomes current; the first stays for audit.
    let third = ingest(feeds.path(), warehouse.path()).await;
    assert_eq!(third.status, RunStatus::Succeeded);
    let published = current(warehouse.path()).await;
    assert_eq!(published.manifest.run_id, third.run_id);
    assert!(
        warehouse
            .path()
            .join(first.manifest.as_deref().expect("m"))
            .exists()
    );
    // Same inputs, same rules: the same bytes (the run id lives in the manifest).
    let (store, prefix) = warehouse_store(warehouse.path());
    let old = Published::read(store, prefix, first.manifest.as_deref().expect("m"))
        .await
        .expect("old manifest");
    for d in ["profiles", "hits", "codes", "changes"] {
        let sums = |p: &Published| {
            p.manifest.datasets[d]
                .files
                .iter()
                .map(|f| f.sha256.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(sums(&old), sums(&published), "{d}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_altered_file_or_a_corrupt_manifest_stops_the_reader_naming_it() {
    let feeds = tempfile::tempdir().expect("tmp");
    let warehouse = tempfile::tempdir().expect("tmp");
    generate(feeds.path(), 40);
    let run = ingest(feeds.path(), warehouse.path()).await;
    let published = current(warehouse.path()).await;
    let uscc = some_uscc(warehouse.path(), &published).await;
    let hits = warehouse
        .path()
        .join(&published.manifest.datasets["hits"].files[0].path);
    let original = std::fs::read(&hits).expect("hits");
    let mut altered = original.clone();
    altered[10] ^= 0xff;
    std::fs::write(&hits, &altered).expect("alter");
    let out = explain(warehouse.path(), &uscc);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("hits/dt=2026-11-28") && err.contains("does not match manifest"),
        "{err}"
    );
    // The next day compares with this version: it refuses to build on it.
    std::fs::write(&hits, &original).expect("restore");
    std::fs::write(
        warehouse.path().join(run.manifest.as_deref().expect("m")),
        b"{\"format\": 1",
    )
    .expect("corrupt");
    let out = explain(warehouse.path(), &uscc);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("manifest") && err.contains(&format!("{}.json", run.run_id)),
        "{err}"
    );
    let next = crate::ingest::ingest_on(
        feeds.path(),
        warehouse.path(),
        date().succ_opt().expect("next"),
    )
    .await;
    assert_eq!(next.status, RunStatus::Failed);
    assert!(
        next.error
            .unwrap_or_default()
            .contains(&format!("{}.json", run.run_id)),
        "the next run names the corrupt manifest it could not compare with"
    );
    // A manifest the ledger says was committed, deleted: no silent fallback.
    let second = ingest(feeds.path(), warehouse.path()).await;
    let second_manifest = warehouse
        .path()
        .join(second.manifest.as_deref().expect("m"));
    std::fs::remove_file(&second_manifest).expect("delete");
    let out = explain(warehouse.path(), &uscc);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("is missing") && err.contains(&format!("{}.json", second.run_id)),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_that_breaks_its_contract_is_not_published() {
    let project = tempfile::tempdir().expect("tmp");
    crate::support::copy_project(project.path());
    let contract = project.path().join("schemas/out/codes.toml");
    let text = std::fs::read_to_string(&contract).expect("contract");
    std::fs::write(
        &contract,
        text.replacen(
            "name = \"colour\"\ntype = \"string\"",
            "name = \"colour\"\ntype = \"int32\"",
            1,
        ),
    )
    .expect("edit");
    let feeds = tempfile::tempdir().expect("tmp");
    let warehouse = tempfile::tempdir().expect("tmp");
    generate(feeds.path(), 30);
    let project = qinglian::project::Project::load(project.path()).expect("project");
    let run = crate::ingest::run_project(
        &project,
        feeds.path(),
        warehouse.path(),
        date(),
        crate::ingest::Extras::default(),
    )
    .await;
    assert_eq!(run.status, RunStatus::Failed);
    let error = run.error.unwrap_or_default();
    assert!(
        error.contains("published/codes/dt=2026-11-28")
            && error.contains("breaks the contract schemas/out/codes.toml (version 2)")
            && error.contains("column \"colour\" is Utf8, the contract says Int32"),
        "{error}"
    );
    let (store, prefix) = warehouse_store(warehouse.path());
    assert!(
        Published::latest(&store, &prefix, date())
            .await
            .expect("readable")
            .is_none(),
        "nothing is published"
    );
}
