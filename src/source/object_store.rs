//! The `object_store` source kind: files behind any URL the object_store
//! crate understands (`file://` or a plain path, `s3://`, `memory://`),
//! selected by a glob, optionally gzip-compressed, in CSV (UTF-8 or
//! GB18030, with or without a BOM), NDJSON, a JSON document with a pointer
//! to its records, or Parquet.
//!
//! This transport lists and opens the files; their formats are read by
//! [`super::formats`], on a blocking thread, as streams from the store
//! (the same readers read a file downloaded over HTTP).

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use globset::{Glob, GlobMatcher};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use tokio::sync::mpsc;

use super::formats::{FileContext, payload_err, read_file};
use super::{FetchError, FetchOptions, FetchReport, PayloadSink, RawBatch};
use crate::project::{FileFormat, Source, expand_env};
use crate::store;

/// Splits a URL at its first path segment holding a glob character.
fn split_glob(url: &str) -> (String, Option<String>) {
    let is_glob = |s: &str| s.contains(['*', '?', '[', '{']);
    let (scheme, rest) = match url.find("://") {
        Some(i) => (&url[..i + 3], &url[i + 3..]),
        None => ("", url),
    };
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.iter().position(|p| is_glob(p)) {
        Some(i) => (
            format!("{scheme}{}", parts[..i].join("/")),
            Some(parts[i..].join("/")),
        ),
        None => {
            let (dir, file) = rest.rsplit_once('/').unwrap_or((".", rest));
            (format!("{scheme}{dir}"), Some(file.to_string()))
        }
    }
}

/// Lists the files under `prefix` whose path relative to it matches `glob`.
async fn list_matching(
    store: &Arc<dyn ObjectStore>,
    prefix: &Path,
    glob: &GlobMatcher,
) -> Result<Vec<ObjectMeta>, object_store::Error> {
    let mut files: Vec<ObjectMeta> = store
        .list(Some(prefix))
        .try_filter(|m| {
            let rel = m
                .location
                .prefix_match(prefix)
                .map(|parts| {
                    parts
                        .map(|p| p.as_ref().to_string())
                        .collect::<Vec<_>>()
                        .join("/")
                })
                .unwrap_or_default();
            futures::future::ready(glob.is_match(&rel))
        })
        .try_collect()
        .await?;
    files.sort_by(|a, b| a.location.cmp(&b.location));
    Ok(files)
}

/// The bytes of the files a source URL selects, gzip counted five times.
pub(super) async fn estimated_bytes(
    url_template: &str,
    gzip: bool,
    vars: &std::collections::BTreeMap<String, String>,
) -> Option<u64> {
    let var = |n: &str| vars.get(n).cloned().or_else(|| std::env::var(n).ok());
    let url = expand_env(url_template, var).ok()?;
    let (base, pattern) = split_glob(&url);
    let (store, prefix) = store::open_with(&base, false, vars).ok()?;
    let glob = Glob::new(pattern.as_deref().unwrap_or("*"))
        .ok()?
        .compile_matcher();
    let files = list_matching(&store, &prefix, &glob).await.ok()?;
    Some(
        files
            .iter()
            .map(|m| {
                let compressed = gzip || m.location.as_ref().ends_with(".gz");
                if compressed { m.size * 5 } else { m.size }
            })
            .sum(),
    )
}

/// Fetches every file the source's URL selects.
#[allow(clippy::too_many_arguments)]
pub(super) async fn fetch(
    source: &Source,
    url_template: &str,
    format: &FileFormat,
    gzip: bool,
    fields: Vec<String>,
    options: &FetchOptions,
    tx: mpsc::Sender<RawBatch>,
    sink: Box<dyn PayloadSink>,
) -> Result<FetchReport, FetchError> {
    let feed = source.feed.clone();
    let open_err = |url: &str, message: String| FetchError::Open {
        feed: feed.clone(),
        url: url.to_string(),
        message,
    };
    let url =
        expand_env(url_template, |n| options.var(n)).map_err(|e| open_err(url_template, e))?;
    let (base, pattern) = split_glob(&url);
    let (store, prefix) =
        store::open_with(&base, false, &options.vars).map_err(|e| open_err(&url, e.to_string()))?;
    let glob = Glob::new(pattern.as_deref().unwrap_or("*"))
        .map_err(|e| open_err(&url, e.to_string()))?
        .compile_matcher();
    let files = list_matching(&store, &prefix, &glob)
        .await
        .map_err(|e| open_err(&url, e.to_string()))?;
    if files.is_empty() {
        return Err(open_err(&url, "no file matches".into()));
    }
    let mut report = FetchReport {
        objects: files
            .iter()
            .map(|m| super::ListedObject {
                location: m.location.to_string(),
                size: m.size,
                e_tag: m.e_tag.clone(),
                last_modified: m.last_modified,
            })
            .collect(),
        ..FetchReport::default()
    };
    if options.previous_objects.as_ref() == Some(&report.objects) {
        // The same objects as the last good delivery: nothing to read.
        report.unchanged = true;
        return Ok(report);
    }
    let mut sink = sink;
    for meta in files {
        if meta.size > options.max_payload_bytes {
            return Err(FetchError::Limit {
                feed: feed.clone(),
                position: meta.location.to_string(),
                message: format!(
                    "file is {} bytes, above the limit of {}",
                    meta.size, options.max_payload_bytes
                ),
            });
        }
        let name = meta.location.filename().unwrap_or("payload").to_string();
        let compressed = gzip || name.ends_with(".gz");
        report.units += 1;
        report.bytes += meta.size;
        // Parquet is compressed inside: its payload is kept as it is.
        let parquet = matches!(format, FileFormat::Parquet);
        let writer = sink
            .open(&name, compressed || parquet)
            .map_err(|message| payload_err(&feed, &name, message))?;
        let ctx = FileContext {
            feed: feed.clone(),
            name: name.clone(),
            fields: fields.clone(),
            format: format.clone(),
            compressed: compressed && !parquet,
            limit: options.max_payload_bytes,
        };
        let bytes = store
            .get(&meta.location)
            .await
            .map_err(|e| payload_err(&feed, &name, e.to_string()))?
            .into_stream()
            .map_err(std::io::Error::other)
            .boxed();
        let drift = read_file(ctx, bytes, writer, tx.clone()).await?;
        report.drift.missing_fields.extend(drift.missing_fields);
        for f in drift.unmapped_fields {
            report.drift.note_unmapped(&f);
        }
    }
    // A field missing from one file but present in another is not missing.
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_split_at_the_first_pattern_segment() {
        assert_eq!(
            split_glob("demo/feeds/court/*.ndjson"),
            ("demo/feeds/court".to_string(), Some("*.ndjson".to_string()))
        );
        assert_eq!(
            split_glob("s3://bucket/feeds/2026-*/court.ndjson"),
            (
                "s3://bucket/feeds".to_string(),
                Some("2026-*/court.ndjson".to_string())
            )
        );
        assert_eq!(
            split_glob("/data/registry.csv"),
            ("/data".to_string(), Some("registry.csv".to_string()))
        );
    }
}
