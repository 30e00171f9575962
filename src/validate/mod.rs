//! Stage 3, VALIDATE: raw records become canonical rows, or quarantined
//! rows with a reason.
//!
//! A [`Mapper`] is compiled once per feed from its source mapping and
//! canonical schema. For each raw batch it classifies the organization key
//! with the key library (resolving organization codes through the
//! registry), coerces every mapped field to its column type (the date
//! forms, 万元 amounts, enum labels, yes/no), replaces person identity
//! numbers by their keyed hash, evaluates SQL mappings, and splits the
//! batch into canonical rows and [`Quarantined`] rows, each naming the feed,
//! the record's position, the field and a reason code. A quarantined row's
//! original and message are redacted ([`redact`]): no identity number and,
//! for a feed that hashes person numbers, no personal value leaves in clear.

pub mod coerce;
pub(crate) mod dedup;
pub mod redact;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array, Int64Array,
    RecordBatch, StringArray, TimestampMillisecondArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::DFSchema;
use datafusion::physical_plan::PhysicalExpr;
use datafusion::prelude::SessionContext;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::keys::{self, KeyClass};
use crate::project::{ColumnMapping, ColumnSpec, FeedSchema, Source};
use crate::source::{RawBatch, RawRow};

/// Why a row was quarantined: stable codes for the data contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// The record could not be read field by field.
    MalformedRecord,
    /// No organization key and no name.
    MissingKey,
    /// A USCC failing its checks, no other key.
    InvalidKey,
    /// A USCC valid only after the I/O/Z/S/V repair: a person must confirm.
    RepairableKey,
    /// The record-id fields are empty.
    MissingRecordId,
    /// A required field is absent or empty.
    MissingValue,
    /// A value that does not parse as its column's type.
    BadValue,
    /// An enum label outside the mapping and the domain.
    BadEnum,
    /// A person number to hash, and no hash key configured.
    NoHashKey,
    /// The spine's key delivered again with other content (a stale copy).
    DuplicateKey,
}

impl Reason {
    /// The code stored in quarantine tables.
    pub fn code(self) -> &'static str {
        match self {
            Reason::MalformedRecord => "malformed_record",
            Reason::MissingKey => "missing_key",
            Reason::InvalidKey => "invalid_key",
            Reason::RepairableKey => "repairable_key",
            Reason::MissingRecordId => "missing_record_id",
            Reason::MissingValue => "missing_value",
            Reason::BadValue => "bad_value",
            Reason::BadEnum => "bad_enum",
            Reason::NoHashKey => "no_hash_key",
            Reason::DuplicateKey => "duplicate_key",
        }
    }
}

/// A rejected record.
#[derive(Debug, Clone, PartialEq)]
pub struct Quarantined {
    /// Where it was: file and line, page and index.
    pub position: String,
    /// The canonical column (or raw field) at fault.
    pub field: String,
    /// Why.
    pub reason: Reason,
    /// For people: found what, expected what (for a personal feed, the
    /// field and the reason only).
    pub message: String,
    /// The record as delivered, redacted ([`redact`]).
    pub original: String,
}

/// One mapped batch: the canonical rows and the rejected ones.
#[derive(Debug)]
pub struct Mapped {
    /// Canonical rows in the feed's Arrow schema.
    pub batch: RecordBatch,
    /// Rejected rows.
    pub quarantined: Vec<Quarantined>,
    /// For each canonical row, the index of its raw row in the batch.
    pub accepted: Vec<usize>,
}

/// Why a mapper could not be built.
#[derive(Debug, thiserror::Error)]
#[error("feed {feed}: {message}")]
pub struct MapperError {
    /// Feed.
    pub feed: String,
    /// What is wrong.
    pub message: String,
}

enum Plan {
    Null,
    Field {
        index: usize,
        scale: i64,
        labels: Option<BTreeMap<String, String>>,
        hash: bool,
    },
    Constant(String),
    Sql {
        expr: Arc<dyn PhysicalExpr>,
        scale: i64,
        labels: Option<BTreeMap<String, String>>,
        hash: bool,
        /// The raw fields the expression reads.
        reads: Vec<usize>,
    },
}

