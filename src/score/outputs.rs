//! The scoring outputs and the one function that writes every dataset, so
//! the publish stage can take the writing over without touching scoring.
//!
//! `published/<dataset>/dt=<business_date>/run=<run_id>/data.parquet`

use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int32Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use object_store::ObjectStore;
use object_store::path::Path;

use super::{Hit, OrgScore};
use crate::project::{Dimension, Pipeline, Project};

/// Datasets the scoring stage writes.
pub const OUTPUT_DATASETS: [&str; 6] = [
    "profiles",
    "hits",
    "codes",
    "changes",
    "demonstration",
    "leads",
];

/// Writes one dataset of a run; returns its path.
pub async fn write_dataset(
    store: &Arc<dyn ObjectStore>,
    prefix: &Path,
    dataset: &str,
    business_date: NaiveDate,
    run_id: &str,
    schema: SchemaRef,
    batches: &[RecordBatch],
) -> Result<Path, String> {
    let path = crate::store::join(
        prefix,
        &crate::layout::published_data(dataset, business_date, run_id),
    );
    let mut w =
        crate::land::parquet_writer(store, &path, schema).map_err(|e| format!("{path}: {e}"))?;
    for b in batches {
        w.write(b).await.map_err(|e| format!("{path}: {e}"))?;
    }
    w.close().await.map_err(|e| format!("{path}: {e}"))?;
    Ok(path)
}

/// Columns of `hits`.
pub fn hits_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("uscc", DataType::Utf8, false),
        Field::new("rule_id", DataType::Utf8, false),
        Field::new("title", DataType::Utf8, false),
        Field::new("dimension", DataType::Utf8, false),
        Field::new("points", DataType::Int32, false),
        Field::new("red_line", DataType::Boolean, false),
        Field::new("flag", DataType::Utf8, true),
        Field::new("source_feed", DataType::Utf8, false),
        Field::new("source_record_id", DataType::Utf8, false),
        Field::new("event_date", DataType::Date32, false),
        Field::new("detail", DataType::Utf8, false),
        Field::new("confidence", DataType::Utf8, false),
        Field::new("event", DataType::Utf8, false),
        Field::new("counted", DataType::Boolean, false),
        Field::new("rules_version", DataType::Utf8, false),
        Field::new("business_date", DataType::Date32, false),
    ]))
}

fn days(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()).num_days() as i32
}

/// The `hits` dataset as one batch; no row of an `uncoloured` organization
/// (deregistered: it gets no colour) is counted.
pub(super) fn hits_batch(
    project: &Project,
    hits: &[Hit],
    uncoloured: &std::collections::HashSet<String>,
    rules_version: &str,
    date: NaiveDate,
) -> Result<RecordBatch, String> {
    let rules: HashMap<&str, &crate::project::Rule> =
        project.rules.iter().map(|r| (r.id.as_str(), r)).collect();
    let rule = |h: &Hit| rules.get(h.rule_id.as_str()).copied();
    let n = hits.len();
    // The row of each event that deducts; the others are its evidence.
    let counted: std::collections::HashSet<*const Hit> = super::first_of_each_event(hits)
        .filter(|h| !uncoloured.contains(&h.uscc))
        .map(|h| h as *const Hit)
        .collect();
    let counts = |h: &Hit| counted.contains(&(h as *const Hit));
    let strings = |f: &dyn Fn(&Hit) -> String| -> ArrayRef {
        Arc::new(StringArray::from(hits.iter().map(f).collect::<Vec<_>>()))
    };
    let columns: Vec<ArrayRef> = vec![
        strings(&|h| h.uscc.clone()),
        strings(&|h| h.rule_id.clone()),
        strings(&|h| rule(h).map(|r| r.title.clone()).unwrap_or_default()),
        strings(&|h| {
            rule(h)
                .map(|r| r.dimension.as_str().to_string())
                .unwrap_or_default()
        }),
        Arc::new(Int32Array::from(
            hits.iter()
                .map(|h| {
                    if h.low_confidence || !counts(h) {
                        0
                    } else {
                        rule(h).map_or(0, |r| r.points as i32)
                    }
                })
                .collect::<Vec<_>>(),
        )),
        Arc::new(BooleanArray::from(
            hits.iter()
                .map(|h| !h.low_confidence && rule(h).is_some_and(|r| r.red_line))
                .collect::<Vec<_>>(),
        )),
        Arc::new(StringArray::from(
            hits.iter()
                .map(|h| rule(h).and_then(|r| r.flag.clone()))
                .collect::<Vec<_>>(),
        )),
        strings(&|h| h.source_feed.clone()),
        strings(&|h| h.source_record_id.clone()),
        Arc::new(Date32Array::from(
            hits.iter().map(|h| days(h.event_date)).collect::<Vec<_>>(),
        )),
        strings(&|h| h.detail.clone()),
        strings(&|h| {
            if h.low_confidence {
                "low".into()
            } else {
                "high".into()
            }
        }),
        strings(&|h| h.event.clone()),
        Arc::new(BooleanArray::from(
            hits.iter().map(counts).collect::<Vec<_>>(),
        )),
        Arc::new(StringArray::from(vec![rules_version; n])),
        Arc::new(Date32Array::from(vec![days(date); n])),
    ];
    RecordBatch::try_new(hits_schema(), columns).map_err(|e| e.to_string())
}

