//! Exact duplicates, found with bounded memory.
//!
//! Rows stream straight to their landing file while a set of 128-bit
//! fingerprints of their records as delivered (16 bytes a row) tells first
//! occurrences from repeats. A feed longer than [`STREAMED_ROWS`] distinct
//! records spills: the set goes to a fingerprint file on local disk and
//! later rows are staged there (Arrow IPC, written and read back without
//! encoding) beside their fingerprints; repeats among them are found one of
//! 256 fingerprint buckets at a time and marked in a bitmap of one bit per
//! row, which filters the staged rows on their way to the landing file.
//! Memory is at most the set, whatever the feed.

use std::hash::{BuildHasher, RandomState};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;

/// A 128-bit fingerprint of a record as delivered, for exact duplicates:
/// one pass of SipHash-1-3 with a 128-bit output, under a key drawn for
/// the run (a record cannot be crafted to collide with another it has not
/// seen the key of). One pass where two keyed 64-bit hashes read every
/// record twice.
pub(crate) struct Fingerprints {
    k0: u64,
    k1: u64,
}

impl Fingerprints {
    pub(crate) fn new() -> Self {
        // The standard library's per-process random keys, drawn from the
        // operating system, give the key.
        let random = RandomState::new();
        Self {
            k0: random.hash_one(0u8),
            k1: random.hash_one(1u8),
        }
    }

    pub(crate) fn of(&self, original: &str) -> (u64, u64) {
        use siphasher::sip128::{Hasher128, SipHasher13};
        use std::hash::Hasher;
        let mut h = SipHasher13::new_with_keys(self.k0, self.k1);
        h.write(original.as_bytes());
        let fp = h.finish128();
        (fp.h1, fp.h2)
    }
}

/// Deduplication of one feed in arrival order: first occurrences are
/// returned by [`write`](Self::write) to land at once while the set of
/// fingerprints stays below [`STREAMED_ROWS`]; past it, rows are staged on
/// disk and [`distinct`](Self::distinct) returns the rest.
pub(crate) struct Staging {
    canonical: datafusion::arrow::datatypes::SchemaRef,
    seen: Option<std::collections::HashSet<u128>>,
    spill: Option<Spill>,
    /// Rows written, staged or not.
    written: u64,
    /// The cap of the streamed set.
    streamed_rows: usize,
}

/// Rows staged on disk once the fingerprint set is full: the fingerprint
/// file starts with the `landed` fingerprints of the rows streamed before.
struct Spill {
    dir: tempfile::TempDir,
    rows_path: std::path::PathBuf,
    rows: StreamWriter<std::io::BufWriter<std::fs::File>>,
    fps: std::io::BufWriter<std::fs::File>,
    landed: u64,
    staged: u64,
}

/// Distinct records kept in memory before a feed spills to disk: 16 MiB
/// of fingerprints a million rows (a 10-million-row feed, the largest of
/// the national tier, keeps about 200 MiB).
const STREAMED_ROWS: usize = 1 << 24;

/// Fingerprint buckets: a bucket holds 1/BUCKETS of the spilled rows.
const BUCKETS: usize = 256;

/// Spilled rows up to this many are deduplicated in one in-memory set of
/// fingerprints (at most a few MiB) instead of buckets on disk.
const IN_MEMORY_ROWS: u64 = 1 << 17;

fn fingerprint((hi, lo): (u64, u64)) -> u128 {
    (u128::from(hi) << 64) | u128::from(lo)
}

impl Staging {
    pub(crate) async fn new(
        canonical: datafusion::arrow::datatypes::SchemaRef,
    ) -> Result<Self, String> {
        Ok(Self::with_cap(canonical, STREAMED_ROWS))
    }

    fn with_cap(canonical: datafusion::arrow::datatypes::SchemaRef, streamed_rows: usize) -> Self {
        Self {
            canonical,
            seen: Some(std::collections::HashSet::new()),
            spill: None,
            written: 0,
            streamed_rows,
        }
    }

