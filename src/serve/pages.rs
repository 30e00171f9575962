//! The public pages, in Chinese: the words for every code value, and the
//! templates (`src/serve/templates/*.html`, rendered by minijinja with
//! HTML auto-escaping, so an organization named `<script>` is text). No
//! page needs JavaScript; the large-text switch is a link (`?size=large`).

use std::sync::OnceLock;

use chrono::NaiveDate;
use minijinja::{Environment, Value, context};
use serde::Serialize;

use super::index::{Event, Index, Org, SearchPage};
use crate::keys::{KeyCheck, KeyClass, KeyReason, UsccError};

/// Search results per page.
pub const PER_PAGE: usize = 20;

/// Why a page could not be rendered (a defect in a template).
#[derive(Debug, thiserror::Error)]
#[error("template {0}")]
pub struct PageError(String);

const TEMPLATES: [(&str, &str); 6] = [
    ("base.html", include_str!("templates/base.html")),
    ("org.html", include_str!("templates/org.html")),
    ("search.html", include_str!("templates/search.html")),
    ("card.html", include_str!("templates/card.html")),
    ("error.html", include_str!("templates/error.html")),
    ("invalid.html", include_str!("templates/invalid.html")),
];

/// The style sheet every page links (`/static/site.css`): no inline style
/// or script, so the Content-Security-Policy allows none.
pub const SITE_CSS: &str = include_str!("templates/site.css");

fn env() -> Result<&'static Environment<'static>, PageError> {
    static ENV: OnceLock<Result<Environment<'static>, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .map_err(|e| format!("{name}: {e}"))?;
        }
        Ok(env)
    })
    .as_ref()
    .map_err(|e| PageError(e.clone()))
}

/// A serializable view as a template value.
fn v<T: Serialize>(t: T) -> Value {
    Value::from(minijinja::value::Serde(t))
}

fn render(name: &str, ctx: minijinja::Value) -> Result<String, PageError> {
    env()?
        .get_template(name)
        .and_then(|t| t.render(ctx))
        .map_err(|e| PageError(format!("{name}: {e:#}")))
}

/// The text size a visitor chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TextSize {
    /// Body text 18 px.
    #[default]
    Normal,
    /// Body text 24 px (适老化 large text).
    Large,
}

impl TextSize {
    /// From the `size` query parameter.
    pub fn from_param(p: Option<&str>) -> Self {
        if p == Some("large") {
            Self::Large
        } else {
            Self::Normal
        }
    }

    /// The query suffix that keeps the choice on links (`""` or
    /// `"size=large"`).
    fn param(self) -> &'static str {
        match self {
            Self::Normal => "",
            Self::Large => "size=large",
        }
    }
}

#[derive(Serialize)]
struct Layout {
    title: String,
    large: bool,
    /// Query of the current page with the other size (the switch).
    switch_href: String,
    /// `?size=large` or empty, appended to links.
    keep: String,
    /// `&size=large` or empty, appended to links that have a query.
    keep_amp: String,
    version: Option<String>,
    as_of: Option<String>,
}

fn layout(
    title: &str,
    size: TextSize,
    path: &str,
    query: &[(&str, &str)],
    index: &Index,
) -> Layout {
    let other = match size {
        TextSize::Normal => Some("large"),
        TextSize::Large => None,
    };
    let mut pairs: Vec<String> = query
        .iter()
        .filter(|(k, _)| *k != "size")
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect();
    if let Some(o) = other {
        pairs.push(format!("size={o}"));
    }
    let switch_href = if pairs.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", pairs.join("&"))
    };
    Layout {
        title: title.to_string(),
        large: size == TextSize::Large,
        switch_href,
        keep: if size.param().is_empty() {
            String::new()
        } else {
            format!("?{}", size.param())
        },
        keep_amp: if size.param().is_empty() {
            String::new()
        } else {
            format!("&{}", size.param())
        },
        version: index.version.clone(),
        as_of: index.business_date.map(date_zh),
    }
}

