//! One run of a pipeline for one business date, stage by stage.
//!
//! A run is a value ([`RunContext`]: run id, business date, clock,
//! warehouse) handed from stage to stage under the run's lease:
//! `ingest` fetches, lands and validates every feed (stages 1-3, one feed
//! per core, the registry first) and evaluates each feed's guards;
//! `stages` joins and scores the latest good snapshots (4-5), raises the
//! warnings, publishes one version, pushes its changes and warnings to
//! the platform and copies it to the platform's bucket (6), and settles
//! the run's status. Each stage
//! is recorded in the ledger as it ends; a shutdown stops the run at the
//! next stage boundary, with nothing published.
//!
//! The run id is `<pipeline>-<yyyymmdd>-<attempt>`: re-running a date is a
//! new attempt that lands beside the old one, never over it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use std::panic::AssertUnwindSafe;
use tokio_util::sync::CancellationToken;

use chrono::NaiveDate;
use object_store::ObjectStore;
use object_store::path::Path;
use tracing::{Instrument, info, info_span, warn};

pub mod guards;
mod ingest;
mod sink;
mod spool;
mod stages;

use ingest::{FeedTask, RegistryIndex, feed_done, ingest_feed};

use crate::clock::{Clock, SystemClock};
use crate::lease::{Lease, LeaseError};
use crate::ledger::{FeedRecord, FeedStatus, Ledger, RunRecord, RunStatus};
use crate::project::{Pipeline, Project, Source, expand_env};
use crate::source::{self};

/// What an interactive run shows while it goes (the CLI's progress bar).
pub trait Progress: Send + Sync {
    /// A stage starts: `fetch <feed>`, `score`, `publish`, `deliver`.
    fn stage(&self, _stage: &str) {}
    /// A feed finished.
    fn feed_done(&self, _feed: &FeedRecord) {}
}

/// How long a run's lease lasts without renewal (renewed every third of it).
pub const LEASE_TTL: Duration = Duration::from_secs(300);

/// Why a run could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration does not allow the run (exit code 2).
    #[error("{0}")]
    Config(String),
    /// The warehouse could not be used (exit code 1).
    #[error("{0}")]
    Warehouse(String),
    /// Another process holds the run's lease (exit code 1).
    #[error("{0}")]
    Busy(String),
    /// The run stopped on a defect of the program (a panic); the ledger
    /// records it failed (exit code 1).
    #[error("{0}")]
    Internal(String),
}

/// One run in progress.
#[derive(Clone)]
pub struct RunContext {
    /// The run id.
    pub run_id: String,
    /// Attempt for this date, from 1.
    pub attempt: u32,
    /// The business date processed.
    pub business_date: NaiveDate,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Warehouse store.
    pub store: Arc<dyn ObjectStore>,
    /// Warehouse prefix in the store.
    pub prefix: Path,
    /// The warehouse URL (expanded) when the run opened it from one.
    pub warehouse_url: Option<String>,
    /// The ledger.
    pub ledger: Ledger,
}

/// Options of a run.
#[derive(Clone)]
pub struct RunOptions {
    /// The business date.
    pub business_date: NaiveDate,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Overrides the pipeline's warehouse URL.
    pub warehouse: Option<String>,
    /// Variables for `${NAME}` in source URLs, before the environment.
    pub vars: BTreeMap<String, String>,
    /// An already opened warehouse (store and prefix), used instead of the
    /// URL: embedding programs and tests that wrap the store.
    pub store: Option<(Arc<dyn ObjectStore>, Path)>,
    /// Push the complete current state (every code), not only the changes.
    pub full: bool,
    /// Cancelled on shutdown (or a time limit): the run stops at the next
    /// stage boundary without publishing and records itself interrupted.
    pub cancel: CancellationToken,
    /// Shows progress, for interactive runs.
    pub progress: Option<Arc<dyn Progress>>,
    /// Lease duration (renewed every third of it while the run lives).
    pub lease_ttl: Duration,
}

impl RunOptions {
    /// A run of `business_date` on the system clock into the pipeline's
    /// warehouse, with nothing else set.
    pub fn new(business_date: NaiveDate) -> Self {
        Self {
            business_date,
            clock: Arc::new(SystemClock),
            warehouse: None,
            vars: BTreeMap::new(),
            store: None,
            full: false,
            cancel: CancellationToken::new(),
            progress: None,
            lease_ttl: LEASE_TTL,
        }
    }
}

