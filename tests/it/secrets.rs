//! Secrets and personal data: with every secret set to a marker, a full
//! run (feeds over HTTP with a bearer token, pushes signed with the shared
//! secret, a Parquet drop to S3) leaves no secret and no identity number in
//! clear in its logs, report, ledger, published files or delivered bodies;
//! the public dataset carries nothing DOMAIN.md §5 keeps private. A run
//! that quarantines hostile persons and police rows leaves no clear
//! identity number and no name of theirs in any file it writes outside the
//! raw landing area, the drop or the delivered bodies; an expanded `${VAR}`
//! is shown as its reference everywhere.

use std::collections::BTreeMap;
use std::path::Path;

use qinglian::platform::PlatformSimulator;

use crate::ingest::generate;

const PERSON_KEY: &str = "MARKER-person-key-4b1d";
const PLATFORM_SECRET: &str = "MARKER-platform-secret-77e0";
const FEED_TOKEN: &str = "MARKER-feed-token-c3a9";
const AWS_SECRET: &str = "MARKER-aws-secret-19f4";

/// Every text a file holds: Parquet decoded column by column (its pages
/// are compressed), anything else as bytes.
async fn texts(path: &Path) -> String {
    if path.extension().is_some_and(|e| e == "parquet") {
        let batches = crate::support::read_parquet(path).await;
        let mut out = String::new();
        for b in &batches {
            for c in b.columns() {
                let text = datafusion::arrow::compute::cast(
                    c,
                    &datafusion::arrow::datatypes::DataType::Utf8,
                )
                .expect("cast");
                let text = datafusion::arrow::array::AsArray::as_string::<i32>(&text);
                for v in text.iter().flatten() {
                    out.push_str(v);
                    out.push('\n');
                }
            }
        }
        out
    } else {
        String::from_utf8_lossy(&std::fs::read(path).expect("read")).into_owned()
    }
}