/// Percent-encodes a query value.
pub fn encode(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

/// A date as 2026年11月28日.
pub fn date_zh(d: NaiveDate) -> String {
    d.format("%Y年%m月%d日").to_string()
}

fn opt_date(d: Option<NaiveDate>) -> Option<String> {
    d.map(date_zh)
}

/// The words of a colour, its icon and its CSS class.
pub fn colour_zh(c: &str) -> (&'static str, &'static str, &'static str) {
    match c {
        "green" => ("绿码", "✓", "green"),
        "yellow" => ("黄码", "!", "yellow"),
        "orange" => ("橙码", "!!", "orange"),
        "red" => ("红码", "✕", "red"),
        _ => ("未赋码", "–", "none"),
    }
}

fn colour_meaning(c: &str) -> &'static str {
    match c {
        "green" => "清廉状况良好",
        "yellow" => "存在轻微风险，予以提醒",
        "orange" => "存在较高风险，予以警示",
        "red" => "存在严重风险或触及红线",
        _ => "",
    }
}

fn org_type_zh(t: &str) -> &str {
    match t {
        "social_group" => "社会团体",
        "social_service" => "社会服务机构",
        "foundation" => "基金会",
        "other" => "其他",
        t => t,
    }
}

fn status_zh(s: &str) -> &str {
    match s {
        "active" => "正常",
        "suspended" => "停止活动",
        "revoked" => "已撤销登记",
        "deregistered" => "已注销",
        "certificate_revoked" => "已吊销登记证书",
        s => s,
    }
}

fn conclusion_zh(c: &str) -> &str {
    match c {
        "passed" => "合格",
        "basically_passed" => "基本合格",
        "failed" => "不合格",
        "not_submitted" => "未参加年检",
        "exempt" => "免检",
        c => c,
    }
}

fn list_zh(l: &str) -> &str {
    match l {
        "abnormal" => "活动异常名录",
        "serious" => "严重违法失信名单",
        l => l,
    }
}

fn penalty_zh(p: &str) -> &str {
    match p {
        "warning" => "警告",
        "fine" => "罚款",
        "confiscation" => "没收违法所得或非法财产",
        "suspension" => "限期停止活动",
        "revocation" => "撤销登记或吊销登记证书",
        p => p,
    }
}

fn yes_no(b: Option<bool>) -> Option<&'static str> {
    b.map(|b| if b { "是" } else { "否" })
}

fn money_zh(m: &Option<String>) -> Option<String> {
    m.as_ref().map(|m| format!("{m} 元"))
}

#[derive(Serialize)]
struct Fact {
    label: &'static str,
    value: String,
}

#[derive(Serialize)]
struct TimelineItem {
    date: String,
    title: String,
    detail: String,
}

#[derive(Serialize)]
struct Row {
    cells: Vec<String>,
}

/// What one event reads as on the timeline.
fn describe(e: &Event) -> TimelineItem {
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
    let (title, detail) = match e.kind.as_str() {
        "registered" => ("成立登记".to_string(), s(&e.authority)),
        "annual_inspection" => (
            format!(
                "{}年度检查",
                e.report_year.map(|y| y.to_string()).unwrap_or_default()
            ),
            format!("结论：{}", conclusion_zh(&s(&e.conclusion))),
        ),
        "rating" => (
            format!("等级评估 {}", s(&e.level)),
            opt_date(e.valid_until)
                .map(|d| format!("有效期至 {d}"))
                .unwrap_or_default(),
        ),
        "list_entry" => (
            format!("列入{}", list_zh(&s(&e.list_type))),
            join(&[s(&e.reason), s(&e.authority), s(&e.decision_no)]),
        ),
        "list_removal" => (
            format!("移出{}", list_zh(&s(&e.list_type))),
            join(&[s(&e.authority), s(&e.decision_no)]),
        ),
        "penalty" => (
            format!("行政处罚：{}", penalty_zh(&s(&e.penalty_kind))),
            join(&[
                s(&e.decision_no),
                money_zh(&e.amount).unwrap_or_default(),
                s(&e.authority),
                s(&e.reason),
            ]),
        ),
        "colour_issued" => {
            let (word, icon, _) = colour_zh(&s(&e.level));
            (
                format!("赋码：{icon} {word}"),
                opt_date(e.valid_until)
                    .map(|d| format!("有效期至 {d}"))
                    .unwrap_or_default(),
            )
        }
        other => (status_zh(other).to_string(), s(&e.authority)),
    };
    TimelineItem {
        date: match (e.event_date, e.report_year) {
            (Some(d), _) => date_zh(d),
            (None, Some(y)) => format!("{y}年度"),
            (None, None) => "日期不详".into(),
        },
        title,
        detail,
    }
}

fn join(parts: &[String]) -> String {
    parts
        .iter()
        .filter(|p| !p.is_empty())
        .cloned()
        .collect::<Vec<_>>()
        .join("；")
}

