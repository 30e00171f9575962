//! Writes one planned organization into every feed, in each department's
//! own field names and formats, and records its situations as ground truth.

use std::collections::BTreeSet;

use chrono::{Datelike, Days, Months, NaiveDate, NaiveTime, TimeZone};
use chrono_tz::Asia::Shanghai;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::GenerateOptions;
use super::org::{OrgPlan, OrgType, Status, date_between, plan, year_start};
use super::out::{GenerateError, Writers};
use crate::keys::CHARSET;

/// Ground truth collected while writing.
#[derive(Debug, Default)]
pub(crate) struct Truth {
    pub(crate) rows: u64,
    pub(crate) rules: BTreeSet<&'static str>,
}

/// `2017年03月24日`, as the registry and police write dates.
fn cn(d: NaiveDate) -> String {
    format!("{}年{:02}月{:02}日", d.year(), d.month(), d.day())
}

/// `2017-03-24`.
fn iso(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// `2017-03-24 00:00:00`, as the 双公示 export writes dates.
fn stamp(d: NaiveDate) -> String {
    format!("{} 00:00:00", iso(d))
}

/// Epoch milliseconds of the date's midnight in Beijing, as the court API sends.
fn epoch_ms(d: NaiveDate) -> i64 {
    Shanghai
        .from_local_datetime(&d.and_time(NaiveTime::MIN))
        .single()
        .map_or(0, |t| t.timestamp_millis())
}

fn yes_no(b: bool) -> &'static str {
    if b { "是" } else { "否" }
}

/// Yuan with two decimals.
fn yuan(v: u64) -> String {
    format!("{}.{:02}", v / 100, v % 100)
}

/// The key as a department might type it: 2% dirty (full-width, spaced,
/// lower case, hyphenated), all normalizing back to the code.
fn key_form(rng: &mut ChaCha8Rng, uscc: &str) -> String {
    if !rng.random_bool(0.02) {
        return uscc.to_string();
    }
    match rng.random_range(0..4u8) {
        0 => uscc
            .chars()
            .map(|c| char::from_u32(c as u32 + 0xFEE0).unwrap_or(c))
            .collect(),
        1 => format!(" {} {} ", &uscc[..8], &uscc[8..]),
        2 => uscc.to_ascii_lowercase(),
        _ => format!("{}-{}-{}", &uscc[..2], &uscc[2..8], &uscc[8..]),
    }
}

/// A code with a wrong check character: quarantined at ingest.
fn corrupt(uscc: &str) -> String {
    let last = uscc.as_bytes()[17];
    let pos = CHARSET.iter().position(|c| *c == last).unwrap_or(0);
    let wrong = CHARSET[(pos + 7) % CHARSET.len()];
    format!("{}{}", &uscc[..17], char::from(wrong))
}

/// Noise records: a clean key, now and then an invalid one (`true`: the
/// key was corrupted, and the record must be quarantined).
fn noise_key(rng: &mut ChaCha8Rng, uscc: &str) -> (String, bool) {
    if rng.random_bool(0.01) {
        (corrupt(uscc), true)
    } else {
        (key_form(rng, uscc), false)
    }
}

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "林", "罗", "高", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "沈", "叶",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
    "超", "秀英", "华", "慧", "建国", "晓东", "海燕", "志强", "雪梅", "国平", "丹", "鹏", "婷",
    "浩",
];

fn person_name(rng: &mut ChaCha8Rng) -> String {
    format!(
        "{}{}",
        SURNAMES[rng.random_range(0..SURNAMES.len())],
        GIVEN[rng.random_range(0..GIVEN.len())]
    )
}

/// Birth date and synthetic 18-digit resident identity number (valid ISO
/// 7064 MOD 11-2 check digit) of person `slot` (0–7) of organization
/// `index`. Birth date and sequence number together encode (index, slot), so
/// no two persons share a number (for up to 1.7 million organizations) and
/// person-linked rules meet only the links the generator intends.
fn identity(division: &str, as_of: NaiveDate, index: u64, slot: u64) -> (NaiveDate, String) {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    const SPAN: u64 = 13_870; // days in 38 years of birth dates
    let n = index * 8 + slot;
    let base = NaiveDate::from_ymd_opt(as_of.year() - 66, 1, 1).unwrap_or(as_of);
    let birth = base.checked_add_days(Days::new(n % SPAN)).unwrap_or(base);
    let seq = (n / SPAN) % 1000;
    let body = format!("{}{}{:03}", division, birth.format("%Y%m%d"), seq);
    let sum: u32 = body
        .bytes()
        .zip(W)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    (
        birth,
        format!("{body}{}", char::from(CHECK[(sum % 11) as usize])),
    )
}

struct Person {
    record_id: String,
    name: String,
    id_number: String,
    role: &'static str,
    start: NaiveDate,
    end: Option<NaiveDate>,
    public_official: bool,
    retired_cadre: bool,
    approval: Option<(String, NaiveDate)>,
    paid: bool,
    birth_year: i32,
    terms: u32,
}

