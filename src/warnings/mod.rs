//! Warnings (预警) and their disposition (闭环管理, DOMAIN.md §7), between
//! scoring and publishing.
//!
//! Each run raises a warning for every organization whose colour worsened
//! or that gained a red-line hit ([`fold::raise_for`]); its id is the hash
//! of the organization and its causes, so a re-run or the next night never
//! raises it twice. The run then moves every warning of the previous
//! version one night on ([`fold::advance`]): the platform's
//! acknowledgements and dispositions admitted up to the business date
//! ([`inbox::Inbox::admit`]), reopening, overdue and urges from the
//! working-day [`calendar`]. The result is the `warnings` dataset,
//! published with the others, and the new and reopened warnings go to the
//! platform in the push as kind `warnings` ([`queue_push`]).
//!
//! Dispositions come back both ways: pushed to us at
//! `POST /intake/dispositions` ([`intake`]), or pulled from the platform's
//! paged API by the `dispositions` source ([`pull`]); either way they are
//! judged the same and recorded once per warning id and sequence before
//! anything is acknowledged.

pub mod calendar;
pub mod config;
pub mod fold;
pub mod inbox;
pub mod intake;
pub mod lifecycle;
pub mod pull;
pub mod record;
pub mod show;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde_json::json;
use sha2::{Digest, Sha256};
use tracing::{info, warn};

pub use config::WarningsConfig;
pub use lifecycle::State;
pub use record::{Cause, Disposition, Warning};

use crate::project::{Pipeline, Project};

/// The dataset.
pub const DATASET: &str = "warnings";
/// The push kind carrying new and reopened warnings.
pub const PUSH_KIND: &str = "warnings";

pub use crate::ledger::WarningsSummary;

/// The outbox of warning batches: `warnings/outbox/{pending,acknowledged,dead}/`,
/// beside the code changes' and drained after them.
pub fn outbox(store: &Arc<dyn ObjectStore>, prefix: &Path) -> crate::deliver::Outbox {
    crate::deliver::Outbox::new(
        Arc::clone(store),
        crate::store::join(prefix, crate::layout::warnings::OUTBOX_ROOT),
    )
}

/// Queues tonight's warnings of `published` (when there is a version) and
/// sends what waits in the warnings outbox. Never fails the run: problems
/// are in the summary.
pub async fn deliver(
    store: &Arc<dyn ObjectStore>,
    prefix: &Path,
    endpoint: &crate::deliver::Endpoint,
    published: Option<&crate::catalog::Published>,
    queued_by: &str,
    clock: &dyn crate::clock::Clock,
) -> crate::ledger::DeliverySummary {
    let outbox = outbox(store, prefix);
    let mut summary = crate::ledger::DeliverySummary {
        endpoint: endpoint.display_url(),
        kind: PUSH_KIND.to_string(),
        ..Default::default()
    };
    if let Some(p) = published {
        match queue_push(&outbox, p, endpoint.batch_size(), queued_by, clock.now()).await {
            Ok(q) => {
                summary.batches = q.batches;
                summary.rows = q.rows;
                summary.queued = q.queued;
                summary.already_acknowledged = q.already_acknowledged;
            }
            Err(e) => {
                summary.error = Some(e);
                return summary;
            }
        }
    }
    if let Err(e) = crate::deliver::drain(&outbox, endpoint, clock, &mut summary).await {
        summary.error = Some(e.to_string());
    }
    summary
}

/// What queueing a version's warnings did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Queued {
    /// Batches of the version.
    pub batches: u32,
    /// Warnings in them.
    pub rows: u64,
    /// Newly queued.
    pub queued: u32,
    /// Acknowledged already (a re-run).
    pub already_acknowledged: u32,
}

/// Everything the stage needs from the run.
pub struct WarningsInput<'a> {
    /// The project.
    pub project: &'a Project,
    /// The pipeline.
    pub pipeline: &'a Pipeline,
    /// Warehouse.
    pub store: Arc<dyn ObjectStore>,
    /// Warehouse prefix.
    pub prefix: Path,
    /// The run.
    pub run_id: &'a str,
    /// Business date.
    pub business_date: NaiveDate,
    /// The datasets scoring wrote (relative paths), by name.
    pub outputs: &'a BTreeMap<String, String>,
    /// The registry snapshot scored (relative path).
    pub registry: Option<&'a str>,
    /// Variables for `${NAME}` (the pull's URL and secret).
    pub vars: &'a BTreeMap<String, String>,
    /// The run's clock.
    pub now: DateTime<Utc>,
}

