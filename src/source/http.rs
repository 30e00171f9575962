//! The `http` source kind: paged JSON APIs, and files downloaded whole (a
//! CSV or workbook export served over HTTP, read by the same format
//! readers as a file in an object store).
//!
//! One page at a time (cursor and link paging are sequential by nature):
//! page-number, offset/limit, cursor-in-body and `Link: rel="next"` paging;
//! bearer or API-key authentication with the secret read from a named
//! environment variable; conditional requests (`If-None-Match`,
//! `If-Modified-Since`; 304 means up to date) and a since-watermark
//! parameter; retries with exponential backoff and jitter on connection
//! errors, timeouts, 429 (honouring `Retry-After`), 5xx, HTML error pages
//! served with 200 and truncated bodies, bounded in count and total time; a
//! request rate limit; per-response and per-run size caps; detection of a
//! cursor or next link that repeats and of a page identical to the one
//! before; and the total record count when the API declares one.

use std::collections::HashSet;
use std::num::NonZeroU32;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use governor::{Quota, RateLimiter};
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::Value;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use futures::{StreamExt, TryStreamExt};

use super::formats::{FileContext, read_file};
use super::records::{Presence, malformed_row, row_from_object};
use super::{BATCH_ROWS, Drift, FetchError, FetchOptions, FetchReport, PayloadSink, RawBatch};
use crate::project::{
    Auth, FileFormat, HttpBody, HttpSource, Pagination, Source, SuccessCode, expand_env,
};

/// What went wrong with one request; `retryable` decides whether to retry.
#[derive(Debug)]
enum PageError {
    /// Connection failed, timed out, or the body was cut.
    Transport(String),
    /// An HTTP status worth retrying (429, 408, 5xx).
    Status {
        code: u16,
        retry_after: Option<Duration>,
    },
    /// 200 with something that is not JSON (an HTML error page).
    NotJson(String),
    /// 200 with JSON that does not parse (truncated).
    BadJson(String),
    /// A status that retrying will not fix.
    Permanent(String),
    /// A size cap.
    Limit(String),
    /// 200 with the API's own error code (`success_pointer`).
    Envelope(String),
    /// 200 with something that is not the file asked for (an HTML page).
    NotTheFile(String),
}

impl PageError {
    fn retryable(&self) -> bool {
        matches!(
            self,
            PageError::Transport(_)
                | PageError::Status { .. }
                | PageError::NotJson(_)
                | PageError::BadJson(_)
                | PageError::Envelope(_)
                | PageError::NotTheFile(_)
        )
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            PageError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PageError::Transport(m) => write!(f, "transport error: {m}"),
            PageError::Status { code, .. } => write!(f, "HTTP status {code}"),
            PageError::NotJson(m) => write!(f, "not JSON: {m}"),
            PageError::BadJson(m) => write!(f, "malformed JSON: {m}"),
            PageError::Envelope(m) => write!(f, "API error envelope: {m}"),
            PageError::NotTheFile(m) => write!(f, "not the file: {m}"),
            PageError::Permanent(m) | PageError::Limit(m) => f.write_str(m),
        }
    }
}

/// A page that arrived whole.
struct PageResponse {
    status: u16,
    headers: HeaderMap,
    body: Bytes,
    json: Option<Value>,
}

/// Longest `Retry-After` honoured: a hostile server cannot park the run.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

pub(crate) fn parse_retry_after(value: Option<&HeaderValue>) -> Option<Duration> {
    let text = value?.to_str().ok()?.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    let when = chrono::DateTime::parse_from_rfc2822(text).ok()?;
    let wait = when
        .signed_duration_since(chrono::Utc::now())
        .to_std()
        .ok()?;
    Some(wait.min(MAX_RETRY_AFTER))
}

/// Redirects followed per request at most.
const MAX_REDIRECTS: usize = 5;

/// `scheme://host[:port]`: the unit a credential is bound to.
fn origin(url: &reqwest::Url) -> String {
    url.origin().ascii_serialization()
}

/// What one feed's requests share: the client, the origin its credentials
/// belong to, the other origins it may be sent to, and how URLs are shown.
struct Requester<'a> {
    client: reqwest::Client,
    home: String,
    allowed: &'a [String],
    credentials: HeaderMap,
    success: Option<&'a SuccessCode>,
    timeout_seconds: u64,
    connect_seconds: u64,
    shown: Shown,
}

