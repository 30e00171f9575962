//! `qinglian brief`: the monthly and half-yearly briefings of the member
//! units of the working mechanism (DOMAIN.md §8), as Excel workbooks and
//! self-contained HTML pages, for the city, each district or county (by the
//! registrar's division) and each supervising unit.
//!
//! Everything comes from published, verified versions: the current
//! manifest of every business date of the period (each file checked
//! against its SHA-256 before it is read, [`Published::read_batches`]), and
//! the last one before the period for the comparison. Landing data is never
//! read. The warnings tables appear only when a version publishes a
//! `warnings` dataset.
//!
//! [`tables`] computes the figures, [`xlsx`] and [`html`] lay them out.

mod html;
mod tables;
mod xlsx;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{Datelike, NaiveDate};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::catalog::Published;
use crate::project::{Colour, Project};
use tables::{
    ChangeRow, Data, DemoRow, Dropout, HitRow, Org, RunRow, Scope, ScopeBrief, WarningRow,
};

/// Why a briefing could not be written.
#[derive(Debug, thiserror::Error)]
pub enum BriefError {
    /// The period, the scope or the project is not usable.
    #[error("{0}")]
    Usage(String),
    /// Nothing is published for the period.
    #[error("{0}")]
    NothingPublished(String),
    /// The warehouse or the output could not be read or written, or a
    /// published file failed its check.
    #[error("{0}")]
    Warehouse(String),
}

fn warehouse(e: impl std::fmt::Display) -> BriefError {
    BriefError::Warehouse(e.to_string())
}

/// A briefing period: a month or a half year.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    /// As written: `2026-11` or `2026H2`.
    pub label: String,
    /// First day.
    pub start: NaiveDate,
    /// Last day.
    pub end: NaiveDate,
    /// 月报 or 半年报.
    pub half: bool,
}

impl Period {
    /// `YYYY-MM`.
    pub fn month(s: &str) -> Result<Self, BriefError> {
        let bad = || BriefError::Usage(format!("--month {s:?}: expected a month as YYYY-MM"));
        let (y, m) = s.split_once('-').ok_or_else(bad)?;
        let (y, m): (i32, u32) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        let start = NaiveDate::from_ymd_opt(y, m, 1).ok_or_else(bad)?;
        let end = start
            .checked_add_months(chrono::Months::new(1))
            .and_then(|d| d.pred_opt())
            .ok_or_else(bad)?;
        Ok(Self {
            label: format!("{y:04}-{m:02}"),
            start,
            end,
            half: false,
        })
    }

    /// `YYYYH1` or `YYYYH2`.
    pub fn half(s: &str) -> Result<Self, BriefError> {
        let bad = || BriefError::Usage(format!("--half {s:?}: expected YYYYH1 or YYYYH2"));
        let (y, h) = s.split_once(['H', 'h']).ok_or_else(bad)?;
        let y: i32 = y.parse().map_err(|_| bad())?;
        let (from, to) = match h {
            "1" => ((1, 1), (6, 30)),
            "2" => ((7, 1), (12, 31)),
            _ => return Err(bad()),
        };
        Ok(Self {
            label: format!("{y:04}H{h}"),
            start: NaiveDate::from_ymd_opt(y, from.0, from.1).ok_or_else(bad)?,
            end: NaiveDate::from_ymd_opt(y, to.0, to.1).ok_or_else(bad)?,
            half: true,
        })
    }

    /// The month a date falls in.
    pub fn month_of(d: NaiveDate) -> Self {
        let start = d.with_day(1).unwrap_or(d);
        let end = start
            .checked_add_months(chrono::Months::new(1))
            .and_then(|d| d.pred_opt())
            .unwrap_or(d);
        Self {
            label: format!("{:04}-{:02}", d.year(), d.month()),
            start,
            end,
            half: false,
        }
    }

    /// The period for people: `2026年11月`, `2026年下半年`.
    pub fn name_zh(&self) -> String {
        if self.half {
            let h = if self.start.month() == 1 {
                "上"
            } else {
                "下"
            };
            format!("{}年{h}半年", self.start.year())
        } else {
            format!("{}年{}月", self.start.year(), self.start.month())
        }
    }

