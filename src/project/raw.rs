//! The configuration files exactly as written: serde types that reject
//! unknown keys. Nothing here is checked beyond its shape; `compile` turns
//! these into the validated model.

use std::collections::BTreeMap;

use serde::Deserialize;

/// `schemas/<feed>.toml`: the canonical columns of one feed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSchema {
    pub(crate) feed: String,
    pub(crate) version: u32,
    pub(crate) description: String,
    /// The column carrying the organization key (a USCC after validation).
    pub(crate) key: String,
    #[serde(default)]
    pub(crate) columns: Vec<toml::Value>,
}

/// `schemas/out/<dataset>.toml`: the contract of one published dataset.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawContract {
    pub(crate) dataset: String,
    pub(crate) version: u32,
    pub(crate) description: String,
    /// The columns that identify a row.
    pub(crate) key: Vec<String>,
    #[serde(default)]
    pub(crate) columns: Vec<toml::Value>,
}

/// One `[[columns]]` entry of a schema.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawColumn {
    pub(crate) name: String,
    #[serde(rename = "type")]
    pub(crate) data_type: String,
    #[serde(default = "yes")]
    pub(crate) nullable: bool,
    #[serde(rename = "enum")]
    pub(crate) domain: Option<Vec<String>>,
    pub(crate) description: String,
    /// Numeric columns: whether values below zero are accepted.
    #[serde(default)]
    pub(crate) negative: bool,
    /// Date and timestamp columns: the first date accepted (`YYYY-MM-DD`).
    #[serde(default)]
    pub(crate) earliest: Option<String>,
    /// Date and timestamp columns: the last date accepted (`YYYY-MM-DD`).
    #[serde(default)]
    pub(crate) latest: Option<String>,
}

fn yes() -> bool {
    true
}

/// `pipelines/sources/<feed>.toml`: where a feed comes from and how its
/// records map to the canonical columns.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSourceFile {
    pub(crate) feed: String,
    pub(crate) schema: String,
    pub(crate) description: String,
    pub(crate) department: String,
    #[serde(default = "yes")]
    pub(crate) required: bool,
    /// How old the last good snapshot may be before scoring marks it stale.
    pub(crate) max_age_days: u32,
    pub(crate) source: RawSource,
    pub(crate) mapping: RawMapping,
    #[serde(default)]
    pub(crate) guards: RawGuards,
    /// Further parts of the delivery, each with its own source and mapping.
    #[serde(default)]
    pub(crate) part: Vec<RawPart>,
}

/// One more part of a feed's delivery.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPart {
    pub(crate) name: String,
    pub(crate) source: RawSource,
    pub(crate) mapping: RawMapping,
}

/// Where the records are. Tagged by `kind`; one variant per source kind.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[allow(clippy::large_enum_variant)] // parsed once per file, then compiled away
pub(crate) enum RawSource {
    /// Files behind any object_store URL (`file://`, `s3://` …).
    ObjectStore {
        url: String,
        format: String,
        #[serde(default)]
        encoding: Option<String>,
        #[serde(default)]
        compression: Option<String>,
        /// JSON pointer to the record array of a JSON document.
        #[serde(default)]
        records: Option<String>,
        #[serde(default)]
        delimiter: Option<String>,
        /// The sheet of an Excel workbook (default: the first).
        #[serde(default)]
        sheet: Option<String>,
        /// The 1-based row of an Excel sheet's header (default 1).
        #[serde(default)]
        header_row: Option<u32>,
        /// How a delivery forms the snapshot: `snapshot`, `append`, `upsert`.
        #[serde(default)]
        merge: Option<String>,
        /// Upsert only: the records that delete.
        #[serde(default)]
        tombstone: Option<RawTombstone>,
    },
    /// A paged JSON API, or one file downloaded over HTTP.
    Http {
        url: String,
        /// JSON pointer to the record array in each page (or in a
        /// downloaded JSON document).
        #[serde(default)]
        records: Option<String>,
        /// How the API pages; absent when the URL serves one file.
        #[serde(default)]
        pagination: Option<RawPagination>,
        /// The format of a downloaded file; absent for a paged JSON API.
        #[serde(default)]
        format: Option<String>,
        #[serde(default)]
        encoding: Option<String>,
        #[serde(default)]
        compression: Option<String>,
        #[serde(default)]
        delimiter: Option<String>,
        #[serde(default)]
        sheet: Option<String>,
        #[serde(default)]
        header_row: Option<u32>,
        #[serde(default)]
        auth: Option<RawAuth>,
        /// JSON pointer to the total record count the API declares.
        #[serde(default)]
        total: Option<String>,
        #[serde(default)]
        since_param: Option<String>,
        #[serde(default)]
        requests_per_second: Option<f64>,
        #[serde(default)]
        concurrency: Option<u32>,
        #[serde(default)]
        timeout_seconds: Option<u64>,
        #[serde(default)]
        max_retries: Option<u32>,
        /// First retry delay; doubled each retry, with jitter.
        #[serde(default)]
        retry_base_ms: Option<u64>,
        /// Longest total time spent retrying one request.
        #[serde(default)]
        retry_budget_seconds: Option<u64>,
        #[serde(default)]
        max_response_bytes: Option<u64>,
        #[serde(default)]
        max_run_bytes: Option<u64>,
        /// Other origins (`scheme://host[:port]`) redirects and next links
        /// may lead to; credentials are never sent there.
        #[serde(default)]
        allow_redirect_origins: Vec<String>,
        /// JSON pointer to the API's own success code in every page.
        #[serde(default)]
        success_pointer: Option<String>,
        /// Values of `success_pointer` that mean success.
        #[serde(default)]
        success_values: Vec<toml::Value>,
        /// The declared total is an estimate: falling short of it is not a failure.
        #[serde(default)]
        total_may_fall_short: bool,
        /// How a delivery forms the snapshot: `snapshot`, `append`, `upsert`.
        #[serde(default)]
        merge: Option<String>,
        /// Upsert only: the records that delete.
        #[serde(default)]
        tombstone: Option<RawTombstone>,
    },
}