impl Requester<'_> {
    /// Whether `to` (a redirect target or a next link, reached from
    /// `from`) may be requested; credentials only ever go to `home`.
    fn check_target(
        &self,
        from: &reqwest::Url,
        to: &reqwest::Url,
        what: &str,
    ) -> Result<(), PageError> {
        if !matches!(to.scheme(), "http" | "https") {
            return Err(PageError::Permanent(format!(
                "{what} from {} to {:?}: only http and https are followed",
                origin(from),
                to.scheme()
            )));
        }
        if from.scheme() == "https" && to.scheme() == "http" {
            return Err(PageError::Permanent(format!(
                "{what} from {} to {}: a downgrade from https to http is never followed",
                origin(from),
                origin(to)
            )));
        }
        let target = origin(to);
        if target != self.home && !self.allowed.contains(&target) {
            return Err(PageError::Permanent(format!(
                "{what} from {} to another origin {target}: not followed (no credential or header crosses origins); \
                 list it in source.allow_redirect_origins to follow it without credentials",
                origin(from)
            )));
        }
        Ok(())
    }
}

/// Shows URLs with their secrets replaced by `***`: credentials, values of
/// variables expanded into the URL, user info, and query values whose name
/// says secret.
#[derive(Default)]
struct Shown {
    secrets: Vec<String>,
}

impl Shown {
    fn url(&self, url: &str) -> String {
        let mut text = match reqwest::Url::parse(url) {
            Ok(mut u) => {
                if !u.username().is_empty() || u.password().is_some() {
                    let _ = u.set_username("***");
                    let _ = u.set_password(None);
                }
                let pairs: Vec<(String, String)> = u
                    .query_pairs()
                    .map(|(k, v)| {
                        let secret = {
                            let k = k.to_ascii_lowercase();
                            [
                                "token",
                                "key",
                                "secret",
                                "password",
                                "passwd",
                                "pwd",
                                "sig",
                                "auth",
                                "credential",
                                "session",
                                "ticket",
                            ]
                            .iter()
                            .any(|w| k.contains(w))
                        };
                        (
                            k.into_owned(),
                            if secret { "***".into() } else { v.into_owned() },
                        )
                    })
                    .collect();
                if !pairs.is_empty() {
                    u.query_pairs_mut().clear().extend_pairs(pairs);
                }
                u.to_string()
            }
            Err(_) => url.to_string(),
        };
        for secret in &self.secrets {
            if secret.len() >= 3 {
                text = text.replace(secret.as_str(), "***");
                let encoded: String =
                    url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
                text = text.replace(&encoded, "***");
            }
        }
        text
    }
}

/// A reqwest error as an operator can act on it: a timeout says so, with
/// its limit (reqwest calls a slow body "error decoding response body").
fn describe(e: &reqwest::Error, url: &str, r: &Requester<'_>) -> String {
    describe_with(e, url, r.timeout_seconds, r.connect_seconds)
}

fn describe_with(
    e: &reqwest::Error,
    url: &str,
    timeout_seconds: u64,
    connect_seconds: u64,
) -> String {
    let mut root: &dyn std::error::Error = e;
    while let Some(next) = root.source() {
        root = next;
    }
    let cause = root.to_string();
    if e.is_timeout() {
        if e.is_connect() {
            format!("timed out after {connect_seconds} s connecting to {url}")
        } else if e.is_body() || e.is_decode() {
            format!(
                "timed out after {timeout_seconds} s (source.timeout_seconds) reading the response body of {url}"
            )
        } else {
            format!(
                "timed out after {timeout_seconds} s (source.timeout_seconds) waiting for {url}"
            )
        }
    } else if e.is_connect() {
        format!("cannot connect to {url}: {cause}")
    } else if e.is_body() || e.is_decode() {
        format!("the response body of {url} was cut: {cause}")
    } else {
        format!("request to {url} failed: {cause}")
    }
}

