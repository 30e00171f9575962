//! The file formats a feed arrives in: CSV (UTF-8 or GB18030, with or
//! without a BOM), NDJSON, a JSON document with a pointer to its records,
//! Excel workbooks and Parquet. Readers take a file's bytes from any
//! transport, copy them to the payload for landing as they go, and send
//! records in bounded batches; no text file is held in memory whole (a
//! workbook is: a zip is read from its end, within the payload limit).

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;
use tokio::sync::mpsc;

use super::json_stream::{Element, RECORD_DEPTH, for_each_at_pointer};
use super::records::{Presence, malformed_row, row_from_json_line, row_from_object};
use super::{BATCH_ROWS, Drift, FetchError, PayloadWriter, RawBatch, RawRow};
use crate::project::{FileFormat, TextEncoding};

/// A file's bytes as they arrive from a transport (an object store's
/// stream, an HTTP response body).
pub(super) type ByteStream = futures::stream::BoxStream<'static, std::io::Result<bytes::Bytes>>;

/// Reads one file arriving as a byte stream, in its format, on a blocking
/// thread. Text formats are parsed as the bytes arrive; Parquet needs
/// random access, so it is first spooled to a local temporary file (within
/// the size limit), copied to the payload and read from there.
pub(super) async fn read_file(
    ctx: FileContext,
    mut bytes: ByteStream,
    writer: Box<dyn PayloadWriter>,
    tx: mpsc::Sender<RawBatch>,
) -> Result<Drift, FetchError> {
    use futures::StreamExt;
    let (feed, name) = (ctx.feed.clone(), ctx.name.clone());
    let err = |message: String| payload_err(&feed, &name, message);
    if !matches!(ctx.format, FileFormat::Parquet) {
        let handle = tokio::runtime::Handle::current();
        return tokio::task::spawn_blocking(move || {
            let bridge = tokio_util::io::SyncIoBridge::new_with_handle(
                tokio_util::io::StreamReader::new(bytes),
                handle,
            );
            read_stream(&ctx, bridge, writer, tx)
        })
        .await
        .map_err(|e| err(e.to_string()))?;
    }
    let mut local = tempfile::tempfile().map_err(|e| err(e.to_string()))?;
    let mut spooled = 0u64;
    while let Some(chunk) = bytes.next().await {
        let chunk = chunk.map_err(|e| err(e.to_string()))?;
        spooled += chunk.len() as u64;
        if spooled > ctx.limit {
            return Err(err(format!(
                "payload exceeds the limit of {} bytes",
                ctx.limit
            )));
        }
        std::io::Write::write_all(&mut local, &chunk).map_err(|e| err(e.to_string()))?;
    }
    tokio::task::spawn_blocking(move || {
        use std::io::Seek;
        let fail = |message: String| payload_err(&ctx.feed, &ctx.name, message);
        let mut writer = writer;
        local.rewind().map_err(|e| fail(e.to_string()))?;
        std::io::copy(&mut local, &mut writer).map_err(|e| fail(e.to_string()))?;
        writer.finish().map_err(fail)?;
        parse_parquet(&ctx.feed, &ctx.name, &ctx.fields, local, &tx)
    })
    .await
    .map_err(|e| err(e.to_string()))?
}

