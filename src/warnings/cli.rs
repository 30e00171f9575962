//! `qinglian warnings` (the warnings of the latest version, filtered) and
//! `qinglian intake` (the disposition listener), each an `Args` struct and
//! an `execute` that returns what to print or an error; `cli` prints.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::NaiveDate;
use serde_json::json;

use super::lifecycle::State;
use super::record::Warning;

/// Why a command failed; the variant decides the exit code.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// Bad arguments or configuration (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The warehouse or the listener failed (exit 1).
    #[error("{0}")]
    Failed(String),
}

/// Where the warehouse is.
#[derive(Debug, Clone, clap::Args)]
pub struct At {
    /// Project directory.
    #[arg(long, default_value = ".")]
    pub project: PathBuf,
    /// Pipeline whose warehouse to read.
    #[arg(long, default_value = "nightly")]
    pub pipeline: String,
    /// Warehouse URL, overriding the pipeline's.
    #[arg(long)]
    pub warehouse: Option<String>,
}

/// `qinglian warnings`: every warning of the latest published version (or
/// of `--date`), with its state and deadlines.
#[derive(Debug, Clone, clap::Args)]
pub struct WarningsArgs {
    #[command(flatten)]
    /// The warehouse.
    pub at: At,
    /// Only warnings in this state (generated, pushed, signed, verifying,
    /// rectifying, feedback, closed, unfounded, transferred, withdrawn, returned).
    #[arg(long)]
    pub state: Option<String>,
    /// Only overdue warnings.
    #[arg(long)]
    pub overdue: bool,
    /// Only warnings whose responsible or handling unit contains this text.
    #[arg(long)]
    pub unit: Option<String>,
    /// Business date (default: the latest published).
    #[arg(long)]
    pub date: Option<NaiveDate>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

type Store = (Arc<dyn object_store::ObjectStore>, object_store::path::Path);

fn open(at: &At) -> Result<(crate::project::Project, Store), CommandError> {
    let project = crate::project::Project::load(&at.project).map_err(|e| {
        CommandError::Usage(
            e.0.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })?;
    let pipeline = project.pipelines.get(&at.pipeline).ok_or_else(|| {
        CommandError::Usage(format!("no pipeline {:?} in pipelines/", at.pipeline))
    })?;
    let (store, prefix, _) =
        crate::run::open_warehouse(pipeline, at.warehouse.as_deref(), &BTreeMap::new())
            .map_err(|e| CommandError::Failed(e.to_string()))?;
    Ok((project, (store, prefix)))
}

/// The warnings of a business date's current version (default: the latest).
pub async fn warnings_at(
    store: &Arc<dyn object_store::ObjectStore>,
    prefix: &object_store::path::Path,
    date: Option<NaiveDate>,
) -> Result<Option<(NaiveDate, Vec<Warning>)>, String> {
    let p = match date {
        Some(d) => crate::publish::Published::latest(store, prefix, d)
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

/// Runs `qinglian warnings`; returns the text to print.
pub async fn execute(args: WarningsArgs) -> Result<String, CommandError> {
    let state = args
        .state
        .as_deref()
        .map(|s| {
            State::parse(s).ok_or_else(|| {
                CommandError::Usage(format!(
                    "--state {s:?}: expected one of {}",
                    super::lifecycle::STATES.map(State::as_str).join(", ")
                ))
            })
        })
        .transpose()?;
    let (_, (store, prefix)) = open(&args.at)?;
    let Some((date, all)) = warnings_at(&store, &prefix, args.date)
        .await
        .map_err(CommandError::Failed)?
    else {
        return Err(CommandError::Failed(match args.date {
            Some(d) => format!("nothing is published for {d}"),
            None => "nothing is published yet".into(),
        }));
    };
    let shown: Vec<&Warning> = all
        .iter()
        .filter(|w| state.is_none_or(|s| w.state == s))
        .filter(|w| !args.overdue || w.overdue.is_some())
        .filter(|w| {
            args.unit.as_deref().is_none_or(|u| {
                w.responsible_unit.contains(u)
                    || w.handling_unit.as_deref().is_some_and(|h| h.contains(u))
            })
        })
        .collect();
    if args.json {
        return serde_json::to_string_pretty(&json!({
            "business_date": date.to_string(),
            "total": all.len(),
            "shown": shown.len(),
            "warnings": shown,
        }))
        .map_err(|e| CommandError::Failed(e.to_string()));
    }
    Ok(render(date, &all, &shown))
}

/// The by-state counts of a list of warnings, in life-cycle order.
pub fn counts(all: &[Warning]) -> Vec<(State, usize)> {
    super::lifecycle::STATES
        .into_iter()
        .map(|s| (s, all.iter().filter(|w| w.state == s).count()))
        .filter(|(_, n)| *n > 0)
        .collect()
}

fn render(date: NaiveDate, all: &[Warning], shown: &[&Warning]) -> String {
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

/// `qinglian intake`: listens for dispositions pushed by the platform at
/// `POST /intake/dispositions`, on an address of its own.
#[derive(Debug, Clone, clap::Args)]
pub struct IntakeArgs {
    #[command(flatten)]
    /// The warehouse.
    pub at: At,
    /// Address to listen on (never the public lookup's).
    #[arg(long, default_value = "127.0.0.1:8710")]
    pub listen: String,
    /// Seconds a request's signing time may differ from ours.
    #[arg(long, default_value_t = 300)]
    pub window_seconds: i64,
    /// Milliseconds to wait between keeping a request and recording it
    /// (for the crash harness).
    #[arg(long, default_value_t = 0, hide = true)]
    pub pause_after_receive_ms: u64,
}

/// Runs the intake until the process is stopped. The shared secret is the
/// push's (`[push] secret_env`).
pub async fn intake(args: IntakeArgs) -> Result<(), CommandError> {
    let (project, (store, prefix)) = open(&args.at)?;
    let pipeline = project
        .pipelines
        .get(&args.at.pipeline)
        .ok_or_else(|| CommandError::Usage(format!("no pipeline {:?}", args.at.pipeline)))?;
    let Some(push) = &pipeline.push else {
        return Err(CommandError::Usage(format!(
            "pipeline {} has no [push]: the intake verifies with the push's shared secret",
            pipeline.name
        )));
    };
    let secret = std::env::var(&push.secret_env)
        .ok()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            CommandError::Usage(format!(
                "{} is not set; set it to the shared secret the platform signs with",
                push.secret_env
            ))
        })?;
    let intake = super::intake::Intake::start(
        args.listen.as_str(),
        super::intake::IntakeOptions {
            store,
            prefix,
            secret: secret.into_bytes(),
            window_seconds: args.window_seconds,
            clock: Arc::new(crate::run::SystemClock),
            pause_after_receive: std::time::Duration::from_millis(args.pause_after_receive_ms),
        },
    )
    .await
    .map_err(CommandError::Failed)?;
    eprintln!("listening for dispositions at {}", intake.url());
    tokio::select! {
        _ = intake.wait() => Ok(()),
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

/// What `status` says about the warnings of a run.
pub fn status_lines(s: &super::WarningsSummary) -> Vec<String> {
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
pub fn report_section(s: &super::WarningsSummary) -> String {
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