/// Requests one JSON page and reads it whole.
async fn send_once(
    r: &Requester<'_>,
    url: &reqwest::Url,
    headers: &HeaderMap,
    max_bytes: u64,
) -> Result<PageResponse, PageError> {
    let mut response = open_response(r, url, headers, max_bytes).await?;
    let status = response.status().as_u16();
    if status == 304 {
        return Ok(PageResponse {
            status,
            headers: response.headers().clone(),
            body: Bytes::new(),
            json: None,
        });
    }
    let current = response.url().clone();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let headers_out = response.headers().clone();
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| PageError::Transport(describe(&e, &r.shown.url(current.as_str()), r)))?
    {
        if body.len() as u64 + chunk.len() as u64 > max_bytes {
            return Err(PageError::Limit(format!(
                "response exceeds the limit of {max_bytes} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    if !content_type.contains("json") {
        let start: String = String::from_utf8_lossy(&body[..body.len().min(80)])
            .chars()
            .filter(|c| !c.is_control())
            .collect();
        return Err(PageError::NotJson(format!(
            "content type {content_type:?} with status {status}, body starts {start:?}"
        )));
    }
    let json =
        serde_json::from_slice::<Value>(&body).map_err(|e| PageError::BadJson(e.to_string()))?;
    if let Some(code) = r.success {
        check_success(&json, code)?;
    }
    Ok(PageResponse {
        status,
        headers: headers_out,
        body: Bytes::from(body),
        json: Some(json),
    })
}

/// Sends one GET, following redirects by hand (credentials only to the
/// home origin), and returns the response once its status says the body
/// is worth reading: 2xx within the size limit it declares, or 304.
async fn open_response(
    r: &Requester<'_>,
    url: &reqwest::Url,
    headers: &HeaderMap,
    max_bytes: u64,
) -> Result<reqwest::Response, PageError> {
    let mut current = url.clone();
    let mut visited = vec![current.clone()];
    let response = loop {
        let mut request_headers = headers.clone();
        if origin(&current) == r.home {
            request_headers.extend(r.credentials.clone());
        }
        let response = r
            .client
            .get(current.clone())
            .headers(request_headers)
            .send()
            .await
            .map_err(|e| PageError::Transport(describe(&e, &r.shown.url(current.as_str()), r)))?;
        let status = response.status().as_u16();
        if !matches!(status, 301 | 302 | 303 | 307 | 308) {
            break response;
        }
        let shown = r.shown.url(current.as_str());
        let next = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|l| current.join(l).ok())
            .ok_or_else(|| {
                PageError::Permanent(format!(
                    "HTTP status {status} from {shown} without a usable Location"
                ))
            })?;
        r.check_target(&current, &next, &format!("redirect {status}"))?;
        if visited.contains(&next) {
            return Err(PageError::Permanent(format!(
                "redirect loop: {shown} leads back to {}",
                r.shown.url(next.as_str())
            )));
        }
        if visited.len() > MAX_REDIRECTS {
            return Err(PageError::Permanent(format!(
                "more than {MAX_REDIRECTS} redirects from {}",
                r.shown.url(url.as_str())
            )));
        }
        visited.push(next.clone());
        current = next;
    };
    let status = response.status().as_u16();
    if status == 304 {
        return Ok(response);
    }
    if status == 429 || status == 408 || (500..600).contains(&status) {
        return Err(PageError::Status {
            code: status,
            retry_after: parse_retry_after(response.headers().get("retry-after")),
        });
    }
    if !(200..300).contains(&status) {
        let hint = if status == 401 || status == 403 {
            " (check the credential the source's auth names)"
        } else {
            ""
        };
        return Err(PageError::Permanent(format!("HTTP status {status}{hint}")));
    }
    if let Some(len) = response.content_length()
        && len > max_bytes
    {
        return Err(PageError::Limit(format!(
            "response declares {len} bytes, above the limit of {max_bytes}"
        )));
    }
    Ok(response)
}

/// A page whose own success code is not one of the declared values is a
/// failed response, however it was served.
fn check_success(json: &Value, code: &SuccessCode) -> Result<(), PageError> {
    let found = pointer(json, &code.pointer);
    let text = match found {
        Some(Value::String(s)) => Some(s.clone()),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => Some(v.to_string()),
        _ => None,
    };
    if text.as_ref().is_some_and(|t| code.values.contains(t)) {
        return Ok(());
    }
    let found: String = match found {
        None => "missing".into(),
        Some(v) => v.to_string().chars().take(80).collect(),
    };
    Err(PageError::Envelope(format!(
        "{} is {found}, success is one of {}",
        code.pointer,
        code.values.join(", ")
    )))
}

fn pointer<'a>(v: &'a Value, p: &str) -> Option<&'a Value> {
    if p.is_empty() { Some(v) } else { v.pointer(p) }
}

fn next_link(headers: &HeaderMap, current: &str) -> Option<String> {
    for value in headers.get_all(reqwest::header::LINK) {
        let text = value.to_str().ok()?;
        for part in text.split(',') {
            let mut pieces = part.split(';');
            let target = pieces
                .next()?
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>');
            if pieces.any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            }) {
                return reqwest::Url::parse(current)
                    .ok()?
                    .join(target)
                    .ok()
                    .map(|u| u.to_string());
            }
        }
    }
    None
}

/// Fetches an HTTP source: every page of a JSON API, or one file.
pub(super) async fn fetch(
    source: &Source,
    http: &HttpSource,
    fields: Vec<String>,
    options: &FetchOptions,
    tx: mpsc::Sender<RawBatch>,
    sink: Box<dyn PayloadSink>,
) -> Result<FetchReport, FetchError> {
    let session = Session::open(source, http, options)?;
    match &http.body {
        HttpBody::Pages {
            records,
            pagination,
        } => fetch_pages(&session, records, pagination, fields, options, tx, sink).await,
        HttpBody::File { format, gzip } => {
            fetch_file(&session, format, *gzip, fields, options, tx, sink).await
        }
    }
}

