//! Where one feed's records go as they are mapped, batch by batch: its
//! tombstones taken out, the spine's later copies of an organization
//! quarantined, exact duplicates staged, first copies landed as canonical
//! Parquet, and every reject written to the quarantine file with its reason.

use std::sync::Arc;

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::SchemaRef;
use object_store::ObjectStore;
use object_store::path::Path;

use crate::keys::RegistryCodes;
use crate::land::{self, ParquetOut};
use crate::ledger::FeedRecord;
use crate::merge::Delivered;
use crate::source::RawBatch;
use crate::validate::dedup::{Fingerprints, Staging};
use crate::validate::{self, Mapper, Reason};

/// A feed's two output files and what it has seen so far.
pub(super) struct FeedSink {
    feed: String,
    is_registry: bool,
    /// The delivery is merged with the previous snapshot afterwards: its
    /// record ids are noted and its keys counted after the merge.
    merging: bool,
    landed_at: Path,
    quarantine_at: Path,
    data: ParquetOut,
    quarantine: ParquetOut,
    fingerprints: Fingerprints,
    staging: Option<Staging>,
    spine_keys: SpineKeys,
    delivered: Delivered,
    new_codes: RegistryCodes,
    registry: Arc<RegistryCodes>,
}

/// What a sink leaves once its files are closed: the record ids the
/// delivery landed and deleted (for the merge), and, for the registry, its
/// codes.
pub(super) struct Sunk {
    pub(super) delivered: Delivered,
    pub(super) new_codes: RegistryCodes,
}

impl FeedSink {
    /// Opens the landed file at `landed_at` and the quarantine file.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn open(
        store: &Arc<dyn ObjectStore>,
        feed: &str,
        is_registry: bool,
        merging: bool,
        landed_at: Path,
        quarantine_at: Path,
        canonical: SchemaRef,
        registry: Arc<RegistryCodes>,
    ) -> Result<Self, String> {
        let data = land::parquet_writer(store, &landed_at, Arc::clone(&canonical))
            .map_err(|e| format!("cannot open {landed_at}: {e}"))?;
        let quarantine = land::parquet_writer(store, &quarantine_at, land::quarantine_schema())
            .map_err(|e| format!("cannot open {quarantine_at}: {e}"))?;
        Ok(Self {
            feed: feed.to_string(),
            is_registry,
            merging,
            landed_at,
            quarantine_at,
            data,
            quarantine,
            fingerprints: Fingerprints::new(),
            staging: Some(Staging::new(canonical).await?),
            spine_keys: SpineKeys::default(),
            delivered: Delivered::default(),
            new_codes: RegistryCodes::default(),
            registry,
        })
    }

    /// Takes one fetched batch of the part at `part` (named `name`), read
    /// with its mapper; `tombstone` is the field position and value that
    /// mark a deletion, when the part has them.
    pub(super) async fn take(
        &mut self,
        rec: &mut FeedRecord,
        part: usize,
        name: &str,
        mapper: &Mapper,
        tombstone: Option<&(usize, String)>,
        batch: &RawBatch,
    ) -> Result<(), String> {
        rec.read += batch.rows.len() as u64;
        rec.parts[part].read += batch.rows.len() as u64;
        let mapped = mapper.map(batch).map_err(|e| e.to_string())?;
        let fps: Vec<(u64, u64)> = mapped
            .accepted
            .iter()
            .map(|r| self.fingerprints.of(&batch.rows[*r].original))
            .collect();
        let (mapped, fps) = match tombstone {
            Some((at, value)) => {
                let (mapped, fps, ids) =
                    take_tombstones(&self.feed, *at, value, batch, mapped, fps)?;
                rec.tombstones += ids.len() as u64;
                rec.parts[part].tombstones += ids.len() as u64;
                self.delivered
                    .tombstones
                    .entry(name.to_string())
                    .or_default()
                    .extend(ids);
                (mapped, fps)
            }
            None => (mapped, fps),
        };
        let (mapped, fps) = if self.is_registry {
            self.spine_keys
                .first_copies(&self.feed, mapper, batch, mapped, fps)?
        } else {
            (mapped, fps)
        };
        rec.quarantined += mapped.quarantined.len() as u64;
        rec.parts[part].quarantined += mapped.quarantined.len() as u64;
        for q in &mapped.quarantined {
            *rec.quarantine_reasons
                .entry(q.reason.code().to_string())
                .or_default() += 1;
        }
        let staging = self
            .staging
            .as_mut()
            .ok_or("the feed's staging is closed")?;
        if let Some(first) = staging.write(&mapped.batch, &fps).await? {
            self.land(&first, rec).await?;
        }
        if !mapped.quarantined.is_empty() {
            let q = land::quarantine_batch(&self.feed, &mapped.quarantined)
                .map_err(|e| e.to_string())?;
            self.quarantine
                .write(&q)
                .await
                .map_err(|e| format!("cannot write {}: {e}", self.quarantine_at))?;
        }
        Ok(())
    }

    /// Lands first copies: counted, and their keys counted now unless the
    /// merge counts them in the merged snapshot.
    async fn land(&mut self, batch: &RecordBatch, rec: &mut FeedRecord) -> Result<(), String> {
        count_landed(batch, rec, self.merging.then_some(&mut self.delivered));
        if !self.merging {
            let (keyed, in_registry) =
                count_keyed(batch, self.is_registry, &mut self.new_codes, &self.registry);
            rec.keyed += keyed;
            rec.in_registry += in_registry;
        }
        self.data
            .write(batch)
            .await
            .map_err(|e| format!("cannot write {}: {e}", self.landed_at))
    }

    /// Lands what deduplication kept on local disk (a long feed's exact
    /// duplicates out), counts the duplicates of the feed and of each part,
    /// and closes both files.
    pub(super) async fn finish(mut self, rec: &mut FeedRecord) -> Result<Sunk, String> {
        let staging = self.staging.take().ok_or("the feed's staging is closed")?;
        let mut distinct = staging.distinct().await?;
        while let Some(batch) = distinct.next().await {
            self.land(&batch?, rec).await?;
        }
        rec.duplicates = distinct.written - rec.landed;
        for p in &mut rec.parts {
            p.duplicates = p
                .read
                .saturating_sub(p.landed + p.quarantined + p.tombstones);
        }
        self.data
            .close()
            .await
            .map_err(|e| format!("cannot finish {}: {e}", self.landed_at))?;
        self.quarantine
            .close()
            .await
            .map_err(|e| format!("cannot finish {}: {e}", self.quarantine_at))?;
        Ok(Sunk {
            delivered: self.delivered,
            new_codes: self.new_codes,
        })
    }
}

