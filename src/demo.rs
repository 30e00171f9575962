//! `qinglian demo`: the nightly job end to end on its embedded defaults,
//! with nothing to install and no secret to provide. It generates the
//! Hangzhou tier, serves it as the departments' APIs (the feed simulator),
//! starts the oversight platform's intake (the platform simulator), both
//! in-process on 127.0.0.1, and runs the nightly pipeline against them into
//! a local warehouse, night after night, while the platform's handlers (the
//! handlers simulator) sign for and dispose of the warnings, their
//! dispositions coming back both ways (pulled and pushed to the intake).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::ledger::RunRecord;
use crate::platform::{PlatformSimulator, PlatformStats};
use crate::project::Project;
use crate::run::RunOptions;

/// The demo's own secrets, used only when the environment sets none.
pub const DEMO_PERSON_KEY: &str = "demo-only-person-hash-key";
/// The platform secret shared by the demo's push and its simulator.
pub const DEMO_PLATFORM_SECRET: &str = "demo-only-platform-secret";
/// The token of the handlers' dispositions API in the demo.
pub const DEMO_DISPOSITIONS_TOKEN: &str = "demo-only-dispositions-token";

/// What the demo uses.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The project to run (its schemas, pipelines, jobs).
    pub project: PathBuf,
    /// Where the generated feeds and the HTTP copy of the project go.
    pub out: PathBuf,
    /// The warehouse.
    pub warehouse: String,
    /// Organizations to generate (the Hangzhou tier is 10,000).
    pub orgs: u64,
    /// The business date of the first night.
    pub business_date: NaiveDate,
    /// Nights to run from it (the platform's handlers dispose of the
    /// warnings in between).
    pub nights: u32,
}

/// What the demo did.
#[derive(Debug)]
pub struct DemoSummary {
    /// The first night's run.
    pub run: RunRecord,
    /// Every night's run.
    pub nights: Vec<RunRecord>,
    /// What the platform simulator accepted.
    pub platform: PlatformStats,
    /// Notes on the secrets and servers the demo set up.
    pub notes: Vec<String>,
    /// The warehouse.
    pub warehouse: String,
    /// The month's briefing of the city and its largest district, or why
    /// it could not be written.
    pub briefing: Result<crate::brief::Written, String>,
}

/// The briefing of the business date's month for the city and the district
/// with the most organizations, into the warehouse's `briefs/<month>/`.
async fn briefing(
    project: &Project,
    warehouse: &str,
    business_date: NaiveDate,
) -> Result<crate::brief::Written, String> {
    let (store, prefix) = crate::store::open_for_write(warehouse).map_err(|e| e.to_string())?;
    let period = crate::brief::Period::month_of(business_date);
    let rel = crate::layout::briefs(&period.label);
    let out = crate::store::join(&prefix, &rel);
    let dir = Path::new(warehouse).join(&rel);
    crate::brief::brief(
        project,
        &store,
        &prefix,
        &period,
        &crate::brief::Scopes::LargestDistrict,
        &store,
        &out,
        dir.display().to_string(),
    )
    .await
    .map_err(|e| e.to_string())
}