/// Reads one file's bytes in its format: every byte copied to the payload
/// writer as it is read (and counted against the size limit), decompressed
/// when the file is gzip, parsed, and sent on in batches. Any transport
/// that has a file's bytes as a stream reads it through here.
fn read_stream(
    ctx: &FileContext,
    input: impl Read,
    writer: Box<dyn PayloadWriter>,
    tx: mpsc::Sender<RawBatch>,
) -> Result<Drift, FetchError> {
    let err = |message: String| payload_err(&ctx.feed, &ctx.name, message);
    let mut tee = Tee {
        inner: input,
        copy: writer,
        bytes: 0,
        limit: ctx.limit,
    };
    let mut batcher = Batcher {
        fields: &ctx.fields,
        rows: Vec::with_capacity(BATCH_ROWS),
        tx,
        feed: &ctx.feed,
    };
    let mut drift = Drift::default();
    {
        let decoded: Box<dyn Read + '_> = if ctx.compressed {
            Box::new(flate2::read::MultiGzDecoder::new(&mut tee))
        } else {
            Box::new(&mut tee)
        };
        let reader = BufReader::with_capacity(1 << 16, decoded);
        match &ctx.format {
            FileFormat::Csv {
                delimiter,
                encoding,
            } => read_csv(ctx, reader, *delimiter, *encoding, &mut batcher, &mut drift)?,
            FileFormat::Ndjson => read_ndjson(ctx, reader, &mut batcher, &mut drift)?,
            FileFormat::Json { pointer } => {
                read_json(ctx, reader, pointer, &mut batcher, &mut drift)?
            }
            FileFormat::Parquet => {
                return Err(err("parquet is read through its own reader".into()));
            }
            FileFormat::Excel { sheet, header_row } => read_excel(
                ctx,
                reader,
                sheet.as_deref(),
                *header_row,
                &mut batcher,
                &mut drift,
            )?,
        }
    }
    batcher.flush()?;
    // Copy whatever the parser did not need (trailing bytes) to the payload.
    std::io::copy(&mut tee, &mut std::io::sink()).map_err(|e| err(e.to_string()))?;
    tee.copy.finish().map_err(err)?;
    Ok(drift)
}

pub(super) fn payload_err(feed: &str, position: &str, message: String) -> FetchError {
    FetchError::Payload {
        feed: feed.to_string(),
        position: position.to_string(),
        message,
    }
}

/// One file being read: which feed, its name in messages, the fields
/// wanted, its format, whether it is gzip, and the payload size limit.
pub(super) struct FileContext {
    pub(super) feed: String,
    pub(super) name: String,
    pub(super) fields: Vec<String>,
    pub(super) format: FileFormat,
    pub(super) compressed: bool,
    pub(super) limit: u64,
}

/// Copies every byte read into the payload writer and counts them.
struct Tee<R> {
    inner: R,
    copy: Box<dyn PayloadWriter>,
    bytes: u64,
    limit: u64,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        if self.bytes > self.limit {
            return Err(std::io::Error::other(format!(
                "payload exceeds the limit of {} bytes",
                self.limit
            )));
        }
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// The longest record (an NDJSON line, a CSV line) read from a file: a
/// longer one is not held in memory. An NDJSON record beyond it is
/// quarantined with its first bytes; a CSV line beyond it stops the file.
pub const MAX_RECORD_BYTES: usize = 16 << 20;

/// How much of an oversized record the quarantine keeps.
const KEPT_OF_OVERSIZED: usize = 1024;

/// Reads up to and including the next `\n` into `line`, keeping at most
/// `max` bytes; returns the bytes consumed and whether the line was cut.
fn read_line_bounded(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<(usize, bool)> {
    let mut consumed = 0;
    let mut cut = false;
    loop {
        let (done, used) = {
            let buf = reader.fill_buf()?;
            if buf.is_empty() {
                return Ok((consumed, cut));
            }
            let (chunk, done) = match buf.iter().position(|b| *b == b'\n') {
                Some(i) => (&buf[..=i], true),
                None => (buf, false),
            };
            let room = max.saturating_sub(line.len());
            if chunk.len() > room {
                cut = true;
            }
            line.extend_from_slice(&chunk[..chunk.len().min(room)]);
            (done, chunk.len())
        };
        reader.consume(used);
        consumed += used;
        if done {
            return Ok((consumed, cut));
        }
    }
}

/// Fails a read when a line grows beyond [`MAX_RECORD_BYTES`] (for the CSV
/// reader, which would otherwise buffer a record of any length).
struct LineGuard<R> {
    inner: R,
    since_newline: usize,
}

impl<R: Read> Read for LineGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for b in &buf[..n] {
            if *b == b'\n' {
                self.since_newline = 0;
            } else {
                self.since_newline += 1;
            }
        }
        if self.since_newline > MAX_RECORD_BYTES {
            return Err(std::io::Error::other(format!(
                "a line longer than {MAX_RECORD_BYTES} bytes; the file is refused"
            )));
        }
        Ok(n)
    }
}

