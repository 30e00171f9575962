//! The HTML run report: one self-contained page per run, written to the
//! warehouse at `reports/dt=<business_date>/<run_id>.html`, with charts
//! drawn as inline SVG (no script, no network): colour distribution,
//! colour changes, per-feed counts, quarantine reasons and key coverage.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use object_store::{ObjectStoreExt, PutPayload};

use crate::catalog::Published;
use crate::ledger::RunRecord;

const COLOURS: [(&str, &str); 5] = [
    ("green", "#2e7d32"),
    ("yellow", "#f9a825"),
    ("orange", "#ef6c00"),
    ("red", "#c62828"),
    ("none", "#9e9e9e"),
];
const LANDED: &str = "#1565c0";
const QUARANTINED: &str = "#c62828";
const DUPLICATES: &str = "#8e24aa";
const KEYED: &str = "#00897b";
const IN_REGISTRY: &str = "#5e35b1";

/// Escapes text for HTML and SVG.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One bar: label, then segments of (value, colour, legend).
struct Bar<'a> {
    label: String,
    segments: Vec<(f64, &'a str, &'a str)>,
    note: String,
}

/// A horizontal (stacked) bar chart scaled to its largest bar.
fn chart(id: &str, title: &str, bars: &[Bar<'_>], max: Option<f64>) -> String {
    let (label_w, bar_w, row_h) = (170.0, 520.0, 26.0);
    let top = max.unwrap_or_else(|| {
        bars.iter()
            .map(|b| b.segments.iter().map(|s| s.0).sum::<f64>())
            .fold(0.0, f64::max)
    });
    let height = row_h * bars.len().max(1) as f64 + 10.0;
    let mut svg = format!(
        "<section><h2>{}</h2><svg id=\"{id}\" role=\"img\" aria-label=\"{}\" width=\"{}\" height=\"{height}\">",
        esc(title),
        esc(title),
        label_w + bar_w + 340.0
    );
    for (i, b) in bars.iter().enumerate() {
        let y = i as f64 * row_h + 4.0;
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"13\">{}</text>",
            label_w - 8.0,
            y + 15.0,
            esc(&b.label)
        );
        let mut x = label_w;
        for (value, colour, legend) in &b.segments {
            let w = if top > 0.0 { value / top * bar_w } else { 0.0 };
            if w > 0.0 {
                let _ = write!(
                    svg,
                    "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"18\" fill=\"{colour}\"><title>{} {}: {value}</title></rect>",
                    esc(&b.label),
                    esc(legend)
                );
            }
            x += w;
        }
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" font-size=\"12\" fill=\"#333\">{}</text>",
            x + 6.0,
            y + 15.0,
            esc(&b.note)
        );
    }
    svg.push_str("</svg>");
    let legends: Vec<(&str, &str)> = {
        let mut seen = Vec::new();
        for b in bars {
            for (_, c, l) in &b.segments {
                if !seen.iter().any(|(_, x)| x == l) {
                    seen.push((*c, *l));
                }
            }
        }
        seen
    };
    if legends.len() > 1 {
        svg.push_str("<p class=\"legend\">");
        for (c, l) in legends {
            let _ = write!(
                svg,
                "<span><i style=\"background:{c}\"></i>{}</span>",
                esc(l)
            );
        }
        svg.push_str("</p>");
    }
    svg.push_str("</section>");
    svg
}

fn colour_of(name: &str) -> &'static str {
    COLOURS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or("#9e9e9e", |(_, c)| c)
}

/// Colour transitions (`previous → now`) counted from a version's changes.
pub async fn transitions(published: &Published) -> Result<BTreeMap<(String, String), u64>, String> {
    let batches = published
        .read_batches("changes")
        .await
        .map_err(|e| e.to_string())?;
    let mut out = BTreeMap::new();
    for b in &batches {
        let text = |name: &str| -> Result<datafusion::arrow::array::ArrayRef, String> {
            let c = b
                .column_by_name(name)
                .ok_or_else(|| format!("changes: no column {name}"))?;
            cast(c, &DataType::Utf8).map_err(|e| e.to_string())
        };
        let (before, now) = (text("previous_colour")?, text("colour")?);
        let (before, now) = (before.as_string::<i32>(), now.as_string::<i32>());
        for r in 0..b.num_rows() {
            let v = |a: &datafusion::arrow::array::StringArray| {
                if a.is_null(r) {
                    "none".to_string()
                } else {
                    a.value(r).to_string()
                }
            };
            *out.entry((v(before), v(now))).or_default() += 1;
        }
    }
    Ok(out)
}