    /// Takes a batch of canonical rows with their fingerprints; returns the
    /// first occurrences that land now (none once the feed has spilled).
    pub(crate) async fn write(
        &mut self,
        batch: &RecordBatch,
        fps: &[(u64, u64)],
    ) -> Result<Option<RecordBatch>, String> {
        use datafusion::arrow::array::BooleanArray;
        use datafusion::arrow::compute::filter_record_batch;
        self.written += batch.num_rows() as u64;
        let Some(seen) = self.seen.as_mut() else {
            self.stage(batch, fps)?;
            return Ok(None);
        };
        let mut keep = Vec::with_capacity(fps.len());
        let mut full_at = None;
        for (i, fp) in fps.iter().enumerate() {
            keep.push(seen.insert(fingerprint(*fp)));
            if seen.len() >= self.streamed_rows {
                full_at = Some(i + 1);
                break;
            }
        }
        let streamed = batch.slice(0, keep.len());
        let now = filter_record_batch(&streamed, &BooleanArray::from(keep))
            .map_err(|e| format!("deduplicating: {e}"))?;
        if let Some(at) = full_at {
            self.start_spill()?;
            self.stage(&batch.slice(at, batch.num_rows() - at), &fps[at..])?;
        }
        Ok(Some(now))
    }

    /// Moves the fingerprint set to disk; later rows are staged.
    fn start_spill(&mut self) -> Result<(), String> {
        use std::io::Write;
        let err = |e: &dyn std::fmt::Display| format!("staging: {e}");
        let dir = tempfile::tempdir().map_err(|e| err(&e))?;
        let rows_path = dir.path().join("rows.arrows");
        let file = std::fs::File::create(&rows_path).map_err(|e| err(&e))?;
        let rows = StreamWriter::try_new(
            std::io::BufWriter::with_capacity(1 << 20, file),
            &self.canonical,
        )
        .map_err(|e| err(&e))?;
        let fps =
            std::fs::File::create(dir.path().join("fingerprints.bin")).map_err(|e| err(&e))?;
        let mut fps = std::io::BufWriter::with_capacity(1 << 16, fps);
        let seen = self.seen.take().unwrap_or_default();
        for fp in &seen {
            fps.write_all(&fp.to_le_bytes()).map_err(|e| err(&e))?;
        }
        self.spill = Some(Spill {
            dir,
            rows_path,
            rows,
            fps,
            landed: seen.len() as u64,
            staged: 0,
        });
        Ok(())
    }

