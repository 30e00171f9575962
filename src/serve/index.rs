//! The in-memory index of one published version: every organization's
//! public facts and lifecycle, found by USCC or by a part of its
//! normalized name. Built only from the `public` and `public_events`
//! datasets of a manifest, each file checked against its size and SHA-256
//! from the very bytes that are then parsed, so what is served is exactly
//! what was published.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use chrono::NaiveDate;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Date32Type, Int32Type};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::names::{Names, fold};
use crate::catalog::Published;

/// Why a version could not be indexed; the server then keeps the one it has.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The manifest or a file it lists is missing, altered or unreadable.
    #[error("{0}")]
    Corrupt(String),
    /// The warehouse could not be read.
    #[error("{0}")]
    Store(String),
}

/// One lifecycle event, as `public_events` has it (fields that do not
/// apply to its kind are left out of the JSON).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// `registered`, `annual_inspection`, `rating`, `list_entry`, …
    pub kind: String,
    /// When it happened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_date: Option<NaiveDate>,
    /// Annual inspection: the year inspected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report_year: Option<i32>,
    /// Annual inspection: the conclusion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conclusion: Option<String>,
    /// Rating level, or the colour issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// Rating or colour: valid until.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<NaiveDate>,
    /// List entry or removal: which list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub list_type: Option<String>,
    /// The reason given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Decision number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_no: Option<String>,
    /// Penalty: its kind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub penalty_kind: Option<String>,
    /// Penalty: amount in yuan, as a decimal string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    /// Deciding body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
    /// List entry: removed on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed_on: Option<NaiveDate>,
}

/// One organization's public facts (a `public` row) and its events.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Org {
    /// Unified social credit code.
    pub uscc: String,
    /// Registered name.
    pub name: String,
    /// social_group, social_service, foundation or other.
    pub org_type: String,
    /// Registration authority.
    pub registrar: Option<String>,
    /// Supervising unit.
    pub supervisor: Option<String>,
    /// The legal representative's name.
    pub legal_representative: Option<String>,
    /// Date of registration.
    pub established_on: Option<NaiveDate>,
    /// Registry status.
    pub status: String,
    /// Date of suspension, revocation or deregistration.
    pub status_changed_on: Option<NaiveDate>,
    /// Registered domicile.
    pub domicile: Option<String>,
    /// Registered funds in yuan, as a decimal string.
    pub registered_funds: Option<String>,
    /// A charitable organization.
    pub charity: Option<bool>,
    /// Holds public fundraising qualification.
    pub public_fundraising: Option<bool>,
    /// Integrity colour; none when deregistered.
    pub colour: Option<String>,
    /// Business date the colour was issued for.
    pub colour_issued_on: Option<NaiveDate>,
    /// The colour is valid until.
    pub colour_valid_until: Option<NaiveDate>,
    /// Business date of the data.
    pub as_of: NaiveDate,
    /// Lifecycle, oldest first.
    pub events: Vec<Event>,
}

/// One published version, indexed.
#[derive(Debug, Default)]
pub struct Index {
    /// The run id of the version (`ETag` of the API), none before any
    /// version was loaded.
    pub version: Option<String>,
    /// Its business date.
    pub business_date: Option<NaiveDate>,
    /// Its manifest, relative to the warehouse.
    pub manifest: Option<String>,
    /// Business date and attempt: a version is newer when this is greater.
    pub key: Option<(NaiveDate, u32)>,
    orgs: Vec<Org>,
    by_uscc: HashMap<String, u32>,
    /// The names, indexed for search by a part.
    names: Names,
    /// How long indexing the names took.
    names_built_in: std::time::Duration,
}

/// The size of the name index of a version and its build time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameIndexStats {
    /// Bytes held: the normalized and folded names, the posting lists and
    /// the table of grams.
    pub bytes: usize,
    /// Distinct grams (characters and pairs of adjacent characters).
    pub grams: usize,
    /// Posting-list entries, over all grams.
    pub postings: usize,
    /// Time to build it (normalize, fold, sort, post).
    pub build: std::time::Duration,
}

/// At most this many search results are ever returned (over all pages).
pub const MAX_RESULTS: usize = 200;

/// A page of search results.
#[derive(Debug, Clone, Serialize)]
pub struct SearchPage<'a> {
    /// The organizations of the page.
    pub orgs: Vec<&'a Org>,
    /// Matches found, capped at [`MAX_RESULTS`].
    pub total: usize,
    /// Whether more matched than [`MAX_RESULTS`].
    pub truncated: bool,
}

impl Index {
    /// An organization by its (valid, normalized) USCC.
    pub fn get(&self, uscc: &str) -> Option<&Org> {
        self.by_uscc
            .get(uscc)
            .and_then(|&i| self.orgs.get(i as usize))
    }