async fn read_file(store: &Arc<dyn ObjectStore>, path: &Path) -> Result<Vec<RecordBatch>, String> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let bytes = store
        .get(path)
        .await
        .map_err(|e| format!("{path}: {e}"))?
        .bytes()
        .await
        .map_err(|e| format!("{path}: {e}"))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(|b| b.build())
        .map_err(|e| format!("{path}: {e}"))?;
    reader
        .map(|b| b.map_err(|e| format!("{path}: {e}")))
        .collect()
}

/// Column `name` of `b` as text (dates and numbers cast).
fn text_column(
    b: &RecordBatch,
    name: &str,
) -> Result<datafusion::arrow::array::StringArray, String> {
    let c = b
        .column_by_name(name)
        .ok_or_else(|| format!("no column {name}"))?;
    let c = cast(c, &DataType::Utf8).map_err(|e| e.to_string())?;
    Ok(c.as_string::<i32>().clone())
}

fn opt(a: &datafusion::arrow::array::StringArray, r: usize) -> Option<String> {
    (!a.is_null(r)).then(|| a.value(r).to_string())
}

/// Counted, high-confidence hits of a `hits` file by organization.
fn causes_of(batches: &[RecordBatch]) -> Result<HashMap<String, Vec<Cause>>, String> {
    let mut out: HashMap<String, Vec<Cause>> = HashMap::new();
    for b in batches {
        let t = |n: &str| text_column(b, n).map_err(|e| format!("hits: {e}"));
        let (uscc, rule, feed, record, date, detail, conf, event, counted, red, points) = (
            t("uscc")?,
            t("rule_id")?,
            t("source_feed")?,
            t("source_record_id")?,
            t("event_date")?,
            t("detail")?,
            t("confidence")?,
            t("event")?,
            t("counted")?,
            t("red_line")?,
            t("points")?,
        );
        for r in 0..b.num_rows() {
            if counted.value(r) != "true" || conf.value(r) != "high" {
                continue;
            }
            out.entry(uscc.value(r).to_string())
                .or_default()
                .push(Cause {
                    rule_id: rule.value(r).to_string(),
                    event: event.value(r).to_string(),
                    red_line: red.value(r) == "true",
                    points: points.value(r).parse().unwrap_or(0),
                    source_feed: feed.value(r).to_string(),
                    source_record_id: record.value(r).to_string(),
                    event_date: date.value(r).parse().unwrap_or_default(),
                    detail: detail.value(r).to_string(),
                });
        }
    }
    Ok(out)
}

/// (rule, event) pairs of a `hits` file by organization.
fn events_of(
    batches: &[RecordBatch],
) -> Result<HashMap<String, HashSet<(String, String)>>, String> {
    let mut out: HashMap<String, HashSet<(String, String)>> = HashMap::new();
    for b in batches {
        let t = |n: &str| text_column(b, n).map_err(|e| format!("hits: {e}"));
        let (uscc, rule, event) = (t("uscc")?, t("rule_id")?, t("event")?);
        for r in 0..b.num_rows() {
            out.entry(uscc.value(r).to_string())
                .or_default()
                .insert((rule.value(r).to_string(), event.value(r).to_string()));
        }
    }
    Ok(out)
}

/// The warnings of a published version; none when it predates them.
pub async fn published_warnings(p: &crate::catalog::Published) -> Result<Vec<Warning>, String> {
    if !p.manifest.datasets.contains_key(DATASET) {
        return Ok(Vec::new());
    }
    let batches = p.read_batches(DATASET).await.map_err(|e| e.to_string())?;
    record::warnings_from(&batches).map_err(|e| format!("{}: {e}", p.path))
}

