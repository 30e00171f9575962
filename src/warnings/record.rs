//! The warning as published (`schemas/out/warnings.toml`) and the
//! disposition record as the platform sends it (DOMAIN.md §7), with their
//! Arrow form.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Int32Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

use super::lifecycle::State;

/// One change of state reported by the platform: one record per change,
/// idempotent on warning id and sequence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Disposition {
    /// The warning.
    pub warning_id: String,
    /// 1, 2, 3 … per warning, across its rounds.
    pub sequence: u32,
    /// The organization (must be the warning's).
    pub uscc: String,
    /// The new state (a name of [`State`]).
    pub state: String,
    /// When the state changed, with its offset.
    pub time: DateTime<Utc>,
    /// The unit handling it.
    pub handling_unit: String,
    /// The handler's name: kept for audit in the warehouse, never published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler: Option<String>,
    /// The platform's result code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_code: Option<String>,
    /// The result in words (kept for audit, not published).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_text: Option<String>,
    /// Rectification deadline (with `rectifying`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rectify_by: Option<NaiveDate>,
    /// When the rectification was completed (with `feedback`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_on: Option<NaiveDate>,
    /// With `unfounded`: the evidence was a data error of its feed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub data_error: bool,
}

impl Disposition {
    /// The state it reports, or what is wrong with it.
    pub fn new_state(&self) -> Result<State, String> {
        State::parse(&self.state).ok_or_else(|| {
            format!(
                "warning {} sequence {}: state {:?} is not one of generated, pushed, signed, verifying, rectifying, feedback, closed, unfounded, transferred, withdrawn, returned",
                self.warning_id, self.sequence, self.state
            )
        })
    }

    /// The business day (Asia/Shanghai) of its time.
    pub fn day(&self) -> NaiveDate {
        self.time
            .with_timezone(&chrono_tz::Asia::Shanghai)
            .date_naive()
    }

    /// Its identity: `<warning id>#<sequence>`.
    pub fn key(&self) -> String {
        format!("{}#{}", self.warning_id, self.sequence)
    }
}

/// One hit among a warning's causes, with its evidence.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Cause {
    /// Rule.
    pub rule_id: String,
    /// The event (rule's evidence key).
    pub event: String,
    /// Red line.
    pub red_line: bool,
    /// Points deducted.
    pub points: i32,
    /// Feed of the evidence record.
    pub source_feed: String,
    /// The record's id in its feed.
    pub source_record_id: String,
    /// Date of the event.
    pub event_date: NaiveDate,
    /// The evidence in words.
    pub detail: String,
}

/// A warning and where it stands on a business date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Warning {
    /// Stable id: the same cause gives the same id.
    pub warning_id: String,
    /// Organization.
    pub uscc: String,
    /// Registered name.
    pub name: String,
    /// Business date it was raised.
    pub raised_on: NaiveDate,
    /// 1, then +1 on each reopening.
    pub round: u32,
    /// Current state.
    pub state: State,
    /// Colour before.
    pub colour_before: Option<String>,
    /// Colour after.
    pub colour_after: Option<String>,
    /// The hits that caused it.
    pub causes: Vec<Cause>,
    /// registrar, supervisor or feed.
    pub responsible: String,
    /// The responsible unit's name.
    pub responsible_unit: String,
    /// The unit handling it now, as the platform reports.
    pub handling_unit: Option<String>,
    /// When the platform acknowledged its push (this round).
    pub pushed_on: Option<NaiveDate>,
    /// When it started waiting for a signature (pushed, or returned).
    pub waiting_since: Option<NaiveDate>,
    /// Signed for.
    pub signed_on: Option<NaiveDate>,
    /// Rectification deadline.
    pub rectify_by: Option<NaiveDate>,
    /// Rectification completed.
    pub completed_on: Option<NaiveDate>,
    /// Reached an ending.
    pub ended_on: Option<NaiveDate>,
    /// Reopened (last time).
    pub reopened_on: Option<NaiveDate>,
    /// The last disposition applied (0: none).
    pub last_sequence: u32,
    /// Sequences received out of order, waiting for the ones before.
    pub held: Vec<u32>,
    /// When the oldest of them was admitted.
    pub held_since: Option<NaiveDate>,
    /// Result code of the last disposition.
    pub result_code: Option<String>,
    /// The feed an `unfounded` with a data error is recorded against.
    pub data_error_feed: Option<String>,
    /// Deadline for signing, when waiting for it.
    pub sign_due: Option<NaiveDate>,
    /// `signature` or `rectification` when past its deadline.
    pub overdue: Option<String>,
    /// Working days past the deadline.
    pub overdue_working_days: u32,
    /// Urges (催办) sent for it, from the deadlines.
    pub urges: u32,
    /// A held sequence waited past the timeout.
    pub sequence_gap: bool,
}

