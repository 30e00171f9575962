//! Cron expressions as crontab(5) means them, around the `cron` crate.
//!
//! The `cron` crate finds the fire times; this layer makes a 5-field
//! expression mean what it means to the cron daemon of a Debian machine
//! (Vixie/ISC cron), where the crate's own dialect differs:
//!
//! - day of week `0-7`, `7` and `0` both Sunday, ranges such as `5-7`
//!   (Friday to Sunday); names in lists and ranges;
//! - day of month **or** day of week when both are restricted (`0 9 1 * 1`
//!   fires on every 1st and every Monday); when either field begins with
//!   `*`, both must match (so `*/2` in one of them restricts by both);
//! - `@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`,
//!   `@hourly` (`@reboot` has no meaning for a scheduler and is refused);
//! - a step needs a range or `*` (`5/15` is refused, as cron refuses it);
//! - daylight-saving changes, from cron(8): a job at a fixed time that falls
//!   in the hour skipped when clocks go forward runs at the end of the gap,
//!   and one that falls in the hour repeated when clocks go back runs once;
//!   a job with `*` in its minute or hour field follows the wall clock (it
//!   has no tick in the skipped hour and ticks twice in the repeated one).
//!
//! The 6- and 7-field seconds-first form is the `cron` crate's own dialect,
//! with the same daylight-saving rule.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::str::FromStr;

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::model::CronDialect;

/// A parsed cron expression: the fire times of a job in its time zone.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    /// Schedules over local wall-clock time whose union is the expression
    /// (two when day of month and day of week are both restricted).
    parts: Vec<cron::Schedule>,
    /// Minute or hour written with `*`: follows the wall clock across
    /// daylight-saving changes instead of keeping its fixed time.
    wildcard: bool,
    /// How the expression was read.
    dialect: CronDialect,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// One field of a crontab line.
struct Field {
    name: &'static str,
    low: u32,
    high: u32,
    range: &'static str,
    /// Names of the values from `low` on (months, weekdays).
    names: &'static [&'static str],
}

const MINUTE: Field = Field {
    name: "minute",
    low: 0,
    high: 59,
    range: "0-59",
    names: &[],
};
const HOUR: Field = Field {
    name: "hour",
    low: 0,
    high: 23,
    range: "0-23",
    names: &[],
};
const DAY: Field = Field {
    name: "day of month",
    low: 1,
    high: 31,
    range: "1-31",
    names: &[],
};
const MONTH: Field = Field {
    name: "month",
    low: 1,
    high: 12,
    range: "1-12 or JAN-DEC",
    names: &MONTHS,
};
const WEEKDAY: Field = Field {
    name: "day of week",
    low: 0,
    high: 7,
    range: "0-7 or SUN-SAT",
    names: &WEEKDAYS,
};

impl CronSchedule {
    /// Reads a 5-field crontab line, an `@` name, or a 6/7-field
    /// seconds-first expression.
    pub fn parse(expr: &str) -> Result<Self, String> {
        let trimmed = expr.trim();
        if let Some(name) = trimmed.strip_prefix('@') {
            let line = match name.to_ascii_lowercase().as_str() {
                "yearly" | "annually" => "0 0 1 1 *",
                "monthly" => "0 0 1 * *",
                "weekly" => "0 0 * * 0",
                "daily" | "midnight" => "0 0 * * *",
                "hourly" => "0 * * * *",
                "reboot" => {
                    return Err(format!(
                        "found {expr:?}: @reboot has no meaning for a scheduler, expected a time"
                    ));
                }
                _ => {
                    return Err(format!(
                        "found {expr:?}, expected one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly"
                    ));
                }
            };
            return Self::crontab(line).map_err(|why| format!("found {expr:?}: {why}"));
        }
        let fields: Vec<&str> = trimmed.split_whitespace().collect();
        match fields.len() {
            5 => Self::crontab(trimmed).map_err(|why| {
                format!(
                    "found {expr:?}, expected a 5-field crontab expression (minute hour day month weekday): {why}"
                )
            }),
            6 | 7 => with_seconds(expr, &fields),
            n => Err(format!(
                "found {expr:?} with {n} fields, expected 5 (crontab: minute hour day month weekday) or 6-7 (seconds first)"
            )),
        }
    }