/// The identity numbers in clear of the generated persons feed.
fn identity_numbers(feeds: &Path) -> Vec<String> {
    let path = crate::support::walk(feeds)
        .into_iter()
        .find(|p| p.contains("persons"))
        .map(|p| feeds.join(p))
        .expect("persons feed");
    let text = String::from_utf8_lossy(&std::fs::read(path).expect("persons")).into_owned();
    let mut ids: Vec<String> = text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| t.len() == 18 && t[..17].chars().all(|c| c.is_ascii_digit()))
        .map(str::to_string)
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_and_no_identity_number_leaks_anywhere_it_should_not() {
    let feeds = tempfile::tempdir().expect("tmp");
    generate(feeds.path(), 60);
    let ids = identity_numbers(feeds.path());
    assert!(
        ids.len() > 50,
        "the persons feed carries identity numbers: {}",
        ids.len()
    );
    let sim = qinglian::simulator::FeedSimulator::start(feeds.path(), 0, Some(FEED_TOKEN.into()))
        .await
        .expect("feeds");
    let project = tempfile::tempdir().expect("tmp");
    crate::http_feeds::http_project(project.path(), &sim.url(), Some(FEED_TOKEN));
    let platform = PlatformSimulator::start(0, PLATFORM_SECRET.as_bytes(), 300)
        .await
        .expect("platform");
    let moto = crate::conformance::Moto::start("platform").await;
    let warehouse = tempfile::tempdir().expect("tmp");

    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_qinglian"));
    cmd.args(["run", "nightly", "--date", "2026-11-28"])
        .arg("--project")
        .arg(project.path())
        .arg("--warehouse")
        .arg(warehouse.path())
        .env("QINGLIAN_LOG", "debug")
        .env("QINGLIAN_PERSON_KEY", PERSON_KEY)
        .env("FEED_TOKEN", FEED_TOKEN)
        .env("QINGLIAN_PLATFORM_URL", platform.url())
        .env("QINGLIAN_PLATFORM_SECRET", PLATFORM_SECRET)
        .env("QINGLIAN_PLATFORM_BUCKET", "s3://platform/qinglian");
    for (k, v) in moto.vars() {
        cmd.env(k, v);
    }
    cmd.env("AWS_SECRET_ACCESS_KEY", AWS_SECRET);
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run"))
        .await
        .expect("join");
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{logs}");
    assert!(
        logs.contains("\"level\":\"DEBUG\""),
        "debug logs were written"
    );
    assert!(platform.stats().accepted_rows > 40, "bodies were delivered");
    // The drop's URL comes from a variable: shown as its reference.
    assert!(
        logs.contains("dropped to ${QINGLIAN_PLATFORM_BUCKET}"),
        "{logs}"
    );

    // What is scanned: the logs, every request the platform received,
    // the Parquet drop, and every file of the warehouse except the raw
    // payloads (the departments' own data, identity numbers included,
    // kept as received): landed snapshots, the landing quarantine and the
    // published quarantine included.
    let mut scanned = vec![("logs".to_string(), logs)];
    for r in platform.requests() {
        scanned.push((
            format!("request {}", r.path),
            String::from_utf8_lossy(&r.body).into_owned(),
        ));
    }
    scanned.extend(warehouse_texts(warehouse.path()).await);
    scanned.extend(bucket_texts("s3://platform/qinglian", &moto.vars()).await);
    for prefix in [
        "published/hits",
        "published/quarantine",
        "reports/",
        "ledger/",
        "outbox/",
        "landing/persons/",
        "quarantine/persons/",
        "drop qinglian/published/codes",
    ] {
        assert!(
            scanned.iter().any(|(n, _)| n.starts_with(prefix)),
            "{prefix} is scanned"
        );
    }
    for (name, text) in &scanned {
        for secret in [PERSON_KEY, PLATFORM_SECRET, FEED_TOKEN, AWS_SECRET] {
            assert!(
                !text.contains(secret),
                "{name} contains the secret {secret}"
            );
        }
        for id in &ids {
            assert!(
                !text.contains(id.as_str()),
                "{name} contains the identity number {id}"
            );
        }
    }

    // The public dataset: nothing private (DOMAIN.md §5).
    let project = qinglian::project::Project::load(&crate::support::root()).expect("project");
    for c in &project.contracts["codes"].columns {
        for private in [
            "person",
            "id_number",
            "police",
            "points",
            "hit",
            "score",
            "red_line",
        ] {
            assert!(!c.name.contains(private), "codes carries {}", c.name);
        }
    }
}

/// A resident identity number (GB 11643) from 17 digits: the check
/// character appended.
fn identity_number(first17: &str) -> String {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = first17
        .bytes()
        .zip(W)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    let check = b"10X98765432"[(sum % 11) as usize];
    format!("{first17}{}", char::from(check))
}

/// `n` distinct identity numbers, the first one ending in `X`.
fn hostile_numbers(n: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut x = None;
    for i in 0..1000u32 {
        let id = identity_number(&format!(
            "3301061990{:02}{:02}{:03}",
            1 + i % 12,
            1 + i % 28,
            i
        ));
        if x.is_none() && id.ends_with('X') {
            x = Some(id);
        } else if out.len() < n - 1 {
            out.push(id);
        }
    }
    out.insert(0, x.expect("a number ending in X"));
    out
}

const HOSTILE_NAMES: [&str; 11] = [
    "王晓明远",
    "李晓红远",
    "赵晓刚远",
    "钱晓丽远",
    "孙晓燕远",
    "陈晓东远",
    "周晓军远",
    "吴晓梅远",
    "郑晓兵远",
    "冯晓宁远",
    "褚晓云远",
];

