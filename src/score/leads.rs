//! The `leads` dataset: subjects outside the registry (DOMAIN.md §4).
//!
//! A record whose valid USCC names no registered organization scores
//! nothing and is no hit; it is a *lead*, how illegal social organizations
//! (非法社会组织) surface. Every night the landed canonical tables the
//! scoring reads (each feed of the pipeline but the registry, at its latest
//! good snapshot) give one row per such USCC: the name its records give it
//! most often, the feeds it appears in, its record count, the first and
//! last dates its records carry, and the business date it was first listed
//! (carried from the previous published version).
//!
//! - Only a valid USCC makes a lead. A record naming its subject by name
//!   alone (or by an organization code the registry does not resolve) is
//!   no lead: names are ambiguous, and one subject would be several leads.
//! - A lead is an organization code, never a person: a code shaped like a
//!   resident identity number (see [`crate::validate::redact`]) is left
//!   out and counted in the log, and identity numbers inside a name are
//!   replaced by `***`.
//! - A record's date is the earliest of its own date columns (filing,
//!   registration, decision, listing, check or start date: the day the
//!   event began; later dates are closings, removals and deadlines).
//!   `first_seen` and `last_seen` are the earliest and latest such dates
//!   of a lead's records, null when none carries a date.
//! - Leads are for the registrar, never public: the public datasets are
//!   built from the registry's organizations only.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Date32Type, Field, Schema, SchemaRef, UInt64Type};
use datafusion::prelude::SessionContext;

use super::{ScoreError, date_of_days, engine};
use crate::project::{Pipeline, Project, SPINE_FEED};

/// One unregistered subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lead {
    /// Its valid USCC, which no registry row has.
    pub uscc: String,
    /// The name its records give it most often (ties: the first in
    /// code-point order); `None` when no record names it.
    pub name: Option<String>,
    /// The feeds it appears in.
    pub feeds: BTreeSet<String>,
    /// Its records, over every feed.
    pub records: u64,
    /// The earliest date its records carry.
    pub first_seen: Option<NaiveDate>,
    /// The latest record date.
    pub last_seen: Option<NaiveDate>,
    /// The business date of the first published version listing it.
    pub first_listed_on: NaiveDate,
}

/// Columns of `leads`.
pub fn leads_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("uscc", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("feeds", DataType::Utf8, false),
        Field::new("records", DataType::Int64, false),
        Field::new("first_seen", DataType::Date32, true),
        Field::new("last_seen", DataType::Date32, true),
        Field::new("first_listed_on", DataType::Date32, false),
        Field::new("business_date", DataType::Date32, false),
    ]))
}

#[derive(Default)]
struct Acc {
    names: BTreeMap<String, u64>,
    feeds: BTreeSet<String>,
    records: u64,
    first: Option<NaiveDate>,
    last: Option<NaiveDate>,
}