/// The stage: raises tonight's warnings, moves every earlier one a night
/// on, writes `warnings` beside scoring's datasets. Returns the summary
/// and the file written (relative).
pub async fn raise(input: WarningsInput<'_>) -> Result<(WarningsSummary, String), String> {
    let date = input.business_date;
    let config = WarningsConfig::load(&input.project.root, &input.pipeline.name)
        .map_err(|p| p.join("; "))?;
    if !config.calendar.covers(date.year()) {
        warn!(
            year = date.year(),
            "the working-day calendar (pipelines/warnings/calendar.toml) does not list this year; only weekends count as days off"
        );
    }
    let store = &input.store;
    let file = |rel: &str| crate::store::join(&input.prefix, rel);
    let output = |name: &str| {
        input
            .outputs
            .get(name)
            .ok_or_else(|| format!("scoring wrote no {name}"))
    };
    let hits_now = read_file(store, &file(output("hits")?)).await?;
    let causes_now = causes_of(&hits_now)?;
    let events_now = events_of(&hits_now)?;
    let profiles = read_file(store, &file(output("profiles")?)).await?;
    let changes = read_file(store, &file(output("changes")?)).await?;

    let previous = crate::catalog::Published::latest_before(store, &input.prefix, date)
        .await
        .map_err(|e| e.to_string())?;
    let (mut warnings, events_before) = match &previous {
        Some(p) => {
            let hits = p.read_batches("hits").await.map_err(|e| e.to_string())?;
            (published_warnings(p).await?, events_of(&hits)?)
        }
        None => (Vec::new(), HashMap::new()),
    };

    // Tonight's admissions: pull first, so what the platform serves now counts.
    let inbox = inbox::Inbox::new(Arc::clone(store), input.prefix.clone());
    let outbox = outbox(store, &input.prefix);
    let known: HashMap<String, Warning> = warnings
        .iter()
        .map(|w| (w.warning_id.clone(), w.clone()))
        .collect();
    match pull::pull(
        config.pull.as_ref(),
        &input.pipeline.name,
        &inbox,
        &known,
        input.vars,
        input.now,
    )
    .await
    {
        Ok(Some(p)) => info!(
            read = p.read,
            recorded = p.recorded,
            refused = p.refused,
            "dispositions pulled"
        ),
        Ok(None) => {}
        Err(e) => {
            warn!(error = %e, "pulling dispositions failed; what was recorded stays, the rest comes next run")
        }
    }
    let admitted = inbox.admit(date, &outbox).await?;

    let mut summary = WarningsSummary {
        admitted: admitted.tonight as u64,
        ..WarningsSummary::default()
    };
    let no_dispositions = Vec::new();
    for w in &mut warnings {
        let t = fold::Tonight {
            date,
            acknowledged_on: admitted
                .acknowledged
                .get(&(w.warning_id.clone(), w.round))
                .copied(),
            dispositions: admitted
                .dispositions
                .get(&w.warning_id)
                .unwrap_or(&no_dispositions),
            events_now: events_now.get(&w.uscc),
            config: &config,
        };
        let moved = fold::advance(w, &t);
        summary.applied += u64::from(moved.applied);
        if moved.reopened {
            summary.reopened += 1;
        }
        if let Some(why) = moved.refused {
            warn!(warning = %w.warning_id, why = %why, "a disposition the life cycle refuses waits; the ones after it are held");
        }
    }

    // Who everybody is tonight.
    let mut names: HashMap<String, (String, Option<String>)> = HashMap::new();
    for b in &profiles {
        let (u, n, c) = (
            text_column(b, "uscc")?,
            text_column(b, "name")?,
            text_column(b, "colour")?,
        );
        for r in 0..b.num_rows() {
            names.insert(u.value(r).to_string(), (n.value(r).to_string(), opt(&c, r)));
        }
    }
    let mut before: HashMap<String, Option<String>> = HashMap::new();
    for b in &changes {
        let (u, p) = (text_column(b, "uscc")?, text_column(b, "previous_colour")?);
        for r in 0..b.num_rows() {
            before.insert(u.value(r).to_string(), opt(&p, r));
        }
    }
    let units = registry_units(store, &input.prefix, input.registry).await?;
    let existing: HashSet<String> = warnings.iter().map(|w| w.warning_id.clone()).collect();
    let empty = HashSet::new();
    let mut uscc_order: Vec<&String> = names.keys().collect();
    uscc_order.sort();
    for uscc in uscc_order {
        let (name, after) = &names[uscc];
        // A first version knows no colour before; otherwise `changes` says
        // what it was, and an organization not in it kept its colour.
        let b = match (&previous, before.get(uscc)) {
            (None, _) => None,
            (Some(_), Some(was)) => was.clone(),
            (Some(_), None) => after.clone(),
        };
        let hits = causes_now.get(uscc).map_or(&[][..], Vec::as_slice);
        let Some(causes) = fold::raise_for(
            b.as_deref(),
            after.as_deref(),
            hits,
            events_before.get(uscc).unwrap_or(&empty),
        ) else {
            continue;
        };
        let id = fold::warning_id(uscc, &causes);
        if existing.contains(&id) {
            continue;
        }
        let (responsible, unit) =
            responsible_unit(input.project, &config, &causes, units.get(uscc));
        let mut w = Warning {
            warning_id: id,
            uscc: uscc.clone(),
            name: name.clone(),
            raised_on: date,
            round: 1,
            state: State::Generated,
            colour_before: b,
            colour_after: after.clone(),
            causes,
            responsible,
            responsible_unit: unit,
            handling_unit: None,
            pushed_on: None,
            waiting_since: None,
            signed_on: None,
            rectify_by: None,
            completed_on: None,
            ended_on: None,
            reopened_on: None,
            last_sequence: 0,
            held: Vec::new(),
            held_since: None,
            result_code: None,
            data_error_feed: None,
            sign_due: None,
            overdue: None,
            overdue_working_days: 0,
            urges: 0,
            sequence_gap: false,
        };
        // Dispositions of a warning cannot come before it exists, but a
        // re-run of its night may find some admitted already.
        let t = fold::Tonight {
            date,
            acknowledged_on: None,
            dispositions: &no_dispositions,
            events_now: None,
            config: &config,
        };
        fold::advance(&mut w, &t);
        warnings.push(w);
        summary.raised += 1;
    }
    warnings.sort_by(|a, b| a.warning_id.cmp(&b.warning_id));
    summary.total = warnings.len() as u64;
    for w in &warnings {
        *summary
            .by_state
            .entry(w.state.as_str().to_string())
            .or_default() += 1;
        if let Some(kind) = &w.overdue {
            summary
                .overdue
                .push((w.warning_id.clone(), kind.clone(), w.overdue_working_days));
        }
        summary.sequence_gaps += u64::from(w.sequence_gap);
    }
    summary
        .overdue
        .sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
    let batch = record::warnings_batch(&warnings, date)?;
    let path = crate::score::write_dataset(
        store,
        &input.prefix,
        DATASET,
        date,
        input.run_id,
        record::warnings_schema(),
        &[batch],
    )
    .await?;
    info!(
        total = summary.total,
        raised = summary.raised,
        reopened = summary.reopened,
        applied = summary.applied,
        overdue = summary.overdue.len(),
        "warnings"
    );
    Ok((summary, crate::store::relative(&input.prefix, &path)))
}

