//! The run ledger and feed watermarks: the warehouse's memory of what every
//! run read, landed and quarantined, and of each feed's last good snapshot.
//!
//! ```text
//! ledger/runs/dt=<business_date>/<run_id>.json   one record per run
//! state/feeds/<feed>.json                        last good snapshot and watermark
//! ```
//!
//! Every feed of every run satisfies `read = landed + quarantined +
//! duplicates + tombstones`; [`FeedRecord::reconciles`] is the check. A
//! feed that merges (`append`, `upsert`) also satisfies `rows =
//! carried_over + landed`: its snapshot is the previous one's rows kept
//! plus what the delivery landed.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

/// What happened to a feed in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedStatus {
    /// Landed and passed its guards: the feed's new snapshot.
    Landed,
    /// The source said nothing changed (HTTP 304, or every object listed
    /// as the last good snapshot recorded it): the last snapshot is carried
    /// forward without being read.
    Unchanged,
    /// An optional feed that failed or tripped a guard: held at its last
    /// good snapshot, the run degraded.
    Held,
    /// A required feed that failed or tripped a guard: the run failed.
    Failed,
}

/// One guard's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardResult {
    /// Guard name (`min_rows`, `max_churn` …).
    pub name: String,
    /// Measured value.
    pub value: f64,
    /// Configured limit.
    pub limit: f64,
    /// Whether it passed.
    pub passed: bool,
}

/// Per-feed figures of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedRecord {
    /// Feed name.
    pub feed: String,
    /// Outcome.
    pub status: FeedStatus,
    /// Whether the feed is required.
    pub required: bool,
    /// Records read from the source.
    pub read: u64,
    /// Canonical rows landed.
    pub landed: u64,
    /// Rows quarantined.
    pub quarantined: u64,
    /// Exact duplicate rows dropped.
    pub duplicates: u64,
    /// Quarantined rows by reason code.
    pub quarantine_reasons: BTreeMap<String, u64>,
    /// Rows whose key is a valid USCC (or an org code resolved to one).
    pub keyed: u64,
    /// Keyed rows whose USCC is in the registry.
    pub in_registry: u64,
    /// Files or pages read.
    pub units: u64,
    /// Requests retried.
    #[serde(default)]
    pub retries: u64,
    /// The count the source declared, if it declares one.
    #[serde(default)]
    pub declared: Option<u64>,
    /// Observations that did not stop the feed (a repeated page …).
    #[serde(default)]
    pub notes: Vec<String>,
    /// Raw bytes read.
    pub bytes: u64,
    /// Wall time of the feed, milliseconds.
    pub duration_ms: u64,
    /// Guards evaluated.
    pub guards: Vec<GuardResult>,
    /// Watermark before the run.
    pub watermark_before: Option<String>,
    /// Watermark after the run (unchanged unless the feed landed).
    pub watermark_after: Option<String>,
    /// The landed snapshot scoring reads for this feed: this run's when it
    /// landed, the last good one otherwise.
    pub snapshot: Option<String>,
    /// Mapped fields no record carried.
    pub missing_fields: Vec<String>,
    /// Delivered fields the mapping does not read.
    pub unmapped_fields: Vec<String>,
    /// The error that stopped the feed, if one did.
    pub error: Option<String>,
    /// The same counts per part of the feed, in the order of its parts
    /// (one entry for a feed of one part).
    #[serde(default)]
    pub parts: Vec<PartRecord>,
    /// Rows of the snapshot the run formed (for a full dump, `landed`).
    #[serde(default)]
    pub rows: u64,
    /// Tombstones read (each deletes its record id, when the snapshot had it).
    #[serde(default)]
    pub tombstones: u64,
    /// Landed rows that replaced a record of the previous snapshot (upsert).
    #[serde(default)]
    pub upserted: u64,
    /// Records of the previous snapshot a tombstone deleted.
    #[serde(default)]
    pub deleted: u64,
    /// Rows of the previous snapshot kept in the new one.
    #[serde(default)]
    pub carried_over: u64,
}

/// Per-part figures of one feed in one run: `read = landed + quarantined +
/// duplicates` holds for each part as for the feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartRecord {
    /// The part's name (the first part is named after the feed).
    pub name: String,
    /// Records read from the part's source.
    pub read: u64,
    /// Its rows landed.
    pub landed: u64,
    /// Its rows quarantined.
    pub quarantined: u64,
    /// Its exact duplicates dropped (of its own rows or of another part's;
    /// for `append`, events already in the snapshot).
    pub duplicates: u64,
    /// Its merge strategy (`snapshot`, `append`, `upsert`).
    #[serde(default = "snapshot_merge")]
    pub merge: String,
    /// The part's source said nothing changed: its rows carried forward unread.
    #[serde(default)]
    pub unchanged: bool,
    /// Its tombstones read.
    #[serde(default)]
    pub tombstones: u64,
    /// Its landed rows that replaced a record of the previous snapshot.
    #[serde(default)]
    pub upserted: u64,
    /// Its records of the previous snapshot deleted by a tombstone.
    #[serde(default)]
    pub deleted: u64,
    /// Its rows of the previous snapshot kept.
    #[serde(default)]
    pub carried_over: u64,
}

