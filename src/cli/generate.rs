//! `qinglian generate`: deterministic synthetic feeds for every
//! department, with ground truth.

use std::path::PathBuf;

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

/// Arguments of `generate-delta`.
#[derive(Debug, clap::Args)]
pub(super) struct DeltaArgs {
    /// The earlier day's `generate` output; without it, every record of --to
    /// (a feed's first delivery).
    #[arg(long)]
    from: Option<PathBuf>,
    /// The later day's `generate` output.
    #[arg(long)]
    to: PathBuf,
    /// Where to write `<feed>/<feed>.ndjson`.
    #[arg(long)]
    out: PathBuf,
    /// The project whose mappings name each feed's record id.
    #[arg(long, default_value = ".")]
    project: PathBuf,
    /// Also write a copy of the project whose sources read these deltas
    /// (NDJSON, `merge = "upsert"`, tombstone `op = "D"`).
    #[arg(long)]
    project_out: Option<PathBuf>,
}

/// Runs `generate-delta`.
pub(super) fn delta(args: &DeltaArgs) -> CommandResult {
    let project = super::shared::load_project(&args.project)?;
    let record_ids = project
        .sources
        .iter()
        .map(|(feed, s)| (feed.clone(), s.record_id.clone()))
        .collect();
    let counts =
        crate::generate::delta::write_delta(args.from.as_deref(), &args.to, &record_ids, &args.out)
            .map_err(|e| Failure::Failed(e.to_string()))?;
    for (feed, c) in &counts {
        outln!(
            "{feed:<16} {:>10} records  {:>9} changed  {:>7} tombstones",
            c.records,
            c.changed,
            c.tombstones
        );
    }
    if let Some(out) = &args.project_out {
        let feeds = args.out.to_string_lossy();
        crate::generate::delta::write_delta_project(&args.project, out, &feeds)
            .map_err(|e| Failure::Failed(format!("cannot write {}: {e}", out.display())))?;
        outln!(
            "wrote {0}: run it with `qinglian run nightly --project {0}`",
            out.display()
        );
    }
    Ok(Done::Ok)
}
