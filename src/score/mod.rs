//! Stages 4–5, JOIN and SCORE: one profile per registered organization,
//! every rule's hits with their evidence, points, colour and portrait.
//!
//! The landed snapshots are registered with DataFusion; every feed but the
//! registry is resolved against the registry spine (its USCC, the org code
//! already resolved at ingest, then a normalized name that names exactly
//! one registered organization; `match` records which). Each rule's SQL
//! runs with its window applied from the business date; hits whose record
//! was matched by name alone are low-confidence: they carry no points and
//! no red line. Scoring then walks the registry once.

#[cfg(feature = "ballista")]
pub mod ballista;
pub mod demonstration;
pub mod engine;
pub mod leads;
pub mod outputs;
pub mod public;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Date32Type};
use datafusion::datasource::empty::EmptyTable;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use sha2::{Digest, Sha256};

pub use outputs::{
    OUTPUT_DATASETS, changes_schema, codes_schema, hits_schema, profiles_schema, write_dataset,
};

use crate::keys;
use crate::ledger::ScoreSummary;
use crate::project::{Colour, Dimension, Pipeline, Project, Rule, SPINE_FEED};

/// Why scoring failed; the run then publishes nothing.
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    /// A rule failed or returned rows it must not.
    #[error("rule {rule}: {message}")]
    Rule {
        /// Rule id.
        rule: String,
        /// What went wrong, naming the row where one is at fault.
        message: String,
    },
    /// The engine failed outside a rule.
    #[error("scoring: {0}")]
    Engine(String),
}

fn engine(e: impl std::fmt::Display) -> ScoreError {
    ScoreError::Engine(e.to_string())
}

/// A feed's snapshot as scoring sees it.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// URL DataFusion reads (`qinglian://warehouse/<path>`), or `None`
    /// when the feed has never landed.
    pub url: Option<String>,
    /// The snapshot's path relative to the warehouse.
    pub path: Option<String>,
    /// The business date it was landed for.
    pub business_date: Option<NaiveDate>,
}

/// One rule hit with its evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// Organization.
    pub uscc: String,
    /// Rule id.
    pub rule_id: String,
    /// Feed of the evidence.
    pub source_feed: String,
    /// Record of the evidence.
    pub source_record_id: String,
    /// When it happened.
    pub event_date: NaiveDate,
    /// What the rule says about it.
    pub detail: String,
    /// `high`, or `low` when the evidence matched by name alone.
    pub low_confidence: bool,
    /// The event the evidence belongs to (the rule's `event` columns):
    /// hits of one organization and rule sharing it deduct once.
    pub event: String,
}

/// The content hash of a pipeline's rules and bands.
pub fn rules_version(project: &Project, pipeline: &Pipeline) -> String {
    let mut h = Sha256::new();
    for rule in project.pipeline_rules(pipeline) {
        h.update(format!("{rule:?}").as_bytes());
    }
    h.update(format!("{:?}", pipeline.scoring).as_bytes());
    crate::digest::hex(&h.finalize()[..8])
}

/// A scoring session with the default memory limit (1 GiB).
pub fn session() -> Result<SessionContext, ScoreError> {
    session_with_limit(1024)
}

/// A DataFusion session for scoring, with the key functions, a memory
/// limit and canonical string types.
pub fn session_with_limit(memory_limit_mb: u64) -> Result<SessionContext, ScoreError> {
    let bytes = usize::try_from(memory_limit_mb)
        .ok()
        .and_then(|mb| mb.checked_mul(1 << 20))
        .ok_or_else(|| {
            ScoreError::Engine(format!(
                "memory_limit_mb {memory_limit_mb} is more bytes than this machine can address"
            ))
        })?;
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_limit(bytes, 1.0)
        .build_arc()
        .map_err(engine)?;
    let mut config = SessionConfig::new().with_target_partitions(2);
    config
        .options_mut()
        .execution
        .parquet
        .schema_force_view_types = false;
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    keys::udf::register(&ctx);
    Ok(ctx)
}

/// Registers every feed, resolved against the registry, as its table.
pub async fn register_feeds(
    ctx: &SessionContext,
    project: &Project,
    pipeline: &Pipeline,
    snapshots: &BTreeMap<String, Snapshot>,
) -> Result<BTreeMap<String, u64>, ScoreError> {
    // Every canonical table exists for the rules: a feed the pipeline does
    // not fetch (or that never landed) is an empty table of its schema.
    let tables: Vec<(&String, &crate::project::FeedSchema)> = project.schemas.iter().collect();
    for &(feed, schema) in &tables {
        let landed = format!("{feed}_landed");
        match snapshots.get(feed).and_then(|s| s.url.clone()) {
            Some(url) => ctx
                .register_parquet(
                    &landed,
                    &url,
                    ParquetReadOptions::default().schema(&schema.arrow_schema()),
                )
                .await
                .map_err(engine)?,
            None => {
                let empty = EmptyTable::new(schema.arrow_schema());
                ctx.register_table(&landed, Arc::new(empty))
                    .map_err(engine)?;
            }
        }
    }
    resolve_feeds(ctx, project, pipeline).await
}

