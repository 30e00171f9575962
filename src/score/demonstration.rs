//! The `demonstration` dataset: the demonstration candidates (示范典型) of
//! DOMAIN.md §8, computed every night beside the profiles.
//!
//! Every organization with a colour gets one row: whether it is of a kind
//! the city chooses from (an industry association or chamber of commerce,
//! a foundation, an organization performing functions entrusted by
//! government, or one rated at `min_rating` or above), each filter passed
//! or failed (green on every published night of the look-back window, no
//! listing or penalty, clean annual and random inspections, party
//! organization and party building in the charter), its rank among the
//! candidates by the five dimension scores, and, for a candidate of the
//! previous published version that is no longer one, the reason it dropped
//! out. The filters and their windows are `[demonstration]` of the
//! pipeline ([`crate::project::Demonstration`]).
//!
//! "Green every night" is kept as a streak: `green_since` is carried from
//! the previous published version while the organization stays green, so a
//! night reads one earlier version, never the whole window. A night with no
//! published version judges nothing and does not break the streak.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{Datelike, Months, NaiveDate, TimeDelta};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Float64Array, Int32Array, RecordBatch,
    StringArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::prelude::SessionContext;

use super::{OrgScore, ScoreError, engine};
use crate::project::{Colour, Dimension, Pipeline};

/// The filters a candidate passes, in the order of the dataset's columns;
/// `failed` names them.
pub const FILTERS: [&str; 6] = [
    "eligibility",
    "green_window",
    "no_listing_or_penalty",
    "clean_annual_inspections",
    "clean_random_inspections",
    "party_building",
];

/// The Chinese wording of a failed filter, for `reason` and the briefings.
pub fn filter_zh(filter: &str) -> &'static str {
    match filter {
        "eligibility" => "不属于示范典型的遴选类型",
        "green_window" => "回看期内并非每晚均为绿码",
        "no_listing_or_penalty" => "近年内有列入名录或行政处罚",
        "clean_annual_inspections" => "近年年检结论非合格",
        "clean_random_inspections" => "近年双随机抽查发现问题",
        "party_building" => "未建立党组织或党建未入章",
        _ => "其他",
    }
}

