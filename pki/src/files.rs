//! Private files: written whole or not at all (temporary file, fsync, then link or rename),
//! mode 0600 from the first byte, in 0700 directories.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, io};

/// Permission bits that let group or others read or write.
const SHARED_BITS: u32 = 0o066;
/// Permission bits that let group or others write.
const SHARED_WRITE_BITS: u32 = 0o022;

/// Refuses a file (key, config, data) that is readable or writable by group or others, with
/// the chmod to run.
pub fn check_private(path: &Path) -> Result<(), Error> {
    let mode = fs::metadata(path)
        .map_err(io("checking", path))?
        .permissions()
        .mode()
        & 0o7777;
    if mode & SHARED_BITS != 0 {
        return Err(Error::NotPrivate {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// Refuses a file or directory that group or others can write: the CA certificate (the
/// trust anchor), the revocation list and the directories holding them or the vault's data.
/// Reading them is fine; changing them changes whom the daemon trusts.
pub fn check_not_writable_by_others(path: &Path) -> Result<(), Error> {
    let mode = fs::metadata(path)
        .map_err(io("checking", path))?
        .permissions()
        .mode()
        & 0o7777;
    if mode & SHARED_WRITE_BITS != 0 {
        return Err(Error::WritableByOthers {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// Creates `dir` (and its parents) if missing and makes it 0700.
pub(crate) fn private_dir(dir: &Path) -> Result<(), Error> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io("creating", dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io("chmod 700", dir))
}

/// Writes `bytes` to `path` (0600) unless `path` exists: the file appears complete or not
/// at all, and an existing one is never touched.
pub(crate) fn write_new(path: &Path, bytes: &[u8], hint: &'static str) -> Result<(), Error> {
    let tmp = write_temp(path, bytes)?;
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => sync_parent(path),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(Error::AlreadyExists {
            path: path.to_path_buf(),
            hint,
        }),
        Err(e) => Err(io("writing", path)(e)),
    }
}

/// Replaces `path` with `bytes` (0600) in one rename.
pub(crate) fn replace(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = write_temp(path, bytes)?;
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(io("replacing", path)(e));
    }
    sync_parent(path)
}

/// A synced 0600 temporary file beside `path`, holding `bytes`.
fn write_temp(path: &Path, bytes: &[u8]) -> Result<PathBuf, Error> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()));
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        });
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io("writing", &tmp)(e));
    }
    Ok(tmp)
}

/// Makes a new directory entry durable.
fn sync_parent(path: &Path) -> Result<(), Error> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("syncing", dir))
}

/// Holds an exclusive lock on `<path>.lock` (created 0600 beside `path`) until dropped, so
/// that two read-modify-write updates of `path` do not lose one another's change.
pub(crate) fn lock_beside(path: &Path) -> Result<File, Error> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let lock_path = path.with_file_name(format!(".{name}.lock"));
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&lock_path)
        .map_err(io("opening", &lock_path))?;
    file.lock().map_err(io("locking", &lock_path))?;
    Ok(file)
}

/// Reads a whole file.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, Error> {
    fs::read(path).map_err(io("reading", path))
}
