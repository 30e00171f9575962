//! The tables of a briefing (DOMAIN.md §8), computed for one scope — the
//! city, a district or county (by the registrar's division), or a
//! supervising unit — from what [`super::load`] read out of the published
//! versions of the period. Every figure here is a count or a share of
//! published rows; the workbook and the page only lay them out.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDate;

use super::Period;
use crate::project::{Colour, Dimension, Project};

/// One cell of a table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    /// Text.
    Text(String),
    /// A whole number (a count).
    Int(i64),
    /// A share, 0 to 1, shown as a percentage with one decimal.
    Pct(f64),
    /// A score, shown with one decimal.
    Num(f64),
    /// Nothing.
    Empty,
}

impl Cell {
    fn text(s: impl Into<String>) -> Self {
        Cell::Text(s.into())
    }

    /// The cell as people read it (the page; the workbook keeps numbers).
    pub(crate) fn display(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Int(n) => group_thousands(*n),
            Cell::Pct(p) => format!("{:.1}%", p * 100.0),
            Cell::Num(x) => format!("{x:.1}"),
            Cell::Empty => String::new(),
        }
    }

    /// Right-aligned in a table.
    pub(crate) fn numeric(&self) -> bool {
        matches!(self, Cell::Int(_) | Cell::Pct(_) | Cell::Num(_))
    }
}

fn group_thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// One table: a sheet of the workbook, a section of the page. The serial
/// number column (序号) is added by both writers.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    /// Sheet name (at most 31 characters).
    pub(crate) sheet: String,
    /// Title above the table.
    pub(crate) title: String,
    /// Column headings (without 序号).
    pub(crate) columns: Vec<String>,
    /// Rows, each as long as `columns`.
    pub(crate) rows: Vec<Vec<Cell>>,
    /// The total row (合计), as long as `columns`.
    pub(crate) total: Option<Vec<Cell>>,
    /// A note printed under the title (what the table counts).
    pub(crate) note: String,
}

/// What a scope is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Scope {
    /// The whole city.
    City,
    /// A district or county, by the registrar's division code.
    District(String),
    /// A supervising unit (业务主管单位), by its name.
    Unit(String),
}

/// Which scope an organization falls in, by its division and unit.
fn in_scope(scope: &Scope, division: Option<&str>, unit: Option<&str>) -> bool {
    match scope {
        Scope::City => true,
        Scope::District(d) => division == Some(d.as_str()),
        Scope::Unit(u) => unit == Some(u.as_str()),
    }
}

/// The name of a division for people: `上城区`, or the code when unknown.
pub(crate) fn division_label(code: &str) -> String {
    crate::keys::division_name(code)
        .map(str::to_string)
        .unwrap_or_else(|| code.to_string())
}

/// The name of a colour for people.
pub(crate) fn colour_zh(colour: Option<&str>) -> &'static str {
    match colour.and_then(Colour::parse) {
        Some(c) => c.name_zh(),
        None => "无颜色",
    }
}

/// The organizations of a unit-less scope are directly registered.
pub(crate) const NO_UNIT: &str = "（无业务主管单位）";

/// An organization at the end of the period.
#[derive(Debug, Clone)]
pub(crate) struct Org {
    pub(crate) division: Option<String>,
    pub(crate) unit: Option<String>,
    pub(crate) colour: Option<String>,
}

/// A colour change of a night of the period.
#[derive(Debug, Clone)]
pub(crate) struct ChangeRow {
    pub(crate) date: NaiveDate,
    pub(crate) uscc: String,
    pub(crate) name: String,
    pub(crate) before: Option<String>,
    pub(crate) now: Option<String>,
    pub(crate) added: String,
    pub(crate) removed: String,
}

/// A counted hit of the last night.
#[derive(Debug, Clone)]
pub(crate) struct HitRow {
    pub(crate) uscc: String,
    pub(crate) rule_id: String,
    pub(crate) dimension: String,
    pub(crate) points: i64,
    pub(crate) red_line: bool,
}

