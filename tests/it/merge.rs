//! Merge strategies against the full dumps they stand for: a simulated
//! month served by the feed simulator both as full dumps and as `since`
//! deltas with tombstones publishes, night after night, the same datasets
//! byte for byte; and an unchanged night is carried forward unread.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use qinglian::catalog::Published;
use qinglian::generate::{GenerateOptions, generate};
use qinglian::ledger::{FeedStatus, RunRecord, RunStatus};
use qinglian::project::Project;

use crate::ingest::{Extras, ingest_on, run_project};
use crate::support::{reproducible_sums, root};

async fn current(warehouse: &Path, day: NaiveDate) -> Published {
    let (store, prefix) =
        qinglian::store::open(warehouse.to_str().expect("utf-8")).expect("warehouse");
    Published::latest(&store, &prefix, day)
        .await
        .expect("readable")
        .expect("published")
}

/// The published checksums that depend on the feeds' content alone: the
/// quarantine dataset lists each delivery's rejected records with their
/// position in it (`page 3 #17`), so a delta's differs from a dump's.
fn content_sums(p: &Published) -> BTreeMap<String, Vec<String>> {
    let mut sums = reproducible_sums(p);
    sums.remove("quarantine");
    sums
}

/// The shipped project with every feed fetched from the simulator as a
/// delta API: `since`, merged by record id, `op = "D"` deleting.
fn delta_project(out: &Path, base: &str) {
    qinglian::simulator::write_http_project(&root(), out, base).expect("project");
    let sources = out.join("pipelines/sources");
    for entry in std::fs::read_dir(&sources).expect("sources") {
        let path = entry.expect("entry").path();
        let mut table: toml::Table = std::fs::read_to_string(&path)
            .expect("read")
            .parse()
            .expect("toml");
        let source = table
            .get_mut("source")
            .and_then(toml::Value::as_table_mut)
            .expect("[source]");
        source.insert("since_param".into(), "since".into());
        source.insert("merge".into(), "upsert".into());
        let mut tombstone = toml::Table::new();
        tombstone.insert("field".into(), "op".into());
        tombstone.insert("value".into(), "D".into());
        source.insert("tombstone".into(), toml::Value::Table(tombstone));
        std::fs::write(&path, toml::to_string(&table).expect("toml")).expect("write");
    }
}