/// Appends hostile rows to the generated persons (CSV) and police (NDJSON)
/// feeds, each with a clear identity number and a name, each quarantined:
/// a date that does not exist, a role outside the enum, an identity number
/// column that is not text, a row with too few fields, the number in the
/// key column, a bad birth year; a police case type outside the enum, a
/// bad date, a line that is not JSON, the number as a JSON number, a line
/// that is not an object. Returns the numbers used.
fn inject_hostile_rows(feeds: &Path) -> Vec<String> {
    let ids = hostile_numbers(11);
    let [a, b, c, d, e, f, g, h, i, j, k] = HOSTILE_NAMES;
    let persons = feeds.join("persons/persons.csv");
    let text = std::fs::read_to_string(&persons).expect("persons");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(
            "记录编号,统一社会信用代码,社会组织名称,姓名,身份证号,职务,任职开始日期,任职结束日期,是否公职人员,是否退休干部,兼职审批文号,审批日期,是否领取报酬,出生年份,任职届数"
        )
    );
    let first: Vec<&str> = lines.next().expect("a person").split(',').collect();
    let (uscc, org) = (first[1].to_string(), first[2].to_string());
    for name in HOSTILE_NAMES {
        assert!(!text.contains(name), "{name} is generated");
    }
    let mut bytes = text.into_bytes();
    if !bytes.ends_with(b"\n") {
        bytes.push(b'\n');
    }
    let rows = [
        format!(
            "RYH1,{uscc},{org},{a},{},负责人,2020-02-30,,否,否,,,是,1990,1\n",
            ids[1]
        ),
        format!(
            "RYH2,{uscc},{org},{b},{},董事长,2020-02-01,,否,否,,,是,1990,1\n",
            ids[2]
        ),
        format!("RYH4,{uscc},{org},{d},{},负责人,2020-02-01\n", ids[4]),
        format!(
            "RYH5,{},,{e},{},负责人,2020-02-01,,否,否,,,是,1990,1\n",
            ids[0],
            ids[0].to_lowercase()
        ),
        format!(
            "RYH6,{uscc},{org},{f}, {} ,负责人,2020-02-01,,否,否,,,是,一九九〇,1\n",
            ids[5]
        ),
    ];
    for r in &rows {
        bytes.extend_from_slice(r.as_bytes());
    }
    // The identity number column itself is not text.
    bytes.extend_from_slice(format!("RYH3,{uscc},{org},{c},{}", ids[3]).as_bytes());
    bytes.extend_from_slice(b"\xff\xfe,\xe8\xb4\x9f\xe8\xb4\xa3\xe4\xba\xba,2020-02-01,,,,,,,,\n");
    std::fs::write(&persons, bytes).expect("write persons");

    let police = feeds.join("police/police.ndjson");
    let mut text = std::fs::read_to_string(&police).expect("police");
    if !text.ends_with('\n') {
        text.push('\n');
    }
    let case = |no: &str, case_type: &str, filed: &str, status: &str, id: &str, name: &str| {
        format!(
            r#"{{"caseNo":"{no}","caseType":"{case_type}","closedDate":null,"filedDate":"{filed}","outcome":null,"status":"{status}","subjectCode":"{uscc}","subjectName":"{org}","subjectPersonId":{id},"subjectPersonName":"{name}"}}"#
        ) + "\n"
    };
    text.push_str(&case(
        "PH1",
        "走私",
        "2022-05-27",
        "立案侦查",
        &format!("\"{}\"", ids[6]),
        g,
    ));
    text.push_str(&case(
        "PH2",
        "诈骗",
        "2020-02-30",
        "立案侦查",
        &format!("\"{}\"", ids[7]),
        h,
    ));
    let numeric = ids[8..]
        .iter()
        .find(|n| !n.ends_with('X'))
        .expect("a number of digits");
    text.push_str(&case("PH4", "诈骗", "2022-05-27", "未知", numeric, j));
    text.push_str(&format!(
        "{{\"caseNo\":\"PH3\",\"subjectPersonId\":\"{}\",\"subjectPersonName\":\"{i}\",\n",
        ids[9]
    ));
    text.push_str(&format!("[\"{}\",\"{k}\"]\n", ids[10]));
    std::fs::write(&police, text).expect("write police");
    ids
}

