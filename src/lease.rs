//! The run lock: a lease in the warehouse, so two schedulers on two
//! machines never run the same pipeline and business date at once, and a
//! holder that dies stops blocking when its lease expires.
//!
//! `locks/<pipeline>/dt=<date>/<generation>.json`, generations numbered
//! from 1. The highest generation is the lease. Taking it writes the next
//! generation with a create-only put, so of two contenders exactly one
//! wins; only the holder rewrites its own generation (to renew or
//! release). A holder that finds a newer generation has lost the lease.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

/// What a lease file says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaseInfo {
    /// Who holds it: host, process and a random tag.
    pub holder: String,
    /// What it is for, e.g. `nightly 2026-11-28`.
    pub purpose: String,
    /// Generation, from 1.
    pub generation: u64,
    /// When it was taken.
    pub acquired_at: DateTime<Utc>,
    /// When it lapses unless renewed.
    pub expires_at: DateTime<Utc>,
    /// Given back by its holder.
    pub released: bool,
    /// The process that wrote it, as far as it could tell (absent in
    /// leases written before it was recorded: such a holder is waited out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessIdentity>,
}

impl LeaseInfo {
    fn live(&self, now: DateTime<Utc>) -> bool {
        !self.released
            && self.expires_at > now
            && !self
                .process
                .as_ref()
                .is_some_and(ProcessIdentity::certainly_gone)
    }
}

/// Who a lease holder is, enough to tell for certain that it died: a host
/// name is not unique (containers share one, and PID namespaces reuse
/// process ids), so a holder counts as gone only on this very kernel
/// (boot id), in this PID namespace, with its process id unused or used by
/// a process started at another instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessIdentity {
    /// Random, drawn once per process: two holders never share it.
    pub instance: String,
    /// Host name.
    pub host: String,
    /// Process id, in its PID namespace.
    pub pid: u32,
    /// The PID namespace (`/proc/self/ns/pid`, e.g. `pid:[4026531836]`).
    #[serde(default)]
    pub pid_namespace: Option<String>,
    /// The kernel's boot id (`/proc/sys/kernel/random/boot_id`).
    #[serde(default)]
    pub boot_id: Option<String>,
    /// The process's start, in clock ticks after boot (`/proc/<pid>/stat`).
    #[serde(default)]
    pub start_ticks: Option<u64>,
}

fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
}

/// When process `pid` started (field 22 of `/proc/<pid>/stat`, after the
/// parenthesized command name, which may itself hold spaces and parentheses).
fn start_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

impl ProcessIdentity {
    /// This process.
    pub fn current() -> Self {
        static INSTANCE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let instance = INSTANCE.get_or_init(|| format!("{:016x}", rand::random::<u64>()));
        Self {
            instance: instance.clone(),
            host: host_name(),
            pid: std::process::id(),
            pid_namespace: std::fs::read_link("/proc/self/ns/pid")
                .ok()
                .map(|p| p.to_string_lossy().into_owned()),
            boot_id: std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
                .ok()
                .map(|b| b.trim().to_string()),
            start_ticks: start_ticks("self"),
        }
    }

    /// The holder certainly no longer runs: same host, same kernel boot,
    /// same PID namespace, another instance, and its process id is unused
    /// or belongs to a process started at another instant. Anything less
    /// certain (another namespace, a field that could not be read) waits
    /// for the lease to lapse.
    pub fn certainly_gone(&self) -> bool {
        let here = Self::current();
        let known = |a: &Option<String>, b: &Option<String>| a.is_some() && a == b;
        if self.instance == here.instance
            || self.host != here.host
            || !known(&self.boot_id, &here.boot_id)
            || !known(&self.pid_namespace, &here.pid_namespace)
        {
            return false;
        }
        let pid = self.pid.to_string();
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            return true;
        }
        // The id was reused by a process started at another instant.
        matches!((self.start_ticks, start_ticks(&pid)), (Some(then), Some(now)) if then != now)
    }
}

/// Why a lease could not be taken or kept.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// Someone else holds it.
    #[error("{} is already running: held by {} since {}, until {} unless renewed", .0.purpose, .0.holder, .0.acquired_at.to_rfc3339(), .0.expires_at.to_rfc3339())]
    Held(LeaseInfo),
    /// It was taken over after it lapsed.
    #[error("the lease of {} was taken over by {} (generation {})", .0.purpose, .0.holder, .0.generation)]
    Lost(LeaseInfo),
    /// The warehouse failed.
    #[error("lock {path}: {message}")]
    Store {
        /// The lock file or folder.
        path: String,
        /// What failed.
        message: String,
    },
}

/// A lease held by this process.
#[derive(Debug, Clone)]
pub struct Lease {
    store: Arc<dyn ObjectStore>,
    dir: Path,
    info: LeaseInfo,
    ttl: Duration,
}

