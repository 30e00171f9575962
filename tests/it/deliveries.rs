//! Delivery scenarios: department files in shapes the generator never
//! writes (a feed in two files with different key fields, a penalty export
//! with several key columns, GB18030 with a character outside GBK, dates as
//! `2019/03/05`, `2019年3月5日` and `20190305`, an `.xlsx` workbook with a
//! title above its header, a byte-order mark, a
//! full-width code, one person on two role lines of a revoked
//! organization), their source configs, and the colour and points of every
//! organization worked out by hand in `expected.toml`. Each folder under
//! `tests/fixtures/deliveries/` is a scenario: `FEEDS` (the feeds to run,
//! the registry first), `feeds/`, `project/` laid over the shipped project,
//! `expected.toml`. The run is compared organization by organization.
//! `drifted_exports` adds an openpyxl workbook with a merged title, `;`
//! CSV with CRLF and a quoted line break, a JSON document of strings,
//! result codes without their leading zero, an inspection delivered three
//! times (once with other white space), a renamed organization, one
//! person on role lines of three organizations, and a misspelt field in
//! one part: `[held]` names the feeds a scenario expects held, with the
//! fields no record carried, and the colours are worked out without them.

use std::collections::BTreeMap;

use crate::support::{fixtures, read_parquet, strings};