/// Compiled mapping of one feed.
pub struct Mapper {
    feed: String,
    schema: SchemaRef,
    own: Vec<ColumnSpec>,
    plans: Vec<Plan>,
    fields: Vec<String>,
    raw_schema: SchemaRef,
    /// The key fields in order of preference.
    keys: Vec<usize>,
    name: Option<usize>,
    record_id: Vec<usize>,
    hasher: Option<PersonHasher>,
    fetched_at: i64,
    /// The part of the feed this mapping reads (`source_part`).
    part: String,
    org_codes: Arc<keys::RegistryCodes>,
    /// Raw fields hashed (`hash = true`): their indices and names. A feed
    /// with any is personal: its quarantined originals keep only `kept`.
    hashed: Vec<(usize, String)>,
    /// Raw fields a personal feed's quarantined original keeps as delivered.
    kept: Vec<String>,
}

pub use crate::project::sql_fields;

/// Every raw field a source's SQL mappings read.
pub fn source_sql_fields(source: &Source) -> BTreeSet<String> {
    source
        .columns
        .values()
        .filter_map(|m| match m {
            ColumnMapping::Sql { sql, .. } => Some(sql_fields(sql)),
            _ => None,
        })
        .flatten()
        .collect()
}

/// The keyed hash of a person identity number: HMAC-SHA256 over the
/// number (white space and invisible characters removed, full-width forms
/// folded, upper case), hex.
pub fn person_hash(key: &[u8], number: &str) -> String {
    PersonHasher::new(key).map_or_else(String::new, |h| h.hash(number))
}

/// [`person_hash`] under one key, the key schedule computed once.
#[derive(Clone)]
struct PersonHasher(Hmac<Sha256>);

impl PersonHasher {
    fn new(key: &[u8]) -> Option<Self> {
        // HMAC takes keys of any length.
        <Hmac<Sha256> as Mac>::new_from_slice(key).ok().map(Self)
    }

    fn hash(&self, number: &str) -> String {
        let mut mac = self.0.clone();
        let trimmed = number.trim();
        if !trimmed.is_ascii() {
            // Full-width digits and invisible characters (a zero-width
            // space pasted into a 身份证号) must not make another person.
            use unicode_normalization::UnicodeNormalization;
            let clean: String = trimmed
                .nfkc()
                .filter(|c| !c.is_whitespace() && !keys::is_invisible(*c))
                .map(|c| c.to_ascii_uppercase())
                .collect();
            mac.update(clean.as_bytes());
        } else if trimmed
            .bytes()
            .any(|b| b.is_ascii_lowercase() || b.is_ascii_whitespace())
        {
            let clean: String = trimmed
                .chars()
                .filter(|c| !c.is_ascii_whitespace())
                .map(|c| c.to_ascii_uppercase())
                .collect();
            mac.update(clean.as_bytes());
        } else {
            mac.update(trimmed.as_bytes());
        }
        crate::digest::hex(&mac.finalize().into_bytes())
    }
}

