//! The command line: one subcommand per operator task, exit codes documented
//! in the README (0 success, 1 the run failed, 2 usage or configuration error).

use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::NaiveDate;
use clap::{Parser, Subcommand, ValueEnum};

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

use crate::generate::{self, GenerateOptions};
use crate::keys::{self, KeyClass};
use crate::project::Project;

/// Where every command writes what it shows. A reader that goes away
/// (`qinglian status | head -1`, a closed terminal) ends the output, not
/// the command: a run goes on to its end and its exit code, and nothing
/// more is written to that stream. `println!` would panic instead.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Output {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

static STDOUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static STDERR_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl Output {
    fn closed(self) -> &'static std::sync::atomic::AtomicBool {
        match self {
            Output::Stdout => &STDOUT_CLOSED,
            Output::Stderr => &STDERR_CLOSED,
        }
    }

    /// Whether the stream's reader went away.
    pub(crate) fn is_closed(self) -> bool {
        self.closed().load(std::sync::atomic::Ordering::Relaxed)
    }

    fn put(self, bytes: &[u8]) -> std::io::Result<()> {
        use std::sync::atomic::Ordering;
        if self.is_closed() {
            return Ok(());
        }
        let written = match self {
            Output::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(bytes).and_then(|()| out.flush())
            }
            Output::Stderr => std::io::stderr().lock().write_all(bytes),
        };
        match written {
            Err(e) => {
                // Whatever the failure (a closed pipe, a full disk), the
                // stream is done; a failure other than a closed pipe is said
                // once on the other stream.
                self.closed().store(true, Ordering::Relaxed);
                if e.kind() != std::io::ErrorKind::BrokenPipe
                    && let Output::Stdout = self
                {
                    Output::Stderr.line(format_args!("error: cannot write standard output: {e}"));
                }
                Err(e)
            }
            Ok(()) => Ok(()),
        }
    }

    /// Writes `text` and a newline.
    pub(crate) fn line(self, text: std::fmt::Arguments<'_>) {
        let _ = self.put(format!("{text}\n").as_bytes());
    }

    /// Writes `text`.
    pub(crate) fn text(self, text: std::fmt::Arguments<'_>) {
        let _ = self.put(text.to_string().as_bytes());
    }
}

