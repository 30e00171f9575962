//! Files served over HTTP: a department's export downloaded whole (a
//! GB18030 CSV, an `.xlsx` workbook, NDJSON) is read by the same format
//! readers as the file in a folder. Every delivery scenario is served by a
//! real file server on 127.0.0.1 (an OS-assigned port, `ETag` and
//! `If-None-Match` like a portal's download link) and must publish what
//! the same files read from disk publish; a second night is `unchanged`.
//! An HTML error page served with 200 and a body cut short hold the feed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use qinglian::catalog::Published;
use qinglian::ledger::{FeedStatus, RunRecord, RunStatus};

use crate::support::{case_project, fixtures, reproducible_sums, run_case_from};

/// What the file server answers for a path other than the file.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// The file, with its `ETag`.
    File,
    /// A portal's HTML error page, served with 200.
    Html,
    /// The file's first half under a `Content-Length` of the whole.
    Cut,
    /// The file, after a wait: a slow portal.
    Slow,
}

/// How long a slow download keeps its client waiting.
const SLOW: std::time::Duration = std::time::Duration::from_secs(3);

struct Served {
    root: PathBuf,
    modes: BTreeMap<String, Mode>,
    /// Every request: path and the status answered.
    hits: Mutex<Vec<(String, u16)>>,
    /// Every request's arrival and every answer, in the order they happened.
    events: Mutex<Vec<String>>,
}

async fn serve_file(
    State(s): State<Arc<Served>>,
    UrlPath(path): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let answer = |status: StatusCode| {
        if let Ok(mut hits) = s.hits.lock() {
            hits.push((path.clone(), status.as_u16()));
        }
        status
    };
    if let Ok(mut events) = s.events.lock() {
        events.push(format!("asked {path}"));
    }
    if s.modes.get(&path) == Some(&Mode::Slow) {
        tokio::time::sleep(SLOW).await;
        if let Ok(mut events) = s.events.lock() {
            events.push(format!("answered {path}"));
        }
    }
    if path.split('/').any(|seg| seg == ".." || seg.is_empty()) {
        return answer(StatusCode::BAD_REQUEST).into_response();
    }
    let Ok(bytes) = std::fs::read(s.root.join(&path)) else {
        return answer(StatusCode::NOT_FOUND).into_response();
    };
    match s.modes.get(&path).copied().unwrap_or(Mode::File) {
        Mode::Html => {
            let page = "<html><body>系统维护中，请稍后再试</body></html>";
            (
                answer(StatusCode::OK),
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                page,
            )
                .into_response()
        }
        Mode::Cut => {
            // Declares the whole file and sends half: the client sees the
            // body end early.
            let half = bytes[..bytes.len() / 2].to_vec();
            let body =
                axum::body::Body::from_stream(futures::stream::iter([Ok::<_, std::io::Error>(
                    bytes::Bytes::from(half),
                )]));
            Response::builder()
                .status(answer(StatusCode::OK))
                .header(header::CONTENT_LENGTH, bytes.len())
                .header(header::CONTENT_TYPE, "text/csv")
                .body(body)
                .unwrap_or_default()
        }
        Mode::File | Mode::Slow => {
            let etag = {
                use std::hash::{Hash, Hasher};
                let mut h = std::hash::DefaultHasher::new();
                bytes.hash(&mut h);
                format!("\"{:016x}\"", h.finish())
            };
            if headers
                .get(header::IF_NONE_MATCH)
                .is_some_and(|v| v.as_bytes() == etag.as_bytes())
            {
                return (answer(StatusCode::NOT_MODIFIED), [(header::ETAG, etag)]).into_response();
            }
            let kind = match path.rsplit('.').next().unwrap_or_default() {
                "csv" => "text/csv",
                "ndjson" => "application/x-ndjson",
                "json" => "application/json",
                "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                _ => "application/octet-stream",
            };
            (
                answer(StatusCode::OK),
                [
                    (header::CONTENT_TYPE, kind.to_string()),
                    (header::ETAG, etag),
                ],
                bytes,
            )
                .into_response()
        }
    }
}

