//! The scheduler: `jobs/*.toml` fire on their cron in their time zone; each
//! tick processes a business date (by default the previous calendar day in
//! the job's zone); dates missed while the daemon was down follow the
//! job's catch-up policy. Time comes from an injected [`Clock`], so tests
//! move it instead of waiting.
//!
//! One run at a time per scheduler, in order: a run that outlasts its
//! interval delays the next tick, and the fire times it covered are planned
//! by the catch-up policy when it ends. Across machines the run lease keeps
//! two schedulers off the same pipeline and date.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::clock::Clock;
use crate::ledger::{JobState, Ledger, RunStatus};
use crate::project::crontab::CronSchedule;
use crate::project::{BusinessDatePolicy, CatchUp, Job};

/// A tick is on time when the scheduler sees it within this long; `skip`
/// runs nothing later than that.
pub const ON_TIME: TimeDelta = TimeDelta::minutes(15);

/// Most fire times looked at in one plan (a per-second cron after a year
/// of downtime stays bounded).
const MAX_FIRES: usize = 100_000;

/// Fire times strictly after `after` and no later than `until`.
pub fn fires(
    schedule: &CronSchedule,
    tz: Tz,
    after: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Vec<DateTime<Utc>> {
    schedule
        .after(tz, after)
        .take_while(|t| *t <= until)
        .take(MAX_FIRES)
        .collect()
}

/// The next `count` fire times after `after`.
pub fn next_fires(
    schedule: &CronSchedule,
    tz: Tz,
    after: DateTime<Utc>,
    count: usize,
) -> Vec<DateTime<Utc>> {
    schedule.after(tz, after).take(count).collect()
}

/// The business date a tick at `fire` processes.
pub fn business_date(policy: BusinessDatePolicy, tz: Tz, fire: DateTime<Utc>) -> NaiveDate {
    let local = fire.with_timezone(&tz).date_naive();
    match policy {
        BusinessDatePolicy::SameDay => local,
        BusinessDatePolicy::PreviousDay => local.pred_opt().unwrap_or(local),
    }
}

/// What a tick decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Business dates to run, oldest first.
    pub run: Vec<NaiveDate>,
    /// Business dates of missed ticks left alone by the catch-up policy.
    pub skipped: Vec<NaiveDate>,
}

/// The dates of the ticks after `last` up to `now`, by the job's policy.
pub fn plan(job: &Job, last: DateTime<Utc>, now: DateTime<Utc>) -> Plan {
    let due = fires(&job.schedule, job.timezone, last, now);
    let Some(latest) = due.last().copied() else {
        return Plan {
            run: Vec::new(),
            skipped: Vec::new(),
        };
    };
    let mut dates: Vec<NaiveDate> = Vec::new();
    for f in &due {
        let d = business_date(job.business_date, job.timezone, *f);
        if !dates.contains(&d) {
            dates.push(d);
        }
    }
    let latest_date = business_date(job.business_date, job.timezone, latest);
    let keep: Vec<NaiveDate> = match job.catch_up {
        CatchUp::Skip if now - latest <= ON_TIME => vec![latest_date],
        CatchUp::Skip => Vec::new(),
        CatchUp::Latest => vec![latest_date],
        CatchUp::All { max_dates } => {
            let from = dates.len().saturating_sub(max_dates as usize);
            dates[from..].to_vec()
        }
    };
    Plan {
        skipped: dates
            .iter()
            .filter(|d| !keep.contains(d))
            .copied()
            .collect(),
        run: keep,
    }
}

/// How a scheduled run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It ran to the end with this status.
    Finished(RunStatus),
    /// Another process holds the date's lease: it is running elsewhere.
    Busy(String),
    /// It could not run (configuration, warehouse).
    Error(String),
}

/// Runs one job for one business date.
pub trait JobRunner: Send + Sync {
    /// Runs it; `cancel` is cancelled on shutdown or when the job's time
    /// is up.
    fn run<'a>(
        &'a self,
        job: &'a Job,
        business_date: NaiveDate,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Outcome>;
}

/// One scheduled attempt, for the log and the tests.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The job.
    pub job: String,
    /// The business date.
    pub business_date: NaiveDate,
    /// Attempt within this tick, from 1.
    pub attempt: u32,
    /// When it started (scheduler clock).
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
    /// How it ended.
    pub outcome: Outcome,
}

/// What the daemon reports to metrics.
pub trait Observer: Send + Sync {
    /// An attempt ended.
    fn attempt(&self, _event: &Event) {}
    /// The warehouse could not be read or written.
    fn warehouse_error(&self, _job: &str) {}
}

/// The daemon.
pub struct Scheduler<R> {
    jobs: Vec<Job>,
    clock: Arc<dyn Clock>,
    ledger: Ledger,
    runner: R,
    shutdown: CancellationToken,
    observer: Option<Arc<dyn Observer>>,
    /// Every attempt so far.
    pub events: Vec<Event>,
    /// Dates skipped by catch-up policies, by job.
    pub skipped: Vec<(String, NaiveDate)>,
}