/// For bulk output through a `BufWriter`: a closed stream swallows what
/// follows (the writer checks [`Output::is_closed`] to stop early).
impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = self.put(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Exit code of a usage or configuration error.
const EXIT_USAGE: u8 = 2;
/// Exit code of a failed run.
const EXIT_FAILED: u8 = 1;

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
    Demo {
        /// Organizations to generate (the Hangzhou tier is 10,000).
        #[arg(long, default_value_t = 10_000)]
        orgs: u64,
        /// Project directory.
        #[arg(long, default_value = ".")]
        project: PathBuf,
        /// Folder for the generated feeds and the HTTP copy of the project.
        #[arg(long, default_value = "demo")]
        out: PathBuf,
        /// Warehouse URL.
        #[arg(long, default_value = "warehouse")]
        warehouse: String,
        /// Then serve the public lookup (一码通查) of the result until Ctrl-C.
        #[arg(long)]
        serve: bool,
        /// Address of the public lookup with --serve.
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: std::net::SocketAddr,
    },
    /// The public lookup (一码通查): pages, QR codes and JSON of every
    /// organization, from the newest verified published version.
    Serve(crate::serve::ServeArgs),
    /// Check every configuration file and plan every rule; exit 2 on any problem.
    Validate {
        /// Project directory (holding schemas/, pipelines/, jobs/).
        #[arg(long, default_value = ".")]
        project: PathBuf,
    },
    /// Unified social credit code tools.
    Uscc {
        #[command(subcommand)]
        command: UsccCommand,
    },
    /// Run a job or pipeline for one business date.
    Run {
        /// A job (jobs/<name>.toml) or pipeline (pipelines/<name>.toml).
        name: String,
        /// Business date (YYYY-MM-DD); default: the job's policy, else yesterday in Asia/Shanghai.
        #[arg(long, value_parser = business_date)]
        date: Option<NaiveDate>,
        /// Project directory.
        #[arg(long, default_value = ".")]
        project: PathBuf,
        /// Warehouse URL, overriding the pipeline's.
        #[arg(long)]
        warehouse: Option<String>,
        /// Push every current code to the platform, not only the changes.
        #[arg(long)]
        full: bool,
        /// How long the run's lease lasts unless renewed (renewed every third
        /// of it): how long a crashed run blocks the date.
        #[arg(long, default_value_t = 300)]
        lease_seconds: u64,
    },
    /// Run the scheduler: every job on its cron until SIGINT or SIGTERM.
    Schedule {
        /// Project directory.
        #[arg(long, default_value = ".")]
        project: PathBuf,
        /// Folder of job files (default: the project's jobs/).
        #[arg(long)]
        jobs: Option<PathBuf>,
        /// Warehouse URL, overriding the pipelines'.
        #[arg(long)]
        warehouse: Option<String>,
        /// Serve Prometheus metrics at this address (e.g. 127.0.0.1:9464).
        #[arg(long)]
        metrics: Option<std::net::SocketAddr>,
    },
    /// Run a job for every business date from --from to --to, in order.
    Backfill {
        /// A job (jobs/<name>.toml) or pipeline.
        name: String,
        /// First business date.
        #[arg(long, value_parser = business_date)]
        from: NaiveDate,
        /// Last business date.
        #[arg(long, value_parser = business_date)]
        to: NaiveDate,
        /// Also re-run dates that are already published.
        #[arg(long)]
        force: bool,
        /// Project directory.
        #[arg(long, default_value = ".")]
        project: PathBuf,
        /// Warehouse URL, overriding the pipeline's.
        #[arg(long)]
        warehouse: Option<String>,
    },
    /// Job schedules.
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// Send what waits in the outbox to the oversight platform now.
    Deliver {
        #[command(flatten)]
        at: WarehouseArgs,
        /// First move the dead letters back to the outbox (after fixing the
        /// secret or the platform).
        #[arg(long)]
        requeue: bool,
    },
    /// Serve a simulated oversight-platform intake on 127.0.0.1 (for the demo).
    SimulatePlatform {
        /// Port (0 for any free port).
        #[arg(long, default_value_t = 8800)]
        port: u16,
        /// The variable holding the shared secret.
        #[arg(long, default_value = "QINGLIAN_PLATFORM_SECRET")]
        secret_env: String,
        /// Accepted clock difference of a signature's timestamp, seconds.
        #[arg(long, default_value_t = 300)]
        window_seconds: i64,
    },
    /// Explain an organization's colour: points, hits, dimensions, inputs, change.
    Explain {
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
    },
    /// Show the latest runs with per-feed reconciliation.
    Status {
        #[command(flatten)]
        at: WarehouseArgs,
        /// How many runs to show.
        #[arg(long, default_value_t = 5)]
        limit: usize,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Serve generated feeds as the departments' paged JSON APIs on 127.0.0.1.
    SimulateFeeds {
        /// A `qinglian generate` output directory.
        #[arg(long, default_value = "demo/feeds")]
        from: PathBuf,
        /// Port (0 for any free port).
        #[arg(long, default_value_t = 8700)]
        port: u16,
        /// Require `Authorization: Bearer <token>`, the token read from this variable.
        #[arg(long)]
        token_env: Option<String>,
        /// Write a copy of the project whose sources fetch from this simulator.
        #[arg(long)]
        project_out: Option<PathBuf>,
        /// The project to copy for --project-out.
        #[arg(long, default_value = ".")]
        project: PathBuf,
    },
    /// Measurements behind BENCHMARKS.md (driven by `bench/run`).
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Write deterministic synthetic feeds for every department, with ground truth.
    Generate {
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
    },
}

/// Which warehouse a reading command reads: a pipeline's, or an override.
#[derive(Debug, clap::Args)]
struct WarehouseArgs {
    /// Project directory.
    #[arg(long, default_value = ".")]
    project: PathBuf,
    /// Pipeline whose warehouse to read.
    #[arg(long, default_value = "nightly")]
    pipeline: String,
    /// Warehouse URL, overriding the pipeline's.
    #[arg(long)]
    warehouse: Option<String>,
}

#[derive(Debug, Subcommand)]
enum JobsCommand {
    /// Print the next fire times of a job (or of --cron/--tz) and the
    /// business date each would process.
    Next {
        /// A job of the project.
        job: Option<String>,
        /// A cron expression instead of a job (5-field crontab or 6-field with seconds).
        #[arg(long, conflicts_with = "job")]
        cron: Option<String>,
        /// Time zone of --cron.
        #[arg(long, default_value = "Asia/Shanghai")]
        tz: String,
        /// Start after this instant (RFC 3339; default now).
        #[arg(long)]
        after: Option<chrono::DateTime<chrono::Utc>>,
        /// How many fire times.
        #[arg(long, default_value_t = 5)]
        count: usize,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Project directory.
        #[arg(long, default_value = ".")]
        project: PathBuf,
    },
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

#[derive(Debug, Subcommand)]
enum UsccCommand {
    /// Classify one key per line of FILE (or standard input) and print one result per line.
    Check {
        /// Input file, or - for standard input.
        #[arg(default_value = "-")]
        input: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = CheckFormat::Tsv)]
        format: CheckFormat,
        /// Print a header line first (TSV only).
        #[arg(long)]
        header: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CheckFormat {
    /// Tab-separated columns.
    Tsv,
    /// One JSON object per line.
    Jsonl,
}

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    match cli.command {
        Command::Validate { project } => validate(&project),
        Command::Serve(args) => with_runtime(|rt| match rt.block_on(crate::serve::execute(args)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e @ crate::serve::ServeError::Config(_)) => {
                errln!("error: {e}");
                ExitCode::from(EXIT_USAGE)
            }
            Err(e) => {
                errln!("error: {e}");
                ExitCode::from(EXIT_FAILED)
            }
        }),
        Command::SimulateFeeds {
            from,
            port,
            token_env,
            project_out,
            project,
        } => with_runtime(|rt| {
            rt.block_on(async {
                let token = token_env.and_then(|v| std::env::var(v).ok());
                match crate::simulator::FeedSimulator::start(&from, port, token).await {
                    Ok(sim) => {
                        if let Some(out) = project_out {
                            let written =
                                crate::simulator::write_http_project(&project, &out, &sim.url());
                            if let Err(e) = written {
                                errln!("error: cannot write {}: {e}", out.display());
                                return ExitCode::from(EXIT_FAILED);
                            }
                            outln!(
                                "wrote {0}: run it with `qinglian run nightly --project {0}`",
                                out.display()
                            );
                        }
                        outln!(
                            "serving {} at {}/api/<feed> (Ctrl-C stops)",
                            from.display(),
                            sim.url()
                        );
                        sim.wait().await;
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        errln!("error: cannot serve {}: {e}", from.display());
                        ExitCode::from(EXIT_FAILED)
                    }
                }
            })
        }),
        Command::Run {
            name,
            date,
            project,
            warehouse,
            full,
            lease_seconds,
        } => with_runtime(|rt| {
            rt.block_on(run(
                &project,
                &name,
                date,
                warehouse,
                full,
                std::time::Duration::from_secs(lease_seconds.max(3)),
            ))
        }),
        Command::Demo {
            orgs,
            project,
            out,
            warehouse,
            serve,
            addr,
        } => with_runtime(|rt| {
            let lookup = crate::serve::ServeArgs::for_demo(&project, &warehouse, addr);
            rt.block_on(async {
                let options = crate::demo::DemoOptions {
                    project,
                    out,
                    warehouse,
                    orgs,
                    business_date: NaiveDate::from_ymd_opt(2026, 11, 28).unwrap_or_default(),
                };
                match crate::demo::demo(&options).await {
                    Ok(summary) => {
                        out!("{}", crate::demo::render(&summary));
                        match crate::serve::demo_lookup(&lookup, serve).await {
                            Ok(line) => outln!("{line}"),
                            Err(e) => errln!("error: the public lookup: {e}"),
                        }
                        if serve && let Err(e) = crate::serve::execute(lookup).await {
                            errln!("error: the public lookup: {e}");
                            return ExitCode::from(EXIT_FAILED);
                        }
                        match summary.run.status {
                            crate::ledger::RunStatus::Succeeded => ExitCode::SUCCESS,
                            crate::ledger::RunStatus::Degraded => ExitCode::from(EXIT_DEGRADED),
                            _ => ExitCode::from(EXIT_FAILED),
                        }
                    }
                    Err(e) => {
                        errln!("error: {e}");
                        ExitCode::from(EXIT_FAILED)
                    }
                }
            })
        }),
        Command::Schedule {
            project,
            jobs,
            warehouse,
            metrics,
        } => {
            with_runtime(|rt| rt.block_on(schedule(&project, jobs.as_deref(), warehouse, metrics)))
        }
        Command::Backfill {
            name,
            from,
            to,
            force,
            project,
            warehouse,
        } => with_runtime(|rt| rt.block_on(backfill(&project, &name, from, to, force, warehouse))),
        Command::Jobs {
            command:
                JobsCommand::Next {
                    job,
                    cron,
                    tz,
                    after,
                    count,
                    json,
                    project,
                },
        } => jobs_next(
            &project,
            job.as_deref(),
            cron.as_deref(),
            &tz,
            after,
            count,
            json,
        ),
        Command::Deliver { at, requeue } => with_runtime(|rt| rt.block_on(deliver(&at, requeue))),
        Command::SimulatePlatform {
            port,
            secret_env,
            window_seconds,
        } => {
            let Some(secret) = std::env::var(&secret_env).ok().filter(|s| !s.is_empty()) else {
                errln!("error: {secret_env} is not set; the simulator checks signatures with it");
                return ExitCode::from(EXIT_USAGE);
            };
            with_runtime(|rt| {
                rt.block_on(async {
                    match crate::platform::PlatformSimulator::start(
                        port,
                        secret.as_bytes(),
                        window_seconds,
                    )
                    .await
                    {
                        Ok(sim) => {
                            outln!(
                                "oversight platform simulator at {} (GET /_stats counts what it accepted; Ctrl-C stops)",
                                sim.url()
                            );
                            sim.wait().await;
                            ExitCode::SUCCESS
                        }
                        Err(e) => {
                            errln!("error: cannot listen on 127.0.0.1:{port}: {e}");
                            ExitCode::from(EXIT_FAILED)
                        }
                    }
                })
            })
        }
        Command::Explain {
            uscc,
            date,
            at,
            json,
        } => with_runtime(|rt| rt.block_on(explain(&at, &uscc, date, json))),
        Command::Status { at, limit, json } => {
            with_runtime(|rt| rt.block_on(status(&at, limit, json)))
        }
        Command::Uscc {
            command:
                UsccCommand::Check {
                    input,
                    format,
                    header,
                },
        } => match uscc_check(&input, format, header) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                errln!("error: {e}");
                ExitCode::from(EXIT_USAGE)
            }
        },
        Command::Bench { command } => bench(command),
        Command::Generate {
            orgs,
            seed,
            as_of,
            out,
            day,
        } => {
            let options = GenerateOptions {
                orgs,
                seed,
                as_of,
                day,
            };
            match runtime().and_then(|rt| {
                rt.block_on(generate::generate_to_url(&options, &out))
                    .map_err(|e| e.to_string())
            }) {
                Ok(summary) => {
                    outln!("{summary}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    errln!("error: {e}");
                    ExitCode::from(EXIT_FAILED)
                }
            }
        }
    }
}