/// Creates each feed's resolved view over its `<feed>_landed` table (the
/// registry spine, name matching, the `match` column); returns the records
/// per fetched feed that matched nothing.
pub async fn resolve_feeds(
    ctx: &SessionContext,
    project: &Project,
    pipeline: &Pipeline,
) -> Result<BTreeMap<String, u64>, ScoreError> {
    let tables: Vec<(&String, &crate::project::FeedSchema)> = project.schemas.iter().collect();
    // Computed once and kept: every feed view and every rule reads them.
    materialize(
        ctx,
        "registry_names",
        &format!(
            "SELECT subject_name_key, min(uscc) AS uscc FROM {SPINE_FEED}_landed \
             WHERE subject_name_key IS NOT NULL GROUP BY subject_name_key HAVING count(*) = 1"
        ),
    )
    .await?;
    let mut unmatched = BTreeMap::new();
    for &(feed, schema) in &tables {
        let columns: Vec<String> = schema
            .all_columns()
            .iter()
            .map(|c| {
                if c.name == "uscc" && feed != SPINE_FEED {
                    "COALESCE(f.uscc, n.uscc) AS uscc".to_string()
                } else {
                    format!("f.\"{}\"", c.name)
                }
            })
            .collect();
        let sql = if feed == SPINE_FEED {
            format!(
                "CREATE VIEW {SPINE_FEED} AS SELECT {}, 'uscc' AS \"match\" FROM {SPINE_FEED}_landed f",
                columns.join(", ")
            )
        } else {
            format!(
                "CREATE VIEW \"{feed}\" AS SELECT {}, \
                 CASE WHEN f.uscc IS NOT NULL AND f.key_class = 'org_code_only' THEN 'org_code' \
                      WHEN f.uscc IS NOT NULL THEN 'uscc' WHEN n.uscc IS NOT NULL THEN 'name' END AS \"match\" \
                 FROM \"{feed}_landed\" f LEFT JOIN registry_names n \
                 ON f.uscc IS NULL AND f.subject_name_key = n.subject_name_key",
                columns.join(", ")
            )
        };
        ctx.sql(&sql).await.map_err(engine)?;
    }
    // What matched nothing: rows without a USCC that no name resolves.
    // Which rows matched by name alone is asked for the hits only
    // ([`mark_name_matched`]): at the national tier most court records
    // carry only a name, millions of rows no rule hits.
    for &(feed, _) in &tables {
        if !pipeline.sources.contains(feed) {
            continue;
        }
        let sql = if feed == SPINE_FEED {
            format!("SELECT count(*) FROM {SPINE_FEED}_landed WHERE uscc IS NULL")
        } else {
            format!(
                "SELECT count(*) FROM \"{feed}_landed\" f LEFT JOIN registry_names n \
                 ON f.subject_name_key = n.subject_name_key \
                 WHERE f.uscc IS NULL AND n.uscc IS NULL"
            )
        };
        let count = ctx
            .sql(&sql)
            .await
            .map_err(engine)?
            .collect()
            .await
            .map_err(engine)?;
        let n = count
            .first()
            .and_then(|b| cast(b.column(0), &DataType::UInt64).ok())
            .map_or(0, |c| {
                c.as_primitive::<datafusion::arrow::datatypes::UInt64Type>()
                    .value(0)
            });
        unmatched.insert(feed.clone(), n);
    }
    Ok(unmatched)
}

/// Marks the hits whose evidence record matched its organization by name
/// alone (a row without a USCC whose name names one registry
/// organization): low confidence. One query per feed the hits cite, over
/// that feed's rows without a USCC, joined to the cited record ids.
pub async fn mark_name_matched(ctx: &SessionContext, hits: &mut [Hit]) -> Result<(), ScoreError> {
    let mut cited: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for h in hits.iter() {
        cited
            .entry(h.source_feed.as_str())
            .or_default()
            .insert(h.source_record_id.as_str());
    }
    let mut named: HashMap<String, HashSet<String>> = HashMap::new();
    for (feed, records) in cited {
        let landed = format!("{feed}_landed");
        // The registry is the spine: its rows match by USCC.
        if feed == SPINE_FEED || !ctx.table_exist(landed.as_str()).map_err(engine)? {
            continue;
        }
        let ids = RecordBatch::try_from_iter(vec![(
            "source_record_id",
            Arc::new(StringArray::from_iter_values(records)) as ArrayRef,
        )])
        .map_err(engine)?;
        engine::register_rows(ctx, "cited_records", ids.schema(), vec![ids]).await?;
        let found = ctx
            .sql(&format!(
                "SELECT DISTINCT CAST(f.source_record_id AS VARCHAR) AS source_record_id \
                 FROM cited_records c JOIN \"{landed}\" f ON f.source_record_id = c.source_record_id \
                 JOIN registry_names n ON f.subject_name_key = n.subject_name_key \
                 WHERE f.uscc IS NULL"
            ))
            .await
            .map_err(engine)?
            .collect()
            .await;
        ctx.deregister_table("cited_records").map_err(engine)?;
        for b in &found.map_err(engine)? {
            let ids = cast(b.column(0), &DataType::Utf8).map_err(engine)?;
            for id in ids.as_string::<i32>().iter().flatten() {
                named
                    .entry(feed.to_string())
                    .or_default()
                    .insert(id.to_string());
            }
        }
    }
    for h in hits.iter_mut() {
        if named
            .get(&h.source_feed)
            .is_some_and(|ids| ids.contains(&h.source_record_id))
        {
            h.low_confidence = true;
        }
    }
    Ok(())
}

/// Runs a query once and registers its result as an in-memory table.
async fn materialize(ctx: &SessionContext, name: &str, sql: &str) -> Result<(), ScoreError> {
    let df = ctx.sql(sql).await.map_err(engine)?;
    let schema = Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await.map_err(engine)?;
    engine::register_rows(ctx, name, schema, batches).await
}

