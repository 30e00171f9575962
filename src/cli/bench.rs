//! `qinglian bench`: the measurements behind BENCHMARKS.md, as JSON.

use std::path::PathBuf;

use clap::Subcommand;

use super::shared::{load_project, print_json, runtime};
use super::{CommandResult, Failure};

/// Arguments of `bench`.
#[derive(Debug, clap::Args)]
pub(super) struct BenchArgs {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// The floor of ingest: read a pipeline's raw feed files with DataFusion
    /// and write them as Parquet, with no mapping, validation or scoring.
    /// Prints the figures as JSON.
    Baseline {
        /// Project directory.
        #[arg(long, default_value = ".")]
        project: PathBuf,
        /// Pipeline whose feeds to read.
        #[arg(long, default_value = "nightly")]
        pipeline: String,
        /// Folder with one sub-folder of raw files per feed (`qinglian generate --out`).
        #[arg(long)]
        feeds: PathBuf,
        /// Folder for the Parquet output (one sub-folder per feed).
        #[arg(long)]
        out: PathBuf,
        /// DataFusion target partitions (default: the machine's cores).
        #[arg(long)]
        partitions: Option<usize>,
    },
    /// Key classification over Arrow string arrays on one core, against a
    /// plain checksum loop. Prints the figures as JSON.
    Keys {
        /// Codes per pass.
        #[arg(long, default_value_t = 2_000_000)]
        codes: usize,
        /// Share of codes in dirty forms (spaces, hyphens, lower case, full width).
        #[arg(long, default_value_t = 0.1)]
        dirty: f64,
        /// Passes; the best counts.
        #[arg(long, default_value_t = 5)]
        passes: usize,
    },
}

/// Runs `bench`.
pub(super) fn execute(args: BenchArgs) -> CommandResult {
    match args.command {
        BenchCommand::Baseline {
            project,
            pipeline,
            feeds,
            out,
            partitions,
        } => {
            let project = load_project(&project)?;
            let Some(pipeline) = project.pipelines.get(&pipeline) else {
                return Err(Failure::Usage(format!(
                    "no pipeline {pipeline:?} in the project"
                )));
            };
            let partitions = partitions.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
            });
            let done = runtime().and_then(|rt| {
                rt.block_on(crate::bench::bare_baseline(
                    &project, pipeline, &feeds, &out, partitions,
                ))
                .map_err(|e| e.to_string())
            });
            match done {
                Ok(report) => print_json(&report),
                Err(e) => Err(Failure::Failed(e.to_string())),
            }
        }
        BenchCommand::Keys {
            codes,
            dirty,
            passes,
        } => print_json(&crate::bench::key_throughput(codes, dirty, passes)),
    }
}
