//! `qinglian explain <USCC>`: why an organization has its colour, read from
//! what a run wrote (profiles and hits) and recorded (the ledger), compared
//! with the previous business date.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use object_store::ObjectStore;
use object_store::path::Path;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::catalog::Published;
use crate::keys::{self, KeyClass};
use crate::ledger::Ledger;

/// Why an explanation could not be given.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    /// The input is not a valid USCC.
    #[error("{0}")]
    Key(String),
    /// No scored run, or the organization is not in it.
    #[error("{0}")]
    NotFound(String),
    /// The warehouse could not be read.
    #[error("warehouse: {0}")]
    Warehouse(String),
}

/// One organization's explanation.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// The organization's profile row, column by column.
    pub profile: Map<String, Value>,
    /// Its hits, each a row of `hits`.
    pub hits: Vec<Map<String, Value>>,
    /// Run explained.
    pub run_id: String,
    /// Each input feed: status in the run, snapshot, stale or not.
    pub inputs: Vec<Map<String, Value>>,
    /// The previous business date's colour and the hits new since then.
    pub change: Option<Map<String, Value>>,
    /// A note when the key given was normalized first.
    pub normalized_from: Option<String>,
    /// Its warnings (预警) in the version, with their states.
    pub warnings: Vec<crate::warnings::Warning>,
}

fn rows(batches: &[RecordBatch]) -> Vec<Map<String, Value>> {
    let mut out = Vec::new();
    for b in batches {
        let schema = b.schema();
        for r in 0..b.num_rows() {
            let mut row = Map::new();
            for (i, f) in schema.fields().iter().enumerate() {
                let c = b.column(i);
                let v = if c.is_null(r) {
                    Value::Null
                } else {
                    match f.data_type() {
                        DataType::Boolean => Value::Bool(c.as_boolean().value(r)),
                        DataType::Int32 => Value::from(
                            c.as_primitive::<datafusion::arrow::datatypes::Int32Type>()
                                .value(r),
                        ),
                        DataType::Float64 => Value::from(
                            c.as_primitive::<datafusion::arrow::datatypes::Float64Type>()
                                .value(r),
                        ),
                        _ => cast(c, &DataType::Utf8)
                            .ok()
                            .map(|t| Value::String(t.as_string::<i32>().value(r).to_string()))
                            .unwrap_or(Value::Null),
                    }
                };
                row.insert(f.name().clone(), v);
            }
            out.push(row);
        }
    }
    out
}

async fn read(
    ctx: &SessionContext,
    url: Vec<String>,
    uscc: &str,
) -> Result<Vec<Map<String, Value>>, ExplainError> {
    let df = ctx
        .read_parquet(url, ParquetReadOptions::default())
        .await
        .map_err(|e| ExplainError::Warehouse(e.to_string()))?;
    let df = df
        .filter(datafusion::prelude::col("uscc").eq(datafusion::prelude::lit(uscc)))
        .map_err(|e| ExplainError::Warehouse(e.to_string()))?;
    let batches = df
        .collect()
        .await
        .map_err(|e| ExplainError::Warehouse(e.to_string()))?;
    Ok(rows(&batches))
}

/// The current published version of a date (or of the latest date when
/// `None`), its profiles and hits verified against the manifest.
async fn published(
    store: &Arc<dyn ObjectStore>,
    prefix: &Path,
    date: Option<NaiveDate>,
) -> Result<Option<Published>, ExplainError> {
    let found = match date {
        Some(d) => Published::latest(store, prefix, d).await,
        None => Published::latest_before(store, prefix, NaiveDate::MAX).await,
    }
    .map_err(|e| ExplainError::Warehouse(e.to_string()))?;
    if let Some(p) = &found {
        p.verify(&["profiles", "hits"])
            .await
            .map_err(|e| ExplainError::Warehouse(e.to_string()))?;
    }
    Ok(found)
}

fn urls(p: &Published, dataset: &str) -> Result<Vec<String>, ExplainError> {
    Ok(p.files(dataset)
        .map_err(|e| ExplainError::Warehouse(e.to_string()))?
        .iter()
        .map(|f| format!("qinglian://warehouse/{f}"))
        .collect())
}

