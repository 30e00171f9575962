//! The catalog of published versions: the manifest, the commit point of a
//! run's published datasets, and its reader, the only way anything reads
//! them. The publisher ([`crate::publish`]) writes manifests; every later
//! stage and reader (delivery, the report, `explain`, the next night's
//! scoring) finds versions here.
//!
//! `published/manifests/dt=<business_date>/<run_id>.json` lists every data
//! file of the run with its row count, size and SHA-256, the contract
//! version of each dataset, the rules version and the input snapshots. It is
//! written last, with a create-only put; a file no manifest lists does not
//! exist for a reader. The latest attempt of a date is the version readers
//! see; older attempts stay for audit.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::digest::hex;

/// Why a published version could not be read. A store failure may pass
/// (try again later); a corrupt version never will, and is not taken.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The warehouse failed.
    #[error("{0}")]
    Store(String),
    /// A manifest or a file it lists is missing, malformed or altered.
    #[error("{0}")]
    Corrupt(String),
}

/// The manifest format this build writes and reads.
pub const MANIFEST_FORMAT: u32 = 1;

/// One run's published version of a business date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub format: u32,
    /// Pipeline that published it.
    pub pipeline: String,
    /// The run: `<pipeline>-<yyyymmdd>-<attempt>`.
    pub run_id: String,
    /// Attempt for the business date, from 1; the highest is current.
    pub attempt: u32,
    /// Business date the datasets describe.
    pub business_date: NaiveDate,
    /// When the manifest was committed.
    pub published_at: DateTime<Utc>,
    /// Hash of the rules and scoring configuration.
    pub rules_version: String,
    /// The snapshot of every input feed the datasets were computed from.
    pub inputs: BTreeMap<String, InputSnapshot>,
    /// Datasets by name.
    pub datasets: BTreeMap<String, PublishedDataset>,
}

/// A feed's snapshot a run scored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSnapshot {
    /// Warehouse path of the landed Parquet, none when the feed never landed.
    pub path: Option<String>,
    /// Business date the snapshot was landed for.
    pub business_date: Option<NaiveDate>,
}

/// One dataset of a manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishedDataset {
    /// Version of its contract in `schemas/out/`.
    pub schema_version: u32,
    /// Rows over all files.
    pub rows: u64,
    /// Its files.
    pub files: Vec<PublishedFile>,
}

/// One data file of a manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishedFile {
    /// Path relative to the warehouse root.
    pub path: String,
    /// Rows in the file.
    pub rows: u64,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of the file's bytes, lowercase hex.
    pub sha256: String,
}

pub use crate::layout::{manifest_dir, manifest_path};

/// A manifest read from a warehouse, with where it was found.
#[derive(Debug, Clone)]
pub struct Published {
    /// The manifest.
    pub manifest: Manifest,
    /// Its path relative to the warehouse root.
    pub path: String,
    store: Arc<dyn ObjectStore>,
    prefix: Path,
}

/// SHA-256 and size of an object, streamed.
pub async fn checksum(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
) -> Result<(String, u64), CatalogError> {
    let fail = |e: object_store::Error| CatalogError::Store(format!("{path}: {e}"));
    let mut stream = store.get(path).await.map_err(fail)?.into_stream();
    let mut hash = Sha256::new();
    let mut bytes = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(fail)?;
        bytes += chunk.len() as u64;
        hash.update(&chunk);
    }
    Ok((hex(&hash.finalize()), bytes))
}

/// The attempt in a manifest file name `<pipeline>-<yyyymmdd>-<attempt>.json`.
fn attempt_of(path: &Path) -> Option<u32> {
    path.filename()?
        .strip_suffix(".json")?
        .rsplit('-')
        .next()?
        .parse()
        .ok()
}

