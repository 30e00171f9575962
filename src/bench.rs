//! Measurements behind `BENCHMARKS.md` (`qinglian bench …`, driven by
//! `bench/run`): the bare DataFusion baseline our ingest cannot beat, and
//! the throughput of the key library over Arrow string arrays.
//!
//! Neither is part of a nightly run; both exist so that the benchmark
//! measures the floor and the key classification with the same build as
//! the pipeline.

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::{ArrayRef, AsArray, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::prelude::{CsvReadOptions, JsonReadOptions, SessionConfig, SessionContext};
use serde::Serialize;

use crate::project::{FileFormat, Pipeline, Project, SourceKind, TextEncoding};

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A file could not be read or written.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// DataFusion refused the work.
    #[error("feed {feed}: {message}")]
    Engine {
        /// The feed.
        feed: String,
        /// DataFusion's message.
        message: String,
    },
}

fn file_error(path: &Path, e: impl std::fmt::Display) -> BenchError {
    BenchError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// One feed of the baseline: raw files in, Parquet out.
#[derive(Debug, Clone, Serialize)]
pub struct BaselineFeed {
    /// Feed name.
    pub feed: String,
    /// Raw files read.
    pub files: usize,
    /// Raw bytes read.
    pub raw_bytes: u64,
    /// Rows written.
    pub rows: u64,
    /// Wall time, including decoding to a form DataFusion reads.
    pub ms: u64,
}

/// What the baseline did.
#[derive(Debug, Clone, Serialize)]
pub struct BaselineReport {
    /// Per feed, in pipeline order.
    pub feeds: Vec<BaselineFeed>,
    /// Rows over all feeds.
    pub rows: u64,
    /// Raw bytes over all feeds.
    pub raw_bytes: u64,
    /// Wall time of the whole baseline.
    pub ms: u64,
}

/// The floor of ingest: every raw file of every object-store feed of the
/// pipeline, found under `feeds/<feed>/` by the file pattern of its source,
/// read by DataFusion with an inferred schema and written as Parquet under
/// `out/<feed>/` — no mapping, no key classification, no validation, no
/// deduplication, no scoring. Files DataFusion cannot read as they come
/// (GB18030 text, gzip, records inside one JSON document) are first decoded
/// to UTF-8 CSV or NDJSON under `out/.staging/`, and that time counts.
pub async fn bare_baseline(
    project: &Project,
    pipeline: &Pipeline,
    feeds: &Path,
    out: &Path,
    partitions: usize,
) -> Result<BaselineReport, BenchError> {
    let started = Instant::now();
    let config = SessionConfig::new().with_target_partitions(partitions.max(1));
    let ctx = SessionContext::new_with_config(config);
    let mut report = BaselineReport {
        feeds: Vec::new(),
        rows: 0,
        raw_bytes: 0,
        ms: 0,
    };
    for name in &pipeline.sources {
        let Some(source) = project.sources.get(name) else {
            continue;
        };
        let SourceKind::ObjectStore { url, format, gzip } = &source.kind else {
            continue;
        };
        let feed_started = Instant::now();
        let files = feed_files(&feeds.join(name), url)?;
        if files.is_empty() {
            continue;
        }
        let staging = out.join(".staging").join(name);
        let mut raw_bytes = 0;
        let mut readable = Vec::new();
        for file in &files {
            raw_bytes += std::fs::metadata(file)
                .map_err(|e| file_error(file, e))?
                .len();
            readable.push(readable_copy(file, format, *gzip, &staging)?);
        }
        let paths: Vec<String> = readable.iter().map(|p| p.display().to_string()).collect();
        let engine = |e: datafusion::error::DataFusionError| BenchError::Engine {
            feed: name.clone(),
            message: e.to_string(),
        };
        let frame = match format {
            // Delimited text is text: every column read as a string, named
            // by the header, so no later value can contradict an inference.
            FileFormat::Csv { delimiter, .. } => {
                let extension = extension_of(&paths[0]);
                let schema = csv_text_schema(&readable[0], *delimiter)?;
                let options = CsvReadOptions::new()
                    .has_header(true)
                    .delimiter(*delimiter)
                    .schema(&schema)
                    .file_extension(&extension);
                ctx.read_csv(paths.clone(), options).await.map_err(engine)?
            }
            FileFormat::Excel { .. } => {
                return Err(BenchError::Engine {
                    feed: name.clone(),
                    message: "the baseline reads csv, json and ndjson files only".into(),
                });
            }
            // JSON carries its own types; a field null in the first
            // thousand records and a number later needs the whole file to
            // infer, as anyone reading such a feed with DataFusion must.
            _ => {
                let extension = extension_of(&paths[0]);
                let options = JsonReadOptions::default()
                    .schema_infer_max_records(usize::MAX)
                    .file_extension(&extension);
                ctx.read_json(paths.clone(), options)
                    .await
                    .map_err(engine)?
            }
        };
        let target = out.join(name);
        let written = frame
            .write_parquet(
                &format!("{}/", target.display()),
                DataFrameWriteOptions::new(),
                None,
            )
            .await
            .map_err(engine)?;
        let rows = written
            .iter()
            .filter_map(|b| {
                b.column(0)
                    .as_primitive_opt::<datafusion::arrow::datatypes::UInt64Type>()
                    .map(|c| c.values().iter().sum::<u64>())
            })
            .sum();
        report.rows += rows;
        report.raw_bytes += raw_bytes;
        report.feeds.push(BaselineFeed {
            feed: name.clone(),
            files: files.len(),
            raw_bytes,
            rows,
            ms: feed_started.elapsed().as_millis() as u64,
        });
    }
    let _ = std::fs::remove_dir_all(out.join(".staging"));
    report.ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// The files of `dir` whose names match the last segment of the source URL.
fn feed_files(dir: &Path, url: &str) -> Result<Vec<PathBuf>, BenchError> {
    let pattern = url.rsplit('/').next().unwrap_or("*");
    let glob = globset::Glob::new(pattern)
        .map_err(|e| file_error(dir, e))?
        .compile_matcher();
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.file_name().is_some_and(|n| glob.is_match(n)))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(file_error(dir, e)),
    };
    files.sort();
    Ok(files)
}

