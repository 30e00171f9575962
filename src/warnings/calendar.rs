//! Working days for warning deadlines, from a data file
//! (`pipelines/warnings/calendar.toml`): Monday to Friday, minus the public
//! holidays, plus the weekend days worked in their place (调休). Pure: the
//! nightly fold counts days with it, nothing here reads a clock.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, NaiveDate, Weekday};
use serde::Deserialize;

/// The calendar shipped with the project, used when a project has none.
pub const SHIPPED: &str = include_str!("../../pipelines/warnings/calendar.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCalendar {
    years: Vec<RawYear>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawYear {
    year: i32,
    #[serde(default)]
    holidays: Vec<String>,
    #[serde(default)]
    workdays: Vec<String>,
}

/// A working-day calendar.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Calendar {
    years: BTreeSet<i32>,
    holidays: BTreeSet<NaiveDate>,
    workdays: BTreeSet<NaiveDate>,
}

impl Calendar {
    /// Reads a calendar file's text; `file` names it in errors. Every
    /// problem is reported at once, with its key path.
    pub fn parse(text: &str, file: &str) -> Result<Self, Vec<String>> {
        let raw: RawCalendar =
            toml::from_str(text).map_err(|e| vec![format!("{file}: {}", e.to_string().trim())])?;
        let mut problems = Vec::new();
        let mut cal = Calendar::default();
        let mut seen = BTreeMap::new();
        for (i, y) in raw.years.iter().enumerate() {
            if let Some(first) = seen.insert(y.year, i) {
                problems.push(format!(
                    "{file}: years[{i}].year: {} is already listed at years[{first}]",
                    y.year
                ));
            }
            cal.years.insert(y.year);
            for (key, list, set) in [
                ("holidays", &y.holidays, &mut cal.holidays),
                ("workdays", &y.workdays, &mut cal.workdays),
            ] {
                for (j, d) in list.iter().enumerate() {
                    match NaiveDate::parse_from_str(d, "%Y-%m-%d") {
                        Ok(date) if date.year() != y.year => problems.push(format!(
                            "{file}: years[{i}].{key}[{j}]: {d} is not in {}",
                            y.year
                        )),
                        Ok(date) if key == "workdays" && !is_weekend(date) => {
                            problems.push(format!(
                                "{file}: years[{i}].{key}[{j}]: {d} is a {}, not a weekend day worked",
                                date.weekday()
                            ))
                        }
                        Ok(date) => {
                            set.insert(date);
                        }
                        Err(_) => problems.push(format!(
                            "{file}: years[{i}].{key}[{j}]: expected a date YYYY-MM-DD, found {d:?}"
                        )),
                    }
                }
            }
        }
        for d in cal.holidays.intersection(&cal.workdays) {
            problems.push(format!("{file}: {d} is both a holiday and a workday"));
        }
        if problems.is_empty() {
            Ok(cal)
        } else {
            Err(problems)
        }
    }

    /// The calendar shipped with the project.
    pub fn shipped() -> Self {
        Self::parse(SHIPPED, "pipelines/warnings/calendar.toml").unwrap_or_default()
    }

    /// The years the file lists.
    pub fn years(&self) -> impl Iterator<Item = i32> + '_ {
        self.years.iter().copied()
    }

    /// The year is listed (outside it only weekends are days off).
    pub fn covers(&self, year: i32) -> bool {
        self.years.contains(&year)
    }

    /// A day people work.
    pub fn is_working_day(&self, d: NaiveDate) -> bool {
        if self.workdays.contains(&d) {
            return true;
        }
        !is_weekend(d) && !self.holidays.contains(&d)
    }

    /// The day `n` working days after `from` (a deadline of "within n
    /// working days" from the day something happened): the count starts
    /// the day after.
    pub fn add_working_days(&self, from: NaiveDate, n: u32) -> NaiveDate {
        let mut d = from;
        let mut left = n;
        while left > 0 {
            match d.succ_opt() {
                Some(next) => d = next,
                None => return d,
            }
            if self.is_working_day(d) {
                left -= 1;
            }
        }
        d
    }

    /// Working days after `from` up to and including `to` (0 when `to` is
    /// not after `from`).
    pub fn working_days_between(&self, from: NaiveDate, to: NaiveDate) -> u32 {
        from.iter_days()
            .skip(1)
            .take_while(|d| *d <= to)
            .filter(|d| self.is_working_day(*d))
            .count() as u32
    }
}

