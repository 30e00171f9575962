//! `qinglian backfill`: a job for every business date of a range, in
//! order, skipping dates already published unless forced.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use super::shared::{
    block_on, business_date, load_project, print_run, shutdown_on_signals, warehouse_of,
};
use super::{CommandResult, Done, Failure};

/// Arguments of `backfill`.
#[derive(Debug, clap::Args)]
pub(super) struct BackfillArgs {
    /// A job (jobs/<name>.toml) or pipeline.
    name: String,
    /// First business date.
    #[arg(long, value_parser = business_date)]
    from: NaiveDate,
    /// Last business date.
    #[arg(long, value_parser = business_date)]
    to: NaiveDate,
    /// Also re-run dates that are already published.
    #[arg(long)]
    force: bool,
    /// Project directory.
    #[arg(long, default_value = ".")]
    project: PathBuf,
    /// Warehouse URL, overriding the pipeline's.
    #[arg(long)]
    warehouse: Option<String>,
}

/// Runs `backfill`.
pub(super) fn execute(args: BackfillArgs) -> CommandResult {
    block_on(backfill(
        &args.project,
        &args.name,
        args.from,
        args.to,
        args.force,
        args.warehouse,
    ))
}

async fn backfill(
    root: &Path,
    name: &str,
    from: NaiveDate,
    to: NaiveDate,
    force: bool,
    warehouse: Option<String>,
) -> CommandResult {
    let project = load_project(root)?;
    let pipeline_name = project
        .jobs
        .get(name)
        .map_or_else(|| name.to_string(), |j| j.pipeline.clone());
    let Some(pipeline) = project.pipelines.get(&pipeline_name) else {
        return Err(Failure::Usage(format!("no job or pipeline {name:?}")));
    };
    if from > to {
        return Err(Failure::Usage(format!("--from {from} is after --to {to}")));
    }
    let (store, prefix, _) = warehouse_of(pipeline, warehouse.as_deref())?;
    let shutdown = shutdown_on_signals();
    let mut degraded = false;
    for date in from.iter_days().take_while(|d| *d <= to) {
        if shutdown.is_cancelled() {
            return Err(Failure::Stopped(format!(
                "backfill stopped before {date}; run it again to resume"
            )));
        }
        if !force {
            match crate::catalog::Published::latest(&store, &prefix, date).await {
                Ok(Some(p)) => {
                    outln!(
                        "{date}: already published by {} (skipped; --force re-runs it)",
                        p.manifest.run_id
                    );
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    return Err(Failure::Failed(format!("{date}: {e}")));
                }
            }
        }
        let options = crate::run::RunOptions {
            warehouse: warehouse.clone(),
            cancel: shutdown.clone(),
            ..crate::run::RunOptions::new(date)
        };
        match crate::run::run_pipeline(&project, &pipeline_name, options).await {
            Ok(record) => {
                print_run(&record);
                match record.status {
                    crate::ledger::RunStatus::Succeeded => {}
                    crate::ledger::RunStatus::Degraded => degraded = true,
                    _ => {
                        return Err(Failure::Stopped(format!(
                            "backfill stopped at {date}; fix it and run the same command to resume"
                        )));
                    }
                }
            }
            Err(e @ crate::run::RunError::Config(_)) => {
                return Err(Failure::Usage(e.to_string()));
            }
            Err(e) => {
                return Err(Failure::Failed(format!("{date}: {e}")));
            }
        }
    }
    if degraded {
        Ok(Done::Degraded)
    } else {
        Ok(Done::Ok)
    }
}
