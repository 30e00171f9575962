//! The validated project: what every stage reads. Built only by
//! [`super::Project::load`], so holding one means the configuration checked out.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{Datelike, Months, NaiveDate};
use chrono_tz::Tz;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::keys::KeyClass;

/// One canonical column of a feed.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSpec {
    /// Column name.
    pub name: String,
    /// Arrow type.
    pub data_type: DataType,
    /// Whether NULL is allowed.
    pub nullable: bool,
    /// The allowed values of an enum column (strings).
    pub domain: Option<Vec<String>>,
    /// What the column means.
    pub description: String,
    /// Numeric columns: whether a value below zero is accepted (schema
    /// option `negative = true`); otherwise it is a `bad_value`.
    pub negative: bool,
    /// Date and timestamp columns: the dates accepted (schema options
    /// `earliest`, `latest`); by default 1900-01-01 to 2099-12-31.
    pub dates: (chrono::NaiveDate, chrono::NaiveDate),
}

/// The first date a date or timestamp column accepts unless its schema
/// says otherwise (`earliest`): 1900-01-01. Outside the default range a
/// date is a typing or export error (year 0, negative years, the year 2286
/// of an epoch in microseconds read as milliseconds), and some readers
/// (pyarrow's conversion to Python dates) cannot even hold it.
pub const DEFAULT_EARLIEST: chrono::NaiveDate = match chrono::NaiveDate::from_ymd_opt(1900, 1, 1) {
    Some(d) => d,
    None => chrono::NaiveDate::MIN,
};

/// The last date a column accepts unless its schema says otherwise
/// (`latest`): 2099-12-31.
pub const DEFAULT_LATEST: chrono::NaiveDate = match chrono::NaiveDate::from_ymd_opt(2099, 12, 31) {
    Some(d) => d,
    None => chrono::NaiveDate::MAX,
};

/// The canonical schema of one feed (`schemas/<feed>.toml`).
#[derive(Debug, Clone, PartialEq)]
pub struct FeedSchema {
    /// Feed name, also the SQL table name.
    pub feed: String,
    /// Schema version, published with every output computed from it.
    pub version: u32,
    /// What the feed is.
    pub description: String,
    /// The column carrying the organization key.
    pub key: String,
    /// The feed's own columns, after the standard ones.
    pub columns: Vec<ColumnSpec>,
}

/// The datasets a run publishes, each with its contract in `schemas/out/`.
pub const PUBLISHED_DATASETS: [&str; 11] = [
    "profiles",
    "hits",
    "codes",
    "changes",
    "demonstration",
    "leads",
    "quarantine",
    "runs",
    "warnings",
    "public",
    "public_events",
];

/// The contract of one published dataset (`schemas/out/<dataset>.toml`):
/// what the platform's engineers read, checked against every file written.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputContract {
    /// Dataset name (= file stem).
    pub dataset: String,
    /// Contract version, recorded in every manifest.
    pub version: u32,
    /// What the dataset is.
    pub description: String,
    /// The columns that identify a row.
    pub key: Vec<String>,
    /// Columns in order.
    pub columns: Vec<ColumnSpec>,
}

impl OutputContract {
    /// The Arrow schema the contract declares.
    pub fn arrow_schema(&self) -> datafusion::arrow::datatypes::SchemaRef {
        use datafusion::arrow::datatypes::{Field, Schema};
        std::sync::Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(&c.name, c.data_type.clone(), c.nullable))
                .collect::<Vec<_>>(),
        ))
    }

    /// Every difference between a written schema and the contract: missing,
    /// extra or reordered columns, other types, nulls where none are allowed.
    pub fn differences(&self, written: &datafusion::arrow::datatypes::Schema) -> Vec<String> {
        let mut out = Vec::new();
        let declared: Vec<&str> = self.columns.iter().map(|c| c.name.as_str()).collect();
        let found: Vec<&str> = written.fields().iter().map(|f| f.name().as_str()).collect();
        for c in &self.columns {
            match written.field_with_name(&c.name) {
                Err(_) => out.push(format!("column {:?} is missing", c.name)),
                Ok(f) => {
                    if f.data_type() != &c.data_type {
                        out.push(format!(
                            "column {:?} is {}, the contract says {}",
                            c.name,
                            f.data_type(),
                            c.data_type
                        ));
                    }
                    if f.is_nullable() && !c.nullable {
                        out.push(format!(
                            "column {:?} is nullable, the contract says not null",
                            c.name
                        ));
                    }
                }
            }
        }
        for name in &found {
            if !declared.contains(name) {
                out.push(format!("column {name:?} is not in the contract"));
            }
        }
        if out.is_empty() && declared != found {
            out.push(format!(
                "columns are in the order {found:?}, the contract says {declared:?}"
            ));
        }
        out
    }
}

