//! A scope's briefing as one self-contained HTML page (Chinese, inline SVG
//! charts, no script, no network, A4 landscape when printed), and the
//! `index.html` listing every page and workbook. The templates are in
//! `templates/`, rendered by minijinja with HTML auto-escaping: names of
//! organizations and units are data, never markup.

use minijinja::{Environment, Value};

use super::BriefError;
use super::tables::{Cell, Data, ScopeBrief};
use crate::project::Colour;

/// Rows a page lists of one table; the workbook has them all.
pub(crate) const PAGE_ROWS: usize = 200;

/// Fill colours of the charts, by colour (also used by the tests).
pub(crate) const RGB: [&str; 4] = ["#2e7d32", "#f9a825", "#ef6c00", "#c62828"];

/// Fill of the warnings chart.
pub(crate) const WARNINGS_RGB: &str = "#1565c0";

fn env() -> Result<Environment<'static>, BriefError> {
    let mut env = Environment::new();
    env.add_template("brief.html", include_str!("../../templates/brief.html"))
        .map_err(template)?;
    env.add_template("index.html", include_str!("../../templates/index.html"))
        .map_err(template)?;
    Ok(env)
}

fn template(e: minijinja::Error) -> BriefError {
    BriefError::Warehouse(format!("template: {e}"))
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Colour distribution over the period's nights: one line per colour.
fn trend_svg(trend: &[(chrono::NaiveDate, [i64; 4])]) -> String {
    let (w, h, left, top, bottom) = (500.0, 260.0, 50.0, 30.0, 40.0);
    let max = trend
        .iter()
        .flat_map(|(_, c)| c.iter())
        .copied()
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let n = trend.len();
    let x = |i: usize| {
        if n <= 1 {
            left + (w - left - 10.0) / 2.0
        } else {
            left + (w - left - 10.0) * i as f64 / (n - 1) as f64
        }
    };
    let y = |v: i64| top + (h - top - bottom) * (1.0 - v as f64 / max);
    let mut out = format!(
        "<svg id=\"trend\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"各晚颜色分布趋势\"><text x=\"{left}\" y=\"18\">各晚清廉码颜色分布趋势（组织数）</text>"
    );
    out += &format!(
        "<line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#999\"/><text x=\"4\" y=\"{}\">{}</text><text x=\"4\" y=\"{}\">0</text>",
        h - bottom,
        w - 10.0,
        h - bottom,
        top + 4.0,
        max as i64,
        h - bottom
    );
    for (k, rgb) in RGB.iter().enumerate() {
        let points: Vec<String> = trend
            .iter()
            .enumerate()
            .map(|(i, (_, c))| format!("{:.1},{:.1}", x(i), y(c[k])))
            .collect();
        out += &format!(
            "<polyline fill=\"none\" stroke=\"{rgb}\" stroke-width=\"4\" points=\"{}\"><title>{}</title></polyline>",
            points.join(" "),
            Colour::ALL[k].name_zh()
        );
        for (i, (d, c)) in trend.iter().enumerate() {
            out += &format!(
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"8\" height=\"8\" fill=\"{rgb}\"><title>{d} {} {}</title></rect>",
                x(i) - 4.0,
                y(c[k]) - 4.0,
                Colour::ALL[k].name_zh(),
                c[k]
            );
        }
    }
    if let (Some((first, _)), Some((last, _))) = (trend.first(), trend.last()) {
        out += &format!(
            "<text x=\"{left}\" y=\"{}\">{first}</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{last}</text>",
            h - bottom + 18.0,
            w - 10.0,
            h - bottom + 18.0
        );
    }
    out + "</svg>"
}

/// Colours by district (or by unit): one stacked bar per row.
fn breakdown_svg(title: &str, rows: &[(String, [i64; 4])]) -> String {
    let rows: Vec<&(String, [i64; 4])> = rows.iter().take(20).collect();
    let (w, label, bar_h, gap, top) = (520.0, 150.0, 16.0, 6.0, 30.0);
    let h = top + rows.len() as f64 * (bar_h + gap) + 10.0;
    let max = rows
        .iter()
        .map(|(_, c)| c.iter().sum::<i64>())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let mut out = format!(
        "<svg id=\"breakdown\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{t}\"><text x=\"4\" y=\"18\">{t}</text>",
        t = esc(title)
    );
    for (i, (name, c)) in rows.iter().enumerate() {
        let y = top + i as f64 * (bar_h + gap);
        let shown: String = name.chars().take(11).collect();
        out += &format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            label - 6.0,
            y + bar_h - 3.0,
            esc(&shown)
        );
        let mut x = label;
        for (k, rgb) in RGB.iter().enumerate() {
            let width = (w - label - 50.0) * c[k] as f64 / max;
            if c[k] > 0 {
                out += &format!(
                    "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{width:.1}\" height=\"{bar_h}\" fill=\"{rgb}\"><title>{} {} {}</title></rect>",
                    esc(name),
                    Colour::ALL[k].name_zh(),
                    c[k]
                );
            }
            x += width;
        }
        out += &format!(
            "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            x + 4.0,
            y + bar_h - 3.0,
            c.iter().sum::<i64>()
        );
    }
    out + "</svg>"
}

