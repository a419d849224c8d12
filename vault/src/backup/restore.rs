//! Restoring a backup into a new vault directory.

use std::fs::{OpenOptions, Permissions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{
    AUDIT_HEAD_FILE, BACKUP_FORMAT, MANIFEST_FILE, MAX_MANIFEST_LEN, Manifest, is_backup_file,
    sha256_hex,
};
use crate::audit::{AuditLog, AuditOptions, is_live, verified_head};
use crate::config::{parent_dir, sync_dir};
use crate::{Error, Kek, KekCheck, Vault};

/// The audit log a restored vault starts, in its directory (vaultd's default).
const AUDIT_LOG_FILE: &str = "audit.jsonl";

/// What [`restore`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    /// The restored vault's directory.
    pub dir: PathBuf,
    /// Its id.
    pub vault_id: String,
    /// Secrets in it (0 if it was locked when backed up: it opens locked).
    pub secrets: u64,
    /// The KEKs that opened their canary.
    pub keks_ok: Vec<String>,
    /// The KEKs that could not be reached, and why.
    pub keks_unreachable: Vec<(String, String)>,
    /// The new audit log, whose first record says it was restored.
    pub audit_log: PathBuf,
    /// Where the old audit log stood when the backup was made (its head), if it had one.
    pub audit_head_seq: Option<u64>,
}

/// Restores the backup in `backup` into `target`, which must not exist or be an empty
/// directory that no running daemon holds, opening it with `keks` (built from the backup's
/// `vault.json`, or given): each must open its canary in the copy (an unreachable one is
/// reported, not refused), and one at least must. The restored vault gets a new audit log
/// (`<target>/audit.jsonl`) whose first record says it was restored, from which vault and
/// backup, and where the old log stood. Nothing is written to `target` until all of that
/// succeeded: the vault is assembled beside it and renamed into place.
pub fn restore(backup: &Path, target: &Path, keks: Vec<Kek>) -> Result<RestoreReport, Error> {
    let manifest = read_manifest(backup)?;
    check_target(target)?;
    let parent = parent_dir(target);
    let staging = tempfile::Builder::new()
        .prefix(".vault-restore-")
        .permissions(Permissions::from_mode(0o700))
        .tempdir_in(parent)
        .map_err(Error::io(format!(
            "creating a directory in {}",
            parent.display()
        )))?;
    for file in &manifest.files {
        if file.name == AUDIT_HEAD_FILE {
            continue;
        }
        let bytes = std::fs::read(backup.join(&file.name)).map_err(Error::io(format!(
            "reading {}",
            backup.join(&file.name).display()
        )))?;
        write_new(&staging.path().join(&file.name), &bytes)?;
    }
    sync_dir(staging.path())?;
    let opened = open_copy(staging.path(), backup, &manifest, keks)?;
    sync_dir(staging.path())?;
    let staged = staging.keep();
    if let Err(e) = std::fs::rename(&staged, target) {
        let _ = std::fs::remove_dir_all(&staged);
        return Err(Error::io(format!(
            "moving the restored vault to {}",
            target.display()
        ))(e));
    }
    sync_dir(parent)?;
    Ok(RestoreReport {
        dir: target.to_path_buf(),
        audit_log: target.join(AUDIT_LOG_FILE),
        audit_head_seq: manifest.audit_head_seq,
        vault_id: manifest.vault_id,
        ..opened
    })
}