/// Collects rows into batches and sends them.
struct Batcher<'a> {
    fields: &'a [String],
    rows: Vec<RawRow>,
    tx: mpsc::Sender<RawBatch>,
    feed: &'a str,
}

impl Batcher<'_> {
    fn push(&mut self, row: RawRow) -> Result<(), FetchError> {
        self.rows.push(row);
        if self.rows.len() >= BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), FetchError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let batch = RawBatch {
            fields: self.fields.to_vec(),
            rows: std::mem::take(&mut self.rows),
        };
        self.tx
            .blocking_send(batch)
            .map_err(|_| FetchError::Stopped {
                feed: self.feed.to_string(),
            })
    }
}

fn read_ndjson(
    ctx: &FileContext,
    mut reader: impl BufRead,
    batcher: &mut Batcher<'_>,
    drift: &mut Drift,
) -> Result<(), FetchError> {
    let mut line = Vec::with_capacity(1024);
    let mut line_no = 0u64;
    let mut presence = Presence::new(&ctx.fields);
    let mut records = 0u64;
    loop {
        line.clear();
        let (n, cut) =
            read_line_bounded(&mut reader, &mut line, MAX_RECORD_BYTES).map_err(|e| {
                payload_err(
                    &ctx.feed,
                    &format!("{}:{}", ctx.name, line_no + 1),
                    e.to_string(),
                )
            })?;
        if n == 0 {
            presence.report(&ctx.fields, records, drift);
            return Ok(());
        }
        line_no += 1;
        if cut {
            records += 1;
            let kept = String::from_utf8_lossy(&line[..line.len().min(KEPT_OF_OVERSIZED)]);
            batcher.push(malformed_row(
                &ctx.fields,
                format!("{}:{line_no}", ctx.name),
                format!("{kept}…"),
                format!("a record of {n} bytes, longer than the {MAX_RECORD_BYTES} allowed"),
            ))?;
            continue;
        }
        let text = match std::str::from_utf8(&line) {
            Ok(text) => text.trim(),
            Err(e) => {
                // Replacing the bytes would land a changed value unseen.
                records += 1;
                let at = e.valid_up_to();
                let kept = String::from_utf8_lossy(&line[..line.len().min(KEPT_OF_OVERSIZED)]);
                batcher.push(malformed_row(
                    &ctx.fields,
                    format!("{}:{line_no}", ctx.name),
                    kept.trim().to_string(),
                    format!("bytes that are not UTF-8 at byte {}", at + 1),
                ))?;
                continue;
            }
        };
        if text.is_empty() {
            continue;
        }
        let position = format!("{}:{line_no}", ctx.name);
        records += 1;
        let row = row_from_json_line(&ctx.fields, text, position, drift, &mut presence);
        batcher.push(row)?;
    }
}

fn read_json(
    ctx: &FileContext,
    reader: impl Read,
    pointer: &str,
    batcher: &mut Batcher<'_>,
    drift: &mut Drift,
) -> Result<(), FetchError> {
    let mut index = 0u64;
    let mut stopped = None;
    let mut presence = Presence::new(&ctx.fields);
    let found = for_each_at_pointer(reader, pointer, &mut |element| {
        let position = format!("{}{pointer}/{index}", ctx.name);
        index += 1;
        let value = match element {
            Element::Record(value) => value,
            Element::TooDeep(original) => {
                let why = format!("a record nested deeper than {RECORD_DEPTH} levels");
                let row = malformed_row(&ctx.fields, position, original, why);
                return batcher.push(row).map_err(|e| {
                    let message = e.to_string();
                    stopped = Some(e);
                    message
                });
            }
        };
        let original = value.to_string();
        let row = match &value {
            Value::Object(object) => row_from_object(
                &ctx.fields,
                object,
                position,
                original,
                drift,
                &mut presence,
            ),
            _ => malformed_row(&ctx.fields, position, original, "not a JSON object".into()),
        };
        batcher.push(row).map_err(|e| {
            let message = e.to_string();
            stopped = Some(e);
            message
        })
    });
    if let Some(e) = stopped {
        return Err(e);
    }
    presence.report(&ctx.fields, index, drift);
    match found {
        Ok(true) => Ok(()),
        Ok(false) => Err(payload_err(
            &ctx.feed,
            &ctx.name,
            format!("no record array at JSON pointer {pointer:?}"),
        )),
        Err(e) => Err(payload_err(
            &ctx.feed,
            &format!("{} line {} column {}", ctx.name, e.line(), e.column()),
            format!("malformed JSON after {index} records: {e}"),
        )),
    }
}

