//! A simulator of the oversight platform's intake, for tests and the demo:
//! a real HTTP server on 127.0.0.1 that checks the signature (over the
//! timestamp, method, path, idempotency key and body) and its timestamp
//! window, stores each batch once per idempotency key (a repeat gets the
//! original receipt), counts what it accepted and fails on demand. Every
//! intake under `/intake/` checks the signature against its own path, and
//! the simulator keeps every request it received as it came, with the
//! status it answered and whether that answer acknowledged the batch, so a
//! test can replay a captured one and check what a client sent against
//! what it was told (a batch sent again after its acknowledgement is a
//! client bug the idempotency key would otherwise hide).

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::deliver::{
    IDEMPOTENCY_HEADER, SIGNATURE_HEADER, SignedRequest, TIMESTAMP_HEADER, verify_signature,
};

/// What the next request suffers, in order of arrival.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "fault")]
pub enum PlatformFault {
    /// 503 before storing.
    ServerError,
    /// Stores the batch, then answers 500 (the client must not duplicate it).
    ServerErrorAfterStore,
    /// 429 with `Retry-After: seconds`.
    TooManyRequests {
        /// Seconds to wait.
        seconds: u64,
    },
    /// Answers nothing for a while, without storing.
    Timeout {
        /// Milliseconds to stall.
        millis: u64,
    },
    /// Stores the batch, then stalls past the client's timeout.
    TimeoutAfterStore {
        /// Milliseconds to stall.
        millis: u64,
    },
    /// 400: the platform refuses the batch for good.
    BadRequest,
    /// Stores the batch, then drops the connection instead of answering.
    CloseAfterBody,
}

/// What the platform accepted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlatformStats {
    /// Requests received.
    pub requests: u64,
    /// Distinct batches stored.
    pub accepted_batches: u64,
    /// Records in the stored batches.
    pub accepted_rows: u64,
    /// Requests repeating a stored idempotency key.
    pub repeats: u64,
    /// Requests refused for their signature or timestamp.
    pub rejected_signatures: u64,
    /// Requests failed on purpose.
    pub faults_served: u64,
    /// Distinct batches of kind `warnings` stored (not in `accepted_batches`).
    #[serde(default)]
    pub accepted_warning_batches: u64,
    /// Warnings in them (not in `accepted_rows`).
    #[serde(default)]
    pub accepted_warnings: u64,
}

/// One stored batch.
#[derive(Debug, Clone, Serialize)]
pub struct StoredBatch {
    /// The idempotency key.
    pub key: String,
    /// The body as received.
    pub body: Value,
    /// The receipt issued.
    pub receipt: Value,
}

/// One request as the simulator received it (before any check).
#[derive(Debug, Clone, PartialEq)]
pub struct CapturedRequest {
    /// The request target: path and `?query`.
    pub path: String,
    /// `Idempotency-Key`, when sent.
    pub idempotency_key: Option<String>,
    /// `X-Qinglian-Timestamp`, when sent.
    pub timestamp: Option<String>,
    /// `X-Qinglian-Signature`, when sent.
    pub signature: Option<String>,
    /// The body bytes.
    pub body: Bytes,
    /// The status answered (None: the connection was dropped unanswered,
    /// or the request is still being answered).
    pub status: Option<u16>,
    /// Whether the answer was a receipt the client could take as the
    /// batch's acknowledgement: 200 with a receipt, answered in time (not
    /// a receipt held back past the client's timeout).
    pub acknowledged: bool,
}

#[derive(Default)]
struct Shared {
    secret: Vec<u8>,
    window_seconds: i64,
    down: bool,
    faults: VecDeque<PlatformFault>,
    batches: BTreeMap<String, StoredBatch>,
    stats: PlatformStats,
    captured: Vec<CapturedRequest>,
}

/// A running platform simulator.
pub struct PlatformSimulator {
    /// Where it listens.
    pub addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    task: JoinHandle<()>,
}

impl Drop for PlatformSimulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The intake path.
pub const INTAKE_PATH: &str = "/intake/integrity-codes";
/// Another intake of the same platform (same secret), which a request
/// signed for [`INTAKE_PATH`] must not reach.
pub const OTHER_INTAKE_PATH: &str = "/intake/other";

