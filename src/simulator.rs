//! The feed simulator: a real HTTP server on 127.0.0.1 that serves the
//! generator's files as the departments' paged JSON APIs, each feed with its
//! own paging style, and injects faults on demand. Tests start it in-process
//! on port 0; `qinglian simulate-feeds` runs it for the demo.
//!
//! | feed | paging | body |
//! |---|---|---|
//! | registry, ratings, credit | `?page=N&size=M` from 1 | `{"code":0,"data":{"total":T,"list":[…]}}` |
//! | persons, drc | `?offset=N&limit=M` | `{"total":T,"items":[…]}` |
//! | annual_reports, police, inspection | `?cursor=C` | `{"data":[…],"next":"C"\|null,"total":T}` |
//! | projects, court | `?page=N` and `Link: <…>; rel="next"` | `[…]` |
//!
//! Every response carries an `ETag` of the feed's content and honours
//! `If-None-Match` with 304. With a token set, requests need
//! `Authorization: Bearer <token>`.
//!
//! Started over a sequence of generator days ([`FeedSimulator::start_days`]),
//! it serves the current day ([`FeedSimulator::set_day`]) as full dumps and,
//! asked `?since=<instant>`, as a delta API: the records whose content
//! changed since the day that was current at that instant (by record id),
//! then a tombstone (`"op": "D"` on the record as it was) for every id
//! gone since.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path as UrlPath, Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// Paging styles the simulator speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `?page=N&size=M`.
    PageNumber,
    /// `?offset=N&limit=M`.
    OffsetLimit,
    /// `?cursor=C`, next cursor in the body.
    Cursor,
    /// `?page=N`, next page in a `Link` header.
    LinkHeader,
}

/// The style each feed is served with.
pub fn style_of(feed: &str) -> Style {
    match feed {
        "registry" | "ratings" | "credit" => Style::PageNumber,
        "persons" | "drc" => Style::OffsetLimit,
        "annual_reports" | "police" | "inspection" => Style::Cursor,
        _ => Style::LinkHeader,
    }
}

/// Page size of link-header feeds (they take no size parameter).
pub const LINK_PAGE_SIZE: usize = 100;

/// A fault to inject into one feed's responses. Counted faults (`times`)
/// apply to that many requests, then stop; the others stand.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// 429 with `Retry-After`.
    RateLimited {
        /// Requests affected.
        times: u32,
        /// Seconds announced in `Retry-After`.
        retry_after_secs: u64,
    },
    /// 503.
    ServerErrors {
        /// Requests affected.
        times: u32,
    },
    /// Answers only after a delay.
    Slow {
        /// Requests affected.
        times: u32,
        /// The delay.
        delay: Duration,
    },
    /// An HTML error page with status 200.
    HtmlOk {
        /// Requests affected.
        times: u32,
    },
    /// The JSON body cut in the middle.
    TruncatedJson {
        /// Requests affected.
        times: u32,
    },
    /// The cursor (or next link) after the first page points back at itself.
    RepeatingCursor,
    /// Page `page` (from 1) is served again in place of the next one.
    DuplicatePage {
        /// The page served twice.
        page: u32,
    },
    /// The last records are not served; the declared total still counts them.
    TruncatedDump {
        /// Records left out.
        missing: usize,
    },
    /// A field renamed in every record.
    RenameField {
        /// Old name.
        from: String,
        /// New name.
        to: String,
    },
    /// A field removed from every record.
    DropField {
        /// The field.
        field: String,
    },
    /// A field added to every record.
    AddField {
        /// The field.
        field: String,
    },
    /// A field's values wrapped in an object (a changed type).
    ChangeType {
        /// The field.
        field: String,
    },
    /// A `Content-Length` of ten gigabytes (and a body that keeps coming).
    HugeBody,
    /// A chunked body that never ends.
    EndlessBody,
    /// At most `max` records a page, whatever page size was asked (the
    /// declared total still counts every record).
    ShortPages {
        /// Records per page at most.
        max: usize,
    },
    /// A 200 carrying the API's own error code and no records:
    /// `{"code":500,"msg":…,…:[]}`.
    ErrorEnvelope {
        /// Requests affected.
        times: u32,
    },
    /// A `302` to the same path and query at another base URL, setting a
    /// cookie.
    RedirectTo {
        /// Requests affected.
        times: u32,
        /// Where to (`http://127.0.0.1:PORT`).
        base: String,
    },
    /// Next links (link-header feeds) point to another base URL.
    ForeignLink {
        /// Where to (`http://127.0.0.1:PORT`).
        base: String,
    },
    /// Headers and the first half of the body at once, the rest after a delay.
    SlowBody {
        /// Requests affected.
        times: u32,
        /// The delay.
        delay: Duration,
    },
}