/// Columns of `warnings`.
pub fn warnings_schema() -> SchemaRef {
    let s = |n: &str, null: bool| Field::new(n, DataType::Utf8, null);
    let d = |n: &str, null: bool| Field::new(n, DataType::Date32, null);
    let i = |n: &str| Field::new(n, DataType::Int32, false);
    Arc::new(Schema::new(vec![
        s("warning_id", false),
        s("uscc", false),
        s("name", false),
        d("raised_on", false),
        i("round"),
        s("state", false),
        s("colour_before", true),
        s("colour_after", true),
        s("rules", false),
        s("evidence", false),
        s("responsible", false),
        s("responsible_unit", false),
        s("handling_unit", true),
        d("pushed_on", true),
        d("waiting_since", true),
        d("signed_on", true),
        d("rectify_by", true),
        d("completed_on", true),
        d("ended_on", true),
        d("reopened_on", true),
        i("last_sequence"),
        s("held_sequences", false),
        d("held_since", true),
        s("result_code", true),
        s("data_error_feed", true),
        d("sign_due", true),
        s("overdue", true),
        i("overdue_working_days"),
        i("urges"),
        Field::new("sequence_gap", DataType::Boolean, false),
        d("business_date", false),
    ]))
}

fn days(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()).num_days() as i32
}

/// The `warnings` rows of a business date, in warning id order.
pub fn warnings_batch(rows: &[Warning], date: NaiveDate) -> Result<RecordBatch, String> {
    let text = |f: &dyn Fn(&Warning) -> String| -> ArrayRef {
        Arc::new(StringArray::from(rows.iter().map(f).collect::<Vec<_>>()))
    };
    let opt = |f: &dyn Fn(&Warning) -> Option<String>| -> ArrayRef {
        Arc::new(StringArray::from(rows.iter().map(f).collect::<Vec<_>>()))
    };
    let date_col = |f: &dyn Fn(&Warning) -> Option<NaiveDate>| -> ArrayRef {
        Arc::new(Date32Array::from(
            rows.iter().map(|w| f(w).map(days)).collect::<Vec<_>>(),
        ))
    };
    let int = |f: &dyn Fn(&Warning) -> u32| -> ArrayRef {
        Arc::new(Int32Array::from(
            rows.iter()
                .map(|w| i32::try_from(f(w)).unwrap_or(i32::MAX))
                .collect::<Vec<_>>(),
        ))
    };
    let evidence = |w: &Warning| serde_json::to_string(&w.causes).unwrap_or_default();
    let rules = |w: &Warning| {
        let mut r: Vec<&str> = w.causes.iter().map(|c| c.rule_id.as_str()).collect();
        r.dedup();
        r.join(",")
    };
    RecordBatch::try_new(
        warnings_schema(),
        vec![
            text(&|w| w.warning_id.clone()),
            text(&|w| w.uscc.clone()),
            text(&|w| w.name.clone()),
            date_col(&|w| Some(w.raised_on)),
            int(&|w| w.round),
            text(&|w| w.state.as_str().to_string()),
            opt(&|w| w.colour_before.clone()),
            opt(&|w| w.colour_after.clone()),
            text(&rules),
            text(&evidence),
            text(&|w| w.responsible.clone()),
            text(&|w| w.responsible_unit.clone()),
            opt(&|w| w.handling_unit.clone()),
            date_col(&|w| w.pushed_on),
            date_col(&|w| w.waiting_since),
            date_col(&|w| w.signed_on),
            date_col(&|w| w.rectify_by),
            date_col(&|w| w.completed_on),
            date_col(&|w| w.ended_on),
            date_col(&|w| w.reopened_on),
            int(&|w| w.last_sequence),
            text(&|w| {
                w.held
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            }),
            date_col(&|w| w.held_since),
            opt(&|w| w.result_code.clone()),
            opt(&|w| w.data_error_feed.clone()),
            date_col(&|w| w.sign_due),
            opt(&|w| w.overdue.clone()),
            int(&|w| w.overdue_working_days),
            int(&|w| w.urges),
            Arc::new(BooleanArray::from(
                rows.iter().map(|w| w.sequence_gap).collect::<Vec<_>>(),
            )),
            date_col(&|_| Some(date)),
        ],
    )
    .map_err(|e| e.to_string())
}