/// Runs the demo.
pub async fn demo(options: &DemoOptions) -> Result<DemoSummary, String> {
    // Before generating anything: the demo runs this project's pipelines.
    let missing: Vec<&str> = ["schemas", "pipelines", "jobs"]
        .into_iter()
        .filter(|d| !options.project.join(d).is_dir())
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "{} is not a qinglian project (no {} there): run `qinglian demo` from the \
             repository's root, or name the project with --project <dir>",
            options.project.display(),
            missing
                .iter()
                .map(|d| format!("{d}/"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mut notes = Vec::new();
    let feeds = options.out.join("feeds");
    crate::generate::generate_to_url(
        &crate::generate::GenerateOptions {
            orgs: options.orgs,
            seed: 20_260_101,
            as_of: options.business_date,
            day: 0,
        },
        &feeds.to_string_lossy(),
    )
    .await
    .map_err(|e| format!("cannot generate the demo feeds in {}: {e}", feeds.display()))?;
    let feed_sim = crate::simulator::FeedSimulator::start(&feeds, 0, None)
        .await
        .map_err(|e| format!("cannot start the feed simulator: {e}"))?;
    let api_project = options.out.join("api-project");
    let _ = std::fs::remove_dir_all(&api_project);
    crate::simulator::write_http_project(&options.project, &api_project, &feed_sim.url())
        .map_err(|e| format!("cannot write {}: {e}", api_project.display()))?;
    notes.push(format!(
        "feed simulator: the departments' APIs at {}/api/<feed>, serving {}",
        feed_sim.url(),
        feeds.display()
    ));

    let secret = std::env::var("QINGLIAN_PLATFORM_SECRET")
        .ok()
        .filter(|s| !s.is_empty());
    let secret = match secret {
        Some(s) => s,
        None => {
            notes.push(
                "QINGLIAN_PLATFORM_SECRET is not set: the demo signs its pushes with a demo-only secret"
                    .into(),
            );
            DEMO_PLATFORM_SECRET.to_string()
        }
    };
    let platform = PlatformSimulator::start(0, secret.as_bytes(), 300)
        .await
        .map_err(|e| format!("cannot start the platform simulator: {e}"))?;
    notes.push(format!(
        "platform simulator: the oversight platform's intake at {}",
        platform.url()
    ));

    let handlers = crate::handlers::HandlerSimulator::start(
        0,
        20_261_128,
        Some(DEMO_DISPOSITIONS_TOKEN.to_string()),
    )
    .await
    .map_err(|e| format!("cannot start the handlers simulator: {e}"))?;
    notes.push(format!(
        "handlers simulator: the platform's handlers sign for and dispose of warnings, serving dispositions at {} and pushing some to the intake",
        handlers.url()
    ));
    let mut vars = BTreeMap::new();
    vars.insert("QINGLIAN_PLATFORM_URL".to_string(), platform.url());
    vars.insert("QINGLIAN_PLATFORM_SECRET".to_string(), secret.clone());
    vars.insert("QINGLIAN_DISPOSITIONS_URL".to_string(), handlers.url());
    vars.insert(
        "QINGLIAN_DISPOSITIONS_TOKEN".to_string(),
        DEMO_DISPOSITIONS_TOKEN.to_string(),
    );
    if std::env::var("QINGLIAN_PERSON_KEY")
        .ok()
        .filter(|k| !k.is_empty())
        .is_none()
    {
        notes.push(
            "QINGLIAN_PERSON_KEY is not set: person numbers are hashed with a demo-only key".into(),
        );
        vars.insert("QINGLIAN_PERSON_KEY".into(), DEMO_PERSON_KEY.into());
    }
    let project = Project::load(&api_project).map_err(|e| {
        e.0.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    let pipeline = project
        .pipelines
        .get("nightly")
        .ok_or("the project has no nightly pipeline")?;
    let (store, prefix, _) = crate::run::open_warehouse(pipeline, Some(&options.warehouse), &vars)
        .map_err(|e| e.to_string())?;
    let intake = crate::warnings::intake::Intake::start(
        "127.0.0.1:0",
        crate::warnings::intake::IntakeOptions {
            store,
            prefix,
            secret: secret.clone().into_bytes(),
            window_seconds: 300,
            clock: std::sync::Arc::new(crate::clock::SystemClock),
            pause_after_receive: std::time::Duration::ZERO,
        },
    )
    .await?;
    notes.push(format!(
        "disposition intake: {} (what the handlers push to us)",
        intake.url()
    ));
    let mut nights = Vec::new();
    for k in 0..options.nights.max(1) {
        let date = options.business_date + chrono::TimeDelta::days(i64::from(k));
        if k > 0 {
            // The handlers' day, then the night: the same feeds, a later date.
            let night = handlers.play(&platform, date);
            handlers
                .push(&night, &intake.url(), secret.as_bytes())
                .await?;
        }
        let run_options = RunOptions {
            warehouse: Some(options.warehouse.clone()),
            vars: vars.clone(),
            ..RunOptions::new(date)
        };
        let run = crate::run::run_pipeline(&project, "nightly", run_options)
            .await
            .map_err(|e| e.to_string())?;
        nights.push(run);
    }
    let run = nights.first().cloned().ok_or("no night ran")?;
    let last_date =
        options.business_date + chrono::TimeDelta::days(i64::from(options.nights.max(1) - 1));
    let briefing = briefing(&project, &options.warehouse, last_date).await;
    Ok(DemoSummary {
        run,
        nights,
        platform: platform.stats(),
        notes,
        warehouse: options.warehouse.clone(),
        briefing,
    })
}

/// The summary printed at the end of the demo.
pub fn render(s: &DemoSummary) -> String {
    let mut out = String::new();
    for n in &s.notes {
        let _ = writeln!(out, "note: {n}");
    }
    let r = &s.run;
    let _ = writeln!(
        out,
        "\nrun {} of business date {}: {:?}",
        r.run_id, r.business_date, r.status
    );
    let _ = writeln!(
        out,
        "  {:<16} {:>9} {:>9} {:>11} {:>10}",
        "feed", "read", "landed", "quarantined", "duplicates"
    );
    for f in &r.feeds {
        let _ = writeln!(
            out,
            "  {:<16} {:>9} {:>9} {:>11} {:>10}",
            f.feed, f.read, f.landed, f.quarantined, f.duplicates
        );
    }
    if let Some(sc) = &r.scoring {
        let colours: Vec<String> = ["green", "yellow", "orange", "red", "none"]
            .iter()
            .map(|c| format!("{c} {}", sc.colours.get(*c).copied().unwrap_or(0)))
            .collect();
        let _ = writeln!(
            out,
            "organizations: {} ({})",
            sc.profiles,
            colours.join(", ")
        );
        let _ = writeln!(out, "colour changes: {}", sc.changes);
    }
    if let Some(m) = &r.manifest {
        let _ = writeln!(out, "published: {}/{m}", s.warehouse);
    }
    if let Some(d) = &r.delivery {
        let _ = writeln!(
            out,
            "deliveries accepted by the platform: {} batch(es), {} rows ({} batch(es) already acknowledged by an earlier run, {} waiting)",
            s.platform.accepted_batches,
            s.platform.accepted_rows,
            d.already_acknowledged,
            d.pending
        );
    }
    if s.platform.accepted_warning_batches > 0 {
        let _ = writeln!(
            out,
            "warnings pushed: {} warning(s) accepted by the platform in {} batch(es)",
            s.platform.accepted_warnings, s.platform.accepted_warning_batches
        );
    }
    if s.nights.len() > 1 {
        let _ = writeln!(out, "warnings (预警) night by night:");
        for n in &s.nights {
            let line = n
                .warnings
                .as_ref()
                .and_then(|w| crate::warnings::show::status_lines(w).into_iter().next())
                .unwrap_or_else(|| "no warnings stage".into());
            let _ = writeln!(out, "  {} {:?}: {line}", n.business_date, n.status);
        }
        let _ = writeln!(
            out,
            "  (qinglian warnings --warehouse {} lists them)",
            s.warehouse
        );
    } else if let Some(w) = &r.warnings {
        for line in crate::warnings::show::status_lines(w) {
            let _ = writeln!(out, "{line}");
        }
    }
    if let Some(rep) = &r.report {
        let path = Path::new(&s.warehouse).join(rep);
        let shown = std::fs::canonicalize(&path).unwrap_or(path);
        let _ = writeln!(out, "report: {}", shown.display());
    }
    match &s.briefing {
        Ok(b) => {
            let index = Path::new(&b.location).join("index.html");
            let shown = std::fs::canonicalize(&index).unwrap_or(index);
            let _ = writeln!(
                out,
                "briefing {}: {} (workbooks and pages for the city and one district)",
                b.period.label,
                shown.display()
            );
        }
        Err(e) => {
            let _ = writeln!(out, "briefing: not written: {e}");
        }
    }
    out
}