/// Warnings by state.
fn warnings_svg(by_state: &[(String, i64)]) -> String {
    let (w, label, bar_h, gap, top) = (420.0, 120.0, 16.0, 6.0, 30.0);
    let h = top + by_state.len() as f64 * (bar_h + gap) + 10.0;
    let max = by_state.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1) as f64;
    let mut out = format!(
        "<svg id=\"warnings\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"预警状态\"><text x=\"4\" y=\"18\">预警按处置状态</text>"
    );
    for (i, (state, n)) in by_state.iter().enumerate() {
        let y = top + i as f64 * (bar_h + gap);
        let width = (w - label - 50.0) * *n as f64 / max;
        out += &format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text><rect x=\"{label}\" y=\"{y:.1}\" width=\"{width:.1}\" height=\"{bar_h}\" fill=\"{WARNINGS_RGB}\"/><text x=\"{:.1}\" y=\"{:.1}\">{n}</text>",
            label - 6.0,
            y + bar_h - 3.0,
            esc(state),
            label + width + 4.0,
            y + bar_h - 3.0
        );
    }
    out + "</svg>"
}

fn cells(row: &[Cell]) -> Value {
    row.iter()
        .map(|c| {
            Value::from_pairs([
                ("text", Value::from(c.display())),
                ("numeric", Value::from(c.numeric())),
            ])
        })
        .collect()
}

/// The page of one scope.
pub(crate) fn page(data: &Data, brief: &ScopeBrief) -> Result<String, BriefError> {
    let tables: Vec<Value> = brief
        .tables
        .iter()
        .map(|t| {
            let rows: Vec<Value> = t.rows.iter().take(PAGE_ROWS).map(|r| cells(r)).collect();
            Value::from_pairs([
                ("title", Value::from(t.title.clone())),
                ("note", Value::from(t.note.clone())),
                (
                    "columns",
                    t.columns.iter().map(|c| Value::from(c.as_str())).collect(),
                ),
                ("rows", Value::from_iter(rows)),
                (
                    "total",
                    t.total
                        .as_ref()
                        .map(|r| cells(r))
                        .unwrap_or(Value::from(())),
                ),
                ("cut", Value::from(t.rows.len() > PAGE_ROWS)),
                ("shown", Value::from(PAGE_ROWS)),
                ("count", Value::from(t.rows.len())),
            ])
        })
        .collect();
    let breakdown_title = match brief.scope {
        super::tables::Scope::District(_) => "期末各业务主管单位清廉码（组织数）",
        _ => "期末各区、县（市）清廉码（组织数）",
    };
    let legend: Vec<Value> = Colour::ALL
        .iter()
        .zip(RGB)
        .map(|(c, rgb)| {
            Value::from_pairs([
                ("name", Value::from(c.name_zh())),
                ("rgb", Value::from(rgb)),
            ])
        })
        .collect();
    let ctx = Value::from_pairs([
        ("title", Value::from(data.period.title_zh())),
        ("scope", Value::from(brief.name.clone())),
        ("start", Value::from(data.period.start.to_string())),
        ("end", Value::from(data.period.end.to_string())),
        ("as_of", Value::from(data.end.to_string())),
        (
            "previous",
            Value::from(data.previous.map(|d| d.to_string())),
        ),
        ("nights", Value::from(data.nights.len())),
        ("legend", Value::from_iter(legend)),
        (
            "trend_svg",
            Value::from_safe_string(trend_svg(&brief.trend)),
        ),
        (
            "breakdown_svg",
            Value::from_safe_string(breakdown_svg(breakdown_title, &brief.breakdown)),
        ),
        (
            "warnings_svg",
            brief
                .warnings
                .as_ref()
                .map(|w| Value::from_safe_string(warnings_svg(w)))
                .unwrap_or(Value::from(())),
        ),
        ("tables", Value::from_iter(tables)),
    ]);
    env()?
        .get_template("brief.html")
        .and_then(|t| t.render(ctx))
        .map_err(template)
}

/// `index.html`: every scope with its colours, its page and its workbook.
pub(crate) fn index(data: &Data, briefs: &[ScopeBrief]) -> Result<String, BriefError> {
    let scopes: Vec<Value> = briefs
        .iter()
        .map(|b| {
            let end = b.trend.last().map(|(_, c)| *c).unwrap_or_default();
            Value::from_pairs([
                ("name", Value::from(b.name.clone())),
                ("stem", Value::from(b.stem.clone())),
                ("total", Value::from(end.iter().sum::<i64>())),
                ("colours", end.iter().map(|n| Value::from(*n)).collect()),
            ])
        })
        .collect();
    let ctx = Value::from_pairs([
        ("title", Value::from(data.period.title_zh())),
        ("start", Value::from(data.period.start.to_string())),
        ("end", Value::from(data.period.end.to_string())),
        ("as_of", Value::from(data.end.to_string())),
        ("nights", Value::from(data.nights.len())),
        ("scopes", Value::from_iter(scopes)),
    ]);
    env()?
        .get_template("index.html")
        .and_then(|t| t.render(ctx))
        .map_err(template)
}
