//! Reconciliation against the generator's own counts. `read = landed +
//! quarantined + duplicates` holds by construction (duplicates are what
//! deduplication dropped), so it cannot catch deduplication dropping
//! distinct records, or a bad key landing: the generator says, in
//! `generated.json` beside the feeds, how many records it wrote per feed,
//! how many of them are second copies of a valid record, and how many carry
//! a code it corrupted on purpose, and a run's ledger is compared with that.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use qinglian::ledger::{FeedRecord, FeedStatus, RunRecord};

/// What the generator wrote into one feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Written {
    pub(crate) records: u64,
    pub(crate) duplicates: u64,
    pub(crate) invalid_keys: u64,
}

impl Written {
    /// Records that must land.
    pub(crate) fn landing(&self) -> u64 {
        self.records - self.duplicates - self.invalid_keys
    }
}

/// Reads `generated.json` (with serde_json, not the generator's types).
pub(crate) fn written(feeds: &Path) -> BTreeMap<String, Written> {
    let text = std::fs::read_to_string(feeds.join("generated.json"))
        .expect("the generator writes generated.json beside the feeds");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("generated.json is JSON");
    doc["feeds"]
        .as_object()
        .expect("generated.json names its feeds")
        .iter()
        .map(|(feed, c)| {
            let n = |k: &str| {
                c[k].as_u64()
                    .unwrap_or_else(|| panic!("generated.json: {feed}.{k}"))
            };
            (
                feed.clone(),
                Written {
                    records: n("records"),
                    duplicates: n("duplicates"),
                    invalid_keys: n("invalid_keys"),
                },
            )
        })
        .collect()
}

/// Where one feed's ledger record differs from what the generator wrote.
pub(crate) fn mismatches(f: &FeedRecord, w: &Written) -> Vec<String> {
    let mut out = Vec::new();
    for (what, ledger, generator) in [
        ("read", f.read, w.records),
        ("landed", f.landed, w.landing()),
        ("quarantined", f.quarantined, w.invalid_keys),
        ("duplicates", f.duplicates, w.duplicates),
    ] {
        if ledger != generator {
            out.push(format!(
                "{}: the ledger says {what} {ledger}, the generator's count is {generator}",
                f.feed
            ));
        }
    }
    let reasons: BTreeMap<&str, u64> = f
        .quarantine_reasons
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(r, n)| (r.as_str(), *n))
        .collect();
    let expected: BTreeMap<&str, u64> = (w.invalid_keys > 0)
        .then_some(("invalid_key", w.invalid_keys))
        .into_iter()
        .collect();
    if reasons != expected {
        out.push(format!(
            "{}: quarantined for {reasons:?}, the generator corrupted {} keys",
            f.feed, w.invalid_keys
        ));
    }
    out
}

/// Every feed of a run that landed, against the generator (a held, failed
/// or unchanged feed landed nothing of this delivery; what it read is
/// bounded by what was written). `skip` names feeds whose delivery was
/// changed on purpose.
pub(crate) fn run_mismatches(
    run: &RunRecord,
    written: &BTreeMap<String, Written>,
    skip: &[&str],
) -> Vec<String> {
    let mut out = Vec::new();
    let seen: BTreeSet<&str> = run.feeds.iter().map(|f| f.feed.as_str()).collect();
    if run.feeds.iter().any(|f| f.status == FeedStatus::Landed) {
        for feed in written.keys() {
            if !seen.contains(feed.as_str()) {
                out.push(format!(
                    "{feed}: written by the generator, not in the ledger"
                ));
            }
        }
    }
    for f in run
        .feeds
        .iter()
        .filter(|f| !skip.contains(&f.feed.as_str()))
    {
        let Some(w) = written.get(&f.feed) else {
            out.push(format!("{}: in the ledger, not written", f.feed));
            continue;
        };
        if f.status == FeedStatus::Landed {
            out.extend(mismatches(f, w));
        } else if f.read > w.records {
            out.push(format!(
                "{} ({:?}): read {}, more than the {} written",
                f.feed, f.status, f.read, w.records
            ));
        }
    }
    out
}

/// The generator's counts are its files' own: records are the rows and
/// lines the test reads from each file, and exact repeats of a line are
/// bounded by the second copies the generator declares (every repeat is one,
/// or a repeated record with a corrupted key).
#[test]
fn the_generators_counts_are_those_of_its_files_and_have_teeth() {
    let dir = tempfile::tempdir().expect("tmp");
    crate::ingest::generate(dir.path(), 600);
    let w = written(dir.path());
    assert_eq!(w.len(), 10, "{w:?}");
    let csv_lines = |rel: &str, gb: bool| -> Vec<String> {
        let bytes = std::fs::read(dir.path().join(rel)).expect("read");
        let text = if gb {
            encoding_rs::GB18030.decode(&bytes).0.into_owned()
        } else {
            String::from_utf8(bytes).expect("utf-8")
        };
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        reader
            .records()
            .map(|r| r.expect("row").iter().collect::<Vec<_>>().join("\u{1f}"))
            .collect()
    };
    let json_lines = |text: &str| -> Vec<String> {
        text.lines()
            .map(|l| l.trim_end_matches(',').trim())
            .filter(|l| {
                l.starts_with("{\"")
                    && !l.starts_with("{\"code\"")
                    && !l.starts_with("{\"success\"")
            })
            .map(str::to_string)
            .collect()
    };
    let read = |rel: &str| std::fs::read_to_string(dir.path().join(rel)).expect("read");
    let mut gz = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(
            std::fs::File::open(dir.path().join("inspection/inspection.ndjson.gz")).expect("gz"),
        ),
        &mut gz,
    )
    .expect("gunzip");
    let files: BTreeMap<&str, Vec<String>> = [
        ("registry", csv_lines("registry/registry.csv", true)),
        ("persons", csv_lines("persons/persons.csv", false)),
        (
            "annual_reports",
            csv_lines("annual_reports/annual_reports.csv", false),
        ),
        ("credit", csv_lines("credit/credit.csv", false)),
        ("ratings", json_lines(&read("ratings/ratings.json"))),
        ("drc", json_lines(&read("drc/drc.json"))),
        ("projects", json_lines(&read("projects/projects.ndjson"))),
        ("police", json_lines(&read("police/police.ndjson"))),
        ("court", json_lines(&read("court/court.ndjson"))),
        ("inspection", json_lines(&gz)),
    ]
    .into_iter()
    .collect();
    for (feed, lines) in &files {
        let c = w[*feed];
        assert_eq!(lines.len() as u64, c.records, "{feed}: records in the file");
        let distinct: BTreeSet<&String> = lines.iter().collect();
        let repeats = (lines.len() - distinct.len()) as u64;
        assert!(
            c.duplicates <= repeats && repeats <= c.duplicates + c.invalid_keys,
            "{feed}: {repeats} repeated lines, the generator declares {c:?}"
        );
    }
    // The oracle has something to catch at this size.
    let sum = |pick: fn(&Written) -> u64| w.values().map(pick).sum::<u64>();
    assert!(sum(|c| c.duplicates) >= 5, "{w:?}");
    assert!(sum(|c| c.invalid_keys) >= 5, "{w:?}");
    assert!(
        w.values().filter(|c| c.duplicates > 0).count() >= 3,
        "duplicates in several feeds: {w:?}"
    );
}