#[derive(Serialize)]
struct Badge {
    word: &'static str,
    icon: &'static str,
    class: &'static str,
    meaning: &'static str,
    issued_on: Option<String>,
    valid_until: Option<String>,
}

fn badge(o: &Org) -> Option<Badge> {
    let c = o.colour.as_deref()?;
    let (word, icon, class) = colour_zh(c);
    Some(Badge {
        word,
        icon,
        class,
        meaning: colour_meaning(c),
        issued_on: opt_date(o.colour_issued_on),
        valid_until: opt_date(o.colour_valid_until),
    })
}

fn facts(o: &Org) -> Vec<Fact> {
    let mut f = vec![
        Fact {
            label: "统一社会信用代码",
            value: o.uscc.clone(),
        },
        Fact {
            label: "组织类型",
            value: org_type_zh(&o.org_type).to_string(),
        },
    ];
    let mut opt = |label: &'static str, v: Option<String>| {
        if let Some(value) = v.filter(|v| !v.is_empty()) {
            f.push(Fact { label, value });
        }
    };
    opt("登记管理机关", o.registrar.clone());
    opt("业务主管单位", o.supervisor.clone());
    opt("法定代表人", o.legal_representative.clone());
    opt("成立日期", opt_date(o.established_on));
    opt(
        "登记状态",
        Some(match o.status_changed_on {
            Some(d) if o.status != "active" => {
                format!("{}（{}）", status_zh(&o.status), date_zh(d))
            }
            _ => status_zh(&o.status).to_string(),
        }),
    );
    opt("住所", o.domicile.clone());
    opt("注册资金", money_zh(&o.registered_funds));
    opt("慈善组织", yes_no(o.charity).map(str::to_string));
    opt(
        "公开募捐资格",
        yes_no(o.public_fundraising).map(str::to_string),
    );
    f
}

fn rows(o: &Org, kind: &str, f: impl Fn(&Event) -> Vec<String>) -> Vec<Row> {
    o.events
        .iter()
        .rev()
        .filter(|e| e.kind == kind)
        .map(|e| Row { cells: f(e) })
        .collect()
}

/// `GET /o/<USCC>`.
pub fn org_page(index: &Index, o: &Org, size: TextSize) -> Result<String, PageError> {
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
    let d = |v: Option<NaiveDate>| opt_date(v).unwrap_or_default();
    let path = format!("/o/{}", o.uscc);
    render(
        "org.html",
        context! {
            layout => v(layout(&o.name, size, &path, &[], index)),
            org => context! {
                uscc => o.uscc.clone(),
                name => o.name.clone(),
                status => status_zh(&o.status),
                deregistered => o.colour.is_none(),
                as_of => date_zh(o.as_of),
            },
            badge => v(badge(o)),
            facts => v(facts(o)),
            inspections => v(rows(o, "annual_inspection", |e| vec![
                e.report_year.map(|y| format!("{y}年度")).unwrap_or_default(),
                conclusion_zh(&s(&e.conclusion)).to_string(),
                d(e.event_date),
            ])),
            ratings => v(rows(o, "rating", |e| vec![s(&e.level), d(e.event_date), d(e.valid_until)])),
            lists => v(rows(o, "list_entry", |e| vec![
                list_zh(&s(&e.list_type)).to_string(),
                s(&e.reason),
                s(&e.authority),
                d(e.event_date),
                opt_date(e.removed_on).unwrap_or_else(|| "尚未移出".into()),
            ])),
            penalties => v(rows(o, "penalty", |e| vec![
                s(&e.decision_no),
                penalty_zh(&s(&e.penalty_kind)).to_string(),
                money_zh(&e.amount).unwrap_or_else(|| "—".into()),
                s(&e.authority),
                d(e.event_date),
            ])),
            timeline => v(o.events.iter().rev().map(describe).collect::<Vec<_>>()),
        },
    )
}

/// `GET /o/<USCC>/card`: the printable card posted at the premises.
pub fn card_page(index: &Index, o: &Org, size: TextSize) -> Result<String, PageError> {
    let path = format!("/o/{}/card", o.uscc);
    render(
        "card.html",
        context! {
            layout => v(layout(&o.name, size, &path, &[], index)),
            org => context! { uscc => o.uscc.clone(), name => o.name.clone(), status => status_zh(&o.status) },
            badge => v(badge(o)),
        },
    )
}

