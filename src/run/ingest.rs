//! Stages 1 to 3 for one feed: fetch, validate and land its records,
//! count its keys against the registry, evaluate its guards, and advance
//! its snapshot when they pass.

use crate::land::{LandingPaths, RawPayloads};
use crate::ledger::{FeedRecord, FeedState, FeedStatus, PartState};
use crate::project::{Merge, Source, SourceKind};
use crate::source::{self, FetchOptions};
use crate::store::relative;
use crate::validate::{self, Mapper};
use datafusion::arrow::array::AsArray;
use futures::StreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::sink::{FeedSink, Sunk, count_keyed};
use super::{RunContext, RunOptions};
use super::{guards, spool};

/// What later feeds need from the registry: its codes.
#[derive(Default, Clone)]
pub(super) struct RegistryIndex {
    codes: Arc<crate::keys::RegistryCodes>,
}

impl RegistryIndex {
    pub(super) async fn from_snapshot(ctx: &RunContext, snapshot: &str) -> Self {
        let mut codes = crate::keys::RegistryCodes::default();
        match snapshot_keys(ctx, snapshot).await {
            Ok(keys) => {
                for uscc in keys {
                    codes.insert(&uscc);
                }
            }
            // Later feeds then resolve no organization code; their
            // `min_registry_match` guards say so.
            Err(e) => warn!(error = %e, "the last good registry cannot be read"),
        }
        Self {
            codes: Arc::new(codes),
        }
    }
}

/// The distinct USCCs of a landed snapshot, reading only that column
/// (streamed to a temporary file: Parquet wants random access).
async fn snapshot_keys(ctx: &RunContext, snapshot: &str) -> Result<HashSet<String>, String> {
    use parquet::arrow::ProjectionMask;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let path = crate::store::join(&ctx.prefix, snapshot);
    let snapshot = snapshot.to_string();
    let fail = move |e: &dyn std::fmt::Display| format!("cannot read the snapshot {snapshot}: {e}");
    let fail_reading = fail.clone();
    let mut file = tempfile::tempfile().map_err(|e| fail(&e))?;
    let mut stream = ctx
        .store
        .get(&path)
        .await
        .map_err(|e| fail(&e))?
        .into_stream();
    while let Some(chunk) = stream.next().await {
        std::io::Write::write_all(&mut file, &chunk.map_err(|e| fail(&e))?)
            .map_err(|e| fail(&e))?;
    }
    tokio::task::spawn_blocking(move || {
        let fail = fail_reading;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| fail(&e))?;
        let mask = ProjectionMask::columns(builder.parquet_schema(), ["uscc"]);
        let mut keys = HashSet::new();
        for batch in builder
            .with_projection(mask)
            .build()
            .map_err(|e| fail(&e))?
        {
            let batch = batch.map_err(|e| fail(&e))?;
            let col = batch
                .column_by_name("uscc")
                .ok_or_else(|| fail(&"no uscc column"))?
                .as_string_opt::<i32>()
                .ok_or_else(|| fail(&"the uscc column is not text"))?;
            keys.extend(col.iter().flatten().map(str::to_string));
        }
        Ok(keys)
    })
    .await
    .map_err(|e| fail(&e))?
}

/// A feed landing in its own task.
pub(super) struct FeedTask {
    pub(super) feed: String,
    pub(super) required: bool,
    pub(super) task: tokio::task::JoinHandle<FeedRecord>,
}

/// The record of a feed landed in its own task; a task that panicked is a
/// failed (or, optional, held) feed, named.
pub(super) async fn feed_done(task: FeedTask, options: &RunOptions) -> FeedRecord {
    let FeedTask {
        feed,
        required,
        task,
    } = task;
    let feed = task.await.unwrap_or_else(|e| {
        let mut failed = FeedRecord::starting(&feed, required);
        if !required {
            failed.status = FeedStatus::Held;
        }
        failed.error = Some(format!("the feed's task stopped: {e}"));
        failed
    });
    if let Some(p) = &options.progress {
        p.feed_done(&feed);
    }
    feed
}

