//! A hostile feed server: redirects and next links to another origin
//! (credentials must stay home), pages shorter than asked, a declared total
//! not reached, API error envelopes served with 200, and a body that stalls.
//! Every server is a real one on 127.0.0.1 with an OS-assigned port.

use std::path::Path;
use std::time::Duration;

use qinglian::ledger::{FeedStatus, RunRecord, RunStatus};
use qinglian::project::Project;
use qinglian::simulator::{Fault, FeedSimulator, Hit};

use crate::http_feeds::{feed, http_project};
use crate::ingest::generate;

/// Changes one source's `[source]` (and `[guards]`) table, then reloads.
fn edit(dir: &Path, name: &str, change: impl FnOnce(&mut toml::Table, &mut toml::Table)) {
    let path = dir.join(format!("pipelines/sources/{name}.toml"));
    let mut table: toml::Table = std::fs::read_to_string(&path)
        .expect("read")
        .parse()
        .expect("toml");
    let mut source = table
        .remove("source")
        .and_then(|v| v.as_table().cloned())
        .expect("source");
    let mut guards = table
        .remove("guards")
        .and_then(|v| v.as_table().cloned())
        .unwrap_or_default();
    change(&mut source, &mut guards);
    table.insert("source".into(), toml::Value::Table(source));
    table.insert("guards".into(), toml::Value::Table(guards));
    std::fs::write(&path, toml::to_string(&table).expect("toml")).expect("write");
}

fn api_key(source: &mut toml::Table) {
    let mut auth = toml::Table::new();
    auth.insert("scheme".into(), "api_key".into());
    auth.insert("header".into(), "X-Api-Key".into());
    auth.insert("key_env".into(), "FEED_KEY".into());
    source.insert("auth".into(), toml::Value::Table(auth));
}

fn bearer(source: &mut toml::Table) {
    let mut auth = toml::Table::new();
    auth.insert("scheme".into(), "bearer".into());
    auth.insert("token_env".into(), "FEED_TOKEN".into());
    source.insert("auth".into(), toml::Value::Table(auth));
}

const API_KEY: &str = "k3y-never-leaves-home";
const TOKEN: &str = "t0ken-never-leaves-home";

async fn run(project: &Project, warehouse: &Path) -> RunRecord {
    crate::http_feeds::run_with(
        project,
        warehouse,
        &[("FEED_KEY", API_KEY), ("FEED_TOKEN", TOKEN)],
    )
    .await
}

