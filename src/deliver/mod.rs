//! Stage 6, delivery: the code changes of a published version go to the
//! oversight platform as signed JSON batches through the [`Outbox`], and the
//! published files can be copied to the platform's bucket ([`drop_copy`]).
//!
//! Each request carries `Idempotency-Key` (pipeline, business date, kind,
//! batch number and a hash of the body: identical on every retry and every
//! re-run of the date with the same content), `X-Qinglian-Timestamp` (Unix
//! seconds) and `X-Qinglian-Signature: v2=<hex HMAC-SHA256 of
//! "<timestamp>\n<METHOD>\n<path>\n<Idempotency-Key>\n<body>">` (see
//! [`canonical_request`]): a captured signature is good for that key, that
//! path and that body only. The contract is `schemas/out/push.schema.json`
//! and `schemas/out/README.md`.

mod outbox;
mod parquet_drop;

use std::collections::BTreeMap;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use chrono::NaiveDate;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tracing::{info, warn};

pub use outbox::{Acknowledged, DeadLetter, Outbox, OutboxBatch, OutboxError, Queued};
pub use parquet_drop::drop_copy;

use crate::catalog::Published;
use crate::clock::Clock;
use crate::ledger::DeliverySummary;
use crate::project::Pipeline;

/// The idempotency header.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
/// The signing-time header (Unix seconds).
pub const TIMESTAMP_HEADER: &str = "X-Qinglian-Timestamp";
/// The signature header: `v1=<hex>`.
pub const SIGNATURE_HEADER: &str = "X-Qinglian-Signature";
/// The body format this build sends.
pub const PUSH_FORMAT: u32 = 1;
/// The longest response kept in a dead letter.
const MAX_KEPT_RESPONSE: usize = 4096;

/// What a push signature covers: the request's signing time, method, path
/// (with its query, as sent), idempotency key and body bytes.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// Unix seconds at signing (`X-Qinglian-Timestamp`).
    pub timestamp: i64,
    /// `POST`.
    pub method: &'a str,
    /// The request target: path, and `?query` when there is one.
    pub path: &'a str,
    /// The `Idempotency-Key` header.
    pub idempotency_key: &'a str,
    /// The body as sent.
    pub body: &'a [u8],
}