/// One request as the simulator saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// Feed.
    pub feed: String,
    /// Query string.
    pub query: String,
    /// Status answered.
    pub status: u16,
    /// Request headers as received (name, value).
    pub headers: Vec<(String, String)>,
}

/// A sequence of generator days served one at a time.
#[derive(Default)]
struct Days {
    days: Vec<BTreeMap<String, Vec<Value>>>,
    etags: Vec<BTreeMap<String, String>>,
    /// The raw fields of each feed's record id.
    record_ids: BTreeMap<String, Vec<String>>,
    /// When each day became current, in order: (instant, day).
    switched: Mutex<Vec<(chrono::DateTime<chrono::Utc>, usize)>>,
}

impl Days {
    fn current(&self) -> usize {
        self.switched
            .lock()
            .ok()
            .and_then(|s| s.last().map(|(_, d)| *d))
            .unwrap_or(0)
    }

    /// The day that was current at `at` (the first day before any switch).
    fn at(&self, at: chrono::DateTime<chrono::Utc>) -> usize {
        self.switched
            .lock()
            .ok()
            .and_then(|s| s.iter().rev().find(|(t, _)| *t <= at).map(|(_, d)| *d))
            .unwrap_or(0)
    }

    /// What changed in `feed` from day `from` to day `to`: the records of
    /// ids whose records differ, then a tombstone for each id gone.
    fn delta(&self, feed: &str, from: usize, to: usize) -> Vec<Value> {
        let (no_fields, empty) = (Vec::new(), Vec::new());
        let fields = self.record_ids.get(feed).unwrap_or(&no_fields);
        let id = |r: &Value| crate::generate::delta::record_id(fields, r);
        let group = |day: usize| -> BTreeMap<String, Vec<&Value>> {
            let mut g: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
            for r in self
                .days
                .get(day)
                .and_then(|d| d.get(feed))
                .unwrap_or(&empty)
            {
                g.entry(id(r)).or_default().push(r);
            }
            g
        };
        let (before, now) = (group(from), group(to));
        let mut out = Vec::new();
        for r in self
            .days
            .get(to)
            .and_then(|d| d.get(feed))
            .unwrap_or(&empty)
        {
            if before.get(&id(r)) != now.get(&id(r)) {
                out.push(r.clone());
            }
        }
        for (key, records) in &before {
            if !now.contains_key(key)
                && let Some(mut gone) = records.first().map(|r| (*r).clone())
                && let Some(o) = gone.as_object_mut()
            {
                o.insert("op".into(), json!("D"));
                out.push(gone);
            }
        }
        out
    }
}

#[derive(Default)]
struct Shared {
    feeds: BTreeMap<String, Vec<Value>>,
    etags: BTreeMap<String, String>,
    days: Option<Days>,
    faults: Mutex<HashMap<String, Vec<Fault>>>,
    hits: Mutex<Vec<Hit>>,
    token: Option<String>,
}

/// A running simulator.
pub struct FeedSimulator {
    /// Where it listens.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for FeedSimulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FeedSimulator {
    /// Serves the feeds of a generator output directory on 127.0.0.1:`port`
    /// (0 for any free port).
    pub async fn start(dir: &Path, port: u16, token: Option<String>) -> std::io::Result<Self> {
        let feeds = load_feeds(dir)?;
        let etags = feeds.iter().map(|(f, r)| (f.clone(), etag(r))).collect();
        let shared = Arc::new(Shared {
            feeds,
            etags,
            token,
            ..Shared::default()
        });
        let app = Router::new()
            .route("/api/{feed}", get(serve))
            .with_state(Arc::clone(&shared));
        let (addr, task) = crate::listen::serve_at(app, ("127.0.0.1", port)).await?;
        Ok(Self { addr, shared, task })
    }