fn write_person(
    w: &mut Writers,
    org: &OrgPlan,
    key: &str,
    p: &Person,
    copies: usize,
) -> Result<(), GenerateError> {
    let (doc, doc_date) = p
        .approval
        .as_ref()
        .map_or((String::new(), String::new()), |(d, on)| {
            (d.clone(), iso(*on))
        });
    w.persons.write_copies(
        &[
            &p.record_id,
            key,
            &org.name,
            &p.name,
            &p.id_number,
            p.role,
            &iso(p.start),
            &p.end.map(iso).unwrap_or_default(),
            yes_no(p.public_official),
            yes_no(p.retired_cadre),
            &doc,
            &doc_date,
            yes_no(p.paid),
            &p.birth_year.to_string(),
            &p.terms.to_string(),
        ],
        copies,
        false,
    )
}

/// How many times to write a record: twice now and then (exact duplicates
/// that ingest must drop and count).
fn copies(rng: &mut ChaCha8Rng) -> usize {
    if rng.random_bool(0.005) { 2 } else { 1 }
}

struct Ctx<'a> {
    w: &'a mut Writers,
    truth: &'a mut Truth,
    as_of: NaiveDate,
}

impl Ctx<'_> {
    fn truth(
        &mut self,
        rule: &'static str,
        uscc: &str,
        feed: &str,
        record: &str,
        confidence: &str,
    ) -> Result<(), GenerateError> {
        self.truth.rows += 1;
        self.truth.rules.insert(rule);
        self.w.truth.write(&[rule, uscc, feed, record, confidence])
    }

    /// A date in the current natural year, up to the business date.
    fn this_year(&self, rng: &mut ChaCha8Rng) -> NaiveDate {
        date_between(rng, year_start(self.as_of), self.as_of)
    }

    /// A date in the previous natural year.
    fn last_year(&self, rng: &mut ChaCha8Rng) -> NaiveDate {
        let start = NaiveDate::from_ymd_opt(self.as_of.year() - 1, 1, 1).unwrap_or(self.as_of);
        let end = NaiveDate::from_ymd_opt(self.as_of.year() - 1, 12, 31).unwrap_or(self.as_of);
        date_between(rng, start, end)
    }
}

/// Writes organization `org` (and, when it has one, its revoked predecessor).
pub(crate) fn emit(
    org: &OrgPlan,
    options: &GenerateOptions,
    w: &mut Writers,
    truth: &mut Truth,
) -> Result<(), GenerateError> {
    let mut ctx = Ctx {
        w,
        truth,
        as_of: options.as_of,
    };
    let mut rng = org.rng.clone();
    let leader = registry_and_persons(&mut ctx, &mut rng, org)?;
    if org.has("ORG-02") {
        // The leader led a predecessor organization, revoked within five years.
        let pred = plan(
            options.seed,
            options.orgs + org.index,
            options.orgs,
            options.as_of,
        );
        let mut prng = pred.rng.clone();
        write_registry(&mut ctx, &mut prng, &pred)?;
        let mut p = Person {
            record_id: format!("RY{:09}9", pred.index),
            role: "负责人",
            start: pred.registered_on,
            end: pred.status_changed_on,
            ..leader_clone(&leader)
        };
        p.terms = 1;
        write_person(ctx.w, &pred, &pred.uscc, &p, 1)?;
        ctx.truth("OPS-09", &pred.uscc, "registry", &pred.uscc, "high")?;
        ctx.truth("ORG-02", &org.uscc, "persons", &p.record_id, "high")?;
    }
    if org.status == Status::Deregistered {
        return Ok(());
    }
    annual_reports(&mut ctx, &mut rng, org)?;
    ratings_and_projects(&mut ctx, &mut rng, org)?;
    drc(&mut ctx, &mut rng, org)?;
    police(&mut ctx, &mut rng, org, &leader)?;
    court(&mut ctx, &mut rng, org)?;
    credit(&mut ctx, &mut rng, org)?;
    inspection(&mut ctx, &mut rng, org)?;
    for (rule, feed) in [
        ("ORG-01", "registry"),
        ("CUL-01", "registry"),
        ("OPS-09", "registry"),
    ] {
        if org.has(rule) {
            ctx.truth(rule, &org.uscc, feed, &org.uscc, "high")?;
        }
    }
    Ok(())
}

fn leader_clone(p: &Person) -> Person {
    Person {
        record_id: p.record_id.clone(),
        name: p.name.clone(),
        id_number: p.id_number.clone(),
        role: p.role,
        start: p.start,
        end: p.end,
        public_official: p.public_official,
        retired_cadre: p.retired_cadre,
        approval: p.approval.clone(),
        paid: p.paid,
        birth_year: p.birth_year,
        terms: p.terms,
    }
}

const SUPERVISORS: &[&str] = &[
    "杭州市教育局",
    "杭州市民政局",
    "杭州市科学技术局",
    "杭州市文化广电旅游局",
    "杭州市体育局",
    "杭州市卫生健康委员会",
    "杭州市商务局",
    "",
];