/// `GET /` and `GET /search?q=`.
pub fn search_page(
    index: &Index,
    query: Option<&str>,
    results: Option<&SearchPage<'_>>,
    page: usize,
    size: TextSize,
) -> Result<String, PageError> {
    let q = query.unwrap_or_default();
    let page_str = (page + 1).to_string();
    let mut params = vec![];
    if !q.is_empty() {
        params.push(("q", q));
        params.push(("page", page_str.as_str()));
    }
    let path = if q.is_empty() { "/" } else { "/search" };
    let (items, total, truncated) = match results {
        Some(r) => (
            r.orgs
                .iter()
                .map(|o| {
                    let (word, icon, class) = colour_zh(o.colour.as_deref().unwrap_or("none"));
                    context! {
                        uscc => o.uscc.clone(), name => o.name.clone(), status => status_zh(&o.status),
                        word => word, icon => icon, class => class,
                    }
                })
                .collect::<Vec<_>>(),
            r.total,
            r.truncated,
        ),
        None => (Vec::new(), 0, false),
    };
    let pages = total.div_ceil(PER_PAGE);
    render(
        "search.html",
        context! {
            layout => v(layout(if q.is_empty() { "一码通查" } else { "查询结果" }, size, path, &params, index)),
            q => q,
            q_encoded => encode(q),
            searched => results.is_some(),
            items => items,
            total => total,
            truncated => truncated,
            max => super::index::MAX_RESULTS,
            page => page + 1,
            pages => pages,
            prev => (page > 0).then_some(page),
            next => (page + 1 < pages).then_some(page + 2),
        },
    )
}

/// What failed when a USCC was checked, in words for the public.
pub fn key_problem(check: &KeyCheck) -> (&'static str, String) {
    match (&check.class, &check.reason) {
        (_, Some(KeyReason::Uscc(UsccError::Length(n)))) => (
            "长度检查",
            format!("输入的代码有 {n} 位，统一社会信用代码应为 18 位。"),
        ),
        (_, Some(KeyReason::Uscc(UsccError::Character { position, ch }))) => (
            "字符检查",
            format!("第 {position} 位的字符“{ch}”不会出现在统一社会信用代码中。"),
        ),
        (_, Some(KeyReason::Uscc(UsccError::Division(d)))) => (
            "行政区划码检查",
            format!("第 3 至 8 位应为 6 位数字的行政区划码，输入的是“{d}”。"),
        ),
        (_, Some(KeyReason::Uscc(UsccError::Checksum { found, expected }))) => (
            "校验码检查",
            format!("第 18 位校验码是“{found}”，按前 17 位计算应为“{expected}”，请核对是否输错。"),
        ),
        (_, Some(KeyReason::Uscc(UsccError::OrgCodeChecksum { found, expected }))) => (
            "组织机构代码校验",
            format!(
                "第 9 至 17 位的组织机构代码校验位是“{found}”，应为“{expected}”，请核对是否输错。"
            ),
        ),
        (KeyClass::Repaired, _) => (
            "字符检查",
            format!(
                "代码中含有统一社会信用代码不使用的字母（I、O、Z、S、V），是否要查 {}？",
                check.normalized
            ),
        ),
        (KeyClass::OrgCodeOnly, _) => (
            "代码类型检查",
            "这是 9 位组织机构代码，不是 18 位统一社会信用代码；可按名称查询。".into(),
        ),
        (KeyClass::RegNoOnly, _) => (
            "代码类型检查",
            "这是 15 位注册号，不是 18 位统一社会信用代码；可按名称查询。".into(),
        ),
        (KeyClass::Missing, _) => ("输入检查", "没有输入代码。".into()),
        _ => ("代码检查", "这不是统一社会信用代码；可按名称查询。".into()),
    }
}

/// The 400 page of an invalid USCC.
pub fn invalid_page(
    index: &Index,
    input: &str,
    check: &KeyCheck,
    size: TextSize,
) -> Result<String, PageError> {
    let (name, message) = key_problem(check);
    render(
        "invalid.html",
        context! {
            layout => v(layout("代码有误", size, "/", &[], index)),
            input => input,
            check => name,
            message => message,
            suggestion => (check.class == KeyClass::Repaired).then(|| check.normalized.clone()),
            q_encoded => encode(input),
        },
    )
}

/// A 404, 429, 503 or other plain error page.
pub fn error_page(
    index: &Index,
    title: &str,
    message: &str,
    size: TextSize,
) -> Result<String, PageError> {
    render(
        "error.html",
        context! {
            layout => v(layout(title, size, "/", &[], index)),
            title => title,
            message => message,
        },
    )
}
