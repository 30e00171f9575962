//! Stage 6: publishing. A run's data files are written first (scoring
//! writes `profiles`, `hits`, `codes`, `changes`; this stage adds
//! `quarantine` and `runs`), each checked against its contract in
//! `schemas/out/` and checksummed; then one manifest is committed with a
//! create-only put. Readers go through [`Published`] only, so a crash
//! before the manifest leaves nothing visible and the previous version
//! stands.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::catalog::{
    CatalogError, InputSnapshot, MANIFEST_FORMAT, Manifest, Published, PublishedDataset,
    PublishedFile, checksum, manifest_path,
};

use crate::ledger::RunRecord;
use crate::project::{OutputContract, PUBLISHED_DATASETS, Project};

/// Why a version could not be published or read.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// A file breaks its dataset's contract.
    #[error("{0}")]
    Contract(String),
    /// The warehouse failed.
    #[error("{0}")]
    Store(String),
    /// A manifest or a file it lists is missing, malformed or altered.
    #[error("{0}")]
    Corrupt(String),
    /// Another writer committed this version first.
    #[error("{0}: already exists; this version was committed by another run and is left as it is")]
    AlreadyCommitted(String),
}

impl From<CatalogError> for PublishError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::Store(s) => Self::Store(s),
            CatalogError::Corrupt(s) => Self::Corrupt(s),
        }
    }
}

/// What a run hands to the publisher.
pub struct PublishInput<'a> {
    /// The project (contracts).
    pub project: &'a Project,
    /// Warehouse store.
    pub store: Arc<dyn ObjectStore>,
    /// Warehouse prefix.
    pub prefix: Path,
    /// The run so far (id, attempt, feeds).
    pub run: &'a RunRecord,
    /// Rules version.
    pub rules_version: &'a str,
    /// Data files scoring wrote, by dataset, relative to the warehouse.
    pub outputs: &'a BTreeMap<String, String>,
    /// The input snapshots scored.
    pub inputs: BTreeMap<String, InputSnapshot>,
    /// Commit time.
    pub now: DateTime<Utc>,
}

fn store_err(path: &Path) -> impl Fn(object_store::Error) -> PublishError + '_ {
    move |e| PublishError::Store(format!("{path}: {e}"))
}

/// Publishes a run: adds `quarantine` and `runs`, checks and checksums every
/// file, commits the manifest. Returns the committed manifest.
pub async fn publish(input: PublishInput<'_>) -> Result<Published, PublishError> {
    let run = input.run;
    let mut files: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (dataset, path) in input.outputs {
        files.entry(dataset.clone()).or_default().push(path.clone());
    }
    let version_dir =
        |dataset: &str| crate::layout::published_dir(dataset, run.business_date, &run.run_id);
    // The rows quarantined with each input snapshot the version was computed
    // from (landed by this run or an earlier one), copied beside the other
    // datasets: the same inputs give the same quarantine.
    let quarantine = files.entry("quarantine".into()).or_default();
    for (feed, snapshot) in &input.inputs {
        let Some(landed_quarantine) = snapshot
            .path
            .as_deref()
            .and_then(crate::layout::quarantine_of_landed)
        else {
            continue;
        };
        let from = crate::store::join(&input.prefix, &landed_quarantine);
        match input.store.head(&from).await {
            Ok(_) => {}
            Err(object_store::Error::NotFound { .. }) => continue,
            Err(e) => return Err(store_err(&from)(e)),
        }
        let rel = format!("{}/{feed}.parquet", version_dir("quarantine"));
        let to = crate::store::join(&input.prefix, &rel);
        input.store.copy(&from, &to).await.map_err(store_err(&to))?;
        quarantine.push(rel);
    }
    let runs_rel = crate::layout::published_data("runs", run.business_date, &run.run_id);
    write_batch(
        &input.store,
        &crate::store::join(&input.prefix, &runs_rel),
        runs_batch(run)?,
    )
    .await?;
    files.insert("runs".into(), vec![runs_rel]);

    let mut datasets = BTreeMap::new();
    for name in PUBLISHED_DATASETS {
        let contract = input.project.contracts.get(name).ok_or_else(|| {
            PublishError::Contract(format!(
                "schemas/out/{name}.toml: no contract for dataset {name}"
            ))
        })?;
        let mut entry = PublishedDataset {
            schema_version: contract.version,
            rows: 0,
            files: Vec::new(),
        };
        for rel in files.get(name).into_iter().flatten() {
            let file = describe(&input.store, &input.prefix, rel, contract).await?;
            entry.rows += file.rows;
            entry.files.push(file);
        }
        datasets.insert(name.to_string(), entry);
    }
    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        pipeline: run.pipeline.clone(),
        run_id: run.run_id.clone(),
        attempt: run.attempt,
        business_date: run.business_date,
        published_at: input.now,
        rules_version: input.rules_version.to_string(),
        inputs: input.inputs,
        datasets,
    };
    let rel = manifest_path(run.business_date, &run.run_id);
    commit(&input.store, &input.prefix, &rel, &manifest).await?;
    Ok(Published::read(input.store, input.prefix, &rel).await?)
}