/// Organizations and counted events per rule of a version's `hits`.
pub async fn hits_by_rule(published: &Published) -> Result<BTreeMap<String, (u64, u64)>, String> {
    let batches = published
        .read_batches("hits")
        .await
        .map_err(|e| e.to_string())?;
    let mut orgs: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    let mut events: BTreeMap<String, u64> = BTreeMap::new();
    for b in &batches {
        let col = |name: &str| -> Result<datafusion::arrow::array::ArrayRef, String> {
            let c = b
                .column_by_name(name)
                .ok_or_else(|| format!("hits: no column {name}"))?;
            cast(c, &DataType::Utf8).map_err(|e| e.to_string())
        };
        let (uscc, rule, counted) = (col("uscc")?, col("rule_id")?, col("counted")?);
        let (uscc, rule, counted) = (
            uscc.as_string::<i32>(),
            rule.as_string::<i32>(),
            counted.as_string::<i32>(),
        );
        for r in 0..b.num_rows() {
            let id = rule.value(r).to_string();
            orgs.entry(id.clone())
                .or_default()
                .insert(uscc.value(r).to_string());
            if counted.value(r) == "true" {
                *events.entry(id).or_default() += 1;
            }
        }
    }
    Ok(orgs
        .into_iter()
        .map(|(id, o)| {
            let e = events.get(&id).copied().unwrap_or(0);
            (id, (o.len() as u64, e))
        })
        .collect())
}

/// One lead as the report lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadRow {
    /// The unregistered subject's USCC.
    pub uscc: String,
    /// Its name as its records give it.
    pub name: String,
    /// Feeds, comma-separated.
    pub feeds: String,
    /// Records.
    pub records: i64,
    /// Latest record date, or empty.
    pub last_seen: String,
    /// Whether tonight's version is the first to list it.
    pub new: bool,
}

/// The leads a report lists: the most records first, at most this many.
pub const REPORT_LEADS: usize = 20;

/// A version's `leads` (none before the dataset existed), the most
/// records first (then by USCC), at most [`REPORT_LEADS`].
pub async fn top_leads(published: &Published) -> Result<Vec<LeadRow>, String> {
    if !published.manifest.datasets.contains_key("leads") {
        return Ok(Vec::new());
    }
    let batches = published
        .read_batches("leads")
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for b in &batches {
        let col = |name: &str| -> Result<datafusion::arrow::array::ArrayRef, String> {
            let c = b
                .column_by_name(name)
                .ok_or_else(|| format!("leads: no column {name}"))?;
            cast(c, &DataType::Utf8).map_err(|e| e.to_string())
        };
        let cols = [
            col("uscc")?,
            col("name")?,
            col("feeds")?,
            col("records")?,
            col("last_seen")?,
            col("first_listed_on")?,
            col("business_date")?,
        ];
        let t: Vec<_> = cols.iter().map(|c| c.as_string::<i32>()).collect();
        let v = |i: usize, r: usize| {
            if t[i].is_null(r) {
                String::new()
            } else {
                t[i].value(r).to_string()
            }
        };
        for r in 0..b.num_rows() {
            out.push(LeadRow {
                uscc: v(0, r),
                name: v(1, r),
                feeds: v(2, r),
                records: v(3, r).parse().unwrap_or(0),
                last_seen: v(4, r),
                new: v(5, r) == v(6, r),
            });
        }
    }
    out.sort_by(|a, b| b.records.cmp(&a.records).then_with(|| a.uscc.cmp(&b.uscc)));
    out.truncate(REPORT_LEADS);
    Ok(out)
}

