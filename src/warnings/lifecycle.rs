//! The life cycle of a warning (DOMAIN.md §7) as a pure state machine: which
//! state a warning may move to from which, whoever reports the move. Nothing
//! here reads a clock or a store; the nightly fold and the intake both ask
//! [`transition`].
//!
//! ```text
//! generated → pushed → signed → verifying → rectifying → feedback → closed
//!                 ╲        ╲         ╲            ╲           ╲
//!                  returned, transferred, withdrawn, unfounded (see the table)
//! closed ──(cause still there after the rectification deadline)──▶ generated (next round)
//! ```

use serde::{Deserialize, Serialize};

/// Where a warning stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Raised by a run, not yet acknowledged by the platform.
    Generated,
    /// The platform acknowledged the push.
    Pushed,
    /// 签收: the responsible unit signed for it.
    Signed,
    /// 核查中: being verified.
    Verifying,
    /// 整改中: the organization is rectifying, by a deadline.
    Rectifying,
    /// 已反馈: the unit reported the rectification back.
    Feedback,
    /// 已销号: closed; reopens when its cause is still there after the deadline.
    Closed,
    /// 核实不属实: the evidence was wrong (an ending).
    Unfounded,
    /// 已移交: handed to discipline inspection (an ending).
    Transferred,
    /// Withdrawn for a data error of ours (an ending).
    Withdrawn,
    /// 退回: sent back to be reassigned; the next unit signs for it.
    Returned,
}

/// Every state, in life-cycle order.
pub const STATES: [State; 11] = [
    State::Generated,
    State::Pushed,
    State::Signed,
    State::Verifying,
    State::Rectifying,
    State::Feedback,
    State::Closed,
    State::Unfounded,
    State::Transferred,
    State::Withdrawn,
    State::Returned,
];

impl State {
    /// The name in the contract and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Generated => "generated",
            State::Pushed => "pushed",
            State::Signed => "signed",
            State::Verifying => "verifying",
            State::Rectifying => "rectifying",
            State::Feedback => "feedback",
            State::Closed => "closed",
            State::Unfounded => "unfounded",
            State::Transferred => "transferred",
            State::Withdrawn => "withdrawn",
            State::Returned => "returned",
        }
    }

    /// The Chinese name handlers know it by.
    pub fn label(self) -> &'static str {
        match self {
            State::Generated => "已生成",
            State::Pushed => "已推送",
            State::Signed => "已签收",
            State::Verifying => "核查中",
            State::Rectifying => "整改中",
            State::Feedback => "已反馈",
            State::Closed => "已销号",
            State::Unfounded => "核实不属实",
            State::Transferred => "已移交",
            State::Withdrawn => "已撤回",
            State::Returned => "已退回",
        }
    }

    /// Reads a state name; `None` for anything else.
    pub fn parse(text: &str) -> Option<State> {
        STATES.into_iter().find(|s| s.as_str() == text)
    }

    /// No further disposition applies (closed may still reopen).
    pub fn is_ending(self) -> bool {
        matches!(
            self,
            State::Closed | State::Unfounded | State::Transferred | State::Withdrawn
        )
    }

    /// Waiting for a unit to sign for it.
    pub fn awaits_signature(self) -> bool {
        matches!(self, State::Pushed | State::Returned)
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What moves a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The platform acknowledged the push carrying it (ours).
    Acknowledged,
    /// A disposition record from the platform reporting the new state.
    Disposition(State),
    /// The nightly check found a closed warning's cause still there after its
    /// rectification deadline (ours).
    Reopen,
}

/// Why a move is not allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a warning in state {from} cannot move to {to} (DOMAIN.md §7)")]
pub struct Disallowed {
    /// The state it is in.
    pub from: State,
    /// The state asked for.
    pub to: String,
}

/// The states a platform disposition may move a warning to from `from`.
/// A disposition on a warning still `generated` means the push arrived
/// although its receipt did not (the platform cannot report on what it
/// never received), so it counts as pushed.
pub fn allowed_dispositions(from: State) -> &'static [State] {
    use State::*;
    match from {
        Generated | Pushed => &[Signed, Returned, Transferred, Withdrawn],
        Signed => &[Verifying, Returned, Transferred, Withdrawn],
        Verifying => &[Rectifying, Unfounded, Transferred, Withdrawn, Returned],
        Rectifying => &[Feedback, Transferred, Withdrawn],
        Feedback => &[Closed, Rectifying, Transferred, Withdrawn],
        Returned => &[Signed, Transferred, Withdrawn],
        Closed | Unfounded | Transferred | Withdrawn => &[],
    }
}

