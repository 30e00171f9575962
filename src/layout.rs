//! The warehouse layout: every path the pipeline writes or reads under a
//! warehouse root, in one place. Paths are relative to the root (callers
//! join them with [`crate::store::join`]); code and tests build them here
//! and nowhere else.
//!
//! ```text
//! landing/<feed>/dt=<date>/run=<run>/              raw payloads + data.parquet (+ delivery.parquet when merged)
//! quarantine/<feed>/dt=<date>/run=<run>/           quarantine.parquet
//! published/<dataset>/dt=<date>/run=<run>/         the datasets of a version
//! published/manifests/dt=<date>/<run>.json         the commit point of a version
//! ledger/runs/dt=<date>/<run>.json                 one record per run
//! state/feeds/<feed>.json                          last good snapshot, watermark
//! state/jobs/<job>.json                            where a job's schedule stands
//! locks/<pipeline>/dt=<date>/                      the date's lease generations
//! outbox/<area>/<key>.json                         deliveries pending, acknowledged, dead
//! reports/dt=<date>/<run>.html                     the run report
//! ```

use chrono::NaiveDate;

/// The canonical data file of a landed feed.
pub const LANDED_DATA: &str = "data.parquet";

/// What a merging feed's delivery landed, beside the snapshot merged from
/// it and the previous one (`data.parquet`).
pub const DELIVERED_DATA: &str = "delivery.parquet";

/// The quarantined rows of a landed feed.
pub const QUARANTINE_FILE: &str = "quarantine.parquet";

/// Where one feed of one run lands: `landing/<feed>/dt=<date>/run=<run>`.
pub fn landing_dir(feed: &str, date: NaiveDate, run_id: &str) -> String {
    format!("landing/{feed}/dt={date}/run={run_id}")
}

/// Where one feed's quarantined rows of one run go.
pub fn quarantine_dir(feed: &str, date: NaiveDate, run_id: &str) -> String {
    format!("quarantine/{feed}/dt={date}/run={run_id}")
}

/// The canonical data file of one feed of one run.
pub fn landed_data(feed: &str, date: NaiveDate, run_id: &str) -> String {
    format!("{}/{LANDED_DATA}", landing_dir(feed, date, run_id))
}

/// The quarantined rows of one feed of one run.
pub fn quarantine_file(feed: &str, date: NaiveDate, run_id: &str) -> String {
    format!("{}/{QUARANTINE_FILE}", quarantine_dir(feed, date, run_id))
}

/// The quarantine file that belongs to a landed data file: the snapshot a
/// manifest records is a landing path, and its quarantined rows sit in the
/// same place under `quarantine/`. None for a path that is not a landed
/// data file.
pub fn quarantine_of_landed(data: &str) -> Option<String> {
    let part = data
        .strip_prefix("landing/")?
        .strip_suffix(LANDED_DATA)?
        .strip_suffix('/')?;
    Some(format!("quarantine/{part}/{QUARANTINE_FILE}"))
}

/// The folder of every version of a dataset for one business date.
pub fn published_day(dataset: &str, date: NaiveDate) -> String {
    format!("published/{dataset}/dt={date}")
}

/// The folder of one dataset of one published version.
pub fn published_dir(dataset: &str, date: NaiveDate, run_id: &str) -> String {
    format!("{}/run={run_id}", published_day(dataset, date))
}

/// The data file of a dataset a run writes itself.
pub fn published_data(dataset: &str, date: NaiveDate, run_id: &str) -> String {
    format!("{}/{LANDED_DATA}", published_dir(dataset, date, run_id))
}

/// The folder of every manifest.
pub const MANIFESTS: &str = "published/manifests";

/// The folder of a date's manifests.
pub fn manifest_dir(date: NaiveDate) -> String {
    format!("{MANIFESTS}/dt={date}")
}

/// The manifest of a run.
pub fn manifest_path(date: NaiveDate, run_id: &str) -> String {
    format!("{}/{run_id}.json", manifest_dir(date))
}

/// The folder of every run record.
pub const RUNS: &str = "ledger/runs";

/// The folder of a date's run records.
pub fn runs_dir(date: NaiveDate) -> String {
    format!("{RUNS}/dt={date}")
}

/// The record of one run.
pub fn run_record(date: NaiveDate, run_id: &str) -> String {
    format!("{}/{run_id}.json", runs_dir(date))
}

/// A feed's last good snapshot and watermark.
pub fn feed_state(feed: &str) -> String {
    format!("state/feeds/{feed}.json")
}

/// Where a job's schedule stands.
pub fn job_state(job: &str) -> String {
    format!("state/jobs/{job}.json")
}

/// The lease generations of a pipeline's business date.
pub fn lease_dir(pipeline: &str, date: NaiveDate) -> String {
    format!("locks/{pipeline}/dt={date}")
}

