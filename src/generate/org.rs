//! One synthetic organization: identity, attributes and the risk situations
//! injected into it, all a pure function of (seed, index, as-of date) so that
//! any organization can be rebuilt without keeping the others in memory.

use chrono::{Datelike, Days, NaiveDate};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::keys::{CHARSET, mod31_check_char};

/// The rules the generator injects, with the share of organizations that
/// get each. Ids match `pipelines/rules/*.toml`.
pub(crate) const SITUATIONS: &[(&str, f64)] = &[
    ("ORG-01", 0.0595), // 9,405 of 10,000 wrote party building into the charter
    ("ORG-02", 0.003),
    ("ORG-03", 0.002),
    ("INS-01", 0.010),
    ("INS-02", 0.040),
    ("INS-03", 0.030),
    ("INS-04", 0.010),
    ("INS-05", 0.020),
    ("INS-06", 0.003),
    ("OPS-01", 0.010),
    ("OPS-02", 0.010),
    ("OPS-03", 0.015),
    ("OPS-04", 0.003),
    ("OPS-05", 0.008),
    ("OPS-06", 0.005),
    ("OPS-07", 0.010),
    ("OPS-08", 0.003),
    ("OPS-09", 0.005),
    ("CUL-01", 0.030),
    ("CUL-02", 0.008),
    ("CUL-03", 0.003),
    ("GOV-01", 0.003),
    ("GOV-02", 0.005),
    ("GOV-03", 0.010),
    ("XD-01", 0.003),
    ("XD-02", 0.005),
    ("XD-03", 0.001),
    ("XD-04", 0.090), // 较差 share of Zhejiang's 2018 public credit evaluation
    ("XD-05", 0.002),
    ("XD-06", 0.001),
];

/// Situations that exclude each other: the first drawn wins. The spending
/// and government-purchase rules read last year's finances, which an
/// organization that did not submit its report has none of.
const EXCLUSIVE: &[&[&str]] = &[
    &["INS-01", "INS-02", "INS-03", "INS-04"],
    &["INS-03", "INS-04", "OPS-01"],
    &["INS-03", "INS-04", "OPS-02"],
    &["INS-03", "INS-04", "GOV-03"],
];

/// Organization types with their share (Zhejiang, January 2024).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OrgType {
    SocialGroup,
    SocialService,
    Foundation,
}

impl OrgType {
    pub(crate) fn code(self) -> u8 {
        match self {
            OrgType::SocialGroup => b'1',
            OrgType::SocialService => b'2',
            OrgType::Foundation => b'3',
        }
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            OrgType::SocialGroup => "社会团体",
            OrgType::SocialService => "民办非企业单位",
            OrgType::Foundation => "基金会",
        }
    }
}

/// Registry status as the registry labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Active,
    Revoked,
    Deregistered,
}

impl Status {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Status::Active => "正常",
            Status::Revoked => "撤销",
            Status::Deregistered => "注销",
        }
    }
}

/// Hangzhou registrars with a weight roughly following their sizes.
const DIVISIONS: &[(&str, &str, u32)] = &[
    ("330100", "杭州市民政局", 14),
    ("330102", "上城区民政局", 8),
    ("330103", "下城区民政局", 2),
    ("330104", "江干区民政局", 2),
    ("330105", "拱墅区民政局", 8),
    ("330106", "西湖区民政局", 9),
    ("330108", "滨江区民政局", 5),
    ("330109", "萧山区民政局", 12),
    ("330110", "余杭区民政局", 8),
    ("330111", "富阳区民政局", 6),
    ("330112", "临安区民政局", 5),
    ("330113", "临平区民政局", 5),
    ("330114", "钱塘区民政局", 4),
    ("330122", "桐庐县民政局", 4),
    ("330127", "淳安县民政局", 4),
    ("330182", "建德市民政局", 4),
];

