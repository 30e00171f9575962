//! Colours computed by the test, not by `src/score`: the start points and
//! bands read from `pipelines/nightly.toml`, each rule's points and red
//! line from its TOML file, and the published `hits` grouped by the test
//! into events (one deduction per organization, rule and event, when one
//! of the event's rows is of high confidence). The result must equal the
//! published `profiles` for every organization: colour, points, red line.
//!
//! Over hand-written tables that reach every band edge (points exactly
//! 12, 10, 9, 7, 6, 4, 3 and 0, more than 12 deducted, a red line with
//! points to spare, low-confidence evidence of a point rule and of a red
//! line, one event on several rows, several events of one rule, a row of
//! each confidence in one event, a deregistered organization), and over
//! the generated population of the ground-truth test.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use qinglian::project::Project;

use crate::support::{read_parquet, reference_check, root, strings};

/// What the published configuration says, read as plain TOML.
pub(crate) struct Model {
    start: i64,
    /// (colour, min, max).
    bands: Vec<(String, i64, i64)>,
    /// rule id → (points, red line).
    rules: BTreeMap<String, (i64, bool)>,
}

pub(crate) fn model(project_root: &Path) -> Model {
    let read = |p: &Path| -> toml::Table {
        std::fs::read_to_string(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .parse()
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    };
    let nightly = read(&project_root.join("pipelines/nightly.toml"));
    let scoring = nightly["scoring"].as_table().expect("[scoring]");
    let start = scoring["start_points"].as_integer().expect("start_points");
    let bands = scoring["bands"]
        .as_array()
        .expect("bands")
        .iter()
        .map(|b| {
            (
                b["colour"].as_str().expect("colour").to_string(),
                b["min"].as_integer().expect("min"),
                b["max"].as_integer().expect("max"),
            )
        })
        .collect();
    let mut rules = BTreeMap::new();
    for file in nightly["rules"].as_array().expect("rules") {
        let file = file.as_str().expect("rule file");
        let doc = read(&project_root.join(format!("pipelines/rules/{file}.toml")));
        for rule in doc["rule"].as_array().expect("[[rule]]") {
            let id = rule["id"].as_str().expect("id").to_string();
            let points = rule.get("points").and_then(|v| v.as_integer()).unwrap_or(0);
            let red = rule
                .get("red_line")
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
            rules.insert(id, (points, red));
        }
    }
    Model {
        start,
        bands,
        rules,
    }
}

/// One published row of `hits`, as the oracle needs it.
#[derive(Debug, Clone)]
pub(crate) struct HitRow {
    pub(crate) uscc: String,
    pub(crate) rule_id: String,
    pub(crate) source_feed: String,
    pub(crate) source_record_id: String,
    pub(crate) event: String,
    pub(crate) high: bool,
    pub(crate) counted: bool,
}

/// What the test expects of one organization's profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expected {
    pub(crate) colour: Option<String>,
    pub(crate) points: Option<i64>,
    pub(crate) red_line: bool,
    /// Points deducted before the floor at 0 (for the edges' coverage).
    pub(crate) deducted: i64,
}

async fn column_table(path: &Path, columns: &[&str]) -> Vec<Vec<Option<String>>> {
    let batches = read_parquet(path).await;
    let cols: Vec<Vec<Option<String>>> = columns.iter().map(|c| strings(&batches, c)).collect();
    let rows = cols.first().map_or(0, Vec::len);
    (0..rows)
        .map(|r| cols.iter().map(|c| c[r].clone()).collect())
        .collect()
}

pub(crate) async fn published_hits(path: &Path) -> Vec<HitRow> {
    column_table(
        path,
        &[
            "uscc",
            "rule_id",
            "source_feed",
            "source_record_id",
            "event",
            "confidence",
            "counted",
        ],
    )
    .await
    .into_iter()
    .map(|r| {
        let s = |i: usize| r[i].clone().unwrap_or_default();
        HitRow {
            uscc: s(0),
            rule_id: s(1),
            source_feed: s(2),
            source_record_id: s(3),
            event: s(4),
            high: s(5) == "high",
            counted: s(6) == "true",
        }
    })
    .collect()
}

