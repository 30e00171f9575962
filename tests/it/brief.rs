//! Briefings and demonstration candidates.
//!
//! - A month's briefing from simulated nights: `openpyxl` opens the city
//!   workbook and a Python script recomputes every figure from the
//!   published datasets with pyarrow (`tests/fixtures/brief/check_workbook.py`);
//!   the city page opens in headless Chromium, draws its charts and prints
//!   to A4 landscape pages.
//! - Every demonstration filter on a hand-written fixture
//!   (`tests/fixtures/demonstration/filters.toml`).
//! - Over simulated nights with a short look-back window, a candidate with
//!   one yellow night drops out, and is back only when the window is green
//!   again.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{
    Array, AsArray, BooleanArray, Date32Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use qinglian::catalog::Published;
use qinglian::generate::{GenerateOptions, generate};
use qinglian::ledger::RunStatus;
use qinglian::project::Project;
use qinglian::score;
use tokio::sync::OnceCell;

use crate::ingest::{Extras, run_project};
use crate::support::{fixtures, qinglian, root};

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
}

/// Generates the feeds of night `k` (the generator's `--day`) as of `date`.
fn feeds_of(root: &Path, k: u32, date: NaiveDate, orgs: u64) -> PathBuf {
    let feeds = root.join(format!("feeds/day-{k:02}"));
    generate(
        &GenerateOptions {
            orgs,
            seed: 42,
            as_of: date,
            day: k,
        },
        &feeds,
    )
    .expect("generate");
    feeds
}

async fn night(project: &Project, feeds: &Path, warehouse: &Path, date: NaiveDate) {
    let run = run_project(project, feeds, warehouse, date, Extras::default()).await;
    assert!(
        matches!(run.status, RunStatus::Succeeded | RunStatus::Degraded),
        "{date}: {run:#?}"
    );
}

/// A warehouse with the last night of October and the first two of
/// November, and the November briefing written from it.
struct Month {
    _root: tempfile::TempDir,
    warehouse: PathBuf,
    out: PathBuf,
}

static MONTH: OnceCell<Month> = OnceCell::const_new();

async fn month() -> &'static Month {
    MONTH
        .get_or_init(|| async {
            // Shared by the tests of this file, so it outlives each of them:
            // under the target's scratch folder.
            let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tmp");
            let warehouse = dir.path().join("warehouse");
            let project = Project::load(&root()).expect("project");
            for (k, d) in ["2026-10-31", "2026-11-01", "2026-11-02"]
                .iter()
                .enumerate()
            {
                let feeds = feeds_of(dir.path(), k as u32, day(d), 300);
                night(&project, &feeds, &warehouse, day(d)).await;
            }
            let out = dir.path().join("briefs");
            let o = qinglian(
                &[
                    "brief",
                    "--month",
                    "2026-11",
                    "--project",
                    root().to_str().expect("utf-8"),
                    "--warehouse",
                    warehouse.to_str().expect("utf-8"),
                    "--out",
                    out.to_str().expect("utf-8"),
                ],
                None,
            );
            assert!(
                o.status.success(),
                "brief: {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            let stdout = String::from_utf8_lossy(&o.stdout);
            assert!(
                stdout.contains("briefing 2026-11 (2 published night(s), up to 2026-11-02)"),
                "{stdout}"
            );
            Month {
                _root: dir,
                warehouse,
                out,
            }
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_month_workbook_reconciles_with_the_published_datasets() {
    let m = month().await;
    for f in ["index.html", "city.xlsx", "city.html"] {
        assert!(m.out.join(f).is_file(), "{f} written");
    }
    let names: Vec<String> = std::fs::read_dir(&m.out)
        .expect("out")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("district-") && n.ends_with(".xlsx"))
    );
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("unit-") && n.ends_with(".html"))
    );
    let index = std::fs::read_to_string(m.out.join("index.html")).expect("index");
    for n in names
        .iter()
        .filter(|n| n.ends_with(".html") && *n != "index.html")
    {
        assert!(index.contains(&format!("href=\"{n}\"")), "index links {n}");
    }
    let out = Command::new("python3")
        .arg(fixtures().join("brief/check_workbook.py"))
        .arg(m.out.join("city.xlsx"))
        .arg(&m.warehouse)
        .arg("2026-11")
        .output()
        .expect("python3 (./scripts/test installs openpyxl and pyarrow)");
    assert!(
        out.status.success(),
        "the workbook does not reconcile:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{}", String::from_utf8_lossy(&out.stdout).trim());
}

