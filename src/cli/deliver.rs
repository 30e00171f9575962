//! `qinglian deliver`: what waits in the outbox sent to the oversight
//! platform now, dead letters requeued on request.

use super::shared::{WarehouseArgs, block_on, load_project, open_pipeline_warehouse};
use super::{CommandResult, Done, Failure};

/// Arguments of `deliver`.
#[derive(Debug, clap::Args)]
pub(super) struct DeliverArgs {
    #[command(flatten)]
    at: WarehouseArgs,
    /// First move the dead letters back to the outbox (after fixing the
    /// secret or the platform).
    #[arg(long)]
    requeue: bool,
}

/// Runs `deliver`.
pub(super) fn execute(args: DeliverArgs) -> CommandResult {
    block_on(deliver(&args.at, args.requeue))
}

async fn deliver(at: &WarehouseArgs, requeue: bool) -> CommandResult {
    let project = load_project(&at.project)?;
    let Some(pipeline) = project.pipelines.get(&at.pipeline) else {
        return Err(Failure::Usage(format!(
            "no pipeline {:?} in pipelines/",
            at.pipeline
        )));
    };
    let endpoint = match crate::deliver::Endpoint::resolve(pipeline, &Default::default()) {
        Ok(Some(e)) => e,
        Ok(None) => {
            return Err(Failure::Usage(format!(
                "pipeline {} has no push endpoint (set the variable its [push] endpoint names)",
                pipeline.name
            )));
        }
        Err(e) => {
            return Err(Failure::Usage(e.to_string()));
        }
    };
    let (store, prefix, _) = open_pipeline_warehouse(at)?;
    let warnings_outbox = crate::warnings::outbox(&store, &prefix);
    let outbox = crate::deliver::Outbox::new(store, prefix);
    if requeue {
        match warnings_outbox.requeue_dead().await {
            Ok(n) if n > 0 => outln!("moved {n} dead warning batch(es) back to their outbox"),
            Ok(_) => {}
            Err(e) => return Err(Failure::Failed(e.to_string())),
        }
        match outbox.requeue_dead().await {
            Ok(n) => outln!("moved {n} dead letter(s) back to the outbox"),
            Err(e) => {
                return Err(Failure::Failed(e.to_string()));
            }
        }
    }
    let mut summary = crate::ledger::DeliverySummary {
        endpoint: endpoint.display_url(),
        ..Default::default()
    };
    if let Err(e) =
        crate::deliver::drain(&outbox, &endpoint, &crate::clock::SystemClock, &mut summary).await
    {
        return Err(Failure::Failed(e.to_string()));
    }
    outln!(
        "delivered to {}: acknowledged {} batch(es) ({} rows) in {} request(s), parked {}, {} waiting{}",
        summary.endpoint,
        summary.acknowledged,
        summary.acknowledged_rows,
        summary.requests,
        summary.parked,
        summary.pending,
        summary
            .error
            .as_ref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default()
    );
    // The warnings wait while the code changes do not all go through.
    let mut warnings = crate::ledger::DeliverySummary {
        endpoint: endpoint.display_url(),
        ..Default::default()
    };
    if summary.complete() {
        if let Err(e) = crate::deliver::drain(
            &warnings_outbox,
            &endpoint,
            &crate::clock::SystemClock,
            &mut warnings,
        )
        .await
        {
            return Err(Failure::Failed(e.to_string()));
        }
        if warnings.acknowledged + warnings.parked + warnings.pending > 0 {
            outln!(
                "warnings delivered: acknowledged {} batch(es) ({} warnings), parked {}, {} waiting{}",
                warnings.acknowledged,
                warnings.acknowledged_rows,
                warnings.parked,
                warnings.pending,
                warnings
                    .error
                    .as_ref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            );
        }
    }
    if summary.complete() && warnings.complete() {
        Ok(Done::Ok)
    } else {
        Ok(Done::Degraded)
    }
}