/// Opens the warehouse of a pipeline (or the override) for writing; the
/// URL returned is for display (credentials and query dropped, each
/// expanded variable shown as its `${NAME}`).
pub fn open_warehouse(
    pipeline: &Pipeline,
    url: Option<&str>,
    vars: &BTreeMap<String, String>,
) -> Result<(Arc<dyn ObjectStore>, Path, String), RunError> {
    let (store, prefix, url, redactor) = open_warehouse_url(pipeline, url, vars)?;
    Ok((store, prefix, redactor.apply(&crate::store::redact(&url))))
}

/// [`open_warehouse`], returning the expanded URL and its redactor.
fn open_warehouse_url(
    pipeline: &Pipeline,
    url: Option<&str>,
    vars: &BTreeMap<String, String>,
) -> Result<(Arc<dyn ObjectStore>, Path, String, crate::project::Redactor), RunError> {
    let lookup = |n: &str| vars.get(n).cloned().or_else(|| std::env::var(n).ok());
    let (url, redactor) = match url {
        Some(u) => (u.to_string(), crate::project::Redactor::default()),
        None => (
            expand_env(&pipeline.warehouse, lookup).map_err(|e| {
                RunError::Config(format!("pipeline {}: warehouse: {e}", pipeline.name))
            })?,
            crate::project::Redactor::new(&pipeline.warehouse, lookup),
        ),
    };
    let (store, prefix) = crate::store::open_with(&url, true, vars)
        .map_err(|e| RunError::Warehouse(redactor.apply(&e.to_string())))?;
    Ok((store, prefix, url, redactor))
}

/// Runs the pipeline for one business date; returns the ledger record.
pub async fn run_pipeline(
    project: &Project,
    pipeline_name: &str,
    options: RunOptions,
) -> Result<RunRecord, RunError> {
    let pipeline = project
        .pipelines
        .get(pipeline_name)
        .ok_or_else(|| RunError::Config(format!("no pipeline {pipeline_name:?} in pipelines/")))?;
    let mut sources: Vec<&Source> = pipeline
        .sources
        .iter()
        .filter_map(|f| project.sources.get(f))
        .collect();
    // The registry lands first: other feeds resolve organization codes and
    // measure registry coverage against it.
    sources.sort_by_key(|s| !s.is_spine());

    // A feed with person numbers and no key is refused before anything is fetched.
    let hash_key = options
        .vars
        .get(&pipeline.person_hash_key_env)
        .cloned()
        .or_else(|| std::env::var(&pipeline.person_hash_key_env).ok())
        .filter(|k| !k.is_empty())
        .map(String::into_bytes);
    if hash_key.is_none()
        && let Some(s) = sources.iter().find(|s| s.hashes_persons())
    {
        return Err(RunError::Config(format!(
            "feed {} hashes person identity numbers but {} is not set; set it to the shared hash key",
            s.feed, pipeline.person_hash_key_env
        )));
    }

    let endpoint =
        crate::deliver::Endpoint::resolve(pipeline, &options.vars).map_err(RunError::Config)?;
    let drop_url = match &pipeline.drop {
        Some(d) => expand_env(&d.url, |n| {
            options
                .vars
                .get(n)
                .cloned()
                .or_else(|| std::env::var(n).ok())
        })
        .map_err(|e| RunError::Config(format!("pipeline {}: drop.url: {e}", pipeline.name)))?,
        None => String::new(),
    };

    let (store, prefix, warehouse_url) = match &options.store {
        Some((store, prefix)) => (Arc::clone(store), prefix.clone(), None),
        None => {
            let (store, prefix, url, _) =
                open_warehouse_url(pipeline, options.warehouse.as_deref(), &options.vars)?;
            (store, prefix, Some(url))
        }
    };
    let purpose = format!("{} {}", pipeline.name, options.business_date);
    let lease = Lease::acquire(
        Arc::clone(&store),
        Lease::dir(&prefix, &pipeline.name, options.business_date),
        &purpose,
        &crate::lease::holder_id(),
        options.lease_ttl,
        options.clock.now(),
    )
    .await
    .map_err(|e| match e {
        LeaseError::Held(_) => RunError::Busy(e.to_string()),
        other => RunError::Warehouse(other.to_string()),
    })?;
    let cancel = options.cancel.child_token();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let keeper = tokio::spawn(keep_lease(
        lease,
        Arc::clone(&options.clock),
        cancel.clone(),
        stopped,
    ));
    let ledger = Ledger::new(Arc::clone(&store), prefix.clone());
    let prepared = Prepared {
        store,
        prefix,
        sources,
        hash_key,
        endpoint,
        drop_url,
        warehouse_url,
    };
    // A panic is a defect, but it must not leave the run `Running` in the
    // ledger (nor its lease held until it lapses): it is recorded failed.
    let result = match AssertUnwindSafe(run_locked(project, pipeline, &options, prepared, &cancel))
        .catch_unwind()
        .await
    {
        Ok(result) => result,
        Err(panic) => Err(record_panic(&ledger, &options, panic_message(panic.as_ref())).await),
    };
    let _ = stop.send(());
    if let Ok(Some(lease)) = keeper.await
        && let Err(e) = lease.release().await
    {
        warn!(error = %e, "could not release the run's lease; it lapses on its own");
    }
    result
}