/// Every object of a bucket's prefix, as text (Parquet decoded).
async fn bucket_texts(url: &str, vars: &BTreeMap<String, String>) -> Vec<(String, String)> {
    use futures::TryStreamExt;
    use object_store::{ObjectStore, ObjectStoreExt};
    let (store, prefix) = qinglian::store::open_with(url, false, vars).expect("bucket");
    let objects: Vec<_> = store.list(Some(&prefix)).try_collect().await.expect("list");
    let tmp = tempfile::tempdir().expect("tmp");
    let mut out = Vec::new();
    for (n, meta) in objects.iter().enumerate() {
        let bytes = store
            .get(&meta.location)
            .await
            .expect("get")
            .bytes()
            .await
            .expect("bytes");
        let name = meta.location.to_string();
        let ext = if name.ends_with(".parquet") {
            "parquet"
        } else {
            "txt"
        };
        let local = tmp.path().join(format!("{n}.{ext}"));
        std::fs::write(&local, &bytes).expect("write");
        out.push((format!("drop {name}"), texts(&local).await));
    }
    out
}

/// Every file of a warehouse except the raw payloads as received
/// (`landing/<feed>/…/raw/`), as text.
async fn warehouse_texts(warehouse: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for rel in crate::support::walk(warehouse) {
        if rel.starts_with("landing/") && rel.contains("/raw/") {
            continue;
        }
        out.push((rel.clone(), texts(&warehouse.join(&rel)).await));
    }
    out
}

