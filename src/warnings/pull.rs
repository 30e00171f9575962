//! The `dispositions` source: the platform's paged API of dispositions,
//! read by the `http` source kind like any feed's API (page-number paging,
//! bearer auth from the environment, retries with backoff, the since
//! watermark), each record judged and recorded exactly as one pushed to
//! the intake. The watermark (`warnings/pull/watermark.json`) advances
//! only when every record read was recorded or refused; the pages as
//! received are kept under `warnings/pull/raw/`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use object_store::ObjectStoreExt;
use serde::{Deserialize, Serialize};

use super::config::PullConfig;
use super::inbox::Inbox;
use super::intake::{Verdict, judge};
use super::record::{Disposition, Warning};
use crate::project::{Auth, HttpBody, HttpSource, Pagination, Source, SourceKind};
use crate::source::{FetchOptions, PayloadSink, PayloadWriter, RawBatch};

/// The fields a disposition record carries.
pub const FIELDS: [&str; 12] = [
    "warning_id",
    "sequence",
    "uscc",
    "state",
    "time",
    "handling_unit",
    "handler",
    "result_code",
    "result_text",
    "rectify_by",
    "completed_on",
    "data_error",
];

/// What one pull did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PullSummary {
    /// Records read.
    pub read: u64,
    /// Recorded now (held ones included).
    pub recorded: u64,
    /// Recorded before.
    pub duplicates: u64,
    /// Refused and parked.
    pub refused: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Watermark {
    watermark: Option<String>,
}

/// The `http` source the pull reads.
pub fn source(config: &PullConfig) -> Source {
    Source {
        feed: "dispositions".into(),
        schema: "dispositions".into(),
        description: "Dispositions of warnings (公权力大数据监督平台)".into(),
        department: "公权力大数据监督平台".into(),
        required: false,
        max_age_days: 1,
        kind: SourceKind::Http(Box::new(HttpSource {
            url: config.url.clone(),
            body: HttpBody::Pages {
                records: config.records.clone(),
                pagination: Pagination::PageNumber {
                    page_param: "page".into(),
                    size_param: "size".into(),
                    page_size: config.page_size.max(1),
                    first_page: 1,
                },
            },
            auth: config
                .token_env
                .clone()
                .map(|token_env| Auth::Bearer { token_env }),
            total: None,
            since_param: Some(config.since_param.clone()),
            requests_per_second: 20.0,
            concurrency: 1,
            timeout_seconds: config.timeout_seconds,
            max_retries: config.max_retries,
            retry_base_ms: config.retry_base_ms,
            retry_budget_seconds: 120,
            max_response_bytes: 16 << 20,
            max_run_bytes: 1 << 30,
            allow_redirect_origins: Vec::new(),
            success: None,
            total_may_fall_short: true,
        })),
        // The pull keeps its own record of what it read (not a snapshot).
        merge: crate::project::Merge::Append,
        key_fields: vec!["uscc".into()],
        name_field: None,
        record_id: vec!["warning_id".into(), "sequence".into()],
        columns: BTreeMap::new(),
        guards: Default::default(),
        parts: Vec::new(),
    }
}

/// A page as received: its name and bytes.
type KeptPage = (String, Vec<u8>);

/// Pages kept in memory, written to the warehouse after the fetch.
#[derive(Clone, Default)]
struct Pages(Arc<Mutex<Vec<KeptPage>>>);

struct Page {
    name: String,
    bytes: Vec<u8>,
    into: Pages,
}