/// The test's own colours; `problems` gets every hit row the model cannot
/// place and every event whose `counted` marks are not exactly one row (a
/// high-confidence one when the event has one), or, for a deregistered
/// organization, not none.
pub(crate) fn expected(
    model: &Model,
    registry: &BTreeMap<String, String>,
    hits: &[HitRow],
    problems: &mut Vec<String>,
) -> BTreeMap<String, Expected> {
    let mut events: BTreeMap<(&str, &str, &str), Vec<&HitRow>> = BTreeMap::new();
    for h in hits {
        events
            .entry((&h.uscc, &h.rule_id, &h.event))
            .or_default()
            .push(h);
    }
    let mut deducted: BTreeMap<&str, i64> = BTreeMap::new();
    let mut red: BTreeSet<&str> = BTreeSet::new();
    for ((uscc, rule, event), rows) in &events {
        let Some(&(points, red_line)) = model.rules.get(*rule) else {
            problems.push(format!("hit of {uscc} names rule {rule}, in no rule file"));
            continue;
        };
        let high = rows.iter().any(|r| r.high);
        let counted: Vec<_> = rows.iter().filter(|r| r.counted).collect();
        // A deregistered organization gets no colour: its rows are evidence
        // only, none counted (hits.counted).
        if registry.get(*uscc).map(String::as_str) == Some("deregistered") {
            if !counted.is_empty() {
                problems.push(format!(
                    "{uscc} {rule} event {event:?}: deregistered, yet {} row(s) counted",
                    counted.len()
                ));
            }
            continue;
        }
        if counted.len() != 1 || (high && !counted[0].high) {
            problems.push(format!(
                "{uscc} {rule} event {event:?}: {} of {} rows counted ({} of high confidence)",
                counted.len(),
                rows.len(),
                counted.iter().filter(|r| r.high).count()
            ));
        }
        if !high {
            continue;
        }
        if red_line {
            red.insert(uscc);
        } else {
            *deducted.entry(uscc).or_default() += points;
        }
    }
    registry
        .iter()
        .map(|(uscc, status)| {
            let d = deducted.get(uscc.as_str()).copied().unwrap_or(0);
            let e = if status == "deregistered" {
                Expected {
                    colour: None,
                    points: None,
                    red_line: false,
                    deducted: d,
                }
            } else {
                let points = (model.start - d).max(0);
                let red_line = red.contains(uscc.as_str());
                let colour = if red_line {
                    "red".to_string()
                } else {
                    model
                        .bands
                        .iter()
                        .find(|(_, min, max)| (*min..=*max).contains(&points))
                        .map(|b| b.0.clone())
                        .unwrap_or_else(|| panic!("no band holds {points} points"))
                };
                Expected {
                    colour: Some(colour),
                    points: Some(points),
                    red_line,
                    deducted: d,
                }
            };
            (uscc.clone(), e)
        })
        .collect()
}

/// Compares the published `profiles` with the expectation, organization by
/// organization; returns the profiles read (uscc → expected form).
pub(crate) async fn compare_profiles(
    path: &Path,
    want: &BTreeMap<String, Expected>,
    problems: &mut Vec<String>,
) -> BTreeMap<String, Expected> {
    let rows = column_table(path, &["uscc", "colour", "points", "red_line"]).await;
    let mut got = BTreeMap::new();
    for r in rows {
        let uscc = r[0].clone().unwrap_or_default();
        let e = Expected {
            colour: r[1].clone(),
            points: r[2].as_ref().map(|p| p.parse().expect("points")),
            red_line: r[3].as_deref() == Some("true"),
            deducted: want.get(&uscc).map_or(0, |w| w.deducted),
        };
        if got.insert(uscc.clone(), e).is_some() {
            problems.push(format!("{uscc} has two profiles"));
        }
    }
    for (uscc, w) in want {
        match got.get(uscc) {
            None => problems.push(format!("{uscc} has no profile")),
            Some(g) if g != w => problems.push(format!(
                "{uscc}: published {:?} {:?} red_line {}, the test computes {:?} {:?} red_line {} ({} deducted)",
                g.colour, g.points, g.red_line, w.colour, w.points, w.red_line, w.deducted
            )),
            Some(_) => {}
        }
    }
    for uscc in got.keys().filter(|u| !want.contains_key(*u)) {
        problems.push(format!("{uscc} has a profile and is not in the registry"));
    }
    got
}