/// The date of an Arrow `Date32` value (days from 1970-01-01, either
/// side); `None` outside the calendar chrono covers. Dates before 1970 are
/// ordinary: founding dates, old court cases.
pub fn date_of_days(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(1970, 1, 1)?
        .checked_add_signed(chrono::TimeDelta::try_days(i64::from(days))?)
}

/// A rule's SQL with its window applied.
fn windowed_sql(rule: &Rule, business_date: NaiveDate) -> String {
    let sql = rule.render_sql(business_date);
    match rule.window.range(business_date) {
        Some((from, to)) => format!(
            "SELECT * FROM ({sql}) AS hits WHERE event_date BETWEEN DATE '{from}' AND DATE '{to}'"
        ),
        None => sql,
    }
}

/// Runs one rule; every row naming a registered organization must carry a
/// date. Hits whose record matched by name alone are marked low
/// confidence.
pub async fn run_rule(
    ctx: &SessionContext,
    rule: &Rule,
    business_date: NaiveDate,
) -> Result<Vec<Hit>, ScoreError> {
    let registered = registered(ctx).await?;
    let mut hits = rule_hits(ctx, rule, business_date, &registered).await?;
    mark_name_matched(ctx, &mut hits).await?;
    Ok(hits)
}

/// The USCC of every registered organization (the spine): hits on anything
/// else are not hits.
async fn registered(ctx: &SessionContext) -> Result<HashSet<String>, ScoreError> {
    registry_codes(ctx, "uscc IS NOT NULL").await
}

/// The codes of the registry's organizations that match a condition.
async fn registry_codes(
    ctx: &SessionContext,
    condition: &str,
) -> Result<HashSet<String>, ScoreError> {
    demonstration::uscc_set(ctx, &format!("SELECT uscc FROM registry WHERE {condition}")).await
}

/// One rule's hits on registered organizations, not yet marked for
/// confidence. Rows naming no registered organization (an unregistered
/// subject, an invalid or missing key) are left out and counted in the
/// log: they score nothing (DOMAIN.md §4).
async fn rule_hits(
    ctx: &SessionContext,
    rule: &Rule,
    business_date: NaiveDate,
    registered: &HashSet<String>,
) -> Result<Vec<Hit>, ScoreError> {
    let fail = |message: String| ScoreError::Rule {
        rule: rule.id.clone(),
        message,
    };
    let event = rule
        .event
        .iter()
        .map(|c| format!("COALESCE(CAST(h.\"{c}\" AS VARCHAR), '')"))
        .collect::<Vec<_>>()
        .join(", '|', ");
    let sql = format!(
        "SELECT h.uscc, h.source_feed, h.source_record_id, h.event_date, h.detail, \
         concat({event}) AS event FROM ({}) AS h",
        windowed_sql(rule, business_date)
    );
    let batches = ctx
        .sql(&sql)
        .await
        .map_err(|e| fail(format!("does not plan: {e}")))?
        .collect()
        .await
        .map_err(|e| fail(format!("failed at run time: {e}")))?;
    let (mut hits, mut outside) = (Vec::new(), 0u64);
    for b in &batches {
        let text = |i: usize| cast(b.column(i), &DataType::Utf8).map_err(|e| fail(e.to_string()));
        let (uscc, feed, record, detail) = (text(0)?, text(1)?, text(2)?, text(4)?);
        let event = text(5)?;
        let (uscc, feed, record, detail, event) = (
            uscc.as_string::<i32>(),
            feed.as_string::<i32>(),
            record.as_string::<i32>(),
            detail.as_string::<i32>(),
            event.as_string::<i32>(),
        );
        let dates = cast(b.column(3), &DataType::Date32).map_err(|e| fail(e.to_string()))?;
        let dates = dates.as_primitive::<Date32Type>();
        for r in 0..b.num_rows() {
            let record_id = if record.is_null(r) {
                ""
            } else {
                record.value(r)
            };
            let code = if uscc.is_null(r) { "" } else { uscc.value(r) };
            if !registered.contains(code) {
                outside += 1;
                continue;
            }
            if dates.is_null(r) {
                return Err(fail(format!(
                    "row for record {record_id:?} of {code} has no event_date"
                )));
            }
            let days = dates.value(r);
            let Some(event_date) = date_of_days(days) else {
                return Err(fail(format!(
                    "row for record {record_id:?} of {code} has event_date {days} days from 1970-01-01, \
                     outside the calendar (years -262143 to 262142)"
                )));
            };
            hits.push(Hit {
                uscc: code.to_string(),
                rule_id: rule.id.clone(),
                source_feed: if feed.is_null(r) {
                    String::new()
                } else {
                    feed.value(r).to_string()
                },
                source_record_id: record_id.to_string(),
                event_date,
                detail: if detail.is_null(r) {
                    String::new()
                } else {
                    detail.value(r).to_string()
                },
                low_confidence: false,
                event: if event.is_null(r) {
                    String::new()
                } else {
                    event.value(r).to_string()
                },
            });
        }
    }
    if outside > 0 {
        tracing::info!(rule = %rule.id, rows = outside, "rule rows naming no registered organization left out");
    }
    Ok(hits)
}

/// Per-organization sums of its hits.
#[derive(Debug, Default, Clone)]
pub struct OrgScore {
    /// Points deducted per dimension (high-confidence point rules).
    pub deductions: [u32; 5],
    /// A red line hit per dimension.
    pub red: [bool; 5],
    /// Flags set by rules.
    pub flags: BTreeSet<String>,
    /// Any hit of low confidence.
    pub low_confidence: bool,
    /// Hits counted.
    pub hits: u32,
}

