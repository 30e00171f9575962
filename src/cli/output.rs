//! Where every command writes what it shows, without panicking when the
//! reader goes away.

use std::io::Write;

/// Where every command writes what it shows. A reader that goes away
/// (`qinglian status | head -1`, a closed terminal) ends the output, not
/// the command: a run goes on to its end and its exit code, and nothing
/// more is written to that stream. `println!` would panic instead.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Output {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

static STDOUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static STDERR_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl Output {
    fn closed(self) -> &'static std::sync::atomic::AtomicBool {
        match self {
            Output::Stdout => &STDOUT_CLOSED,
            Output::Stderr => &STDERR_CLOSED,
        }
    }

    /// Whether the stream's reader went away.
    pub(crate) fn is_closed(self) -> bool {
        self.closed().load(std::sync::atomic::Ordering::Relaxed)
    }

    fn put(self, bytes: &[u8]) -> std::io::Result<()> {
        use std::sync::atomic::Ordering;
        if self.is_closed() {
            return Ok(());
        }
        let written = match self {
            Output::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(bytes).and_then(|()| out.flush())
            }
            Output::Stderr => std::io::stderr().lock().write_all(bytes),
        };
        match written {
            Err(e) => {
                // Whatever the failure (a closed pipe, a full disk), the
                // stream is done; a failure other than a closed pipe is said
                // once on the other stream.
                self.closed().store(true, Ordering::Relaxed);
                if e.kind() != std::io::ErrorKind::BrokenPipe
                    && let Output::Stdout = self
                {
                    Output::Stderr.line(format_args!("error: cannot write standard output: {e}"));
                }
                Err(e)
            }
            Ok(()) => Ok(()),
        }
    }

    /// Writes `text` and a newline.
    pub(crate) fn line(self, text: std::fmt::Arguments<'_>) {
        let _ = self.put(format!("{text}\n").as_bytes());
    }

    /// Writes `text`.
    pub(crate) fn text(self, text: std::fmt::Arguments<'_>) {
        let _ = self.put(text.to_string().as_bytes());
    }
}

/// For bulk output through a `BufWriter`: a closed stream swallows what
/// follows (the writer checks [`Output::is_closed`] to stop early).
impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = self.put(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