/// Columns of `profiles`.
pub fn profiles_schema() -> SchemaRef {
    let mut fields = vec![
        Field::new("uscc", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("org_type", DataType::Utf8, false),
        Field::new("registrar_division", DataType::Utf8, true),
        Field::new("status", DataType::Utf8, false),
        Field::new("colour", DataType::Utf8, true),
        Field::new("points", DataType::Int32, true),
        Field::new("red_line", DataType::Boolean, false),
    ];
    for d in Dimension::ALL {
        fields.push(Field::new(
            format!("score_{}", d.as_str()),
            DataType::Float64,
            true,
        ));
    }
    fields.extend([
        Field::new("zombie_suspect", DataType::Boolean, false),
        Field::new("illegal_org_name_match", DataType::Boolean, false),
        Field::new("low_confidence_evidence", DataType::Boolean, false),
        Field::new("stale_inputs", DataType::Utf8, false),
        Field::new("hits", DataType::Int32, false),
        Field::new("rules_version", DataType::Utf8, false),
        Field::new("business_date", DataType::Date32, false),
    ]);
    Arc::new(Schema::new(fields))
}

/// What every profile row of a run shares.
pub(super) struct ProfileContext<'a> {
    /// The pipeline (bands, start points).
    pub(super) pipeline: &'a Pipeline,
    /// Scores of organizations with hits.
    pub(super) scores: &'a HashMap<String, OrgScore>,
    /// Stale feeds, comma-separated.
    pub(super) stale: String,
    /// Rules version.
    pub(super) rules_version: &'a str,
    /// Business date.
    pub(super) date: NaiveDate,
}

/// Profiles for a batch of registry rows (`uscc, name, org_type,
/// registrar_division, status`). Deregistered organizations get no colour.
pub(super) fn profiles_batch(
    p: &ProfileContext<'_>,
    registry: &RecordBatch,
) -> Result<RecordBatch, String> {
    use datafusion::arrow::array::AsArray;
    let text = |i: usize| {
        datafusion::arrow::compute::cast(registry.column(i), &DataType::Utf8)
            .map_err(|e| e.to_string())
    };
    let (uscc, name, org_type, division, status) =
        (text(0)?, text(1)?, text(2)?, text(3)?, text(4)?);
    let (uscc, name, org_type, division, status) = (
        uscc.as_string::<i32>(),
        name.as_string::<i32>(),
        org_type.as_string::<i32>(),
        division.as_string::<i32>(),
        status.as_string::<i32>(),
    );
    let n = registry.num_rows();
    let empty = OrgScore::default();
    let start = p.pipeline.scoring.start_points;
    let scored: Vec<(bool, &OrgScore)> = (0..n)
        .map(|r| {
            let active = status.value(r) != "deregistered";
            (active, p.scores.get(uscc.value(r)).unwrap_or(&empty))
        })
        .collect();
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(uscc.clone()),
        Arc::new(name.clone()),
        Arc::new(org_type.clone()),
        Arc::new(division.clone()),
        Arc::new(status.clone()),
        Arc::new(StringArray::from(
            scored
                .iter()
                .map(|(a, s)| a.then(|| s.colour(p.pipeline).as_str()))
                .collect::<Vec<_>>(),
        )),
        Arc::new(Int32Array::from(
            scored
                .iter()
                .map(|(a, s)| a.then(|| s.points(start) as i32))
                .collect::<Vec<_>>(),
        )),
        Arc::new(BooleanArray::from(
            scored
                .iter()
                .map(|(a, s)| *a && s.red_line())
                .collect::<Vec<_>>(),
        )),
    ];
    for d in 0..Dimension::ALL.len() {
        columns.push(Arc::new(Float64Array::from(
            scored
                .iter()
                .map(|(a, s)| a.then(|| s.dimension_score(d, start)))
                .collect::<Vec<_>>(),
        )));
    }
    let flag = |f: &str| -> ArrayRef {
        Arc::new(BooleanArray::from(
            scored
                .iter()
                .map(|(_, s)| s.flags.contains(f))
                .collect::<Vec<_>>(),
        ))
    };
    columns.push(flag("zombie_suspect"));
    columns.push(flag("illegal_org_name_match"));
    columns.push(Arc::new(BooleanArray::from(
        scored
            .iter()
            .map(|(_, s)| s.low_confidence)
            .collect::<Vec<_>>(),
    )));
    columns.push(Arc::new(StringArray::from(vec![p.stale.as_str(); n])));
    columns.push(Arc::new(Int32Array::from(
        scored
            .iter()
            .map(|(_, s)| s.hits as i32)
            .collect::<Vec<_>>(),
    )));
    columns.push(Arc::new(StringArray::from(vec![p.rules_version; n])));
    columns.push(Arc::new(Date32Array::from(vec![days(p.date); n])));
    RecordBatch::try_new(profiles_schema(), columns).map_err(|e| e.to_string())
}