impl OrgScore {
    /// Points left of the year's allowance.
    pub fn points(&self, start: u32) -> u32 {
        start.saturating_sub(
            self.deductions
                .iter()
                .fold(0u32, |sum, d| sum.saturating_add(*d)),
        )
    }

    /// Whether any red line holds.
    pub fn red_line(&self) -> bool {
        self.red.iter().any(|r| *r)
    }

    /// Colour of the integrity code.
    pub fn colour(&self, pipeline: &Pipeline) -> Colour {
        if self.red_line() {
            Colour::Red
        } else {
            pipeline
                .scoring
                .colour_of(self.points(pipeline.scoring.start_points))
        }
    }

    /// Sub-score 0–100 of a dimension: 0 on a red line in it.
    pub fn dimension_score(&self, d: usize, start: u32) -> f64 {
        if self.red[d] || start == 0 {
            0.0
        } else {
            100.0 * f64::from(start.saturating_sub(self.deductions[d])) / f64::from(start)
        }
    }
}

/// Adds every hit to its organization's score, once per event: evidence
/// rows of one organization, rule and event deduct once.
pub fn aggregate(project: &Project, hits: &[Hit]) -> HashMap<String, OrgScore> {
    let rules: HashMap<&str, &Rule> = project.rules.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut scores: HashMap<String, OrgScore> = HashMap::new();
    for hit in first_of_each_event(hits) {
        let Some(rule) = rules.get(hit.rule_id.as_str()) else {
            continue;
        };
        let d = Dimension::ALL
            .iter()
            .position(|x| *x == rule.dimension)
            .unwrap_or(0);
        let s = scores.entry(hit.uscc.clone()).or_default();
        s.hits += 1;
        if let Some(flag) = &rule.flag {
            s.flags.insert(flag.clone());
        }
        if hit.low_confidence {
            s.low_confidence = true;
            continue;
        }
        if rule.red_line {
            s.red[d] = true;
        } else {
            s.deductions[d] = s.deductions[d].saturating_add(rule.points);
        }
    }
    scores
}

/// The hits that count: the first evidence row (in order) of each
/// organization, rule and event. A high-confidence row counts before a
/// low-confidence one of the same event.
pub fn first_of_each_event(hits: &[Hit]) -> impl Iterator<Item = &Hit> {
    let mut best: HashMap<(&str, &str, &str), &Hit> = HashMap::new();
    for h in hits {
        let slot = best
            .entry((h.uscc.as_str(), h.rule_id.as_str(), h.event.as_str()))
            .or_insert(h);
        if slot.low_confidence && !h.low_confidence {
            *slot = h;
        }
    }
    hits.iter().filter(move |h| {
        best.get(&(h.uscc.as_str(), h.rule_id.as_str(), h.event.as_str()))
            .is_some_and(|b| std::ptr::eq(*b, *h))
    })
}

/// Runs every rule of the pipeline; hits sorted and distinct.
pub async fn run_rules(
    ctx: &SessionContext,
    project: &Project,
    pipeline: &Pipeline,
    business_date: NaiveDate,
) -> Result<Vec<Hit>, ScoreError> {
    let mut hits = Vec::new();
    let registered = registered(ctx).await?;
    for rule in project.pipeline_rules(pipeline) {
        let started = std::time::Instant::now();
        let found = rule_hits(ctx, rule, business_date, &registered).await?;
        tracing::info!(rule = %rule.id, hits = found.len(), ms = started.elapsed().as_millis() as u64, "rule evaluated");
        hits.extend(found);
    }
    mark_name_matched(ctx, &mut hits).await?;
    hits.sort_by(|a, b| {
        (
            &a.uscc,
            &a.rule_id,
            &a.source_feed,
            &a.source_record_id,
            a.event_date,
        )
            .cmp(&(
                &b.uscc,
                &b.rule_id,
                &b.source_feed,
                &b.source_record_id,
                b.event_date,
            ))
    });
    hits.dedup_by(|b, a| {
        a.uscc == b.uscc
            && a.rule_id == b.rule_id
            && a.source_feed == b.source_feed
            && a.source_record_id == b.source_record_id
    });
    Ok(hits)
}

/// Feeds whose snapshot is older than the source allows.
pub fn stale_feeds(
    project: &Project,
    pipeline: &Pipeline,
    snapshots: &BTreeMap<String, Snapshot>,
    business_date: NaiveDate,
) -> Vec<String> {
    pipeline
        .sources
        .iter()
        .filter(|f| {
            let max_age = project
                .sources
                .get(*f)
                .map_or(0, |s| i64::from(s.max_age_days));
            match snapshots.get(*f).and_then(|s| s.business_date) {
                Some(d) => (business_date - d).num_days() > max_age,
                None => true,
            }
        })
        .cloned()
        .collect()
}

/// Colours by count, for summaries.
pub fn colour_counts(batches: &[RecordBatch]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for b in batches {
        if let Some(c) = b.column_by_name("colour") {
            let c = c.as_string::<i32>();
            for v in c.iter() {
                *out.entry(v.unwrap_or("none").to_string()).or_default() += 1;
            }
        }
    }
    out
}

/// The previous business date's result: colours and rule ids per organization.
struct Previous {
    date: NaiveDate,
    colours: HashMap<String, Option<String>>,
    names: HashMap<String, String>,
    rules: HashMap<String, BTreeSet<String>>,
}

