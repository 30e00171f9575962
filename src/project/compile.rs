//! Raw configuration → validated model, collecting every problem.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::str::FromStr;

use datafusion::arrow::datatypes::DataType;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use serde::de::DeserializeOwned;

use super::Project;
use super::crontab::CronSchedule;
use super::diag::{Diagnostics, key};
use super::env::expand_env;
use super::model::*;
use super::raw::*;
use super::types::arrow_type;

/// One configuration file read from disk.
struct ConfigFile {
    /// Path relative to the project root, `/`-separated.
    rel: String,
    /// File name without `.toml`.
    stem: String,
    /// Parsed document.
    table: toml::Table,
}

/// Compiles every file; returns what compiled (files with problems left
/// out) and every problem. References are checked against the files that
/// exist, so one broken file is reported once, not again by everything that
/// names it.
/// What `[scoring] memory_limit_mb` may be: below 64 MiB scoring cannot
/// plan its joins; above 1 TiB the byte count would no longer mean memory.
const MEMORY_LIMIT_MB: std::ops::RangeInclusive<u64> = 64..=1 << 20;

/// Every feed's `max_shrink` unless it sets one: a delivery with less than
/// half the rows of the last good snapshot (an empty file, a collapsed
/// export) is held, never taken as the new state.
const DEFAULT_MAX_SHRINK: f64 = 0.5;

/// The spine's `max_duplicate_keys` unless it sets one.
const DEFAULT_MAX_DUPLICATE_KEYS: f64 = 0.05;

/// The largest `[scoring] start_points` (the city's model starts at 12).
const MAX_START_POINTS: u32 = 10_000;

pub(super) fn compile(root: &Path, jobs_dir: &Path) -> Compiled {
    let mut d = Diagnostics::default();

    let (schema_files, schema_names) = read_dir(root, "schemas", &mut d);
    let mut schemas = BTreeMap::new();
    for f in &schema_files {
        if let Some(s) = compile_schema(f, &mut d) {
            schemas.insert(s.feed.clone(), s);
        }
    }
    let mut contracts = BTreeMap::new();
    for f in &read_dir(root, "schemas/out", &mut d).0 {
        if let Some(c) = compile_contract(f, &mut d) {
            contracts.insert(c.dataset.clone(), c);
        }
    }
    for dataset in PUBLISHED_DATASETS {
        if !contracts.contains_key(dataset)
            && !d
                .items
                .iter()
                .any(|p| p.file == format!("schemas/out/{dataset}.toml"))
        {
            d.push(
                &format!("schemas/out/{dataset}.toml"),
                "",
                "missing: every published dataset needs its contract",
            );
        }
    }
    let (source_files, feed_names) = read_dir(root, "pipelines/sources", &mut d);
    let mut sources = BTreeMap::new();
    for f in &source_files {
        if let Some(s) = compile_source(f, &schema_names, &schemas, &mut d) {
            sources.insert(s.feed.clone(), s);
        }
    }
    let mut rules: Vec<Rule> = Vec::new();
    let (files, rule_files) = read_dir(root, "pipelines/rules", &mut d);
    for f in &files {
        compile_rules(f, &mut rules, &mut d);
    }
    let (pipeline_files, pipeline_names) = read_dir(root, "pipelines", &mut d);
    let mut pipelines = BTreeMap::new();
    for f in &pipeline_files {
        if let Some(p) = compile_pipeline(f, &feed_names, &rule_files, &mut d) {
            pipelines.insert(p.name.clone(), p);
        }
    }
    let mut jobs = BTreeMap::new();
    let mut notes = Vec::new();
    let jobs_dir = jobs_dir.to_string_lossy();
    for f in read_dir(root, &jobs_dir, &mut d).0 {
        if let Some(j) = compile_job(&f, &pipeline_names, &mut d) {
            notes.push(cron_note(&f.rel, &j));
            jobs.insert(j.name.clone(), j);
        }
    }
    if pipeline_names.is_empty() {
        d.push(
            "pipelines",
            "",
            "no pipeline found, expected at least one pipelines/<name>.toml",
        );
    }
    let project = Project {
        root: root.to_path_buf(),
        schemas,
        contracts,
        sources,
        rules,
        pipelines,
        jobs,
        notes,
    };
    let broken_schemas = schema_names
        .into_iter()
        .filter(|n| !project.schemas.contains_key(n))
        .collect();
    Compiled {
        project,
        problems: d.items,
        broken_schemas,
    }
}

/// What [`compile`] produced.
pub(super) struct Compiled {
    /// Everything that compiled.
    pub(super) project: Project,
    /// Every problem found.
    pub(super) problems: Vec<super::Diagnostic>,
    /// Schema files that exist but did not compile.
    pub(super) broken_schemas: BTreeSet<String>,
}

/// Every `*.toml` directly in `root/dir` that parses as TOML, in name
/// order, and the stems of all of them (those that do not parse included).
fn read_dir(root: &Path, dir: &str, d: &mut Diagnostics) -> (Vec<ConfigFile>, BTreeSet<String>) {
    let path = root.join(dir);
    let entries = match std::fs::read_dir(&path) {
        Ok(entries) => entries,
        Err(e) => {
            d.push(dir, "", format!("cannot read directory: {e}"));
            return (Vec::new(), BTreeSet::new());
        }
    };
    let mut names: Vec<_> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"))
        .collect();
    names.sort();
    let mut files = Vec::new();
    let mut stems = BTreeSet::new();
    for p in names {
        let stem = p
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        stems.insert(stem.clone());
        let rel = format!("{dir}/{stem}.toml");
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) => {
                d.push(&rel, "", format!("cannot read file: {e}"));
                continue;
            }
        };
        match text.parse::<toml::Table>() {
            Ok(table) => files.push(ConfigFile { rel, stem, table }),
            Err(e) => d.push(
                &rel,
                "",
                format!("not valid TOML: {}", one_line(&e.to_string())),
            ),
        }
    }
    (files, stems)
}

fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Deserializes `value` into a raw type, reporting the first problem with
/// its key path (prefixed by `prefix`).
fn parse<T: DeserializeOwned>(
    file: &str,
    prefix: &str,
    value: toml::Value,
    d: &mut Diagnostics,
) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(v) => Some(v),
        Err(e) => {
            let inner = e.path().to_string();
            let path = match (prefix.is_empty(), inner == ".") {
                (true, _) => inner,
                (false, true) => prefix.to_string(),
                (false, false) => format!("{prefix}.{inner}"),
            };
            let path = if path == "." { String::new() } else { path };
            d.push(file, path, one_line(&e.into_inner().to_string()));
            None
        }
    }
}

fn expect_stem(f: &ConfigFile, what: &str, found: &str, d: &mut Diagnostics) {
    if found != f.stem {
        d.push(
            &f.rel,
            what,
            format!("found {found:?}, expected the file name {:?}", f.stem),
        );
    }
}

