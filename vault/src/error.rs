//! The vault crate's error type.

use std::path::PathBuf;

/// Everything a vault operation can fail with. Messages name scopes and keys but never
/// secret values, and say what to do next.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No secret (or no such version of it) under this scope and key.
    #[error("secret not found: {scope} {key}{}", version.map(|v| format!(" version {v}")).unwrap_or_default())]
    NotFound {
        /// The scope asked for.
        scope: String,
        /// The key asked for.
        key: String,
        /// The version asked for, if one was.
        version: Option<u64>,
    },
    /// A scope string is not one of the documented forms.
    #[error("invalid scope {scope:?}: {reason}")]
    InvalidScope {
        /// The scope as given (control characters escaped by `{:?}`).
        scope: String,
        /// What is wrong and what is allowed.
        reason: String,
    },
    /// A key name is outside the documented character set or length.
    #[error("invalid key name {key:?}: {reason}")]
    InvalidKeyName {
        /// The key as given, shortened if very long.
        key: String,
        /// What is wrong and what is allowed.
        reason: String,
    },
    /// A compare-and-set write found the secret at another version than the caller expected
    /// (0: no version): someone else wrote or deleted it since the caller read it.
    #[error(
        "{scope} {key} is at version {current}{}, not {expected} as the write expected: it changed since it was read; read it again and retry expecting version {current}",
        if *current == 0 { " (it has none)" } else { "" }
    )]
    VersionMismatch {
        /// The scope written.
        scope: String,
        /// The key written.
        key: String,
        /// The version the caller expected.
        expected: u64,
        /// The current version (0: none, never written or deleted).
        current: u64,
    },
    /// A listing's page token is not one the vault issued.
    #[error(
        "the page token is not one this vault issued: pass the next_page_token of the previous page unchanged, or none to start from the first page"
    )]
    InvalidPageToken,
    /// A secret value is larger than the vault accepts.
    #[error("secret value is {len} bytes, over the limit of {max} bytes")]
    ValueTooLarge {
        /// The value's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The directory holds no vault.
    #[error("no vault at {}: create one with `vaultctl --vault {} init`", dir.display(), dir.display())]
    NoVault {
        /// The directory looked at.
        dir: PathBuf,
    },
    /// `init` on a directory that already holds a vault.
    #[error("a vault already exists at {}; open it, or pick another directory", dir.display())]
    AlreadyInitialised {
        /// The directory.
        dir: PathBuf,
    },
    /// The vault was created with another store kind than the one asked for.
    #[error("the vault at {} uses the {pinned} store, not {wanted}; it never switches stores silently", dir.display())]
    StoreKindMismatch {
        /// The directory.
        dir: PathBuf,
        /// The kind pinned at init.
        pinned: String,
        /// The kind asked for.
        wanted: String,
    },
    /// A store kind name that does not exist.
    #[error("unknown store kind {0:?}: use sqlite or memory")]
    UnknownStoreKind(String),
    /// A wrap mode name that does not exist.
    #[error("unknown wrap mode {0:?}: use direct or tiered")]
    UnknownWrapMode(String),
    /// A KEK given to open the vault is not among the KEKs pinned at init.
    #[error(
        "KEK {id} is not one of this vault's KEKs (pinned: {pinned}); pass one of those with --kek"
    )]
    KekNotPinned {
        /// The KEK offered.
        id: String,
        /// The pinned KEK ids.
        pinned: String,
    },
    /// None of the vault's KEKs could be opened; each one's reason.
    #[error("none of the vault's KEKs could be opened: {reasons}")]
    NoKekOpened {
        /// `URI: why` for each KEK.
        reasons: String,
    },
    /// No KEK was given.
    #[error("no KEK given: a vault needs at least one KEK")]
    NoKek,
    /// A call run where no KEK device may be used wanted one (see `Vault::without_devices`,
    /// which discards this answer and says so).
    #[error("this call needs a KEK device, and was run where none may be used")]
    DeviceRuledOut,
    /// The vault is locked: keys are zeroized and nothing opens until `unlock`.
    #[error("the vault is locked; run `vaultctl unlock` (with its KEKs) first")]
    Locked,
    /// A wrap needs every root KEK, and some are not available.
    #[error(
        "cannot wrap a new key while root KEK(s) {missing} are not available: every root KEK must wrap it, or it could not recover it later. Make them available, or remove them with `vaultctl kek remove`"
    )]
    IncompleteRoot {
        /// The missing KEK ids.
        missing: String,
    },
    /// The KEK is already pinned.
    #[error("KEK {id} is already one of this vault's KEKs")]
    KekExists {
        /// Its id.
        id: String,
    },
    /// No pinned KEK has this id.
    #[error("no KEK {id} in this vault (its KEKs: {pinned}); `vaultctl kek list` shows them")]
    KekNotFound {
        /// The id asked for.
        id: String,
        /// The pinned ids.
        pinned: String,
    },
    /// Removing the KEK would leave no working KEK.
    #[error(
        "refusing to remove {id}: no other KEK of this vault is working now, so nothing could open it. Add or repair another KEK first"
    )]
    LastKek {
        /// The KEK asked to remove.
        id: String,
    },
    /// A KEK or epoch still protects stored secrets.
    #[error("{count} stored secret versions still depend on {what}; run `vaultctl rewrap` first")]
    StillInUse {
        /// How many versions.
        count: u64,
        /// The KEK or epoch.
        what: String,
    },
    /// A request the vault's configuration does not allow.
    #[error("{0}")]
    Unsupported(String),
    /// A threshold KEK could not be built.
    #[error(transparent)]
    Kek(#[from] kek_providers::Error),
    /// The vault's marker file is unreadable or inconsistent.
    #[error("vault configuration {} is damaged: {reason}; restore it from a backup", path.display())]
    Marker {
        /// The marker file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A file of the vault directory was changed by someone without the vault's keys (its
    /// MAC or tag does not verify); nothing of it was adopted.
    #[error(
        "{} was tampered with (changed by someone without this vault's keys): {what}. Nothing of it was used. Restore it from a backup, and check who can write the vault directory",
        path.display()
    )]
    Tampered {
        /// The file (or store) that does not verify.
        path: PathBuf,
        /// What was added or changed, and where.
        what: String,
    },
    /// A vault made by an older version, without an integrity key: `vaultctl upgrade` adds one.
    #[error(
        "the vault configuration {} is format 2, made by an older version without an integrity key; run `vaultctl upgrade` (with its KEKs) once to authenticate it as it is now",
        path.display()
    )]
    FormatUpgrade {
        /// The configuration file.
        path: PathBuf,
    },
    /// The store is in a format this build does not know.
    #[error("store {} has format version {found}; this build reads up to {supported}: upgrade vault", path.display())]
    StoreFormat {
        /// The store file.
        path: PathBuf,
        /// Its format version.
        found: i64,
        /// The newest version this build reads.
        supported: i64,
    },
    /// A PostgreSQL vault's `store.json` (or what it names) is missing or wrong.
    #[error("{}: {reason}", path.display())]
    StoreLocation {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The store failed (SQLite error, busy beyond the timeout, disk full...).
    #[error("store failed while {what}: {reason}")]
    Store {
        /// What the store was doing.
        what: &'static str,
        /// The store's error text (never holds values: they are bound parameters).
        reason: String,
    },
    /// Sealing or opening an envelope failed.
    #[error(transparent)]
    Envelope(#[from] envelope::Error),
    /// A file operation on the vault directory failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, with the path.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The audit log does not verify: `line` (1-based) or the head checkpoint is wrong.
    #[error("audit log {}{}: {defect}", path.display(), line.map(|l| format!(" line {l}")).unwrap_or_default())]
    AuditDamaged {
        /// The log file.
        path: PathBuf,
        /// The first bad line, if the problem is on one.
        line: Option<u64>,
        /// What is wrong.
        defect: crate::audit::AuditDefect,
    },
    /// Opening an audit log that does not verify, to append to it, is refused.
    #[error(
        "refusing to append to audit log {p}: {}{defect}. Run `vaultctl audit verify --log {p}` to see the problem, then move {p} and {p}.head aside (keep them as evidence) and start vaultd with --new-audit-log, which starts a new log and records that it did",
        line.map(|l| format!("line {l}: ")).unwrap_or_default(), p = path.display()
    )]
    AuditRefused {
        /// The log file.
        path: PathBuf,
        /// The first bad line, if the problem is on one.
        line: Option<u64>,
        /// What is wrong.
        defect: crate::audit::AuditDefect,
    },
    /// The audit log is gone, but the vault's anchor says it held records.
    #[error(
        "audit log {p} is missing, but the vault's anchor (in vault.json) says it held {anchor_seq} records: it was deleted, or another --audit-log is given. Restore it (and {p}.head) from a backup, or start vaultd with --new-audit-log to begin a new log whose first record says so",
        p = path.display()
    )]
    AuditMissing {
        /// The log file.
        path: PathBuf,
        /// The seq the anchor names.
        anchor_seq: u64,
    },
    /// Another process has the audit log open for appending.
    #[error("audit log {} is in use by another process (a running vaultd?); one writer at a time", path.display())]
    AuditInUse {
        /// The log file.
        path: PathBuf,
    },
    /// A write to the audit log failed earlier; it takes no more records until reopened.
    #[error("audit log {} stopped taking records after a failed write ({reason}); fix the cause and restart, which verifies the log again", path.display())]
    AuditFailed {
        /// The log file.
        path: PathBuf,
        /// The failure.
        reason: String,
    },
    /// Rotating the audit log failed before the new segment took over; the log goes on in its
    /// current segment, with a record saying so.
    #[error("rotating audit log {} failed: {reason}; the log goes on in its current segment", path.display())]
    AuditRotation {
        /// The log file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A backup could not be made, or does not restore.
    #[error("{0}")]
    Backup(String),
}

impl Error {
    /// An I/O error while doing `what`.
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| Error::Io { what, source }
    }

    /// A PostgreSQL error while doing `what`: the server's message and SQLSTATE code when it
    /// sent one (values are bound parameters, so they are never in it), else the client's.
    pub(crate) fn pg(what: &'static str) -> impl Fn(tokio_postgres::Error) -> Self + Copy {
        move |e| Error::Store {
            what,
            reason: match e.as_db_error() {
                Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
                None => std::error::Error::source(&e)
                    .map_or_else(|| e.to_string(), |source| format!("{e}: {source}")),
            },
        }
    }

    /// A store error while doing `what`.
    pub(crate) fn store(what: &'static str) -> impl FnOnce(rusqlite::Error) -> Self {
        move |e| Error::Store {
            what,
            reason: e.to_string(),
        }
    }
}