/// The night's leads from the `<feed>_landed` tables of a scoring session,
/// sorted by USCC; `first_listed_on` is taken from `previous` (the previous
/// version's leads) or is `business_date`.
pub async fn leads(
    ctx: &SessionContext,
    project: &Project,
    pipeline: &Pipeline,
    previous: &HashMap<String, NaiveDate>,
    business_date: NaiveDate,
) -> Result<Vec<Lead>, ScoreError> {
    let mut acc: BTreeMap<String, Acc> = BTreeMap::new();
    let mut personal = 0u64;
    for feed in &pipeline.sources {
        let Some(schema) = project.schemas.get(feed) else {
            continue;
        };
        if feed == SPINE_FEED {
            continue;
        }
        let dates: Vec<String> = schema
            .columns
            .iter()
            .filter(|c| c.data_type == DataType::Date32)
            .map(|c| format!("f.\"{}\"", c.name))
            .collect();
        let seen = match dates.len() {
            0 => "CAST(NULL AS DATE)".to_string(),
            1 => dates[0].clone(),
            _ => format!("least({})", dates.join(", ")),
        };
        let sql = format!(
            "SELECT CAST(f.uscc AS VARCHAR) AS uscc, CAST(f.subject_name AS VARCHAR) AS name, \
             count(*) AS records, min({seen}) AS first_seen, max({seen}) AS last_seen \
             FROM \"{feed}_landed\" f \
             WHERE f.uscc IS NOT NULL AND f.uscc NOT IN \
             (SELECT uscc FROM {SPINE_FEED}_landed WHERE uscc IS NOT NULL) \
             GROUP BY f.uscc, f.subject_name"
        );
        let batches = ctx
            .sql(&sql)
            .await
            .map_err(engine)?
            .collect()
            .await
            .map_err(engine)?;
        for b in &batches {
            let text = |i: usize| cast(b.column(i), &DataType::Utf8).map_err(engine);
            let (uscc, name) = (text(0)?, text(1)?);
            let (uscc, name) = (uscc.as_string::<i32>(), name.as_string::<i32>());
            let records = cast(b.column(2), &DataType::UInt64).map_err(engine)?;
            let records = records.as_primitive::<UInt64Type>();
            let first = cast(b.column(3), &DataType::Date32).map_err(engine)?;
            let last = cast(b.column(4), &DataType::Date32).map_err(engine)?;
            let (first, last) = (
                first.as_primitive::<Date32Type>(),
                last.as_primitive::<Date32Type>(),
            );
            for r in 0..b.num_rows() {
                let code = uscc.value(r);
                let n = records.value(r);
                // A lead is an organization, never a person.
                if crate::validate::redact::looks_like_identity_number(code)
                    || crate::keys::Uscc::parse(code).is_err()
                {
                    personal += n;
                    continue;
                }
                let a = acc.entry(code.to_string()).or_default();
                a.feeds.insert(feed.clone());
                a.records += n;
                if !name.is_null(r) {
                    let named = crate::validate::redact::scrub_identity_numbers(
                        name.value(r).trim(),
                        &|_| crate::validate::redact::WITHHELD.to_string(),
                    )
                    .into_owned();
                    if !named.is_empty() {
                        *a.names.entry(named).or_default() += n;
                    }
                }
                let day = |d: &datafusion::arrow::array::Date32Array| {
                    (!d.is_null(r)).then(|| date_of_days(d.value(r))).flatten()
                };
                if let Some(d) = day(first) {
                    a.first = Some(a.first.map_or(d, |x| x.min(d)));
                }
                if let Some(d) = day(last) {
                    a.last = Some(a.last.map_or(d, |x| x.max(d)));
                }
            }
        }
    }
    if personal > 0 {
        tracing::info!(
            rows = personal,
            "records keyed by a code shaped like an identity number: no lead"
        );
    }
    Ok(acc
        .into_iter()
        .map(|(uscc, a)| {
            // Most frequent; ties to the first in code-point order.
            let name = a
                .names
                .iter()
                .fold(None::<(&String, u64)>, |best, (n, c)| match best {
                    Some((_, bc)) if bc >= *c => best,
                    _ => Some((n, *c)),
                })
                .map(|(n, _)| n.clone());
            let first_listed_on = previous.get(&uscc).copied().unwrap_or(business_date);
            Lead {
                uscc,
                name,
                feeds: a.feeds,
                records: a.records,
                first_seen: a.first,
                last_seen: a.last,
                first_listed_on,
            }
        })
        .collect())
}

fn days(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()).num_days() as i32
}

/// The `leads` dataset as one batch.
pub fn leads_batch(leads: &[Lead], business_date: NaiveDate) -> Result<RecordBatch, ScoreError> {
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            leads.iter().map(|l| l.uscc.as_str()),
        )),
        Arc::new(StringArray::from(
            leads.iter().map(|l| l.name.as_deref()).collect::<Vec<_>>(),
        )),
        Arc::new(StringArray::from_iter_values(leads.iter().map(|l| {
            l.feeds
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(",")
        }))),
        Arc::new(Int64Array::from_iter_values(
            leads
                .iter()
                .map(|l| i64::try_from(l.records).unwrap_or(i64::MAX)),
        )),
        Arc::new(Date32Array::from(
            leads
                .iter()
                .map(|l| l.first_seen.map(days))
                .collect::<Vec<_>>(),
        )),
        Arc::new(Date32Array::from(
            leads
                .iter()
                .map(|l| l.last_seen.map(days))
                .collect::<Vec<_>>(),
        )),
        Arc::new(Date32Array::from_iter_values(
            leads.iter().map(|l| days(l.first_listed_on)),
        )),
        Arc::new(Date32Array::from_iter_values(
            leads.iter().map(|_| days(business_date)),
        )),
    ];
    RecordBatch::try_new(leads_schema(), columns).map_err(engine)
}