/// `tombstone = { field = "op", value = "D" }`: a delivered record whose
/// `field` holds `value` deletes the record of its id.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTombstone {
    pub(crate) field: String,
    pub(crate) value: String,
}

/// How an HTTP source pages.
#[derive(Debug, Deserialize)]
#[serde(tag = "style", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum RawPagination {
    /// `?page=N&size=M`.
    PageNumber {
        page_param: String,
        size_param: String,
        page_size: u32,
        #[serde(default)]
        first_page: Option<u32>,
    },
    /// `?offset=N&limit=M`.
    OffsetLimit {
        offset_param: String,
        limit_param: String,
        page_size: u32,
    },
    /// The next cursor sits in the body.
    Cursor {
        cursor_param: String,
        next_cursor: String,
    },
    /// RFC 8288 `Link: <…>; rel="next"`.
    LinkHeader {},
}

/// How an HTTP source authenticates; the secret is named, never written.
#[derive(Debug, Deserialize)]
#[serde(tag = "scheme", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum RawAuth {
    Bearer { token_env: String },
    ApiKey { header: String, key_env: String },
}

/// How raw records become canonical rows.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMapping {
    /// Raw field with the organization key (USCC, org code, reg. no. or
    /// name), or several in order of preference: the first a record fills
    /// is its key.
    pub(crate) key: RawKey,
    /// Raw field with the organization's name.
    #[serde(default)]
    pub(crate) name: Option<String>,
    /// Raw field(s) that identify a record within the feed.
    pub(crate) record_id: Vec<String>,
    /// Canonical column → how to fill it.
    #[serde(default)]
    pub(crate) columns: BTreeMap<String, RawColumnMapping>,
}

/// A mapping's key: one raw field, or several in order of preference.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawKey {
    One(String),
    Several(Vec<String>),
}

/// One canonical column's mapping: a raw field name, or a table.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawColumnMapping {
    Field(String),
    Rule(toml::Table),
}

/// The table form of a column mapping, deserialized separately so that its
/// unknown keys are reported with their path.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawColumnRule {
    #[serde(default)]
    pub(crate) field: Option<String>,
    #[serde(default)]
    pub(crate) constant: Option<toml::Value>,
    #[serde(default)]
    pub(crate) sql: Option<String>,
    /// `wan_yuan` multiplies by 10,000 into yuan.
    #[serde(default)]
    pub(crate) unit: Option<String>,
    /// Raw label → canonical enum value.
    #[serde(rename = "enum", default)]
    pub(crate) labels: Option<BTreeMap<String, String>>,
    /// Replace the value by its keyed hash (person identity numbers).
    #[serde(default)]
    pub(crate) hash: bool,
}

/// Per-source guards; every one optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGuards {
    pub(crate) min_rows: Option<u64>,
    pub(crate) max_rows: Option<u64>,
    #[serde(default)]
    pub(crate) declared_count: bool,
    /// Largest share of keys removed or changed against the last good snapshot.
    pub(crate) max_churn: Option<f64>,
    /// Smallest share of rows with a valid USCC.
    pub(crate) min_valid_keys: Option<f64>,
    /// Smallest share of valid USCCs found in the registry.
    pub(crate) min_registry_match: Option<f64>,
    /// Largest share of records read that may be quarantined (default 0.5).
    pub(crate) max_quarantined: Option<f64>,
    /// Largest share of the last good snapshot's rows a delivery may lose
    /// (default 0.5; 1 lets an empty delivery replace a full snapshot).
    pub(crate) max_shrink: Option<f64>,
    /// Largest share of the spine's records read that repeat a key with
    /// other content (default 0.05).
    pub(crate) max_duplicate_keys: Option<f64>,
    /// Mapped raw fields a delivery may lack in every record (default none:
    /// a field no record carries is schema drift and holds the feed).
    pub(crate) allow_absent_fields: Option<Vec<String>>,
}

