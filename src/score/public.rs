//! The public datasets: what the public lookup (一码通查) may show, and
//! nothing else (DOMAIN.md §5). Built from the resolved feed views of a
//! scoring session and the run's `codes`, so the server that reads them
//! cannot reach a private column: persons other than the legal
//! representative, police and court data, points, hits and warnings are
//! never selected.
//!
//! - `public`: one row per registered organization (registration facts,
//!   legal representative's name, status, colour with its dates).
//! - `public_events`: its lifecycle, one row per event (registered,
//!   annual inspection conclusion, rating, list entry and removal, penalty
//!   within its display period, suspension / revocation / deregistration,
//!   colour issued).
//!
//! Only records matched to the organization by code are shown: a record
//! matched by name alone is evidence of low confidence, not a public fact.
//! Rows are ordered over every column, so the same inputs give the same
//! bytes.

use std::sync::Arc;

use chrono::{Months, NaiveDate};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use futures::StreamExt;
use object_store::ObjectStore;
use object_store::path::Path;

use crate::project::PublicLookup;

/// The public datasets, in the order they are written.
pub const PUBLIC_DATASETS: [&str; 2] = ["public", "public_events"];

/// Lifecycle event kinds of `public_events`.
pub const EVENT_KINDS: [&str; 11] = [
    "registered",
    "annual_inspection",
    "rating",
    "list_entry",
    "list_removal",
    "penalty",
    "suspended",
    "revoked",
    "certificate_revoked",
    "deregistered",
    "colour_issued",
];

fn decimal() -> DataType {
    DataType::Decimal128(18, 2)
}

/// Columns of `public`.
pub fn public_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("uscc", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("org_type", DataType::Utf8, false),
        Field::new("registrar", DataType::Utf8, true),
        Field::new("supervisor", DataType::Utf8, true),
        Field::new("legal_representative", DataType::Utf8, true),
        Field::new("established_on", DataType::Date32, true),
        Field::new("status", DataType::Utf8, false),
        Field::new("status_changed_on", DataType::Date32, true),
        Field::new("domicile", DataType::Utf8, true),
        Field::new("registered_funds", decimal(), true),
        Field::new("charity", DataType::Boolean, true),
        Field::new("public_fundraising", DataType::Boolean, true),
        Field::new("colour", DataType::Utf8, true),
        Field::new("colour_issued_on", DataType::Date32, true),
        Field::new("colour_valid_until", DataType::Date32, true),
        Field::new("as_of", DataType::Date32, false),
    ]))
}

/// Columns of `public_events`.
pub fn public_events_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("uscc", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("event_date", DataType::Date32, true),
        Field::new("report_year", DataType::Int32, true),
        Field::new("conclusion", DataType::Utf8, true),
        Field::new("level", DataType::Utf8, true),
        Field::new("valid_until", DataType::Date32, true),
        Field::new("list_type", DataType::Utf8, true),
        Field::new("reason", DataType::Utf8, true),
        Field::new("decision_no", DataType::Utf8, true),
        Field::new("penalty_kind", DataType::Utf8, true),
        Field::new("amount", decimal(), true),
        Field::new("authority", DataType::Utf8, true),
        Field::new("removed_on", DataType::Date32, true),
    ]))
}

fn years_before(date: NaiveDate, years: u32) -> NaiveDate {
    date.checked_sub_months(Months::new(years.saturating_mul(12)))
        .unwrap_or(NaiveDate::MIN)
}