/// One feed of one night's `runs`.
#[derive(Debug, Clone)]
pub(crate) struct RunRow {
    pub(crate) feed: String,
    pub(crate) status: String,
    pub(crate) read: i64,
    pub(crate) landed: i64,
    pub(crate) quarantined: i64,
    pub(crate) keyed: i64,
}

/// A row of the last night's `demonstration`.
#[derive(Debug, Clone)]
pub(crate) struct DemoRow {
    pub(crate) uscc: String,
    pub(crate) name: String,
    pub(crate) eligible_as: String,
    pub(crate) rank: Option<i64>,
    pub(crate) shortlisted: bool,
    pub(crate) scores: [f64; 5],
    pub(crate) total: f64,
}

/// A candidate that dropped out on a night of the period.
#[derive(Debug, Clone)]
pub(crate) struct Dropout {
    pub(crate) date: NaiveDate,
    pub(crate) uscc: String,
    pub(crate) name: String,
    pub(crate) reason: String,
}

/// Everything read from the period's published versions.
#[derive(Debug, Clone)]
pub(crate) struct Data {
    pub(crate) period: Period,
    /// Business dates of the period with a published version.
    pub(crate) nights: Vec<NaiveDate>,
    /// The last of them: the state the briefing reports.
    pub(crate) end: NaiveDate,
    /// The last published date before the period, compared with.
    pub(crate) previous: Option<NaiveDate>,
    pub(crate) orgs: HashMap<String, Org>,
    /// Each organization's colour and division at `previous`.
    pub(crate) before: HashMap<String, (Option<String>, Option<String>)>,
    /// Colour counts per night and scope.
    pub(crate) trend: Vec<(NaiveDate, HashMap<Scope, [i64; 4]>)>,
    pub(crate) changes: Vec<ChangeRow>,
    pub(crate) hits: Vec<HitRow>,
    pub(crate) runs: Vec<RunRow>,
    /// Nights whose runs were published, per feed.
    pub(crate) demonstration: Option<Vec<DemoRow>>,
    pub(crate) dropouts: Vec<Dropout>,
    /// The last night's `warnings`, when published.
    pub(crate) warnings: Option<Vec<WarningRow>>,
    /// Whether the supervising units are known (the `demonstration`
    /// dataset carries them).
    pub(crate) units_known: bool,
}

/// One warning as the last night of the period published it.
#[derive(Debug, Clone)]
pub(crate) struct WarningRow {
    pub(crate) uscc: String,
    /// The state's name in the dataset (`pushed`, `closed`, …).
    pub(crate) state: String,
    pub(crate) raised_on: Option<NaiveDate>,
    pub(crate) ended_on: Option<NaiveDate>,
    /// `signature` or `rectification` when overdue.
    pub(crate) overdue: Option<String>,
    pub(crate) responsible_unit: Option<String>,
}

impl Data {
    fn division_of(&self, uscc: &str) -> Option<&str> {
        self.orgs
            .get(uscc)
            .and_then(|o| o.division.as_deref())
            .or_else(|| self.before.get(uscc).and_then(|b| b.1.as_deref()))
    }

    fn unit_of(&self, uscc: &str) -> Option<&str> {
        self.orgs.get(uscc).and_then(|o| o.unit.as_deref())
    }

    fn member(&self, scope: &Scope, uscc: &str) -> bool {
        in_scope(scope, self.division_of(uscc), self.unit_of(uscc))
    }

    /// The scope an organization is counted in for the trend.
    pub(crate) fn scopes_of(division: Option<&str>, unit: Option<&str>) -> Vec<Scope> {
        let mut out = vec![Scope::City];
        if let Some(d) = division {
            out.push(Scope::District(d.to_string()));
        }
        if let Some(u) = unit {
            out.push(Scope::Unit(u.to_string()));
        }
        out
    }

    /// Every district and unit with organizations at the end of the period.
    pub(crate) fn scopes(&self) -> (BTreeSet<String>, BTreeSet<String>) {
        let mut districts = BTreeSet::new();
        let mut units = BTreeSet::new();
        for o in self.orgs.values().filter(|o| o.colour.is_some()) {
            if let Some(d) = &o.division {
                districts.insert(d.clone());
            }
            if let Some(u) = &o.unit {
                units.insert(u.clone());
            }
        }
        (districts, units)
    }