pub(super) async fn ingest_feed(
    ctx: &RunContext,
    source: &Source,
    schema: &crate::project::FeedSchema,
    hash_key: Option<Vec<u8>>,
    vars: &BTreeMap<String, String>,
    registry: &mut RegistryIndex,
) -> FeedRecord {
    let started = Instant::now();
    let state = ctx.ledger.feed_state(&source.feed).await;
    let held = |mut rec: FeedRecord, error: String| {
        warn!(error = %error, "feed held at its last good snapshot");
        rec.error = Some(error);
        rec.status = if source.required {
            FeedStatus::Failed
        } else {
            FeedStatus::Held
        };
        rec
    };
    let state = match state {
        Ok(state) => state,
        Err(e) => {
            // Without its last good state no guard can compare: never land blind.
            let rec = FeedRecord::starting(&source.feed, source.required);
            return held(
                rec,
                format!("cannot read the feed's last good state, so its guards cannot run: {e}"),
            );
        }
    };
    let mut rec = FeedRecord {
        watermark_before: state.as_ref().and_then(|s| s.watermark.clone()),
        watermark_after: state.as_ref().and_then(|s| s.watermark.clone()),
        snapshot: state.as_ref().map(|s| s.snapshot.clone()),
        ..FeedRecord::starting(&source.feed, source.required)
    };
    let person_key = hash_key.clone();
    let outcome = land_feed(
        ctx,
        source,
        schema,
        hash_key,
        vars,
        registry,
        state.as_ref(),
        &mut rec,
    )
    .await;
    rec.duration_ms = started.elapsed().as_millis() as u64;
    let (landed_path, part_states) = match outcome {
        Ok(Landing {
            snapshot: None,
            parts,
        }) => {
            rec.status = FeedStatus::Unchanged;
            // Carried forward unread: the source confirmed it current
            // tonight, so the snapshot's date follows (it is not stale).
            if let Some(prev) = &state {
                rec.rows = prev.rows;
                rec.carried_over = prev.rows;
                for p in &mut rec.parts {
                    p.unchanged = true;
                    p.carried_over = prev
                        .parts
                        .iter()
                        .find(|s| s.name == p.name)
                        .map_or(0, |s| s.rows);
                }
                let carried = FeedState {
                    business_date: ctx.business_date,
                    parts,
                    ..prev.clone()
                };
                if let Err(e) = ctx.ledger.advance(&carried).await {
                    return held(
                        rec,
                        format!("cannot record the snapshot carried forward: {e}"),
                    );
                }
            }
            info!("feed unchanged since its last snapshot: carried forward");
            return rec;
        }
        Ok(Landing {
            snapshot: Some(path),
            parts,
        }) => (path, parts),
        Err(e) => {
            // An error may quote a record (the first bytes of a body, a
            // value a SQL mapping could not cast): no identity number in it
            // is shown in clear.
            let hash = |n: &str| match &person_key {
                Some(k) => crate::validate::person_hash(k, n),
                None => crate::validate::redact::WITHHELD.to_string(),
            };
            let e = crate::validate::redact::scrub_identity_numbers(&e, &hash).into_owned();
            warn!(error = %e, "feed failed");
            rec.error = Some(e);
            rec.status = if source.required {
                FeedStatus::Failed
            } else {
                FeedStatus::Held
            };
            return rec;
        }
    };
    // Guards: the churn is measured here (it reads both snapshots); every
    // guard is decided by [`guards::evaluate`].
    let churn = match (source.guards.max_churn, &state) {
        (Some(_), Some(prev)) => {
            let new_path = relative(&ctx.prefix, &landed_path);
            Some(
                match (
                    snapshot_keys(ctx, &prev.snapshot).await,
                    snapshot_keys(ctx, &new_path).await,
                ) {
                    (Ok(old), Ok(new)) => guards::Churn::Measured {
                        removed: old.iter().filter(|k| !new.contains(*k)).count() as u64,
                        before: old.len() as u64,
                    },
                    (Err(e), _) | (_, Err(e)) => guards::Churn::Unreadable(e),
                },
            )
        }
        _ => None,
    };
    let guards = guards::evaluate(
        &source.guards,
        &rec,
        state.as_ref(),
        churn.as_ref(),
        source.is_spine(),
    );
    let unreadable = match churn {
        Some(guards::Churn::Unreadable(e)) => Some(e),
        _ => None,
    };
    let tripped: Vec<String> = guards
        .iter()
        .filter(|g| !g.passed)
        .map(|g| g.name.clone())
        .collect();
    rec.guards = guards;
    if !tripped.is_empty() {
        rec.error = Some(match unreadable {
            Some(e) => format!("guard(s) tripped: {} ({e})", tripped.join(", ")),
            None => format!("guard(s) tripped: {}", tripped.join(", ")),
        });
        rec.status = if source.required {
            FeedStatus::Failed
        } else {
            FeedStatus::Held
        };
        warn!(guards = %tripped.join(","), "feed held at its last good snapshot");
        return rec;
    }
    let snapshot = relative(&ctx.prefix, &landed_path);
    let new_state = FeedState {
        feed: source.feed.clone(),
        run_id: ctx.run_id.clone(),
        business_date: ctx.business_date,
        snapshot: snapshot.clone(),
        rows: rec.rows,
        watermark: rec.watermark_after.clone(),
        landed_at: ctx.clock.now(),
        parts: part_states,
    };
    if let Err(e) = ctx.ledger.advance(&new_state).await {
        rec.error = Some(format!("cannot record the new snapshot: {e}"));
        rec.status = if source.required {
            FeedStatus::Failed
        } else {
            FeedStatus::Held
        };
        return rec;
    }
    rec.snapshot = Some(snapshot);
    rec.status = FeedStatus::Landed;
    info!(
        read = rec.read,
        landed = rec.landed,
        quarantined = rec.quarantined,
        duplicates = rec.duplicates,
        tombstones = rec.tombstones,
        upserted = rec.upserted,
        deleted = rec.deleted,
        carried_over = rec.carried_over,
        rows = rec.rows,
        "feed landed"
    );
    rec
}