/// Reads `warnings` batches back (a published version's, for the next
/// night's fold, the intake and the commands). A row that does not read is
/// an error naming the warning and the column.
pub fn warnings_from(batches: &[RecordBatch]) -> Result<Vec<Warning>, String> {
    let mut out = Vec::new();
    for b in batches {
        let col = |name: &str| {
            b.column_by_name(name)
                .ok_or_else(|| format!("warnings: no column {name}"))
        };
        let strings = |name: &str| -> Result<StringArray, String> {
            col(name)?
                .as_string_opt::<i32>()
                .cloned()
                .ok_or_else(|| format!("warnings: column {name} is not text"))
        };
        let dates = |name: &str| -> Result<Date32Array, String> {
            col(name)?
                .as_primitive_opt::<datafusion::arrow::datatypes::Date32Type>()
                .cloned()
                .ok_or_else(|| format!("warnings: column {name} is not a date"))
        };
        let ints = |name: &str| -> Result<Int32Array, String> {
            col(name)?
                .as_primitive_opt::<datafusion::arrow::datatypes::Int32Type>()
                .cloned()
                .ok_or_else(|| format!("warnings: column {name} is not int32"))
        };
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
        let day = |a: &Date32Array, r: usize| -> Option<NaiveDate> {
            (!a.is_null(r)).then(|| epoch + chrono::TimeDelta::days(i64::from(a.value(r))))
        };
        let text = |a: &StringArray, r: usize| -> Option<String> {
            (!a.is_null(r)).then(|| a.value(r).to_string())
        };
        let (id, uscc, name, state) = (
            strings("warning_id")?,
            strings("uscc")?,
            strings("name")?,
            strings("state")?,
        );
        let (before, after, evidence, responsible, unit, handling) = (
            strings("colour_before")?,
            strings("colour_after")?,
            strings("evidence")?,
            strings("responsible")?,
            strings("responsible_unit")?,
            strings("handling_unit")?,
        );
        let (held, result, data_error, overdue) = (
            strings("held_sequences")?,
            strings("result_code")?,
            strings("data_error_feed")?,
            strings("overdue")?,
        );
        let (raised, pushed, waiting, signed, rectify, completed, ended, reopened, held_since, due) = (
            dates("raised_on")?,
            dates("pushed_on")?,
            dates("waiting_since")?,
            dates("signed_on")?,
            dates("rectify_by")?,
            dates("completed_on")?,
            dates("ended_on")?,
            dates("reopened_on")?,
            dates("held_since")?,
            dates("sign_due")?,
        );
        let (round, last, overdue_days, urges) = (
            ints("round")?,
            ints("last_sequence")?,
            ints("overdue_working_days")?,
            ints("urges")?,
        );
        let gap = col("sequence_gap")?
            .as_boolean_opt()
            .cloned()
            .ok_or("warnings: column sequence_gap is not boolean")?;
        for r in 0..b.num_rows() {
            let wid = id.value(r).to_string();
            let state = State::parse(state.value(r))
                .ok_or_else(|| format!("warnings: {wid}: unknown state {:?}", state.value(r)))?;
            let causes: Vec<Cause> = serde_json::from_str(evidence.value(r))
                .map_err(|e| format!("warnings: {wid}: evidence is not readable: {e}"))?;
            let held = held
                .value(r)
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse::<u32>()
                        .map_err(|_| format!("warnings: {wid}: held_sequences {s:?}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let n = |a: &Int32Array| u32::try_from(a.value(r)).unwrap_or(0);
            out.push(Warning {
                warning_id: wid,
                uscc: uscc.value(r).to_string(),
                name: name.value(r).to_string(),
                raised_on: day(&raised, r).unwrap_or(epoch),
                round: n(&round),
                state,
                colour_before: text(&before, r),
                colour_after: text(&after, r),
                causes,
                responsible: responsible.value(r).to_string(),
                responsible_unit: unit.value(r).to_string(),
                handling_unit: text(&handling, r),
                pushed_on: day(&pushed, r),
                waiting_since: day(&waiting, r),
                signed_on: day(&signed, r),
                rectify_by: day(&rectify, r),
                completed_on: day(&completed, r),
                ended_on: day(&ended, r),
                reopened_on: day(&reopened, r),
                last_sequence: n(&last),
                held,
                held_since: day(&held_since, r),
                result_code: text(&result, r),
                data_error_feed: text(&data_error, r),
                sign_due: day(&due, r),
                overdue: text(&overdue, r),
                overdue_working_days: n(&overdue_days),
                urges: n(&urges),
                sequence_gap: gap.value(r),
            });
        }
    }
    Ok(out)
}
