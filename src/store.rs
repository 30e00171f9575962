//! Object stores behind URLs: the warehouse, object-store feeds and the
//! generator's output all open their store here, so `file://`, plain paths,
//! `memory://` and `s3://` behave the same everywhere.
//!
//! S3 settings come from the environment (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT`, `AWS_ALLOW_HTTP` …),
//! never from configuration files.

use std::collections::BTreeMap;
use std::path::Path as LocalPath;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use tokio::io::AsyncWriteExt;

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL is not one this project can open.
    #[error("cannot open object store {url:?}: {message}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong.
        message: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] object_store::Error),
    /// A local file failed.
    #[error("{path}: {source}")]
    Io {
        /// The local file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// Opens the store of a URL for reading and returns it with the URL's path
/// prefix.
///
/// A plain path or `file://` URL opens that directory (which must exist);
/// `memory://` an in-memory store; `s3://bucket/prefix` an S3 store
/// configured from the environment.
pub fn open(url: &str) -> Result<(Arc<dyn ObjectStore>, Path), StoreError> {
    open_with(url, false, &BTreeMap::new())
}

/// Opens the store of a URL for writing: a local directory is created
/// when missing.
pub fn open_for_write(url: &str) -> Result<(Arc<dyn ObjectStore>, Path), StoreError> {
    open_with(url, true, &BTreeMap::new())
}

/// Opens a store; `vars` (`AWS_ENDPOINT`, `AWS_ACCESS_KEY_ID` …) take
/// precedence over the environment, so one process can reach several
/// stores and tests need not touch the process environment.
pub fn open_with(
    url: &str,
    create: bool,
    vars: &BTreeMap<String, String>,
) -> Result<(Arc<dyn ObjectStore>, Path), StoreError> {
    let bad = |message: String| StoreError::Url {
        url: url.to_string(),
        message,
    };
    if url == "memory://" || url.starts_with("memory://") {
        let prefix = url.trim_start_matches("memory://");
        return Ok((Arc::new(InMemory::new()), Path::from(prefix)));
    }
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("no bucket name".into()));
        }
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        for (k, v) in vars.iter().filter(|(k, _)| k.starts_with("AWS_")) {
            if let Ok(key) = k.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
                builder = builder.with_config(key, v);
            }
        }
        let store = builder.build().map_err(|e| bad(e.to_string()))?;
        return Ok((Arc::new(store), Path::from(prefix)));
    }
    if url.contains("://") && !url.starts_with("file://") {
        return Err(bad(
            "expected a local path, file://, memory:// or s3:// URL".into(),
        ));
    }
    let dir = url.strip_prefix("file://").unwrap_or(url);
    if create {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.to_string(),
            source,
        })?;
    }
    let store = LocalFileSystem::new_with_prefix(dir).map_err(|e| bad(e.to_string()))?;
    Ok((Arc::new(store), Path::from("")))
}

/// `prefix/rel`, each `/`-separated part of `rel` a path segment.
pub fn join(prefix: &Path, rel: &str) -> Path {
    rel.split('/')
        .filter(|p| !p.is_empty())
        .fold(prefix.clone(), |path, part| path.join(part))
}

/// Streams a local file into the store (multipart for large files).
pub async fn upload_file(
    store: &Arc<dyn ObjectStore>,
    local: &LocalPath,
    target: &Path,
) -> Result<(), StoreError> {
    let io = |source| StoreError::Io {
        path: local.display().to_string(),
        source,
    };
    let mut file = tokio::fs::File::open(local).await.map_err(io)?;
    let mut writer = object_store::buffered::BufWriter::new(Arc::clone(store), target.clone());
    tokio::io::copy(&mut file, &mut writer).await.map_err(io)?;
    writer.shutdown().await.map_err(io)?;
    Ok(())
}

/// A store path relative to a prefix, `/`-separated (the path itself when
/// it is not under the prefix).
pub fn relative(prefix: &Path, path: &Path) -> String {
    path.prefix_match(prefix)
        .map(|parts| {
            parts
                .map(|p| p.as_ref().to_string())
                .collect::<Vec<_>>()
                .join("/")
        })
        .unwrap_or_else(|| path.to_string())
}

/// A URL without credentials or query string, for logs and records.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.scheme().len() > 1 => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.to_string()
        }
        _ => url.to_string(),
    }
}
