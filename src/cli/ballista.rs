//! `qinglian ballista scheduler|executor`: the nodes of a Ballista cluster
//! that scores pipelines with `[engine] kind = "ballista"` (feature
//! `ballista`; README "Scoring on a cluster").

use std::net::SocketAddr;

use super::shared::block_on;
use super::{CommandResult, Done, Failure};

/// Arguments of `ballista`.
#[derive(Debug, clap::Args)]
pub(super) struct BallistaArgs {
    #[command(subcommand)]
    role: Role,
}

#[derive(Debug, clap::Subcommand)]
enum Role {
    /// Plans each query of a scoring run and hands its tasks to executors.
    Scheduler {
        /// Address to listen on (the pipeline's engine.url is df://this).
        #[arg(long, default_value = "127.0.0.1:50050")]
        bind: SocketAddr,
        /// An executor silent this long is taken for dead and its tasks
        /// run elsewhere (longer than the executors' --heartbeat-seconds).
        #[arg(long, default_value_t = 180)]
        executor_timeout_seconds: u64,
    },
    /// Runs the tasks of a scheduler's queries.
    Executor {
        /// The scheduler, df://host:port.
        #[arg(long)]
        scheduler: String,
        /// Address of its data (Flight) service.
        #[arg(long, default_value = "127.0.0.1:50051")]
        bind: SocketAddr,
        /// Port of its task (gRPC) service, on the same address.
        #[arg(long, default_value_t = 50052)]
        grpc_port: u16,
        /// Host name the scheduler and other executors reach it at
        /// (default: the bind address).
        #[arg(long)]
        external_host: Option<String>,
        /// Tasks at once (0: one per core).
        #[arg(long, default_value_t = 0)]
        vcores: usize,
        /// Memory of all its tasks together, in MiB; they spill beyond it.
        #[arg(long, default_value_t = 2048)]
        memory_mb: u64,
        /// Directory of its shuffle and spill files (default: a new one
        /// under the system's temporary directory).
        #[arg(long)]
        work_dir: Option<String>,
        /// Seconds between its heartbeats to the scheduler.
        #[arg(long, default_value_t = 60)]
        heartbeat_seconds: u64,
    },
}

/// Runs `ballista`.
pub(super) fn execute(args: BallistaArgs) -> CommandResult {
    match args.role {
        Role::Scheduler {
            bind,
            executor_timeout_seconds,
        } => block_on(async move {
            crate::score::ballista::scheduler(bind, executor_timeout_seconds)
                .await
                .map_err(|e| Failure::Failed(format!("scheduler on {bind}: {e}")))?;
            Ok(Done::Ok)
        }),
        Role::Executor {
            scheduler,
            bind,
            grpc_port,
            external_host,
            vcores,
            memory_mb,
            work_dir,
            heartbeat_seconds,
        } => {
            if memory_mb == 0 {
                return Err(Failure::Usage(
                    "--memory-mb 0: give the executor's memory in MiB".into(),
                ));
            }
            let options = crate::score::ballista::ExecutorOptions {
                scheduler,
                bind,
                grpc_port,
                external_host: external_host.unwrap_or_else(|| bind.ip().to_string()),
                vcores,
                memory_mb,
                work_dir,
                heartbeat_seconds: heartbeat_seconds.max(1),
            };
            block_on(async move {
                crate::score::ballista::executor(options)
                    .await
                    .map_err(|e| Failure::Failed(format!("executor: {e}")))?;
                Ok(Done::Ok)
            })
        }
    }
}