/// What every request of one fetch shares: the requester (client,
/// credentials, origins), the rate limiter, the retry policy and the
/// headers each request carries.
struct Session<'a> {
    feed: String,
    http: &'a HttpSource,
    base_url: reqwest::Url,
    requester: Requester<'a>,
    limiter: governor::DefaultDirectRateLimiter,
    backoff: ExponentialBuilder,
    headers: HeaderMap,
    started: chrono::DateTime<chrono::Utc>,
}

impl<'a> Session<'a> {
    /// Expands the URL, reads the credential the source names, and builds
    /// the client; nothing is requested yet.
    fn open(
        source: &Source,
        http: &'a HttpSource,
        options: &FetchOptions,
    ) -> Result<Self, FetchError> {
        let feed = source.feed.clone();
        let open_err = |message: String| FetchError::Open {
            feed: feed.clone(),
            url: http.url.clone(),
            message,
        };
        let fail = |message: String| FetchError::Payload {
            feed: feed.clone(),
            position: http.url.clone(),
            message,
        };
        let expanded = std::cell::RefCell::new(Vec::new());
        let base = expand_env(&http.url, |n| {
            let v = options.var(n);
            if let Some(v) = &v {
                expanded.borrow_mut().push(v.clone());
            }
            v
        })
        .map_err(open_err)?;
        let mut shown = Shown {
            secrets: expanded.into_inner(),
        };
        let base_url = reqwest::Url::parse(&base)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| open_err("not an http or https URL".into()))?;
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::ACCEPT,
            HeaderValue::from_static(match http.body {
                HttpBody::Pages { .. } => "application/json",
                HttpBody::File { .. } => "*/*",
            }),
        );
        let mut credentials = HeaderMap::new();
        let secret = |variable: &str, what: &str| {
            options
                .var(variable)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| fail(format!("{what} variable {variable} is not set")))
        };
        let sensitive = |text: &str, variable: &str| {
            let mut value = HeaderValue::from_str(text)
                .map_err(|_| fail(format!("{variable} is not a valid header value")))?;
            value.set_sensitive(true);
            Ok::<_, FetchError>(value)
        };
        match &http.auth {
            Some(Auth::Bearer { token_env }) => {
                let token = secret(token_env, "bearer token")?;
                credentials.insert(
                    reqwest::header::AUTHORIZATION,
                    sensitive(&format!("Bearer {token}"), token_env)?,
                );
                shown.secrets.push(token);
            }
            Some(Auth::ApiKey { header, key_env }) => {
                let key = secret(key_env, "API key")?;
                let name = reqwest::header::HeaderName::from_bytes(header.as_bytes())
                    .map_err(|_| fail(format!("{header:?} is not a header name")))?;
                credentials.insert(name, sensitive(&key, key_env)?);
                shown.secrets.push(key);
            }
            None => {}
        }
        let connect_seconds = http.timeout_seconds.min(10);
        // Redirects are followed by hand: credentials only ever go to the
        // origin of the source's URL.
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(http.timeout_seconds))
            .connect_timeout(Duration::from_secs(connect_seconds))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| fail(e.to_string()))?;
        let requester = Requester {
            client,
            home: origin(&base_url),
            allowed: &http.allow_redirect_origins,
            credentials,
            success: http.success.as_ref(),
            timeout_seconds: http.timeout_seconds,
            connect_seconds,
            shown,
        };
        let period = Duration::from_secs_f64(1.0 / http.requests_per_second);
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(http.concurrency).unwrap_or(NonZeroU32::MIN));
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(http.retry_base_ms))
            .with_max_delay(Duration::from_secs(60))
            .with_max_times(http.max_retries as usize)
            .with_total_delay(Some(Duration::from_secs(http.retry_budget_seconds)))
            .with_jitter();
        Ok(Self {
            feed,
            http,
            base_url,
            requester,
            limiter: RateLimiter::direct(quota),
            backoff,
            headers,
            started: chrono::Utc::now(),
        })
    }

    fn fail(&self, position: String, message: String) -> FetchError {
        FetchError::Payload {
            feed: self.feed.clone(),
            position,
            message,
        }
    }

    /// Sends one request when the rate limiter allows, retrying what is
    /// worth retrying within the source's bounds; retries are counted in
    /// the report, and the error says whether retrying gave up.
    async fn request<T, Fut>(
        &self,
        position: &str,
        page_no: u64,
        report: &mut FetchReport,
        send: impl Fn() -> Fut,
    ) -> Result<T, FetchError>
    where
        Fut: std::future::Future<Output = Result<T, PageError>>,
    {
        let mut retries_here = 0u64;
        let response = (|| {
            let sent = send();
            async move {
                self.limiter.until_ready().await;
                sent.await
            }
        })
        .retry(self.backoff)
        .when(PageError::retryable)
        .adjust(|e, d| d.map(|d| e.retry_after().unwrap_or(d)))
        .notify(|e, d| {
            retries_here += 1;
            warn!(feed = %self.feed, page = page_no, error = %e, wait_ms = d.as_millis() as u64, "retrying");
        })
        .await;
        report.retries += retries_here;
        match response {
            Ok(r) => Ok(r),
            Err(e @ PageError::Limit(_)) => Err(FetchError::Limit {
                feed: self.feed.clone(),
                position: position.to_string(),
                message: e.to_string(),
            }),
            Err(e) if retries_here > 0 => Err(FetchError::Exhausted {
                feed: self.feed.clone(),
                position: position.to_string(),
                message: e.to_string(),
                retries: report.retries,
            }),
            Err(e) => Err(self.fail(position.to_string(), e.to_string())),
        }
    }

    /// The headers of the first request: conditional on the watermark of
    /// the last good fetch (`If-None-Match`, `If-Modified-Since`).
    fn first_headers(&self, options: &FetchOptions) -> HeaderMap {
        let mut headers = self.headers.clone();
        match options.watermark.as_deref() {
            Some(w) if w.starts_with("etag:") => {
                if let Ok(v) = HeaderValue::from_str(&w[5..]) {
                    headers.insert(reqwest::header::IF_NONE_MATCH, v);
                }
            }
            Some(w) if w.starts_with("lm:") => {
                if let Ok(v) = HeaderValue::from_str(&w[3..]) {
                    headers.insert(reqwest::header::IF_MODIFIED_SINCE, v);
                }
            }
            _ => {}
        }
        headers
    }

    /// The since-watermark query parameter and its value, for an
    /// incremental source with a watermark.
    fn since<'o>(&self, options: &'o FetchOptions) -> Option<(&'a String, &'o str)> {
        let param = self.http.since_param.as_ref()?;
        let since = options.watermark.as_deref()?.strip_prefix("since:")?;
        Some((param, since))
    }

    /// The watermark a good first response sets: the time the fetch
    /// started for an incremental source, else the response's `ETag` or
    /// `Last-Modified`.
    fn watermark(&self, headers: &HeaderMap) -> Option<String> {
        if self.http.since_param.is_some() {
            return Some(format!("since:{}", self.started.to_rfc3339()));
        }
        let header = |name| {
            headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
        };
        header(reqwest::header::ETAG)
            .map(|etag| format!("etag:{etag}"))
            .or_else(|| header(reqwest::header::LAST_MODIFIED).map(|lm| format!("lm:{lm}")))
    }
}

