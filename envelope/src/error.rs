//! The envelope crate's error type.

/// Everything that can go wrong sealing, opening or parsing an envelope, or handling secret
/// memory. Messages never contain secret bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes end before the envelope does.
    #[error(
        "envelope is truncated: {field} is cut short; the stored or transmitted copy is incomplete"
    )]
    Truncated {
        /// The field being read when the input ended.
        field: &'static str,
    },
    /// The bytes do not start with the envelope magic.
    #[error("not a vault envelope (the magic bytes are wrong)")]
    BadMagic,
    /// The format version byte names a version this build cannot read.
    #[error("envelope format version {0} is not supported by this build; upgrade vault to open it")]
    UnsupportedVersion(u8),
    /// The AEAD algorithm byte names an unknown algorithm.
    #[error("envelope AEAD algorithm {0} is not supported by this build")]
    UnsupportedAlgorithm(u8),
    /// Reserved flag bits are set.
    #[error("envelope flags {0:#04x} are not supported by this build")]
    UnsupportedFlags(u8),
    /// A length field exceeds its hard bound.
    #[error("envelope field {field} is {len} bytes long, over the limit of {max}")]
    FieldTooLong {
        /// Which field.
        field: &'static str,
        /// Its declared length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// A field holds a value outside its domain.
    #[error("envelope field {field} is invalid: {reason}")]
    Malformed {
        /// Which field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Bytes follow the end of the envelope.
    #[error("{0} unexpected bytes follow the envelope; it was corrupted or concatenated")]
    TrailingBytes(usize),
    /// The JSON export form could not be read.
    #[error("JSON envelope is invalid: {0}")]
    Json(String),
    /// None of the configured KEKs is one the envelope was wrapped for.
    #[error(
        "no configured KEK can open this envelope; it was wrapped for {wanted}. Configure one of those KEKs"
    )]
    NoUsableKek {
        /// The KEK ids named by the envelope's stanzas.
        wanted: String,
    },
    /// A KEK recognised its stanza but authentication of the wrapped key failed.
    #[error(
        "KEK {kek} rejected its wrapped key: the stanza was tampered with, or belongs to another secret"
    )]
    StanzaRejected {
        /// The KEK's id.
        kek: String,
    },
    /// A KEK provider failed (device error, unreachable hardware...).
    #[error("KEK {kek} failed: {reason}")]
    Kek {
        /// The KEK's id.
        kek: String,
        /// What failed and what to check.
        reason: String,
    },
    /// The payload failed authentication.
    #[error(
        "envelope failed authentication: it was tampered with, or it belongs to another scope, key or version"
    )]
    Tampered,
    /// Sealing needs at least one KEK.
    #[error("no KEK to seal with; configure at least one KEK")]
    NoKek,
    /// More KEKs than an envelope can carry.
    #[error("{count} KEKs configured, but an envelope carries at most {max}")]
    TooManyKeks {
        /// Configured KEKs.
        count: usize,
        /// The bound.
        max: usize,
    },
    /// A secret exceeds the size bound.
    #[error("secret is larger than the limit of {max} bytes")]
    SecretTooLarge {
        /// The bound.
        max: usize,
    },
    /// A key was not 32 bytes long.
    #[error("a key must be 32 bytes long, got {len}")]
    KeyLength {
        /// The length given.
        len: usize,
    },
    /// A KEK id or context field is outside its documented bounds.
    #[error("{field} is invalid: {reason}")]
    InvalidName {
        /// Which name.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Locking secret memory failed and locking is required.
    #[error(
        "could not lock secret memory (errno {errno}); raise RLIMIT_MEMLOCK (ulimit -l) or grant CAP_IPC_LOCK"
    )]
    MemoryLock {
        /// The errno of mlock.
        errno: i32,
    },
    /// No memory could be mapped for secrets.
    #[error("out of memory for secrets")]
    OutOfMemory,
    /// The operating system's random generator failed.
    #[error("the operating system random generator failed")]
    Random,
    /// Disabling core dumps failed.
    #[error("could not disable core dumps (errno {errno})")]
    Harden {
        /// The errno of the failing call.
        errno: i32,
    },
    /// Reading secret input failed.
    #[error("reading the secret failed: {0}")]
    Read(std::io::ErrorKind),
    /// An invariant of this crate does not hold (a bug): the operation was refused rather
    /// than carried on with a made-up value.
    #[error("internal error: {0}; this is a bug in the vault, please report it")]
    Internal(&'static str),
}

impl Error {
    /// A provider failure for KEK `kek`, with a reason that says what to check.
    pub fn kek(kek: &crate::KekId, reason: impl Into<String>) -> Self {
        Self::Kek {
            kek: kek.to_string(),
            reason: reason.into(),
        }
    }
}