fn read_csv(
    ctx: &FileContext,
    reader: impl Read,
    delimiter: u8,
    encoding: TextEncoding,
    batcher: &mut Batcher<'_>,
    drift: &mut Drift,
) -> Result<(), FetchError> {
    // GB18030 is decoded to UTF-8 first; UTF-8 passes through with its BOM
    // removed, and invalid bytes surface per field rather than being replaced.
    let decoded: Box<dyn Read> = match encoding {
        TextEncoding::Gb18030 => Box::new(
            encoding_rs_io::DecodeReaderBytesBuilder::new()
                .encoding(Some(encoding_rs::GB18030))
                .build(reader),
        ),
        TextEncoding::Utf8 => Box::new(
            encoding_rs_io::DecodeReaderBytesBuilder::new()
                .bom_sniffing(true)
                .bom_override(false)
                .utf8_passthru(true)
                .strip_bom(true)
                .build(reader),
        ),
    };
    let decoded = LineGuard {
        inner: decoded,
        since_newline: 0,
    };
    let mut csv = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .has_headers(true)
        .from_reader(decoded);
    let headers: Vec<String> = csv
        .byte_headers()
        .map_err(|e| {
            payload_err(
                &ctx.feed,
                &format!("{}:1", ctx.name),
                format!("unreadable header: {e}"),
            )
        })?
        .iter()
        .map(|h| header_name(&String::from_utf8_lossy(h)))
        .collect();
    let (slots, object_keys) = field_slots(ctx, &headers, &format!("{}:1", ctx.name), drift)?;
    let mut record = csv::ByteRecord::new();
    loop {
        let more = match csv.read_byte_record(&mut record) {
            Ok(more) => more,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                return Err(payload_err(
                    &ctx.feed,
                    &format!("{}:{line}", ctx.name),
                    format!("malformed CSV: {e}"),
                ));
            }
        };
        if !more {
            return Ok(());
        }
        let line = record.position().map_or(0, |p| p.line());
        let position = format!("{}:{line}", ctx.name);
        let texts: Vec<Result<&str, ()>> = record
            .iter()
            .map(|b| std::str::from_utf8(b).map_err(|_| ()))
            .collect();
        let original = if record.len() == headers.len() && texts.iter().all(Result::is_ok) {
            original_of_row(&object_keys, &texts)
        } else {
            let mut original = serde_json::Map::new();
            for (i, t) in texts.iter().enumerate() {
                let key = headers
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| format!("_{}", i + 1));
                let value = match t {
                    Ok(s) => Value::String((*s).to_string()),
                    Err(()) => Value::String(String::from_utf8_lossy(&record[i]).into_owned()),
                };
                original.insert(key, value);
            }
            Value::Object(original).to_string()
        };
        // A row with the wrong number of fields or bytes that are not text
        // cannot be trusted field by field: validation quarantines it.
        if record.len() != headers.len() {
            // A quote left open runs the record on over the lines after it:
            // quarantining one record would lose those rows unseen.
            let lines = record.iter().flatten().filter(|b| **b == b'\n').count();
            if lines > 0 {
                return Err(payload_err(
                    &ctx.feed,
                    &position,
                    format!(
                        "a record of {} fields (the header has {}) runs over {} more line(s): \
                         a quote left open? The file is refused rather than losing those rows",
                        record.len(),
                        headers.len(),
                        lines
                    ),
                ));
            }
            let why = format!("{} fields, the header has {}", record.len(), headers.len());
            batcher.push(malformed_row(&ctx.fields, position, original, why))?;
            continue;
        }
        if let Some(i) = texts.iter().position(Result::is_err) {
            let why = format!("field {:?} is not valid UTF-8", headers[i]);
            batcher.push(malformed_row(&ctx.fields, position, original, why))?;
            continue;
        }
        let values = slots
            .iter()
            .map(|slot| slot.and_then(|i| texts[i].ok()).map(str::to_string))
            .collect();
        batcher.push(RawRow {
            position,
            values,
            original,
            malformed: None,
        })?;
    }
}