/// A part fetched ahead of its turn: its records on local disk, and how
/// its fetch ended.
struct AheadPart {
    records: spool::Spooled,
    fetched: Result<source::FetchReport, source::FetchError>,
}

/// Fetches stopped when landing stops early (a part failed): nothing is
/// fetched for a feed that is already held.
#[derive(Default)]
struct AbortOnDrop(Vec<tokio::task::AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for handle in &self.0 {
            handle.abort();
        }
    }
}

/// Keeps what a part's fetch sends on local disk until the part's turn.
async fn spool_ahead(
    fields: Vec<String>,
    mut rx: mpsc::Receiver<source::RawBatch>,
    fetch: JoinHandle<Result<source::FetchReport, source::FetchError>>,
) -> Result<AheadPart, String> {
    let mut records = spool::RawSpool::new(&fields)?;
    let mut failed = None;
    while let Some(batch) = rx.recv().await {
        if let Err(e) = records.push(&batch) {
            failed = Some(e);
            break;
        }
    }
    // A spool that cannot be written stops the fetch (its sender fails).
    drop(rx);
    let fetched = fetch.await.map_err(|e| format!("fetch task: {e}"))?;
    if let Some(e) = failed {
        return Err(e);
    }
    Ok(AheadPart {
        records: records.finish()?,
        fetched,
    })
}