/// Registrar and supervising unit of every registered organization.
async fn registry_units(
    store: &Arc<dyn ObjectStore>,
    prefix: &Path,
    registry: Option<&str>,
) -> Result<HashMap<String, (String, String)>, String> {
    let mut out = HashMap::new();
    let Some(rel) = registry else {
        return Ok(out);
    };
    for b in read_file(store, &crate::store::join(prefix, rel)).await? {
        let (u, reg, sup) = (
            text_column(&b, "uscc")?,
            text_column(&b, "registrar")?,
            text_column(&b, "supervisor")?,
        );
        for r in 0..b.num_rows() {
            if u.is_null(r) {
                continue;
            }
            out.insert(
                u.value(r).to_string(),
                (
                    opt(&reg, r).unwrap_or_default(),
                    opt(&sup, r).unwrap_or_default(),
                ),
            );
        }
    }
    Ok(out)
}

/// Who handles a warning and the unit's name, from its main cause.
fn responsible_unit(
    project: &Project,
    config: &WarningsConfig,
    causes: &[Cause],
    units: Option<&(String, String)>,
) -> (String, String) {
    let (registrar, supervisor) = units.cloned().unwrap_or_default();
    let registrar = if registrar.trim().is_empty() {
        "登记管理机关".to_string()
    } else {
        registrar
    };
    let Some(main) = fold::main_cause(causes) else {
        return ("registrar".into(), registrar);
    };
    match config.responsible(&main.rule_id, &main.source_feed) {
        config::Responsible::Registrar => ("registrar".into(), registrar),
        config::Responsible::Supervisor if !supervisor.trim().is_empty() => {
            ("supervisor".into(), supervisor)
        }
        config::Responsible::Supervisor => ("registrar".into(), registrar),
        config::Responsible::Feed => {
            let unit = config
                .departments
                .get(&main.source_feed)
                .cloned()
                .or_else(|| {
                    project
                        .sources
                        .get(&main.source_feed)
                        .map(|s| s.department.clone())
                        .filter(|d| !d.trim().is_empty())
                })
                .unwrap_or_else(|| main.source_feed.clone());
            ("feed".into(), unit)
        }
    }
}

