//! Scoring on an Apache DataFusion Ballista cluster (feature `ballista`).
//!
//! One binary serves every role, so the key functions and the warehouse
//! stores are the same code on every node:
//! - the client is the scoring stage's session ([`client_session`]);
//! - `qinglian ballista scheduler` plans each query ([`scheduler`]);
//! - `qinglian ballista executor` runs its tasks ([`executor`]).
//!
//! Each builds its sessions from [`config`] (Ballista's options and the
//! session's [`WarehouseOptions`]), registers the key functions from
//! [`crate::keys::udf::functions`], and opens the warehouse the session
//! names as `qinglian://warehouse` ([`runtime_for`]); credentials of an
//! `s3://` warehouse come from each node's own environment.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use ballista::extension::SessionContextExt;
use ballista_core::extension::SessionConfigExt;
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use datafusion::error::DataFusionError;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::session_state::SessionState;
use datafusion::execution::{FunctionRegistry, SessionStateBuilder};
use datafusion::prelude::{SessionConfig, SessionContext};
use object_store::ObjectStore;

use crate::project::BallistaEngine;
use crate::score::engine::{WAREHOUSE_URL, WarehouseOptions};

/// The session configuration every node starts from: Ballista's options,
/// the warehouse options, and the string types scoring reads.
pub fn config() -> SessionConfig {
    let mut config =
        SessionConfig::new_with_ballista().with_option_extension(WarehouseOptions::default());
    config
        .options_mut()
        .execution
        .parquet
        .schema_force_view_types = false;
    config
}

/// A node's runtime for one session: the warehouse the session names
/// registered as `qinglian://warehouse`, spill files under `work_dir`.
pub fn runtime_for(
    config: &SessionConfig,
    work_dir: Option<&str>,
) -> datafusion::error::Result<Arc<RuntimeEnv>> {
    let mut builder = RuntimeEnvBuilder::new();
    if let Some(dir) = work_dir {
        builder = builder.with_temp_file_path(dir);
    }
    let runtime = builder.build_arc()?;
    let warehouse = config
        .options()
        .extensions
        .get::<WarehouseOptions>()
        .map(|o| o.warehouse.clone())
        .unwrap_or_default();
    if !warehouse.is_empty() {
        let (store, _) = crate::store::open(&warehouse)
            .map_err(|e| DataFusionError::Configuration(e.to_string()))?;
        register_warehouse(&runtime, store)?;
    }
    Ok(runtime)
}

fn register_warehouse(
    runtime: &RuntimeEnv,
    store: Arc<dyn ObjectStore>,
) -> datafusion::error::Result<()> {
    let base = url::Url::parse(WAREHOUSE_URL)
        .map_err(|e| DataFusionError::Configuration(e.to_string()))?;
    runtime.register_object_store(&base, store);
    Ok(())
}

/// The scheduler's session for a query: Ballista's own, with this node's
/// warehouse store and the key functions.
fn scheduler_session(config: SessionConfig) -> datafusion::error::Result<SessionState> {
    let runtime = runtime_for(&config, None)?;
    let state = ballista_core::utils::default_session_builder(config)?;
    let mut state = SessionStateBuilder::new_from_existing(state)
        .with_runtime_env(runtime)
        .build();
    for f in crate::keys::udf::functions() {
        state.register_udf(Arc::new(f))?;
    }
    Ok(state)
}

/// What the scoring stage's cluster session needs.
pub struct ClientInput<'a> {
    /// The scheduler, `df://host:port` (expanded).
    pub url: &'a str,
    /// The pipeline's `[engine]`.
    pub engine: &'a BallistaEngine,
    /// The client's own memory limit (results it collects).
    pub memory_limit_mb: u64,
    /// The warehouse URL every node opens.
    pub warehouse: &'a str,
    /// The run's scratch area in the warehouse.
    pub scratch: &'a str,
    /// The warehouse store of this process.
    pub store: Arc<dyn ObjectStore>,
}

/// The scheduler's address in a `df://host:port` URL.
pub fn scheduler_addr(url: &str) -> Result<SocketAddr, String> {
    let rest = url
        .strip_prefix("df://")
        .ok_or_else(|| format!("scheduler {url}: expected df://host:port"))?;
    let hostport = rest.trim_end_matches('/');
    let hostport = if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:50050")
    };
    hostport
        .to_socket_addrs()
        .map_err(|e| format!("scheduler {url}: {e}"))?
        .next()
        .ok_or_else(|| format!("scheduler {url}: the name resolves to no address"))
}

