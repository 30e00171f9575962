//! What the commands share: the runtime, the project and warehouse they
//! open, business dates, and how a run record is shown.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use super::{CommandResult, Done, Failure};
use crate::project::Project;

/// Which warehouse a reading command reads: a pipeline's, or an override.
#[derive(Debug, clap::Args)]
pub(super) struct WarehouseArgs {
    /// Project directory.
    #[arg(long, default_value = ".")]
    pub(super) project: PathBuf,
    /// Pipeline whose warehouse to read.
    #[arg(long, default_value = "nightly")]
    pub(super) pipeline: String,
    /// Warehouse URL, overriding the pipeline's.
    #[arg(long)]
    pub(super) warehouse: Option<String>,
}

/// An opened warehouse: store, prefix and URL.
pub(super) type Warehouse = (
    std::sync::Arc<dyn object_store::ObjectStore>,
    object_store::path::Path,
    String,
);

/// The warehouse of a pipeline of the project (or the override), for the
/// commands that read it.
pub(super) fn open_pipeline_warehouse(at: &WarehouseArgs) -> Result<Warehouse, Failure> {
    let project = load_project(&at.project)?;
    let Some(p) = project.pipelines.get(&at.pipeline) else {
        return Err(Failure::Usage(format!(
            "no pipeline {:?} in pipelines/",
            at.pipeline
        )));
    };
    warehouse_of(p, at.warehouse.as_deref())
}

/// A pipeline's warehouse (or the override).
pub(super) fn warehouse_of(
    pipeline: &crate::project::Pipeline,
    url: Option<&str>,
) -> Result<Warehouse, Failure> {
    crate::run::open_warehouse(pipeline, url, &Default::default())
        .map_err(|e| Failure::Failed(e.to_string()))
}

pub(super) fn print_json(value: &impl serde::Serialize) -> CommandResult {
    match serde_json::to_string(value) {
        Ok(text) => {
            outln!("{text}");
            Ok(Done::Ok)
        }
        Err(e) => Err(Failure::Failed(e.to_string())),
    }
}

/// Logs on standard error: readable lines when standard output is a
/// terminal, JSON lines (for the log collector) when it is not.
pub(super) fn init_tracing(default_filter: &str) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("QINGLIAN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if std::io::stdout().is_terminal() {
        builder.try_init()
    } else {
        builder.json().with_current_span(true).try_init()
    };
}

pub(super) fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// Runs a command's async body on a fresh runtime.
pub(super) fn block_on(body: impl std::future::Future<Output = CommandResult>) -> CommandResult {
    runtime().map_err(Failure::Failed)?.block_on(body)
}

/// A token cancelled on SIGINT or SIGTERM: a run stops at its next stage
/// boundary, a daemon starts nothing new.
pub(super) fn shutdown_on_signals() -> tokio_util::sync::CancellationToken {
    let token = tokio_util::sync::CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        crate::listen::shutdown_signal().await;
        errln!("shutdown requested: stopping at the next stage boundary");
        cancel.cancel();
    });
    token
}

/// The project at `root`, every configuration problem reported at once.
pub(super) fn load_project(root: &Path) -> Result<Project, Failure> {
    Project::load(root)
        .map_err(|errors| Failure::Config(errors.0.iter().map(ToString::to_string).collect()))
}

/// A business date as the CLI takes it: `YYYY-MM-DD` within the years data
/// can have (a typo such as `+262142-12-31` is refused, not run).
pub(super) fn business_date(text: &str) -> Result<NaiveDate, String> {
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

/// Yesterday in a time zone: the default business date.
pub(super) fn previous_day(tz: chrono_tz::Tz) -> NaiveDate {
    let today = chrono::Utc::now().with_timezone(&tz).date_naive();
    today.pred_opt().unwrap_or(today)
}

/// A run record as `run`, `backfill` and `status` show it.
pub(super) fn print_run(r: &crate::ledger::RunRecord) {
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
        // A merged snapshot: what it kept and what the delivery changed.
        if f.carried_over + f.upserted + f.deleted + f.tombstones > 0 {
            outln!(
                "    snapshot {} rows: {} carried over, {} upserted, {} deleted ({} tombstones)",
                f.rows,
                f.carried_over,
                f.upserted,
                f.deleted,
                f.tombstones
            );
        }
        // A feed of several parts reconciles part by part too.
        for p in f.parts.iter().filter(|_| f.parts.len() > 1) {
            let how = match (p.merge.as_str(), p.unchanged) {
                (m, true) => format!("{m}, unchanged"),
                ("snapshot", false) => String::new(),
                (m, false) => m.to_string(),
            };
            outln!(
                "    part {:<14} {:>6} {:>10} {:>10} {:>11} {:>10}  {how}",
                p.name,
                "",
                p.read,
                p.landed,
                p.quarantined,
                p.duplicates
            );
        }
    }
    if let Some(s) = &r.scoring {
        let colours: Vec<String> = ["green", "yellow", "orange", "red", "none"]
            .iter()
            .filter_map(|c| s.colours.get(*c).map(|n| format!("{c} {n}")))
            .collect();
        outln!(
            "scored {} organizations ({}), {} hits, {} colour changes; rules {}{}",
            s.profiles,
            colours.join(", "),
            s.hits,
            s.changes,
            s.rules_version,
            if s.engine.is_empty() {
                String::new()
            } else {
                format!("; on {}", s.engine)
            }
        );
        outln!(
            "  leads tonight {}, new since the previous version {} (unregistered subjects: the leads dataset)",
            s.leads,
            s.new_leads
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