fn snapshot_merge() -> String {
    "snapshot".into()
}

impl PartRecord {
    /// A part's record before anything was read.
    pub fn starting(name: &str, merge: &str) -> Self {
        PartRecord {
            name: name.to_string(),
            read: 0,
            landed: 0,
            quarantined: 0,
            duplicates: 0,
            merge: merge.to_string(),
            unchanged: false,
            tombstones: 0,
            upserted: 0,
            deleted: 0,
            carried_over: 0,
        }
    }

    /// Whether the part's counts add up.
    pub fn reconciles(&self) -> bool {
        self.read == self.landed + self.quarantined + self.duplicates + self.tombstones
    }
}

impl FeedRecord {
    /// A feed's record before anything happened: nothing read, failed
    /// until it lands.
    pub fn starting(feed: &str, required: bool) -> Self {
        FeedRecord {
            feed: feed.to_string(),
            status: FeedStatus::Failed,
            required,
            read: 0,
            landed: 0,
            quarantined: 0,
            duplicates: 0,
            quarantine_reasons: BTreeMap::new(),
            keyed: 0,
            in_registry: 0,
            units: 0,
            retries: 0,
            declared: None,
            notes: Vec::new(),
            bytes: 0,
            duration_ms: 0,
            guards: Vec::new(),
            watermark_before: None,
            watermark_after: None,
            snapshot: None,
            missing_fields: Vec::new(),
            unmapped_fields: Vec::new(),
            parts: Vec::new(),
            error: None,
            rows: 0,
            tombstones: 0,
            upserted: 0,
            deleted: 0,
            carried_over: 0,
        }
    }

    /// `read = landed + quarantined + duplicates + tombstones`, for the
    /// feed and each part; a merged snapshot's rows are its carried-over
    /// rows plus the landed ones.
    pub fn reconciles(&self) -> bool {
        self.read == self.landed + self.quarantined + self.duplicates + self.tombstones
            && self.parts.iter().all(PartRecord::reconciles)
            && (self.parts.is_empty()
                || self.parts.iter().map(|p| p.read).sum::<u64>() == self.read)
            && (self.carried_over == 0 || self.rows == self.carried_over + self.landed)
    }
}

/// The outcome of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Still going (or its process died: see `finished_at`).
    Running,
    /// Every feed landed.
    Succeeded,
    /// Completed with optional feeds held at their last snapshot.
    Degraded,
    /// A required feed failed; nothing downstream ran.
    Failed,
    /// Stopped at a stage boundary (shutdown, time limit, lost lease)
    /// before publishing; the next run of the date starts cleanly.
    Interrupted,
}

/// One run's ledger record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// `<pipeline>-<yyyymmdd>-<attempt>`.
    pub run_id: String,
    /// Pipeline run.
    pub pipeline: String,
    /// The business date processed.
    pub business_date: NaiveDate,
    /// Attempt number for the date, from 1.
    pub attempt: u32,
    /// Start (UTC).
    pub started_at: DateTime<Utc>,
    /// End (UTC), `None` while running.
    pub finished_at: Option<DateTime<Utc>>,
    /// Outcome.
    pub status: RunStatus,
    /// Per-feed figures, in processing order.
    pub feeds: Vec<FeedRecord>,
    /// What scoring produced, when it ran.
    #[serde(default)]
    pub scoring: Option<crate::ledger::ScoreSummary>,
    /// What the warnings stage did, when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warnings: Option<WarningsSummary>,
    /// The manifest the run committed (relative to the warehouse), none
    /// when it published nothing.
    #[serde(default)]
    pub manifest: Option<String>,
    /// Delivery to the oversight platform, when pushing is configured.
    #[serde(default)]
    pub delivery: Option<crate::ledger::DeliverySummary>,
    /// The copy to the platform's bucket, when configured.
    #[serde(default)]
    pub drop: Option<crate::ledger::DropSummary>,
    /// Wall time per stage (ingest, score, publish, deliver, drop), ms.
    #[serde(default)]
    pub stage_ms: BTreeMap<String, u64>,
    /// Peak memory and bytes read and written per stage (Linux only).
    #[serde(default)]
    pub stage_usage: BTreeMap<String, crate::usage::StageUsage>,
    /// The run's HTML report, relative to the warehouse.
    #[serde(default)]
    pub report: Option<String>,
    /// What failed the run, if anything.
    pub error: Option<String>,
}

