//! Oracles the pipeline did not write: two consecutive business dates, the
//! published Parquet read back by pyarrow (checksums recomputed in
//! Python), the day-to-day diff of `codes` and of the rules in `hits`
//! computed here, and every request the platform simulator received.
//!
//! - `changes` equals the diff of `codes` (an organization that leaves the
//!   registry between the days included: its colour is withdrawn, a change
//!   to no colour naming every rule it had);
//! - every pushed (USCC, colour, previous colour, rules) is a row of the
//!   published `changes` of its date, each row pushed once, and `--full`
//!   pushes exactly `codes`;
//! - no batch is sent again after the platform acknowledged it, through
//!   faults after the platform stored a batch and a re-run of the date.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::NaiveDate;
use qinglian::catalog::Published;
use qinglian::generate::{GenerateOptions, generate};
use qinglian::ledger::{RunRecord, RunStatus};
use qinglian::platform::{CapturedRequest, PlatformFault, PlatformSimulator};
use qinglian::project::Project;
use serde_json::Value;

use crate::ingest::{Extras, run_project};

const SECRET: &str = "oracle-test-secret";

/// Reads the `codes`, `changes` and `hits` of one manifest with pyarrow,
/// after checking each file's SHA-256 against the manifest.
const READER: &str = r#"
import hashlib, json, sys
import pyarrow.parquet as pq
root, manifest = sys.argv[1], sys.argv[2]
m = json.load(open(root + '/' + manifest))
out = {'business_date': m['business_date']}
columns = {
    'codes': ['uscc', 'name', 'colour'],
    'changes': ['uscc', 'name', 'previous_business_date', 'previous_colour', 'colour',
                'rules_added', 'rules_removed', 'business_date'],
    'hits': ['uscc', 'rule_id'],
}
for name, cols in columns.items():
    rows = []
    for f in m['datasets'][name]['files']:
        path = root + '/' + f['path']
        data = open(path, 'rb').read()
        assert hashlib.sha256(data).hexdigest() == f['sha256'], path
        rows += pq.read_table(path, columns=cols).to_pylist()
    out[name] = rows
print(json.dumps(out, default=str))
"#;

/// One published version as pyarrow read it.
pub(crate) struct Read {
    /// Colour by USCC (`codes` holds only organizations with a colour).
    pub(crate) codes: BTreeMap<String, String>,
    /// Name by USCC in `codes`.
    pub(crate) names: BTreeMap<String, String>,
    /// The rules hit by USCC.
    pub(crate) rules: BTreeMap<String, BTreeSet<String>>,
    /// `changes` by USCC.
    pub(crate) changes: BTreeMap<String, Change>,
}

/// A change as the platform sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Change {
    pub(crate) previous_colour: Option<String>,
    pub(crate) colour: Option<String>,
    pub(crate) rules_added: Vec<String>,
    pub(crate) rules_removed: Vec<String>,
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

fn split(v: &Value) -> Vec<String> {
    v.as_str()
        .filter(|s| !s.is_empty())
        .map(|s| s.split(',').map(str::to_string).collect())
        .unwrap_or_default()
}

pub(crate) fn read_with_pyarrow(warehouse: &Path, manifest: &str) -> (Read, Vec<Value>) {
    let out = std::process::Command::new("python3")
        .args(["-c", READER, warehouse.to_str().expect("utf-8"), manifest])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "pyarrow: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let rows = |d: &str| v[d].as_array().expect(d).clone();
    let mut read = Read {
        codes: BTreeMap::new(),
        names: BTreeMap::new(),
        rules: BTreeMap::new(),
        changes: BTreeMap::new(),
    };
    for r in rows("codes") {
        let u = text(&r["uscc"]).expect("uscc");
        let colour = text(&r["colour"]).expect("codes hold only colours");
        read.names
            .insert(u.clone(), text(&r["name"]).expect("name"));
        assert!(read.codes.insert(u, colour).is_none(), "one code each");
    }
    for r in rows("hits") {
        read.rules
            .entry(text(&r["uscc"]).expect("uscc"))
            .or_default()
            .insert(text(&r["rule_id"]).expect("rule"));
    }
    let changes = rows("changes");
    for r in &changes {
        let change = Change {
            previous_colour: text(&r["previous_colour"]),
            colour: text(&r["colour"]),
            rules_added: split(&r["rules_added"]),
            rules_removed: split(&r["rules_removed"]),
        };
        let u = text(&r["uscc"]).expect("uscc");
        assert!(read.changes.insert(u, change).is_none(), "one change each");
    }
    (read, changes)
}