/// Downloads one file and reads it in its format as it arrives. The
/// request is conditional and retried like a page; once the body flows, a
/// cut body fails the fetch (the rows already sent cannot be unsent), and
/// the run holds the feed at its last good snapshot.
async fn fetch_file(
    session: &Session<'_>,
    format: &FileFormat,
    gzip: bool,
    fields: Vec<String>,
    options: &FetchOptions,
    tx: mpsc::Sender<RawBatch>,
    mut sink: Box<dyn PayloadSink>,
) -> Result<FetchReport, FetchError> {
    let http = session.http;
    let mut report = FetchReport::default();
    let name = file_name(&session.base_url);
    let mut url = session.base_url.clone();
    if let Some((param, since)) = session.since(options) {
        url.query_pairs_mut().append_pair(param, since);
    }
    let headers = session.first_headers(options);
    let limit = http
        .max_response_bytes
        .min(http.max_run_bytes)
        .min(options.max_payload_bytes);
    let response = session
        .request(&name, 1, &mut report, || async {
            let response = open_response(&session.requester, &url, &headers, limit).await?;
            refuse_html(&response, format)?;
            Ok(response)
        })
        .await?;
    if response.status().as_u16() == 304 {
        report.unchanged = true;
        report.watermark = options.watermark.clone();
        return Ok(report);
    }
    report.units = 1;
    report.watermark = session.watermark(response.headers());
    let parquet = matches!(format, FileFormat::Parquet);
    let compressed = !parquet && (gzip || name.ends_with(".gz"));
    let writer = sink
        .open(&name, compressed || parquet)
        .map_err(|message| session.fail(name.clone(), message))?;
    let received = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = std::sync::Arc::clone(&received);
    let shown = session.requester.shown.url(response.url().as_str());
    let (timeout_seconds, connect_seconds) = (
        session.requester.timeout_seconds,
        session.requester.connect_seconds,
    );
    let bytes = futures::stream::try_unfold(response, move |mut response| {
        let shown = shown.clone();
        async move {
            match response.chunk().await {
                Ok(Some(chunk)) => Ok(Some((chunk, response))),
                Ok(None) => Ok(None),
                Err(e) => Err(std::io::Error::other(describe_with(
                    &e,
                    &shown,
                    timeout_seconds,
                    connect_seconds,
                ))),
            }
        }
    })
    .inspect_ok(move |chunk| {
        counted.fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed);
    })
    .boxed();
    let ctx = FileContext {
        feed: session.feed.clone(),
        name,
        fields,
        format: format.clone(),
        compressed,
        limit,
    };
    let drift = read_file(ctx, bytes, writer, tx).await?;
    report.bytes = received.load(std::sync::atomic::Ordering::Relaxed);
    report.drift = drift;
    Ok(report)
}

