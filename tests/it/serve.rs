//! The public lookup (一码通查), against real components on 127.0.0.1: a
//! warehouse published by the pipeline, the server, headless Chromium,
//! zbar's QR decoder and a bounded load. Nothing touches the internet.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use qinglian::catalog::Published;
use qinglian::generate::{GenerateOptions, generate};
use qinglian::ledger::RunStatus;
use qinglian::project::Project;
use qinglian::serve::{Index, ServeConfig, Server};

use crate::ingest::{date, ingest, ingest_on};
use crate::support::root;

/// The permanent public address the QR codes encode in these tests (a
/// reserved `.test` name: nothing resolves it, nothing fetches it).
const BASE: &str = "https://yimatongcha.hangzhou.test";
/// The name planted on one organization.
const HOSTILE: &str = "<script>alert(1)</script>协会";

/// Exactly the columns DOMAIN.md §5 lets the public see, per dataset.
const SHOWN: [(&str, &[&str]); 2] = [
    (
        "public",
        &[
            "uscc",
            "name",
            "org_type",
            "registrar",
            "supervisor",
            "legal_representative",
            "established_on",
            "status",
            "status_changed_on",
            "domicile",
            "registered_funds",
            "charity",
            "public_fundraising",
            "colour",
            "colour_issued_on",
            "colour_valid_until",
            "as_of",
        ],
    ),
    (
        "public_events",
        &[
            "uscc",
            "kind",
            "event_date",
            "report_year",
            "conclusion",
            "level",
            "valid_until",
            "list_type",
            "reason",
            "decision_no",
            "penalty_kind",
            "amount",
            "authority",
            "removed_on",
        ],
    ),
];

fn shown(dataset: &str) -> BTreeSet<&'static str> {
    SHOWN
        .iter()
        .find(|(d, _)| *d == dataset)
        .map(|(_, c)| c.iter().copied().collect())
        .unwrap_or_default()
}

/// Replaces the name of the registry's first organization; returns its USCC.
fn plant_name(feeds: &Path, name: &str) -> String {
    let path = feeds.join("registry/registry.csv");
    let raw = std::fs::read(&path).expect("registry.csv");
    let (text, _, _) = encoding_rs::GB18030.decode(&raw);
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().expect("headers").clone();
    let col = |h: &str| headers.iter().position(|x| x == h).expect(h);
    let (name_col, uscc_col) = (col("社会组织名称"), col("统一社会信用代码"));
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(&headers).expect("write");
    let mut planted = None;
    for (i, r) in reader.records().enumerate() {
        let r = r.expect("record");
        let mut fields: Vec<String> = r.iter().map(str::to_string).collect();
        if i == 0 {
            fields[name_col] = name.to_string();
            planted = Some(fields[uscc_col].clone());
        }
        out.write_record(&fields).expect("write");
    }
    let text = String::from_utf8(out.into_inner().expect("csv")).expect("utf-8");
    let (bytes, _, _) = encoding_rs::GB18030.encode(&text);
    std::fs::write(&path, bytes).expect("write registry.csv");
    planted.expect("a first organization")
}

struct Fixture {
    warehouse: PathBuf,
    hostile: String,
}

/// One published warehouse (400 organizations, one with a hostile name),
/// shared by the tests that only read it.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        std::thread::spawn(|| {
            let dir = tempfile::tempdir().expect("tmp").keep();
            let feeds = dir.join("feeds");
            let warehouse = dir.join("warehouse");
            crate::ingest::generate(&feeds, 400);
            let hostile = plant_name(&feeds, HOSTILE);
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            let run = rt.block_on(ingest(&feeds, &warehouse));
            assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
            Fixture { warehouse, hostile }
        })
        .join()
        .expect("fixture")
    })
}

fn config(warehouse: &Path) -> ServeConfig {
    let (store, prefix) = qinglian::store::open(warehouse.to_str().expect("utf-8")).expect("open");
    ServeConfig {
        poll: Duration::from_millis(100),
        rate_per_second: 0,
        ..ServeConfig::new(store, prefix, BASE)
    }
}

