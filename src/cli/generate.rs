//! `qinglian generate`: deterministic synthetic feeds for every
//! department, with ground truth.

use chrono::NaiveDate;

use super::shared::block_on;
use super::{CommandResult, Done, Failure};
use crate::generate::{GenerateOptions, generate_to_url};

/// Arguments of `generate`.
#[derive(Debug, clap::Args)]
pub(super) struct GenerateArgs {
    /// Number of organizations.
    #[arg(long, default_value_t = 10_000)]
    orgs: u64,
    /// Random seed: the same seed and date give byte-identical files.
    #[arg(long, default_value_t = 20_260_101)]
    seed: u64,
    /// Business date the data describes (YYYY-MM-DD).
    #[arg(long, default_value = "2026-11-28")]
    as_of: NaiveDate,
    /// Output directory or object-store URL (file://, s3://).
    #[arg(long)]
    out: String,
    /// Days of evolution after the base population (a simulated month:
    /// day N with --as-of the Nth day after day 0's).
    #[arg(long, default_value_t = 0)]
    day: u32,
}

/// Runs `generate`.
pub(super) fn execute(args: GenerateArgs) -> CommandResult {
    let options = GenerateOptions {
        orgs: args.orgs,
        seed: args.seed,
        as_of: args.as_of,
        day: args.day,
    };
    block_on(async move {
        let summary = generate_to_url(&options, &args.out)
            .await
            .map_err(|e| Failure::Failed(e.to_string()))?;
        outln!("{summary}");
        Ok(Done::Ok)
    })
}
