//! The generator's file writers: one per feed file, each in its department's
//! encoding and format, counting what it writes.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;

/// Why generation failed.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// A local file could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A generated file could not be read back (`generate-delta`).
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The object store refused an upload.
    #[error("cannot upload to {url}: {message}")]
    Upload {
        /// Target URL.
        url: String,
        /// What the store said.
        message: String,
    },
}

/// Text encodings of CSV outputs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum CsvEncoding {
    Utf8,
    Utf8Bom,
    Gb18030,
}

type Sink = Box<dyn Write + Send>;

/// What the generator wrote into one feed, counted as it wrote it: the
/// oracle a run's ledger is compared with (`generated.json`). Every record
/// lands, is quarantined or is an exact duplicate, by construction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FeedCounts {
    /// Records written, copies included.
    pub records: u64,
    /// Second copies of records with a valid key: exact duplicates that
    /// ingest must drop and count.
    pub duplicates: u64,
    /// Records written with a code whose check character was made wrong on
    /// purpose (every copy of one): ingest must quarantine each
    /// (`invalid_key`).
    pub invalid_keys: u64,
}

impl FeedCounts {
    /// Records that must land: neither a duplicate nor quarantined.
    pub fn landing(&self) -> u64 {
        self.records - self.duplicates - self.invalid_keys
    }

    fn wrote(&mut self, copies: usize, invalid_key: bool) {
        let copies = copies as u64;
        self.records += copies;
        if invalid_key {
            self.invalid_keys += copies;
        } else {
            self.duplicates += copies.saturating_sub(1);
        }
    }
}

