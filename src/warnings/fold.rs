//! One night of a warning's life, pure: which organizations get a new
//! warning ([`raise_for`]), and how a warning moves from one business date
//! to the next ([`advance`]): the platform's acknowledgement, the
//! dispositions admitted so far in sequence order (a gap holds the rest),
//! reopening, and the deadlines (overdue, urges).

use std::collections::HashSet;

use chrono::NaiveDate;
use sha2::{Digest, Sha256};

use super::config::WarningsConfig;
use super::lifecycle::{Event, State, transition};
use super::record::{Cause, Disposition, Warning};

/// Rank of a colour, worse is higher; `None` for no colour.
fn rank(colour: Option<&str>) -> Option<u8> {
    match colour? {
        "green" => Some(0),
        "yellow" => Some(1),
        "orange" => Some(2),
        "red" => Some(3),
        _ => None,
    }
}

/// The stable id of a warning: the organization and its causes (rule and
/// event of each hit), whatever night or attempt raises it.
pub fn warning_id(uscc: &str, causes: &[Cause]) -> String {
    let mut keys: Vec<String> = causes
        .iter()
        .map(|c| format!("{}|{}", c.rule_id, c.event))
        .collect();
    keys.sort();
    keys.dedup();
    let mut h = Sha256::new();
    h.update(uscc.as_bytes());
    for k in &keys {
        h.update(b"\n");
        h.update(k.as_bytes());
    }
    let hex = crate::digest::hex(&h.finalize());
    format!("YJ-{}", hex[..16].to_ascii_uppercase())
}

/// The causes of a warning for an organization tonight, if it gets one:
/// its colour worsened (a first colour worse than green counts), or it
/// gained a red-line hit. The causes are the counted hits whose events are
/// new since the previous version, or all counted hits when the colour
/// worsened without a new event.
pub fn raise_for(
    before: Option<&str>,
    after: Option<&str>,
    hits_now: &[Cause],
    events_before: &HashSet<(String, String)>,
) -> Option<Vec<Cause>> {
    let worsened = match (rank(before), rank(after)) {
        (Some(b), Some(a)) => a > b,
        (None, Some(a)) => before.is_none() && a > 0,
        _ => false,
    };
    let new: Vec<Cause> = hits_now
        .iter()
        .filter(|c| !events_before.contains(&(c.rule_id.clone(), c.event.clone())))
        .cloned()
        .collect();
    let new_red = new.iter().any(|c| c.red_line);
    if !(worsened || new_red) {
        return None;
    }
    let mut causes = if new.is_empty() {
        hits_now.to_vec()
    } else {
        new
    };
    if causes.is_empty() {
        return None;
    }
    causes.sort();
    Some(causes)
}

/// The main cause: the first red-line hit, else the one with the most points.
pub fn main_cause(causes: &[Cause]) -> Option<&Cause> {
    causes
        .iter()
        .max_by_key(|c| (c.red_line, c.points, std::cmp::Reverse(&c.rule_id)))
}

/// A disposition admitted on a business date.
#[derive(Debug, Clone, PartialEq)]
pub struct Admitted {
    /// The record.
    pub disposition: Disposition,
    /// The business date whose run admitted it.
    pub on: NaiveDate,
}

/// What tonight knows about one warning beyond its row of last night.
pub struct Tonight<'a> {
    /// The business date.
    pub date: NaiveDate,
    /// When the push of its current round was acknowledged (admitted), if it was.
    pub acknowledged_on: Option<NaiveDate>,
    /// Every disposition of the warning admitted up to tonight.
    pub dispositions: &'a [Admitted],
    /// The organization's (rule, event) pairs hit tonight; `None` when it
    /// has no profile tonight.
    pub events_now: Option<&'a HashSet<(String, String)>>,
    /// Deadlines and the calendar.
    pub config: &'a WarningsConfig,
}

/// What happened to a warning tonight.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Moved {
    /// Dispositions applied tonight.
    pub applied: u32,
    /// Reopened tonight.
    pub reopened: bool,
    /// A disposition the life cycle refuses blocks the ones after it.
    pub refused: Option<String>,
}

