//! The wall clock, injected everywhere time is read or waited on, so tests
//! (and the simulated month) control time: the scheduler's ticks, retries
//! and time limits, lease renewal, the outbox's back-off.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

/// The wall clock, injectable so tests control time.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;

    /// Waits until `instant` (the scheduler's sleeps between ticks and retries).
    fn sleep_until(&self, instant: DateTime<Utc>) -> BoxFuture<'_, ()> {
        let wait = (instant - self.now()).to_std().unwrap_or_default();
        Box::pin(tokio::time::sleep(wait))
    }
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock stopped at one instant.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }

    fn sleep_until(&self, _: DateTime<Utc>) -> BoxFuture<'_, ()> {
        Box::pin(std::future::ready(()))
    }
}

/// A clock that moves only when told: sleeping jumps to the instant, so a
/// week of scheduling runs in milliseconds.
#[derive(Debug)]
pub struct ManualClock(std::sync::Mutex<DateTime<Utc>>);

impl ManualClock {
    /// A clock at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self(std::sync::Mutex::new(start))
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: chrono::TimeDelta) {
        if let Ok(mut t) = self.0.lock() {
            *t += by;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.0.lock().map(|t| *t).unwrap_or_default()
    }

    fn sleep_until(&self, instant: DateTime<Utc>) -> BoxFuture<'_, ()> {
        if let Ok(mut t) = self.0.lock()
            && instant > *t
        {
            *t = instant;
        }
        Box::pin(std::future::ready(()))
    }
}