fn write_registry(
    ctx: &mut Ctx<'_>,
    rng: &mut ChaCha8Rng,
    org: &OrgPlan,
) -> Result<(), GenerateError> {
    let supervisor = SUPERVISORS[rng.random_range(0..SUPERVISORS.len())];
    let funds = match org.org_type {
        OrgType::Foundation => rng.random_range(2_000_000..20_000_000u64),
        _ => rng.random_range(30_000..500_000u64),
    };
    let key = key_form(rng, &org.uscc);
    ctx.w.registry.write(&[
        &key,
        &org.name,
        org.org_type.label(),
        org.registrar,
        org.division,
        supervisor,
        &cn(org.registered_on),
        org.status.label(),
        &org.status_changed_on.map(cn).unwrap_or_default(),
        &format!("浙江省杭州市{}号", rng.random_range(1..999u32)),
        &yuan(funds * 100),
        yes_no(org.charity),
        yes_no(org.public_fundraising),
        yes_no(org.party_org),
        yes_no(org.party_in_charter),
        yes_no(org.fallback_managed),
        yes_no(org.pledge),
    ])
}

/// Registry row and key persons; returns the leader.
fn registry_and_persons(
    ctx: &mut Ctx<'_>,
    rng: &mut ChaCha8Rng,
    org: &OrgPlan,
) -> Result<Person, GenerateError> {
    write_registry(ctx, rng, org)?;
    let as_of = ctx.as_of;
    let mut roles = vec!["负责人", "法定代表人", "监事"];
    if org.party_org {
        roles.push("党组织负责人");
    }
    if rng.random_bool(0.3) {
        roles.push("发起人");
    }
    let mut leader = None;
    for (slot, role) in roles.into_iter().enumerate() {
        let (birth, id_number) = identity(org.division, as_of, org.index, slot as u64);
        let birth_year = birth.year();
        let start = date_between(rng, org.registered_on, as_of);
        let mut p = Person {
            record_id: format!("RY{:09}{slot}", org.index),
            name: person_name(rng),
            id_number,
            role,
            start,
            end: None,
            public_official: false,
            retired_cadre: false,
            approval: None,
            paid: role != "监事",
            birth_year,
            terms: 1,
        };
        if slot == 0 && rng.random_bool(0.03) {
            // A public official with the approval a concurrent post needs.
            p.public_official = true;
            p.paid = false;
            p.approval = Some((
                format!(
                    "杭组干〔{}〕{}号",
                    start.year(),
                    rng.random_range(1..300u32)
                ),
                start,
            ));
        }
        if slot == 2 && rng.random_bool(0.02) {
            // A retired cadre within the limits: unpaid, under 70, at most two terms.
            p.retired_cadre = true;
            p.paid = false;
            p.birth_year = as_of.year() - rng.random_range(60..69);
            p.terms = rng.random_range(1..=2);
        }
        if slot == 0 && org.has("GOV-01") {
            p.public_official = true;
            p.paid = false;
            p.approval = None;
        }
        if slot == 2 && org.has("GOV-02") {
            p.retired_cadre = true;
            match rng.random_range(0..3u8) {
                0 => p.paid = true,
                1 => {
                    p.paid = false;
                    p.birth_year = as_of.year() - 74;
                }
                _ => {
                    p.paid = false;
                    p.birth_year = as_of.year() - 64;
                    p.terms = 3;
                }
            }
        }
        let key = key_form(rng, &org.uscc);
        let n = copies(rng);
        write_person(ctx.w, org, &key, &p, n)?;
        if slot == 0 && org.has("GOV-01") {
            ctx.truth("GOV-01", &org.uscc, "persons", &p.record_id, "high")?;
        }
        if slot == 2 && org.has("GOV-02") {
            ctx.truth("GOV-02", &org.uscc, "persons", &p.record_id, "high")?;
        }
        if slot == 0 {
            leader = Some(p);
        }
    }
    // Former holders: history that person-linked rules must not count.
    for slot in 5..5 + rng.random_range(0..=3u64) {
        let (birth, id_number) = identity(org.division, as_of, org.index, slot);
        let start = date_between(rng, org.registered_on, as_of);
        let p = Person {
            record_id: format!("RY{:09}{slot}", org.index),
            name: person_name(rng),
            id_number,
            role: ["负责人", "法定代表人", "监事", "发起人"][rng.random_range(0..4)],
            start,
            end: Some(date_between(
                rng,
                start,
                as_of.checked_sub_days(Days::new(1)).unwrap_or(as_of),
            )),
            public_official: false,
            retired_cadre: false,
            approval: None,
            paid: true,
            birth_year: birth.year(),
            terms: 1,
        };
        let key = key_form(rng, &org.uscc);
        write_person(ctx.w, org, &key, &p, 1)?;
    }
    leader.ok_or_else(|| GenerateError::Io {
        path: "persons".into(),
        source: std::io::Error::other("no leader planned"),
    })
}