/// The CLI's output (stdout and stderr) for `args` with `envs`.
async fn cli(args: Vec<String>, envs: Vec<(String, String)>) -> (bool, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_qinglian"));
    cmd.args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run"))
        .await
        .expect("join");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Identity numbers: every 18-character token of digits (and X) in a
/// feed's file.
fn numbers_in(path: &Path) -> Vec<String> {
    let text = String::from_utf8_lossy(&std::fs::read(path).expect("read")).into_owned();
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| t.len() == 18 && t[..17].chars().all(|c| c.is_ascii_digit()))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quarantined_persons_and_police_rows_leak_no_identity_number_or_name() {
    let feeds = tempfile::tempdir().expect("tmp");
    generate(feeds.path(), 40);
    let hostile = inject_hostile_rows(feeds.path());
    let mut ids = numbers_in(&feeds.path().join("persons/persons.csv"));
    ids.extend(numbers_in(&feeds.path().join("police/police.ndjson")));
    ids.extend(hostile.iter().map(|n| n.to_lowercase()));
    ids.sort();
    ids.dedup();
    assert!(ids.len() > 50, "{}", ids.len());

    let project = tempfile::tempdir().expect("tmp");
    crate::support::copy_project(project.path());
    // Police has few cases: its hostile rows are most of it, and it must
    // land (not be held) for its quarantine to be published.
    let police = project.path().join("pipelines/sources/police.toml");
    let text = std::fs::read_to_string(&police).expect("police");
    std::fs::write(&police, text + "\n[guards]\nmax_quarantined = 1.0\n").expect("write");
    let platform = PlatformSimulator::start(0, PLATFORM_SECRET.as_bytes(), 300)
        .await
        .expect("platform");
    let moto = crate::conformance::Moto::start("platform").await;
    let warehouse = tempfile::tempdir().expect("tmp");
    let mut envs: Vec<(String, String)> = moto.vars().into_iter().collect();
    envs.extend(
        [
            ("QINGLIAN_LOG", "debug".to_string()),
            ("QINGLIAN_FEEDS", feeds.path().display().to_string()),
            ("QINGLIAN_PERSON_KEY", PERSON_KEY.into()),
            ("QINGLIAN_PLATFORM_URL", platform.url()),
            ("QINGLIAN_PLATFORM_SECRET", PLATFORM_SECRET.into()),
            ("QINGLIAN_PLATFORM_BUCKET", "s3://platform/qinglian".into()),
            ("AWS_SECRET_ACCESS_KEY", AWS_SECRET.into()),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    );
    let at = |cmd: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
        a.extend([
            "--project".into(),
            project.path().display().to_string(),
            "--warehouse".into(),
            warehouse.path().display().to_string(),
        ]);
        a
    };
    let (ok, logs) = cli(
        at(&["run", "nightly", "--date", "2026-11-28"]),
        envs.clone(),
    )
    .await;
    assert!(ok, "{logs}");
    assert!(platform.stats().accepted_rows > 20, "bodies were delivered");
    let (ok, status) = cli(at(&["status", "--json"]), envs.clone()).await;
    assert!(ok, "{status}");

    // The rows were quarantined, for the reasons injected, and the
    // published quarantine names feed, position, field and reason.
    let published = crate::support::walk(warehouse.path())
        .into_iter()
        .filter(|p| p.starts_with("published/quarantine/"))
        .collect::<Vec<_>>();
    let mut reasons: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut persons_original = None;
    for rel in &published {
        for b in crate::support::read_parquet(&warehouse.path().join(rel)).await {
            let col = |n: &str| {
                let c = datafusion::arrow::compute::cast(
                    b.column_by_name(n).expect("column"),
                    &datafusion::arrow::datatypes::DataType::Utf8,
                )
                .expect("cast");
                datafusion::arrow::array::AsArray::as_string::<i32>(&c).clone()
            };
            let (feed, reason, original) = (col("feed"), col("reason_code"), col("original"));
            for r in 0..b.num_rows() {
                reasons
                    .entry(feed.value(r).to_string())
                    .or_default()
                    .push(reason.value(r).to_string());
                if original.value(r).contains("RYH1") {
                    persons_original = Some(original.value(r).to_string());
                }
            }
        }
    }
    for (feed, expected) in [
        (
            "persons",
            &["bad_value", "bad_enum", "malformed_record", "invalid_key"][..],
        ),
        ("police", &["bad_enum", "bad_value", "malformed_record"][..]),
    ] {
        for r in expected {
            assert!(
                reasons
                    .get(feed)
                    .is_some_and(|rs| rs.iter().any(|x| x == r)),
                "{feed} quarantined {r}: {reasons:?}"
            );
        }
    }
    // What is scanned: every file of the warehouse but the raw payloads
    // (landing and published quarantine, landed data, ledger, outbox,
    // report, runs), the logs, status, every body received, the drop.
    let mut scanned = vec![("logs".to_string(), logs), ("status".to_string(), status)];
    scanned.extend(warehouse_texts(warehouse.path()).await);
    for b in platform.batches() {
        scanned.push((format!("body {}", b.key), b.body.to_string()));
    }
    for r in platform.requests() {
        scanned.push((
            format!("request {}", r.path),
            String::from_utf8_lossy(&r.body).into_owned(),
        ));
    }
    scanned.extend(bucket_texts("s3://platform/qinglian", &moto.vars()).await);
    for prefix in [
        "quarantine/persons",
        "quarantine/police",
        "published/quarantine",
        "ledger/",
        "outbox/",
        "reports/",
        "drop qinglian/published/quarantine",
    ] {
        assert!(
            scanned.iter().any(|(n, _)| n.starts_with(prefix)),
            "{prefix} is scanned"
        );
    }
    for (name, text) in &scanned {
        for secret in [PERSON_KEY, PLATFORM_SECRET, AWS_SECRET] {
            assert!(
                !text.contains(secret),
                "{name} contains the secret {secret}"
            );
        }
        let upper = text.to_uppercase();
        for id in &ids {
            assert!(
                !upper.contains(&id.to_uppercase()),
                "{name} contains the identity number {id}"
            );
        }
        for n in HOSTILE_NAMES {
            assert!(!text.contains(n), "{name} contains the name {n}");
        }
    }
    // A hashed field keeps the person's keyed hash: the same as the
    // canonical column, so the quarantined row links to the person. The
    // hash is recomputed here with Python's `hmac` under the test's key,
    // not with the code under test.
    let keyed = python_hashes(PERSON_KEY, &ids);
    let unkeyed = python_hashes("", &ids);
    // Every hash a personal feed's landed data, landing quarantine,
    // published quarantine or drop holds is the HMAC-SHA256 under the key
    // of a number the feed delivered (an unkeyed SHA-256, or a hash under
    // another key, is none of them).
    let mut checked = BTreeMap::new();
    for (name, text) in &scanned {
        let personal = ["persons", "police"].iter().any(|f| {
            name.starts_with(&format!("landing/{f}/"))
                || name.starts_with(&format!("quarantine/{f}/"))
                || (name.contains("published/quarantine/")
                    && name.ends_with(&format!("/{f}.parquet")))
        });
        if !personal {
            continue;
        }
        for token in hex_tokens(text) {
            assert!(
                !unkeyed.contains_key(&token),
                "{name} holds an unkeyed SHA-256 of an identity number: {token}"
            );
            assert!(
                keyed.contains_key(&token),
                "{name} holds {token}, which is no keyed hash of a delivered identity number"
            );
            *checked.entry(name.clone()).or_insert(0) += 1;
        }
    }
    for prefix in [
        "landing/persons/",
        "landing/police/",
        "quarantine/persons/",
        "quarantine/police/",
        "published/quarantine/",
        "drop qinglian/published/quarantine/",
    ] {
        let n: usize = checked
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, n)| n)
            .sum();
        assert!(n > 0, "{prefix}: keyed hashes checked: {checked:?}");
    }
    println!("keyed hashes checked: {checked:?}");
    let original: serde_json::Value =
        serde_json::from_str(&persons_original.expect("RYH1 quarantined")).expect("json");
    assert_eq!(
        original["身份证号"].as_str(),
        python_hashes(PERSON_KEY, &hostile[1..2])
            .keys()
            .next()
            .map(String::as_str),
        "the quarantined original keeps the keyed hash"
    );
    assert_eq!(original["姓名"], "***");
    assert_eq!(original["记录编号"], "RYH1");
}