/// Columns every canonical table keeps, ahead of the feed's own.
pub const STANDARD_COLUMNS: [&str; 9] = [
    "uscc",
    "uscc_raw",
    "key_class",
    "key_field",
    "subject_name",
    "subject_name_key",
    "source_record_id",
    "source_part",
    "fetched_at",
];

impl FeedSchema {
    /// The standard columns, then the feed's own.
    pub fn all_columns(&self) -> Vec<ColumnSpec> {
        let column =
            |name: &str, data_type: DataType, nullable: bool, description: &str| ColumnSpec {
                name: name.to_string(),
                data_type,
                nullable,
                domain: None,
                description: description.to_string(),
                negative: false,
                dates: (DEFAULT_EARLIEST, DEFAULT_LATEST),
            };
        let mut key_class = column(
            "key_class",
            DataType::Utf8,
            false,
            "class of the delivered key",
        );
        key_class.domain = Some(
            KeyClass::ALL
                .iter()
                .map(|c| c.as_str().to_string())
                .collect(),
        );
        let mut all = vec![
            column(
                "uscc",
                DataType::Utf8,
                true,
                "valid USCC of the organization, resolved from the delivered key",
            ),
            column("uscc_raw", DataType::Utf8, true, "the key as delivered"),
            key_class,
            column(
                "key_field",
                DataType::Utf8,
                true,
                "the delivered field the key was read from (of several key fields, the first with a good code)",
            ),
            column(
                "subject_name",
                DataType::Utf8,
                true,
                "organization name as delivered",
            ),
            column(
                "subject_name_key",
                DataType::Utf8,
                true,
                "organization name folded for matching (name_normalize)",
            ),
            column(
                "source_record_id",
                DataType::Utf8,
                false,
                "identifier of the record in its feed",
            ),
            column(
                "source_part",
                DataType::Utf8,
                false,
                "the part of the feed the record was delivered in (the first part is named after the feed)",
            ),
            column(
                "fetched_at",
                DataType::Timestamp(TimeUnit::Millisecond, Some(Arc::from("UTC"))),
                false,
                "when the record was fetched",
            ),
        ];
        all.extend(self.columns.iter().cloned());
        all
    }

    /// A column by name, standard ones included.
    pub fn column(&self, name: &str) -> Option<ColumnSpec> {
        self.all_columns().into_iter().find(|c| c.name == name)
    }

    /// The Arrow schema of the canonical table.
    pub fn arrow_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.all_columns()
                .into_iter()
                .map(|c| Field::new(c.name, c.data_type, c.nullable))
                .collect::<Vec<_>>(),
        ))
    }
}

/// Text encodings of delimited files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextEncoding {
    /// UTF-8, with or without a BOM.
    Utf8,
    /// GB18030 (a superset of GBK and GB2312), common in government exports.
    Gb18030,
}

/// File formats a source reads, from an object store or over HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileFormat {
    /// Delimited text with a header row.
    Csv {
        /// Field delimiter.
        delimiter: u8,
        /// Text encoding.
        encoding: TextEncoding,
    },
    /// One JSON object per line.
    Ndjson,
    /// One JSON document; the records are the array at `pointer`.
    Json {
        /// JSON pointer (RFC 6901) to the record array; empty for the root.
        pointer: String,
    },
    /// Apache Parquet.
    Parquet,
    /// An Excel workbook (`.xlsx`, `.xls`, also `.xlsb` and `.ods`): one
    /// sheet, its header on a given row (title rows may stand above it).
    Excel {
        /// The sheet by name; the first sheet when `None`.
        sheet: Option<String>,
        /// 1-based row of the header; the records follow it.
        header_row: u32,
    },
}

