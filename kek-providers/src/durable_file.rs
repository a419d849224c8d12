//! Writing the small files providers keep (key files, passphrase parameters): owner-only,
//! all or nothing, durable before the call returns, and never over an existing file.

use std::fs::{DirBuilder, File, Permissions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use crate::Error;

/// Creates `path` holding `contents`, mode 0600, failing with `exists` if it is already there.
///
/// The bytes go to a temporary file in the same directory (created with O_EXCL and mode 0600),
/// which is synced and then renamed into place without replacing anything, and the directory
/// is synced. So a crash leaves either no file or the whole file, never a short key that
/// would look like corruption later, and two concurrent creates cannot both win.
pub(crate) fn create_new(
    path: &Path,
    contents: &[u8],
    exists: impl FnOnce() -> Error,
) -> Result<(), Error> {
    let dir = parent_dir(path);
    // 0700: the directory of a key file says which keys exist; only the owner needs it.
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(Error::io("creating directory", dir))?;
    if path.symlink_metadata().is_ok() {
        return Err(exists());
    }
    let mut temp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(Error::io("creating a temporary file in", dir))?;
    temp.write_all(contents)
        .and_then(|()| temp.as_file().sync_all())
        .map_err(Error::io("writing", temp.path()))?;
    match temp.persist_noclobber(path) {
        Ok(_) => {}
        Err(e) if e.error.kind() == ErrorKind::AlreadyExists => return Err(exists()),
        Err(e) => return Err(Error::io("creating", path)(e.error)),
    }
    sync_dir(dir)
}

/// Reads at most `max` bytes of a small non-secret file; longer files are an error.
pub(crate) fn read_small(path: &Path, max: usize) -> Result<Vec<u8>, std::io::Error> {
    let file = File::open(path)?;
    let mut bytes = Vec::new();
    file.take(max as u64 + 1).read_to_end(&mut bytes)?;
    if bytes.len() > max {
        return Err(std::io::Error::new(
            ErrorKind::InvalidData,
            format!("longer than {max} bytes"),
        ));
    }
    Ok(bytes)
}

/// The directory holding `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Syncs a directory so that a new entry in it survives a crash.
fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io("syncing directory", dir))
}