impl Mapper {
    /// Compiles the mapping. `fields` is the raw field order the source
    /// delivers; `org_codes` maps organization codes to the registry's
    /// USCCs; `hash_key` is required when the mapping hashes a field.
    pub fn new(
        source: &Source,
        schema: &FeedSchema,
        fields: Vec<String>,
        hash_key: Option<Vec<u8>>,
        fetched_at: i64,
        org_codes: Arc<keys::RegistryCodes>,
    ) -> Result<Self, MapperError> {
        let err = |message: String| MapperError {
            feed: source.feed.clone(),
            message,
        };
        let position = |f: &str| fields.iter().position(|x| x == f);
        let raw_schema: SchemaRef = Arc::new(Schema::new(
            fields
                .iter()
                .map(|f| Field::new(f, DataType::Utf8, true))
                .collect::<Vec<_>>(),
        ));
        let ctx = SessionContext::new();
        keys::udf::register(&ctx);
        let df_schema =
            DFSchema::try_from(raw_schema.as_ref().clone()).map_err(|e| err(e.to_string()))?;
        let mut plans = Vec::new();
        for column in &schema.columns {
            let mapping = source.columns.get(&column.name);
            if mapping.is_some_and(ColumnMapping::hashes) && hash_key.is_none() {
                return Err(err(format!(
                    "column {} is hashed but no person hash key is configured",
                    column.name
                )));
            }
            let plan = match mapping {
                None => Plan::Null,
                Some(ColumnMapping::Constant(v)) => Plan::Constant(v.clone()),
                Some(ColumnMapping::Field {
                    field,
                    scale,
                    labels,
                    hash,
                }) => Plan::Field {
                    index: position(field)
                        .ok_or_else(|| err(format!("field {field:?} is not fetched")))?,
                    scale: *scale,
                    labels: labels.clone(),
                    hash: *hash,
                },
                Some(ColumnMapping::Sql {
                    sql,
                    scale,
                    labels,
                    hash,
                }) => {
                    let physical = crate::project::mapping_expr(&ctx, sql, &df_schema)
                        .map_err(|e| err(format!("column {}: sql {sql:?}: {e}", column.name)))?;
                    Plan::Sql {
                        expr: physical,
                        scale: *scale,
                        labels: labels.clone(),
                        hash: *hash,
                        reads: sql_fields(sql).iter().filter_map(|f| position(f)).collect(),
                    }
                }
            };
            plans.push(plan);
        }
        // The raw fields behind a hashed value: a personal feed's
        // quarantined original never shows them in clear.
        let mut hashed: Vec<(usize, String)> = plans
            .iter()
            .flat_map(|p| match p {
                Plan::Field {
                    index, hash: true, ..
                } => vec![*index],
                Plan::Sql {
                    reads, hash: true, ..
                } => reads.clone(),
                _ => Vec::new(),
            })
            .map(|i| (i, fields[i].clone()))
            .collect();
        hashed.sort();
        hashed.dedup();
        let kept: Vec<String> = source
            .key_fields
            .iter()
            .cloned()
            .chain(source.name_field.clone())
            .chain(source.record_id.iter().cloned())
            .filter(|f| !hashed.iter().any(|(_, h)| h == f))
            .collect();
        Ok(Self {
            hashed,
            kept,
            feed: source.feed.clone(),
            schema: schema.arrow_schema(),
            own: schema.columns.clone(),
            plans,
            keys: source
                .key_fields
                .iter()
                .map(|f| position(f).ok_or_else(|| err(format!("key field {f:?} is not fetched"))))
                .collect::<Result<_, _>>()?,
            name: source.name_field.as_deref().and_then(position),
            record_id: source
                .record_id
                .iter()
                .filter_map(|f| position(f))
                .collect(),
            raw_schema,
            fields,
            hasher: hash_key.as_deref().and_then(PersonHasher::new),
            fetched_at,
            part: source.feed.clone(),
            org_codes,
        })
    }

    /// The same mapping for a named part of the feed (the first part is
    /// named after the feed, as [`crate::project::Source::part_names`] says).
    pub fn for_part(mut self, name: &str) -> Self {
        self.part = name.to_string();
        self
    }

