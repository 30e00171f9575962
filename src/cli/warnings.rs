//! `qinglian warnings` (the warnings of a published version, filtered) and
//! `qinglian intake` (the listener for the platform's dispositions).

use std::sync::Arc;

use chrono::NaiveDate;
use serde_json::json;

use super::shared::{WarehouseArgs, block_on, load_project, open_pipeline_warehouse};
use super::{CommandResult, Done, Failure};
use crate::warnings::{State, Warning, lifecycle, show};

/// Arguments of `warnings`.
#[derive(Debug, clap::Args)]
pub(super) struct WarningsArgs {
    #[command(flatten)]
    at: WarehouseArgs,
    /// Only warnings in this state (generated, pushed, signed, verifying,
    /// rectifying, feedback, closed, unfounded, transferred, withdrawn, returned).
    #[arg(long)]
    state: Option<String>,
    /// Only overdue warnings.
    #[arg(long)]
    overdue: bool,
    /// Only warnings whose responsible or handling unit contains this text.
    #[arg(long)]
    unit: Option<String>,
    /// Business date (default: the latest published).
    #[arg(long)]
    date: Option<NaiveDate>,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

/// Runs `warnings`.
pub(super) fn execute(args: WarningsArgs) -> CommandResult {
    block_on(list(args))
}

async fn list(args: WarningsArgs) -> CommandResult {
    let state = args
        .state
        .as_deref()
        .map(|s| {
            State::parse(s).ok_or_else(|| {
                Failure::Usage(format!(
                    "--state {s:?}: expected one of {}",
                    lifecycle::STATES.map(State::as_str).join(", ")
                ))
            })
        })
        .transpose()?;
    let (store, prefix, _) = open_pipeline_warehouse(&args.at)?;
    let Some((date, all)) = show::warnings_at(&store, &prefix, args.date)
        .await
        .map_err(Failure::Failed)?
    else {
        return Err(Failure::Failed(match args.date {
            Some(d) => format!("nothing is published for {d}"),
            None => "nothing is published yet".into(),
        }));
    };
    let shown: Vec<&Warning> = all
        .iter()
        .filter(|w| state.is_none_or(|s| w.state == s))
        .filter(|w| !args.overdue || w.overdue.is_some())
        .filter(|w| {
            args.unit.as_deref().is_none_or(|u| {
                w.responsible_unit.contains(u)
                    || w.handling_unit.as_deref().is_some_and(|h| h.contains(u))
            })
        })
        .collect();
    if args.json {
        let text = serde_json::to_string_pretty(&json!({
            "business_date": date.to_string(),
            "total": all.len(),
            "shown": shown.len(),
            "warnings": shown,
        }))
        .map_err(|e| Failure::Failed(e.to_string()))?;
        outln!("{text}");
    } else {
        out!("{}", show::render(date, &all, &shown));
    }
    Ok(Done::Ok)
}

/// Arguments of `intake`.
#[derive(Debug, clap::Args)]
pub(super) struct IntakeArgs {
    #[command(flatten)]
    at: WarehouseArgs,
    /// Address to listen on (never the public lookup's).
    #[arg(long, default_value = "127.0.0.1:8710")]
    listen: String,
    /// Seconds a request's signing time may differ from ours.
    #[arg(long, default_value_t = 300)]
    window_seconds: i64,
    /// Milliseconds to wait between keeping a request and recording it
    /// (for the crash harness).
    #[arg(long, default_value_t = 0, hide = true)]
    pause_after_receive_ms: u64,
}

/// Runs `intake` until SIGINT: the shared secret is the push's
/// (`[push] secret_env`).
pub(super) fn intake(args: IntakeArgs) -> CommandResult {
    block_on(listen(args))
}

async fn listen(args: IntakeArgs) -> CommandResult {
    let project = load_project(&args.at.project)?;
    let pipeline = project.pipelines.get(&args.at.pipeline).ok_or_else(|| {
        Failure::Usage(format!("no pipeline {:?} in pipelines/", args.at.pipeline))
    })?;
    let Some(push) = &pipeline.push else {
        return Err(Failure::Usage(format!(
            "pipeline {} has no [push]: the intake verifies with the push's shared secret",
            pipeline.name
        )));
    };
    let secret = std::env::var(&push.secret_env)
        .ok()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            Failure::Usage(format!(
                "{} is not set; set it to the shared secret the platform signs with",
                push.secret_env
            ))
        })?;
    let (store, prefix, _) = open_pipeline_warehouse(&args.at)?;
    let intake = crate::warnings::intake::Intake::start(
        args.listen.as_str(),
        crate::warnings::intake::IntakeOptions {
            store,
            prefix,
            secret: secret.into_bytes(),
            window_seconds: args.window_seconds,
            clock: Arc::new(crate::clock::SystemClock),
            pause_after_receive: std::time::Duration::from_millis(args.pause_after_receive_ms),
        },
    )
    .await
    .map_err(Failure::Failed)?;
    errln!("listening for dispositions at {}", intake.url());
    tokio::select! {
        _ = intake.wait() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
    Ok(Done::Ok)
}