fn assert_run(run: &RunRecord, what: &str) {
    assert_eq!(run.status, RunStatus::Succeeded, "{what}: {run:#?}");
    for f in &run.feeds {
        assert!(f.reconciles(), "{what} {}: {f:#?}", f.feed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_month_of_deltas_publishes_what_the_full_dumps_publish() {
    const NIGHTS: u32 = 30;
    let root_dir = tempfile::tempdir().expect("tmp");
    let first = NaiveDate::from_ymd_opt(2026, 11, 1).expect("date");
    let days: Vec<PathBuf> = (0..NIGHTS)
        .map(|k| {
            let dir = root_dir.path().join(format!("feeds/day-{k:02}"));
            generate(
                &GenerateOptions {
                    orgs: 120,
                    seed: 42,
                    as_of: first + chrono::TimeDelta::days(i64::from(k)),
                    day: k,
                },
                &dir,
            )
            .expect("generate");
            dir
        })
        .collect();
    let shipped = Project::load(&root()).expect("project");
    let record_ids = shipped
        .sources
        .iter()
        .map(|(feed, s)| (feed.clone(), s.record_id.clone()))
        .collect();
    let sim = qinglian::simulator::FeedSimulator::start_days(&days, record_ids, 0)
        .await
        .expect("simulator");
    let (full_dir, delta_dir) = (root_dir.path().join("full"), root_dir.path().join("delta"));
    qinglian::simulator::write_http_project(&root(), &full_dir, &sim.url()).expect("project");
    delta_project(&delta_dir, &sim.url());
    let full = Project::load(&full_dir).expect("full-dump project");
    let delta = Project::load(&delta_dir).expect("delta project");
    let (wh_full, wh_delta) = (
        root_dir.path().join("wh-full"),
        root_dir.path().join("wh-delta"),
    );
    let (mut read_full, mut read_delta) = (0u64, 0u64);
    let (mut upserted, mut deleted, mut carried) = (0u64, 0u64, 0u64);
    for k in 0..NIGHTS {
        let day = first + chrono::TimeDelta::days(i64::from(k));
        sim.set_day(k as usize);
        let dumps = run_project(&full, &days[k as usize], &wh_full, day, Extras::default()).await;
        assert_run(&dumps, &format!("{day} full dumps"));
        let deltas = run_project(&delta, &days[k as usize], &wh_delta, day, Extras::default()).await;
        assert_run(&deltas, &format!("{day} deltas"));
        if k > 0 {
            read_full += dumps.feeds.iter().map(|f| f.read).sum::<u64>();
            read_delta += deltas.feeds.iter().map(|f| f.read).sum::<u64>();
        }
        for f in &deltas.feeds {
            upserted += f.upserted;
            deleted += f.deleted;
            carried += f.carried_over;
            if k > 0 && f.status == FeedStatus::Landed {
                assert_eq!(f.rows, f.carried_over + f.landed, "{day} {}", f.feed);
            }
        }
        assert_eq!(
            content_sums(&current(&wh_delta, day).await),
            content_sums(&current(&wh_full, day).await),
            "{day}: the delta run publishes what the full dumps publish"
        );
    }
    println!(
        "{NIGHTS} nights: read {read_full} records as full dumps, {read_delta} as deltas after the first; \
         {upserted} upserted, {deleted} deleted, {carried} carried over"
    );
    assert!(
        read_delta * 5 < read_full,
        "deltas read a fraction of the dumps: {read_delta} of {read_full}"
    );
    assert!(upserted > 0 && deleted > 0 && carried > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_night_is_carried_forward_unread_with_the_same_checksums() {
    let dir = tempfile::tempdir().expect("tmp");
    let (feeds, warehouse) = (dir.path().join("feeds"), dir.path().join("warehouse"));
    crate::ingest::generate(&feeds, 100);
    let day = NaiveDate::from_ymd_opt(2026, 11, 28).expect("date");
    let first = ingest_on(&feeds, &warehouse, day).await;
    assert_run(&first, "first night");
    assert!(first.feeds.iter().all(|f| f.status == FeedStatus::Landed));
    let published = reproducible_sums(&current(&warehouse, day).await);
    // The same files again: every part listed as it was, nothing read.
    let again = ingest_on(&feeds, &warehouse, day).await;
    assert_run(&again, "the same files again");
    assert_eq!(again.attempt, 2);
    for f in &again.feeds {
        assert_eq!(f.status, FeedStatus::Unchanged, "{}: {f:#?}", f.feed);
        assert!(f.parts.iter().all(|p| p.unchanged), "{}: {f:#?}", f.feed);
        assert_eq!((f.read, f.units, f.bytes), (0, 0, 0), "{}", f.feed);
        let landed = first.feeds.iter().find(|g| g.feed == f.feed).expect("feed");
        assert_eq!(f.snapshot, landed.snapshot, "{}: the snapshot carried", f.feed);
        assert_eq!(f.carried_over, landed.rows, "{}", f.feed);
    }
    assert_eq!(
        reproducible_sums(&current(&warehouse, day).await),
        published,
        "an unchanged night publishes the same checksums"
    );
    // One file touched: that feed alone is read again.
    let court = feeds.join("court/court.ndjson");
    let text = std::fs::read_to_string(&court).expect("court");
    std::fs::write(&court, format!("{text}\n")).expect("touch");
    let touched = ingest_on(&feeds, &warehouse, day).await;
    assert_run(&touched, "one file touched");
    for f in &touched.feeds {
        let expected = if f.feed == "court" {
            FeedStatus::Landed
        } else {
            FeedStatus::Unchanged
        };
        assert_eq!(f.status, expected, "{}", f.feed);
    }
    assert_eq!(
        content_sums(&current(&warehouse, day).await),
        without_quarantine(&published),
        "the same records read again publish the same"
    );
}

fn without_quarantine(p: &BTreeMap<String, Vec<String>>) -> BTreeMap<String, Vec<String>> {
    let mut p = p.clone();
    p.remove("quarantine");
    p
}