impl std::io::Write for Page {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl PayloadWriter for Page {
    fn finish(self: Box<Self>) -> Result<(), String> {
        let Page { name, bytes, into } = *self;
        into.0
            .lock()
            .map_err(|_| "page buffer poisoned".to_string())?
            .push((name, bytes));
        Ok(())
    }
}

impl PayloadSink for Pages {
    fn open(&mut self, name: &str, _compressed: bool) -> Result<Box<dyn PayloadWriter>, String> {
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        Ok(Box::new(Page {
            name: safe,
            bytes: Vec::new(),
            into: self.clone(),
        }))
    }
}

/// One raw record as a disposition, or what is wrong with it (naming the
/// record's position and field).
pub fn disposition_of(
    fields: &[String],
    values: &[Option<String>],
    position: &str,
) -> Result<Disposition, String> {
    let get = |f: &str| -> Option<&str> {
        fields
            .iter()
            .position(|x| x == f)
            .and_then(|i| values.get(i))
            .and_then(|v| v.as_deref())
            .filter(|v| !v.is_empty())
    };
    let need = |f: &str| get(f).ok_or_else(|| format!("{position}: {f}: missing"));
    let date = |f: &str| -> Result<Option<chrono::NaiveDate>, String> {
        get(f)
            .map(|v| {
                chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
                    .map_err(|_| format!("{position}: {f}: expected YYYY-MM-DD, found {v:?}"))
            })
            .transpose()
    };
    let sequence = need("sequence")?;
    let time = need("time")?;
    Ok(Disposition {
        warning_id: need("warning_id")?.to_string(),
        sequence: sequence.parse().map_err(|_| {
            format!("{position}: sequence: expected a whole number, found {sequence:?}")
        })?,
        uscc: need("uscc")?.to_string(),
        state: need("state")?.to_string(),
        time: DateTime::parse_from_rfc3339(time)
            .map_err(|_| format!("{position}: time: expected an RFC 3339 time, found {time:?}"))?
            .with_timezone(&Utc),
        handling_unit: need("handling_unit")?.to_string(),
        handler: get("handler").map(str::to_string),
        result_code: get("result_code").map(str::to_string),
        result_text: get("result_text").map(str::to_string),
        rectify_by: date("rectify_by")?,
        completed_on: date("completed_on")?,
        data_error: get("data_error") == Some("true"),
    })
}

/// Reads what the platform's API serves since the watermark and records
/// it. `None` when no pull is configured (or its URL is empty).
pub async fn pull(
    config: Option<&PullConfig>,
    pipeline: &str,
    inbox: &Inbox,
    known: &HashMap<String, Warning>,
    vars: &BTreeMap<String, String>,
    now: DateTime<Utc>,
) -> Result<Option<PullSummary>, String> {
    let Some(pull) = config else {
        return Ok(None);
    };
    let lookup = |n: &str| vars.get(n).cloned().or_else(|| std::env::var(n).ok());
    let url = crate::project::expand_env(&pull.url, lookup)
        .map_err(|e| format!("pipelines/warnings/{pipeline}.toml: pull.url: {e}"))?;
    if url.trim().is_empty() {
        return Ok(None);
    }
    pull_from(&source(pull), inbox, known, vars, now)
        .await
        .map(Some)
}

/// Reads one `http` source of dispositions into the inbox.
pub async fn pull_from(
    source: &Source,
    inbox: &Inbox,
    known: &HashMap<String, Warning>,
    vars: &BTreeMap<String, String>,
    now: DateTime<Utc>,
) -> Result<PullSummary, String> {
    let (store, prefix) = inbox.parts();
    let mark_path = crate::store::join(&prefix, crate::layout::warnings::PULL_WATERMARK);
    let mark: Watermark = match store.get(&mark_path).await {
        Ok(r) => {
            let bytes = r.bytes().await.map_err(|e| format!("{mark_path}: {e}"))?;
            serde_json::from_slice(&bytes).map_err(|e| format!("{mark_path}: not readable: {e}"))?
        }
        Err(object_store::Error::NotFound { .. }) => Watermark::default(),
        Err(e) => return Err(format!("{mark_path}: {e}")),
    };
    let options = FetchOptions {
        watermark: mark.watermark.clone(),
        vars: vars.clone(),
        ..FetchOptions::default()
    };
    let fields: Vec<String> = FIELDS.iter().map(|f| f.to_string()).collect();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<RawBatch>(4);
    let pages = Pages::default();
    let fetch = crate::source::fetch(source, fields, &options, tx, Box::new(pages.clone()));
    let collect = async {
        let mut batches = Vec::new();
        while let Some(b) = rx.recv().await {
            batches.push(b);
        }
        batches
    };
    let (report, batches) = tokio::join!(fetch, collect);
    let report = report.map_err(|e| format!("dispositions: {e}"))?;
    let taken = pages
        .0
        .lock()
        .map(|mut p| std::mem::take(&mut *p))
        .unwrap_or_default();
    for (name, bytes) in taken {
        let path = crate::store::join(
            &prefix,
            &crate::layout::warnings::pulled_page(&now.format("%Y%m%dT%H%M%SZ").to_string(), &name),
        );
        store
            .put(&path, bytes.into())
            .await
            .map_err(|e| format!("{path}: {e}"))?;
    }
    let mut summary = PullSummary::default();
    for b in &batches {
        for row in &b.rows {
            summary.read += 1;
            let parsed = match &row.malformed {
                Some(why) => Err(format!("{}: {why}", row.position)),
                None => disposition_of(&b.fields, &row.values, &row.position),
            };
            let d = match parsed {
                Ok(d) => d,
                Err(reason) => {
                    inbox
                        .park(&super::inbox::DeadDisposition {
                            reason,
                            via: "pull".into(),
                            idempotency_key: None,
                            received: row.original.chars().take(65536).collect(),
                            refused_at: now,
                        })
                        .await?;
                    summary.refused += 1;
                    continue;
                }
            };
            match judge(inbox, known, &d, "pull", None, now).await? {
                Verdict::Recorded { .. } => summary.recorded += 1,
                Verdict::Duplicate { .. } => summary.duplicates += 1,
                Verdict::Refused { .. } => summary.refused += 1,
            }
        }
    }
    if !report.unchanged && report.watermark.is_some() {
        let body = serde_json::to_vec_pretty(&Watermark {
            watermark: report.watermark,
        })
        .map_err(|e| e.to_string())?;
        store
            .put(&mark_path, body.into())
            .await
            .map_err(|e| format!("{mark_path}: {e}"))?;
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Vec<String> {
        FIELDS.iter().map(|f| f.to_string()).collect()
    }

    fn values(pairs: &[(&str, &str)]) -> Vec<Option<String>> {
        FIELDS
            .iter()
            .map(|f| {
                pairs
                    .iter()
                    .find(|(k, _)| k == f)
                    .map(|(_, v)| v.to_string())
            })
            .collect()
    }

    #[test]
    fn a_record_reads_as_a_disposition_or_names_its_field() {
        let ok = values(&[
            ("warning_id", "YJ-1"),
            ("sequence", "2"),
            ("uscc", "U"),
            ("state", "rectifying"),
            ("time", "2026-11-03T10:00:00+08:00"),
            ("handling_unit", "民政局"),
            ("rectify_by", "2026-11-20"),
            ("data_error", "false"),
        ]);
        let d = disposition_of(&fields(), &ok, "page 1 #0").expect("disposition");
        assert_eq!((d.sequence, d.state.as_str()), (2, "rectifying"));
        assert_eq!(d.day().to_string(), "2026-11-03");
        assert_eq!(
            d.rectify_by.map(|d| d.to_string()).as_deref(),
            Some("2026-11-20")
        );
        let mut bad = ok.clone();
        bad[1] = Some("two".into());
        let e = disposition_of(&fields(), &bad, "page 1 #0").expect_err("bad sequence");
        assert_eq!(
            e,
            "page 1 #0: sequence: expected a whole number, found \"two\""
        );
        let mut bad = ok.clone();
        bad[4] = Some("yesterday".into());
        let e = disposition_of(&fields(), &bad, "page 2 #5").expect_err("bad time");
        assert!(
            e.starts_with("page 2 #5: time: expected an RFC 3339 time"),
            "{e}"
        );
        let mut bad = ok;
        bad[0] = None;
        let e = disposition_of(&fields(), &bad, "page 1 #3").expect_err("missing id");
        assert_eq!(e, "page 1 #3: warning_id: missing");
    }
}