/// How an HTTP source pages through its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pagination {
    /// `?page=N&size=M`, from `first_page`.
    PageNumber {
        /// Query parameter of the page number.
        page_param: String,
        /// Query parameter of the page size.
        size_param: String,
        /// Records per page.
        page_size: u32,
        /// Number of the first page (0 or 1).
        first_page: u32,
    },
    /// `?offset=N&limit=M`.
    OffsetLimit {
        /// Query parameter of the offset.
        offset_param: String,
        /// Query parameter of the limit.
        limit_param: String,
        /// Records per page.
        page_size: u32,
    },
    /// The body carries the next cursor.
    Cursor {
        /// Query parameter that sends the cursor back.
        cursor_param: String,
        /// JSON pointer to the next cursor in the body.
        next_cursor: String,
    },
    /// `Link: <…>; rel="next"` headers.
    LinkHeader,
}

/// How an HTTP source authenticates. Only the environment variable's name
/// is configuration; its value is read at fetch time and never logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// Variable holding the token.
        token_env: String,
    },
    /// A custom header carrying a key.
    ApiKey {
        /// Header name.
        header: String,
        /// Variable holding the key.
        key_env: String,
    },
}

/// HTTP fetch settings, with defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpSource {
    /// First page URL, or the file's URL (environment references expanded
    /// at fetch time).
    pub url: String,
    /// What the URL serves: pages of a JSON API, or one file.
    pub body: HttpBody,
    /// Authentication.
    pub auth: Option<Auth>,
    /// JSON pointer to the declared total record count.
    pub total: Option<String>,
    /// Query parameter carrying the since-watermark.
    pub since_param: Option<String>,
    /// Requests per second.
    pub requests_per_second: f64,
    /// Requests in flight at once.
    pub concurrency: u32,
    /// Per-request timeout.
    pub timeout_seconds: u64,
    /// Retries per request after the first attempt.
    pub max_retries: u32,
    /// First retry delay in milliseconds, doubled each retry (with jitter).
    pub retry_base_ms: u64,
    /// Longest total time spent retrying one request, seconds.
    pub retry_budget_seconds: u64,
    /// Largest response body accepted.
    pub max_response_bytes: u64,
    /// Largest total of bodies in one run.
    pub max_run_bytes: u64,
    /// Origins other than the URL's that redirects and next links may lead
    /// to (`scheme://host[:port]`, normalized); no credential goes there.
    pub allow_redirect_origins: Vec<String>,
    /// The API's own success code: a page whose value at `pointer` is not
    /// one of `values` (compared as text) is a failed response.
    pub success: Option<SuccessCode>,
    /// Falling short of the declared total is not a failure of the feed.
    pub total_may_fall_short: bool,
}

/// What an HTTP source's URL serves.
#[derive(Debug, Clone, PartialEq)]
pub enum HttpBody {
    /// A paged JSON API.
    Pages {
        /// JSON pointer to the records of a page.
        records: String,
        /// Paging style.
        pagination: Pagination,
    },
    /// One file in any format an object-store source reads (a CSV, a
    /// workbook, an NDJSON or Parquet export), downloaded whole.
    File {
        /// How to read the file.
        format: FileFormat,
        /// Whether the file is gzip (also inferred from a `.gz` name).
        gzip: bool,
    },
}

/// Where an API puts its own success code, and the values meaning success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuccessCode {
    /// JSON pointer to the code.
    pub pointer: String,
    /// Values meaning success, as text (`0`, `200`, `"OK"`).
    pub values: Vec<String>,
}

/// Where a feed's records come from.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceKind {
    /// Files behind an object-store URL, possibly a glob.
    ObjectStore {
        /// URL or path, environment references expanded at fetch time.
        url: String,
        /// How to read each file.
        format: FileFormat,
        /// Whether files are gzip-compressed (also inferred from `.gz`).
        gzip: bool,
    },
    /// A paged JSON API.
    Http(Box<HttpSource>),
}