/// A feed's last good snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedState {
    /// Feed name.
    pub feed: String,
    /// Run that landed it.
    pub run_id: String,
    /// Its business date.
    pub business_date: NaiveDate,
    /// Path of its canonical data, relative to the warehouse.
    pub snapshot: String,
    /// Rows in it.
    pub rows: u64,
    /// The source watermark (ETag, timestamp) to resume from.
    pub watermark: Option<String>,
    /// When it landed.
    pub landed_at: DateTime<Utc>,
    /// What each part's delivery was, for the next run to tell an
    /// unchanged delivery: its watermark, the objects listed, its config.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<PartState>,
}

/// One part of a feed's last good snapshot: what its next delivery is
/// compared with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartState {
    /// The part's name.
    pub name: String,
    /// Its own watermark (an incremental API's `since`, an ETag).
    #[serde(default)]
    pub watermark: Option<String>,
    /// The objects an object-store part listed (location, size, ETag,
    /// last-modified).
    #[serde(default)]
    pub objects: Vec<crate::source::ListedObject>,
    /// Digest of the part's configuration and schema: a changed mapping
    /// re-reads even unchanged objects.
    #[serde(default)]
    pub config: String,
    /// The part's rows in the snapshot.
    #[serde(default)]
    pub rows: u64,
}

/// What a run records about its scoring.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScoreSummary {
    /// Content hash of the rules and bands.
    pub rules_version: String,
    /// Profiles written (one per registered organization).
    pub profiles: u64,
    /// Hits written.
    pub hits: u64,
    /// Organizations per colour (`none` for deregistered ones).
    pub colours: BTreeMap<String, u64>,
    /// Records per feed that matched no registered organization.
    pub unmatched: BTreeMap<String, u64>,
    /// Feeds older than their allowed age.
    pub stale: Vec<String>,
    /// Paths of the datasets written, relative to the warehouse.
    pub outputs: BTreeMap<String, String>,
    /// Colour changes against the previous business date.
    #[serde(default)]
    pub changes: u64,
    /// Unregistered subjects (valid USCCs no registry row has) in the
    /// night's records: rows of the `leads` dataset.
    #[serde(default)]
    pub leads: u64,
    /// Leads the previous published version did not list.
    #[serde(default)]
    pub new_leads: u64,
    /// Where the scoring queries ran: `local`, or `ballista df://host:port`.
    #[serde(default)]
    pub engine: String,
}

/// What a run's delivery did, kept in its ledger record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeliverySummary {
    /// The endpoint (no credentials, no query).
    pub endpoint: String,
    /// `changes`, or `full` with `--full`.
    pub kind: String,
    /// Batches of this run's version.
    pub batches: u32,
    /// Records in them.
    pub rows: u64,
    /// Batches newly queued by this run.
    pub queued: u32,
    /// Batches of this run acknowledged by an earlier run (a re-run with
    /// the same content sends nothing twice).
    pub already_acknowledged: u32,
    /// Requests made by this run (retries included), for any run's batches.
    pub requests: u32,
    /// Batches acknowledged during this run (older pending ones included).
    pub acknowledged: u32,
    /// Records in them, as acknowledged by the platform.
    pub acknowledged_rows: u64,
    /// Batches parked in the dead-letter area during this run.
    pub parked: u32,
    /// Batches still waiting in the outbox after this run.
    pub pending: u32,
    /// Why delivery stopped early, if it did.
    pub error: Option<String>,
}

impl DeliverySummary {
    /// Everything queued was acknowledged and nothing was parked.
    pub fn complete(&self) -> bool {
        self.pending == 0 && self.parked == 0 && self.error.is_none()
    }
}

/// Where a job's schedule stands, kept in the warehouse
/// (`state/jobs/<job>.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobState {
    /// The job.
    pub job: String,
    /// Every tick up to this instant has been planned.
    pub planned_through: DateTime<Utc>,
}

/// What the warnings stage of a run did (`crate::warnings`), kept in its record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WarningsSummary {
    /// Warnings in the dataset (every warning ever raised).
    pub total: u64,
    /// Raised tonight.
    pub raised: u64,
    /// Reopened tonight.
    pub reopened: u64,
    /// Dispositions and acknowledgements admitted tonight.
    pub admitted: u64,
    /// Dispositions applied tonight.
    pub applied: u64,
    /// Warnings by state.
    pub by_state: BTreeMap<String, u64>,
    /// Overdue warnings (id, kind, working days), most overdue first.
    pub overdue: Vec<(String, String, u32)>,
    /// Warnings whose held dispositions waited past the timeout.
    pub sequence_gaps: u64,
    /// The push of warnings (their own outbox), when pushing is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliverySummary>,
}

