//! The crate's one error type. Messages name references, paths and programs, never a
//! resolved value, and say what to do next.

use std::path::PathBuf;

/// Why a reference did not parse or did not resolve.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The text is not a valid reference. `reference` is empty when the text did not even
    /// start with a known scheme (it may be a pasted value, so it is not repeated).
    #[error("invalid secret reference{}: {reason}", if reference.is_empty() { String::new() } else { format!(" {reference:?}") })]
    Parse {
        /// The reference as given (shortened), or empty.
        reference: String,
        /// What is wrong and what is allowed.
        reason: String,
    },
    /// The resolver's policy itself is unusable (a relative trusted directory, say).
    #[error("invalid secret reference policy: {0}")]
    Policy(String),
    /// An `env://` name that the policy does not allow.
    #[error(
        "env://{name} is not on the environment allowlist: allow it with --allow-env {name} (or a prefix such as --allow-env 'PREFIX_*')"
    )]
    EnvNotAllowed {
        /// The variable name.
        name: String,
    },
    /// An allowed `env://` variable that is not set.
    #[error("env://{name}: the variable is not set in vaultctl's environment")]
    EnvUnset {
        /// The variable name.
        name: String,
    },
    /// A `file://` path outside every trusted directory.
    #[error(
        "{reference}: the file is outside the trusted directories ({trusted}); add its directory with --trusted-dir DIR"
    )]
    FileNotTrusted {
        /// The reference.
        reference: String,
        /// The trusted directories, or "none configured".
        trusted: String,
    },
    /// A component of a `file://` path is a symbolic link.
    #[error("{reference}: {} is a symbolic link, which file references refuse; name the real path instead", component.display())]
    FileSymlink {
        /// The reference.
        reference: String,
        /// The path component that is a link.
        component: PathBuf,
    },
    /// The referenced file is unsafe to trust (owner, mode, kind) or too large.
    #[error("{reference}: {reason}")]
    FileRejected {
        /// The reference.
        reference: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A program that the exec policy does not allow.
    #[error("{reference}: {} is not an allowed program; allow it with --allow-exec {}", program.display(), program.display())]
    ExecNotAllowed {
        /// The reference.
        reference: String,
        /// The program's path.
        program: PathBuf,
    },
    /// The program ran longer than the timeout and was killed.
    #[error(
        "{reference}: the program did not finish within {} ms and was killed; raise --exec-timeout if it is slow",
        timeout_ms
    )]
    ExecTimeout {
        /// The reference.
        reference: String,
        /// The timeout in milliseconds.
        timeout_ms: u128,
    },
    /// The program failed: non-zero exit, killed by a signal, or too much output.
    #[error("{reference}: {reason}")]
    ExecFailed {
        /// The reference.
        reference: String,
        /// What happened (never the program's output).
        reason: String,
    },
    /// A `vault://` reference with no vault to read it from.
    #[error("{reference}: no vault is open to resolve it; pass --vault DIR (or --addr for vaultd)")]
    NoVault {
        /// The reference.
        reference: String,
    },
    /// The vault refused or failed to read the secret.
    #[error("{reference}: {source}")]
    Vault {
        /// The reference.
        reference: String,
        /// The vault's (or daemon's) error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Reading a file or running a program failed at the OS level.
    #[error("{reference}: {what}: {source}")]
    Io {
        /// The reference.
        reference: String,
        /// What was being done.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Secret memory could not be allocated.
    #[error(transparent)]
    Memory(#[from] envelope::Error),
}