/// Pixels of a PNG in exactly this colour.
fn pixels_of(png: &Path, rgb: [u8; 3]) -> usize {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(png).expect("screenshot"),
    ));
    let mut reader = decoder.read_info().expect("png");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("frame");
    let step = info.color_type.samples();
    buf[..info.buffer_size()]
        .chunks(step)
        .filter(|p| p[..3] == rgb)
        .count()
}

fn chromium(page: &Path, profile: &Path, output: &[String]) -> std::process::Output {
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(output)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium (./scripts/test installs Debian's chromium)")
}

/// Every page's `/MediaBox` of a PDF, as `[x0, y0, x1, y1]` rounded.
fn media_boxes(pdf: &[u8]) -> Vec<[i64; 4]> {
    let text = String::from_utf8_lossy(pdf);
    let mut out = Vec::new();
    let mut rest: &str = &text;
    while let Some(i) = rest.find("/MediaBox") {
        rest = &rest[i + "/MediaBox".len()..];
        let Some(open) = rest.find('[') else { break };
        let Some(close) = rest.find(']') else { break };
        let numbers: Vec<i64> = rest[open + 1..close]
            .split_whitespace()
            .filter_map(|n| n.parse::<f64>().ok())
            .map(|n| n.round() as i64)
            .collect();
        if let [a, b, c, d] = numbers[..] {
            out.push([a, b, c, d]);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_city_page_draws_its_charts_and_prints_on_a4_landscape() {
    let m = month().await;
    let page = m.out.join("city.html");
    let html = std::fs::read_to_string(&page).expect("page");
    assert!(!html.contains("<script") && !html.contains("http://") && !html.contains("https://"));
    assert!(html.contains("@page { size: A4 landscape"));
    for id in ["trend", "breakdown"] {
        assert!(html.contains(&format!("<svg id=\"{id}\"")), "chart {id}");
    }
    assert!(html.contains("清廉码颜色分布") && html.contains("组织体系"));
    let shot = tempfile::tempdir().expect("tmp");
    let png = shot.path().join("city.png");
    let out = chromium(
        &page,
        &shot.path().join("profile-1"),
        &[
            "--window-size=1100,1400".into(),
            format!("--screenshot={}", png.display()),
        ],
    );
    assert!(
        png.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The trend's green line and the districts' green bars, and the other
    // colours' lines: the page is not blank and its charts drew.
    for (what, rgb) in [
        ("green", [0x2e, 0x7d, 0x32]),
        ("yellow", [0xf9, 0xa8, 0x25]),
        ("red", [0xc6, 0x28, 0x28]),
    ] {
        let n = pixels_of(&png, rgb);
        assert!(n > 300, "{what}: {n} pixels");
    }
    let pdf = shot.path().join("city.pdf");
    let out = chromium(
        &page,
        &shot.path().join("profile-2"),
        &[
            "--no-pdf-header-footer".into(),
            format!("--print-to-pdf={}", pdf.display()),
        ],
    );
    let bytes = std::fs::read(&pdf)
        .unwrap_or_else(|_| panic!("no PDF: {}", String::from_utf8_lossy(&out.stderr)));
    let boxes = media_boxes(&bytes);
    assert!(!boxes.is_empty(), "no page in the PDF");
    for b in &boxes {
        assert_eq!(*b, [0, 0, 842, 595], "an A4 landscape page: {boxes:?}");
    }
    println!("city page: {} A4 landscape page(s)", boxes.len());
}

/// `(uscc, green_since, candidate)` rows as the previous version's batch.
fn previous_batch(rows: &[toml::Table]) -> RecordBatch {
    let epoch = day("1970-01-01");
    let text = |r: &toml::Table, k: &str| r.get(k).and_then(|v| v.as_str()).map(str::to_string);
    RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("uscc", DataType::Utf8, false),
            Field::new("green_since", DataType::Date32, true),
            Field::new("candidate", DataType::Boolean, false),
        ])),
        vec![
            Arc::new(StringArray::from(
                rows.iter().map(|r| text(r, "uscc")).collect::<Vec<_>>(),
            )),
            Arc::new(Date32Array::from(
                rows.iter()
                    .map(|r| text(r, "green_since").map(|d| (day(&d) - epoch).num_days() as i32))
                    .collect::<Vec<_>>(),
            )),
            Arc::new(BooleanArray::from(
                rows.iter()
                    .map(|r| {
                        r.get("candidate")
                            .and_then(|v| v.as_bool())
                            .unwrap_or(false)
                    })
                    .collect::<Vec<_>>(),
            )),
        ],
    )
    .expect("previous batch")
}

/// A demonstration batch's rows by USCC, each column as text.
fn by_uscc(batch: &RecordBatch) -> BTreeMap<String, BTreeMap<String, Option<String>>> {
    let mut out = BTreeMap::new();
    let schema = batch.schema();
    let text: Vec<Arc<dyn Array>> = batch
        .columns()
        .iter()
        .map(|c| datafusion::arrow::compute::cast(c, &DataType::Utf8).expect("cast"))
        .collect();
    for r in 0..batch.num_rows() {
        let mut row = BTreeMap::new();
        for (i, f) in schema.fields().iter().enumerate() {
            let c = text[i].as_string::<i32>();
            row.insert(
                f.name().clone(),
                (!c.is_null(r)).then(|| c.value(r).to_string()),
            );
        }
        out.insert(row["uscc"].clone().expect("uscc"), row);
    }
    out
}

#[tokio::test]
async fn every_demonstration_filter_passes_and_fails_on_its_fixture() {
    let doc: toml::Table = std::fs::read_to_string(fixtures().join("demonstration/filters.toml"))
        .expect("fixture")
        .parse()
        .expect("toml");
    let mut project = Project::load(&root()).expect("project");
    let lookback = doc["lookback_days"].as_integer().expect("lookback_days") as u32;
    let pipeline = project.pipelines.get_mut("nightly").expect("nightly");
    pipeline.demonstration.lookback_days = lookback;
    let pipeline = pipeline.clone();
    let date = day(doc["business_date"].as_str().expect("business_date"));
    let rows = |k: &str| -> Vec<toml::Table> {
        doc.get(k)
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|v| v.as_table().cloned()).collect())
            .unwrap_or_default()
    };
    let ctx = score::session().expect("session");
    for (feed, schema) in &project.schemas {
        let b = crate::rules::batch(schema, &rows(feed));
        let table = MemTable::try_new(b.schema(), vec![vec![b]]).expect("table");
        ctx.register_table(format!("{feed}_landed"), Arc::new(table))
            .expect("register");
    }
    score::resolve_feeds(&ctx, &project, &pipeline)
        .await
        .expect("resolve");
    let got = score::demonstration::candidates(
        &ctx,
        &project,
        &pipeline,
        date,
        &[previous_batch(&rows("previous"))],
    )
    .await
    .expect("demonstration");
    let got = by_uscc(&got);
    let expect = rows("expect");
    assert_eq!(
        got.len(),
        expect.len(),
        "one row per organization: {got:#?}"
    );
    let mut failures = Vec::new();
    let mut failed_seen = std::collections::BTreeSet::new();
    for e in &expect {
        let uscc = e["uscc"].as_str().expect("uscc");
        let Some(row) = got.get(uscc) else {
            failures.push(format!("{uscc}: no row"));
            continue;
        };
        let s = |k: &str| row.get(k).cloned().flatten().unwrap_or_default();
        let want = |k: &str, default: &str| {
            e.get(k)
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string())
                })
                .unwrap_or_else(|| default.to_string())
        };
        let failed = want("failed", "");
        for (k, w) in [
            ("eligible_as", want("eligible_as", "")),
            ("failed", failed.clone()),
            ("colour", want("colour", "green")),
            ("candidate", failed.is_empty().to_string()),
            ("dropped_out", want("dropped_out", "false")),
            ("reason", want("reason", "")),
        ] {
            if s(k) != w {
                failures.push(format!("{uscc} {k}: got {:?}, expected {w:?}", s(k)));
            }
        }
        // Each filter column agrees with `failed`.
        for f in score::demonstration::FILTERS.iter().skip(1) {
            let passed = s(f) == "true";
            if passed == failed.split(',').any(|x| x == *f) {
                failures.push(format!(
                    "{uscc} {f}: column {passed} against failed {failed:?}"
                ));
            }
        }
        failed_seen.extend(
            failed
                .split(',')
                .filter(|x| !x.is_empty())
                .map(str::to_string),
        );
        let eligible = s("eligible") == "true";
        if eligible == failed.split(',').any(|x| x == "eligibility") {
            failures.push(format!(
                "{uscc} eligible: {eligible} against failed {failed:?}"
            ));
        }
    }
    // Candidates are ranked 1.. by their scores (all 100 here: by code).
    let mut ranked: Vec<(i64, String)> = got
        .iter()
        .filter_map(|(u, r)| Some((r["rank"].clone()?.parse().ok()?, u.clone())))
        .collect();
    ranked.sort();
    let codes: Vec<&String> = ranked.iter().map(|(_, u)| u).collect();
    let mut sorted = codes.clone();
    sorted.sort();
    assert_eq!(codes, sorted, "equal scores rank by code");
    assert_eq!(
        ranked.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
        (1..=ranked.len() as i64).collect::<Vec<_>>()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let all: std::collections::BTreeSet<String> = score::demonstration::FILTERS
        .iter()
        .map(|f| f.to_string())
        .collect();
    assert_eq!(
        failed_seen, all,
        "the fixture fails every filter at least once"
    );
}

