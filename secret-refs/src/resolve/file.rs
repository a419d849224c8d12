//! `file:///PATH`: only under a trusted directory, no symbolic link anywhere on the path,
//! a regular file owned by us or root that nobody else may write, of bounded size.
//!
//! Every component is inspected with `symlink_metadata` (std has no `openat`), and the leaf
//! is then opened with `O_NOFOLLOW` and checked to be the very file inspected (same device
//! and inode), so a leaf swapped for a link between the check and the open is refused. A
//! directory component swapped for a link in that window is not caught; trusted
//! directories are meant to be writable by their owner only.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use envelope::SecretBytes;

use crate::{Error, Policy, SecretRef};

pub(super) fn resolve(
    policy: &Policy,
    reference: &SecretRef,
    path: &Path,
) -> Result<SecretBytes, Error> {
    let text = reference.to_string();
    let trusted = policy
        .trusted_dirs
        .iter()
        .any(|dir| path.starts_with(dir) && path != dir);
    if !trusted {
        let dirs: Vec<String> = policy
            .trusted_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        return Err(Error::FileNotTrusted {
            reference: text,
            trusted: if dirs.is_empty() {
                "none configured".into()
            } else {
                dirs.join(", ")
            },
        });
    }
    let io = |what: String| {
        let reference = text.clone();
        move |source| Error::Io {
            reference,
            what,
            source,
        }
    };
    let reject = |reason: String| Error::FileRejected {
        reference: text.clone(),
        reason,
    };

    // From the root down, so the first link on the path is the one reported.
    let mut prefix = PathBuf::from("/");
    let mut leaf = None;
    for component in path.components().skip(1) {
        prefix.push(component);
        let meta = fs::symlink_metadata(&prefix)
            .map_err(io(format!("inspecting {}", prefix.display())))?;
        if meta.file_type().is_symlink() {
            return Err(Error::FileSymlink {
                reference: text,
                component: prefix,
            });
        }
        leaf = Some(meta);
    }
    let Some(meta) = leaf else {
        return Err(reject("the path names no file".into()));
    };
    if !meta.file_type().is_file() {
        return Err(reject("not a regular file".into()));
    }
    let me = effective_uid().map_err(io(
        "reading the process's user id from /proc/self/status".into()
    ))?;
    if meta.uid() != me && meta.uid() != 0 {
        return Err(reject(format!(
            "owned by uid {}; only files owned by uid {me} (this user) or root are trusted: chown it",
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(reject(format!(
            "writable by group or others (mode {:04o}); run chmod go-w {}",
            meta.mode() & 0o7777,
            path.display()
        )));
    }
    let max = policy.max_secret_len;
    if meta.len() > max as u64 {
        return Err(reject(format!(
            "{} bytes, over the limit of {max} bytes",
            meta.len()
        )));
    }
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(io("opening the file".into()))?;
    let opened = file
        .metadata()
        .map_err(io("inspecting the opened file".into()))?;
    if (opened.dev(), opened.ino()) != (meta.dev(), meta.ino()) {
        return Err(reject(
            "the file was replaced while being checked; try again".into(),
        ));
    }
    SecretBytes::read_from(&mut file, max).map_err(|e| match e {
        envelope::Error::SecretTooLarge { .. } => reject(format!("over the limit of {max} bytes")),
        other => Error::Memory(other),
    })
}

/// Our effective user id, from `/proc/self/status` (std has no getuid, and the owner of
/// `/proc/self` is root once a process makes itself non-dumpable, as vaultctl does).
fn effective_uid() -> std::io::Result<u32> {
    static UID: OnceLock<u32> = OnceLock::new();
    if let Some(uid) = UID.get() {
        return Ok(*uid);
    }
    let status = fs::read_to_string("/proc/self/status")?;
    let uid = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|euid| euid.parse().ok())
        .ok_or_else(|| std::io::Error::other("no Uid line"))?;
    Ok(*UID.get_or_init(|| uid))
}