/// The bytes a push signature is computed over:
/// `<timestamp>\n<METHOD>\n<path>\n<Idempotency-Key>\n<body>`. Newlines
/// cannot occur in a timestamp, a method, a request target or a header
/// value, so no two requests share a canonical string.
pub fn canonical_request(r: &SignedRequest<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(r.body.len() + r.path.len() + r.idempotency_key.len() + 32);
    out.extend_from_slice(r.timestamp.to_string().as_bytes());
    out.push(b'\n');
    out.extend_from_slice(r.method.to_ascii_uppercase().as_bytes());
    out.push(b'\n');
    out.extend_from_slice(r.path.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(r.idempotency_key.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(r.body);
    out
}

fn mac(secret: &[u8], request: &SignedRequest<'_>) -> Option<Hmac<Sha256>> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).ok()?;
    mac.update(&canonical_request(request));
    Some(mac)
}

/// The signature header value of a request: `v2=<hex>`.
pub fn sign(secret: &[u8], request: &SignedRequest<'_>) -> String {
    mac(secret, request)
        .map(|m| format!("v2={}", crate::digest::hex(&m.finalize().into_bytes())))
        .unwrap_or_default()
}

/// Checks a signature header in constant time.
pub fn verify_signature(secret: &[u8], request: &SignedRequest<'_>, header: &str) -> bool {
    let Some(hex) = header.strip_prefix("v2=") else {
        return false;
    };
    let Some(bytes) = decode_hex(hex) else {
        return false;
    };
    mac(secret, request).is_some_and(|m| m.verify_slice(&bytes).is_ok())
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A resolved push configuration: the endpoint and the secret.
pub struct Endpoint {
    url: String,
    redactor: crate::project::Redactor,
    secret: Vec<u8>,
    config: crate::project::Push,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.display_url())
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl Endpoint {
    /// The pipeline's endpoint with `${VAR}` expanded from `vars`, then the
    /// environment; `None` when pushing is off (no `[push]`, or an empty
    /// endpoint). A configured endpoint without its secret is an error.
    pub fn resolve(
        pipeline: &Pipeline,
        vars: &BTreeMap<String, String>,
    ) -> Result<Option<Self>, String> {
        let Some(push) = &pipeline.push else {
            return Ok(None);
        };
        let lookup = |n: &str| vars.get(n).cloned().or_else(|| std::env::var(n).ok());
        let url = crate::project::expand_env(&push.endpoint, lookup)
            .map_err(|e| format!("pipeline {}: push.endpoint: {e}", pipeline.name))?;
        if url.trim().is_empty() {
            return Ok(None);
        }
        let parsed = url::Url::parse(&url)
            .map_err(|e| format!("pipeline {}: push.endpoint: not a URL ({e})", pipeline.name))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!(
                "pipeline {}: push.endpoint: expected http or https, found {}",
                pipeline.name,
                parsed.scheme()
            ));
        }
        let secret = lookup(&push.secret_env).filter(|s| !s.is_empty()).ok_or_else(|| {
            format!(
                "pipeline {} pushes to the oversight platform but {} is not set; set it to the shared secret",
                pipeline.name, push.secret_env
            )
        })?;
        Ok(Some(Self {
            url,
            redactor: crate::project::Redactor::new(&push.endpoint, lookup),
            secret: secret.into_bytes(),
            config: push.clone(),
        }))
    }

    /// The URL without credentials or query, each expanded variable shown
    /// as its `${NAME}`, for logs and the ledger.
    pub fn display_url(&self) -> String {
        let shown = url::Url::parse(&self.url)
            .map(|u| {
                format!(
                    "{}://{}{}",
                    u.scheme(),
                    u.host_str().unwrap_or_default(),
                    u.port().map(|p| format!(":{p}")).unwrap_or_default()
                ) + u.path()
            })
            .unwrap_or_default();
        self.redactor.apply(&shown)
    }

    /// `text` with every expansion of the endpoint's variables shown as its
    /// `${NAME}`.
    pub fn redact(&self, text: &str) -> String {
        self.redactor.apply(text)
    }

    /// The request target the push is sent to (path, and `?query` when the
    /// endpoint has one), as signed.
    pub fn request_target(&self) -> String {
        url::Url::parse(&self.url)
            .map(|u| match u.query() {
                Some(q) => format!("{}?{q}", u.path()),
                None => u.path().to_string(),
            })
            .unwrap_or_default()
    }

    /// Records per batch.
    pub fn batch_size(&self) -> u32 {
        self.config.batch_size
    }
}

/// The JSON records of a dataset (`changes` or `codes`) in the push shape.
fn records(batches: &[RecordBatch], date: NaiveDate) -> Result<Vec<Value>, String> {
    let next = date.succ_opt().unwrap_or(date).to_string();
    let mut out = Vec::new();
    for b in batches {
        let text = |name: &str| -> Result<Option<datafusion::arrow::array::ArrayRef>, String> {
            b.column_by_name(name)
                .map(|c| cast(c, &DataType::Utf8).map_err(|e| e.to_string()))
                .transpose()
        };
        let get = |c: &Option<datafusion::arrow::array::ArrayRef>, r: usize| -> Value {
            match c {
                Some(c) if !c.is_null(r) => Value::from(c.as_string::<i32>().value(r)),
                _ => Value::Null,
            }
        };
        let list = |c: &Option<datafusion::arrow::array::ArrayRef>, r: usize| -> Value {
            match get(c, r) {
                Value::String(s) if !s.is_empty() => {
                    Value::from(s.split(',').map(str::to_string).collect::<Vec<_>>())
                }
                _ => Value::Array(Vec::new()),
            }
        };
        let (uscc, name, colour, previous) = (
            text("uscc")?,
            text("name")?,
            text("colour")?,
            text("previous_colour")?,
        );
        let (added, removed) = (text("rules_added")?, text("rules_removed")?);
        for r in 0..b.num_rows() {
            out.push(json!({
                "uscc": get(&uscc, r),
                "name": get(&name, r),
                "colour": get(&colour, r),
                "previous_colour": get(&previous, r),
                "issued_on": date.to_string(),
                "valid_until": next,
                "rules_added": list(&added, r),
                "rules_removed": list(&removed, r),
            }));
        }
    }
    Ok(out)
}

/// The batches of a verified version: its `changes`, or with `full` every
/// current code. No run id or clock goes into a body, so the same content
/// gives the same bodies and keys on every re-run.
pub async fn batches_of(
    published: &Published,
    full: bool,
    batch_size: u32,
    queued_by: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<OutboxBatch>, String> {
    let m = &published.manifest;
    let (kind, dataset) = if full {
        ("full", "codes")
    } else {
        ("changes", "changes")
    };
    let batches = published
        .read_batches(dataset)
        .await
        .map_err(|e| e.to_string())?;
    let rows = records(&batches, m.business_date)?;
    let size = batch_size.max(1) as usize;
    let batches = rows.len().div_ceil(size) as u32;
    let mut out = Vec::new();
    for (i, chunk) in rows.chunks(size).enumerate() {
        let batch = i as u32 + 1;
        let body = json!({
            "format": PUSH_FORMAT,
            "kind": kind,
            "pipeline": m.pipeline,
            "business_date": m.business_date.to_string(),
            "rules_version": m.rules_version,
            "batch": batch,
            "batches": batches,
            "records": chunk,
        });
        let body = serde_json::to_string(&body).map_err(|e| e.to_string())?;
        let digest = crate::digest::hex(&Sha256::digest(body.as_bytes()));
        out.push(OutboxBatch {
            key: format!(
                "{}-{}-{kind}-{batch:05}-{}",
                m.pipeline,
                m.business_date.format("%Y%m%d"),
                &digest[..16]
            ),
            pipeline: m.pipeline.clone(),
            run_id: queued_by.to_string(),
            business_date: m.business_date,
            kind: kind.to_string(),
            batch,
            batches,
            rows: chunk.len() as u64,
            body,
            queued_at: now,
        });
    }
    Ok(out)
}

/// Why one send failed.
#[derive(Debug)]
enum SendError {
    /// Worth retrying: connection, timeout, 408, 429, 5xx, an unreadable answer.
    Retry {
        message: String,
        retry_after: Option<Duration>,
    },
    /// The platform refused the batch for good.
    Refused { status: u16, response: String },
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Retry { message, .. } => f.write_str(message),
            SendError::Refused { status, response } => {
                write!(f, "refused with HTTP {status}: {response}")
            }
        }
    }
}

