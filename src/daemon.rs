//! The daemon: the scheduler wired to real runs and their metrics, what
//! `qinglian schedule` starts. The scheduler itself ([`crate::schedule`])
//! knows jobs and ticks only; this module gives it a [`JobRunner`] that runs
//! the job's pipeline and counts what each run did.

use std::sync::Arc;

use chrono::NaiveDate;
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::project::{Job, Project};
use crate::run::{Progress, RunError, RunOptions, run_pipeline};
use crate::schedule::{JobRunner, Outcome};

/// Runs the job's pipeline for real: what `qinglian schedule` uses.
pub struct PipelineRunner {
    /// The project.
    pub project: Project,
    /// Warehouse override.
    pub warehouse: Option<String>,
    /// Shows what runs, when interactive.
    pub progress: Option<Arc<dyn Progress>>,
    /// Counts what the runs did.
    pub metrics: Option<Arc<Metrics>>,
}

impl JobRunner for PipelineRunner {
    fn run<'a>(
        &'a self,
        job: &'a Job,
        business_date: NaiveDate,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let options = RunOptions {
                warehouse: self.warehouse.clone(),
                cancel,
                progress: self.progress.clone(),
                ..RunOptions::new(business_date)
            };
            match run_pipeline(&self.project, &job.pipeline, options).await {
                Ok(record) => {
                    if let Some(m) = &self.metrics {
                        m.run_finished(&job.name, &record);
                    }
                    Outcome::Finished(record.status)
                }
                Err(RunError::Busy(who)) => Outcome::Busy(who),
                Err(e) => Outcome::Error(e.to_string()),
            }
        })
    }
}