    /// The canonical schema rows are mapped to.
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// Maps one raw batch.
    pub fn map(&self, batch: &RawBatch) -> Result<Mapped, MapperError> {
        let sql_values = self.evaluate_sql(batch)?;
        let mut columns: Vec<Vec<Cell>> = (0..self.schema.fields().len())
            .map(|_| Vec::with_capacity(batch.rows.len()))
            .collect();
        let mut quarantined = Vec::new();
        let mut accepted = Vec::with_capacity(batch.rows.len());
        for (r, row) in batch.rows.iter().enumerate() {
            match self.map_row(row, r, &sql_values) {
                Ok(cells) => {
                    accepted.push(r);
                    for (column, cell) in columns.iter_mut().zip(cells) {
                        column.push(cell);
                    }
                }
                Err((field, reason, message)) => {
                    quarantined.push(self.quarantined(row, field, reason, &message));
                }
            }
        }
        let arrays = self
            .schema
            .fields()
            .iter()
            .zip(columns)
            .map(|(f, cells)| build_array(f.data_type(), cells))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|message| MapperError {
                feed: self.feed.clone(),
                message,
            })?;
        let batch = RecordBatch::try_new(self.schema(), arrays).map_err(|e| MapperError {
            feed: self.feed.clone(),
            message: e.to_string(),
        })?;
        Ok(Mapped {
            batch,
            quarantined,
            accepted,
        })
    }

    /// Delivered field names nothing maps, as the ledger may show them: in
    /// a feed with person numbers (where a header row gone missing makes a
    /// person's data the field names) only how many there are; elsewhere
    /// each name with any identity number in it hashed.
    pub fn shown_unmapped(&self, names: impl IntoIterator<Item = String>) -> Vec<String> {
        let names: Vec<String> = names.into_iter().collect();
        if !self.hashed.is_empty() {
            return match names.len() {
                0 => Vec::new(),
                n => vec![format!(
                    "({n} field name(s) withheld: this feed carries person numbers)"
                )],
            };
        }
        let hash = |n: &str| {
            self.hasher
                .as_ref()
                .map_or_else(|| redact::WITHHELD.to_string(), |h| h.hash(n))
        };
        names
            .iter()
            .map(|n| redact::scrub_identity_numbers(n, &hash).into_owned())
            .collect()
    }

    /// A rejected row, its original and message redacted ([`redact`]).
    pub fn quarantined(
        &self,
        row: &RawRow,
        field: String,
        reason: Reason,
        why: &str,
    ) -> Quarantined {
        let hash = |n: &str| {
            self.hasher
                .as_ref()
                .map_or_else(|| redact::WITHHELD.to_string(), |h| h.hash(n))
        };
        if self.hashed.is_empty() {
            let message = format!("feed {}: {}: {why}", self.feed, row.position);
            return Quarantined {
                position: row.position.clone(),
                field,
                reason,
                message: redact::scrub_identity_numbers(&message, &hash).into_owned(),
                original: redact::scrub_identity_numbers(&row.original, &hash).into_owned(),
            };
        }
        let clear: Vec<&str> = self
            .hashed
            .iter()
            .filter_map(|(i, _)| row.values.get(*i).and_then(|v| v.as_deref()))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect();
        let kept: Vec<&str> = self.kept.iter().map(String::as_str).collect();
        let hashed: Vec<&str> = self.hashed.iter().map(|(_, n)| n.as_str()).collect();
        let mapped: Vec<&str> = self.fields.iter().map(String::as_str).collect();
        let fields = redact::PersonalFields {
            kept: &kept,
            hashed: &hashed,
            mapped: &mapped,
        };
        let with_key = self
            .hasher
            .as_ref()
            .map(|_| &hash as &dyn Fn(&str) -> String);
        let original = redact::redact_original(
            &row.original,
            row.malformed.is_some(),
            &fields,
            &clear,
            with_key,
        );
        let at = if field.is_empty() {
            "the record".to_string()
        } else {
            field.clone()
        };
        let message = format!(
            "feed {}: {}: {at}: {}; the values of a feed with person numbers are not repeated here",
            self.feed,
            row.position,
            reason.code()
        );
        Quarantined {
            position: row.position.clone(),
            field,
            reason,
            message: redact::scrub_identity_numbers(&message, &hash).into_owned(),
            original: redact::scrub_identity_numbers(&original, &hash).into_owned(),
        }
    }

    /// SQL mappings evaluated over the whole raw batch, as text per row.
    /// The expression reads each raw field as a field mapping reads it:
    /// without surrounding white space, and an empty field as NULL (so
    /// `lpad("resultCode", 2, '0')` gives `02` for a padded `2 `, and
    /// `COALESCE("a", "b")` skips an empty `a`).
    fn evaluate_sql(
        &self,
        batch: &RawBatch,
    ) -> Result<Vec<Option<Vec<Option<String>>>>, MapperError> {
        let err = |message: String| MapperError {
            feed: self.feed.clone(),
            message,
        };
        if !self.plans.iter().any(|p| matches!(p, Plan::Sql { .. })) {
            return Ok(self.plans.iter().map(|_| None).collect());
        }
        let arrays: Vec<ArrayRef> = (0..self.fields.len())
            .map(|i| {
                Arc::new(StringArray::from(
                    batch
                        .rows
                        .iter()
                        .map(|r| {
                            r.values[i]
                                .as_deref()
                                .map(str::trim)
                                .filter(|s| !s.is_empty())
                        })
                        .collect::<Vec<_>>(),
                )) as ArrayRef
            })
            .collect();
        let raw = RecordBatch::try_new(Arc::clone(&self.raw_schema), arrays)
            .map_err(|e| err(e.to_string()))?;
        self.plans
            .iter()
            .map(|p| match p {
                Plan::Sql { expr, .. } => {
                    let value = expr
                        .evaluate(&raw)
                        .and_then(|v| v.into_array(raw.num_rows()))
                        .map_err(|e| err(format!("sql mapping: {e}")))?;
                    let text = cast(&value, &DataType::Utf8).map_err(|e| err(e.to_string()))?;
                    let text = text
                        .as_any()
                        .downcast_ref::<StringArray>()
                        .ok_or_else(|| err("sql mapping did not produce text".into()))?;
                    Ok(Some(text.iter().map(|v| v.map(str::to_string)).collect()))
                }
                _ => Ok(None),
            })
            .collect()
    }

    #[allow(clippy::type_complexity)]
    fn map_row(
        &self,
        row: &RawRow,
        r: usize,
        sql_values: &[Option<Vec<Option<String>>>],
    ) -> Result<Vec<Cell>, (String, Reason, String)> {
        if let Some(why) = &row.malformed {
            return Err((String::new(), Reason::MalformedRecord, why.clone()));
        }
        let text = |i: usize| {
            row.values[i]
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
        };
        // Of several key fields, the first that holds a good code (a USCC,
        // an organization code, a registration number) is the key, else
        // the first filled one (a bad code still quarantines, naming its
        // field); with none filled, the first names what is missing.
        let filled = || self.keys.iter().copied().filter(|i| text(*i).is_some());
        let good = |i: &usize| {
            self.keys.len() > 1
                && matches!(
                    keys::classify(text(*i).unwrap_or("")).class,
                    KeyClass::Valid | KeyClass::OrgCodeOnly | KeyClass::RegNoOnly
                )
        };
        let key = filled()
            .find(good)
            .or_else(|| filled().next())
            .or_else(|| self.keys.first().copied())
            .ok_or_else(|| {
                (
                    String::new(),
                    Reason::MissingKey,
                    "no key field".to_string(),
                )
            })?;
        let key_field = &self.fields[key];
        let raw_key = text(key);
        let name = self.name.and_then(text);
        let mut check = keys::classify(raw_key.unwrap_or(""));
        let mut subject_name = name.map(str::to_string);
        if check.class == KeyClass::Missing && subject_name.is_some() {
            // No code, but a name: the record identifies its subject by name.
            check.class = KeyClass::NameOnly;
        }
        let uscc = match check.class {
            KeyClass::Valid => Some(std::mem::take(&mut check.normalized)),
            KeyClass::OrgCodeOnly => self.org_codes.resolve_org_code(&check.normalized),
            KeyClass::RegNoOnly => None,
            KeyClass::NameOnly => {
                subject_name.get_or_insert_with(|| check.normalized.clone());
                None
            }
            KeyClass::Missing => None,
            KeyClass::BadChecksum | KeyClass::BadOrgCodeChecksum => {
                let why = check
                    .reason
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                return Err((
                    key_field.clone(),
                    Reason::InvalidKey,
                    format!("{key_field} {:?}: {why}", raw_key.unwrap_or("")),
                ));
            }
            KeyClass::Repaired => {
                return Err((
                    key_field.clone(),
                    Reason::RepairableKey,
                    format!(
                        "{key_field} {:?} is valid only as {} (I/O/Z/S/V read as 1/0/2/5/U); confirm before loading",
                        raw_key.unwrap_or(""),
                        check.normalized
                    ),
                ));
            }
        };
        // Record ids from normalized keys (a full-width and a plain form of
        // one code are one record), and never a person's number in clear:
        // a hashed field or an identity number goes as its keyed hash.
        let record_id: Vec<String> = self
            .record_id
            .iter()
            .filter_map(|i| {
                let v = text(*i)?;
                let hashed = self.hashed.iter().any(|(h, _)| h == i);
                Some(if *i == key {
                    match check.class {
                        KeyClass::Valid => uscc.clone().unwrap_or_else(|| v.to_string()),
                        KeyClass::OrgCodeOnly => check.normalized.clone(),
                        _ => v.to_string(),
                    }
                } else {
                    let hash = |n: &str| {
                        self.hasher
                            .as_ref()
                            .map_or_else(|| redact::WITHHELD.to_string(), |h| h.hash(n))
                    };
                    if hashed {
                        hash(v)
                    } else {
                        // `RY330106…`: a number inside an id goes as its hash.
                        redact::scrub_identity_numbers(v, &hash).into_owned()
                    }
                })
            })
            .collect();
        if record_id.is_empty() {
            return Err((
                self.record_id
                    .first()
                    .map(|i| self.fields[*i].clone())
                    .unwrap_or_default(),
                Reason::MissingRecordId,
                "record id fields are empty".into(),
            ));
        }
        let mut cells = Vec::with_capacity(self.schema.fields().len());
        let mut any_hashed_person = false;
        let mut own = Vec::with_capacity(self.own.len());
        for ((column, plan), sql) in self.own.iter().zip(&self.plans).zip(sql_values) {
            let value: Option<&str> = match plan {
                Plan::Null => None,
                Plan::Constant(v) => Some(v.as_str()),
                Plan::Field { index, .. } => text(*index),
                // Its result is read as a field's value is: trimmed.
                Plan::Sql { .. } => sql
                    .as_ref()
                    .and_then(|v| v[r].as_deref())
                    .map(str::trim)
                    .filter(|s| !s.is_empty()),
            };
            let field_name: &str = match plan {
                Plan::Field { index, .. } => &self.fields[*index],
                _ => &column.name,
            };
            let Some(value) = value else {
                if !column.nullable {
                    return Err((
                        column.name.clone(),
                        Reason::MissingValue,
                        format!("{field_name} is empty; {} requires a value", column.name),
                    ));
                }
                own.push(Cell::Null);
                continue;
            };
            let (scale, labels, hash) = match plan {
                Plan::Field {
                    scale,
                    labels,
                    hash,
                    ..
                }
                | Plan::Sql {
                    scale,
                    labels,
                    hash,
                    ..
                } => (*scale, labels.as_ref(), *hash),
                _ => (1, None, false),
            };
            if hash {
                let hasher = self.hasher.as_ref().ok_or_else(|| {
                    (
                        column.name.clone(),
                        Reason::NoHashKey,
                        "no person hash key".to_string(),
                    )
                })?;
                any_hashed_person = true;
                own.push(Cell::Str(hasher.hash(value)));
                continue;
            }
            let cell = coerce_cell(column, value, scale, labels).map_err(|(reason, why)| {
                (column.name.clone(), reason, format!("{field_name}: {why}"))
            })?;
            own.push(cell);
        }
        if uscc.is_none() && subject_name.is_none() && raw_key.is_none() && !any_hashed_person {
            let empty = if self.keys.len() > 1 {
                let names: Vec<&str> = self.keys.iter().map(|i| self.fields[*i].as_str()).collect();
                format!("{} are all empty", names.join(", "))
            } else {
                format!("{key_field} is empty")
            };
            return Err((
                key_field.clone(),
                Reason::MissingKey,
                format!("{empty} and the record names no organization or person"),
            ));
        }
        let name_key = subject_name.as_deref().map(keys::normalize_name);
        cells.push(uscc.map_or(Cell::Null, Cell::Str));
        cells.push(raw_key.map_or(Cell::Null, |k| Cell::Str(k.to_string())));
        cells.push(Cell::Str(check.class.as_str().to_string()));
        cells.push(raw_key.map_or(Cell::Null, |_| Cell::Str(key_field.clone())));
        cells.push(subject_name.map_or(Cell::Null, Cell::Str));
        cells.push(name_key.map_or(Cell::Null, Cell::Str));
        cells.push(Cell::Str(record_id.join("|")));
        cells.push(Cell::Str(self.part.clone()));
        cells.push(Cell::Ts(self.fetched_at));
        cells.extend(own);
        Ok(cells)
    }
}