/// Adds an inspection finding (result 10, unreachable at the registered
/// address: 4 points) on `uscc` dated `date` to a night's inspection feed.
fn add_unreachable_finding(feeds: &Path, uscc: &str, date: NaiveDate) {
    let path = feeds.join("inspection/inspection.ndjson.gz");
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&path).expect("inspection feed"))
        .read_to_string(&mut text)
        .expect("gzip");
    let record = serde_json::json!({
        "checkAuthority": "上城区民政局",
        "checkDate": date.to_string(),
        "creditCode": uscc,
        "orgName": "测试组织",
        "rectifiedOn": null,
        "rectifyBy": null,
        "resultCode": "10",
        "resultDesc": "通过登记的住所无法联系",
        "taskId": format!("SSJ-TEST-{date}"),
    });
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&record.to_string());
    text.push('\n');
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&path).expect("rewrite"),
        flate2::Compression::default(),
    );
    gz.write_all(text.as_bytes()).expect("write");
    gz.finish().expect("gzip");
}

async fn demonstration_of(
    warehouse: &Path,
    d: NaiveDate,
) -> BTreeMap<String, BTreeMap<String, Option<String>>> {
    let (store, prefix) = qinglian::store::open(warehouse.to_str().expect("utf-8")).expect("store");
    let p = Published::latest(&store, &prefix, d)
        .await
        .expect("readable")
        .expect("published");
    let mut out = BTreeMap::new();
    for b in p
        .read_batches("demonstration")
        .await
        .expect("demonstration")
    {
        out.extend(by_uscc(&b));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_candidate_with_one_yellow_night_drops_out_until_its_window_is_green_again() {
    let dir = tempfile::tempdir().expect("tmp");
    let warehouse = dir.path().join("warehouse");
    let mut project = Project::load(&root()).expect("project");
    project
        .pipelines
        .get_mut("nightly")
        .expect("nightly")
        .demonstration
        .lookback_days = 2;
    let dates: Vec<NaiveDate> = (1..=5).map(|k| day(&format!("2026-11-0{k}"))).collect();
    let mut target: Option<String> = None;
    for (k, d) in dates.iter().enumerate() {
        let feeds = feeds_of(dir.path(), k as u32, *d, 300);
        if k == 2 {
            add_unreachable_finding(&feeds, target.as_deref().expect("a candidate"), *d);
        }
        night(&project, &feeds, &warehouse, *d).await;
        let rows = demonstration_of(&warehouse, *d).await;
        let s = |u: &str, c: &str| rows[u].get(c).cloned().flatten().unwrap_or_default();
        match k {
            // The first night covers one night of the window: nobody yet.
            0 => assert!(
                rows.values()
                    .all(|r| r["candidate"].as_deref() == Some("false"))
            ),
            1 => {
                // Green on both nights of the window: the first candidate,
                // at full points, is followed from here.
                let t = rows
                    .iter()
                    .filter(|(_, r)| r["candidate"].as_deref() == Some("true"))
                    .find(|(_, r)| {
                        r["score_total"]
                            .as_deref()
                            .and_then(|t| t.parse::<f64>().ok())
                            == Some(500.0)
                    })
                    .map(|(u, _)| u.clone())
                    .expect("a candidate at full points among 300 organizations");
                assert_eq!(s(&t, "green_since"), dates[0].to_string());
                target = Some(t);
            }
            2 => {
                let t = target.as_deref().expect("target");
                assert_eq!(s(t, "colour"), "yellow", "{:#?}", rows[t]);
                assert_eq!(s(t, "candidate"), "false");
                assert_eq!(s(t, "dropped_out"), "true");
                assert!(s(t, "reason").contains("转为黄码"), "{}", s(t, "reason"));
                assert!(s(t, "failed").contains("green_window"));
            }
            3 => {
                // Green again, the finding gone: only the window fails.
                let t = target.as_deref().expect("target");
                assert_eq!(s(t, "colour"), "green");
                assert_eq!(s(t, "green_since"), dates[3].to_string());
                assert_eq!(s(t, "failed"), "green_window");
                assert_eq!(
                    s(t, "dropped_out"),
                    "false",
                    "it dropped out the night before"
                );
            }
            _ => {
                let t = target.as_deref().expect("target");
                assert_eq!(
                    s(t, "candidate"),
                    "true",
                    "two green nights again: {:#?}",
                    rows[t]
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monthly_job_briefs_the_month_before_into_the_warehouse() {
    use qinglian::daemon::PipelineRunner;
    use qinglian::schedule::{JobRunner, Outcome};
    let m = month().await;
    let project = Project::load(&root()).expect("project");
    let job = project.jobs["monthly"].clone();
    assert_eq!(job.task, qinglian::project::JobTask::Brief);
    // 08:00 on 1 December in Beijing processes 30 November: November's briefing.
    let out = qinglian(
        &[
            "jobs",
            "next",
            "monthly",
            "--after",
            "2026-11-15T00:00:00Z",
            "--project",
            root().to_str().expect("utf-8"),
        ],
        None,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("2026-12-01T00:00:00Z  2026-12-01 08:00:00 +08:00  processes 2026-11-30"),
        "{text}"
    );
    let runner = PipelineRunner {
        project: project.clone(),
        warehouse: Some(m.warehouse.to_string_lossy().into_owned()),
        progress: None,
        metrics: None,
    };
    let outcome = runner
        .run(
            &job,
            day("2026-11-30"),
            tokio_util::sync::CancellationToken::new(),
        )
        .await;
    assert_eq!(outcome, Outcome::Finished(RunStatus::Succeeded));
    let dir = m.warehouse.join("briefs/2026-11");
    for f in ["index.html", "city.xlsx", "city.html"] {
        assert!(dir.join(f).is_file(), "{f} in the warehouse");
    }
    // The same figures as the command's workbook.
    assert_eq!(
        std::fs::read(dir.join("city.html")).expect("page"),
        std::fs::read(m.out.join("city.html")).expect("page")
    );
}
