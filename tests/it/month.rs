//! A simulated month: thirty consecutive nightly runs over generator data
//! that changes day by day (new situations, cleared ones, deregistrations,
//! organizations that register during the month). Every night reconciles,
//! every colour change names the rules behind it, and re-running a past
//! day reproduces its published checksums.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::NaiveDate;
use datafusion::arrow::array::AsArray;
use qinglian::catalog::Published;
use qinglian::generate::{GenerateOptions, generate};
use qinglian::ledger::RunStatus;

use crate::ingest::ingest_on;

async fn current(warehouse: &Path, day: NaiveDate) -> Published {
    let (store, prefix) =
        qinglian::store::open(warehouse.to_str().expect("utf-8")).expect("warehouse");
    Published::latest(&store, &prefix, day)
        .await
        .expect("readable")
        .expect("published")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_nights_reconcile_explain_every_change_and_reproduce() {
    let root = tempfile::tempdir().expect("tmp");
    let warehouse = root.path().join("warehouse");
    let first = NaiveDate::from_ymd_opt(2026, 11, 1).expect("date");
    let mut published = BTreeMap::new();
    let (mut changes, mut unexplained, mut registrations, mut deregistrations) = (0, 0, 0, 0);
    // The night one organization drops out of the registry.
    const LEAVES: u32 = 9;
    let mut before: Option<crate::oracles::Read> = None;
    let mut left: Option<String> = None;
    let mut withdrawn_by_leaving = 0;
    for k in 0..30u32 {
        let day = first + chrono::TimeDelta::days(i64::from(k));
        let feeds = root.path().join(format!("feeds/day-{k:02}"));
        generate(
            &GenerateOptions {
                orgs: 300,
                seed: 42,
                as_of: day,
                day: k,
            },
            &feeds,
        )
        .expect("generate");
        if k == LEAVES {
            // One coloured organization is missing from tonight's registry
            // export (and back in tomorrow's): its colour is withdrawn.
            let gone = before
                .as_ref()
                .and_then(|b| b.codes.keys().next().cloned())
                .expect("a coloured organization");
            drop_registry_line(&feeds, &gone);
            left = Some(gone);
        }
        let run = ingest_on(&feeds, &warehouse, day).await;
        assert_eq!(run.status, RunStatus::Succeeded, "{day}: {run:#?}");
        for f in &run.feeds {
            assert!(f.reconciles(), "{day} {}: {f:#?}", f.feed);
        }
        // Against the generator's count of the night's files (less the
        // registry line taken out on the night an organization leaves).
        let mut written = crate::reconcile::written(&feeds);
        if k == LEAVES
            && let Some(r) = written.get_mut("registry")
        {
            r.records -= 1;
        }
        let wrong = crate::reconcile::run_mismatches(&run, &written, &[]);
        assert!(wrong.is_empty(), "{day}: {}", wrong.join("\n"));
        let version = current(&warehouse, day).await;
        // The day-to-day diff of `codes` (and of the rules in `hits`),
        // computed here from what pyarrow reads of the published files,
        // is exactly `changes`.
        let (now, _) = crate::oracles::read_with_pyarrow(&warehouse, &version.path);
        let expected = crate::oracles::diff(before.as_ref(), &now);
        assert_eq!(
            now.changes, expected,
            "{day}: changes equal the diff of codes"
        );
        if let Some(gone) = &left {
            let c = &expected[gone];
            assert!(
                c.previous_colour.is_some() && c.colour.is_none(),
                "{day}: {gone} left"
            );
            assert!(!now.codes.contains_key(gone));
            left = None;
            withdrawn_by_leaving += 1;
        }
        before = Some(now);
        let batches = version.read_batches("changes").await.expect("changes");
        for b in &batches {
            let col = |n: &str| {
                b.column_by_name(n)
                    .expect("column")
                    .as_string::<i32>()
                    .clone()
            };
            let (before, now, added, removed) = (
                col("previous_colour"),
                col("colour"),
                col("rules_added"),
                col("rules_removed"),
            );
            for r in 0..b.num_rows() {
                use datafusion::arrow::array::Array;
                if k == 0 {
                    continue;
                }
                changes += 1;
                let explained = !added.value(r).is_empty()
                    || !removed.value(r).is_empty()
                    || before.is_null(r)
                    || now.is_null(r);
                registrations += usize::from(before.is_null(r) && !now.is_null(r));
                deregistrations += usize::from(now.is_null(r) && !before.is_null(r));
                if !explained {
                    unexplained += 1;
                }
            }
        }
        published.insert(k, crate::support::reproducible_sums(&version));
    }
    println!(
        "30 nights: {changes} colour changes after the first ({registrations} new codes, {deregistrations} withdrawn), {unexplained} unexplained"
    );
    assert!(changes >= 10, "the month changes something: {changes}");
    assert_eq!(withdrawn_by_leaving, 1);
    assert!(registrations > 0 && deregistrations > 0);
    assert_eq!(
        unexplained, 0,
        "every change names the rules that caused it"
    );
    // Re-running past days reproduces what was published for them.
    for k in [4u32, 17, 28] {
        let day = first + chrono::TimeDelta::days(i64::from(k));
        let feeds = root.path().join(format!("feeds/day-{k:02}"));
        let run = ingest_on(&feeds, &warehouse, day).await;
        assert_eq!(
            run.status,
            RunStatus::Succeeded,
            "re-run of {day}: {run:#?}"
        );
        assert_eq!(run.attempt, 2);
        assert_eq!(
            crate::support::reproducible_sums(&current(&warehouse, day).await),
            published[&k],
            "re-run of {day} reproduces its checksums"
        );
    }
}

/// Removes the line of one organization from a generated registry export
/// (GB18030: the ASCII code is found byte for byte).
pub(crate) fn drop_registry_line(feeds: &Path, uscc: &str) {
    let dir = feeds.join("registry");
    let mut dropped = 0;
    for entry in std::fs::read_dir(&dir).expect("registry dir") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("read");
        let mut kept = Vec::with_capacity(bytes.len());
        for line in bytes.split_inclusive(|b| *b == b'\n') {
            if line.windows(uscc.len()).any(|w| w == uscc.as_bytes()) {
                dropped += 1;
            } else {
                kept.extend_from_slice(line);
            }
        }
        std::fs::write(&path, kept).expect("write");
    }
    assert_eq!(dropped, 1, "{uscc} was on one registry line");
}