/// What a panic said.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Records the runs of this date left `Running` by a panic as failed
/// (holding the lease, they are this process's) and says what happened.
async fn record_panic(ledger: &Ledger, options: &RunOptions, what: String) -> RunError {
    let message = format!(
        "the run stopped on an internal error (a defect, please report it): {what}; nothing further was published"
    );
    tracing::error!(error = %message, "run panicked");
    match ledger.runs_of(options.business_date).await {
        Ok(runs) => {
            for mut run in runs.into_iter().filter(|r| r.status == RunStatus::Running) {
                run.status = RunStatus::Failed;
                run.error = Some(message.clone());
                run.finished_at = Some(options.clock.now());
                if let Err(e) = ledger.write_run(&run).await {
                    warn!(error = %e, run_id = %run.run_id, "could not record the run failed");
                }
            }
        }
        Err(e) => warn!(error = %e, "could not read the ledger to record the run failed"),
    }
    RunError::Internal(message)
}

/// Renews the lease every third of its ttl until told to stop; cancels the
/// run if the lease is lost. Returns the lease for release.
async fn keep_lease(
    mut lease: Lease,
    clock: Arc<dyn Clock>,
    cancel: CancellationToken,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> Option<Lease> {
    let every = lease.ttl() / 3;
    loop {
        tokio::select! {
            _ = &mut stop => return Some(lease),
            () = tokio::time::sleep(every) => {
                if let Err(e) = lease.renew(clock.now()).await {
                    warn!(error = %e, "lost the run's lease; stopping at the next stage boundary");
                    cancel.cancel();
                    return None;
                }
            }
        }
    }
}

/// What the run settled before taking its lease.
struct Prepared<'a> {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    sources: Vec<&'a Source>,
    hash_key: Option<Vec<u8>>,
    endpoint: Option<crate::deliver::Endpoint>,
    drop_url: String,
    warehouse_url: Option<String>,
}

/// The run under its lease: the stages in order, each recorded in the
/// ledger as it ends.
async fn run_locked(
    project: &Project,
    pipeline: &Pipeline,
    options: &RunOptions,
    prepared: Prepared<'_>,
    cancel: &CancellationToken,
) -> Result<RunRecord, RunError> {
    let Prepared {
        store,
        prefix,
        sources,
        hash_key,
        endpoint,
        drop_url,
        warehouse_url,
    } = prepared;
    let mut run = Run::begin(pipeline, options, store, prefix).await?;
    run.ctx.warehouse_url = warehouse_url;
    if let Some(at) = ingest_feeds(&mut run, project, &sources, hash_key, cancel).await? {
        return interrupted(&run.ctx, run.record, &at).await;
    }
    if cancel.is_cancelled() {
        return interrupted(&run.ctx, run.record, "before scoring").await;
    }
    let failed = stages::failed_feeds(&run.record);
    let mut current = None;
    if failed.is_empty() {
        match stages::score_and_publish(&mut run, project, pipeline, cancel).await? {
            stages::Outcome::Published(published) => current = published,
            stages::Outcome::Interrupted(at) => {
                return interrupted(&run.ctx, run.record, at).await;
            }
        }
    }
    if let Some(endpoint) = &endpoint {
        stages::deliver(&mut run, endpoint, current.as_ref()).await;
    }
    if let Some(published) = &current
        && !drop_url.trim().is_empty()
    {
        stages::drop_copy(&mut run, pipeline, published, &drop_url).await;
    }
    stages::settle(&mut run.record, &failed);
    let Run {
        ctx, mut record, ..
    } = run;
    record.finished_at = Some(ctx.clock.now());
    write_report(&ctx, &mut record, current.as_ref(), &project.rules).await;
    save(&ctx, &record).await?;
    info!(run_id = %ctx.run_id, status = ?record.status, "run finished");
    Ok(record)
}