fn annual_reports(
    ctx: &mut Ctx<'_>,
    rng: &mut ChaCha8Rng,
    org: &OrgPlan,
) -> Result<(), GenerateError> {
    let report_year = ctx.as_of.year() - 1;
    for year in [report_year - 1, report_year] {
        let (conclusion, rule) = if year == report_year {
            if org.has("INS-01") {
                ("不合格", Some("INS-01"))
            } else if org.has("INS-02") {
                ("基本合格", Some("INS-02"))
            } else if org.has("INS-03") {
                ("未参检", Some("INS-03"))
            } else {
                ("合格", None)
            }
        } else if org.has("INS-04") {
            ("未参检", None)
        } else {
            ("合格", None)
        };
        // Conclusions for a year are issued in the following year.
        let issued = if year == report_year {
            ctx.this_year(rng)
        } else {
            ctx.last_year(rng)
        };
        let record_id = format!("NJ{:09}{year}", org.index);
        let mut fields: Vec<String> = vec![
            key_form(rng, &org.uscc),
            org.name.clone(),
            year.to_string(),
            conclusion.to_string(),
            iso(issued),
        ];
        if conclusion == "未参检" {
            fields.extend(std::iter::repeat_n(String::new(), 9));
        } else {
            fields.extend(finances(rng, org, year == report_year));
        }
        fields.push(record_id.clone());
        let refs: Vec<&str> = fields.iter().map(String::as_str).collect();
        let n = copies(rng);
        ctx.w.annual_reports.write_copies(&refs, n, false)?;
        if let Some(rule) = rule {
            ctx.truth(rule, &org.uscc, "annual_reports", &record_id, "high")?;
        }
        if year == report_year {
            if org.has("INS-04") {
                ctx.truth("INS-04", &org.uscc, "annual_reports", &record_id, "high")?;
            }
            for rule in ["OPS-01", "OPS-02", "GOV-03"] {
                if org.has(rule) {
                    ctx.truth(rule, &org.uscc, "annual_reports", &record_id, "high")?;
                }
            }
        }
    }
    Ok(())
}

/// Income, spending and assets in fen-exact yuan: clean unless the
/// organization carries a spending or government-purchase situation (and
/// only for the report year).
fn finances(rng: &mut ChaCha8Rng, org: &OrgPlan, report_year: bool) -> Vec<String> {
    let prev_income = rng.random_range(2_000_000..8_000_000u64);
    let income = rng.random_range(2_000_000..8_000_000u64);
    let donation = if org.charity { income / 2 } else { income / 10 };
    let mut government = income * rng.random_range(0..30u64) / 100;
    let prev_net_assets = rng.random_range(1_000_000..30_000_000u64);
    // Charities: charitable spending at least 80% of last year's income and
    // 10% of net assets; management under 8% of total expense.
    let mut charitable = (prev_income * 85 / 100).max(prev_net_assets / 10);
    let mut management = rng.random_range(50_000..150_000u64);
    if report_year && org.has("OPS-01") {
        charitable = prev_net_assets / 100;
        charitable = charitable.min(prev_income * 5 / 100);
    }
    if report_year && org.has("OPS-02") {
        management = charitable / 2 + 400_000;
    }
    if report_year && org.has("GOV-03") {
        government = income * 60 / 100;
    }
    let total_expense = charitable + management + rng.random_range(0..200_000u64);
    let net_assets = prev_net_assets + income.saturating_sub(total_expense / 2);
    [
        income,
        donation,
        government,
        total_expense,
        charitable,
        management,
        net_assets,
        prev_income,
        prev_net_assets,
    ]
    .into_iter()
    .map(|v| yuan(v * 100))
    .collect()
}

fn ratings_and_projects(
    ctx: &mut Ctx<'_>,
    rng: &mut ChaCha8Rng,
    org: &OrgPlan,
) -> Result<(), GenerateError> {
    let as_of = ctx.as_of;
    if rng.random_bool(0.15) || org.has("GOV-03") {
        let assessed = date_between(
            rng,
            as_of.checked_sub_months(Months::new(58)).unwrap_or(as_of),
            as_of,
        );
        let level = if org.has("GOV-03") {
            ["1A", "2A"][rng.random_range(0..2)]
        } else {
            ["2A", "3A", "3A", "4A", "4A", "5A"][rng.random_range(0..6)]
        };
        let valid_until = assessed
            .checked_add_months(Months::new(60))
            .and_then(|d| d.checked_sub_days(Days::new(1)))
            .unwrap_or(as_of);
        let record = json!({
            "recordId": format!("PG{:09}", org.index),
            "creditCode": key_form(rng, &org.uscc),
            "orgName": org.name,
            "level": level,
            "score": rng.random_range(600..990u32) as f64 / 10.0,
            "assessDate": iso(assessed),
            "validUntil": iso(valid_until),
        });
        let n = copies(rng);
        ctx.w.ratings.write_copies(&record, n, false)?;
    }
    // 371 welfare projects per 10,000 organizations, 31 million yuan in all.
    if rng.random_bool(0.0371) || org.has("OPS-06") {
        let contract = rng.random_range(30_000..137_000u64);
        let failed = org.has("OPS-06") && rng.random_bool(0.5);
        let overspent = org.has("OPS-06") && !failed;
        let spent = if overspent {
            contract + contract / 5
        } else {
            contract * rng.random_range(70..100u64) / 100
        };
        let evaluated_on = if org.has("OPS-06") {
            ctx.this_year(rng)
        } else {
            date_between(
                rng,
                year_start(as_of)
                    .checked_sub_months(Months::new(12))
                    .unwrap_or(as_of),
                as_of,
            )
        };
        let id = format!("XM{:09}", org.index);
        let programme = ["公益创投", "政府购买服务"][rng.random_range(0..2)];
        let evaluation = if failed {
            "不合格"
        } else {
            ["优秀", "良好", "合格"][rng.random_range(0..3)]
        };
        let record = json!({
            "projectId": id,
            "orgCreditCode": key_form(rng, &org.uscc),
            "orgName": org.name,
            "programme": programme,
            "funder": "杭州市民政局",
            "contractAmount": yuan(contract * 100),
            "disbursedAmount": yuan(contract * 100),
            "spentAmount": yuan(spent * 100),
            "startDate": iso(evaluated_on.checked_sub_months(Months::new(10)).unwrap_or(evaluated_on)),
            "endDate": iso(evaluated_on),
            "evaluation": evaluation,
            "evaluatedOn": iso(evaluated_on),
            "auditFindings": if overspent { "超支" } else { "" },
        });
        let n = copies(rng);
        ctx.w.projects.write_copies(&record, n, false)?;
        if org.has("OPS-06") {
            ctx.truth("OPS-06", &org.uscc, "projects", &id, "high")?;
        }
    }
    Ok(())
}