    fn crontab(line: &str) -> Result<Self, String> {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [minute, hour, day, month, weekday] = f[..] else {
            return Err(format!("{} fields, expected 5", f.len()));
        };
        let minutes = parse_field(minute, &MINUTE)?;
        let hours = parse_field(hour, &HOUR)?;
        let days = parse_field(day, &DAY)?;
        let months = parse_field(month, &MONTH)?;
        // 7 is Sunday as 0 is.
        let weekdays: BTreeSet<u32> = parse_field(weekday, &WEEKDAY)?
            .into_iter()
            .map(|d| d % 7)
            .collect();
        let list =
            |set: &BTreeSet<u32>| set.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        // The crate counts weekdays 1-7 from Sunday; names mean the same in both.
        let weekday_names = weekdays
            .iter()
            .map(|d| WEEKDAYS[*d as usize])
            .collect::<Vec<_>>()
            .join(",");
        let head = format!("0 {} {}", list(&minutes), list(&hours));
        let months = list(&months);
        let both_restricted = !day.starts_with('*') && !weekday.starts_with('*');
        let texts = if both_restricted {
            vec![
                format!("{head} {} {months} *", list(&days)),
                format!("{head} * {months} {weekday_names}"),
            ]
        } else {
            vec![format!("{head} {} {months} {weekday_names}", list(&days))]
        };
        let parts = texts
            .iter()
            .map(|t| cron::Schedule::from_str(t).map_err(|e| format!("{e}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CronSchedule {
            parts,
            wildcard: minute.starts_with('*') || hour.starts_with('*'),
            dialect: CronDialect::Crontab,
        })
    }

    /// How the expression was read.
    pub fn dialect(&self) -> CronDialect {
        self.dialect
    }

    /// Fire times strictly after `after`, in order, each once.
    pub fn after(&self, tz: Tz, after: DateTime<Utc>) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        // Wall-clock times are walked as if they were UTC; the largest
        // daylight-saving shift is far below a day, so starting a day early
        // misses no time that maps after `after`.
        let start = after.with_timezone(&tz).naive_local() - Duration::days(1);
        let start = Utc.from_utc_datetime(&start);
        let mut walks: Vec<_> = self
            .parts
            .iter()
            .map(|p| p.after_owned(start).peekable())
            .collect();
        let wildcard = self.wildcard;
        // Instants found but not yet given out, earliest first.
        let mut pending: BinaryHeap<Reverse<DateTime<Utc>>> = BinaryHeap::new();
        let mut last: Option<DateTime<Utc>> = None;
        std::iter::from_fn(move || {
            loop {
                // The earliest wall-clock time still to come (a union).
                let wall = walks
                    .iter_mut()
                    .filter_map(|w| w.peek().map(|t| t.naive_utc()))
                    .min();
                // Every instant of a later wall time is at or after the
                // earliest instant of this one.
                let settled = match (pending.peek(), wall) {
                    (Some(Reverse(first)), Some(w)) => earliest(tz, w).is_none_or(|b| b >= *first),
                    (Some(_), None) => true,
                    (None, _) => false,
                };
                if settled {
                    let Reverse(next) = pending.pop()?;
                    if last.is_some_and(|l| next <= l) || next <= after {
                        continue;
                    }
                    last = Some(next);
                    return Some(next);
                }
                let wall = wall?;
                for w in &mut walks {
                    while w.peek().is_some_and(|t| t.naive_utc() <= wall) {
                        w.next();
                    }
                }
                pending.extend(instants(tz, wall, wildcard).into_iter().map(Reverse));
            }
        })
    }
}

/// The earliest instant a wall-clock time maps to, or the end of the gap
/// it falls in: never decreasing as the wall-clock time grows.
fn earliest(tz: Tz, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&wall) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Some(t.with_timezone(&Utc)),
        LocalResult::None => gap_end(tz, wall),
    }
}

/// The instants a wall-clock fire time stands for in `tz`.
fn instants(tz: Tz, wall: NaiveDateTime, wildcard: bool) -> Vec<DateTime<Utc>> {
    match tz.from_local_datetime(&wall) {
        LocalResult::Single(t) => vec![t.with_timezone(&Utc)],
        LocalResult::Ambiguous(first, second) if wildcard => {
            vec![first.with_timezone(&Utc), second.with_timezone(&Utc)]
        }
        LocalResult::Ambiguous(first, _) => vec![first.with_timezone(&Utc)],
        LocalResult::None if wildcard => Vec::new(),
        LocalResult::None => gap_end(tz, wall).into_iter().collect(),
    }
}