/// The person hash of each number as Python's `hmac` computes it under
/// `key` (trimmed, upper-cased, spaces removed, as the hash reads a
/// number); with an empty key, the plain SHA-256 an unkeyed hash would
/// give. By hash.
fn python_hashes(key: &str, numbers: &[String]) -> BTreeMap<String, String> {
    use std::io::Write;
    let script = "import hashlib, hmac, sys\n\
        key = sys.argv[1].encode()\n\
        for line in sys.stdin.read().split():\n\
        \x20   n = line.strip().upper().replace(' ', '').encode()\n\
        \x20   h = hmac.new(key, n, hashlib.sha256) if key else hashlib.sha256(n)\n\
        \x20   print(h.hexdigest())\n";
    let mut child = std::process::Command::new("python3")
        .args(["-c", script, key])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(numbers.join("\n").as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("python3");
    assert!(out.status.success());
    let hashes: Vec<String> = String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(hashes.len(), numbers.len());
    hashes.into_iter().zip(numbers.iter().cloned()).collect()
}

/// Every run of exactly 64 lowercase hex digits in a text.
fn hex_tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_ascii_hexdigit())
        .filter(|t| t.len() == 64 && !t.chars().any(|c| c.is_ascii_uppercase()))
        .map(str::to_string)
        .collect()
}

/// The person hash is HMAC-SHA256 under the key, over the number trimmed
/// and upper-cased; vectors computed with Python's `hmac` module.
#[test]
fn the_person_hash_is_keyed_hmac_sha256() {
    use qinglian::validate::person_hash;
    // python3 -c "import hmac,hashlib; print(hmac.new(b'MARKER-person-key-4b1d', b'11010519491231002X', hashlib.sha256).hexdigest())"
    assert_eq!(
        person_hash(PERSON_KEY.as_bytes(), "11010519491231002X"),
        "a1f8e7b09a82d3b4bed5858ed1bb260e375042c9b497ac7e10dbf33120cd5928"
    );
    assert_eq!(
        person_hash(PERSON_KEY.as_bytes(), " 11010519491231002x "),
        person_hash(PERSON_KEY.as_bytes(), "11010519491231002X")
    );
    assert_eq!(
        person_hash(b"another-key", "11010519491231002X"),
        "d20251e25a894097d22d015b7bdc4215894c858db865a74e170dd51689d6947c",
        "the hash depends on the key"
    );
    // RFC 4231 test case 2's key over its data as the hash sees it:
    // upper-cased, spaces removed (an identity number is read without the
    // spaces and invisible characters departments leave in it).
    // python3 -c "import hmac,hashlib; print(hmac.new(b'Jefe', b'WHATDOYAWANTFORNOTHING?', hashlib.sha256).hexdigest())"
    assert_eq!(
        person_hash(b"Jefe", "what do ya want for nothing?"),
        "2a976ea3da8318b5c1166aadf4f378a2b59e653a9a782114ebe25be1d5cc95d1"
    );
}

