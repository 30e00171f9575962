//! `qinglian explain`: why an organization has its colour, from a
//! published version.

use chrono::NaiveDate;

use super::shared::{WarehouseArgs, block_on, open_pipeline_warehouse};
use super::{CommandResult, Done, Failure};

/// Arguments of `explain`.
#[derive(Debug, clap::Args)]
pub(super) struct ExplainArgs {
    /// The organization's USCC (dirty forms are normalized).
    uscc: String,
    /// Business date (default: the latest scored run).
    #[arg(long)]
    date: Option<NaiveDate>,
    #[command(flatten)]
    at: WarehouseArgs,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

/// Runs `explain`.
pub(super) fn execute(args: ExplainArgs) -> CommandResult {
    block_on(explain(&args.at, &args.uscc, args.date, args.json))
}

async fn explain(
    at: &WarehouseArgs,
    uscc: &str,
    date: Option<NaiveDate>,
    json: bool,
) -> CommandResult {
    let (store, prefix, _) = open_pipeline_warehouse(at)?;
    match crate::explain::explain(store, prefix, uscc, date).await {
        Ok(e) if json => match serde_json::to_string_pretty(&e) {
            Ok(text) => {
                outln!("{text}");
                Ok(Done::Ok)
            }
            Err(err) => Err(Failure::Failed(err.to_string())),
        },
        Ok(e) => {
            out!("{}", crate::explain::render(&e));
            Ok(Done::Ok)
        }
        Err(e @ crate::explain::ExplainError::Key(_)) => Err(Failure::Usage(e.to_string())),
        Err(e) => Err(Failure::Failed(e.to_string())),
    }
}