/// `RULE×events` of the counted, full-confidence hits of each organization.
fn counted_rules(
    batches: &[datafusion::arrow::array::RecordBatch],
) -> BTreeMap<String, Vec<String>> {
    let (uscc, rule, counted, confidence) = (
        strings(batches, "uscc"),
        strings(batches, "rule_id"),
        strings(batches, "counted"),
        strings(batches, "confidence"),
    );
    let mut events: BTreeMap<(String, String), usize> = BTreeMap::new();
    for i in 0..uscc.len() {
        if counted[i].as_deref() == Some("true") && confidence[i].as_deref() == Some("high") {
            let key = (
                uscc[i].clone().unwrap_or_default(),
                rule[i].clone().unwrap_or_default(),
            );
            *events.entry(key).or_default() += 1;
        }
    }
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for ((u, r), n) in events {
        out.entry(u).or_default().push(format!("{r}×{n}"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_gives_the_colours_worked_out_by_hand() {
    let dir = fixtures().join("deliveries");
    let mut scenarios: Vec<_> = std::fs::read_dir(&dir)
        .expect("delivery scenarios")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    scenarios.sort();
    assert!(!scenarios.is_empty());
    let mut problems = Vec::new();
    for case in &scenarios {
        let name = case.file_name().map(|n| n.to_string_lossy().into_owned());
        let name = name.unwrap_or_default();
        let feeds = std::fs::read_to_string(case.join("FEEDS")).expect("FEEDS");
        let expected: toml::Table =
            toml::from_str(&std::fs::read_to_string(case.join("expected.toml")).expect("expected"))
                .expect("expected.toml");
        let (_project_dir, project) = crate::support::case_project(case, &feeds);
        let warehouse = tempfile::tempdir().expect("tmp");
        let run = crate::support::run_case(&project, &case.join("feeds"), warehouse.path()).await;
        let mut problem = |p: String| problems.push(format!("{name}: {p}"));
        // `[held]`: feeds the scenario expects held (a tripped guard), with
        // the records read and the mapped fields no record carried. The
        // run is then degraded, never succeeded, and the colours are the
        // ones worked out without those feeds.
        let empty = toml::Table::new();
        let held = expected
            .get("held")
            .and_then(|v| v.as_table())
            .unwrap_or(&empty);
        let want_status = if held.is_empty() {
            "Succeeded"
        } else {
            "Degraded"
        };
        if format!("{:?}", run.status) != want_status {
            problem(format!(
                "run {:?}, expected {want_status}: {:#?}",
                run.status, run.feeds
            ));
            continue;
        }
        for (feed, want) in held {
            let Some(f) = run.feeds.iter().find(|f| &f.feed == feed) else {
                problem(format!("feed {feed}: expected held, not run"));
                continue;
            };
            let missing: Vec<String> = want["missing"]
                .as_array()
                .expect("missing")
                .iter()
                .map(|v| v.as_str().expect("field").to_string())
                .collect();
            let read = want["read"].as_integer().expect("read") as u64;
            if f.status != qinglian::ledger::FeedStatus::Held
                || f.missing_fields != missing
                || f.read != read
            {
                problem(format!(
                    "feed {feed}: {:?}, read {}, fields no record carried {:?} ({:?}); expected held, read {read}, {missing:?}",
                    f.status, f.read, f.missing_fields, f.error
                ));
            }
        }

        // Every row of every part lands: what the files hold, counted by hand.
        let want_feeds = expected["feeds"].as_table().expect("[feeds]");
        for f in &run.feeds {
            assert!(f.reconciles(), "{name}: {f:#?}");
            if held.contains_key(&f.feed) {
                continue;
            }
            let want = want_feeds
                .get(&f.feed)
                .and_then(|v| v.as_table())
                .unwrap_or_else(|| panic!("{name}: no [feeds] entry for {}", f.feed));
            let n = |k: &str| want[k].as_integer().expect("count") as u64;
            if (f.read, f.landed) != (n("read"), n("landed"))
                || f.error.is_some()
                || f.status != qinglian::ledger::FeedStatus::Landed
            {
                problem(format!(
                    "feed {}: read {} landed {} quarantined {} ({:?}), expected read {} landed {}",
                    f.feed,
                    f.read,
                    f.landed,
                    f.quarantined,
                    f.error,
                    n("read"),
                    n("landed")
                ));
            }
        }

        // Per part: every row of each part lands, and says where it came
        // from and which delivered field gave its key.
        for (feed, parts) in expected["parts"].as_table().expect("[parts]") {
            let f = run.feeds.iter().find(|f| &f.feed == feed).expect("feed");
            let got: BTreeMap<&str, u64> = f
                .parts
                .iter()
                .map(|p| (p.name.as_str(), p.landed))
                .collect();
            let want: BTreeMap<&str, u64> = parts
                .as_table()
                .expect("parts")
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_integer().expect("count") as u64))
                .collect();
            if got != want {
                problem(format!(
                    "feed {feed}: landed per part {got:?}, expected {want:?}"
                ));
            }
        }
        // `status` shows each part under its feed, with its counts.
        let status = crate::support::qinglian(
            &["status", "--warehouse", &warehouse.path().to_string_lossy()],
            None,
        );
        let text = String::from_utf8_lossy(&status.stdout);
        for f in run.feeds.iter().filter(|f| f.parts.len() > 1) {
            for p in &f.parts {
                let line = text
                    .lines()
                    .find(|l| l.trim_start().starts_with(&format!("part {} ", p.name)));
                let counts: Vec<u64> = line
                    .map(|l| {
                        l.split_whitespace()
                            .skip(2)
                            .filter_map(|w| w.parse().ok())
                            .collect()
                    })
                    .unwrap_or_default();
                if counts != [p.read, p.landed, p.quarantined, p.duplicates] {
                    problem(format!("status shows part {} as {line:?}:\n{text}", p.name));
                }
            }
        }
        for l in expected["landed"].as_array().expect("[[landed]]") {
            let field = |k: &str| l[k].as_str().expect(k).to_string();
            let path = warehouse.path().join(qinglian::layout::landed_data(
                &field("feed"),
                crate::ingest::date(),
                &run.run_id,
            ));
            let batches = read_parquet(&path).await;
            let ids = strings(&batches, "source_record_id");
            let Some(i) = ids
                .iter()
                .position(|v| v.as_deref() == Some(&field("record")))
            else {
                problem(format!(
                    "{}: record {} not landed",
                    field("feed"),
                    field("record")
                ));
                continue;
            };
            for (column, key) in [
                ("source_part", "part"),
                ("key_field", "key_field"),
                ("uscc", "uscc"),
            ] {
                let got = strings(&batches, column)[i].clone().unwrap_or_default();
                if got != field(key) {
                    problem(format!(
                        "{} {}: {column} {got:?}, expected {:?}",
                        field("feed"),
                        field("record"),
                        field(key)
                    ));
                }
            }
        }

        let scoring = run.scoring.as_ref().expect("scored");
        let profiles = read_parquet(&warehouse.path().join(&scoring.outputs["profiles"])).await;
        let hits = read_parquet(&warehouse.path().join(&scoring.outputs["hits"])).await;
        let (uscc, colour, points) = (
            strings(&profiles, "uscc"),
            strings(&profiles, "colour"),
            strings(&profiles, "points"),
        );
        let got: BTreeMap<String, (String, Option<String>)> = (0..uscc.len())
            .map(|i| {
                (
                    uscc[i].clone().unwrap_or_default(),
                    (colour[i].clone().unwrap_or_default(), points[i].clone()),
                )
            })
            .collect();
        let rules = counted_rules(&hits);
        let orgs = expected["org"].as_array().expect("[[org]]");
        let mut seen = Vec::new();
        for o in orgs {
            let code = o["uscc"].as_str().expect("uscc").to_string();
            seen.push(code.clone());
            let Some((c, p)) = got.get(&code) else {
                problem(format!("{code}: no profile"));
                continue;
            };
            let want_colour = o["colour"].as_str().expect("colour");
            if c != want_colour {
                problem(format!("{code}: colour {c:?}, worked out {want_colour:?}"));
            }
            if let Some(want) = o.get("points").and_then(|v| v.as_integer())
                && p.as_deref() != Some(want.to_string().as_str())
            {
                problem(format!("{code}: points {p:?}, worked out {want}"));
            }
            let want_rules: Vec<String> = o["rules"]
                .as_array()
                .expect("rules")
                .iter()
                .map(|r| r.as_str().expect("rule").to_string())
                .collect();
            let got_rules = rules.get(&code).cloned().unwrap_or_default();
            if got_rules != want_rules {
                problem(format!(
                    "{code}: counted hits {got_rules:?}, worked out {want_rules:?}"
                ));
            }
        }
        // Every profile is worked out: no organization appears unexpected.
        for code in got.keys() {
            if !seen.contains(code) {
                problem(format!("{code}: a profile the scenario does not expect"));
            }
        }
        // Subjects outside the registry join nothing and are nobody's hit;
        // they are leads, for the registrar.
        let hit_usccs = strings(&hits, "uscc");
        let leads = read_parquet(&warehouse.path().join(&scoring.outputs["leads"])).await;
        let lead_usccs = strings(&leads, "uscc");
        if lead_usccs.len()
            != expected["unregistered"]["usccs"]
                .as_array()
                .map_or(0, Vec::len)
        {
            problem(format!(
                "leads {lead_usccs:?}, expected only the unregistered subjects"
            ));
        }
        for code in expected["unregistered"]["usccs"]
            .as_array()
            .expect("unregistered")
            .iter()
            .filter_map(|v| v.as_str())
        {
            if got.contains_key(code) || hit_usccs.iter().any(|u| u.as_deref() == Some(code)) {
                problem(format!("{code}: unregistered, yet scored"));
            }
            if !lead_usccs.iter().any(|u| u.as_deref() == Some(code)) {
                problem(format!("{code}: unregistered, yet no lead"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