/// One typed value on its way into an Arrow array.
#[derive(Debug, Clone)]
enum Cell {
    Null,
    Str(String),
    I64(i64),
    F64(f64),
    Bool(bool),
    Date(i32),
    Ts(i64),
    Dec(i128),
}

fn coerce_cell(
    column: &ColumnSpec,
    value: &str,
    scale: i64,
    labels: Option<&BTreeMap<String, String>>,
) -> Result<Cell, (Reason, String)> {
    let bad = |why: String| (Reason::BadValue, why);
    let below_zero = || {
        bad(format!(
            "found {value:?}, expected zero or more ({} takes no negative values)",
            column.name
        ))
    };
    Ok(match column.data_type {
        DataType::Utf8 => {
            let mapped = labels.and_then(|l| l.get(value)).cloned();
            let v = mapped.unwrap_or_else(|| value.to_string());
            if let Some(domain) = &column.domain
                && !domain.contains(&v)
            {
                return Err((
                    Reason::BadEnum,
                    format!("found {value:?}, expected one of {}", domain.join(", ")),
                ));
            }
            Cell::Str(v)
        }
        DataType::Int32 | DataType::Int64 => {
            let v = coerce::parse_int(value).map_err(bad)?;
            if column.data_type == DataType::Int32 && i32::try_from(v).is_err() {
                return Err(bad(format!(
                    "found {value:?}, expected a whole number from {} to {}",
                    i32::MIN,
                    i32::MAX
                )));
            }
            if v < 0 && !column.negative {
                return Err(below_zero());
            }
            Cell::I64(v)
        }
        DataType::Float64 => {
            let v = coerce::parse_float(value).map_err(bad)? * scale as f64;
            if !v.is_finite() {
                return Err(bad(format!("found {value:?}, expected a finite number")));
            }
            if v < 0.0 && !column.negative {
                return Err(below_zero());
            }
            // -0 is zero: it lands as 0, not as a negative value.
            Cell::F64(if v == 0.0 { 0.0 } else { v })
        }
        DataType::Boolean => Cell::Bool(coerce::parse_bool(value).map_err(bad)?),
        DataType::Date32 => {
            let d = coerce::parse_date(value).map_err(bad)?;
            if d == coerce::PLACEHOLDER_DATE {
                return placeholder(column, value);
            }
            within_dates(column, value, d)?;
            let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
            Cell::Date((d - epoch).num_days() as i32)
        }
        DataType::Timestamp(..) => {
            let ms = coerce::parse_timestamp(value).map_err(bad)?;
            let day = chrono::DateTime::from_timestamp_millis(ms)
                .map(|t| t.with_timezone(&chrono_tz::Asia::Shanghai).date_naive())
                .ok_or_else(|| bad(format!("found {value:?}, expected an instant")))?;
            if day == coerce::PLACEHOLDER_DATE {
                return placeholder(column, value);
            }
            within_dates(column, value, day)?;
            Cell::Ts(ms)
        }
        DataType::Decimal128(p, s) => {
            let v = coerce::parse_decimal(value, scale, s).map_err(bad)?;
            if v.unsigned_abs() >= 10u128.pow(u32::from(p)) {
                return Err(bad(format!(
                    "found {value:?}, expected at most {} digits before the decimal point",
                    p - s as u8
                )));
            }
            if v < 0 && !column.negative {
                return Err(below_zero());
            }
            Cell::Dec(v)
        }
        ref other => return Err(bad(format!("unsupported column type {other}"))),
    })
}