    /// The name of a scope for people.
    pub(crate) fn scope_name(scope: &Scope) -> String {
        match scope {
            Scope::City => "全市".into(),
            Scope::District(d) => division_label(d),
            Scope::Unit(u) => u.clone(),
        }
    }
}

fn colour_index(c: Option<&str>) -> Option<usize> {
    let c = Colour::parse(c?)?;
    Colour::ALL.iter().position(|x| *x == c)
}

/// A scope's briefing: its tables and the figures of its charts.
#[derive(Debug, Clone)]
pub(crate) struct ScopeBrief {
    /// The scope.
    pub(crate) scope: Scope,
    /// Its name for people.
    pub(crate) name: String,
    /// File stem of its workbook and page.
    pub(crate) stem: String,
    /// Its tables, one sheet each.
    pub(crate) tables: Vec<Table>,
    /// Colour counts per published night of the period.
    pub(crate) trend: Vec<(NaiveDate, [i64; 4])>,
    /// Colour counts at the end of the period by district (or, for a
    /// district, by supervising unit).
    pub(crate) breakdown: Vec<(String, [i64; 4])>,
    /// Warnings by state, when a `warnings` dataset is published.
    pub(crate) warnings: Option<Vec<(String, i64)>>,
}

/// Builds a scope's tables.
pub(crate) fn scope_brief(
    data: &Data,
    project: &Project,
    scope: Scope,
    stem: String,
) -> ScopeBrief {
    let name = Data::scope_name(&scope);
    let mut tables = vec![colours(data, &scope)];
    let by_district = grouped(data, &scope, Grouping::District);
    let by_unit = data
        .units_known
        .then(|| grouped(data, &scope, Grouping::Unit));
    let breakdown_table = match scope {
        Scope::District(_) => by_unit.as_ref().unwrap_or(&by_district),
        _ => &by_district,
    };
    let breakdown = breakdown_table
        .rows
        .iter()
        .map(|r| {
            let n = |i: usize| match r.get(i) {
                Some(Cell::Int(n)) => *n,
                _ => 0,
            };
            (r[0].display(), [n(3), n(4), n(5), n(6)])
        })
        .collect();
    if !matches!(scope, Scope::District(_)) {
        tables.push(by_district);
    }
    if let (false, Some(t)) = (matches!(scope, Scope::Unit(_)), by_unit) {
        tables.push(t);
    }
    let members: Option<Vec<&WarningRow>> = data
        .warnings
        .as_ref()
        .map(|w| w.iter().filter(|w| data.member(&scope, &w.uscc)).collect());
    let warnings = members.as_ref().map(|w| {
        let mut by_state: BTreeMap<&str, i64> = BTreeMap::new();
        for w in w {
            *by_state.entry(w.state.as_str()).or_default() += 1;
        }
        // In the order of the lifecycle, by the names handlers know.
        let mut rows: Vec<(String, i64)> = crate::warnings::lifecycle::STATES
            .iter()
            .filter_map(|s| {
                by_state
                    .remove(s.as_str())
                    .map(|n| (s.label().to_string(), n))
            })
            .collect();
        rows.extend(by_state.into_iter().map(|(s, n)| (s.to_string(), n)));
        rows
    });
    if let (Some(w), Some(m)) = (&warnings, &members) {
        tables.push(warnings_table(w));
        tables.push(warnings_of_period(m, data.period.start, data.period.end));
    }
    tables.push(change_summary(data, &scope));
    tables.push(change_list(data, project, &scope));
    tables.push(problems(data, project, &scope));
    if scope == Scope::City {
        tables.push(feed_quality(data, project));
    }
    if let Some(t) = candidates(data, &scope) {
        tables.push(t);
        tables.push(dropouts(data, &scope));
    }
    let trend = data
        .trend
        .iter()
        .map(|(d, m)| (*d, m.get(&scope).copied().unwrap_or_default()))
        .collect();
    ScopeBrief {
        scope,
        name,
        stem,
        tables,
        trend,
        breakdown,
        warnings,
    }
}