/// What a drop did, kept in the run's ledger record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DropSummary {
    /// The bucket URL (no credentials).
    pub url: String,
    /// The manifest committed there, relative to the URL.
    pub manifest: Option<String>,
    /// Data files copied.
    pub files: u32,
    /// Bytes copied.
    pub bytes: u64,
    /// Why the drop did not complete.
    pub error: Option<String>,
}

/// Why the ledger could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The store failed.
    #[error("warehouse: {0}")]
    Store(#[from] object_store::Error),
    /// A ledger file is not what it should be.
    #[error("warehouse: {path}: {message}")]
    Corrupt {
        /// Path.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// The ledger of one warehouse.
#[derive(Clone)]
pub struct Ledger {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
}

impl Ledger {
    /// The ledger under a warehouse prefix.
    pub fn new(store: Arc<dyn ObjectStore>, prefix: Path) -> Self {
        Self { store, prefix }
    }

    fn run_path(&self, date: NaiveDate, run_id: &str) -> Path {
        crate::store::join(&self.prefix, &crate::layout::run_record(date, run_id))
    }

    fn state_path(&self, feed: &str) -> Path {
        crate::store::join(&self.prefix, &crate::layout::feed_state(feed))
    }

    async fn read_json<T: for<'de> Deserialize<'de>>(
        &self,
        path: &Path,
    ) -> Result<Option<T>, LedgerError> {
        match self.store.get(path).await {
            Ok(got) => {
                let bytes = got.bytes().await?;
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| LedgerError::Corrupt {
                        path: path.to_string(),
                        message: e.to_string(),
                    })
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn write_json<T: Serialize>(&self, path: &Path, value: &T) -> Result<(), LedgerError> {
        let bytes = serde_json::to_vec_pretty(value).map_err(|e| LedgerError::Corrupt {
            path: path.to_string(),
            message: e.to_string(),
        })?;
        self.store.put(path, PutPayload::from(bytes)).await?;
        Ok(())
    }

    /// Writes (or rewrites) a run's record.
    pub async fn write_run(&self, run: &RunRecord) -> Result<(), LedgerError> {
        self.write_json(&self.run_path(run.business_date, &run.run_id), run)
            .await
    }

    /// Every run of a business date, oldest attempt first.
    pub async fn runs_of(&self, date: NaiveDate) -> Result<Vec<RunRecord>, LedgerError> {
        let dir = crate::store::join(&self.prefix, &crate::layout::runs_dir(date));
        self.read_runs(&dir).await
    }

    /// Every run in the ledger, newest first.
    pub async fn all_runs(&self) -> Result<Vec<RunRecord>, LedgerError> {
        let dir = crate::store::join(&self.prefix, crate::layout::RUNS);
        let mut runs = self.read_runs(&dir).await?;
        runs.sort_by(|a, b| {
            b.started_at
                .cmp(&a.started_at)
                .then(b.run_id.cmp(&a.run_id))
        });
        Ok(runs)
    }

    async fn read_runs(&self, dir: &Path) -> Result<Vec<RunRecord>, LedgerError> {
        let metas: Vec<_> = self.store.list(Some(dir)).try_collect().await?;
        let mut runs = Vec::new();
        for m in metas {
            if m.location.extension() == Some("json")
                && let Some(run) = self.read_json::<RunRecord>(&m.location).await?
            {
                runs.push(run);
            }
        }
        runs.sort_by_key(|r| r.attempt);
        Ok(runs)
    }

    /// Where a scheduled job's ticks stand.
    pub async fn job_state(
        &self,
        job: &str,
    ) -> Result<Option<crate::ledger::JobState>, LedgerError> {
        self.read_json(&crate::store::join(
            &self.prefix,
            &crate::layout::job_state(job),
        ))
        .await
    }

    /// Records where a scheduled job's ticks stand.
    pub async fn set_job_state(&self, state: &crate::ledger::JobState) -> Result<(), LedgerError> {
        self.write_json(
            &crate::store::join(&self.prefix, &crate::layout::job_state(&state.job)),
            state,
        )
        .await
    }

    /// A feed's last good snapshot.
    pub async fn feed_state(&self, feed: &str) -> Result<Option<FeedState>, LedgerError> {
        self.read_json(&self.state_path(feed)).await
    }

    /// Records a feed's new good snapshot (only after it landed and passed
    /// its guards).
    pub async fn advance(&self, state: &FeedState) -> Result<(), LedgerError> {
        self.write_json(&self.state_path(&state.feed), state).await
    }
}
