//! The CLI's error type and its exit codes.

/// Why a command failed. Exit code 1 for everything but usage errors (2).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The vault refused or failed.
    #[error(transparent)]
    Vault(#[from] vault::Error),
    /// A KEK could not be built from its URI.
    #[error(transparent)]
    Kek(#[from] kek_providers::Error),
    /// An envelope could not be parsed or made.
    #[error(transparent)]
    Envelope(#[from] envelope::Error),
    /// Reading input or writing output failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being read or written.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The daemon refused or failed the call.
    #[error("vaultd answered {code}: {message}")]
    Remote {
        /// The gRPC status name.
        code: String,
        /// The daemon's message.
        message: String,
    },
    /// vaultd could not be reached: no connection, or no TLS session within the connect
    /// timeout.
    #[error("cannot reach vaultd at {addr}: {reason}")]
    Unreachable {
        /// The address given (`--addr`).
        addr: String,
        /// Why, with its causes.
        reason: String,
    },
    /// A check found problems (already reported on stdout).
    #[error("{0}")]
    Failed(String),
    /// The config scanner could not read a path or an allowlist.
    #[error(transparent)]
    Scan(#[from] config_scan::Error),
    /// The command line is inconsistent in a way clap cannot see.
    #[error("{0}")]
    Usage(String),
    /// A secret reference did not parse or resolve (`exec`, `resolve`).
    #[error("{context}: {source}")]
    Refs {
        /// Which reference, and where it was written.
        context: String,
        /// Why.
        source: secret_refs::Error,
    },
    /// `exec` could not start the command.
    #[error("cannot run {}: {source}", program.display())]
    Spawn {
        /// The command.
        program: std::path::PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// `exec`'s command exited with this non-zero status (128+N for signal N); passed
    /// through silently.
    #[error("the command exited with status {0}")]
    ChildExit(u8),
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => 2,
            // As env(1) and timeout(1): 127 for a command not found, 126 for one not run.
            Error::Spawn { source, .. } if source.kind() == std::io::ErrorKind::NotFound => 127,
            Error::Spawn { .. } => 126,
            Error::ChildExit(code) => *code,
            _ => 1,
        }
    }

    /// An I/O error while doing `what`.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| Error::Io { what, source }
    }
}