fn as_of(data: &Data) -> String {
    match data.previous {
        Some(p) => format!("截至 {}，与 {} 比较", data.end, p),
        None => format!("截至 {}，此前无已发布版本可比较", data.end),
    }
}

fn colours(data: &Data, scope: &Scope) -> Table {
    let mut now = [0i64; 4];
    let mut then = [0i64; 4];
    for (u, o) in &data.orgs {
        if in_scope(scope, o.division.as_deref(), o.unit.as_deref())
            && let Some(i) = colour_index(o.colour.as_deref())
        {
            now[i] += 1;
        }
        if let Some((c, d)) = data.before.get(u)
            && in_scope(scope, d.as_deref(), o.unit.as_deref())
            && let Some(i) = colour_index(c.as_deref())
        {
            then[i] += 1;
        }
    }
    // Organizations gone by the end of the period still count in the
    // previous state of their district (their unit is not known).
    for (u, (c, d)) in &data.before {
        if !data.orgs.contains_key(u)
            && !matches!(scope, Scope::Unit(_))
            && in_scope(scope, d.as_deref(), None)
            && let Some(i) = colour_index(c.as_deref())
        {
            then[i] += 1;
        }
    }
    let total_now: i64 = now.iter().sum();
    let total_then: i64 = then.iter().sum();
    let share = |n: i64, t: i64| if t == 0 { 0.0 } else { n as f64 / t as f64 };
    let rows = Colour::ALL
        .iter()
        .enumerate()
        .map(|(i, c)| {
            vec![
                Cell::text(c.name_zh()),
                Cell::Int(now[i]),
                Cell::Pct(share(now[i], total_now)),
                Cell::Int(then[i]),
                Cell::Int(now[i] - then[i]),
            ]
        })
        .collect();
    Table {
        sheet: "颜色分布".into(),
        title: "清廉码颜色分布".into(),
        columns: ["颜色", "本期末", "占比", "上期末", "增减"]
            .map(String::from)
            .to_vec(),
        rows,
        total: Some(vec![
            Cell::Empty,
            Cell::Int(total_now),
            Cell::Pct(share(total_now, total_now)),
            Cell::Int(total_then),
            Cell::Int(total_now - total_then),
        ]),
        note: as_of(data),
    }
}

#[derive(Clone, Copy)]
enum Grouping {
    District,
    Unit,
}

fn grouped(data: &Data, scope: &Scope, by: Grouping) -> Table {
    let key = |o: &Org| match by {
        Grouping::District => o.division.clone().unwrap_or_default(),
        Grouping::Unit => o.unit.clone().unwrap_or_else(|| NO_UNIT.to_string()),
    };
    let mut now: BTreeMap<String, [i64; 4]> = BTreeMap::new();
    let mut non_green_then: BTreeMap<String, i64> = BTreeMap::new();
    for (u, o) in &data.orgs {
        if !in_scope(scope, o.division.as_deref(), o.unit.as_deref()) {
            continue;
        }
        if let Some(i) = colour_index(o.colour.as_deref()) {
            now.entry(key(o)).or_default()[i] += 1;
        }
        if let Some((c, _)) = data.before.get(u)
            && colour_index(c.as_deref()).is_some_and(|i| i > 0)
        {
            *non_green_then.entry(key(o)).or_default() += 1;
        }
    }
    let mut rows = Vec::new();
    let mut sum = [0i64; 4];
    let mut sum_then = 0;
    for (k, c) in &now {
        let n: i64 = c.iter().sum();
        let non_green = n - c[0];
        let then = non_green_then.get(k).copied().unwrap_or(0);
        for i in 0..4 {
            sum[i] += c[i];
        }
        sum_then += then;
        let (label, code) = match by {
            Grouping::District => (division_label(k), k.clone()),
            Grouping::Unit => (k.clone(), String::new()),
        };
        rows.push(vec![
            Cell::Text(label),
            Cell::Text(code),
            Cell::Int(n),
            Cell::Int(c[0]),
            Cell::Int(c[1]),
            Cell::Int(c[2]),
            Cell::Int(c[3]),
            Cell::Pct(if n == 0 {
                0.0
            } else {
                non_green as f64 / n as f64
            }),
            Cell::Int(non_green - then),
        ]);
    }
    let n: i64 = sum.iter().sum();
    let (sheet, title, first, second) = match by {
        Grouping::District => ("分区县", "各区、县（市）清廉码情况", "区县", "区划代码"),
        Grouping::Unit => (
            "分业务主管单位",
            "各业务主管单位清廉码情况",
            "业务主管单位",
            "备注",
        ),
    };
    Table {
        sheet: sheet.into(),
        title: title.into(),
        columns: [
            first,
            second,
            "组织数",
            "绿码",
            "黄码",
            "橙码",
            "红码",
            "非绿码占比",
            "非绿码较上期增减",
        ]
        .map(String::from)
        .to_vec(),
        rows,
        total: Some(vec![
            Cell::Empty,
            Cell::Empty,
            Cell::Int(n),
            Cell::Int(sum[0]),
            Cell::Int(sum[1]),
            Cell::Int(sum[2]),
            Cell::Int(sum[3]),
            Cell::Pct(if n == 0 {
                0.0
            } else {
                (n - sum[0]) as f64 / n as f64
            }),
            Cell::Int((n - sum[0]) - sum_then),
        ]),
        note: format!(
            "{}；按{}统计，组织数为有颜色的组织",
            as_of(data),
            match by {
                Grouping::District => "登记管理机关所在区划",
                Grouping::Unit => "业务主管单位",
            }
        ),
    }
}

