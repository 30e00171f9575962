//! Stage 1, FETCH: read a feed's records from where its source file says,
//! as raw text fields, in batches of bounded size.
//!
//! Every source kind lives in one file here and implements the same
//! contract ([`fetch`] dispatches on the tagged enum of the configuration):
//! it sends [`RawBatch`]es into a bounded channel, so memory is bounded by
//! the batch size and not by the feed, and it hands every raw payload to a
//! [`PayloadSink`] so the landing stage can keep it, compressed, beside the
//! canonical data. Records carry their position (file and line, page and
//! index, …) so that every later error names the record.

pub mod formats;
pub mod http;
pub(crate) mod json_stream;
pub mod object_store;
mod records;

use std::collections::{BTreeMap, BTreeSet};

use tokio::sync::mpsc;

use crate::project::{Source, SourceKind};

/// Rows per raw batch.
pub const BATCH_ROWS: usize = 8192;

/// One raw record: the fields the mapping reads, as text, and the record
/// as delivered for the quarantine.
#[derive(Debug, Clone, PartialEq)]
pub struct RawRow {
    /// Where the record is: `file:line`, `file#index`, `page N #index`.
    pub position: String,
    /// Values of [`RawBatch::fields`], `None` when the record lacks the field
    /// or holds JSON null.
    pub values: Vec<Option<String>>,
    /// The record as delivered (a CSV row as a JSON object, a JSON record as
    /// its text), kept for quarantine and duplicate detection.
    pub original: String,
    /// Why the record cannot be read field by field (not a JSON object, a
    /// CSV row with the wrong number of fields, bytes that are not text).
    pub malformed: Option<String>,
}

/// A batch of raw records over one list of fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawBatch {
    /// The raw fields the mapping reads, in a fixed order.
    pub fields: Vec<String>,
    /// The records.
    pub rows: Vec<RawRow>,
}

/// What a source noticed about the shape of the data (schema drift).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Drift {
    /// Mapped fields no record (or no header) carried.
    pub missing_fields: BTreeSet<String>,
    /// Fields delivered that the mapping does not read (at most 50 kept).
    pub unmapped_fields: BTreeSet<String>,
}

impl Drift {
    pub(crate) fn note_unmapped(&mut self, field: &str) {
        if self.unmapped_fields.len() < 50 && !self.unmapped_fields.contains(field) {
            self.unmapped_fields.insert(field.to_string());
        }
    }
}

/// What a fetch delivered besides the rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FetchReport {
    /// Files or pages read.
    pub units: u64,
    /// Raw bytes read (before decompression).
    pub bytes: u64,
    /// The count the source declared, when it declares one.
    pub declared_count: Option<u64>,
    /// Shape differences against the mapping.
    pub drift: Drift,
    /// The watermark to store if this fetch lands (an ETag, a timestamp).
    pub watermark: Option<String>,
    /// The source said nothing changed since the last watermark.
    pub unchanged: bool,
    /// Requests retried.
    pub retries: u64,
    /// Things worth an operator's eye that did not stop the fetch.
    pub notes: Vec<String>,
    /// The objects an object-store source listed, in order.
    pub objects: Vec<ListedObject>,
}

/// One object as a listing described it: what tells an unchanged delivery.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ListedObject {
    /// Its path in the store.
    pub location: String,
    /// Its size in bytes.
    pub size: u64,
    /// The store's ETag, when it gives one.
    pub e_tag: Option<String>,
    /// When it was last written.
    pub last_modified: chrono::DateTime<chrono::Utc>,
}

/// Why a fetch failed. Each variant names the feed and where it failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The source's location could not be opened or listed.
    #[error("feed {feed}: cannot open {url}: {message}")]
    Open {
        /// Feed.
        feed: String,
        /// The URL, each expanded variable shown as its `${NAME}`.
        url: String,
        /// Cause.
        message: String,
    },
    /// A payload could not be read or parsed.
    #[error("feed {feed}: {position}: {message}")]
    Payload {
        /// Feed.
        feed: String,
        /// File and line, page …
        position: String,
        /// Cause.
        message: String,
    },
    /// The source kept failing until the retries ran out.
    #[error("feed {feed}: {position}: {message} after {retries} retries")]
    Exhausted {
        /// Feed.
        feed: String,
        /// Where.
        position: String,
        /// The last failure.
        message: String,
        /// Retries made.
        retries: u64,
    },
    /// A configured limit was exceeded.
    #[error("feed {feed}: {position}: {message}")]
    Limit {
        /// Feed.
        feed: String,
        /// Where.
        position: String,
        /// Which limit.
        message: String,
    },
    /// The consumer stopped (the run is shutting down).
    #[error("feed {feed}: stopped")]
    Stopped {
        /// Feed.
        feed: String,
    },
}

/// A writer for one raw payload; `finish` completes the upload.
pub trait PayloadWriter: std::io::Write + Send {
    /// Flushes and completes the payload; errors name the cause.
    fn finish(self: Box<Self>) -> Result<(), String>;
}