/// Serves `root` on 127.0.0.1; returns its base URL and what it saw.
async fn start(root: &Path, modes: BTreeMap<String, Mode>) -> (String, Arc<Served>) {
    let served = Arc::new(Served {
        root: root.to_path_buf(),
        modes,
        hits: Mutex::new(Vec::new()),
        events: Mutex::new(Vec::new()),
    });
    let app = axum::Router::new()
        .route("/{*path}", axum::routing::get(serve_file))
        .with_state(Arc::clone(&served));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), served)
}

/// Turns every object-store source of the project's feeds into an http
/// download of the same URL (`${QINGLIAN_FEEDS}` becomes the server's
/// base), keeping its format fields; a glob becomes the one file of the
/// scenario it matches. Returns how many sources it turned.
fn serve_sources_over_http(project: &Path, feeds: &str, files: &Path) -> usize {
    let mut turned = 0;
    for feed in feeds.split_whitespace() {
        let path = project.join(format!("pipelines/sources/{feed}.toml"));
        let mut table: toml::Table = std::fs::read_to_string(&path)
            .expect("source")
            .parse()
            .expect("toml");
        let mut turn = |source: &mut toml::Value| {
            let Some(s) = source.as_table_mut() else {
                return;
            };
            if s.get("kind").and_then(|k| k.as_str()) == Some("object_store") {
                let url = s.get("url").and_then(|u| u.as_str()).unwrap_or_default();
                let url = one_file(url, files);
                s.insert("url".into(), url.into());
                s.insert("kind".into(), "http".into());
                // Portals answer slowly when busy: no test timeout here.
                s.insert("retry_base_ms".into(), 50.into());
                turned += 1;
            }
        };
        if let Some(source) = table.get_mut("source") {
            turn(source);
        }
        if let Some(parts) = table.get_mut("part").and_then(|p| p.as_array_mut()) {
            for part in parts {
                if let Some(source) = part.get_mut("source") {
                    turn(source);
                }
            }
        }
        std::fs::write(&path, toml::to_string(&table).expect("toml")).expect("write");
    }
    turned
}