async fn previous_result(
    ctx: &SessionContext,
    input: &ScoreInput<'_>,
) -> Result<Option<Previous>, ScoreError> {
    let Some(published) =
        crate::catalog::Published::latest_before(&input.store, &input.prefix, input.business_date)
            .await
            .map_err(engine)?
    else {
        return Ok(None);
    };
    published
        .verify(&["profiles", "hits"])
        .await
        .map_err(engine)?;
    let date = published.manifest.business_date;
    let files = |d: &str| -> Result<Vec<String>, ScoreError> {
        Ok(published
            .files(d)
            .map_err(engine)?
            .iter()
            .map(|p| format!("qinglian://warehouse/{p}"))
            .collect())
    };

    let text = |b: &RecordBatch, i: usize| cast(b.column(i), &DataType::Utf8).map_err(engine);
    let (mut colours, mut names) = (HashMap::new(), HashMap::new());
    let profiles = ctx
        .read_parquet(files("profiles")?, ParquetReadOptions::default())
        .await
        .map_err(engine)?
        .select_columns(&["uscc", "colour", "name"])
        .map_err(engine)?
        .collect()
        .await
        .map_err(engine)?;
    for b in &profiles {
        let (u, c, n) = (text(b, 0)?, text(b, 1)?, text(b, 2)?);
        let (u, c, n) = (
            u.as_string::<i32>(),
            c.as_string::<i32>(),
            n.as_string::<i32>(),
        );
        for r in 0..b.num_rows() {
            colours.insert(
                u.value(r).to_string(),
                (!c.is_null(r)).then(|| c.value(r).to_string()),
            );
            names.insert(u.value(r).to_string(), n.value(r).to_string());
        }
    }
    let mut rules: HashMap<String, BTreeSet<String>> = HashMap::new();
    let hits = ctx
        .read_parquet(files("hits")?, ParquetReadOptions::default())
        .await
        .map_err(engine)?
        .select_columns(&["uscc", "rule_id"])
        .map_err(engine)?
        .collect()
        .await
        .map_err(engine)?;
    for b in &hits {
        let (u, r) = (text(b, 0)?, text(b, 1)?);
        let (u, r) = (u.as_string::<i32>(), r.as_string::<i32>());
        for i in 0..b.num_rows() {
            rules
                .entry(u.value(i).to_string())
                .or_default()
                .insert(r.value(i).to_string());
        }
    }
    Ok(Some(Previous {
        date,
        colours,
        names,
        rules,
    }))
}

/// The `demonstration` rows of the run, carrying each candidate's green
/// streak on from the previous published version (when it has the dataset).
async fn demonstration_of(
    ctx: &SessionContext,
    input: &ScoreInput<'_>,
    scores: &HashMap<String, OrgScore>,
) -> Result<RecordBatch, ScoreError> {
    let before =
        crate::catalog::Published::latest_before(&input.store, &input.prefix, input.business_date)
            .await
            .map_err(engine)?;
    let previous = match before {
        Some(p) if p.manifest.datasets.contains_key("demonstration") => {
            demonstration::previous_rows(&p.read_batches("demonstration").await.map_err(engine)?)?
        }
        _ => HashMap::new(),
    };
    demonstration::demonstration_batch(
        ctx,
        &demonstration::DemonstrationInput {
            pipeline: input.pipeline,
            scores,
            previous,
            date: input.business_date,
        },
    )
    .await
}

/// The leads of the previous published version and the date each was
/// first listed; `None` when there is no previous version or it has no
/// `leads` dataset (every lead is then new).
async fn leads_before(
    input: &ScoreInput<'_>,
) -> Result<Option<HashMap<String, NaiveDate>>, ScoreError> {
    let before =
        crate::catalog::Published::latest_before(&input.store, &input.prefix, input.business_date)
            .await
            .map_err(engine)?;
    match before {
        Some(p) if p.manifest.datasets.contains_key("leads") => Ok(Some(leads::first_listed(
            &p.read_batches("leads").await.map_err(engine)?,
        )?)),
        _ => Ok(None),
    }
}

/// Everything scoring needs from the run.
pub struct ScoreInput<'a> {
    /// The project.
    pub project: &'a Project,
    /// The pipeline.
    pub pipeline: &'a Pipeline,
    /// Warehouse store.
    pub store: Arc<dyn object_store::ObjectStore>,
    /// Warehouse prefix.
    pub prefix: object_store::path::Path,
    /// Run id.
    pub run_id: &'a str,
    /// Business date.
    pub business_date: NaiveDate,
    /// Each feed's snapshot path (relative to the warehouse) and its date.
    pub snapshots: BTreeMap<String, (Option<String>, Option<NaiveDate>)>,
    /// The warehouse URL (expanded) when the run opened it from one: a
    /// cluster opens the warehouse itself.
    pub warehouse_url: Option<String>,
    /// Variables for `${NAME}` before the environment.
    pub vars: &'a BTreeMap<String, String>,
}

/// Joins, scores and writes `profiles` and `hits` for a run, in the
/// session of the pipeline's engine.
pub async fn score_run(input: ScoreInput<'_>) -> Result<ScoreSummary, ScoreError> {
    let ctx = engine::session_for(&engine::EngineInput {
        pipeline: input.pipeline,
        store: Arc::clone(&input.store),
        prefix: &input.prefix,
        warehouse_url: input.warehouse_url.as_deref(),
        run_id: input.run_id,
        vars: input.vars,
    })
    .await?;
    let scored = score_in(&ctx, &input).await;
    engine::remove_scratch(&ctx).await;
    let mut summary = scored?;
    summary.engine = engine::engine_label(input.pipeline, input.vars);
    Ok(summary)
}