/// Moves a warning from last night's state to tonight's.
pub fn advance(w: &mut Warning, t: &Tonight<'_>) -> Moved {
    let mut moved = Moved::default();
    if let Some(on) = t.acknowledged_on
        && w.state == State::Generated
    {
        w.state = State::Pushed;
        w.pushed_on = Some(on);
        w.waiting_since = Some(on);
    }
    let mut pending: Vec<&Admitted> = t
        .dispositions
        .iter()
        .filter(|a| a.disposition.sequence > w.last_sequence)
        .collect();
    pending.sort_by_key(|a| a.disposition.sequence);
    pending.dedup_by_key(|a| a.disposition.sequence);
    let mut rest = Vec::new();
    for a in pending {
        let d = &a.disposition;
        if d.sequence != w.last_sequence + 1 || moved.refused.is_some() {
            rest.push(a);
            continue;
        }
        match d.new_state().and_then(|to| {
            transition(w.state, Event::Disposition(to))
                .map(|s| (s, to))
                .map_err(|e| e.to_string())
        }) {
            Ok((to, _)) => {
                apply(w, d, to, t.config);
                moved.applied += 1;
            }
            Err(e) => {
                moved.refused = Some(format!("{}: {e}", d.key()));
                rest.push(a);
            }
        }
    }
    w.held = rest.iter().map(|a| a.disposition.sequence).collect();
    w.held_since = rest.iter().map(|a| a.on).min();
    w.sequence_gap = w
        .held_since
        .is_some_and(|since| (t.date - since).num_days() >= i64::from(t.config.held_timeout_days));

    if w.state == State::Closed
        && w.rectify_by.is_some_and(|d| t.date > d)
        && let Some(now) = t.events_now
        && w.causes
            .iter()
            .any(|c| now.contains(&(c.rule_id.clone(), c.event.clone())))
        && let Ok(s) = transition(w.state, Event::Reopen)
    {
        w.state = s;
        w.round += 1;
        w.reopened_on = Some(t.date);
        for field in [
            &mut w.pushed_on,
            &mut w.waiting_since,
            &mut w.signed_on,
            &mut w.rectify_by,
            &mut w.completed_on,
            &mut w.ended_on,
        ] {
            *field = None;
        }
        moved.reopened = true;
    }
    deadlines(w, t.date, t.config);
    moved
}

fn apply(w: &mut Warning, d: &Disposition, to: State, config: &WarningsConfig) {
    let day = d.day();
    if w.pushed_on.is_none() {
        // The platform reports on it: the push arrived, though its receipt did not.
        w.pushed_on = Some(day);
    }
    w.state = to;
    w.last_sequence = d.sequence;
    w.handling_unit = Some(d.handling_unit.clone());
    w.result_code.clone_from(&d.result_code);
    match to {
        State::Signed => {
            w.signed_on = Some(day);
            w.waiting_since = None;
        }
        State::Returned => {
            w.signed_on = None;
            w.waiting_since = Some(day);
        }
        State::Rectifying => {
            w.rectify_by = Some(d.rectify_by.unwrap_or_else(|| {
                config
                    .calendar
                    .add_working_days(day, config.rectify_within_working_days)
            }));
        }
        State::Feedback => w.completed_on = Some(d.completed_on.unwrap_or(day)),
        State::Closed | State::Transferred | State::Withdrawn => w.ended_on = Some(day),
        State::Unfounded => {
            w.ended_on = Some(day);
            if d.data_error {
                let mut feeds: Vec<&str> =
                    w.causes.iter().map(|c| c.source_feed.as_str()).collect();
                feeds.sort();
                feeds.dedup();
                w.data_error_feed = Some(feeds.join(","));
            }
        }
        State::Generated | State::Pushed | State::Verifying => {}
    }
}

