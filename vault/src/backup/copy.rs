//! Making a backup of a vault directory while a daemon serves it.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::{
    AUDIT_HEAD_FILE, BACKUP_FORMAT, BackupFile, MANIFEST_FILE, Manifest, is_passphrase_params,
    sha256_hex,
};
use crate::config::{ConfigVersion, VaultConfig, lock_vault, sync_dir, synced_temp_file};
use crate::store::{STORE_FILE, now_ms};
use crate::{CONFIG_FILE, Error};

/// Copies of the store tried while the configuration stays unchanged, before the copy is
/// made holding the vault lock (which holds up configuration changes: epoch leases, the
/// audit anchor) for its length.
const ATTEMPTS_WITHOUT_LOCK: u32 = 5;
/// How long a copy waits for a lock SQLite reports busy, in all.
const BUSY_WAIT: Duration = Duration::from_secs(10);
/// A head file is a few hundred bytes.
const MAX_HEAD_LEN: u64 = 4096;

/// What [`backup`] made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    /// The backup directory.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// Copies of the store made (more than one when the configuration changed during one).
    pub attempts: u32,
}

/// Backs up the vault in `vault_dir` (and the head of its audit log at `audit_log`) into
/// `out`, a new directory (or an empty one), made 0700. Safe while a daemon serves the vault
/// and writes to it; see the module docs for what the backup holds.
///
/// Why the copy is consistent: a secret in the store needs its KEKs and (tiered mode) its
/// epoch's key in `vault.json`, and those are written to `vault.json` before any secret is
/// wrapped under them, and removed only once no stored secret needs them. `vault.json` is
/// never changed in place, only replaced by a rename, so the version read here is held open
/// while SQLite copies the store in one read transaction (a snapshot of one instant); if the
/// path still names that same file afterwards, no configuration change happened during the
/// copy, so the snapshot's secrets were written under (a prefix of) what this configuration
/// holds. If it changed, the store is copied again; after a few tries, with the vault lock
/// held, which no configuration change passes.
pub fn backup(vault_dir: &Path, audit_log: &Path, out: &Path) -> Result<BackupReport, Error> {
    let config = VaultConfig::read(vault_dir)?;
    if config.store == "postgres" {
        return Err(Error::Backup(format!(
            "the vault at {} keeps its secrets in PostgreSQL: back up the database with its own tools (pg_dump, or continuous archiving) together with a copy of vault.json and store.json",
            vault_dir.display()
        )));
    }
    if config.store != "sqlite" {
        return Err(Error::Backup(format!(
            "the vault at {} keeps its secrets in the {} store, not on disk: there is nothing to back up",
            vault_dir.display(),
            config.store
        )));
    }
    create_out(out)?;
    let store = out.join(STORE_FILE);
    let (config_bytes, attempts) = copy_consistent(vault_dir, &store)?;
    let config = VaultConfig::from_bytes(&vault_dir.join(CONFIG_FILE), &config_bytes)?;
    let mut files = vec![
        write_file(out, CONFIG_FILE, &config_bytes)?,
        entry_of(&store, STORE_FILE)?,
    ];
    // The audit head is read after the store: every state change in the copy was recorded
    // (started) before it took effect, so the head names a record at or after them (within
    // the head's own interval).
    let head = read_small(&crate::audit::head_path(audit_log), MAX_HEAD_LEN)?;
    let audit_head_seq = match &head {
        Some(bytes) => {
            files.push(write_file(out, AUDIT_HEAD_FILE, bytes)?);
            serde_json::from_slice::<serde_json::Value>(bytes)
                .ok()
                .and_then(|v| v.get("seq").and_then(serde_json::Value::as_u64))
        }
        None => None,
    };
    // A passphrase KEK's parameters are written before it is pinned, and never replaced.
    for name in passphrase_params(vault_dir)? {
        let bytes = std::fs::read(vault_dir.join(&name)).map_err(Error::io(format!(
            "reading {}",
            vault_dir.join(&name).display()
        )))?;
        files.push(write_file(out, &name, &bytes)?);
    }
    let manifest = Manifest {
        format: BACKUP_FORMAT.to_owned(),
        vault_id: config.id,
        created_at_ms: now_ms(),
        files,
        audit_head_seq,
    };
    let text = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| Error::Backup(format!("writing the manifest: {e}")))?;
    synced_temp_file(out, &text)?
        .persist(out.join(MANIFEST_FILE))
        .map_err(|e| {
            Error::io(format!("writing {}", out.join(MANIFEST_FILE).display()))(e.error)
        })?;
    sync_dir(out)?;
    Ok(BackupReport {
        dir: out.to_path_buf(),
        manifest,
        attempts,
    })
}

/// Copies the store of `dir` to `store` while `vault.json` stays one version; that version's
/// bytes, and the copies made.
fn copy_consistent(dir: &Path, store: &Path) -> Result<(Vec<u8>, u32), Error> {
    let source = dir.join(STORE_FILE);
    for attempt in 1..=ATTEMPTS_WITHOUT_LOCK {
        let version = ConfigVersion::current(dir)?;
        let bytes = version.bytes()?;
        copy_store(&source, store)?;
        if version.is_current(dir)? {
            return Ok((bytes, attempt));
        }
        log::info!("vault.json changed while the store was copied: copying it again");
        remove_copy(store)?;
    }
    let _lock = lock_vault(dir)?;
    let bytes = ConfigVersion::current(dir)?.bytes()?;
    copy_store(&source, store)?;
    Ok((bytes, ATTEMPTS_WITHOUT_LOCK + 1))
}

