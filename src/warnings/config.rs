//! A pipeline's warning configuration, `pipelines/warnings/<pipeline>.toml`:
//! who handles a warning (the registrar, the supervising unit, or the
//! department whose feed gave the evidence) and by when, and the working-day
//! calendar (`pipelines/warnings/calendar.toml`). Both are optional: without
//! them the registrar handles every warning and the shipped calendar counts
//! the days.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::calendar::Calendar;

/// Who handles a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Responsible {
    /// The registration authority (登记管理机关).
    Registrar,
    /// The supervising unit (业务主管单位), else the registrar.
    Supervisor,
    /// The department whose feed gave the evidence (the feed's `department`).
    Feed,
}

impl Responsible {
    /// The name in the contract.
    pub fn as_str(self) -> &'static str {
        match self {
            Responsible::Registrar => "registrar",
            Responsible::Supervisor => "supervisor",
            Responsible::Feed => "feed",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default = "three")]
    sign_within_working_days: u32,
    #[serde(default = "twenty")]
    rectify_within_working_days: u32,
    #[serde(default = "two")]
    urge_every_working_days: u32,
    #[serde(default = "three")]
    held_timeout_days: u32,
    #[serde(default)]
    responsible: RawResponsible,
    #[serde(default)]
    departments: BTreeMap<String, String>,
    pull: Option<PullConfig>,
}

/// The `dispositions` source: the platform's paged API of dispositions,
/// read with the `http` source kind (paging, auth, retries, watermark).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullConfig {
    /// First page URL; `${VAR}` expanded; empty turns the pull off.
    pub url: String,
    /// JSON pointer to a page's records.
    #[serde(default = "records_pointer")]
    pub records: String,
    /// Records per page (`?page=N&size=M`, from 1).
    #[serde(default = "page_size")]
    pub page_size: u32,
    /// Query parameter carrying the since-watermark.
    #[serde(default = "since_param")]
    pub since_param: String,
    /// Variable holding a bearer token, if the API wants one.
    pub token_env: Option<String>,
    /// Retries per request.
    #[serde(default = "three")]
    pub max_retries: u32,
    /// First retry delay, milliseconds.
    #[serde(default = "retry_base_ms")]
    pub retry_base_ms: u64,
    /// Per-request timeout, seconds.
    #[serde(default = "timeout_seconds")]
    pub timeout_seconds: u64,
}