impl PlatformSimulator {
    /// Listens on 127.0.0.1:`port` (0 for any free port), accepting batches
    /// signed with `secret` whose timestamp is within `window_seconds` of
    /// its clock.
    pub async fn start(port: u16, secret: &[u8], window_seconds: i64) -> std::io::Result<Self> {
        let shared = Arc::new(Mutex::new(Shared {
            secret: secret.to_vec(),
            window_seconds,
            ..Shared::default()
        }));
        let app = Router::new()
            .route(INTAKE_PATH, post(intake))
            .route(OTHER_INTAKE_PATH, post(intake))
            .route("/_stats", get(stats))
            .route("/_faults", post(add_faults))
            .with_state(Arc::clone(&shared));
        let (addr, task) = crate::listen::serve_at(app, ("127.0.0.1", port)).await?;
        Ok(Self { addr, shared, task })
    }

    /// The intake URL to configure as the push endpoint.
    pub fn url(&self) -> String {
        format!("http://{}{INTAKE_PATH}", self.addr)
    }

    /// Queues faults for the next requests, in order.
    pub fn inject(&self, faults: impl IntoIterator<Item = PlatformFault>) {
        if let Ok(mut s) = self.shared.lock() {
            s.faults.extend(faults);
        }
    }

    /// Takes the platform down (every request 503) or brings it back.
    pub fn set_down(&self, down: bool) {
        if let Ok(mut s) = self.shared.lock() {
            s.down = down;
        }
    }

    /// What it accepted so far.
    pub fn stats(&self) -> PlatformStats {
        self.shared
            .lock()
            .map(|s| s.stats.clone())
            .unwrap_or_default()
    }

    /// The stored batches of code changes by idempotency key.
    pub fn batches(&self) -> Vec<StoredBatch> {
        self.stored(false)
    }

    /// The stored batches of warnings (kind `warnings`) by idempotency key.
    pub fn warning_batches(&self) -> Vec<StoredBatch> {
        self.stored(true)
    }