fn carries_secret(hit: &Hit) -> bool {
    hit.headers.iter().any(|(name, value)| {
        value.contains(API_KEY)
            || value.contains(TOKEN)
            || name.eq_ignore_ascii_case("cookie")
            || name.eq_ignore_ascii_case("authorization")
            || name.eq_ignore_ascii_case("x-api-key")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_never_follow_a_redirect_or_next_link_to_another_origin() {
    let feeds = tempfile::tempdir().expect("tmp");
    generate(feeds.path(), 60);
    let home = FeedSimulator::start(feeds.path(), 0, None)
        .await
        .expect("simulator");
    let other = FeedSimulator::start(feeds.path(), 0, None)
        .await
        .expect("second listener");
    assert_ne!(home.addr.port(), other.addr.port());
    let (home_origin, other_origin) = (home.url(), other.url());
    // credit (API key) and ratings (bearer): every page redirects away.
    home.inject(
        "credit",
        Fault::RedirectTo {
            times: 999,
            base: other_origin.clone(),
        },
    );
    home.inject(
        "ratings",
        Fault::RedirectTo {
            times: 999,
            base: other_origin.clone(),
        },
    );
    // drc (API key): redirected to an origin the source allows.
    home.inject(
        "drc",
        Fault::RedirectTo {
            times: 999,
            base: other_origin.clone(),
        },
    );
    // police: a redirect back to itself; court: next links to another origin.
    home.inject(
        "police",
        Fault::RedirectTo {
            times: 999,
            base: home_origin.clone(),
        },
    );
    home.inject(
        "court",
        Fault::ForeignLink {
            base: other_origin.clone(),
        },
    );
    let dir = tempfile::tempdir().expect("tmp");
    http_project(dir.path(), &home_origin, None);
    edit(dir.path(), "credit", |s, _| api_key(s));
    edit(dir.path(), "ratings", |s, _| bearer(s));
    edit(dir.path(), "court", |s, _| api_key(s));
    edit(dir.path(), "police", |s, _| bearer(s));
    edit(dir.path(), "drc", |s, _| {
        api_key(s);
        s.insert(
            "allow_redirect_origins".into(),
            toml::Value::Array(vec![other_origin.clone().into()]),
        );
    });
    let project = Project::load(dir.path()).expect("project");
    let warehouse = tempfile::tempdir().expect("tmp");
    let record = run(&project, warehouse.path()).await;
    assert_eq!(record.status, RunStatus::Degraded, "{record:#?}");

    for name in ["credit", "ratings"] {
        let f = feed(&record, name);
        assert_eq!(f.status, FeedStatus::Held, "{f:#?}");
        let error = f.error.clone().unwrap_or_default();
        assert!(
            error.contains(&format!("feed {name}"))
                && error.contains(&format!(
                    "from {home_origin} to another origin {other_origin}"
                ))
                && error.contains("allow_redirect_origins"),
            "{error}"
        );
    }
    let court = feed(&record, "court");
    assert_eq!(court.status, FeedStatus::Held, "{court:#?}");
    let error = court.error.clone().unwrap_or_default();
    assert!(
        error.contains("next link") && error.contains(&other_origin),
        "{error}"
    );
    let police = feed(&record, "police");
    assert_eq!(police.status, FeedStatus::Held, "{police:#?}");
    assert!(
        police
            .error
            .as_deref()
            .is_some_and(|e| e.contains("redirect loop")),
        "{police:#?}"
    );
    // The allowed origin is followed, without the credential.
    let drc = feed(&record, "drc");
    assert_eq!(drc.status, FeedStatus::Landed, "{drc:#?}");
    assert_eq!(drc.read as usize, other.records("drc"));

    // The second listener saw only drc's pages, and never a credential or a cookie.
    let seen = other.hits();
    assert!(seen.iter().any(|h| h.feed == "drc"));
    assert!(seen.iter().all(|h| h.feed == "drc"), "{seen:#?}");
    assert!(!seen.iter().any(carries_secret), "{seen:#?}");
    // Home saw the credentials (the test would be vacuous otherwise) and
    // never the cookie it set on its redirects.
    let home_hits = home.hits();
    for (name, header) in [("credit", "x-api-key"), ("ratings", "authorization")] {
        assert!(
            home_hits
                .iter()
                .any(|h| h.feed == name && h.headers.iter().any(|(n, _)| n == header)),
            "{name} sent no {header} home"
        );
    }
    assert!(
        !home_hits
            .iter()
            .any(|h| h.headers.iter().any(|(n, _)| n == "cookie")),
        "a cookie came back"
    );
    // No secret in the ledger either.
    let ledger = serde_json::to_string(&record).expect("json");
    assert!(
        !ledger.contains(API_KEY) && !ledger.contains(TOKEN),
        "{ledger}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_shorter_than_asked_do_not_end_the_feed() {
    let feeds = tempfile::tempdir().expect("tmp");
    // About 3,300 court records, paged by the server 50 at a time.
    generate(feeds.path(), 290);
    let sim = FeedSimulator::start(feeds.path(), 0, None)
        .await
        .expect("simulator");
    let shrunk = ["registry", "persons", "annual_reports", "court", "credit"];
    for name in shrunk {
        sim.inject(name, Fault::ShortPages { max: 50 });
    }
    assert!(sim.records("court") > 3000, "{}", sim.records("court"));
    let dir = tempfile::tempdir().expect("tmp");
    http_project(dir.path(), &sim.url(), None);
    // The declared-count guard off, as a source has it by default.
    for name in shrunk {
        edit(dir.path(), name, |_, g| {
            g.insert("declared_count".into(), toml::Value::Boolean(false));
        });
    }
    let project = Project::load(dir.path()).expect("project");
    let warehouse = tempfile::tempdir().expect("tmp");
    let record = run(&project, warehouse.path()).await;
    assert_eq!(record.status, RunStatus::Succeeded, "{record:#?}");
    for name in shrunk {
        let f = feed(&record, name);
        assert_eq!(f.status, FeedStatus::Landed, "{f:#?}");
        assert_eq!(f.read as usize, sim.records(name), "{name}");
        assert!(f.reconciles());
        if let Some(declared) = f.declared {
            assert_eq!(declared, f.read, "{name}");
        }
        assert!(f.units as usize >= sim.records(name) / 50, "{name}: {f:#?}");
    }
    // Paged short, every feed still holds what the generator wrote.
    let wrong =
        crate::reconcile::run_mismatches(&record, &crate::reconcile::written(feeds.path()), &[]);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_total_not_reached_fails_the_feed_unless_the_source_says_it_may() {
    let feeds = tempfile::tempdir().expect("tmp");
    generate(feeds.path(), 120);
    let sim = FeedSimulator::start(feeds.path(), 0, None)
        .await
        .expect("simulator");
    for name in ["credit", "drc"] {
        sim.inject(name, Fault::ShortPages { max: 7 });
        sim.inject(name, Fault::TruncatedDump { missing: 3 });
    }
    let dir = tempfile::tempdir().expect("tmp");
    http_project(dir.path(), &sim.url(), None);
    for name in ["credit", "drc"] {
        edit(dir.path(), name, |_, g| {
            g.insert("declared_count".into(), toml::Value::Boolean(false));
        });
    }
    edit(dir.path(), "drc", |s, _| {
        s.insert("total_may_fall_short".into(), toml::Value::Boolean(true));
    });
    let project = Project::load(dir.path()).expect("project");
    let warehouse = tempfile::tempdir().expect("tmp");
    let record = run(&project, warehouse.path()).await;
    assert_eq!(record.status, RunStatus::Degraded, "{record:#?}");
    let credit = feed(&record, "credit");
    assert_eq!(credit.status, FeedStatus::Held, "{credit:#?}");
    let total = sim.records("credit");
    let error = credit.error.clone().unwrap_or_default();
    assert!(
        error.contains("feed credit")
            && error.contains(&format!(
                "declared {total} records and paging ended after {}",
                total - 3
            )),
        "{error}"
    );
    let drc = feed(&record, "drc");
    assert_eq!(drc.status, FeedStatus::Landed, "{drc:#?}");
    assert_eq!(drc.read as usize, sim.records("drc") - 3);
    assert_eq!(drc.declared, Some(drc.read + 3));
    // Every other feed holds what the generator wrote (drc, short of its
    // last three records by design, aside).
    let wrong = crate::reconcile::run_mismatches(
        &record,
        &crate::reconcile::written(feeds.path()),
        &["drc"],
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_error_envelope_served_with_200_is_a_failed_response() {
    let feeds = tempfile::tempdir().expect("tmp");
    generate(feeds.path(), 60);
    let sim = FeedSimulator::start(feeds.path(), 0, None)
        .await
        .expect("simulator");
    // credit: one error envelope, then good pages; ratings: only envelopes.
    sim.inject("credit", Fault::ErrorEnvelope { times: 1 });
    sim.inject("ratings", Fault::ErrorEnvelope { times: 999 });
    let dir = tempfile::tempdir().expect("tmp");
    let project = http_project(dir.path(), &sim.url(), None);
    let warehouse = tempfile::tempdir().expect("tmp");
    let record = run(&project, warehouse.path()).await;
    let credit = feed(&record, "credit");
    assert_eq!(credit.status, FeedStatus::Landed, "{credit:#?}");
    assert_eq!(credit.read as usize, sim.records("credit"));
    assert_eq!(credit.retries, 1);
    let ratings = feed(&record, "ratings");
    assert_eq!(ratings.status, FeedStatus::Held, "{ratings:#?}");
    assert_eq!(ratings.read, 0);
    let error = ratings.error.clone().unwrap_or_default();
    assert!(
        error.contains("API error envelope: /code is 500, success is one of 0")
            && error.contains("after 3 retries"),
        "{error}"
    );
    // An envelope retried lands the whole delivery: what the generator wrote.
    let wrong =
        crate::reconcile::run_mismatches(&record, &crate::reconcile::written(feeds.path()), &[]);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stalls_is_reported_as_a_timeout_with_its_limit() {
    let feeds = tempfile::tempdir().expect("tmp");
    generate(feeds.path(), 40);
    let sim = FeedSimulator::start(feeds.path(), 0, None)
        .await
        .expect("simulator");
    sim.inject(
        "ratings",
        Fault::SlowBody {
            times: 999,
            delay: Duration::from_secs(30),
        },
    );
    let dir = tempfile::tempdir().expect("tmp");
    http_project(dir.path(), &sim.url(), None);
    edit(dir.path(), "ratings", |s, _| {
        s.insert("max_retries".into(), toml::Value::Integer(1));
        // The limit under test: short, and far below the stall.
        s.insert("timeout_seconds".into(), toml::Value::Integer(2));
        bearer(s);
    });
    let project = Project::load(dir.path()).expect("project");
    let warehouse = tempfile::tempdir().expect("tmp");
    let record = run(&project, warehouse.path()).await;
    let ratings = feed(&record, "ratings");
    assert_eq!(ratings.status, FeedStatus::Held, "{ratings:#?}");
    let error = ratings.error.clone().unwrap_or_default();
    assert!(
        error.contains("feed ratings")
            && error.contains(
                "timed out after 2 s (source.timeout_seconds) reading the response body of"
            )
            && error.contains(&format!("{}/api/ratings?page=1&size=100", sim.url()))
            && !error.contains("decoding"),
        "{error}"
    );
    assert!(!error.contains(TOKEN), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_names_the_url_and_its_cause() {
    let feeds = tempfile::tempdir().expect("tmp");
    generate(feeds.path(), 40);
    let sim = FeedSimulator::start(feeds.path(), 0, None)
        .await
        .expect("simulator");
    // A port the test holds bound but never listens on: a connection to it
    // is refused, and no other test can take it while this one runs.
    let held = tokio::net::TcpSocket::new_v4().expect("socket");
    held.bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind");
    let closed = held.local_addr().expect("addr");
    let dir = tempfile::tempdir().expect("tmp");
    http_project(dir.path(), &sim.url(), None);
    edit(dir.path(), "credit", |s, _| {
        s.insert("url".into(), format!("http://{closed}/api/credit").into());
        s.insert("max_retries".into(), toml::Value::Integer(1));
    });
    let project = Project::load(dir.path()).expect("project");
    let warehouse = tempfile::tempdir().expect("tmp");
    let record = run(&project, warehouse.path()).await;
    let credit = feed(&record, "credit");
    assert_eq!(credit.status, FeedStatus::Held, "{credit:#?}");
    let error = credit.error.clone().unwrap_or_default();
    assert!(
        error.contains(&format!("cannot connect to http://{closed}/api/credit"))
            && !error.contains("error sending request"),
        "{error}"
    );
}
