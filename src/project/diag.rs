//! Configuration problems, each naming its file and key path.

use std::fmt;

/// One problem in the project's configuration.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    /// The file, relative to the project root (`pipelines/sources/court.toml`).
    pub file: String,
    /// Key path inside the file (`mapping.columns.status.enum."撤销"`), or empty.
    pub path: String,
    /// What was found and what was expected.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}: {}: {}", self.file, self.path, self.message)
        }
    }
}

/// Collects every problem of a pass, so the user sees them all at once.
#[derive(Debug, Default)]
pub(crate) struct Diagnostics {
    pub(crate) items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub(crate) fn push(&mut self, file: &str, path: impl Into<String>, message: impl Into<String>) {
        self.items.push(Diagnostic {
            file: file.to_string(),
            path: path.into(),
            message: message.into(),
        });
    }
}

/// Quotes a TOML key for a key path when it is not a bare key.
pub(crate) fn key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_string()
    } else {
        format!("{k:?}")
    }
}