fn one_of<'a>(items: impl IntoIterator<Item = &'a String>) -> String {
    items
        .into_iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

fn compile_schema(f: &ConfigFile, d: &mut Diagnostics) -> Option<FeedSchema> {
    let raw: RawSchema = parse(&f.rel, "", toml::Value::Table(f.table.clone()), d)?;
    expect_stem(f, "feed", &raw.feed, d);
    let before = d.items.len();
    let columns = compile_columns(f, raw.columns, &STANDARD_COLUMNS, d);
    let schema = FeedSchema {
        feed: raw.feed,
        version: raw.version,
        description: raw.description,
        key: raw.key,
        columns,
    };
    if schema.column(&schema.key).is_none() {
        d.push(
            &f.rel,
            "key",
            format!(
                "found {:?}, expected one of the schema's columns",
                schema.key
            ),
        );
    }
    (d.items.len() == before).then_some(schema)
}

/// The `[[columns]]` of a feed schema or an output contract; `reserved`
/// names columns the table already has.
fn compile_columns(
    f: &ConfigFile,
    raw: Vec<toml::Value>,
    reserved: &[&str],
    d: &mut Diagnostics,
) -> Vec<ColumnSpec> {
    let mut columns: Vec<ColumnSpec> = Vec::new();
    for (i, value) in raw.into_iter().enumerate() {
        let at = format!("columns[{i}]");
        let Some(c) = parse::<RawColumn>(&f.rel, &at, value, d) else {
            continue;
        };
        let data_type = match arrow_type(&c.data_type) {
            Ok(t) => t,
            Err(e) => {
                d.push(&f.rel, format!("{at}.type"), e);
                continue;
            }
        };
        if reserved.contains(&c.name.as_str()) {
            d.push(
                &f.rel,
                format!("{at}.name"),
                format!(
                    "found {:?}, a standard column every table already has ({})",
                    c.name,
                    reserved.join(", ")
                ),
            );
        } else if columns.iter().any(|x| x.name == c.name) {
            d.push(
                &f.rel,
                format!("{at}.name"),
                format!(
                    "found {:?} a second time, expected unique column names",
                    c.name
                ),
            );
        }
        if c.domain.is_some() && data_type != DataType::Utf8 {
            d.push(
                &f.rel,
                format!("{at}.enum"),
                format!(
                    "found an enum on a {} column, expected type string",
                    c.data_type
                ),
            );
        }
        let numeric = matches!(
            data_type,
            DataType::Int32 | DataType::Int64 | DataType::Float64 | DataType::Decimal128(..)
        );
        if c.negative && !numeric {
            d.push(
                &f.rel,
                format!("{at}.negative"),
                format!(
                    "found negative = true on a {} column, expected a numeric column",
                    c.data_type
                ),
            );
        }
        let dated = matches!(data_type, DataType::Date32 | DataType::Timestamp(..));
        let mut bound = |option: &str, text: Option<&String>, default: chrono::NaiveDate| {
            let Some(text) = text else {
                return default;
            };
            if !dated {
                d.push(
                    &f.rel,
                    format!("{at}.{option}"),
                    format!(
                        "found {option} on a {} column, expected a date or timestamp column",
                        c.data_type
                    ),
                );
                return default;
            }
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap_or_else(|_| {
                d.push(
                    &f.rel,
                    format!("{at}.{option}"),
                    format!("found {text:?}, expected a date YYYY-MM-DD"),
                );
                default
            })
        };
        let earliest = bound("earliest", c.earliest.as_ref(), DEFAULT_EARLIEST);
        let latest = bound("latest", c.latest.as_ref(), DEFAULT_LATEST);
        if earliest > latest {
            d.push(
                &f.rel,
                format!("{at}.latest"),
                format!("found {latest}, expected a date not before earliest {earliest}"),
            );
        }
        columns.push(ColumnSpec {
            name: c.name,
            data_type,
            nullable: c.nullable,
            domain: c.domain,
            description: c.description,
            negative: c.negative,
            dates: (earliest, latest),
        });
    }
    columns
}

/// `schemas/out/<dataset>.toml`: the contract of one published dataset.
fn compile_contract(f: &ConfigFile, d: &mut Diagnostics) -> Option<OutputContract> {
    let raw: RawContract = parse(&f.rel, "", toml::Value::Table(f.table.clone()), d)?;
    expect_stem(f, "dataset", &raw.dataset, d);
    let before = d.items.len();
    let columns = compile_columns(f, raw.columns, &[], d);
    for (i, k) in raw.key.iter().enumerate() {
        if !columns.iter().any(|c| &c.name == k) {
            d.push(
                &f.rel,
                format!("key[{i}]"),
                format!("found {k:?}, expected one of the contract's columns"),
            );
        }
    }
    (d.items.len() == before).then_some(OutputContract {
        dataset: raw.dataset,
        version: raw.version,
        description: raw.description,
        key: raw.key,
        columns,
    })
}

fn check_env_syntax(file: &str, path: &str, text: &str, d: &mut Diagnostics) {
    if let Err(e) = expand_env(text, |_| Some("x".into())) {
        d.push(file, path, e);
    }
}

fn check_pointer(file: &str, path: &str, pointer: &str, d: &mut Diagnostics) {
    if !pointer.is_empty() && !pointer.starts_with('/') {
        d.push(
            file,
            path,
            format!("found {pointer:?}, expected a JSON pointer (\"\" or starting with \"/\")"),
        );
    }
}

/// The format fields of a source (an object-store file or a file served
/// over HTTP), as written.
struct RawFileFormat {
    format: String,
    encoding: Option<String>,
    compression: Option<String>,
    records: Option<String>,
    delimiter: Option<String>,
    sheet: Option<String>,
    header_row: Option<u32>,
}

/// A file's format and whether it is gzip, from the source's format fields.
fn compile_file_format(
    file: &str,
    raw: RawFileFormat,
    d: &mut Diagnostics,
) -> Option<(FileFormat, bool)> {
    let RawFileFormat {
        format,
        encoding,
        compression,
        records,
        delimiter,
        sheet,
        header_row,
    } = raw;
    let encoding = match encoding.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("utf-8") | Some("utf8") => TextEncoding::Utf8,
        Some("gb18030") | Some("gbk") | Some("gb2312") => TextEncoding::Gb18030,
        Some(other) => {
            d.push(
                file,
                "source.encoding",
                format!("found {other:?}, expected one of utf-8, gb18030, gbk"),
            );
            TextEncoding::Utf8
        }
    };
    let delimiter = match delimiter.as_deref() {
        None => b',',
        Some(s) if s.len() == 1 && s.is_ascii() => s.as_bytes()[0],
        Some("\\t") => b'\t',
        Some(other) => {
            d.push(
                file,
                "source.delimiter",
                format!("found {other:?}, expected one ASCII character"),
            );
            b','
        }
    };
    let format = match format.as_str() {
        "csv" => FileFormat::Csv {
            delimiter,
            encoding,
        },
        "ndjson" => FileFormat::Ndjson,
        "json" => {
            let pointer = records.clone().unwrap_or_default();
            check_pointer(file, "source.records", &pointer, d);
            FileFormat::Json { pointer }
        }
        "parquet" => FileFormat::Parquet,
        "excel" | "xlsx" | "xls" => {
            let header_row = header_row.unwrap_or(1);
            if header_row == 0 {
                d.push(
                    file,
                    "source.header_row",
                    "found 0, expected the 1-based row of the header (1 is the first row)",
                );
            }
            FileFormat::Excel {
                sheet: sheet.clone(),
                header_row: header_row.max(1),
            }
        }
        other => {
            d.push(
                file,
                "source.format",
                format!(
                    "found {other:?}, expected one of csv, ndjson, json, parquet, excel (xlsx, xls)"
                ),
            );
            return None;
        }
    };
    if (sheet.is_some() || header_row.is_some()) && !matches!(format, FileFormat::Excel { .. }) {
        d.push(
            file,
            if sheet.is_some() {
                "source.sheet"
            } else {
                "source.header_row"
            },
            "only an excel source has a sheet and a header row",
        );
    }
    if records.is_some() && !matches!(format, FileFormat::Json { .. }) {
        d.push(
            file,
            "source.records",
            "only a json source has a records pointer",
        );
    }
    let gzip = match compression.as_deref() {
        None | Some("none") => false,
        Some("gzip") => true,
        Some(other) => {
            d.push(
                file,
                "source.compression",
                format!("found {other:?}, expected none or gzip"),
            );
            false
        }
    };
    Some((format, gzip))
}