async fn score_in(
    ctx: &SessionContext,
    input: &ScoreInput<'_>,
) -> Result<ScoreSummary, ScoreError> {
    let snapshots = snapshot_urls(input);
    let started = std::time::Instant::now();
    let unmatched = register_feeds(ctx, input.project, input.pipeline, &snapshots).await?;
    tracing::info!(
        ms = started.elapsed().as_millis() as u64,
        "feeds resolved against the registry"
    );
    let started = std::time::Instant::now();
    let hits = run_rules(ctx, input.project, input.pipeline, input.business_date).await?;
    tracing::info!(
        hits = hits.len(),
        ms = started.elapsed().as_millis() as u64,
        "rules evaluated"
    );
    let scores = aggregate(input.project, &hits);
    let version = rules_version(input.project, input.pipeline);
    let stale = stale_feeds(
        input.project,
        input.pipeline,
        &snapshots,
        input.business_date,
    );
    let rel = |p: &object_store::path::Path| crate::store::relative(&input.prefix, p);
    let mut summary = ScoreSummary {
        rules_version: version.clone(),
        hits: hits.len() as u64,
        unmatched,
        stale: stale.clone(),
        ..ScoreSummary::default()
    };
    // A deregistered organization gets no colour: its hits are evidence
    // that deducts nothing (DOMAIN.md §4).
    let uncoloured = registry_codes(ctx, "status = 'deregistered'").await?;
    let hits_batch = outputs::hits_batch(
        input.project,
        &hits,
        &uncoloured,
        &version,
        input.business_date,
    )
    .map_err(ScoreError::Engine)?;
    let path = write_output(input, "hits", outputs::hits_schema(), hits_batch).await?;
    summary.outputs.insert("hits".to_string(), rel(&path));

    let profile_ctx = outputs::ProfileContext {
        pipeline: input.pipeline,
        scores: &scores,
        stale: stale.join(","),
        rules_version: &version,
        date: input.business_date,
    };
    let previous = previous_result(ctx, input).await?;
    let (profiles_path, codes_path, changes) = write_profiles_and_codes(
        ctx,
        input,
        &profile_ctx,
        &hits,
        previous.as_ref(),
        &mut summary,
    )
    .await?;
    summary
        .outputs
        .insert("codes".to_string(), rel(&codes_path));
    for (dataset, path) in public::write_public(
        ctx,
        &input.store,
        &input.prefix,
        &codes_path,
        &input.pipeline.public,
        input.business_date,
        input.run_id,
        input.pipeline.scoring.memory_limit_mb,
    )
    .await
    .map_err(ScoreError::Engine)?
    {
        summary.outputs.insert(dataset.to_string(), rel(&path));
    }
    let changes_batch = outputs::changes_batch(
        &changes,
        previous.as_ref().map(|p| p.date),
        input.business_date,
    )
    .map_err(ScoreError::Engine)?;
    let path = write_output(input, "changes", outputs::changes_schema(), changes_batch).await?;
    summary.outputs.insert("changes".to_string(), rel(&path));
    summary.changes = changes.len() as u64;
    let demonstration = demonstration_of(ctx, input, &scores).await?;
    let path = write_output(
        input,
        "demonstration",
        demonstration::demonstration_schema(),
        demonstration,
    )
    .await?;
    summary
        .outputs
        .insert("demonstration".to_string(), rel(&path));
    let path = write_leads(ctx, input, &mut summary).await?;
    summary.outputs.insert("leads".to_string(), rel(&path));
    summary
        .outputs
        .insert("profiles".to_string(), rel(&profiles_path));
    Ok(summary)
}

/// Each feed's latest good snapshot, as the URL the session reads it at.
fn snapshot_urls(input: &ScoreInput<'_>) -> BTreeMap<String, Snapshot> {
    input
        .snapshots
        .iter()
        .map(|(feed, (path, date))| {
            let url = path.as_ref().map(|p| {
                format!(
                    "qinglian://warehouse/{}",
                    crate::store::join(&input.prefix, p)
                )
            });
            (
                feed.clone(),
                Snapshot {
                    url,
                    path: path.clone(),
                    business_date: *date,
                },
            )
        })
        .collect()
}

/// Writes one batch as a published dataset of this run; returns its path.
async fn write_output(
    input: &ScoreInput<'_>,
    dataset: &str,
    schema: datafusion::arrow::datatypes::SchemaRef,
    batch: RecordBatch,
) -> Result<object_store::path::Path, ScoreError> {
    write_dataset(
        &input.store,
        &input.prefix,
        dataset,
        input.business_date,
        input.run_id,
        schema,
        &[batch],
    )
    .await
    .map_err(ScoreError::Engine)
}

/// The profiles and codes of every registered organization, streamed from
/// the registry in code order, and the colour changes since the previous
/// version (an organization gone from the registry included). Returns the
/// paths of the two datasets and the changes.
async fn write_profiles_and_codes(
    ctx: &SessionContext,
    input: &ScoreInput<'_>,
    profile_ctx: &outputs::ProfileContext<'_>,
    hits: &[Hit],
    previous: Option<&Previous>,
    summary: &mut ScoreSummary,
) -> Result<
    (
        object_store::path::Path,
        object_store::path::Path,
        Vec<outputs::Change>,
    ),
    ScoreError,