/// The first instant after a wall-clock time that the clocks skipped.
fn gap_end(tz: Tz, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
    // Gaps are whole minutes long and at most a few hours; the instant the
    // clocks jumped is the first minute whose local time is past `wall`.
    (1..=24 * 60)
        .map(|m| wall + Duration::minutes(m))
        .find_map(|w| match tz.from_local_datetime(&w) {
            LocalResult::None => None,
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => {
                // Walk back to the minute of the jump itself.
                let jumped = t.with_timezone(&Utc);
                let mut at = jumped;
                while let Some(prev) = at.checked_sub_signed(Duration::minutes(1)) {
                    if prev.with_timezone(&tz).naive_local() > wall {
                        at = prev;
                    } else {
                        break;
                    }
                }
                Some(at)
            }
        })
}

fn with_seconds(expr: &str, fields: &[&str]) -> Result<CronSchedule, String> {
    let text = fields.join(" ");
    match cron::Schedule::from_str(&text) {
        Ok(schedule) => Ok(CronSchedule {
            parts: vec![schedule],
            wildcard: fields[1].starts_with('*') || fields[2].starts_with('*'),
            dialect: CronDialect::WithSeconds,
        }),
        Err(_) => {
            let why = seconds_culprit(fields).unwrap_or_default();
            Err(format!(
                "found {expr:?}, expected a 6-field cron expression (second minute hour day month weekday){why}"
            ))
        }
    }
}

/// Names the first field of a seconds-first expression that does not parse
/// on its own.
fn seconds_culprit(fields: &[&str]) -> Option<String> {
    const FIELDS: [(&str, &str); 7] = [
        ("second", "0-59"),
        ("minute", "0-59"),
        ("hour", "0-23"),
        ("day of month", "1-31"),
        ("month", "1-12 or JAN-DEC"),
        ("day of week", "1-7 or SUN-SAT"),
        ("year", "1970-2099"),
    ];
    (0..fields.len()).find_map(|i| {
        let probe: Vec<&str> = (0..fields.len())
            .map(|j| if j == i { fields[j] } else { "*" })
            .collect();
        cron::Schedule::from_str(&probe.join(" ")).err().map(|_| {
            let (name, range) = FIELDS[i];
            format!(": {name} field {:?} is out of range ({range})", fields[i])
        })
    })
}

/// The values one crontab field selects.
fn parse_field(text: &str, f: &Field) -> Result<BTreeSet<u32>, String> {
    let out_of_range = || format!("{} field {text:?} is out of range ({})", f.name, f.range);
    let mut values = BTreeSet::new();
    for item in text.split(',') {
        let (base, step) = match item.split_once('/') {
            Some((base, step)) => {
                let step: u32 = number(step).filter(|s| *s > 0).ok_or_else(|| {
                    format!(
                        "{} field {text:?}: step {step:?} is not a positive number",
                        f.name
                    )
                })?;
                (base, Some(step))
            }
            None => (item, None),
        };
        let (from, to) = if base == "*" {
            (f.low, if f.names.len() == 7 { 6 } else { f.high })
        } else if let Some((a, b)) = base.split_once('-') {
            let a = value(a, f).ok_or_else(out_of_range)?;
            let b = value(b, f).ok_or_else(out_of_range)?;
            if a > b {
                return Err(format!(
                    "{} field {text:?}: the range {base:?} runs backwards",
                    f.name
                ));
            }
            (a, b)
        } else {
            let v = value(base, f).ok_or_else(out_of_range)?;
            if step.is_some() {
                return Err(format!(
                    "{} field {text:?}: a step needs a range or * (write {v}-{}/…)",
                    f.name, f.high
                ));
            }
            (v, v)
        };
        let step = step.unwrap_or(1) as usize;
        values.extend((from..=to).step_by(step));
    }
    Ok(values)
}