/// Writes a manifest with a create-only put: the commit point.
pub async fn commit(
    store: &Arc<dyn ObjectStore>,
    prefix: &Path,
    rel: &str,
    manifest: &Manifest,
) -> Result<(), PublishError> {
    let path = crate::store::join(prefix, rel);
    let body = serde_json::to_vec_pretty(manifest)
        .map_err(|e| PublishError::Store(format!("{path}: {e}")))?;
    let opts = PutOptions {
        mode: PutMode::Create,
        ..PutOptions::default()
    };
    match store.put_opts(&path, PutPayload::from(body), opts).await {
        Ok(_) => Ok(()),
        Err(object_store::Error::AlreadyExists { .. }) => {
            Err(PublishError::AlreadyCommitted(path.to_string()))
        }
        Err(e) => Err(store_err(&path)(e)),
    }
}

/// Reads a file's footer, checks its schema against the contract and
/// checksums it.
async fn describe(
    store: &Arc<dyn ObjectStore>,
    prefix: &Path,
    rel: &str,
    contract: &OutputContract,
) -> Result<PublishedFile, PublishError> {
    let path = crate::store::join(prefix, rel);
    let (schema, rows) = footer(store, &path).await?;
    let problems = contract.differences(&schema);
    if !problems.is_empty() {
        return Err(PublishError::Contract(format!(
            "{path} breaks the contract schemas/out/{}.toml (version {}): {}",
            contract.dataset,
            contract.version,
            problems.join("; ")
        )));
    }
    let (sha256, bytes) = checksum(store, &path).await?;
    Ok(PublishedFile {
        path: rel.to_string(),
        rows,
        bytes,
        sha256,
    })
}

/// The Arrow schema and row count of a Parquet file, from its footer alone.
async fn footer(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
) -> Result<(datafusion::arrow::datatypes::Schema, u64), PublishError> {
    use parquet::file::metadata::ParquetMetaDataReader;
    let bad =
        |e: String| PublishError::Corrupt(format!("{path}: not a readable Parquet file: {e}"));
    let size = store.head(path).await.map_err(store_err(path))?.size;
    if size < 12 {
        return Err(bad(format!("{size} bytes")));
    }
    let tail = store
        .get_range(path, size - 8..size)
        .await
        .map_err(store_err(path))?;
    if &tail[4..] != b"PAR1" {
        return Err(bad("no Parquet magic at the end".into()));
    }
    let len = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
    if len + 12 > size {
        return Err(bad(format!("footer of {len} bytes in a file of {size}")));
    }
    let meta = store
        .get_range(path, size - 8 - len..size - 8)
        .await
        .map_err(store_err(path))?;
    let meta = ParquetMetaDataReader::decode_metadata(&meta).map_err(|e| bad(e.to_string()))?;
    let file = meta.file_metadata();
    let schema =
        parquet::arrow::parquet_to_arrow_schema(file.schema_descr(), file.key_value_metadata())
            .map_err(|e| bad(e.to_string()))?;
    Ok((schema, file.num_rows().max(0) as u64))
}

