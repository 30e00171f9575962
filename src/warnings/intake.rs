//! Dispositions pushed to us: `POST /intake/dispositions` on a listener of
//! its own, signed with the shared secret exactly as our push is
//! (`X-Qinglian-Timestamp` within a window, `Idempotency-Key`,
//! `X-Qinglian-Signature: v2=` HMAC-SHA256 over
//! `<timestamp>\n<METHOD>\n<path>\n<key>\n<body>`), answered with a receipt.
//!
//! The order of things is what makes it safe: a request that verifies is
//! first kept as received (`warnings/received/`), then every record in it
//! is judged ([`judge`]: the same for pulled records) and recorded once per
//! warning id and sequence, then its receipt is kept, and only then is it
//! answered. A crash anywhere loses nothing (a kept request is replayed
//! when the intake starts, an unanswered one is sent again by the
//! platform) and applies nothing twice (recording is create-only).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::{DateTime, Utc};
use object_store::ObjectStore;
use object_store::path::Path;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::inbox::{DeadDisposition, Inbox, Outcome, Received};
use super::lifecycle::{Event, transition};
use super::record::{Disposition, Warning};
use crate::clock::Clock;
use crate::deliver::{
    IDEMPOTENCY_HEADER, SIGNATURE_HEADER, SignedRequest, TIMESTAMP_HEADER, verify_signature,
};

/// The path of the intake.
pub const INTAKE_PATH: &str = "/intake/dispositions";
/// The body format this build reads.
pub const INTAKE_FORMAT: u32 = 1;
/// The longest body accepted.
const MAX_BODY: usize = 4 << 20;
/// The longest received text kept in a dead letter.
const MAX_KEPT: usize = 64 << 10;

/// The judgement of one record.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Recorded now; `held` when records before it are still missing.
    Recorded {
        /// Receipt id of the record.
        receipt_id: String,
        /// Waits for the sequences before it.
        held: bool,
    },
    /// Recorded before with the same content.
    Duplicate {
        /// The original receipt id.
        receipt_id: String,
    },
    /// Refused (and parked in the dead-letter area): never applied.
    Refused {
        /// Why, naming the warning, the sequence and the field.
        reason: String,
    },
}

/// Where each warning stands now: its row in the latest published
/// version, moved on by every disposition recorded since.
async fn live(
    inbox: &Inbox,
    w: &Warning,
) -> Result<(super::State, u32, Vec<super::inbox::Recorded>), String> {
    let recorded = inbox.of_warning(&w.warning_id).await?;
    let (mut state, mut last) = (w.state, w.last_sequence);
    for r in &recorded {
        let d = &r.disposition;
        if d.sequence <= last {
            continue;
        }
        if d.sequence != last + 1 {
            break;
        }
        match d
            .new_state()
            .ok()
            .and_then(|to| transition(state, Event::Disposition(to)).ok())
        {
            Some(s) => {
                state = s;
                last = d.sequence;
            }
            None => break,
        }
    }
    Ok((state, last, recorded))
}