    /// Serves a sequence of generator output directories, one day at a
    /// time from the first: full dumps, and deltas by the record id fields
    /// of `record_ids` (feed → raw fields) to requests with `?since=`.
    pub async fn start_days(
        dirs: &[std::path::PathBuf],
        record_ids: BTreeMap<String, Vec<String>>,
        port: u16,
    ) -> std::io::Result<Self> {
        let days = dirs
            .iter()
            .map(|d| load_feeds(d))
            .collect::<std::io::Result<Vec<_>>>()?;
        let etags = days
            .iter()
            .map(|feeds| feeds.iter().map(|(f, r)| (f.clone(), etag(r))).collect())
            .collect();
        let shared = Arc::new(Shared {
            feeds: days.first().cloned().unwrap_or_default(),
            days: Some(Days {
                days,
                etags,
                record_ids,
                switched: Mutex::new(Vec::new()),
            }),
            ..Shared::default()
        });
        let app = Router::new()
            .route("/api/{feed}", get(serve))
            .with_state(Arc::clone(&shared));
        let (addr, task) = crate::listen::serve_at(app, ("127.0.0.1", port)).await?;
        Ok(Self { addr, shared, task })
    }

    /// Makes day `day` (an index into the directories) the one served.
    pub fn set_day(&self, day: usize) {
        if let Some(days) = &self.shared.days
            && let Ok(mut s) = days.switched.lock()
        {
            s.push((chrono::Utc::now(), day));
        }
    }

    /// The base URL (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds a fault to a feed.
    pub fn inject(&self, feed: &str, fault: Fault) {
        if let Ok(mut f) = self.shared.faults.lock() {
            f.entry(feed.to_string()).or_default().push(fault);
        }
    }

    /// Every request so far.
    pub fn hits(&self) -> Vec<Hit> {
        self.shared
            .hits
            .lock()
            .map(|h| h.clone())
            .unwrap_or_default()
    }

    /// Records served for a feed.
    pub fn records(&self, feed: &str) -> usize {
        self.shared.feeds.get(feed).map_or(0, Vec::len)
    }

