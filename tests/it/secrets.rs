//! Secrets and personal data: with every secret set to a marker, a full
//! run (feeds over HTTP with a bearer token, pushes signed with the shared
//! secret, a Parquet drop to S3) leaves no secret and no identity number in
//! clear in its logs, report, ledger, published files or delivered bodies;
//! the public dataset carries nothing DOMAIN.md §5 keeps private.

use std::path::Path;

use qinglian::platform::PlatformSimulator;

use crate::ingest::generate;

const PERSON_KEY: &str = "MARKER-person-key-4b1d";
const PLATFORM_SECRET: &str = "MARKER-platform-secret-77e0";
const FEED_TOKEN: &str = "MARKER-feed-token-c3a9";
const AWS_SECRET: &str = "MARKER-aws-secret-19f4";

/// Every text a file holds: Parquet decoded column by column (its pages
/// are compressed), anything else as bytes.
async fn texts(path: &Path) -> String {
    if path.extension().is_some_and(|e| e == "parquet") {
        let batches = crate::support::read_parquet(path).await;
        let mut out = String::new();
        for b in &batches {
            for c in b.columns() {
                let text = datafusion::arrow::compute::cast(
                    c,
                    &datafusion::arrow::datatypes::DataType::Utf8,
                )
                .expect("cast");
                let text = datafusion::arrow::array::AsArray::as_string::<i32>(&text);
                for v in text.iter().flatten() {
                    out.push_str(v);
                    out.push('\n');
                }
            }
        }
        out
    } else {
        String::from_utf8_lossy(&std::fs::read(path).expect("read")).into_owned()
    }
}

/// The identity numbers in clear of the generated persons feed.
fn identity_numbers(feeds: &Path) -> Vec<String> {
    let path = crate::support::walk(feeds)
        .into_iter()
        .find(|p| p.contains("persons"))
        .map(|p| feeds.join(p))
        .expect("persons feed");
    let text = String::from_utf8_lossy(&std::fs::read(path).expect("persons")).into_owned();
    let mut ids: Vec<String> = text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| t.len() == 18 && t[..17].chars().all(|c| c.is_ascii_digit()))
        .map(str::to_string)
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_and_no_identity_number_leaks_anywhere_it_should_not() {
    let feeds = tempfile::tempdir().expect("tmp");
    generate(feeds.path(), 60);
    let ids = identity_numbers(feeds.path());
    assert!(
        ids.len() > 50,
        "the persons feed carries identity numbers: {}",
        ids.len()
    );
    let sim = qinglian::simulator::FeedSimulator::start(feeds.path(), 0, Some(FEED_TOKEN.into()))
        .await
        .expect("feeds");
    let project = tempfile::tempdir().expect("tmp");
    crate::http_feeds::http_project(project.path(), &sim.url(), Some(FEED_TOKEN));
    let platform = PlatformSimulator::start(0, PLATFORM_SECRET.as_bytes(), 300)
        .await
        .expect("platform");
    let moto = crate::conformance::Moto::start("platform").await;
    let warehouse = tempfile::tempdir().expect("tmp");

    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_qinglian"));
    cmd.args(["run", "nightly", "--date", "2026-11-28"])
        .arg("--project")
        .arg(project.path())
        .arg("--warehouse")
        .arg(warehouse.path())
        .env("QINGLIAN_LOG", "debug")
        .env("QINGLIAN_PERSON_KEY", PERSON_KEY)
        .env("FEED_TOKEN", FEED_TOKEN)
        .env("QINGLIAN_PLATFORM_URL", platform.url())
        .env("QINGLIAN_PLATFORM_SECRET", PLATFORM_SECRET)
        .env("QINGLIAN_PLATFORM_BUCKET", "s3://platform/qinglian");
    for (k, v) in moto.vars() {
        cmd.env(k, v);
    }
    cmd.env("AWS_SECRET_ACCESS_KEY", AWS_SECRET);
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run"))
        .await
        .expect("join");
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{logs}");
    assert!(
        logs.contains("\"level\":\"DEBUG\""),
        "debug logs were written"
    );
    assert!(platform.stats().accepted_rows > 40, "bodies were delivered");
    assert!(logs.contains("dropped to s3://platform/qinglian"), "{logs}");

    // What is scanned: the logs, every delivered body, and every file of
    // the warehouse except the raw payloads and landed snapshots (the
    // departments' own data, identity numbers included, kept as received).
    let mut scanned = vec![("logs".to_string(), logs)];
    for b in platform.batches() {
        scanned.push((format!("body {}", b.key), b.body.to_string()));
    }
    for rel in crate::support::walk(warehouse.path()) {
        let f = warehouse.path().join(&rel);
        if rel.starts_with("landing/") || rel.starts_with("quarantine/") {
            continue;
        }
        scanned.push((rel, texts(&f).await));
    }
    assert!(scanned.iter().any(|(n, _)| n.starts_with("published/hits")));
    assert!(scanned.iter().any(|(n, _)| n.starts_with("reports/")));
    assert!(scanned.iter().any(|(n, _)| n.starts_with("ledger/")));
    for (name, text) in &scanned {
        for secret in [PERSON_KEY, PLATFORM_SECRET, FEED_TOKEN, AWS_SECRET] {
            assert!(
                !text.contains(secret),
                "{name} contains the secret {secret}"
            );
        }
        for id in &ids {
            assert!(
                !text.contains(id.as_str()),
                "{name} contains the identity number {id}"
            );
        }
    }

    // The public dataset: nothing private (DOMAIN.md §5).
    let project = qinglian::project::Project::load(&crate::support::root()).expect("project");
    for c in &project.contracts["codes"].columns {
        for private in [
            "person",
            "id_number",
            "police",
            "points",
            "hit",
            "score",
            "red_line",
        ] {
            assert!(!c.name.contains(private), "codes carries {}", c.name);
        }
    }
}
