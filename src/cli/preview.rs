//! `qinglian preview <feed>`: what the first records of every part of a
//! feed would become, before the first night: mapped fields no record
//! carries, delivered fields nothing maps, the first rows as the canonical
//! table will hold them, and what would be quarantined and why. Nothing is
//! landed or written.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::shared::{block_on, load_project};
use super::{CommandResult, Done, Failure};
use crate::project::{FeedSchema, Source};
use crate::source::{self, FetchOptions, PayloadSink, PayloadWriter, RawBatch};
use crate::validate::{self, Mapper};

/// Arguments of `preview`.
#[derive(Debug, clap::Args)]
pub(super) struct PreviewArgs {
    /// The feed (pipelines/sources/<feed>.toml).
    feed: String,
    /// Records to read from each part.
    #[arg(long, default_value_t = 10)]
    rows: usize,
    /// Project directory.
    #[arg(long, default_value = ".")]
    project: PathBuf,
    /// Pipeline whose person-hash key (the variable it names) hashes
    /// identity numbers in what is shown.
    #[arg(long, default_value = "nightly")]
    pipeline: String,
}

/// Runs `preview`.
pub(super) fn execute(args: PreviewArgs) -> CommandResult {
    let project = load_project(&args.project)?;
    let Some(source) = project.sources.get(&args.feed) else {
        return Err(Failure::Usage(format!(
            "no feed {:?} in pipelines/sources/ (feeds: {})",
            args.feed,
            project
                .sources
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let Some(schema) = project.schemas.get(&source.schema) else {
        return Err(Failure::Usage(format!(
            "feed {} names schema {:?}, which schemas/ does not have",
            source.feed, source.schema
        )));
    };
    let key_env = project
        .pipelines
        .get(&args.pipeline)
        .map(|p| p.person_hash_key_env.clone());
    let personal = source.hashes_persons();
    let hash_key = match key_env.as_deref().and_then(|v| std::env::var(v).ok()) {
        Some(k) if !k.is_empty() => k.into_bytes(),
        _ => {
            if personal && key_env.is_some() {
                errln!(
                    "note: {} is not set: identity numbers are shown hashed with a throwaway key",
                    key_env.as_deref().unwrap_or_default()
                );
            }
            b"qinglian-preview-only".to_vec()
        }
    };
    let rows = args.rows.max(1);
    block_on(async move {
        for (part, name) in source.each_part().iter().zip(source.part_names()) {
            preview_part(part, &name, schema, hash_key.clone(), rows).await?;
        }
        outln!(
            "organization codes resolve against the registry at run time; here they show as org_code_only without a USCC"
        );
        Ok(Done::Ok)
    })
}

/// Payloads are not kept by a preview.
struct Discard;

struct DiscardWriter;

impl std::io::Write for DiscardWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl PayloadWriter for DiscardWriter {
    fn finish(self: Box<Self>) -> Result<(), String> {
        Ok(())
    }
}

impl PayloadSink for Discard {
    fn open(&mut self, _name: &str, _compressed: bool) -> Result<Box<dyn PayloadWriter>, String> {
        Ok(Box::new(DiscardWriter))
    }
}

async fn preview_part(
    part: &Source,
    name: &str,
    schema: &FeedSchema,
    hash_key: Vec<u8>,
    rows: usize,
) -> Result<(), Failure> {
    let fields = source::wanted_fields(part, &validate::source_sql_fields(part));
    let mapper = Mapper::new(
        part,
        schema,
        fields.clone(),
        Some(hash_key),
        chrono::Utc::now().timestamp_millis(),
        Arc::new(crate::keys::RegistryCodes::default()),
    )
    .map_err(|e| Failure::Usage(e.to_string()))?
    .for_part(name);
    let (tx, mut rx) = mpsc::channel(2);
    let fetch_source = part.clone();
    let options = FetchOptions::default();
    let wanted = fields.clone();
    let fetch = tokio::spawn(async move {
        source::fetch(&fetch_source, wanted, &options, tx, Box::new(Discard)).await
    });
    let mut read = RawBatch {
        fields: fields.clone(),
        rows: Vec::new(),
    };
    while read.rows.len() < rows {
        let Some(batch) = rx.recv().await else {
            break;
        };
        let room = rows - read.rows.len();
        read.rows.extend(batch.rows.into_iter().take(room));
    }
    // Enough read: the fetch stops when its channel closes.
    drop(rx);
    let fetched = fetch
        .await
        .map_err(|e| Failure::Failed(format!("part {name}: fetch task: {e}")))?;
    if let Err(e) = fetched
        && !matches!(e, source::FetchError::Stopped { .. })
    {
        return Err(Failure::Failed(format!("part {name}: {e}")));
    }

    // What the records carry, from the records as delivered.
    let mut carried = BTreeSet::new();
    for row in &read.rows {
        if let Ok(serde_json::Value::Object(map)) =
            serde_json::from_str::<serde_json::Value>(&row.original)
        {
            carried.extend(map.keys().cloned());
        }
    }
    let sql: BTreeSet<String> = validate::source_sql_fields(part);
    let missing: Vec<&String> = fields
        .iter()
        .filter(|f| !carried.contains(*f) && !sql.contains(*f))
        .collect();
    let unmapped = mapper.shown_unmapped(carried.iter().filter(|f| !fields.contains(*f)).cloned());
    outln!(
        "part {name} of feed {}: {} record(s) read",
        part.feed,
        read.rows.len()
    );
    if missing.is_empty() {
        outln!("  every mapped field is carried");
    } else {
        let list: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
        outln!(
            "  mapped fields no record carries: {} (the night holds the feed: guard absent_fields)",
            list.join(", ")
        );
    }
    if !unmapped.is_empty() {
        outln!("  delivered fields nothing maps: {}", unmapped.join(", "));
    }
    if read.rows.is_empty() {
        return Ok(());
    }
    let mapped = mapper
        .map(&read)
        .map_err(|e| Failure::Failed(format!("part {name}: {e}")))?;
    if mapped.batch.num_rows() > 0 {
        match datafusion::arrow::util::pretty::pretty_format_batches(std::slice::from_ref(
            &mapped.batch,
        )) {
            Ok(table) => outln!("{table}"),
            Err(e) => return Err(Failure::Failed(format!("part {name}: {e}"))),
        }
    }
    let mut reasons: BTreeMap<&str, u64> = BTreeMap::new();
    for q in &mapped.quarantined {
        *reasons.entry(q.reason.code()).or_default() += 1;
        outln!(
            "  quarantined {} | {} | {} | {}",
            q.position,
            q.field,
            q.reason.code(),
            q.message
        );
    }
    outln!(
        "  {} row(s) would land, {} would be quarantined{}",
        mapped.batch.num_rows(),
        mapped.quarantined.len(),
        if reasons.is_empty() {
            String::new()
        } else {
            format!(
                " ({})",
                reasons
                    .iter()
                    .map(|(r, n)| format!("{r} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    );
    Ok(())
}
