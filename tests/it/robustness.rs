//! Property tests that keep the fuzzers' promises in every CI run: no input
//! makes a parser, a mapping, a loader or the push's response handling
//! panic, and what is valid is read exactly.

use proptest::prelude::*;
use qinglian::validate::coerce::{
    parse_bool, parse_date, parse_decimal, parse_float, parse_int, parse_timestamp,
};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn value_parsers_never_panic(text in "\\PC{0,64}", factor in prop::sample::select(vec![1i64, 10_000]), scale in 0i8..=4) {
        let _ = parse_date(&text);
        let _ = parse_timestamp(&text);
        let _ = parse_decimal(&text, factor, scale);
        let _ = parse_bool(&text);
        let _ = parse_int(&text);
        let _ = parse_float(&text);
    }

    #[test]
    fn number_like_text_never_panics(
        sign in prop::sample::select(vec!["", "-", "+"]),
        int in "[0-9,]{0,60}",
        frac in "0{0,60}[0-9]{0,3}",
        factor in prop::sample::select(vec![1i64, 10_000]),
        scale in 0i8..=4,
    ) {
        let text = format!("{sign}{int}.{frac}");
        let _ = parse_decimal(&text, factor, scale);
        let _ = parse_decimal(&format!("{sign}{int}"), factor, scale);
        let _ = parse_date(&int.replace(',', ""));
    }

    #[test]
    fn amounts_in_wan_yuan_are_exact(wan in 0i64..10_000_000, cents in 0i64..100) {
        // 123.45 万元 is 1,234,500.00 yuan: exactly, in cents.
        let text = format!("{wan}.{cents:02}");
        prop_assert_eq!(
            parse_decimal(&text, 10_000, 2),
            Ok(i128::from(wan) * 1_000_000 + i128::from(cents) * 10_000)
        );
    }

    #[test]
    fn every_date_form_reads_the_same_day(days in 0i64..40_000) {
        let d = chrono::NaiveDate::from_ymd_opt(1950, 1, 1).expect("date") + chrono::TimeDelta::days(days);
        for text in [
            d.format("%Y-%m-%d").to_string(),
            d.format("%Y年%m月%d日").to_string(),
            d.format("%Y/%m/%d").to_string(),
            d.format("%Y%m%d").to_string(),
            d.format("%Y-%m-%d 00:00:00").to_string(),
        ] {
            prop_assert_eq!(parse_date(&text), Ok(d), "{}", text);
        }
    }
}

#[test]
fn long_fractions_of_zeros_are_refused_not_overflowed() {
    let tiny = format!("0.{}1", "0".repeat(50));
    assert!(parse_decimal(&tiny, 1, 2).is_err());
    assert!(parse_decimal(&format!("0.{}", "0".repeat(80)), 10_000, 2).is_ok());
}

/// Mutated configuration files: the loader reports, it never panics.
#[test]
fn mutated_configuration_is_reported_never_a_panic() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let dir = tempfile::tempdir().expect("tmp");
    crate::support::copy_project(dir.path());
    let targets = [
        "jobs/nightly.toml",
        "pipelines/nightly.toml",
        "pipelines/sources/court.toml",
        "pipelines/sources/registry.toml",
        "schemas/court.toml",
        "schemas/out/codes.toml",
        "pipelines/rules/operations.toml",
    ];
    let originals: Vec<Vec<u8>> = targets
        .iter()
        .map(|t| std::fs::read(dir.path().join(t)).expect("read"))
        .collect();
    let mut reported = 0;
    for case in 0..400 {
        let i = case % targets.len();
        let mut bytes = originals[i].clone();
        for _ in 0..rng.random_range(1..6) {
            let at = rng.random_range(0..bytes.len());
            match rng.random_range(0..4) {
                0 => bytes[at] = rng.random(),
                1 => {
                    bytes.remove(at);
                }
                2 => bytes.insert(
                    at,
                    *b"\"[]{}=#\n,.0-x\\"
                        .get(rng.random_range(0..14))
                        .unwrap_or(&b'x'),
                ),
                _ => {
                    let end = (at + rng.random_range(1..40)).min(bytes.len());
                    bytes.drain(at..end);
                }
            }
        }
        std::fs::write(dir.path().join(targets[i]), &bytes).expect("write");
        if qinglian::project::Project::load(dir.path()).is_err() {
            reported += 1;
        }
        std::fs::write(dir.path().join(targets[i]), &originals[i]).expect("restore");
    }
    assert!(reported > 200, "most mutations are reported: {reported}");
}