/// The changes from `before` to `now` computed from their `codes` and
/// `hits` alone: every organization whose colour differs (absent from
/// `codes`: no colour), with the rules hit now and not then and then and
/// not now.
pub(crate) fn diff(before: Option<&Read>, now: &Read) -> BTreeMap<String, Change> {
    let (no_codes, no_rules) = (BTreeMap::new(), BTreeMap::new());
    let (codes_then, rules_then) = before.map_or((&no_codes, &no_rules), |b| (&b.codes, &b.rules));
    let none = BTreeSet::new();
    let mut out = BTreeMap::new();
    for u in codes_then.keys().chain(now.codes.keys()) {
        let (then, colour) = (codes_then.get(u).cloned(), now.codes.get(u).cloned());
        if then == colour {
            continue;
        }
        let (a, b) = (
            rules_then.get(u).unwrap_or(&none),
            now.rules.get(u).unwrap_or(&none),
        );
        out.insert(
            u.clone(),
            Change {
                previous_colour: then,
                colour,
                rules_added: b.difference(a).cloned().collect(),
                rules_removed: a.difference(b).cloned().collect(),
            },
        );
    }
    out
}

/// What the platform was sent for one business date and kind, taken from
/// every request it received (not its store, which keeps one copy per
/// key): the records of each distinct batch, resends required identical.
fn pushed(requests: &[CapturedRequest], day: NaiveDate, kind: &str) -> Vec<Value> {
    let mut bodies: BTreeMap<String, &[u8]> = BTreeMap::new();
    let mut batches = BTreeSet::new();
    let mut total = None;
    let mut records = Vec::new();
    for r in requests {
        let body: Value = serde_json::from_slice(&r.body).expect("a JSON body");
        if body["kind"] != kind || body["business_date"] != day.to_string() {
            continue;
        }
        let key = r.idempotency_key.clone().expect("a key");
        if let Some(first) = bodies.get(&key) {
            assert_eq!(*first, &r.body[..], "{key} resent with another body");
            continue;
        }
        bodies.insert(key, &r.body[..]);
        assert!(batches.insert(body["batch"].as_u64().expect("batch")));
        let n = body["batches"].as_u64().expect("batches");
        assert_eq!(*total.get_or_insert(n), n, "one batch count");
        records.extend(body["records"].as_array().expect("records").iter().cloned());
    }
    if let Some(n) = total {
        assert_eq!(batches, (1..=n).collect(), "{day} {kind}: every batch sent");
    }
    records
}

/// No request repeats a batch after the platform answered it with a
/// receipt (the simulator's deduplication would hide such a resend).
pub(crate) fn assert_nothing_sent_after_its_acknowledgement(requests: &[CapturedRequest]) {
    let mut acknowledged = BTreeSet::new();
    for (i, r) in requests.iter().enumerate() {
        let key = r.idempotency_key.clone().expect("a key");
        assert!(
            !acknowledged.contains(&key),
            "request {i}: batch {key} sent again after the platform acknowledged it"
        );
        if r.acknowledged {
            acknowledged.insert(key);
        }
    }
}

fn as_change(record: &Value) -> Change {
    let list = |v: &Value| -> Vec<String> {
        v.as_array()
            .expect("a list of rules")
            .iter()
            .map(|r| r.as_str().expect("rule id").to_string())
            .collect()
    };
    Change {
        previous_colour: text(&record["previous_colour"]),
        colour: text(&record["colour"]),
        rules_added: list(&record["rules_added"]),
        rules_removed: list(&record["rules_removed"]),
    }
}

/// The pushed changes of a date, by USCC, each once.
fn pushed_changes(requests: &[CapturedRequest], day: NaiveDate) -> BTreeMap<String, Change> {
    let mut out = BTreeMap::new();
    for r in pushed(requests, day, "changes") {
        let u = text(&r["uscc"]).expect("uscc");
        assert!(
            out.insert(u.clone(), as_change(&r)).is_none(),
            "{u} pushed twice for {day}"
        );
    }
    out
}

struct Two {
    project: Project,
    root: tempfile::TempDir,
    sim: PlatformSimulator,
}