fn warnings_table(by_state: &[(String, i64)]) -> Table {
    let total: i64 = by_state.iter().map(|(_, n)| n).sum();
    Table {
        sheet: "预警状态".into(),
        title: "预警处置状态".into(),
        columns: ["状态", "预警数"].map(String::from).to_vec(),
        rows: by_state
            .iter()
            .map(|(s, n)| vec![Cell::text(s.clone()), Cell::Int(*n)])
            .collect(),
        total: Some(vec![Cell::Empty, Cell::Int(total)]),
        note: "来自已发布的 warnings 数据集（期末版本）".into(),
    }
}

/// New, ended and overdue warnings of the period (DOMAIN.md §8) by the
/// unit responsible for them, from the last night's dataset: raised within
/// the period, ended within it, open at its end, and overdue at its end.
fn warnings_of_period(w: &[&WarningRow], start: NaiveDate, end: NaiveDate) -> Table {
    let within = |d: Option<NaiveDate>| d.is_some_and(|d| start <= d && d <= end);
    let mut by_unit: BTreeMap<&str, [i64; 5]> = BTreeMap::new();
    for w in w {
        let unit = w.responsible_unit.as_deref().unwrap_or("（未指定）");
        let n = by_unit.entry(unit).or_default();
        let open = w.ended_on.is_none();
        for (i, counts) in [
            within(w.raised_on),
            within(w.ended_on),
            open,
            open && w.overdue.as_deref() == Some("signature"),
            open && w.overdue.as_deref() == Some("rectification"),
        ]
        .into_iter()
        .enumerate()
        {
            n[i] += i64::from(counts);
        }
    }
    let mut total = [0i64; 5];
    let rows = by_unit
        .into_iter()
        .map(|(unit, n)| {
            for (t, k) in total.iter_mut().zip(n) {
                *t += k;
            }
            std::iter::once(Cell::text(unit.to_string()))
                .chain(n.map(Cell::Int))
                .collect()
        })
        .collect();
    Table {
        sheet: "预警动态".into(),
        title: "本期预警新增、办结与逾期（按责任单位）".into(),
        columns: [
            "责任单位",
            "本期新增",
            "本期办结",
            "期末在办",
            "逾期未签收",
            "逾期未整改",
        ]
        .map(String::from)
        .to_vec(),
        rows,
        total: Some(
            std::iter::once(Cell::Empty)
                .chain(total.map(Cell::Int))
                .collect(),
        ),
        note: "来自已发布的 warnings 数据集（期末版本）；办结含销号、核实不属实、移交与撤回".into(),
    }
}

