//! Where dispositions wait in the warehouse, whichever way they came:
//!
//! ```text
//! warnings/received/<digest>.json          an intake request as received, before anything else
//! warnings/inbox/<warning id>/<seq>.json   one recorded disposition (create-only: once per id + sequence)
//! warnings/dead/<time>-<digest>.json       refused: bad signature, unknown id, disallowed move, conflict
//! warnings/sent/<idempotency key>.json     the warnings a push batch carries (for its acknowledgement)
//! warnings/admitted/dt=<date>.json         what the run of a business date admitted, once
//! warnings/pull/watermark.json             where the pull of the platform's API stopped
//! ```
//!
//! A night applies only what was admitted up to its business date, and an
//! admission is written once (create-only), so re-running any past night
//! reproduces its `warnings` exactly.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::fold::Admitted;
use super::record::Disposition;
use crate::layout::warnings as L;

/// A disposition as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recorded {
    /// The record.
    pub disposition: Disposition,
    /// `intake` (pushed to us) or `pull` (read from the platform's API).
    pub via: String,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
    /// The receipt id given for it (the same on every repeat).
    pub receipt_id: String,
}

/// Something refused, kept for an operator; never applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadDisposition {
    /// Why it was refused.
    pub reason: String,
    /// `intake` or `pull`.
    pub via: String,
    /// The Idempotency-Key it came under, if any.
    pub idempotency_key: Option<String>,
    /// The record or body as received (at most 64 KiB).
    pub received: String,
    /// When.
    pub refused_at: DateTime<Utc>,
}

/// The warnings one push batch carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentBatch {
    /// Its idempotency key.
    pub key: String,
    /// Business date of the version.
    pub business_date: NaiveDate,
    /// Warning id and round of each record.
    pub warnings: Vec<(String, u32)>,
}

/// What one business date's run admitted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Admission {
    /// The business date.
    pub business_date: NaiveDate,
    /// Dispositions admitted (copies of the inbox records).
    pub dispositions: Vec<Disposition>,
    /// Push batches whose acknowledgement was admitted.
    pub acknowledged_batches: Vec<String>,
    /// Warning id and round of every warning in them.
    pub acknowledged: Vec<(String, u32)>,
}

/// Everything admitted up to a business date.
#[derive(Debug, Default)]
pub struct AdmittedSoFar {
    /// Dispositions by warning id.
    pub dispositions: BTreeMap<String, Vec<Admitted>>,
    /// The date each (warning, round) push was acknowledged.
    pub acknowledged: BTreeMap<(String, u32), NaiveDate>,
    /// Admitted tonight.
    pub tonight: usize,
}

/// The warehouse's dispositions.
#[derive(Debug, Clone)]
pub struct Inbox {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
}

/// What recording a disposition did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Recorded now.
    Recorded(String),
    /// Recorded before with the same content: the original receipt id.
    Duplicate(String),
    /// Recorded before with different content.
    Conflict(Box<Recorded>),
}

fn store_error(path: &Path, e: impl std::fmt::Display) -> String {
    format!("{path}: {e}")
}

/// A file-name-safe form of an id (anything but letters, digits, `-`, `_`
/// becomes `_`), with a digest when it changed, so two ids never share a file.
fn safe(id: &str) -> String {
    let clean: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    if clean == id {
        clean
    } else {
        format!(
            "{clean}~{}",
            &crate::digest::hex(&Sha256::digest(id.as_bytes()))[..12]
        )
    }
}

/// A short digest of bytes.
pub fn digest(bytes: &[u8]) -> String {
    crate::digest::hex(&Sha256::digest(bytes))[..16].to_string()
}

impl Inbox {
    /// The inbox of the warehouse at `prefix`.
    pub fn new(store: Arc<dyn ObjectStore>, prefix: Path) -> Self {
        Self { store, prefix }
    }

    /// The store and prefix it lives in.
    pub fn parts(&self) -> (Arc<dyn ObjectStore>, Path) {
        (Arc::clone(&self.store), self.prefix.clone())
    }

    fn path(&self, rel: &str) -> Path {
        crate::store::join(&self.prefix, rel)
    }