/// Secrets in `${VAR}` expansions: a feed URL in a bucket named by a
/// secret (which fails to open), a warehouse path, a push endpoint with a
/// token in its query and a drop prefix, each from a variable holding a
/// marker. The run's logs, ledger, runs dataset, report, outbox, `status`
/// (text and JSON) and `explain` show each as its `${NAME}`, never the
/// value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expanded_variable_is_shown_as_its_reference_everywhere() {
    const DRC_BUCKET: &str = "marker-drc-bucket-2b7c";
    const WAREHOUSE_DIR: &str = "MARKER-warehouse-31c4";
    const PUSH_TOKEN: &str = "MARKER-push-token-5d0e";
    const DROP_PREFIX: &str = "MARKER-drop-prefix-88aa";
    let feeds = tempfile::tempdir().expect("tmp");
    generate(feeds.path(), 20);
    let project = tempfile::tempdir().expect("tmp");
    crate::support::copy_project(project.path());
    let drc = project.path().join("pipelines/sources/drc.toml");
    let text = std::fs::read_to_string(&drc).expect("drc");
    let text = text.replace("${QINGLIAN_FEEDS:-demo/feeds}/drc/", "${DRC_FEEDS}/drc/");
    assert!(text.contains("${DRC_FEEDS}"));
    std::fs::write(&drc, text).expect("write");
    let platform = PlatformSimulator::start(0, PLATFORM_SECRET.as_bytes(), 300)
        .await
        .expect("platform");
    let moto = crate::conformance::Moto::start("platform").await;
    let root = tempfile::tempdir().expect("tmp");
    let warehouse = root.path().join(WAREHOUSE_DIR);
    let mut envs: Vec<(String, String)> = moto.vars().into_iter().collect();
    envs.extend(
        [
            ("QINGLIAN_LOG", "debug".to_string()),
            ("QINGLIAN_FEEDS", feeds.path().display().to_string()),
            ("DRC_FEEDS", format!("s3://{DRC_BUCKET}/feeds")),
            ("QINGLIAN_WAREHOUSE", warehouse.display().to_string()),
            ("QINGLIAN_PERSON_KEY", PERSON_KEY.into()),
            (
                "QINGLIAN_PLATFORM_URL",
                format!("{}?token={PUSH_TOKEN}", platform.url()),
            ),
            ("QINGLIAN_PLATFORM_SECRET", PLATFORM_SECRET.into()),
            (
                "QINGLIAN_PLATFORM_BUCKET",
                format!("s3://platform/{DROP_PREFIX}"),
            ),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    );
    let at = |cmd: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
        a.extend(["--project".into(), project.path().display().to_string()]);
        a
    };
    let (_, logs) = cli(
        at(&["run", "nightly", "--date", "2026-11-28"]),
        envs.clone(),
    )
    .await;
    assert!(platform.stats().accepted_rows > 0, "pushed: {logs}");
    let (_, status) = cli(at(&["status"]), envs.clone()).await;
    let (ok, status_json) = cli(at(&["status", "--json"]), envs.clone()).await;
    assert!(ok, "{status_json}");
    let registry = String::from_utf8_lossy(
        &std::fs::read(feeds.path().join("registry/registry.csv")).expect("registry"),
    )
    .into_owned();
    let uscc = registry
        .split(|c: char| !c.is_ascii_alphanumeric())
        .find(|t| t.len() == 18 && t.starts_with('5'))
        .expect("a code")
        .to_string();
    let (_, explain) = cli(at(&["explain", &uscc]), envs.clone()).await;

    // The failed feed is reported, with its URL as configured.
    let json: serde_json::Value = serde_json::from_str(
        status_json
            .lines()
            .find(|l| l.starts_with('{'))
            .unwrap_or(&status_json),
    )
    .unwrap_or_else(|_| serde_json::Value::String(status_json.clone()));
    assert!(
        logs.contains("${DRC_FEEDS}/drc/"),
        "the drc error names the template: {logs}"
    );
    let mut scanned = vec![
        ("logs".to_string(), logs),
        ("status".to_string(), status),
        ("status --json".to_string(), json.to_string()),
        ("explain".to_string(), explain),
    ];
    scanned.extend(warehouse_texts(&warehouse).await);
    for prefix in ["ledger/", "published/runs/", "reports/", "outbox/"] {
        assert!(
            scanned.iter().any(|(n, _)| n.starts_with(prefix)),
            "{prefix} is scanned"
        );
    }
    for (name, text) in &scanned {
        for marker in [DRC_BUCKET, WAREHOUSE_DIR, PUSH_TOKEN, DROP_PREFIX] {
            assert!(!text.contains(marker), "{name} shows {marker}:\n{text}");
        }
    }
}

