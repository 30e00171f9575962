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
    // The generator's days evolve one base population (registrations,
    // deregistrations, new and cleared situations); its dates are kept
    // where day 0 put them, as a department's records keep theirs (with
    // `as_of` moving, every record would be re-dated every night).
    let days: Vec<PathBuf> = (0..NIGHTS)
        .map(|k| {
            let dir = root_dir.path().join(format!("feeds/day-{k:02}"));
            generate(
                &GenerateOptions {
                    orgs: 120,
                    seed: 42,
                    as_of: first,
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
        let deltas =
            run_project(&delta, &days[k as usize], &wh_delta, day, Extras::default()).await;
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
        assert_eq!(
            f.snapshot, landed.snapshot,
            "{}: the snapshot carried",
            f.feed
        );
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

/// The nightly run of `project` for `date` as a child process.
fn nightly(project: &Path, warehouse: &Path, date: NaiveDate) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_qinglian"));
    c.args(["run", "nightly", "--date", &date.to_string()])
        .arg("--project")
        .arg(project)
        .arg("--warehouse")
        .arg(warehouse)
        .env("QINGLIAN_PERSON_KEY", crate::ingest::KEY)
        .env_remove("QINGLIAN_PLATFORM_URL")
        .env_remove("QINGLIAN_PLATFORM_BUCKET")
        .env_remove("QINGLIAN_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    c
}

fn run_to_end(project: &Path, warehouse: &Path, date: NaiveDate) {
    let out = nightly(project, warehouse, date)
        .output()
        .expect("qinglian");
    assert!(
        out.status.success(),
        "{date}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A feed whose delivery of `date` (with rows) is landed and whose state
/// still names an earlier snapshot: the run is between landing a delta and
/// committing the snapshot merged from it.
fn between_landing_and_commit(warehouse: &Path, date: NaiveDate) -> Option<String> {
    let landing = std::fs::read_dir(warehouse.join("landing")).ok()?;
    for feed in landing.filter_map(Result::ok) {
        let feed = feed.file_name().to_string_lossy().into_owned();
        let day = warehouse.join(format!("landing/{feed}/dt={date}"));
        let Ok(runs) = std::fs::read_dir(&day) else {
            continue;
        };
        // A delivery with rows (an empty delta would change nothing).
        let delivered = runs.filter_map(Result::ok).any(|r| {
            !r.path().join(qinglian::layout::LANDED_DATA).exists()
                && std::fs::File::open(r.path().join(qinglian::layout::DELIVERED_DATA))
                    .ok()
                    .and_then(|f| parquet::file::reader::SerializedFileReader::new(f).ok())
                    .is_some_and(|f| {
                        use parquet::file::reader::FileReader;
                        f.metadata().file_metadata().num_rows() > 0
                    })
        });
        if !delivered {
            continue;
        }
        let state = std::fs::read(warehouse.join(qinglian::layout::feed_state(&feed))).ok()?;
        let state: qinglian::ledger::FeedState = serde_json::from_slice(&state).ok()?;
        if !state.snapshot.contains(&format!("dt={date}")) {
            return Some(feed);
        }
    }
    None
}

/// Each feed's snapshot as its state names it: its date, its rows as
/// counted, and its rows as read back (sorted, `fetched_at` aside: the
/// instant each was fetched).
async fn snapshots(warehouse: &Path) -> BTreeMap<String, (String, u64, Vec<String>)> {
    let (store, prefix) =
        qinglian::store::open(warehouse.to_str().expect("utf-8")).expect("warehouse");
    let ledger = qinglian::ledger::Ledger::new(store, prefix);
    let mut out = BTreeMap::new();
    for feed in Project::load(&root()).expect("project").sources.keys() {
        let s = ledger
            .feed_state(feed)
            .await
            .expect("state")
            .expect("landed");
        assert!(
            s.parts.iter().all(|p| p.watermark.is_some()),
            "{feed}: every part has its watermark"
        );
        let file = std::fs::File::open(warehouse.join(&s.snapshot)).expect("snapshot");
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("parquet")
            .build()
            .expect("reader");
        let mut rows = Vec::new();
        for batch in reader {
            let mut batch = batch.expect("batch");
            let at = batch.schema().index_of("fetched_at").expect("fetched_at");
            batch.remove_column(at);
            let text = datafusion::arrow::util::pretty::pretty_format_batches(&[batch])
                .expect("format")
                .to_string();
            rows.extend(
                text.lines()
                    .skip(3)
                    .filter(|l| l.starts_with('|'))
                    .map(str::to_string),
            );
        }
        rows.sort();
        assert_eq!(rows.len() as u64, s.rows, "{feed}: rows as counted");
        out.insert(feed.clone(), (s.business_date.to_string(), s.rows, rows));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_between_landing_a_delta_and_committing_its_merge_the_rerun_applies_it_once() {
    let dir = tempfile::tempdir().expect("tmp");
    let first = NaiveDate::from_ymd_opt(2026, 11, 1).expect("date");
    let second = first.succ_opt().expect("date");
    let days: Vec<PathBuf> = (0..2u32)
        .map(|k| {
            let out = dir.path().join(format!("feeds/day-{k}"));
            generate(
                &GenerateOptions {
                    orgs: 100,
                    seed: 7,
                    as_of: first,
                    day: k * 6,
                },
                &out,
            )
            .expect("generate");
            out
        })
        .collect();
    let record_ids = Project::load(&root())
        .expect("project")
        .sources
        .iter()
        .map(|(feed, s)| (feed.clone(), s.record_id.clone()))
        .collect();
    let sim = qinglian::simulator::FeedSimulator::start_days(&days, record_ids, 0)
        .await
        .expect("simulator");
    let project = dir.path().join("project");
    delta_project(&project, &sim.url());
    // The court's records as events that never change: appended.
    let court = project.join("pipelines/sources/court.toml");
    let text = std::fs::read_to_string(&court).expect("court");
    let mut table: toml::Table = text.parse().expect("toml");
    if let Some(s) = table.get_mut("source").and_then(toml::Value::as_table_mut) {
        s.insert("merge".into(), "append".into());
        s.remove("tombstone");
    }
    std::fs::write(&court, toml::to_string(&table).expect("toml")).expect("write");

    let (reference, crashed) = (dir.path().join("reference"), dir.path().join("crashed"));
    sim.set_day(0);
    let (p, r, c) = (project.clone(), reference.clone(), crashed.clone());
    tokio::task::spawn_blocking(move || {
        run_to_end(&p, &r, first);
        run_to_end(&p, &c, first);
    })
    .await
    .expect("night 0");
    sim.set_day(1);
    let (p, r) = (project.clone(), reference.clone());
    tokio::task::spawn_blocking(move || run_to_end(&p, &r, second))
        .await
        .expect("night 1");
    let expected = reproducible_sums(&current(&reference, second).await);
    let expected_rows = snapshots(&reference).await;

    // Night 1 killed where a feed's delta is landed and its merge not
    // committed (each attempt on a copy of night 0's warehouse, until one
    // lands there): the court, appended, and the annual reports, upserted.
    let night0 = dir.path().join("night0");
    std::fs::rename(&crashed, &night0).expect("keep night 0");
    for target in ["court", "annual_reports"] {
        let mut hit = None;
        for attempt in 1..=12 {
            let _ = std::fs::remove_dir_all(&crashed);
            let copied = std::process::Command::new("cp")
                .arg("-a")
                .arg(&night0)
                .arg(&crashed)
                .status()
                .expect("cp");
            assert!(copied.success());
            let (p, c) = (project.clone(), crashed.clone());
            let found = tokio::task::spawn_blocking(move || {
                let mut child = nightly(&p, &c, second).spawn().expect("spawn");
                loop {
                    if let Ok(Some(_)) = child.try_wait() {
                        return false;
                    }
                    if between_landing_and_commit(&c, second).as_deref() == Some(target) {
                        let _ = child.kill();
                        let _ = child.wait();
                        // Still so after the kill: the kill fell in the window.
                        return between_landing_and_commit(&c, second).as_deref() == Some(target);
                    }
                    std::thread::sleep(std::time::Duration::from_micros(300));
                }
            })
            .await
            .expect("kill");
            if found {
                println!(
                    "{target}: attempt {attempt} killed with its delta landed, its merge uncommitted"
                );
                hit = Some(attempt);
                break;
            }
        }
        assert!(
            hit.is_some(),
            "a kill between landing {target}'s delta and committing its merge"
        );
        let (p, c) = (project.clone(), crashed.clone());
        tokio::task::spawn_blocking(move || run_to_end(&p, &c, second))
            .await
            .expect("re-run");
        assert_eq!(
            reproducible_sums(&current(&crashed, second).await),
            expected,
            "the re-run after a kill with {target}'s delta landed publishes the uninterrupted night"
        );
        assert_eq!(
            snapshots(&crashed).await,
            expected_rows,
            "{target}: every snapshot holds the uninterrupted night's rows: nothing lost, nothing applied twice"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_keep_their_own_watermarks_a_delta_api_beside_a_full_dump() {
    let dir = tempfile::tempdir().expect("tmp");
    let first = NaiveDate::from_ymd_opt(2026, 11, 1).expect("date");
    let days: Vec<PathBuf> = [0u32, 6]
        .iter()
        .map(|k| {
            let out = dir.path().join(format!("feeds/day-{k}"));
            generate(
                &GenerateOptions {
                    orgs: 80,
                    seed: 11,
                    as_of: first,
                    day: *k,
                },
                &out,
            )
            .expect("generate");
            out
        })
        .collect();
    let record_ids = Project::load(&root())
        .expect("project")
        .sources
        .iter()
        .map(|(feed, s)| (feed.clone(), s.record_id.clone()))
        .collect();
    // One assessment revised on the second day: the API's delta.
    let revised = days[1].join("ratings/ratings.json");
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&revised).expect("ratings")).expect("json");
    doc["data"][0]["score"] = serde_json::json!(61.5);
    std::fs::write(&revised, doc.to_string()).expect("revise");
    let sim = qinglian::simulator::FeedSimulator::start_days(&days, record_ids, 0)
        .await
        .expect("simulator");
    let project = dir.path().join("project");
    delta_project(&project, &sim.url());
    // The ratings: the API's deltas, plus a district's own list as a file.
    let district = dir.path().join("district");
    std::fs::create_dir_all(&district).expect("dir");
    std::fs::write(
        district.join("ratings.ndjson"),
        "{\"creditCode\":\"52330106MJ00000344\",\"orgName\":\"西湖区北干康乐促进法律公益服务社\",\"recordId\":\"XH-1\",\"level\":\"4A\",\"score\":\"95\",\"assessDate\":\"2026-03-01\",\"validUntil\":\"2031-02-28\"}\n",
    )
    .expect("district file");
    let ratings = project.join("pipelines/sources/ratings.toml");
    let text = std::fs::read_to_string(&ratings).expect("ratings");
    std::fs::write(
        &ratings,
        format!(
            "{text}\n[[part]]\nname = \"district\"\n\n[part.source]\nkind = \"object_store\"\nurl = \"{}/*.ndjson\"\nformat = \"ndjson\"\n\n\
             [part.mapping]\nkey = \"creditCode\"\nname = \"orgName\"\nrecord_id = [\"recordId\"]\n\n[part.mapping.columns]\n\
             level = \"level\"\nscore = \"score\"\nassessed_on = \"assessDate\"\nvalid_until = \"validUntil\"\n",
            district.display()
        ),
    )
    .expect("write");
    let project =
        Project::load(&project).expect("an incremental part beside a full dump validates");
    let warehouse = dir.path().join("warehouse");
    let mut nights = Vec::new();
    for (k, feeds) in days.iter().enumerate() {
        sim.set_day(k);
        let day = first + chrono::TimeDelta::days(k as i64);
        let run = run_project(&project, feeds, &warehouse, day, Extras::default()).await;
        assert_run(&run, &day.to_string());
        nights.push(
            run.feeds
                .into_iter()
                .find(|f| f.feed == "ratings")
                .expect("ratings"),
        );
    }
    let (night0, night1) = (&nights[0], &nights[1]);
    let part = |f: &qinglian::ledger::FeedRecord, name: &str| {
        f.parts
            .iter()
            .find(|p| p.name == name)
            .expect("part")
            .clone()
    };
    assert_eq!(part(night0, "district").landed, 1);
    // Night 1: the API sent its delta; the district's file, listed as it
    // was, was carried forward unread.
    let (api, file) = (part(night1, "ratings"), part(night1, "district"));
    assert_eq!(api.merge, "upsert");
    assert!(
        api.upserted == 1 && api.read < part(night0, "ratings").read,
        "{api:#?}"
    );
    assert_eq!(night1.status, FeedStatus::Landed);
    assert!(
        file.unchanged && file.read == 0 && file.carried_over == 1,
        "{file:#?}"
    );
    assert_eq!(night1.rows, night1.carried_over + night1.landed);
    let (store, prefix) =
        qinglian::store::open(warehouse.to_str().expect("utf-8")).expect("warehouse");
    let state = qinglian::ledger::Ledger::new(store, prefix)
        .feed_state("ratings")
        .await
        .expect("state")
        .expect("landed");
    let api_state = state
        .parts
        .iter()
        .find(|p| p.name == "ratings")
        .expect("api");
    let file_state = state
        .parts
        .iter()
        .find(|p| p.name == "district")
        .expect("file");
    assert!(
        api_state
            .watermark
            .as_deref()
            .is_some_and(|w| w.starts_with("since:")),
        "{api_state:#?}"
    );
    assert_eq!(file_state.objects.len(), 1, "{file_state:#?}");
    assert_eq!(state.rows, night1.rows);
}

/// `qinglian generate-delta` between two generator days, read as files by
/// its project (NDJSON, `merge = "upsert"`, tombstones), publishes night by
/// night what the shipped project publishes from the departments' full
/// files; the second night reads only what changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_deltas_read_as_files_publish_what_the_full_files_publish() {
    let dir = tempfile::tempdir().expect("tmp");
    let first = NaiveDate::from_ymd_opt(2026, 11, 1).expect("date");
    let days: Vec<PathBuf> = (0..2)
        .map(|k| {
            let out = dir.path().join(format!("feeds/day-{k}"));
            generate(
                &GenerateOptions {
                    orgs: 150,
                    seed: 42,
                    as_of: first,
                    day: k,
                },
                &out,
            )
            .expect("generate");
            out
        })
        .collect();
    // A record changed under the same record id, which the generator's
    // days never do (they add and remove records): the first organization
    // of day 1 is renamed in the registry's GB18030 file.
    let registry = days[1].join("registry/registry.csv");
    let bytes = std::fs::read(&registry).expect("registry");
    let (text, _, _) = encoding_rs::GB18030.decode(&bytes);
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().expect("headers").clone();
    let name = headers
        .iter()
        .position(|h| h == "社会组织名称")
        .expect("name column");
    let mut edited = csv::Writer::from_writer(Vec::new());
    edited.write_record(&headers).expect("write");
    for (i, record) in reader.records().enumerate() {
        let mut record: Vec<String> = record.expect("record").iter().map(String::from).collect();
        if i == 0 {
            record[name] = format!("{}（更名）", record[name]);
        }
        edited.write_record(&record).expect("write");
    }
    let edited = String::from_utf8(edited.into_inner().expect("csv")).expect("utf-8");
    std::fs::write(&registry, encoding_rs::GB18030.encode(&edited).0).expect("write registry");
    let (project_dir, d0, d1) = (
        dir.path().join("delta-project"),
        dir.path().join("deltas/day-0"),
        dir.path().join("deltas/day-1"),
    );
    let path = |p: &Path| p.to_str().expect("utf-8").to_string();
    let root_dir = path(&root());
    let mut summaries: Vec<String> = Vec::new();
    for args in [
        vec![
            "generate-delta",
            "--project",
            &root_dir,
            "--to",
            &path(&days[0]),
        ]
        .into_iter()
        .map(String::from)
        .chain([
            "--out".into(),
            path(&d0),
            "--project-out".into(),
            path(&project_dir),
        ])
        .collect::<Vec<_>>(),
        ["generate-delta", "--project", &root_dir, "--from"]
            .into_iter()
            .map(String::from)
            .chain([
                path(&days[0]),
                "--to".into(),
                path(&days[1]),
                "--out".into(),
                path(&d1),
            ])
            .collect(),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = crate::support::qinglian(&args, None);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        summaries.push(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let registry_line = summaries[1]
        .lines()
        .find(|l| l.starts_with("registry "))
        .unwrap_or_default()
        .to_string();
    assert!(
        registry_line.contains(" 1 changed"),
        "the renamed organization is in the delta: {}",
        summaries[1]
    );
    let tombstones = std::fs::read_dir(&d1)
        .expect("deltas")
        .flatten()
        .map(|feed| {
            let name = feed.file_name().to_string_lossy().into_owned();
            std::fs::read_to_string(feed.path().join(format!("{name}.ndjson")))
                .expect("delta file")
                .lines()
                .filter(|l| l.contains("\"op\":\"D\""))
                .count()
        })
        .sum::<usize>();
    assert!(
        tombstones > 0,
        "day 1 deletes records, so its delta has tombstones"
    );
    let shipped = Project::load(&root()).expect("project");
    let delta = Project::load(&project_dir).expect("delta project");
    let (wh_full, wh_delta) = (dir.path().join("wh-full"), dir.path().join("wh-delta"));
    for (k, deltas) in [&d0, &d1].into_iter().enumerate() {
        let day = first + chrono::TimeDelta::days(k as i64);
        let full = run_project(&shipped, &days[k], &wh_full, day, Extras::default()).await;
        assert_run(&full, &format!("{day} full files"));
        let delta = run_project(&delta, deltas, &wh_delta, day, Extras::default()).await;
        assert_run(&delta, &format!("{day} delta files"));
        if k == 1 {
            let read = |r: &RunRecord| r.feeds.iter().map(|f| f.read).sum::<u64>();
            assert!(
                read(&delta) * 5 < read(&full),
                "the delta reads a fraction: {} of {}",
                read(&delta),
                read(&full)
            );
            assert!(delta.feeds.iter().map(|f| f.deleted).sum::<u64>() > 0);
            assert!(delta.feeds.iter().map(|f| f.carried_over).sum::<u64>() > 0);
        }
        assert_eq!(
            content_sums(&current(&wh_delta, day).await),
            content_sums(&current(&wh_full, day).await),
            "{day}: the delta files publish what the full files publish"
        );
    }
}