/// The name a downloaded file is kept under in the raw landing area: the
/// URL's last path segment when it is a plain file name, else `download`.
fn file_name(url: &reqwest::Url) -> String {
    let last = url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .unwrap_or("");
    let plain = !last.is_empty()
        && last.len() <= 120
        && !last.starts_with('.')
        && last
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if plain {
        last.to_string()
    } else {
        "download".to_string()
    }
}

/// An HTML page where a file was expected is a portal's error page served
/// with 200 (worth retrying), unless the file itself is a JSON document
/// some portals label `text/html`.
fn refuse_html(response: &reqwest::Response, format: &FileFormat) -> Result<(), PageError> {
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.contains("text/html") && !matches!(format, FileFormat::Json { .. }) {
        return Err(PageError::NotTheFile(format!(
            "content type {content_type:?}: an HTML page where the file was expected"
        )));
    }
    Ok(())
}

/// Fetches every page of a paged JSON API.
#[allow(clippy::too_many_arguments)]
async fn fetch_pages(
    session: &Session<'_>,
    records: &str,
    pagination: &Pagination,
    fields: Vec<String>,
    options: &FetchOptions,
    tx: mpsc::Sender<RawBatch>,
    sink: Box<dyn PayloadSink>,
) -> Result<FetchReport, FetchError> {
    let http = session.http;
    let feed = &session.feed;
    let fail = |position: String, message: String| session.fail(position, message);
    let mut report = FetchReport::default();
    let mut sink = Some(sink);
    let mut presence = Presence::new(&fields);
    let mut records_seen = 0u64;
    let mut rows = Vec::with_capacity(BATCH_ROWS);
    let mut seen_cursors: HashSet<String> = HashSet::new();
    let mut previous_page: Option<u64> = None;
    let mut page_no = 0u64;
    let mut url = session.base_url.clone();
    let mut cursor: Option<String> = None;
    let mut offset = 0u64;
    let mut page_index = match pagination {
        Pagination::PageNumber { first_page, .. } => u64::from(*first_page),
        _ => 0,
    };
    loop {
        page_no += 1;
        let position = format!("page {page_no}");
        let mut query: Vec<(String, String)> = Vec::new();
        match pagination {
            Pagination::PageNumber {
                page_param,
                size_param,
                page_size,
                ..
            } => {
                query.push((page_param.clone(), page_index.to_string()));
                query.push((size_param.clone(), page_size.to_string()));
            }
            Pagination::OffsetLimit {
                offset_param,
                limit_param,
                page_size,
            } => {
                query.push((offset_param.clone(), offset.to_string()));
                query.push((limit_param.clone(), page_size.to_string()));
            }
            Pagination::Cursor { cursor_param, .. } => {
                if let Some(c) = &cursor {
                    query.push((cursor_param.clone(), c.clone()));
                }
            }
            Pagination::LinkHeader => {}
        }
        // The since-watermark goes on every page, except where the API's
        // own next links carry the query already.
        let follows_links = matches!(pagination, Pagination::LinkHeader) && page_no > 1;
        if !follows_links && let Some((param, since)) = session.since(options) {
            query.push((param.clone(), since.to_string()));
        }
        let request_headers = if page_no == 1 {
            session.first_headers(options)
        } else {
            session.headers.clone()
        };
        let remaining = http.max_run_bytes.saturating_sub(report.bytes);
        let cap = http.max_response_bytes.min(remaining.max(1));
        let mut page_url = url.clone();
        if !query.is_empty() {
            page_url.query_pairs_mut().extend_pairs(&query);
        }
        let page = session
            .request(&position, page_no, &mut report, || {
                send_once(&session.requester, &page_url, &request_headers, cap)
            })
            .await?;
        if page.status == 304 && page_no == 1 {
            report.unchanged = true;
            report.watermark = options.watermark.clone();
            return Ok(report);
        }
        report.units += 1;
        report.bytes += page.body.len() as u64;
        if report.bytes > http.max_run_bytes {
            return Err(FetchError::Limit {
                feed: feed.clone(),
                position,
                message: format!("the run exceeded {} bytes", http.max_run_bytes),
            });
        }
        if page_no == 1 {
            report.watermark = session.watermark(&page.headers);
        }
        // Keep the payload (on a blocking thread: the sink writes synchronously).
        let name = format!("page-{page_no:06}.json");
        let body = page.body.clone();
        let taken = sink.take();
        let returned = tokio::task::spawn_blocking(move || {
            let mut sink = taken?;
            let result = sink.open(&name, false).and_then(|mut w| {
                std::io::Write::write_all(&mut w, &body).map_err(|e| e.to_string())?;
                w.finish()
            });
            Some((sink, result))
        })
        .await
        .map_err(|e| fail(position.clone(), e.to_string()))?;
        match returned {
            Some((s, Ok(()))) => sink = Some(s),
            Some((_, Err(e))) => {
                return Err(fail(position, format!("cannot keep the payload: {e}")));
            }
            None => return Err(fail(position, "payload sink lost".into())),
        }
        let json = page.json.unwrap_or(Value::Null);
        if page_no == 1
            && let Some(total_ptr) = &http.total
        {
            let found = pointer(&json, total_ptr);
            let total = found.and_then(|v| match v {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            });
            if total.is_none() {
                let found: String = found
                    .map_or_else(|| "missing".into(), Value::to_string)
                    .chars()
                    .take(80)
                    .collect();
                return Err(fail(
                    position,
                    format!("the declared total at {total_ptr:?} is {found}, not a count"),
                ));
            }
            report.declared_count = total;
        }
        let Some(Value::Array(records)) = pointer(&json, records) else {
            return Err(fail(
                position,
                format!("no record array at JSON pointer {records:?}"),
            ));
        };
        let fingerprint = {
            use std::hash::{BuildHasher, RandomState};
            static STATE: std::sync::OnceLock<RandomState> = std::sync::OnceLock::new();
            STATE
                .get_or_init(RandomState::new)
                .hash_one(serde_json::to_string(records).unwrap_or_default())
        };
        if !records.is_empty() && previous_page == Some(fingerprint) {
            // Paging went wrong upstream: what should have been the next
            // page is missing, so the feed cannot be trusted this run.
            return Err(fail(
                position,
                format!(
                    "page {page_no} repeats page {}: records would be missing",
                    page_no - 1
                ),
            ));
        }
        previous_page = Some(fingerprint);
        let count = records.len() as u64;
        for (i, record) in records.iter().enumerate() {
            records_seen += 1;
            let pos = format!("{position} #{i}");
            let row = match record {
                Value::Object(o) => row_from_object(
                    &fields,
                    o,
                    pos,
                    record.to_string(),
                    &mut report.drift,
                    &mut presence,
                ),
                _ => malformed_row(&fields, pos, record.to_string(), "not a JSON object".into()),
            };
            rows.push(row);
            if rows.len() >= BATCH_ROWS {
                send(&tx, &fields, &mut rows, feed).await?;
            }
        }
        debug!(feed = %feed, page = page_no, records = count, "page");
        // Where next?
        let done = match pagination {
            // A page shorter than asked is not the end: servers cap the
            // page size. Only an empty page or the declared total ends.
            Pagination::PageNumber { .. } => {
                page_index += 1;
                report.declared_count.is_some_and(|t| records_seen >= t)
            }
            Pagination::OffsetLimit { .. } => {
                offset += count;
                report.declared_count.is_some_and(|t| records_seen >= t)
            }
            Pagination::Cursor { next_cursor, .. } => {
                let next = pointer(&json, next_cursor).and_then(|v| match v {
                    Value::String(s) if !s.is_empty() => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                });
                match next {
                    None => true,
                    Some(c) => {
                        if !seen_cursors.insert(c.clone()) {
                            return Err(fail(
                                position,
                                format!("cursor {c:?} repeats: the API would loop forever"),
                            ));
                        }
                        cursor = Some(c);
                        false
                    }
                }
            }
            Pagination::LinkHeader => match next_link(&page.headers, page_url.as_str()) {
                None => true,
                Some(next) => {
                    let Ok(next_url) = reqwest::Url::parse(&next) else {
                        return Err(fail(position, "next link is not a URL".into()));
                    };
                    session
                        .requester
                        .check_target(&page_url, &next_url, "next link")
                        .map_err(|e| fail(position.clone(), e.to_string()))?;
                    if !seen_cursors.insert(next.clone()) {
                        return Err(fail(
                            position,
                            format!(
                                "next link {:?} repeats: the API would loop forever",
                                session.requester.shown.url(&next)
                            ),
                        ));
                    }
                    url = next_url;
                    false
                }
            },
        };
        if done || count == 0 {
            if let Some(total) = report.declared_count
                && records_seen < total
                && !http.total_may_fall_short
            {
                return Err(fail(
                    position,
                    format!(
                        "the API declared {total} records and paging ended after {records_seen}: \
                         records would be missing (set source.total_may_fall_short = true if its total is an estimate)"
                    ),
                ));
            }
            break;
        }
    }
    send(&tx, &fields, &mut rows, feed).await?;
    let mut drift = Drift::default();
    presence.report(&fields, records_seen, &mut drift);
    report.drift.missing_fields.extend(drift.missing_fields);
    Ok(report)
}