/// Columns of `codes`: what the oversight platform and the public consume
/// (no points, no hits, nothing private).
pub fn codes_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("uscc", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("org_type", DataType::Utf8, false),
        Field::new("registrar_division", DataType::Utf8, true),
        Field::new("status", DataType::Utf8, false),
        Field::new("colour", DataType::Utf8, false),
        Field::new("issued_on", DataType::Date32, false),
        Field::new("valid_until", DataType::Date32, false),
        Field::new("rules_version", DataType::Utf8, false),
    ]))
}

/// Codes of the profiles that have a colour (deregistered ones have none).
/// A code is issued for the business date and valid until the next run's.
pub(super) fn codes_batch(profiles: &RecordBatch, date: NaiveDate) -> Result<RecordBatch, String> {
    use datafusion::arrow::compute::{filter_record_batch, is_not_null};
    let colour = profiles
        .column_by_name("colour")
        .ok_or("no colour column")?;
    let with_code = filter_record_batch(profiles, &is_not_null(colour).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let n = with_code.num_rows();
    let col = |name: &str| -> Result<ArrayRef, String> {
        with_code
            .column_by_name(name)
            .cloned()
            .ok_or_else(|| format!("no {name} column"))
    };
    let next = date.succ_opt().unwrap_or(date);
    RecordBatch::try_new(
        codes_schema(),
        vec![
            col("uscc")?,
            col("name")?,
            col("org_type")?,
            col("registrar_division")?,
            col("status")?,
            col("colour")?,
            Arc::new(Date32Array::from(vec![days(date); n])),
            Arc::new(Date32Array::from(vec![days(next); n])),
            col("rules_version")?,
        ],
    )
    .map_err(|e| e.to_string())
}

/// Columns of `changes`: colour changes against the previous business
/// date's result, with the rules that appeared and disappeared.
pub fn changes_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("uscc", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("previous_business_date", DataType::Date32, true),
        Field::new("previous_colour", DataType::Utf8, true),
        Field::new("colour", DataType::Utf8, true),
        Field::new("rules_added", DataType::Utf8, false),
        Field::new("rules_removed", DataType::Utf8, false),
        Field::new("business_date", DataType::Date32, false),
    ]))
}

/// One colour change.
pub(super) struct Change {
    pub(super) uscc: String,
    pub(super) name: String,
    pub(super) previous_colour: Option<String>,
    pub(super) colour: Option<String>,
    pub(super) added: Vec<String>,
    pub(super) removed: Vec<String>,
}

/// The `changes` rows as a batch.
pub(super) fn changes_batch(
    changes: &[Change],
    previous: Option<NaiveDate>,
    date: NaiveDate,
) -> Result<RecordBatch, String> {
    let n = changes.len();
    RecordBatch::try_new(
        changes_schema(),
        vec![
            Arc::new(StringArray::from(
                changes.iter().map(|c| c.uscc.as_str()).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                changes.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            )),
            Arc::new(Date32Array::from(vec![previous.map(days); n])),
            Arc::new(StringArray::from(
                changes
                    .iter()
                    .map(|c| c.previous_colour.clone())
                    .collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                changes.iter().map(|c| c.colour.clone()).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                changes
                    .iter()
                    .map(|c| c.added.join(","))
                    .collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                changes
                    .iter()
                    .map(|c| c.removed.join(","))
                    .collect::<Vec<_>>(),
            )),
            Arc::new(Date32Array::from(vec![days(date); n])),
        ],
    )
    .map_err(|e| e.to_string())
}