/// Every column of a delimited file as a nullable string, named by its
/// header row (a UTF-8 BOM dropped).
fn csv_text_schema(file: &Path, delimiter: u8) -> Result<Schema, BenchError> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .from_path(file)
        .map_err(|e| file_error(file, e))?;
    let header = reader.headers().map_err(|e| file_error(file, e))?;
    Ok(Schema::new(
        header
            .iter()
            .map(|name| Field::new(name.trim_start_matches('\u{feff}'), DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ))
}

/// `.csv` of `a/b.csv`: DataFusion lists only files with the extension.
fn extension_of(path: &str) -> String {
    Path::new(path)
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default()
}

/// The file itself when DataFusion reads it as it is; otherwise a decoded
/// copy in `staging` (UTF-8 CSV, or NDJSON for gzip and JSON documents).
fn readable_copy(
    file: &Path,
    format: &FileFormat,
    gzip: bool,
    staging: &Path,
) -> Result<PathBuf, BenchError> {
    let gzip = gzip || file.extension().is_some_and(|e| e == "gz");
    let gb18030 = matches!(
        format,
        FileFormat::Csv {
            encoding: TextEncoding::Gb18030,
            ..
        }
    );
    let document = matches!(format, FileFormat::Json { .. });
    if !gzip && !gb18030 && !document {
        return Ok(file.to_path_buf());
    }
    std::fs::create_dir_all(staging).map_err(|e| file_error(staging, e))?;
    let stem = file
        .file_name()
        .map(|n| n.to_string_lossy().replace('.', "_"))
        .unwrap_or_default();
    let extension = if matches!(format, FileFormat::Csv { .. }) {
        "csv"
    } else {
        "ndjson"
    };
    let target = staging.join(format!("{stem}.{extension}"));
    let input = std::fs::File::open(file).map_err(|e| file_error(file, e))?;
    let input: Box<dyn Read> = if gzip {
        Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(input)))
    } else {
        Box::new(BufReader::new(input))
    };
    let input: Box<dyn Read> = if gb18030 {
        Box::new(
            encoding_rs_io::DecodeReaderBytesBuilder::new()
                .encoding(Some(encoding_rs::GB18030))
                .build(input),
        )
    } else {
        input
    };
    let output = std::fs::File::create(&target).map_err(|e| file_error(&target, e))?;
    let mut output = BufWriter::new(output);
    if let FileFormat::Json { pointer } = format {
        use crate::source::json_stream::Element;
        let mut each = |element: Element| -> Result<(), String> {
            let value = match element {
                Element::Record(value) => value,
                Element::TooDeep(text) => return Err(format!("a record too deep: {text}")),
            };
            serde_json::to_writer(&mut output, &value).map_err(|e| e.to_string())?;
            output.write_all(b"\n").map_err(|e| e.to_string())
        };
        crate::source::json_stream::for_each_at_pointer(input, pointer, &mut each)
            .map_err(|e| file_error(file, e))?;
    } else {
        let mut input = BufReader::new(input);
        loop {
            let chunk = input.fill_buf().map_err(|e| file_error(file, e))?;
            if chunk.is_empty() {
                break;
            }
            output
                .write_all(chunk)
                .map_err(|e| file_error(&target, e))?;
            let n = chunk.len();
            input.consume(n);
        }
    }
    output.flush().map_err(|e| file_error(&target, e))?;
    Ok(target)
}