const MIDDLES: &[&str] = &[
    "公益", "互助", "发展", "服务", "促进", "关爱", "成长", "健康", "和谐", "创新", "友好", "融合",
];
const TOPICS_A: &[&str] = &[
    "阳光", "青年", "志愿", "慈善", "颐养", "启明", "书香", "康乐", "和美", "同心", "春晖", "善行",
    "彩虹", "明德", "乐龄", "晨曦", "星火", "暖阳", "清风", "益友", "知行", "博爱", "新锐", "钱江",
    "晓风", "运河", "明月", "远航", "之江", "天目",
];
const TOPICS_B: &[&str] = &[
    "社区",
    "邻里",
    "养老",
    "助残",
    "教育",
    "文化",
    "体育",
    "科技",
    "环保",
    "心理",
    "法律",
    "家庭",
    "儿童",
    "妇女",
    "青少年",
    "书画",
    "摄影",
    "围棋",
    "电商",
    "物流",
    "餐饮",
    "旅游",
    "茶叶",
    "丝绸",
    "医疗",
    "康复",
    "职业技能",
    "创业",
    "互联网",
    "非遗",
];
const SUFFIX_GROUP: &[&str] = &["协会", "商会", "学会", "联合会", "研究会", "促进会"];
const SUFFIX_SERVICE: &[&str] = &[
    "服务中心",
    "社会工作服务社",
    "培训学校",
    "发展中心",
    "颐养院",
    "公益服务社",
];
const SUFFIX_FOUNDATION: &[&str] = &[
    "基金会",
    "慈善基金会",
    "公益基金会",
    "教育基金会",
    "发展基金会",
    "关爱基金会",
];
const STREETS: &[&str] = &[
    "湖滨",
    "清波",
    "小营",
    "望江",
    "南星",
    "紫阳",
    "凯旋",
    "采荷",
    "闸弄口",
    "四季青",
    "笕桥",
    "彭埠",
    "九堡",
    "丁兰",
    "米市巷",
    "潮鸣",
    "朝晖",
    "文晖",
    "东新",
    "石桥",
    "长庆",
    "武林",
    "天水",
    "北山",
    "西溪",
    "灵隐",
    "翠苑",
    "文新",
    "古荡",
    "蒋村",
    "转塘",
    "留下",
    "三墩",
    "西兴",
    "长河",
    "浦沿",
    "城厢",
    "北干",
    "蜀山",
    "新塘",
    "宁围",
    "闻堰",
    "临浦",
    "瓜沥",
    "五常",
    "仓前",
    "闲林",
    "良渚",
    "瓶窑",
    "径山",
    "黄湖",
    "鸬鸟",
];

/// Names per combination space; an index maps to a unique combination, and
/// the place prefix (which name matching strips) is not part of it.
fn name_space() -> u64 {
    (MIDDLES.len() * STREETS.len() * TOPICS_A.len() * TOPICS_B.len() * SUFFIX_GROUP.len()) as u64
}

/// A planned organization.
#[derive(Debug, Clone)]
pub(crate) struct OrgPlan {
    pub(crate) index: u64,
    pub(crate) uscc: String,
    pub(crate) name: String,
    pub(crate) org_type: OrgType,
    pub(crate) division: &'static str,
    pub(crate) registrar: &'static str,
    pub(crate) registered_on: NaiveDate,
    pub(crate) status: Status,
    pub(crate) status_changed_on: Option<NaiveDate>,
    pub(crate) charity: bool,
    pub(crate) public_fundraising: bool,
    pub(crate) party_org: bool,
    pub(crate) party_in_charter: bool,
    pub(crate) fallback_managed: bool,
    pub(crate) pledge: bool,
    /// Rule ids injected, in [`SITUATIONS`] order.
    pub(crate) situations: Vec<&'static str>,
    /// This org's own random stream, positioned after planning.
    pub(crate) rng: ChaCha8Rng,
}

impl OrgPlan {
    pub(crate) fn has(&self, rule: &str) -> bool {
        self.situations.contains(&rule)
    }

    /// The organization code (positions 9–17), printed with its hyphen.
    pub(crate) fn org_code_printed(&self) -> String {
        format!("{}-{}", &self.uscc[8..16], &self.uscc[16..17])
    }
}

/// The rng stream of organization `index`.
pub(crate) fn org_rng(seed: u64, index: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index);
    rng
}

/// A valid USCC for a social organization.
pub(crate) fn make_uscc(org_type: OrgType, division: &str, index: u64) -> String {
    // 9-digit-equivalent subject id: "MJ" + 6 base-31 characters of the index
    // (every character valid in both check alphabets), then both checks.
    let mut body = String::from("MJ");
    let mut n = index;
    let mut tail = [b'0'; 6];
    for slot in tail.iter_mut().rev() {
        *slot = CHARSET[(n % 31) as usize];
        n /= 31;
    }
    body.push_str(std::str::from_utf8(&tail).unwrap_or("000000"));
    let org_check = org_check_char(body.as_bytes());
    let mut code = Vec::with_capacity(18);
    code.push(b'5');
    code.push(org_type.code());
    code.extend_from_slice(division.as_bytes());
    code.extend_from_slice(body.as_bytes());
    code.push(org_check);
    let check = mod31_check_char(&code).unwrap_or(b'0');
    code.push(check);
    String::from_utf8(code).unwrap_or_default()
}