/// Counts landed rows per part; a merging feed also notes their record
/// ids per part (what the merge replaces).
fn count_landed(batch: &RecordBatch, rec: &mut FeedRecord, ids: Option<&mut Delivered>) {
    rec.landed += batch.num_rows() as u64;
    let Some(parts) = batch
        .column_by_name("source_part")
        .and_then(|c| c.as_string_opt::<i32>())
    else {
        return;
    };
    for name in parts.iter().flatten() {
        if let Some(p) = rec.parts.iter_mut().find(|p| p.name == name) {
            p.landed += 1;
        }
    }
    if let Some(delivered) = ids
        && let Some(id) = batch
            .column_by_name("source_record_id")
            .and_then(|c| c.as_string_opt::<i32>())
    {
        for (part, id) in parts.iter().zip(id.iter()) {
            if let (Some(part), Some(id)) = (part, id) {
                delivered
                    .landed
                    .entry(part.to_string())
                    .or_default()
                    .insert(id.to_string());
            }
        }
    }
}

/// Counts the keys of a snapshot's rows, and those the registry holds
/// (collecting the registry's own codes when this is the registry).
pub(super) fn count_keyed(
    batch: &RecordBatch,
    is_registry: bool,
    new_codes: &mut RegistryCodes,
    registry: &RegistryCodes,
) -> (u64, u64) {
    let (mut keyed, mut in_registry) = (0, 0);
    let uscc = batch.column(0).as_string::<i32>();
    for value in uscc.iter().flatten() {
        keyed += 1;
        if is_registry {
            new_codes.insert(value);
        } else if registry.contains(value) {
            in_registry += 1;
        }
    }
    (keyed, in_registry)
}