fn bench(command: BenchCommand) -> ExitCode {
    match command {
        BenchCommand::Baseline {
            project,
            pipeline,
            feeds,
            out,
            partitions,
        } => {
            let project = match load_project(&project) {
                Ok(p) => p,
                Err(code) => return code,
            };
            let Some(pipeline) = project.pipelines.get(&pipeline) else {
                errln!("error: no pipeline {pipeline:?} in the project");
                return ExitCode::from(EXIT_USAGE);
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
                Err(e) => {
                    errln!("error: {e}");
                    ExitCode::from(EXIT_FAILED)
                }
            }
        }
        BenchCommand::Keys {
            codes,
            dirty,
            passes,
        } => print_json(&crate::bench::key_throughput(codes, dirty, passes)),
    }
}

fn print_json(value: &impl serde::Serialize) -> ExitCode {
    match serde_json::to_string(value) {
        Ok(text) => {
            outln!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            errln!("error: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// Logs on standard error: readable lines when standard output is a
/// terminal, JSON lines (for the log collector) when it is not.
fn init_tracing() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("QINGLIAN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if std::io::stdout().is_terminal() {
        builder.try_init()
    } else {
        builder.json().with_current_span(true).try_init()
    };
}

/// The progress display of an interactive run: feeds fetched, rows landed,
/// the current stage.
struct CliProgress {
    bar: indicatif::ProgressBar,
    rows: std::sync::atomic::AtomicU64,
}

impl CliProgress {
    /// A display on standard error when it is a terminal.
    fn for_terminal(feeds: usize) -> Option<std::sync::Arc<Self>> {
        use std::io::IsTerminal;
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let bar = indicatif::ProgressBar::new(feeds as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:24} {pos}/{len} feeds · {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        Some(std::sync::Arc::new(Self {
            bar,
            rows: std::sync::atomic::AtomicU64::new(0),
        }))
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl crate::run::Progress for CliProgress {
    fn stage(&self, stage: &str) {
        let rows = self.rows.load(std::sync::atomic::Ordering::Relaxed);
        self.bar
            .set_message(format!("{rows} rows landed · {stage}"));
    }

    fn feed_done(&self, feed: &crate::ledger::FeedRecord) {
        let rows = self
            .rows
            .fetch_add(feed.landed, std::sync::atomic::Ordering::Relaxed)
            + feed.landed;
        self.bar.inc(1);
        self.bar.set_message(
            format!("{rows} rows landed · {} {:?}", feed.feed, feed.status).to_lowercase(),
        );
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

fn with_runtime(f: impl FnOnce(&tokio::runtime::Runtime) -> ExitCode) -> ExitCode {
    match runtime() {
        Ok(rt) => f(&rt),
        Err(e) => {
            errln!("error: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// A token cancelled on SIGINT or SIGTERM: a run stops at its next stage
/// boundary, a daemon starts nothing new.
fn shutdown_on_signals() -> tokio_util::sync::CancellationToken {
    let token = tokio_util::sync::CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = terminate => {}
        }
        errln!("shutdown requested: stopping at the next stage boundary");
        cancel.cancel();
    });
    token
}

/// Exit code of a run that completed degraded.
const EXIT_DEGRADED: u8 = 3;

fn load_project(root: &std::path::Path) -> Result<Project, ExitCode> {
    Project::load(root).map_err(|errors| {
        for d in &errors.0 {
            errln!("error: {d}");
        }
        errln!(
            "configuration has {} problem(s); run `qinglian validate`",
            errors.0.len()
        );
        ExitCode::from(EXIT_USAGE)
    })
}

/// Yesterday in a time zone: the default business date.
/// A business date as the CLI takes it: `YYYY-MM-DD` within the years data
/// can have (a typo such as `+262142-12-31` is refused, not run).
fn business_date(text: &str) -> Result<NaiveDate, String> {
    use crate::project::{DEFAULT_EARLIEST, DEFAULT_LATEST};
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|e| format!("{text:?} is not a date YYYY-MM-DD: {e}"))?;
    if (DEFAULT_EARLIEST..=DEFAULT_LATEST).contains(&date) {
        Ok(date)
    } else {
        Err(format!(
            "{date} is outside the business dates qinglian runs ({DEFAULT_EARLIEST} to {DEFAULT_LATEST})"
        ))
    }
}

fn previous_day(tz: chrono_tz::Tz) -> NaiveDate {
    let today = chrono::Utc::now().with_timezone(&tz).date_naive();
    today.pred_opt().unwrap_or(today)
}

async fn run(
    root: &std::path::Path,
    name: &str,
    date: Option<NaiveDate>,
    warehouse: Option<String>,
    full: bool,
    lease_ttl: std::time::Duration,
) -> ExitCode {
    let project = match load_project(root) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let (pipeline, tz) = match project.jobs.get(name) {
        Some(job) => (job.pipeline.clone(), job.timezone),
        None => (name.to_string(), chrono_tz::Asia::Shanghai),
    };
    let business_date = date.unwrap_or_else(|| previous_day(tz));
    let feeds = project
        .pipelines
        .get(&pipeline)
        .map_or(0, |p| p.sources.len());
    let progress = CliProgress::for_terminal(feeds);
    let options = crate::run::RunOptions {
        warehouse,
        full,
        lease_ttl,
        cancel: shutdown_on_signals(),
        progress: progress
            .clone()
            .map(|p| p as std::sync::Arc<dyn crate::run::Progress>),
        ..crate::run::RunOptions::new(business_date)
    };
    let result = crate::run::run_pipeline(&project, &pipeline, options).await;
    if let Some(p) = &progress {
        p.finish();
    }
    let record = match result {
        Ok(r) => r,
        Err(e @ crate::run::RunError::Config(_)) => {
            errln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
        Err(e) => {
            errln!("error: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    print_run(&record);
    match record.status {
        crate::ledger::RunStatus::Succeeded => ExitCode::SUCCESS,
        crate::ledger::RunStatus::Degraded => ExitCode::from(EXIT_DEGRADED),
        _ => ExitCode::from(EXIT_FAILED),
    }
}

fn print_run(r: &crate::ledger::RunRecord) {
    outln!(
        "run {} ({} {}) {:?}{}",
        r.run_id,
        r.pipeline,
        r.business_date,
        r.status,
        r.error
            .as_ref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default()
    );
    outln!(
        "  {:<16} {:>8} {:>10} {:>10} {:>11} {:>10}  note",
        "feed",
        "status",
        "read",
        "landed",
        "quarantined",
        "duplicates"
    );
    for f in &r.feeds {
        let status = format!("{:?}", f.status).to_lowercase();
        let note = f.error.clone().unwrap_or_else(|| {
            if f.missing_fields.is_empty() {
                String::new()
            } else {
                format!("fields missing: {}", f.missing_fields.join(", "))
            }
        });
        outln!(
            "  {:<16} {:>8} {:>10} {:>10} {:>11} {:>10}  {note}",
            f.feed,
            status,
            f.read,
            f.landed,
            f.quarantined,
            f.duplicates
        );
    }
    if let Some(s) = &r.scoring {
        let colours: Vec<String> = ["green", "yellow", "orange", "red", "none"]
            .iter()
            .filter_map(|c| s.colours.get(*c).map(|n| format!("{c} {n}")))
            .collect();
        outln!(
            "scored {} organizations ({}), {} hits, {} colour changes; rules {}",
            s.profiles,
            colours.join(", "),
            s.hits,
            s.changes,
            s.rules_version
        );
    }
    let held: Vec<&str> = r
        .feeds
        .iter()
        .filter(|f| f.status == crate::ledger::FeedStatus::Held)
        .map(|f| f.feed.as_str())
        .collect();
    if !held.is_empty() {
        outln!(
            "  degraded: held at their last good snapshot: {}",
            held.join(", ")
        );
    }
    if let Some(s) = r.scoring.as_ref().filter(|s| !s.stale.is_empty()) {
        outln!(
            "  stale inputs (older than their max_age_days): {}",
            s.stale.join(", ")
        );
    }
    if let Some(m) = &r.manifest {
        outln!("  published: {m}");
    }
    if !r.stage_ms.is_empty() {
        let stages: Vec<String> = ["ingest", "score", "publish", "deliver", "drop"]
            .iter()
            .filter_map(|st| r.stage_ms.get(*st).map(|ms| format!("{st} {ms} ms")))
            .collect();
        outln!("  timings: {}", stages.join(", "));
    }
    let usage: Vec<String> = ["ingest", "score", "publish", "deliver", "drop"]
        .iter()
        .filter_map(|st| r.stage_usage.get(*st).map(|u| (st, u)))
        .filter_map(|(st, u)| {
            let mib = |b: u64| format!("{:.1} MiB", b as f64 / 1_048_576.0);
            let peak = u.peak_rss_kib.map(|k| format!("peak {}", mib(k * 1024)));
            let read = u.read_bytes.map(|b| format!("read {}", mib(b)));
            let wrote = u.written_bytes.map(|b| format!("wrote {}", mib(b)));
            let parts: Vec<String> = [peak, read, wrote].into_iter().flatten().collect();
            (!parts.is_empty()).then(|| format!("{st} {}", parts.join(" ")))
        })
        .collect();
    if !usage.is_empty() {
        outln!("  resources: {}", usage.join("; "));
    }
    if let Some(d) = &r.delivery {
        outln!(
            "  delivery to {}: {} {} batch(es), {} rows ({} queued, {} acknowledged before); this run acknowledged {} batch(es) ({} rows) in {} request(s), parked {}, {} waiting{}",
            d.endpoint,
            d.batches,
            d.kind,
            d.rows,
            d.queued,
            d.already_acknowledged,
            d.acknowledged,
            d.acknowledged_rows,
            d.requests,
            d.parked,
            d.pending,
            d.error
                .as_ref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
    }
    if let Some(rep) = &r.report {
        outln!("  report: {rep}");
    }
    if let Some(d) = &r.drop {
        match &d.error {
            None => outln!(
                "  dropped to {}: {} file(s), {} bytes, then the manifest",
                d.url,
                d.files,
                d.bytes
            ),
            Some(e) => outln!("  drop to {} incomplete: {e}", d.url),
        }
    }
}

/// An opened warehouse: store, prefix and URL.
type Warehouse = (
    std::sync::Arc<dyn object_store::ObjectStore>,
    object_store::path::Path,
    String,
);

/// The warehouse of a pipeline of the project (or the override), for the
/// commands that read it.
fn open_pipeline_warehouse(at: &WarehouseArgs) -> Result<Warehouse, ExitCode> {
    let project = load_project(&at.project)?;
    let Some(p) = project.pipelines.get(&at.pipeline) else {
        errln!("error: no pipeline {:?} in pipelines/", at.pipeline);
        return Err(ExitCode::from(EXIT_USAGE));
    };
    warehouse_of(p, at.warehouse.as_deref())
}

/// A pipeline's warehouse (or the override), the error printed.
fn warehouse_of(
    pipeline: &crate::project::Pipeline,
    url: Option<&str>,
) -> Result<Warehouse, ExitCode> {
    crate::run::open_warehouse(pipeline, url, &Default::default()).map_err(|e| {
        errln!("error: {e}");
        ExitCode::from(EXIT_FAILED)
    })
}

async fn status(at: &WarehouseArgs, limit: usize, json: bool) -> ExitCode {
    let (store, prefix, url) = match open_pipeline_warehouse(at) {
        Ok(w) => w,
        Err(code) => return code,
    };
    let outbox = crate::deliver::Outbox::new(std::sync::Arc::clone(&store), prefix.clone());
    let runs = match crate::ledger::Ledger::new(store, prefix).all_runs().await {
        Ok(r) => r,
        Err(e) => {
            errln!("error: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let runs: Vec<_> = runs.into_iter().take(limit).collect();
    let outbox = match OutboxView::read(&outbox).await {
        Ok(o) => o,
        Err(e) => {
            errln!("error: {e}");
            return ExitCode::from(EXIT_FAILED);
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
                errln!("error: {e}");
                return ExitCode::from(EXIT_FAILED);
            }
        }
        return ExitCode::SUCCESS;
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
    for j in &jobs {
        outln!(
            "job {}: next tick {} ({}) processes {}",
            j["job"].as_str().unwrap_or_default(),
            j["next_fire_utc"].as_str().unwrap_or_default(),
            j["next_fire_local"].as_str().unwrap_or_default(),
            j["business_date"].as_str().unwrap_or_default()
        );
    }
    ExitCode::SUCCESS
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

async fn deliver(at: &WarehouseArgs, requeue: bool) -> ExitCode {
    let project = match load_project(&at.project) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let Some(pipeline) = project.pipelines.get(&at.pipeline) else {
        errln!("error: no pipeline {:?} in pipelines/", at.pipeline);
        return ExitCode::from(EXIT_USAGE);
    };
    let endpoint = match crate::deliver::Endpoint::resolve(pipeline, &Default::default()) {
        Ok(Some(e)) => e,
        Ok(None) => {
            errln!(
                "error: pipeline {} has no push endpoint (set the variable its [push] endpoint names)",
                pipeline.name
            );
            return ExitCode::from(EXIT_USAGE);
        }
        Err(e) => {
            errln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let (store, prefix, _) = match open_pipeline_warehouse(at) {
        Ok(w) => w,
        Err(code) => return code,
    };
    let outbox = crate::deliver::Outbox::new(store, prefix);
    if requeue {
        match outbox.requeue_dead().await {
            Ok(n) => outln!("moved {n} dead letter(s) back to the outbox"),
            Err(e) => {
                errln!("error: {e}");
                return ExitCode::from(EXIT_FAILED);
            }
        }
    }
    let mut summary = crate::deliver::DeliverySummary {
        endpoint: endpoint.display_url(),
        ..Default::default()
    };
    if let Err(e) =
        crate::deliver::drain(&outbox, &endpoint, &crate::run::SystemClock, &mut summary).await
    {
        errln!("error: {e}");
        return ExitCode::from(EXIT_FAILED);
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
    if summary.complete() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_DEGRADED)
    }
}

async fn explain(at: &WarehouseArgs, uscc: &str, date: Option<NaiveDate>, json: bool) -> ExitCode {
    let (store, prefix, _) = match open_pipeline_warehouse(at) {
        Ok(w) => w,
        Err(code) => return code,
    };
    match crate::explain::explain(store, prefix, uscc, date).await {
        Ok(e) if json => match serde_json::to_string_pretty(&e) {
            Ok(text) => {
                outln!("{text}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                errln!("error: {err}");
                ExitCode::from(EXIT_FAILED)
            }
        },
        Ok(e) => {
            out!("{}", crate::explain::render(&e));
            ExitCode::SUCCESS
        }
        Err(e @ crate::explain::ExplainError::Key(_)) => {
            errln!("error: {e}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(e) => {
            errln!("error: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

fn validate(root: &std::path::Path) -> ExitCode {
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            errln!("error: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    match rt.block_on(Project::validate(root)) {
        Ok(project) => {
            for note in &project.notes {
                outln!("note: {note}");
            }
            outln!("ok: {}", project.summary());
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for d in &errors.0 {
                outln!("error: {d}");
            }
            outln!("{} problem(s) found in {}", errors.0.len(), root.display());
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// One line of `uscc check` output.
#[derive(serde::Serialize)]
struct CheckRow<'a> {
    input: &'a str,
    valid: bool,
    normalized: &'a str,
    class: &'static str,
    reason: String,
    authority: &'static str,
    #[serde(rename = "type")]
    org_type: &'static str,
    division: &'a str,
    division_name: &'static str,
    warning: String,
}

const CHECK_COLUMNS: [&str; 10] = [
    "input",
    "valid",
    "normalized",
    "class",
    "reason",
    "authority",
    "type",
    "division",
    "division_name",
    "warning",
];

fn tsv_field(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\t', "\\t")
}

fn uscc_check(input: &str, format: CheckFormat, header: bool) -> Result<(), String> {
    let reader: Box<dyn BufRead> = if input == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let file = std::fs::File::open(input).map_err(|e| format!("cannot open {input}: {e}"))?;
        Box::new(std::io::BufReader::new(file))
    };
    let mut out = BufWriter::new(Output::Stdout);
    let write_err = |e: std::io::Error| format!("cannot write output: {e}");
    if header && matches!(format, CheckFormat::Tsv) {
        writeln!(out, "{}", CHECK_COLUMNS.join("\t")).map_err(write_err)?;
    }
    let mut buf = Vec::with_capacity(64);
    let mut reader = reader;
    let mut line_no = 0u64;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| format!("cannot read {input}: {e}"))?;
        if n == 0 || Output::Stdout.is_closed() {
            break;
        }
        line_no += 1;
        let mut bytes = buf.as_slice();
        if line_no == 1 {
            bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        }
        bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        let line = std::str::from_utf8(bytes)
            .map_err(|e| format!("{input}: line {line_no}: not UTF-8 ({e})"))?;
        let check = keys::classify(line);
        let mut warnings = Vec::new();
        let invisible = keys::invisible_chars(line);
        if !invisible.is_empty() {
            let listed: Vec<String> = invisible
                .iter()
                .map(|(at, c)| format!("U+{:04X} at {at}", u32::from(*c)))
                .collect();
            warnings.push(format!(
                "invisible characters removed: {}",
                listed.join(", ")
            ));
        }
        let decoded = if check.normalized.len() == 18 && check.normalized.is_ascii() {
            keys::decode(&check.normalized)
        } else {
            keys::Decoded::default()
        };
        let row = CheckRow {
            input: line,
            valid: check.class == KeyClass::Valid,
            normalized: &check.normalized,
            class: check.class.as_str(),
            reason: check
                .reason
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            authority: decoded.authority.unwrap_or(""),
            org_type: decoded.org_type.unwrap_or(""),
            division: &decoded.division_code,
            division_name: decoded.division.unwrap_or(""),
            warning: {
                warnings.extend(decoded.warnings.iter().map(ToString::to_string));
                warnings.join("; ")
            },
        };
        match format {
            CheckFormat::Jsonl => {
                serde_json::to_writer(&mut out, &row).map_err(|e| e.to_string())?;
                out.write_all(b"\n").map_err(write_err)?;
            }
            CheckFormat::Tsv => {
                let fields = [
                    tsv_field(row.input),
                    row.valid.to_string(),
                    tsv_field(row.normalized),
                    row.class.to_string(),
                    row.reason,
                    row.authority.to_string(),
                    row.org_type.to_string(),
                    row.division.to_string(),
                    row.division_name.to_string(),
                    row.warning,
                ];
                writeln!(out, "{}", fields.join("\t")).map_err(write_err)?;
            }
        }
    }
    out.flush().map_err(write_err)
}

fn jobs_next(
    root: &std::path::Path,
    job: Option<&str>,
    cron: Option<&str>,
    tz: &str,
    after: Option<chrono::DateTime<chrono::Utc>>,
    count: usize,
    json: bool,
) -> ExitCode {
    use chrono::SecondsFormat;
    let (name, expr, schedule, zone, policy) = match (job, cron) {
        (Some(name), _) => {
            let project = match load_project(root) {
                Ok(p) => p,
                Err(code) => return code,
            };
            let Some(j) = project.jobs.get(name) else {
                errln!(
                    "error: no job {name:?} in jobs/ (jobs: {})",
                    project.jobs.keys().cloned().collect::<Vec<_>>().join(", ")
                );
                return ExitCode::from(EXIT_USAGE);
            };
            (
                name.to_string(),
                j.cron.clone(),
                j.schedule.clone(),
                j.timezone,
                j.business_date,
            )
        }
        (None, Some(expr)) => {
            let schedule = match crate::project::parse_cron(expr) {
                Ok((s, _)) => s,
                Err(e) => {
                    errln!("error: --cron {expr:?}: {e}");
                    return ExitCode::from(EXIT_USAGE);
                }
            };
            let zone: chrono_tz::Tz = match tz.parse() {
                Ok(z) => z,
                Err(_) => {
                    errln!("error: --tz {tz:?}: not an IANA time zone (e.g. Asia/Shanghai)");
                    return ExitCode::from(EXIT_USAGE);
                }
            };
            (
                String::new(),
                expr.to_string(),
                schedule,
                zone,
                crate::project::BusinessDatePolicy::PreviousDay,
            )
        }
        (None, None) => {
            errln!("error: name a job or give --cron");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let after = after.unwrap_or_else(chrono::Utc::now);
    let fires = crate::schedule::next_fires(&schedule, zone, after, count);
    let rows: Vec<serde_json::Value> = fires
        .iter()
        .map(|f| {
            serde_json::json!({
                "utc": f.to_rfc3339_opts(SecondsFormat::Secs, true),
                "local": f.with_timezone(&zone).to_rfc3339_opts(SecondsFormat::Secs, false),
                "business_date": crate::schedule::business_date(policy, zone, *f).to_string(),
            })
        })
        .collect();
    if json {
        let doc = serde_json::json!({
            "job": if name.is_empty() { serde_json::Value::Null } else { name.clone().into() },
            "cron": expr,
            "timezone": zone.name(),
            "fires": rows,
        });
        outln!("{doc:#}");
    } else {
        outln!(
            "{} {expr:?} in {} after {}:",
            if name.is_empty() {
                "cron".to_string()
            } else {
                format!("job {name}")
            },
            zone.name(),
            after.to_rfc3339_opts(SecondsFormat::Secs, true)
        );
        for f in &fires {
            outln!(
                "  {}  {}  processes {}",
                f.to_rfc3339_opts(SecondsFormat::Secs, true),
                f.with_timezone(&zone).format("%Y-%m-%d %H:%M:%S %:z"),
                crate::schedule::business_date(policy, zone, *f)
            );
        }
    }
    ExitCode::SUCCESS
}

async fn schedule(
    root: &std::path::Path,
    jobs_dir: Option<&std::path::Path>,
    warehouse: Option<String>,
    metrics: Option<std::net::SocketAddr>,
) -> ExitCode {
    let loaded = match jobs_dir {
        Some(dir) => Project::load_with_jobs(root, dir),
        None => Project::load(root),
    };
    let project = match loaded {
        Ok(p) => p,
        Err(errors) => {
            for d in &errors.0 {
                errln!("error: {d}");
            }
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let jobs: Vec<crate::project::Job> = project.jobs.values().cloned().collect();
    let Some(first) = jobs.first() else {
        errln!("error: no job to schedule in jobs/");
        return ExitCode::from(EXIT_USAGE);
    };
    let Some(pipeline) = project.pipelines.get(&first.pipeline) else {
        errln!("error: job {} names no pipeline of pipelines/", first.name);
        return ExitCode::from(EXIT_USAGE);
    };
    let (store, prefix, url) = match warehouse_of(pipeline, warehouse.as_deref()) {
        Ok(w) => w,
        Err(code) => return code,
    };
    let shutdown = shutdown_on_signals();
    let observer = std::sync::Arc::new(crate::metrics::Metrics::new());
    if let Some(addr) = metrics {
        match crate::metrics::serve(std::sync::Arc::clone(&observer), addr).await {
            Ok(bound) => errln!("metrics at http://{bound}/metrics"),
            Err(e) => {
                errln!("error: cannot serve metrics on {addr}: {e}");
                return ExitCode::from(EXIT_FAILED);
            }
        }
    }
    for j in &jobs {
        if let Some(next) =
            crate::schedule::next_fires(&j.schedule, j.timezone, chrono::Utc::now(), 1).first()
        {
            errln!(
                "job {}: pipeline {}, next tick {} ({}), warehouse {}",
                j.name,
                j.pipeline,
                next.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                next.with_timezone(&j.timezone).format("%Y-%m-%d %H:%M %:z"),
                crate::store::redact(&url)
            );
        }
    }
    let runner = crate::schedule::PipelineRunner {
        project: project.clone(),
        warehouse,
        progress: None,
        metrics: Some(std::sync::Arc::clone(&observer)),
    };
    let mut scheduler = crate::schedule::Scheduler::new(
        jobs,
        std::sync::Arc::new(crate::run::SystemClock),
        crate::ledger::Ledger::new(store, prefix),
        runner,
        shutdown,
    )
    .observe(observer);
    scheduler.run(None).await;
    errln!("scheduler stopped");
    ExitCode::SUCCESS
}

async fn backfill(
    root: &std::path::Path,
    name: &str,
    from: NaiveDate,
    to: NaiveDate,
    force: bool,
    warehouse: Option<String>,
) -> ExitCode {
    let project = match load_project(root) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let pipeline_name = project
        .jobs
        .get(name)
        .map_or_else(|| name.to_string(), |j| j.pipeline.clone());
    let Some(pipeline) = project.pipelines.get(&pipeline_name) else {
        errln!("error: no job or pipeline {name:?}");
        return ExitCode::from(EXIT_USAGE);
    };
    if from > to {
        errln!("error: --from {from} is after --to {to}");
        return ExitCode::from(EXIT_USAGE);
    }
    let (store, prefix, _) = match warehouse_of(pipeline, warehouse.as_deref()) {
        Ok(w) => w,
        Err(code) => return code,
    };
    let shutdown = shutdown_on_signals();
    let mut degraded = false;
    for date in from.iter_days().take_while(|d| *d <= to) {
        if shutdown.is_cancelled() {
            errln!("backfill stopped before {date}; run it again to resume");
            return ExitCode::from(EXIT_FAILED);
        }
        if !force {
            match crate::publish::Published::latest(&store, &prefix, date).await {
                Ok(Some(p)) => {
                    outln!(
                        "{date}: already published by {} (skipped; --force re-runs it)",
                        p.manifest.run_id
                    );
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    errln!("error: {date}: {e}");
                    return ExitCode::from(EXIT_FAILED);
                }
            }
        }
        let options = crate::run::RunOptions {
            warehouse: warehouse.clone(),
            cancel: shutdown.clone(),
            ..crate::run::RunOptions::new(date)
        };
        match crate::run::run_pipeline(&project, &pipeline_name, options).await {
            Ok(record) => {
                print_run(&record);
                match record.status {
                    crate::ledger::RunStatus::Succeeded => {}
                    crate::ledger::RunStatus::Degraded => degraded = true,
                    _ => {
                        errln!(
                            "backfill stopped at {date}; fix it and run the same command to resume"
                        );
                        return ExitCode::from(EXIT_FAILED);
                    }
                }
            }
            Err(e @ crate::run::RunError::Config(_)) => {
                errln!("error: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
            Err(e) => {
                errln!("error: {date}: {e}");
                return ExitCode::from(EXIT_FAILED);
            }
        }
    }
    if degraded {
        ExitCode::from(EXIT_DEGRADED)
    } else {
        ExitCode::SUCCESS
    }
}