> {
    use futures::StreamExt;
    let mut registry = ctx
        .sql("SELECT uscc, name, org_type, registrar_division, status FROM registry ORDER BY uscc")
        .await
        .map_err(engine)?
        .execute_stream()
        .await
        .map_err(engine)?;
    let path = crate::store::join(
        &input.prefix,
        &crate::layout::published_data("profiles", input.business_date, input.run_id),
    );
    let mut writer = crate::land::parquet_writer(&input.store, &path, outputs::profiles_schema())
        .map_err(engine)?;
    let codes_path = crate::store::join(
        &input.prefix,
        &crate::layout::published_data("codes", input.business_date, input.run_id),
    );
    let mut codes = crate::land::parquet_writer(&input.store, &codes_path, outputs::codes_schema())
        .map_err(engine)?;
    // With nothing published before, every colour is new: the first run
    // delivers the complete state.
    let no_previous = Previous {
        date: input.business_date,
        colours: HashMap::new(),
        names: HashMap::new(),
        rules: HashMap::new(),
    };
    let prev = previous.unwrap_or(&no_previous);
    let mut registered: HashSet<String> = HashSet::new();
    let mut rules_now: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    for h in hits {
        rules_now
            .entry(h.uscc.as_str())
            .or_default()
            .insert(h.rule_id.as_str());
    }
    let no_rules = BTreeSet::new();
    let mut changes = Vec::new();
    while let Some(batch) = registry.next().await {
        let batch = batch.map_err(engine)?;
        let profiles = outputs::profiles_batch(profile_ctx, &batch).map_err(ScoreError::Engine)?;
        summary.profiles += profiles.num_rows() as u64;
        for (colour, n) in colour_counts(std::slice::from_ref(&profiles)) {
            *summary.colours.entry(colour).or_default() += n;
        }
        let uscc = profiles.column(0).as_string::<i32>();
        let name = profiles.column(1).as_string::<i32>();
        let colour = profiles
            .column_by_name("colour")
            .map(|c| c.as_string::<i32>().clone());
        for r in 0..profiles.num_rows() {
            let now = colour
                .as_ref()
                .and_then(|c| (!c.is_null(r)).then(|| c.value(r).to_string()));
            let code = uscc.value(r);
            registered.insert(code.to_string());
            let before = prev.colours.get(code).cloned().flatten();
            if before != now {
                let current = rules_now.get(code).unwrap_or(&no_rules);
                let old = prev.rules.get(code).cloned().unwrap_or_default();
                changes.push(outputs::Change {
                    uscc: code.to_string(),
                    name: name.value(r).to_string(),
                    previous_colour: before,
                    colour: now,
                    added: current
                        .iter()
                        .filter(|x| !old.contains(**x))
                        .map(|x| x.to_string())
                        .collect(),
                    removed: old
                        .iter()
                        .filter(|x| !current.contains(x.as_str()))
                        .cloned()
                        .collect(),
                });
            }
        }
        codes
            .write(
                &outputs::codes_batch(&profiles, input.business_date)
                    .map_err(ScoreError::Engine)?,
            )
            .await
            .map_err(engine)?;
        writer.write(&profiles).await.map_err(engine)?;
    }
    if let Some(prev) = previous {
        changes.extend(gone_from_registry(prev, &registered));
    }
    codes.close().await.map_err(engine)?;
    writer.close().await.map_err(engine)?;
    Ok((path, codes_path, changes))
}

/// An organization that had a colour and is no longer in the registry at
/// all has lost it: a change like a deregistration.
fn gone_from_registry(prev: &Previous, registered: &HashSet<String>) -> Vec<outputs::Change> {
    let mut gone: Vec<(&String, &String)> = prev
        .colours
        .iter()
        .filter(|(code, _)| !registered.contains(*code))
        .filter_map(|(code, colour)| colour.as_ref().map(|c| (code, c)))
        .collect();
    gone.sort();
    gone.into_iter()
        .map(|(code, colour)| outputs::Change {
            uscc: code.clone(),
            name: prev.names.get(code).cloned().unwrap_or_default(),
            previous_colour: Some(colour.clone()),
            colour: None,
            added: Vec::new(),
            removed: prev
                .rules
                .get(code)
                .map(|r| r.iter().cloned().collect())
                .unwrap_or_default(),
        })
        .collect()
}