/// How one canonical column is filled.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnMapping {
    /// Copy a raw field, coercing to the column type.
    Field {
        /// Raw field name.
        field: String,
        /// Multiply amounts by this (10,000 for 万元).
        scale: i64,
        /// Raw label → canonical value, for enum columns.
        labels: Option<BTreeMap<String, String>>,
        /// Replace by the keyed hash (person identity numbers).
        hash: bool,
    },
    /// The same value on every row.
    Constant(String),
    /// A DataFusion SQL expression over the raw fields, its result then
    /// converted as a field's value would be.
    Sql {
        /// The expression.
        sql: String,
        /// Multiply amounts by this (10,000 for 万元).
        scale: i64,
        /// Result label → canonical value, for enum columns.
        labels: Option<BTreeMap<String, String>>,
        /// Replace the result by its keyed hash.
        hash: bool,
    },
}

impl ColumnMapping {
    /// Whether the mapping replaces its value by the keyed person hash.
    pub fn hashes(&self) -> bool {
        matches!(
            self,
            ColumnMapping::Field { hash: true, .. } | ColumnMapping::Sql { hash: true, .. }
        )
    }
}

/// Share and count limits checked before a feed is accepted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Guards {
    /// Fewest rows accepted.
    pub min_rows: Option<u64>,
    /// Most rows accepted.
    pub max_rows: Option<u64>,
    /// The API's declared count must equal the parsed count.
    pub declared_count: bool,
    /// Largest share of keys removed or changed against the last good snapshot.
    pub max_churn: Option<f64>,
    /// Smallest share of rows with a valid USCC.
    pub min_valid_keys: Option<f64>,
    /// Smallest share of valid USCCs found in the registry.
    pub min_registry_match: Option<f64>,
    /// Largest share of records read that may be quarantined: a feed whose
    /// rows are mostly rejected is held rather than replacing its snapshot.
    pub max_quarantined: f64,
    /// Largest share of the last good snapshot's rows a delivery may lose:
    /// an empty or collapsed delivery is held (every compiled feed has one).
    pub max_shrink: Option<f64>,
    /// Largest share of the spine's records read that repeat a key already
    /// delivered with other content (quarantined `duplicate_key`).
    pub max_duplicate_keys: Option<f64>,
    /// Mapped raw fields a delivery may lack in every record of a file;
    /// any other such field is schema drift (a renamed or dropped column)
    /// and holds the feed rather than landing an empty column.
    pub allow_absent_fields: Vec<String>,
}

/// The feed every profile is built on: one row per registered organization.
pub const SPINE_FEED: &str = "registry";

/// How a part's delivery forms its share of the feed's snapshot
/// (kamu-cli's names). Whatever the strategy, the snapshot scoring reads is
/// the complete current state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Merge {
    /// Each delivery is the full current state: it replaces the part's rows.
    #[default]
    Snapshot,
    /// Events that never change: a delivery adds rows to the previous
    /// snapshot; a redelivered record id is a duplicate.
    Append,
    /// A delta by record id: a delivered record adds or replaces the
    /// record of its id; a tombstone deletes it.
    Upsert {
        /// The records that delete, when the API sends deletions.
        tombstone: Option<Tombstone>,
    },
}

impl Merge {
    /// `snapshot`, `append` or `upsert`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Merge::Snapshot => "snapshot",
            Merge::Append => "append",
            Merge::Upsert { .. } => "upsert",
        }
    }
}

/// A delivered record whose `field` holds `value` deletes its record id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tombstone {
    /// The raw field.
    pub field: String,
    /// The value meaning "deleted" (compared as trimmed text).
    pub value: String,
}

/// A feed: where it comes from, how it maps, what guards it.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// Feed name (= file stem).
    pub feed: String,
    /// Canonical schema name.
    pub schema: String,
    /// What the feed is.
    pub description: String,
    /// Department delivering it.
    pub department: String,
    /// A required feed failing its guards fails the run; an optional one
    /// is held at its last good snapshot.
    pub required: bool,
    /// Age after which the feed's snapshot is stale.
    pub max_age_days: u32,
    /// Where it comes from.
    pub kind: SourceKind,
    /// How its deliveries form the snapshot (the first part's; each further
    /// part has its own).
    pub merge: Merge,
    /// Raw fields with the organization key, in order of preference: the
    /// first a record fills is its key (a penalty export names its subject
    /// by USCC, organization code or certificate number, whichever it has).
    pub key_fields: Vec<String>,
    /// Raw field with the organization name.
    pub name_field: Option<String>,
    /// Raw fields identifying a record.
    pub record_id: Vec<String>,
    /// Canonical column → mapping.
    pub columns: BTreeMap<String, ColumnMapping>,
    /// Guards.
    pub guards: Guards,
    /// Further parts of the delivery (`[[part]]`): files or APIs of the
    /// same feed with their own fields, landed with the first part into
    /// one canonical table. Empty for a feed delivered as one part.
    pub parts: Vec<Part>,
}

