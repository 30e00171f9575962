//! The generator's files read back as raw records, and a day's delivery
//! as a delta API would send it: `qinglian generate-delta`.
//!
//! A delta between two generator days holds, feed by feed, every record
//! of the later day whose record id's records changed (or is new), then a
//! tombstone (`"op": "D"` on the record as it was) for every id gone: what
//! the feed simulator answers to `?since=`, written as NDJSON files that
//! an `object_store` source with `merge = "upsert"` reads. Without an
//! earlier day the delta is every record (the first delivery of a feed).
//! The records are compared by a 128-bit hash per id, so memory grows with
//! the number of ids, not with the records' size.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::GenerateError;

/// The generator's feeds, each in the file and form it writes.
pub const FEEDS: [&str; 10] = [
    "registry",
    "persons",
    "annual_reports",
    "credit",
    "ratings",
    "drc",
    "projects",
    "police",
    "court",
    "inspection",
];

/// The raw field and value that mark a deleted record in a delta.
pub const TOMBSTONE: (&str, &str) = ("op", "D");

fn io(path: &Path, source: std::io::Error) -> GenerateError {
    GenerateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn read(path: &Path, source: std::io::Error) -> GenerateError {
    GenerateError::Read {
        path: path.to_path_buf(),
        source,
    }
}

fn bad(path: &Path, what: impl std::fmt::Display) -> GenerateError {
    read(
        path,
        std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string()),
    )
}

/// Calls `each` with every record of `feed` in a generator output
/// directory, in file order, as a JSON object keyed by the department's raw
/// field names (CSV cells as strings). A record that does not parse is an
/// error naming the file and line, unless `lenient` skips it.
pub fn each_record(
    dir: &Path,
    feed: &str,
    lenient: bool,
    mut each: impl FnMut(Value) -> Result<(), GenerateError>,
) -> Result<(), GenerateError> {
    let csv = |rel: &str, gb: bool, each: &mut dyn FnMut(Value) -> Result<(), GenerateError>| {
        let path = dir.join(rel);
        let bytes = std::fs::read(&path).map_err(|e| read(&path, e))?;
        let text = if gb {
            encoding_rs::GB18030.decode(&bytes).0.into_owned()
        } else {
            String::from_utf8_lossy(&bytes)
                .trim_start_matches('\u{feff}')
                .to_string()
        };
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let headers = reader.headers().map_err(|e| bad(&path, e))?.clone();
        for record in reader.records() {
            let record = match record {
                Ok(r) => r,
                Err(_) if lenient => continue,
                Err(e) => return Err(bad(&path, e)),
            };
            each(Value::Object(
                headers
                    .iter()
                    .zip(record.iter())
                    .map(|(h, v)| (h.to_string(), Value::String(v.to_string())))
                    .collect(),
            ))?;
        }
        Ok(())
    };
    let lines = |path: PathBuf,
                 reader: Box<dyn BufRead>,
                 each: &mut dyn FnMut(Value) -> Result<(), GenerateError>| {
        for (n, line) in reader.lines().enumerate() {
            let line = line.map_err(|e| read(&path, e))?;
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str(&line) {
                Ok(v) => each(v)?,
                Err(_) if lenient => {}
                Err(e) => return Err(bad(&path, format!("line {}: {e}", n + 1))),
            }
        }
        Ok(())
    };
    let open = |rel: &str| -> Result<(PathBuf, File), GenerateError> {
        let path = dir.join(rel);
        let file = File::open(&path).map_err(|e| read(&path, e))?;
        Ok((path, file))
    };
    match feed {
        "registry" => csv("registry/registry.csv", true, &mut each),
        "persons" | "annual_reports" | "credit" => {
            csv(&format!("{feed}/{feed}.csv"), false, &mut each)
        }
        "ratings" | "drc" => {
            let pointer = if feed == "ratings" {
                "/data"
            } else {
                "/result/records"
            };
            let (path, file) = open(&format!("{feed}/{feed}.json"))?;
            let doc: Value =
                serde_json::from_reader(BufReader::new(file)).map_err(|e| bad(&path, e))?;
            let Some(Value::Array(records)) = doc.pointer(pointer).cloned() else {
                return Err(bad(&path, format!("no array at {pointer}")));
            };
            records.into_iter().try_for_each(each)
        }
        "projects" | "police" | "court" => {
            let (path, file) = open(&format!("{feed}/{feed}.ndjson"))?;
            lines(path, Box::new(BufReader::new(file)), &mut each)
        }
        "inspection" => {
            let (path, file) = open("inspection/inspection.ndjson.gz")?;
            let gz = flate2::read::MultiGzDecoder::new(file);
            lines(path, Box::new(BufReader::new(gz)), &mut each)
        }
        other => Err(bad(dir, format!("the generator writes no feed {other:?}"))),
    }
}

/// What one delta holds, per feed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DeltaCounts {
    /// Records of the later day, copies included.
    pub records: u64,
    /// Records written: those of new or changed ids.
    pub changed: u64,
    /// Tombstones written: one per id gone.
    pub tombstones: u64,
}

/// The id of a record: its record-id fields' values joined (what a delta
/// compares, here and in the feed simulator).
pub(crate) fn record_id(fields: &[String], record: &Value) -> String {
    let mut id = String::new();
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            id.push('\u{1f}');
        }
        match record.get(f) {
            Some(Value::String(s)) => id.push_str(s),
            Some(v) => id.push_str(&v.to_string()),
            None => {}
        }
    }
    id
}