fn records_pointer() -> String {
    "/records".into()
}
fn page_size() -> u32 {
    100
}
fn since_param() -> String {
    "since".into()
}
fn retry_base_ms() -> u64 {
    200
}
fn timeout_seconds() -> u64 {
    30
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResponsible {
    default: Option<Responsible>,
    #[serde(default)]
    by_feed: BTreeMap<String, Responsible>,
    #[serde(default)]
    by_rule: BTreeMap<String, Responsible>,
}

fn two() -> u32 {
    2
}
fn three() -> u32 {
    3
}
fn twenty() -> u32 {
    20
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct WarningsConfig {
    /// A pushed (or returned) warning not signed within this many working
    /// days is overdue.
    pub sign_within_working_days: u32,
    /// The rectification deadline when a disposition gives none.
    pub rectify_within_working_days: u32,
    /// One urge (催办) per this many working days overdue.
    pub urge_every_working_days: u32,
    /// An out-of-order disposition waiting this many days for the gap to
    /// fill is flagged.
    pub held_timeout_days: u32,
    /// Who handles a warning unless its feed or rule says otherwise.
    pub default: Responsible,
    /// By the evidence's feed.
    pub by_feed: BTreeMap<String, Responsible>,
    /// By rule id (wins over the feed).
    pub by_rule: BTreeMap<String, Responsible>,
    /// Department names by feed, over the feeds' own `department`.
    pub departments: BTreeMap<String, String>,
    /// Working days.
    pub calendar: Calendar,
    /// The `dispositions` source, when configured.
    pub pull: Option<PullConfig>,
}

impl Default for WarningsConfig {
    fn default() -> Self {
        Self {
            sign_within_working_days: 3,
            rectify_within_working_days: 20,
            urge_every_working_days: 2,
            held_timeout_days: 3,
            default: Responsible::Registrar,
            by_feed: BTreeMap::new(),
            by_rule: BTreeMap::new(),
            departments: BTreeMap::new(),
            calendar: Calendar::shipped(),
            pull: None,
        }
    }
}

impl WarningsConfig {
    /// Loads `pipelines/warnings/<pipeline>.toml` and the calendar under
    /// `root`; every problem is reported with its file and key.
    pub fn load(root: &Path, pipeline: &str) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        let calendar_rel = "pipelines/warnings/calendar.toml";
        let calendar = match std::fs::read_to_string(root.join(calendar_rel)) {
            Ok(text) => Calendar::parse(&text, calendar_rel).unwrap_or_else(|p| {
                problems.extend(p);
                Calendar::default()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Calendar::shipped(),
            Err(e) => {
                problems.push(format!("{calendar_rel}: cannot read: {e}"));
                Calendar::default()
            }
        };
        let rel = format!("pipelines/warnings/{pipeline}.toml");
        let mut config = match std::fs::read_to_string(root.join(&rel)) {
            Ok(text) => Self::parse(&text, &rel).unwrap_or_else(|p| {
                problems.extend(p);
                Self::default()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::default(),
            Err(e) => {
                problems.push(format!("{rel}: cannot read: {e}"));
                Self::default()
            }
        };
        config.calendar = calendar;
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems)
        }
    }

    /// Reads a configuration file's text (the calendar stays the shipped one).
    pub fn parse(text: &str, file: &str) -> Result<Self, Vec<String>> {
        let de = toml::Deserializer::parse(text)
            .map_err(|e| vec![format!("{file}: not valid TOML: {}", e.to_string().trim())])?;
        let raw: RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            vec![format!("{file}: {path}: {}", e.inner().to_string().trim())]
        })?;
        let mut problems = Vec::new();
        for (key, v) in [
            ("sign_within_working_days", raw.sign_within_working_days),
            ("urge_every_working_days", raw.urge_every_working_days),
            (
                "rectify_within_working_days",
                raw.rectify_within_working_days,
            ),
        ] {
            if v == 0 || v > 365 {
                problems.push(format!("{file}: {key}: expected 1 to 365, found {v}"));
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Self {
            sign_within_working_days: raw.sign_within_working_days,
            rectify_within_working_days: raw.rectify_within_working_days,
            urge_every_working_days: raw.urge_every_working_days,
            held_timeout_days: raw.held_timeout_days,
            default: raw.responsible.default.unwrap_or(Responsible::Registrar),
            by_feed: raw.responsible.by_feed,
            by_rule: raw.responsible.by_rule,
            departments: raw.departments,
            calendar: Calendar::shipped(),
            pull: raw.pull,
        })
    }

    /// Who handles a warning whose main cause is `rule` with evidence from `feed`.
    pub fn responsible(&self, rule: &str, feed: &str) -> Responsible {
        self.by_rule
            .get(rule)
            .or_else(|| self.by_feed.get(feed))
            .copied()
            .unwrap_or(self.default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_configuration_reads() {
        let root = crate::checkout();
        let c = WarningsConfig::load(&root, "nightly").expect("shipped configuration");
        assert_eq!(c.responsible("XD-01", "court"), Responsible::Feed);
        assert!(c.calendar.covers(2026));
    }

    #[test]
    fn rule_wins_over_feed_over_default() {
        let c = WarningsConfig::parse(
            "[responsible]\ndefault = \"supervisor\"\nby_feed = { court = \"feed\" }\nby_rule = { \"R-1\" = \"registrar\" }\n",
            "w.toml",
        )
        .expect("config");
        assert_eq!(c.responsible("R-1", "court"), Responsible::Registrar);
        assert_eq!(c.responsible("R-2", "court"), Responsible::Feed);
        assert_eq!(c.responsible("R-2", "credit"), Responsible::Supervisor);
    }

    #[test]
    fn mistakes_name_the_file_and_key() {
        let e = WarningsConfig::parse("[responsible]\ndefault = \"mayor\"\n", "w.toml")
            .expect_err("bad unit");
        assert!(e[0].starts_with("w.toml: responsible.default"), "{e:?}");
        let e = WarningsConfig::parse("sign_within_working_days = 0\n", "w.toml").expect_err("0");
        assert!(
            e[0].contains("sign_within_working_days: expected 1 to 365"),
            "{e:?}"
        );
        let e = WarningsConfig::parse("colour = 1\n", "w.toml").expect_err("unknown");
        assert!(e[0].contains("colour"), "{e:?}");
    }
}