    /// The briefing's title.
    pub fn title_zh(&self) -> String {
        format!(
            "杭州市清廉社会组织建设{}（{}）",
            if self.half {
                "半年工作通报"
            } else {
                "月度通报"
            },
            self.name_zh()
        )
    }
}

/// Which scopes to write besides the city.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum By {
    /// Every district and county, by the registrar's division.
    District,
    /// Every supervising unit.
    Unit,
}

/// `qinglian brief`.
#[derive(Debug, clap::Args)]
pub struct BriefArgs {
    /// The month to brief (YYYY-MM).
    #[arg(long, conflicts_with = "half", required_unless_present = "half")]
    pub month: Option<String>,
    /// The half year to brief (YYYYH1 or YYYYH2), for the working meeting.
    #[arg(long)]
    pub half: Option<String>,
    /// Besides the city: every district or every supervising unit (default both).
    #[arg(long, value_enum)]
    pub by: Option<By>,
    /// Only this district (division code, e.g. 330102) besides the city.
    #[arg(long, conflicts_with = "by")]
    pub district: Option<String>,
    /// Output folder (default: the warehouse's `briefs/<period>/`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Project directory.
    #[arg(long, default_value = ".")]
    pub project: PathBuf,
    /// Pipeline whose published versions to read.
    #[arg(long, default_value = "nightly")]
    pub pipeline: String,
    /// Warehouse URL, overriding the pipeline's.
    #[arg(long)]
    pub warehouse: Option<String>,
}

/// Which scopes a briefing covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scopes {
    /// The city, every district and every unit.
    All,
    /// The city and every district, or every unit.
    By(By),
    /// The city and one district.
    District(String),
    /// The city and the district with the most organizations (the demo).
    LargestDistrict,
}

/// What was written.
#[derive(Debug, Clone)]
pub struct Written {
    /// Where: a folder, or a warehouse URL and path.
    pub location: String,
    /// The files written, relative to it (index.html first).
    pub files: Vec<String>,
    /// The period.
    pub period: Period,
    /// Published nights of the period read.
    pub nights: usize,
    /// The last business date of them.
    pub end: NaiveDate,
}

/// Runs `qinglian brief`.
pub async fn execute(args: BriefArgs) -> Result<Written, BriefError> {
    let period = match (&args.month, &args.half) {
        (Some(m), None) => Period::month(m)?,
        (None, Some(h)) => Period::half(h)?,
        _ => {
            return Err(BriefError::Usage(
                "give --month YYYY-MM or --half YYYYH1|YYYYH2".into(),
            ));
        }
    };
    let project = Project::load(&args.project).map_err(|e| {
        BriefError::Usage(format!(
            "{}: {e}: {}",
            args.project.display(),
            e.0.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        ))
    })?;
    let pipeline = project.pipelines.get(&args.pipeline).ok_or_else(|| {
        BriefError::Usage(format!("no pipeline {:?} in pipelines/", args.pipeline))
    })?;
    let (store, prefix, url) =
        crate::run::open_warehouse(pipeline, args.warehouse.as_deref(), &Default::default())
            .map_err(warehouse)?;
    let scopes = match (args.by, args.district) {
        (Some(by), _) => Scopes::By(by),
        (None, Some(d)) => Scopes::District(d),
        (None, None) => Scopes::All,
    };
    let (out_store, out_prefix, location) = match &args.out {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| BriefError::Warehouse(format!("{}: {e}", dir.display())))?;
            let dir_text = dir.to_str().ok_or_else(|| {
                BriefError::Usage(format!("--out {}: not a UTF-8 path", dir.display()))
            })?;
            let (s, p) = crate::store::open_for_write(dir_text).map_err(warehouse)?;
            (s, p, dir.display().to_string())
        }
        None => {
            let rel = crate::layout::briefs(&period.label);
            let p = crate::store::join(&prefix, &rel);
            (
                Arc::clone(&store),
                p,
                format!("{}/{rel}", url.trim_end_matches('/')),
            )
        }
    };
    brief(
        &project,
        &store,
        &prefix,
        &period,
        &scopes,
        &out_store,
        &out_prefix,
        location,
    )
    .await
}

