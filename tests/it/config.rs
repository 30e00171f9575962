//! `qinglian validate`: the shipped project is clean, and every folder under
//! `tests/fixtures/broken/` yields exactly the messages in its `expected.txt`.
//!
//! A fixture folder holds files that replace the shipped ones at the same
//! relative paths, an optional `REMOVE` listing shipped files to delete, and
//! `expected.txt`: the `error:` lines `validate` must print, in order. Adding
//! a case is adding a folder. `QINGLIAN_BLESS=1` rewrites `expected.txt`
//! from the current output (review the diff before committing it).

use std::path::Path;

use crate::support::{copy_project, copy_tree, fixtures, qinglian, root};

#[test]
fn shipped_project_validates() {
    let out = qinglian(
        &["validate", "--project", root().to_str().expect("utf-8")],
        None,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("note: jobs/nightly.toml: cron \"0 2 * * *\" read as 5-field crontab"),
        "{stdout}"
    );
    let last = stdout.lines().last().unwrap_or_default();
    assert_eq!(
        last,
        "ok: 10 schemas, 10 sources, 30 rules, 1 pipelines, 2 jobs"
    );
}

#[tokio::test]
async fn shipped_project_loads_every_rule_of_the_domain() {
    let project = qinglian::project::Project::validate(&root())
        .await
        .expect("valid");
    let ids: Vec<&str> = project.rules.iter().map(|r| r.id.as_str()).collect();
    for id in [
        "ORG-01", "ORG-02", "ORG-03", "INS-01", "INS-02", "INS-03", "INS-04", "INS-05", "INS-06",
        "OPS-01", "OPS-02", "OPS-03", "OPS-04", "OPS-05", "OPS-06", "OPS-07", "OPS-08", "OPS-09",
        "CUL-01", "CUL-02", "CUL-03", "GOV-01", "GOV-02", "GOV-03", "XD-01", "XD-02", "XD-03",
        "XD-04", "XD-05", "XD-06",
    ] {
        assert!(ids.contains(&id), "rule {id} missing");
    }
    let mut red_lines: Vec<&str> = project
        .rules
        .iter()
        .filter(|r| r.red_line)
        .map(|r| r.id.as_str())
        .collect();
    red_lines.sort();
    assert_eq!(
        red_lines,
        [
            "GOV-01", "INS-06", "OPS-08", "OPS-09", "ORG-03", "XD-01", "XD-03", "XD-05"
        ]
    );
    assert!(
        project
            .rules
            .iter()
            .filter(|r| r.red_line)
            .all(|r| r.points == 0)
    );
    let nightly = &project.pipelines["nightly"];
    assert_eq!(nightly.scoring.colour_of(12).as_str(), "green");
    assert_eq!(nightly.scoring.colour_of(9).as_str(), "yellow");
    assert_eq!(nightly.scoring.colour_of(4).as_str(), "orange");
    assert_eq!(nightly.scoring.colour_of(3).as_str(), "red");
    let schema = project.schemas["registry"].arrow_schema();
    assert_eq!(schema.field(0).name(), "uscc");
    assert_eq!(
        schema
            .field_with_name("registered_on")
            .expect("column")
            .data_type()
            .to_string(),
        "Date32"
    );
}

fn apply_fixture(case: &Path, project: &Path) {
    for entry in std::fs::read_dir(case).expect("fixture dir") {
        let entry = entry.expect("entry");
        let name = entry.file_name();
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &project.join(&name));
        }
    }
    if let Ok(list) = std::fs::read_to_string(case.join("REMOVE")) {
        for rel in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
            std::fs::remove_file(project.join(rel)).unwrap_or_else(|e| panic!("REMOVE {rel}: {e}"));
        }
    }
}

#[test]
fn every_broken_fixture_yields_its_exact_messages() {
    let dir = fixtures().join("broken");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .expect("broken fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 10,
        "expected the broken fixtures, found {}",
        cases.len()
    );
    let bless = crate::support::blessing();
    let mut blessed = Vec::new();
    let mut failures = Vec::new();
    for case in &cases {
        let temp = tempfile::tempdir().expect("tempdir");
        copy_project(temp.path());
        apply_fixture(case, temp.path());
        let out = qinglian(
            &[
                "validate",
                "--project",
                temp.path().to_str().expect("utf-8"),
            ],
            None,
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let got: Vec<&str> = stdout
            .lines()
            .filter(|l| l.starts_with("error: "))
            .collect();
        let expected_path = case.join("expected.txt");
        if bless {
            blessed.extend(crate::support::bless(
                &expected_path,
                &(got.join("\n") + "\n"),
            ));
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        let want: Vec<&str> = expected.lines().filter(|l| !l.is_empty()).collect();
        let name = case
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if out.status.code() != Some(2) {
            failures.push(format!(
                "{name}: exit {:?}, expected 2\n{stdout}",
                out.status.code()
            ));
        } else if got != want {
            failures.push(format!(
                "{name}:\n  expected:\n    {}\n  got:\n    {}",
                want.join("\n    "),
                got.join("\n    ")
            ));
        }
    }
    if bless {
        crate::support::blessed("config (broken fixtures)", &blessed);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A pipeline scoring on a cluster: a build without the feature refuses
/// it at `validate`, saying how to build for it; either build checks its
/// settings.
#[test]
fn a_pipeline_on_a_cluster_validates_in_a_build_with_ballista_only() {
    let hint = "this qinglian was built without Ballista; build it with `cargo build --release --features ballista`";
    let validate = |engine: &str| {
        let temp = tempfile::tempdir().expect("tempdir");
        copy_project(temp.path());
        let pipeline = temp.path().join("pipelines/nightly.toml");
        let mut text = std::fs::read_to_string(&pipeline).expect("pipeline");
        text.push_str(engine);
        std::fs::write(&pipeline, text).expect("write");
        let out = qinglian(
            &[
                "validate",
                "--project",
                temp.path().to_str().expect("utf-8"),
            ],
            None,
        );
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (ok, stdout) = validate(
        "\n[engine]\nkind = \"ballista\"\nurl = \"http://127.0.0.1:50050\"\ntarget_partitions = 0\n",
    );
    assert!(!ok, "{stdout}");
    assert!(
        stdout.contains("engine.url: found \"http://127.0.0.1:50050\", expected df://host:port"),
        "{stdout}"
    );
    assert!(
        stdout.contains("engine.target_partitions: found 0, expected 1 to 4096"),
        "{stdout}"
    );
    assert_eq!(
        stdout.contains(hint),
        !cfg!(feature = "ballista"),
        "{stdout}"
    );

    let (ok, stdout) =
        validate("\n[engine]\nkind = \"ballista\"\nurl = \"df://${QINGLIAN_SCHEDULER}\"\n");
    assert_eq!(ok, cfg!(feature = "ballista"), "{stdout}");
    assert_eq!(
        stdout.contains(hint),
        !cfg!(feature = "ballista"),
        "{stdout}"
    );
}