fn truncate(text: &str) -> String {
    let mut end = text.len().min(MAX_KEPT_RESPONSE);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// A receipt, checked against the batch it acknowledges.
fn parse_receipt(batch: &OutboxBatch, body: &[u8]) -> Result<(String, u64, Value), SendError> {
    let unusable = |why: String| SendError::Retry {
        message: format!(
            "batch {}: the platform's answer is not a receipt: {why}",
            batch.key
        ),
        retry_after: None,
    };
    let receipt: Value = serde_json::from_slice(body)
        .map_err(|e| unusable(format!("{e}: {}", truncate(&String::from_utf8_lossy(body)))))?;
    let id = receipt
        .get("receipt_id")
        .and_then(Value::as_str)
        .ok_or_else(|| unusable("no receipt_id".into()))?
        .to_string();
    let key = receipt.get("idempotency_key").and_then(Value::as_str);
    let rows = receipt.get("accepted_rows").and_then(Value::as_u64);
    if key != Some(batch.key.as_str()) || rows != Some(batch.rows) {
        return Err(SendError::Refused {
            status: 0,
            response: format!(
                "receipt {id} acknowledges key {key:?} with {rows:?} rows, expected {} with {} rows",
                batch.key, batch.rows
            ),
        });
    }
    Ok((id, batch.rows, receipt))
}

async fn send_once(
    client: &reqwest::Client,
    endpoint: &Endpoint,
    batch: &OutboxBatch,
) -> Result<(String, u64, Value), SendError> {
    // Signing time is wall-clock time whatever clock the run uses: the
    // platform checks it against its own.
    let ts = chrono::Utc::now().timestamp();
    let signature = sign(
        &endpoint.secret,
        &SignedRequest {
            timestamp: ts,
            method: "POST",
            path: &endpoint.request_target(),
            idempotency_key: &batch.key,
            body: batch.body.as_bytes(),
        },
    );
    let response = client
        .post(&endpoint.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(IDEMPOTENCY_HEADER, &batch.key)
        .header(TIMESTAMP_HEADER, ts.to_string())
        .header(SIGNATURE_HEADER, signature)
        .body(batch.body.clone())
        .send()
        .await
        .map_err(|e| SendError::Retry {
            message: format!("batch {}: {}", batch.key, without_url(&e)),
            retry_after: None,
        })?;
    let status = response.status();
    let retry_after = crate::source::http::parse_retry_after(response.headers().get("retry-after"));
    let body = response.bytes().await.map_err(|e| SendError::Retry {
        message: format!(
            "batch {}: HTTP {status}, then the answer broke off: {}",
            batch.key,
            without_url(&e)
        ),
        retry_after: None,
    })?;
    judge(batch, status.as_u16(), retry_after, &body)
}

/// What an answer of the platform means for a batch.
fn judge(
    batch: &OutboxBatch,
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Result<(String, u64, Value), SendError> {
    if (200..300).contains(&status) {
        return parse_receipt(batch, body);
    }
    let text = truncate(&String::from_utf8_lossy(body));
    if status >= 500 || status == 429 || status == 408 {
        return Err(SendError::Retry {
            message: format!("batch {}: HTTP {status}: {text}", batch.key),
            retry_after,
        });
    }
    Err(SendError::Refused {
        status,
        response: text,
    })
}

/// How the push reads one answer of the platform.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// A receipt naming the batch's key and row count.
    Acknowledged {
        /// The platform's receipt id.
        receipt_id: String,
    },
    /// Worth sending again.
    Retry,
    /// Refused for good: the batch is parked.
    Refused,
}

/// Reads an answer (status and body) to the batch `key` of `rows` records:
/// what the push does with every response (exposed for the fuzzers).
pub fn read_answer(key: &str, rows: u64, status: u16, body: &[u8]) -> Answer {
    let batch = OutboxBatch {
        key: key.to_string(),
        pipeline: String::new(),
        run_id: String::new(),
        business_date: NaiveDate::default(),
        kind: String::new(),
        batch: 1,
        batches: 1,
        rows,
        body: String::new(),
        queued_at: chrono::DateTime::default(),
    };
    match judge(&batch, status, None, body) {
        Ok((receipt_id, _, _)) => Answer::Acknowledged { receipt_id },
        Err(SendError::Retry { .. }) => Answer::Retry,
        Err(SendError::Refused { .. }) => Answer::Refused,
    }
}

/// A reqwest error without the URL (which may carry a token in its query).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "the answer broke off"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind} ({detail})")
    }
}