/// Overdue and urges on `date`, from the deadlines.
pub fn deadlines(w: &mut Warning, date: NaiveDate, config: &WarningsConfig) {
    let cal = &config.calendar;
    w.sign_due = match (w.state.awaits_signature(), w.waiting_since) {
        (true, Some(since)) => Some(cal.add_working_days(since, config.sign_within_working_days)),
        _ => None,
    };
    let (overdue, days) = match (w.sign_due, w.state, w.rectify_by) {
        (Some(due), _, _) if date > due => (Some("signature"), cal.working_days_between(due, date)),
        (_, State::Rectifying, Some(by)) if date > by => {
            (Some("rectification"), cal.working_days_between(by, date))
        }
        _ => (None, 0),
    };
    w.overdue = overdue.map(str::to_string);
    w.overdue_working_days = days;
    w.urges = days.div_ceil(config.urge_every_working_days.max(1));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    fn cause(rule: &str, event: &str, red: bool, points: i32) -> Cause {
        Cause {
            rule_id: rule.into(),
            event: event.into(),
            red_line: red,
            points,
            source_feed: "court".into(),
            source_record_id: event.into(),
            event_date: day("2026-11-01"),
            detail: String::new(),
        }
    }

    fn warning() -> Warning {
        let causes = vec![cause("XD-01", "e1", true, 0)];
        Warning {
            warning_id: warning_id("U", &causes),
            uscc: "U".into(),
            name: "n".into(),
            raised_on: day("2026-11-02"),
            round: 1,
            state: State::Generated,
            colour_before: Some("green".into()),
            colour_after: Some("red".into()),
            causes,
            responsible: "feed".into(),
            responsible_unit: "法院".into(),
            handling_unit: None,
            pushed_on: None,
            waiting_since: None,
            signed_on: None,
            rectify_by: None,
            completed_on: None,
            ended_on: None,
            reopened_on: None,
            last_sequence: 0,
            held: vec![],
            held_since: None,
            result_code: None,
            data_error_feed: None,
            sign_due: None,
            overdue: None,
            overdue_working_days: 0,
            urges: 0,
            sequence_gap: false,
        }
    }

    fn disp(seq: u32, state: &str, on: &str) -> Admitted {
        Disposition {
            warning_id: warning().warning_id,
            sequence: seq,
            uscc: "U".into(),
            state: state.into(),
            time: day(on).and_hms_opt(2, 0, 0).expect("time").and_utc(),
            handling_unit: "民政局".into(),
            handler: Some("someone".into()),
            result_code: None,
            result_text: None,
            rectify_by: (state == "rectifying").then(|| day("2026-11-13")),
            completed_on: None,
            data_error: false,
        }
        .pipe(|d| Admitted {
            disposition: d,
            on: day(on),
        })
    }

    trait Pipe: Sized {
        fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
            f(self)
        }
    }
    impl<T> Pipe for T {}

    fn night<'a>(
        date: &str,
        ack: Option<&str>,
        d: &'a [Admitted],
        cfg: &'a WarningsConfig,
    ) -> Tonight<'a> {
        Tonight {
            date: day(date),
            acknowledged_on: ack.map(day),
            dispositions: d,
            events_now: None,
            config: cfg,
        }
    }

    #[test]
    fn ids_depend_on_the_cause_only() {
        let a = vec![
            cause("XD-01", "e1", true, 0),
            cause("OPS-01", "e2", false, 3),
        ];
        let b = vec![
            cause("OPS-01", "e2", false, 3),
            cause("XD-01", "e1", true, 0),
        ];
        assert_eq!(warning_id("U", &a), warning_id("U", &b));
        assert_ne!(warning_id("U", &a), warning_id("V", &a));
        assert_ne!(warning_id("U", &a), warning_id("U", &a[..1]));
        assert!(warning_id("U", &a).starts_with("YJ-"));
    }

    #[test]
    fn worsening_or_a_new_red_line_raises_nothing_else_does() {
        let none = HashSet::new();
        let hits = vec![cause("OPS-01", "e2", false, 3)];
        assert!(raise_for(Some("green"), Some("yellow"), &hits, &none).is_some());
        assert!(raise_for(Some("yellow"), Some("green"), &hits, &none).is_none());
        assert!(raise_for(Some("yellow"), Some("yellow"), &hits, &none).is_none());
        assert!(raise_for(None, Some("green"), &hits, &none).is_none());
        assert!(raise_for(None, Some("orange"), &hits, &none).is_some());
        assert!(raise_for(Some("red"), None, &hits, &none).is_none());
        // Already red, a new red line.
        let red = vec![cause("XD-01", "e9", true, 0)];
        assert!(raise_for(Some("red"), Some("red"), &red, &none).is_some());
        let before: HashSet<_> = [("XD-01".to_string(), "e9".to_string())].into();
        assert!(raise_for(Some("red"), Some("red"), &red, &before).is_none());
        // Worse with only old events: the causes are every hit.
        let got = raise_for(Some("green"), Some("yellow"), &red, &before).expect("raised");
        assert_eq!(got, red);
    }

    #[test]
    fn a_warning_goes_the_whole_way_and_counts_its_deadlines() {
        let cfg = WarningsConfig::default();
        let mut w = warning();
        // Acknowledged on Monday 2 Nov; not signed by Thu 5 Nov (3 working days).
        advance(&mut w, &night("2026-11-02", Some("2026-11-02"), &[], &cfg));
        assert_eq!(
            (w.state, w.pushed_on),
            (State::Pushed, Some(day("2026-11-02")))
        );
        assert_eq!(w.sign_due, Some(day("2026-11-05")));
        assert_eq!(w.overdue, None);
        advance(&mut w, &night("2026-11-05", Some("2026-11-02"), &[], &cfg));
        assert_eq!(w.overdue, None, "due today is not late");
        advance(&mut w, &night("2026-11-09", Some("2026-11-02"), &[], &cfg));
        assert_eq!(w.overdue.as_deref(), Some("signature"));
        assert_eq!((w.overdue_working_days, w.urges), (2, 1), "Fri 6 and Mon 9");
        let d = vec![
            disp(1, "signed", "2026-11-09"),
            disp(2, "verifying", "2026-11-09"),
            disp(3, "rectifying", "2026-11-10"),
        ];
        advance(&mut w, &night("2026-11-10", Some("2026-11-02"), &d, &cfg));
        assert_eq!((w.state, w.last_sequence), (State::Rectifying, 3));
        assert_eq!((w.overdue.as_deref(), w.urges), (None, 0));
        assert_eq!(w.rectify_by, Some(day("2026-11-13")));
        advance(&mut w, &night("2026-11-17", Some("2026-11-02"), &d, &cfg));
        assert_eq!(w.overdue.as_deref(), Some("rectification"));
        assert_eq!(w.overdue_working_days, 2, "Mon 16 and Tue 17");
        let mut d = d;
        d.push(disp(4, "feedback", "2026-11-18"));
        d.push(disp(5, "closed", "2026-11-19"));
        let m = advance(&mut w, &night("2026-11-19", Some("2026-11-02"), &d, &cfg));
        assert_eq!(
            (m.applied, w.state, w.overdue.as_deref()),
            (2, State::Closed, None)
        );
        assert_eq!(w.ended_on, Some(day("2026-11-19")));
        // The cause is still there after the deadline: reopened, round 2.
        let events: HashSet<_> = [("XD-01".to_string(), "e1".to_string())].into();
        let t = Tonight {
            events_now: Some(&events),
            ..night("2026-11-20", None, &d, &cfg)
        };
        let m = advance(&mut w, &t);
        assert!(m.reopened);
        assert_eq!(
            (w.state, w.round, w.last_sequence),
            (State::Generated, 2, 5)
        );
        assert_eq!(w.reopened_on, Some(day("2026-11-20")));
        assert_eq!((w.pushed_on, w.rectify_by, w.ended_on), (None, None, None));
    }

    #[test]
    fn a_gap_holds_what_follows_until_it_fills_then_is_flagged() {
        let cfg = WarningsConfig::default();
        let mut w = warning();
        let late = vec![disp(2, "verifying", "2026-11-03")];
        advance(
            &mut w,
            &night("2026-11-03", Some("2026-11-02"), &late, &cfg),
        );
        assert_eq!((w.state, w.held.clone()), (State::Pushed, vec![2]));
        assert!(!w.sequence_gap);
        advance(
            &mut w,
            &night("2026-11-06", Some("2026-11-02"), &late, &cfg),
        );
        assert!(w.sequence_gap, "held for the timeout (3 days)");
        let mut both = late.clone();
        both.push(disp(1, "signed", "2026-11-06"));
        advance(
            &mut w,
            &night("2026-11-06", Some("2026-11-02"), &both, &cfg),
        );
        assert_eq!((w.state, w.last_sequence), (State::Verifying, 2));
        assert!(w.held.is_empty() && !w.sequence_gap);
        // Applying again changes nothing: idempotent on id and sequence.
        let before = w.clone();
        let m = advance(
            &mut w,
            &night("2026-11-06", Some("2026-11-02"), &both, &cfg),
        );
        assert_eq!((m.applied, &w), (0, &before));
    }

    #[test]
    fn a_refused_transition_is_never_applied_and_holds_the_rest() {
        let cfg = WarningsConfig::default();
        let mut w = warning();
        let d = vec![
            disp(1, "closed", "2026-11-03"),
            disp(2, "signed", "2026-11-03"),
        ];
        let m = advance(&mut w, &night("2026-11-03", Some("2026-11-02"), &d, &cfg));
        assert!(m.refused.expect("refused").contains("#1"));
        assert_eq!(
            (w.state, w.last_sequence, w.held.clone()),
            (State::Pushed, 0, vec![1, 2])
        );
    }

    #[test]
    fn unfounded_with_a_data_error_names_the_feed() {
        let cfg = WarningsConfig::default();
        let mut w = warning();
        let mut u = disp(3, "unfounded", "2026-11-04");
        u.disposition.data_error = true;
        let d = vec![
            disp(1, "signed", "2026-11-03"),
            disp(2, "verifying", "2026-11-03"),
            u,
        ];
        advance(&mut w, &night("2026-11-04", None, &d, &cfg));
        assert_eq!(w.state, State::Unfounded);
        assert_eq!(w.data_error_feed.as_deref(), Some("court"));
        assert_eq!(
            w.pushed_on,
            Some(day("2026-11-03")),
            "a disposition proves the push arrived"
        );
    }
}
