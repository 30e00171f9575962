//! The guards of a feed: whether what a delivery landed may become the
//! feed's new snapshot. A pure function of the feed's record, its previous
//! snapshot and the churn measured against it; the run reads the
//! snapshots, this decides.

use crate::ledger::{FeedRecord, FeedState, GuardResult};
use crate::project::Guards;
use crate::validate::Reason;

/// The keys that left the feed since its previous snapshot, or why they
/// could not be counted.
#[derive(Debug, Clone, PartialEq)]
pub enum Churn {
    /// Of `before` keys of the previous snapshot, `removed` are gone.
    Measured {
        /// Keys gone from the new snapshot.
        removed: u64,
        /// Keys of the previous snapshot.
        before: u64,
    },
    /// A snapshot could not be read: the guard cannot be evaluated, and a
    /// guard that cannot run holds the feed, whichever side failed.
    Unreadable(String),
}

fn share(n: u64, d: u64) -> f64 {
    if d == 0 { 0.0 } else { n as f64 / d as f64 }
}

/// Every guard the source configures, evaluated on what the feed landed.
/// `previous` is the feed's last good snapshot; `churn` is measured only
/// when `max_churn` is set and there is a previous snapshot.
pub fn evaluate(
    g: &Guards,
    rec: &FeedRecord,
    previous: Option<&FeedState>,
    churn: Option<&Churn>,
    spine: bool,
) -> Vec<GuardResult> {
    let mut guards = Vec::new();
    let mut check = |name: &str, value: f64, limit: f64, passed: bool| {
        guards.push(GuardResult {
            name: name.to_string(),
            value,
            limit,
            passed,
        });
    };
    if g.declared_count
        && let Some(declared) = rec.declared
    {
        check(
            "declared_count",
            rec.read as f64,
            declared as f64,
            rec.read == declared,
        );
    }
    // Of the records the new snapshot stands for: a delta's one rejected
    // record among thousands carried over is not a collapsed delivery.
    let quarantined = share(rec.quarantined, rec.read + rec.carried_over);
    check(
        "max_quarantined",
        quarantined,
        g.max_quarantined,
        quarantined <= g.max_quarantined,
    );
    // Counts of the snapshot the run formed (for a full dump, what it
    // landed; for a merged feed, the merged state).
    if let Some(min) = g.min_rows {
        check("min_rows", rec.rows as f64, min as f64, rec.rows >= min);
    }
    if let Some(max) = g.max_rows {
        check("max_rows", rec.rows as f64, max as f64, rec.rows <= max);
    }
    if let Some(min) = g.min_valid_keys {
        let v = share(rec.keyed, rec.rows);
        check("min_valid_keys", v, min, v >= min);
    }
    if let Some(min) = g.min_registry_match
        && !spine
    {
        let v = share(rec.in_registry, rec.keyed);
        check("min_registry_match", v, min, v >= min);
    }
    if let Some(max) = g.max_shrink
        && let Some(prev) = previous
        && prev.rows > 0
    {
        // An empty or collapsed delivery is not the new state of the world.
        let v = 1.0 - share(rec.rows.min(prev.rows), prev.rows);
        check("max_shrink", v, max, v <= max);
    }
    // Schema drift: a mapped field no record of a file carried lands as an
    // empty column unless the source allows its absence.
    let absent = rec
        .missing_fields
        .iter()
        .filter(|f| !g.allow_absent_fields.contains(f))
        .count();
    check("absent_fields", absent as f64, 0.0, absent == 0);
    if let Some(max) = g.max_duplicate_keys
        && spine
    {
        let repeated = rec
            .quarantine_reasons
            .get(Reason::DuplicateKey.code())
            .copied()
            .unwrap_or(0);
        let v = share(repeated, rec.read);
        check("max_duplicate_keys", v, max, v <= max);
    }
    if let Some(max) = g.max_churn
        && previous.is_some()
    {
        match churn {
            Some(Churn::Measured { removed, before }) => {
                let v = share(*removed, *before);
                check("max_churn", v, max, v <= max);
            }
            Some(Churn::Unreadable(_)) | None => check("max_churn", 1.0, max, false),
        }
    }
    guards
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(read: u64, landed: u64) -> FeedRecord {
        let mut rec = FeedRecord::starting("court", true);
        rec.read = read;
        rec.landed = landed;
        rec.rows = landed;
        rec.keyed = landed;
        rec
    }

    fn previous(rows: u64) -> FeedState {
        FeedState {
            feed: "court".into(),
            run_id: "nightly-20261127-01".into(),
            business_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 27).unwrap_or_default(),
            snapshot: "landing/court/dt=2026-11-27/run=nightly-20261127-01/data.parquet".into(),
            rows,
            watermark: None,
            landed_at: chrono::DateTime::<chrono::Utc>::default(),
            parts: Vec::new(),
        }
    }

    fn tripped(results: &[GuardResult]) -> Vec<&str> {
        results
            .iter()
            .filter(|g| !g.passed)
            .map(|g| g.name.as_str())
            .collect()
    }

    #[test]
    fn churn_that_cannot_be_measured_holds_the_feed() {
        let g = Guards {
            max_churn: Some(0.2),
            ..Guards::default()
        };
        let rec = record(100, 100);
        let prev = previous(100);
        let unreadable = Churn::Unreadable("snapshot gone".into());
        assert_eq!(
            tripped(&evaluate(&g, &rec, Some(&prev), Some(&unreadable), false)),
            ["max_churn"]
        );
        // Not measured at all is the same: the guard never passes unseen.
        assert_eq!(
            tripped(&evaluate(&g, &rec, Some(&prev), None, false)),
            ["max_churn"]
        );
        let few = Churn::Measured {
            removed: 10,
            before: 100,
        };
        assert!(tripped(&evaluate(&g, &rec, Some(&prev), Some(&few), false)).is_empty());
        let many = Churn::Measured {
            removed: 30,
            before: 100,
        };
        assert_eq!(
            tripped(&evaluate(&g, &rec, Some(&prev), Some(&many), false)),
            ["max_churn"]
        );
        // A first delivery has nothing to churn against.
        assert!(tripped(&evaluate(&g, &rec, None, None, false)).is_empty());
    }

    #[test]
    fn a_collapsed_delivery_trips_max_shrink() {
        let g = Guards {
            max_shrink: Some(0.5),
            ..Guards::default()
        };
        let prev = previous(1000);
        assert_eq!(
            tripped(&evaluate(&g, &record(100, 100), Some(&prev), None, false)),
            ["max_shrink"]
        );
        assert!(tripped(&evaluate(&g, &record(600, 600), Some(&prev), None, false)).is_empty());
    }

    #[test]
    fn registry_match_is_not_asked_of_the_spine() {
        let g = Guards {
            min_registry_match: Some(0.9),
            ..Guards::default()
        };
        let rec = record(10, 10);
        assert_eq!(
            tripped(&evaluate(&g, &rec, None, None, false)),
            ["min_registry_match"]
        );
        assert!(tripped(&evaluate(&g, &rec, None, None, true)).is_empty());
    }

    #[test]
    fn a_missing_mapped_field_trips_unless_allowed() {
        let mut rec = record(10, 10);
        rec.missing_fields = vec!["出生年份".into()];
        let g = Guards::default();
        assert_eq!(
            tripped(&evaluate(&g, &rec, None, None, false)),
            ["absent_fields"]
        );
        let allowed = Guards {
            allow_absent_fields: vec!["出生年份".into()],
            ..Guards::default()
        };
        assert!(tripped(&evaluate(&allowed, &rec, None, None, false)).is_empty());
    }
}
