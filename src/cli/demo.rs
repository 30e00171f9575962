//! `qinglian demo`: the nightly job end to end on its embedded defaults.

use std::path::PathBuf;

use chrono::NaiveDate;

use super::shared::block_on;
use super::{CommandResult, Done, Failure};
use crate::ledger::RunStatus;

/// Arguments of `demo`.
#[derive(Debug, clap::Args)]
pub(super) struct DemoArgs {
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
    /// Nights to run (from 2026-11-28), the platform's handlers disposing
    /// of the warnings in between.
    #[arg(long, default_value_t = 5)]
    nights: u32,
    /// Then serve the public lookup (一码通查) of the result until Ctrl-C.
    #[arg(long)]
    serve: bool,
    /// Address of the public lookup with --serve.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: std::net::SocketAddr,
}

/// Runs `demo`.
pub(super) fn execute(args: DemoArgs) -> CommandResult {
    let lookup = crate::serve::ServeArgs::for_demo(&args.project, &args.warehouse, args.addr);
    let serve = args.serve;
    let options = crate::demo::DemoOptions {
        project: args.project,
        out: args.out,
        warehouse: args.warehouse,
        orgs: args.orgs,
        nights: args.nights,
        business_date: NaiveDate::from_ymd_opt(2026, 11, 28).unwrap_or_default(),
    };
    block_on(async move {
        let summary = crate::demo::demo(&options)
            .await
            .map_err(|e| Failure::Failed(e.to_string()))?;
        out!("{}", crate::demo::render(&summary));
        match crate::serve::demo_lookup(&lookup, serve).await {
            Ok(line) => outln!("{line}"),
            Err(e) => errln!("error: the public lookup: {e}"),
        }
        if serve {
            crate::serve::execute(lookup)
                .await
                .map_err(super::serve::failure)?;
        }
        let worst = summary
            .nights
            .iter()
            .map(|r| r.status)
            .find(|s| *s != RunStatus::Succeeded)
            .unwrap_or(summary.run.status);
        Ok(match worst {
            RunStatus::Succeeded => Done::Ok,
            RunStatus::Degraded => Done::Degraded,
            _ => Done::RunFailed,
        })
    })
}