fn store_err(path: &Path, e: impl std::fmt::Display) -> LeaseError {
    LeaseError::Store {
        path: path.to_string(),
        message: e.to_string(),
    }
}

/// This process as a lease holder: host, process id and its random
/// instance id (the same for the life of the process).
pub fn holder_id() -> String {
    let me = ProcessIdentity::current();
    format!("{}:{}:{}", me.host, me.pid, me.instance)
}

fn later(now: DateTime<Utc>, ttl: Duration) -> DateTime<Utc> {
    chrono::TimeDelta::from_std(ttl)
        .ok()
        .and_then(|ttl| now.checked_add_signed(ttl))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn lease_path(dir: &Path, generation: u64) -> Path {
    dir.clone().join(format!("{generation:010}.json"))
}

async fn newest(store: &Arc<dyn ObjectStore>, dir: &Path) -> Result<Option<LeaseInfo>, LeaseError> {
    let metas: Vec<_> = store
        .list(Some(dir))
        .try_collect()
        .await
        .map_err(|e| store_err(dir, e))?;
    let Some(last) = metas
        .into_iter()
        .filter(|m| m.location.extension() == Some("json"))
        .max_by(|a, b| a.location.as_ref().cmp(b.location.as_ref()))
    else {
        return Ok(None);
    };
    let bytes = store
        .get(&last.location)
        .await
        .map_err(|e| store_err(&last.location, e))?
        .bytes()
        .await
        .map_err(|e| store_err(&last.location, e))?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| store_err(&last.location, format!("not a lease: {e}")))
}

impl Lease {
    /// The lock folder of a pipeline and business date.
    pub fn dir(prefix: &Path, pipeline: &str, date: NaiveDate) -> Path {
        crate::store::join(prefix, &crate::layout::lease_dir(pipeline, date))
    }

    /// Takes the lease of `dir` for `ttl` unless someone holds it.
    pub async fn acquire(
        store: Arc<dyn ObjectStore>,
        dir: Path,
        purpose: &str,
        holder: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<Self, LeaseError> {
        let current = newest(&store, &dir).await?;
        if let Some(info) = &current
            && info.live(now)
        {
            return Err(LeaseError::Held(info.clone()));
        }
        let info = LeaseInfo {
            holder: holder.to_string(),
            purpose: purpose.to_string(),
            generation: current.map_or(1, |c| c.generation + 1),
            acquired_at: now,
            expires_at: later(now, ttl),
            released: false,
            process: Some(ProcessIdentity::current()),
        };
        let path = lease_path(&dir, info.generation);
        let body = serde_json::to_vec_pretty(&info).map_err(|e| store_err(&path, e))?;
        let opts = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match store.put_opts(&path, PutPayload::from(body), opts).await {
            Ok(_) => Ok(Self {
                store,
                dir,
                info,
                ttl,
            }),
            Err(object_store::Error::AlreadyExists { .. }) => {
                // Another contender took this generation first.
                match newest(&store, &dir).await? {
                    Some(winner) => Err(LeaseError::Held(winner)),
                    None => Err(store_err(&path, "lost a race for the lease")),
                }
            }
            Err(e) => Err(store_err(&path, e)),
        }
    }

    /// What this lease says.
    pub fn info(&self) -> &LeaseInfo {
        &self.info
    }

    /// How long a renewal extends it.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    async fn check_not_taken(&self) -> Result<(), LeaseError> {
        let next = lease_path(&self.dir, self.info.generation + 1);
        match self.store.head(&next).await {
            Ok(_) => match newest(&self.store, &self.dir).await? {
                Some(taker) => Err(LeaseError::Lost(taker)),
                None => Err(store_err(&next, "lease vanished")),
            },
            Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(store_err(&next, e)),
        }
    }

    async fn write(&self) -> Result<(), LeaseError> {
        let path = lease_path(&self.dir, self.info.generation);
        let body = serde_json::to_vec_pretty(&self.info).map_err(|e| store_err(&path, e))?;
        self.store
            .put(&path, PutPayload::from(body))
            .await
            .map(|_| ())
            .map_err(|e| store_err(&path, e))
    }

    /// Extends the lease by its ttl from `now`; fails if it was taken over.
    pub async fn renew(&mut self, now: DateTime<Utc>) -> Result<(), LeaseError> {
        self.check_not_taken().await?;
        self.info.expires_at = later(now, self.ttl);
        self.write().await
    }

    /// Gives the lease back (unless it was taken over meanwhile).
    pub async fn release(mut self) -> Result<(), LeaseError> {
        self.check_not_taken().await?;
        self.info.released = true;
        self.write().await
    }
}