/// Key classification throughput over Arrow string arrays, on one core.
#[derive(Debug, Clone, Serialize)]
pub struct KeyThroughput {
    /// Codes classified per pass.
    pub codes: usize,
    /// Of which carry dirty forms (spaces, hyphens, lower case, full width).
    pub dirty: usize,
    /// `uscc_class` (normalize + full classification), codes per second.
    pub classify_per_second: f64,
    /// The plain loop: mod-31 check character of 18-byte values, codes per second.
    pub checksum_per_second: f64,
    /// classify / checksum.
    pub ratio: f64,
    /// Classes found by `uscc_class`, to show the work was done.
    pub valid: usize,
}

/// Measures `uscc_class` over `codes` keys in Arrow arrays of 8,192 (a
/// DataFusion batch) against a plain checksum loop over the same arrays,
/// each the best of `passes`, on the calling thread.
pub fn key_throughput(codes: usize, dirty_share: f64, passes: usize) -> KeyThroughput {
    let (arrays, dirty) = key_arrays(codes, dirty_share);
    let classify = crate::keys::udf::classes;
    let mut best_classify = f64::MAX;
    let mut valid = 0;
    for _ in 0..passes.max(1) {
        let started = Instant::now();
        let mut found = 0;
        for array in &arrays {
            let classes = classify(array);
            found += classes
                .as_string::<i32>()
                .iter()
                .filter(|c| *c == Some("valid"))
                .count();
        }
        best_classify = best_classify.min(started.elapsed().as_secs_f64());
        valid = found;
    }
    let mut best_checksum = f64::MAX;
    for _ in 0..passes.max(1) {
        let started = Instant::now();
        let mut ok = 0usize;
        for array in &arrays {
            for value in array.as_string::<i32>().iter().flatten() {
                ok += usize::from(plain_checksum_ok(value.as_bytes()));
            }
        }
        std::hint::black_box(ok);
        best_checksum = best_checksum.min(started.elapsed().as_secs_f64());
    }
    let classify_per_second = codes as f64 / best_classify;
    let checksum_per_second = codes as f64 / best_checksum;
    KeyThroughput {
        codes,
        dirty,
        classify_per_second,
        checksum_per_second,
        ratio: classify_per_second / checksum_per_second,
        valid,
    }
}

/// The least a USCC check can do: 18 bytes, mod-31 over the first 17.
fn plain_checksum_ok(code: &[u8]) -> bool {
    const SET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
    const WEIGHTS: [u32; 17] = [
        1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
    ];
    if code.len() != 18 {
        return false;
    }
    let mut sum = 0;
    for (c, w) in code[..17].iter().zip(WEIGHTS) {
        match SET.iter().position(|s| s == c) {
            Some(v) => sum += v as u32 * w,
            None => return false,
        }
    }
    SET[((31 - sum % 31) % 31) as usize] == code[17]
}

/// Keys as feeds carry them: valid social-organization codes, a share of
/// them in dirty forms, in arrays of 8,192.
fn key_arrays(codes: usize, dirty_share: f64) -> (Vec<ArrayRef>, usize) {
    let mut dirty = 0;
    let every = if dirty_share > 0.0 {
        (1.0 / dirty_share).round().max(1.0) as usize
    } else {
        usize::MAX
    };
    let mut values = Vec::with_capacity(codes);
    for i in 0..codes {
        use crate::generate::org::{OrgType, make_uscc};
        const TYPES: [OrgType; 3] = [
            OrgType::SocialGroup,
            OrgType::SocialService,
            OrgType::Foundation,
        ];
        const DIVISIONS: [&str; 4] = ["330100", "330106", "330108", "330000"];
        let code = make_uscc(TYPES[i % 3], DIVISIONS[i % 4], i as u64);
        if i % every == every - 1 {
            dirty += 1;
            values.push(match (i / every) % 4 {
                0 => format!(" {}-{} ", &code[..8], &code[8..]),
                1 => code.to_ascii_lowercase(),
                2 => code
                    .chars()
                    .map(|c| char::from_u32(c as u32 + 0xFEE0).unwrap_or(c))
                    .collect(),
                _ => format!("{} {}", &code[..9], &code[9..]),
            });
        } else {
            values.push(code);
        }
    }
    let arrays = values
        .chunks(8192)
        .map(|chunk| Arc::new(StringArray::from_iter_values(chunk)) as ArrayRef)
        .collect();
    (arrays, dirty)
}