fn in_period_changes<'a>(data: &'a Data, scope: &'a Scope) -> impl Iterator<Item = &'a ChangeRow> {
    data.changes
        .iter()
        .filter(move |c| data.member(scope, &c.uscc))
}

fn change_summary(data: &Data, scope: &Scope) -> Table {
    let mut counts: BTreeMap<(usize, usize), i64> = BTreeMap::new();
    let idx = |c: Option<&str>| colour_index(c).unwrap_or(4);
    for c in in_period_changes(data, scope) {
        *counts
            .entry((idx(c.before.as_deref()), idx(c.now.as_deref())))
            .or_default() += 1;
    }
    let name = |i: usize| Colour::ALL.get(i).map_or("无颜色", |c| c.name_zh());
    let total: i64 = counts.values().sum();
    Table {
        sheet: "颜色变化汇总".into(),
        title: "期内清廉码颜色变化汇总".into(),
        columns: ["原颜色", "现颜色", "变化次数", "方向"]
            .map(String::from)
            .to_vec(),
        rows: counts
            .iter()
            .map(|((a, b), n)| {
                let direction = match (a, b) {
                    (4, _) => "新赋码",
                    (_, 4) => "撤码",
                    (a, b) if b > a => "转差",
                    _ => "好转",
                };
                vec![
                    Cell::text(name(*a)),
                    Cell::text(name(*b)),
                    Cell::Int(*n),
                    Cell::text(direction),
                ]
            })
            .collect(),
        total: Some(vec![
            Cell::Empty,
            Cell::Empty,
            Cell::Int(total),
            Cell::Empty,
        ]),
        note: format!(
            "{} 至 {} 各晚已发布的 changes 数据集",
            data.period.start, data.end
        ),
    }
}

fn rule_names(project: &Project, ids: &str) -> String {
    ids.split(',')
        .filter(|s| !s.is_empty())
        .map(|id| match project.rules.iter().find(|r| r.id == id) {
            Some(r) => format!("{id} {}", r.title_for_people()),
            None => id.to_string(),
        })
        .collect::<Vec<_>>()
        .join("；")
}

fn change_list(data: &Data, project: &Project, scope: &Scope) -> Table {
    let rows: Vec<Vec<Cell>> = in_period_changes(data, scope)
        .map(|c| {
            vec![
                Cell::Text(c.date.to_string()),
                Cell::Text(c.uscc.clone()),
                Cell::Text(c.name.clone()),
                Cell::text(colour_zh(c.before.as_deref())),
                Cell::text(colour_zh(c.now.as_deref())),
                Cell::Text(rule_names(project, &c.added)),
                Cell::Text(rule_names(project, &c.removed)),
            ]
        })
        .collect();
    let n = rows.len() as i64;
    Table {
        sheet: "颜色变化明细".into(),
        title: "期内清廉码颜色变化明细".into(),
        columns: [
            "日期",
            "统一社会信用代码",
            "组织名称",
            "原颜色",
            "现颜色",
            "新增问题",
            "消除问题",
        ]
        .map(String::from)
        .to_vec(),
        rows,
        total: Some(vec![
            Cell::Int(n),
            Cell::Empty,
            Cell::Empty,
            Cell::Empty,
            Cell::Empty,
            Cell::Empty,
            Cell::Empty,
        ]),
        note: "首个发布版本的初次赋码不计为变化".into(),
    }
}

