//! `qinglian run`: one job or pipeline for one business date, with a
//! progress display on a terminal.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use super::shared::{
    block_on, business_date, load_project, previous_day, print_run, shutdown_on_signals,
};
use super::{CommandResult, Done, Failure};

/// Arguments of `run`.
#[derive(Debug, clap::Args)]
pub(super) struct RunArgs {
    /// A job (jobs/<name>.toml) or pipeline (pipelines/<name>.toml).
    name: String,
    /// Business date (YYYY-MM-DD); default: the job's policy, else yesterday in Asia/Shanghai.
    #[arg(long, value_parser = business_date)]
    date: Option<NaiveDate>,
    /// Project directory.
    #[arg(long, default_value = ".")]
    project: PathBuf,
    /// Warehouse URL, overriding the pipeline's.
    #[arg(long)]
    warehouse: Option<String>,
    /// Push every current code to the platform, not only the changes.
    #[arg(long)]
    full: bool,
    /// How long the run's lease lasts unless renewed (renewed every third
    /// of it): how long a crashed run blocks the date.
    #[arg(long, default_value_t = 300)]
    lease_seconds: u64,
}

/// Runs `run`.
pub(super) fn execute(args: RunArgs) -> CommandResult {
    block_on(run(
        &args.project,
        &args.name,
        args.date,
        args.warehouse,
        args.full,
        std::time::Duration::from_secs(args.lease_seconds.max(3)),
    ))
}

async fn run(
    root: &Path,
    name: &str,
    date: Option<NaiveDate>,
    warehouse: Option<String>,
    full: bool,
    lease_ttl: std::time::Duration,
) -> CommandResult {
    let project = load_project(root)?;
    let (pipeline, tz) = match project.jobs.get(name) {
        Some(job) => (job.pipeline.clone(), job.timezone),
        None => (name.to_string(), chrono_tz::Asia::Shanghai),
    };
    let business_date = date.unwrap_or_else(|| previous_day(tz));
    let feeds = project
        .pipelines
        .get(&pipeline)
        .map_or(0, |p| p.sources.len());
    let progress = CliProgress::for_terminal(feeds);
    let options = crate::run::RunOptions {
        warehouse,
        full,
        lease_ttl,
        cancel: shutdown_on_signals(),
        progress: progress
            .clone()
            .map(|p| p as std::sync::Arc<dyn crate::run::Progress>),
        ..crate::run::RunOptions::new(business_date)
    };
    let result = crate::run::run_pipeline(&project, &pipeline, options).await;
    if let Some(p) = &progress {
        p.finish();
    }
    let record = match result {
        Ok(r) => r,
        Err(e @ crate::run::RunError::Config(_)) => {
            return Err(Failure::Usage(e.to_string()));
        }
        Err(e) => {
            return Err(Failure::Failed(e.to_string()));
        }
    };
    print_run(&record);
    match record.status {
        crate::ledger::RunStatus::Succeeded => Ok(Done::Ok),
        crate::ledger::RunStatus::Degraded => Ok(Done::Degraded),
        _ => Ok(Done::RunFailed),
    }
}

/// The progress display of an interactive run: feeds fetched, rows landed,
/// the current stage.
struct CliProgress {
    bar: indicatif::ProgressBar,
    rows: std::sync::atomic::AtomicU64,
}

impl CliProgress {
    /// A display on standard error when it is a terminal.
    fn for_terminal(feeds: usize) -> Option<std::sync::Arc<Self>> {
        use std::io::IsTerminal;
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let bar = indicatif::ProgressBar::new(feeds as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:24} {pos}/{len} feeds · {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        Some(std::sync::Arc::new(Self {
            bar,
            rows: std::sync::atomic::AtomicU64::new(0),
        }))
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl crate::run::Progress for CliProgress {
    fn stage(&self, stage: &str) {
        let rows = self.rows.load(std::sync::atomic::Ordering::Relaxed);
        self.bar
            .set_message(format!("{rows} rows landed · {stage}"));
    }

    fn feed_done(&self, feed: &crate::ledger::FeedRecord) {
        let rows = self
            .rows
            .fetch_add(feed.landed, std::sync::atomic::Ordering::Relaxed)
            + feed.landed;
        self.bar.inc(1);
        self.bar.set_message(
            format!("{rows} rows landed · {} {:?}", feed.feed, feed.status).to_lowercase(),
        );
    }
}