fn open(dir: &Path, rel: &str, gzip: bool) -> Result<(Sink, PathBuf), GenerateError> {
    let path = dir.join(rel);
    let io = |source| GenerateError::Io {
        path: path.clone(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let file = BufWriter::with_capacity(1 << 16, File::create(&path).map_err(io)?);
    let sink: Sink = if gzip {
        Box::new(GzEncoder::new(file, Compression::fast()))
    } else {
        Box::new(file)
    };
    Ok((sink, path))
}

/// A CSV file with a header row.
pub(crate) struct CsvOut {
    sink: Sink,
    path: PathBuf,
    encoding: CsvEncoding,
    /// One encoded row, reused.
    row: Vec<u8>,
    counts: FeedCounts,
}

impl CsvOut {
    fn create(
        dir: &Path,
        rel: &str,
        headers: &[&str],
        encoding: CsvEncoding,
    ) -> Result<Self, GenerateError> {
        let (mut sink, path) = open(dir, rel, false)?;
        if matches!(encoding, CsvEncoding::Utf8Bom) {
            sink.write_all(b"\xEF\xBB\xBF")
                .map_err(|source| GenerateError::Io {
                    path: path.clone(),
                    source,
                })?;
        }
        let mut out = Self {
            sink,
            path,
            encoding,
            row: Vec::with_capacity(512),
            counts: FeedCounts::default(),
        };
        out.write_row(headers)?;
        Ok(out)
    }

    fn write_row(&mut self, fields: &[&str]) -> Result<(), GenerateError> {
        let io = |path: &PathBuf, source| GenerateError::Io {
            path: path.clone(),
            source,
        };
        self.row.clear();
        {
            let mut writer = csv::Writer::from_writer(&mut self.row);
            writer
                .write_record(fields)
                .map_err(|e| io(&self.path, std::io::Error::other(e)))?;
            writer.flush().map_err(|e| io(&self.path, e))?;
        }
        let bytes = &self.row;
        let encoded: std::borrow::Cow<'_, [u8]> = match self.encoding {
            CsvEncoding::Gb18030 => {
                let text = String::from_utf8_lossy(bytes);
                let (out, _, _) = encoding_rs::GB18030.encode(&text);
                std::borrow::Cow::Owned(out.into_owned())
            }
            _ => std::borrow::Cow::Borrowed(bytes.as_slice()),
        };
        self.sink.write_all(&encoded).map_err(|e| io(&self.path, e))
    }

    /// Writes one record with a valid key.
    pub(crate) fn write(&mut self, fields: &[&str]) -> Result<(), GenerateError> {
        self.write_copies(fields, 1, false)
    }

    /// Writes one record `copies` times; `invalid_key` when its code was
    /// corrupted on purpose.
    pub(crate) fn write_copies(
        &mut self,
        fields: &[&str],
        copies: usize,
        invalid_key: bool,
    ) -> Result<(), GenerateError> {
        for _ in 0..copies {
            self.write_row(fields)?;
        }
        self.counts.wrote(copies, invalid_key);
        Ok(())
    }

    fn finish(mut self) -> Result<FeedCounts, GenerateError> {
        self.sink.flush().map_err(|source| GenerateError::Io {
            path: self.path.clone(),
            source,
        })?;
        Ok(self.counts)
    }
}

/// A JSON-lines file, or a JSON document whose records sit in one array.
pub(crate) struct JsonOut {
    sink: Sink,
    path: PathBuf,
    /// `Some((separator state, closing text))` for a JSON document.
    array: Option<(bool, &'static str)>,
    counts: FeedCounts,
}

impl JsonOut {
    fn lines(dir: &Path, rel: &str, gzip: bool) -> Result<Self, GenerateError> {
        let (sink, path) = open(dir, rel, gzip)?;
        Ok(Self {
            sink,
            path,
            array: None,
            counts: FeedCounts::default(),
        })
    }

    fn document(
        dir: &Path,
        rel: &str,
        opening: &str,
        closing: &'static str,
    ) -> Result<Self, GenerateError> {
        let (mut sink, path) = open(dir, rel, false)?;
        sink.write_all(opening.as_bytes())
            .map_err(|source| GenerateError::Io {
                path: path.clone(),
                source,
            })?;
        Ok(Self {
            sink,
            path,
            array: Some((false, closing)),
            counts: FeedCounts::default(),
        })
    }

    /// Writes one record with a valid key.
    pub(crate) fn write(&mut self, record: &serde_json::Value) -> Result<(), GenerateError> {
        self.write_copies(record, 1, false)
    }

    /// Writes one record `copies` times; `invalid_key` when its code was
    /// corrupted on purpose.
    pub(crate) fn write_copies(
        &mut self,
        record: &serde_json::Value,
        copies: usize,
        invalid_key: bool,
    ) -> Result<(), GenerateError> {
        for _ in 0..copies {
            self.write_one(record)?;
        }
        self.counts.wrote(copies, invalid_key);
        Ok(())
    }

    fn write_one(&mut self, record: &serde_json::Value) -> Result<(), GenerateError> {
        let io = |path: &PathBuf, source| GenerateError::Io {
            path: path.clone(),
            source,
        };
        let text = record.to_string();
        match &mut self.array {
            Some((started, _)) => {
                if *started {
                    self.sink.write_all(b",\n").map_err(|e| io(&self.path, e))?;
                }
                *started = true;
                self.sink
                    .write_all(text.as_bytes())
                    .map_err(|e| io(&self.path, e))?;
            }
            None => {
                self.sink
                    .write_all(text.as_bytes())
                    .map_err(|e| io(&self.path, e))?;
                self.sink.write_all(b"\n").map_err(|e| io(&self.path, e))?;
            }
        }
        Ok(())
    }

    fn finish(mut self) -> Result<FeedCounts, GenerateError> {
        let io = |path: &PathBuf, source| GenerateError::Io {
            path: path.clone(),
            source,
        };
        if let Some((_, closing)) = self.array {
            self.sink
                .write_all(closing.as_bytes())
                .map_err(|e| io(&self.path, e))?;
        }
        self.sink.flush().map_err(|e| io(&self.path, e))?;
        Ok(self.counts)
    }
}

/// Raw headers of the registry export (民政 法人库).
pub(crate) const REGISTRY_HEADERS: [&str; 17] = [
    "统一社会信用代码",
    "社会组织名称",
    "社会组织类型",
    "登记管理机关",
    "登记机关区划",
    "业务主管单位",
    "成立登记日期",
    "登记状态",
    "状态变更日期",
    "住所",
    "注册资金(元)",
    "慈善组织",
    "公开募捐资格",
    "建立党组织",
    "党建入章",
    "兜底管理",
    "签署清廉承诺",
];

/// Raw headers of the key-person export.
pub(crate) const PERSON_HEADERS: [&str; 15] = [
    "记录编号",
    "统一社会信用代码",
    "社会组织名称",
    "姓名",
    "身份证号",
    "职务",
    "任职开始日期",
    "任职结束日期",
    "是否公职人员",
    "是否退休干部",
    "兼职审批文号",
    "审批日期",
    "是否领取报酬",
    "出生年份",
    "任职届数",
];

/// Raw headers of the annual inspection export (年检/年报).
pub(crate) const ANNUAL_HEADERS: [&str; 15] = [
    "统一社会信用代码",
    "社会组织名称",
    "年度",
    "年检结论",
    "结论日期",
    "总收入",
    "捐赠收入",
    "政府购买服务收入",
    "总支出",
    "慈善活动支出",
    "管理费用",
    "年末净资产",
    "上年总收入",
    "上年末净资产",
    "记录编号",
];

/// Raw headers of the 双公示 and list export.
pub(crate) const CREDIT_HEADERS: [&str; 13] = [
    "记录编号",
    "名录类型",
    "统一社会信用代码",
    "组织名称",
    "列入原因",
    "决定书文号",
    "列入日期",
    "移出日期",
    "处罚种类",
    "罚款金额(万元)",
    "处罚决定日期",
    "处罚机关",
    "数据来源",
];

/// Ground truth: one row per injected situation.
pub(crate) const TRUTH_HEADERS: [&str; 5] =
    ["rule_id", "uscc", "feed", "source_record_id", "confidence"];

/// Every output file of one generation.
pub(crate) struct Writers {
    pub(crate) registry: CsvOut,
    pub(crate) persons: CsvOut,
    pub(crate) annual_reports: CsvOut,
    pub(crate) credit: CsvOut,
    pub(crate) truth: CsvOut,
    pub(crate) ratings: JsonOut,
    pub(crate) drc: JsonOut,
    pub(crate) projects: JsonOut,
    pub(crate) police: JsonOut,
    pub(crate) court: JsonOut,
    pub(crate) inspection: JsonOut,
}

impl Writers {
    pub(crate) fn create(dir: &Path) -> Result<Self, GenerateError> {
        Ok(Self {
            registry: CsvOut::create(
                dir,
                "registry/registry.csv",
                &REGISTRY_HEADERS,
                CsvEncoding::Gb18030,
            )?,
            persons: CsvOut::create(
                dir,
                "persons/persons.csv",
                &PERSON_HEADERS,
                CsvEncoding::Utf8,
            )?,
            annual_reports: CsvOut::create(
                dir,
                "annual_reports/annual_reports.csv",
                &ANNUAL_HEADERS,
                CsvEncoding::Utf8Bom,
            )?,
            credit: CsvOut::create(dir, "credit/credit.csv", &CREDIT_HEADERS, CsvEncoding::Utf8)?,
            truth: CsvOut::create(dir, "ground_truth.csv", &TRUTH_HEADERS, CsvEncoding::Utf8)?,
            ratings: JsonOut::document(
                dir,
                "ratings/ratings.json",
                "{\"code\":0,\"msg\":\"ok\",\"data\":[\n",
                "\n]}\n",
            )?,
            drc: JsonOut::document(
                dir,
                "drc/drc.json",
                "{\"success\":true,\"result\":{\"records\":[\n",
                "\n]}}\n",
            )?,
            projects: JsonOut::lines(dir, "projects/projects.ndjson", false)?,
            police: JsonOut::lines(dir, "police/police.ndjson", false)?,
            court: JsonOut::lines(dir, "court/court.ndjson", false)?,
            inspection: JsonOut::lines(dir, "inspection/inspection.ndjson.gz", true)?,
        })
    }

    /// Closes every file; returns what was written per feed.
    pub(crate) fn finish(self) -> Result<BTreeMap<String, FeedCounts>, GenerateError> {
        let mut counts = BTreeMap::new();
        counts.insert("registry".to_string(), self.registry.finish()?);
        counts.insert("persons".to_string(), self.persons.finish()?);
        counts.insert("annual_reports".to_string(), self.annual_reports.finish()?);
        counts.insert("credit".to_string(), self.credit.finish()?);
        counts.insert("ratings".to_string(), self.ratings.finish()?);
        counts.insert("drc".to_string(), self.drc.finish()?);
        counts.insert("projects".to_string(), self.projects.finish()?);
        counts.insert("police".to_string(), self.police.finish()?);
        counts.insert("court".to_string(), self.court.finish()?);
        counts.insert("inspection".to_string(), self.inspection.finish()?);
        self.truth.finish()?;
        Ok(counts)
    }
}

/// Uploads every file under `dir` to the object-store URL prefix.
pub(crate) async fn upload_dir(dir: &Path, url: &str) -> Result<(), GenerateError> {
    let upload = |message: String| GenerateError::Upload {
        url: url.to_string(),
        message,
    };
    let (store, prefix) = crate::store::open_for_write(url).map_err(|e| upload(e.to_string()))?;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|source| GenerateError::Io {
            path: d.clone(),
            source,
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path
                .strip_prefix(dir)
                .map(|p| p.to_string_lossy().replace('\\', "/"))
                .unwrap_or_default();
            let target = crate::store::join(&prefix, &rel);
            crate::store::upload_file(&store, &path, &target)
                .await
                .map_err(|e| upload(e.to_string()))?;
        }
    }
    Ok(())
}
