//! What a stage of a run cost the process: peak resident memory and bytes
//! read and written, from Linux's `/proc/self`. Each stage resets the peak
//! (`clear_refs`), so a stage's figure is its own high-water mark, not the
//! run's so far. On other systems, or where `/proc` says nothing, every
//! figure is `None` and the run goes on.

use serde::{Deserialize, Serialize};

/// The resources one stage used.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageUsage {
    /// Highest resident set size during the stage, KiB.
    #[serde(default)]
    pub peak_rss_kib: Option<u64>,
    /// Bytes the process read (files and sockets) during the stage.
    #[serde(default)]
    pub read_bytes: Option<u64>,
    /// Bytes the process wrote (files and sockets) during the stage.
    #[serde(default)]
    pub written_bytes: Option<u64>,
}

/// The process's counters at one instant.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counters {
    read: Option<u64>,
    written: Option<u64>,
}

impl Counters {
    /// Reads the counters now and starts a new peak-memory window.
    pub fn start() -> Counters {
        // "5" resets the peak resident set size to the current one
        // (proc(5), /proc/pid/clear_refs). A refusal only costs the
        // per-stage peak: it then reads as the run's peak so far.
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        Counters::read()
    }

    /// What the process used since `self`.
    pub fn usage(&self) -> StageUsage {
        let now = Counters::read();
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        StageUsage {
            peak_rss_kib: field(&status, "VmHWM:"),
            read_bytes: now.read.zip(self.read).map(|(b, a)| b.saturating_sub(a)),
            written_bytes: now
                .written
                .zip(self.written)
                .map(|(b, a)| b.saturating_sub(a)),
        }
    }

    /// The counters, without touching the peak.
    fn read() -> Counters {
        let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
        Counters {
            read: field(&io, "rchar:"),
            written: field(&io, "wchar:"),
        }
    }
}

/// The number after `name` on its line of a `/proc` file (`VmHWM:  1968 kB`).
fn field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_proc_fields() {
        let status = "Name:\tq\nVmHWM:\t    1968 kB\nVmRSS:\t 1000 kB\n";
        assert_eq!(field(status, "VmHWM:"), Some(1968));
        assert_eq!(field("rchar: 6976\nwchar: 0\n", "wchar:"), Some(0));
        assert_eq!(field("", "rchar:"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_stage_that_writes_counts_its_bytes() {
        let start = Counters::start();
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("f"), vec![7u8; 100_000]).expect("write");
        let usage = start.usage();
        assert!(usage.written_bytes.unwrap_or(0) >= 100_000, "{usage:?}");
        assert!(usage.peak_rss_kib.unwrap_or(0) > 0, "{usage:?}");
    }
}