/// Explains an organization's colour for a business date (default: the
/// latest scored run).
pub async fn explain(
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    key: &str,
    date: Option<NaiveDate>,
) -> Result<Explanation, ExplainError> {
    let check = keys::classify(key);
    if check.class != KeyClass::Valid {
        let reason = check.reason.map(|r| r.to_string()).unwrap_or_default();
        let hint = if check.class == KeyClass::Repaired {
            format!(" (did you mean {}?)", check.normalized)
        } else {
            String::new()
        };
        return Err(ExplainError::Key(format!(
            "{key:?} is not a valid USCC ({}): {reason}{hint}",
            check.class
        )));
    }
    let uscc = check.normalized.clone();
    let normalized_from = (uscc != key).then(|| key.to_string());
    let ledger = Ledger::new(Arc::clone(&store), prefix.clone());
    let current = published(&store, &prefix, date).await?.ok_or_else(|| {
        ExplainError::NotFound(match date {
            Some(d) => format!("nothing published for {d} in the warehouse"),
            None => "nothing published in the warehouse".into(),
        })
    })?;
    let manifest = &current.manifest;
    let run = ledger
        .runs_of(manifest.business_date)
        .await
        .map_err(|e| ExplainError::Warehouse(e.to_string()))?
        .into_iter()
        .find(|r| r.run_id == manifest.run_id);
    let ctx = SessionContext::new();
    let base = url::Url::parse("qinglian://warehouse")
        .map_err(|e| ExplainError::Warehouse(e.to_string()))?;
    ctx.register_object_store(&base, Arc::clone(&store));
    let profile = read(&ctx, urls(&current, "profiles")?, &uscc)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| {
            ExplainError::NotFound(format!(
                "{uscc} is not a registered organization in run {}",
                manifest.run_id
            ))
        })?;
    let hits = read(&ctx, urls(&current, "hits")?, &uscc).await?;
    let stale: BTreeSet<String> = profile
        .get("stale_inputs")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let inputs = manifest
        .inputs
        .iter()
        .map(|(feed, snapshot)| {
            let mut m = Map::new();
            m.insert("feed".into(), Value::from(feed.clone()));
            let status = run
                .as_ref()
                .and_then(|r| r.feeds.iter().find(|f| &f.feed == feed))
                .map(|f| serde_json::to_value(f.status).unwrap_or(Value::Null))
                .unwrap_or(Value::Null);
            m.insert("status".into(), status);
            m.insert("snapshot".into(), Value::from(snapshot.path.clone()));
            m.insert("stale".into(), Value::Bool(stale.contains(feed)));
            m
        })
        .collect();
    let before = Published::latest_before(&store, &prefix, manifest.business_date)
        .await
        .map_err(|e| ExplainError::Warehouse(e.to_string()))?;
    if let Some(b) = &before {
        b.verify(&["profiles", "hits"])
            .await
            .map_err(|e| ExplainError::Warehouse(e.to_string()))?;
    }
    let change = match before {
        Some(before) => {
            let prev = before.manifest.business_date;
            {
                let old = read(&ctx, urls(&before, "profiles")?, &uscc)
                    .await?
                    .into_iter()
                    .next();
                let old_hits = read(&ctx, urls(&before, "hits")?, &uscc).await?;
                let key =
                    |h: &Map<String, Value>| format!("{}|{}", h["rule_id"], h["source_record_id"]);
                let before_keys: BTreeSet<String> = old_hits.iter().map(key).collect();
                let new: Vec<Value> = hits
                    .iter()
                    .filter(|h| !before_keys.contains(&key(h)))
                    .map(|h| Value::Object(h.clone()))
                    .collect();
                let mut m = Map::new();
                m.insert("previous_date".into(), Value::from(prev.to_string()));
                m.insert(
                    "previous_colour".into(),
                    old.and_then(|o| o.get("colour").cloned())
                        .unwrap_or(Value::Null),
                );
                m.insert("new_hits".into(), Value::Array(new));
                Some(m)
            }
        }
        None => None,
    };
    let warnings = crate::warnings::published_warnings(&current)
        .await
        .map_err(ExplainError::Warehouse)?
        .into_iter()
        .filter(|w| w.uscc == uscc)
        .collect();
    Ok(Explanation {
        profile,
        hits,
        run_id: manifest.run_id.clone(),
        inputs,
        change,
        normalized_from,
        warnings,
    })
}