fn drc(ctx: &mut Ctx<'_>, rng: &mut ChaCha8Rng, org: &OrgPlan) -> Result<(), GenerateError> {
    let as_of = ctx.as_of;
    // Zhejiang 2018: 优秀 2.5%, 良好 36.3%, 中等 52.2%, 较差 9.0% (较差 is XD-04).
    let (grade, score) = if org.has("XD-04") {
        ("较差", rng.random_range(300..600u32))
    } else {
        match rng.random_range(0..910u32) {
            0..25 => ("优秀", rng.random_range(900..1000u32)),
            25..388 => ("良好", rng.random_range(750..900u32)),
            _ => ("中等", rng.random_range(600..750u32)),
        }
    };
    let id = format!("FG{:09}E", org.index);
    let evaluated = date_between(
        rng,
        as_of.checked_sub_months(Months::new(11)).unwrap_or(as_of),
        as_of,
    );
    let (key, invalid_key) = if org.has("XD-04") {
        (key_form(rng, &org.uscc), false)
    } else {
        noise_key(rng, &org.uscc)
    };
    let record = json!({
        "id": id,
        "recordType": "信用评价",
        "tyshxydm": key,
        "jgmc": org.name,
        "evalVersion": format!("ZJ-SHZZ-{}", evaluated.year()),
        "score": score,
        "grade": grade,
        "evalDate": iso(evaluated),
        "listName": Value::Null,
        "startDate": Value::Null,
        "endDate": Value::Null,
    });
    let n = copies(rng);
    ctx.w.drc.write_copies(&record, n, invalid_key)?;
    if org.has("XD-04") {
        ctx.truth("XD-04", &org.uscc, "drc", &id, "high")?;
    }
    let punished = org.has("XD-05");
    if punished || rng.random_bool(0.002) {
        let id = format!("FG{:09}P", org.index);
        let from = date_between(
            rng,
            as_of.checked_sub_months(Months::new(30)).unwrap_or(as_of),
            as_of.checked_sub_months(Months::new(1)).unwrap_or(as_of),
        );
        // An expired entry is noise that must not trigger.
        let to = (!punished).then(|| {
            date_between(
                rng,
                from,
                as_of.checked_sub_days(Days::new(1)).unwrap_or(as_of),
            )
        });
        let record = json!({
            "id": id,
            "recordType": "联合惩戒",
            "tyshxydm": key_form(rng, &org.uscc),
            "jgmc": org.name,
            "evalVersion": Value::Null,
            "score": Value::Null,
            "grade": Value::Null,
            "evalDate": Value::Null,
            "listName": "严重失信主体联合惩戒名单",
            "startDate": iso(from),
            "endDate": to.map(iso),
        });
        ctx.w.drc.write(&record)?;
        if punished {
            ctx.truth("XD-05", &org.uscc, "drc", &id, "high")?;
        }
    }
    Ok(())
}

fn police(
    ctx: &mut Ctx<'_>,
    rng: &mut ChaCha8Rng,
    org: &OrgPlan,
    leader: &Person,
) -> Result<(), GenerateError> {
    let as_of = ctx.as_of;
    if org.has("XD-03") {
        let id = format!("A3301{:010}F", org.index);
        let record = json!({
            "caseNo": id,
            "subjectCode": key_form(rng, &org.uscc),
            "subjectName": org.name,
            "subjectPersonId": Value::Null,
            "caseType": "非法集资",
            "filedDate": cn(ctx.this_year(rng)),
            "status": "立案侦查",
            "outcome": Value::Null,
            "closedDate": Value::Null,
        });
        ctx.w.police.write(&record)?;
        ctx.truth("XD-03", &org.uscc, "police", &id, "high")?;
    }
    if org.has("ORG-03") {
        // A key person convicted within five years: linked by identity number only.
        let closed = date_between(
            rng,
            as_of.checked_sub_months(Months::new(54)).unwrap_or(as_of),
            as_of,
        );
        let id = format!("A3301{:010}C", org.index);
        let record = json!({
            "caseNo": id,
            "subjectCode": Value::Null,
            "subjectName": Value::Null,
            "subjectPersonName": leader.name,
            "subjectPersonId": leader.id_number,
            "caseType": "诈骗",
            "filedDate": cn(closed.checked_sub_months(Months::new(8)).unwrap_or(closed)),
            "status": "已结案",
            "outcome": "有罪判决",
            "closedDate": cn(closed),
        });
        ctx.w.police.write(&record)?;
        ctx.truth("ORG-03", &org.uscc, "police", &id, "high")?;
    }
    if org.has("XD-06") {
        // The illegal-organization list carries names only; this one matches
        // a registered name (written without its place prefix).
        let id = format!("A3301{:010}N", org.index);
        let record = json!({
            "caseNo": id,
            "subjectCode": Value::Null,
            "subjectName": crate::keys::normalize_name(&org.name),
            "subjectPersonId": Value::Null,
            "caseType": "非法社会组织",
            "filedDate": cn(ctx.this_year(rng)),
            "status": "已取缔",
            "outcome": Value::Null,
            "closedDate": Value::Null,
        });
        ctx.w.police.write(&record)?;
        ctx.truth("XD-06", &org.uscc, "police", &id, "low")?;
    }
    if rng.random_bool(0.002) {
        // An unregistered illegal organization: matches nobody.
        let record = json!({
            "caseNo": format!("A3301{:010}U", org.index),
            "subjectCode": Value::Null,
            "subjectName": format!("中华{}复兴总会", SURNAMES[rng.random_range(0..SURNAMES.len())]),
            "subjectPersonId": Value::Null,
            "caseType": "非法社会组织",
            "filedDate": cn(ctx.this_year(rng)),
            "status": "已取缔",
            "outcome": Value::Null,
            "closedDate": Value::Null,
        });
        ctx.w.police.write(&record)?;
    }
    Ok(())
}

