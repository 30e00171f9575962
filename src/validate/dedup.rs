//! Exact duplicates, found with bounded memory.
//!
//! Canonical rows are staged on local disk in arrival order (Arrow IPC:
//! written and read back without encoding) beside a file
//! of 128-bit fingerprints of their records as delivered; repeats are found
//! one of 256 fingerprint buckets at a time and marked in a bitmap of one
//! bit per row, which filters the staged rows on their way to the landing
//! file. Memory is a bit per row plus one bucket, whatever the feed.

use std::hash::{BuildHasher, RandomState};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;

/// A 128-bit fingerprint of a record as delivered, for exact duplicates:
/// two independently keyed 64-bit hashes.
pub(crate) struct Fingerprints {
    a: RandomState,
    b: RandomState,
}

impl Fingerprints {
    pub(crate) fn new() -> Self {
        Self {
            a: RandomState::new(),
            b: RandomState::new(),
        }
    }

    pub(crate) fn of(&self, original: &str) -> (u64, u64) {
        (self.a.hash_one(original), self.b.hash_one(original))
    }
}

/// Canonical rows staged on local disk in arrival order, beside a file of
/// their 128-bit record fingerprints. Deduplication partitions the
/// fingerprints into 256 buckets on disk, finds repeats one bucket at a time
/// (a bucket holds 1/256 of the feed), and marks them in a bitmap of one bit
/// per row; the staged rows are then streamed once, skipping marked rows.
/// Memory is a bit per row plus one bucket, whatever the feed's length or
/// its number of duplicates; feeds of at most [`IN_MEMORY_ROWS`] rows skip
/// the buckets and use one set of their fingerprints.
pub(crate) struct Staging {
    dir: tempfile::TempDir,
    rows_path: std::path::PathBuf,
    rows: StreamWriter<std::io::BufWriter<std::fs::File>>,
    fps: std::io::BufWriter<std::fs::File>,
    staged: u64,
}

/// Fingerprint buckets: a bucket holds 1/BUCKETS of the feed's rows.
const BUCKETS: usize = 256;

/// Feeds up to this many rows are deduplicated in one in-memory set of
/// fingerprints (at most a few MiB) instead of buckets on disk.
const IN_MEMORY_ROWS: u64 = 1 << 17;

impl Staging {
    pub(crate) async fn new(
        canonical: datafusion::arrow::datatypes::SchemaRef,
    ) -> Result<Self, String> {
        let err = |e: &dyn std::fmt::Display| format!("staging: {e}");
        let dir = tempfile::tempdir().map_err(|e| err(&e))?;
        let rows_path = dir.path().join("rows.arrows");
        let file = std::fs::File::create(&rows_path).map_err(|e| err(&e))?;
        let rows =
            StreamWriter::try_new(std::io::BufWriter::with_capacity(1 << 20, file), &canonical)
                .map_err(|e| err(&e))?;
        let fps =
            std::fs::File::create(dir.path().join("fingerprints.bin")).map_err(|e| err(&e))?;
        Ok(Self {
            rows,
            fps: std::io::BufWriter::with_capacity(1 << 16, fps),
            rows_path,
            dir,
            staged: 0,
        })
    }

    pub(crate) async fn write(
        &mut self,
        batch: &RecordBatch,
        fps: &[(u64, u64)],
    ) -> Result<(), String> {
        use std::io::Write;
        for (hi, lo) in fps {
            self.fps
                .write_all(&hi.to_le_bytes())
                .and_then(|()| self.fps.write_all(&lo.to_le_bytes()))
                .map_err(|e| format!("staging: {e}"))?;
        }
        self.staged += batch.num_rows() as u64;
        self.rows.write(batch).map_err(|e| format!("staging: {e}"))
    }

    /// Marks every row whose record appeared at an earlier row.
    fn duplicates(dir: &std::path::Path, staged: u64) -> std::io::Result<Vec<u64>> {
        if staged <= IN_MEMORY_ROWS {
            Self::duplicates_in_memory(dir, staged)
        } else {
            Self::duplicates_bucketed(dir, staged)
        }
    }

    fn duplicates_in_memory(dir: &std::path::Path, staged: u64) -> std::io::Result<Vec<u64>> {
        use std::io::{BufReader, Read};
        let mut bitmap = vec![0u64; (staged as usize).div_ceil(64)];
        // Small feeds: one pass over the fingerprints, no bucket files
        // (opening 256 files costs more than the feed on slow disks).
        let mut input =
            BufReader::with_capacity(1 << 16, std::fs::File::open(dir.join("fingerprints.bin"))?);
        let mut seen = std::collections::HashSet::with_capacity(staged as usize);
        let mut entry = [0u8; 16];
        for ord in 0..staged {
            input.read_exact(&mut entry)?;
            if !seen.insert(u128::from_le_bytes(entry)) {
                bitmap[(ord / 64) as usize] |= 1 << (ord % 64);
            }
        }
        Ok(bitmap)
    }