/// 1900-01-01, the exports' "no date": NULL where the column may be empty,
/// a missing value where it may not.
fn placeholder(column: &ColumnSpec, value: &str) -> Result<Cell, (Reason, String)> {
    if column.nullable {
        Ok(Cell::Null)
    } else {
        Err((
            Reason::MissingValue,
            format!(
                "found {value:?}, the placeholder for no date; {} requires a value",
                column.name
            ),
        ))
    }
}

fn within_dates(
    column: &ColumnSpec,
    value: &str,
    day: chrono::NaiveDate,
) -> Result<(), (Reason, String)> {
    let (earliest, latest) = column.dates;
    if day < earliest || day > latest {
        let read_as = if value.trim() == day.to_string() {
            String::new()
        } else {
            format!(" ({day})")
        };
        return Err((
            Reason::BadValue,
            format!(
                "found {value:?}{read_as}, expected a date from {earliest} to {latest} for {}",
                column.name
            ),
        ));
    }
    Ok(())
}

fn build_array(data_type: &DataType, cells: Vec<Cell>) -> Result<ArrayRef, String> {
    let wrong = |c: &Cell| format!("internal: {c:?} in a {data_type} column");
    macro_rules! collect {
        ($variant:ident, $array:ty) => {{
            let values = cells
                .iter()
                .map(|c| match c {
                    Cell::Null => Ok(None),
                    Cell::$variant(v) => Ok(Some(v.clone())),
                    other => Err(wrong(other)),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Arc::new(<$array>::from(values)) as ArrayRef
        }};
    }
    Ok(match data_type {
        DataType::Utf8 => {
            let values = cells
                .iter()
                .map(|c| match c {
                    Cell::Null => Ok(None),
                    Cell::Str(v) => Ok(Some(v.as_str())),
                    other => Err(wrong(other)),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Arc::new(StringArray::from(values)) as ArrayRef
        }
        DataType::Int64 => collect!(I64, Int64Array),
        DataType::Int32 => {
            let values = cells
                .iter()
                .map(|c| match c {
                    Cell::Null => Ok(None),
                    Cell::I64(v) => i32::try_from(*v)
                        .map(Some)
                        .map_err(|_| format!("{v} does not fit int32")),
                    other => Err(wrong(other)),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Arc::new(Int32Array::from(values))
        }
        DataType::Float64 => collect!(F64, Float64Array),
        DataType::Boolean => collect!(Bool, BooleanArray),
        DataType::Date32 => collect!(Date, Date32Array),
        DataType::Timestamp(_, tz) => {
            let values = cells
                .iter()
                .map(|c| match c {
                    Cell::Null => Ok(None),
                    Cell::Ts(v) => Ok(Some(*v)),
                    other => Err(wrong(other)),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Arc::new(TimestampMillisecondArray::from(values).with_timezone_opt(tz.clone()))
        }
        DataType::Decimal128(p, s) => {
            let values = cells
                .iter()
                .map(|c| match c {
                    Cell::Null => Ok(None),
                    Cell::Dec(v) => Ok(Some(*v)),
                    other => Err(wrong(other)),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Arc::new(
                Decimal128Array::from(values)
                    .with_precision_and_scale(*p, *s)
                    .map_err(|e| e.to_string())?,
            )
        }
        other => return Err(format!("unsupported column type {other}")),
    })
}