const COURTS: &[&str] = &[
    "杭州市中级人民法院",
    "杭州市西湖区人民法院",
    "杭州市上城区人民法院",
    "杭州市拱墅区人民法院",
    "杭州市萧山区人民法院",
    "杭州市余杭区人民法院",
    "杭州互联网法院",
];

/// The court's `cardNum`: the USCC, or (5%) the printed organization code.
fn card_num(rng: &mut ChaCha8Rng, org: &OrgPlan) -> String {
    if rng.random_bool(0.05) {
        org.org_code_printed()
    } else {
        key_form(rng, &org.uscc)
    }
}

/// An enforced-party (被执行人) record in the court's own keys.
fn enforcement(
    org: &OrgPlan,
    case_code: &str,
    card_num: Option<String>,
    court_name: &str,
    registered: NaiveDate,
    amount: u64,
    unperformed: u64,
) -> Value {
    json!({
        "recordType": "被执行人",
        "caseCode": case_code,
        "iname": org.name,
        "cardNum": card_num,
        "businessEntity": Value::Null,
        "courtName": court_name,
        "areaName": "浙江",
        "regDate": epoch_ms(registered),
        "duty": Value::Null,
        "performance": Value::Null,
        "disruptTypeName": Value::Null,
        "publishDate": Value::Null,
        "delistedDate": Value::Null,
        "execMoney": yuan(amount * 100),
        "unperformedMoney": yuan(unperformed * 100),
        "caseState": if unperformed > 0 { "执行中" } else { "执行完毕" },
    })
}

