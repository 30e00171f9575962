//! One fixture per rule: `tests/fixtures/rules/<RULE-ID>.toml` holds tiny
//! canonical tables (`[[registry]]`, `[[credit]]` …, columns by name, the
//! rest NULL) and the hits expected (`[[expect]]`: uscc, source_record_id,
//! confidence). A new rule's test is a new file.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array, Int64Array,
    RecordBatch, StringArray, TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use qinglian::project::{FeedSchema, Project};
use qinglian::score;
use qinglian::validate::coerce;

use crate::support::{fixtures, root};

fn days(text: &str) -> i32 {
    let d = coerce::parse_date(text).expect("a date");
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32
}

/// The rows of one table as a batch of the schema (every column nullable).
pub(crate) fn batch(schema: &FeedSchema, rows: &[toml::Table]) -> RecordBatch {
    let columns = schema.all_columns();
    let fields: Vec<Field> = columns
        .iter()
        .map(|c| Field::new(&c.name, c.data_type.clone(), true))
        .collect();
    let get = |row: &toml::Table, name: &str| -> Option<toml::Value> {
        match (row.get(name), name) {
            (Some(v), _) => Some(v.clone()),
            (None, "key_class") => Some(toml::Value::String(
                if row.contains_key("uscc") {
                    "valid"
                } else if row.contains_key("subject_name") {
                    "name_only"
                } else {
                    "missing"
                }
                .into(),
            )),
            (None, "subject_name_key") => row
                .get("subject_name")
                .and_then(|v| v.as_str())
                .map(|n| toml::Value::String(qinglian::keys::normalize_name(n))),
            (None, "fetched_at") => Some(toml::Value::Integer(0)),
            _ => None,
        }
    };
    let arrays: Vec<ArrayRef> = columns
        .iter()
        .map(|c| {
            let values: Vec<Option<toml::Value>> = rows.iter().map(|r| get(r, &c.name)).collect();
            let text = |v: &toml::Value| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            };
            let array: ArrayRef = match &c.data_type {
                DataType::Utf8 => Arc::new(StringArray::from(
                    values
                        .iter()
                        .map(|v| v.as_ref().map(text))
                        .collect::<Vec<_>>(),
                )),
                DataType::Int32 => Arc::new(Int32Array::from(
                    values
                        .iter()
                        .map(|v| v.as_ref().and_then(|v| v.as_integer()).map(|i| i as i32))
                        .collect::<Vec<_>>(),
                )),
                DataType::Int64 => Arc::new(Int64Array::from(
                    values
                        .iter()
                        .map(|v| v.as_ref().and_then(|v| v.as_integer()))
                        .collect::<Vec<_>>(),
                )),
                DataType::Float64 => Arc::new(Float64Array::from(
                    values
                        .iter()
                        .map(|v| {
                            v.as_ref()
                                .and_then(|v| v.as_float().or(v.as_integer().map(|i| i as f64)))
                        })
                        .collect::<Vec<_>>(),
                )),
                DataType::Boolean => Arc::new(BooleanArray::from(
                    values
                        .iter()
                        .map(|v| v.as_ref().and_then(|v| v.as_bool()))
                        .collect::<Vec<_>>(),
                )),
                DataType::Date32 => Arc::new(Date32Array::from(
                    values
                        .iter()
                        .map(|v| v.as_ref().map(|v| days(&text(v))))
                        .collect::<Vec<_>>(),
                )),
                DataType::Timestamp(_, tz) => Arc::new(
                    TimestampMillisecondArray::from(
                        values
                            .iter()
                            .map(|v| v.as_ref().and_then(|v| v.as_integer()))
                            .collect::<Vec<_>>(),
                    )
                    .with_timezone_opt(tz.clone()),
                ),
                DataType::Decimal128(p, s) => Arc::new(
                    Decimal128Array::from(
                        values
                            .iter()
                            .map(|v| {
                                v.as_ref().map(|v| {
                                    coerce::parse_decimal(&text(v), 1, *s).expect("an amount")
                                })
                            })
                            .collect::<Vec<_>>(),
                    )
                    .with_precision_and_scale(*p, *s)
                    .expect("decimal"),
                ),
                other => panic!("no fixture support for {other}"),
            };
            array
        })
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).expect("fixture batch")
}

