//! Stage 2, LAND: what a run fetched, written once and never rewritten.
//!
//! Layout in the warehouse (relative to its URL):
//!
//! ```text
//! landing/<feed>/dt=<business_date>/run=<run_id>/data.parquet     canonical rows (the snapshot)
//! landing/<feed>/dt=<business_date>/run=<run_id>/delivery.parquet what a merging feed's delivery landed
//! landing/<feed>/dt=<business_date>/run=<run_id>/raw/<payload>.gz  raw payloads, compressed
//! quarantine/<feed>/dt=<business_date>/run=<run_id>/quarantine.parquet
//! ```
//!
//! Parquet is written with bounded row groups through multipart uploads, so
//! memory does not grow with the feed.

use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use flate2::Compression;
use flate2::write::GzEncoder;
use object_store::ObjectStore;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use parquet::arrow::AsyncArrowWriter;
use parquet::basic::Compression as ParquetCompression;
use parquet::file::properties::WriterProperties;
use tokio_util::io::SyncIoBridge;

use crate::source::{PayloadSink, PayloadWriter};
use crate::validate::Quarantined;

/// Rows per Parquet row group: bounds the writer's buffer.
const ROW_GROUP_ROWS: usize = 65_536;

/// Where one feed of one run lands.
#[derive(Debug, Clone)]
pub struct LandingPaths {
    /// `landing/<feed>/dt=<date>/run=<run>`.
    pub dir: Path,
    /// `quarantine/<feed>/dt=<date>/run=<run>`.
    pub quarantine_dir: Path,
}

impl LandingPaths {
    /// The paths of `feed` for a run under the warehouse prefix.
    pub fn new(prefix: &Path, feed: &str, date: NaiveDate, run_id: &str) -> Self {
        Self {
            dir: crate::store::join(prefix, &crate::layout::landing_dir(feed, date, run_id)),
            quarantine_dir: crate::store::join(
                prefix,
                &crate::layout::quarantine_dir(feed, date, run_id),
            ),
        }
    }

    /// The canonical data file.
    pub fn data(&self) -> Path {
        self.dir.clone().join(crate::layout::LANDED_DATA)
    }

    /// A merging feed's delivery, merged into [`LandingPaths::data`].
    pub fn delivery(&self) -> Path {
        self.dir.clone().join(crate::layout::DELIVERED_DATA)
    }

    /// The quarantine file.
    pub fn quarantine(&self) -> Path {
        self.quarantine_dir
            .clone()
            .join(crate::layout::QUARANTINE_FILE)
    }
}

/// Writer properties with bounded row groups: what every Parquet writer of
/// the pipeline uses, so a writer's buffer does not grow with the feed.
pub fn bounded_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(ParquetCompression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build()
}

/// A Parquet writer streaming to an object-store path.
pub type ParquetOut = AsyncArrowWriter<BufWriter>;

/// Opens a Parquet writer streaming to `path` (multipart when large).
pub fn parquet_writer(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    schema: SchemaRef,
) -> Result<ParquetOut, parquet::errors::ParquetError> {
    let out = BufWriter::new(Arc::clone(store), path.clone());
    AsyncArrowWriter::try_new(out, schema, Some(bounded_properties()))
}

/// The schema of quarantine files.
pub fn quarantine_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("feed", DataType::Utf8, false),
        Field::new("position", DataType::Utf8, false),
        Field::new("field", DataType::Utf8, false),
        Field::new("reason_code", DataType::Utf8, false),
        Field::new("message", DataType::Utf8, false),
        Field::new("original", DataType::Utf8, false),
    ]))
}

/// Quarantined rows as a batch of [`quarantine_schema`].
pub fn quarantine_batch(
    feed: &str,
    rows: &[Quarantined],
) -> Result<RecordBatch, datafusion::arrow::error::ArrowError> {
    let col = |f: &dyn Fn(&Quarantined) -> &str| -> ArrayRef {
        Arc::new(StringArray::from(rows.iter().map(f).collect::<Vec<_>>()))
    };
    RecordBatch::try_new(
        quarantine_schema(),
        vec![
            Arc::new(StringArray::from(vec![feed; rows.len()])),
            col(&|q| q.position.as_str()),
            col(&|q| q.field.as_str()),
            col(&|q| q.reason.code()),
            col(&|q| q.message.as_str()),
            col(&|q| q.original.as_str()),
        ],
    )
}

/// Writes raw payloads under `<landing dir>/raw/`, gzip-compressed.
pub struct RawPayloads {
    store: Arc<dyn ObjectStore>,
    dir: Path,
}

impl RawPayloads {
    /// Payloads of one feed of one run.
    pub fn new(store: Arc<dyn ObjectStore>, landing: &LandingPaths) -> Self {
        Self {
            store,
            dir: landing.dir.clone().join("raw"),
        }
    }

    /// Payloads of one part of a feed delivered in several parts, each
    /// part's under its own name (`raw/<part>/…`).
    pub fn for_part(store: Arc<dyn ObjectStore>, landing: &LandingPaths, part: &str) -> Self {
        Self {
            store,
            dir: landing.dir.clone().join("raw").join(part),
        }
    }
}

// One per payload, short-lived: the size difference does not matter.
#[allow(clippy::large_enum_variant)]
enum PayloadOut {
    Gzip(GzEncoder<SyncIoBridge<BufWriter>>),
    AsIs(SyncIoBridge<BufWriter>),
}

impl std::io::Write for PayloadOut {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            PayloadOut::Gzip(w) => w.write(buf),
            PayloadOut::AsIs(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            PayloadOut::Gzip(w) => w.flush(),
            PayloadOut::AsIs(w) => w.flush(),
        }
    }
}

impl PayloadWriter for PayloadOut {
    fn finish(self: Box<Self>) -> Result<(), String> {
        let mut bridge = match *self {
            PayloadOut::Gzip(w) => w.finish().map_err(|e| e.to_string())?,
            PayloadOut::AsIs(w) => w,
        };
        std::io::Write::flush(&mut bridge).map_err(|e| e.to_string())?;
        bridge.shutdown().map_err(|e| e.to_string())
    }
}

impl PayloadSink for RawPayloads {
    fn open(&mut self, name: &str, compressed: bool) -> Result<Box<dyn PayloadWriter>, String> {
        // Payload names come from listings and pages: keep one safe segment.
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
        let file = if compressed || safe.ends_with(".gz") {
            safe
        } else {
            format!("{safe}.gz")
        };
        let writer = BufWriter::new(
            Arc::clone(&self.store),
            self.dir.clone().join(file.as_str()),
        );
        let bridge = SyncIoBridge::new(writer);
        Ok(Box::new(if compressed {
            PayloadOut::AsIs(bridge)
        } else {
            PayloadOut::Gzip(GzEncoder::new(bridge, Compression::fast()))
        }))
    }
}