/// A `[source]` table (of the feed, or of a `[[part]]` at `at`): where it
/// comes from and how its deliveries merge. `since_param` fetches only what
/// changed, so it needs a merge that keeps the rest (`upsert` or `append`).
fn compile_source_merge(
    file: &str,
    at: &str,
    mut raw: RawSource,
    d: &mut Diagnostics,
) -> Option<(SourceKind, Merge)> {
    let (merge, tombstone) = match &mut raw {
        RawSource::ObjectStore {
            merge, tombstone, ..
        }
        | RawSource::Http {
            merge, tombstone, ..
        } => (merge.take(), tombstone.take()),
    };
    let merge = match merge.as_deref() {
        None | Some("snapshot") => Merge::Snapshot,
        Some("append") => Merge::Append,
        Some("upsert") => Merge::Upsert {
            tombstone: tombstone.as_ref().map(|t| Tombstone {
                field: t.field.clone(),
                value: t.value.trim().to_string(),
            }),
        },
        Some(other) => {
            d.push(
                file,
                format!("{at}.merge"),
                format!("found {other:?}, expected snapshot, append or upsert"),
            );
            Merge::Snapshot
        }
    };
    if let Some(t) = &tombstone {
        if !matches!(merge, Merge::Upsert { .. }) {
            d.push(
                file,
                format!("{at}.tombstone"),
                format!(
                    "a tombstone deletes by record id: it needs merge = \"upsert\" (found {:?})",
                    merge.as_str()
                ),
            );
        }
        if t.field.trim().is_empty() || t.value.trim().is_empty() {
            d.push(
                file,
                format!("{at}.tombstone"),
                "name the raw field and the value that mark a deleted record",
            );
        }
    }
    let kind = compile_source_kind(file, raw, d)?;
    if let SourceKind::Http(h) = &kind
        && h.since_param.is_some()
        && merge == Merge::Snapshot
    {
        d.push(
            file,
            format!("{at}.since_param"),
            "an API asked for what changed since the watermark delivers a delta, not the full state: \
             with merge = \"snapshot\" every record it did not mention would vanish from the snapshot; \
             set merge = \"upsert\" (by record id, with a tombstone if it sends deletions) or \"append\" (events that never change)",
        );
    }
    Some((kind, merge))
}

