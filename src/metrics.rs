//! Metrics of the scheduler daemon, in the Prometheus text format at
//! `GET /metrics` (`qinglian schedule --metrics ADDR`): runs by outcome,
//! stage durations, rows per feed, delivery failures, last success per job,
//! warehouse errors.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::ledger::RunRecord;
use crate::schedule::{Event, Observer, Outcome};

type Labels = Vec<(String, String)>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Every metric of the daemon.
pub struct Metrics {
    registry: Registry,
    runs: Family<Labels, Counter>,
    stage_seconds: Family<Labels, Gauge<f64, AtomicU64>>,
    rows: Family<Labels, Counter>,
    part_rows: Family<Labels, Counter>,
    delivery_failures: Family<Labels, Counter>,
    last_success: Family<Labels, Gauge<f64, AtomicU64>>,
    warehouse_errors: Family<Labels, Counter>,
    warnings: Family<Labels, Gauge>,
    warnings_overdue: Family<Labels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("qinglian");
        let runs = Family::<Labels, Counter>::default();
        registry.register(
            "runs",
            "Scheduled run attempts by job and outcome",
            runs.clone(),
        );
        let stage_seconds = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "stage_duration_seconds",
            "Wall time of each stage in the job's latest run",
            stage_seconds.clone(),
        );
        let rows = Family::<Labels, Counter>::default();
        registry.register(
            "feed_rows",
            "Rows per feed by kind: read, landed, quarantined, duplicates, tombstones, upserted, deleted, carried_over",
            rows.clone(),
        );
        let part_rows = Family::<Labels, Counter>::default();
        registry.register(
            "feed_part_rows",
            "Rows per part of a feed of several parts, by kind: read, landed, quarantined, duplicates, tombstones, upserted, deleted, carried_over",
            part_rows.clone(),
        );
        let delivery_failures = Family::<Labels, Counter>::default();
        registry.register(
            "delivery_failures",
            "Batches parked or left waiting by a run's delivery, by job",
            delivery_failures.clone(),
        );
        let last_success = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "last_success_timestamp_seconds",
            "When each job's last successful or degraded run finished (Unix seconds)",
            last_success.clone(),
        );
        let warehouse_errors = Family::<Labels, Counter>::default();
        registry.register(
            "warehouse_errors",
            "Times the scheduler could not read or write the warehouse, by job",
            warehouse_errors.clone(),
        );
        let warnings = Family::<Labels, Gauge>::default();
        registry.register(
            "warnings",
            "Warnings by job and state after the job's latest run",
            warnings.clone(),
        );
        let warnings_overdue = Family::<Labels, Gauge>::default();
        registry.register(
            "warnings_overdue",
            "Overdue warnings by job and kind (signature, rectification) after the job's latest run",
            warnings_overdue.clone(),
        );
        Self {
            registry,
            warnings,
            warnings_overdue,
            runs,
            stage_seconds,
            rows,
            part_rows,
            delivery_failures,
            last_success,
            warehouse_errors,
        }
    }

    /// Counts what a finished run did.
    pub fn run_finished(&self, job: &str, record: &RunRecord) {
        for (stage, ms) in &record.stage_ms {
            self.stage_seconds
                .get_or_create(&labels(&[("job", job), ("stage", stage)]))
                .set(*ms as f64 / 1000.0);
        }
        for f in &record.feeds {
            for (kind, n) in [
                ("read", f.read),
                ("landed", f.landed),
                ("quarantined", f.quarantined),
                ("duplicates", f.duplicates),
                ("tombstones", f.tombstones),
                ("upserted", f.upserted),
                ("deleted", f.deleted),
                ("carried_over", f.carried_over),
            ] {
                self.rows
                    .get_or_create(&labels(&[("feed", &f.feed), ("kind", kind)]))
                    .inc_by(n);
            }
            for p in f.parts.iter().filter(|_| f.parts.len() > 1) {
                for (kind, n) in [
                    ("read", p.read),
                    ("landed", p.landed),
                    ("quarantined", p.quarantined),
                    ("duplicates", p.duplicates),
                    ("tombstones", p.tombstones),
                    ("upserted", p.upserted),
                    ("deleted", p.deleted),
                    ("carried_over", p.carried_over),
                ] {
                    self.part_rows
                        .get_or_create(&labels(&[
                            ("feed", &f.feed),
                            ("part", &p.name),
                            ("kind", kind),
                        ]))
                        .inc_by(n);
                }
            }
        }
        if let Some(w) = &record.warnings {
            for state in crate::warnings::lifecycle::STATES {
                let n = w.by_state.get(state.as_str()).copied().unwrap_or(0);
                self.warnings
                    .get_or_create(&labels(&[("job", job), ("state", state.as_str())]))
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            }
            for kind in ["signature", "rectification"] {
                let n = w.overdue.iter().filter(|(_, k, _)| k == kind).count();
                self.warnings_overdue
                    .get_or_create(&labels(&[("job", job), ("kind", kind)]))
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
        if let Some(d) = &record.delivery {
            self.delivery_failures
                .get_or_create(&labels(&[("job", job)]))
                .inc_by(u64::from(d.parked + d.pending));
        }
        if matches!(
            record.status,
            crate::ledger::RunStatus::Succeeded | crate::ledger::RunStatus::Degraded
        ) {
            let at = record.finished_at.unwrap_or(record.started_at);
            self.last_success
                .get_or_create(&labels(&[("job", job)]))
                .set(at.timestamp_millis() as f64 / 1000.0);
        }
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

impl Observer for Metrics {
    fn attempt(&self, event: &Event) {
        let outcome = match &event.outcome {
            Outcome::Finished(status) => format!("{status:?}").to_lowercase(),
            Outcome::Busy(_) => "busy".into(),
            Outcome::Error(_) => "error".into(),
        };
        self.runs
            .get_or_create(&labels(&[("job", &event.job), ("outcome", &outcome)]))
            .inc();
    }

    fn warehouse_error(&self, job: &str) {
        self.warehouse_errors
            .get_or_create(&labels(&[("job", job)]))
            .inc();
    }
}

async fn metrics(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.render(),
    )
}

/// Serves `GET /metrics` at `addr` for the life of the process; returns
/// the bound address.
pub async fn serve(m: Arc<Metrics>, addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let app = Router::new().route("/metrics", get(metrics)).with_state(m);
    let (bound, _task) = crate::listen::serve_at(app, addr).await?;
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{FeedRecord, PartRecord, RunStatus};

    fn part(name: &str, read: u64, landed: u64) -> PartRecord {
        PartRecord {
            read,
            landed,
            quarantined: read - landed,
            ..PartRecord::starting(name, "snapshot")
        }
    }

    #[test]
    fn a_feed_of_several_parts_counts_rows_per_part() {
        let mut court = FeedRecord::starting("court", false);
        court.parts = vec![part("court", 3, 3), part("enforced", 5, 4)];
        let mut registry = FeedRecord::starting("registry", true);
        registry.parts = vec![part("registry", 2, 2)];
        let record = RunRecord {
            run_id: "r".into(),
            pipeline: "nightly".into(),
            business_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 28).expect("date"),
            attempt: 1,
            started_at: chrono::Utc::now(),
            finished_at: None,
            status: RunStatus::Failed,
            feeds: vec![court, registry],
            scoring: None,
            warnings: None,
            manifest: None,
            delivery: None,
            drop: None,
            stage_ms: Default::default(),
            stage_usage: Default::default(),
            report: None,
            error: None,
        };
        let m = Metrics::new();
        m.run_finished("nightly", &record);
        let text = m.render();
        for line in [
            r#"qinglian_feed_part_rows_total{feed="court",part="enforced",kind="read"} 5"#,
            r#"qinglian_feed_part_rows_total{feed="court",part="enforced",kind="quarantined"} 1"#,
            r#"qinglian_feed_part_rows_total{feed="court",part="court",kind="landed"} 3"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
        // A feed of one part has no part series.
        assert!(!text.contains(r#"part="registry""#), "{text}");
    }
}