async fn start(warehouse: &Path) -> Server {
    Server::start(config(warehouse), "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("server")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_gzip()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

async fn get(url: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let r = client().get(url).send().await.expect("request");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.text().await.expect("body"))
}

fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// One organization of each colour, and one without a colour
/// (deregistered), by colour (`none`), the hostile one left out.
fn by_colour(index: &Index, hostile: &str) -> BTreeMap<String, qinglian::serve::Org> {
    let mut out = BTreeMap::new();
    for o in index.orgs() {
        let c = o.colour.clone().unwrap_or_else(|| "none".into());
        if o.uscc != hostile {
            out.entry(c).or_insert_with(|| o.clone());
        }
    }
    out
}

#[test]
fn the_public_contracts_hold_exactly_what_the_public_may_see() {
    let project = Project::load(&root()).expect("project");
    for (dataset, _) in SHOWN {
        let declared: BTreeSet<&str> = project.contracts[dataset]
            .columns
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(declared, shown(dataset), "schemas/out/{dataset}.toml");
    }
    for (dataset, schema) in [
        ("public", qinglian::score::public::public_schema()),
        (
            "public_events",
            qinglian::score::public::public_events_schema(),
        ),
    ] {
        let written: BTreeSet<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(written, shown(dataset), "{dataset} writer");
        let problems = project.contracts[dataset].differences(&schema);
        assert!(problems.is_empty(), "{dataset}: {problems:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_published_public_datasets_have_no_other_column_and_no_private_value() {
    let f = fixture();
    let (store, prefix) =
        qinglian::store::open(f.warehouse.to_str().expect("utf-8")).expect("open");
    let p = Published::latest(&store, &prefix, date())
        .await
        .expect("readable")
        .expect("published");
    for (dataset, _) in SHOWN {
        let batches = p.read_batches(dataset).await.expect(dataset);
        assert!(!batches.is_empty(), "{dataset} published");
        for b in &batches {
            let columns: BTreeSet<&str> = b
                .schema_ref()
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect();
            let allowed = shown(dataset);
            let extra: Vec<_> = columns.difference(&allowed).collect();
            assert!(extra.is_empty(), "{dataset} publishes {extra:?}");
        }
    }
    // One row per registered organization; events of every kind the
    // generator makes, penalties only within their display period.
    assert_eq!(
        p.manifest.datasets["public"].rows,
        p.manifest.datasets["profiles"].rows
    );
    let index = Index::load(&p).await.expect("index");
    let kinds: BTreeSet<String> = index
        .orgs()
        .iter()
        .flat_map(|o| o.events.iter().map(|e| e.kind.clone()))
        .collect();
    for k in ["registered", "annual_inspection", "rating", "colour_issued"] {
        assert!(kinds.contains(k), "{k} events: {kinds:?}");
    }
    let oldest_penalty = index
        .orgs()
        .iter()
        .flat_map(|o| o.events.iter())
        .filter(|e| e.kind == "penalty")
        .filter_map(|e| e.event_date)
        .min();
    if let Some(d) = oldest_penalty {
        assert!(
            d > NaiveDate::from_ymd_opt(2023, 11, 28).expect("date"),
            "{d}"
        );
    }
    // The names of persons other than the legal representative never
    // appear: no value of `public` is a person name of another role.
    let persons = crate::support::read_parquet(
        &f.warehouse.join(
            p.manifest.inputs["persons"]
                .path
                .as_deref()
                .expect("persons landed"),
        ),
    )
    .await;
    let names = crate::support::strings(&persons, "person_name");
    let roles = crate::support::strings(&persons, "role");
    let uscc = crate::support::strings(&persons, "uscc");
    let legal: BTreeSet<(String, String)> = names
        .iter()
        .zip(&roles)
        .zip(&uscc)
        .filter(|((_, r), _)| r.as_deref() == Some("legal_rep"))
        .filter_map(|((n, _), u)| Some((u.clone()?, n.clone()?)))
        .collect();
    for o in index.orgs() {
        if let Some(n) = &o.legal_representative {
            assert!(
                legal.contains(&(o.uscc.clone(), n.clone())),
                "{} shows {n}, not its legal representative",
                o.uscc
            );
        }
    }
    assert!(
        index
            .orgs()
            .iter()
            .any(|o| o.legal_representative.is_some())
    );
}

/// A valid USCC no generated organization has (the README's example code,
/// checked against the index before use).
const UNKNOWN: &str = "53330000501874064B";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_api_and_hardening_answer_as_the_public_expects() {
    let f = fixture();
    let server = start(&f.warehouse).await;
    let url = server.url();
    let index = server.catalog().current();
    let version = index.version.clone().expect("a version is served");
    assert!(index.get(UNKNOWN).is_none());
    let orgs = by_colour(&index, &f.hostile);
    let coloured = orgs
        .get("green")
        .or(orgs.get("yellow"))
        .expect("a coloured org");

    // The page: facts, colour as word and icon, dates, security headers.
    let (status, h, body) = get(&format!("{url}/o/{}", coloured.uscc)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&coloured.name) && body.contains(&coloured.uscc));
    for text in [
        "统一社会信用代码",
        "登记状态",
        "赋码日期",
        "有效期至",
        "数据截至",
        "全周期信息",
        "大字版",
    ] {
        assert!(body.contains(text), "{text} missing");
    }
    let word = if coloured.colour.as_deref() == Some("green") {
        "绿码"
    } else {
        "黄码"
    };
    assert!(body.contains(word), "{word}");
    assert!(!body.contains("<script"), "no script on any page");
    let csp = header(&h, "content-security-policy");
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(header(&h, "x-content-type-options"), "nosniff");
    assert_eq!(header(&h, "referrer-policy"), "no-referrer");
    // The large-text switch is a link; the large page says so in its class.
    let (_, _, large) = get(&format!("{url}/o/{}?size=large", coloured.uscc)).await;
    assert!(large.contains("<body class=\"large\">") && large.contains("标准字号"));

    // A hostile name is text.
    let (status, _, body) = get(&format!("{url}/o/{}", f.hostile)).await;
    assert_eq!(status, 200);
    // minijinja escapes `/` too.
    assert!(
        body.contains("<h1 class=\"org-name\">&lt;script&gt;alert(1)&lt;&#x2f;script&gt;协会</h1>"),
        "{body}"
    );
    assert!(!body.contains("<script>"));

    // A deregistered organization: its status, no colour.
    let gone = orgs.get("none").expect("a deregistered organization");
    let (status, _, body) = get(&format!("{url}/o/{}", gone.uscc)).await;
    assert_eq!(status, 200);
    assert!(
        body.contains("不显示清廉码") && body.contains("已注销"),
        "{body}"
    );
    for c in ["badge-green", "badge-yellow", "badge-orange", "badge-red"] {
        assert!(!body.contains(c), "{c} on a deregistered organization");
    }

    // Dirty forms of a code lead to the canonical page.
    let full_width: String = coloured
        .uscc
        .chars()
        .map(|c| char::from_u32(c as u32 + 0xFEE0).unwrap_or(c))
        .collect();
    let (status, h, _) = get(&format!(
        "{url}/o/{}",
        qinglian::serve::pages::encode(&full_width)
    ))
    .await;
    assert_eq!(status, 308);
    assert_eq!(header(&h, "location"), format!("/o/{}", coloured.uscc));
    // An invalid code: 400 naming the check; a valid unknown one: 404.
    let mut bad = coloured.uscc.clone();
    let last = bad.pop().expect("18 characters");
    bad.push(if last == '0' { '1' } else { '0' });
    let (status, _, body) = get(&format!("{url}/o/{bad}")).await;
    assert_eq!(status, 400);
    assert!(body.contains("校验码检查"), "{body}");
    let (status, _, body) = get(&format!("{url}/o/12345")).await;
    assert_eq!(status, 400);
    assert!(body.contains("长度检查"), "{body}");
    let (status, _, body) = get(&format!("{url}/o/{UNKNOWN}")).await;
    assert_eq!(status, 404);
    assert!(body.contains("未找到该组织"));

    // Search: a dirty code goes to its page; a part of a name finds it.
    let q = format!(" {} ", coloured.uscc.to_lowercase());
    let (status, h, _) = get(&format!(
        "{url}/search?q={}",
        qinglian::serve::pages::encode(&q)
    ))
    .await;
    assert_eq!(status, 303, "lower case and spaces are normalized");
    assert_eq!(header(&h, "location"), format!("/o/{}", coloured.uscc));
    let part: String = coloured.name.chars().skip(2).take(4).collect();
    let (status, _, body) = get(&format!(
        "{url}/search?q={}",
        qinglian::serve::pages::encode(&part)
    ))
    .await;
    assert_eq!(status, 200);
    assert!(
        body.contains(&coloured.uscc),
        "{part} finds {}",
        coloured.name
    );
    // A common word: at most 200 results, 20 a page, page 2 exists.
    let common = "协会";
    let results = index.search(common, 0, 20);
    assert!(
        results.total > 20 && results.total <= 200,
        "{}",
        results.total
    );
    let (status, _, body) = get(&format!(
        "{url}/search?q={}&page=2",
        qinglian::serve::pages::encode(common)
    ))
    .await;
    assert_eq!(status, 200);
    assert!(body.contains("第 2/"), "{body}");
    assert_eq!(
        body.matches("<li><a href=\"/o/").count(),
        20.min(results.total - 20)
    );
    let (status, _, body) = get(&format!(
        "{url}/search?q=%E4%B8%8D%E5%AD%98%E5%9C%A8%E7%9A%84%E5%90%8D%E7%A7%B0xyz"
    ))
    .await;
    assert_eq!(status, 200);
    assert!(body.contains("没有找到"));

    // JSON with ETag and Cache-Control; 304 on If-None-Match.
    let (status, h, body) = get(&format!("{url}/api/v1/orgs/{}", coloured.uscc)).await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "etag"), format!("\"{version}\""));
    assert!(header(&h, "cache-control").contains("max-age"));
    let json: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(json["version"], version.as_str());
    assert_eq!(json["url"], format!("{BASE}/o/{}", coloured.uscc));
    let org = json["organization"].as_object().expect("organization");
    let keys: BTreeSet<&str> = org
        .keys()
        .map(String::as_str)
        .filter(|k| *k != "events")
        .collect();
    assert_eq!(
        keys,
        shown("public"),
        "the API shows the public columns only"
    );
    for e in org["events"].as_array().expect("events") {
        for k in e.as_object().expect("event").keys() {
            assert!(
                shown("public_events").contains(k.as_str()) && k != "uscc",
                "{k}"
            );
        }
    }
    let r = client()
        .get(format!("{url}/api/v1/orgs/{}", coloured.uscc))
        .header("If-None-Match", format!("\"{version}\""))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 304);
    let (status, _, body) = get(&format!("{url}/api/v1/orgs/{bad}")).await;
    assert_eq!(status, 400);
    assert!(body.contains("invalid_uscc"));
    let (status, _, _) = get(&format!("{url}/api/v1/orgs/{UNKNOWN}")).await;
    assert_eq!(status, 404);

    // The card: QR code framed in the colour, name and code.
    let (status, _, body) = get(&format!("{url}/o/{}/card", coloured.uscc)).await;
    assert_eq!(status, 200);
    assert!(body.contains(&format!("/o/{}/qr.svg", coloured.uscc)) && body.contains("frame-"));
    let (status, h, svg) = get(&format!("{url}/o/{}/qr.svg", coloured.uscc)).await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "content-type"), "image/svg+xml");
    assert!(svg.contains("<svg"));

    // gzip when asked; nothing outside the routes; no body accepted.
    let r = client()
        .get(format!("{url}/o/{}", coloured.uscc))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .expect("request");
    assert_eq!(header(r.headers(), "content-encoding"), "gzip");
    for path in [
        "/etc/passwd",
        "/o/",
        "/o/x/y/z",
        "/static/../Cargo.toml",
        "/files/x",
    ] {
        let (status, _, _) = get(&format!("{url}{path}")).await;
        assert_eq!(status, 404, "{path}");
    }
    let r = client()
        .post(format!("{url}/search"))
        .body(vec![b'x'; 1 << 20])
        .send()
        .await
        .expect("request");
    assert!(matches!(r.status().as_u16(), 405 | 413), "{}", r.status());

    // Health and metrics: the version served, requests by route and status.
    let (status, _, body) = get(&format!("{url}/healthz")).await;
    assert_eq!(status, 200);
    assert!(body.contains(&version));
    let (_, _, metrics) = get(&format!("{url}/metrics")).await;
    for line in [
        format!("qinglian_serve_version_info{{version=\"{version}\"}} 1"),
        "qinglian_serve_requests_total{route=\"/o/{uscc}\",status=\"200\"}".to_string(),
        "qinglian_serve_requests_total{route=\"/o/{uscc}\",status=\"404\"}".to_string(),
        "qinglian_serve_request_duration_seconds_bucket{le=".to_string(),
    ] {
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }
    assert!(
        !metrics.contains(&coloured.uscc),
        "metrics name no organization"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_over_its_rate_gets_429_with_retry_after() {
    let f = fixture();
    let config = ServeConfig {
        rate_per_second: 1,
        burst: 3,
        ..config(&f.warehouse)
    };
    let server = Server::start(config, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("server");
    let url = server.url();
    // Requests until the first 429: however slow the machine, no more get
    // through than the burst and what the rate refilled meanwhile (before, six
    // requests were required to meet a 429, which a machine slow enough to
    // take three seconds over them would not).
    let mut statuses = Vec::new();
    let mut retry_after = String::new();
    let started = std::time::Instant::now();
    for _ in 0..200 {
        let (status, h, _) = get(&format!("{url}/")).await;
        statuses.push(status);
        if status == 429 {
            retry_after = header(&h, "retry-after").to_string();
            break;
        }
    }
    let refilled = started.elapsed().as_secs() + 1;
    assert_eq!(&statuses[..3], [200, 200, 200], "{statuses:?}");
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    let through = statuses.iter().filter(|s| **s == 200).count() as u64;
    assert!(
        through <= 3 + refilled,
        "{through} requests through in {refilled} s at 1/s with a burst of 3: {statuses:?}"
    );
    let seconds: u64 = retry_after.parse().expect("Retry-After in seconds");
    assert!((1..=2).contains(&seconds), "{seconds}");
    // Health checks are not limited.
    let (status, _, _) = get(&format!("{url}/healthz")).await;
    assert_eq!(status, 200);
    server.stop().await;
}

/// Decodes every QR code in an image with zbar; `None` when zbarimg is
/// missing (./scripts/test installs it).
fn zbar(image: &Path) -> Vec<String> {
    let out = Command::new("zbarimg")
        .args(["--quiet", "--raw", "-Sdisable", "-Sqrcode.enable"])
        .arg(image)
        .output()
        .expect("zbarimg (./scripts/test installs Debian's zbar-tools)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_colour_s_qr_code_decodes_to_the_page_s_exact_address() {
    let f = fixture();
    let server = start(&f.warehouse).await;
    let index = server.catalog().current();
    let orgs = by_colour(&index, &f.hostile);
    let dir = tempfile::tempdir().expect("tmp");
    for colour in ["green", "yellow", "orange", "red", "none"] {
        let o = orgs
            .get(colour)
            .unwrap_or_else(|| panic!("an organization coloured {colour}"));
        let png = client()
            .get(format!("{}/o/{}/qr.png", server.url(), o.uscc))
            .send()
            .await
            .expect("request");
        assert_eq!(header(png.headers(), "content-type"), "image/png");
        let path = dir.path().join(format!("{colour}.png"));
        std::fs::write(&path, png.bytes().await.expect("png")).expect("write");
        assert_eq!(zbar(&path), [format!("{BASE}/o/{}", o.uscc)], "{colour}");
    }
    server.stop().await;
}

fn chromium(args: &[String]) -> std::process::Output {
    let profile = tempfile::tempdir().expect("tmp");
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .output()
        .expect("chromium (./scripts/test installs Debian's chromium)")
}

/// Pixels of a screenshot near a colour (anti-aliasing and colour
/// management move a channel by a few steps).
fn pixels_near(png: &Path, rgb: [u8; 3]) -> usize {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(png).expect("screenshot"),
    ));
    let mut reader = decoder.read_info().expect("png");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("frame");
    let step = info.color_type.samples();
    buf[..info.buffer_size()]
        .chunks(step)
        .filter(|p| p[..3].iter().zip(rgb).all(|(a, b)| a.abs_diff(b) <= 6))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_chromium_shows_the_colour_badge_on_a_phone_and_a_desktop() {
    let f = fixture();
    let server = start(&f.warehouse).await;
    let url = server.url();
    let index = server.catalog().current();
    let orgs = by_colour(&index, &f.hostile);
    let shots = tempfile::tempdir().expect("tmp");
    let badge = [
        ("green", [0x1b, 0x5e, 0x20]),
        ("yellow", [0xff, 0xd6, 0x00]),
        ("orange", [0xf5, 0x7c, 0x00]),
        ("red", [0xb7, 0x1c, 0x1c]),
    ];
    for (colour, rgb) in badge {
        let o = &orgs[colour];
        for (device, size) in [("phone", "390,844"), ("desktop", "1280,900")] {
            let png = shots.path().join(format!("{colour}-{device}.png"));
            let out = chromium(&[
                format!("--window-size={size}"),
                format!("--screenshot={}", png.display()),
                format!("{url}/o/{}", o.uscc),
            ]);
            assert!(
                png.exists(),
                "no screenshot: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let n = pixels_near(&png, rgb);
            assert!(
                n > 2_000,
                "{colour} badge on a {device}: {n} pixels of {rgb:02x?}"
            );
            // No other badge colour is drawn.
            for (other, other_rgb) in badge {
                if other != colour {
                    let m = pixels_near(&png, other_rgb);
                    assert!(m < 200, "{other} on the {colour} page ({device}): {m}");
                }
            }
        }
    }
    // The hostile name is text in the rendered document.
    let out = chromium(&["--dump-dom".into(), format!("{url}/o/{}", f.hostile)]);
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("<h1 class=\"org-name\">&lt;script&gt;alert(1)&lt;/script&gt;协会</h1>"),
        "{dom}"
    );
    // The printed card, rendered from its SVG, decodes to the address.
    let o = &orgs["red"];
    let card = shots.path().join("card.png");
    chromium(&[
        "--window-size=600,900".into(),
        format!("--screenshot={}", card.display()),
        format!("{url}/o/{}/card", o.uscc),
    ]);
    assert_eq!(zbar(&card), [format!("{BASE}/o/{}", o.uscc)]);
    assert!(
        pixels_near(&card, [0xb7, 0x1c, 0x1c]) > 5_000,
        "the red frame"
    );
    server.stop().await;
}

/// Requests sent, their failures and latencies.
pub(crate) struct Load {
    pub(crate) requests: usize,
    pub(crate) errors: Vec<String>,
    pub(crate) seconds: f64,
    pub(crate) latencies: Vec<Duration>,
}

impl Load {
    pub(crate) fn rps(&self) -> f64 {
        self.requests as f64 / self.seconds
    }

    pub(crate) fn quantile(&self, q: f64) -> Duration {
        let mut l = self.latencies.clone();
        l.sort();
        l.get(((l.len() as f64 * q) as usize).min(l.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    }
}

/// Sends `requests` GETs over `urls` in turn, `concurrency` at a time;
/// anything but 200 is an error.
pub(crate) async fn load(urls: &[String], requests: usize, concurrency: usize) -> Load {
    use futures::StreamExt;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let started = Instant::now();
    let results: Vec<Result<Duration, String>> = futures::stream::iter(0..requests)
        .map(|i| {
            let client = client.clone();
            let url = urls[i % urls.len()].clone();
            async move {
                let t = Instant::now();
                let r = client.get(&url).send().await.map_err(|e| e.to_string())?;
                let status = r.status();
                r.bytes().await.map_err(|e| e.to_string())?;
                if status != 200 {
                    return Err(format!("{url}: {status}"));
                }
                Ok(t.elapsed())
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let seconds = started.elapsed().as_secs_f64();
    let mut out = Load {
        requests,
        errors: Vec::new(),
        seconds,
        latencies: Vec::new(),
    };
    for r in results {
        match r {
            Ok(d) => out.latencies.push(d),
            Err(e) => out.errors.push(e),
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounded_load_on_127_0_0_1_has_no_errors() {
    let f = fixture();
    let server = start(&f.warehouse).await;
    let url = server.url();
    let index = server.catalog().current();
    let mut urls = Vec::new();
    for o in index.orgs().iter().take(50) {
        urls.push(format!("{url}/o/{}", o.uscc));
        urls.push(format!("{url}/api/v1/orgs/{}", o.uscc));
        let part: String = o.name.chars().take(3).collect();
        urls.push(format!(
            "{url}/search?q={}",
            qinglian::serve::pages::encode(&part)
        ));
    }
    let run = load(&urls, 3_000, 16).await;
    assert!(
        run.errors.is_empty(),
        "{} errors, first {:?}",
        run.errors.len(),
        run.errors.first()
    );
    assert_eq!(run.latencies.len(), 3_000);
    eprintln!(
        "load: 3000 requests at concurrency 16: {:.0} req/s, p50 {:?}, p99 {:?}",
        run.rps(),
        run.quantile(0.5),
        run.quantile(0.99)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_switch_whole_and_a_broken_one_is_never_taken() {
    let dir = tempfile::tempdir().expect("tmp");
    let warehouse = dir.path().join("warehouse");
    let day1 = NaiveDate::from_ymd_opt(2026, 11, 1).expect("date");
    let day2 = day1.succ_opt().expect("date");
    let feeds = |k: u32, day: NaiveDate| {
        let out = dir.path().join(format!("feeds-{k}"));
        generate(
            &GenerateOptions {
                orgs: 300,
                seed: 42,
                as_of: day,
                day: k,
            },
            &out,
        )
        .expect("generate");
        out
    };
    let run1 = ingest_on(&feeds(0, day1), &warehouse, day1).await;
    assert_eq!(run1.status, RunStatus::Succeeded);
    let server = start(&warehouse).await;
    let url = server.url();
    let v1 = server.catalog().current();
    assert_eq!(v1.version.as_deref(), Some(run1.run_id.as_str()));
    let watched: Vec<String> = v1.orgs().iter().take(20).map(|o| o.uscc.clone()).collect();

    // A client keeps asking while day 2 is published and taken.
    let stop = tokio_util::sync::CancellationToken::new();
    let client_task = {
        let stop = stop.clone();
        let url = url.clone();
        let watched = watched.clone();
        tokio::spawn(async move {
            let client = client();
            let mut seen = Vec::new();
            let mut i = 0;
            while !stop.is_cancelled() {
                let u = &watched[i % watched.len()];
                i += 1;
                let r = client
                    .get(format!("{url}/api/v1/orgs/{u}"))
                    .send()
                    .await
                    .expect("request");
                assert_eq!(r.status().as_u16(), 200);
                let etag = header(r.headers(), "etag").to_string();
                let body: serde_json::Value = r.json().await.expect("json");
                let page = client
                    .get(format!("{url}/o/{u}"))
                    .send()
                    .await
                    .expect("request")
                    .text()
                    .await
                    .expect("page");
                seen.push((etag, body, page));
            }
            seen
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let run2 = ingest_on(&feeds(1, day2), &warehouse, day2).await;
    assert_eq!(run2.status, RunStatus::Succeeded);
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.catalog().current().version.as_deref() != Some(run2.run_id.as_str()) {
        assert!(Instant::now() < deadline, "day 2 never taken");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.cancel();
    let seen = client_task.await.expect("client");
    let v2 = server.catalog().current();

    // Every answer is one version whole: its organization is exactly
    // that version's, and its ETag, version and dates agree.
    let mut versions = BTreeSet::new();
    for (etag, body, page) in &seen {
        let version = body["version"].as_str().expect("version");
        assert_eq!(etag, &format!("\"{version}\""));
        let index = if version == run1.run_id { &v1 } else { &v2 };
        assert_eq!(index.version.as_deref(), Some(version), "a known version");
        let uscc = body["organization"]["uscc"].as_str().expect("uscc");
        let expected = serde_json::to_value(index.get(uscc).expect("org")).expect("json");
        assert_eq!(body["organization"], expected, "{uscc} in {version}");
        assert_eq!(
            body["organization"]["as_of"],
            serde_json::json!(index.business_date)
        );
        // A page (a request of its own) names the version it was rendered
        // from, and carries that version's date only.
        let page_version = page
            .split("数据版本 ")
            .nth(1)
            .and_then(|r| r.split('<').next())
            .expect("the page names its version");
        let (own, other) = if page_version == run1.run_id {
            (&v1, &v2)
        } else {
            (&v2, &v1)
        };
        assert_eq!(own.version.as_deref(), Some(page_version));
        let as_of = |i: &Index| {
            format!(
                "数据截至 {}",
                qinglian::serve::pages::date_zh(i.business_date.expect("date"))
            )
        };
        assert!(
            page.contains(&as_of(own)) && !page.contains(&as_of(other)),
            "{page}"
        );
        versions.insert(version.to_string());
    }
    assert_eq!(
        versions.len(),
        2,
        "the client saw both versions: {versions:?}"
    );

    // A corrupt newer manifest, and one whose file checksum lies: neither
    // is taken, the one served goes on, and a fresh start serves it too.
    let day3 = day2.succ_opt().expect("date");
    let m3 = warehouse.join(format!("published/manifests/dt={day3}"));
    std::fs::create_dir_all(&m3).expect("mkdir");
    std::fs::write(m3.join("nightly-20261103-01.json"), b"{ not a manifest").expect("write");
    let m2_path = warehouse.join(v2.manifest.as_deref().expect("manifest"));
    let mut m2: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&m2_path).expect("manifest")).expect("json");
    m2["datasets"]["public"]["files"][0]["sha256"] = serde_json::json!("0".repeat(64));
    m2["run_id"] = serde_json::json!("nightly-20261103-02");
    m2["attempt"] = serde_json::json!(2);
    m2["business_date"] = serde_json::json!(day3);
    std::fs::write(
        m3.join("nightly-20261103-02.json"),
        serde_json::to_vec(&m2).expect("json"),
    )
    .expect("write");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        server.catalog().current().version.as_deref(),
        Some(run2.run_id.as_str())
    );
    let (_, _, metrics) = get(&format!("{url}/metrics")).await;
    assert!(
        metrics.contains("qinglian_serve_versions_rejected_total 2"),
        "{metrics}"
    );
    let (status, _, _) = get(&format!("{url}/o/{}", watched[0])).await;
    assert_eq!(status, 200);
    server.stop().await;
    let restarted = start(&warehouse).await;
    assert_eq!(
        restarted.catalog().current().version.as_deref(),
        Some(run2.run_id.as_str()),
        "a fresh start serves the last good version"
    );
    restarted.stop().await;
}

/// Resident memory of this process, bytes (`/proc/self/status`).
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// The figures of BENCHMARKS.md ("The public lookup"), never asserted:
/// `QINGLIAN_BENCH_ORGS=72000 cargo test --test it serve::benchmark -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run it by name"]
async fn benchmark() {
    let orgs: u64 = std::env::var("QINGLIAN_BENCH_ORGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(72_000);
    let requests: usize = std::env::var("QINGLIAN_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4_000);
    // QINGLIAN_BENCH_DIR keeps the feeds and the warehouse (tier L takes
    // a while to generate and run): what is already there is reused.
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = std::env::var_os("QINGLIAN_BENCH_DIR")
        .map_or_else(|| tmp.path().to_path_buf(), PathBuf::from);
    let feeds = dir.join("feeds");
    let warehouse = dir.join("warehouse");
    let open = || qinglian::store::open(warehouse.to_str().expect("utf-8")).expect("open");
    let t = Instant::now();
    if !feeds.join("ground_truth.csv").exists() {
        crate::ingest::generate(&feeds, orgs);
        eprintln!(
            "generated {orgs} organizations: {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    let t = Instant::now();
    let published = if warehouse.exists() {
        let (store, prefix) = open();
        Published::latest(&store, &prefix, date())
            .await
            .ok()
            .flatten()
    } else {
        None
    };
    if published.is_none() {
        // QINGLIAN_BENCH_MEMORY_MB raises `[scoring] memory_limit_mb` (at
        // tier L, building `public_events` needs more than the shipped
        // 1024 MiB).
        let mut project = Project::load(&root()).expect("project");
        if let Some(mb) = std::env::var("QINGLIAN_BENCH_MEMORY_MB")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            for p in project.pipelines.values_mut() {
                p.scoring.memory_limit_mb = mb;
            }
        }
        let run = crate::ingest::run_project(
            &project,
            &feeds,
            &warehouse,
            date(),
            crate::ingest::Extras::default(),
        )
        .await;
        assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
        eprintln!(
            "pipeline for {orgs} organizations: {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }

    let (store, prefix) = open();
    let p = Published::latest(&store, &prefix, date())
        .await
        .expect("readable")
        .expect("published");
    let public_bytes: u64 = ["public", "public_events"]
        .iter()
        .flat_map(|d| p.manifest.datasets[*d].files.iter().map(|f| f.bytes))
        .sum();
    let events = p.manifest.datasets["public_events"].rows;
    let mut builds = Vec::new();
    let before = resident_bytes();
    let mut kept = None;
    for _ in 0..3 {
        let t = Instant::now();
        let index = Index::load(&p).await.expect("index");
        builds.push(t.elapsed());
        kept = Some(index);
    }
    let memory = resident_bytes().saturating_sub(before);
    let index = kept.expect("index");
    builds.sort();
    eprintln!(
        "index: {} organizations, {events} events, {:.1} MiB of Parquet; build (verify + parse + index) median {:?}; resident memory +{:.0} MiB",
        index.len(),
        public_bytes as f64 / 1048576.0,
        builds[1],
        memory as f64 / 1048576.0
    );
    let names = index.name_index_stats();
    eprintln!(
        "name index: {} grams, {} posting entries, {:.1} MiB (names and postings); built in {:?} (of the build above)",
        names.grams,
        names.postings,
        names.bytes as f64 / 1048576.0,
        names.build
    );

    // The name index alone, in process: no HTTP, no page.
    for (what, take) in [("3 characters", 3), ("1 character", 1)] {
        let parts: Vec<String> = index
            .orgs()
            .iter()
            .step_by(97)
            .take(200)
            .map(|o| o.name.chars().skip(3).take(take).collect())
            .collect();
        let t = Instant::now();
        let mut found = 0;
        for _ in 0..5 {
            for part in &parts {
                found += index.search(part, 0, 20).total;
            }
        }
        eprintln!(
            "Index::search of {what} of a name, in process: {:.1} µs per query ({} results a query on average)",
            t.elapsed().as_secs_f64() * 1e6 / (5 * parts.len()) as f64,
            found / (5 * parts.len())
        );
    }

    // The baseline: the same page pre-rendered, served as a file by the
    // same server.
    let files = dir.join("files");
    std::fs::create_dir_all(&files).expect("mkdir");
    let sample: Vec<&qinglian::serve::Org> = index.orgs().iter().step_by(97).take(200).collect();
    let config = ServeConfig {
        files: Some(files.clone()),
        ..config(&warehouse)
    };
    let server = Server::start(config, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("server");
    let url = server.url();
    for o in &sample {
        let (_, _, page) = get(&format!("{url}/o/{}", o.uscc)).await;
        std::fs::write(files.join(format!("{}.html", o.uscc)), page).expect("write");
    }
    let routes: Vec<(&str, Vec<String>)> = vec![
        (
            "static file (baseline)",
            sample
                .iter()
                .map(|o| format!("{url}/files/{}.html", o.uscc))
                .collect(),
        ),
        (
            "/o/<USCC>",
            sample
                .iter()
                .map(|o| format!("{url}/o/{}", o.uscc))
                .collect(),
        ),
        (
            "/api/v1/orgs/<USCC>",
            sample
                .iter()
                .map(|o| format!("{url}/api/v1/orgs/{}", o.uscc))
                .collect(),
        ),
        (
            "/search?q=<3 characters of a name>",
            sample
                .iter()
                .map(|o| {
                    let part: String = o.name.chars().skip(3).take(3).collect();
                    format!("{url}/search?q={}", qinglian::serve::pages::encode(&part))
                })
                .collect(),
        ),
        (
            "/search?q=<1 character of a name>",
            sample
                .iter()
                .map(|o| {
                    let part: String = o.name.chars().skip(3).take(1).collect();
                    format!("{url}/search?q={}", qinglian::serve::pages::encode(&part))
                })
                .collect(),
        ),
        (
            "/search?q=协会 (more than 200 match)",
            vec![format!(
                "{url}/search?q={}",
                qinglian::serve::pages::encode("协会")
            )],
        ),
    ];
    println!("| route | concurrency | requests | req/s | p50 | p99 | errors |");
    println!("|---|---|---|---|---|---|---|");
    for (name, urls) in &routes {
        for c in [1, 16, 64] {
            let n = if c == 1 { requests / 4 } else { requests };
            let l = load(urls, n, c).await;
            println!(
                "| {name} | {c} | {n} | {:.0} | {:.2} ms | {:.2} ms | {} |",
                l.rps(),
                l.quantile(0.5).as_secs_f64() * 1000.0,
                l.quantile(0.99).as_secs_f64() * 1000.0,
                l.errors.len()
            );
        }
    }
    server.stop().await;
}

#[test]
fn qinglian_serve_serves_the_warehouse_it_is_given() {
    use std::io::{BufRead, BufReader};
    let f = fixture();
    let mut child = Command::new(env!("CARGO_BIN_EXE_qinglian"))
        .args(["serve", "--addr", "127.0.0.1:0", "--project"])
        .arg(root())
        .arg("--warehouse")
        .arg(&f.warehouse)
        .args(["--base-url", BASE])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("qinglian serve");
    let stderr = child.stderr.take().expect("stderr");
    let mut line = String::new();
    BufReader::new(stderr).read_line(&mut line).expect("read");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .map(str::to_string);
    let health = url.as_ref().map(|u| {
        tokio::runtime::Runtime::new()
            .expect("runtime")
            .block_on(get(&format!("{u}/healthz")))
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        line.contains(&format!("QR codes point to {BASE}/o/<USCC>")),
        "{line}"
    );
    let (status, _, body) = health.expect("an address in the first line");
    assert_eq!(status, 200);
    assert!(body.starts_with("ok nightly-20261128-01 "), "{body}");

    // A bad base URL is a configuration error (exit 2), named.
    let out = Command::new(env!("CARGO_BIN_EXE_qinglian"))
        .args(["serve", "--addr", "127.0.0.1:0", "--project"])
        .arg(root())
        .arg("--warehouse")
        .arg(&f.warehouse)
        .args(["--base-url", "ftp://x"])
        .output()
        .expect("qinglian serve");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("base URL \"ftp://x\""));
}