/// Sends every pending batch, oldest first, until the outbox is empty, a
/// batch exhausts its retries (the rest wait for the next run) or the
/// platform refuses our credentials.
pub async fn drain(
    outbox: &Outbox,
    endpoint: &Endpoint,
    clock: &dyn Clock,
    summary: &mut DeliverySummary,
) -> Result<(), OutboxError> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(endpoint.config.timeout_seconds))
        .redirect(reqwest::redirect::Policy::none())
        .build();
    let client = match client {
        Ok(c) => c,
        Err(e) => {
            summary.error = Some(format!("cannot build an HTTP client: {e}"));
            summary.pending = outbox.pending().await?.len() as u32;
            return Ok(());
        }
    };
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(endpoint.config.retry_base_ms))
        .with_max_delay(Duration::from_secs(60))
        .with_max_times(endpoint.config.max_retries as usize)
        .with_total_delay(Some(Duration::from_secs(
            endpoint.config.retry_budget_seconds,
        )))
        .with_jitter();
    for batch in outbox.pending().await? {
        if outbox.is_acknowledged(&batch.key).await? {
            outbox.forget_pending(&batch.key).await?;
            continue;
        }
        let mut attempts = 0u32;
        let result = (|| {
            attempts += 1;
            send_once(&client, endpoint, &batch)
        })
        .retry(backoff)
        .when(|e| matches!(e, SendError::Retry { .. }))
        .adjust(|e, d| match e {
            SendError::Retry {
                retry_after: Some(wait),
                ..
            } => d.map(|_| *wait),
            _ => d,
        })
        .notify(|e, wait| {
            warn!(batch = %batch.key, error = %e, wait_ms = wait.as_millis() as u64, "push retrying");
        })
        .await;
        summary.requests += attempts;
        match result {
            Ok((receipt_id, accepted_rows, receipt)) => {
                outbox
                    .acknowledge(&Acknowledged {
                        key: batch.key.clone(),
                        run_id: batch.run_id.clone(),
                        business_date: batch.business_date,
                        kind: batch.kind.clone(),
                        batch: batch.batch,
                        rows: batch.rows,
                        receipt_id,
                        accepted_rows,
                        receipt,
                        attempts,
                        acknowledged_at: clock.now(),
                    })
                    .await?;
                summary.acknowledged += 1;
                summary.acknowledged_rows += accepted_rows;
                info!(batch = %batch.key, rows = batch.rows, attempts, "acknowledged");
            }
            Err(SendError::Refused { status, response }) => {
                let response = endpoint.redact(&response);
                warn!(batch = %batch.key, status, response = %response, "parked in the dead-letter area");
                let auth = status == 401 || status == 403;
                let message = format!(
                    "batch {} refused with HTTP {status}: {response}{}",
                    batch.key,
                    if auth {
                        "; check the shared secret, the remaining batches wait in the outbox"
                    } else {
                        ""
                    }
                );
                outbox
                    .park(&DeadLetter {
                        batch: batch.clone(),
                        status,
                        response,
                        parked_at: clock.now(),
                    })
                    .await?;
                summary.parked += 1;
                if auth {
                    summary.error = Some(message);
                    break;
                }
                summary.error.get_or_insert(message);
            }
            Err(e @ SendError::Retry { .. }) => {
                let e = endpoint.redact(&e.to_string());
                warn!(batch = %batch.key, error = %e, "retries exhausted; the batch waits in the outbox");
                summary.error = Some(format!(
                    "{e}; retries exhausted after {attempts} request(s), the batch and those after it wait in the outbox for the next run"
                ));
                break;
            }
        }
    }
    summary.pending = outbox.pending().await?.len() as u32;
    Ok(())
}