/// One more part of a feed's delivery: where it comes from and how its
/// own fields map to the feed's canonical columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// Its name, unique within the feed (messages and raw payloads).
    pub name: String,
    /// Where it comes from.
    pub kind: SourceKind,
    /// How its deliveries form its rows of the snapshot.
    pub merge: Merge,
    /// Raw fields with the organization key, in order of preference.
    pub key_fields: Vec<String>,
    /// Raw field with the organization name.
    pub name_field: Option<String>,
    /// Raw fields identifying a record.
    pub record_id: Vec<String>,
    /// Canonical column → mapping.
    pub columns: BTreeMap<String, ColumnMapping>,
}

impl Source {
    /// Whether this is the spine feed (its key is unique).
    pub fn is_spine(&self) -> bool {
        self.feed == SPINE_FEED
    }

    /// Every part of the delivery as a source of its own (the first is the
    /// source itself), each fetched and mapped with its own fields into the
    /// feed's one table.
    pub fn each_part(&self) -> Vec<Source> {
        let first = Source {
            parts: Vec::new(),
            ..self.clone()
        };
        let mut all = vec![first];
        for p in &self.parts {
            all.push(Source {
                kind: p.kind.clone(),
                merge: p.merge.clone(),
                key_fields: p.key_fields.clone(),
                name_field: p.name_field.clone(),
                record_id: p.record_id.clone(),
                columns: p.columns.clone(),
                parts: Vec::new(),
                ..self.clone()
            });
        }
        all
    }

    /// Whether any part of the feed hashes a value (it carries persons).
    pub fn hashes_persons(&self) -> bool {
        self.each_part()
            .iter()
            .any(|p| p.columns.values().any(ColumnMapping::hashes))
    }

    /// Whether every part is a full dump (`merge = "snapshot"`): a
    /// delivery is then landed as the snapshot itself.
    pub fn all_snapshots(&self) -> bool {
        self.merge == Merge::Snapshot && self.parts.iter().all(|p| p.merge == Merge::Snapshot)
    }

    /// The names of the parts, the first part named after the feed.
    pub fn part_names(&self) -> Vec<String> {
        std::iter::once(self.feed.clone())
            .chain(self.parts.iter().map(|p| p.name.clone()))
            .collect()
    }
}

/// The five evaluation dimensions of the city's indicators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dimension {
    /// 组织体系.
    Organization,
    /// 制度机制.
    Institutions,
    /// 运行管理.
    Operations,
    /// 清廉文化.
    Culture,
    /// 政社关系.
    Government,
}

impl Dimension {
    /// All five, in the order of the portrait.
    pub const ALL: [Dimension; 5] = [
        Dimension::Organization,
        Dimension::Institutions,
        Dimension::Operations,
        Dimension::Culture,
        Dimension::Government,
    ];

    /// The configuration name.
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Organization => "organization",
            Dimension::Institutions => "institutions",
            Dimension::Operations => "operations",
            Dimension::Culture => "culture",
            Dimension::Government => "government",
        }
    }

    /// Parses a configuration name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// The Chinese name of the city's indicators (组织体系 …).
    pub fn name_zh(self) -> &'static str {
        match self {
            Dimension::Organization => "组织体系",
            Dimension::Institutions => "制度机制",
            Dimension::Operations => "运行管理",
            Dimension::Culture => "清廉文化",
            Dimension::Government => "政社关系",
        }
    }
}

/// Which events of a rule count on a business date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleWindow {
    /// Events dated from 1 January of the business date's year to the date.
    CalendarYear,
    /// The SQL decides what is in force on the business date (listings,
    /// undelisted debtors); no date filter is added.
    InForce,
    /// Events dated within the five years up to the business date.
    FiveYears,
}

impl RuleWindow {
    /// The configuration names.
    pub const NAMES: &'static str = "calendar_year, in_force, five_years";