/// Each lead's `first_listed_on` in a published `leads` dataset.
pub fn first_listed(batches: &[RecordBatch]) -> Result<HashMap<String, NaiveDate>, ScoreError> {
    let mut out = HashMap::new();
    for b in batches {
        let (Some(uscc), Some(on)) = (
            b.column_by_name("uscc"),
            b.column_by_name("first_listed_on"),
        ) else {
            return Err(ScoreError::Engine(
                "leads: the previous version's dataset lacks uscc or first_listed_on".into(),
            ));
        };
        let uscc = cast(uscc, &DataType::Utf8).map_err(engine)?;
        let on = cast(on, &DataType::Date32).map_err(engine)?;
        let (uscc, on) = (uscc.as_string::<i32>(), on.as_primitive::<Date32Type>());
        for r in 0..b.num_rows() {
            if uscc.is_null(r) || on.is_null(r) {
                continue;
            }
            if let Some(d) = date_of_days(on.value(r)) {
                out.insert(uscc.value(r).to_string(), d);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::Field;
    use datafusion::datasource::MemTable;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    /// A police row: USCC, name, filed on, closed on.
    type PoliceRow<'a> = (
        Option<&'a str>,
        Option<&'a str>,
        Option<&'a str>,
        Option<&'a str>,
    );

    /// A session with every feed empty but the registry and police given.
    async fn session_with(
        project: &Project,
        registry: &[&str],
        police: &[PoliceRow<'_>],
    ) -> SessionContext {
        let ctx = super::super::session().expect("session");
        for (feed, schema) in &project.schemas {
            if feed == "police" || feed == SPINE_FEED {
                continue;
            }
            let empty = MemTable::try_new(schema.arrow_schema(), vec![vec![]]).expect("empty");
            ctx.register_table(format!("{feed}_landed"), Arc::new(empty))
                .expect("register");
        }
        let spine = Arc::new(Schema::new(vec![Field::new("uscc", DataType::Utf8, true)]));
        let b = RecordBatch::try_new(
            Arc::clone(&spine),
            vec![Arc::new(StringArray::from(registry.to_vec()))],
        )
        .expect("registry");
        let t = MemTable::try_new(spine, vec![vec![b]]).expect("table");
        ctx.register_table("registry_landed", Arc::new(t))
            .expect("register");
        let schema = Arc::new(Schema::new(vec![
            Field::new("uscc", DataType::Utf8, true),
            Field::new("subject_name", DataType::Utf8, true),
            Field::new("filed_on", DataType::Date32, true),
            Field::new("closed_on", DataType::Date32, true),
        ]));
        let date = |v: Option<&str>| v.map(|d| days(day(d)));
        let b = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(StringArray::from(
                    police.iter().map(|r| r.0).collect::<Vec<_>>(),
                )),
                Arc::new(StringArray::from(
                    police.iter().map(|r| r.1).collect::<Vec<_>>(),
                )),
                Arc::new(Date32Array::from(
                    police.iter().map(|r| date(r.2)).collect::<Vec<_>>(),
                )),
                Arc::new(Date32Array::from(
                    police.iter().map(|r| date(r.3)).collect::<Vec<_>>(),
                )),
            ],
        )
        .expect("police");
        let t = MemTable::try_new(schema, vec![vec![b]]).expect("table");
        ctx.register_table("police_landed", Arc::new(t))
            .expect("register");
        ctx
    }

    #[tokio::test]
    async fn a_lead_is_an_unregistered_valid_code_never_a_person_or_a_name() {
        let project = Project::load(&crate::checkout()).expect("project");
        let pipeline = &project.pipelines["nightly"];
        const LEAD: &str = "51330106MJ0000771R";
        // Valid as a USCC and as a resident identity number: a person.
        const PERSON: &str = "513301198003014857";
        assert!(crate::keys::Uscc::parse(PERSON).is_ok());
        let ctx = session_with(
            &project,
            &["51330100MJ0000018T"],
            &[
                (
                    Some("51330100MJ0000018T"),
                    Some("registered"),
                    Some("2026-01-01"),
                    None,
                ),
                (Some(LEAD), Some("乙会"), Some("2026-05-10"), None),
                (
                    Some(LEAD),
                    Some("甲会"),
                    Some("2026-04-01"),
                    Some("2026-09-01"),
                ),
                (Some(LEAD), Some(" 乙会 "), None, Some("2025-12-20")),
                (Some(LEAD), Some("甲会"), None, None),
                (Some(PERSON), Some("某人"), Some("2026-01-01"), None),
                (None, Some("中华李氏复兴总会"), Some("2026-02-01"), None),
            ],
        )
        .await;
        let business = day("2026-11-28");
        let found = leads(&ctx, &project, pipeline, &HashMap::new(), business)
            .await
            .expect("leads");
        assert_eq!(
            found,
            [Lead {
                uscc: LEAD.into(),
                // Two records each: the first in code-point order.
                name: Some("乙会".into()),
                feeds: ["police".to_string()].into(),
                records: 4,
                // Each record's date is its earliest: 2026-04-01 (not its
                // closing), 2025-12-20, 2026-05-10.
                first_seen: Some(day("2025-12-20")),
                last_seen: Some(day("2026-05-10")),
                first_listed_on: business,
            }]
        );
        // Carried from the previous version.
        let before: HashMap<String, NaiveDate> = [(LEAD.to_string(), day("2026-10-01"))].into();
        let found = leads(&ctx, &project, pipeline, &before, business)
            .await
            .expect("leads");
        assert_eq!(found[0].first_listed_on, day("2026-10-01"));
        let batch = leads_batch(&found, business).expect("batch");
        assert_eq!(batch.schema(), leads_schema());
        assert_eq!(first_listed(&[batch]).expect("read back"), before);
    }
}