/// Writes the briefing of a period from a warehouse's published versions
/// into `out` (what `brief`, the monthly job and the demo call).
#[allow(clippy::too_many_arguments)]
pub async fn brief(
    project: &Project,
    store: &Arc<dyn ObjectStore>,
    prefix: &Path,
    period: &Period,
    scopes: &Scopes,
    out_store: &Arc<dyn ObjectStore>,
    out_prefix: &Path,
    location: String,
) -> Result<Written, BriefError> {
    let data = load(store, prefix, period).await?;
    let (districts, units) = data.scopes();
    let mut wanted = vec![(Scope::City, "city".to_string())];
    let add_districts = |w: &mut Vec<(Scope, String)>| {
        for d in &districts {
            w.push((Scope::District(d.clone()), format!("district-{d}")));
        }
    };
    let add_units = |w: &mut Vec<(Scope, String)>| {
        for (i, u) in units.iter().enumerate() {
            w.push((Scope::Unit(u.clone()), format!("unit-{:03}", i + 1)));
        }
    };
    match scopes {
        Scopes::All => {
            add_districts(&mut wanted);
            add_units(&mut wanted);
        }
        Scopes::By(By::District) => add_districts(&mut wanted),
        Scopes::By(By::Unit) => {
            if !data.units_known {
                return Err(BriefError::Usage(format!(
                    "--by unit: the version of {} publishes no demonstration dataset, which carries the supervising units",
                    data.end
                )));
            }
            add_units(&mut wanted);
        }
        Scopes::LargestDistrict => {
            let mut counts: HashMap<&str, usize> = HashMap::new();
            for o in data.orgs.values().filter(|o| o.colour.is_some()) {
                if let Some(d) = &o.division {
                    *counts.entry(d.as_str()).or_default() += 1;
                }
            }
            if let Some((d, _)) = counts
                .into_iter()
                .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
            {
                wanted.push((Scope::District(d.to_string()), format!("district-{d}")));
            }
        }
        Scopes::District(d) => {
            if !districts.contains(d) {
                return Err(BriefError::Usage(format!(
                    "--district {d:?}: no organization with a colour is registered there on {}; districts: {}",
                    data.end,
                    districts.iter().cloned().collect::<Vec<_>>().join(", ")
                )));
            }
            wanted.push((Scope::District(d.clone()), format!("district-{d}")));
        }
    }
    let briefs: Vec<ScopeBrief> = wanted
        .into_iter()
        .map(|(scope, stem)| tables::scope_brief(&data, project, scope, stem))
        .collect();
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    files.push((
        "index.html".into(),
        html::index(&data, &briefs)?.into_bytes(),
    ));
    for b in &briefs {
        files.push((format!("{}.xlsx", b.stem), xlsx::workbook(&data, b)?));
        files.push((
            format!("{}.html", b.stem),
            html::page(&data, b)?.into_bytes(),
        ));
    }
    for (name, bytes) in &files {
        let path = crate::store::join(out_prefix, name);
        out_store
            .put(&path, PutPayload::from(bytes.clone()))
            .await
            .map_err(|e| BriefError::Warehouse(format!("{path}: {e}")))?;
    }
    Ok(Written {
        location,
        files: files.into_iter().map(|(n, _)| n).collect(),
        period: period.clone(),
        nights: data.nights.len(),
        end: data.end,
    })
}

fn text_column(b: &RecordBatch, name: &str) -> Result<Vec<Option<String>>, BriefError> {
    let c = b
        .column_by_name(name)
        .ok_or_else(|| BriefError::Warehouse(format!("published data has no column {name}")))?;
    let c = cast(c, &DataType::Utf8).map_err(warehouse)?;
    let c = c.as_string::<i32>();
    Ok((0..c.len())
        .map(|r| (!c.is_null(r)).then(|| c.value(r).to_string()))
        .collect())
}

