//! `qinglian uscc check`: one result per input line, in order, streaming.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

use crate::support::{fixtures, qinglian, reference_check, reference_valid};

fn check(input: &[u8], format: &str) -> (Option<i32>, String, String) {
    let out = qinglian(&["uscc", "check", "-", "--format", format], Some(input));
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn tsv_reports_each_input_in_order() {
    let input = "\u{feff}53330000501874064B\r\n91350100M000100Y4Z\n5333OOOO5O1874O64B\n50187406-4\n\n杭州市阳光协会\n";
    let (code, stdout, _) = check(input.as_bytes(), "tsv");
    assert_eq!(code, Some(0));
    let expected = "\
53330000501874064B\ttrue\t53330000501874064B\tvalid\t\t民政\t基金会\t330000\t浙江省\t
91350100M000100Y4Z\tfalse\t91350100M000100Y4Z\tbad_checksum\tcharacter 'Z' at position 18 is not in the USCC character set\t市场监管\t企业\t350100\t\t
5333OOOO5O1874O64B\tfalse\t53330000501874064B\trepaired\t5333OOOO5O1874O64B contains letters a USCC never has (I/O/Z/S/V); suggested repair in normalized\t民政\t基金会\t330000\t浙江省\t
50187406-4\tfalse\t501874064\torg_code_only\t\t\t\t\t\t
\tfalse\t\tmissing\tempty key\t\t\t\t\t
杭州市阳光协会\tfalse\t杭州市阳光协会\tname_only\tnot a code: kept as a name\t\t\t\t\t
";
    assert_eq!(stdout, expected);
}

#[test]
fn jsonl_has_every_field() {
    let (code, stdout, _) = check(b"52330103MJ0000000X\n", "jsonl");
    assert_eq!(code, Some(0));
    let row: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    for field in [
        "input",
        "valid",
        "normalized",
        "class",
        "reason",
        "authority",
        "type",
        "division",
    ] {
        assert!(row.get(field).is_some(), "field {field} in {row}");
    }
    assert_eq!(row["input"], "52330103MJ0000000X");
    assert_eq!(row["division"], "330103");
    assert_eq!(row["division_name"], "下城区");
}

#[test]
fn unreadable_input_is_an_error_naming_the_line() {
    let (code, stdout, stderr) = check(b"53330000501874064B\n\xff\xfe\n", "tsv");
    assert_eq!(code, Some(2));
    assert!(stderr.contains("line 2: not UTF-8"), "{stderr}");
    // What came before the bad line was still reported.
    assert!(stdout.starts_with("53330000501874064B\ttrue"), "{stdout}");
    let out = qinglian(&["uscc", "check", "/nonexistent/codes.txt"], None);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn shared_vectors_through_the_command() {
    let text = std::fs::read_to_string(fixtures().join("uscc_vectors.json")).expect("vectors");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    let mut lines = Vec::new();
    let mut valid = Vec::new();
    for (key, want) in [
        ("valid_social_org", true),
        ("valid_other", true),
        ("valid_synthetic_hangzhou", true),
        ("invalid", false),
        ("mod31_valid_org_code_invalid", false),
    ] {
        for code in v[key].as_array().expect("list") {
            lines.push(code.as_str().expect("str").to_string());
            valid.push(want);
        }
    }
    let (code, stdout, _) = check((lines.join("\n") + "\n").as_bytes(), "tsv");
    assert_eq!(code, Some(0));
    let got: Vec<bool> = stdout
        .lines()
        .map(|l| l.split('\t').nth(1) == Some("true"))
        .collect();
    assert_eq!(got, valid);
}

/// A corpus of valid codes and their mutations, built from the property
/// strategies, checked line by line against an independent reference.
#[test]
fn large_corpus_agrees_with_the_reference() {
    let mut runner = TestRunner::deterministic();
    let strategy = (
        "[0-9A-HJ-NP-RTUWXY]{2}[0-9]{6}[0-9A-HJ-NP-RTUWXY]{8}",
        0usize..18,
        "[0-9A-Z]",
    );
    let mut corpus = Vec::new();
    for _ in 0..20_000 {
        let (first16, pos, replacement) = strategy.new_tree(&mut runner).expect("value").current();
        let Some(code) = reference_check(&first16) else {
            continue;
        };
        corpus.push(code.clone());
        let mut mutated = code.into_bytes();
        mutated[pos] = replacement.as_bytes()[0];
        corpus.push(String::from_utf8(mutated).expect("ascii"));
    }
    let (code, stdout, _) = check((corpus.join("\n") + "\n").as_bytes(), "tsv");
    assert_eq!(code, Some(0));
    let rows: Vec<&str> = stdout.lines().collect();
    assert_eq!(rows.len(), corpus.len());
    for (input, row) in corpus.iter().zip(rows) {
        let fields: Vec<&str> = row.split('\t').collect();
        assert_eq!(fields[0], input);
        let valid = fields[1] == "true";
        assert_eq!(valid, reference_valid(input), "{row}");
        if !valid {
            assert!(!fields[4].is_empty(), "an invalid code has a reason: {row}");
        }
    }
}

#[test]
fn check_says_which_invisible_characters_it_removed() {
    let input = "5333\u{2060}0000501874064B\n53330000501874064B\n";
    let (code, stdout, _) = check(input.as_bytes(), "jsonl");
    assert_eq!(code, Some(0));
    let rows: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(rows[0]["valid"], true);
    assert_eq!(rows[0]["normalized"], "53330000501874064B");
    assert_eq!(
        rows[0]["warning"],
        "invisible characters removed: U+2060 at 5"
    );
    assert_eq!(rows[1]["warning"], "");
}
