//! Shared helpers: the project root, the built binary, the shipped config.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The checkout under test: the one `cargo test` runs in (Cargo sets
/// `CARGO_MANIFEST_DIR` when it runs a test), not the one this binary was
/// compiled in; a build directory shared by two clones (`./scripts/test`
/// and CI share `~/.cache/qinglian/target`) may hold a test binary built in
/// the other, and its fixtures and configuration would be read from there.
pub(crate) fn root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), PathBuf::from)
}

pub(crate) fn fixtures() -> PathBuf {
    root().join("tests/fixtures")
}

/// Runs the `qinglian` binary with arguments and optional standard input.
pub(crate) fn qinglian(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_qinglian"))
        .args(args)
        .env_remove("QINGLIAN_LOG")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start qinglian");
    // Feed standard input from another thread: the child streams its
    // output, so writing everything first would fill both pipes and hang.
    let writer = stdin.map(|input| {
        let input = input.to_vec();
        let mut pipe = child.stdin.take().expect("stdin");
        std::thread::spawn(move || {
            use std::io::Write;
            // The child may stop reading early (an unreadable line); that is its answer.
            let _ = pipe.write_all(&input);
        })
    });
    let output = child.wait_with_output().expect("wait for qinglian");
    if let Some(w) = writer {
        w.join().expect("stdin writer");
    }
    output
}

/// Copies the shipped configuration (schemas/, pipelines/, jobs/) into `dir`.
pub(crate) fn copy_project(dir: &Path) {
    for sub in ["schemas", "pipelines", "jobs"] {
        copy_tree(&root().join(sub), &dir.join(sub));
    }
}

pub(crate) fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// A valid USCC built from 16 characters: both check characters computed
/// independently of the library (the reference for property tests).
pub(crate) fn reference_check(first16: &str) -> Option<String> {
    const SET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
    let body = &first16.as_bytes()[8..16];
    let w8 = [3u32, 7, 9, 10, 5, 8, 4, 2];
    let mut s = 0;
    for (c, w) in body.iter().zip(w8) {
        let v = if c.is_ascii_digit() {
            u32::from(c - b'0')
        } else {
            u32::from(c - b'A') + 10
        };
        s += v * w;
    }
    let org = match 11 - s % 11 {
        10 => 'X',
        11 => '0',
        d => char::from(b'0' + d as u8),
    };
    let first17 = format!("{first16}{org}");
    let mut sum = 0;
    let mut weight = 1u32;
    for c in first17.chars() {
        sum += SET.find(c)? as u32 * weight;
        weight = weight * 3 % 31;
    }
    let check = SET.as_bytes()[((31 - sum % 31) % 31) as usize] as char;
    Some(format!("{first17}{check}"))
}

/// Whether an 18-character string passes both checks (reference).
pub(crate) fn reference_valid(code: &str) -> bool {
    code.len() == 18
        && code[2..8].bytes().all(|b| b.is_ascii_digit())
        && reference_check(&code[..16]).as_deref() == Some(code)
}

/// Every batch of a Parquet file.
pub(crate) async fn read_parquet(path: &Path) -> Vec<datafusion::arrow::array::RecordBatch> {
    let ctx = datafusion::prelude::SessionContext::new();
    ctx.read_parquet(
        path.to_str().expect("utf-8"),
        datafusion::prelude::ParquetReadOptions::default(),
    )
    .await
    .expect("read")
    .collect()
    .await
    .expect("collect")
}