/// The page of a run.
pub fn render(record: &RunRecord, transitions: &BTreeMap<(String, String), u64>) -> String {
    render_with_rules(record, transitions, &BTreeMap::new(), &[], &[])
}

/// The leads section: the night's count, the new ones, the first leads.
fn leads_section(s: &crate::ledger::ScoreSummary, leads: &[LeadRow]) -> String {
    let mut out = format!(
        "<section><h2>Leads (unregistered subjects)</h2><p>{} lead(s) tonight, {} new since the previous version: valid USCCs that the night's records name and no registry row has; they score nothing. For the registrar, never public (the <code>leads</code> dataset).</p>",
        s.leads, s.new_leads
    );
    if !leads.is_empty() {
        let rows: String = leads
            .iter()
            .map(|l| {
                format!(
                    "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td style=\"text-align:right\">{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&l.uscc),
                    esc(&l.name),
                    esc(&l.feeds),
                    l.records,
                    esc(&l.last_seen),
                    if l.new { "new" } else { "" }
                )
            })
            .collect();
        let _ = write!(
            out,
            "<table lang=\"zh-CN\"><tr><th>USCC</th><th>name</th><th>feeds</th><th>records</th><th>last seen</th><th></th></tr>{rows}</table>{}",
            if s.leads as usize > leads.len() {
                format!(
                    "<p>the first {} by records; the rest are in the dataset.</p>",
                    leads.len()
                )
            } else {
                String::new()
            }
        );
    }
    out.push_str("</section>");
    out
}