fn court(ctx: &mut Ctx<'_>, rng: &mut ChaCha8Rng, org: &OrgPlan) -> Result<(), GenerateError> {
    let as_of = ctx.as_of;
    let court_name = COURTS[rng.random_range(0..COURTS.len())];
    let dishonest = org.has("XD-01");
    if dishonest || rng.random_bool(0.003) {
        let reg = date_between(
            rng,
            as_of.checked_sub_months(Months::new(36)).unwrap_or(as_of),
            as_of.checked_sub_months(Months::new(2)).unwrap_or(as_of),
        );
        let published = reg.checked_add_days(Days::new(45)).unwrap_or(reg);
        // A delisted debtor is noise that must not trigger.
        let delisted = (!dishonest).then(|| date_between(rng, published, as_of));
        let id = format!("（{}）浙0106执{}号", reg.year(), org.index);
        let record = json!({
            "recordType": "失信被执行人",
            "caseCode": id,
            "iname": org.name,
            "cardNum": card_num(rng, org),
            "businessEntity": person_name(rng),
            "courtName": court_name,
            "areaName": "浙江",
            "regDate": epoch_ms(reg),
            "duty": "支付货款及利息",
            "performance": "全部未履行",
            "disruptTypeName": "有履行能力而拒不履行生效法律文书确定义务",
            "publishDate": epoch_ms(published),
            "delistedDate": delisted.map(epoch_ms),
            "execMoney": Value::Null,
            "unperformedMoney": Value::Null,
            "caseState": Value::Null,
        });
        let n = copies(rng);
        ctx.w.court.write_copies(&record, n, false)?;
        if dishonest {
            ctx.truth("XD-01", &org.uscc, "court", &id, "high")?;
        }
    }
    // Enforcement cases fully performed: history that must not trigger.
    for n in 0..rng.random_range(0..=3u32) {
        let reg = date_between(
            rng,
            as_of.checked_sub_months(Months::new(60)).unwrap_or(as_of),
            as_of,
        );
        let amount = rng.random_range(10_000..500_000u64);
        let case = format!(
            "（{}）浙01执{}号",
            reg.year(),
            org.index * 32 + u64::from(n)
        );
        let (key, invalid_key) = noise_key(rng, &org.uscc);
        let record = enforcement(org, &case, Some(key), court_name, reg, amount, 0);
        ctx.w.court.write_copies(&record, 1, invalid_key)?;
    }
    let enforced = org.has("XD-02");
    if enforced || rng.random_bool(0.005) {
        let reg = date_between(
            rng,
            as_of.checked_sub_months(Months::new(24)).unwrap_or(as_of),
            as_of,
        );
        let amount = rng.random_range(10_000..2_000_000u64);
        let unperformed = if enforced { amount / 2 } else { 0 };
        // One in ten enforced records names the party only: low confidence.
        let name_only = enforced && rng.random_bool(0.1);
        // Case numbers carry the organization's index: unique across the feed.
        let id = format!("（{}）浙0106执{}号之一", reg.year(), org.index);
        let key = (!name_only).then(|| card_num(rng, org));
        let record = enforcement(org, &id, key, court_name, reg, amount, unperformed);
        ctx.w.court.write(&record)?;
        if enforced {
            let confidence = if name_only { "low" } else { "high" };
            ctx.truth("XD-02", &org.uscc, "court", &id, confidence)?;
        }
    }
    // Lawsuits, ten per organization on average over five years: the bulk
    // of the court feed. They carry party names only; no rule reads them.
    for n in 0..rng.random_range(0..=20u32) {
        let reg = date_between(
            rng,
            as_of.checked_sub_months(Months::new(60)).unwrap_or(as_of),
            as_of,
        );
        let record = json!({
            "recordType": "涉诉",
            "caseCode": format!("（{}）浙01民初{}号", reg.year(), org.index * 32 + u64::from(n)),
            "iname": org.name,
            "cardNum": Value::Null,
            "businessEntity": Value::Null,
            "courtName": court_name,
            "areaName": "浙江",
            "regDate": epoch_ms(reg),
            "duty": Value::Null,
            "performance": Value::Null,
            "disruptTypeName": Value::Null,
            "publishDate": Value::Null,
            "delistedDate": Value::Null,
            "execMoney": Value::Null,
            "unperformedMoney": Value::Null,
            "caseState": "审理中",
        });
        ctx.w.court.write(&record)?;
    }
    Ok(())
}

struct CreditRow<'a> {
    id: String,
    list: &'a str,
    key: String,
    /// The key was corrupted on purpose.
    invalid_key: bool,
    reason: &'a str,
    decision: String,
    listed: Option<NaiveDate>,
    removed: Option<NaiveDate>,
    kind: &'a str,
    amount_wan: Option<String>,
    decided: Option<NaiveDate>,
}

fn write_credit(
    ctx: &mut Ctx<'_>,
    rng: &mut ChaCha8Rng,
    org: &OrgPlan,
    r: &CreditRow<'_>,
) -> Result<(), GenerateError> {
    let fields = [
        r.id.as_str(),
        r.list,
        &r.key,
        &org.name,
        r.reason,
        &r.decision,
        &r.listed.map(stamp).unwrap_or_default(),
        &r.removed.map(stamp).unwrap_or_default(),
        r.kind,
        r.amount_wan.as_deref().unwrap_or(""),
        &r.decided.map(stamp).unwrap_or_default(),
        org.registrar,
        "信用浙江",
    ];
    let n = copies(rng);
    ctx.w.credit.write_copies(&fields, n, r.invalid_key)
}

fn credit(ctx: &mut Ctx<'_>, rng: &mut ChaCha8Rng, org: &OrgPlan) -> Result<(), GenerateError> {
    let as_of = ctx.as_of;
    let abnormal = org.has("INS-05");
    if abnormal || rng.random_bool(0.01) {
        let listed = date_between(
            rng,
            as_of
                .checked_sub_months(Months::new(if abnormal { 5 } else { 20 }))
                .unwrap_or(as_of),
            as_of,
        );
        let removed = (!abnormal).then(|| date_between(rng, listed, as_of));
        let id = format!("YC{:09}", org.index);
        let (key, invalid_key) = if abnormal {
            (key_form(rng, &org.uscc), false)
        } else {
            noise_key(rng, &org.uscc)
        };
        let row = CreditRow {
            id: id.clone(),
            list: "活动异常名录",
            key,
            invalid_key,
            reason: "未按照规定时限报送年度工作报告",
            decision: format!("杭民异〔{}〕{}号", listed.year(), org.index % 1000),
            listed: Some(listed),
            removed,
            kind: "",
            amount_wan: None,
            decided: None,
        };
        write_credit(ctx, rng, org, &row)?;
        if abnormal {
            ctx.truth("INS-05", &org.uscc, "credit", &id, "high")?;
        }
    }
    if org.has("INS-06") {
        let listed = date_between(
            rng,
            as_of.checked_sub_months(Months::new(18)).unwrap_or(as_of),
            as_of,
        );
        let id = format!("YZ{:09}", org.index);
        let row = CreditRow {
            id: id.clone(),
            list: "严重违法失信名单",
            key: key_form(rng, &org.uscc),
            invalid_key: false,
            reason: "被列入活动异常名录满2年",
            decision: format!("杭民失〔{}〕{}号", listed.year(), org.index % 1000),
            listed: Some(listed),
            removed: None,
            kind: "",
            amount_wan: None,
            decided: None,
        };
        write_credit(ctx, rng, org, &row)?;
        ctx.truth("INS-06", &org.uscc, "credit", &id, "high")?;
    }
    for (rule, seq) in [("OPS-07", 'W'), ("OPS-08", 'S')] {
        let situation = org.has(rule);
        // Penalties of last year are noise outside the scoring year.
        let noise = rng.random_bool(if rule == "OPS-07" { 0.2 } else { 0.02 });
        if !situation && !noise {
            continue;
        }
        let decided = if situation {
            ctx.this_year(rng)
        } else {
            ctx.last_year(rng)
        };
        let (kind, amount_wan) = match (rule, rng.random_range(0..3u8)) {
            ("OPS-07", 0) => ("警告", None),
            ("OPS-07", _) => (
                "罚款",
                Some(format!("{:.2}", rng.random_range(1..490u32) as f64 / 100.0)),
            ),
            (_, 0) => (
                "罚款",
                Some(format!("{:.1}", rng.random_range(50..300u32) as f64 / 10.0)),
            ),
            (_, 1) => ("限期停止活动", None),
            _ => ("撤销登记", None),
        };
        let id = format!("CF{:09}{seq}", org.index);
        let row = CreditRow {
            id: id.clone(),
            list: "行政处罚",
            key: key_form(rng, &org.uscc),
            invalid_key: false,
            reason: "违反《社会团体登记管理条例》",
            decision: format!("杭民罚决字〔{}〕{}号", decided.year(), org.index % 1000),
            listed: None,
            removed: None,
            kind,
            amount_wan,
            decided: Some(decided),
        };
        write_credit(ctx, rng, org, &row)?;
        if situation {
            ctx.truth(rule, &org.uscc, "credit", &id, "high")?;
        }
    }
    Ok(())
}