/// Every id of a feed with a hash of its records, in order.
fn hashes(
    dir: &Path,
    feed: &str,
    fields: &[String],
) -> Result<(HashMap<String, u128>, u64), GenerateError> {
    use siphasher::sip128::{Hasher128, SipHasher13};
    use std::hash::Hasher;
    let mut ids: HashMap<String, u128> = HashMap::new();
    let mut records = 0u64;
    each_record(dir, feed, false, |r| {
        records += 1;
        let slot = ids.entry(record_id(fields, &r)).or_insert(0);
        let mut h = SipHasher13::new_with_keys(0x716c, 0x6465);
        h.write_u128(*slot);
        h.write(r.to_string().as_bytes());
        *slot = h.finish128().as_u128();
        Ok(())
    })?;
    Ok((ids, records))
}

/// Writes, for every feed, `<out>/<feed>/<feed>.ndjson`: the records of
/// `after` whose ids' records differ from `before`'s, then a tombstone
/// for each id of `before` gone (without `before`, every record).
/// `record_ids` names each feed's raw record-id fields.
pub fn write_delta(
    before: Option<&Path>,
    after: &Path,
    record_ids: &BTreeMap<String, Vec<String>>,
    out: &Path,
) -> Result<BTreeMap<String, DeltaCounts>, GenerateError> {
    let mut all = BTreeMap::new();
    for feed in FEEDS {
        let fields = record_ids.get(feed).cloned().unwrap_or_default();
        let dir = out.join(feed);
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        let path = dir.join(format!("{feed}.ndjson"));
        let mut sink = BufWriter::new(File::create(&path).map_err(|e| io(&path, e))?);
        let mut counts = DeltaCounts::default();
        let mut write = |v: &Value| -> Result<(), GenerateError> {
            sink.write_all(v.to_string().as_bytes())
                .and_then(|()| sink.write_all(b"\n"))
                .map_err(|e| io(&path, e))
        };
        let (now, records) = hashes(after, feed, &fields)?;
        counts.records = records;
        let was = match before {
            Some(b) => Some(hashes(b, feed, &fields)?.0),
            None => None,
        };
        let changed: HashSet<&String> = now
            .iter()
            .filter(|(id, h)| was.as_ref().and_then(|w| w.get(*id)) != Some(h))
            .map(|(id, _)| id)
            .collect();
        each_record(after, feed, false, |r| {
            if changed.contains(&record_id(&fields, &r)) {
                counts.changed += 1;
                write(&r)?;
            }
            Ok(())
        })?;
        if let (Some(before), Some(was)) = (before, &was) {
            let mut gone: HashSet<String> = was
                .keys()
                .filter(|id| !now.contains_key(*id))
                .cloned()
                .collect();
            each_record(before, feed, false, |mut r| {
                if gone.remove(&record_id(&fields, &r))
                    && let Some(o) = r.as_object_mut()
                {
                    o.insert(TOMBSTONE.0.into(), json!(TOMBSTONE.1));
                    counts.tombstones += 1;
                    write(&r)?;
                }
                Ok(())
            })?;
        }
        sink.flush().map_err(|e| io(&path, e))?;
        all.insert(feed.to_string(), counts);
    }
    Ok(all)
}

/// Copies a project's `schemas/`, `pipelines/` and `jobs/` to `out`, each
/// source's `[source]` table replaced by what `source_of(feed)` returns.
pub fn copy_project(
    project: &Path,
    out: &Path,
    header: &str,
    source_of: impl Fn(&str) -> toml::Table,
) -> std::io::Result<()> {
    fn copy(from: &Path, to: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            let target = to.join(entry.file_name());
            if entry.path().is_dir() {
                copy(&entry.path(), &target)?;
            } else {
                std::fs::copy(entry.path(), &target)?;
            }
        }
        Ok(())
    }
    for dir in ["schemas", "pipelines", "jobs"] {
        copy(&project.join(dir), &out.join(dir))?;
    }
    let sources = out.join("pipelines/sources");
    for entry in std::fs::read_dir(&sources)? {
        let path = entry?.path();
        let Some(feed) = path.file_stem().map(|s| s.to_string_lossy().into_owned()) else {
            continue;
        };
        let text = std::fs::read_to_string(&path)?;
        let mut table: toml::Table = text.parse().map_err(std::io::Error::other)?;
        table.insert("source".into(), toml::Value::Table(source_of(&feed)));
        let body = toml::to_string(&table).map_err(std::io::Error::other)?;
        std::fs::write(&path, format!("# Generated by `{header}`.\n{body}"))?;
    }
    Ok(())
}

/// Copies a project to `out` with every source reading the deltas of
/// [`write_delta`] under `feeds` (overridden at run time by
/// `QINGLIAN_FEEDS`): NDJSON, merged by record id, `op = "D"` deleting.
pub fn write_delta_project(project: &Path, out: &Path, feeds: &str) -> std::io::Result<()> {
    copy_project(
        project,
        out,
        "qinglian generate-delta --project-out",
        |feed| {
            let mut t = toml::Table::new();
            t.insert("kind".into(), "object_store".into());
            t.insert(
                "url".into(),
                format!("${{QINGLIAN_FEEDS:-{feeds}}}/{feed}/*.ndjson").into(),
            );
            t.insert("format".into(), "ndjson".into());
            t.insert("merge".into(), "upsert".into());
            let mut tombstone = toml::Table::new();
            tombstone.insert("field".into(), TOMBSTONE.0.into());
            tombstone.insert("value".into(), TOMBSTONE.1.into());
            t.insert("tombstone".into(), toml::Value::Table(tombstone));
            t
        },
    )
}