mod redaction_properties {
    use proptest::prelude::*;
    use qinglian::validate::redact::{
        PersonalFields, WITHHELD, redact_original, scrub_identity_numbers,
    };

    /// An identity number with a real birth date, its check character in
    /// either case.
    fn number() -> impl Strategy<Value = String> {
        (
            100_000u32..999_999,
            1900i32..2025,
            1u32..=12,
            1u32..=28,
            0u32..1000,
            any::<bool>(),
        )
            .prop_map(|(region, y, m, d, seq, lower)| {
                let id = super::identity_number(&format!("{region}{y}{m:02}{d:02}{seq:03}"));
                if lower { id.to_lowercase() } else { id }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// An identity number anywhere in a text, between anything that is
        /// not a digit, is replaced.
        #[test]
        fn no_number_survives_the_scrub(id in number(), before in "[^0-9]{0,24}", after in "[^0-9]{0,24}") {
            let text = format!("{before}{id}{after}");
            let out = scrub_identity_numbers(&text, &|_| "<h>".to_string());
            prop_assert!(!out.to_uppercase().contains(&id.to_uppercase()), "{out}");
        }

        /// A personal feed's original, however it is shaped, keeps no
        /// identity number and no value of an unkept field.
        #[test]
        fn a_personal_original_keeps_no_number_or_name(
            id in number(),
            name in "[\\u{4e00}-\\u{9fa5}]{2,4}",
            where_ in 0usize..4,
            malformed in any::<bool>(),
            shape in 0usize..3,
        ) {
            let mut record = serde_json::Map::new();
            record.insert("code".into(), "51330111MJ000000XQ".into());
            record.insert("rid".into(), "R1".into());
            record.insert("pid".into(), id.clone().into());
            record.insert("who".into(), name.clone().into());
            match where_ {
                0 => { record.insert("rid".into(), format!("R-{id}").into()); }
                1 => { record.insert("code".into(), id.clone().into()); }
                2 => { record.insert("note".into(), format!("{name} {id}").into()); }
                _ => {}
            }
            let original = match shape {
                0 => serde_json::Value::Object(record).to_string(),
                1 => format!("{{\"pid\":\"{id}\",\"who\":\"{name}\",broken"),
                _ => format!("[\"{id}\",\"{name}\"]"),
            };
            let fields = PersonalFields { kept: &["code", "rid"], hashed: &["pid"], mapped: &["code", "rid", "pid"] };
            let h = |_: &str| "hash".to_string();
            let out = redact_original(&original, malformed, &fields, &[id.trim()], Some(&h));
            let out = scrub_identity_numbers(&out, &h);
            prop_assert!(!out.to_uppercase().contains(&id.to_uppercase()), "{out}");
            prop_assert!(!out.contains(&name), "{out}");
            prop_assert!(shape == 0 || out == format!("\"{WITHHELD}\""), "{out}");
        }
    }
}