#[tokio::test]
async fn every_rule_finds_what_its_fixture_expects() {
    let project = Project::load(&root()).expect("project");
    let pipeline = &project.pipelines["nightly"];
    let dir = fixtures().join("rules");
    let mut failures = Vec::new();
    let mut covered = BTreeSet::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("rule fixtures")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    for path in files {
        let doc: toml::Table = std::fs::read_to_string(&path)
            .expect("read")
            .parse()
            .expect("toml");
        let rule_id = doc["rule"].as_str().expect("rule").to_string();
        let date = coerce::parse_date(doc["business_date"].as_str().expect("business_date"))
            .expect("date");
        let rule = project
            .rules
            .iter()
            .find(|r| r.id == rule_id)
            .unwrap_or_else(|| panic!("{rule_id} is not a rule"));
        covered.insert(rule_id.clone());
        let ctx = score::session().expect("session");
        for (feed, schema) in &project.schemas {
            let rows: Vec<toml::Table> = doc
                .get(feed)
                .and_then(|v| v.as_array())
                .map(|a| a.iter().filter_map(|v| v.as_table().cloned()).collect())
                .unwrap_or_default();
            let b = batch(schema, &rows);
            let table = MemTable::try_new(b.schema(), vec![vec![b]]).expect("table");
            ctx.register_table(format!("{feed}_landed"), Arc::new(table))
                .expect("register");
        }
        score::resolve_feeds(&ctx, &project, pipeline)
            .await
            .expect("resolve");
        let hits = match score::run_rule(&ctx, rule, date).await {
            Ok(h) => h,
            Err(e) => {
                failures.push(format!("{rule_id}: {e}"));
                continue;
            }
        };
        let got: BTreeSet<(String, String, String)> = hits
            .iter()
            .map(|h| {
                (
                    h.uscc.clone(),
                    h.source_record_id.clone(),
                    if h.low_confidence { "low" } else { "high" }.to_string(),
                )
            })
            .collect();
        let want: BTreeSet<(String, String, String)> = doc
            .get("expect")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|e| e.as_table())
                    .map(|e| {
                        let s = |k: &str| {
                            e.get(k)
                                .and_then(|v| v.as_str())
                                .unwrap_or("high")
                                .to_string()
                        };
                        (s("uscc"), s("source_record_id"), s("confidence"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        if got != want {
            failures.push(format!("{rule_id}: expected {want:?}\n  got {got:?}"));
        }
        // Points deducted per organization, worked out by hand in the
        // fixture: one event deducts once, however many rows evidence it.
        if let Some(deducts) = doc.get("deducts").and_then(|v| v.as_table()) {
            let scores = score::aggregate(&project, &hits);
            for (uscc, want) in deducts {
                let got: u32 = scores.get(uscc).map_or(0, |s| s.deductions.iter().sum());
                if i64::from(got) != want.as_integer().unwrap_or(-1) {
                    failures.push(format!("{rule_id}: {uscc} deducts {got}, expected {want}"));
                }
            }
        }
    }
    let all: BTreeSet<String> = project
        .pipeline_rules(pipeline)
        .map(|r| r.id.clone())
        .collect();
    let missing: Vec<_> = all.difference(&covered).collect();
    assert!(missing.is_empty(), "rules without a fixture: {missing:?}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn a_rule_returning_bad_rows_fails_naming_the_rule_and_the_row() {
    let project = Project::load(&root()).expect("project");
    let pipeline = &project.pipelines["nightly"];
    let ctx = score::session().expect("session");
    for (feed, schema) in &project.schemas {
        let mut rows = Vec::new();
        if feed == "registry" {
            let mut r = toml::Table::new();
            r.insert("uscc".into(), "51330100MJ0000018T".into());
            r.insert("source_record_id".into(), "R1".into());
            r.insert("name".into(), "杭州市阳光志愿者协会".into());
            rows.push(r);
        }
        let b = batch(schema, &rows);
        let table = MemTable::try_new(b.schema(), vec![vec![b]]).expect("table");
        ctx.register_table(format!("{feed}_landed"), Arc::new(table))
            .expect("register");
    }
    score::resolve_feeds(&ctx, &project, pipeline)
        .await
        .expect("resolve");
    let mut rule = project.rules[0].clone();
    rule.id = "TEST-1".into();
    let date = NaiveDate::from_ymd_opt(2026, 6, 30).expect("date");
    // Rows naming no registered organization are not hits, and fail
    // nothing: an invalid code, a valid unregistered one, none at all.
    for uscc in ["'X'", "'52330106MJ00000269'", "CAST(NULL AS VARCHAR)"] {
        rule.sql = format!(
            "SELECT {uscc} AS uscc, 'registry' AS source_feed, source_record_id, DATE '2026-01-01' AS event_date, 'd' AS detail FROM registry"
        );
        rule.window = qinglian::project::RuleWindow::InForce;
        let hits = score::run_rule(&ctx, &rule, date)
            .await
            .unwrap_or_else(|e| panic!("{uscc}: {e}"));
        assert!(hits.is_empty(), "{uscc}: {hits:?}");
    }
    let cases = [
        (
            "SELECT uscc, 'registry' AS source_feed, source_record_id, CAST(NULL AS DATE) AS event_date, 'd' AS detail FROM registry",
            "rule TEST-1: row for record \"R1\" of 51330100MJ0000018T has no event_date",
        ),
        (
            "SELECT uscc, 'registry' AS source_feed, source_record_id, {business_date} AS event_date, 'd' AS detail FROM registry WHERE CAST(name AS INT) > 0",
            "rule TEST-1: failed at run time:",
        ),
    ];
    for (sql, message) in cases {
        rule.sql = sql.to_string();
        rule.window = qinglian::project::RuleWindow::InForce;
        let err = score::run_rule(&ctx, &rule, date)
            .await
            .expect_err("must fail")
            .to_string();
        assert!(err.starts_with(message), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_failing_at_run_time_fails_the_run_and_publishes_nothing() {
    let project_dir = tempfile::tempdir().expect("tmp");
    crate::support::copy_project(project_dir.path());
    let path = project_dir.path().join("pipelines/rules/organization.toml");
    let text = std::fs::read_to_string(&path).expect("rules");
    std::fs::write(
        &path,
        text.replacen(
            "WHERE party_in_charter = false",
            "WHERE CAST(name AS INT) > 0 AND party_in_charter = false",
            1,
        ),
    )
    .expect("write");
    let project = Project::load(project_dir.path()).expect("still valid: it plans");
    let feeds = tempfile::tempdir().expect("tmp");
    let warehouse = tempfile::tempdir().expect("tmp");
    crate::ingest::generate(feeds.path(), 40);
    let mut vars = std::collections::BTreeMap::new();
    vars.insert(
        "QINGLIAN_FEEDS".to_string(),
        feeds.path().to_string_lossy().into_owned(),
    );
    vars.insert(
        "QINGLIAN_PERSON_KEY".to_string(),
        crate::ingest::KEY.to_string(),
    );
    let run = qinglian::run::run_pipeline(
        &project,
        "nightly",
        qinglian::run::RunOptions {
            business_date: crate::ingest::date(),
            clock: Arc::new(qinglian::clock::SystemClock),
            warehouse: Some(warehouse.path().to_string_lossy().into_owned()),
            vars,
            ..qinglian::run::RunOptions::new(crate::ingest::date())
        },
    )
    .await
    .expect("run");
    assert_eq!(run.status, qinglian::ledger::RunStatus::Failed);
    let error = run.error.clone().unwrap_or_default();
    assert!(
        error.starts_with("rule ORG-01: failed at run time"),
        "{error}"
    );
    assert!(run.scoring.is_none());
    assert!(
        !warehouse.path().join("published").exists(),
        "nothing published"
    );
}