    fn stage(&mut self, batch: &RecordBatch, fps: &[(u64, u64)]) -> Result<(), String> {
        use std::io::Write;
        let Some(spill) = self.spill.as_mut() else {
            return Err("staging: not spilled".into());
        };
        for fp in fps {
            spill
                .fps
                .write_all(&fingerprint(*fp).to_le_bytes())
                .map_err(|e| format!("staging: {e}"))?;
        }
        spill.staged += batch.num_rows() as u64;
        spill.rows.write(batch).map_err(|e| format!("staging: {e}"))
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

    /// The rows still to land (those staged after a spill), without
    /// their repeats; `written` counts every row taken.
    pub(crate) async fn distinct(self) -> Result<Distinct, String> {
        use std::io::Write;
        let Some(mut spill) = self.spill else {
            return Ok(Distinct {
                rest: None,
                written: self.written,
            });
        };
        spill.fps.flush().map_err(|e| format!("staging: {e}"))?;
        spill.rows.finish().map_err(|e| format!("staging: {e}"))?;
        spill
            .rows
            .get_mut()
            .flush()
            .map_err(|e| format!("staging: {e}"))?;
        let dir = spill.dir.path().to_path_buf();
        let total = spill.landed + spill.staged;
        let bitmap = tokio::task::spawn_blocking(move || Self::duplicates(&dir, total))
            .await
            .map_err(|e| format!("deduplicating: {e}"))?
            .map_err(|e| format!("deduplicating: {e}"))?;
        let file = std::fs::File::open(&spill.rows_path).map_err(|e| format!("staging: {e}"))?;
        let rows = StreamReader::try_new(std::io::BufReader::with_capacity(1 << 20, file), None)
            .map_err(|e| format!("staging: {e}"))?;
        Ok(Distinct {
            rest: Some(Rest {
                _dir: spill.dir,
                rows,
                bitmap,
                offset: spill.landed,
            }),
            written: self.written,
        })
    }
}

/// Staged rows read back in order without their duplicates.
pub(crate) struct Distinct {
    rest: Option<Rest>,
    /// Rows taken by the staging, duplicates included.
    pub(crate) written: u64,
}

struct Rest {
    _dir: tempfile::TempDir,
    rows: StreamReader<std::io::BufReader<std::fs::File>>,
    bitmap: Vec<u64>,
    /// Ordinal of the first staged row among all fingerprints.
    offset: u64,
}

impl Distinct {
    /// The next batch of distinct staged rows, `None` at the end.
    pub(crate) async fn next(&mut self) -> Option<Result<RecordBatch, String>> {
        use datafusion::arrow::array::BooleanArray;
        use datafusion::arrow::compute::filter_record_batch;
        let rest = self.rest.as_mut()?;
        let batch = match rest.rows.next()? {
            Ok(b) => b,
            Err(e) => return Some(Err(format!("staging: {e}"))),
        };
        let keep: BooleanArray = (0..batch.num_rows() as u64)
            .map(|i| {
                let ord = rest.offset + i;
                Some(rest.bitmap[(ord / 64) as usize] & (1 << (ord % 64)) == 0)
            })
            .collect();
        rest.offset += batch.num_rows() as u64;
        Some(filter_record_batch(&batch, &keep).map_err(|e| e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::AsArray;

    use super::*;

    /// One record, one fingerprint within a run; records differing in a
    /// byte (or only in where a field ends) differ; another run's key
    /// gives other fingerprints.
    #[test]
    fn fingerprints_are_keyed_per_run_and_tell_records_apart() {
        let fp = Fingerprints::new();
        assert_eq!(fp.of("a,b,c"), fp.of(&String::from("a,b,c")));
        assert_ne!(fp.of("a,b,c"), fp.of("a,b,d"));
        assert_ne!(fp.of("ab,c"), fp.of("a,bc"));
        assert_ne!(fp.of(""), fp.of(" "));
        let other = Fingerprints::new();
        assert_ne!(fp.of("a,b,c"), other.of("a,b,c"));
        let distinct: std::collections::HashSet<(u64, u64)> =
            (0..100_000).map(|i| fp.of(&format!("row {i}"))).collect();
        assert_eq!(distinct.len(), 100_000);
    }

    /// Streaming, spilling part-way and spilling at once land the same
    /// rows in the same order: every first occurrence, in arrival order.
    #[tokio::test]
    async fn a_feed_lands_the_same_rows_whether_it_spills_or_not() {
        use datafusion::arrow::array::Int64Array;
        use datafusion::arrow::datatypes::{DataType, Field, Schema};
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        // 3,000 rows, every 5th repeating a row 700 before it.
        let values: Vec<i64> = (0..3_000i64)
            .map(|i| if i >= 700 && i % 5 == 0 { i - 700 } else { i })
            .collect();
        let expected: Vec<i64> = {
            let mut seen = std::collections::HashSet::new();
            values.iter().copied().filter(|v| seen.insert(*v)).collect()
        };
        for cap in [usize::MAX, 1_000, 1] {
            let mut staging = Staging::with_cap(Arc::clone(&schema), cap);
            let mut landed = Vec::new();
            for chunk in values.chunks(256) {
                let batch = RecordBatch::try_new(
                    Arc::clone(&schema),
                    vec![Arc::new(Int64Array::from(chunk.to_vec()))],
                )
                .expect("batch");
                let fps: Vec<(u64, u64)> = chunk.iter().map(|v| (*v as u64, 7)).collect();
                if let Some(now) = staging.write(&batch, &fps).await.expect("write") {
                    landed.extend(
                        now.column(0)
                            .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                            .values()
                            .iter()
                            .copied(),
                    );
                }
            }
            let mut rest = staging.distinct().await.expect("distinct");
            assert_eq!(rest.written, 3_000);
            while let Some(batch) = rest.next().await {
                let batch = batch.expect("batch");
                landed.extend(
                    batch
                        .column(0)
                        .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                        .values()
                        .iter()
                        .copied(),
                );
            }
            assert_eq!(landed, expected, "cap {cap}");
        }
    }

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