/// A run in progress: its context, its ledger record, and the clock and
/// counters of the stage under way.
struct Run<'a> {
    ctx: RunContext,
    record: RunRecord,
    options: &'a RunOptions,
    stage: (Instant, crate::usage::Counters),
}

impl<'a> Run<'a> {
    /// Takes the next attempt of the date (recording attempts left
    /// `Running` by a killed process as interrupted) and records it started.
    async fn begin(
        pipeline: &Pipeline,
        options: &'a RunOptions,
        store: Arc<dyn ObjectStore>,
        prefix: Path,
    ) -> Result<Run<'a>, RunError> {
        let ledger = Ledger::new(Arc::clone(&store), prefix.clone());
        let previous = ledger
            .runs_of(options.business_date)
            .await
            .map_err(|e| RunError::Warehouse(e.to_string()))?;
        let attempt = previous.iter().map(|r| r.attempt).max().unwrap_or(0) + 1;
        // Holding the lease, no other process runs this date: a record still
        // `Running` belongs to a process that was killed or crashed.
        for mut abandoned in previous
            .into_iter()
            .filter(|r| r.status == RunStatus::Running)
        {
            warn!(run_id = %abandoned.run_id, "an earlier run of this date stopped without finishing; recording it interrupted");
            abandoned.status = RunStatus::Interrupted;
            abandoned.error = Some(format!(
                "abandoned: its process stopped without finishing (killed or crashed); found by attempt {attempt}"
            ));
            ledger
                .write_run(&abandoned)
                .await
                .map_err(|e| RunError::Warehouse(e.to_string()))?;
        }
        let ctx = RunContext {
            run_id: format!(
                "{}-{}-{attempt:02}",
                pipeline.name,
                options.business_date.format("%Y%m%d")
            ),
            attempt,
            business_date: options.business_date,
            clock: Arc::clone(&options.clock),
            store,
            prefix,
            warehouse_url: None,
            ledger,
        };
        let record = RunRecord {
            run_id: ctx.run_id.clone(),
            pipeline: pipeline.name.clone(),
            business_date: ctx.business_date,
            attempt,
            started_at: ctx.clock.now(),
            finished_at: None,
            status: RunStatus::Running,
            feeds: Vec::new(),
            scoring: None,
            warnings: None,
            manifest: None,
            delivery: None,
            drop: None,
            stage_ms: BTreeMap::new(),
            stage_usage: BTreeMap::new(),
            report: None,
            error: None,
        };
        save(&ctx, &record).await?;
        info!(run_id = %ctx.run_id, business_date = %ctx.business_date, "run started");
        Ok(Run {
            ctx,
            record,
            options,
            stage: (Instant::now(), crate::usage::Counters::start()),
        })
    }

    /// Writes the record as it stands.
    async fn save(&self) -> Result<(), RunError> {
        save(&self.ctx, &self.record).await
    }

    /// Ends the stage under way: its time and resource use are recorded
    /// under `name`, and the next stage starts counting.
    fn lap(&mut self, name: &str) {
        let (started, counters) = &self.stage;
        self.record
            .stage_ms
            .insert(name.to_string(), started.elapsed().as_millis() as u64);
        self.record
            .stage_usage
            .insert(name.to_string(), counters.usage());
        self.stage = (Instant::now(), crate::usage::Counters::start());
    }

    /// Shows an interactive run which stage starts.
    fn progress(&self, stage: &str) {
        if let Some(p) = &self.options.progress {
            p.stage(stage);
        }
    }
}

/// Writes a run record to the ledger.
async fn save(ctx: &RunContext, record: &RunRecord) -> Result<(), RunError> {
    ctx.ledger
        .write_run(record)
        .await
        .map_err(|e| RunError::Warehouse(e.to_string()))
}