/// Sends a part fetched ahead to the landing loop as if it were arriving,
/// and ends as its fetch ended (a failed fetch sends nothing).
fn replay(
    feed: &str,
    part: &str,
    ahead: AheadPart,
) -> (
    mpsc::Receiver<source::RawBatch>,
    JoinHandle<Result<source::FetchReport, source::FetchError>>,
) {
    let (tx, rx) = mpsc::channel(2);
    let AheadPart {
        mut records,
        fetched,
    } = ahead;
    let (feed, part) = (feed.to_string(), part.to_string());
    let task = tokio::spawn(async move {
        // A failed fetch sends nothing.
        let report = fetched?;
        loop {
            match records.next_batch() {
                Ok(Some(batch)) => {
                    if tx.send(batch).await.is_err() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(message) => {
                    return Err(source::FetchError::Payload {
                        feed,
                        position: part,
                        message,
                    });
                }
            }
        }
        Ok(report)
    });
    (rx, task)
}

/// What landing a feed produced: its new snapshot (`None` when every part
/// reported nothing changed) and what each part's delivery was.
struct Landing {
    snapshot: Option<Path>,
    parts: Vec<PartState>,
}

/// A digest of a part's configuration and the feed's schema: unchanged
/// objects are carried forward only under the mapping that landed them.
fn config_digest(part: &Source, schema: &crate::project::FeedSchema) -> String {
    use sha2::Digest;
    let text = format!("{part:?}\n{schema:?}");
    crate::digest::hex(&sha2::Sha256::digest(text.as_bytes()))[..16].to_string()
}

/// Fetches, validates and lands one feed, merging it with its previous
/// snapshot when a part merges (`append`, `upsert`) or was unchanged.
#[allow(clippy::too_many_arguments, clippy::too_many_lines)]
async fn land_feed(
    ctx: &RunContext,
    source: &Source,
    schema: &crate::project::FeedSchema,
    hash_key: Option<Vec<u8>>,
    vars: &BTreeMap<String, String>,
    registry: &mut RegistryIndex,
    state: Option<&FeedState>,
    rec: &mut FeedRecord,
) -> Result<Landing, String> {
    let fetched_at = ctx.clock.now().timestamp_millis();
    let parts = source.each_part();
    let names = source.part_names();
    let several = parts.len() > 1;
    let mappers = part_mappers(&parts, &names, schema, &hash_key, fetched_at, registry)?;
    let Some((first, _)) = mappers.first() else {
        return Err("the feed has no part to fetch".into());
    };
    let canonical = first.schema();
    // A feed of one full-dump part lands its delivery as the snapshot;
    // any other is merged with the previous snapshot part by part.
    let merging = several || source.merge != Merge::Snapshot;
    let paths = LandingPaths::new(&ctx.prefix, &source.feed, ctx.business_date, &ctx.run_id);
    let landed_at = if merging {
        paths.delivery()
    } else {
        paths.data()
    };
    let is_registry = source.is_spine();
    let mut sink = FeedSink::open(
        &ctx.store,
        &source.feed,
        is_registry,
        merging,
        landed_at.clone(),
        paths.quarantine(),
        Arc::clone(&canonical),
        Arc::clone(&registry.codes),
    )
    .await?;
    let mut unchanged = true;
    let mut declared = Some(0u64);
    let mut part_states = Vec::with_capacity(parts.len());
    let mut plans = Vec::with_capacity(parts.len());
    rec.units = 0;
    rec.bytes = 0;
    rec.retries = 0;
    rec.parts = parts
        .iter()
        .zip(&names)
        .map(|(part, name)| crate::ledger::PartRecord::starting(name, part.merge.as_str()))
        .collect();
    // Each part resumes from its own watermark (a state written before
    // parts had their own holds the first part's as the feed's).
    let watermarks: Vec<Option<String>> = names
        .iter()
        .enumerate()
        .map(
            |(i, name)| match state.and_then(|s| s.parts.iter().find(|p| &p.name == name)) {
                Some(p) => p.watermark.clone(),
                None if i == 0 => rec.watermark_before.clone(),
                None => None,
            },
        )
        .collect();
    let configs: Vec<String> = parts.iter().map(|p| config_digest(p, schema)).collect();
    let start = |i: usize, fields: Vec<String>| {
        let name = &names[i];
        let previous = state.and_then(|s| s.parts.iter().find(|p| &p.name == name));
        let (tx, rx) = mpsc::channel(2);
        let sink = Box::new(if several {
            RawPayloads::for_part(Arc::clone(&ctx.store), &paths, name)
        } else {
            RawPayloads::new(Arc::clone(&ctx.store), &paths)
        });
        let options = FetchOptions {
            watermark: watermarks[i].clone(),
            vars: vars.clone(),
            // Unchanged objects are carried forward only under the
            // configuration that landed them.
            previous_objects: previous
                .filter(|p| p.config == configs[i] && !p.objects.is_empty())
                .map(|p| p.objects.clone()),
            ..FetchOptions::default()
        };
        let fetch_source = parts[i].clone();
        let fetch =
            tokio::spawn(
                async move { source::fetch(&fetch_source, fields, &options, tx, sink).await },
            );
        (rx, fetch)
    };
    // The parts after the first start fetching now, each keeping its
    // records on local disk until its turn: a feed's parts are fetched
    // concurrently and land in order, as if fetched one after the other.
    let mut running = AbortOnDrop::default();
    let mut ahead: Vec<Option<JoinHandle<Result<AheadPart, String>>>> =
        (0..parts.len()).map(|_| None).collect();
    if several {
        for (i, (_, fields)) in mappers.iter().enumerate().skip(1) {
            let (rx, fetch) = start(i, fields.clone());
            running.0.push(fetch.abort_handle());
            let task = tokio::spawn(spool_ahead(fields.clone(), rx, fetch));
            running.0.push(task.abort_handle());
            ahead[i] = Some(task);
        }
    }
    for (i, ((part, (mapper, fields)), name)) in parts.iter().zip(mappers).zip(&names).enumerate() {
        // A part's errors name the part when the feed has several.
        let named = |e: String| {
            if several {
                format!("part {name}: {e}")
            } else {
                e
            }
        };
        let previous = state.and_then(|s| s.parts.iter().find(|p| &p.name == name));
        let watermark = watermarks[i].clone();
        let incremental = matches!(&part.kind, SourceKind::Http(h) if h.since_param.is_some());
        let tombstone_at = match &part.merge {
            Merge::Upsert { tombstone: Some(t) } => fields
                .iter()
                .position(|f| f == &t.field)
                .map(|at| (at, t.value.clone())),
            _ => None,
        };
        let (mut rx, fetch) = match ahead[i].take() {
            None => start(i, fields),
            Some(task) => {
                let spooled = task
                    .await
                    .map_err(|e| named(format!("fetch task: {e}")))?
                    .map_err(&named)?;
                replay(&source.feed, name, spooled)
            }
        };
        let mut consume_error = None;
        while let Some(batch) = rx.recv().await {
            if let Err(e) = sink
                .take(rec, i, name, &mapper, tombstone_at.as_ref(), &batch)
                .await
            {
                consume_error = Some(e);
                break;
            }
        }
        drop(rx);
        let fetched = fetch.await.map_err(|e| named(format!("fetch task: {e}")))?;
        if let Some(e) = consume_error {
            return Err(named(e));
        }
        let report = fetched.map_err(|e| {
            rec.retries += e.retries();
            named(e.to_string())
        })?;
        // An incremental API that sent nothing since the watermark said
        // nothing changed, as a 304 does: the part is carried forward and
        // its watermark stays (the next delta covers the same span).
        let empty_delta = incremental && watermark.is_some() && rec.parts[i].read == 0;
        let report = if empty_delta {
            crate::source::FetchReport {
                unchanged: true,
                watermark: watermark.clone(),
                ..report
            }
        } else {
            report
        };
        declared = declared.zip(report.declared_count).map(|(a, b)| a + b);
        let report = record_fetch(rec, i, part, &mapper, several, report);
        unchanged &= report.unchanged;
        // An incremental API asked without a watermark sent its full
        // state: tonight that part is a full dump.
        let merge = if incremental && watermark.is_none() {
            Merge::Snapshot
        } else {
            part.merge.clone()
        };
        plans.push(crate::merge::PartPlan {
            name: name.clone(),
            merge,
            unchanged: report.unchanged,
        });
        part_states.push(PartState {
            name: name.clone(),
            watermark: report.watermark.or(watermark),
            objects: report.objects,
            config: configs[i].clone(),
            // Counted once the snapshot is formed.
            rows: previous.map_or(0, |p| p.rows),
        });
    }
    rec.declared = declared;
    let Sunk {
        delivered,
        mut new_codes,
    } = sink.finish(rec).await?;
    if unchanged {
        return Ok(Landing {
            snapshot: None,
            parts: part_states,
        });
    }
    if merging {
        let previous = state.map(|s| crate::store::join(&ctx.prefix, &s.snapshot));
        let resolve = (!is_registry).then(|| registry.codes.as_ref());
        let (mut keyed, mut in_registry) = (0u64, 0u64);
        let figures = crate::merge::merge_snapshot(
            &ctx.store,
            previous.as_ref(),
            &landed_at,
            &paths.data(),
            canonical,
            &plans,
            &delivered,
            resolve,
            |batch| {
                let (k, r) = count_keyed(batch, is_registry, &mut new_codes, &registry.codes);
                keyed += k;
                in_registry += r;
            },
        )
        .await
        .map_err(|e| e.to_string())?;
        rec.keyed = keyed;
        rec.in_registry = in_registry;
        record_merge(rec, &figures);
    } else {
        rec.rows = rec.landed;
    }
    for (state, p) in part_states.iter_mut().zip(&rec.parts) {
        state.rows = p.carried_over + p.landed;
    }
    if is_registry {
        registry.codes = Arc::new(new_codes);
    }
    Ok(Landing {
        snapshot: Some(paths.data()),
        parts: part_states,
    })
}

/// One mapper per part, with the fields it reads from the source (a
/// part's tombstone field included).
fn part_mappers(
    parts: &[Source],
    names: &[String],
    schema: &crate::project::FeedSchema,
    hash_key: &Option<Vec<u8>>,
    fetched_at: i64,
    registry: &RegistryIndex,
) -> Result<Vec<(Mapper, Vec<String>)>, String> {
    parts
        .iter()
        .zip(names)
        .map(|(part, name)| {
            let mut fields = source::wanted_fields(part, &validate::source_sql_fields(part));
            if let Merge::Upsert { tombstone: Some(t) } = &part.merge
                && !fields.contains(&t.field)
            {
                fields.push(t.field.clone());
            }
            Mapper::new(
                part,
                schema,
                fields.clone(),
                hash_key.clone(),
                fetched_at,
                Arc::clone(&registry.codes),
            )
            .map(|m| (m.for_part(name), fields))
            .map_err(|e| e.to_string())
        })
        .collect()
}

/// Adds what the fetch of the part at `i` reported to the feed's record
/// (units, bytes, retries, notes, the shape's drift, the watermark of a
/// feed of one part); returns what the part's state keeps.
fn record_fetch(
    rec: &mut FeedRecord,
    i: usize,
    part: &Source,
    mapper: &Mapper,
    several: bool,
    report: crate::source::FetchReport,
) -> PartFetch {
    rec.units += report.units;
    rec.bytes += report.bytes;
    rec.retries += report.retries;
    rec.notes.extend(report.notes);
    for f in report.drift.missing_fields {
        // A delta without deletions carries no tombstone field.
        let tombstone_field = matches!(
            &part.merge,
            Merge::Upsert { tombstone: Some(t) } if t.field == f
        );
        if !tombstone_field && !rec.missing_fields.contains(&f) {
            rec.missing_fields.push(f);
        }
    }
    for f in mapper.shown_unmapped(report.drift.unmapped_fields) {
        if !rec.unmapped_fields.contains(&f) {
            rec.unmapped_fields.push(f);
        }
    }
    if !several && report.watermark.is_some() {
        rec.watermark_after.clone_from(&report.watermark);
    }
    rec.parts[i].unchanged = report.unchanged;
    PartFetch {
        unchanged: report.unchanged,
        watermark: report.watermark,
        objects: report.objects,
    }
}

/// What a part's state keeps of its fetch.
struct PartFetch {
    unchanged: bool,
    watermark: Option<String>,
    objects: Vec<crate::source::ListedObject>,
}

/// Adds what the merge did per part to the feed's record: a redelivered
/// event of an `append` part is a duplicate; carried over, upserted and
/// deleted rows are counted; the snapshot's rows are what was carried
/// over and what landed.
fn record_merge(rec: &mut FeedRecord, figures: &[crate::merge::PartFigures]) {
    for (p, f) in rec.parts.iter_mut().zip(figures) {
        p.landed -= f.duplicates;
        p.duplicates += f.duplicates;
        p.carried_over = f.carried_over;
        p.upserted = f.upserted;
        p.deleted = f.deleted;
    }
    let sum = |f: &dyn Fn(&crate::merge::PartFigures) -> u64| figures.iter().map(f).sum::<u64>();
    rec.landed -= sum(&|f| f.duplicates);
    rec.duplicates += sum(&|f| f.duplicates);
    rec.carried_over = sum(&|f| f.carried_over);
    rec.upserted = sum(&|f| f.upserted);
    rec.deleted = sum(&|f| f.deleted);
    rec.rows = rec.carried_over + rec.landed;
    if rec.tombstones > rec.deleted {
        rec.notes.push(format!(
            "{} tombstone(s) named a record id the snapshot did not hold (already deleted, or never landed)",
            rec.tombstones - rec.deleted
        ));
    }
}
