//! `qinglian jobs next`: the next fire times of a job or a cron
//! expression, and the business date each would process.

use std::path::{Path, PathBuf};

use clap::Subcommand;

use super::shared::load_project;
use super::{CommandResult, Done, Failure};

/// Arguments of `jobs`.
#[derive(Debug, clap::Args)]
pub(super) struct JobsArgs {
    #[command(subcommand)]
    command: JobsCommand,
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

/// Runs `jobs`.
pub(super) fn execute(args: JobsArgs) -> CommandResult {
    let JobsCommand::Next {
        job,
        cron,
        tz,
        after,
        count,
        json,
        project,
    } = args.command;
    jobs_next(
        &project,
        job.as_deref(),
        cron.as_deref(),
        &tz,
        after,
        count,
        json,
    )
}

fn jobs_next(
    root: &Path,
    job: Option<&str>,
    cron: Option<&str>,
    tz: &str,
    after: Option<chrono::DateTime<chrono::Utc>>,
    count: usize,
    json: bool,
) -> CommandResult {
    use chrono::SecondsFormat;
    let (name, expr, schedule, zone, policy) = match (job, cron) {
        (Some(name), _) => {
            let project = load_project(root)?;
            let Some(j) = project.jobs.get(name) else {
                return Err(Failure::Usage(format!(
                    "no job {name:?} in jobs/ (jobs: {})",
                    project.jobs.keys().cloned().collect::<Vec<_>>().join(", ")
                )));
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
                    return Err(Failure::Usage(format!("--cron {expr:?}: {e}")));
                }
            };
            let zone: chrono_tz::Tz = match tz.parse() {
                Ok(z) => z,
                Err(_) => {
                    return Err(Failure::Usage(format!(
                        "--tz {tz:?}: not an IANA time zone (e.g. Asia/Shanghai)"
                    )));
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
            return Err(Failure::Usage("name a job or give --cron".to_string()));
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
    Ok(Done::Ok)
}
