//! Stages 4-6 of a run, after its feeds have landed: joining and scoring,
//! the warnings and one published version (or nothing), the push to the
//! platform and the copy to its bucket, and the run's final status.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use super::{Run, RunError};
use crate::catalog::{InputSnapshot, Published};
use crate::deliver::{Endpoint, Outbox};
use crate::ledger::{DeliverySummary, FeedStatus, RunRecord, RunStatus};
use crate::project::{Pipeline, Project};

/// How scoring and publishing ended.
pub(super) enum Outcome {
    /// The version published, or none (why is in the record's error).
    Published(Option<Published>),
    /// Stopped at the boundary named.
    Interrupted(&'static str),
}

/// The required feeds that failed: with any, nothing is scored.
pub(super) fn failed_feeds(record: &RunRecord) -> Vec<String> {
    record
        .feeds
        .iter()
        .filter(|f| f.status == FeedStatus::Failed)
        .map(|f| f.feed.clone())
        .collect()
}

/// Stages 4-6 over each feed's latest good snapshot: joining and scoring,
/// then the warnings, then one published version; the previous version stands if
/// any of them fails.
pub(super) async fn score_and_publish(
    run: &mut Run<'_>,
    project: &Project,
    pipeline: &Pipeline,
    cancel: &CancellationToken,
) -> Result<Outcome, RunError> {
    let ctx = run.ctx.clone();
    let mut snapshots = BTreeMap::new();
    for feed in &pipeline.sources {
        let state = ctx
            .ledger
            .feed_state(feed)
            .await
            .map_err(|e| RunError::Warehouse(e.to_string()))?;
        snapshots.insert(
            feed.clone(),
            (
                state.as_ref().map(|s| s.snapshot.clone()),
                state.map(|s| s.business_date),
            ),
        );
    }
    let inputs: BTreeMap<String, InputSnapshot> = snapshots
        .iter()
        .map(|(feed, (path, date))| {
            (
                feed.clone(),
                InputSnapshot {
                    path: path.clone(),
                    business_date: *date,
                },
            )
        })
        .collect();
    let input = crate::score::ScoreInput {
        project,
        pipeline,
        store: Arc::clone(&ctx.store),
        prefix: ctx.prefix.clone(),
        run_id: &ctx.run_id,
        business_date: ctx.business_date,
        snapshots,
        warehouse_url: ctx.warehouse_url.clone(),
        vars: &run.options.vars,
    };
    run.lap("ingest");
    run.progress("score");
    let scored = crate::score::score_run(input)
        .instrument(info_span!("score", run_id = %ctx.run_id))
        .await;
    run.lap("score");
    let summary = match scored {
        Ok(_) if cancel.is_cancelled() => return Ok(Outcome::Interrupted("before publishing")),
        Ok(summary) => summary,
        Err(e) => {
            warn!(error = %e, "scoring failed; nothing is published");
            run.record.error = Some(e.to_string());
            return Ok(Outcome::Published(None));
        }
    };
    run.progress("warnings");
    let mut outputs = summary.outputs.clone();
    let registry = inputs
        .get(crate::project::SPINE_FEED)
        .and_then(|s| s.path.clone());
    let raised = crate::warnings::raise(crate::warnings::WarningsInput {
        project,
        pipeline,
        store: Arc::clone(&ctx.store),
        prefix: ctx.prefix.clone(),
        run_id: &ctx.run_id,
        business_date: ctx.business_date,
        outputs: &summary.outputs,
        registry: registry.as_deref(),
        vars: &run.options.vars,
        now: ctx.clock.now(),
    })
    .instrument(info_span!("warnings", run_id = %ctx.run_id))
    .await;
    run.lap("warnings");
    match raised {
        Ok((w, path)) => {
            outputs.insert(crate::warnings::DATASET.to_string(), path);
            run.record.warnings = Some(w);
        }
        Err(e) => {
            // Without its warnings a version is not complete: nothing is
            // published, the previous version stands.
            warn!(error = %e, "warnings failed; nothing is published");
            run.record.error = Some(format!("warnings: {e}"));
        }
    }
    run.progress("publish");
    let mut current = None;
    if run.record.warnings.is_some() {
        let published = crate::publish::publish(crate::publish::PublishInput {
            project,
            store: Arc::clone(&ctx.store),
            prefix: ctx.prefix.clone(),
            run: &run.record,
            rules_version: &summary.rules_version,
            outputs: &outputs,
            inputs,
            now: ctx.clock.now(),
        })
        .instrument(info_span!("publish", run_id = %ctx.run_id))
        .await;
        match published {
            Ok(published) => {
                info!(manifest = %published.path, "published");
                run.record.manifest = Some(published.path.clone());
                current = Some(published);
            }
            Err(e) => {
                warn!(error = %e, "publishing failed; the previous version stays current");
                run.record.error = Some(format!("publish: {e}"));
            }
        }
    }
    run.lap("publish");
    run.record.scoring = Some(summary);
    Ok(Outcome::Published(current))
}

/// The push to the platform (stage 6): the code changes of the version
/// published (or, with none, what earlier runs left in the outbox), then
/// its warnings, which wait in their own outbox while the platform does
/// not take the changes.
pub(super) async fn deliver(run: &mut Run<'_>, endpoint: &Endpoint, current: Option<&Published>) {
    let ctx = run.ctx.clone();
    run.progress("deliver");
    let outbox = Outbox::new(Arc::clone(&ctx.store), ctx.prefix.clone());
    let span = info_span!("deliver", run_id = %ctx.run_id);
    let summary = match current {
        Some(p) => {
            crate::deliver::deliver(
                &outbox,
                endpoint,
                p,
                run.options.full,
                &ctx.run_id,
                &*ctx.clock,
            )
            .instrument(span)
            .await
        }
        None => {
            // Nothing new to queue; what earlier runs left still goes.
            let mut s = DeliverySummary {
                endpoint: endpoint.display_url(),
                ..Default::default()
            };
            if let Err(e) = crate::deliver::drain(&outbox, endpoint, &*ctx.clock, &mut s)
                .instrument(span)
                .await
            {
                s.error = Some(e.to_string());
            }
            s
        }
    };
    if summary.complete() {
        let w = crate::warnings::deliver(
            &ctx.store,
            &ctx.prefix,
            endpoint,
            current,
            &ctx.run_id,
            &*ctx.clock,
        )
        .instrument(info_span!("deliver warnings", run_id = %ctx.run_id))
        .await;
        if let Some(e) = &w.error {
            warn!(error = %e, "the warnings did not all reach the platform; they wait in their outbox");
        }
        if let Some(ws) = run.record.warnings.as_mut() {
            ws.delivery = Some(w);
        }
    } else if let (Some(p), Some(ws)) = (current, run.record.warnings.as_mut()) {
        ws.delivery = Some(queue_warnings(&ctx, endpoint, p).await);
    }
    run.record.delivery = Some(summary);
    run.lap("deliver");
}

/// Queues a version's warnings, for the next run to send, when the code
/// changes did not all reach the platform tonight.
async fn queue_warnings(
    ctx: &super::RunContext,
    endpoint: &Endpoint,
    published: &Published,
) -> DeliverySummary {
    let outbox = crate::warnings::outbox(&ctx.store, &ctx.prefix);
    let mut w = DeliverySummary {
        endpoint: endpoint.display_url(),
        kind: crate::warnings::PUSH_KIND.to_string(),
        error: Some("waiting: the code changes were not all delivered".into()),
        ..Default::default()
    };
    match crate::warnings::queue_push(
        &outbox,
        published,
        endpoint.batch_size(),
        &ctx.run_id,
        ctx.clock.now(),
    )
    .await
    {
        Ok(q) => {
            w.batches = q.batches;
            w.rows = q.rows;
            w.queued = q.queued;
            w.pending = outbox.pending().await.map_or(0, |p| p.len() as u32);
        }
        Err(e) => w.error = Some(e),
    }
    w
}

/// The copy of the published version to the platform's bucket; its URL
/// and errors shown with each expanded variable as its `${NAME}`.
pub(super) async fn drop_copy(
    run: &mut Run<'_>,
    pipeline: &Pipeline,
    published: &Published,
    drop_url: &str,
) {
    let vars = &run.options.vars;
    let mut summary = crate::deliver::drop_copy(published, drop_url, vars)
        .instrument(info_span!("drop", run_id = %run.ctx.run_id))
        .await;
    if let Some(d) = &pipeline.drop {
        let redactor = crate::project::Redactor::new(&d.url, |n| {
            vars.get(n).cloned().or_else(|| std::env::var(n).ok())
        });
        summary.url = redactor.apply(&summary.url);
        summary.error = summary.error.map(|e| redactor.apply(&e));
    }
    if let Some(e) = &summary.error {
        warn!(error = %e, "the copy to the platform's bucket did not complete");
    }
    run.record.drop = Some(summary);
    run.lap("drop");
}

/// The run's status from what its stages recorded: failed without a
/// required feed, a score or a published version; degraded when a feed
/// was held or something did not reach the platform.
pub(super) fn settle(record: &mut RunRecord, failed: &[String]) {
    let delivered = record.delivery.as_ref().is_none_or(|d| d.complete())
        && record
            .warnings
            .as_ref()
            .and_then(|w| w.delivery.as_ref())
            .is_none_or(|d| d.complete())
        && record.drop.as_ref().is_none_or(|d| d.error.is_none());
    record.status = if !failed.is_empty() {
        record.error = Some(format!("required feed(s) failed: {}", failed.join(", ")));
        RunStatus::Failed
    } else if record.scoring.is_none() || record.manifest.is_none() {
        RunStatus::Failed
    } else if record.feeds.iter().any(|f| f.status == FeedStatus::Held) || !delivered {
        RunStatus::Degraded
    } else {
        RunStatus::Succeeded
    };
}