/// The state after `event`, or why it is refused. An acknowledgement of a
/// warning already past `generated` changes nothing (a receipt can arrive
/// after the platform has signed).
pub fn transition(from: State, event: Event) -> Result<State, Disallowed> {
    match event {
        Event::Acknowledged => Ok(if from == State::Generated {
            State::Pushed
        } else {
            from
        }),
        Event::Reopen if from == State::Closed => Ok(State::Generated),
        Event::Reopen => Err(Disallowed {
            from,
            to: "generated (reopened)".into(),
        }),
        Event::Disposition(to) if allowed_dispositions(from).contains(&to) => Ok(to),
        Event::Disposition(to) => Err(Disallowed {
            from,
            to: to.as_str().into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use State::*;

    /// The table of DOMAIN.md §7 written out by hand: every (from, to) pair a
    /// disposition may make. Anything not listed is refused.
    const TABLE: &[(State, State)] = &[
        (Generated, Signed),
        (Generated, Returned),
        (Generated, Transferred),
        (Generated, Withdrawn),
        (Pushed, Signed),
        (Pushed, Returned),
        (Pushed, Transferred),
        (Pushed, Withdrawn),
        (Signed, Verifying),
        (Signed, Returned),
        (Signed, Transferred),
        (Signed, Withdrawn),
        (Verifying, Rectifying),
        (Verifying, Unfounded),
        (Verifying, Transferred),
        (Verifying, Withdrawn),
        (Verifying, Returned),
        (Rectifying, Feedback),
        (Rectifying, Transferred),
        (Rectifying, Withdrawn),
        (Feedback, Closed),
        (Feedback, Rectifying),
        (Feedback, Transferred),
        (Feedback, Withdrawn),
        (Returned, Signed),
        (Returned, Transferred),
        (Returned, Withdrawn),
    ];

    #[test]
    fn every_pair_of_states_follows_the_table() {
        let mut allowed = 0;
        for from in STATES {
            for to in STATES {
                let expected = TABLE.contains(&(from, to));
                let got = transition(from, Event::Disposition(to));
                assert_eq!(got.is_ok(), expected, "{from} → {to}: {got:?}");
                match got {
                    Ok(s) => {
                        assert_eq!(s, to);
                        allowed += 1;
                    }
                    Err(e) => {
                        assert_eq!((e.from, e.to.as_str()), (from, to.as_str()));
                        assert!(e.to_string().contains(from.as_str()));
                    }
                }
            }
        }
        assert_eq!(allowed, TABLE.len());
    }

    #[test]
    fn acknowledgement_moves_only_a_generated_warning() {
        for from in STATES {
            let to = transition(from, Event::Acknowledged).expect("always allowed");
            assert_eq!(to, if from == Generated { Pushed } else { from });
        }
    }

    #[test]
    fn only_a_closed_warning_reopens() {
        for from in STATES {
            let got = transition(from, Event::Reopen);
            if from == Closed {
                assert_eq!(got, Ok(Generated));
            } else {
                assert!(got.is_err(), "{from} reopened");
            }
        }
    }

    #[test]
    fn endings_take_no_disposition_and_every_state_is_reachable() {
        for from in STATES {
            if from.is_ending() {
                assert!(allowed_dispositions(from).is_empty(), "{from}");
            } else {
                assert!(
                    !allowed_dispositions(from).is_empty(),
                    "{from} is a dead end"
                );
            }
        }
        // Every state is reachable from generated.
        let mut seen = vec![Generated];
        let mut frontier = vec![Generated];
        while let Some(s) = frontier.pop() {
            let mut next: Vec<State> = allowed_dispositions(s).to_vec();
            next.push(transition(s, Event::Acknowledged).expect("ack"));
            if let Ok(r) = transition(s, Event::Reopen) {
                next.push(r);
            }
            for n in next {
                if !seen.contains(&n) {
                    seen.push(n);
                    frontier.push(n);
                }
            }
        }
        seen.sort();
        assert_eq!(seen, STATES.to_vec());
    }

    #[test]
    fn names_round_trip() {
        for s in STATES {
            assert_eq!(State::parse(s.as_str()), Some(s));
            assert!(!s.label().is_empty());
        }
        assert_eq!(State::parse("Signed"), None);
        assert_eq!(State::parse(""), None);
    }
}
