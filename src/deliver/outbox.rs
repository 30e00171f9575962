//! The outbox in the warehouse: every batch waits in `outbox/pending/`
//! until the platform acknowledges it (`outbox/acknowledged/`, with the
//! receipt) or refuses it for good (`outbox/dead/`, with the response).
//! One JSON file per batch, named by its idempotency key.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A batch waiting for the platform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxBatch {
    /// `Idempotency-Key`: identical on every retry and every re-run of the
    /// same business date with the same content.
    pub key: String,
    /// Pipeline.
    pub pipeline: String,
    /// The run that queued it.
    pub run_id: String,
    /// Business date of the version it came from.
    pub business_date: NaiveDate,
    /// `changes` or `full`.
    pub kind: String,
    /// Batch number, from 1.
    pub batch: u32,
    /// Batches of this kind for the date.
    pub batches: u32,
    /// Records in the body.
    pub rows: u64,
    /// The JSON body exactly as sent.
    pub body: String,
    /// When it was queued.
    pub queued_at: DateTime<Utc>,
}

/// An acknowledged batch with the platform's receipt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Acknowledged {
    /// Idempotency key.
    pub key: String,
    /// The run that queued it.
    pub run_id: String,
    /// Business date.
    pub business_date: NaiveDate,
    /// Kind.
    pub kind: String,
    /// Batch number.
    pub batch: u32,
    /// Records sent.
    pub rows: u64,
    /// The platform's receipt id.
    pub receipt_id: String,
    /// Records the platform says it accepted.
    pub accepted_rows: u64,
    /// The receipt as returned.
    pub receipt: serde_json::Value,
    /// Requests it took (retries included).
    pub attempts: u32,
    /// When the receipt arrived.
    pub acknowledged_at: DateTime<Utc>,
}

/// A batch the platform refused for good.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The batch, body included, so it can be queued again.
    pub batch: OutboxBatch,
    /// HTTP status, 0 when the answer itself was unusable.
    pub status: u16,
    /// The response (at most 4 KiB), or what was wrong with it.
    pub response: String,
    /// When it was parked.
    pub parked_at: DateTime<Utc>,
}

/// What queuing a batch found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queued {
    /// Newly queued.
    New,
    /// Already waiting.
    AlreadyPending,
    /// Already acknowledged: nothing to send.
    AlreadyAcknowledged,
    /// Parked in the dead-letter area; `qinglian deliver --requeue` sends it again.
    AlreadyParked,
}

/// The outbox of a warehouse.
#[derive(Debug, Clone)]
pub struct Outbox {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
}

/// Why the outbox could not be used.
#[derive(Debug, thiserror::Error)]
#[error("outbox {path}: {message}")]
pub struct OutboxError {
    path: String,
    message: String,
}

impl Outbox {
    /// The outbox under a warehouse prefix.
    pub fn new(store: Arc<dyn ObjectStore>, prefix: Path) -> Self {
        Self { store, prefix }
    }

    fn path(&self, area: &str, key: &str) -> Path {
        crate::store::join(&self.prefix, &crate::layout::outbox_entry(area, key))
    }

    fn err(path: &Path, e: impl std::fmt::Display) -> OutboxError {
        OutboxError {
            path: path.to_string(),
            message: e.to_string(),
        }
    }

    async fn exists(&self, path: &Path) -> Result<bool, OutboxError> {
        match self.store.head(path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(Self::err(path, e)),
        }
    }

    async fn put<T: Serialize>(
        &self,
        path: &Path,
        value: &T,
        create: bool,
    ) -> Result<(), OutboxError> {
        let body = serde_json::to_vec_pretty(value).map_err(|e| Self::err(path, e))?;
        let opts = PutOptions {
            mode: if create {
                PutMode::Create
            } else {
                PutMode::Overwrite
            },
            ..PutOptions::default()
        };
        match self
            .store
            .put_opts(path, PutPayload::from(body), opts)
            .await
        {
            Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
            Err(e) => Err(Self::err(path, e)),
        }
    }