/// Where each wanted field stands among a file's headers, and the keys of
/// its rows' originals; records missing and unmapped fields as drift. A
/// mapped field under two headers refuses the file: which column is meant
/// cannot be told, and taking either would be a silent guess.
#[allow(clippy::type_complexity)]
fn field_slots(
    ctx: &FileContext,
    headers: &[String],
    position: &str,
    drift: &mut Drift,
) -> Result<(Vec<Option<usize>>, Vec<(usize, String)>), FetchError> {
    for f in &ctx.fields {
        let columns: Vec<String> = headers
            .iter()
            .enumerate()
            .filter(|(_, h)| *h == f)
            .map(|(i, _)| (i + 1).to_string())
            .collect();
        if columns.len() > 1 {
            return Err(payload_err(
                &ctx.feed,
                position,
                format!(
                    "header {f:?} appears {} times (columns {}); the mapping reads it, so the file is refused",
                    columns.len(),
                    columns.join(", ")
                ),
            ));
        }
    }
    let index: HashMap<&str, usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| (h.as_str(), i))
        .collect();
    for f in &ctx.fields {
        if !index.contains_key(f.as_str()) {
            drift.missing_fields.insert(f.clone());
        }
    }
    for h in headers {
        if !ctx.fields.contains(h) {
            drift.note_unmapped(h);
        }
    }
    let slots = ctx
        .fields
        .iter()
        .map(|f| index.get(f.as_str()).copied())
        .collect();
    Ok((slots, object_keys(headers)))
}