/// A score or share rounded for people: one decimal, none when whole
/// (`91.666…` is `91.7`, `100.0` is `100`).
pub fn rounded(x: f64) -> String {
    let r = (x * 10.0).round() / 10.0;
    if r.fract() == 0.0 {
        format!("{r:.0}")
    } else {
        format!("{r:.1}")
    }
}

/// The explanation as text for people, rule titles as written in `hits`.
pub fn render(e: &Explanation) -> String {
    render_with(e, None)
}

/// The explanation as text for people, with the project's rule titles
/// (Chinese where the rule has one) and the dimensions' Chinese names.
pub fn render_for(e: &Explanation, project: &crate::project::Project) -> String {
    render_with(e, Some(project))
}

fn render_with(e: &Explanation, project: Option<&crate::project::Project>) -> String {
    let p = &e.profile;
    let s = |k: &str| {
        p.get(k)
            .map(|v| v.to_string().trim_matches('"').to_string())
            .unwrap_or_default()
    };
    let mut out = String::new();
    if let Some(from) = &e.normalized_from {
        out += &format!("(read {from:?} as {})\n", s("uscc"));
    }
    out += &format!(
        "{} {}  status {}  run {}\n",
        s("uscc"),
        s("name"),
        s("status"),
        e.run_id
    );
    out += &format!(
        "colour {}  points {}  red line {}\n",
        s("colour"),
        s("points"),
        s("red_line")
    );
    out += "dimensions:";
    for d in crate::project::Dimension::ALL {
        let score = p
            .get(&format!("score_{}", d.as_str()))
            .and_then(Value::as_f64)
            .map(rounded)
            .unwrap_or_else(|| "-".into());
        out += &format!(" {} {}", d.name_zh(), score);
    }
    out += "\n";
    let flags: Vec<&str> = [
        "zombie_suspect",
        "illegal_org_name_match",
        "low_confidence_evidence",
    ]
    .into_iter()
    .filter(|f| p.get(*f) == Some(&Value::Bool(true)))
    .collect();
    if !flags.is_empty() {
        out += &format!("flags: {}\n", flags.join(", "));
    }
    if e.hits.is_empty() {
        out += "no hits: nothing deducted\n";
    }
    for h in &e.hits {
        let g = |k: &str| {
            h.get(k)
                .map(|v| v.to_string().trim_matches('"').to_string())
                .unwrap_or_default()
        };
        let dimension = crate::project::Dimension::parse(&g("dimension"))
            .map(|d| d.name_zh().to_string())
            .unwrap_or_else(|| g("dimension"));
        let title = project
            .and_then(|p| p.rules.iter().find(|r| r.id == g("rule_id")))
            .map(|r| r.title_for_people().to_string())
            .unwrap_or_else(|| g("title"));
        out += &format!(
            "hit {} [{}] {}: {} points{} — {} ({} record {}, {}, confidence {})\n",
            g("rule_id"),
            dimension,
            title,
            g("points"),
            if h.get("red_line") == Some(&Value::Bool(true)) {
                ", RED LINE"
            } else {
                ""
            },
            g("detail"),
            g("source_feed"),
            g("source_record_id"),
            g("event_date"),
            g("confidence"),
        );
    }
    let stale: Vec<String> = e
        .inputs
        .iter()
        .filter(|i| i.get("stale") == Some(&Value::Bool(true)))
        .filter_map(|i| i.get("feed").map(|f| f.to_string()))
        .collect();
    out += &format!(
        "inputs: {} feeds{}\n",
        e.inputs.len(),
        if stale.is_empty() {
            String::new()
        } else {
            format!(", stale: {}", stale.join(", "))
        }
    );
    if let Some(c) = &e.change {
        let new = c
            .get("new_hits")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        out += &format!(
            "since {}: colour was {}, {new} new hit(s)\n",
            c.get("previous_date")
                .map(|v| v.to_string())
                .unwrap_or_default()
                .trim_matches('"'),
            c.get("previous_colour")
                .map(|v| v.to_string())
                .unwrap_or_default()
                .trim_matches('"'),
        );
    }
    if !e.warnings.is_empty() {
        out += &format!("warnings (预警): {}\n", e.warnings.len());
        for w in &e.warnings {
            out += &format!("  {}\n", crate::warnings::show::line(w));
        }
    }
    out
}