/// The registry (uscc → status) of a published `profiles` file.
pub(crate) async fn registry_of(profiles: &Path) -> BTreeMap<String, String> {
    column_table(profiles, &["uscc", "status"])
        .await
        .into_iter()
        .map(|r| {
            (
                r[0].clone().unwrap_or_default(),
                r[1].clone().unwrap_or_default(),
            )
        })
        .collect()
}

fn code(i: u32) -> String {
    reference_check(&format!("51330100MJ{i:06}")).expect("a code")
}

fn row(pairs: &[(&str, toml::Value)]) -> toml::Table {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn s(v: &str) -> toml::Value {
    toml::Value::String(v.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn colours_computed_by_the_test_equal_the_published_profiles_at_every_band_edge() {
    let project = Project::load(&root()).expect("project");
    let pipeline = &project.pipelines["nightly"];
    let date = chrono::NaiveDate::from_ymd_opt(2026, 6, 30).expect("date");
    // Organization → (inspection results as (task, result, rows), registry
    // tweaks). Points: 02 → OPS-03 (2), 10 → OPS-05 (4), 04 → OPS-04 (6),
    // 13 → CUL-02 (3), 14 → CUL-03 (6); no party-building clause ORG-01 (1),
    // no pledge CUL-01 (1); revoked OPS-09 (red line).
    struct Org {
        name: &'static str,
        inspections: &'static [(&'static str, &'static str, usize)],
        no_charter: bool,
        no_pledge: bool,
        status: &'static str,
        want_points: Option<i64>,
        want_colour: Option<&'static str>,
    }
    let orgs = [
        Org {
            name: "甲 nothing",
            inspections: &[],
            no_charter: false,
            no_pledge: false,
            status: "active",
            want_points: Some(12),
            want_colour: Some("green"),
        },
        Org {
            name: "乙 two points",
            inspections: &[],
            no_charter: true,
            no_pledge: true,
            status: "active",
            want_points: Some(10),
            want_colour: Some("green"),
        },
        Org {
            name: "丙 three",
            inspections: &[("C1", "02", 1)],
            no_charter: true,
            no_pledge: false,
            status: "active",
            want_points: Some(9),
            want_colour: Some("yellow"),
        },
        Org {
            name: "丁 five",
            inspections: &[("D1", "02", 1), ("D2", "13", 1)],
            no_charter: false,
            no_pledge: false,
            status: "active",
            want_points: Some(7),
            want_colour: Some("yellow"),
        },
        Org {
            name: "戊 six",
            inspections: &[("E1", "04", 1)],
            no_charter: false,
            no_pledge: false,
            status: "active",
            want_points: Some(6),
            want_colour: Some("orange"),
        },
        Org {
            name: "己 eight",
            inspections: &[("F1", "04", 1), ("F2", "02", 1)],
            no_charter: false,
            no_pledge: false,
            status: "active",
            want_points: Some(4),
            want_colour: Some("orange"),
        },
        Org {
            name: "庚 nine",
            inspections: &[("G1", "04", 1), ("G2", "13", 1)],
            no_charter: false,
            no_pledge: false,
            status: "active",
            want_points: Some(3),
            want_colour: Some("red"),
        },
        // Several events of one rule: two refused inspections deduct twice.
        Org {
            name: "辛 twelve",
            inspections: &[("H1", "04", 1), ("H2", "04", 1)],
            no_charter: false,
            no_pledge: false,
            status: "active",
            want_points: Some(0),
            want_colour: Some("red"),
        },
        Org {
            name: "壬 sixteen",
            inspections: &[("I1", "04", 1), ("I2", "14", 1), ("I3", "10", 1)],
            no_charter: false,
            no_pledge: false,
            status: "active",
            want_points: Some(0),
            want_colour: Some("red"),
        },
        // One event on three rows deducts once.
        Org {
            name: "癸 one event",
            inspections: &[("J1", "04", 3)],
            no_charter: false,
            no_pledge: false,
            status: "active",
            want_points: Some(6),
            want_colour: Some("orange"),
        },
        // A red line with every point left.
        Org {
            name: "子 revoked",
            inspections: &[],
            no_charter: false,
            no_pledge: false,
            status: "revoked",
            want_points: Some(12),
            want_colour: Some("red"),
        },
        // Deregistered: no colour, no points, whatever it did.
        Org {
            name: "丑 gone",
            inspections: &[("N1", "04", 1)],
            no_charter: false,
            no_pledge: false,
            status: "deregistered",
            want_points: None,
            want_colour: None,
        },
        // Evidence by name only (added below): deducts nothing, no red line.
        Org {
            name: "寅 by name",
            inspections: &[],
            no_charter: false,
            no_pledge: false,
            status: "active",
            want_points: Some(12),
            want_colour: Some("green"),
        },
        // One event with a row of each confidence: deducts once.
        Org {
            name: "卯 mixed",
            inspections: &[("M1", "04", 1)],
            no_charter: false,
            no_pledge: false,
            status: "active",
            want_points: Some(6),
            want_colour: Some("orange"),
        },
        // Seven points, with a rule of one point among them.
        Org {
            name: "辰 seven",
            inspections: &[("K1", "02", 1), ("K2", "02", 1)],
            no_charter: true,
            no_pledge: false,
            status: "active",
            want_points: Some(7),
            want_colour: Some("yellow"),
        },
    ];
    let full_name = |o: &Org| format!("杭州市{}协会", o.name.split(' ').next().expect("name"));
    let mut registry = Vec::new();
    let mut inspection = Vec::new();
    let mut credit = Vec::new();
    let mut task_of: BTreeMap<String, String> = BTreeMap::new();
    for (i, o) in orgs.iter().enumerate() {
        let uscc = code(i as u32 + 1);
        registry.push(row(&[
            ("uscc", s(&uscc)),
            ("source_record_id", s(&uscc)),
            ("subject_name", s(&full_name(o))),
            ("name", s(&full_name(o))),
            ("org_type", s("social_group")),
            ("status", s(o.status)),
            ("status_changed_on", s("2026-03-01")),
            ("registered_on", s("2015-03-01")),
            ("charity", toml::Value::Boolean(false)),
            ("public_fundraising", toml::Value::Boolean(false)),
            ("party_org", toml::Value::Boolean(true)),
            ("party_in_charter", toml::Value::Boolean(!o.no_charter)),
            ("integrity_pledge", toml::Value::Boolean(!o.no_pledge)),
        ]));
        for (task, result, rows) in o.inspections {
            for n in 0..*rows {
                let id = format!("{task}-{n}");
                task_of.insert(id.clone(), task.to_string());
                inspection.push(row(&[
                    ("uscc", s(&uscc)),
                    ("source_record_id", s(&id)),
                    ("task_id", s(task)),
                    ("checked_on", s("2026-04-01")),
                    ("result_code", s(result)),
                ]));
            }
        }
        if o.name.starts_with("卯") {
            // The same task once more, by name alone.
            task_of.insert("M1-name".into(), "M1".into());
            inspection.push(row(&[
                ("subject_name", s(&full_name(o))),
                ("source_record_id", s("M1-name")),
                ("task_id", s("M1")),
                ("checked_on", s("2026-04-01")),
                ("result_code", s("04")),
            ]));
        }
        if o.name.starts_with("寅") {
            task_of.insert("L1".into(), "L1".into());
            inspection.push(row(&[
                ("subject_name", s(&full_name(o))),
                ("source_record_id", s("L1")),
                ("task_id", s("L1")),
                ("checked_on", s("2026-04-01")),
                ("result_code", s("04")),
            ]));
            // A red-line penalty by name alone: no red line.
            credit.push(row(&[
                ("subject_name", s(&full_name(o))),
                ("source_record_id", s("P1")),
                ("list_type", s("penalty")),
                ("penalty_kind", s("suspension")),
                ("decided_on", s("2026-04-01")),
            ]));
        }
    }

    // The tables as landed snapshots, scored by the published code path.
    let warehouse = tempfile::tempdir().expect("tmp");
    let mut snapshots = BTreeMap::new();
    for (feed, schema) in &project.schemas {
        let rows: &[toml::Table] = match feed.as_str() {
            "registry" => &registry,
            "inspection" => &inspection,
            "credit" => &credit,
            _ => &[],
        };
        let b: RecordBatch = crate::rules::batch(schema, rows);
        let rel = format!("landing/{feed}/fixture/data.parquet");
        let path = warehouse.path().join(&rel);
        std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
        let mut w = ArrowWriter::try_new(
            std::fs::File::create(&path).expect("create"),
            b.schema(),
            None,
        )
        .expect("writer");
        w.write(&b).expect("write");
        w.close().expect("close");
        snapshots.insert(feed.clone(), (Some(rel), Some(date)));
    }
    let (store, prefix) =
        qinglian::store::open(warehouse.path().to_str().expect("utf-8")).expect("store");
    let summary = qinglian::score::score_run(qinglian::score::ScoreInput {
        project: &project,
        pipeline,
        store: Arc::clone(&store),
        prefix,
        run_id: "oracle",
        business_date: date,
        snapshots,
        warehouse_url: None,
        vars: &Default::default(),
    })
    .await
    .expect("scored");

    let model = model(&root());
    let mut problems = Vec::new();
    let mut hits = published_hits(&warehouse.path().join(&summary.outputs["hits"])).await;
    // The events by the test's own reading of the fixture: an inspection
    // rule's event is the inspection task, any other hit its record.
    for h in &mut hits {
        let own = match (h.source_feed.as_str(), task_of.get(&h.source_record_id)) {
            ("inspection", Some(task)) => format!("task {task}"),
            _ => format!("{}|{}", h.source_feed, h.source_record_id),
        };
        h.event = own;
    }
    let profiles_path = warehouse.path().join(&summary.outputs["profiles"]);
    let registry_status = registry_of(&profiles_path).await;
    let want = expected(&model, &registry_status, &hits, &mut problems);
    compare_profiles(&profiles_path, &want, &mut problems).await;

    // The fixture reaches what it is written to reach (worked out by hand
    // above), so a wrong rule file or a rule that stopped hitting cannot
    // leave an edge uncovered.
    for (i, o) in orgs.iter().enumerate() {
        let w = &want[&code(i as u32 + 1)];
        if w.points != o.want_points || w.colour.as_deref() != o.want_colour {
            problems.push(format!(
                "fixture {}: the test computes {:?} {:?}, written for {:?} {:?}",
                o.name, w.points, w.colour, o.want_points, o.want_colour
            ));
        }
    }
    let reached: BTreeSet<i64> = want.values().filter_map(|w| w.points).collect();
    for edge in [12, 10, 9, 7, 6, 4, 3, 0] {
        assert!(reached.contains(&edge), "no organization at {edge} points");
    }
    assert!(
        want.values().any(|w| w.deducted > model.start),
        "no organization with more than {} deducted",
        model.start
    );
    let by_name: BTreeSet<&str> = hits
        .iter()
        .filter(|h| !h.high)
        .map(|h| h.rule_id.as_str())
        .collect();
    assert_eq!(
        by_name,
        BTreeSet::from(["OPS-04", "OPS-08"]),
        "low-confidence hits of a point rule and a red line"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