fn compile_source_kind(file: &str, raw: RawSource, d: &mut Diagnostics) -> Option<SourceKind> {
    match raw {
        RawSource::ObjectStore {
            url,
            format,
            encoding,
            compression,
            records,
            delimiter,
            sheet,
            header_row,
            merge: _,
            tombstone: _,
        } => {
            check_env_syntax(file, "source.url", &url, d);
            let (format, gzip) = compile_file_format(
                file,
                RawFileFormat {
                    format,
                    encoding,
                    compression,
                    records,
                    delimiter,
                    sheet,
                    header_row,
                },
                d,
            )?;
            Some(SourceKind::ObjectStore { url, format, gzip })
        }
        RawSource::Http {
            url,
            records,
            pagination,
            format,
            encoding,
            compression,
            delimiter,
            sheet,
            header_row,
            auth,
            total,
            since_param,
            requests_per_second,
            concurrency,
            timeout_seconds,
            max_retries,
            retry_base_ms,
            retry_budget_seconds,
            max_response_bytes,
            max_run_bytes,
            allow_redirect_origins,
            success_pointer,
            success_values,
            total_may_fall_short,
            merge: _,
            tombstone: _,
        } => {
            check_env_syntax(file, "source.url", &url, d);
            let allow_redirect_origins = allow_redirect_origins
                .iter()
                .enumerate()
                .filter_map(|(i, o)| {
                    let path = format!("source.allow_redirect_origins[{i}]");
                    match reqwest::Url::parse(o) {
                        Ok(u)
                            if matches!(u.scheme(), "http" | "https")
                                && u.username().is_empty()
                                && u.password().is_none()
                                && u.path() == "/"
                                && u.query().is_none()
                                && u.fragment().is_none() =>
                        {
                            Some(u.origin().ascii_serialization())
                        }
                        _ => {
                            d.push(
                                file,
                                &path,
                                format!(
                                    "found {o:?}, expected an origin such as \"https://host\" or \"http://host:8080\" (no path, query or user)"
                                ),
                            );
                            None
                        }
                    }
                })
                .collect();
            let success = match (success_pointer, success_values.is_empty()) {
                (None, true) => None,
                (None, false) => {
                    d.push(
                        file,
                        "source.success_values",
                        "found values without source.success_pointer, expected both",
                    );
                    None
                }
                (Some(_), true) => {
                    d.push(
                        file,
                        "source.success_values",
                        "missing: source.success_pointer needs the values that mean success",
                    );
                    None
                }
                (Some(pointer), false) => {
                    check_pointer(file, "source.success_pointer", &pointer, d);
                    let values = success_values
                        .iter()
                        .enumerate()
                        .filter_map(|(i, v)| match v {
                            toml::Value::Integer(n) => Some(n.to_string()),
                            toml::Value::String(s) => Some(s.clone()),
                            toml::Value::Boolean(b) => Some(b.to_string()),
                            other => {
                                d.push(
                                    file,
                                    format!("source.success_values[{i}]"),
                                    format!(
                                        "found {other}, expected an integer, a string or a boolean"
                                    ),
                                );
                                None
                            }
                        })
                        .collect();
                    Some(SuccessCode { pointer, values })
                }
            };
            if let Some(t) = &total {
                check_pointer(file, "source.total", t, d);
            }
            let body = match (format, pagination) {
                (Some(format), None) => {
                    for (path, given) in [
                        ("source.total", total.is_some()),
                        ("source.total_may_fall_short", total_may_fall_short),
                        ("source.success_pointer", success.is_some()),
                    ] {
                        if given {
                            d.push(
                                file,
                                path,
                                "only a paged JSON API (source.pagination) has this; a downloaded file (source.format) has no pages",
                            );
                        }
                    }
                    let (format, gzip) = compile_file_format(
                        file,
                        RawFileFormat {
                            format,
                            encoding,
                            compression,
                            records,
                            delimiter,
                            sheet,
                            header_row,
                        },
                        d,
                    )?;
                    HttpBody::File { format, gzip }
                }
                (Some(_), Some(_)) => {
                    d.push(
                        file,
                        "source.format",
                        "found both source.format and source.pagination: a URL serves either one file (format) or a paged JSON API (pagination)",
                    );
                    return None;
                }
                (None, None) => {
                    d.push(
                        file,
                        "source.pagination",
                        "missing: a paged JSON API needs source.pagination (or set source.format to download one file)",
                    );
                    return None;
                }
                (None, Some(pagination)) => {
                    for (path, given) in [
                        ("source.encoding", encoding.is_some()),
                        ("source.compression", compression.is_some()),
                        ("source.delimiter", delimiter.is_some()),
                        ("source.sheet", sheet.is_some()),
                        ("source.header_row", header_row.is_some()),
                    ] {
                        if given {
                            d.push(
                                file,
                                path,
                                "only a downloaded file (source.format) has this; a paged JSON API's pages are JSON",
                            );
                        }
                    }
                    let Some(records) = records else {
                        d.push(
                            file,
                            "source.records",
                            "missing: the JSON pointer to each page's record array",
                        );
                        return None;
                    };
                    check_pointer(file, "source.records", &records, d);
                    let pagination = match pagination {
                        RawPagination::PageNumber {
                            page_param,
                            size_param,
                            page_size,
                            first_page,
                        } => Pagination::PageNumber {
                            page_param,
                            size_param,
                            page_size,
                            first_page: first_page.unwrap_or(1),
                        },
                        RawPagination::OffsetLimit {
                            offset_param,
                            limit_param,
                            page_size,
                        } => Pagination::OffsetLimit {
                            offset_param,
                            limit_param,
                            page_size,
                        },
                        RawPagination::Cursor {
                            cursor_param,
                            next_cursor,
                        } => {
                            check_pointer(file, "source.pagination.next_cursor", &next_cursor, d);
                            Pagination::Cursor {
                                cursor_param,
                                next_cursor,
                            }
                        }
                        RawPagination::LinkHeader {} => Pagination::LinkHeader,
                    };
                    if let Pagination::PageNumber { page_size: 0, .. }
                    | Pagination::OffsetLimit { page_size: 0, .. } = pagination
                    {
                        d.push(
                            file,
                            "source.pagination.page_size",
                            "found 0, expected at least 1",
                        );
                    }
                    HttpBody::Pages {
                        records,
                        pagination,
                    }
                }
            };
            let requests_per_second = requests_per_second.unwrap_or(10.0);
            if !(requests_per_second > 0.0 && requests_per_second.is_finite()) {
                d.push(
                    file,
                    "source.requests_per_second",
                    format!("found {requests_per_second}, expected a positive number"),
                );
            }
            let concurrency = concurrency.unwrap_or(2);
            if concurrency == 0 {
                d.push(file, "source.concurrency", "found 0, expected at least 1");
            }
            let auth = auth.map(|a| match a {
                RawAuth::Bearer { token_env } => Auth::Bearer { token_env },
                RawAuth::ApiKey { header, key_env } => Auth::ApiKey { header, key_env },
            });
            Some(SourceKind::Http(Box::new(HttpSource {
                url,
                body,
                auth,
                total,
                since_param,
                requests_per_second,
                concurrency,
                timeout_seconds: timeout_seconds.unwrap_or(30),
                max_retries: max_retries.unwrap_or(5),
                retry_base_ms: retry_base_ms.unwrap_or(500),
                retry_budget_seconds: retry_budget_seconds.unwrap_or(300),
                max_response_bytes: max_response_bytes.unwrap_or(64 << 20),
                max_run_bytes: max_run_bytes.unwrap_or(8 << 30),
                allow_redirect_origins,
                success,
                total_may_fall_short,
            })))
        }
    }
}

fn compile_source(
    f: &ConfigFile,
    schema_names: &BTreeSet<String>,
    schemas: &BTreeMap<String, FeedSchema>,
    d: &mut Diagnostics,
) -> Option<Source> {
    let raw: RawSourceFile = parse(&f.rel, "", toml::Value::Table(f.table.clone()), d)?;
    let before = d.items.len();
    expect_stem(f, "feed", &raw.feed, d);
    let kind = compile_source_merge(&f.rel, "source", raw.source, d);
    let schema = schemas.get(&raw.schema);
    if schema_names.contains(&raw.schema) && raw.schema != raw.feed {
        // Rules read each feed's table under its name, with its schema.
        d.push(
            &f.rel,
            "schema",
            format!(
                "found {:?}, expected {:?}: a feed's canonical table is schemas/<feed>.toml",
                raw.schema, raw.feed
            ),
        );
    }
    if !schema_names.contains(&raw.schema) {
        d.push(
            &f.rel,
            "schema",
            format!(
                "found {:?}, expected one of the schemas in schemas/: {}",
                raw.schema,
                one_of(schema_names)
            ),
        );
    }
    let first = compile_part_mapping(&f.rel, "mapping", raw.mapping, schema, d);
    let mut parts = Vec::new();
    for (i, p) in raw.part.into_iter().enumerate() {
        let at = format!("part[{i}]");
        if p.name.trim().is_empty()
            || p.name == raw.feed
            || parts.iter().any(|q: &Part| q.name == p.name)
        {
            d.push(
                &f.rel,
                format!("{at}.name"),
                format!(
                    "found {:?}, expected a name of its own (not the feed's, not another part's)",
                    p.name
                ),
            );
        }
        let kind = compile_source_merge(&f.rel, &format!("{at}.source"), p.source, d);
        let mapping = compile_part_mapping(&f.rel, &format!("{at}.mapping"), p.mapping, schema, d);
        if let Some((kind, merge)) = kind {
            parts.push(Part {
                name: p.name,
                kind,
                merge,
                key_fields: mapping.key_fields,
                name_field: mapping.name_field,
                record_id: mapping.record_id,
                columns: mapping.columns,
            });
        }
    }
    let g = raw.guards;
    for (name, share) in [
        ("max_churn", g.max_churn),
        ("min_valid_keys", g.min_valid_keys),
        ("min_registry_match", g.min_registry_match),
        ("max_quarantined", g.max_quarantined),
        ("max_shrink", g.max_shrink),
        ("max_duplicate_keys", g.max_duplicate_keys),
    ] {
        if let Some(v) = share.filter(|v| !(0.0..=1.0).contains(v)) {
            d.push(
                &f.rel,
                format!("guards.{name}"),
                format!("found {v}, expected a share between 0 and 1"),
            );
        }
    }
    if let (Some(lo), Some(hi)) = (g.min_rows, g.max_rows)
        && lo > hi
    {
        d.push(
            &f.rel,
            "guards",
            format!("min_rows {lo} is above max_rows {hi}"),
        );
    }
    let source = Source {
        feed: raw.feed,
        schema: raw.schema,
        description: raw.description,
        department: raw.department,
        required: raw.required,
        max_age_days: raw.max_age_days,
        kind: kind.as_ref()?.0.clone(),
        merge: kind?.1,
        key_fields: first.key_fields,
        name_field: first.name_field,
        record_id: first.record_id,
        columns: first.columns,
        guards: Guards {
            min_rows: g.min_rows,
            max_rows: g.max_rows,
            declared_count: g.declared_count,
            max_churn: g.max_churn,
            min_valid_keys: g.min_valid_keys,
            min_registry_match: g.min_registry_match,
            max_quarantined: g.max_quarantined.unwrap_or(0.5),
            max_shrink: Some(g.max_shrink.unwrap_or(DEFAULT_MAX_SHRINK)),
            max_duplicate_keys: Some(g.max_duplicate_keys.unwrap_or(DEFAULT_MAX_DUPLICATE_KEYS)),
            allow_absent_fields: g.allow_absent_fields.unwrap_or_default(),
        },
        parts,
    };
    (d.items.len() == before).then_some(source)
}