/// The list of leads for the member units, with how many are new since the
/// previous version's; returns the dataset's path.
async fn write_leads(
    ctx: &SessionContext,
    input: &ScoreInput<'_>,
    summary: &mut ScoreSummary,
) -> Result<object_store::path::Path, ScoreError> {
    let listed_before = leads_before(input).await?;
    let leads = leads::leads(
        ctx,
        input.project,
        input.pipeline,
        listed_before.as_ref().unwrap_or(&HashMap::new()),
        input.business_date,
    )
    .await?;
    summary.leads = leads.len() as u64;
    summary.new_leads = leads
        .iter()
        .filter(|l| {
            listed_before
                .as_ref()
                .is_none_or(|before| !before.contains_key(&l.uscc))
        })
        .count() as u64;
    let batch = leads::leads_batch(&leads, input.business_date)?;
    write_output(input, "leads", leads::leads_schema(), batch).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::datasource::MemTable;

    #[test]
    fn dimension_scores_follow_the_model() {
        let mut s = OrgScore::default();
        s.deductions[2] = 6;
        assert_eq!(s.points(12), 6);
        assert!((s.dimension_score(2, 12) - 50.0).abs() < 1e-9);
        assert!((s.dimension_score(0, 12) - 100.0).abs() < 1e-9);
        s.red[1] = true;
        assert!(s.red_line());
        assert_eq!(s.dimension_score(1, 12), 0.0);
        s.deductions[3] = 20;
        assert_eq!(s.points(12), 0);
        // Deductions past any allowance floor at 0, never overflow.
        s.deductions = [u32::MAX; 5];
        assert_eq!(s.points(12), 0);
        assert_eq!(s.dimension_score(0, 12), 0.0);
    }

    use datafusion::arrow::array::Date32Array;
    use datafusion::arrow::datatypes::{Field, Schema};
    use proptest::prelude::*;

    use crate::project::RuleWindow;

    fn any_date() -> impl Strategy<Value = NaiveDate> {
        (-262_000i32..262_000, 1u32..=365)
            .prop_map(|(y, d)| NaiveDate::from_yo_opt(y, d).unwrap_or_default())
    }

    fn any_days() -> impl Strategy<Value = i32> {
        prop_oneof![
            Just(i32::MIN),
            Just(i32::MAX),
            Just(-1),
            Just(0),
            -40_000i32..40_000,
            any::<i32>(),
        ]
    }

    /// One rule over a table of events at the given dates (days from 1970).
    async fn hits_at(
        business: NaiveDate,
        window: RuleWindow,
        days: &[i32],
    ) -> Result<Vec<Hit>, ScoreError> {
        let ctx = session()?;
        let schema = Arc::new(Schema::new(vec![
            Field::new("uscc", DataType::Utf8, false),
            Field::new("id", DataType::Utf8, false),
            Field::new("event_date", DataType::Date32, false),
        ]));
        let n = days.len();
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(StringArray::from(vec!["51330100MJ0000018T"; n])),
                Arc::new(StringArray::from(
                    (0..n).map(|i| i.to_string()).collect::<Vec<_>>(),
                )),
                Arc::new(Date32Array::from(days.to_vec())),
            ],
        )
        .map_err(engine)?;
        let table = MemTable::try_new(schema, vec![vec![batch]]).map_err(engine)?;
        ctx.register_table("events", Arc::new(table))
            .map_err(engine)?;
        // The spine: hits count on registered organizations only.
        let spine = Arc::new(Schema::new(vec![Field::new("uscc", DataType::Utf8, false)]));
        let registry = RecordBatch::try_new(
            Arc::clone(&spine),
            vec![Arc::new(StringArray::from(vec!["51330100MJ0000018T"]))],
        )
        .map_err(engine)?;
        let registry = MemTable::try_new(spine, vec![vec![registry]]).map_err(engine)?;
        ctx.register_table("registry", Arc::new(registry))
            .map_err(engine)?;
        let rule = Rule {
            id: "T-01".into(),
            title: "any date".into(),
            title_zh: None,
            file: "t".into(),
            dimension: Dimension::Operations,
            points: 1,
            red_line: false,
            window,
            flag: None,
            basis: None,
            event: crate::project::model::DEFAULT_EVENT
                .iter()
                .map(|c| c.to_string())
                .collect(),
            sql: "SELECT uscc, 'events' AS source_feed, id AS source_record_id, event_date, \
                  'd' AS detail FROM events WHERE {business_date} >= {five_years_ago} \
                  AND {year_start} <= {business_date} AND {report_year} > -300000"
                .into(),
        };
        run_rule(&ctx, &rule, business).await
    }

    #[test]
    fn dates_before_1970_are_ordinary_events() {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let business = NaiveDate::from_ymd_opt(2026, 11, 28).expect("date");
        let before = (NaiveDate::from_ymd_opt(1965, 3, 1).expect("date")
            - NaiveDate::from_ymd_opt(1970, 1, 1).expect("date"))
        .num_days() as i32;
        let hits = rt
            .block_on(hits_at(business, RuleWindow::InForce, &[before, -1]))
            .expect("scores");
        let dates: Vec<String> = hits.iter().map(|h| h.event_date.to_string()).collect();
        assert_eq!(dates, ["1965-03-01", "1969-12-31"]);
        // Outside the calendar: the rule fails, named, and nothing panics.
        let err = rt
            .block_on(hits_at(business, RuleWindow::InForce, &[i32::MIN]))
            .expect_err("refused");
        assert!(
            err.to_string().contains("rule T-01")
                && err.to_string().contains("outside the calendar"),
            "{err}"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Every business date and event date either scores or fails with
        /// the rule named; no date panics.
        #[test]
        fn scoring_takes_any_date(
            business in any_date(),
            days in proptest::collection::vec(any_days(), 1..4),
            window in prop_oneof![
                Just(RuleWindow::InForce),
                Just(RuleWindow::CalendarYear),
                Just(RuleWindow::FiveYears),
            ],
        ) {
            let _ = window.range(business);
            let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
            match rt.block_on(hits_at(business, window, &days)) {
                Ok(hits) => {
                    for h in hits {
                        let i: usize = h.source_record_id.parse().expect("id");
                        prop_assert_eq!(Some(h.event_date), date_of_days(days[i]));
                    }
                }
                Err(e) => prop_assert!(e.to_string().contains("T-01"), "{}", e),
            }
        }

        /// A Date32 value and its date agree both ways across the calendar.
        #[test]
        fn date32_values_round_trip(date in any_date()) {
            let days = (date - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days();
            let days = i32::try_from(days).expect("fits");
            prop_assert_eq!(date_of_days(days), Some(date));
        }
    }
}