async fn send(
    tx: &mpsc::Sender<RawBatch>,
    fields: &[String],
    rows: &mut Vec<super::RawRow>,
    feed: &str,
) -> Result<(), FetchError> {
    if rows.is_empty() {
        return Ok(());
    }
    tx.send(RawBatch {
        fields: fields.to_vec(),
        rows: std::mem::take(rows),
    })
    .await
    .map_err(|_| FetchError::Stopped {
        feed: feed.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers_resolve_against_the_page() {
        let mut h = HeaderMap::new();
        h.insert(
            reqwest::header::LINK,
            HeaderValue::from_static(
                "</api/court?page=3>; rel=\"next\", </api/court?page=1>; rel=\"first\"",
            ),
        );
        assert_eq!(
            next_link(&h, "http://127.0.0.1:8080/api/court?page=2").as_deref(),
            Some("http://127.0.0.1:8080/api/court?page=3")
        );
        assert_eq!(next_link(&HeaderMap::new(), "http://x/"), None);
    }

    fn requester(allowed: &[String]) -> Requester<'_> {
        Requester {
            client: reqwest::Client::new(),
            home: "https://api.example.gov.cn".into(),
            allowed,
            credentials: HeaderMap::new(),
            success: None,
            timeout_seconds: 2,
            connect_seconds: 2,
            shown: Shown {
                secrets: vec!["s3cret-value".into()],
            },
        }
    }

    #[test]
    fn only_the_home_origin_and_allowed_ones_are_followed() {
        let allowed = vec!["https://cdn.example.gov.cn".to_string()];
        let r = requester(&allowed);
        let from = reqwest::Url::parse("https://api.example.gov.cn/a").expect("url");
        let to = |u: &str| reqwest::Url::parse(u).expect("url");
        assert!(
            r.check_target(&from, &to("https://api.example.gov.cn:443/b"), "redirect")
                .is_ok()
        );
        assert!(
            r.check_target(&from, &to("https://cdn.example.gov.cn/b"), "redirect")
                .is_ok()
        );
        for (target, says) in [
            (
                "https://api.example.gov.cn:8443/b",
                "another origin https://api.example.gov.cn:8443",
            ),
            (
                "https://evil.example.com/b",
                "another origin https://evil.example.com",
            ),
            (
                "http://api.example.gov.cn/b",
                "downgrade from https to http",
            ),
            (
                "http://cdn.example.gov.cn/b",
                "downgrade from https to http",
            ),
            ("file:///etc/passwd", "only http and https"),
        ] {
            let e = r
                .check_target(&from, &to(target), "redirect 302")
                .expect_err(target)
                .to_string();
            assert!(e.contains(says), "{target}: {e}");
        }
    }

    #[test]
    fn shown_urls_carry_no_secret() {
        let r = requester(&[]);
        for url in [
            "https://user:pw@api.example.gov.cn/x?page=2",
            "https://api.example.gov.cn/x?page=2&access_token=abcdef",
            "https://api.example.gov.cn/x?page=2&apiKey=abcdef&sig=zz",
            "https://api.example.gov.cn/s3cret-value/x?page=2",
            "https://api.example.gov.cn/x?q=s3cret-value",
        ] {
            let shown = r.shown.url(url);
            assert!(
                !shown.contains("abcdef")
                    && !shown.contains("s3cret-value")
                    && !shown.contains("pw@")
                    && !shown.contains("zz")
                    && shown.contains("page=2") | shown.contains("q="),
                "{url} shown as {shown}"
            );
        }
    }

    #[test]
    fn success_codes_compare_as_text() {
        let code = SuccessCode {
            pointer: "/code".into(),
            values: vec!["0".into(), "200".into()],
        };
        assert!(check_success(&serde_json::json!({"code": 0}), &code).is_ok());
        assert!(check_success(&serde_json::json!({"code": "200"}), &code).is_ok());
        for bad in [
            serde_json::json!({"code": 500, "msg": "系统繁忙", "list": []}),
            serde_json::json!({"list": []}),
            serde_json::json!({"code": null}),
            serde_json::json!({"code": [0]}),
        ] {
            let e = check_success(&bad, &code).expect_err("not success");
            assert!(e.retryable() && e.to_string().contains("/code is"), "{e}");
        }
    }

    #[test]
    fn retry_after_is_capped() {
        let v = HeaderValue::from_static("3");
        assert_eq!(parse_retry_after(Some(&v)), Some(Duration::from_secs(3)));
        let v = HeaderValue::from_static("999999");
        assert_eq!(parse_retry_after(Some(&v)), Some(MAX_RETRY_AFTER));
    }
}
