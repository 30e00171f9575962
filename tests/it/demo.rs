//! `qinglian demo` runs the nightly job end to end on its own: feeds over
//! the feed simulator, pushes to the platform simulator, a local warehouse.

use crate::support::{qinglian, root};

#[test]
fn the_demo_runs_end_to_end_and_summarizes_what_it_did() {
    let dir = tempfile::tempdir().expect("tmp");
    let warehouse = dir.path().join("warehouse");
    let out = qinglian(
        &[
            "demo",
            "--orgs",
            "300",
            "--project",
            root().to_str().expect("utf-8"),
            "--out",
            dir.path().join("demo").to_str().expect("utf-8"),
            "--warehouse",
            warehouse.to_str().expect("utf-8"),
            "--nights",
            "3",
        ],
        None,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("of business date 2026-11-28: Succeeded"),
        "{text}"
    );
    for feed in ["registry", "persons", "court", "inspection"] {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(feed)),
            "{feed}: {text}"
        );
    }
    let changes: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("colour changes: "))
        .and_then(|n| n.trim().parse().ok())
        .expect("colour changes line");
    assert!(changes > 250, "{text}");
    assert!(
        text.contains(&format!(
            "deliveries accepted by the platform: 1 batch(es), {changes} rows"
        )),
        "every change reached the platform simulator: {text}"
    );
    let raised: u64 = text
        .lines()
        .filter_map(|l| l.split_once(" raised, ").map(|(a, _)| a))
        .filter_map(|a| a.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert!(raised > 0, "the demo raises warnings: {text}");
    assert!(
        text.contains(&format!("{raised} warning(s) accepted by the platform")),
        "every warning reached the platform simulator: {text}"
    );
    // Night by night the warnings move on: signed, then verified, then
    // rectifying, as the handlers dispose of them.
    let nights: Vec<&str> = text.lines().filter(|l| l.starts_with("  2026-")).collect();
    assert_eq!(nights.len(), 3, "{text}");
    assert!(nights[0].contains("已生成"), "{}", nights[0]);
    assert!(
        nights[2].contains("核查中") || nights[2].contains("整改中"),
        "{}",
        nights[2]
    );
    assert!(
        text.contains("demo-only"),
        "the demo says it set its own secrets: {text}"
    );
    let report = text
        .lines()
        .find_map(|l| l.strip_prefix("report: "))
        .expect("report line");
    assert!(std::path::Path::new(report.trim()).exists(), "{report}");
    // The month's briefing of the city and one district, and where it is.
    let index = text
        .lines()
        .find_map(|l| l.strip_prefix("briefing 2026-11: "))
        .and_then(|l| l.split(" (").next())
        .expect("briefing line");
    let index = std::path::Path::new(index.trim());
    assert!(index.is_file(), "{text}");
    let dir = index.parent().expect("briefing folder");
    assert!(dir.join("city.xlsx").is_file() && dir.join("city.html").is_file());
    let districts = std::fs::read_dir(dir)
        .expect("briefing folder")
        .filter_map(|e| e.ok())
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with("district-") && n.ends_with(".xlsx")
        })
        .count();
    assert_eq!(districts, 1, "one district's workbook");
    // It ends with one organization's public lookup address.
    let last = text.lines().last().unwrap_or_default();
    let uscc = last
        .strip_prefix("public lookup (一码通查): http://127.0.0.1:8080/o/")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("the lookup line: {text}"));
    assert!(qinglian::keys::classify(uscc).is_valid(), "{last}");
}