fn inspection(ctx: &mut Ctx<'_>, rng: &mut ChaCha8Rng, org: &OrgPlan) -> Result<(), GenerateError> {
    let situations = [
        ("OPS-03", "02"),
        ("OPS-04", "04"),
        ("OPS-05", "10"),
        ("CUL-02", "13"),
        ("CUL-03", "14"),
    ];
    let mut seq = 0u32;
    for (rule, code) in situations {
        if !org.has(rule) {
            continue;
        }
        let code = if rule == "OPS-03" && rng.random_bool(0.5) {
            "09"
        } else {
            code
        };
        seq += 1;
        let key = key_form(rng, &org.uscc);
        let checked = ctx.this_year(rng);
        let id = write_inspection(ctx, rng, org, seq, code, checked, (&key, false))?;
        ctx.truth(rule, &org.uscc, "inspection", &id, "high")?;
    }
    if rng.random_bool(0.10) {
        seq += 1;
        let (key, invalid_key) = noise_key(rng, &org.uscc);
        let checked = ctx.this_year(rng);
        write_inspection(ctx, rng, org, seq, "01", checked, (&key, invalid_key))?;
    }
    // Four years of history: problems found before this year are outside
    // every window.
    for years_ago in 1..=4 {
        if !rng.random_bool(0.4) {
            continue;
        }
        let year = ctx.as_of.year() - years_ago;
        let from = NaiveDate::from_ymd_opt(year, 1, 1).unwrap_or(ctx.as_of);
        let to = NaiveDate::from_ymd_opt(year, 12, 31).unwrap_or(ctx.as_of);
        let checked = date_between(rng, from, to);
        let code = ["01", "01", "01", "01", "01", "02", "09", "13"][rng.random_range(0..8)];
        seq += 1;
        let (key, invalid_key) = noise_key(rng, &org.uscc);
        write_inspection(ctx, rng, org, seq, code, checked, (&key, invalid_key))?;
    }
    Ok(())
}

fn result_label(code: &str) -> &'static str {
    match code {
        "01" => "未发现问题",
        "02" => "发现问题已责令整改",
        "04" => "不配合检查",
        "09" => "发现问题待后续处理",
        "10" => "通过登记的住所无法联系",
        "13" => "未按规定公示信息",
        "14" => "公示信息隐瞒真实情况、弄虚作假",
        _ => "其他",
    }
}

fn write_inspection(
    ctx: &mut Ctx<'_>,
    rng: &mut ChaCha8Rng,
    org: &OrgPlan,
    seq: u32,
    code: &str,
    checked: NaiveDate,
    (key, invalid_key): (&str, bool),
) -> Result<String, GenerateError> {
    let id = format!("SSJ{:09}{seq:02}", org.index);
    let needs_fix = matches!(code, "02" | "09");
    let record = json!({
        "taskId": id,
        "checkAuthority": org.registrar,
        "creditCode": key,
        "orgName": org.name,
        "checkDate": iso(checked),
        "resultCode": code,
        "resultDesc": result_label(code),
        "rectifyBy": needs_fix.then(|| iso(checked.checked_add_days(Days::new(30)).unwrap_or(checked))),
        "rectifiedOn": (code == "02").then(|| iso(checked.checked_add_days(Days::new(20)).unwrap_or(checked))),
    });
    let n = copies(rng);
    ctx.w.inspection.write_copies(&record, n, invalid_key)?;
    Ok(id)
}
