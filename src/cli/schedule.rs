//! `qinglian schedule`: the daemon, every job on its cron until SIGINT or
//! SIGTERM, with Prometheus metrics on request.

use std::path::{Path, PathBuf};

use super::shared::{block_on, shutdown_on_signals, warehouse_of};
use super::{CommandResult, Done, Failure};
use crate::project::Project;

/// Arguments of `schedule`.
#[derive(Debug, clap::Args)]
pub(super) struct ScheduleArgs {
    /// Project directory.
    #[arg(long, default_value = ".")]
    project: PathBuf,
    /// Folder of job files (default: the project's jobs/).
    #[arg(long)]
    jobs: Option<PathBuf>,
    /// Warehouse URL, overriding the pipelines'.
    #[arg(long)]
    warehouse: Option<String>,
    /// Serve Prometheus metrics at this address (e.g. 127.0.0.1:9464).
    #[arg(long)]
    metrics: Option<std::net::SocketAddr>,
}

/// Runs `schedule`.
pub(super) fn execute(args: ScheduleArgs) -> CommandResult {
    block_on(schedule(
        &args.project,
        args.jobs.as_deref(),
        args.warehouse,
        args.metrics,
    ))
}

async fn schedule(
    root: &Path,
    jobs_dir: Option<&Path>,
    warehouse: Option<String>,
    metrics: Option<std::net::SocketAddr>,
) -> CommandResult {
    let loaded = match jobs_dir {
        Some(dir) => Project::load_with_jobs(root, dir),
        None => Project::load(root),
    };
    let project = loaded
        .map_err(|errors| Failure::Config(errors.0.iter().map(ToString::to_string).collect()))?;
    let jobs: Vec<crate::project::Job> = project.jobs.values().cloned().collect();
    let Some(first) = jobs.first() else {
        return Err(Failure::Usage("no job to schedule in jobs/".to_string()));
    };
    let Some(pipeline) = project.pipelines.get(&first.pipeline) else {
        return Err(Failure::Usage(format!(
            "job {} names no pipeline of pipelines/",
            first.name
        )));
    };
    let (store, prefix, url) = warehouse_of(pipeline, warehouse.as_deref())?;
    let shutdown = shutdown_on_signals();
    let observer = std::sync::Arc::new(crate::metrics::Metrics::new());
    if let Some(addr) = metrics {
        match crate::metrics::serve(std::sync::Arc::clone(&observer), addr).await {
            Ok(bound) => errln!("metrics at http://{bound}/metrics"),
            Err(e) => {
                return Err(Failure::Failed(format!(
                    "cannot serve metrics on {addr}: {e}"
                )));
            }
        }
    }
    for j in &jobs {
        if let Some(next) =
            crate::schedule::next_fires(&j.schedule, j.timezone, chrono::Utc::now(), 1).first()
        {
            errln!(
                "job {}: pipeline {}, next tick {} ({}), warehouse {}",
                j.name,
                j.pipeline,
                next.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                next.with_timezone(&j.timezone).format("%Y-%m-%d %H:%M %:z"),
                crate::store::redact(&url)
            );
        }
    }
    let runner = crate::daemon::PipelineRunner {
        project: project.clone(),
        warehouse,
        progress: None,
        metrics: Some(std::sync::Arc::clone(&observer)),
    };
    let mut scheduler = crate::schedule::Scheduler::new(
        jobs,
        std::sync::Arc::new(crate::clock::SystemClock),
        crate::ledger::Ledger::new(store, prefix),
        runner,
        shutdown,
    )
    .observe(observer);
    scheduler.run(None).await;
    errln!("scheduler stopped");
    Ok(Done::Ok)
}