/// Columns of `demonstration`.
pub fn demonstration_schema() -> SchemaRef {
    let mut fields = vec![
        Field::new("uscc", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("org_type", DataType::Utf8, false),
        Field::new("registrar_division", DataType::Utf8, true),
        Field::new("supervisor", DataType::Utf8, true),
        Field::new("colour", DataType::Utf8, false),
        Field::new("eligible", DataType::Boolean, false),
        Field::new("eligible_as", DataType::Utf8, false),
        Field::new("green_since", DataType::Date32, true),
    ];
    for f in &FILTERS[1..] {
        fields.push(Field::new(*f, DataType::Boolean, false));
    }
    fields.extend([
        Field::new("failed", DataType::Utf8, false),
        Field::new("candidate", DataType::Boolean, false),
        Field::new("rank", DataType::Int32, true),
        Field::new("shortlisted", DataType::Boolean, false),
        Field::new("score_total", DataType::Float64, false),
        Field::new("dropped_out", DataType::Boolean, false),
        Field::new("reason", DataType::Utf8, true),
        Field::new("business_date", DataType::Date32, false),
    ]);
    Arc::new(Schema::new(fields))
}

/// What the previous published version said about an organization.
#[derive(Debug, Clone, Default)]
pub(super) struct PreviousCandidate {
    green_since: Option<NaiveDate>,
    candidate: bool,
}

/// The previous published version's `demonstration` rows, by USCC (empty
/// when it has none: the streaks start tonight).
pub(super) fn previous_rows(
    batches: &[RecordBatch],
) -> Result<HashMap<String, PreviousCandidate>, ScoreError> {
    let mut out = HashMap::new();
    for b in batches {
        let col = |n: &str| {
            b.column_by_name(n)
                .cloned()
                .ok_or_else(|| engine(format!("demonstration: no column {n}")))
        };
        let uscc = cast(&col("uscc")?, &DataType::Utf8).map_err(engine)?;
        let uscc = uscc.as_string::<i32>();
        let since = col("green_since")?;
        let since = since
            .as_primitive_opt::<datafusion::arrow::datatypes::Date32Type>()
            .ok_or_else(|| engine("demonstration: green_since is not a date"))?;
        let candidate = col("candidate")?;
        let candidate = candidate
            .as_boolean_opt()
            .ok_or_else(|| engine("demonstration: candidate is not a boolean"))?;
        for r in 0..b.num_rows() {
            out.insert(
                uscc.value(r).to_string(),
                PreviousCandidate {
                    green_since: (!since.is_null(r))
                        .then(|| super::date_of_days(since.value(r)))
                        .flatten(),
                    candidate: !candidate.is_null(r) && candidate.value(r),
                },
            );
        }
    }
    Ok(out)
}

fn date_sql(d: NaiveDate) -> String {
    format!("DATE '{}'", d.format("%Y-%m-%d"))
}

fn quoted(values: &[String]) -> String {
    values
        .iter()
        .map(|v| format!("'{}'", v.replace('\'', "''")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The distinct non-null codes in the first column of a query.
pub(super) async fn uscc_set(
    ctx: &SessionContext,
    sql: &str,
) -> Result<HashSet<String>, ScoreError> {
    let batches = ctx
        .sql(sql)
        .await
        .map_err(engine)?
        .collect()
        .await
        .map_err(engine)?;
    let mut out = HashSet::new();
    for b in &batches {
        let c = cast(b.column(0), &DataType::Utf8).map_err(engine)?;
        let c = c.as_string::<i32>();
        for r in 0..b.num_rows() {
            if !c.is_null(r) {
                out.insert(c.value(r).to_string());
            }
        }
    }
    Ok(out)
}

/// One organization's row before ranking.
struct Row {
    uscc: String,
    name: String,
    org_type: String,
    division: Option<String>,
    supervisor: Option<String>,
    colour: Colour,
    eligible_as: Vec<&'static str>,
    green_since: Option<NaiveDate>,
    passed: [bool; 6],
    scores: [f64; 5],
    previous_candidate: bool,
}

impl Row {
    fn candidate(&self) -> bool {
        self.passed.iter().all(|p| *p)
    }

    fn total(&self) -> f64 {
        self.scores.iter().sum()
    }

    fn failed(&self) -> Vec<&'static str> {
        FILTERS
            .iter()
            .zip(self.passed)
            .filter(|(_, p)| !p)
            .map(|(f, _)| *f)
            .collect()
    }
}

/// What computing the dataset needs from the scoring run.
pub(super) struct DemonstrationInput<'a> {
    pub(super) pipeline: &'a Pipeline,
    pub(super) scores: &'a HashMap<String, OrgScore>,
    pub(super) previous: HashMap<String, PreviousCandidate>,
    pub(super) date: NaiveDate,
}

/// The `demonstration` rows of a run, from the canonical tables registered
/// in `ctx` (registry, ratings, projects, credit, inspection,
/// annual_reports) and the scores.
pub(super) async fn demonstration_batch(
    ctx: &SessionContext,
    input: &DemonstrationInput<'_>,
) -> Result<RecordBatch, ScoreError> {
    let config = &input.pipeline.demonstration;
    let date = input.date;
    let d = date_sql(date);
    let since = date
        .checked_sub_months(Months::new(12 * config.clean_years))
        .unwrap_or(NaiveDate::MIN);
    let s = date_sql(since);
    let year_ago = date.checked_sub_months(Months::new(12)).unwrap_or(date);
    let levels: Vec<String> = ["1A", "2A", "3A", "4A", "5A"]
        .iter()
        .filter(|l| **l >= config.min_rating.as_str())
        .map(|l| l.to_string())
        .collect();
    let rated = uscc_set(
        ctx,
        &format!(
            "SELECT DISTINCT uscc FROM ratings WHERE uscc IS NOT NULL AND level IN ({}) \
             AND (assessed_on IS NULL OR assessed_on <= {d}) \
             AND (valid_until IS NULL OR valid_until >= {d})",
            quoted(&levels)
        ),
    )
    .await?;
    let entrusted = if config.entrusted_programmes.is_empty() {
        HashSet::new()
    } else {
        uscc_set(
            ctx,
            &format!(
                "SELECT DISTINCT uscc FROM projects WHERE uscc IS NOT NULL AND programme IN ({}) \
                 AND (start_on IS NULL OR start_on <= {d}) \
                 AND (end_on IS NULL OR end_on >= {})",
                quoted(&config.entrusted_programmes),
                date_sql(year_ago)
            ),
        )
        .await?
    };
    // A penalty decided, or a list entry in force at any time, within the
    // clean years.
    let listed = uscc_set(
        ctx,
        &format!(
            "SELECT DISTINCT uscc FROM credit WHERE uscc IS NOT NULL AND ( \
               (COALESCE(decided_on, listed_on) >= {s} AND COALESCE(decided_on, listed_on) <= {d}) \
               OR (list_type <> 'penalty' AND listed_on <= {d} \
                   AND (removed_on IS NULL OR removed_on >= {s})))"
        ),
    )
    .await?;
    let report_to = date.year() - 1;
    let report_from = report_to - config.clean_years as i32 + 1;
    let annual = uscc_set(
        ctx,
        &format!(
            "SELECT DISTINCT uscc FROM annual_reports WHERE uscc IS NOT NULL \
             AND conclusion NOT IN ('passed', 'exempt') \
             AND report_year >= {report_from} AND report_year <= {report_to}"
        ),
    )
    .await?;
    let inspected = uscc_set(
        ctx,
        &format!(
            "SELECT DISTINCT uscc FROM inspection WHERE uscc IS NOT NULL \
             AND result_code <> '01' AND checked_on >= {s} AND checked_on <= {d}"
        ),
    )
    .await?;
    let registry = ctx
        .sql(
            "SELECT uscc, name, org_type, registrar_division, supervisor, \
                    COALESCE(party_org, false) AS party_org, \
                    COALESCE(party_in_charter, false) AS party_in_charter \
             FROM registry WHERE status <> 'deregistered' ORDER BY uscc",
        )
        .await
        .map_err(engine)?
        .collect()
        .await
        .map_err(engine)?;
    let empty = OrgScore::default();
    let start = input.pipeline.scoring.start_points;
    let window_start = date
        .checked_sub_signed(TimeDelta::days(i64::from(config.lookback_days) - 1))
        .unwrap_or(NaiveDate::MIN);
    let mut rows = Vec::new();
    for b in &registry {
        let text = |i: usize| cast(b.column(i), &DataType::Utf8).map_err(engine);
        let (uscc, name, org_type, division, supervisor) =
            (text(0)?, text(1)?, text(2)?, text(3)?, text(4)?);
        let (uscc, name, org_type, division, supervisor) = (
            uscc.as_string::<i32>(),
            name.as_string::<i32>(),
            org_type.as_string::<i32>(),
            division.as_string::<i32>(),
            supervisor.as_string::<i32>(),
        );
        let flag = |i: usize| {
            b.column(i)
                .as_boolean_opt()
                .ok_or_else(|| engine("registry: party flags are not booleans"))
        };
        let (party_org, party_in_charter) = (flag(5)?, flag(6)?);
        let opt = |a: &StringArray, r: usize| {
            (!a.is_null(r) && !a.value(r).trim().is_empty()).then(|| a.value(r).to_string())
        };
        for r in 0..b.num_rows() {
            let code = uscc.value(r).to_string();
            let score = input.scores.get(&code).unwrap_or(&empty);
            let colour = score.colour(input.pipeline);
            let org_type_r = org_type.value(r).to_string();
            let name_r = name.value(r).to_string();
            let mut eligible_as = Vec::new();
            if org_type_r == "social_group"
                && config
                    .industry_name_patterns
                    .iter()
                    .any(|p| name_r.contains(p.as_str()))
            {
                eligible_as.push("industry_association");
            }
            if org_type_r == "foundation" {
                eligible_as.push("foundation");
            }
            if entrusted.contains(&code) {
                eligible_as.push("entrusted");
            }
            if rated.contains(&code) {
                eligible_as.push("rated");
            }
            let previous = input.previous.get(&code);
            let green_since = (colour == Colour::Green).then(|| {
                previous
                    .and_then(|p| p.green_since)
                    .filter(|s| *s <= date)
                    .unwrap_or(date)
            });
            let passed = [
                !eligible_as.is_empty(),
                green_since.is_some_and(|s| s <= window_start),
                !listed.contains(&code),
                !annual.contains(&code),
                !inspected.contains(&code),
                party_org.value(r) && party_in_charter.value(r),
            ];
            let mut scores = [0.0; 5];
            for (i, s) in scores.iter_mut().enumerate() {
                *s = score.dimension_score(i, start);
            }
            rows.push(Row {
                uscc: code,
                name: name_r,
                org_type: org_type_r,
                division: opt(division, r),
                supervisor: opt(supervisor, r),
                colour,
                eligible_as,
                green_since,
                passed,
                scores,
                previous_candidate: previous.is_some_and(|p| p.candidate),
            });
        }
    }
    // Rank the candidates: total, then each dimension in portrait order,
    // then the code, so the order is total and reproducible.
    let mut order: Vec<usize> = (0..rows.len()).filter(|i| rows[*i].candidate()).collect();
    order.sort_by(|a, b| {
        let (x, y) = (&rows[*a], &rows[*b]);
        y.total()
            .total_cmp(&x.total())
            .then_with(|| {
                (0..Dimension::ALL.len())
                    .map(|d| y.scores[d].total_cmp(&x.scores[d]))
                    .find(|o| o.is_ne())
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
            .then_with(|| x.uscc.cmp(&y.uscc))
    });
    let mut rank: Vec<Option<i32>> = vec![None; rows.len()];
    for (place, i) in order.iter().enumerate() {
        rank[*i] = Some(place as i32 + 1);
    }
    batch(&rows, &rank, config.limit, date)
}

fn days(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()).num_days() as i32
}

fn batch(
    rows: &[Row],
    rank: &[Option<i32>],
    limit: u32,
    date: NaiveDate,
) -> Result<RecordBatch, ScoreError> {
    let n = rows.len();
    let text = |f: &dyn Fn(&Row) -> String| -> ArrayRef {
        Arc::new(StringArray::from(rows.iter().map(f).collect::<Vec<_>>()))
    };
    let flag = |f: &dyn Fn(&Row) -> bool| -> ArrayRef {
        Arc::new(BooleanArray::from(rows.iter().map(f).collect::<Vec<_>>()))
    };
    let dropped = |r: &Row| r.previous_candidate && !r.candidate();
    let mut columns: Vec<ArrayRef> = vec![
        text(&|r| r.uscc.clone()),
        text(&|r| r.name.clone()),
        text(&|r| r.org_type.clone()),
        Arc::new(StringArray::from(
            rows.iter().map(|r| r.division.clone()).collect::<Vec<_>>(),
        )),
        Arc::new(StringArray::from(
            rows.iter()
                .map(|r| r.supervisor.clone())
                .collect::<Vec<_>>(),
        )),
        text(&|r| r.colour.as_str().to_string()),
        flag(&|r| r.passed[0]),
        text(&|r| r.eligible_as.join(",")),
        Arc::new(Date32Array::from(
            rows.iter()
                .map(|r| r.green_since.map(days))
                .collect::<Vec<_>>(),
        )),
    ];
    for i in 1..FILTERS.len() {
        columns.push(flag(&|r| r.passed[i]));
    }
    columns.extend([
        text(&|r| r.failed().join(",")),
        flag(&|r| r.candidate()),
        Arc::new(Int32Array::from(rank.to_vec())) as ArrayRef,
        Arc::new(BooleanArray::from(
            rank.iter()
                .map(|k| k.is_some_and(|k| k as u32 <= limit))
                .collect::<Vec<_>>(),
        )),
        Arc::new(Float64Array::from(
            rows.iter().map(Row::total).collect::<Vec<_>>(),
        )),
        flag(&dropped),
        Arc::new(StringArray::from(
            rows.iter()
                .map(|r| {
                    dropped(r).then(|| {
                        let mut why: Vec<String> = Vec::new();
                        if r.colour != Colour::Green {
                            why.push(format!("转为{}", r.colour.name_zh()));
                        }
                        why.extend(r.failed().iter().map(|f| filter_zh(f).to_string()));
                        why.join("；")
                    })
                })
                .collect::<Vec<_>>(),
        )),
        Arc::new(Date32Array::from(vec![days(date); n])),
    ]);
    RecordBatch::try_new(demonstration_schema(), columns).map_err(engine)
}

/// The `demonstration` rows of a business date over the canonical tables
/// registered and resolved in `ctx`, scored with the project's rules, the
/// streaks carried on from `previous` (the earlier version's
/// `demonstration` batches): what a run publishes, for callers with their
/// own tables (the fixtures of the filters).
pub async fn candidates(
    ctx: &SessionContext,
    project: &crate::project::Project,
    pipeline: &Pipeline,
    date: NaiveDate,
    previous: &[RecordBatch],
) -> Result<RecordBatch, ScoreError> {
    let hits = super::run_rules(ctx, project, pipeline, date).await?;
    let scores = super::aggregate(project, &hits);
    demonstration_batch(
        ctx,
        &DemonstrationInput {
            pipeline,
            scores: &scores,
            previous: previous_rows(previous)?,
            date,
        },
    )
    .await
}
