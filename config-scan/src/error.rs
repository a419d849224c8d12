//! The scanner's error type. Messages name paths and line numbers, never file contents.

use std::path::PathBuf;

/// Why a scan could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A path given to scan does not exist.
    #[error("cannot scan {}: no such file or directory", path.display())]
    NoSuchPath {
        /// The path as given.
        path: PathBuf,
    },
    /// A path given to scan (or an allowlist) could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Unreadable {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A line of an allowlist file is not an entry.
    #[error("{}:{line}: {reason}", path.display())]
    Allowlist {
        /// The allowlist file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// What is wrong and how to write it.
        reason: String,
    },
}

impl Error {
    /// Whether the caller has to fix their input (a missing path, a malformed allowlist),
    /// as opposed to a failure.
    pub fn is_usage(&self) -> bool {
        matches!(self, Error::NoSuchPath { .. } | Error::Allowlist { .. })
    }
}