/// A session whose queries run on the cluster at `input.url`; fails at
/// once, naming the URL, when the scheduler does not answer.
pub async fn client_session(input: &ClientInput<'_>) -> Result<SessionContext, String> {
    let url = input.url;
    let addr = scheduler_addr(url)?;
    match tokio::time::timeout(
        Duration::from_secs(10),
        tokio::net::TcpStream::connect(addr),
    )
    .await
    {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            return Err(format!(
                "the Ballista scheduler at {url} cannot be reached: {e}"
            ));
        }
        Err(_) => {
            return Err(format!(
                "the Ballista scheduler at {url} did not answer within 10 s"
            ));
        }
    }
    let fail = |e: DataFusionError| format!("the Ballista scheduler at {url}: {e}");
    let mut config = config().with_target_partitions(input.engine.target_partitions);
    config
        .options_mut()
        .set(
            ballista_core::config::BALLISTA_JOB_NAME,
            &input.engine.job_name,
        )
        .map_err(fail)?;
    if let Some(o) = config
        .options_mut()
        .extensions
        .get_mut::<WarehouseOptions>()
    {
        o.warehouse = input.warehouse.to_string();
        o.scratch = input.scratch.to_string();
    }
    let bytes = usize::try_from(input.memory_limit_mb)
        .ok()
        .and_then(|mb| mb.checked_mul(1 << 20))
        .ok_or_else(|| format!("memory_limit_mb {} is too large", input.memory_limit_mb))?;
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_limit(bytes, 1.0)
        .build_arc()
        .map_err(fail)?;
    register_warehouse(&runtime, Arc::clone(&input.store)).map_err(fail)?;
    let state = SessionStateBuilder::new()
        .with_default_features()
        .with_config(config)
        .with_runtime_env(runtime)
        .build();
    let ctx = SessionContext::remote_with_state(url, state)
        .await
        .map_err(fail)?;
    // After the upgrade to a Ballista state, which replaces the functions.
    crate::keys::udf::register(&ctx);
    tracing::info!(scheduler = %url, partitions = input.engine.target_partitions, "scoring on a Ballista cluster");
    Ok(ctx)
}

/// Runs a scheduler on `bind` until the process is stopped.
pub async fn scheduler(bind: SocketAddr, executor_timeout_seconds: u64) -> Result<(), String> {
    let timeout = executor_timeout_seconds.max(2);
    let config = SchedulerConfig {
        bind_host: bind.ip().to_string(),
        bind_port: bind.port(),
        executor_timeout_seconds: timeout,
        expire_dead_executor_interval_seconds: (timeout / 3).clamp(1, 15),
        no_executors_grace_period_seconds: timeout,
        override_config_producer: Some(Arc::new(config)),
        override_session_builder: Some(Arc::new(scheduler_session)),
        ..Default::default()
    };
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(%bind, "Ballista scheduler listening");
    ballista_scheduler::scheduler_process::start_server(cluster, bind, Arc::new(config))
        .await
        .map_err(|e| e.to_string())
}

/// An executor's settings (`qinglian ballista executor`).
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// The scheduler's `df://host:port`.
    pub scheduler: String,
    /// Address the executor's Flight service binds.
    pub bind: SocketAddr,
    /// Port of its gRPC service (tasks from the scheduler).
    pub grpc_port: u16,
    /// Host name the scheduler and the other executors reach it at.
    pub external_host: String,
    /// Concurrent tasks (0: every core).
    pub vcores: usize,
    /// Memory of all its tasks together, MiB; spills beyond it.
    pub memory_mb: u64,
    /// Shuffle and spill files.
    pub work_dir: Option<String>,
    /// Seconds between heartbeats to the scheduler.
    pub heartbeat_seconds: u64,
}

/// Runs an executor until the process is stopped.
pub async fn executor(options: ExecutorOptions) -> Result<(), String> {
    let scheduler = scheduler_addr(&options.scheduler)?;
    let mut registry = BallistaFunctionRegistry::default();
    for f in crate::keys::udf::functions() {
        registry
            .scalar_functions
            .insert(f.name().to_string(), Arc::new(f));
    }
    let work_dir = match &options.work_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| format!("work dir {dir}: {e}"))?;
            dir.clone()
        }
        None => std::env::temp_dir()
            .join(format!("qinglian-executor-{}", std::process::id()))
            .display()
            .to_string(),
    };
    std::fs::create_dir_all(&work_dir).map_err(|e| format!("work dir {work_dir}: {e}"))?;
    let spill = work_dir.clone();
    let config = ExecutorProcessConfig {
        bind_host: options.bind.ip().to_string(),
        port: options.bind.port(),
        grpc_port: options.grpc_port,
        external_host: Some(options.external_host.clone()),
        scheduler_host: scheduler.ip().to_string(),
        scheduler_port: scheduler.port(),
        scheduler_connect_timeout_seconds: 30,
        vcores: options.vcores,
        work_dir: Some(work_dir),
        memory_pool_size: Some(options.memory_mb.saturating_mul(1 << 20)),
        executor_heartbeat_interval_seconds: options.heartbeat_seconds,
        override_function_registry: Some(Arc::new(registry)),
        override_config_producer: Some(Arc::new(config)),
        override_runtime_producer: Some(Arc::new(move |c: &SessionConfig| {
            runtime_for(c, Some(&spill))
        })),
        ..Default::default()
    };
    tracing::info!(bind = %options.bind, grpc_port = options.grpc_port, scheduler = %options.scheduler, memory_mb = options.memory_mb, "Ballista executor starting");
    start_executor_process(Arc::new(config))
        .await
        .map_err(|e| e.to_string())
}
