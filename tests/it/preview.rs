//! `qinglian preview`: a data engineer sees, before the first night, what
//! a misspelt field and a bad key would do to a delivery of several parts.

use std::process::Command;

use crate::support::{copy_project, copy_tree, fixtures};

#[test]
fn preview_shows_a_misspelt_field_the_rows_and_the_quarantine_of_every_part() {
    let case = fixtures().join("ingest/court_in_two_parts");
    let project = tempfile::tempdir().expect("tmp");
    copy_project(project.path());
    copy_tree(&case.join("project"), project.path());
    // The engineer misspells the court's field in the second part.
    let court = project.path().join("pipelines/sources/court.toml");
    let text = std::fs::read_to_string(&court).expect("court.toml");
    std::fs::write(
        &court,
        text.replace("court_name = \"执行法院\"", "court_name = \"执行法院名称\""),
    )
    .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_qinglian"))
        .args(["preview", "court", "--rows", "5", "--project"])
        .arg(project.path())
        .env("QINGLIAN_FEEDS", case.join("feeds"))
        .env_remove("QINGLIAN_LOG")
        .output()
        .expect("run preview");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("part court of feed court: 2 record(s) read"),
        "{stdout}"
    );
    assert!(
        stdout.contains("part enforced of feed court: 3 record(s) read"),
        "{stdout}"
    );
    assert!(
        stdout.contains("mapped fields no record carries: 执行法院名称"),
        "the misspelt field is named: {stdout}"
    );
    assert!(
        stdout.contains("delivered fields nothing maps: 执行法院"),
        "the field it should have been is named: {stdout}"
    );
    // The canonical rows as they would land, and the quarantine with its reason.
    assert!(stdout.contains("| enforced_party |"), "{stdout}");
    assert!(stdout.contains("(2026)浙0106执200号"), "{stdout}");
    assert!(
        stdout
            .contains("quarantined enforced.csv:4 | 统一社会信用代码或组织机构代码 | invalid_key"),
        "{stdout}"
    );
    assert!(stdout.contains("2 row(s) would land, 1 would be quarantined (invalid_key 1)"));
    // Nothing was landed anywhere: a preview writes no warehouse.
    assert!(!project.path().join("warehouse").exists());
}

#[test]
fn preview_of_an_unknown_feed_names_the_feeds() {
    let out = Command::new(env!("CARGO_BIN_EXE_qinglian"))
        .args(["preview", "tax", "--project"])
        .arg(crate::support::root())
        .output()
        .expect("run preview");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error: no feed \"tax\" in pipelines/sources/ (feeds: "),
        "{stderr}"
    );
    assert!(stderr.contains("court"), "{stderr}");
}
