//! Warnings and their disposition: a simulated month with the platform and
//! its handlers (dispositions both ways, faults on some nights, the platform
//! down for three), and the intake's answers to every kind of bad record.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use chrono::{NaiveDate, TimeZone, Utc};
use qinglian::catalog::Published;
use qinglian::clock::FixedClock;
use qinglian::generate::{GenerateOptions, generate};
use qinglian::handlers::{HandlerFault, HandlerSimulator};
use qinglian::ledger::RunStatus;
use qinglian::platform::PlatformSimulator;
use qinglian::project::Project;
use qinglian::warnings::intake::{Intake, IntakeOptions};
use qinglian::warnings::{State, Warning, WarningsConfig};
use serde_json::{Value, json};

use crate::ingest::{Extras, run_project};

const SECRET: &str = "warnings-test-secret";
const TOKEN: &str = "warnings-test-token";

/// The shipped project with a push that gives up fast (the platform is
/// down on some nights).
fn project(dir: &Path) -> Project {
    crate::support::copy_project(dir);
    let path = dir.join("pipelines/nightly.toml");
    let text = std::fs::read_to_string(&path).expect("pipeline");
    let text = text
        .replace("max_retries = 6", "max_retries = 1")
        .replace("retry_base_ms = 500", "retry_base_ms = 10")
        .replace("retry_budget_seconds = 300", "retry_budget_seconds = 1")
        .replace("timeout_seconds = 30", "timeout_seconds = 5");
    std::fs::write(&path, text).expect("write pipeline");
    Project::load(dir).expect("project")
}

fn vars(platform: &PlatformSimulator, handlers: &HandlerSimulator) -> Vec<(String, String)> {
    vec![
        ("QINGLIAN_PLATFORM_URL".into(), platform.url()),
        ("QINGLIAN_PLATFORM_SECRET".into(), SECRET.into()),
        ("QINGLIAN_DISPOSITIONS_URL".into(), handlers.url()),
        ("QINGLIAN_DISPOSITIONS_TOKEN".into(), TOKEN.into()),
    ]
}

async fn version(warehouse: &Path, day: NaiveDate) -> Published {
    let (store, prefix) = qinglian::store::open(warehouse.to_str().expect("utf-8")).expect("wh");
    Published::latest(&store, &prefix, day)
        .await
        .expect("readable")
        .expect("published")
}

async fn warnings_of(p: &Published) -> Vec<Warning> {
    qinglian::warnings::published_warnings(p)
        .await
        .expect("warnings read")
}

fn intake_options(warehouse: &Path) -> IntakeOptions {
    let (store, prefix) = qinglian::store::open(warehouse.to_str().expect("utf-8")).expect("wh");
    IntakeOptions {
        store,
        prefix,
        secret: SECRET.as_bytes().to_vec(),
        window_seconds: 300,
        clock: Arc::new(FixedClock(
            Utc.with_ymd_and_hms(2026, 12, 1, 2, 0, 0)
                .single()
                .expect("t"),
        )),
        pause_after_receive: std::time::Duration::ZERO,
    }
}