fn org_check_char(body: &[u8]) -> u8 {
    const W: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body
        .iter()
        .zip(W)
        .map(|(c, w)| {
            let v = if c.is_ascii_digit() {
                u32::from(c - b'0')
            } else {
                u32::from(c - b'A') + 10
            };
            v * w
        })
        .sum();
    match 11 - sum % 11 {
        10 => b'X',
        11 => b'0',
        d => b'0' + d as u8,
    }
}

fn make_name(org_type: OrgType, index: u64, place: &str) -> String {
    // A bijection of the index over the combination space keeps names
    // unique (and name matching meaningful) while looking random.
    let space = name_space();
    let mut k = (index.wrapping_mul(1_000_003) + 7) % space;
    let mut pick = |len: usize| {
        let i = (k % len as u64) as usize;
        k /= len as u64;
        i
    };
    let middle = MIDDLES[pick(MIDDLES.len())];
    let street = STREETS[pick(STREETS.len())];
    let a = TOPICS_A[pick(TOPICS_A.len())];
    let b = TOPICS_B[pick(TOPICS_B.len())];
    let suffixes = match org_type {
        OrgType::SocialGroup => SUFFIX_GROUP,
        OrgType::SocialService => SUFFIX_SERVICE,
        OrgType::Foundation => SUFFIX_FOUNDATION,
    };
    let suffix = suffixes[pick(suffixes.len())];
    format!("{place}{street}{a}{middle}{b}{suffix}")
}

/// How a name starts: the city, the city and district, or the district.
fn place_prefix(division: &str, rng: &mut ChaCha8Rng) -> String {
    let district = crate::keys::decode(&format!("51{division}0000000000"))
        .division
        .filter(|d| *d != "杭州市")
        .unwrap_or("");
    match (district, rng.random_range(0..3u8)) {
        ("", _) => "杭州市".to_string(),
        (d, 0) => format!("杭州市{d}"),
        (d, 1) => d.to_string(),
        _ => "杭州市".to_string(),
    }
}

pub(crate) fn date_between(rng: &mut ChaCha8Rng, from: NaiveDate, to: NaiveDate) -> NaiveDate {
    let span = (to - from).num_days().max(0) as u64;
    from.checked_add_days(Days::new(rng.random_range(0..=span)))
        .unwrap_or(to)
}

pub(crate) fn year_start(d: NaiveDate) -> NaiveDate {
    NaiveDate::from_ymd_opt(d.year(), 1, 1).unwrap_or(d)
}

/// Plans organization `index`. Indexes at or above `orgs` are predecessor
/// organizations (revoked ones that a key person of another org once led).
pub(crate) fn plan(seed: u64, index: u64, orgs: u64, as_of: NaiveDate) -> OrgPlan {
    let mut rng = org_rng(seed, index);
    let org_type = match rng.random_range(0..71_182u32) {
        0..26_668 => OrgType::SocialGroup,
        26_668..70_020 => OrgType::SocialService,
        _ => OrgType::Foundation,
    };
    let total: u32 = DIVISIONS.iter().map(|d| d.2).sum();
    let mut w = rng.random_range(0..total);
    let (division, registrar) = DIVISIONS
        .iter()
        .find(|d| {
            if w < d.2 {
                true
            } else {
                w -= d.2;
                false
            }
        })
        .map_or(("330100", "杭州市民政局"), |d| (d.0, d.1));
    let earliest = NaiveDate::from_ymd_opt(as_of.year() - 25, 1, 1).unwrap_or(as_of);
    // Registered at least two full years ago, so two annual reports exist.
    let latest = NaiveDate::from_ymd_opt(as_of.year() - 2, 6, 30).unwrap_or(as_of);
    let registered_on = date_between(&mut rng, earliest, latest);
    let charity = rng.random_bool(0.12) || org_type == OrgType::Foundation;
    let mut plan = OrgPlan {
        index,
        uscc: make_uscc(org_type, division, index),
        name: make_name(org_type, index, &place_prefix(division, &mut rng)),
        org_type,
        division,
        registrar,
        registered_on,
        status: Status::Active,
        status_changed_on: None,
        charity,
        public_fundraising: charity && rng.random_bool(0.3),
        party_org: true,
        party_in_charter: true,
        fallback_managed: rng.random_bool(0.0782),
        pledge: true,
        situations: Vec::new(),
        rng: rng.clone(),
    };
    if index >= orgs {
        // A predecessor: revoked within the last five years.
        plan.status = Status::Revoked;
        let from = as_of
            .checked_sub_months(chrono::Months::new(54))
            .unwrap_or(as_of);
        plan.status_changed_on = Some(date_between(&mut rng, from, as_of));
        plan.situations.push("OPS-09");
        plan.rng = rng;
        return plan;
    }
    if rng.random_bool(0.02) {
        plan.status = Status::Deregistered;
        plan.status_changed_on = Some(date_between(&mut rng, registered_on, as_of));
        plan.rng = rng;
        return plan;
    }
    // Coverage: the first organizations carry one situation each, so every
    // rule has an example even in a tiny data set.
    let forced = SITUATIONS.get(index as usize).map(|s| s.0);
    if let Some(rule) = forced {
        plan.situations.push(rule);
    }
    for (rule, rate) in SITUATIONS {
        if Some(*rule) == forced {
            continue;
        }
        if rng.random_bool(*rate) {
            let excluded = EXCLUSIVE.iter().any(|group| {
                group.contains(rule) && plan.situations.iter().any(|s| group.contains(s))
            });
            if !excluded {
                plan.situations.push(rule);
            }
        }
    }
    if plan.has("INS-04") {
        // Two years running not submitted is also this year's not submitted.
        plan.situations.insert(
            plan.situations
                .iter()
                .position(|s| *s == "INS-04")
                .unwrap_or(0),
            "INS-03",
        );
    }
    if plan.has("OPS-01") || plan.has("OPS-02") {
        plan.charity = true;
    }
    if plan.has("ORG-01") {
        plan.party_in_charter = false;
    }
    if plan.has("CUL-01") {
        plan.pledge = false;
    }
    if plan.has("OPS-09") {
        plan.status = Status::Revoked;
        plan.status_changed_on = Some(date_between(&mut rng, year_start(as_of), as_of));
    }
    plan.rng = rng;
    plan
}

