//! `qinglian simulate-feeds` and `simulate-platform`: the departments'
//! paged APIs and the oversight platform's intake on 127.0.0.1, for the
//! demo and for trying sources by hand.

use std::path::PathBuf;

use super::shared::block_on;
use super::{CommandResult, Done, Failure};

/// Arguments of `simulate-feeds`.
#[derive(Debug, clap::Args)]
pub(super) struct FeedsArgs {
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
}

/// Arguments of `simulate-platform`.
#[derive(Debug, clap::Args)]
pub(super) struct PlatformArgs {
    /// Port (0 for any free port).
    #[arg(long, default_value_t = 8800)]
    port: u16,
    /// The variable holding the shared secret.
    #[arg(long, default_value = "QINGLIAN_PLATFORM_SECRET")]
    secret_env: String,
    /// Accepted clock difference of a signature's timestamp, seconds.
    #[arg(long, default_value_t = 300)]
    window_seconds: i64,
}

/// Runs `simulate-feeds` until interrupted.
pub(super) fn feeds(args: FeedsArgs) -> CommandResult {
    block_on(async move {
        let token = args.token_env.and_then(|v| std::env::var(v).ok());
        let sim = crate::simulator::FeedSimulator::start(&args.from, args.port, token)
            .await
            .map_err(|e| Failure::Failed(format!("cannot serve {}: {e}", args.from.display())))?;
        if let Some(out) = args.project_out {
            crate::simulator::write_http_project(&args.project, &out, &sim.url())
                .map_err(|e| Failure::Failed(format!("cannot write {}: {e}", out.display())))?;
            outln!(
                "wrote {0}: run it with `qinglian run nightly --project {0}`",
                out.display()
            );
        }
        outln!(
            "serving {} at {}/api/<feed> (Ctrl-C stops)",
            args.from.display(),
            sim.url()
        );
        sim.wait().await;
        Ok(Done::Ok)
    })
}

/// Runs `simulate-platform` until interrupted.
pub(super) fn platform(args: PlatformArgs) -> CommandResult {
    let Some(secret) = std::env::var(&args.secret_env)
        .ok()
        .filter(|s| !s.is_empty())
    else {
        return Err(Failure::Usage(format!(
            "{} is not set; the simulator checks signatures with it",
            args.secret_env
        )));
    };
    block_on(async move {
        let sim = crate::platform::PlatformSimulator::start(
            args.port,
            secret.as_bytes(),
            args.window_seconds,
        )
        .await
        .map_err(|e| Failure::Failed(format!("cannot listen on 127.0.0.1:{}: {e}", args.port)))?;
        outln!(
            "oversight platform simulator at {} (GET /_stats counts what it accepted; Ctrl-C stops)",
            sim.url()
        );
        sim.wait().await;
        Ok(Done::Ok)
    })
}
