//! How warnings read for people: one line per warning, counts by state, the
//! lines of `status`, the section of the run report (in Chinese where the
//! readers are).

use std::sync::Arc;

use chrono::NaiveDate;

use super::WarningsSummary;
use super::lifecycle::State;
use super::record::Warning;

/// The warnings of a business date's current version (default: the latest).
pub async fn warnings_at(
    store: &Arc<dyn object_store::ObjectStore>,
    prefix: &object_store::path::Path,
    date: Option<NaiveDate>,
) -> Result<Option<(NaiveDate, Vec<Warning>)>, String> {
    let p = match date {
        Some(d) => crate::catalog::Published::latest(store, prefix, d)
            .await
            .map_err(|e| e.to_string())?,
        None => super::intake::latest_published(store, prefix).await?,
    };
    let Some(p) = p else {
        return Ok(None);
    };
    let date = p.manifest.business_date;
    Ok(Some((date, super::published_warnings(&p).await?)))
}

/// The by-state counts of a list of warnings, in life-cycle order.
pub fn counts(all: &[Warning]) -> Vec<(State, usize)> {
    super::lifecycle::STATES
        .into_iter()
        .map(|s| (s, all.iter().filter(|w| w.state == s).count()))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// The listing of `qinglian warnings`: counts, then one line per warning shown.
pub fn render(date: NaiveDate, all: &[Warning], shown: &[&Warning]) -> String {
    let mut out = format!("预警 {date}：共 {} 条", all.len());
    let by_state: Vec<String> = counts(all)
        .into_iter()
        .map(|(s, n)| format!("{} {n}", s.label()))
        .collect();
    if !by_state.is_empty() {
        out.push_str(&format!("（{}）", by_state.join("，")));
    }
    let overdue = all.iter().filter(|w| w.overdue.is_some()).count();
    out.push_str(&format!("，逾期 {overdue} 条\n"));
    if shown.len() != all.len() {
        out.push_str(&format!("筛选后 {} 条\n", shown.len()));
    }
    for w in shown {
        out.push_str(&line(w));
        out.push('\n');
    }
    out
}

/// One warning on one line, for people.
pub fn line(w: &Warning) -> String {
    let colour = |c: &Option<String>| {
        match c.as_deref() {
            Some("green") => "绿码",
            Some("yellow") => "黄码",
            Some("orange") => "橙码",
            Some("red") => "红码",
            Some(other) => other,
            None => "无",
        }
        .to_string()
    };
    let mut rules: Vec<&str> = w.causes.iter().map(|c| c.rule_id.as_str()).collect();
    rules.dedup();
    let mut s = format!(
        "{} {} {} {}→{} [{}] {} 责任单位 {}",
        w.warning_id,
        w.uscc,
        w.name,
        colour(&w.colour_before),
        colour(&w.colour_after),
        rules.join(","),
        w.state.label(),
        w.responsible_unit
    );
    if w.round > 1 {
        s.push_str(&format!(" 第{}轮", w.round));
    }
    match w.overdue.as_deref() {
        Some("signature") => s.push_str(&format!(
            " 逾期未签收 {} 个工作日（催办 {} 次）",
            w.overdue_working_days, w.urges
        )),
        Some(_) => s.push_str(&format!(
            " 整改逾期 {} 个工作日（催办 {} 次）",
            w.overdue_working_days, w.urges
        )),
        None => {}
    }
    if let Some(d) = w.rectify_by
        && w.state == State::Rectifying
    {
        s.push_str(&format!(" 整改期限 {d}"));
    }
    if w.sequence_gap {
        s.push_str(&format!(
            " 处置记录缺号（等待序号 {} 之前的记录）",
            w.held.first().copied().unwrap_or(0)
        ));
    }
    s
}

/// What `status` says about the warnings of a run.
pub fn status_lines(s: &WarningsSummary) -> Vec<String> {
    let by_state: Vec<String> = super::lifecycle::STATES
        .into_iter()
        .filter_map(|st| {
            s.by_state
                .get(st.as_str())
                .map(|n| format!("{} {n}", st.label()))
        })
        .collect();
    let mut out = vec![format!(
        "warnings: {} in all ({}); tonight {} raised, {} reopened, {} disposition(s) applied; {} overdue{}",
        s.total,
        by_state.join(", "),
        s.raised,
        s.reopened,
        s.applied,
        s.overdue.len(),
        if s.sequence_gaps > 0 {
            format!("; {} waiting for missing dispositions", s.sequence_gaps)
        } else {
            String::new()
        }
    )];
    if let Some(d) = &s.delivery {
        out.push(format!(
            "  pushed to the platform: {} batch(es) of tonight's warnings ({} queued, {} acknowledged before); {} acknowledged in this run, {} parked, {} waiting{}",
            d.batches,
            d.queued,
            d.already_acknowledged,
            d.acknowledged,
            d.parked,
            d.pending,
            d.error
                .as_ref()
                .map(|e| format!(" — {e}"))
                .unwrap_or_default()
        ));
    }
    for (id, kind, days) in s.overdue.iter().take(20) {
        out.push(format!(
            "  overdue {id}: {} {days} working day(s)",
            if kind == "signature" {
                "未签收"
            } else {
                "整改逾期"
            }
        ));
    }
    if s.overdue.len() > 20 {
        out.push(format!(
            "  … and {} more (qinglian warnings --overdue)",
            s.overdue.len() - 20
        ));
    }
    out
}

/// The warnings section of a run's HTML report (Chinese: its readers are).
pub fn report_section(s: &WarningsSummary) -> String {
    let esc = |t: &str| {
        t.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let mut rows = String::new();
    for st in super::lifecycle::STATES {
        if let Some(n) = s.by_state.get(st.as_str()) {
            rows.push_str(&format!(
                "<tr><td>{}</td><td><code>{}</code></td><td>{n}</td></tr>",
                st.label(),
                st.as_str()
            ));
        }
    }
    let mut overdue = String::new();
    for (id, kind, days) in &s.overdue {
        overdue.push_str(&format!(
            "<tr><td><code>{}</code></td><td>{}</td><td>{days}</td></tr>",
            esc(id),
            if kind == "signature" {
                "逾期未签收"
            } else {
                "整改逾期"
            }
        ));
    }
    format!(
        "<section lang=\"zh\"><h2>预警 Warnings</h2><p>共 {} 条；本次新增 {}，重新打开 {}，处置记录 {} 条已应用；逾期 {} 条</p>\
         <table><tr><th>状态</th><th>state</th><th>数量</th></tr>{rows}</table>{}</section>",
        s.total,
        s.raised,
        s.reopened,
        s.applied,
        s.overdue.len(),
        if overdue.is_empty() {
            String::new()
        } else {
            format!(
                "<h3>逾期清单</h3><table><tr><th>预警编号</th><th>逾期类型</th><th>逾期工作日</th></tr>{overdue}</table>"
            )
        }
    )
}