/// One area of the delivery outbox (`pending`, `acknowledged`, `dead`).
pub fn outbox_area(area: &str) -> String {
    format!("outbox/{area}")
}

/// One delivery batch in an outbox area.
pub fn outbox_entry(area: &str, key: &str) -> String {
    format!("{}/{key}.json", outbox_area(area))
}

/// The folder of a briefing period's workbooks and pages:
/// `briefs/<YYYY-MM>` or `briefs/<YYYYHn>`.
pub fn briefs(period: &str) -> String {
    format!("briefs/{period}")
}

/// The HTML report of a run.
pub fn report(date: NaiveDate, run_id: &str) -> String {
    format!("reports/dt={date}/{run_id}.html")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 28).unwrap_or_default()
    }

    #[test]
    fn the_quarantine_of_a_landed_file_sits_beside_it() {
        let landed = landed_data("court", day(), "nightly-20261128-01");
        assert_eq!(
            quarantine_of_landed(&landed).as_deref(),
            Some("quarantine/court/dt=2026-11-28/run=nightly-20261128-01/quarantine.parquet")
        );
        assert_eq!(
            quarantine_of_landed(&landed),
            Some(quarantine_file("court", day(), "nightly-20261128-01"))
        );
        assert_eq!(quarantine_of_landed("published/codes/x/data.parquet"), None);
        assert_eq!(quarantine_of_landed("landing/court/raw.json"), None);
    }

    #[test]
    fn manifests_and_runs_are_filed_by_date() {
        assert_eq!(
            manifest_path(day(), "nightly-20261128-02"),
            "published/manifests/dt=2026-11-28/nightly-20261128-02.json"
        );
        assert_eq!(
            run_record(day(), "nightly-20261128-02"),
            "ledger/runs/dt=2026-11-28/nightly-20261128-02.json"
        );
        assert_eq!(
            published_data("codes", day(), "r"),
            "published/codes/dt=2026-11-28/run=r/data.parquet"
        );
    }
}

/// Warnings and their dispositions (`crate::warnings`):
///
/// ```text
/// warnings/received/<digest>.json          an intake request as received, before anything else
/// warnings/inbox/<warning>/<seq>.json      one recorded disposition (create-only)
/// warnings/dead/<time>-<digest>.json       refused, never applied
/// warnings/sent/<key>.json                 the warnings a push batch carries
/// warnings/admitted/dt=<date>.json         what a business date's run admitted, once
/// warnings/receipts/<digest>.json          the intake's answer to an idempotency key
/// warnings/pull/watermark.json             where the pull of the platform's API stopped
/// warnings/pull/raw/<stamp>/<page>         the pages pulled, as received
/// warnings/outbox/<area>/<key>.json        the warnings' push batches
/// ```
pub mod warnings {
    use chrono::NaiveDate;

    /// The root of the warnings' own outbox (an outbox under this prefix).
    pub const OUTBOX_ROOT: &str = "warnings";
    /// Requests kept as received.
    pub const RECEIVED_DIR: &str = "warnings/received";
    /// Recorded dispositions.
    pub const INBOX_DIR: &str = "warnings/inbox";
    /// Refused dispositions and requests.
    pub const DEAD_DIR: &str = "warnings/dead";
    /// Which warnings each push batch carries.
    pub const SENT_DIR: &str = "warnings/sent";
    /// One admission per business date.
    pub const ADMITTED_DIR: &str = "warnings/admitted";
    /// The pull's watermark.
    pub const PULL_WATERMARK: &str = "warnings/pull/watermark.json";

    /// A request kept as received.
    pub fn received(name: &str) -> String {
        format!("{RECEIVED_DIR}/{name}.json")
    }

    /// The dispositions of one warning (`warning` already file-name safe).
    pub fn inbox_of(warning: &str) -> String {
        format!("{INBOX_DIR}/{warning}")
    }

    /// One recorded disposition.
    pub fn disposition(warning: &str, sequence: u32) -> String {
        format!("{INBOX_DIR}/{warning}/{sequence:06}.json")
    }

    /// One dead letter.
    pub fn dead(name: &str) -> String {
        format!("{DEAD_DIR}/{name}.json")
    }

    /// The note of one push batch.
    pub fn sent(key: &str) -> String {
        format!("{SENT_DIR}/{key}.json")
    }

    /// The admission of a business date.
    pub fn admitted(date: NaiveDate) -> String {
        format!("{ADMITTED_DIR}/dt={date}.json")
    }

    /// The intake's kept answer to an idempotency key (by its digest).
    pub fn receipt(digest: &str) -> String {
        format!("warnings/receipts/{digest}.json")
    }

    /// A page pulled from the platform's API.
    pub fn pulled_page(stamp: &str, page: &str) -> String {
        format!("warnings/pull/raw/{stamp}/{page}")
    }
}