    async fn delete(&self, path: &Path) -> Result<(), OutboxError> {
        match self.store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(Self::err(path, e)),
        }
    }

    async fn read_all<T: DeserializeOwned>(&self, area: &str) -> Result<Vec<T>, OutboxError> {
        let dir = crate::store::join(&self.prefix, &crate::layout::outbox_area(area));
        let metas: Vec<_> = self
            .store
            .list(Some(&dir))
            .try_collect()
            .await
            .map_err(|e| Self::err(&dir, e))?;
        let mut out = Vec::new();
        for m in metas {
            if m.location.extension() != Some("json") {
                continue;
            }
            let bytes = self
                .store
                .get(&m.location)
                .await
                .map_err(|e| Self::err(&m.location, e))?
                .bytes()
                .await
                .map_err(|e| Self::err(&m.location, e))?;
            out.push(serde_json::from_slice(&bytes).map_err(|e| Self::err(&m.location, e))?);
        }
        Ok(out)
    }

    /// Queues a batch unless the outbox already knows its key.
    pub async fn enqueue(&self, batch: &OutboxBatch) -> Result<Queued, OutboxError> {
        if self.exists(&self.path("acknowledged", &batch.key)).await? {
            return Ok(Queued::AlreadyAcknowledged);
        }
        if self.exists(&self.path("dead", &batch.key)).await? {
            return Ok(Queued::AlreadyParked);
        }
        let pending = self.path("pending", &batch.key);
        if self.exists(&pending).await? {
            return Ok(Queued::AlreadyPending);
        }
        self.put(&pending, batch, true).await?;
        Ok(Queued::New)
    }

    /// Batches waiting, oldest business date first, then by run and number.
    pub async fn pending(&self) -> Result<Vec<OutboxBatch>, OutboxError> {
        let mut all: Vec<OutboxBatch> = self.read_all("pending").await?;
        all.sort_by(|a, b| {
            (a.business_date, &a.run_id, &a.kind, a.batch).cmp(&(
                b.business_date,
                &b.run_id,
                &b.kind,
                b.batch,
            ))
        });
        Ok(all)
    }

    /// Whether a key is acknowledged already.
    pub async fn is_acknowledged(&self, key: &str) -> Result<bool, OutboxError> {
        self.exists(&self.path("acknowledged", key)).await
    }

    /// Records a receipt; the batch leaves `pending/` after the receipt is
    /// stored (a crash in between only sends it once more, and the platform
    /// answers a repeated key with the original receipt).
    pub async fn acknowledge(&self, ack: &Acknowledged) -> Result<(), OutboxError> {
        self.put(&self.path("acknowledged", &ack.key), ack, false)
            .await?;
        self.delete(&self.path("pending", &ack.key)).await
    }

    /// Drops a pending copy of a batch known to be acknowledged.
    pub async fn forget_pending(&self, key: &str) -> Result<(), OutboxError> {
        self.delete(&self.path("pending", key)).await
    }

    /// Parks a batch the platform refused for good.
    pub async fn park(&self, dead: &DeadLetter) -> Result<(), OutboxError> {
        self.put(&self.path("dead", &dead.batch.key), dead, false)
            .await?;
        self.delete(&self.path("pending", &dead.batch.key)).await
    }

    /// Every receipt.
    pub async fn acknowledged(&self) -> Result<Vec<Acknowledged>, OutboxError> {
        self.read_all("acknowledged").await
    }

    /// Every dead letter.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, OutboxError> {
        self.read_all("dead").await
    }

    /// Moves every dead letter back to `pending/`; returns how many.
    pub async fn requeue_dead(&self) -> Result<usize, OutboxError> {
        let dead = self.dead_letters().await?;
        for d in &dead {
            self.put(&self.path("pending", &d.batch.key), &d.batch, false)
                .await?;
            self.delete(&self.path("dead", &d.batch.key)).await?;
        }
        Ok(dead.len())
    }
}
