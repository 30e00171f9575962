//! Where the scoring stage's queries run. One function, [`session_for`],
//! makes the stage's session from the pipeline's `[engine]`: a local
//! DataFusion session, or a client of a Ballista cluster (feature
//! `ballista`). Everything after it — the resolution, the rules, the
//! outputs — is the same code either way.
//!
//! Every table a query reads is a Parquet file under
//! `qinglian://warehouse/`. On a cluster, each scheduler and executor opens
//! that warehouse itself, from the URL the session carries in its
//! `qinglian.warehouse` option, so nothing but plans and URLs crosses the
//! network; the rows the stage registers itself ([`register_rows`]) are
//! written to Parquet under `qinglian.scratch` first, as a cluster cannot
//! read a table held in this process's memory.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::config::{ConfigEntry, ConfigExtension, ExtensionOptions};
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use super::{ScoreError, engine};
use crate::project::{Engine, Pipeline};

/// The base URL every table of the scoring session is read at.
pub const WAREHOUSE_URL: &str = "qinglian://warehouse";

/// Options of a scoring session that travel with each query to the
/// scheduler and the executors of a cluster, as `qinglian.warehouse` and
/// `qinglian.scratch`. (Written out rather than with DataFusion's
/// `extensions_options!`, whose entries drop the prefix, so a receiving
/// node could not set them.)
#[derive(Debug, Clone, Default)]
pub struct WarehouseOptions {
    /// The warehouse URL (`file://` or `s3://`) every node opens as
    /// `qinglian://warehouse`; empty for a local session.
    pub warehouse: String,
    /// Where the stage's own intermediate tables are written, a path in
    /// the warehouse; empty for a local session, which keeps them in
    /// memory.
    pub scratch: String,
}

impl ExtensionOptions for WarehouseOptions {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn cloned(&self) -> Box<dyn ExtensionOptions> {
        Box::new(self.clone())
    }

    fn set(&mut self, key: &str, value: &str) -> datafusion::error::Result<()> {
        match key {
            "warehouse" => self.warehouse = value.to_string(),
            "scratch" => self.scratch = value.to_string(),
            other => {
                return Err(DataFusionError::Configuration(format!(
                    "no option {}.{other}",
                    Self::PREFIX
                )));
            }
        }
        Ok(())
    }

    fn entries(&self) -> Vec<ConfigEntry> {
        vec![
            ConfigEntry {
                key: format!("{}.warehouse", Self::PREFIX),
                value: Some(self.warehouse.clone()),
                description: "the warehouse URL every node opens as qinglian://warehouse",
            },
            ConfigEntry {
                key: format!("{}.scratch", Self::PREFIX),
                value: Some(self.scratch.clone()),
                description: "where the scoring stage writes its intermediate tables",
            },
        ]
    }
}

impl ConfigExtension for WarehouseOptions {
    const PREFIX: &'static str = "qinglian";
}

/// Where the stage's session runs, for the ledger and the run report:
/// `local`, or `ballista df://host:port`.
pub fn engine_label(pipeline: &Pipeline, vars: &BTreeMap<String, String>) -> String {
    match &pipeline.engine {
        Engine::Local => "local".to_string(),
        Engine::Ballista(b) => format!("ballista {}", expand(&b.url, vars)),
    }
}

fn expand(text: &str, vars: &BTreeMap<String, String>) -> String {
    crate::project::expand_env(text, |n| {
        vars.get(n).cloned().or_else(|| std::env::var(n).ok())
    })
    .unwrap_or_else(|_| text.to_string())
}

/// What [`session_for`] needs besides the pipeline.
pub struct EngineInput<'a> {
    /// The pipeline.
    pub pipeline: &'a Pipeline,
    /// Warehouse store.
    pub store: Arc<dyn ObjectStore>,
    /// Warehouse prefix.
    pub prefix: &'a Path,
    /// The warehouse URL as given (expanded), when the run opened it from
    /// one; a cluster needs it.
    pub warehouse_url: Option<&'a str>,
    /// The run id (names the scratch area).
    pub run_id: &'a str,
    /// Variables for `${NAME}` in the engine's URL, before the environment.
    pub vars: &'a BTreeMap<String, String>,
}

/// The scoring stage's session for the pipeline's engine, with the
/// warehouse registered at [`WAREHOUSE_URL`].
pub async fn session_for(input: &EngineInput<'_>) -> Result<SessionContext, ScoreError> {
    let memory_limit_mb = input.pipeline.scoring.memory_limit_mb;
    match &input.pipeline.engine {
        Engine::Local => {
            let ctx = super::session_with_limit(memory_limit_mb)?;
            let base = url::Url::parse(WAREHOUSE_URL).map_err(engine)?;
            ctx.register_object_store(&base, Arc::clone(&input.store));
            Ok(ctx)
        }
        Engine::Ballista(b) => {
            let url = crate::project::expand_env(&b.url, |n| {
                input.vars.get(n).cloned().or_else(|| std::env::var(n).ok())
            })
            .map_err(|e| ScoreError::Engine(format!("engine.url: {e}")))?;
            let warehouse = cluster_warehouse(input.warehouse_url)?;
            let scratch = scratch_dir(input.prefix, input.run_id);
            ballista_session(input, b, &url, &warehouse, &scratch).await
        }
    }
}