/// Whatever the platform answers, the push acknowledges only a receipt
/// that names its batch, and never panics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_platform_answer_is_classified_never_a_panic() {
    use std::sync::{Arc, Mutex};

    use axum::http::StatusCode;
    use qinglian::deliver::{Endpoint, Outbox, OutboxBatch};
    use qinglian::ledger::DeliverySummary;
    use rand::{Rng, SeedableRng};

    /// Scripted answers: status and body, taken from the end.
    type Script = Arc<Mutex<Vec<(u16, Vec<u8>)>>>;
    let answers: Script = Arc::new(Mutex::new(Vec::new()));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let statuses = [
        200u16, 201, 204, 301, 400, 401, 404, 408, 409, 422, 429, 500, 503,
    ];
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"<html>ok</html>".to_vec(),
        b"{\"receipt_id\": 7}".to_vec(),
        b"{\"receipt_id\": \"r\", \"idempotency_key\": \"other\", \"accepted_rows\": 1}".to_vec(),
        b"{\"receipt_id\": \"r\", \"idempotency_key\": \"KEY\", \"accepted_rows\": 999}".to_vec(),
        b"{\"receipt_id\": \"r\", \"idempotency_key\": \"KEY\", \"accepted_rows\": 1}".to_vec(),
        vec![0xff, 0xfe, 0x00, 0x7b],
        "{\"a\":".repeat(10_000).into_bytes(),
    ];
    for _ in 0..60 {
        let s = statuses[rng.random_range(0..statuses.len())];
        let b = bodies[rng.random_range(0..bodies.len())].clone();
        answers.lock().expect("lock").push((s, b));
    }
    let script = Arc::clone(&answers);
    let app = axum::Router::new().route(
        "/intake",
        axum::routing::post(move |headers: axum::http::HeaderMap| {
            let script = Arc::clone(&script);
            async move {
                let key = headers
                    .get("idempotency-key")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let (status, body) = script
                    .lock()
                    .ok()
                    .and_then(|mut s| s.pop())
                    .unwrap_or((503, Vec::new()));
                let body = String::from_utf8_lossy(&body)
                    .replace("KEY", &key)
                    .into_bytes();
                (
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    body,
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let dir = tempfile::tempdir().expect("tmp");
    crate::support::copy_project(dir.path());
    crate::deliver::tune_push(dir.path());
    let project = qinglian::project::Project::load(dir.path()).expect("project");
    let vars = [
        (
            "QINGLIAN_PLATFORM_URL".to_string(),
            format!("http://{addr}/intake"),
        ),
        ("QINGLIAN_PLATFORM_SECRET".to_string(), "s".to_string()),
    ]
    .into_iter()
    .collect();
    let endpoint = Endpoint::resolve(&project.pipelines["nightly"], &vars)
        .expect("endpoint")
        .expect("configured");
    let warehouse = tempfile::tempdir().expect("tmp");
    let (store, prefix) =
        qinglian::store::open_for_write(warehouse.path().to_str().expect("utf-8")).expect("wh");
    let outbox = Outbox::new(store, prefix);
    for n in 0..12u32 {
        outbox
            .enqueue(&OutboxBatch {
                key: format!("nightly-20261128-changes-{n:05}-test"),
                pipeline: "nightly".into(),
                run_id: "nightly-20261128-01".into(),
                business_date: crate::ingest::date(),
                kind: "changes".into(),
                batch: n + 1,
                batches: 12,
                rows: 1,
                body: "{\"records\":[{}]}".into(),
                queued_at: chrono::Utc::now(),
            })
            .await
            .expect("enqueue");
    }
    for _ in 0..6 {
        let mut summary = DeliverySummary::default();
        qinglian::deliver::drain(
            &outbox,
            &endpoint,
            &qinglian::clock::SystemClock,
            &mut summary,
        )
        .await
        .expect("drain");
    }
    // Every acknowledged batch has a receipt naming its own key and count.
    for ack in outbox.acknowledged().await.expect("acks") {
        assert_eq!(ack.receipt["idempotency_key"], ack.key.as_str());
        assert_eq!(ack.accepted_rows, 1);
    }
    let total = outbox.acknowledged().await.expect("acks").len()
        + outbox.pending().await.expect("pending").len()
        + outbox.dead_letters().await.expect("dead").len();
    assert_eq!(total, 12, "every batch is acknowledged, waiting or parked");
}

/// Random records through the real mappings: every line read is landed,
/// quarantined or a duplicate, and the run ends normally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_records_are_landed_or_quarantined_never_lost() {
    use std::io::Write;

    use rand::{Rng, SeedableRng};

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let feeds = tempfile::tempdir().expect("tmp");
    crate::ingest::generate(feeds.path(), 30);
    let pick = |rng: &mut rand_chacha::ChaCha8Rng, xs: &[&str]| {
        xs[rng.random_range(0..xs.len())].to_string()
    };
    let values = [
        "",
        "null",
        "0",
        "-1",
        "1e308",
        "\"\"",
        "\"2026-13-45\"",
        "\"9133010\"",
        "\"52330114MJ000000X1\"",
        "\"全部未履行\"",
        "\"万元\"",
        "[]",
        "{}",
        "true",
        "\"\\u0000\"",
        "\"../../etc\"",
        "1767974400000",
        "\"0.000000000000000000000000000000000000000000000000001\"",
        "\"1,234.5\"",
    ];
    let fields = [
        "cardNum",
        "iname",
        "caseCode",
        "recordType",
        "regDate",
        "publishDate",
        "execMoney",
        "unperformedMoney",
        "performance",
        "caseState",
        "courtName",
        "extra",
    ];
    let mut f = std::fs::File::create(feeds.path().join("court/random.ndjson")).expect("file");
    for _ in 0..400 {
        let line = match rng.random_range(0..5) {
            0 => {
                let n = rng.random_range(0..40);
                (0..n)
                    .map(|_| rng.random_range(32u8..127) as char)
                    .collect::<String>()
            }
            _ => {
                let n = rng.random_range(0..fields.len());
                let body: Vec<String> = (0..n)
                    .map(|_| {
                        format!(
                            "\"{}\":{}",
                            pick(&mut rng, &fields),
                            pick(&mut rng, &values)
                        )
                    })
                    .collect();
                format!("{{{}}}", body.join(","))
            }
        };
        writeln!(f, "{line}").expect("write");
    }
    drop(f);
    let header = std::fs::read_to_string(feeds.path().join("credit/credit.csv"))
        .expect("credit")
        .lines()
        .next()
        .expect("header")
        .to_string();
    let cells = [
        "",
        "\"",
        "\"\"",
        "a,b",
        "52330114MJ000000X1",
        "2026-02-30",
        "十万",
        "1e9",
        "\u{feff}",
        "\"x\ny\"",
    ];
    let mut f = std::fs::File::create(feeds.path().join("credit/random.csv")).expect("file");
    writeln!(f, "{header}").expect("write");
    for _ in 0..300 {
        let n = rng.random_range(0..16);
        let row: Vec<String> = (0..n).map(|_| pick(&mut rng, &cells)).collect();
        writeln!(f, "{}", row.join(",")).expect("write");
    }
    drop(f);
    let warehouse = tempfile::tempdir().expect("tmp");
    let run = crate::ingest::ingest(feeds.path(), warehouse.path()).await;
    assert!(
        matches!(
            run.status,
            qinglian::ledger::RunStatus::Succeeded | qinglian::ledger::RunStatus::Degraded
        ),
        "{run:#?}"
    );
    for f in &run.feeds {
        assert!(f.reconciles(), "{} does not reconcile: {f:#?}", f.feed);
    }
    let court = run.feeds.iter().find(|f| f.feed == "court").expect("court");
    assert!(court.quarantined >= 80, "{court:#?}");
}