/// Queues a verified version's batches, then drains the outbox (older
/// pending batches first). Never fails the run: problems are in the summary.
pub async fn deliver(
    outbox: &Outbox,
    endpoint: &Endpoint,
    published: &Published,
    full: bool,
    queued_by: &str,
    clock: &dyn Clock,
) -> DeliverySummary {
    let mut summary = DeliverySummary {
        endpoint: endpoint.display_url(),
        kind: if full { "full" } else { "changes" }.to_string(),
        ..DeliverySummary::default()
    };
    let result: Result<(), String> = async {
        let batches = batches_of(
            published,
            full,
            endpoint.batch_size(),
            queued_by,
            clock.now(),
        )
        .await?;
        summary.batches = batches.len() as u32;
        summary.rows = batches.iter().map(|b| b.rows).sum();
        for b in &batches {
            match outbox.enqueue(b).await.map_err(|e| e.to_string())? {
                Queued::New => summary.queued += 1,
                Queued::AlreadyAcknowledged => summary.already_acknowledged += 1,
                Queued::AlreadyPending | Queued::AlreadyParked => {}
            }
        }
        drain(outbox, endpoint, clock, &mut summary)
            .await
            .map_err(|e| e.to_string())
    }
    .await;
    if let Err(e) = result {
        summary.error = Some(e);
        summary.pending = outbox.pending().await.map_or(0, |p| p.len() as u32);
    }
    summary
}