fn problems(data: &Data, project: &Project, scope: &Scope) -> Table {
    #[derive(Default)]
    struct Agg {
        orgs: BTreeSet<String>,
        hits: i64,
        points: i64,
    }
    let mut by_rule: BTreeMap<(usize, String), Agg> = BTreeMap::new();
    let mut all_orgs = BTreeSet::new();
    for h in data.hits.iter().filter(|h| data.member(scope, &h.uscc)) {
        let d = Dimension::parse(&h.dimension)
            .and_then(|d| Dimension::ALL.iter().position(|x| *x == d))
            .unwrap_or(Dimension::ALL.len());
        let a = by_rule.entry((d, h.rule_id.clone())).or_default();
        a.orgs.insert(h.uscc.clone());
        a.hits += 1;
        a.points += h.points;
        all_orgs.insert(h.uscc.clone());
    }
    let red: BTreeSet<&str> = data
        .hits
        .iter()
        .filter(|h| h.red_line)
        .map(|h| h.rule_id.as_str())
        .collect();
    let mut totals = (0i64, 0i64);
    let rows = by_rule
        .iter()
        .map(|((d, id), a)| {
            totals.0 += a.hits;
            totals.1 += a.points;
            let rule = project.rules.iter().find(|r| &r.id == id);
            vec![
                Cell::text(Dimension::ALL.get(*d).map_or("其他", |d| d.name_zh())),
                Cell::Text(id.clone()),
                Cell::Text(rule.map_or(id.clone(), |r| r.title_for_people().to_string())),
                Cell::Int(a.orgs.len() as i64),
                Cell::Int(a.hits),
                Cell::Int(a.points),
                Cell::text(
                    if rule.is_some_and(|r| r.red_line) || red.contains(id.as_str()) {
                        "是"
                    } else {
                        "否"
                    },
                ),
            ]
        })
        .collect();
    Table {
        sheet: "问题分布".into(),
        title: "问题按维度和规则分布".into(),
        columns: [
            "维度",
            "规则编号",
            "规则",
            "涉及组织数",
            "问题数",
            "扣分合计",
            "一票否决",
        ]
        .map(String::from)
        .to_vec(),
        rows,
        total: Some(vec![
            Cell::Empty,
            Cell::Empty,
            Cell::Empty,
            Cell::Int(all_orgs.len() as i64),
            Cell::Int(totals.0),
            Cell::Int(totals.1),
            Cell::Empty,
        ]),
        note: format!(
            "{} 已发布的 hits 数据集中计分的事件（按事件去重、按代码匹配）；合计的涉及组织数为去重后的组织数",
            data.end
        ),
    }
}

fn feed_quality(data: &Data, project: &Project) -> Table {
    #[derive(Default)]
    struct Agg {
        nights: i64,
        delivered: i64,
        held: i64,
        failed: i64,
        read: i64,
        quarantined: i64,
        landed: i64,
        keyed: i64,
    }
    let mut by_feed: BTreeMap<&str, Agg> = BTreeMap::new();
    for r in &data.runs {
        let a = by_feed.entry(r.feed.as_str()).or_default();
        a.nights += 1;
        match r.status.as_str() {
            "landed" | "unchanged" => a.delivered += 1,
            "held" => a.held += 1,
            _ => a.failed += 1,
        }
        a.read += r.read;
        a.quarantined += r.quarantined;
        a.landed += r.landed;
        a.keyed += r.keyed;
    }
    let share = |n: i64, d: i64| if d == 0 { 0.0 } else { n as f64 / d as f64 };
    let mut t = Agg::default();
    let rows = by_feed
        .iter()
        .map(|(feed, a)| {
            t.nights += a.nights;
            t.delivered += a.delivered;
            t.held += a.held;
            t.failed += a.failed;
            t.read += a.read;
            t.quarantined += a.quarantined;
            t.landed += a.landed;
            t.keyed += a.keyed;
            vec![
                Cell::text(*feed),
                Cell::Text(
                    project
                        .sources
                        .get(*feed)
                        .map(|s| s.department.clone())
                        .unwrap_or_default(),
                ),
                Cell::Int(a.nights),
                Cell::Int(a.delivered),
                Cell::Int(a.held),
                Cell::Int(a.failed),
                Cell::Int(a.read),
                Cell::Int(a.quarantined),
                Cell::Pct(share(a.quarantined, a.read)),
                Cell::Pct(share(a.keyed, a.landed)),
            ]
        })
        .collect();
    Table {
        sheet: "数据质量".into(),
        title: "各部门数据源质量".into(),
        columns: [
            "数据源",
            "提供部门",
            "期内运行夜数",
            "按时送达",
            "暂扣（沿用上次）",
            "失败",
            "读取记录",
            "隔离记录",
            "隔离率",
            "主键覆盖率",
        ]
        .map(String::from)
        .to_vec(),
        rows,
        total: Some(vec![
            Cell::Empty,
            Cell::Empty,
            Cell::Int(t.nights),
            Cell::Int(t.delivered),
            Cell::Int(t.held),
            Cell::Int(t.failed),
            Cell::Int(t.read),
            Cell::Int(t.quarantined),
            Cell::Pct(share(t.quarantined, t.read)),
            Cell::Pct(share(t.keyed, t.landed)),
        ]),
        note: format!(
            "{} 至 {} 各晚已发布的 runs 数据集；隔离率 = 隔离记录 / 读取记录，主键覆盖率 = 有统一社会信用代码的入库记录 / 入库记录",
            data.period.start, data.end
        ),
    }
}