/// Situations an organization can acquire or be cleared of from one day to
/// the next: listings, penalties, inspections, complaints.
const DAILY_EVENTS: &[&str] = &[
    "XD-01", "XD-02", "XD-05", "OPS-03", "OPS-05", "GOV-03", "CUL-02",
];

/// The organization as it stands `day` days after the base population
/// (day 0): each day, independently of every other organization, it may
/// acquire a situation (0.4%), be cleared of one (0.3%) or be deregistered
/// (0.1%); 1% of organizations only register during the month. Returns
/// false when the organization does not exist yet on that day.
pub(crate) fn evolve(plan: &mut OrgPlan, seed: u64, day: u32, as_of: NaiveDate) -> bool {
    if day == 0 {
        return true;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6d6f_6e74_685f_6576);
    rng.set_stream(plan.index);
    // The first organizations keep their one situation each (rule coverage).
    let appears_on = if plan.index >= SITUATIONS.len() as u64 && rng.random_bool(0.01) {
        rng.random_range(1..=30u32)
    } else {
        0
    };
    if appears_on > day {
        return false;
    }
    for d in 1..=day {
        let roll: f64 = rng.random();
        let pick = rng.random_range(0..DAILY_EVENTS.len());
        if d < appears_on || plan.status != Status::Active {
            continue;
        }
        let on = as_of
            .checked_sub_days(chrono::Days::new(u64::from(day - d)))
            .unwrap_or(as_of);
        if roll < 0.004 {
            let rule = DAILY_EVENTS[pick];
            let excluded = EXCLUSIVE.iter().any(|group| {
                group.contains(&rule) && plan.situations.iter().any(|s| group.contains(s))
            });
            if !excluded && !plan.has(rule) {
                plan.situations.push(rule);
            }
        } else if roll < 0.007 {
            if let Some(i) = plan
                .situations
                .iter()
                .position(|s| DAILY_EVENTS.contains(s))
            {
                plan.situations.remove(i);
            }
        } else if roll < 0.008 {
            plan.status = Status::Deregistered;
            plan.status_changed_on = Some(on);
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeyClass, classify};

    #[test]
    fn synthetic_codes_are_valid_and_unique() {
        let as_of = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap_or_default();
        let mut seen = std::collections::BTreeSet::new();
        let mut names = std::collections::BTreeSet::new();
        for i in 0..5_000 {
            let p = plan(7, i, 5_000, as_of);
            assert_eq!(classify(&p.uscc).class, KeyClass::Valid, "{}", p.uscc);
            assert!(seen.insert(p.uscc.clone()));
            assert!(
                names.insert(crate::keys::normalize_name(&p.name)),
                "{}",
                p.name
            );
        }
    }
}
