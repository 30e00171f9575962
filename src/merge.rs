//! Stage 2b, MERGE: a feed's new snapshot from its previous one and what a
//! delivery landed, part by part, by each part's strategy (kamu-cli's
//! names, [`Merge`]):
//!
//! | part | previous rows kept | delivered rows |
//! |---|---|---|
//! | `snapshot` | none | all |
//! | `append` | all | those whose record id is not in the snapshot yet (a redelivered event is a duplicate) |
//! | `upsert` | those whose record id the delivery neither replaced nor deleted by a tombstone | all |
//! | unchanged (any strategy) | all | none were read |
//!
//! The result is compacted into one new immutable file (the run's
//! `data.parquet`): the previous snapshot's kept rows in their order, then
//! the delivery's. Rows carried over keep what they were landed with, but an
//! organization code is resolved again against tonight's registry, as a
//! full delivery would be. The run's ingest calls [`merge_snapshot`] after
//! the delivery is landed and before its guards decide.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::SchemaRef;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::keys::{KeyClass, RegistryCodes};
use crate::project::Merge;

/// What happens to one part's rows.
#[derive(Debug, Clone, PartialEq)]
pub struct PartPlan {
    /// The part's name (`source_part`).
    pub name: String,
    /// Its strategy.
    pub merge: Merge,
    /// Its source said nothing changed: every previous row stays.
    pub unchanged: bool,
}

/// The record ids one delivery brought, per part.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Delivered {
    /// Record ids landed, per part.
    pub landed: HashMap<String, HashSet<String>>,
    /// Record ids a tombstone deleted, per part.
    pub tombstones: HashMap<String, HashSet<String>>,
}

/// What a merge did, per part (in the order of the plans).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartFigures {
    /// Previous rows kept.
    pub carried_over: u64,
    /// Previous rows replaced by a delivered row of the same id.
    pub upserted: u64,
    /// Previous rows deleted by a tombstone.
    pub deleted: u64,
    /// Delivered rows dropped as already in the snapshot (`append`).
    pub duplicates: u64,
    /// Delivered rows written.
    pub landed: u64,
}

/// Why a merge failed; it names the file.
#[derive(Debug, thiserror::Error)]
#[error("cannot merge {path}: {message}")]
pub struct MergeError {
    /// The file read or written.
    pub path: String,
    /// Cause.
    pub message: String,
}

/// The previous snapshot's rows one batch at a time: which stay, and what
/// the others were (pure, so that the rules read as tests).
pub struct Carry<'a> {
    plans: &'a [PartPlan],
    delivered: &'a Delivered,
    /// Record ids already in the snapshot, per `append` part.
    pub appended: HashMap<String, HashSet<String>>,
    /// Per plan.
    pub figures: Vec<PartFigures>,
}

impl<'a> Carry<'a> {
    /// A carry over `plans` for one delivery.
    pub fn new(plans: &'a [PartPlan], delivered: &'a Delivered) -> Self {
        Self {
            plans,
            delivered,
            appended: HashMap::new(),
            figures: vec![PartFigures::default(); plans.len()],
        }
    }

    /// The rows of `batch` (of the previous snapshot) that stay, their
    /// organization codes resolved against `registry` when given.
    pub fn keep(
        &mut self,
        batch: &RecordBatch,
        registry: Option<&RegistryCodes>,
    ) -> Result<RecordBatch, String> {
        let parts = string_column(batch, "source_part")?;
        let ids = string_column(batch, "source_record_id")?;
        let mut keep = Vec::with_capacity(batch.num_rows());
        for r in 0..batch.num_rows() {
            let part = parts.value(r);
            let id = ids.value(r);
            let Some(at) = self.plans.iter().position(|p| p.name == part) else {
                // A part no longer configured: its rows go.
                keep.push(false);
                continue;
            };
            let plan = &self.plans[at];
            let figures = &mut self.figures[at];
            let stays = if plan.unchanged {
                true
            } else {
                match &plan.merge {
                    Merge::Snapshot => false,
                    Merge::Append => {
                        self.appended
                            .entry(plan.name.clone())
                            .or_default()
                            .insert(id.to_string());
                        true
                    }
                    Merge::Upsert { .. } => {
                        let has = |m: &HashMap<String, HashSet<String>>| {
                            m.get(&plan.name).is_some_and(|s| s.contains(id))
                        };
                        if has(&self.delivered.landed) {
                            figures.upserted += 1;
                            false
                        } else if has(&self.delivered.tombstones) {
                            figures.deleted += 1;
                            false
                        } else {
                            true
                        }
                    }
                }
            };
            if stays {
                figures.carried_over += 1;
            }
            keep.push(stays);
        }
        let kept =
            datafusion::arrow::compute::filter_record_batch(batch, &BooleanArray::from(keep))
                .map_err(|e| e.to_string())?;
        match registry {
            Some(codes) => resolve_again(&kept, codes),
            None => Ok(kept),
        }
    }

