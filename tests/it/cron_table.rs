//! Cron as crontab(5) and cron(8) mean it, checked against what the project
//! did not write: the fire times of an independent implementation
//! (croniter, `tests/fixtures/cron/croniter.tsv`, made by the script beside
//! it) and, for daylight-saving changes, a table worked out by hand from
//! cron(8).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use qinglian::project::crontab::CronSchedule;

use crate::support::{fixtures, qinglian};

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn fires(expr: &str, zone: Tz, after: &str, count: usize) -> Vec<DateTime<Utc>> {
    let schedule = CronSchedule::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
    schedule.after(zone, utc(after)).take(count).collect()
}

#[test]
fn fire_times_equal_an_independent_implementation() {
    let table = std::fs::read_to_string(fixtures().join("cron/croniter.tsv")).expect("table");
    let mut rows = 0;
    for line in table.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let [expr, zone, after, expected] = cols[..] else {
            panic!("bad row {line:?}");
        };
        let zone: Tz = zone.parse().expect("zone");
        let expected: Vec<DateTime<Utc>> = expected.split(' ').map(utc).collect();
        let got = fires(expr, zone, after, expected.len());
        assert_eq!(got, expected, "{expr} in {zone} after {after}");
        rows += 1;
    }
    assert!(rows >= 150, "only {rows} rows");
}

#[test]
fn daylight_saving_changes_as_cron_8_says() {
    let berlin: Tz = "Europe/Berlin".parse().expect("zone");
    let new_york: Tz = "America/New_York".parse().expect("zone");
    // (expression, zone, after, the next fire times in UTC), worked out by
    // hand: Berlin skips 02:00-03:00 on 2027-03-28 (01:00Z) and repeats
    // 02:00-03:00 on 2027-10-31 (00:00Z-01:00Z, then 01:00Z-02:00Z); New
    // York skips 02:00-03:00 on 2027-03-14 (07:00Z) and repeats 01:00-02:00
    // on 2027-11-07 (05:00Z-06:00Z, then 06:00Z-07:00Z).
    let table: [(&str, Tz, &str, &[&str]); 8] = [
        // A fixed time in the skipped hour runs when the clocks jump.
        (
            "30 2 * * *",
            berlin,
            "2027-03-27T12:00:00Z",
            &["2027-03-28T01:00:00Z", "2027-03-29T00:30:00Z"],
        ),
        (
            "15 2 * * 0",
            new_york,
            "2027-03-13T00:00:00Z",
            &["2027-03-14T07:00:00Z", "2027-03-21T06:15:00Z"],
        ),
        // Two fixed times in one gap run once, at its end.
        (
            "0,45 2 * * *",
            berlin,
            "2027-03-27T23:00:00Z",
            &["2027-03-28T01:00:00Z", "2027-03-29T00:00:00Z"],
        ),
        // A fixed time in the repeated hour runs once, the first time.
        (
            "30 2 * * *",
            berlin,
            "2027-10-30T12:00:00Z",
            &["2027-10-31T00:30:00Z", "2027-11-01T01:30:00Z"],
        ),
        (
            "30 1 * * *",
            new_york,
            "2027-11-06T12:00:00Z",
            &["2027-11-07T05:30:00Z", "2027-11-08T06:30:00Z"],
        ),
        // Wildcard hours follow the clock: nothing in the gap...
        (
            "30 * * * *",
            berlin,
            "2027-03-27T23:45:00Z",
            &["2027-03-28T00:30:00Z", "2027-03-28T01:30:00Z"],
        ),
        // ...and both passes of the repeated hour.
        (
            "0,30 * * * *",
            berlin,
            "2027-10-30T23:45:00Z",
            &[
                "2027-10-31T00:00:00Z",
                "2027-10-31T00:30:00Z",
                "2027-10-31T01:00:00Z",
                "2027-10-31T01:30:00Z",
                "2027-10-31T02:00:00Z",
            ],
        ),
        // @hourly is a wildcard job too.
        (
            "@hourly",
            new_york,
            "2027-03-14T06:30:00Z",
            &["2027-03-14T07:00:00Z", "2027-03-14T08:00:00Z"],
        ),
    ];
    for (expr, zone, after, expected) in table {
        let expected: Vec<DateTime<Utc>> = expected.iter().map(|s| utc(s)).collect();
        assert_eq!(
            fires(expr, zone, after, expected.len()),
            expected,
            "{expr} in {zone} after {after}"
        );
    }
}

#[test]
fn jobs_next_reads_crontab_as_cron_does() {
    let next = |cron: &str| {
        let out = qinglian(
            &[
                "jobs",
                "next",
                "--cron",
                cron,
                "--tz",
                "Asia/Shanghai",
                "--after",
                "2026-05-31T16:00:00Z",
                "--count",
                "3",
                "--json",
            ],
            None,
        );
        assert!(
            out.status.success(),
            "{cron}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        json["fires"]
            .as_array()
            .expect("fires")
            .iter()
            .map(|f| f["local"].as_str().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
    };
    // Friday to Sunday (7 is Sunday).
    assert_eq!(
        next("0 9 * * 5-7"),
        [
            "2026-06-05T09:00:00+08:00",
            "2026-06-06T09:00:00+08:00",
            "2026-06-07T09:00:00+08:00"
        ]
    );
    // The 1st or a Monday (2026-06-01 is both).
    assert_eq!(
        next("0 9 1 * 1"),
        [
            "2026-06-01T09:00:00+08:00",
            "2026-06-08T09:00:00+08:00",
            "2026-06-15T09:00:00+08:00"
        ]
    );
    assert_eq!(next("@monthly")[0], "2026-07-01T00:00:00+08:00");
    let out = qinglian(&["jobs", "next", "--cron", "@reboot"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("@reboot has no meaning"));
}