impl Two {
    async fn run(&self, day: NaiveDate, k: u32, full: bool) -> (RunRecord, Published) {
        let feeds = self.root.path().join(format!("feeds/day-{k}"));
        let warehouse = self.root.path().join("warehouse");
        let extras = Extras {
            vars: vec![
                ("QINGLIAN_PLATFORM_URL".into(), self.sim.url()),
                ("QINGLIAN_PLATFORM_SECRET".into(), SECRET.into()),
            ],
            full,
            ..Extras::default()
        };
        let run = run_project(&self.project, &feeds, &warehouse, day, extras).await;
        let (store, prefix) =
            qinglian::store::open(warehouse.to_str().expect("utf-8")).expect("warehouse");
        let version = Published::latest(&store, &prefix, day)
            .await
            .expect("readable")
            .expect("published");
        assert_eq!(run.manifest.as_deref(), Some(version.path.as_str()));
        (run, version)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_days_changes_equal_the_diff_of_codes_and_the_platform_got_exactly_them() {
    let root = tempfile::tempdir().expect("tmp");
    let dir = root.path().join("project");
    crate::support::copy_project(&dir);
    crate::deliver::tune_push(&dir);
    let two = Two {
        project: Project::load(&dir).expect("project"),
        sim: PlatformSimulator::start(0, SECRET.as_bytes(), 300)
            .await
            .expect("platform"),
        root,
    };
    let warehouse = two.root.path().join("warehouse");
    let days = [
        NaiveDate::from_ymd_opt(2026, 11, 27).expect("date"),
        NaiveDate::from_ymd_opt(2026, 11, 28).expect("date"),
    ];
    // The second day's data is the generator's population a week on, so
    // that colours move between colours and organizations register and
    // leave, not only the one removed below.
    for (k, (day, evolved)) in days.iter().zip([0, 7]).enumerate() {
        let options = GenerateOptions {
            orgs: 200,
            seed: 42,
            as_of: *day,
            day: evolved,
        };
        generate(&options, &two.root.path().join(format!("feeds/day-{k}"))).expect("generate");
    }

    // Day one: everything is new.
    let (run, first) = two.run(days[0], 0, false).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    let (day_one, _) = read_with_pyarrow(&warehouse, &first.path);
    assert!(day_one.codes.len() > 100, "{}", day_one.codes.len());
    assert_eq!(day_one.changes, diff(None, &day_one), "day one");

    // Between the days one coloured organization with hits leaves the
    // registry (missing from the second day's export).
    let gone = day_one
        .codes
        .keys()
        .find(|u| day_one.rules.contains_key(*u))
        .expect("a coloured organization with hits")
        .clone();
    crate::month::drop_registry_line(&two.root.path().join("feeds/day-1"), &gone);
    // The platform stores the first batch and then fails, and drops the
    // connection after storing the second: both are sent again, and must
    // not be duplicated or sent again after their receipt.
    two.sim.inject([
        PlatformFault::ServerErrorAfterStore,
        PlatformFault::CloseAfterBody,
    ]);
    let (run, second) = two.run(days[1], 1, false).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    let (day_two, rows) = read_with_pyarrow(&warehouse, &second.path);
    let expected = diff(Some(&day_one), &day_two);
    assert_eq!(
        day_two.changes, expected,
        "changes equal the day-to-day diff of codes and hits"
    );
    for r in &rows {
        assert_eq!(r["previous_business_date"], days[0].to_string(), "{r}");
        assert_eq!(r["business_date"], days[1].to_string(), "{r}");
    }
    // The leaving organization's colour is withdrawn: a change to no
    // colour, naming every rule it had, under its last registered name.
    let left = &day_two.changes[&gone];
    assert_eq!(left.previous_colour.as_ref(), day_one.codes.get(&gone));
    assert_eq!(left.colour, None);
    assert_eq!(
        left.rules_removed,
        day_one.rules[&gone].iter().cloned().collect::<Vec<_>>()
    );
    let row = rows
        .iter()
        .find(|r| r["uscc"] == gone.as_str())
        .expect("row");
    assert_eq!(text(&row["name"]), day_one.names.get(&gone).cloned());
    // Besides the leaving organization, colours moved between colours.
    assert!(
        expected
            .values()
            .any(|c| c.previous_colour.is_some() && c.colour.is_some()),
        "the second day moves a colour: {expected:?}"
    );
    println!("day two's changes: {expected:?}");

    // What the platform received, request by request.
    let requests = two.sim.requests();
    assert!(
        requests.iter().any(|r| !r.acknowledged),
        "the faults made the client send again"
    );
    println!(
        "day one: {} changes; day two: {} changes; {} requests, {} not acknowledged",
        day_one.changes.len(),
        day_two.changes.len(),
        requests.len(),
        requests.iter().filter(|r| !r.acknowledged).count()
    );
    assert_nothing_sent_after_its_acknowledgement(&requests);
    assert_eq!(pushed_changes(&requests, days[0]), day_one.changes);
    assert_eq!(pushed_changes(&requests, days[1]), day_two.changes);

    // A re-run of the second date sends nothing; `--full` sends `codes`.
    let sent = requests.len();
    let (again, _) = two.run(days[1], 1, false).await;
    assert_eq!(again.status, RunStatus::Succeeded, "{again:#?}");
    assert_eq!(two.sim.requests().len(), sent, "a re-run sends nothing");
    let (full, version) = two.run(days[1], 1, true).await;
    assert_eq!(full.status, RunStatus::Succeeded, "{full:#?}");
    let (now, _) = read_with_pyarrow(&warehouse, &version.path);
    assert_eq!(now.codes, day_two.codes, "the same codes");
    let requests = two.sim.requests();
    assert_nothing_sent_after_its_acknowledgement(&requests);
    let mut full_codes = BTreeMap::new();
    for r in pushed(&requests, days[1], "full") {
        let u = text(&r["uscc"]).expect("uscc");
        let pair = (text(&r["colour"]).expect("a colour"), text(&r["name"]));
        assert!(full_codes.insert(u.clone(), pair).is_none(), "{u} twice");
    }
    let expected_full: BTreeMap<_, _> = now
        .codes
        .iter()
        .map(|(u, c)| (u.clone(), (c.clone(), now.names.get(u).cloned())))
        .collect();
    assert_eq!(full_codes, expected_full, "--full pushes exactly codes");
}