/// The spine's keys seen so far in one delivery: its first copy of each
/// organization lands; a later copy with other content (a stale revoked
/// row beside the current one) is quarantined `duplicate_key`, naming where
/// the kept copy was. An identical repeat is left to deduplication.
#[derive(Default)]
struct SpineKeys {
    first: std::collections::HashMap<String, ((u64, u64), String)>,
}

impl SpineKeys {
    fn first_copies(
        &mut self,
        feed: &str,
        mapper: &Mapper,
        raw: &RawBatch,
        mut mapped: validate::Mapped,
        fps: Vec<(u64, u64)>,
    ) -> Result<(validate::Mapped, Vec<(u64, u64)>), String> {
        let uscc = mapped.batch.column(0).as_string::<i32>();
        let mut keep = Vec::with_capacity(fps.len());
        for (i, (&r, fp)) in mapped.accepted.iter().zip(&fps).enumerate() {
            let row = &raw.rows[r];
            let first = if datafusion::arrow::array::Array::is_null(uscc, i) {
                None
            } else {
                let code = uscc.value(i);
                match self.first.get(code) {
                    None => {
                        self.first
                            .insert(code.to_string(), (*fp, row.position.clone()));
                        None
                    }
                    Some((seen, _)) if seen == fp => None,
                    Some((_, at)) => Some((code.to_string(), at.clone())),
                }
            };
            keep.push(first.is_none());
            if let Some((code, at)) = first {
                mapped.quarantined.push(mapper.quarantined(
                    row,
                    "uscc".into(),
                    Reason::DuplicateKey,
                    &format!(
                        "uscc {code} was already delivered at {at}; \
                         the spine keeps one row per organization, the first"
                    ),
                ));
            }
        }
        if keep.iter().all(|k| *k) {
            return Ok((mapped, fps));
        }
        let fps = keep_rows(feed, &mut mapped, fps, &keep)?;
        Ok((mapped, fps))
    }
}

/// A mapped batch, its rows' fingerprints, and the record ids its
/// tombstones deleted.
type WithoutTombstones = (validate::Mapped, Vec<(u64, u64)>, Vec<String>);

/// The raw rows of `mapped` that are tombstones (their field holds the
/// tombstone value) are taken out: their record ids are returned.
fn take_tombstones(
    feed: &str,
    tombstone_at: usize,
    value: &str,
    raw: &RawBatch,
    mut mapped: validate::Mapped,
    fps: Vec<(u64, u64)>,
) -> Result<WithoutTombstones, String> {
    use datafusion::arrow::array::Array;
    let keep: Vec<bool> = mapped
        .accepted
        .iter()
        .map(|&r| {
            raw.rows[r]
                .values
                .get(tombstone_at)
                .and_then(|v| v.as_deref())
                .is_none_or(|v| v.trim() != value)
        })
        .collect();
    if keep.iter().all(|k| *k) {
        return Ok((mapped, fps, Vec::new()));
    }
    let ids = mapped
        .batch
        .column_by_name("source_record_id")
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or_else(|| format!("feed {feed}: no source_record_id column"))?;
    let deleted = keep
        .iter()
        .enumerate()
        .filter(|(i, k)| !**k && !ids.is_null(*i))
        .map(|(i, _)| ids.value(i).to_string())
        .collect();
    let fps = keep_rows(feed, &mut mapped, fps, &keep)?;
    Ok((mapped, fps, deleted))
}

/// Keeps the rows of `mapped` (its batch, its raw row positions) and their
/// fingerprints where `keep` is true.
fn keep_rows(
    feed: &str,
    mapped: &mut validate::Mapped,
    fps: Vec<(u64, u64)>,
    keep: &[bool],
) -> Result<Vec<(u64, u64)>, String> {
    use datafusion::arrow::array::BooleanArray;
    mapped.batch = datafusion::arrow::compute::filter_record_batch(
        &mapped.batch,
        &BooleanArray::from(keep.to_vec()),
    )
    .map_err(|e| format!("feed {feed}: {e}"))?;
    let mut flags = keep.iter();
    mapped
        .accepted
        .retain(|_| flags.next().copied().unwrap_or(true));
    Ok(fps
        .into_iter()
        .zip(keep)
        .filter_map(|(fp, k)| k.then_some(fp))
        .collect())
}
