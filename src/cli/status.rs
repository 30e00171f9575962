//! `qinglian status`: the latest runs with per-feed reconciliation, the
//! outbox and the next ticks of the jobs.

use super::shared::{WarehouseArgs, block_on, load_project, open_pipeline_warehouse, print_run};
use super::{CommandResult, Done, Failure};

/// Arguments of `status`.
#[derive(Debug, clap::Args)]
pub(super) struct StatusArgs {
    #[command(flatten)]
    at: WarehouseArgs,
    /// How many runs to show.
    #[arg(long, default_value_t = 5)]
    limit: usize,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

/// Runs `status`.
pub(super) fn execute(args: StatusArgs) -> CommandResult {
    block_on(status(&args.at, args.limit, args.json))
}

async fn status(at: &WarehouseArgs, limit: usize, json: bool) -> CommandResult {
    let (store, prefix, url) = open_pipeline_warehouse(at)?;
    let outbox = crate::deliver::Outbox::new(std::sync::Arc::clone(&store), prefix.clone());
    let runs = match crate::ledger::Ledger::new(store, prefix).all_runs().await {
        Ok(r) => r,
        Err(e) => {
            return Err(Failure::Failed(e.to_string()));
        }
    };
    let runs: Vec<_> = runs.into_iter().take(limit).collect();
    let outbox = match OutboxView::read(&outbox).await {
        Ok(o) => o,
        Err(e) => {
            return Err(Failure::Failed(e.to_string()));
        }
    };
    let now = chrono::Utc::now();
    let jobs: Vec<serde_json::Value> = load_project(&at.project)
        .map(|p| {
            p.jobs
                .values()
                .filter_map(|j| {
                    let next = *crate::schedule::next_fires(&j.schedule, j.timezone, now, 1).first()?;
                    Some(serde_json::json!({
                        "job": j.name,
                        "pipeline": j.pipeline,
                        "next_fire_utc": next.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        "next_fire_local": next.with_timezone(&j.timezone).to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
                        "business_date": crate::schedule::business_date(j.business_date, j.timezone, next).to_string(),
                    }))
                })
                .collect()
        })
        .unwrap_or_default();
    let reconciliation: Vec<serde_json::Value> = runs
        .iter()
        .filter(|r| r.delivery.is_some())
        .map(|r| outbox.reconcile(r))
        .collect();
    if json {
        let doc = serde_json::json!({
            "warehouse": url,
            "runs": runs,
            "delivery": reconciliation,
            "outbox": outbox.totals(),
            "jobs": jobs,
        });
        match serde_json::to_string_pretty(&doc) {
            Ok(text) => outln!("{text}"),
            Err(e) => {
                return Err(Failure::Failed(e.to_string()));
            }
        }
        return Ok(Done::Ok);
    }
    if runs.is_empty() {
        outln!("no runs recorded in {url}");
    }
    for r in &runs {
        print_run(r);
    }
    for rec in &reconciliation {
        outln!(
            "reconciliation {}: queued {} batch(es) / {} rows; acknowledged {} / {} rows; waiting {}; dead letters {}{}",
            rec["run_id"].as_str().unwrap_or_default(),
            rec["batches"],
            rec["rows"],
            rec["acknowledged_batches"],
            rec["acknowledged_rows"],
            rec["pending_batches"],
            rec["dead_batches"],
            if rec["reconciled"] == true {
                " — reconciled"
            } else {
                ""
            }
        );
    }
    let totals = outbox.totals();
    outln!(
        "outbox: {} acknowledged batch(es) ({} rows), {} waiting, {} dead letter(s)",
        totals["acknowledged_batches"],
        totals["acknowledged_rows"],
        totals["pending_batches"],
        totals["dead_batches"]
    );
    for d in &outbox.dead {
        outln!(
            "  dead letter {} (run {}, {} rows): HTTP {}: {}",
            d.batch.key,
            d.batch.run_id,
            d.batch.rows,
            d.status,
            d.response
        );
    }
    if let Some(w) = runs.iter().find_map(|r| r.warnings.as_ref()) {
        for line in crate::warnings::show::status_lines(w) {
            outln!("{line}");
        }
    }
    for j in &jobs {
        outln!(
            "job {}: next tick {} ({}) processes {}",
            j["job"].as_str().unwrap_or_default(),
            j["next_fire_utc"].as_str().unwrap_or_default(),
            j["next_fire_local"].as_str().unwrap_or_default(),
            j["business_date"].as_str().unwrap_or_default()
        );
    }
    Ok(Done::Ok)
}

/// The outbox as `status` shows it.
struct OutboxView {
    acknowledged: Vec<crate::deliver::Acknowledged>,
    pending: Vec<crate::deliver::OutboxBatch>,
    dead: Vec<crate::deliver::DeadLetter>,
}

impl OutboxView {
    async fn read(outbox: &crate::deliver::Outbox) -> Result<Self, crate::deliver::OutboxError> {
        Ok(Self {
            acknowledged: outbox.acknowledged().await?,
            pending: outbox.pending().await?,
            dead: outbox.dead_letters().await?,
        })
    }

    fn totals(&self) -> serde_json::Value {
        serde_json::json!({
            "acknowledged_batches": self.acknowledged.len(),
            "acknowledged_rows": self.acknowledged.iter().map(|a| a.accepted_rows).sum::<u64>(),
            "pending_batches": self.pending.len(),
            "pending_rows": self.pending.iter().map(|p| p.rows).sum::<u64>(),
            "dead_batches": self.dead.len(),
            "dead_rows": self.dead.iter().map(|d| d.batch.rows).sum::<u64>(),
            "pending": self.pending.iter().map(|p| serde_json::json!({
                "key": p.key, "run_id": p.run_id, "rows": p.rows
            })).collect::<Vec<_>>(),
            "dead": self.dead.iter().map(|d| serde_json::json!({
                "key": d.batch.key, "run_id": d.batch.run_id, "rows": d.batch.rows,
                "status": d.status, "response": d.response
            })).collect::<Vec<_>>(),
        })
    }

    /// One run's batches: what it queued (its version's batches, whoever
    /// queued them first) against what the platform acknowledged.
    fn reconcile(&self, r: &crate::ledger::RunRecord) -> serde_json::Value {
        let d = r.delivery.clone().unwrap_or_default();
        let ack: Vec<_> = self
            .acknowledged
            .iter()
            .filter(|a| a.run_id == r.run_id)
            .collect();
        let pending = self.pending.iter().filter(|p| p.run_id == r.run_id).count();
        let dead = self
            .dead
            .iter()
            .filter(|x| x.batch.run_id == r.run_id)
            .count();
        let ack_rows: u64 = ack.iter().map(|a| a.accepted_rows).sum();
        let queued_rows: u64 = ack.iter().map(|a| a.rows).sum::<u64>()
            + self
                .pending
                .iter()
                .filter(|p| p.run_id == r.run_id)
                .map(|p| p.rows)
                .sum::<u64>()
            + self
                .dead
                .iter()
                .filter(|x| x.batch.run_id == r.run_id)
                .map(|x| x.batch.rows)
                .sum::<u64>();
        serde_json::json!({
            "run_id": r.run_id,
            "business_date": r.business_date,
            "batches": d.queued,
            "rows": queued_rows,
            "already_acknowledged": d.already_acknowledged,
            "acknowledged_batches": ack.len(),
            "acknowledged_rows": ack_rows,
            "pending_batches": pending,
            "dead_batches": dead,
            "reconciled": pending == 0 && dead == 0 && ack.len() as u32 == d.queued && ack_rows == queued_rows,
        })
    }
}