    /// Organizations indexed.
    pub fn len(&self) -> usize {
        self.orgs.len()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.orgs.is_empty()
    }

    /// Every organization, by USCC.
    pub fn orgs(&self) -> &[Org] {
        &self.orgs
    }

    /// The name index's size and build time (`BENCHMARKS.md`).
    pub fn name_index_stats(&self) -> NameIndexStats {
        let (grams, postings) = self.names.sizes();
        NameIndexStats {
            bytes: self.names.bytes(),
            grams,
            postings,
            build: self.names_built_in,
        }
    }

    /// Any organization (the demo prints its address).
    pub fn sample(&self) -> Option<&Org> {
        self.orgs.iter().find(|o| o.colour.is_some())
    }

    /// Organizations whose normalized name contains the normalized query:
    /// the exact name first, then names starting with it, then the rest,
    /// each by name; `page` from 0, `per_page` each.
    pub fn search(&self, query: &str, page: usize, per_page: usize) -> SearchPage<'_> {
        let q = crate::keys::normalize_name(query);
        if q.is_empty() {
            return SearchPage {
                orgs: Vec::new(),
                total: 0,
                truncated: false,
            };
        }
        let found = self.names.search(&q, &fold(query));
        let total = found.orgs.len();
        let orgs = found
            .orgs
            .iter()
            .skip(page.saturating_mul(per_page))
            .take(per_page)
            .filter_map(|i| self.orgs.get(*i as usize))
            .collect();
        SearchPage {
            orgs,
            total,
            truncated: found.truncated,
        }
    }

    /// Indexes a version: reads `public` and `public_events` through the
    /// manifest, each file checked against its checksum.
    pub async fn load(published: &Published) -> Result<Self, IndexError> {
        let store = published.store();
        let prefix = published.prefix();
        let mut orgs = Vec::new();
        for batch in verified_batches(store, prefix, published, "public").await? {
            read_orgs(&batch, &mut orgs).map_err(|e| corrupt(published, "public", &e))?;
        }
        let mut by_uscc = HashMap::with_capacity(orgs.len());
        for (i, o) in orgs.iter().enumerate() {
            let i = u32::try_from(i)
                .map_err(|_| corrupt(published, "public", "more than 4 billion rows"))?;
            if by_uscc.insert(o.uscc.clone(), i).is_some() {
                return Err(corrupt(
                    published,
                    "public",
                    &format!("{} appears twice", o.uscc),
                ));
            }
        }
        for batch in verified_batches(store, prefix, published, "public_events").await? {
            read_events(&batch, &by_uscc, &mut orgs)
                .map_err(|e| corrupt(published, "public_events", &e))?;
        }
        let t = std::time::Instant::now();
        let names = Names::new(orgs.iter().map(|o| o.name.as_str()));
        let names_built_in = t.elapsed();
        let m = &published.manifest;
        Ok(Self {
            version: Some(m.run_id.clone()),
            business_date: Some(m.business_date),
            manifest: Some(published.path.clone()),
            key: Some((m.business_date, m.attempt)),
            orgs,
            by_uscc,
            names,
            names_built_in,
        })
    }
}

fn corrupt(p: &Published, dataset: &str, e: &str) -> IndexError {
    IndexError::Corrupt(format!("manifest {}: dataset {dataset}: {e}", p.path))
}

/// A dataset's batches, each file's bytes checked against the manifest
/// before they are parsed.
async fn verified_batches(
    store: &Arc<dyn ObjectStore>,
    prefix: &Path,
    published: &Published,
    dataset: &str,
) -> Result<Vec<RecordBatch>, IndexError> {
    let entry = published
        .dataset(dataset)
        .map_err(|e| IndexError::Corrupt(e.to_string()))?;
    let mut out = Vec::new();
    for f in &entry.files {
        let path = crate::store::join(prefix, &f.path);
        let bytes: Bytes = store
            .get(&path)
            .await
            .map_err(|e| IndexError::Store(format!("{path}: {e}")))?
            .bytes()
            .await
            .map_err(|e| IndexError::Store(format!("{path}: {e}")))?;
        let sha = crate::digest::hex(&Sha256::digest(&bytes));
        if sha != f.sha256 || bytes.len() as u64 != f.bytes {
            return Err(IndexError::Corrupt(format!(
                "{path}: checksum {sha} ({} bytes) does not match manifest {} ({}, {} bytes)",
                bytes.len(),
                published.path,
                f.sha256,
                f.bytes
            )));
        }
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .and_then(|b| b.build())
            .map_err(|e| IndexError::Corrupt(format!("{path}: {e}")))?;
        for batch in reader {
            out.push(batch.map_err(|e| IndexError::Corrupt(format!("{path}: {e}")))?);
        }
    }
    Ok(out)
}

/// Typed access to a batch's columns by name.
struct Columns<'a> {
    batch: &'a RecordBatch,
    text: HashMap<&'static str, ArrayRef>,
}

