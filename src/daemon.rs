//! The daemon: the scheduler wired to real runs and their metrics, what
//! `qinglian schedule` starts. The scheduler itself ([`crate::schedule`])
//! knows jobs and ticks only; this module gives it a [`JobRunner`] that runs
//! the job's pipeline and counts what each run did, or, for a
//! `task = "brief"` job, writes the month's briefing.

use std::sync::Arc;

use chrono::NaiveDate;
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::ledger::RunStatus;
use crate::metrics::Metrics;
use crate::project::{Job, JobTask, Project};
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

impl PipelineRunner {
    /// A `task = "brief"` job: the briefing of the month its business date
    /// falls in (with `previous_day` at 08:00 on the 1st, the month before),
    /// written to the warehouse's `briefs/<month>/`.
    async fn brief(&self, job: &Job, business_date: NaiveDate) -> Outcome {
        let Some(pipeline) = self.project.pipelines.get(&job.pipeline) else {
            return Outcome::Error(format!("no pipeline {:?}", job.pipeline));
        };
        let (store, prefix, url) = match crate::run::open_warehouse(
            pipeline,
            self.warehouse.as_deref(),
            &Default::default(),
        ) {
            Ok(w) => w,
            Err(e) => return Outcome::Error(e.to_string()),
        };
        let period = crate::brief::Period::month_of(business_date);
        let rel = crate::layout::briefs(&period.label);
        let out = crate::store::join(&prefix, &rel);
        match crate::brief::brief(
            &self.project,
            &store,
            &prefix,
            &period,
            &crate::brief::Scopes::All,
            &store,
            &out,
            format!("{}/{rel}", url.trim_end_matches('/')),
        )
        .await
        {
            Ok(w) => {
                tracing::info!(job = %job.name, period = %w.period.label, files = w.files.len(), location = %w.location, "briefing written");
                Outcome::Finished(RunStatus::Succeeded)
            }
            Err(e) => Outcome::Error(e.to_string()),
        }
    }
}

impl JobRunner for PipelineRunner {
    fn run<'a>(
        &'a self,
        job: &'a Job,
        business_date: NaiveDate,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            if job.task == JobTask::Brief {
                return self.brief(job, business_date).await;
            }
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