    async fn get<T: DeserializeOwned>(&self, path: &Path) -> Result<Option<T>, String> {
        match self.store.get(path).await {
            Ok(r) => {
                let bytes = r.bytes().await.map_err(|e| store_error(path, e))?;
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| store_error(path, format!("not readable: {e}")))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(store_error(path, e)),
        }
    }

    /// Create-only put; `false` when the object existed.
    async fn create(&self, path: &Path, body: Vec<u8>) -> Result<bool, String> {
        let opts = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match self
            .store
            .put_opts(path, PutPayload::from(body), opts)
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(store_error(path, e)),
        }
    }

    async fn list<T: DeserializeOwned>(&self, dir: &str) -> Result<Vec<(Path, T)>, String> {
        let dir = self.path(dir);
        let metas: Vec<_> = self
            .store
            .list(Some(&dir))
            .try_collect()
            .await
            .map_err(|e| store_error(&dir, e))?;
        let mut paths: Vec<Path> = metas.into_iter().map(|m| m.location).collect();
        paths.sort();
        let mut out = Vec::new();
        for p in paths {
            if let Some(v) = self.get(&p).await? {
                out.push((p, v));
            }
        }
        Ok(out)
    }

    /// Keeps a request as it came, before it is judged: a crash after this
    /// loses nothing (the intake replays it on start). Returns its name.
    pub async fn keep_received(&self, received: &Received) -> Result<String, String> {
        let body = serde_json::to_vec(received).map_err(|e| e.to_string())?;
        let name = digest(&body);
        self.create(&self.path(&L::received(&name)), body).await?;
        Ok(name)
    }

    /// Forgets a received request once it is answered.
    pub async fn forget_received(&self, name: &str) -> Result<(), String> {
        let path = self.path(&L::received(name));
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(store_error(&path, e)),
        }
    }

    /// Requests kept but never answered (the process stopped in between).
    pub async fn unanswered(&self) -> Result<Vec<(String, Received)>, String> {
        Ok(self
            .list::<Received>(L::RECEIVED_DIR)
            .await?
            .into_iter()
            .filter_map(|(p, r)| Some((p.filename()?.strip_suffix(".json")?.to_string(), r)))
            .collect())
    }

    /// Records a disposition once per warning id and sequence.
    pub async fn record(
        &self,
        d: &Disposition,
        via: &str,
        now: DateTime<Utc>,
    ) -> Result<Outcome, String> {
        let path = self.path(&L::disposition(&safe(&d.warning_id), d.sequence));
        let receipt_id = format!("d-{}", digest(d.key().as_bytes()));
        let rec = Recorded {
            disposition: d.clone(),
            via: via.to_string(),
            recorded_at: now,
            receipt_id: receipt_id.clone(),
        };
        let body = serde_json::to_vec_pretty(&rec).map_err(|e| e.to_string())?;
        if self.create(&path, body).await? {
            return Ok(Outcome::Recorded(receipt_id));
        }
        let existing: Recorded = self
            .get(&path)
            .await?
            .ok_or_else(|| store_error(&path, "vanished after it existed"))?;
        if existing.disposition == *d {
            Ok(Outcome::Duplicate(existing.receipt_id))
        } else {
            Ok(Outcome::Conflict(Box::new(existing)))
        }
    }

    /// The recorded dispositions of one warning, by sequence.
    pub async fn of_warning(&self, warning_id: &str) -> Result<Vec<Recorded>, String> {
        let mut v: Vec<Recorded> = self
            .list::<Recorded>(&L::inbox_of(&safe(warning_id)))
            .await?
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        v.sort_by_key(|r| r.disposition.sequence);
        Ok(v)
    }

    /// Every recorded disposition.
    pub async fn all(&self) -> Result<Vec<Recorded>, String> {
        Ok(self
            .list::<Recorded>(L::INBOX_DIR)
            .await?
            .into_iter()
            .map(|(_, r)| r)
            .collect())
    }

    /// Parks something refused.
    pub async fn park(&self, dead: &DeadDisposition) -> Result<(), String> {
        let body = serde_json::to_vec_pretty(dead).map_err(|e| e.to_string())?;
        let name = format!(
            "{}-{}",
            dead.refused_at.format("%Y%m%dT%H%M%S%.3fZ"),
            digest(&body)
        );
        self.create(&self.path(&L::dead(&name)), body)
            .await
            .map(|_| ())
    }

    /// Everything refused so far.
    pub async fn dead_letters(&self) -> Result<Vec<DeadDisposition>, String> {
        Ok(self
            .list::<DeadDisposition>(L::DEAD_DIR)
            .await?
            .into_iter()
            .map(|(_, d)| d)
            .collect())
    }

    /// Notes which warnings a push batch carries.
    pub async fn note_sent(&self, sent: &SentBatch) -> Result<(), String> {
        let body = serde_json::to_vec_pretty(sent).map_err(|e| e.to_string())?;
        self.create(&self.path(&L::sent(&safe(&sent.key))), body)
            .await
            .map(|_| ())
    }

    async fn admissions(&self) -> Result<Vec<Admission>, String> {
        Ok(self
            .list::<Admission>(L::ADMITTED_DIR)
            .await?
            .into_iter()
            .map(|(_, a)| a)
            .collect())
    }

    /// Admits for `date` what is new, once: the first run of a date later
    /// than every admitted one takes every disposition recorded and every
    /// push acknowledged since; a re-run reads its date's admission back;
    /// a run of an earlier date that has none admits nothing. Returns all
    /// that is admitted up to `date`.
    pub async fn admit(
        &self,
        date: NaiveDate,
        outbox: &crate::deliver::Outbox,
    ) -> Result<AdmittedSoFar, String> {
        let mut admissions = self.admissions().await?;
        let latest = admissions.iter().map(|a| a.business_date).max();
        let tonight = if let Some(a) = admissions.iter().find(|a| a.business_date == date) {
            a.dispositions.len() + a.acknowledged.len()
        } else if latest.is_none_or(|l| l < date) {
            let seen: BTreeSet<String> = admissions
                .iter()
                .flat_map(|a| a.dispositions.iter().map(Disposition::key))
                .collect();
            let acked: BTreeSet<&String> = admissions
                .iter()
                .flat_map(|a| a.acknowledged_batches.iter())
                .collect();
            let mut new = Admission {
                business_date: date,
                ..Admission::default()
            };
            for r in self.all().await? {
                if !seen.contains(&r.disposition.key()) {
                    new.dispositions.push(r.disposition);
                }
            }
            for (_, sent) in self.list::<SentBatch>(L::SENT_DIR).await? {
                if !acked.contains(&sent.key)
                    && outbox
                        .is_acknowledged(&sent.key)
                        .await
                        .map_err(|e| e.to_string())?
                {
                    new.acknowledged_batches.push(sent.key.clone());
                    new.acknowledged.extend(sent.warnings.iter().cloned());
                }
            }
            let body = serde_json::to_vec_pretty(&new).map_err(|e| e.to_string())?;
            let path = self.path(&L::admitted(date));
            if !self.create(&path, body).await? {
                // Another attempt of the date admitted first: take its admission.
                admissions = self.admissions().await?;
            } else {
                admissions.push(new);
            }
            admissions
                .iter()
                .find(|a| a.business_date == date)
                .map_or(0, |a| a.dispositions.len() + a.acknowledged.len())
        } else {
            0
        };
        let mut out = AdmittedSoFar {
            tonight,
            ..AdmittedSoFar::default()
        };
        admissions.sort_by_key(|a| a.business_date);
        for a in admissions.iter().filter(|a| a.business_date <= date) {
            for d in &a.dispositions {
                out.dispositions
                    .entry(d.warning_id.clone())
                    .or_default()
                    .push(Admitted {
                        disposition: d.clone(),
                        on: a.business_date,
                    });
            }
            for k in &a.acknowledged {
                out.acknowledged.entry(k.clone()).or_insert(a.business_date);
            }
        }
        Ok(out)
    }
}

/// An intake request as it came.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Received {
    /// Idempotency-Key.
    pub idempotency_key: String,
    /// The body, as text.
    pub body: String,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
}