#[cfg(feature = "ballista")]
async fn ballista_session(
    input: &EngineInput<'_>,
    engine: &crate::project::BallistaEngine,
    url: &str,
    warehouse: &str,
    scratch: &str,
) -> Result<SessionContext, ScoreError> {
    crate::score::ballista::client_session(&crate::score::ballista::ClientInput {
        url,
        engine,
        memory_limit_mb: input.pipeline.scoring.memory_limit_mb,
        warehouse,
        scratch,
        store: Arc::clone(&input.store),
    })
    .await
    .map_err(ScoreError::Engine)
}

#[cfg(not(feature = "ballista"))]
async fn ballista_session(
    _input: &EngineInput<'_>,
    _engine: &crate::project::BallistaEngine,
    _url: &str,
    _warehouse: &str,
    _scratch: &str,
) -> Result<SessionContext, ScoreError> {
    Err(ScoreError::Engine(
        "engine.kind = \"ballista\" needs a qinglian built with `--features ballista`".into(),
    ))
}

/// The warehouse URL as every node of a cluster can open it: `s3://…`, or
/// `file://` with an absolute path (a directory mounted at the same place
/// on every node).
fn cluster_warehouse(url: Option<&str>) -> Result<String, ScoreError> {
    let need = "a cluster opens the warehouse itself: run the pipeline on a warehouse URL \
                (an s3:// URL, or a directory every node mounts at the same path)";
    let url = url.ok_or_else(|| ScoreError::Engine(need.into()))?;
    if url.starts_with("s3://") {
        return Ok(url.to_string());
    }
    if url.contains("://") && !url.starts_with("file://") {
        return Err(ScoreError::Engine(format!(
            "warehouse {}: {need}",
            crate::store::redact(url)
        )));
    }
    let dir = url.strip_prefix("file://").unwrap_or(url);
    let abs = std::fs::canonicalize(dir)
        .map_err(|e| ScoreError::Engine(format!("warehouse {dir}: {e}")))?;
    Ok(format!("file://{}", abs.display()))
}

/// The run's scratch area in the warehouse (removed when scoring ends).
fn scratch_dir(prefix: &Path, run_id: &str) -> String {
    crate::store::join(prefix, &format!("tmp/score/{run_id}")).to_string()
}

/// The session's scratch area when it runs on a cluster.
fn scratch_of(ctx: &SessionContext) -> Option<String> {
    ctx.state()
        .config()
        .options()
        .extensions
        .get::<WarehouseOptions>()
        .map(|o| o.scratch.clone())
        .filter(|s| !s.is_empty())
}

/// Whether the session sends its queries to a cluster.
pub fn is_distributed(ctx: &SessionContext) -> bool {
    scratch_of(ctx).is_some()
}

/// Registers rows the stage computed as table `name`: in memory for a
/// local session, as a Parquet file in the scratch area for a cluster.
pub async fn register_rows(
    ctx: &SessionContext,
    name: &str,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
) -> Result<(), ScoreError> {
    let Some(scratch) = scratch_of(ctx) else {
        let table = MemTable::try_new(schema, vec![batches]).map_err(engine)?;
        ctx.register_table(name, Arc::new(table)).map_err(engine)?;
        return Ok(());
    };
    static WRITTEN: AtomicU64 = AtomicU64::new(0);
    let n = WRITTEN.fetch_add(1, Ordering::Relaxed);
    let base = ObjectStoreUrl::parse(WAREHOUSE_URL).map_err(engine)?;
    let store = ctx.runtime_env().object_store(&base).map_err(engine)?;
    let path = crate::store::join(&Path::from(scratch), &format!("{name}-{n:06}.parquet"));
    let mut writer =
        crate::land::parquet_writer(&store, &path, Arc::clone(&schema)).map_err(engine)?;
    for b in &batches {
        writer.write(b).await.map_err(engine)?;
    }
    writer.close().await.map_err(engine)?;
    ctx.register_parquet(
        name,
        &format!("{WAREHOUSE_URL}/{path}"),
        ParquetReadOptions::default().schema(&schema),
    )
    .await
    .map_err(engine)
}

/// Removes the session's scratch area, if it has one.
pub async fn remove_scratch(ctx: &SessionContext) {
    use futures::TryStreamExt;
    let Some(scratch) = scratch_of(ctx) else {
        return;
    };
    let Ok(base) = ObjectStoreUrl::parse(WAREHOUSE_URL) else {
        return;
    };
    let Ok(store) = ctx.runtime_env().object_store(&base) else {
        return;
    };
    let prefix = Path::from(scratch);
    let listed: Result<Vec<_>, _> = store.list(Some(&prefix)).try_collect().await;
    for meta in listed.unwrap_or_default() {
        if let Err(e) = store.delete(&meta.location).await {
            tracing::warn!(path = %meta.location, error = %e, "could not remove a scratch file of scoring");
        }
    }
}