    /// Runs until the process is interrupted.
    pub async fn wait(self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Reads the generator's files into JSON records with their raw field names.
fn load_feeds(dir: &Path) -> std::io::Result<BTreeMap<String, Vec<Value>>> {
    let mut feeds = BTreeMap::new();
    for feed in crate::generate::delta::FEEDS {
        let mut records = Vec::new();
        crate::generate::delta::each_record(dir, feed, true, |r| {
            records.push(r);
            Ok(())
        })
        .map_err(std::io::Error::other)?;
        feeds.insert(feed.to_string(), records);
    }
    Ok(feeds)
}

fn etag(records: &[Value]) -> String {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut h = DefaultHasher::new();
    for r in records {
        r.to_string().hash(&mut h);
    }
    format!("\"{:016x}\"", h.finish())
}

/// Takes one use of a counted fault; returns the fault if it applied.
fn take(faults: &mut Vec<Fault>, pick: impl Fn(&Fault) -> bool) -> Option<Fault> {
    let i = faults.iter().position(pick)?;
    let fault = faults[i].clone();
    let remaining = match &mut faults[i] {
        Fault::RateLimited { times, .. }
        | Fault::ServerErrors { times }
        | Fault::Slow { times, .. }
        | Fault::HtmlOk { times }
        | Fault::TruncatedJson { times }
        | Fault::ErrorEnvelope { times }
        | Fault::RedirectTo { times, .. }
        | Fault::SlowBody { times, .. } => {
            *times = times.saturating_sub(1);
            *times
        }
        _ => 1,
    };
    if remaining == 0 {
        faults.remove(i);
    }
    Some(fault)
}

fn transform(records: &[Value], faults: &[Fault]) -> Vec<Value> {
    let mut out: Vec<Value> = records.to_vec();
    for f in faults {
        for r in out.iter_mut() {
            let Some(o) = r.as_object_mut() else { continue };
            match f {
                Fault::RenameField { from, to } => {
                    if let Some(v) = o.remove(from) {
                        o.insert(to.clone(), v);
                    }
                }
                Fault::DropField { field } => {
                    o.remove(field);
                }
                Fault::AddField { field } => {
                    o.insert(field.clone(), json!("new"));
                }
                Fault::ChangeType { field } => {
                    if let Some(v) = o.get_mut(field) {
                        *v = json!({ "value": v.clone() });
                    }
                }
                _ => {}
            }
        }
    }
    out
}

async fn serve(
    State(shared): State<Arc<Shared>>,
    UrlPath(feed): UrlPath<String>,
    Query(params): Query<HashMap<String, String>>,
    RawQuery(raw_query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let query = {
        let mut q: Vec<_> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        q.sort();
        q.join("&")
    };
    let response = answer(&shared, &feed, &params, raw_query.as_deref(), &headers).await;
    if let Ok(mut hits) = shared.hits.lock() {
        hits.push(Hit {
            feed,
            query,
            status: response.status().as_u16(),
            headers: headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
        });
    }
    response
}

async fn answer(
    shared: &Shared,
    feed: &str,
    params: &HashMap<String, String>,
    raw_query: Option<&str>,
    headers: &HeaderMap,
) -> Response {
    let served: std::borrow::Cow<'_, [Value]> = match &shared.days {
        None => match shared.feeds.get(feed) {
            Some(all) => std::borrow::Cow::Borrowed(all.as_slice()),
            None => return (StatusCode::NOT_FOUND, "no such feed").into_response(),
        },
        Some(days) => {
            let today = days.current();
            let Some(all) = days.days.get(today).and_then(|d| d.get(feed)) else {
                return (StatusCode::NOT_FOUND, "no such feed").into_response();
            };
            match params
                .get("since")
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            {
                Some(since) => std::borrow::Cow::Owned(days.delta(
                    feed,
                    days.at(since.with_timezone(&chrono::Utc)),
                    today,
                )),
                None => std::borrow::Cow::Borrowed(all.as_slice()),
            }
        }
    };
    let all = served.as_ref();
    if let Some(token) = &shared.token {
        let expected = format!("Bearer {token}");
        if headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            != Some(expected.as_str())
        {
            return (StatusCode::UNAUTHORIZED, "missing or wrong token").into_response();
        }
    }
    // Counted faults first: one request each.
    let (one_shot, standing) = {
        let Ok(mut faults) = shared.faults.lock() else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        let list = faults.entry(feed.to_string()).or_default();
        let one = take(list, |f| {
            matches!(
                f,
                Fault::RateLimited { .. }
                    | Fault::ServerErrors { .. }
                    | Fault::Slow { .. }
                    | Fault::HtmlOk { .. }
                    | Fault::TruncatedJson { .. }
                    | Fault::ErrorEnvelope { .. }
                    | Fault::RedirectTo { .. }
                    | Fault::SlowBody { .. }
            )
        });
        (one, list.clone())
    };
    match &one_shot {
        Some(Fault::RateLimited {
            retry_after_secs, ..
        }) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, retry_after_secs.to_string())],
                "slow down",
            )
                .into_response();
        }
        Some(Fault::ServerErrors { .. }) => {
            return (StatusCode::SERVICE_UNAVAILABLE, "upstream unavailable").into_response();
        }
        Some(Fault::Slow { delay, .. }) => tokio::time::sleep(*delay).await,
        Some(Fault::RedirectTo { base, .. }) => {
            let location = match raw_query {
                Some(q) => format!("{base}/api/{feed}?{q}"),
                None => format!("{base}/api/{feed}"),
            };
            return (
                StatusCode::FOUND,
                [
                    (header::LOCATION, location),
                    (
                        header::SET_COOKIE,
                        "session=sim-session-cookie; Path=/".into(),
                    ),
                ],
                "moved",
            )
                .into_response();
        }
        Some(Fault::ErrorEnvelope { .. }) => {
            let body = match style_of(feed) {
                Style::PageNumber => {
                    json!({"code": 500, "msg": "系统繁忙，请稍后重试", "data": {"total": 0, "list": []}})
                }
                _ => json!({"code": 500, "msg": "系统繁忙，请稍后重试", "list": []}),
            };
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
                .into_response();
        }
        Some(Fault::HtmlOk { .. }) => {
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                "<html><body><h1>系统维护中</h1></body></html>",
            )
                .into_response();
        }
        _ => {}
    }
    if let Some(declared) = standing.iter().find_map(|f| match f {
        Fault::HugeBody => Some(Some(10u64 << 30)),
        Fault::EndlessBody => Some(None),
        _ => None,
    }) {
        return endless(declared);
    }
    let tag = match &shared.days {
        Some(days) => days
            .etags
            .get(days.current())
            .and_then(|e| e.get(feed))
            .cloned()
            .unwrap_or_default(),
        None => shared.etags.get(feed).cloned().unwrap_or_default(),
    };
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(tag.as_str())
    {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, tag)]).into_response();
    }
    let total = all.len();
    let num = |k: &str, default: usize| {
        params
            .get(k)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let duplicate = standing.iter().find_map(|f| match f {
        Fault::DuplicatePage { page } => Some(*page as usize),
        _ => None,
    });
    let repeating = standing.iter().any(|f| matches!(f, Fault::RepeatingCursor));
    let cap = standing
        .iter()
        .find_map(|f| match f {
            Fault::ShortPages { max } => Some((*max).max(1)),
            _ => None,
        })
        .unwrap_or(usize::MAX);
    let foreign = standing.iter().find_map(|f| match f {
        Fault::ForeignLink { base } => Some(base.clone()),
        _ => None,
    });
    // Slice the records for the requested page.
    let (start, size) = match style_of(feed) {
        Style::PageNumber => {
            let size = num("size", 100).clamp(1, cap);
            let mut page = num("page", 1).max(1);
            if duplicate.is_some_and(|d| page == d + 1) {
                page -= 1;
            }
            ((page - 1) * size, size)
        }
        Style::OffsetLimit => {
            let size = num("limit", 100).clamp(1, cap);
            let mut offset = num("offset", 0);
            if duplicate.is_some_and(|d| offset == d * size) {
                offset -= size;
            }
            (offset, size)
        }
        Style::Cursor => (
            params
                .get("cursor")
                .and_then(|c| c.strip_prefix('c'))
                .and_then(|c| c.parse().ok())
                .unwrap_or(0),
            100.min(cap),
        ),
        Style::LinkHeader => {
            let size = LINK_PAGE_SIZE.min(cap);
            ((num("page", 1).max(1) - 1) * size, size)
        }
    };
    // A truncated dump serves fewer records than its total declares.
    let missing = standing
        .iter()
        .find_map(|f| match f {
            Fault::TruncatedDump { missing } => Some(*missing),
            _ => None,
        })
        .unwrap_or(0);
    let served = all.len().saturating_sub(missing);
    let end = (start + size).min(served);
    // Only the page is copied and transformed: a request costs a page.
    let slice = transform(all.get(start.min(end)..end).unwrap_or_default(), &standing);
    let more = end < served;
    let (body, link) = match style_of(feed) {
        Style::PageNumber => (
            json!({"code": 0, "data": {"total": total, "list": slice}}),
            None,
        ),
        Style::OffsetLimit => (json!({"total": total, "items": slice}), None),
        Style::Cursor => {
            let next = if repeating && start > 0 {
                Some(format!("c{start}"))
            } else if more {
                Some(format!("c{end}"))
            } else {
                None
            };
            (json!({"data": slice, "next": next, "total": total}), None)
        }
        Style::LinkHeader => {
            let page = num("page", 1).max(1);
            let next_page = if repeating && page > 1 {
                page
            } else {
                page + 1
            };
            let prefix = foreign.unwrap_or_default();
            // A delta's next link carries its `since` on.
            let since = params
                .get("since")
                .map(|t| {
                    format!(
                        "&since={}",
                        url::form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>()
                    )
                })
                .unwrap_or_default();
            let link = more
                .then(|| format!("<{prefix}/api/{feed}?page={next_page}{since}>; rel=\"next\""));
            (Value::Array(slice), link)
        }
    };
    let mut text = body.to_string();
    if matches!(one_shot, Some(Fault::TruncatedJson { .. })) {
        let mut half = text.len() / 2;
        while !text.is_char_boundary(half) {
            half -= 1;
        }
        text.truncate(half);
    }
    let mut response = if let Some(Fault::SlowBody { delay, .. }) = one_shot {
        let mut half = text.len() / 2;
        while !text.is_char_boundary(half) {
            half -= 1;
        }
        let rest = text.split_off(half);
        let first = futures::stream::once(async move { Ok::<_, std::io::Error>(text) });
        let second = futures::stream::once(async move {
            tokio::time::sleep(delay).await;
            Ok::<_, std::io::Error>(rest)
        });
        let mut r = Response::new(axum::body::Body::from_stream(futures::StreamExt::chain(
            first, second,
        )));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        r
    } else {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            text,
        )
            .into_response()
    };
    if let Ok(v) = HeaderValue::from_str(&tag) {
        response.headers_mut().insert(header::ETAG, v);
    }
    if let Some(link) = link.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(header::LINK, link);
    }
    response
}