/// Stages 1-3 for every feed: fetched, landed and validated, each recorded
/// as it ends. Returns where the run was interrupted, if it was.
async fn ingest_feeds(
    run: &mut Run<'_>,
    project: &Project,
    sources: &[&Source],
    hash_key: Option<Vec<u8>>,
    cancel: &CancellationToken,
) -> Result<Option<String>, RunError> {
    let options = run.options;
    let mut registry = RegistryIndex::default();
    // Feeds land concurrently, one per core: each is a chain of reading,
    // mapping and writing that keeps about one core busy. The registry
    // lands alone, after the feeds before it and before those after it,
    // which resolve organization codes against it. Records stay in
    // pipeline order.
    let parallel = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    // Largest first (by a listing of the files, where there is one), so
    // that the longest feed does not start last; the registry stays first.
    let mut order = sources.to_vec();
    let mut sizes = BTreeMap::new();
    for s in &order {
        sizes.insert(
            s.feed.clone(),
            source::estimated_bytes(s, &options.vars).await.unwrap_or(0),
        );
    }
    order.sort_by_key(|s| (!s.is_spine(), std::cmp::Reverse(sizes[&s.feed])));
    let mut in_flight: std::collections::VecDeque<FeedTask> = std::collections::VecDeque::new();
    let mut interrupted_at = None;
    for source in order {
        let Some(schema) = project.schemas.get(&source.schema) else {
            continue;
        };
        let is_registry = source.is_spine();
        let room = if is_registry { 1 } else { parallel };
        while in_flight.len() >= room {
            if let Some(task) = in_flight.pop_front() {
                run.record.feeds.push(feed_done(task, options).await);
                run.save().await?;
            }
        }
        if cancel.is_cancelled() {
            interrupted_at = Some(format!("before fetching {}", source.feed));
            break;
        }
        run.progress(&format!("fetch {}", source.feed));
        let ctx = &run.ctx;
        let span = info_span!("feed", feed = %source.feed, run_id = %ctx.run_id);
        if is_registry {
            let feed = ingest_feed(
                ctx,
                source,
                schema,
                hash_key.clone(),
                &options.vars,
                &mut registry,
            )
            .instrument(span)
            .await;
            if feed.status != FeedStatus::Landed
                && let Some(snapshot) = &feed.snapshot
            {
                // Unchanged or held: later feeds resolve against the last good registry.
                registry = RegistryIndex::from_snapshot(ctx, snapshot).await;
            }
            if let Some(p) = &options.progress {
                p.feed_done(&feed);
            }
            run.record.feeds.push(feed);
            run.save().await?;
        } else {
            let (ctx, source, schema) = (ctx.clone(), source.clone(), schema.clone());
            let (hash_key, vars, mut registry) =
                (hash_key.clone(), options.vars.clone(), registry.clone());
            let (feed, required) = (source.feed.clone(), source.required);
            let task =
                tokio::spawn(
                    async move {
                        ingest_feed(&ctx, &source, &schema, hash_key, &vars, &mut registry).await
                    }
                    .instrument(span),
                );
            in_flight.push_back(FeedTask {
                feed,
                required,
                task,
            });
        }
    }
    while let Some(task) = in_flight.pop_front() {
        run.record.feeds.push(feed_done(task, options).await);
        run.save().await?;
    }
    // Recorded in pipeline order, whatever order they ran in.
    run.record
        .feeds
        .sort_by_key(|f| sources.iter().position(|s| s.feed == f.feed));
    Ok(interrupted_at)
}

/// Writes the run's HTML report and records where; a report that cannot
/// be written is a warning, never a failed run.
async fn write_report(
    ctx: &RunContext,
    record: &mut RunRecord,
    published: Option<&crate::catalog::Published>,
    rules: &[crate::project::Rule],
) {
    record.report = Some(crate::layout::report(record.business_date, &record.run_id));
    match crate::report::write(&ctx.store, &ctx.prefix, record, published, rules).await {
        Ok(rel) => record.report = Some(rel),
        Err(e) => {
            warn!(error = %e, "could not write the run report");
            record.report = None;
        }
    }
}

/// Records a run stopped at a stage boundary; nothing of it is published.
async fn interrupted(
    ctx: &RunContext,
    mut record: RunRecord,
    at: &str,
) -> Result<RunRecord, RunError> {
    warn!(run_id = %ctx.run_id, "interrupted {at}; nothing published");
    record.status = RunStatus::Interrupted;
    record.error = Some(format!(
        "interrupted {at} (shutdown, time limit or lost lease); nothing was published"
    ));
    record.finished_at = Some(ctx.clock.now());
    write_report(ctx, &mut record, None, &[]).await;
    ctx.ledger
        .write_run(&record)
        .await
        .map_err(|e| RunError::Warehouse(e.to_string()))?;
    Ok(record)
}
