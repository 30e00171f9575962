//! `qinglian generate`: deterministic, in the departments' forms, with a
//! ground truth that covers every rule.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use qinglian::keys::{KeyClass, classify};

use crate::support::{qinglian, root};

fn generate(dir: &Path, orgs: &str, seed: &str) {
    let out = qinglian(
        &[
            "generate",
            "--orgs",
            orgs,
            "--seed",
            seed,
            "--as-of",
            "2026-11-28",
            "--out",
            dir.to_str().expect("utf-8"),
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    crate::support::walk(dir)
        .into_iter()
        .map(|rel| {
            let bytes = std::fs::read(dir.join(&rel)).expect("read");
            (rel, bytes)
        })
        .collect()
}

fn truth_rows(dir: &Path) -> Vec<csv::StringRecord> {
    let mut reader = csv::Reader::from_path(dir.join("ground_truth.csv")).expect("ground truth");
    reader.records().map(|r| r.expect("row")).collect()
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let a = tempfile::tempdir().expect("tmp");
    let b = tempfile::tempdir().expect("tmp");
    let c = tempfile::tempdir().expect("tmp");
    generate(a.path(), "300", "11");
    generate(b.path(), "300", "11");
    generate(c.path(), "300", "12");
    let (fa, fb, fc) = (files(a.path()), files(b.path()), files(c.path()));
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
    for (name, bytes) in &fa {
        assert!(
            bytes == &fb[name],
            "{name} differs between runs with the same seed"
        );
    }
    assert_ne!(fa["registry/registry.csv"], fc["registry/registry.csv"]);
}

#[tokio::test]
async fn ground_truth_covers_every_rule_of_the_project() {
    let dir = tempfile::tempdir().expect("tmp");
    generate(dir.path(), "200", "5");
    let project = qinglian::project::Project::load(&root()).expect("project");
    let rules: BTreeSet<String> = project.rules.iter().map(|r| r.id.clone()).collect();
    let rows = truth_rows(dir.path());
    let covered: BTreeSet<String> = rows.iter().map(|r| r[0].to_string()).collect();
    assert_eq!(covered, rules, "ground truth rules vs project rules");
    for r in &rows {
        assert_eq!(
            classify(&r[1]).class,
            KeyClass::Valid,
            "truth names a valid org: {r:?}"
        );
        assert!(
            project.sources.contains_key(&r[2]),
            "truth names a feed: {r:?}"
        );
        assert!(!r[3].is_empty());
        assert!(matches!(&r[4], "high" | "low"));
    }
}

#[test]
fn feeds_come_in_the_departments_forms() {
    let dir = tempfile::tempdir().expect("tmp");
    generate(dir.path(), "2000", "3");
    let f = files(dir.path());

    // Registry: GB18030 with Chinese headers, not valid UTF-8.
    let registry = &f["registry/registry.csv"];
    assert!(
        std::str::from_utf8(registry).is_err(),
        "registry is GB18030, not UTF-8"
    );
    let (text, _, had_errors) = encoding_rs::GB18030.decode(registry);
    assert!(!had_errors);
    assert!(text.starts_with("统一社会信用代码,社会组织名称,社会组织类型"));
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    let orgs = rows.len();
    assert!(orgs >= 2000);
    // DOMAIN.md §6: 9,405 of 10,000 wrote party building into the charter.
    let in_charter = rows.iter().filter(|r| &r[14] == "是").count() as f64 / orgs as f64;
    assert!(
        (0.92..0.96).contains(&in_charter),
        "party building share {in_charter}"
    );
    // About 2% dirty keys that still normalize to valid codes.
    let dirty = rows
        .iter()
        .filter(|r| {
            let c = classify(&r[0]);
            c.class == KeyClass::Valid && c.normalized != r[0]
        })
        .count();
    assert!(
        dirty > 0 && dirty < orgs / 20,
        "dirty registry keys {dirty}"
    );

    // Annual reports: UTF-8 with a BOM.
    assert!(f["annual_reports/annual_reports.csv"].starts_with(b"\xEF\xBB\xBF\xE7\xBB\x9F"));

    // Court: NDJSON with the court's own keys and epoch-millisecond dates.
    let court = std::str::from_utf8(&f["court/court.ndjson"]).expect("utf-8");
    let first: serde_json::Value =
        serde_json::from_str(court.lines().next().expect("a line")).expect("json");
    for key in [
        "caseCode",
        "iname",
        "cardNum",
        "courtName",
        "regDate",
        "performance",
        "publishDate",
    ] {
        assert!(first.get(key).is_some(), "court record has {key}");
    }
    assert!(first["regDate"].is_i64());
    // Org-code-only keys appear in the court feed.
    assert!(court.lines().any(|l| {
        let v: serde_json::Value = serde_json::from_str(l).expect("json");
        v["cardNum"]
            .as_str()
            .is_some_and(|k| classify(k).class == KeyClass::OrgCodeOnly)
    }));

    // Penalties in 万元, dates with a time part.
    let credit = std::str::from_utf8(&f["credit/credit.csv"]).expect("utf-8");
    assert!(credit.starts_with("记录编号,名录类型,统一社会信用代码"));
    assert!(credit.contains("罚款金额(万元)"));
    assert!(credit.contains(" 00:00:00"));

    // Inspection: gzip.
    assert!(f["inspection/inspection.ndjson.gz"].starts_with(&[0x1f, 0x8b]));
    // Registry dates in the 年月日 form.
    assert!(text.contains("年") && text.contains("月") && text.contains("日,"));
    // Exact duplicate rows exist somewhere.
    let persons = std::str::from_utf8(&f["persons/persons.csv"]).expect("utf-8");
    let lines: Vec<&str> = persons.lines().collect();
    let unique: BTreeSet<&str> = lines.iter().copied().collect();
    assert!(unique.len() < lines.len(), "duplicated person rows");
}