impl Published {
    /// Reads and parses one manifest; a missing, unreadable or malformed
    /// manifest is an error naming the file.
    pub async fn read(
        store: Arc<dyn ObjectStore>,
        prefix: Path,
        rel: &str,
    ) -> Result<Self, CatalogError> {
        let path = crate::store::join(&prefix, rel);
        let bytes = store
            .get(&path)
            .await
            .map_err(|e| CatalogError::Corrupt(format!("manifest {path}: {e}")))?
            .bytes()
            .await
            .map_err(|e| CatalogError::Corrupt(format!("manifest {path}: {e}")))?;
        let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
            CatalogError::Corrupt(format!("manifest {path}: not a valid manifest: {e}"))
        })?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(CatalogError::Corrupt(format!(
                "manifest {path}: format {}, this build reads format {MANIFEST_FORMAT}",
                manifest.format
            )));
        }
        Ok(Self {
            manifest,
            path: rel.to_string(),
            store,
            prefix,
        })
    }

    /// The current version of a business date: the manifest of its highest
    /// attempt, or `None` when nothing was published for the date.
    pub async fn latest(
        store: &Arc<dyn ObjectStore>,
        prefix: &Path,
        date: NaiveDate,
    ) -> Result<Option<Self>, CatalogError> {
        let dir = crate::store::join(prefix, &manifest_dir(date));
        let metas: Vec<_> = store
            .list(Some(&dir))
            .try_collect()
            .await
            .map_err(|e| CatalogError::Store(format!("{dir}: {e}")))?;
        let latest = metas
            .into_iter()
            .filter_map(|m| attempt_of(&m.location).map(|a| (a, m.location)))
            .max_by_key(|(a, _)| *a);
        // A manifest the ledger says was committed must still be there: a
        // deleted one is not silently replaced by an older version.
        let ledger = crate::ledger::Ledger::new(Arc::clone(store), prefix.clone());
        let runs = ledger
            .runs_of(date)
            .await
            .map_err(|e| CatalogError::Store(format!("ledger of {date}: {e}")))?;
        let newest_attempt = latest.as_ref().map_or(0, |(a, _)| *a);
        if let Some(r) = runs
            .iter()
            .filter(|r| r.manifest.is_some() && r.attempt > newest_attempt)
            .max_by_key(|r| r.attempt)
        {
            return Err(CatalogError::Corrupt(format!(
                "manifest {} is missing, though run {} recorded committing it; \
                 restore it or re-run {date}",
                crate::store::join(prefix, r.manifest.as_deref().unwrap_or_default()),
                r.run_id
            )));
        }
        let Some(latest) = latest else {
            return Ok(None);
        };
        let rel = crate::store::relative(prefix, &latest.1);
        Self::read(Arc::clone(store), prefix.clone(), &rel)
            .await
            .map(Some)
    }

    /// The current version of the last business date published before
    /// `date` (what a run compares with).
    pub async fn latest_before(
        store: &Arc<dyn ObjectStore>,
        prefix: &Path,
        date: NaiveDate,
    ) -> Result<Option<Self>, CatalogError> {
        let dir = crate::store::join(prefix, crate::layout::MANIFESTS);
        let listing = store
            .list_with_delimiter(Some(&dir))
            .await
            .map_err(|e| CatalogError::Store(format!("{dir}: {e}")))?;
        let before = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename()?.strip_prefix("dt=")?.parse::<NaiveDate>().ok())
            .filter(|d| *d < date)
            .max();
        match before {
            Some(d) => Self::latest(store, prefix, d).await,
            None => Ok(None),
        }
    }

    /// The warehouse store it was read from.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The warehouse prefix in that store.
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// The files of a dataset as store paths.
    pub fn files(&self, dataset: &str) -> Result<Vec<Path>, CatalogError> {
        let d = self.dataset(dataset)?;
        Ok(d.files
            .iter()
            .map(|f| crate::store::join(&self.prefix, &f.path))
            .collect())
    }

    /// A dataset's entry; its absence is an error naming the manifest.
    pub fn dataset(&self, dataset: &str) -> Result<&PublishedDataset, CatalogError> {
        self.manifest.datasets.get(dataset).ok_or_else(|| {
            CatalogError::Corrupt(format!("manifest {}: no dataset {dataset:?}", self.path))
        })
    }

    /// Verifies a dataset's files, then reads them whole into batches
    /// (for the small datasets: changes, codes, runs).
    pub async fn read_batches(
        &self,
        dataset: &str,
    ) -> Result<Vec<datafusion::arrow::array::RecordBatch>, CatalogError> {
        use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        self.verify(&[dataset]).await?;
        let mut out = Vec::new();
        for path in self.files(dataset)? {
            let fail = |e: String| CatalogError::Corrupt(format!("{path}: {e}"));
            let bytes = self
                .store
                .get(&path)
                .await
                .map_err(|e| fail(e.to_string()))?
                .bytes()
                .await
                .map_err(|e| fail(e.to_string()))?;
            let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
                .and_then(|b| b.build())
                .map_err(|e| fail(e.to_string()))?;
            for batch in reader {
                out.push(batch.map_err(|e| fail(e.to_string()))?);
            }
        }
        Ok(out)
    }

    /// Checks every file of the named datasets against its size and
    /// SHA-256; the first mismatch or missing file is an error naming it.
    pub async fn verify(&self, datasets: &[&str]) -> Result<(), CatalogError> {
        for name in datasets {
            for f in &self.dataset(name)?.files {
                let path = crate::store::join(&self.prefix, &f.path);
                let (sha, bytes) = checksum(&self.store, &path).await.map_err(|e| {
                    CatalogError::Corrupt(format!("{e} (listed in manifest {})", self.path))
                })?;
                if sha != f.sha256 || bytes != f.bytes {
                    return Err(CatalogError::Corrupt(format!(
                        "{path}: checksum {sha} ({bytes} bytes) does not match manifest {} ({}, {} bytes); \
                         the file changed after it was published",
                        self.path, f.sha256, f.bytes
                    )));
                }
            }
        }
        Ok(())
    }
}
