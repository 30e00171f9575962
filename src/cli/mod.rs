//! The command line: one file per command (its arguments and its
//! `execute`), one error type, and the exit codes chosen in one place
//! ([`main`]): 0 success, 1 the work failed, 2 usage or configuration,
//! 3 done but degraded.

/// Writes a line to standard output through [`Output`]: never a panic.
macro_rules! outln {
    ($($arg:tt)*) => {
        crate::cli::Output::Stdout.line(format_args!($($arg)*))
    };
}

/// Writes to standard output through [`Output`], without a newline.
macro_rules! out {
    ($($arg:tt)*) => {
        crate::cli::Output::Stdout.text(format_args!($($arg)*))
    };
}

/// Writes a line to standard error through [`Output`]: never a panic.
macro_rules! errln {
    ($($arg:tt)*) => {
        crate::cli::Output::Stderr.line(format_args!($($arg)*))
    };
}

mod backfill;
#[cfg(feature = "ballista")]
mod ballista;
mod bench;
mod brief;
mod deliver;
mod demo;
mod explain;
mod generate;
mod jobs;
mod output;
mod preview;
mod run;
mod schedule;
mod serve;
mod shared;
mod simulate;
mod status;
mod uscc;
mod validate;
mod warnings;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub(crate) use output::Output;

/// How a command that did its work ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    /// Everything it set out to do (exit 0).
    Ok,
    /// A run it made ended failed or interrupted; the run record it printed
    /// says why (exit 1).
    RunFailed,
    /// `validate` found problems and listed them (exit 2).
    Invalid,
    /// Done, but degraded: a feed held at its last good snapshot, a delivery
    /// still waiting (exit 3).
    Degraded,
}

/// Why a command could not do its work. Each kind says what the operator
/// does next; [`main`] prints it once and maps it to the exit code.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The command line or the project is wrong: fix it and run again (exit 2).
    #[error("error: {0}")]
    Usage(String),
    /// The project's configuration has problems, all of them listed (exit 2).
    #[error("{}configuration has {} problem(s); run `qinglian validate`", .0.iter().map(|d| format!("error: {d}\n")).collect::<String>(), .0.len())]
    Config(Vec<String>),
    /// The work failed: what the message names (a warehouse, a feed, the
    /// platform) must be fixed or come back before a retry (exit 1).
    #[error("error: {0}")]
    Failed(String),
    /// The work stopped part way; the message says how to resume (exit 1).
    #[error("{0}")]
    Stopped(String),
}

impl Failure {
    fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) | Self::Config(_) => 2,
            Self::Failed(_) | Self::Stopped(_) => 1,
        }
    }
}

impl Done {
    fn exit_code(self) -> u8 {
        match self {
            Self::Ok => 0,
            Self::RunFailed => 1,
            Self::Invalid => 2,
            Self::Degraded => 3,
        }
    }
}

/// What every command returns.
pub type CommandResult = Result<Done, Failure>;

#[derive(Debug, Parser)]
#[command(
    name = "qinglian",
    version,
    about = "Clean-social-organization data pipeline and integrity codes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The nightly job end to end on its embedded defaults: generated feeds
    /// served by the feed simulator, pushes to the platform simulator, a
    /// local warehouse. Needs no service and no secret.
    Demo(demo::DemoArgs),
    /// The public lookup (一码通查): pages, QR codes and JSON of every
    /// organization, from the newest verified published version.
    Serve(crate::serve::ServeArgs),
    /// Check every configuration file and plan every rule; exit 2 on any problem.
    Validate(validate::ValidateArgs),
    /// Read the first records of every part of a feed and show what they
    /// would become: missing and unmapped fields, canonical rows, quarantine.
    Preview(preview::PreviewArgs),
    /// Write the monthly or half-yearly briefing (workbooks and pages) of the
    /// city, each district and each supervising unit from published versions.
    Brief(crate::brief::BriefArgs),
    /// Unified social credit code tools.
    Uscc(uscc::UsccArgs),
    /// Run a job or pipeline for one business date.
    Run(run::RunArgs),
    /// Run the scheduler: every job on its cron until SIGINT or SIGTERM.
    Schedule(schedule::ScheduleArgs),
    /// Run a job for every business date from --from to --to, in order.
    Backfill(backfill::BackfillArgs),
    /// Job schedules.
    Jobs(jobs::JobsArgs),
    /// Send what waits in the outbox to the oversight platform now.
    Deliver(deliver::DeliverArgs),
    /// Serve a simulated oversight-platform intake on 127.0.0.1 (for the demo).
    SimulatePlatform(simulate::PlatformArgs),
    /// Explain an organization's colour: points, hits, dimensions, inputs, change.
    Explain(explain::ExplainArgs),
    /// Show the latest runs with per-feed reconciliation.
    Status(status::StatusArgs),
    /// List warnings (预警) with their states and deadlines.
    Warnings(warnings::WarningsArgs),
    /// Listen for dispositions pushed by the platform (POST /intake/dispositions).
    Intake(warnings::IntakeArgs),
    /// Serve generated feeds as the departments' paged JSON APIs on 127.0.0.1.
    SimulateFeeds(simulate::FeedsArgs),
    /// Measurements behind BENCHMARKS.md (driven by `bench/run`).
    Bench(bench::BenchArgs),
    /// Write deterministic synthetic feeds for every department, with ground truth.
    Generate(generate::GenerateArgs),
    /// Write what changed from one generated day to another as a delta API
    /// would deliver it (changed records, then tombstones), as NDJSON.
    GenerateDelta(generate::DeltaArgs),
    /// Run a node of a Ballista cluster that scores pipelines (feature `ballista`).
    #[cfg(feature = "ballista")]
    #[command(subcommand_required = true)]
    Ballista(ballista::BallistaArgs),
}

impl Command {
    /// What is logged when `QINGLIAN_LOG` is unset: warnings, and for the
    /// long-lived nodes of a cluster what they do (registrations, jobs).
    fn default_log_filter(&self) -> &'static str {
        #[cfg(feature = "ballista")]
        if matches!(self, Self::Ballista(_)) {
            return "info";
        }
        "warn"
    }
}

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    shared::init_tracing(cli.command.default_log_filter());
    let result = match cli.command {
        Command::Demo(args) => demo::execute(args),
        Command::Serve(args) => serve::execute(args),
        Command::Validate(args) => validate::execute(&args),
        Command::Preview(args) => preview::execute(args),
        Command::Brief(args) => brief::execute(args),
        Command::Uscc(args) => uscc::execute(args),
        Command::Run(args) => run::execute(args),
        Command::Schedule(args) => schedule::execute(args),
        Command::Backfill(args) => backfill::execute(args),
        Command::Jobs(args) => jobs::execute(args),
        Command::Deliver(args) => deliver::execute(args),
        Command::SimulatePlatform(args) => simulate::platform(args),
        Command::Explain(args) => explain::execute(args),
        Command::Status(args) => status::execute(args),
        Command::Warnings(args) => warnings::execute(args),
        Command::Intake(args) => warnings::intake(args),
        Command::SimulateFeeds(args) => simulate::feeds(args),
        Command::Bench(args) => bench::execute(args),
        Command::Generate(args) => generate::execute(args),
        Command::GenerateDelta(args) => generate::delta(&args),
        #[cfg(feature = "ballista")]
        Command::Ballista(args) => ballista::execute(args),
    };
    match result {
        Ok(done) => ExitCode::from(done.exit_code()),
        Err(failure) => {
            errln!("{failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}