/// A part's mapping, compiled.
struct PartMapping {
    key_fields: Vec<String>,
    name_field: Option<String>,
    record_id: Vec<String>,
    columns: BTreeMap<String, ColumnMapping>,
}

/// Compiles one `[mapping]` (of the feed's first part or of a `[[part]]`)
/// against the feed's schema; problems are reported under `prefix`.
fn compile_part_mapping(
    file: &str,
    prefix: &str,
    mapping: RawMapping,
    schema: Option<&FeedSchema>,
    d: &mut Diagnostics,
) -> PartMapping {
    let key_fields = match mapping.key {
        RawKey::One(field) => vec![field],
        RawKey::Several(fields) => fields,
    };
    if key_fields.is_empty() || key_fields.iter().any(|k| k.trim().is_empty()) {
        d.push(
            file,
            format!("{prefix}.key"),
            "name the raw field with the organization key, or a list of them in order of preference",
        );
    }
    for (i, field) in key_fields.iter().enumerate() {
        if key_fields[..i].contains(field) {
            d.push(
                file,
                format!("{prefix}.key"),
                format!("{field:?} is listed twice"),
            );
        }
    }
    if mapping.record_id.is_empty() {
        d.push(
            file,
            format!("{prefix}.record_id"),
            "found [], expected at least one raw field",
        );
    }
    let mut columns = BTreeMap::new();
    for (target, mapping) in mapping.columns {
        let at = format!("{prefix}.columns.{}", key(&target));
        let column = schema.and_then(|s| s.columns.iter().find(|c| c.name == target));
        if let (Some(s), None) = (schema, column) {
            d.push(
                file,
                &at,
                format!(
                    "found column {target:?}, expected a column of schema {:?}: {}",
                    s.feed,
                    one_of(s.columns.iter().map(|c| &c.name))
                ),
            );
            continue;
        }
        if let Some(m) = compile_mapping(file, &at, mapping, column, d) {
            columns.insert(target, m);
        }
    }
    if let Some(s) = schema {
        for c in s.columns.iter().filter(|c| !c.nullable) {
            if !columns.contains_key(&c.name) {
                d.push(
                    file,
                    format!("{prefix}.columns"),
                    format!(
                        "column {:?} of schema {:?} is not nullable and has no mapping",
                        c.name, s.feed
                    ),
                );
            }
        }
    }
    PartMapping {
        key_fields,
        name_field: mapping.name,
        record_id: mapping.record_id,
        columns,
    }
}

fn compile_mapping(
    file: &str,
    at: &str,
    mapping: RawColumnMapping,
    column: Option<&ColumnSpec>,
    d: &mut Diagnostics,
) -> Option<ColumnMapping> {
    let rule = match mapping {
        RawColumnMapping::Field(field) => {
            return Some(ColumnMapping::Field {
                field,
                scale: 1,
                labels: None,
                hash: false,
            });
        }
        RawColumnMapping::Rule(table) => {
            parse::<RawColumnRule>(file, at, toml::Value::Table(table), d)?
        }
    };
    let kinds = [
        rule.field.is_some(),
        rule.constant.is_some(),
        rule.sql.is_some(),
    ];
    if kinds.iter().filter(|k| **k).count() != 1 {
        d.push(file, at, "expected exactly one of field, constant or sql");
        return None;
    }
    if let Some(sql) = &rule.sql
        && let Err(e) = Parser::new(&GenericDialect {})
            .try_with_sql(sql)
            .and_then(|mut p| p.parse_expr())
    {
        d.push(
            file,
            format!("{at}.sql"),
            format!("found {sql:?}, expected a SQL expression: {e}"),
        );
    }
    if let Some(value) = rule.constant {
        let text = match value {
            toml::Value::String(s) => s,
            other => other.to_string(),
        };
        if let Some(domain) = column.and_then(|c| c.domain.as_ref())
            && !domain.contains(&text)
        {
            d.push(
                file,
                format!("{at}.constant"),
                format!("found {text:?}, expected one of {}", one_of(domain)),
            );
        }
        return Some(ColumnMapping::Constant(text));
    }
    let scale = match rule.unit.as_deref() {
        None | Some("yuan") => 1,
        Some("wan_yuan") => 10_000,
        Some(other) => {
            d.push(
                file,
                format!("{at}.unit"),
                format!("found {other:?}, expected yuan or wan_yuan"),
            );
            1
        }
    };
    if let Some(c) = column {
        if scale != 1
            && !matches!(
                c.data_type,
                DataType::Decimal128(..) | DataType::Float64 | DataType::Int64
            )
        {
            d.push(
                file,
                format!("{at}.unit"),
                format!(
                    "found a unit on column {:?} of type {}, expected a numeric column",
                    c.name, c.data_type
                ),
            );
        }
        if rule.hash && c.data_type != DataType::Utf8 {
            d.push(
                file,
                format!("{at}.hash"),
                format!(
                    "column {:?} is {}, expected a string column to hold a hash",
                    c.name, c.data_type
                ),
            );
        }
    }
    if let Some(labels) = &rule.labels {
        match column.and_then(|c| c.domain.as_ref()) {
            Some(domain) => {
                for (label, value) in labels {
                    if !domain.contains(value) {
                        d.push(
                            file,
                            format!("{at}.enum.{}", key(label)),
                            format!("found {value:?}, expected one of {}", one_of(domain)),
                        );
                    }
                }
            }
            None => {
                if let Some(c) = column {
                    d.push(
                        file,
                        format!("{at}.enum"),
                        format!("column {:?} has no enum domain in its schema", c.name),
                    );
                }
            }
        }
    }
    // A SQL result is converted as a field's value is: unit, enum, hash.
    Some(match rule.sql {
        Some(sql) => ColumnMapping::Sql {
            sql,
            scale,
            labels: rule.labels,
            hash: rule.hash,
        },
        None => ColumnMapping::Field {
            field: rule.field.unwrap_or_default(),
            scale,
            labels: rule.labels,
            hash: rule.hash,
        },
    })
}

