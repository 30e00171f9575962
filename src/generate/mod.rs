//! Synthetic feeds for the demo, the tests and the benchmarks:
//! `qinglian generate --orgs N --seed S --out URL`.
//!
//! Every department's feed is written in the form that department delivers:
//! the registry as GB18030 CSV with Chinese headers, annual reports as UTF-8
//! CSV with a BOM, court records as NDJSON with the court's own keys,
//! 双公示 penalties in 万元, dates in all four forms, a share of dirty,
//! invalid, org-code-only and name-only keys, and duplicated rows.
//!
//! Risk situations are injected at known rates (the table `SITUATIONS` in `org.rs`), and
//! `ground_truth.csv` lists each one: the organization and the rule it must
//! trigger; `generated.json` ([`COUNTS_FILE`]) says, per feed, how many
//! records were written, how many of them are exact second copies and how
//! many carry a code corrupted on purpose, counted as they are written (the
//! oracle the tests compare a run's ledger with). Organizations are
//! generated one at a time from their own random stream, so memory does not
//! grow with N and the same seed and date give byte-identical files.

pub mod delta;
mod feeds;
pub(crate) mod org;
mod out;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::NaiveDate;

pub use out::{FeedCounts, GenerateError};

/// The file beside the feeds where the generator says what it wrote: per
/// feed, the records, the exact duplicates and the invalid keys it wrote on
/// purpose. Tests compare a run's ledger with it.
pub const COUNTS_FILE: &str = "generated.json";

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// Number of organizations.
    pub orgs: u64,
    /// Random seed.
    pub seed: u64,
    /// The business date the data describes.
    pub as_of: NaiveDate,
    /// Days of evolution after the base population (0: the base): the
    /// population of a simulated month, one day at a time.
    pub day: u32,
}

/// What was written.
#[derive(Debug, Clone, Default)]
pub struct GenerateSummary {
    /// Where the files are.
    pub out: String,
    /// Records written per feed file (duplicates included).
    pub records: BTreeMap<String, u64>,
    /// What was written per feed: records, duplicates, invalid keys.
    pub counts: BTreeMap<String, FeedCounts>,
    /// Ground-truth rows.
    pub ground_truth: u64,
    /// Rule ids covered by the ground truth.
    pub rules_covered: usize,
    /// Wall time.
    pub seconds: f64,
}

impl fmt::Display for GenerateSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total: u64 = self.records.values().sum();
        writeln!(
            f,
            "wrote {total} records to {} in {:.1}s",
            self.out, self.seconds
        )?;
        for (feed, n) in &self.records {
            writeln!(f, "  {feed:<16} {n:>12}")?;
        }
        write!(
            f,
            "  ground truth     {:>12} situations covering {} rules",
            self.ground_truth, self.rules_covered
        )
    }
}

/// Generates into a local directory (created if missing).
pub fn generate(options: &GenerateOptions, dir: &Path) -> Result<GenerateSummary, GenerateError> {
    let started = Instant::now();
    let mut writers = out::Writers::create(dir)?;
    let mut truth = feeds::Truth::default();
    for index in 0..options.orgs {
        let mut plan = org::plan(options.seed, index, options.orgs, options.as_of);
        if !org::evolve(&mut plan, options.seed, options.day, options.as_of) {
            continue;
        }
        feeds::emit(&plan, options, &mut writers, &mut truth)?;
    }
    let counts = writers.finish()?;
    write_counts(dir, options, &counts)?;
    Ok(GenerateSummary {
        out: dir.display().to_string(),
        records: counts.iter().map(|(f, c)| (f.clone(), c.records)).collect(),
        counts,
        ground_truth: truth.rows,
        rules_covered: truth.rules.len(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Generates to a directory path, a `file://` URL, or any object-store URL
/// (`s3://bucket/prefix`, credentials and endpoint from the environment):
/// remote targets are generated into a temporary directory and uploaded.
pub async fn generate_to_url(
    options: &GenerateOptions,
    url: &str,
) -> Result<GenerateSummary, GenerateError> {
    if let Some(dir) = local_dir(url) {
        let options = options.clone();
        return tokio::task::spawn_blocking(move || generate(&options, &dir))
            .await
            .map_err(|e| GenerateError::Io {
                path: PathBuf::from(url),
                source: std::io::Error::other(e),
            })?;
    }
    let temp = tempfile::tempdir().map_err(|source| GenerateError::Io {
        path: std::env::temp_dir(),
        source,
    })?;
    let dir = temp.path().to_path_buf();
    let opts = options.clone();
    let mut summary = tokio::task::spawn_blocking(move || generate(&opts, &dir))
        .await
        .map_err(|e| GenerateError::Io {
            path: PathBuf::from(url),
            source: std::io::Error::other(e),
        })??;
    out::upload_dir(temp.path(), url).await?;
    summary.out = url.to_string();
    Ok(summary)
}

/// Writes [`COUNTS_FILE`]: the options and each feed's counts, in a stable
/// order (the same seed gives the same bytes).
fn write_counts(
    dir: &Path,
    options: &GenerateOptions,
    counts: &BTreeMap<String, FeedCounts>,
) -> Result<(), GenerateError> {
    let path = dir.join(COUNTS_FILE);
    let doc = serde_json::json!({
        "orgs": options.orgs,
        "seed": options.seed,
        "as_of": options.as_of.to_string(),
        "day": options.day,
        "feeds": counts,
    });
    let text = serde_json::to_string_pretty(&doc).map_err(|e| GenerateError::Io {
        path: path.clone(),
        source: std::io::Error::other(e),
    })?;
    std::fs::write(&path, format!("{text}\n")).map_err(|source| GenerateError::Io { path, source })
}

fn local_dir(url: &str) -> Option<PathBuf> {
    if let Some(path) = url.strip_prefix("file://") {
        return Some(PathBuf::from(path));
    }
    (!url.contains("://")).then(|| PathBuf::from(url))
}