/// One column of some batches as text, NULL as `None`.
pub(crate) fn strings(
    batches: &[datafusion::arrow::array::RecordBatch],
    column: &str,
) -> Vec<Option<String>> {
    use datafusion::arrow::array::{Array, AsArray};
    batches
        .iter()
        .flat_map(|b| {
            let c = b.column_by_name(column).expect("column");
            let c =
                datafusion::arrow::compute::cast(c, &datafusion::arrow::datatypes::DataType::Utf8)
                    .expect("cast");
            let s = c.as_string::<i32>();
            (0..s.len())
                .map(|i| (!s.is_null(i)).then(|| s.value(i).to_string()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Validates JSON documents against a JSON Schema of `schemas/out/` with
/// Python's `jsonschema` (an independent validator; ./scripts/test installs it).
pub(crate) fn assert_valid_json(schema: &str, documents: &[serde_json::Value]) {
    let dir = tempfile::tempdir().expect("tmp");
    let docs = dir.path().join("documents.json");
    std::fs::write(&docs, serde_json::to_vec(documents).expect("json")).expect("write");
    let script = "import json, sys\n\
        import jsonschema\n\
        schema = json.load(open(sys.argv[1]))\n\
        v = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())\n\
        for i, d in enumerate(json.load(open(sys.argv[2]))):\n\
        \x20   for e in v.iter_errors(d):\n\
        \x20       print(f'document {i}: {list(e.absolute_path)}: {e.message}')\n";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(root().join("schemas/out").join(schema))
        .arg(&docs)
        .output()
        .expect("python3 (./scripts/test installs jsonschema)");
    assert!(
        out.status.success(),
        "python jsonschema failed (./scripts/test installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let errors = String::from_utf8_lossy(&out.stdout);
    assert!(errors.is_empty(), "not valid against {schema}:\n{errors}");
}

/// A warehouse store that fails on purpose: every operation after a delay,
/// puts under one path refused (a crash at exactly that step), or every
/// operation refused (an unreachable warehouse).
#[derive(Debug)]
pub(crate) struct FaultyStore {
    pub(crate) inner: std::sync::Arc<dyn object_store::ObjectStore>,
    pub(crate) refuse_puts_under: Option<String>,
    /// Panics on a put under this prefix: a defect in the middle of a run.
    pub(crate) panic_on_puts_under: Option<String>,
    pub(crate) unreachable: bool,
    pub(crate) delay: std::time::Duration,
}

impl FaultyStore {
    pub(crate) fn new(inner: std::sync::Arc<dyn object_store::ObjectStore>) -> Self {
        Self {
            inner,
            refuse_puts_under: None,
            panic_on_puts_under: None,
            unreachable: false,
            delay: std::time::Duration::ZERO,
        }
    }

    async fn check(
        &self,
        location: &object_store::path::Path,
        put: bool,
    ) -> object_store::Result<()> {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        if let Some(p) = self.panic_on_puts_under.as_deref() {
            assert!(
                !(put && location.as_ref().contains(p)),
                "simulated defect writing {location}"
            );
        }
        let refused = self.unreachable
            || (put
                && self
                    .refuse_puts_under
                    .as_deref()
                    .is_some_and(|p| location.as_ref().contains(p)));
        if refused {
            return Err(object_store::Error::Generic {
                store: "FaultyStore",
                source: format!("simulated failure at {location}").into(),
            });
        }
        Ok(())
    }
}

impl std::fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FaultyStore({})", self.inner)
    }
}

#[async_trait::async_trait]
impl object_store::ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &object_store::path::Path,
        payload: object_store::PutPayload,
        opts: object_store::PutOptions,
    ) -> object_store::Result<object_store::PutResult> {
        self.check(location, true).await?;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &object_store::path::Path,
        opts: object_store::PutMultipartOptions,
    ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
        self.check(location, true).await?;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &object_store::path::Path,
        options: object_store::GetOptions,
    ) -> object_store::Result<object_store::GetResult> {
        self.check(location, false).await?;
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: futures::stream::BoxStream<
            'static,
            object_store::Result<object_store::path::Path>,
        >,
    ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::path::Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(
        &self,
        prefix: Option<&object_store::path::Path>,
    ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>> {
        if self.unreachable {
            let failure = object_store::Error::Generic {
                store: "FaultyStore",
                source: "simulated failure listing".into(),
            };
            return Box::pin(futures::stream::once(async move { Err(failure) }));
        }
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(
        &self,
        prefix: Option<&object_store::path::Path>,
    ) -> object_store::Result<object_store::ListResult> {
        self.check(&prefix.cloned().unwrap_or_default(), false)
            .await?;
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &object_store::path::Path,
        to: &object_store::path::Path,
        options: object_store::CopyOptions,
    ) -> object_store::Result<()> {
        self.check(to, true).await?;
        self.inner.copy_opts(from, to, options).await
    }
}

/// Every file under `dir`, recursively, as paths relative to it, sorted.
pub(crate) fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(
                    p.strip_prefix(dir)
                        .expect("prefix")
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    out.sort();
    out
}

/// The checksums of the datasets that must not depend on the attempt
/// (all but `runs`), by dataset: file name and SHA-256 of each file.
pub(crate) fn reproducible_sums(
    p: &qinglian::catalog::Published,
) -> std::collections::BTreeMap<String, Vec<String>> {
    [
        "profiles",
        "hits",
        "codes",
        "changes",
        "leads",
        "quarantine",
        "warnings",
        "public",
        "public_events",
    ]
    .iter()
    .map(|d| {
        let files = p.manifest.datasets[*d]
            .files
            .iter()
            .map(|f| {
                format!(
                    "{} {}",
                    f.path.rsplit('/').next().unwrap_or_default(),
                    f.sha256
                )
            })
            .collect();
        (d.to_string(), files)
    })
    .collect()
}

/// The shipped project with a case's `project/` laid over it and a
/// pipeline `case` that runs only `feeds` (names separated by white space,
/// the registry first): the golden ingest cases and the delivery scenarios.
pub(crate) fn case_project(
    case: &Path,
    feeds: &str,
) -> (tempfile::TempDir, qinglian::project::Project) {
    let dir = tempfile::tempdir().expect("tmp");
    copy_project(dir.path());
    if case.join("project").is_dir() {
        copy_tree(&case.join("project"), dir.path());
    }
    let list: Vec<String> = feeds.split_whitespace().map(|f| format!("{f:?}")).collect();
    let pipeline = std::fs::read_to_string(dir.path().join("pipelines/nightly.toml"))
        .expect("nightly")
        .replace("name = \"nightly\"", "name = \"case\"");
    let start = pipeline.find("sources = [").expect("sources");
    let end = start + pipeline[start..].find(']').expect("end of sources");
    let pipeline = format!(
        "{}sources = [{}{}",
        &pipeline[..start],
        list.join(", "),
        &pipeline[end..]
    );
    std::fs::write(dir.path().join("pipelines/case.toml"), pipeline).expect("write");
    let project = qinglian::project::Project::load(dir.path()).expect("project");
    (dir, project)
}

/// Runs a case's pipeline over its feeds for the fixtures' business date
/// (2026-11-28, at 02:30 Beijing time the next night).
pub(crate) async fn run_case(
    project: &qinglian::project::Project,
    feeds: &Path,
    warehouse: &Path,
) -> qinglian::ledger::RunRecord {
    run_case_from(project, &feeds.to_string_lossy(), warehouse).await
}

/// Runs a case's pipeline with `${QINGLIAN_FEEDS}` standing for `feeds`
/// (a folder, or the base URL of a server holding the same files).
pub(crate) async fn run_case_from(
    project: &qinglian::project::Project,
    feeds: &str,
    warehouse: &Path,
) -> qinglian::ledger::RunRecord {
    use chrono::TimeZone;
    let mut vars = std::collections::BTreeMap::new();
    vars.insert("QINGLIAN_FEEDS".to_string(), feeds.to_string());
    vars.insert(
        "QINGLIAN_PERSON_KEY".to_string(),
        crate::ingest::KEY.to_string(),
    );
    let date = crate::ingest::date();
    qinglian::run::run_pipeline(
        project,
        "case",
        qinglian::run::RunOptions {
            business_date: date,
            clock: std::sync::Arc::new(qinglian::clock::FixedClock(
                chrono::Utc
                    .with_ymd_and_hms(2026, 11, 28, 18, 30, 0)
                    .single()
                    .expect("t"),
            )),
            warehouse: Some(warehouse.to_string_lossy().into_owned()),
            vars,
            ..qinglian::run::RunOptions::new(date)
        },
    )
    .await
    .expect("run")
}

/// Whether this run blesses golden files (`QINGLIAN_BLESS` set).
pub(crate) fn blessing() -> bool {
    std::env::var_os("QINGLIAN_BLESS").is_some()
}

/// Writes a golden file under `QINGLIAN_BLESS`, returning its name when its
/// content changed.
pub(crate) fn bless(path: &Path, content: &str) -> Option<String> {
    let before = std::fs::read_to_string(path).ok();
    std::fs::write(path, content).expect("bless");
    (before.as_deref() != Some(content)).then(|| path.display().to_string())
}

/// Ends a blessing test: it always fails, so that a suite run with
/// `QINGLIAN_BLESS` set never passes (the rewritten files are to be reviewed,
/// then the suite run again without it).
pub(crate) fn blessed(test: &str, changed: &[String]) -> ! {
    panic!(
        "{test}: QINGLIAN_BLESS is set, so the golden files were rewritten and nothing was checked \
         ({} changed{}); review the diff, then run again without QINGLIAN_BLESS",
        changed.len(),
        if changed.is_empty() {
            String::new()
        } else {
            format!(": {}", changed.join(", "))
        }
    )
}

/// Delivers the same files again, as a department re-exporting them does:
/// every file under `dir` gets a new modification time (its content kept),
/// so that an object-store listing no longer matches the last snapshot's
/// and the feed is read again rather than carried forward unchanged.
pub(crate) fn redeliver(dir: &Path) {
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(2);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                std::fs::File::options()
                    .write(true)
                    .open(&path)
                    .and_then(|f| f.set_modified(later))
                    .expect("touch");
            }
        }
    }
}

/// What a child process announces on stderr after `marker` (the rest of the
/// first such line, trimmed), waited for up to two minutes: a server bound
/// to port 0 says there where it listens. Its stderr is read to the end in
/// a thread, since an unread pipe would stall the child once full.
pub(crate) fn announced(child: &mut std::process::Child, marker: &'static str) -> Option<String> {
    let stderr = child.stderr.take()?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut tx = Some(tx);
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.split(marker).nth(1)
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(rest.trim().to_string());
            }
        }
    });
    rx.recv_timeout(std::time::Duration::from_secs(120)).ok()
}
