//! Backups of a vault directory, made while a daemon serves it, and restoring them.
//!
//! A backup is a new directory holding:
//! - `vault.json`: the configuration (pinned KEKs, epochs, the audit anchor), as it was
//!   during the whole copy of the store;
//! - `secrets.db`: a copy of the SQLite store made with SQLite's online backup API (one read
//!   transaction: a consistent snapshot, while writers go on), in rollback-journal mode so
//!   that the one file holds everything;
//! - `kek-passphrase-*.json`: the parameters (salt) of the vault's passphrase KEKs;
//! - `audit.jsonl.head`: the audit log's head checkpoint (where the log stood), MACed;
//! - `backup.json`, written last (a backup without it is incomplete): the format
//!   (`vault-backup/1`), the vault id, when it was made, and each file's length and SHA-256.
//!
//! Not in it: the KEKs themselves (key files, passphrases, devices: keep them apart, as
//! always), the audit log's records (its segments are archived as they are closed; see
//! `vault::audit`) and the daemon's TLS directory (private keys in the clear; back it up
//! apart, or issue new certificates).
//!
//! [`restore`] never overwrites: it refuses a directory a running daemon holds and any
//! directory that is not empty, checks every file against the manifest, opens the copy with
//! the KEKs it is given (every one must open its canary), starts a new audit log whose first
//! record says it was restored and where the old log stood, and only then moves the copy in
//! place (one rename).

mod copy;
mod restore;

use serde::{Deserialize, Serialize};

pub use copy::{BackupReport, backup};
pub use restore::{RestoreReport, restore};

/// The manifest's file name.
pub const MANIFEST_FILE: &str = "backup.json";
/// The manifest's `format`.
pub const BACKUP_FORMAT: &str = "vault-backup/1";
/// The audit head's file name in a backup: the head of a log named `audit.jsonl`.
const AUDIT_HEAD_FILE: &str = "audit.jsonl.head";
/// A manifest is a few KiB.
const MAX_MANIFEST_LEN: u64 = 1 << 20;

/// `backup.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`BACKUP_FORMAT`].
    pub format: String,
    /// The id of the vault backed up.
    pub vault_id: String,
    /// When the backup was made (Unix milliseconds).
    pub created_at_ms: i64,
    /// Every file of the backup but the manifest.
    pub files: Vec<BackupFile>,
    /// The seq the audit log's head named when the backup was made, if the vault had a log.
    pub audit_head_seq: Option<u64>,
}

/// One file of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupFile {
    /// Its name in the backup (and in the vault directory).
    pub name: String,
    /// Its length.
    pub bytes: u64,
    /// SHA-256 of its contents (lowercase hex).
    pub sha256: String,
}

/// Whether `name` is a file a backup may hold (and a restore may write): the known names
/// only, never a path.
fn is_backup_file(name: &str) -> bool {
    matches!(
        name,
        crate::CONFIG_FILE | crate::store::STORE_FILE | AUDIT_HEAD_FILE
    ) || is_passphrase_params(name)
}

/// `kek-passphrase-<label>.json`, a passphrase KEK's parameter file.
fn is_passphrase_params(name: &str) -> bool {
    name.strip_prefix("kek-passphrase-")
        .and_then(|rest| rest.strip_suffix(".json"))
        .is_some_and(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
                && !label.starts_with('.')
        })
}

/// SHA-256 of `bytes`, lowercase hex.
fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_names_are_backup_files() {
        for good in [
            "vault.json",
            "secrets.db",
            "audit.jsonl.head",
            "kek-passphrase-recovery.json",
        ] {
            assert!(is_backup_file(good), "{good}");
        }
        for bad in [
            "../vault.json",
            "tls",
            "kek-passphrase-.json",
            "kek-passphrase-../x.json",
            "kek-passphrase-a/b.json",
            "backup.json",
            "secrets.db-wal",
        ] {
            assert!(!is_backup_file(bad), "{bad}");
        }
    }
}