impl<'a> Columns<'a> {
    fn new(batch: &'a RecordBatch, text: &[&'static str]) -> Result<Self, String> {
        let mut map = HashMap::new();
        for name in text {
            let c = batch
                .column_by_name(name)
                .ok_or_else(|| format!("no column {name}"))?;
            map.insert(*name, cast(c, &DataType::Utf8).map_err(|e| e.to_string())?);
        }
        Ok(Self { batch, text: map })
    }

    fn text(&self, name: &str, row: usize) -> Option<String> {
        let c = self.text.get(name)?.as_string::<i32>();
        (!c.is_null(row)).then(|| c.value(row).to_string())
    }

    fn required(&self, name: &str, row: usize) -> Result<String, String> {
        self.text(name, row)
            .ok_or_else(|| format!("row {row}: {name} is null"))
    }

    fn column(&self, name: &str) -> Result<&ArrayRef, String> {
        self.batch
            .column_by_name(name)
            .ok_or_else(|| format!("no column {name}"))
    }

    fn date(&self, name: &str, row: usize) -> Result<Option<NaiveDate>, String> {
        let c = self.column(name)?;
        let c = c
            .as_primitive_opt::<Date32Type>()
            .ok_or_else(|| format!("{name} is not a date column"))?;
        Ok((!c.is_null(row))
            .then(|| crate::score::date_of_days(c.value(row)))
            .flatten())
    }

    fn int(&self, name: &str, row: usize) -> Result<Option<i32>, String> {
        let c = self.column(name)?;
        let c = c
            .as_primitive_opt::<Int32Type>()
            .ok_or_else(|| format!("{name} is not an int32 column"))?;
        Ok((!c.is_null(row)).then(|| c.value(row)))
    }

    fn flag(&self, name: &str, row: usize) -> Result<Option<bool>, String> {
        let c = self.column(name)?;
        let c = c
            .as_boolean_opt()
            .ok_or_else(|| format!("{name} is not a boolean column"))?;
        Ok((!c.is_null(row)).then(|| c.value(row)))
    }
}

fn read_orgs(batch: &RecordBatch, out: &mut Vec<Org>) -> Result<(), String> {
    let c = Columns::new(
        batch,
        &[
            "uscc",
            "name",
            "org_type",
            "registrar",
            "supervisor",
            "legal_representative",
            "status",
            "domicile",
            "registered_funds",
            "colour",
        ],
    )?;
    for r in 0..batch.num_rows() {
        out.push(Org {
            uscc: c.required("uscc", r)?,
            name: c.required("name", r)?,
            org_type: c.required("org_type", r)?,
            registrar: c.text("registrar", r),
            supervisor: c.text("supervisor", r),
            legal_representative: c.text("legal_representative", r),
            established_on: c.date("established_on", r)?,
            status: c.required("status", r)?,
            status_changed_on: c.date("status_changed_on", r)?,
            domicile: c.text("domicile", r),
            registered_funds: c.text("registered_funds", r),
            charity: c.flag("charity", r)?,
            public_fundraising: c.flag("public_fundraising", r)?,
            colour: c.text("colour", r),
            colour_issued_on: c.date("colour_issued_on", r)?,
            colour_valid_until: c.date("colour_valid_until", r)?,
            as_of: c
                .date("as_of", r)?
                .ok_or_else(|| format!("row {r}: as_of is null"))?,
            events: Vec::new(),
        });
    }
    Ok(())
}

fn read_events(
    batch: &RecordBatch,
    by_uscc: &HashMap<String, u32>,
    orgs: &mut [Org],
) -> Result<(), String> {
    let c = Columns::new(
        batch,
        &[
            "uscc",
            "kind",
            "conclusion",
            "level",
            "list_type",
            "reason",
            "decision_no",
            "penalty_kind",
            "amount",
            "authority",
        ],
    )?;
    for r in 0..batch.num_rows() {
        let uscc = c.required("uscc", r)?;
        let Some(&i) = by_uscc.get(&uscc) else {
            return Err(format!("row {r}: {uscc} is not in dataset public"));
        };
        let event = Event {
            kind: c.required("kind", r)?,
            event_date: c.date("event_date", r)?,
            report_year: c.int("report_year", r)?,
            conclusion: c.text("conclusion", r),
            level: c.text("level", r),
            valid_until: c.date("valid_until", r)?,
            list_type: c.text("list_type", r),
            reason: c.text("reason", r),
            decision_no: c.text("decision_no", r),
            penalty_kind: c.text("penalty_kind", r),
            amount: c.text("amount", r),
            authority: c.text("authority", r),
            removed_on: c.date("removed_on", r)?,
        };
        if let Some(o) = orgs.get_mut(i as usize) {
            o.events.push(event);
        }
    }
    Ok(())
}