    fn stored(&self, warnings: bool) -> Vec<StoredBatch> {
        self.shared
            .lock()
            .map(|s| {
                s.batches
                    .values()
                    .filter(|b| {
                        (b.body.get("kind").and_then(Value::as_str) == Some("warnings")) == warnings
                    })
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every request received at an intake, in order of arrival, as it
    /// came, with the answer it got.
    pub fn requests(&self) -> Vec<CapturedRequest> {
        self.shared
            .lock()
            .map(|s| s.captured.clone())
            .unwrap_or_default()
    }

    /// Runs until the process is interrupted.
    pub async fn wait(self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn reply(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

async fn stats(State(shared): State<Arc<Mutex<Shared>>>) -> Response {
    let s = shared.lock().map(|s| s.stats.clone()).unwrap_or_default();
    reply(StatusCode::OK, json!(s))
}

async fn add_faults(
    State(shared): State<Arc<Mutex<Shared>>>,
    axum::Json(faults): axum::Json<Vec<PlatformFault>>,
) -> Response {
    if let Ok(mut s) = shared.lock() {
        s.faults.extend(faults);
    }
    reply(StatusCode::OK, json!({"queued": true}))
}

/// Stores a batch (once per key) and returns its receipt.
fn store(s: &mut Shared, key: &str, body: Value) -> Value {
    if let Some(existing) = s.batches.get(key) {
        s.stats.repeats += 1;
        return existing.receipt.clone();
    }
    let rows = body
        .get("records")
        .and_then(Value::as_array)
        .map_or(0, Vec::len) as u64;
    let receipt_id = if body.get("kind").and_then(Value::as_str) == Some("warnings") {
        s.stats.accepted_warning_batches += 1;
        s.stats.accepted_warnings += rows;
        format!("w-{:06}", s.stats.accepted_warning_batches)
    } else {
        s.stats.accepted_batches += 1;
        s.stats.accepted_rows += rows;
        format!("r-{:06}", s.stats.accepted_batches)
    };
    let receipt = json!({
        "receipt_id": receipt_id,
        "idempotency_key": key,
        "accepted_rows": rows,
        "received_at": chrono::Utc::now().to_rfc3339(),
    });
    s.batches.insert(
        key.to_string(),
        StoredBatch {
            key: key.to_string(),
            body,
            receipt: receipt.clone(),
        },
    );
    receipt
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// How an answer went, kept beside the response (never sent).
#[derive(Clone, Copy)]
enum Answered {
    /// A receipt answered in time: the client may take it as acknowledged.
    Receipt,
    /// The connection is dropped instead of answering.
    Dropped,
}

fn marked(mut response: Response, how: Answered) -> Response {
    response.extensions_mut().insert(how);
    response
}

async fn intake(
    State(shared): State<Arc<Mutex<Shared>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_string(), |p| p.as_str().to_string());
    let index = {
        let Ok(mut s) = shared.lock() else {
            return reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"error": "poisoned"}),
            );
        };
        s.stats.requests += 1;
        s.captured.push(CapturedRequest {
            path: path.clone(),
            idempotency_key: header(&headers, IDEMPOTENCY_HEADER).map(str::to_string),
            timestamp: header(&headers, TIMESTAMP_HEADER).map(str::to_string),
            signature: header(&headers, SIGNATURE_HEADER).map(str::to_string),
            body: body.clone(),
            status: None,
            acknowledged: false,
        });
        s.captured.len() - 1
    };
    let response = respond(&shared, path, &headers, body).await;
    let how = response.extensions().get::<Answered>().copied();
    if let Ok(mut s) = shared.lock()
        && let Some(c) = s.captured.get_mut(index)
    {
        c.status = match how {
            Some(Answered::Dropped) => None,
            _ => Some(response.status().as_u16()),
        };
        c.acknowledged = matches!(how, Some(Answered::Receipt));
    }
    response
}

async fn respond(
    shared: &Arc<Mutex<Shared>>,
    path: String,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let (fault, key, parsed) = {
        let Ok(mut s) = shared.lock() else {
            return reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"error": "poisoned"}),
            );
        };
        if s.down {
            return reply(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": "platform down"}),
            );
        }
        let Some(ts) = header(headers, TIMESTAMP_HEADER).and_then(|t| t.parse::<i64>().ok()) else {
            s.stats.rejected_signatures += 1;
            return reply(
                StatusCode::UNAUTHORIZED,
                json!({"error": format!("missing or malformed {TIMESTAMP_HEADER}")}),
            );
        };
        if (chrono::Utc::now().timestamp() - ts).abs() > s.window_seconds {
            s.stats.rejected_signatures += 1;
            return reply(
                StatusCode::UNAUTHORIZED,
                json!({"error": "timestamp outside the accepted window"}),
            );
        }
        let Some(key) = header(headers, IDEMPOTENCY_HEADER).map(str::to_string) else {
            return reply(
                StatusCode::BAD_REQUEST,
                json!({"error": format!("missing {IDEMPOTENCY_HEADER}")}),
            );
        };
        let signature = header(headers, SIGNATURE_HEADER).unwrap_or_default();
        let signed = SignedRequest {
            timestamp: ts,
            method: "POST",
            path: &path,
            idempotency_key: &key,
            body: &body,
        };
        if !verify_signature(&s.secret, &signed, signature) {
            s.stats.rejected_signatures += 1;
            return reply(
                StatusCode::UNAUTHORIZED,
                json!({"error": "signature does not match this timestamp, path, idempotency key and body"}),
            );
        }
        let parsed: Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                return reply(
                    StatusCode::BAD_REQUEST,
                    json!({"error": format!("body is not JSON: {e}")}),
                );
            }
        };
        let fault = s.faults.pop_front();
        if fault.is_some() {
            s.stats.faults_served += 1;
        }
        (fault, key, parsed)
    };
    let stored = |shared: &Arc<Mutex<Shared>>, parsed: Value| {
        shared
            .lock()
            .map(|mut s| store(&mut s, &key, parsed))
            .unwrap_or(Value::Null)
    };
    match fault {
        None => marked(
            reply(StatusCode::OK, stored(shared, parsed)),
            Answered::Receipt,
        ),
        Some(PlatformFault::ServerError) => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": "simulated outage"}),
        ),
        Some(PlatformFault::ServerErrorAfterStore) => {
            stored(shared, parsed);
            reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"error": "simulated failure after storing"}),
            )
        }
        Some(PlatformFault::TooManyRequests { seconds }) => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", seconds.to_string())],
            axum::Json(json!({"error": "slow down"})),
        )
            .into_response(),
        Some(PlatformFault::Timeout { millis }) => {
            tokio::time::sleep(Duration::from_millis(millis)).await;
            reply(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": "too late"}),
            )
        }
        Some(PlatformFault::TimeoutAfterStore { millis }) => {
            // A receipt held back: whether it counts depends on the
            // client's timeout, so it is not taken as an acknowledgement.
            let receipt = stored(shared, parsed);
            tokio::time::sleep(Duration::from_millis(millis)).await;
            reply(StatusCode::OK, receipt)
        }
        Some(PlatformFault::BadRequest) => reply(
            StatusCode::BAD_REQUEST,
            json!({"error": "simulated rejection: record 1 field colour"}),
        ),
        Some(PlatformFault::CloseAfterBody) => {
            stored(shared, parsed);
            // A body that fails at once: the connection is dropped unanswered.
            let broken = futures::stream::once(async {
                Err::<Bytes, std::io::Error>(std::io::Error::other("connection dropped"))
            });
            marked(Response::new(Body::from_stream(broken)), Answered::Dropped)
        }
    }
}