    /// The rows of `batch` (of the delivery) that are written: an `append`
    /// part's event already in the snapshot is a duplicate.
    pub fn deliver(&mut self, batch: &RecordBatch) -> Result<RecordBatch, String> {
        let parts = string_column(batch, "source_part")?;
        let ids = string_column(batch, "source_record_id")?;
        let mut keep = Vec::with_capacity(batch.num_rows());
        for r in 0..batch.num_rows() {
            let part = parts.value(r);
            let at = self.plans.iter().position(|p| p.name == part);
            let seen = at.is_some_and(|at| {
                self.plans[at].merge == Merge::Append
                    && !self
                        .appended
                        .entry(part.to_string())
                        .or_default()
                        .insert(ids.value(r).to_string())
            });
            if let Some(at) = at {
                if seen {
                    self.figures[at].duplicates += 1;
                } else {
                    self.figures[at].landed += 1;
                }
            }
            keep.push(!seen);
        }
        datafusion::arrow::compute::filter_record_batch(batch, &BooleanArray::from(keep))
            .map_err(|e| e.to_string())
    }
}

fn string_column<'b>(
    batch: &'b RecordBatch,
    name: &str,
) -> Result<&'b datafusion::arrow::array::StringArray, String> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or_else(|| format!("no text column {name}"))
}

/// A carried row keyed by an organization code only: its USCC is what
/// tonight's registry says (a full delivery is resolved the same way).
fn resolve_again(batch: &RecordBatch, codes: &RegistryCodes) -> Result<RecordBatch, String> {
    let class = string_column(batch, "key_class")?;
    let org_code = KeyClass::OrgCodeOnly.as_str();
    if !class.iter().any(|c| c == Some(org_code)) {
        return Ok(batch.clone());
    }
    let raw = string_column(batch, "uscc_raw")?;
    let uscc = string_column(batch, "uscc")?;
    let resolved: StringArray = (0..batch.num_rows())
        .map(|r| {
            if class.value(r) == org_code && !raw.is_null(r) {
                codes.resolve_org_code(&crate::keys::classify(raw.value(r)).normalized)
            } else {
                (!uscc.is_null(r)).then(|| uscc.value(r).to_string())
            }
        })
        .collect();
    let at = batch.schema().index_of("uscc").map_err(|e| e.to_string())?;
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    columns[at] = Arc::new(resolved);
    RecordBatch::try_new(batch.schema(), columns).map_err(|e| e.to_string())
}

