//! The model against the generator's ground truth: every injected
//! situation triggers its rule (recall), and nothing else makes an
//! organization anything but green (precision), rule by rule.

use std::collections::{BTreeMap, BTreeSet};

use qinglian::ledger::RunStatus;

use crate::ingest::{generate, ingest};
use crate::support::{read_parquet, strings};

async fn table(path: &std::path::Path, columns: &[&str]) -> Vec<Vec<String>> {
    let batches = read_parquet(path).await;
    let cols: Vec<Vec<Option<String>>> = columns.iter().map(|c| strings(&batches, c)).collect();
    let rows = cols.first().map_or(0, Vec::len);
    (0..rows)
        .map(|r| {
            cols.iter()
                .map(|c| c[r].clone().unwrap_or_default())
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_injected_situation_triggers_its_rule_and_nothing_else_does() {
    let feeds = tempfile::tempdir().expect("tmp");
    let warehouse = tempfile::tempdir().expect("tmp");
    // QINGLIAN_GROUND_TRUTH_ORGS checks a larger tier by hand.
    let orgs = std::env::var("QINGLIAN_GROUND_TRUTH_ORGS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1500);
    generate(feeds.path(), orgs);
    let run = ingest(feeds.path(), warehouse.path()).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    let scoring = run.scoring.clone().expect("scoring ran");

    let mut truth: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut reader = csv::Reader::from_path(feeds.path().join("ground_truth.csv")).expect("truth");
    for r in reader.records() {
        let r = r.expect("row");
        truth.insert((r[0].to_string(), r[1].to_string()), r[4].to_string());
    }
    let hits = table(
        &warehouse.path().join(&scoring.outputs["hits"]),
        &["rule_id", "uscc", "confidence"],
    )
    .await;
    let found: BTreeMap<(String, String), String> = hits
        .iter()
        .map(|h| ((h[0].clone(), h[1].clone()), h[2].clone()))
        .collect();

    let rules: BTreeSet<&String> = truth
        .keys()
        .map(|k| &k.0)
        .chain(found.keys().map(|k| &k.0))
        .collect();
    let mut table_text = format!(
        "{:<8} {:>6} {:>6} {:>6} {:>6} {:>9}\n",
        "rule", "truth", "hits", "tp", "missed", "extra"
    );
    let mut problems = Vec::new();
    for rule in rules {
        let t: BTreeSet<_> = truth.keys().filter(|k| &k.0 == rule).collect();
        let f: BTreeSet<_> = found.keys().filter(|k| &k.0 == rule).collect();
        let tp = t.intersection(&f).count();
        let missed: Vec<_> = t.difference(&f).collect();
        let extra: Vec<_> = f.difference(&t).collect();
        table_text += &format!(
            "{:<8} {:>6} {:>6} {:>6} {:>6} {:>9}\n",
            rule,
            t.len(),
            f.len(),
            tp,
            missed.len(),
            extra.len()
        );
        if !missed.is_empty() {
            problems.push(format!(
                "{rule} missed {:?}",
                missed.iter().take(3).collect::<Vec<_>>()
            ));
        }
        if !extra.is_empty() {
            problems.push(format!(
                "{rule} extra {:?}",
                extra.iter().take(3).collect::<Vec<_>>()
            ));
        }
        for k in t.intersection(&f) {
            if truth[*k] != found[*k] {
                problems.push(format!(
                    "{k:?}: confidence {} expected {}",
                    found[*k], truth[*k]
                ));
            }
        }
    }
    println!("{table_text}");

    // No organization is non-green except through injected situations.
    let profiles = table(
        &warehouse.path().join(&scoring.outputs["profiles"]),
        &["uscc", "colour"],
    )
    .await;
    let injected: BTreeSet<&String> = truth.keys().map(|k| &k.1).collect();
    for p in &profiles {
        if !p[1].is_empty() && p[1] != "green" && !injected.contains(&p[0]) {
            problems.push(format!(
                "{} is {} without an injected situation",
                p[0], p[1]
            ));
        }
    }

    // Every organization's colour, points and red line as the test
    // computes them from the published hits and the rule files.
    let model = crate::colours::model(&crate::support::root());
    let profiles_path = warehouse.path().join(&scoring.outputs["profiles"]);
    let published =
        crate::colours::published_hits(&warehouse.path().join(&scoring.outputs["hits"])).await;
    let registry = crate::colours::registry_of(&profiles_path).await;
    let want = crate::colours::expected(&model, &registry, &published, &mut problems);
    crate::colours::compare_profiles(&profiles_path, &want, &mut problems).await;
    let mut bands: BTreeMap<Option<i64>, usize> = BTreeMap::new();
    for w in want.values() {
        *bands.entry(w.points).or_default() += 1;
    }
    println!("organizations by points: {bands:?}");
    assert!(problems.is_empty(), "{table_text}\n{}", problems.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_inputs_and_rules_give_byte_identical_outputs() {
    let feeds = tempfile::tempdir().expect("tmp");
    generate(feeds.path(), 120);
    let (a, b) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    let first = ingest(feeds.path(), a.path()).await;
    let second = ingest(feeds.path(), b.path()).await;
    let (sa, sb) = (
        first.scoring.expect("scored"),
        second.scoring.expect("scored"),
    );
    assert_eq!(
        sa.outputs.keys().collect::<Vec<_>>(),
        [
            "changes",
            "codes",
            "demonstration",
            "hits",
            "leads",
            "profiles",
            "public",
            "public_events"
        ]
    );
    for (name, path) in &sa.outputs {
        let x = std::fs::read(a.path().join(path)).expect("read");
        let y = std::fs::read(b.path().join(&sb.outputs[name])).expect("read");
        assert!(
            x == y,
            "{name} differs between two runs over the same inputs"
        );
    }
}