/// Reads one sheet of an Excel workbook: the header on `header_row` (title
/// rows above it are skipped), then one record per row that is not empty.
/// Cells are read as Excel stores them: text as text, a whole number
/// without a decimal point, a date cell as `YYYY-MM-DD` (with the time when
/// it has one), an error cell as its code (`#N/A`, which the column's
/// parser then quarantines). A record's position is `file!sheet:row`.
fn read_excel(
    ctx: &FileContext,
    mut reader: impl Read,
    sheet: Option<&str>,
    header_row: u32,
    batcher: &mut Batcher<'_>,
    drift: &mut Drift,
) -> Result<(), FetchError> {
    use calamine::Reader;
    let err = |position: &str, message: String| payload_err(&ctx.feed, position, message);
    let mut bytes = Vec::new();
    reader
        .read_to_end(&mut bytes)
        .map_err(|e| err(&ctx.name, e.to_string()))?;
    let mut book = calamine::open_workbook_auto_from_rs(std::io::Cursor::new(bytes))
        .map_err(|e| err(&ctx.name, format!("not a readable workbook: {e}")))?;
    let names = book.sheet_names();
    let name = match sheet {
        Some(s) if names.iter().any(|n| n == s) => s.to_string(),
        Some(s) => {
            return Err(err(
                &ctx.name,
                format!(
                    "the workbook has no sheet {s:?} (its sheets: {})",
                    names.join(", ")
                ),
            ));
        }
        None => names
            .first()
            .cloned()
            .ok_or_else(|| err(&ctx.name, "the workbook has no sheet".into()))?,
    };
    let range = book
        .worksheet_range(&name)
        .map_err(|e| err(&ctx.name, format!("sheet {name:?}: {e}")))?;
    // Row and column numbers as Excel shows them, whatever the range's
    // first used cell.
    let (first_row, first_col) = range.start().unwrap_or((0, 0));
    let at = |row: u32| format!("{}!{name}:{row}", ctx.name);
    let header_index = header_row.saturating_sub(1).saturating_sub(first_row) as usize;
    let header_at = at(header_row);
    let rows: Vec<&[calamine::Data]> = range.rows().collect();
    let Some(header) = rows.get(header_index).filter(|_| header_row > first_row) else {
        return Err(err(
            &header_at,
            format!("the sheet has no row {header_row} to read the header from"),
        ));
    };
    let mut headers: Vec<String> = vec![String::new(); first_col as usize];
    headers.extend(header.iter().map(|c| header_name(&excel_text(c))));
    if !ctx.fields.iter().any(|f| headers.contains(f)) {
        let shown: Vec<&str> = headers
            .iter()
            .filter(|h| !h.is_empty())
            .take(6)
            .map(String::as_str)
            .collect();
        return Err(err(
            &header_at,
            format!(
                "row {header_row} holds none of the mapped fields (it reads {}); \
                 if titles stand above the header, set header_row to the header's row",
                shown.join(", ")
            ),
        ));
    }
    let (slots, object_keys) = field_slots(ctx, &headers, &header_at, drift)?;
    let offset = first_col as usize;
    for (k, row) in rows.iter().enumerate().skip(header_index + 1) {
        if row.iter().all(|c| matches!(c, calamine::Data::Empty)) {
            continue;
        }
        let texts: Vec<String> = std::iter::repeat_n(String::new(), offset)
            .chain(row.iter().map(excel_text))
            .collect();
        let view: Vec<Result<&str, ()>> = texts.iter().map(|t| Ok(t.as_str())).collect();
        let values = slots
            .iter()
            .map(|slot| slot.and_then(|i| texts.get(i)).cloned())
            .collect();
        batcher.push(RawRow {
            position: at(first_row + k as u32 + 1),
            values,
            original: original_of_row(&object_keys, &view),
            malformed: None,
        })?;
    }
    Ok(())
}

/// One cell as text, the way Excel stores it.
fn excel_text(cell: &calamine::Data) -> String {
    use calamine::Data;
    match cell {
        Data::Empty => String::new(),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        // 300000.0 is `300000`; 0.35 stays `0.35` (the shortest form that
        // reads back as the same number).
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
        Data::Float(f) => f.to_string(),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(d) if d.is_datetime() => {
            let (y, m, day, h, min, s, _) = d.to_ymd_hms_milli();
            if (h, min, s) == (0, 0, 0) {
                format!("{y:04}-{m:02}-{day:02}")
            } else {
                format!("{y:04}-{m:02}-{day:02} {h:02}:{min:02}:{s:02}")
            }
        }
        Data::DateTime(d) => d.as_f64().to_string(),
        Data::Error(e) => e.to_string(),
    }
}

/// A CSV header as the mapping names it: white space around it and
/// invisible characters (a BOM or zero-width space pasted into a header)
/// removed. Full-width forms are kept: `金额（万元）` is not `金额(万元)`, and
/// a mapping naming the other form sees the field as missing (drift).
fn header_name(raw: &str) -> String {
    let trimmed = raw.trim();
    if trimmed.is_ascii() {
        return trimmed.to_string();
    }
    trimmed
        .chars()
        .filter(|c| !crate::keys::is_invisible(*c))
        .collect::<String>()
        .trim()
        .to_string()
}

/// The keys of a CSV row as a JSON object, in the order a
/// `serde_json::Map` keeps them (sorted; a repeated header's last column
/// wins), each with its column and its JSON-escaped form.
fn object_keys(headers: &[String]) -> Vec<(usize, String)> {
    let mut last: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, h) in headers.iter().enumerate() {
        last.insert(h.as_str(), i);
    }
    last.into_iter()
        .map(|(h, i)| (i, Value::String(h.to_string()).to_string()))
        .collect()
}