    /// Parses a configuration name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "calendar_year" => Some(Self::CalendarYear),
            "in_force" => Some(Self::InForce),
            "five_years" => Some(Self::FiveYears),
            _ => None,
        }
    }

    /// The inclusive date range of counted events, `None` for [`RuleWindow::InForce`].
    pub fn range(self, business_date: NaiveDate) -> Option<(NaiveDate, NaiveDate)> {
        match self {
            RuleWindow::CalendarYear => {
                NaiveDate::from_ymd_opt(business_date.year(), 1, 1).map(|s| (s, business_date))
            }
            RuleWindow::FiveYears => business_date
                .checked_sub_months(Months::new(60))
                .map(|s| (s, business_date)),
            RuleWindow::InForce => None,
        }
    }
}

/// Placeholders a rule's SQL may use, replaced by literals of the business date.
pub const RULE_PLACEHOLDERS: [&str; 4] = [
    "{business_date}",
    "{year_start}",
    "{report_year}",
    "{five_years_ago}",
];

/// A risk rule (`[[rule]]` of `pipelines/rules/<file>.toml`).
#[derive(Clone, PartialEq)]
pub struct Rule {
    /// Stable id (`OPS-03`).
    pub id: String,
    /// Human title (English, as published in `hits`).
    pub title: String,
    /// Chinese title for the people who read briefings, `explain` and the
    /// run report (`title_zh`).
    pub title_zh: Option<String>,
    /// Rule file (stem) it came from.
    pub file: String,
    /// Dimension deducted from.
    pub dimension: Dimension,
    /// Points deducted per hit in the year (0 for red lines and flags).
    pub points: u32,
    /// A hit makes the code red (一票否决).
    pub red_line: bool,
    /// Which events count.
    pub window: RuleWindow,
    /// A profile flag the rule sets (`zombie_suspect`).
    pub flag: Option<String>,
    /// Statutory or policy basis.
    pub basis: Option<String>,
    /// Columns of the query's output that name the event a hit evidences
    /// (a penalty decision, a listing, a revoked organization a person
    /// led): hits of one organization and rule sharing them are one event
    /// and deduct once. Default: the evidence record
    /// ([`DEFAULT_EVENT`]).
    pub event: Vec<String>,
    /// SQL with placeholders, returning the hit columns.
    pub sql: String,
}

// The rules version is a hash of this form: a translation of the title is
// not a rules change, so `title_zh` is left out and the published
// `rules_version` (in every profile, hit and code) stays what it was.
impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rule")
            .field("id", &self.id)
            .field("title", &self.title)
            .field("file", &self.file)
            .field("dimension", &self.dimension)
            .field("points", &self.points)
            .field("red_line", &self.red_line)
            .field("window", &self.window)
            .field("flag", &self.flag)
            .field("basis", &self.basis)
            .field("event", &self.event)
            .field("sql", &self.sql)
            .finish()
    }
}

impl Rule {
    /// The title people read: the Chinese one when the rule has it.
    pub fn title_for_people(&self) -> &str {
        self.title_zh.as_deref().unwrap_or(&self.title)
    }
}

/// A rule's event when it names none: its evidence record.
pub const DEFAULT_EVENT: [&str; 2] = ["source_feed", "source_record_id"];

/// Columns a rule's query returns, in order, with their types.
pub const HIT_COLUMNS: [(&str, DataType); 5] = [
    ("uscc", DataType::Utf8),
    ("source_feed", DataType::Utf8),
    ("source_record_id", DataType::Utf8),
    ("event_date", DataType::Date32),
    ("detail", DataType::Utf8),
];

/// Profile flags rules may set.
pub const FLAGS: [&str; 2] = ["zombie_suspect", "illegal_org_name_match"];

impl Rule {
    /// The SQL with its placeholders replaced for a business date.
    pub fn render_sql(&self, business_date: NaiveDate) -> String {
        let date = |d: NaiveDate| format!("DATE '{}'", d.format("%Y-%m-%d"));
        let year_start =
            NaiveDate::from_ymd_opt(business_date.year(), 1, 1).unwrap_or(business_date);
        let five = business_date
            .checked_sub_months(Months::new(60))
            .unwrap_or(business_date);
        self.sql
            .replace("{business_date}", &date(business_date))
            .replace("{year_start}", &date(year_start))
            .replace("{report_year}", &(business_date.year() - 1).to_string())
            .replace("{five_years_ago}", &date(five))
    }
}