/// The push record of a warning (`push.schema.json`, kind `warnings`).
fn push_record(w: &Warning) -> serde_json::Value {
    json!({
        "warning_id": w.warning_id,
        "round": w.round,
        "uscc": w.uscc,
        "name": w.name,
        "raised_on": w.raised_on.to_string(),
        "reopened_on": w.reopened_on.map(|d| d.to_string()),
        "colour_before": w.colour_before,
        "colour_after": w.colour_after,
        "responsible": w.responsible,
        "responsible_unit": w.responsible_unit,
        "next_sequence": w.last_sequence + 1,
        "causes": w.causes.iter().map(|c| json!({
            "rule_id": c.rule_id,
            "red_line": c.red_line,
            "points": c.points,
            "source_feed": c.source_feed,
            "source_record_id": c.source_record_id,
            "event_date": c.event_date.to_string(),
            "detail": c.detail,
        })).collect::<Vec<_>>(),
    })
}

/// Queues tonight's new and reopened warnings of a verified version in the
/// warnings outbox (kind `warnings`), noting which warnings each batch
/// carries so that its acknowledgement moves them to `pushed`.
pub async fn queue_push(
    outbox: &crate::deliver::Outbox,
    published: &crate::catalog::Published,
    batch_size: u32,
    queued_by: &str,
    now: DateTime<Utc>,
) -> Result<Queued, String> {
    let m = &published.manifest;
    let date = m.business_date;
    let tonight: Vec<Warning> = published_warnings(published)
        .await?
        .into_iter()
        .filter(|w| {
            w.state == State::Generated
                && (w.raised_on == date && w.round == 1 || w.reopened_on == Some(date))
        })
        .collect();
    let size = batch_size.max(1) as usize;
    let batches = tonight.len().div_ceil(size) as u32;
    let inbox = inbox::Inbox::new(Arc::clone(published.store()), published.prefix().clone());
    let mut queued = Queued {
        batches,
        rows: tonight.len() as u64,
        ..Queued::default()
    };
    for (i, chunk) in tonight.chunks(size).enumerate() {
        let batch = i as u32 + 1;
        let body = json!({
            "format": crate::deliver::PUSH_FORMAT,
            "kind": PUSH_KIND,
            "pipeline": m.pipeline,
            "business_date": date.to_string(),
            "rules_version": m.rules_version,
            "batch": batch,
            "batches": batches,
            "records": chunk.iter().map(push_record).collect::<Vec<_>>(),
        });
        let body = serde_json::to_string(&body).map_err(|e| e.to_string())?;
        let digest = crate::digest::hex(&Sha256::digest(body.as_bytes()));
        let key = format!(
            "{}-{}-{PUSH_KIND}-{batch:05}-{}",
            m.pipeline,
            date.format("%Y%m%d"),
            &digest[..16]
        );
        // Noted before it can be sent: an acknowledgement always finds it.
        inbox
            .note_sent(&inbox::SentBatch {
                key: key.clone(),
                business_date: date,
                warnings: chunk
                    .iter()
                    .map(|w| (w.warning_id.clone(), w.round))
                    .collect(),
            })
            .await?;
        let b = crate::deliver::OutboxBatch {
            key,
            pipeline: m.pipeline.clone(),
            run_id: queued_by.to_string(),
            business_date: date,
            kind: PUSH_KIND.to_string(),
            batch,
            batches,
            rows: chunk.len() as u64,
            body,
            queued_at: now,
        };
        match outbox.enqueue(&b).await.map_err(|e| e.to_string())? {
            crate::deliver::Queued::New => queued.queued += 1,
            crate::deliver::Queued::AlreadyAcknowledged => queued.already_acknowledged += 1,
            crate::deliver::Queued::AlreadyPending | crate::deliver::Queued::AlreadyParked => {}
        }
    }
    Ok(queued)
}