/// Opens a writer for every raw payload (a file, a page) as it is fetched.
pub trait PayloadSink: Send {
    /// A writer for payload `name`; `compressed` says the bytes are gzip
    /// already (otherwise the sink compresses them).
    fn open(&mut self, name: &str, compressed: bool) -> Result<Box<dyn PayloadWriter>, String>;
}

/// The raw fields a source's mapping reads: key, name, record id and every
/// field mapping, plus the columns SQL mappings reference.
pub fn wanted_fields(source: &Source, sql_columns: &BTreeSet<String>) -> Vec<String> {
    let mut fields: Vec<String> = Vec::new();
    let mut add = |f: &str| {
        if !f.is_empty() && !fields.iter().any(|x| x == f) {
            fields.push(f.to_string());
        }
    };
    for k in &source.key_fields {
        add(k);
    }
    if let Some(n) = &source.name_field {
        add(n);
    }
    for r in &source.record_id {
        add(r);
    }
    for m in source.columns.values() {
        if let crate::project::ColumnMapping::Field { field, .. } = m {
            add(field);
        }
    }
    for c in sql_columns {
        add(c);
    }
    fields
}

/// Options every source honours.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// The watermark of the last good fetch.
    pub watermark: Option<String>,
    /// Largest single payload accepted.
    pub max_payload_bytes: u64,
    /// Variables for `${NAME}` in URLs, consulted before the environment.
    pub vars: BTreeMap<String, String>,
    /// The objects the last good delivery listed: an object-store source
    /// listing exactly these reports `unchanged` and reads nothing.
    pub previous_objects: Option<Vec<ListedObject>>,
}

impl FetchOptions {
    /// Looks a URL variable up: the run's variables, then the environment.
    pub fn var(&self, name: &str) -> Option<String> {
        self.vars
            .get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok())
    }
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self {
            watermark: None,
            max_payload_bytes: 16 << 30,
            vars: BTreeMap::new(),
            previous_objects: None,
        }
    }
}

/// Fetches a feed: sends its records in batches to `tx`, its payloads to
/// `sink`, and returns what it saw.
pub async fn fetch(
    source: &Source,
    fields: Vec<String>,
    options: &FetchOptions,
    tx: mpsc::Sender<RawBatch>,
    sink: Box<dyn PayloadSink>,
) -> Result<FetchReport, FetchError> {
    // What a `${NAME}` of the URL expanded to is shown as `${NAME}` in
    // every error and note: the expansion is for use only.
    let template = match &source.kind {
        SourceKind::ObjectStore { url, .. } => url,
        SourceKind::Http(http) => &http.url,
    };
    let redactor = crate::project::Redactor::new(template, |n| options.var(n));
    let fetched = match &source.kind {
        SourceKind::ObjectStore { url, format, gzip } => {
            object_store::fetch(source, url, format, *gzip, fields, options, tx, sink).await
        }
        SourceKind::Http(http) => http::fetch(source, http, fields, options, tx, sink).await,
    };
    match fetched {
        Ok(mut report) => {
            for note in &mut report.notes {
                *note = redactor.apply(note);
            }
            Ok(report)
        }
        Err(e) => Err(e.redacted(&redactor)),
    }
}

/// Bytes a source will deliver, as far as a listing tells (object stores;
/// gzip counted as five times its size): a hint for the order in which
/// feeds start. `None` for HTTP sources or when nothing can be listed.
pub async fn estimated_bytes(source: &Source, vars: &BTreeMap<String, String>) -> Option<u64> {
    let SourceKind::ObjectStore { url, gzip, .. } = &source.kind else {
        return None;
    };
    object_store::estimated_bytes(url, *gzip, vars).await
}

impl FetchError {
    /// The error with every expansion of the source URL's variables shown
    /// as its `${NAME}`.
    pub fn redacted(self, r: &crate::project::Redactor) -> Self {
        match self {
            FetchError::Open { feed, url, message } => FetchError::Open {
                feed,
                url: r.apply(&url),
                message: r.apply(&message),
            },
            FetchError::Payload {
                feed,
                position,
                message,
            } => FetchError::Payload {
                feed,
                position: r.apply(&position),
                message: r.apply(&message),
            },
            FetchError::Exhausted {
                feed,
                position,
                message,
                retries,
            } => FetchError::Exhausted {
                feed,
                position: r.apply(&position),
                message: r.apply(&message),
                retries,
            },
            FetchError::Limit {
                feed,
                position,
                message,
            } => FetchError::Limit {
                feed,
                position: r.apply(&position),
                message: r.apply(&message),
            },
            other => other,
        }
    }

    /// Retries made before the source was given up (0 unless exhausted).
    pub fn retries(&self) -> u64 {
        match self {
            FetchError::Exhausted { retries, .. } => *retries,
            _ => 0,
        }
    }
}