fn int_column(b: &RecordBatch, name: &str) -> Result<Vec<Option<i64>>, BriefError> {
    let c = b
        .column_by_name(name)
        .ok_or_else(|| BriefError::Warehouse(format!("published data has no column {name}")))?;
    let c = cast(c, &DataType::Int64).map_err(warehouse)?;
    let c = c.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
    Ok((0..c.len())
        .map(|r| (!c.is_null(r)).then(|| c.value(r)))
        .collect())
}

fn float_column(b: &RecordBatch, name: &str) -> Result<Vec<Option<f64>>, BriefError> {
    let c = b
        .column_by_name(name)
        .ok_or_else(|| BriefError::Warehouse(format!("published data has no column {name}")))?;
    let c = cast(c, &DataType::Float64).map_err(warehouse)?;
    let c = c.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
    Ok((0..c.len())
        .map(|r| (!c.is_null(r)).then(|| c.value(r)))
        .collect())
}

fn is_true(v: &Option<String>) -> bool {
    v.as_deref() == Some("true")
}

/// The organizations of a version's profiles: USCC → (name, division, colour).
async fn profiles_of(
    p: &Published,
) -> Result<Vec<(String, String, Option<String>, Option<String>)>, BriefError> {
    let mut out = Vec::new();
    for b in &p.read_batches("profiles").await.map_err(warehouse)? {
        let (u, n, d, c) = (
            text_column(b, "uscc")?,
            text_column(b, "name")?,
            text_column(b, "registrar_division")?,
            text_column(b, "colour")?,
        );
        for (((u, n), d), c) in u.into_iter().zip(n).zip(d).zip(c) {
            out.push((u.unwrap_or_default(), n.unwrap_or_default(), d, c));
        }
    }
    Ok(out)
}