/// What the deadlines say a warning's overdue flag must be on `date`,
/// computed here from the published columns and the calendar.
fn expected_overdue(w: &Warning, date: NaiveDate, cfg: &WarningsConfig) -> Option<&'static str> {
    if matches!(w.state, State::Pushed | State::Returned) {
        let since = w.waiting_since.expect("waiting since");
        if date
            > cfg
                .calendar
                .add_working_days(since, cfg.sign_within_working_days)
        {
            return Some("signature");
        }
    }
    if w.state == State::Rectifying && w.rectify_by.is_some_and(|by| date > by) {
        return Some("rectification");
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_month_of_warnings_raised_once_disposed_both_ways_reconciled_and_reproduced() {
    let root = tempfile::tempdir().expect("tmp");
    let project = project(&root.path().join("project"));
    let cfg = WarningsConfig::load(&project.root, "nightly").expect("config");
    let warehouse = root.path().join("warehouse");
    std::fs::create_dir_all(&warehouse).expect("mkdir");
    let platform = PlatformSimulator::start(0, SECRET.as_bytes(), 300)
        .await
        .expect("platform");
    let handlers = HandlerSimulator::start(0, 7, Some(TOKEN.into()))
        .await
        .expect("handlers");
    let intake = Intake::start("127.0.0.1:0", intake_options(&warehouse))
        .await
        .expect("intake");
    let first = NaiveDate::from_ymd_opt(2026, 11, 1).expect("date");
    let mut raised: BTreeMap<String, NaiveDate> = BTreeMap::new();
    let mut published = BTreeMap::new();
    let (mut signature_nights, mut rectification_nights) = (0, 0);
    let mut pushed_answers: Vec<(u16, Value)> = Vec::new();
    const DOWN: [u32; 3] = [14, 15, 16];
    let mut unknown_made = 0;
    for k in 0..30u32 {
        let day = first + chrono::TimeDelta::days(i64::from(k));
        let feeds = root.path().join(format!("feeds/day-{k:02}"));
        generate(
            &GenerateOptions {
                orgs: 150,
                seed: 42,
                as_of: day,
                day: k,
            },
            &feeds,
        )
        .expect("generate");
        let down = DOWN.contains(&k);
        platform.set_down(down);
        if !down {
            match k {
                7 => handlers.inject([HandlerFault::Duplicate]),
                8 => handlers.inject([HandlerFault::OutOfOrder]),
                10 => handlers.inject([HandlerFault::BadSignature]),
                12 => handlers.inject([HandlerFault::UnknownId]),
                _ => {}
            }
            let night = handlers.play(&platform, day);
            if night.faults.contains(&HandlerFault::UnknownId) {
                unknown_made += 1;
            }
            if !night.pushes.is_empty() {
                crate::support::assert_valid_json(
                    "disposition.schema.json",
                    &[json!({"format": 1, "records": night.pushes})],
                );
            }
            pushed_answers.extend(
                handlers
                    .push(&night, &intake.url(), SECRET.as_bytes())
                    .await
                    .expect("push to the intake"),
            );
        }
        let extras = Extras {
            vars: vars(&platform, &handlers),
            ..Extras::default()
        };
        let run = run_project(&project, &feeds, &warehouse, day, extras).await;
        let expected = if down {
            RunStatus::Degraded
        } else {
            RunStatus::Succeeded
        };
        assert_eq!(run.status, expected, "{day}: {:#?}", run.delivery);
        let v = version(&warehouse, day).await;
        let ws = warnings_of(&v).await;
        let summary = run.warnings.clone().expect("warnings summary");
        // Reconciliation: every warning raised so far, once; the states add up.
        let ids: BTreeSet<&String> = ws.iter().map(|w| &w.warning_id).collect();
        assert_eq!(ids.len(), ws.len(), "{day}: one row per warning");
        for id in raised.keys() {
            assert!(ids.contains(id), "{day}: {id} was dropped");
        }
        for w in &ws {
            if let Some(on) = raised.insert(w.warning_id.clone(), w.raised_on) {
                assert_eq!(on, w.raised_on, "{day}: {} raised twice", w.warning_id);
            } else {
                assert_eq!(
                    w.raised_on, day,
                    "{}: a new warning is tonight's",
                    w.warning_id
                );
            }
        }
        assert_eq!(summary.total as usize, raised.len(), "{day}");
        assert_eq!(
            summary.by_state.values().sum::<u64>(),
            summary.total,
            "{day}: raised = sum over states"
        );
        // Overdue flags on the right nights.
        for w in &ws {
            assert_eq!(
                w.overdue.as_deref(),
                expected_overdue(w, day, &cfg),
                "{day}: {} in {} (waiting since {:?}, rectify by {:?})",
                w.warning_id,
                w.state,
                w.waiting_since,
                w.rectify_by
            );
            assert_eq!(
                w.urges,
                w.overdue_working_days.div_ceil(cfg.urge_every_working_days)
            );
        }
        signature_nights +=
            usize::from(ws.iter().any(|w| w.overdue.as_deref() == Some("signature")));
        rectification_nights += usize::from(
            ws.iter()
                .any(|w| w.overdue.as_deref() == Some("rectification")),
        );
        if down {
            // Nothing reaches the platform: tonight's warnings stay generated.
            assert!(
                ws.iter()
                    .filter(|w| w.raised_on == day)
                    .all(|w| w.state == State::Generated)
            );
        }
        published.insert(k, crate::support::reproducible_sums(&v));
    }
    let last = version(&warehouse, first + chrono::TimeDelta::days(29)).await;
    let ws = warnings_of(&last).await;
    let made = handlers.made();
    println!(
        "30 nights: {} warnings, dispositions made {made:?}, by state {:?}",
        ws.len(),
        qinglian::warnings::show::counts(&ws)
    );
    assert!(ws.len() >= 20, "the month raises warnings: {}", ws.len());
    assert!(
        made.get("pull").copied().unwrap_or(0) > 0 && made.get("push").copied().unwrap_or(0) > 0
    );
    // Every disposition applied exactly once, whichever way it came: the
    // sequences applied add up to what the handlers made (less the one
    // naming an unknown warning), nothing is left held.
    let applied: u64 = ws.iter().map(|w| u64::from(w.last_sequence)).sum();
    let total_made: u64 = made.values().sum();
    assert_eq!(
        applied,
        total_made - unknown_made,
        "every disposition applied once"
    );
    assert!(
        ws.iter().all(|w| w.held.is_empty() && !w.sequence_gap),
        "nothing held"
    );
    for state in [State::Closed, State::Unfounded, State::Rectifying] {
        assert!(
            ws.iter().any(|w| w.state == state),
            "some warning is {state}"
        );
    }
    assert!(ws.iter().any(|w| w.round > 1), "some warning reopened");
    assert!(signature_nights > 0 && rectification_nights > 0);
    // The faults: the forged pushes and the unknown id are dead letters; the
    // duplicates were answered as duplicates.
    let (store, prefix) = qinglian::store::open(warehouse.to_str().expect("utf-8")).expect("wh");
    let dead = qinglian::warnings::inbox::Inbox::new(store, prefix)
        .dead_letters()
        .await
        .expect("dead letters");
    assert!(
        dead.iter().any(|d| d.reason.contains("does not verify")),
        "{dead:#?}"
    );
    assert!(
        dead.iter().any(|d| d.reason.contains("unknown warning id")),
        "{dead:#?}"
    );
    assert!(pushed_answers.iter().any(|(s, _)| *s == 401));
    let statuses: Vec<&str> = pushed_answers
        .iter()
        .filter_map(|(_, a)| a["records"][0]["status"].as_str())
        .collect();
    for s in ["recorded", "duplicate", "held"] {
        assert!(statuses.contains(&s), "{s}: {statuses:?}");
    }
    // The pull kept its watermark: each night asked only for what was new.
    let mark = std::fs::read_to_string(warehouse.join(qinglian::layout::warnings::PULL_WATERMARK))
        .expect("the pull's watermark");
    assert!(mark.contains("since:"), "{mark}");
    // The bodies follow the documented contracts.
    let bodies: Vec<Value> = platform
        .warning_batches()
        .into_iter()
        .map(|b| b.body)
        .collect();
    assert!(!bodies.is_empty());
    crate::support::assert_valid_json("push.schema.json", &bodies);
    // Handlers' names stay in the warehouse: no published file carries one.
    for entry in walk(&warehouse.join("published")) {
        let bytes = std::fs::read(&entry).expect("read");
        assert!(
            !bytes
                .windows("经办人".len())
                .any(|w| w == "经办人".as_bytes()),
            "{} carries a handler's name",
            entry.display()
        );
    }
    // Re-running past nights reproduces what was published, warnings included.
    for k in [4u32, 17, 28] {
        let day = first + chrono::TimeDelta::days(i64::from(k));
        let feeds = root.path().join(format!("feeds/day-{k:02}"));
        let extras = Extras {
            vars: vars(&platform, &handlers),
            ..Extras::default()
        };
        let run = run_project(&project, &feeds, &warehouse, day, extras).await;
        assert_eq!(run.attempt, 2);
        let sums = crate::support::reproducible_sums(&version(&warehouse, day).await);
        assert!(sums.contains_key("warnings"));
        assert_eq!(
            sums, published[&k],
            "re-run of {day} reproduces its checksums"
        );
    }
}

/// One published night with warnings, an intake on its warehouse.
struct Night {
    root: tempfile::TempDir,
    warehouse: std::path::PathBuf,
    intake: Intake,
    warnings: Vec<Warning>,
}

async fn one_night() -> Night {
    let root = tempfile::tempdir().expect("tmp");
    let project = project(&root.path().join("project"));
    let warehouse = root.path().join("warehouse");
    std::fs::create_dir_all(&warehouse).expect("mkdir");
    let feeds = root.path().join("feeds");
    let day = NaiveDate::from_ymd_opt(2026, 11, 2).expect("date");
    generate(
        &GenerateOptions {
            orgs: 60,
            seed: 42,
            as_of: day,
            day: 0,
        },
        &feeds,
    )
    .expect("generate");
    let run = run_project(&project, &feeds, &warehouse, day, Extras::default()).await;
    assert_eq!(run.status, RunStatus::Succeeded);
    let warnings = warnings_of(&version(&warehouse, day).await).await;
    assert!(!warnings.is_empty());
    let intake = Intake::start("127.0.0.1:0", intake_options(&warehouse))
        .await
        .expect("intake");
    Night {
        root,
        warehouse,
        intake,
        warnings,
    }
}

fn record(w: &Warning, seq: u32, state: &str) -> Value {
    json!({
        "warning_id": w.warning_id, "sequence": seq, "uscc": w.uscc, "state": state,
        "time": "2026-11-03T10:00:00+08:00", "handling_unit": "西湖区民政局",
        "handler": "经办人甲", "rectify_by": if state == "rectifying" { json!("2026-11-20") } else { Value::Null },
    })
}

/// Posts a body signed with `secret` at `ts` under `key`.
async fn post(url: &str, key: &str, body: &str, secret: &[u8], ts: i64) -> (u16, Value) {
    let path = url::Url::parse(url).expect("url").path().to_string();
    let signature = qinglian::deliver::sign(
        secret,
        &qinglian::deliver::SignedRequest {
            timestamp: ts,
            method: "POST",
            path: &path,
            idempotency_key: key,
            body: body.as_bytes(),
        },
    );
    let r = reqwest::Client::new()
        .post(url)
        .header("Idempotency-Key", key)
        .header("X-Qinglian-Timestamp", ts.to_string())
        .header("X-Qinglian-Signature", signature)
        .body(body.to_string())
        .send()
        .await
        .expect("post");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn body(records: &[Value]) -> String {
    json!({"format": 1, "records": records}).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_intake_refuses_forged_replayed_unknown_and_disallowed_dispositions_and_holds_gaps() {
    let n = one_night().await;
    let url = n.intake.url();
    let now = Utc::now().timestamp();
    let (a, b) = (&n.warnings[0], n.warnings.get(1).unwrap_or(&n.warnings[0]));
    let (store, prefix) = qinglian::store::open(n.warehouse.to_str().expect("utf-8")).expect("wh");
    let inbox = qinglian::warnings::inbox::Inbox::new(store, prefix);

    // Out of order: 2 before 1 is held, then both are recorded.
    let (s, r) = post(
        &url,
        "k-2",
        &body(&[record(a, 2, "verifying")]),
        SECRET.as_bytes(),
        now,
    )
    .await;
    assert_eq!(
        (s, r["records"][0]["status"].as_str()),
        (200, Some("held")),
        "{r}"
    );
    let (s, r) = post(
        &url,
        "k-1",
        &body(&[record(a, 1, "signed")]),
        SECRET.as_bytes(),
        now,
    )
    .await;
    assert_eq!(
        (s, r["records"][0]["status"].as_str()),
        (200, Some("recorded")),
        "{r}"
    );
    assert_eq!(
        inbox.of_warning(&a.warning_id).await.expect("inbox").len(),
        2
    );

    // Duplicate under a new key: recorded once, the original receipt.
    let (s, r2) = post(
        &url,
        "k-1-again",
        &body(&[record(a, 1, "signed")]),
        SECRET.as_bytes(),
        now,
    )
    .await;
    assert_eq!(
        (s, r2["records"][0]["status"].as_str()),
        (200, Some("duplicate"))
    );
    assert_eq!(
        r2["records"][0]["receipt_id"],
        r["records"][0]["receipt_id"]
    );
    // Replayed under the same key: the original answer, word for word.
    let (s, r3) = post(
        &url,
        "k-1",
        &body(&[record(a, 1, "signed")]),
        SECRET.as_bytes(),
        now,
    )
    .await;
    assert_eq!((s, &r3), (200, &r));
    // The same sequence with other content: refused, one record per change.
    let (s, r) = post(
        &url,
        "k-1-other",
        &body(&[record(a, 1, "returned")]),
        SECRET.as_bytes(),
        now,
    )
    .await;
    assert_eq!(s, 422, "{r}");
    assert!(
        r["records"][0]["error"]
            .as_str()
            .expect("error")
            .contains("different content")
    );

    // Forged: a wrong secret, a stale timestamp, a captured signature under a new key.
    let (s, r) = post(&url, "k-f", &body(&[record(b, 1, "signed")]), b"wrong", now).await;
    assert_eq!(s, 401, "{r}");
    assert!(
        r["error"]
            .as_str()
            .expect("error")
            .contains("does not verify")
    );
    let (s, r) = post(
        &url,
        "k-old",
        &body(&[record(b, 1, "signed")]),
        SECRET.as_bytes(),
        now - 3600,
    )
    .await;
    assert_eq!(s, 401);
    assert!(
        r["error"]
            .as_str()
            .expect("error")
            .contains("outside the accepted window")
    );
    // Unknown warning id, a disallowed move, an unknown state.
    let mut unknown = record(b, 1, "signed");
    unknown["warning_id"] = json!("YJ-FFFFFFFFFFFFFFFF");
    let (s, r) = post(&url, "k-u", &body(&[unknown]), SECRET.as_bytes(), now).await;
    assert_eq!(s, 422);
    assert!(
        r["records"][0]["error"]
            .as_str()
            .expect("e")
            .contains("unknown warning id"),
        "{r}"
    );
    let (s, r) = post(
        &url,
        "k-d",
        &body(&[record(b, 1, "closed")]),
        SECRET.as_bytes(),
        now,
    )
    .await;
    assert_eq!(s, 422);
    let e = r["records"][0]["error"].as_str().expect("e");
    assert!(e.contains("cannot move to closed"), "{e}");
    let (s, r) = post(
        &url,
        "k-s",
        &body(&[record(b, 1, "lost")]),
        SECRET.as_bytes(),
        now,
    )
    .await;
    assert_eq!(s, 422);
    assert!(
        r["records"][0]["error"]
            .as_str()
            .expect("e")
            .contains("\"lost\"")
    );
    // A body that is not a disposition names the field.
    let (s, r) = post(
        &url,
        "k-b",
        r#"{"format":1,"records":[{"warning_id":1}]}"#,
        SECRET.as_bytes(),
        now,
    )
    .await;
    assert_eq!(s, 400);
    assert!(
        r["error"]
            .as_str()
            .expect("e")
            .contains("records[0].warning_id"),
        "{r}"
    );

    // Nothing refused was recorded; every refusal is a dead letter.
    assert!(
        inbox
            .of_warning(&b.warning_id)
            .await
            .expect("inbox")
            .is_empty()
    );
    let dead = inbox.dead_letters().await.expect("dead");
    assert_eq!(dead.len(), 7, "{dead:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_warnings_command_lists_filters_and_explain_shows_an_organizations_warnings() {
    let n = one_night().await;
    let project = n.root.path().join("project");
    let at = |extra: &[&str]| {
        let mut args = vec![
            "warnings",
            "--project",
            project.to_str().expect("utf-8"),
            "--warehouse",
            n.warehouse.to_str().expect("utf-8"),
        ];
        args.extend_from_slice(extra);
        crate::support::qinglian(&args, None)
    };
    let out = at(&["--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["total"].as_u64(), Some(n.warnings.len() as u64));
    assert_eq!(v["business_date"], "2026-11-02");
    let first = &v["warnings"][0];
    assert!(first["warning_id"].as_str().expect("id").starts_with("YJ-"));
    assert_eq!(first["state"], "generated", "no push in this night");
    // People read it in Chinese: counts by state, one line per warning.
    let text = String::from_utf8_lossy(&at(&[]).stdout).into_owned();
    assert!(
        text.starts_with(&format!(
            "预警 2026-11-02：共 {} 条（已生成 {}）",
            n.warnings.len(),
            n.warnings.len()
        )),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1 + n.warnings.len(), "{text}");
    // Filters.
    let none: Value =
        serde_json::from_slice(&at(&["--state", "closed", "--json"]).stdout).expect("json");
    assert_eq!(none["shown"], 0);
    let unit = n.warnings[0].responsible_unit.clone();
    let by_unit: Value =
        serde_json::from_slice(&at(&["--unit", &unit, "--json"]).stdout).expect("json");
    let expected = n
        .warnings
        .iter()
        .filter(|w| w.responsible_unit.contains(&unit))
        .count();
    assert_eq!(by_unit["shown"].as_u64(), Some(expected as u64));
    let overdue: Value =
        serde_json::from_slice(&at(&["--overdue", "--json"]).stdout).expect("json");
    assert_eq!(
        overdue["shown"], 0,
        "nothing pushed, nothing waits for a signature"
    );
    let bad = at(&["--state", "lost"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr)
            .contains("--state \"lost\": expected one of generated")
    );
    // explain shows the organization's warnings.
    let w = &n.warnings[0];
    let out = crate::support::qinglian(
        &[
            "explain",
            &w.uscc,
            "--project",
            project.to_str().expect("utf-8"),
            "--warehouse",
            n.warehouse.to_str().expect("utf-8"),
        ],
        None,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("warnings (预警): ") && text.contains(&w.warning_id),
        "{text}"
    );
    // A broken warnings configuration is a validate problem naming file and key.
    std::fs::write(
        project.join("pipelines/warnings/nightly.toml"),
        "sign_within_working_days = 0\n",
    )
    .expect("write");
    let out = crate::support::qinglian(
        &["validate", "--project", project.to_str().expect("utf-8")],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "pipelines/warnings/nightly.toml: sign_within_working_days: expected 1 to 365, found 0"
        ),
        "{text}"
    );
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