/// Writes `out`: the rows of `previous` (when there is one) that stay,
/// then the delivery's rows of `delta`. `written` sees every batch written
/// (to count keys). Returns the figures per plan.
#[allow(clippy::too_many_arguments)]
pub async fn merge_snapshot(
    store: &Arc<dyn ObjectStore>,
    previous: Option<&Path>,
    delta: &Path,
    out: &Path,
    schema: SchemaRef,
    plans: &[PartPlan],
    delivered: &Delivered,
    registry: Option<&RegistryCodes>,
    mut written: impl FnMut(&RecordBatch),
) -> Result<Vec<PartFigures>, MergeError> {
    let fail = |path: &Path| {
        let path = path.to_string();
        move |e: &dyn std::fmt::Display| MergeError {
            path: path.clone(),
            message: e.to_string(),
        }
    };
    let mut writer =
        crate::land::parquet_writer(store, out, Arc::clone(&schema)).map_err(|e| fail(out)(&e))?;
    let mut carry = Carry::new(plans, delivered);
    if let Some(previous) = previous {
        for batch in read_parquet(store, previous).await? {
            if batch.schema().fields() != schema.fields() {
                return Err(fail(previous)(
                    &"its columns differ from the feed's schema: a changed schema needs a full delivery",
                ));
            }
            let kept = carry
                .keep(&batch, registry)
                .map_err(|e| fail(previous)(&e))?;
            if kept.num_rows() > 0 {
                written(&kept);
                writer.write(&kept).await.map_err(|e| fail(out)(&e))?;
            }
        }
    }
    for batch in read_parquet(store, delta).await? {
        let kept = carry.deliver(&batch).map_err(|e| fail(delta)(&e))?;
        if kept.num_rows() > 0 {
            written(&kept);
            writer.write(&kept).await.map_err(|e| fail(out)(&e))?;
        }
    }
    writer.close().await.map_err(|e| fail(out)(&e))?;
    Ok(carry.figures)
}