impl<R: JobRunner> Scheduler<R> {
    /// A scheduler of `jobs`, keeping its state in `ledger`'s warehouse.
    pub fn new(
        jobs: Vec<Job>,
        clock: Arc<dyn Clock>,
        ledger: Ledger,
        runner: R,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            jobs,
            clock,
            ledger,
            runner,
            shutdown,
            observer: None,
            events: Vec::new(),
            skipped: Vec::new(),
        }
    }

    /// Reports attempts and warehouse errors to `observer`.
    pub fn observe(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The next instant any job fires after `after`.
    pub fn next_wake(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.jobs
            .iter()
            .filter_map(|j| {
                next_fires(&j.schedule, j.timezone, after, 1)
                    .first()
                    .copied()
            })
            .min()
    }

    /// Ticks until shutdown, or until the clock reaches `until`.
    pub async fn run(&mut self, until: Option<DateTime<Utc>>) {
        let mut backoff = Duration::from_secs(5);
        loop {
            if self.shutdown.is_cancelled() {
                info!("scheduler stopping: shutdown requested");
                return;
            }
            let now = self.clock.now();
            if until.is_some_and(|u| now >= u) {
                return;
            }
            let mut healthy = true;
            for i in 0..self.jobs.len() {
                if self.shutdown.is_cancelled() {
                    break;
                }
                if let Err(e) = self.tick(i).await {
                    healthy = false;
                    error!(job = %self.jobs[i].name, error = %e, "the warehouse is unreachable; retrying with backoff");
                    if let Some(o) = &self.observer {
                        o.warehouse_error(&self.jobs[i].name);
                    }
                }
            }
            let now = self.clock.now();
            let wake = if healthy {
                backoff = Duration::from_secs(5);
                match self.next_wake(now) {
                    Some(w) => w,
                    None => return,
                }
            } else {
                let w = now + TimeDelta::from_std(backoff).unwrap_or(TimeDelta::MAX);
                backoff = (backoff * 2).min(Duration::from_secs(600));
                w
            };
            let wake = until.map_or(wake, |u| wake.min(u));
            tokio::select! {
                () = self.clock.sleep_until(wake) => {}
                () = self.shutdown.cancelled() => {}
            }
        }
    }

    /// Plans and runs what job `i` has due.
    async fn tick(&mut self, i: usize) -> Result<(), String> {
        let job = self.jobs[i].clone();
        let now = self.clock.now();
        let state = self
            .ledger
            .job_state(&job.name)
            .await
            .map_err(|e| e.to_string())?;
        let Some(state) = state else {
            // First start: nothing is missed before it.
            info!(job = %job.name, "first start; scheduling from now");
            return self.save(&job.name, now).await;
        };
        let plan = plan(&job, state.planned_through, now);
        for d in &plan.skipped {
            warn!(job = %job.name, business_date = %d, "missed tick skipped by the catch-up policy");
            self.skipped.push((job.name.clone(), *d));
        }
        for date in plan.run {
            if self.shutdown.is_cancelled() {
                // Not planned through: the next start plans these again.
                return Ok(());
            }
            self.run_with_retries(&job, date).await;
        }
        self.save(&job.name, now).await
    }

    async fn save(&self, job: &str, through: DateTime<Utc>) -> Result<(), String> {
        self.ledger
            .set_job_state(&JobState {
                job: job.to_string(),
                planned_through: through,
            })
            .await
            .map_err(|e| e.to_string())
    }

    async fn run_with_retries(&mut self, job: &Job, date: NaiveDate) {
        let mut delay = Duration::from_secs(job.retry_backoff_seconds);
        for attempt in 1..=job.retries.saturating_add(1) {
            let started_at = self.clock.now();
            let cancel = self.shutdown.child_token();
            let limit = Duration::from_secs(u64::from(job.max_run_minutes) * 60);
            let timer = {
                let cancel = cancel.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(limit).await;
                    warn!(
                        "run exceeded its max_run_minutes; stopping it at the next stage boundary"
                    );
                    cancel.cancel();
                })
            };
            info!(job = %job.name, business_date = %date, attempt, "run starting");
            let outcome = self.runner.run(job, date, cancel).await;
            timer.abort();
            let event = Event {
                job: job.name.clone(),
                business_date: date,
                attempt,
                started_at,
                finished_at: self.clock.now(),
                outcome: outcome.clone(),
            };
            info!(job = %job.name, business_date = %date, attempt, outcome = ?outcome, "run ended");
            if let Some(o) = &self.observer {
                o.attempt(&event);
            }
            self.events.push(event);
            let retry = match &outcome {
                // Busy: another scheduler runs it, or the lease of a crashed
                // run has not lapsed yet; either way, look again later.
                Outcome::Finished(RunStatus::Failed) | Outcome::Error(_) | Outcome::Busy(_) => true,
                Outcome::Finished(RunStatus::Interrupted) => !self.shutdown.is_cancelled(),
                _ => false,
            };
            if !retry || attempt > job.retries || self.shutdown.is_cancelled() {
                return;
            }
            let wake = TimeDelta::from_std(delay)
                .ok()
                .and_then(|d| self.clock.now().checked_add_signed(d))
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
            tokio::select! {
                () = self.clock.sleep_until(wake) => {}
                () = self.shutdown.cancelled() => return,
            }
            delay = delay.saturating_mul(2);
        }
    }
}