/// The page of a run, with its hits per rule under the rules' Chinese
/// titles and dimension names.
pub fn render_with_rules(
    record: &RunRecord,
    transitions: &BTreeMap<(String, String), u64>,
    by_rule: &BTreeMap<String, (u64, u64)>,
    rules: &[crate::project::Rule],
    leads: &[LeadRow],
) -> String {
    let mut body = String::new();
    let status = format!("{:?}", record.status);
    let _ = write!(
        body,
        "<h1>Run {} <span class=\"status {}\">{}</span></h1><p>pipeline {} · business date {} · attempt {} · started {}{}</p>",
        esc(&record.run_id),
        esc(&status.to_lowercase()),
        esc(&status),
        esc(&record.pipeline),
        record.business_date,
        record.attempt,
        record.started_at.to_rfc3339(),
        record
            .finished_at
            .map(|f| format!(" · finished {}", f.to_rfc3339()))
            .unwrap_or_default()
    );
    if let Some(e) = &record.error {
        let _ = write!(body, "<p class=\"error\">{}</p>", esc(e));
    }
    if let Some(m) = &record.manifest {
        let _ = write!(body, "<p>published: <code>{}</code></p>", esc(m));
    }
    if let Some(s) = &record.scoring {
        let bars: Vec<Bar<'_>> = COLOURS
            .iter()
            .map(|(name, colour)| {
                let n = s.colours.get(*name).copied().unwrap_or(0);
                Bar {
                    label: (*name).to_string(),
                    segments: vec![(n as f64, colour, name)],
                    note: n.to_string(),
                }
            })
            .collect();
        let _ = write!(
            body,
            "<p>{} organizations scored, {} hits, rules version <code>{}</code>{}{}</p>",
            s.profiles,
            s.hits,
            esc(&s.rules_version),
            if s.engine.is_empty() {
                String::new()
            } else {
                format!(" · scored on <code>{}</code>", esc(&s.engine))
            },
            if s.stale.is_empty() {
                String::new()
            } else {
                format!(" · stale inputs: {}", esc(&s.stale.join(", ")))
            }
        );
        body.push_str(&chart("colours", "Colour distribution", &bars, None));
        let bars: Vec<Bar<'_>> = transitions
            .iter()
            .map(|((from, to), n)| Bar {
                label: format!("{from} → {to}"),
                segments: vec![(*n as f64, colour_of(to), "now")],
                note: n.to_string(),
            })
            .collect();
        if bars.is_empty() {
            body.push_str("<section><h2>Colour changes</h2><p>No colour changed.</p></section>");
        } else {
            body.push_str(&chart("changes", "Colour changes", &bars, None));
        }
    }
    // A feed, then each of its parts when it has several; a merged
    // snapshot says what it kept and what the delivery changed.
    fn merged_note(
        merge: &str,
        unchanged: bool,
        carried: u64,
        upserted: u64,
        deleted: u64,
        tombstones: u64,
    ) -> String {
        let mut out = String::new();
        if !merge.is_empty() && merge != "snapshot" {
            out.push_str(&format!(" merge {merge}"));
        }
        if unchanged {
            out.push_str(" unchanged");
        }
        if carried + upserted + deleted + tombstones > 0 {
            out.push_str(&format!(
                "; {carried} carried over, {upserted} upserted, {deleted} deleted, {tombstones} tombstones"
            ));
        }
        out
    }
    let feeds: Vec<Bar<'_>> = record
        .feeds
        .iter()
        .flat_map(|f| {
            let parts = f.parts.iter().filter(|_| f.parts.len() > 1).map(|p| Bar {
                label: format!("{} · {}", f.feed, p.name),
                segments: vec![
                    (p.landed as f64, LANDED, "landed"),
                    (p.quarantined as f64, QUARANTINED, "quarantined"),
                    (p.duplicates as f64, DUPLICATES, "duplicates"),
                ],
                note: format!(
                    "part: {} read, {} quarantined, {} dup.{}",
                    p.read,
                    p.quarantined,
                    p.duplicates,
                    merged_note(
                        &p.merge,
                        p.unchanged,
                        p.carried_over,
                        p.upserted,
                        p.deleted,
                        p.tombstones
                    )
                ),
            });
            std::iter::once(Bar {
                label: f.feed.clone(),
                segments: vec![
                    (f.landed as f64, LANDED, "landed"),
                    (f.quarantined as f64, QUARANTINED, "quarantined"),
                    (f.duplicates as f64, DUPLICATES, "duplicates"),
                ],
                note: format!(
                    "{} read, {} quarantined, {} dup. ({:?}){}",
                    f.read,
                    f.quarantined,
                    f.duplicates,
                    f.status,
                    merged_note(
                        "",
                        false,
                        f.carried_over,
                        f.upserted,
                        f.deleted,
                        f.tombstones
                    )
                ),
            })
            .chain(parts)
        })
        .collect();
    body.push_str(&chart("feeds", "Rows per feed", &feeds, None));
    let mut reasons: BTreeMap<(String, String), u64> = BTreeMap::new();
    for f in &record.feeds {
        for (r, n) in &f.quarantine_reasons {
            *reasons.entry((f.feed.clone(), r.clone())).or_default() += n;
        }
    }
    if reasons.is_empty() {
        body.push_str("<section><h2>Quarantine reasons</h2><p>Nothing quarantined.</p></section>");
    } else {
        let bars: Vec<Bar<'_>> = reasons
            .iter()
            .map(|((feed, reason), n)| Bar {
                label: format!("{feed}: {reason}"),
                segments: vec![(*n as f64, QUARANTINED, "rows")],
                note: n.to_string(),
            })
            .collect();
        body.push_str(&chart("quarantine", "Quarantine reasons", &bars, None));
    }
    let share = |part: u64, whole: u64| {
        if whole == 0 {
            0.0
        } else {
            part as f64 * 100.0 / whole as f64
        }
    };
    let coverage: Vec<Bar<'_>> = record
        .feeds
        .iter()
        .flat_map(|f| {
            // The registry is the spine: its coverage against itself says nothing.
            let in_registry = (f.feed != crate::project::SPINE_FEED).then(|| Bar {
                label: format!("{} in registry", f.feed),
                segments: vec![(
                    share(f.in_registry, f.rows.max(f.landed)),
                    IN_REGISTRY,
                    "rows of a registered organization",
                )],
                note: format!("{:.1}%", share(f.in_registry, f.rows.max(f.landed))),
            });
            [
                Some(Bar {
                    label: format!("{} keyed", f.feed),
                    segments: vec![(share(f.keyed, f.landed), KEYED, "rows with a USCC")],
                    note: format!("{:.1}%", share(f.keyed, f.landed)),
                }),
                in_registry,
            ]
            .into_iter()
            .flatten()
        })
        .collect();
    body.push_str(&chart(
        "coverage",
        "Key coverage per feed (% of landed rows)",
        &coverage,
        Some(100.0),
    ));
    if !by_rule.is_empty() {
        let rows: String = by_rule
            .iter()
            .map(|(id, (orgs, events))| {
                let rule = rules.iter().find(|r| &r.id == id);
                format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td style=\"text-align:right\">{orgs}</td><td style=\"text-align:right\">{events}</td></tr>",
                    esc(id),
                    esc(rule.map_or("", |r| r.dimension.name_zh())),
                    esc(rule.map_or(id.as_str(), |r| r.title_for_people())),
                )
            })
            .collect();
        let _ = write!(
            body,
            "<section><h2>Hits by rule</h2><table lang=\"zh-CN\"><tr><th>rule</th><th>维度</th><th>规则</th><th>organizations</th><th>counted events</th></tr>{rows}</table></section>"
        );
    }
    if let Some(s) = &record.scoring {
        body.push_str(&leads_section(s, leads));
    }
    if let Some(w) = &record.warnings {
        body.push_str(&crate::warnings::show::report_section(w));
    }
    if let Some(d) = &record.delivery {
        let _ = write!(
            body,
            "<section><h2>Delivery</h2><p>{} {} batch(es), {} rows to <code>{}</code>: {} acknowledged in this run, {} parked, {} waiting{}</p></section>",
            d.batches,
            esc(&d.kind),
            d.rows,
            esc(&d.endpoint),
            d.acknowledged,
            d.parked,
            d.pending,
            d.error
                .as_ref()
                .map(|e| format!(" — {}", esc(e)))
                .unwrap_or_default()
        );
    }
    if !record.stage_ms.is_empty() {
        let stages: Vec<String> = ["ingest", "score", "publish", "deliver", "drop"]
            .iter()
            .filter_map(|st| record.stage_ms.get(*st).map(|ms| format!("{st} {ms} ms")))
            .collect();
        let _ = write!(
            body,
            "<section><h2>Timings</h2><p>{}</p></section>",
            esc(&stages.join(" · "))
        );
    }
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>qinglian run {}</title><style>{}</style></head><body>{body}</body></html>\n",
        esc(&record.run_id),
        "body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:980px}h1{font-size:22px}h2{font-size:16px;margin:22px 0 6px}\
         .status{font-size:14px;padding:2px 8px;border-radius:4px;background:#eee}.status.succeeded{background:#c8e6c9}.status.degraded{background:#ffe0b2}\
         .status.failed,.status.interrupted{background:#ffcdd2}.error{color:#b71c1c}.legend span{margin-right:14px;font-size:12px}\
         .legend i{display:inline-block;width:10px;height:10px;margin-right:4px}code{font-size:12px}"
    )
}

/// Writes the report of a run; returns its path relative to the warehouse.
pub async fn write(
    store: &std::sync::Arc<dyn object_store::ObjectStore>,
    prefix: &object_store::path::Path,
    record: &RunRecord,
    published: Option<&Published>,
    rules: &[crate::project::Rule],
) -> Result<String, String> {
    let transitions = match published {
        Some(p) => transitions(p).await?,
        None => BTreeMap::new(),
    };
    let by_rule = match published {
        Some(p) => hits_by_rule(p).await?,
        None => BTreeMap::new(),
    };
    let leads = match published {
        Some(p) => top_leads(p).await?,
        None => Vec::new(),
    };
    let rel = crate::layout::report(record.business_date, &record.run_id);
    let path = crate::store::join(prefix, &rel);
    store
        .put(
            &path,
            PutPayload::from(render_with_rules(
                record,
                &transitions,
                &by_rule,
                rules,
                &leads,
            )),
        )
        .await
        .map_err(|e| format!("{path}: {e}"))?;
    Ok(rel)
}
