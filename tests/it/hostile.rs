//! Hostile feeds: a 100-megabyte record, JSON nested 100,000 deep, record
//! ids and names that look like paths. Each is refused or quarantined with a
//! clear reason, memory stays bounded, and nothing is written outside the
//! warehouse.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::ingest::{KEY, generate};
use crate::support::root;

const HUNDRED_MB: usize = 100 << 20;

/// Runs nightly over `feeds` into `warehouse`; returns (stdout, peak RSS KiB).
fn run(feeds: &Path, warehouse: &Path) -> (String, u64) {
    let out = Command::new("/usr/bin/time")
        .args(["-f", "peak-rss-kib %M"])
        .arg(env!("CARGO_BIN_EXE_qinglian"))
        .args(["run", "nightly", "--date", "2026-11-28", "--project"])
        .arg(root())
        .arg("--warehouse")
        .arg(warehouse)
        // A relative path the run writes would land beside the warehouse,
        // where the test looks.
        .current_dir(warehouse.parent().expect("the warehouse has a parent"))
        .env("QINGLIAN_FEEDS", feeds)
        .env("QINGLIAN_PERSON_KEY", KEY)
        .env_remove("QINGLIAN_PLATFORM_URL")
        .env_remove("QINGLIAN_PLATFORM_BUCKET")
        .output()
        .expect("/usr/bin/time (Debian's time package; ./scripts/test installs it)");
    let err = String::from_utf8_lossy(&out.stderr);
    let rss = err
        .lines()
        .find_map(|l| l.strip_prefix("peak-rss-kib "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS in: {err}"));
    (String::from_utf8_lossy(&out.stdout).into_owned(), rss)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_records_are_refused_or_quarantined_within_bounded_memory() {
    let root_dir = tempfile::tempdir().expect("tmp");
    let feeds = root_dir.path().join("feeds");
    generate(&feeds, 40);
    let (_, baseline_rss) = run(&feeds, &root_dir.path().join("baseline"));

    // Court (NDJSON): a 100 MB record, a record nested 100,000 deep, and a
    // record whose id and name look like paths.
    let court = std::fs::read_to_string(feeds.join("court/court.ndjson")).expect("court");
    let mut sample: serde_json::Value =
        serde_json::from_str(court.lines().next().expect("a court record")).expect("json");
    sample["caseCode"] = HOSTILE_PATHS[0].into();
    sample["iname"] = HOSTILE_PATHS[1].into();
    let mut f = std::fs::File::create(feeds.join("court/hostile.ndjson")).expect("file");
    writeln!(f, "{sample}").expect("write");
    write!(f, "{{\"caseCode\":\"huge\",\"iname\":\"").expect("write");
    let chunk = "a".repeat(1 << 20);
    for _ in 0..100 {
        f.write_all(chunk.as_bytes()).expect("write");
    }
    writeln!(f, "\"}}").expect("write");
    writeln!(f, "{}{}", "[".repeat(100_000), "]".repeat(100_000)).expect("write");
    drop(f);
    // Credit (CSV): a line of 100 MB.
    let header = std::fs::read_to_string(feeds.join("credit/credit.csv"))
        .expect("credit")
        .lines()
        .next()
        .expect("header")
        .to_string();
    let mut f = std::fs::File::create(feeds.join("credit/hostile.csv")).expect("file");
    writeln!(f, "{header}").expect("write");
    for _ in 0..100 {
        f.write_all(chunk.as_bytes()).expect("write");
    }
    writeln!(f).expect("write");
    drop(f);
    assert!(
        std::fs::metadata(feeds.join("court/hostile.ndjson"))
            .expect("size")
            .len() as usize
            > HUNDRED_MB
    );

    let before = crate::support::walk(root_dir.path());
    let warehouse = root_dir.path().join("warehouse");
    // Where the path-like values would land if a run joined them to a
    // directory of the warehouse and that join escaped it: at the
    // warehouse itself and one level down a `../../` reaches the
    // warehouse's parent and its sibling (deeper joins stay inside).
    let escapes: Vec<PathBuf> = HOSTILE_PATHS
        .iter()
        .flat_map(|h| {
            let warehouse = warehouse.clone();
            (0..=2).map(move |depth| {
                let mut at = warehouse.clone();
                for _ in 0..depth {
                    at.push("x");
                }
                lexical(&at.join(h))
            })
        })
        .filter(|p| !p.starts_with(&warehouse))
        .collect();
    assert!(
        escapes.contains(&root_dir.path().join("etc/passwd"))
            && escapes.contains(&lexical(&root_dir.path().join("../etc/passwd"))),
        "{escapes:?}"
    );
    let escapes_before: Vec<_> = escapes.iter().map(|p| stat(p)).collect();
    let (text, rss) = run(&feeds, &warehouse);
    assert!(
        text.contains("Degraded"),
        "an optional feed refused leaves the run degraded: {text}"
    );
    let credit = text
        .lines()
        .find(|l| l.trim_start().starts_with("credit"))
        .expect("credit line");
    assert!(
        credit.contains("held") && credit.contains("a line longer than 16777216 bytes"),
        "{credit}"
    );
    let court_line = text
        .lines()
        .find(|l| l.trim_start().starts_with("court"))
        .expect("court line");
    assert!(court_line.contains("landed"), "{court_line}");
    // The quarantine names both hostile court records, the huge one cut.
    let run_dir = std::fs::read_dir(warehouse.join("quarantine/court/dt=2026-11-28"))
        .expect("quarantine")
        .next()
        .expect("run")
        .expect("entry")
        .path();
    let rows = crate::support::read_parquet(&run_dir.join("quarantine.parquet")).await;
    let messages = crate::support::strings(&rows, "message");
    let originals = crate::support::strings(&rows, "original");
    assert!(
        messages
            .iter()
            .flatten()
            .any(|m| m.contains("longer than the 16777216 allowed")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .flatten()
            .any(|m| m.contains("recursion limit")),
        "{messages:?}"
    );
    // The 100 MB record is kept as its first kilobyte.
    let huge = messages
        .iter()
        .position(|m| m.as_deref().is_some_and(|m| m.contains("longer than")))
        .expect("huge record");
    assert!(
        originals[huge]
            .as_deref()
            .is_some_and(|o| o.len() <= 1024 + 3),
        "{}",
        originals[huge].as_deref().map_or(0, str::len)
    );
    // Within bounded memory: the 100 MB records were never held whole. A
    // feed's reader holds at most one record of the 16 MiB allowed (and
    // its read buffer); feeds land one per core at a time, so with two
    // cores both hostile feeds (court and credit) may hold one at once.
    println!("peak RSS {rss} KiB with the hostile records, {baseline_rss} KiB without");
    let parallel = std::thread::available_parallelism().map_or(1, std::num::NonZero::get) as u64;
    assert!(
        rss < baseline_rss + 64 * 1024 * parallel.min(2),
        "peak RSS {rss} KiB against {baseline_rss} KiB without the hostile records"
    );
    // Nothing written outside the warehouse: every file new under the test's
    // directory is, by canonical path (symbolic links resolved), under the
    // canonical warehouse root, and nothing appeared or changed where a
    // path-like value joined to the warehouse would land outside it (its
    // sibling `etc/passwd`, its parent's).
    let canonical_warehouse = std::fs::canonicalize(&warehouse).expect("warehouse");
    let outside: Vec<String> = files(root_dir.path())
        .into_iter()
        .filter(|p| {
            let rel = p
                .strip_prefix(root_dir.path())
                .expect("under the root")
                .to_string_lossy()
                .into_owned();
            !before.contains(&rel)
        })
        .filter(|p| {
            !std::fs::canonicalize(p)
                .unwrap_or_else(|_| p.clone())
                .starts_with(&canonical_warehouse)
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        outside.is_empty(),
        "written outside the warehouse {}: {outside:?}",
        canonical_warehouse.display()
    );
    for (p, was) in escapes.iter().zip(&escapes_before) {
        assert_eq!(
            &stat(p),
            was,
            "{} changed during the run (outside the warehouse)",
            p.display()
        );
    }
    // The path-like record landed, its values kept as delivered.
    let landed_court: Vec<PathBuf> = files(&warehouse.join("landing/court"))
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "data.parquet"))
        .collect();
    assert_eq!(landed_court.len(), 1, "{landed_court:?}");
    let rows = crate::support::read_parquet(&landed_court[0]).await;
    let codes = crate::support::strings(&rows, "case_code");
    let names = crate::support::strings(&rows, "subject_name");
    let ids = crate::support::strings(&rows, "source_record_id");
    let found: Vec<usize> = (0..codes.len())
        .filter(|&i| codes[i].as_deref() == Some(HOSTILE_PATHS[0]))
        .collect();
    assert_eq!(found.len(), 1, "the path-like court record landed once");
    let i = found[0];
    assert_eq!(names[i].as_deref(), Some(HOSTILE_PATHS[1]));
    assert!(
        ids[i]
            .as_deref()
            .is_some_and(|id| id.contains(HOSTILE_PATHS[0])),
        "{:?}",
        ids[i]
    );
}

/// The path-like values of the hostile court record (case code, name).
const HOSTILE_PATHS: [&str; 2] = ["../../etc/passwd", "..\\..\\windows/system32"];

/// A path with `.` and `..` resolved by its text (it need not exist).
fn lexical(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// What is at a landing spot: which of its ancestors exist, and every entry
/// of its directory whose name begins with its name (a record id such as
/// `../../etc/passwd|…` lands as `etc/passwd|…`), with size and
/// modification time.
#[allow(clippy::type_complexity)]
fn stat(p: &Path) -> (Vec<bool>, Vec<(String, u64, std::time::SystemTime)>) {
    let ancestors = p.ancestors().map(Path::exists).collect();
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut entries: Vec<_> = p
        .parent()
        .and_then(|d| std::fs::read_dir(d).ok())
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(&name))
        .filter_map(|e| {
            let m = std::fs::symlink_metadata(e.path()).ok()?;
            Some((
                e.file_name().to_string_lossy().into_owned(),
                m.len(),
                m.modified().ok()?,
            ))
        })
        .collect();
    entries.sort();
    (ancestors, entries)
}

/// Every file (and symbolic link) under `dir`, links not followed.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("dir") {
            let e = e.expect("entry");
            if e.file_type().expect("type").is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}