/// A URL whose last segment is a glob (`*.csv`) as the URL of the one
/// file under `files` it matches: a download names one file.
fn one_file(url: &str, files: &Path) -> String {
    let Some((dir, pattern)) = url.rsplit_once('/') else {
        return url.to_string();
    };
    let Some(suffix) = pattern.strip_prefix('*') else {
        assert!(!pattern.contains('*'), "{url}");
        return url.to_string();
    };
    let folder = dir.rsplit('/').next().unwrap_or_default();
    let matching: Vec<String> = std::fs::read_dir(files.join(folder))
        .expect("the feed's folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(suffix))
        .collect();
    assert_eq!(matching.len(), 1, "{url} matches {matching:?}");
    format!("{dir}/{}", matching[0])
}

async fn published(warehouse: &Path) -> BTreeMap<String, Vec<String>> {
    let (store, prefix) =
        qinglian::store::open_for_write(warehouse.to_str().expect("utf-8")).expect("warehouse");
    let version = Published::latest(&store, &prefix, crate::ingest::date())
        .await
        .expect("readable")
        .expect("published");
    reproducible_sums(&version)
}

fn scenarios() -> Vec<PathBuf> {
    let mut all: Vec<_> = std::fs::read_dir(fixtures().join("deliveries"))
        .expect("delivery scenarios")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    all.sort();
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_delivery_served_over_http_publishes_what_its_files_publish() {
    for case in scenarios() {
        let feeds = std::fs::read_to_string(case.join("FEEDS")).expect("FEEDS");
        let files = case.join("feeds");
        // A scenario's `[held]` feeds are held however they are served:
        // the run is degraded, the same way over either transport.
        let expected: toml::Table =
            toml::from_str(&std::fs::read_to_string(case.join("expected.toml")).expect("expected"))
                .expect("expected.toml");
        let held: Vec<String> = expected
            .get("held")
            .and_then(|h| h.as_table())
            .map(|h| h.keys().cloned().collect())
            .unwrap_or_default();
        let want = if held.is_empty() {
            RunStatus::Succeeded
        } else {
            RunStatus::Degraded
        };

        let (_from_disk, project) = case_project(&case, &feeds);
        let disk = tempfile::tempdir().expect("tmp");
        let run = run_case_from(&project, &files.to_string_lossy(), disk.path()).await;
        assert_eq!(run.status, want, "{run:#?}");

        let (over_http, _) = case_project(&case, &feeds);
        let turned = serve_sources_over_http(over_http.path(), &feeds, &files);
        assert!(turned >= 4, "{}: {turned} sources turned", case.display());
        let project = qinglian::project::Project::load(over_http.path()).expect("project");
        let (url, served) = start(&files, BTreeMap::new()).await;
        let warehouse = tempfile::tempdir().expect("tmp");
        let first = run_case_from(&project, &url, warehouse.path()).await;
        assert_eq!(first.status, want, "{first:#?}");
        for (a, b) in run.feeds.iter().zip(&first.feeds) {
            assert_eq!(
                (a.read, a.landed, a.quarantined, a.duplicates),
                (b.read, b.landed, b.quarantined, b.duplicates),
                "{}: over http {b:#?}",
                a.feed
            );
            assert!(b.bytes > 0, "{b:#?}");
        }
        assert_eq!(
            published(disk.path()).await,
            published(warehouse.path()).await,
            "{}: what was published over http differs from the files'",
            case.display()
        );

        // The same files again: every download answers 304 (each part
        // keeps its own watermark) and every feed keeps its snapshot.
        let before = served.hits.lock().expect("hits").len();
        let second = run_case_from(&project, &url, warehouse.path()).await;
        assert_eq!(second.status, want, "{second:#?}");
        for (a, b) in first.feeds.iter().zip(&second.feeds) {
            if held.contains(&b.feed) {
                // Never landed, so no validator to send: fetched and held again.
                assert_eq!(b.status, FeedStatus::Held, "{b:#?}");
                continue;
            }
            assert_eq!(b.status, FeedStatus::Unchanged, "{b:#?}");
            assert_eq!((a.snapshot.as_ref(), b.read), (b.snapshot.as_ref(), 0));
        }
        let again = served.hits.lock().expect("hits")[before..].to_vec();
        assert_eq!(again.len(), turned, "{again:?}");
        assert!(
            again
                .iter()
                .filter(|(_, status)| *status != 304)
                .all(|(path, _)| held.iter().any(|h| path.starts_with(&format!("{h}/")))),
            "only the held feeds' files are sent again: {again:?}"
        );
        assert_eq!(
            published(disk.path()).await,
            published(warehouse.path()).await
        );
    }
}

/// Runs the first scenario with one file of the court served in `mode`.
async fn court_file_served(file: &str, mode: Mode) -> (RunRecord, Arc<Served>, tempfile::TempDir) {
    let case = fixtures().join("deliveries/first_night");
    let feeds = std::fs::read_to_string(case.join("FEEDS")).expect("FEEDS");
    let (dir, _) = case_project(&case, &feeds);
    serve_sources_over_http(dir.path(), &feeds, &case.join("feeds"));
    let project = qinglian::project::Project::load(dir.path()).expect("project");
    let modes = BTreeMap::from([(file.to_string(), mode)]);
    let (url, served) = start(&case.join("feeds"), modes).await;
    let warehouse = tempfile::tempdir().expect("tmp");
    let run = run_case_from(&project, &url, warehouse.path()).await;
    (run, served, warehouse)
}

async fn court_part_served(mode: Mode) -> (RunRecord, Vec<(String, u16)>) {
    let (run, served, _warehouse) = court_file_served("court/enforced.csv", mode).await;
    let hits = served.hits.lock().expect("hits").clone();
    (run, hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_parts_of_a_feed_are_fetched_at_once_and_land_in_order() {
    // The court's first part is slow: its second is asked for before the
    // first is answered, and the feed lands as it does from disk.
    let (run, served, warehouse) = court_file_served("court/dishonest.ndjson", Mode::Slow).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    let events = served.events.lock().expect("events").clone();
    let at = |e: &str| events.iter().position(|x| x == e);
    let (asked_second, answered_first) = (
        at("asked court/enforced.csv"),
        at("answered court/dishonest.ndjson"),
    );
    assert!(
        asked_second.is_some() && answered_first.is_some() && asked_second < answered_first,
        "{events:?}"
    );
    let court = run.feeds.iter().find(|f| f.feed == "court").expect("court");
    let landed: Vec<(&str, u64)> = court
        .parts
        .iter()
        .map(|p| (p.name.as_str(), p.landed))
        .collect();
    assert_eq!(landed, [("court", 3), ("enforced", 3)], "{court:#?}");
    let case = fixtures().join("deliveries/first_night");
    let feeds = std::fs::read_to_string(case.join("FEEDS")).expect("FEEDS");
    let (_dir, project) = case_project(&case, &feeds);
    let disk = tempfile::tempdir().expect("tmp");
    let from_disk =
        run_case_from(&project, &case.join("feeds").to_string_lossy(), disk.path()).await;
    // The court's snapshot holds the same rows in the same order.
    let rows = |r: &RunRecord, warehouse: &Path| {
        let snapshot = r
            .feeds
            .iter()
            .find(|f| f.feed == "court")
            .and_then(|f| f.snapshot.clone())
            .expect("court snapshot");
        let file = std::fs::File::open(warehouse.join(snapshot)).expect("snapshot");
        let batches: Vec<_> =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                .expect("parquet")
                .build()
                .expect("reader")
                .collect::<Result<_, _>>()
                .expect("batches");
        let (ids, parts) = (
            crate::support::strings(&batches, "source_record_id"),
            crate::support::strings(&batches, "source_part"),
        );
        ids.into_iter().zip(parts).collect::<Vec<_>>()
    };
    let over_http = rows(&run, warehouse.path());
    assert_eq!(over_http.len(), 6);
    assert_eq!(over_http, rows(&from_disk, disk.path()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_html_page_for_a_file_is_retried_then_holds_the_feed() {
    let (run, hits) = court_part_served(Mode::Html).await;
    let court = run.feeds.iter().find(|f| f.feed == "court").expect("court");
    assert_eq!(court.status, FeedStatus::Held, "{court:#?}");
    assert_eq!(court.snapshot, None, "nothing of the court lands");
    let error = court.error.clone().unwrap_or_default();
    assert!(
        error.contains("court")
            && error.contains("part enforced")
            && error.contains("HTML page where the file was expected"),
        "{error}"
    );
    let asked = hits
        .iter()
        .filter(|(p, _)| p == "court/enforced.csv")
        .count();
    assert!(asked >= 2 && court.retries >= 1, "{hits:?} {court:#?}");
    // The other feeds go on.
    let credit = run
        .feeds
        .iter()
        .find(|f| f.feed == "credit")
        .expect("credit");
    assert_eq!(credit.status, FeedStatus::Landed, "{credit:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_cut_short_holds_the_feed_and_names_the_file() {
    let (run, _) = court_part_served(Mode::Cut).await;
    let court = run.feeds.iter().find(|f| f.feed == "court").expect("court");
    assert_eq!(court.status, FeedStatus::Held, "{court:#?}");
    assert_eq!(court.snapshot, None, "nothing of the court lands");
    let error = court.error.clone().unwrap_or_default();
    assert!(
        error.contains("part enforced") && error.contains("enforced.csv"),
        "{error}"
    );
}