/// Judges one record and records it if it may be: known warning, its
/// organization, a state the life cycle allows after the record before it
/// (held when that one is still missing), once per warning id and
/// sequence. A refused record is parked in the dead-letter area.
pub async fn judge(
    inbox: &Inbox,
    known: &HashMap<String, Warning>,
    d: &Disposition,
    via: &str,
    key: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Verdict, String> {
    let refuse = |reason: String| async move {
        inbox
            .park(&DeadDisposition {
                reason: reason.clone(),
                via: via.to_string(),
                idempotency_key: key.map(str::to_string),
                received: cut(&serde_json::to_string(d).unwrap_or_default()),
                refused_at: now,
            })
            .await?;
        warn!(warning = %d.warning_id, sequence = d.sequence, reason = %reason, "disposition refused");
        Ok::<Verdict, String>(Verdict::Refused { reason })
    };
    let Some(w) = known.get(&d.warning_id) else {
        return refuse(format!(
            "warning {} sequence {}: unknown warning id; no published warning has it",
            d.warning_id, d.sequence
        ))
        .await;
    };
    if d.uscc != w.uscc {
        return refuse(format!(
            "warning {} sequence {}: uscc {} is not the warning's organization {}",
            d.warning_id, d.sequence, d.uscc, w.uscc
        ))
        .await;
    }
    if d.sequence == 0 {
        return refuse(format!(
            "warning {} sequence 0: sequences start at 1",
            d.warning_id
        ))
        .await;
    }
    let to = match d.new_state() {
        Ok(s) => s,
        Err(e) => return refuse(e).await,
    };
    let (state, last, recorded) = live(inbox, w).await?;
    let already = recorded
        .iter()
        .any(|r| r.disposition.sequence == d.sequence);
    if !already {
        if d.sequence <= last {
            return refuse(format!(
                "warning {} sequence {}: already applied (the warning is at sequence {last})",
                d.warning_id, d.sequence
            ))
            .await;
        }
        if d.sequence == last + 1
            && let Err(e) = transition(state, Event::Disposition(to))
        {
            return refuse(format!(
                "warning {} sequence {}: {e}",
                d.warning_id, d.sequence
            ))
            .await;
        }
    }
    match inbox.record(d, via, now).await? {
        Outcome::Recorded(receipt_id) => {
            info!(warning = %d.warning_id, sequence = d.sequence, state = %d.state, via, "disposition recorded");
            Ok(Verdict::Recorded {
                receipt_id,
                held: d.sequence > last + 1,
            })
        }
        Outcome::Duplicate(receipt_id) => Ok(Verdict::Duplicate { receipt_id }),
        Outcome::Conflict(existing) => {
            refuse(format!(
                "warning {} sequence {}: already recorded with different content (state {}, recorded {}); one record per state change",
                d.warning_id, d.sequence, existing.disposition.state, existing.recorded_at
            ))
            .await
        }
    }
}

fn cut(text: &str) -> String {
    let mut end = text.len().min(MAX_KEPT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// The current version of the latest published business date.
pub async fn latest_published(
    store: &Arc<dyn ObjectStore>,
    prefix: &Path,
) -> Result<Option<crate::catalog::Published>, String> {
    let far = chrono::NaiveDate::from_ymd_opt(9999, 12, 31).unwrap_or_default();
    crate::catalog::Published::latest_before(store, prefix, far)
        .await
        .map_err(|e| e.to_string())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    format: u32,
    records: Vec<Disposition>,
}

/// How the intake listens.
pub struct IntakeOptions {
    /// Warehouse.
    pub store: Arc<dyn ObjectStore>,
    /// Warehouse prefix.
    pub prefix: Path,
    /// The shared secret.
    pub secret: Vec<u8>,
    /// Seconds a signing time may differ from ours.
    pub window_seconds: i64,
    /// The clock stamping records.
    pub clock: Arc<dyn Clock>,
    /// Waits this long between keeping a request and judging it (the crash
    /// harness kills the process in that gap).
    pub pause_after_receive: Duration,
}

struct Shared {
    inbox: Inbox,
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    secret: Vec<u8>,
    window_seconds: i64,
    clock: Arc<dyn Clock>,
    pause: Duration,
    // One request judged at a time: judging reads what is recorded.
    lock: Mutex<()>,
    // The warnings of the latest manifest read, by its path: a manifest is
    // written once, so the same path means the same warnings.
    known: Mutex<Option<(String, Arc<Known>)>>,
}

/// The published warnings by id.
type Known = HashMap<String, Warning>;

impl Shared {
    /// The warnings of the latest published manifest, read again only when
    /// a newer manifest is there.
    async fn known_warnings(&self) -> Result<Arc<Known>, String> {
        let Some(p) = latest_published(&self.store, &self.prefix).await? else {
            return Ok(Arc::default());
        };
        let mut known = self.known.lock().await;
        if let Some((path, warnings)) = &*known
            && *path == p.path
        {
            return Ok(Arc::clone(warnings));
        }
        let warnings: Arc<Known> = Arc::new(
            super::published_warnings(&p)
                .await?
                .into_iter()
                .map(|w| (w.warning_id.clone(), w))
                .collect(),
        );
        *known = Some((p.path.clone(), Arc::clone(&warnings)));
        Ok(warnings)
    }
}

/// A running intake.
pub struct Intake {
    /// Where it listens.
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Intake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Intake {
    /// Replays every request kept but not answered, then listens at `addr`.
    pub async fn start(
        addr: impl tokio::net::ToSocketAddrs,
        options: IntakeOptions,
    ) -> Result<Self, String> {
        let shared = Arc::new(Shared {
            inbox: Inbox::new(Arc::clone(&options.store), options.prefix.clone()),
            store: options.store,
            prefix: options.prefix,
            secret: options.secret,
            window_seconds: options.window_seconds,
            clock: options.clock,
            pause: options.pause_after_receive,
            lock: Mutex::new(()),
            known: Mutex::new(None),
        });
        for (name, received) in shared.inbox.unanswered().await? {
            info!(key = %received.idempotency_key, "replaying a request received before a restart");
            process(&shared, &received).await?;
            shared.inbox.forget_received(&name).await?;
        }
        let app = Router::new()
            .route(INTAKE_PATH, post(handle))
            .with_state(Arc::clone(&shared));
        let (addr, task) = crate::listen::serve_at(app, addr)
            .await
            .map_err(|e| format!("cannot listen for dispositions: {e}"))?;
        info!(%addr, path = INTAKE_PATH, "disposition intake listening");
        Ok(Self { addr, task })
    }

    /// The intake URL.
    pub fn url(&self) -> String {
        format!("http://{}{INTAKE_PATH}", self.addr)
    }

    /// Serves until the task ends (the process is stopped).
    pub async fn wait(mut self) {
        let _ = (&mut self.task).await;
    }
}

fn reply(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_string(), |p| p.as_str().to_string());
    let now = shared.clock.now();
    let key = header(&headers, IDEMPOTENCY_HEADER).map(str::to_string);
    let forged = |why: String| {
        let shared = Arc::clone(&shared);
        let (key, body) = (key.clone(), body.clone());
        async move {
            let _ = shared
                .inbox
                .park(&DeadDisposition {
                    reason: why.clone(),
                    via: "intake".into(),
                    idempotency_key: key,
                    received: cut(&String::from_utf8_lossy(&body)),
                    refused_at: now,
                })
                .await;
            warn!(reason = %why, "intake request refused");
            reply(StatusCode::UNAUTHORIZED, json!({ "error": why }))
        }
    };
    if body.len() > MAX_BODY {
        return reply(
            StatusCode::PAYLOAD_TOO_LARGE,
            json!({"error": format!("body of {} bytes; at most {MAX_BODY}", body.len())}),
        );
    }
    let Some(ts) = header(&headers, TIMESTAMP_HEADER).and_then(|t| t.parse::<i64>().ok()) else {
        return forged(format!("missing or malformed {TIMESTAMP_HEADER}")).await;
    };
    // The signing time is checked against the wall clock, as the platform
    // checks ours: a replayed capture is too old.
    if (Utc::now().timestamp() - ts).abs() > shared.window_seconds {
        return forged(format!(
            "{TIMESTAMP_HEADER} {ts} is outside the accepted window of {} seconds",
            shared.window_seconds
        ))
        .await;
    }
    let Some(key) = key.clone().filter(|k| !k.is_empty()) else {
        return forged(format!("missing {IDEMPOTENCY_HEADER}")).await;
    };
    let signed = SignedRequest {
        timestamp: ts,
        method: "POST",
        path: &path,
        idempotency_key: &key,
        body: &body,
    };
    if !verify_signature(
        &shared.secret,
        &signed,
        header(&headers, SIGNATURE_HEADER).unwrap_or_default(),
    ) {
        return forged(format!(
            "{SIGNATURE_HEADER} does not verify over this timestamp, path, idempotency key and body"
        ))
        .await;
    }
    let received = Received {
        idempotency_key: key,
        body: String::from_utf8_lossy(&body).into_owned(),
        received_at: now,
    };
    let name = match shared.inbox.keep_received(&received).await {
        Ok(n) => n,
        Err(e) => {
            warn!(error = %e, "cannot keep a received request; asking the platform to send it again");
            return reply(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": "warehouse unavailable, send again"}),
            );
        }
    };
    if !shared.pause.is_zero() {
        tokio::time::sleep(shared.pause).await;
    }
    match process(&shared, &received).await {
        Ok((status, receipt)) => {
            if let Err(e) = shared.inbox.forget_received(&name).await {
                warn!(error = %e, "an answered request stays kept; it is replayed harmlessly on restart");
            }
            reply(status, receipt)
        }
        Err(e) => {
            warn!(error = %e, "cannot record dispositions; asking the platform to send them again");
            reply(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": "warehouse unavailable, send again"}),
            )
        }
    }
}

/// Judges and records the records of one verified request, keeps its
/// receipt (a repeat of the key gets it back) and returns the answer.
async fn process(shared: &Shared, received: &Received) -> Result<(StatusCode, Value), String> {
    let _guard = shared.lock.lock().await;
    let now = shared.clock.now();
    let key = &received.idempotency_key;
    let receipt_path = crate::store::join(
        &shared.prefix,
        &crate::layout::warnings::receipt(&super::inbox::digest(key.as_bytes())),
    );
    if let Ok(r) = object_store::ObjectStoreExt::get(&*shared.store, &receipt_path).await
        && let Ok(bytes) = r.bytes().await
        && let Ok(v) = serde_json::from_slice::<Value>(&bytes)
    {
        let status = v
            .get("status")
            .and_then(Value::as_u64)
            .and_then(|s| StatusCode::from_u16(s as u16).ok())
            .unwrap_or(StatusCode::OK);
        return Ok((status, v.get("receipt").cloned().unwrap_or(Value::Null)));
    }
    let de = &mut serde_json::Deserializer::from_str(&received.body);
    let body: Body = match serde_path_to_error::deserialize(de) {
        Ok(b) => b,
        Err(e) => {
            let reason = format!(
                "body: {}: {}",
                if e.path().to_string() == "." {
                    "(top)".to_string()
                } else {
                    e.path().to_string()
                },
                e.inner()
            );
            shared
                .inbox
                .park(&DeadDisposition {
                    reason: reason.clone(),
                    via: "intake".into(),
                    idempotency_key: Some(key.clone()),
                    received: cut(&received.body),
                    refused_at: now,
                })
                .await?;
            return Ok((StatusCode::BAD_REQUEST, json!({"error": reason})));
        }
    };
    if body.format != INTAKE_FORMAT {
        return Ok((
            StatusCode::BAD_REQUEST,
            json!({"error": format!("body: format {}, this intake reads format {INTAKE_FORMAT}", body.format)}),
        ));
    }
    let known = shared.known_warnings().await?;
    let mut results = Vec::new();
    let (mut accepted, mut refused) = (0u64, 0u64);
    for d in &body.records {
        let v = judge(&shared.inbox, &known, d, "intake", Some(key), now).await?;
        let mut r = json!({"warning_id": d.warning_id, "sequence": d.sequence});
        match v {
            Verdict::Recorded { receipt_id, held } => {
                accepted += 1;
                r["status"] = json!(if held { "held" } else { "recorded" });
                r["receipt_id"] = json!(receipt_id);
            }
            Verdict::Duplicate { receipt_id } => {
                accepted += 1;
                r["status"] = json!("duplicate");
                r["receipt_id"] = json!(receipt_id);
            }
            Verdict::Refused { reason } => {
                refused += 1;
                r["status"] = json!("refused");
                r["error"] = json!(reason);
            }
        }
        results.push(r);
    }
    let receipt = json!({
        "receipt_id": format!("i-{}", super::inbox::digest(key.as_bytes())),
        "idempotency_key": key,
        "accepted_rows": accepted,
        "refused_rows": refused,
        "records": results,
    });
    let status = if refused > 0 {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let kept = json!({"status": status.as_u16(), "receipt": receipt});
    object_store::ObjectStoreExt::put(
        &*shared.store,
        &receipt_path,
        serde_json::to_vec(&kept).map_err(|e| e.to_string())?.into(),
    )
    .await
    .map_err(|e| format!("{receipt_path}: {e}"))?;
    Ok((status, receipt))
}
