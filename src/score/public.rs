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
        "SELECT e.* FROM ({}) e WHERE e.uscc IN (SELECT uscc FROM registry WHERE uscc IS NOT NULL)",
        branches.join(" UNION ALL ")
    )
}

/// The order of `public_events`, over every column, so that the same
/// events give the same bytes.
const EVENTS_ORDER: &str = "uscc, event_date NULLS FIRST, kind, report_year, conclusion, level, \
    valid_until, list_type, reason, decision_no, penalty_kind, amount, authority, removed_on";

/// Organizations whose events are sorted together: a part's events, about
/// four per organization of a few hundred bytes each, sorted in a fraction
/// of the scoring memory limit (about 16 KiB of the limit per
/// organization).
fn orgs_per_part(memory_limit_mb: u64) -> usize {
    usize::try_from(memory_limit_mb.saturating_mul(64))
        .unwrap_or(usize::MAX)
        .max(1024)
}

/// At most this many parts (open spill files) whatever the registry.
const MAX_PARTS: usize = 256;

/// Writes `public` and `public_events` for a run from the session's
/// resolved feed views and the run's `codes` file; returns the paths.
#[allow(clippy::too_many_arguments)]
pub(super) async fn write_public(
    ctx: &SessionContext,
    store: &Arc<dyn ObjectStore>,
    prefix: &Path,
    codes: &Path,
    public: &PublicLookup,
    business_date: NaiveDate,
    run_id: &str,
    memory_limit_mb: u64,
) -> Result<Vec<(&'static str, Path)>, String> {
    ctx.register_parquet(
        "public_codes",
        &format!("qinglian://warehouse/{codes}"),
        ParquetReadOptions::default(),
    )
    .await
    .map_err(|e| format!("{codes}: {e}"))?;
    let mut written = Vec::new();
    let path_of = |dataset: &str| {
        crate::store::join(
            prefix,
            &crate::layout::published_data(dataset, business_date, run_id),
        )
    };
    {
        let (dataset, schema) = ("public", public_schema());
        let path = path_of(dataset);
        let fail = |e: String| format!("{dataset}: {e}");
        let mut stream = ctx
            .sql(&public_sql(business_date))
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
    let path = path_of("public_events");
    // The parts are rows already here: a cluster's session sorts them in
    // a local one of the same limit.
    let sorter = if super::engine::is_distributed(ctx) {
        super::session_with_limit(memory_limit_mb).map_err(|e| e.to_string())?
    } else {
        ctx.clone()
    };
    write_events(
        ctx,
        &sorter,
        store,
        &path,
        &events_sql(business_date, public),
        orgs_per_part(memory_limit_mb),
    )
    .await
    .map_err(|e| format!("public_events: {e}"))?;
    written.push(("public_events", path));
    ctx.deregister_table("public_codes")
        .map_err(|e| e.to_string())?;
    Ok(written)
}

/// Writes `public_events` in its order without one sort of every event:
/// the events stream once, unsorted, into parts by ranges of the
/// registry's USCCs (Arrow IPC on local disk); each part is then sorted on
/// its own and written after the one before. The ranges follow the sorted
/// USCCs, so the parts in turn are the global order, and the bytes are
/// those one global sort would write (the same batches reach the writer).
/// A sort holds one part, the events of about `per_part` organizations,
/// whatever the registry.
async fn write_events(
    ctx: &SessionContext,
    sorter: &SessionContext,
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    sql: &str,
    per_part: usize,
) -> Result<(), String> {
    use datafusion::arrow::array::{Array, AsArray, UInt32Array};
    use datafusion::arrow::compute::take_record_batch;
    use datafusion::arrow::ipc::reader::StreamReader;
    use datafusion::arrow::ipc::writer::StreamWriter;
    use datafusion::datasource::MemTable;

    let schema = public_events_schema();
    let bounds = part_bounds(ctx, per_part).await?;
    let dir = tempfile::tempdir().map_err(|e| format!("a temporary directory: {e}"))?;
    let spill = |e: &dyn std::fmt::Display| format!("spilling events: {e}");
    let mut parts: Vec<Option<StreamWriter<std::io::BufWriter<std::fs::File>>>> =
        (0..=bounds.len()).map(|_| None).collect();
    let part_path = |i: usize| dir.path().join(format!("part-{i:04}.arrows"));
    let mut stream = ctx
        .sql(sql)
        .await
        .map_err(|e| e.to_string())?
        .execute_stream()
        .await
        .map_err(|e| e.to_string())?;
    while let Some(batch) = stream.next().await {
        let batch = conform(&batch.map_err(|e| e.to_string())?, &schema)?;
        let uscc = batch.column(0).as_string::<i32>();
        let mut rows: Vec<Vec<u32>> = vec![Vec::new(); bounds.len() + 1];
        for i in 0..batch.num_rows() {
            let part = if uscc.is_null(i) {
                0
            } else {
                let code = uscc.value(i);
                bounds.partition_point(|b| b.as_str() <= code)
            };
            rows[part].push(i as u32);
        }
        for (part, rows) in rows.into_iter().enumerate() {
            if rows.is_empty() {
                continue;
            }
            let piece = if rows.len() == batch.num_rows() {
                batch.clone()
            } else {
                take_record_batch(&batch, &UInt32Array::from(rows)).map_err(|e| e.to_string())?
            };
            let writer = match &mut parts[part] {
                Some(w) => w,
                slot => {
                    let file = std::fs::File::create(part_path(part)).map_err(|e| spill(&e))?;
                    slot.insert(
                        StreamWriter::try_new(
                            std::io::BufWriter::with_capacity(1 << 16, file),
                            &schema,
                        )
                        .map_err(|e| spill(&e))?,
                    )
                }
            };
            writer.write(&piece).map_err(|e| spill(&e))?;
        }
    }
    drop(stream);
    let mut w = crate::land::parquet_writer(store, path, Arc::clone(&schema))
        .map_err(|e| format!("{path}: {e}"))?;
    let mut out = Rebatch::new(ctx.copied_config().batch_size());
    for (part, writer) in parts.into_iter().enumerate() {
        let Some(mut writer) = writer else { continue };
        writer.finish().map_err(|e| spill(&e))?;
        drop(writer);
        let file = std::fs::File::open(part_path(part)).map_err(|e| spill(&e))?;
        let batches = StreamReader::try_new(std::io::BufReader::new(file), None)
            .map_err(|e| spill(&e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| spill(&e))?;
        std::fs::remove_file(part_path(part)).map_err(|e| spill(&e))?;
        let table =
            MemTable::try_new(Arc::clone(&schema), vec![batches]).map_err(|e| e.to_string())?;
        sorter
            .register_table("public_events_part", Arc::new(table))
            .map_err(|e| e.to_string())?;
        let sorted = sorter
            .sql(&format!(
                "SELECT * FROM public_events_part ORDER BY {EVENTS_ORDER}"
            ))
            .await
            .map_err(|e| e.to_string());
        sorter
            .deregister_table("public_events_part")
            .map_err(|e| e.to_string())?;
        let mut sorted = sorted?.execute_stream().await.map_err(|e| e.to_string())?;
        while let Some(batch) = sorted.next().await {
            for batch in out.push(batch.map_err(|e| e.to_string())?)? {
                w.write(&batch).await.map_err(|e| format!("{path}: {e}"))?;
            }
        }
    }
    if let Some(batch) = out.finish()? {
        w.write(&batch).await.map_err(|e| format!("{path}: {e}"))?;
    }
    w.close().await.map_err(|e| format!("{path}: {e}"))?;
    Ok(())
}

/// The lower bounds of the parts after the first: every `per_part`-th of
/// the registry's distinct USCCs in order.
async fn part_bounds(ctx: &SessionContext, per_part: usize) -> Result<Vec<String>, String> {
    use datafusion::arrow::array::{Array, AsArray};
    let batches = ctx
        .sql("SELECT DISTINCT CAST(uscc AS VARCHAR) AS uscc FROM registry WHERE uscc IS NOT NULL")
        .await
        .map_err(|e| format!("registry codes: {e}"))?
        .collect()
        .await
        .map_err(|e| format!("registry codes: {e}"))?;
    let mut codes: Vec<String> = Vec::new();
    for batch in &batches {
        let col = cast(batch.column(0), &DataType::Utf8).map_err(|e| e.to_string())?;
        let col = col.as_string::<i32>();
        codes.extend(
            (0..col.len())
                .filter(|&i| col.is_valid(i))
                .map(|i| col.value(i).to_string()),
        );
    }
    codes.sort_unstable();
    let per_part = per_part.max(codes.len().div_ceil(MAX_PARTS)).max(1);
    Ok(codes.into_iter().step_by(per_part).skip(1).collect())
}

/// Cuts a stream of batches into batches of exactly `rows` rows (the last
/// one shorter).
struct Rebatch {
    rows: usize,
    pending: Vec<RecordBatch>,
    count: usize,
}

impl Rebatch {
    fn new(rows: usize) -> Self {
        Self {
            rows: rows.max(1),
            pending: Vec::new(),
            count: 0,
        }
    }

    fn push(&mut self, batch: RecordBatch) -> Result<Vec<RecordBatch>, String> {
        if batch.num_rows() == 0 {
            return Ok(Vec::new());
        }
        self.count += batch.num_rows();
        self.pending.push(batch);
        if self.count < self.rows {
            return Ok(Vec::new());
        }
        let all = self.concat()?;
        let mut out = Vec::new();
        let mut at = 0;
        while all.num_rows() - at >= self.rows {
            out.push(all.slice(at, self.rows));
            at += self.rows;
        }
        if at < all.num_rows() {
            self.count = all.num_rows() - at;
            self.pending.push(all.slice(at, self.count));
        }
        Ok(out)
    }

    fn concat(&mut self) -> Result<RecordBatch, String> {
        let schema = self.pending[0].schema();
        let all = datafusion::arrow::compute::concat_batches(&schema, &self.pending)
            .map_err(|e| e.to_string())?;
        self.pending.clear();
        self.count = 0;
        Ok(all)
    }

    fn finish(&mut self) -> Result<Option<RecordBatch>, String> {
        if self.pending.is_empty() {
            return Ok(None);
        }
        self.concat().map(Some)
    }
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

    /// The events written part by part (many parts, one part) are the
    /// bytes one global sort of every event writes, over more rows than a
    /// batch, in shuffled order, with nulls in the sort columns.
    #[tokio::test]
    async fn events_sorted_part_by_part_are_the_bytes_of_one_global_sort() {
        use datafusion::arrow::array::{
            ArrayRef, Date32Array, Decimal128Array, Int32Array, StringArray,
        };
        use datafusion::datasource::MemTable;
        use object_store::ObjectStoreExt;
        use object_store::memory::InMemory;

        let n = 30_000usize;
        let orgs = 3_000usize;
        let code = |i: usize| format!("5133{:014}", (i * 7919) % orgs);
        let opt = |i: usize, m: usize, s: &str| {
            (!i.is_multiple_of(m)).then(|| format!("{s}{}", i % (m + 3)))
        };
        let schema = public_events_schema();
        let col = |f: &dyn Fn(usize) -> Option<String>| -> ArrayRef {
            Arc::new((0..n).map(f).collect::<StringArray>())
        };
        let date = |f: &dyn Fn(usize) -> Option<i32>| -> ArrayRef {
            Arc::new((0..n).map(f).collect::<Date32Array>())
        };
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                col(&|i| Some(code(i))),
                col(&|i| Some(EVENT_KINDS[i % EVENT_KINDS.len()].to_string())),
                date(&|i| (!i.is_multiple_of(5)).then_some((i % 40) as i32 + 19_000)),
                Arc::new(
                    (0..n)
                        .map(|i| (i.is_multiple_of(3)).then_some(2020 + (i % 4) as i32))
                        .collect::<Int32Array>(),
                ),
                col(&|i| opt(i, 4, "c")),
                col(&|i| opt(i, 6, "l")),
                date(&|i| (i.is_multiple_of(7)).then_some((i % 11) as i32 + 19_500)),
                col(&|i| opt(i, 2, "t")),
                col(&|i| opt(i, 3, "原因")),
                col(&|i| opt(i, 5, "决定")),
                col(&|i| opt(i, 9, "k")),
                Arc::new(
                    (0..n)
                        .map(|i| (i % 4 == 1).then_some((i % 13) as i128 * 100))
                        .collect::<Decimal128Array>()
                        .with_precision_and_scale(18, 2)
                        .unwrap_or_else(|_| Decimal128Array::from(vec![0i128; n])),
                ),
                col(&|i| opt(i, 8, "a")),
                date(&|i| (i.is_multiple_of(9)).then_some((i % 17) as i32 + 19_600)),
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let ctx = SessionContext::new();
        let source = MemTable::try_new(
            Arc::clone(&schema),
            vec![vec![batch.clone()], vec![batch.slice(0, 5000)]],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        ctx.register_table("src", Arc::new(source))
            .unwrap_or_else(|e| panic!("{e}"));
        let registry = RecordBatch::try_from_iter(vec![(
            "uscc",
            Arc::new(StringArray::from_iter_values((0..orgs).map(code))) as ArrayRef,
        )])
        .unwrap_or_else(|e| panic!("{e}"));
        ctx.register_batch("registry", registry)
            .unwrap_or_else(|e| panic!("{e}"));
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let bytes = |path: Path| {
            let store = Arc::clone(&store);
            async move {
                store
                    .get(&path)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"))
                    .bytes()
                    .await
                    .unwrap_or_else(|e| panic!("{e}"))
            }
        };
        // The reference: one sort of every event, as the dataset was written before.
        let global = Path::from("global.parquet");
        let mut stream = ctx
            .sql(&format!("SELECT * FROM src ORDER BY {EVENTS_ORDER}"))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .execute_stream()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut w = crate::land::parquet_writer(&store, &global, Arc::clone(&schema))
            .unwrap_or_else(|e| panic!("{e}"));
        while let Some(b) = stream.next().await {
            let b = conform(&b.unwrap_or_else(|e| panic!("{e}")), &schema)
                .unwrap_or_else(|e| panic!("{e}"));
            w.write(&b).await.unwrap_or_else(|e| panic!("{e}"));
        }
        w.close().await.unwrap_or_else(|e| panic!("{e}"));
        let reference = bytes(global).await;
        for per_part in [1, 100, 1_000_000] {
            let path = Path::from(format!("parts-{per_part}.parquet"));
            write_events(&ctx, &ctx, &store, &path, "SELECT * FROM src", per_part)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(
                bytes(path).await == reference,
                "{per_part} organizations a part: not the bytes of one sort"
            );
        }
    }
}