    fn duplicates_bucketed(dir: &std::path::Path, staged: u64) -> std::io::Result<Vec<u64>> {
        use std::io::{BufReader, BufWriter, Read, Write};
        let mut bitmap = vec![0u64; (staged as usize).div_ceil(64)];
        // Pass 1: spread (fingerprint, ordinal) over the buckets, in order.
        let mut buckets = (0..BUCKETS)
            .map(|b| {
                std::fs::File::create(dir.join(format!("bucket-{b}.bin")))
                    .map(|f| BufWriter::with_capacity(8 << 10, f))
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        let mut input =
            BufReader::with_capacity(1 << 16, std::fs::File::open(dir.join("fingerprints.bin"))?);
        let mut entry = [0u8; 16];
        for ord in 0..staged {
            input.read_exact(&mut entry)?;
            let bucket = (entry[7] as usize) % BUCKETS;
            buckets[bucket].write_all(&entry)?;
            buckets[bucket].write_all(&ord.to_le_bytes())?;
        }
        for b in &mut buckets {
            b.flush()?;
        }
        drop(buckets);
        // Pass 2: one bucket at a time; later ordinals of a fingerprint are repeats.
        let mut record = [0u8; 24];
        for b in 0..BUCKETS {
            let path = dir.join(format!("bucket-{b}.bin"));
            let mut seen = std::collections::HashSet::new();
            let mut reader = BufReader::with_capacity(1 << 16, std::fs::File::open(&path)?);
            loop {
                match reader.read_exact(&mut record) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                    Err(e) => return Err(e),
                }
                let fp = u128::from_le_bytes(record[..16].try_into().unwrap_or([0; 16]));
                let ord = u64::from_le_bytes(record[16..].try_into().unwrap_or([0; 8]));
                if !seen.insert(fp) {
                    bitmap[(ord / 64) as usize] |= 1 << (ord % 64);
                }
            }
            std::fs::remove_file(&path)?;
        }
        Ok(bitmap)
    }

    /// Starts the deduplicated read-back.
    pub(crate) async fn distinct(mut self) -> Result<Distinct, String> {
        use std::io::Write;
        self.fps.flush().map_err(|e| format!("staging: {e}"))?;
        self.rows.finish().map_err(|e| format!("staging: {e}"))?;
        self.rows
            .get_mut()
            .flush()
            .map_err(|e| format!("staging: {e}"))?;
        let dir = self.dir.path().to_path_buf();
        let staged = self.staged;
        let bitmap = tokio::task::spawn_blocking(move || Self::duplicates(&dir, staged))
            .await
            .map_err(|e| format!("deduplicating: {e}"))?
            .map_err(|e| format!("deduplicating: {e}"))?;
        let file = std::fs::File::open(&self.rows_path).map_err(|e| format!("staging: {e}"))?;
        let rows = StreamReader::try_new(std::io::BufReader::with_capacity(1 << 20, file), None)
            .map_err(|e| format!("staging: {e}"))?;
        Ok(Distinct {
            _dir: self.dir,
            rows,
            bitmap,
            offset: 0,
            staged,
        })
    }
}

/// Staged rows read back in order without their duplicates.
pub(crate) struct Distinct {
    _dir: tempfile::TempDir,
    rows: StreamReader<std::io::BufReader<std::fs::File>>,
    bitmap: Vec<u64>,
    offset: u64,
    pub(crate) staged: u64,
}

impl Distinct {
    /// The next batch of distinct rows, `None` at the end.
    pub(crate) async fn next(&mut self) -> Option<Result<RecordBatch, String>> {
        use datafusion::arrow::array::BooleanArray;
        use datafusion::arrow::compute::filter_record_batch;
        let batch = match self.rows.next()? {
            Ok(b) => b,
            Err(e) => return Some(Err(format!("staging: {e}"))),
        };
        let keep: BooleanArray = (0..batch.num_rows() as u64)
            .map(|i| {
                let ord = self.offset + i;
                Some(self.bitmap[(ord / 64) as usize] & (1 << (ord % 64)) == 0)
            })
            .collect();
        self.offset += batch.num_rows() as u64;
        Some(filter_record_batch(&batch, &keep).map_err(|e| e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both ways of finding repeats mark the same rows.
    #[test]
    fn in_memory_and_bucketed_deduplication_agree() {
        use std::io::Write;
        let dir = tempfile::tempdir().expect("tmp");
        let staged = IN_MEMORY_ROWS + 5_000;
        let mut f = std::fs::File::create(dir.path().join("fingerprints.bin")).expect("file");
        let mut expected = Vec::new();
        for ord in 0..staged {
            // Every 7th row repeats the row 1,000 before it.
            let (fp, dup) = if ord >= 1_000 && ord % 7 == 0 {
                (ord - 1_000, true)
            } else {
                (ord, false)
            };
            let fp = u128::from(fp).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
            f.write_all(&fp.to_le_bytes()).expect("write");
            if dup {
                expected.push(ord);
            }
        }
        drop(f);
        let marked = |bitmap: &[u64]| -> Vec<u64> {
            (0..staged)
                .filter(|o| bitmap[(o / 64) as usize] & (1 << (o % 64)) != 0)
                .collect()
        };
        let memory = Staging::duplicates_in_memory(dir.path(), staged).expect("memory");
        let buckets = Staging::duplicates_bucketed(dir.path(), staged).expect("buckets");
        assert_eq!(marked(&memory), expected);
        assert_eq!(marked(&buckets), expected);
    }
}