/// An integrity-code colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Colour {
    /// 绿码.
    Green,
    /// 黄码.
    Yellow,
    /// 橙码.
    Orange,
    /// 红码.
    Red,
}

impl Colour {
    /// All colours, best first.
    pub const ALL: [Colour; 4] = [Colour::Green, Colour::Yellow, Colour::Orange, Colour::Red];

    /// The configuration and output name.
    pub fn as_str(self) -> &'static str {
        match self {
            Colour::Green => "green",
            Colour::Yellow => "yellow",
            Colour::Orange => "orange",
            Colour::Red => "red",
        }
    }

    /// Parses a configuration name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The Chinese name people read (绿码 …).
    pub fn name_zh(self) -> &'static str {
        match self {
            Colour::Green => "绿码",
            Colour::Yellow => "黄码",
            Colour::Orange => "橙码",
            Colour::Red => "红码",
        }
    }
}

/// One colour band of points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Band {
    /// The colour.
    pub colour: Colour,
    /// Lowest points in the band.
    pub min: u32,
    /// Highest points in the band.
    pub max: u32,
}

/// Points and bands of a pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Scoring {
    /// Points each organization starts the natural year with.
    pub start_points: u32,
    /// Bands covering `0..=start_points` exactly once.
    pub bands: Vec<Band>,
    /// Memory DataFusion may use for joining and scoring before it spills, MiB.
    pub memory_limit_mb: u64,
}

impl Scoring {
    /// The colour of a points total.
    pub fn colour_of(&self, points: u32) -> Colour {
        self.bands
            .iter()
            .find(|b| (b.min..=b.max).contains(&points))
            .map_or(Colour::Red, |b| b.colour)
    }
}

/// A pipeline: which feeds, which rules, where results go.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    /// Name (= file stem).
    pub name: String,
    /// What it does.
    pub description: String,
    /// Feeds, in fetch order.
    pub sources: Vec<String>,
    /// Rule files.
    pub rule_files: Vec<String>,
    /// Warehouse URL or path (environment references expanded at run time).
    pub warehouse: String,
    /// Points and bands.
    pub scoring: Scoring,
    /// Environment variable with the key of person-number hashes.
    pub person_hash_key_env: String,
    /// Delivery to the oversight platform, if configured.
    pub push: Option<Push>,
    /// Parquet drop to the platform's bucket, if configured.
    pub drop: Option<ParquetDrop>,
    /// Eligibility and filters of the demonstration candidates.
    pub demonstration: Demonstration,
    /// The public lookup: its address and what it shows.
    pub public: PublicLookup,
    /// Where the scoring stage's queries run.
    pub engine: Engine,
}

/// `[engine]` of a pipeline: where the scoring stage's queries run.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Engine {
    /// In the process that runs the pipeline (the default).
    #[default]
    Local,
    /// On an Apache DataFusion Ballista cluster (a build with the
    /// `ballista` feature; README "Scoring on a cluster").
    Ballista(BallistaEngine),
}

/// `[engine] kind = "ballista"`: the cluster scoring runs on.
#[derive(Debug, Clone, PartialEq)]
pub struct BallistaEngine {
    /// The scheduler, `df://host:port` (`${VAR}` expanded at run time).
    pub url: String,
    /// Partitions of each distributed query.
    pub target_partitions: usize,
    /// The name the scheduler shows for the run's jobs.
    pub job_name: String,
}

/// `[demonstration]` of a pipeline: who may be a demonstration organization
/// (示范典型) and the filters a candidate passes (DOMAIN.md §8).
#[derive(Debug, Clone, PartialEq)]
pub struct Demonstration {
    /// Green on every night of this many days of published versions.
    pub lookback_days: u32,
    /// No listing or penalty, and clean inspections, in this many years.
    pub clean_years: u32,
    /// Lowest valid rating that makes an organization eligible.
    pub min_rating: String,
    /// Name fragments of industry associations and chambers of commerce
    /// (social groups only).
    pub industry_name_patterns: Vec<String>,
    /// Project programmes that are functions entrusted by government.
    pub entrusted_programmes: Vec<String>,
    /// Candidates ranked (the city chooses 100).
    pub limit: u32,
}