/// A number or a name of a field's value.
fn value(text: &str, f: &Field) -> Option<u32> {
    if let Some(i) = f.names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
        return u32::try_from(i).ok().map(|i| i + f.low);
    }
    number(text).filter(|v| (f.low..=f.high).contains(v))
}

fn number(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) || text.len() > 4 {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn next(expr: &str, tz: Tz, after: &str, n: usize) -> Vec<String> {
        let s = CronSchedule::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        s.after(tz, utc(after))
            .take(n)
            .map(|t| t.with_timezone(&tz).to_rfc3339())
            .collect()
    }

    #[test]
    fn day_of_month_or_day_of_week_when_both_are_restricted() {
        // 2026-06-01 is a Monday; so are the 8th and the 15th.
        let got = next("0 9 1 * 1", chrono_tz::UTC, "2026-05-30T00:00:00Z", 4);
        assert_eq!(
            got,
            [
                "2026-06-01T09:00:00+00:00",
                "2026-06-08T09:00:00+00:00",
                "2026-06-15T09:00:00+00:00",
                "2026-06-22T09:00:00+00:00",
            ]
        );
        // A star in one field: both must match.
        let got = next("0 9 */2 * 1", chrono_tz::UTC, "2026-05-30T00:00:00Z", 2);
        assert_eq!(
            got,
            ["2026-06-01T09:00:00+00:00", "2026-06-15T09:00:00+00:00"]
        );
    }

    #[test]
    fn weekday_seven_is_sunday_and_ranges_reach_it() {
        // 2026-06-05 is a Friday.
        let got = next("0 9 * * 5-7", chrono_tz::UTC, "2026-06-04T12:00:00Z", 4);
        assert_eq!(
            got,
            [
                "2026-06-05T09:00:00+00:00",
                "2026-06-06T09:00:00+00:00",
                "2026-06-07T09:00:00+00:00",
                "2026-06-12T09:00:00+00:00",
            ]
        );
    }

    #[test]
    fn a_fixed_time_in_the_spring_gap_runs_at_its_end() {
        let berlin = chrono_tz::Europe::Berlin;
        let got = next("30 2 * * *", berlin, "2027-03-27T12:00:00Z", 3);
        assert_eq!(
            got,
            [
                "2027-03-28T03:00:00+02:00",
                "2027-03-29T02:30:00+02:00",
                "2027-03-30T02:30:00+02:00",
            ]
        );
        // Wildcard hours follow the wall clock: no tick in the gap.
        let got = next("30 * * * *", berlin, "2027-03-28T00:00:00Z", 2);
        assert_eq!(
            got,
            ["2027-03-28T01:30:00+01:00", "2027-03-28T03:30:00+02:00"]
        );
    }

    #[test]
    fn a_fixed_time_in_the_autumn_fold_runs_once() {
        let berlin = chrono_tz::Europe::Berlin;
        let got = next("30 2 * * *", berlin, "2027-10-30T12:00:00Z", 2);
        assert_eq!(
            got,
            ["2027-10-31T02:30:00+02:00", "2027-11-01T02:30:00+01:00"]
        );
        let got = next("30 * * * *", berlin, "2027-10-30T23:00:00Z", 3);
        assert_eq!(
            got,
            [
                "2027-10-31T01:30:00+02:00",
                "2027-10-31T02:30:00+02:00",
                "2027-10-31T02:30:00+01:00",
            ]
        );
    }

    #[test]
    fn at_names_and_refusals() {
        let got = next("@weekly", chrono_tz::UTC, "2026-06-01T00:00:00Z", 1);
        assert_eq!(got, ["2026-06-07T00:00:00+00:00"]);
        for (expr, says) in [
            ("@reboot", "@reboot has no meaning"),
            ("@fortnightly", "expected one of @yearly"),
            (
                "0 9 * * 8",
                "day of week field \"8\" is out of range (0-7 or SUN-SAT)",
            ),
            ("5/15 * * * *", "a step needs a range or *"),
            ("0 9 * * 5-3", "runs backwards"),
            ("*/0 * * * *", "is not a positive number"),
            ("0 9 ,1 * *", "day of month field \",1\" is out of range"),
        ] {
            let err = CronSchedule::parse(expr).err().unwrap_or_default();
            assert!(err.contains(says), "{expr}: {err}");
        }
    }
}