fn eligible_zh(as_: &str) -> String {
    as_.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| match s {
            "industry_association" => "行业协会商会",
            "foundation" => "基金会",
            "entrusted" => "承接政府转移职能",
            "rated" => "评估等级达标",
            other => other,
        })
        .collect::<Vec<_>>()
        .join("、")
}

fn candidates(data: &Data, scope: &Scope) -> Option<Table> {
    let rows = data.demonstration.as_ref()?;
    let mut list: Vec<&DemoRow> = rows
        .iter()
        .filter(|r| r.rank.is_some() && data.member(scope, &r.uscc))
        .collect();
    list.sort_by_key(|r| r.rank);
    let shortlisted = list.iter().filter(|r| r.shortlisted).count() as i64;
    let mut columns: Vec<String> = [
        "全市排名",
        "统一社会信用代码",
        "组织名称",
        "遴选类型",
        "区县",
    ]
    .map(String::from)
    .to_vec();
    columns.extend(Dimension::ALL.iter().map(|d| d.name_zh().to_string()));
    columns.extend(["总分", "入围"].map(String::from));
    let table_rows = list
        .iter()
        .map(|r| {
            let mut row = vec![
                Cell::Int(r.rank.unwrap_or_default()),
                Cell::Text(r.uscc.clone()),
                Cell::Text(r.name.clone()),
                Cell::Text(eligible_zh(&r.eligible_as)),
                Cell::Text(
                    data.division_of(&r.uscc)
                        .map(division_label)
                        .unwrap_or_default(),
                ),
            ];
            row.extend(r.scores.iter().map(|s| Cell::Num(*s)));
            row.push(Cell::Num(r.total));
            row.push(Cell::text(if r.shortlisted { "是" } else { "否" }));
            row
        })
        .collect();
    let mut total = vec![
        Cell::Int(list.len() as i64),
        Cell::Empty,
        Cell::Empty,
        Cell::Empty,
        Cell::Empty,
    ];
    total.extend(std::iter::repeat_n(Cell::Empty, 6));
    total.push(Cell::Int(shortlisted));
    Some(Table {
        sheet: "示范候选".into(),
        title: "示范典型候选名单".into(),
        columns,
        rows: table_rows,
        total: Some(total),
        note: format!(
            "{} 已发布的 demonstration 数据集：符合遴选类型且通过全部筛选条件的组织，按五个维度得分排名",
            data.end
        ),
    })
}

fn dropouts(data: &Data, scope: &Scope) -> Table {
    let rows: Vec<Vec<Cell>> = data
        .dropouts
        .iter()
        .filter(|d| data.member(scope, &d.uscc))
        .map(|d| {
            vec![
                Cell::Text(d.date.to_string()),
                Cell::Text(d.uscc.clone()),
                Cell::Text(d.name.clone()),
                Cell::Text(d.reason.clone()),
            ]
        })
        .collect();
    let n = rows.len() as i64;
    Table {
        sheet: "候选退出".into(),
        title: "期内退出候选名单的组织".into(),
        columns: ["日期", "统一社会信用代码", "组织名称", "退出原因"]
            .map(String::from)
            .to_vec(),
        rows,
        total: Some(vec![Cell::Int(n), Cell::Empty, Cell::Empty, Cell::Empty]),
        note: "前一发布版本为候选、当晚不再是候选的组织".into(),
    }
}
