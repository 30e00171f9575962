//! A simulated month: thirty consecutive nightly runs over generator data
//! that changes day by day (new situations, cleared ones, deregistrations,
//! organizations that register during the month). Every night reconciles,
//! every colour change names the rules behind it, and re-running a past
//! day reproduces its published checksums.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::NaiveDate;
use datafusion::arrow::array::AsArray;
use qinglian::generate::{GenerateOptions, generate};
use qinglian::ledger::RunStatus;
use qinglian::publish::Published;

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
        let run = ingest_on(&feeds, &warehouse, day).await;
        assert_eq!(run.status, RunStatus::Succeeded, "{day}: {run:#?}");
        for f in &run.feeds {
            assert!(f.reconciles(), "{day} {}: {f:#?}", f.feed);
        }
        let version = current(&warehouse, day).await;
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