/// `pipelines/rules/<group>.toml`: a list of rules.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRuleFile {
    /// For the file's readers; the rules carry their own titles.
    #[serde(default)]
    #[expect(
        dead_code,
        reason = "documentation inside the file, accepted and not used"
    )]
    pub(crate) description: Option<String>,
    #[serde(default)]
    pub(crate) rule: Vec<toml::Value>,
}

/// One `[[rule]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    pub(crate) id: String,
    pub(crate) title: String,
    /// Chinese title for people (briefings, `explain`, the run report).
    #[serde(default)]
    pub(crate) title_zh: Option<String>,
    pub(crate) dimension: String,
    #[serde(default)]
    pub(crate) points: u32,
    #[serde(default)]
    pub(crate) red_line: bool,
    pub(crate) window: String,
    #[serde(default)]
    pub(crate) flag: Option<String>,
    /// Statutory or policy basis, shown by `explain`.
    #[serde(default)]
    pub(crate) basis: Option<String>,
    /// Output columns naming the event a hit evidences.
    #[serde(default)]
    pub(crate) event: Option<Vec<String>>,
    pub(crate) sql: String,
}

/// `pipelines/<pipeline>.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPipeline {
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) sources: Vec<String>,
    /// Rule files (by name, without `.toml`).
    pub(crate) rules: Vec<String>,
    pub(crate) warehouse: String,
    pub(crate) scoring: RawScoring,
    #[serde(default)]
    pub(crate) person_hash_key_env: Option<String>,
    #[serde(default)]
    pub(crate) push: Option<RawPush>,
    #[serde(default)]
    pub(crate) drop: Option<RawDrop>,
    #[serde(default)]
    pub(crate) demonstration: Option<RawDemonstration>,
    #[serde(default)]
    pub(crate) public: Option<RawPublic>,
    #[serde(default)]
    pub(crate) engine: Option<RawEngine>,
}

/// `[engine]`: where the scoring stage's queries run.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEngine {
    pub(crate) kind: String,
    #[serde(default)]
    pub(crate) url: Option<String>,
    #[serde(default)]
    pub(crate) target_partitions: Option<usize>,
    #[serde(default)]
    pub(crate) job_name: Option<String>,
}

/// `[demonstration]`: eligibility and filters of demonstration candidates.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDemonstration {
    #[serde(default)]
    pub(crate) lookback_days: Option<u32>,
    #[serde(default)]
    pub(crate) clean_years: Option<u32>,
    #[serde(default)]
    pub(crate) min_rating: Option<String>,
    #[serde(default)]
    pub(crate) industry_name_patterns: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) entrusted_programmes: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) limit: Option<u32>,
}

/// `[public]`: the public lookup (一码通查) and what it shows.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPublic {
    #[serde(default)]
    pub(crate) base_url: Option<String>,
    #[serde(default)]
    pub(crate) penalty_years: Option<u32>,
    #[serde(default)]
    pub(crate) minor_penalty_years: Option<u32>,
    #[serde(default)]
    pub(crate) minor_penalty_kinds: Option<Vec<String>>,
}

/// `[push]`: delivery of code changes to the oversight platform.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPush {
    pub(crate) endpoint: String,
    pub(crate) secret_env: String,
    #[serde(default)]
    pub(crate) batch_size: Option<u32>,
    #[serde(default)]
    pub(crate) timeout_seconds: Option<u64>,
    #[serde(default)]
    pub(crate) max_retries: Option<u32>,
    #[serde(default)]
    pub(crate) retry_base_ms: Option<u64>,
    #[serde(default)]
    pub(crate) retry_budget_seconds: Option<u64>,
}

/// `[drop]`: a copy of the published datasets in the platform's bucket.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDrop {
    pub(crate) url: String,
}

/// Points and colour bands.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScoring {
    pub(crate) start_points: u32,
    pub(crate) bands: Vec<RawBand>,
    /// Memory DataFusion may use for joining and scoring before it spills.
    #[serde(default)]
    pub(crate) memory_limit_mb: Option<u64>,
}

/// One colour band: `min..=max` points.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBand {
    pub(crate) colour: String,
    pub(crate) min: u32,
    pub(crate) max: u32,
}

/// `jobs/<job>.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawJob {
    pub(crate) name: String,
    pub(crate) pipeline: String,
    #[serde(default)]
    pub(crate) task: Option<String>,
    pub(crate) cron: String,
    #[serde(default)]
    pub(crate) timezone: Option<String>,
    #[serde(default)]
    pub(crate) business_date: Option<String>,
    #[serde(default)]
    pub(crate) catch_up: Option<RawCatchUp>,
    #[serde(default)]
    pub(crate) max_run_minutes: Option<u32>,
    #[serde(default)]
    pub(crate) retries: Option<u32>,
    #[serde(default)]
    pub(crate) retry_backoff_seconds: Option<u64>,
}

/// What to do about dates missed while the scheduler was down.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCatchUp {
    pub(crate) policy: String,
    #[serde(default)]
    pub(crate) max_dates: Option<u32>,
}
