//! The Parquet drop: a published version copied to the platform's bucket,
//! data files first (each checksum checked against the manifest on the
//! way), then the manifest itself with a create-only put, so the platform
//! sees a version whole or not at all.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::catalog::Published;
use crate::ledger::DropSummary;

async fn copy_checked(
    from: &Arc<dyn ObjectStore>,
    from_path: &Path,
    to: &Arc<dyn ObjectStore>,
    to_path: &Path,
    sha256: &str,
) -> Result<u64, String> {
    let mut stream = from
        .get(from_path)
        .await
        .map_err(|e| format!("{from_path}: {e}"))?
        .into_stream();
    let mut writer = BufWriter::new(Arc::clone(to), to_path.clone());
    let mut hash = Sha256::new();
    let mut bytes = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| format!("{from_path}: {e}"))?;
        hash.update(&chunk);
        bytes += chunk.len() as u64;
        writer
            .write_all(&chunk)
            .await
            .map_err(|e| format!("{to_path}: {e}"))?;
    }
    let found = crate::digest::hex(&hash.finalize());
    if found != sha256 {
        let _ = writer.abort().await;
        return Err(format!(
            "{from_path}: checksum {found} does not match the manifest ({sha256}); nothing more is copied"
        ));
    }
    writer
        .shutdown()
        .await
        .map_err(|e| format!("{to_path}: {e}"))?;
    Ok(bytes)
}

/// Copies a published version to `url` (an object-store URL; S3 settings
/// from `vars`, then the environment).
pub async fn drop_copy(
    published: &Published,
    url: &str,
    vars: &BTreeMap<String, String>,
) -> DropSummary {
    let mut summary = DropSummary {
        url: crate::store::redact(url),
        ..DropSummary::default()
    };
    let result: Result<String, String> = async {
        let (to, to_prefix) =
            crate::store::open_with(url, true, vars).map_err(|e| e.to_string())?;
        let from = published.store();
        for dataset in published.manifest.datasets.values() {
            for f in &dataset.files {
                let from_path = crate::store::join(published.prefix(), &f.path);
                let to_path = crate::store::join(&to_prefix, &f.path);
                summary.bytes += copy_checked(from, &from_path, &to, &to_path, &f.sha256).await?;
                summary.files += 1;
            }
        }
        let manifest = crate::store::join(published.prefix(), &published.path);
        let body = from
            .get(&manifest)
            .await
            .map_err(|e| format!("{manifest}: {e}"))?
            .bytes()
            .await
            .map_err(|e| format!("{manifest}: {e}"))?;
        let target = crate::store::join(&to_prefix, &published.path);
        let opts = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match to
            .put_opts(&target, PutPayload::from(body.clone()), opts)
            .await
        {
            Ok(_) => {}
            Err(object_store::Error::AlreadyExists { .. }) => {
                let there = to
                    .get(&target)
                    .await
                    .map_err(|e| format!("{target}: {e}"))?
                    .bytes()
                    .await
                    .map_err(|e| format!("{target}: {e}"))?;
                if there != body {
                    return Err(format!(
                        "{target}: a different manifest already exists there; left as it is"
                    ));
                }
            }
            Err(e) => return Err(format!("{target}: {e}")),
        }
        Ok(published.path.clone())
    }
    .await;
    match result {
        Ok(m) => summary.manifest = Some(m),
        Err(e) => summary.error = Some(e),
    }
    summary
}