impl Default for Demonstration {
    fn default() -> Self {
        Self {
            lookback_days: 365,
            clean_years: 3,
            min_rating: "4A".into(),
            industry_name_patterns: vec!["行业协会".into(), "商会".into(), "协会".into()],
            entrusted_programmes: vec!["government_purchase".into()],
            limit: 100,
        }
    }
}

/// `[public]` of a pipeline: the public lookup (一码通查).
#[derive(Debug, Clone, PartialEq)]
pub struct PublicLookup {
    /// Permanent base address of the public pages (`${VAR}` expanded when
    /// served); a QR code encodes `<base_url>/o/<USCC>`.
    pub base_url: String,
    /// Years an administrative penalty is shown after its decision.
    pub penalty_years: u32,
    /// Years a minor penalty is shown (credit repair shortens it).
    pub minor_penalty_years: u32,
    /// Penalty kinds that are minor.
    pub minor_penalty_kinds: Vec<String>,
}

impl Default for PublicLookup {
    fn default() -> Self {
        Self {
            base_url: "${QINGLIAN_PUBLIC_URL:-http://127.0.0.1:8080}".to_string(),
            penalty_years: 3,
            minor_penalty_years: 1,
            minor_penalty_kinds: vec!["warning".to_string()],
        }
    }
}

/// `[push]` of a pipeline: where and how code changes are delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct Push {
    /// The platform's intake URL (`${VAR}` expanded at run time; empty
    /// after expansion turns pushing off).
    pub endpoint: String,
    /// Environment variable holding the shared HMAC secret.
    pub secret_env: String,
    /// Records per request.
    pub batch_size: u32,
    /// Time allowed for one request, seconds.
    pub timeout_seconds: u64,
    /// Retries of one batch on connection errors, timeouts, 429 and 5xx.
    pub max_retries: u32,
    /// First retry delay, milliseconds (doubling, with jitter).
    pub retry_base_ms: u64,
    /// Longest total wait on one batch before it stays in the outbox.
    pub retry_budget_seconds: u64,
}

/// `[drop]` of a pipeline: the platform's bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct ParquetDrop {
    /// Object-store URL (`${VAR}` expanded at run time; empty turns it off).
    pub url: String,
}

/// Which business date a tick processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusinessDatePolicy {
    /// The calendar day before the tick, in the job's zone.
    PreviousDay,
    /// The tick's own calendar day, in the job's zone.
    SameDay,
}

/// What to do with dates missed while the scheduler was down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatchUp {
    /// Run nothing missed; wait for the next tick.
    Skip,
    /// Run only the latest missed date.
    Latest,
    /// Run every missed date, oldest first, at most this many.
    All {
        /// Most dates run.
        max_dates: u32,
    },
}

/// Which cron dialect an expression was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CronDialect {
    /// 5 fields: minute hour day month weekday (0 or 7 = Sunday).
    Crontab,
    /// 6 or 7 fields, seconds first (and an optional year).
    WithSeconds,
}

/// What a job does on its tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobTask {
    /// Runs its pipeline for the business date.
    Run,
    /// Writes the briefing of the month the business date falls in, from
    /// the pipeline's published versions.
    Brief,
}

/// A scheduled job (`jobs/<job>.toml`).
#[derive(Debug, Clone)]
pub struct Job {
    /// Name (= file stem).
    pub name: String,
    /// The pipeline it runs (or whose published versions it briefs).
    pub pipeline: String,
    /// What a tick does (`task`, `run` unless set).
    pub task: JobTask,
    /// The expression as written.
    pub cron: String,
    /// How it was read.
    pub cron_dialect: CronDialect,
    /// The parsed schedule, as crontab(5) means it.
    pub schedule: super::crontab::CronSchedule,
    /// Time zone of the schedule and the business date.
    pub timezone: Tz,
    /// Which date a tick processes.
    pub business_date: BusinessDatePolicy,
    /// Missed-date policy.
    pub catch_up: CatchUp,
    /// Longest a run may take.
    pub max_run_minutes: u32,
    /// Retries of a failed run.
    pub retries: u32,
    /// First retry delay, doubled each time.
    pub retry_backoff_seconds: u64,
}