/// Opens the copy in `dir` with `keks`, checks each KEK's canary and the backup's audit head,
/// and starts the copy's new audit log.
fn open_copy(
    dir: &Path,
    backup: &Path,
    manifest: &Manifest,
    keks: Vec<Kek>,
) -> Result<RestoreReport, Error> {
    let vault = Vault::open(dir, None, keks.clone())?;
    if vault.id != manifest.vault_id {
        return Err(Error::Backup(format!(
            "the backup's vault.json is of vault {}, its manifest says {}: the backup was assembled from two vaults",
            vault.id, manifest.vault_id
        )));
    }
    let mut keks_ok = Vec::new();
    let mut keks_unreachable = Vec::new();
    for kek in &keks {
        let id = kek.provider.id().to_string();
        match vault.check_kek(kek) {
            KekCheck::Ok => keks_ok.push(id),
            KekCheck::Unreachable(why) => keks_unreachable.push((id, why)),
            KekCheck::Failed(why) => {
                return Err(Error::Backup(format!(
                    "KEK {} does not open the restored vault ({why}): nothing was restored",
                    kek.uri
                )));
            }
        }
    }
    if keks_ok.is_empty() {
        return Err(Error::Backup(
            "no KEK opened the restored vault's canaries: nothing was restored; make one of its KEKs available".into(),
        ));
    }
    let key = vault.audit_key()?;
    let head = if manifest.files.iter().any(|f| f.name == AUDIT_HEAD_FILE) {
        let head = verified_head(&backup.join(AUDIT_LOG_FILE), &key).map_err(|e| {
            Error::Backup(format!(
                "the backup's audit head does not verify under this vault's audit key ({e}): nothing was restored"
            ))
        })?;
        head.map(|(seq, mac)| format!("the backup's audit head: seq {seq} with mac {mac}"))
    } else {
        None
    };
    let mut options = AuditOptions::new(Arc::new(vault.audit_anchor()?), &vault.id);
    options.new_log = true;
    options.new_log_note = Some(format!(
        "the vault was restored from a backup of vault {} made at {} (Unix ms); {}; the records up to there stay in the original vault's log",
        manifest.vault_id,
        manifest.created_at_ms,
        head.unwrap_or_else(|| "the backup holds no audit head".into())
    ));
    let log = AuditLog::open(&dir.join(AUDIT_LOG_FILE), key, options)?;
    log.close();
    drop(log);
    let secrets = if vault.is_locked() {
        0
    } else {
        vault.status()?.secrets
    };
    Ok(RestoreReport {
        dir: dir.to_path_buf(),
        vault_id: vault.id.clone(),
        secrets,
        keks_ok,
        keks_unreachable,
        audit_log: dir.join(AUDIT_LOG_FILE),
        audit_head_seq: None,
    })
}

/// Reads the manifest of the backup in `backup` and checks every file it lists against it.
fn read_manifest(backup: &Path) -> Result<Manifest, Error> {
    let path = backup.join(MANIFEST_FILE);
    let bad = |why: String| {
        Error::Backup(format!(
            "{} is not a usable backup: {why}",
            backup.display()
        ))
    };
    let bytes = match std::fs::metadata(&path) {
        Ok(meta) if meta.len() > MAX_MANIFEST_LEN => {
            return Err(bad(format!("{MANIFEST_FILE} is {} bytes long", meta.len())));
        }
        Ok(_) => std::fs::read(&path).map_err(Error::io(format!("reading {}", path.display())))?,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(bad(format!(
                "it has no {MANIFEST_FILE} (written last: the backup did not finish)"
            )));
        }
        Err(e) => return Err(Error::io(format!("reading {}", path.display()))(e)),
    };
    let manifest: Manifest =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("{MANIFEST_FILE}: {e}")))?;
    if manifest.format != BACKUP_FORMAT {
        return Err(bad(format!(
            "its format is {:?}; this build reads {BACKUP_FORMAT}",
            manifest.format
        )));
    }
    for required in [crate::CONFIG_FILE, crate::store::STORE_FILE] {
        if !manifest.files.iter().any(|f| f.name == required) {
            return Err(bad(format!("it lists no {required}")));
        }
    }
    for file in &manifest.files {
        if !is_backup_file(&file.name) {
            return Err(bad(format!(
                "it lists {:?}, which no backup holds",
                file.name
            )));
        }
        let path = backup.join(&file.name);
        let bytes =
            std::fs::read(&path).map_err(Error::io(format!("reading {}", path.display())))?;
        if u64::try_from(bytes.len()).ok() != Some(file.bytes) || sha256_hex(&bytes) != file.sha256
        {
            return Err(bad(format!(
                "{} is not the file the backup wrote (its length or SHA-256 differs from {MANIFEST_FILE})",
                file.name
            )));
        }
    }
    Ok(manifest)
}

/// Refuses a `target` that a running daemon holds, or that is anything but absent or an empty
/// directory.
fn check_target(target: &Path) -> Result<(), Error> {
    if is_live(&target.join(AUDIT_LOG_FILE))? {
        return Err(Error::Backup(format!(
            "{} is a live vault: a running vaultd holds its audit log. A restore never replaces a vault: restore into a new directory, then stop vaultd and point it there",
            target.display()
        )));
    }
    match std::fs::read_dir(target) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(Error::Backup(format!(
                    "{} is not empty: a restore never overwrites; restore into a new (or empty) directory",
                    target.display()
                )));
            }
            Ok(())
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("reading {}", target.display()))(e)),
    }
}

/// Writes `bytes` to a new file at `path` (0600), synced.
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(Error::io(format!("creating {}", path.display())))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(Error::io(format!("writing {}", path.display())))
}
