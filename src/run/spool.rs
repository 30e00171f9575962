//! A part's raw records held on local disk while the feed's earlier parts
//! land. The parts of one feed are fetched concurrently (each within its
//! own source's rate limits) and land in the order the source names them,
//! so the snapshot and its quarantine are the same bytes whichever part
//! finished first.
//!
//! The records go to an anonymous temporary file (unlinked from its
//! creation, gone when the process ends) as an Arrow IPC stream, written
//! and read back without encoding: a raw record may carry an identity
//! number in clear, so it is never kept under a name.

use std::fs::File;
use std::io::{BufReader, BufWriter, Seek};
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, LargeStringArray, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;

use crate::source::{RawBatch, RawRow};

/// Raw records of one part, in arrival order.
pub(super) struct RawSpool {
    fields: Vec<String>,
    schema: SchemaRef,
    writer: StreamWriter<BufWriter<File>>,
    file: File,
    /// Records spooled.
    pub(super) rows: u64,
}

/// The records of a finished spool, read back in the order written.
pub(super) struct Spooled {
    fields: Vec<String>,
    reader: StreamReader<BufReader<File>>,
}

fn io(e: impl std::fmt::Display) -> String {
    format!("cannot keep a part's records on local disk: {e}")
}

impl RawSpool {
    /// A spool for records over `fields` (the part's raw fields, in order).
    pub(super) fn new(fields: &[String]) -> Result<Self, String> {
        let file = tempfile::tempfile().map_err(io)?;
        let mut columns = vec![
            Field::new("position", DataType::Utf8, false),
            Field::new("original", DataType::LargeUtf8, false),
            Field::new("malformed", DataType::Utf8, true),
        ];
        columns.extend(
            (0..fields.len()).map(|i| Field::new(format!("value_{i}"), DataType::Utf8, true)),
        );
        let schema: SchemaRef = Arc::new(Schema::new(columns));
        let writer = StreamWriter::try_new(BufWriter::new(file.try_clone().map_err(io)?), &schema)
            .map_err(io)?;
        Ok(Self {
            fields: fields.to_vec(),
            schema,
            writer,
            file,
            rows: 0,
        })
    }

    /// Keeps a batch of records.
    pub(super) fn push(&mut self, batch: &RawBatch) -> Result<(), String> {
        if batch.fields != self.fields {
            return Err(io("a batch over other fields than the part's"));
        }
        let rows = &batch.rows;
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.position.as_str()),
            )),
            Arc::new(LargeStringArray::from_iter_values(
                rows.iter().map(|r| r.original.as_str()),
            )),
            Arc::new(StringArray::from_iter(
                rows.iter().map(|r| r.malformed.as_deref()),
            )),
        ];
        for i in 0..self.fields.len() {
            columns.push(Arc::new(StringArray::from_iter(
                rows.iter()
                    .map(|r| r.values.get(i).and_then(|v| v.as_deref())),
            )));
        }
        let spooled = RecordBatch::try_new(Arc::clone(&self.schema), columns).map_err(io)?;
        self.writer.write(&spooled).map_err(io)?;
        self.rows += rows.len() as u64;
        Ok(())
    }

    /// Ends writing; the records are read back from the start.
    pub(super) fn finish(mut self) -> Result<Spooled, String> {
        self.writer.finish().map_err(io)?;
        drop(self.writer.into_inner().map_err(io)?);
        let mut file = self.file;
        file.rewind().map_err(io)?;
        Ok(Spooled {
            fields: self.fields,
            reader: StreamReader::try_new(BufReader::new(file), None).map_err(io)?,
        })
    }
}

impl Spooled {
    /// The next batch of records, as it was delivered.
    pub(super) fn next_batch(&mut self) -> Result<Option<RawBatch>, String> {
        let Some(batch) = self.reader.next().transpose().map_err(io)? else {
            return Ok(None);
        };
        let text = |i: usize| {
            batch
                .column(i)
                .as_string_opt::<i32>()
                .ok_or_else(|| io(format!("column {i} is not text")))
        };
        let position = text(0)?;
        let original = batch
            .column(1)
            .as_string_opt::<i64>()
            .ok_or_else(|| io("the original records are not text"))?;
        let malformed = text(2)?;
        let values = (0..self.fields.len())
            .map(|i| text(3 + i))
            .collect::<Result<Vec<_>, _>>()?;
        let rows = (0..batch.num_rows())
            .map(|r| RawRow {
                position: position.value(r).to_string(),
                original: original.value(r).to_string(),
                malformed: (!malformed.is_null(r)).then(|| malformed.value(r).to_string()),
                values: values
                    .iter()
                    .map(|v| (!v.is_null(r)).then(|| v.value(r).to_string()))
                    .collect(),
            })
            .collect();
        Ok(Some(RawBatch {
            fields: self.fields.clone(),
            rows,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(position: &str, values: &[Option<&str>], malformed: Option<&str>) -> RawRow {
        RawRow {
            position: position.into(),
            values: values.iter().map(|v| v.map(str::to_string)).collect(),
            original: format!("{{\"at\":\"{position}\",\"身份证号\":\"330106199001011234\"}}"),
            malformed: malformed.map(str::to_string),
        }
    }

    #[test]
    fn records_come_back_as_they_were_delivered_in_order() {
        let fields = vec!["creditCode".to_string(), "名称".to_string()];
        let batches = [
            RawBatch {
                fields: fields.clone(),
                rows: vec![
                    row(
                        "a.csv:2",
                        &[Some("51330100MJ0000026M"), Some("䶮光协会")],
                        None,
                    ),
                    row("a.csv:3", &[None, Some("")], None),
                ],
            },
            RawBatch {
                fields: fields.clone(),
                rows: vec![row("a.csv:4", &[None, None], Some("3 fields, expected 2"))],
            },
        ];
        let mut spool = RawSpool::new(&fields).expect("spool");
        for b in &batches {
            spool.push(b).expect("push");
        }
        assert_eq!(spool.rows, 3);
        let wrong = RawBatch {
            fields: vec!["other".into()],
            rows: Vec::new(),
        };
        assert!(spool.push(&wrong).is_err());
        let mut back = spool.finish().expect("finish");
        let mut got = Vec::new();
        while let Some(b) = back.next_batch().expect("read") {
            got.push(b);
        }
        assert_eq!(got, batches);
    }

    #[test]
    fn a_part_that_delivered_nothing_gives_nothing_back() {
        let fields = vec!["creditCode".to_string()];
        let mut back = RawSpool::new(&fields)
            .expect("spool")
            .finish()
            .expect("finish");
        assert!(back.next_batch().expect("read").is_none());
    }
}