/// A CSV row of text fields as the compact JSON object text of its
/// headers and values: what serializing the `serde_json::Map` gives,
/// written without building it.
fn original_of_row(keys: &[(usize, String)], texts: &[Result<&str, ()>]) -> String {
    let mut out = Vec::with_capacity(256);
    out.push(b'{');
    for (n, (i, key)) in keys.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.extend_from_slice(key.as_bytes());
        out.push(b':');
        let text = texts.get(*i).and_then(|t| t.ok()).unwrap_or_default();
        // Writing a str into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, text);
    }
    out.push(b'}');
    String::from_utf8(out).unwrap_or_default()
}

fn parse_parquet(
    feed: &str,
    name: &str,
    fields: &[String],
    file: std::fs::File,
    tx: &mpsc::Sender<RawBatch>,
) -> Result<Drift, FetchError> {
    let err = |message: String| payload_err(feed, name, message);
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| err(format!("not a readable Parquet file: {e}")))?;
    let schema = builder.schema().clone();
    let mut drift = Drift::default();
    for f in fields {
        if schema.field_with_name(f).is_err() {
            drift.missing_fields.insert(f.clone());
        }
    }
    for f in schema.fields() {
        if !fields.contains(f.name()) {
            drift.note_unmapped(f.name());
        }
    }
    let reader = builder
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| err(e.to_string()))?;
    let mut row_no = 0u64;
    for batch in reader {
        let batch = batch.map_err(|e| err(e.to_string()))?;
        let columns: Vec<Option<Arc<dyn Array>>> = fields
            .iter()
            .map(|f| {
                batch
                    .column_by_name(f)
                    .map(|c| cast(c, &DataType::Utf8).map_err(|e| err(format!("field {f}: {e}"))))
                    .transpose()
            })
            .collect::<Result<_, _>>()?;
        let mut rows = Vec::with_capacity(batch.num_rows());
        for r in 0..batch.num_rows() {
            row_no += 1;
            let values: Vec<Option<String>> = columns
                .iter()
                .map(|c| {
                    c.as_ref().and_then(|c| {
                        let s = c.as_string::<i32>();
                        (!s.is_null(r)).then(|| s.value(r).to_string())
                    })
                })
                .collect();
            let original = Value::Object(
                fields
                    .iter()
                    .zip(&values)
                    .map(|(f, v)| (f.clone(), v.clone().map_or(Value::Null, Value::String)))
                    .collect(),
            )
            .to_string();
            rows.push(RawRow {
                position: format!("{name}#row {row_no}"),
                values,
                original,
                malformed: None,
            });
        }
        tx.blocking_send(RawBatch {
            fields: fields.to_vec(),
            rows,
        })
        .map_err(|_| FetchError::Stopped {
            feed: feed.to_string(),
        })?;
    }
    Ok(drift)
}

#[cfg(test)]
mod csv_original_tests {
    use super::*;

    /// The row's JSON text is what serializing its map gives, byte for byte.
    #[test]
    fn headers_are_named_without_spaces_or_invisible_characters() {
        for raw in [
            "名称",
            " 名称 ",
            "\u{feff}名称",
            "名\u{200b}称\t",
            "\u{3000}名称",
        ] {
            assert_eq!(header_name(raw), "名称", "{raw:?}");
        }
        assert_eq!(header_name("金额（万元）"), "金额（万元）");
        assert_eq!(header_name(""), "");
    }

    #[test]
    fn a_row_reads_as_its_serialized_map() {
        let headers: Vec<String> = ["名称", "b", "a", "b", "q\"uote", ""]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let values = ["杭州\n\"x\"", "1", "", "second b", "\u{1}\t", "e"];
        let texts: Vec<Result<&str, ()>> = values.iter().map(|v| Ok(*v)).collect();
        let mut map = serde_json::Map::new();
        for (h, v) in headers.iter().zip(values) {
            map.insert(h.clone(), Value::String(v.to_string()));
        }
        assert_eq!(
            original_of_row(&object_keys(&headers), &texts),
            Value::Object(map).to_string()
        );
    }
}