/// A JSON body that keeps coming, optionally declaring a length.
fn endless(declared: Option<u64>) -> Response {
    let chunk = bytes::Bytes::from(format!("[{}", "{\"a\":1},".repeat(4096)));
    let stream = futures::stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()));
    let mut response = Response::new(axum::body::Body::from_stream(stream));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(n) = declared
        && let Ok(v) = HeaderValue::from_str(&n.to_string())
    {
        response.headers_mut().insert(header::CONTENT_LENGTH, v);
    }
    response
}

/// The `[source]` table of an HTTP source for a feed served by a simulator
/// at `base`: used by tests and the demo to point the shipped mappings at it.
pub fn http_source_table(feed: &str, base: &str) -> toml::Table {
    let mut t = toml::Table::new();
    t.insert("kind".into(), "http".into());
    t.insert("url".into(), format!("{base}/api/{feed}").into());
    t.insert("retry_base_ms".into(), toml::Value::Integer(50));
    // Long enough that a loaded machine never times out a page of the
    // in-process simulator (a test of timeouts sets its own, shorter).
    t.insert("timeout_seconds".into(), toml::Value::Integer(30));
    t.insert("requests_per_second".into(), toml::Value::Float(1000.0));
    let mut p = toml::Table::new();
    match style_of(feed) {
        Style::PageNumber => {
            t.insert("records".into(), "/data/list".into());
            t.insert("total".into(), "/data/total".into());
            t.insert("success_pointer".into(), "/code".into());
            t.insert(
                "success_values".into(),
                toml::Value::Array(vec![toml::Value::Integer(0)]),
            );
            p.insert("style".into(), "page_number".into());
            p.insert("page_param".into(), "page".into());
            p.insert("size_param".into(), "size".into());
            p.insert("page_size".into(), toml::Value::Integer(100));
        }
        Style::OffsetLimit => {
            t.insert("records".into(), "/items".into());
            t.insert("total".into(), "/total".into());
            p.insert("style".into(), "offset_limit".into());
            p.insert("offset_param".into(), "offset".into());
            p.insert("limit_param".into(), "limit".into());
            p.insert("page_size".into(), toml::Value::Integer(100));
        }
        Style::Cursor => {
            t.insert("records".into(), "/data".into());
            t.insert("total".into(), "/total".into());
            p.insert("style".into(), "cursor".into());
            p.insert("cursor_param".into(), "cursor".into());
            p.insert("next_cursor".into(), "/next".into());
        }
        Style::LinkHeader => {
            t.insert("records".into(), "".into());
            p.insert("style".into(), "link_header".into());
        }
    }
    t.insert("pagination".into(), toml::Value::Table(p));
    t
}

/// Copies a project (schemas, pipelines, jobs) to `out`, every source's
/// `[source]` replaced by the HTTP API of a simulator at `base`: the same
/// mappings, fetched the way the departments serve them.
pub fn write_http_project(project: &Path, out: &Path, base: &str) -> std::io::Result<()> {
    crate::generate::delta::copy_project(
        project,
        out,
        "qinglian simulate-feeds --project-out",
        |feed| http_source_table(feed, base),
    )
}