async fn write_batch(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    batch: RecordBatch,
) -> Result<(), PublishError> {
    let fail = |e: String| PublishError::Store(format!("{path}: {e}"));
    let mut w = crate::land::parquet_writer(store, path, batch.schema())
        .map_err(|e| fail(e.to_string()))?;
    w.write(&batch).await.map_err(|e| fail(e.to_string()))?;
    w.close().await.map_err(|e| fail(e.to_string()))?;
    Ok(())
}

fn days(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()).num_days() as i32
}

/// The `runs` dataset: one row per feed of the run.
fn runs_batch(run: &RunRecord) -> Result<RecordBatch, PublishError> {
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    let feeds = &run.feeds;
    let n = feeds.len();
    let text = |f: &dyn Fn(&crate::ledger::FeedRecord) -> String| -> ArrayRef {
        Arc::new(StringArray::from(feeds.iter().map(f).collect::<Vec<_>>()))
    };
    let count = |f: &dyn Fn(&crate::ledger::FeedRecord) -> u64| -> ArrayRef {
        Arc::new(Int64Array::from(
            feeds.iter().map(|r| f(r) as i64).collect::<Vec<_>>(),
        ))
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("run_id", DataType::Utf8, false),
        Field::new("pipeline", DataType::Utf8, false),
        Field::new("business_date", DataType::Date32, false),
        Field::new("attempt", DataType::Int32, false),
        Field::new("feed", DataType::Utf8, false),
        Field::new("status", DataType::Utf8, false),
        Field::new("required", DataType::Boolean, false),
        Field::new("read", DataType::Int64, false),
        Field::new("landed", DataType::Int64, false),
        Field::new("quarantined", DataType::Int64, false),
        Field::new("duplicates", DataType::Int64, false),
        Field::new("keyed", DataType::Int64, false),
        Field::new("in_registry", DataType::Int64, false),
        Field::new("guards_failed", DataType::Utf8, false),
        Field::new("snapshot", DataType::Utf8, true),
        Field::new("duration_ms", DataType::Int64, false),
        Field::new("error", DataType::Utf8, true),
        Field::new("rows", DataType::Int64, false),
        Field::new("tombstones", DataType::Int64, false),
        Field::new("upserted", DataType::Int64, false),
        Field::new("deleted", DataType::Int64, false),
        Field::new("carried_over", DataType::Int64, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![run.run_id.as_str(); n])),
        Arc::new(StringArray::from(vec![run.pipeline.as_str(); n])),
        Arc::new(Date32Array::from(vec![days(run.business_date); n])),
        Arc::new(Int32Array::from(vec![run.attempt as i32; n])),
        text(&|f| f.feed.clone()),
        text(&|f| {
            serde_json::to_value(f.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        }),
        Arc::new(BooleanArray::from(
            feeds.iter().map(|f| f.required).collect::<Vec<_>>(),
        )),
        count(&|f| f.read),
        count(&|f| f.landed),
        count(&|f| f.quarantined),
        count(&|f| f.duplicates),
        count(&|f| f.keyed),
        count(&|f| f.in_registry),
        text(&|f| {
            f.guards
                .iter()
                .filter(|g| !g.passed)
                .map(|g| g.name.as_str())
                .collect::<Vec<_>>()
                .join(",")
        }),
        Arc::new(StringArray::from(
            feeds.iter().map(|f| f.snapshot.clone()).collect::<Vec<_>>(),
        )),
        count(&|f| f.duration_ms),
        Arc::new(StringArray::from(
            feeds.iter().map(|f| f.error.clone()).collect::<Vec<_>>(),
        )),
        count(&|f| f.rows),
        count(&|f| f.tombstones),
        count(&|f| f.upserted),
        count(&|f| f.deleted),
        count(&|f| f.carried_over),
    ];
    RecordBatch::try_new(schema, columns)
        .map_err(|e| PublishError::Contract(format!("runs dataset: {e}")))
}