fn sql_list(items: &[String]) -> String {
    if items.is_empty() {
        return "NULL".into();
    }
    items
        .iter()
        .map(|s| format!("'{}'", s.replace('\'', "''")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The query of `public` (needs the `registry` and `persons` views and
/// the `public_codes` table).
fn public_sql(date: NaiveDate) -> String {
    format!(
        "WITH legal AS ( \
           SELECT uscc, person_name, row_number() OVER ( \
             PARTITION BY uscc ORDER BY start_on DESC NULLS LAST, person_name) AS n \
           FROM persons \
           WHERE role = 'legal_rep' AND \"match\" IN ('uscc', 'org_code') \
             AND person_name IS NOT NULL \
             AND (end_on IS NULL OR end_on > DATE '{date}')) \
         SELECT r.uscc, r.name, r.org_type, r.registrar, r.supervisor, \
           l.person_name AS legal_representative, r.registered_on AS established_on, \
           r.status, \
           CASE WHEN r.status IN ('suspended', 'revoked', 'certificate_revoked', 'deregistered') \
             THEN r.status_changed_on END AS status_changed_on, \
           r.domicile, r.initial_funds AS registered_funds, r.charity, r.public_fundraising, \
           c.colour, c.issued_on AS colour_issued_on, c.valid_until AS colour_valid_until, \
           DATE '{date}' AS as_of \
         FROM registry r \
         LEFT JOIN legal l ON l.uscc = r.uscc AND l.n = 1 \
         LEFT JOIN public_codes c ON c.uscc = r.uscc \
         WHERE r.uscc IS NOT NULL \
         ORDER BY r.uscc, r.name"
    )
}

/// The query of `public_events`.
fn events_sql(date: NaiveDate, public: &PublicLookup) -> String {
    let full = years_before(date, public.penalty_years);
    let minor = years_before(date, public.minor_penalty_years);
    let minor_kinds = sql_list(&public.minor_penalty_kinds);
    let by_code = "\"match\" IN ('uscc', 'org_code')";
    // Every branch has the same columns, in schema order.
    let names = [
        "report_year",
        "conclusion",
        "level",
        "valid_until",
        "list_type",
        "reason",
        "decision_no",
        "penalty_kind",
        "amount",
        "authority",
        "removed_on",
    ];
    let row = |kind: &str, date: &str, rest: [&str; 11]| {
        let rest: Vec<String> = rest
            .iter()
            .zip(names)
            .map(|(v, n)| format!("{v} AS {n}"))
            .collect();
        format!(
            "SELECT uscc, {kind} AS kind, {date} AS event_date, {}",
            rest.join(", ")
        )
    };
    let none = "CAST(NULL AS VARCHAR)";
    let no_date = "CAST(NULL AS DATE)";
    let no_int = "CAST(NULL AS INT)";
    let no_amount = "CAST(NULL AS DECIMAL(18, 2))";
    let branches = [
        format!(
            "{} FROM registry WHERE registered_on IS NOT NULL",
            row(
                "'registered'",
                "registered_on",
                [
                    no_int,
                    none,
                    none,
                    no_date,
                    none,
                    none,
                    none,
                    none,
                    no_amount,
                    "registrar",
                    no_date
                ]
            )
        ),
        format!(
            "{} FROM registry WHERE status IN ('suspended', 'revoked', 'certificate_revoked', 'deregistered')",
            row(
                "status",
                "status_changed_on",
                [
                    no_int,
                    none,
                    none,
                    no_date,
                    none,
                    none,
                    none,
                    none,
                    no_amount,
                    "registrar",
                    no_date
                ]
            )
        ),
        format!(
            "{} FROM annual_reports WHERE {by_code} AND conclusion IS NOT NULL",
            row(
                "'annual_inspection'",
                "concluded_on",
                [
                    "report_year",
                    "conclusion",
                    none,
                    no_date,
                    none,
                    none,
                    none,
                    none,
                    no_amount,
                    none,
                    no_date
                ]
            )
        ),
        format!(
            "{} FROM ratings WHERE {by_code} AND level IS NOT NULL",
            row(
                "'rating'",
                "assessed_on",
                [
                    no_int,
                    none,
                    "level",
                    "valid_until",
                    none,
                    none,
                    none,
                    none,
                    no_amount,
                    none,
                    no_date
                ]
            )
        ),
        format!(
            "{} FROM credit WHERE {by_code} AND list_type IN ('abnormal', 'serious') AND listed_on IS NOT NULL",
            row(
                "'list_entry'",
                "listed_on",
                [
                    no_int,
                    none,
                    none,
                    no_date,
                    "list_type",
                    "reason",
                    "decision_no",
                    none,
                    no_amount,
                    "authority",
                    "removed_on"
                ]
            )
        ),
        format!(
            "{} FROM credit WHERE {by_code} AND list_type IN ('abnormal', 'serious') AND removed_on IS NOT NULL",
            row(
                "'list_removal'",
                "removed_on",
                [
                    no_int,
                    none,
                    none,
                    no_date,
                    "list_type",
                    "reason",
                    "decision_no",
                    none,
                    no_amount,
                    "authority",
                    "removed_on"
                ]
            )
        ),
        format!(
            "{} FROM credit WHERE {by_code} AND list_type = 'penalty' AND decided_on IS NOT NULL \
             AND decided_on <= DATE '{date}' \
             AND ((penalty_kind IN ({minor_kinds}) AND decided_on > DATE '{minor}') \
               OR ((penalty_kind IS NULL OR penalty_kind NOT IN ({minor_kinds})) AND decided_on > DATE '{full}'))",
            row(
                "'penalty'",
                "decided_on",
                [
                    no_int,
                    none,
                    none,
                    no_date,
                    none,
                    "reason",
                    "decision_no",
                    "penalty_kind",
                    "amount",
                    "authority",
                    no_date
                ]
            )
        ),
        format!(
            "{} FROM public_codes",
            row(
                "'colour_issued'",
                "issued_on",
                [
                    no_int,
                    none,
                    "colour",
                    "valid_until",
                    none,
                    none,
                    none,
                    none,
                    no_amount,
                    none,
                    no_date
                ]
            )
        ),
    ];
    format!(
        "SELECT e.* FROM ({}) e WHERE e.uscc IN (SELECT uscc FROM registry WHERE uscc IS NOT NULL) \
         ORDER BY e.uscc, e.event_date NULLS FIRST, e.kind, e.report_year, e.conclusion, e.level, \
           e.valid_until, e.list_type, e.reason, e.decision_no, e.penalty_kind, e.amount, \
           e.authority, e.removed_on",
        branches.join(" UNION ALL ")
    )
}

/// Writes `public` and `public_events` for a run from the session's
/// resolved feed views and the run's `codes` file; returns the paths.
pub(super) async fn write_public(
    ctx: &SessionContext,
    store: &Arc<dyn ObjectStore>,
    prefix: &Path,
    codes: &Path,
    public: &PublicLookup,
    business_date: NaiveDate,
    run_id: &str,
) -> Result<Vec<(&'static str, Path)>, String> {
    ctx.register_parquet(
        "public_codes",
        &format!("qinglian://warehouse/{codes}"),
        ParquetReadOptions::default(),
    )
    .await
    .map_err(|e| format!("{codes}: {e}"))?;
    let mut written = Vec::new();
    for (dataset, sql, schema) in [
        ("public", public_sql(business_date), public_schema()),
        (
            "public_events",
            events_sql(business_date, public),
            public_events_schema(),
        ),
    ] {
        let path = crate::store::join(
            prefix,
            &crate::layout::published_data(dataset, business_date, run_id),
        );
        let fail = |e: String| format!("{dataset}: {e}");
        let mut stream = ctx
            .sql(&sql)
            .await
            .map_err(|e| fail(e.to_string()))?
            .execute_stream()
            .await
            .map_err(|e| fail(e.to_string()))?;
        let mut w = crate::land::parquet_writer(store, &path, Arc::clone(&schema))
            .map_err(|e| fail(format!("{path}: {e}")))?;
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(|e| fail(e.to_string()))?;
            w.write(&conform(&batch, &schema).map_err(fail)?)
                .await
                .map_err(|e| fail(format!("{path}: {e}")))?;
        }
        w.close().await.map_err(|e| fail(format!("{path}: {e}")))?;
        written.push((dataset, path));
    }
    ctx.deregister_table("public_codes")
        .map_err(|e| e.to_string())?;
    Ok(written)
}

/// A query's batch in the dataset's declared schema (types and
/// nullability), column by column in order.
fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, String> {
    if batch.num_columns() != schema.fields().len() {
        return Err(format!(
            "{} columns, the schema has {}",
            batch.num_columns(),
            schema.fields().len()
        ));
    }
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| cast(c, f.data_type()).map_err(|e| format!("{}: {e}", f.name())))
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(Arc::clone(schema), columns).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn penalty_periods_count_back_whole_years() {
        let d = NaiveDate::from_ymd_opt(2026, 2, 28).unwrap_or_default();
        assert_eq!(years_before(d, 3).to_string(), "2023-02-28");
        let leap = NaiveDate::from_ymd_opt(2024, 2, 29).unwrap_or_default();
        assert_eq!(years_before(leap, 1).to_string(), "2023-02-28");
    }

    #[test]
    fn the_event_query_names_every_column_once_per_branch() {
        let sql = events_sql(
            NaiveDate::from_ymd_opt(2026, 11, 28).unwrap_or_default(),
            &PublicLookup::default(),
        );
        assert_eq!(sql.matches(" UNION ALL ").count(), 7);
        assert!(sql.contains("decided_on > DATE '2023-11-28'"), "{sql}");
        assert!(sql.contains("decided_on > DATE '2025-11-28'"), "{sql}");
    }
}