fn compile_rules(f: &ConfigFile, rules: &mut Vec<Rule>, d: &mut Diagnostics) {
    let Some(raw) = parse::<RawRuleFile>(&f.rel, "", toml::Value::Table(f.table.clone()), d) else {
        return;
    };
    if raw.rule.is_empty() {
        d.push(&f.rel, "rule", "found no [[rule]], expected at least one");
    }
    for (i, value) in raw.rule.into_iter().enumerate() {
        let at = format!("rule[{i}]");
        let Some(r) = parse::<RawRule>(&f.rel, &at, value, d) else {
            continue;
        };
        let at = format!("rule[{i}] ({})", r.id);
        let before = d.items.len();
        if let Some(other) = rules.iter().find(|x| x.id == r.id) {
            d.push(
                &f.rel,
                format!("{at}.id"),
                format!(
                    "found {:?} a second time (first in pipelines/rules/{}.toml), expected unique rule ids",
                    r.id, other.file
                ),
            );
        }
        let dimension = Dimension::parse(&r.dimension);
        if dimension.is_none() {
            d.push(
                &f.rel,
                format!("{at}.dimension"),
                format!(
                    "found {:?}, expected one of {}",
                    r.dimension,
                    Dimension::ALL.map(Dimension::as_str).join(", ")
                ),
            );
        }
        let window = RuleWindow::parse(&r.window);
        if window.is_none() {
            d.push(
                &f.rel,
                format!("{at}.window"),
                format!(
                    "found {:?}, expected one of {}",
                    r.window,
                    RuleWindow::NAMES
                ),
            );
        }
        if r.points > MAX_START_POINTS {
            d.push(
                &f.rel,
                format!("{at}.points"),
                format!("found {}, expected at most {MAX_START_POINTS}", r.points),
            );
        }
        if r.red_line && r.points > 0 {
            d.push(
                &f.rel,
                format!("{at}.points"),
                format!(
                    "found {} on a red-line rule, expected 0: red lines carry no points",
                    r.points
                ),
            );
        }
        if let Some(event) = &r.event {
            let mut seen = BTreeSet::new();
            if event.is_empty() {
                d.push(
                    &f.rel,
                    format!("{at}.event"),
                    "found [], expected the output columns that name the event (default: [\"source_feed\", \"source_record_id\"])",
                );
            }
            for c in event.iter().filter(|c| !seen.insert(c.as_str())) {
                d.push(&f.rel, format!("{at}.event"), format!("names {c:?} twice"));
            }
        }
        if let Some(flag) = r.flag.as_deref().filter(|f| !FLAGS.contains(f)) {
            d.push(
                &f.rel,
                format!("{at}.flag"),
                format!("found {flag:?}, expected one of {}", FLAGS.join(", ")),
            );
        }
        for placeholder in placeholders(&r.sql) {
            if !RULE_PLACEHOLDERS.contains(&placeholder.as_str()) {
                d.push(
                    &f.rel,
                    format!("{at}.sql"),
                    format!(
                        "found placeholder {placeholder}, expected one of {}",
                        RULE_PLACEHOLDERS.join(", ")
                    ),
                );
            }
        }
        if let (Some(dimension), Some(window), true) = (dimension, window, d.items.len() == before)
        {
            rules.push(Rule {
                id: r.id,
                title: r.title,
                title_zh: r.title_zh,
                file: f.stem.clone(),
                dimension,
                points: r.points,
                red_line: r.red_line,
                window,
                flag: r.flag,
                basis: r.basis,
                event: r
                    .event
                    .unwrap_or_else(|| DEFAULT_EVENT.iter().map(|c| c.to_string()).collect()),
                sql: r.sql,
            });
        }
    }
}