/// Every batch of a Parquet file in the store (streamed to a temporary
/// file first: Parquet wants random access).
async fn read_parquet(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
) -> Result<Vec<RecordBatch>, MergeError> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let fail = |e: &dyn std::fmt::Display| MergeError {
        path: path.to_string(),
        message: e.to_string(),
    };
    let mut file = tempfile::tempfile().map_err(|e| fail(&e))?;
    let mut stream = store.get(path).await.map_err(|e| fail(&e))?.into_stream();
    while let Some(chunk) = stream.next().await {
        std::io::Write::write_all(&mut file, &chunk.map_err(|e| fail(&e))?)
            .map_err(|e| fail(&e))?;
    }
    let shown = path.to_string();
    tokio::task::spawn_blocking(move || {
        let fail = |e: &dyn std::fmt::Display| MergeError {
            path: shown.clone(),
            message: e.to_string(),
        };
        ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|b| b.build())
            .map_err(|e| fail(&e))?
            .map(|b| b.map_err(|e| fail(&e)))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|e| fail(&e))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    /// One row: (part, record id, value).
    type Row<'a> = (&'a str, &'a str, &'a str);

    /// A snapshot's rows, every one keyed by a valid USCC.
    fn rows(rows: &[Row<'_>]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("uscc", DataType::Utf8, true),
            Field::new("uscc_raw", DataType::Utf8, true),
            Field::new("key_class", DataType::Utf8, false),
            Field::new("source_record_id", DataType::Utf8, false),
            Field::new("source_part", DataType::Utf8, false),
            Field::new("value", DataType::Utf8, true),
        ]));
        let col = |f: &dyn Fn(&Row<'_>) -> Option<String>| -> ArrayRef {
            Arc::new(rows.iter().map(f).collect::<StringArray>())
        };
        RecordBatch::try_new(
            schema,
            vec![
                col(&|_| Some("52330106MJ00000269".into())),
                col(&|_| Some("52330106MJ00000269".into())),
                col(&|_| Some("valid".into())),
                col(&|r| Some(r.1.into())),
                col(&|r| Some(r.0.into())),
                col(&|r| Some(r.2.into())),
            ],
        )
        .expect("batch")
    }

    fn ids(batch: &RecordBatch) -> Vec<String> {
        let id = string_column(batch, "source_record_id").expect("ids");
        let v = string_column(batch, "value").expect("values");
        (0..batch.num_rows())
            .map(|r| format!("{}={}", id.value(r), v.value(r)))
            .collect()
    }

    fn plan(name: &str, merge: Merge) -> PartPlan {
        PartPlan {
            name: name.into(),
            merge,
            unchanged: false,
        }
    }

    fn set(v: &[&str]) -> HashSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn upsert() -> Merge {
        Merge::Upsert { tombstone: None }
    }

    #[test]
    fn upsert_replaces_by_id_and_a_tombstone_deletes() {
        let previous = rows(&[
            ("court", "a", "1"),
            ("court", "b", "1"),
            ("court", "c", "1"),
        ]);
        let delta = rows(&[("court", "b", "2"), ("court", "d", "1")]);
        let plans = [plan("court", upsert())];
        let delivered = Delivered {
            landed: [("court".into(), set(&["b", "d"]))].into(),
            // `z` is in no snapshot: counted by the run, not an error here.
            tombstones: [("court".into(), set(&["c", "z"]))].into(),
        };
        let mut carry = Carry::new(&plans, &delivered);
        let kept = carry.keep(&previous, None).expect("keep");
        let new = carry.deliver(&delta).expect("deliver");
        assert_eq!(ids(&kept), ["a=1"]);
        assert_eq!(ids(&new), ["b=2", "d=1"]);
        assert_eq!(
            carry.figures,
            [PartFigures {
                carried_over: 1,
                upserted: 1,
                deleted: 1,
                duplicates: 0,
                landed: 2,
            }]
        );
    }

    #[test]
    fn append_adds_and_a_redelivered_event_is_a_duplicate() {
        let previous = rows(&[("court", "a", "1"), ("court", "b", "1")]);
        let delta = rows(&[
            ("court", "b", "1"),
            ("court", "c", "1"),
            ("court", "c", "1"),
        ]);
        let plans = [plan("court", Merge::Append)];
        let delivered = Delivered::default();
        let mut carry = Carry::new(&plans, &delivered);
        let kept = carry.keep(&previous, None).expect("keep");
        let new = carry.deliver(&delta).expect("deliver");
        assert_eq!(ids(&kept), ["a=1", "b=1"]);
        assert_eq!(ids(&new), ["c=1"]);
        assert_eq!(carry.figures[0].carried_over, 2);
        assert_eq!(carry.figures[0].duplicates, 2);
        assert_eq!(carry.figures[0].landed, 1);
    }

    #[test]
    fn a_snapshot_part_is_replaced_and_an_unchanged_part_carried_whole() {
        let previous = rows(&[
            ("court", "a", "1"),
            ("appeals", "x", "1"),
            ("gone", "g", "1"),
        ]);
        let plans = [
            plan("court", Merge::Snapshot),
            PartPlan {
                unchanged: true,
                ..plan("appeals", upsert())
            },
        ];
        let delivered = Delivered {
            // An unchanged part is not read: nothing of it can replace.
            landed: [("appeals".into(), set(&["x"]))].into(),
            ..Delivered::default()
        };
        let mut carry = Carry::new(&plans, &delivered);
        let kept = carry.keep(&previous, None).expect("keep");
        assert_eq!(ids(&kept), ["x=1"], "a removed part's rows go too");
        assert_eq!(carry.figures[0].carried_over, 0);
        assert_eq!(carry.figures[1].carried_over, 1);
    }

    #[test]
    fn a_carried_organization_code_resolves_against_tonights_registry() {
        let batch = rows(&[("court", "a", "1"), ("court", "b", "1")]);
        let mut columns = batch.columns().to_vec();
        columns[0] = Arc::new(StringArray::from(vec![None::<&str>, Some("x")]));
        columns[1] = Arc::new(StringArray::from(vec![Some("MJ0000026"), Some("x")]));
        columns[2] = Arc::new(StringArray::from(vec!["org_code_only", "valid"]));
        let batch = RecordBatch::try_new(batch.schema(), columns).expect("batch");
        let mut codes = RegistryCodes::default();
        codes.insert("52330106MJ00000269");
        let plans = [plan("court", upsert())];
        let delivered = Delivered::default();
        let kept = Carry::new(&plans, &delivered)
            .keep(&batch, Some(&codes))
            .expect("keep");
        let uscc = string_column(&kept, "uscc").expect("uscc");
        assert_eq!(uscc.value(0), "52330106MJ00000269");
        assert_eq!(uscc.value(1), "x");
    }
}