/// Reads what a briefing needs from the current version of every business
/// date of the period and from the last version before it.
pub(crate) async fn load(
    store: &Arc<dyn ObjectStore>,
    prefix: &Path,
    period: &Period,
) -> Result<Data, BriefError> {
    let mut versions = Vec::new();
    let mut day = period.start;
    while day <= period.end {
        if let Some(p) = Published::latest(store, prefix, day)
            .await
            .map_err(warehouse)?
        {
            versions.push(p);
        }
        day = match day.succ_opt() {
            Some(d) => d,
            None => break,
        };
    }
    let Some(last) = versions.last() else {
        return Err(BriefError::NothingPublished(format!(
            "nothing published for {} ({} to {}) in the warehouse",
            period.label, period.start, period.end
        )));
    };
    let end = last.manifest.business_date;
    let previous = Published::latest_before(store, prefix, period.start)
        .await
        .map_err(warehouse)?;

    // The end of the period: organizations, their units, hits, candidates.
    let mut orgs: HashMap<String, Org> = HashMap::new();
    for (u, _, division, colour) in profiles_of(last).await? {
        orgs.insert(
            u,
            Org {
                division,
                unit: None,
                colour,
            },
        );
    }
    let has = |p: &Published, d: &str| p.manifest.datasets.contains_key(d);
    let units_known = has(last, "demonstration");
    let mut demonstration = None;
    if units_known {
        let mut rows = Vec::new();
        for b in &last
            .read_batches("demonstration")
            .await
            .map_err(warehouse)?
        {
            let (u, n, sup, as_, rank, short, total) = (
                text_column(b, "uscc")?,
                text_column(b, "name")?,
                text_column(b, "supervisor")?,
                text_column(b, "eligible_as")?,
                int_column(b, "rank")?,
                text_column(b, "shortlisted")?,
                float_column(b, "score_total")?,
            );
            for r in 0..b.num_rows() {
                let uscc = u[r].clone().unwrap_or_default();
                if let Some(o) = orgs.get_mut(&uscc) {
                    o.unit = sup[r].clone();
                }
                rows.push(DemoRow {
                    uscc,
                    name: n[r].clone().unwrap_or_default(),
                    eligible_as: as_[r].clone().unwrap_or_default(),
                    rank: rank[r],
                    shortlisted: is_true(&short[r]),
                    scores: [0.0; 5],
                    total: total[r].unwrap_or_default(),
                });
            }
        }
        // The candidates' dimension scores, from the same version's profiles.
        let mut by_uscc: HashMap<String, [f64; 5]> = HashMap::new();
        for b in &last.read_batches("profiles").await.map_err(warehouse)? {
            let u = text_column(b, "uscc")?;
            let cols: Vec<Vec<Option<f64>>> = crate::project::Dimension::ALL
                .iter()
                .map(|d| float_column(b, &format!("score_{}", d.as_str())))
                .collect::<Result<_, _>>()?;
            for (r, code) in u.into_iter().enumerate() {
                let mut s = [0.0; 5];
                for (i, v) in s.iter_mut().enumerate() {
                    *v = cols[i][r].unwrap_or_default();
                }
                by_uscc.insert(code.unwrap_or_default(), s);
            }
        }
        for row in &mut rows {
            if let Some(s) = by_uscc.get(&row.uscc) {
                row.scores = *s;
            }
        }
        demonstration = Some(rows);
    }
    let mut hits = Vec::new();
    for b in &last.read_batches("hits").await.map_err(warehouse)? {
        let (u, rule, dim, points, red, conf, counted) = (
            text_column(b, "uscc")?,
            text_column(b, "rule_id")?,
            text_column(b, "dimension")?,
            int_column(b, "points")?,
            text_column(b, "red_line")?,
            text_column(b, "confidence")?,
            text_column(b, "counted")?,
        );
        for r in 0..b.num_rows() {
            // One row per event that counts, with full confidence.
            if !is_true(&counted[r]) || conf[r].as_deref() != Some("high") {
                continue;
            }
            hits.push(HitRow {
                uscc: u[r].clone().unwrap_or_default(),
                rule_id: rule[r].clone().unwrap_or_default(),
                dimension: dim[r].clone().unwrap_or_default(),
                points: points[r].unwrap_or_default(),
                red_line: is_true(&red[r]),
            });
        }
    }
    let warnings = if has(last, "warnings") {
        let mut w = Vec::new();
        for b in &last.read_batches("warnings").await.map_err(warehouse)? {
            let (u, s) = (text_column(b, "uscc")?, text_column(b, "state")?);
            let (raised, ended) = (text_column(b, "raised_on")?, text_column(b, "ended_on")?);
            let overdue = text_column(b, "overdue")?;
            let unit = text_column(b, "responsible_unit")?;
            let day = |d: &Option<String>| d.as_deref().and_then(|d| d.parse::<NaiveDate>().ok());
            for r in 0..b.num_rows() {
                w.push(WarningRow {
                    uscc: u[r].clone().unwrap_or_default(),
                    state: s[r].clone().unwrap_or_default(),
                    raised_on: day(&raised[r]),
                    ended_on: day(&ended[r]),
                    overdue: overdue[r].clone(),
                    responsible_unit: unit[r].clone(),
                });
            }
        }
        Some(w)
    } else {
        None
    };

    // The comparison.
    let mut before = HashMap::new();
    if let Some(p) = &previous {
        for (u, _, division, colour) in profiles_of(p).await? {
            before.insert(u, (colour, division));
        }
    }

    // Every night of the period: colours, changes, feeds, dropouts.
    let mut trend = Vec::new();
    let mut changes = Vec::new();
    let mut runs = Vec::new();
    let mut dropouts = Vec::new();
    for v in &versions {
        let date = v.manifest.business_date;
        let mut counts: HashMap<Scope, [i64; 4]> = HashMap::new();
        for (u, _, division, colour) in profiles_of(v).await? {
            let Some(i) = colour
                .as_deref()
                .and_then(Colour::parse)
                .and_then(|c| Colour::ALL.iter().position(|x| *x == c))
            else {
                continue;
            };
            let unit = orgs.get(&u).and_then(|o| o.unit.as_deref());
            for s in Data::scopes_of(division.as_deref(), unit) {
                counts.entry(s).or_default()[i] += 1;
            }
        }
        trend.push((date, counts));
        for b in &v.read_batches("changes").await.map_err(warehouse)? {
            let (u, n, pd, pc, c, add, rem) = (
                text_column(b, "uscc")?,
                text_column(b, "name")?,
                text_column(b, "previous_business_date")?,
                text_column(b, "previous_colour")?,
                text_column(b, "colour")?,
                text_column(b, "rules_added")?,
                text_column(b, "rules_removed")?,
            );
            for r in 0..b.num_rows() {
                // The first version of a warehouse lists every colour: an
                // initial issue, not a change.
                if pd[r].is_none() {
                    continue;
                }
                changes.push(ChangeRow {
                    date,
                    uscc: u[r].clone().unwrap_or_default(),
                    name: n[r].clone().unwrap_or_default(),
                    before: pc[r].clone(),
                    now: c[r].clone(),
                    added: add[r].clone().unwrap_or_default(),
                    removed: rem[r].clone().unwrap_or_default(),
                });
            }
        }
        for b in &v.read_batches("runs").await.map_err(warehouse)? {
            let (feed, status, read, landed, quarantined, keyed) = (
                text_column(b, "feed")?,
                text_column(b, "status")?,
                int_column(b, "read")?,
                int_column(b, "landed")?,
                int_column(b, "quarantined")?,
                int_column(b, "keyed")?,
            );
            for r in 0..b.num_rows() {
                runs.push(RunRow {
                    feed: feed[r].clone().unwrap_or_default(),
                    status: status[r].clone().unwrap_or_default(),
                    read: read[r].unwrap_or_default(),
                    landed: landed[r].unwrap_or_default(),
                    quarantined: quarantined[r].unwrap_or_default(),
                    keyed: keyed[r].unwrap_or_default(),
                });
            }
        }
        if has(v, "demonstration") {
            for b in &v.read_batches("demonstration").await.map_err(warehouse)? {
                let (u, n, dropped, reason) = (
                    text_column(b, "uscc")?,
                    text_column(b, "name")?,
                    text_column(b, "dropped_out")?,
                    text_column(b, "reason")?,
                );
                for r in 0..b.num_rows() {
                    if is_true(&dropped[r]) {
                        dropouts.push(Dropout {
                            date,
                            uscc: u[r].clone().unwrap_or_default(),
                            name: n[r].clone().unwrap_or_default(),
                            reason: reason[r].clone().unwrap_or_default(),
                        });
                    }
                }
            }
        }
    }
    let nights: Vec<NaiveDate> = versions.iter().map(|v| v.manifest.business_date).collect();
    Ok(Data {
        period: period.clone(),
        nights,
        end,
        previous: previous.map(|p| p.manifest.business_date),
        orgs,
        before,
        trend,
        changes,
        hits,
        runs,
        demonstration,
        dropouts,
        warnings,
        units_known,
    })
}

#[cfg(test)]
mod tests {
    use super::Period;
    use chrono::NaiveDate;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
    }

    #[test]
    fn periods_cover_their_days() {
        let m = Period::month("2026-11").map_err(|e| e.to_string());
        assert_eq!(
            m.as_ref().map(|p| (p.start, p.end)),
            Ok((d("2026-11-01"), d("2026-11-30")))
        );
        let f = Period::month("2028-02").map_err(|e| e.to_string());
        assert_eq!(f.map(|p| p.end), Ok(d("2028-02-29")));
        let h = Period::half("2026H2").map_err(|e| e.to_string());
        assert_eq!(
            h.as_ref().map(|p| (p.start, p.end)),
            Ok((d("2026-07-01"), d("2026-12-31")))
        );
        assert_eq!(h.map(|p| p.name_zh()), Ok("2026年下半年".to_string()));
        assert_eq!(Period::month_of(d("2026-10-31")).label, "2026-10");
        for bad in ["2026-13", "2026", "26-1x", "2026-00"] {
            assert!(Period::month(bad).is_err(), "{bad}");
        }
        for bad in ["2026H3", "2026", "H2"] {
            assert!(Period::half(bad).is_err(), "{bad}");
        }
    }
}