/// `{word}` occurrences in SQL text.
fn placeholders(sql: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = sql;
    while let Some(start) = rest.find('{') {
        let after = &rest[start..];
        match after.find('}') {
            Some(end) => {
                found.push(after[..=end].to_string());
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
    found
}

fn compile_pipeline(
    f: &ConfigFile,
    feeds: &BTreeSet<String>,
    rule_files: &BTreeSet<String>,
    d: &mut Diagnostics,
) -> Option<Pipeline> {
    let raw: RawPipeline = parse(&f.rel, "", toml::Value::Table(f.table.clone()), d)?;
    let before = d.items.len();
    expect_stem(f, "name", &raw.name, d);
    for (i, s) in raw.sources.iter().enumerate() {
        if !feeds.contains(s) {
            d.push(
                &f.rel,
                format!("sources[{i}]"),
                format!(
                    "found {s:?}, expected one of the feeds in pipelines/sources/: {}",
                    one_of(feeds)
                ),
            );
        } else if raw.sources[..i].contains(s) {
            d.push(
                &f.rel,
                format!("sources[{i}]"),
                format!("found {s:?} a second time"),
            );
        }
    }
    if !raw.sources.iter().any(|s| s == SPINE_FEED) {
        d.push(
            &f.rel,
            "sources",
            "expected \"registry\": the registry is the spine every other feed joins to",
        );
    }
    for (i, r) in raw.rules.iter().enumerate() {
        if !rule_files.contains(r) {
            d.push(
                &f.rel,
                format!("rules[{i}]"),
                format!(
                    "found {r:?}, expected one of the rule files in pipelines/rules/: {}",
                    one_of(rule_files)
                ),
            );
        }
    }
    check_env_syntax(&f.rel, "warehouse", &raw.warehouse, d);
    let mut bands = Vec::new();
    for (i, b) in raw.scoring.bands.iter().enumerate() {
        match Colour::parse(&b.colour) {
            Some(colour) if b.min <= b.max => bands.push(Band {
                colour,
                min: b.min,
                max: b.max,
            }),
            Some(_) => d.push(
                &f.rel,
                format!("scoring.bands[{i}]"),
                format!("min {} is above max {}", b.min, b.max),
            ),
            None => d.push(
                &f.rel,
                format!("scoring.bands[{i}].colour"),
                format!(
                    "found {:?}, expected one of green, yellow, orange, red",
                    b.colour
                ),
            ),
        }
    }
    if let Some(mb) = raw.scoring.memory_limit_mb
        && !MEMORY_LIMIT_MB.contains(&mb)
    {
        d.push(
            &f.rel,
            "scoring.memory_limit_mb",
            format!(
                "found {mb}, expected {} to {} (MiB, 64 MiB to 1 TiB)",
                MEMORY_LIMIT_MB.start(),
                MEMORY_LIMIT_MB.end()
            ),
        );
    }
    if raw.scoring.start_points > MAX_START_POINTS {
        // Every total up to it is checked against the bands below.
        d.push(
            &f.rel,
            "scoring.start_points",
            format!(
                "found {}, expected at most {MAX_START_POINTS}",
                raw.scoring.start_points
            ),
        );
        return None;
    }
    for points in 0..=raw.scoring.start_points {
        let n = bands
            .iter()
            .filter(|b| (b.min..=b.max).contains(&points))
            .count();
        if n != 1 {
            d.push(
                &f.rel,
                "scoring.bands",
                format!(
                    "{points} points fall in {n} bands, expected every total from 0 to {} in exactly one",
                    raw.scoring.start_points
                ),
            );
            break;
        }
    }
    let pipeline_name = raw.name.clone();
    let pipeline = Pipeline {
        name: raw.name,
        description: raw.description,
        sources: raw.sources,
        rule_files: raw.rules,
        warehouse: raw.warehouse,
        scoring: Scoring {
            start_points: raw.scoring.start_points,
            bands,
            memory_limit_mb: raw.scoring.memory_limit_mb.unwrap_or(1024),
        },
        person_hash_key_env: raw
            .person_hash_key_env
            .unwrap_or_else(|| "QINGLIAN_PERSON_KEY".to_string()),
        push: raw.push.map(|p| compile_push(&f.rel, p, d)),
        drop: raw.drop.map(|p| {
            check_env_syntax(&f.rel, "drop.url", &p.url, d);
            ParquetDrop { url: p.url }
        }),
        demonstration: raw
            .demonstration
            .map(|r| compile_demonstration(&f.rel, r, d))
            .unwrap_or_default(),
        public: compile_public(&f.rel, raw.public, d),
        engine: compile_engine(&f.rel, &pipeline_name, raw.engine, d),
    };
    (d.items.len() == before).then_some(pipeline)
}

fn compile_demonstration(file: &str, r: RawDemonstration, d: &mut Diagnostics) -> Demonstration {
    let default = Demonstration::default();
    const RATINGS: [&str; 5] = ["1A", "2A", "3A", "4A", "5A"];
    const PROGRAMMES: [&str; 2] = ["welfare_venture", "government_purchase"];
    let lookback_days = r.lookback_days.unwrap_or(default.lookback_days);
    if !(1..=3660).contains(&lookback_days) {
        d.push(
            file,
            "demonstration.lookback_days",
            format!("found {lookback_days}, expected 1 to 3660"),
        );
    }
    let clean_years = r.clean_years.unwrap_or(default.clean_years);
    if !(1..=20).contains(&clean_years) {
        d.push(
            file,
            "demonstration.clean_years",
            format!("found {clean_years}, expected 1 to 20"),
        );
    }
    let min_rating = r.min_rating.unwrap_or(default.min_rating);
    if !RATINGS.contains(&min_rating.as_str()) {
        d.push(
            file,
            "demonstration.min_rating",
            format!(
                "found {min_rating:?}, expected one of {}",
                RATINGS.join(", ")
            ),
        );
    }
    let entrusted = r
        .entrusted_programmes
        .unwrap_or(default.entrusted_programmes);
    for (i, p) in entrusted.iter().enumerate() {
        if !PROGRAMMES.contains(&p.as_str()) {
            d.push(
                file,
                format!("demonstration.entrusted_programmes[{i}]"),
                format!("found {p:?}, expected one of {}", PROGRAMMES.join(", ")),
            );
        }
    }
    let patterns = r
        .industry_name_patterns
        .unwrap_or(default.industry_name_patterns);
    for (i, p) in patterns.iter().enumerate() {
        if p.trim().is_empty() {
            d.push(
                file,
                format!("demonstration.industry_name_patterns[{i}]"),
                "found \"\", expected a fragment of a name such as \"商会\"",
            );
        }
    }
    let limit = r.limit.unwrap_or(default.limit);
    if limit == 0 {
        d.push(file, "demonstration.limit", "found 0, expected at least 1");
    }
    Demonstration {
        lookback_days,
        clean_years,
        min_rating,
        industry_name_patterns: patterns,
        entrusted_programmes: entrusted,
        limit,
    }
}

/// Whether this build can score on a Ballista cluster.
pub(crate) const BALLISTA_BUILT: bool = cfg!(feature = "ballista");

fn compile_engine(file: &str, pipeline: &str, e: Option<RawEngine>, d: &mut Diagnostics) -> Engine {
    let Some(e) = e else {
        return Engine::Local;
    };
    match e.kind.as_str() {
        "local" => {
            for (key, given) in [
                ("engine.url", e.url.is_some()),
                ("engine.target_partitions", e.target_partitions.is_some()),
                ("engine.job_name", e.job_name.is_some()),
            ] {
                if given {
                    d.push(file, key, "is for kind = \"ballista\" only; remove it or set engine.kind = \"ballista\"");
                }
            }
            Engine::Local
        }
        "ballista" => {
            if !BALLISTA_BUILT {
                d.push(
                    file,
                    "engine.kind",
                    "this qinglian was built without Ballista; build it with \
                     `cargo build --release --features ballista` (README \"Scoring on a cluster\")",
                );
            }
            let url = e.url.unwrap_or_default();
            if url.is_empty() {
                d.push(
                    file,
                    "engine.url",
                    "missing: the scheduler, such as \"df://127.0.0.1:50050\"",
                );
            } else {
                check_env_syntax(file, "engine.url", &url, d);
                if !url.contains("${") && !url.starts_with("df://") {
                    d.push(
                        file,
                        "engine.url",
                        format!("found {url:?}, expected df://host:port"),
                    );
                }
            }
            let target_partitions = e.target_partitions.unwrap_or(4);
            if !(1..=4096).contains(&target_partitions) {
                d.push(
                    file,
                    "engine.target_partitions",
                    format!("found {target_partitions}, expected 1 to 4096"),
                );
            }
            let job_name = e.job_name.unwrap_or_else(|| format!("qinglian {pipeline}"));
            Engine::Ballista(BallistaEngine {
                url,
                target_partitions,
                job_name,
            })
        }
        other => {
            d.push(
                file,
                "engine.kind",
                format!("found {other:?}, expected \"local\" or \"ballista\""),
            );
            Engine::Local
        }
    }
}

fn compile_public(file: &str, p: Option<RawPublic>, d: &mut Diagnostics) -> PublicLookup {
    let default = PublicLookup::default();
    let Some(p) = p else {
        return default;
    };
    if let Some(url) = &p.base_url {
        check_env_syntax(file, "public.base_url", url, d);
    }
    let kinds = [
        "warning",
        "fine",
        "confiscation",
        "suspension",
        "revocation",
    ];
    let minor = p.minor_penalty_kinds.unwrap_or(default.minor_penalty_kinds);
    for (i, k) in minor.iter().enumerate() {
        if !kinds.contains(&k.as_str()) {
            d.push(
                file,
                format!("public.minor_penalty_kinds[{i}]"),
                format!("found {k:?}, expected one of {}", kinds.join(", ")),
            );
        }
    }
    let years = |key: &str, v: Option<u32>, default: u32, d: &mut Diagnostics| {
        let v = v.unwrap_or(default);
        if !(1..=50).contains(&v) {
            d.push(file, key, format!("found {v}, expected 1 to 50 years"));
        }
        v
    };
    PublicLookup {
        base_url: p.base_url.unwrap_or(default.base_url),
        penalty_years: years(
            "public.penalty_years",
            p.penalty_years,
            default.penalty_years,
            d,
        ),
        minor_penalty_years: years(
            "public.minor_penalty_years",
            p.minor_penalty_years,
            default.minor_penalty_years,
            d,
        ),
        minor_penalty_kinds: minor,
    }
}

fn compile_push(file: &str, p: RawPush, d: &mut Diagnostics) -> Push {
    check_env_syntax(file, "push.endpoint", &p.endpoint, d);
    if p.secret_env.trim().is_empty() {
        d.push(
            file,
            "push.secret_env",
            "found \"\", expected the name of the environment variable holding the shared secret",
        );
    }
    let batch_size = p.batch_size.unwrap_or(500);
    if !(1..=10_000).contains(&batch_size) {
        d.push(
            file,
            "push.batch_size",
            format!("found {batch_size}, expected 1 to 10000 records per request"),
        );
    }
    let timeout_seconds = p.timeout_seconds.unwrap_or(30);
    if timeout_seconds == 0 {
        d.push(file, "push.timeout_seconds", "found 0, expected at least 1");
    }
    Push {
        endpoint: p.endpoint,
        secret_env: p.secret_env,
        batch_size,
        timeout_seconds,
        max_retries: p.max_retries.unwrap_or(6),
        retry_base_ms: p.retry_base_ms.unwrap_or(500),
        retry_budget_seconds: p.retry_budget_seconds.unwrap_or(300),
    }
}

/// Reads a 5-field crontab line, an `@` name, or a 6/7-field seconds-first
/// expression (see [`CronSchedule`]).
pub fn parse_cron(expr: &str) -> Result<(CronSchedule, CronDialect), String> {
    CronSchedule::parse(expr).map(|s| {
        let dialect = s.dialect();
        (s, dialect)
    })
}

fn cron_note(file: &str, job: &Job) -> String {
    let how = match job.cron_dialect {
        CronDialect::Crontab => "5-field crontab (minute hour day month weekday)",
        CronDialect::WithSeconds => "6-field cron with seconds",
    };
    format!(
        "{file}: cron {:?} read as {how}, in {}",
        job.cron, job.timezone
    )
}

fn compile_job(f: &ConfigFile, pipelines: &BTreeSet<String>, d: &mut Diagnostics) -> Option<Job> {
    let raw: RawJob = parse(&f.rel, "", toml::Value::Table(f.table.clone()), d)?;
    let before = d.items.len();
    expect_stem(f, "name", &raw.name, d);
    if !pipelines.contains(&raw.pipeline) {
        d.push(
            &f.rel,
            "pipeline",
            format!(
                "found {:?}, expected one of the pipelines in pipelines/: {}",
                raw.pipeline,
                one_of(pipelines)
            ),
        );
    }
    let cron = parse_cron(&raw.cron)
        .map_err(|e| d.push(&f.rel, "cron", e))
        .ok();
    let zone = raw.timezone.as_deref().unwrap_or("Asia/Shanghai");
    let timezone = chrono_tz::Tz::from_str(zone)
        .map_err(|_| {
            d.push(
                &f.rel,
                "timezone",
                format!("found {zone:?}, expected an IANA time zone such as \"Asia/Shanghai\""),
            )
        })
        .ok();
    let business_date = match raw.business_date.as_deref() {
        None | Some("previous_day") => BusinessDatePolicy::PreviousDay,
        Some("same_day") => BusinessDatePolicy::SameDay,
        Some(other) => {
            d.push(
                &f.rel,
                "business_date",
                format!("found {other:?}, expected previous_day or same_day"),
            );
            BusinessDatePolicy::PreviousDay
        }
    };
    let catch_up = match raw.catch_up {
        None => CatchUp::All { max_dates: 7 },
        Some(c) => match c.policy.as_str() {
            "skip" => CatchUp::Skip,
            "latest" => CatchUp::Latest,
            "all" => match c.max_dates.unwrap_or(7) {
                0 => {
                    d.push(&f.rel, "catch_up.max_dates", "found 0, expected at least 1");
                    CatchUp::Skip
                }
                max_dates => CatchUp::All { max_dates },
            },
            other => {
                d.push(
                    &f.rel,
                    "catch_up.policy",
                    format!("found {other:?}, expected one of skip, latest, all"),
                );
                CatchUp::Skip
            }
        },
    };
    // Bounded so that no retry count or backoff overflows the scheduler's
    // clock arithmetic (a backoff doubles on every retry).
    for (key, value, range) in [
        (
            "max_run_minutes",
            raw.max_run_minutes.map(u64::from),
            1..=10_080u64,
        ),
        ("retries", raw.retries.map(u64::from), 0..=100),
        (
            "retry_backoff_seconds",
            raw.retry_backoff_seconds,
            0..=86_400,
        ),
    ] {
        if let Some(v) = value.filter(|v| !range.contains(v)) {
            d.push(
                &f.rel,
                key,
                format!("found {v}, expected {} to {}", range.start(), range.end()),
            );
        }
    }
    let (schedule, cron_dialect) = cron?;
    let task = match raw.task.as_deref() {
        None | Some("run") => JobTask::Run,
        Some("brief") => JobTask::Brief,
        Some(other) => {
            d.push(
                &f.rel,
                "task",
                format!("found {other:?}, expected run or brief"),
            );
            JobTask::Run
        }
    };
    let job = Job {
        name: raw.name,
        pipeline: raw.pipeline,
        task,
        cron: raw.cron,
        cron_dialect,
        schedule,
        timezone: timezone?,
        business_date,
        catch_up,
        max_run_minutes: raw.max_run_minutes.unwrap_or(180),
        retries: raw.retries.unwrap_or(2),
        retry_backoff_seconds: raw.retry_backoff_seconds.unwrap_or(300),
    };
    (d.items.len() == before).then_some(job)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_cron_dialects_parse() {
        assert_eq!(
            parse_cron("0 2 * * *").map(|x| x.1),
            Ok(CronDialect::Crontab)
        );
        assert_eq!(
            parse_cron("0 0 2 * * *").map(|x| x.1),
            Ok(CronDialect::WithSeconds)
        );
        assert!(parse_cron("0 2 * *").is_err());
        assert!(parse_cron("0 25 * * *").is_err());
    }
}
