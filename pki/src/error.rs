//! The crate's one error type. No variant ever carries key material: key files are named by
//! path only, and rcgen's errors describe what failed, not the bytes.

use std::path::PathBuf;

/// Why a PKI operation failed; each message says what to do next.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file or directory failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done ("reading", "writing", ...).
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file that must not be replaced is already there.
    #[error("{} already exists; refusing to overwrite it ({hint})", path.display())]
    AlreadyExists {
        /// The file found.
        path: PathBuf,
        /// What to do instead.
        hint: &'static str,
    },
    /// There is no CA in the directory to sign with.
    #[error("no CA key at {}: create the PKI directory first (`vaultctl pki init`)", path.display())]
    NoCa {
        /// The missing CA key file.
        path: PathBuf,
    },
    /// A principal name breaks the character rules.
    #[error("invalid principal {shown:?}: {reason}")]
    InvalidPrincipal {
        /// The name, cut to 80 characters.
        shown: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// Neither a fingerprint nor a certificate file was given.
    #[error(
        "{shown:?} is neither a SHA-256 fingerprint (64 hex digits) nor a readable PEM \
         certificate file: pass the certificate's path (best: it revokes its key and serial), \
         the fingerprint `vaultctl pki issue` printed, or use --serial or --key-hash"
    )]
    InvalidFingerprint {
        /// The argument, cut to 80 characters.
        shown: String,
    },
    /// A `--serial` argument is not a certificate serial number.
    #[error(
        "{shown:?} is not a certificate serial number: give 1 to 64 hex digits (upper or lower \
         case, `:` between bytes and a leading 0x allowed), as `openssl x509 -serial` prints it"
    )]
    InvalidSerial {
        /// The argument, cut to 80 characters.
        shown: String,
    },
    /// A `--key-hash` argument is not a SHA-256 hash.
    #[error(
        "{shown:?} is not a key hash: give the SHA-256 of the certificate's \
         SubjectPublicKeyInfo as 64 hex digits (`openssl x509 -in CERT -pubkey -noout | \
         openssl pkey -pubin -outform der | sha256sum`)"
    )]
    InvalidKeyHash {
        /// The argument, cut to 80 characters.
        shown: String,
    },
    /// A line of the revocation list is not an entry.
    #[error(
        "{}:{line}: not a revocation entry ({shown:?}); write `spki-sha256:<64 hex>`, \
         `issuer-serial:<64 hex>:<serial hex>`, `cert-sha256:<64 hex>` or 64 hex digits, all \
         lower case and the serial without leading zeros, or a `#` comment; fix or delete that line",
        path.display()
    )]
    RevokedLine {
        /// The revocation list.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// The line, cut to 80 characters.
        shown: String,
    },
    /// The revocation list is larger than any real one.
    #[error(
        "{} is larger than {max} bytes: not a revocation list the daemon will read; check \
         what wrote it",
        path.display()
    )]
    RevokedTooLarge {
        /// The revocation list.
        path: PathBuf,
        /// The limit in bytes.
        max: u64,
    },
    /// A file or directory that decides whom the daemon trusts can be changed by other users.
    #[error(
        "{} is writable by group or others (mode {mode:04o}): whoever can write it can change \
         whom the daemon trusts or has revoked; run `chmod go-w {}`",
        path.display(),
        path.display()
    )]
    WritableByOthers {
        /// The file or directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A private file can be read or written by other users.
    #[error(
        "{} is readable or writable by group or others (mode {mode:04o}); run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    NotPrivate {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A certificate could not be parsed or names no principal.
    #[error("bad certificate{}: {reason}", from.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
    BadCertificate {
        /// The file it came from, if any.
        from: Option<PathBuf>,
        /// What is wrong with it.
        reason: String,
    },
    /// A key file could not be loaded (its contents are never shown).
    #[error("cannot load the private key {}: {reason}; restore it from backup or create a new PKI directory", path.display())]
    BadKey {
        /// The key file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// Generating or signing a key or certificate failed.
    #[error("generating {what} failed: {source}")]
    Generate {
        /// What was being made.
        what: &'static str,
        /// rcgen's error.
        source: rcgen::Error,
    },
    /// The host list for the server certificate is unusable.
    #[error("invalid server host {shown:?}: {reason}; pass DNS names or IP addresses")]
    InvalidHost {
        /// The host, cut to 80 characters.
        shown: String,
        /// Why.
        reason: String,
    },
}

/// At most 80 characters of untrusted input, for messages.
pub(crate) fn shown(s: &str) -> String {
    s.chars().take(80).collect()
}

/// An I/O error while doing `what` to `path`.
pub(crate) fn io(
    what: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io { what, path, source }
}