fn is_weekend(d: NaiveDate) -> bool {
    matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("test date")
    }

    #[test]
    fn the_shipped_calendar_reads_and_covers_its_years() {
        let cal = Calendar::parse(SHIPPED, "calendar.toml").expect("shipped calendar");
        assert_eq!(cal.years().collect::<Vec<_>>(), vec![2025, 2026]);
        // National Day week off, the Saturday after worked.
        assert!(!cal.is_working_day(day("2026-10-05")));
        assert!(cal.is_working_day(day("2026-10-10")));
        // An ordinary weekend and weekday.
        assert!(!cal.is_working_day(day("2026-11-07")));
        assert!(cal.is_working_day(day("2026-11-09")));
    }

    #[test]
    fn deadlines_skip_weekends_and_holidays() {
        let cal = Calendar::shipped();
        // Friday + 1 working day = Monday.
        assert_eq!(
            cal.add_working_days(day("2026-11-06"), 1),
            day("2026-11-09")
        );
        // Across National Day: 30 Sep (Wed) + 3 → 8, 9 Oct, then Sat 10 Oct (worked).
        assert_eq!(
            cal.add_working_days(day("2026-09-30"), 3),
            day("2026-10-10")
        );
        // Across the Spring Festival: 13 Feb (Fri) + 1 → Sat 14 Feb (worked).
        assert_eq!(
            cal.add_working_days(day("2026-02-13"), 1),
            day("2026-02-14")
        );
        assert_eq!(
            cal.add_working_days(day("2026-02-14"), 1),
            day("2026-02-24")
        );
        assert_eq!(
            cal.add_working_days(day("2026-11-06"), 0),
            day("2026-11-06")
        );
        assert_eq!(
            cal.working_days_between(day("2026-11-06"), day("2026-11-13")),
            5
        );
        assert_eq!(
            cal.working_days_between(day("2026-11-13"), day("2026-11-06")),
            0
        );
    }

    #[test]
    fn a_year_not_listed_has_only_weekends_off() {
        let cal = Calendar::shipped();
        assert!(!cal.covers(2027));
        assert!(
            cal.is_working_day(day("2027-01-01")),
            "a Friday, not listed"
        );
        assert!(!cal.is_working_day(day("2027-01-02")));
    }

    #[test]
    fn bad_files_name_every_problem_with_its_key() {
        let text = r#"
[[years]]
year = 2026
holidays = ["2026-13-01", "2025-05-01"]
workdays = ["2026-11-09"]
[[years]]
year = 2026
"#;
        let problems = Calendar::parse(text, "cal.toml").expect_err("bad calendar");
        let all = problems.join("\n");
        assert!(
            all.contains("cal.toml: years[0].holidays[0]: expected a date"),
            "{all}"
        );
        assert!(
            all.contains("years[0].holidays[1]: 2025-05-01 is not in 2026"),
            "{all}"
        );
        assert!(
            all.contains("years[0].workdays[0]: 2026-11-09 is a Mon"),
            "{all}"
        );
        assert!(
            all.contains("years[1].year: 2026 is already listed"),
            "{all}"
        );
        let unknown =
            Calendar::parse("[[years]]\nyear = 1\nextra = 2\n", "c.toml").expect_err("unknown key");
        assert!(
            unknown[0].contains("c.toml") && unknown[0].contains("extra"),
            "{unknown:?}"
        );
    }
}