/// Copies the SQLite database at `source` to a new file `target` (0600) with SQLite's online
/// backup API, in one step: one read transaction, so one consistent snapshot.
fn copy_store(source: &Path, target: &Path) -> Result<(), Error> {
    if !source.exists() {
        return Err(Error::Backup(format!(
            "{} is missing: the vault's store is gone",
            source.display()
        )));
    }
    let src = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(Error::store("opening the store to back it up"))?;
    src.busy_timeout(BUSY_WAIT)
        .map_err(Error::store("setting the busy timeout"))?;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(target)
        .map_err(Error::io(format!("creating {}", target.display())))?;
    let mut dst = Connection::open(target).map_err(Error::store("opening the backup's store"))?;
    {
        let copy = Backup::new(&src, &mut dst).map_err(Error::store("starting the copy"))?;
        let started = std::time::Instant::now();
        loop {
            match copy.step(-1).map_err(Error::store("copying the store"))? {
                StepResult::Done => break,
                StepResult::More => {}
                StepResult::Busy | StepResult::Locked if started.elapsed() < BUSY_WAIT => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => {
                    return Err(Error::Backup(format!(
                        "{} stayed locked for {} s: try again",
                        source.display(),
                        BUSY_WAIT.as_secs()
                    )));
                }
            }
        }
    }
    drop(src);
    // One self-contained file: no -wal beside it.
    dst.pragma_update(None, "journal_mode", "DELETE")
        .map_err(Error::store("setting the copy's journal mode"))?;
    let check: String = dst
        .query_row("PRAGMA quick_check", [], |row| row.get(0))
        .map_err(Error::store("checking the copy"))?;
    if check != "ok" {
        return Err(Error::Backup(format!(
            "the copy of the store does not pass SQLite's check: {check}"
        )));
    }
    drop(dst);
    File::open(target)
        .and_then(|f| f.sync_all())
        .map_err(Error::io(format!("syncing {}", target.display())))
}

fn remove_copy(store: &Path) -> Result<(), Error> {
    for suffix in ["", "-journal", "-wal", "-shm"] {
        let path = PathBuf::from(format!("{}{suffix}", store.display()));
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("removing {}", path.display()))(e)),
        }
    }
    Ok(())
}

/// Makes `out` (0700), or takes it if it is an empty directory.
fn create_out(out: &Path) -> Result<(), Error> {
    match DirBuilder::new().mode(0o700).create(out) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            let mut entries =
                std::fs::read_dir(out).map_err(Error::io(format!("reading {}", out.display())))?;
            if entries.next().is_some() {
                return Err(Error::Backup(format!(
                    "{} is not empty: a backup goes into a new (or empty) directory",
                    out.display()
                )));
            }
            Ok(())
        }
        Err(e) => Err(Error::io(format!("creating {}", out.display()))(e)),
    }
}

/// Writes `bytes` to `dir/name` (0600, synced); its manifest entry.
fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<BackupFile, Error> {
    let path = dir.join(name);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(Error::io(format!("creating {}", path.display())))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(Error::io(format!("writing {}", path.display())))?;
    Ok(BackupFile {
        name: name.to_owned(),
        bytes: u64::try_from(bytes.len()).unwrap_or(u64::MAX),
        sha256: sha256_hex(bytes),
    })
}

/// The manifest entry of the file at `path`.
fn entry_of(path: &Path, name: &str) -> Result<BackupFile, Error> {
    let bytes = std::fs::read(path).map_err(Error::io(format!("reading {}", path.display())))?;
    Ok(BackupFile {
        name: name.to_owned(),
        bytes: u64::try_from(bytes.len()).unwrap_or(u64::MAX),
        sha256: sha256_hex(&bytes),
    })
}

/// The contents of `path` if it exists, refused above `max` bytes.
fn read_small(path: &Path, max: u64) -> Result<Option<Vec<u8>>, Error> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.len() > max => Err(Error::Backup(format!(
            "{} is {} bytes long: it is not an audit head",
            path.display(),
            meta.len()
        ))),
        Ok(_) => std::fs::read(path)
            .map(Some)
            .map_err(Error::io(format!("reading {}", path.display()))),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("reading {}", path.display()))(e)),
    }
}

/// The passphrase KEK parameter files in `dir`.
fn passphrase_params(dir: &Path) -> Result<Vec<String>, Error> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(Error::io(format!("listing {}", dir.display())))? {
        let entry = entry.map_err(Error::io(format!("listing {}", dir.display())))?;
        if let Some(name) = entry
            .file_name()
            .to_str()
            .filter(|n| is_passphrase_params(n))
        {
            names.push(name.to_owned());
        }
    }
    names.sort();
    Ok(names)
}
