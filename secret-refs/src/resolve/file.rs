//! `file:///PATH`: only under a trusted directory, no symbolic link anywhere on the path,
//! every directory on it and the file owned by us or root and writable by nobody else, a
//! regular file of bounded size.
//!
//! The path is walked from `/` one component at a time with `openat` relative to the
//! directory opened before it (`O_NOFOLLOW`, so a link is refused rather than followed), and
//! each directory is checked through its open descriptor (`fstat`). The file is opened the
//! same way and read from that descriptor. So what is read is the file under the very
//! directories that were checked: a directory renamed or swapped for a link after it was
//! opened no longer changes where the walk goes. The trusted directory is the component of
//! the walk at its place in the path (the path is absolute with no `.` or `..` and no link
//! is followed, so the string prefix and the opened directories agree).
//!
//! A directory that others may write (group or world writable) is refused unless it has the
//! sticky bit (as `/tmp`): others could replace the entry below it. A sticky directory only
//! lets them add entries, and an entry they made is refused for its owner.

use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use envelope::SecretBytes;
use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags, Stat, fstat, openat, statat};
use rustix::io::Errno;

use crate::{Error, Policy, SecretRef};

/// How each directory on the path is opened: never through a link, only a directory. On
/// Linux as a path descriptor, which needs search but not read permission (a directory of
/// mode 0711 can be walked through, as by path).
#[cfg(any(target_os = "linux", target_os = "android"))]
const DIR_FLAGS: OFlags = OFlags::PATH
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);
/// How the file is opened: never through a link; a FIFO swapped in does not block the open
/// and a terminal does not become ours.
const FILE_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::NOFOLLOW)
    .union(OFlags::NONBLOCK)
    .union(OFlags::NOCTTY)
    .union(OFlags::CLOEXEC);
/// The sticky bit of a directory's mode.
const STICKY: u32 = 0o1000;

pub(super) fn resolve(
    policy: &Policy,
    reference: &SecretRef,
    path: &Path,
) -> Result<SecretBytes, Error> {
    let walk = Walk {
        reference: reference.to_string(),
        me: rustix::process::geteuid().as_raw(),
    };
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
            reference: walk.reference,
            trusted: if dirs.is_empty() {
                "none configured".into()
            } else {
                dirs.join(", ")
            },
        });
    }

    let names: Vec<&OsStr> = path.components().skip(1).map(|c| c.as_os_str()).collect();
    let Some((leaf, dirs)) = names.split_last() else {
        return Err(walk.reject("the path names no file".into()));
    };
    let mut at = PathBuf::from("/");
    let mut dir =
        openat(CWD, "/", DIR_FLAGS, Mode::empty()).map_err(|e| walk.io("opening /", e))?;
    walk.check_dir(&dir, &at)?;
    // From the root down, so the first link or unsafe directory on the path is reported.
    for name in dirs {
        at.push(name);
        dir = walk.open_dir(&dir, name, &at)?;
        #[cfg(test)]
        hooks::after_dir_opened(&at);
    }
    at.push(leaf);
    let mut file = walk.open_file(&dir, leaf, &at, policy.max_secret_len)?;
    let max = policy.max_secret_len;
    SecretBytes::read_from(&mut file, max).map_err(|e| match e {
        envelope::Error::SecretTooLarge { .. } => {
            walk.reject(format!("over the limit of {max} bytes"))
        }
        other => Error::Memory(other),
    })
}

/// One resolution's walk: the reference for errors and our effective user id.
struct Walk {
    reference: String,
    me: u32,
}

impl Walk {
    /// Opens the directory `name` in `parent` (the path so far is `at`) and checks it.
    fn open_dir(&self, parent: &OwnedFd, name: &OsStr, at: &Path) -> Result<OwnedFd, Error> {
        let dir = match openat(parent, name, DIR_FLAGS, Mode::empty()) {
            Ok(dir) => dir,
            Err(Errno::LOOP) => return Err(self.symlink(at)),
            // A link (which O_PATH|O_NOFOLLOW|O_DIRECTORY reports so) or a file.
            Err(Errno::NOTDIR) => {
                return Err(match statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(stat) if file_type(&stat) == FileType::Symlink => self.symlink(at),
                    _ => self.reject(format!("{} is not a directory", at.display())),
                });
            }
            Err(e) => return Err(self.io(format!("opening {}", at.display()), e)),
        };
        self.check_dir(&dir, at)?;
        Ok(dir)
    }

    /// Checks an opened directory: a directory (not a link), owned by us or root, and not
    /// writable by others unless sticky.
    fn check_dir(&self, dir: &OwnedFd, at: &Path) -> Result<(), Error> {
        let stat = fstat(dir).map_err(|e| self.io(format!("inspecting {}", at.display()), e))?;
        match file_type(&stat) {
            FileType::Directory => {}
            FileType::Symlink => return Err(self.symlink(at)),
            _ => return Err(self.reject(format!("{} is not a directory", at.display()))),
        }
        if stat.st_uid != self.me && stat.st_uid != 0 {
            return Err(self.reject(format!(
                "{} is owned by uid {}; only directories owned by uid {} (this user) or root \
                 are trusted on the path: chown it",
                at.display(),
                stat.st_uid,
                self.me
            )));
        }
        let mode = mode_bits(&stat);
        if mode & 0o022 != 0 && mode & STICKY == 0 {
            return Err(self.reject(format!(
                "{} is writable by group or others (mode {mode:04o}), who could swap the file \
                 below it; run chmod go-w {}",
                at.display(),
                at.display()
            )));
        }
        Ok(())
    }

    /// Opens the file `name` in `dir` (its path is `at`) after checking what it is, and
    /// checks the opened file: the one inspected, regular, owned by us or root, not
    /// writable by others, at most `max` bytes.
    fn open_file(
        &self,
        dir: &OwnedFd,
        name: &OsStr,
        at: &Path,
        max: usize,
    ) -> Result<std::fs::File, Error> {
        // Inspected before it is opened, so that nothing but a regular file is ever opened
        // (opening a device can have effects).
        let seen = statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| self.io(format!("inspecting {}", at.display()), e))?;
        match file_type(&seen) {
            FileType::RegularFile => {}
            FileType::Symlink => return Err(self.symlink(at)),
            _ => return Err(self.reject("not a regular file".into())),
        }
        let file = match openat(dir, name, FILE_FLAGS, Mode::empty()) {
            Ok(file) => file,
            Err(Errno::LOOP) => return Err(self.symlink(at)),
            Err(e) => return Err(self.io("opening the file", e)),
        };
        let stat = fstat(file.as_fd()).map_err(|e| self.io("inspecting the opened file", e))?;
        if (stat.st_dev, stat.st_ino) != (seen.st_dev, seen.st_ino)
            || file_type(&stat) != FileType::RegularFile
        {
            return Err(self.reject("the file was replaced while being checked; try again".into()));
        }
        if stat.st_uid != self.me && stat.st_uid != 0 {
            return Err(self.reject(format!(
                "owned by uid {}; only files owned by uid {} (this user) or root are trusted: chown it",
                stat.st_uid, self.me
            )));
        }
        let mode = mode_bits(&stat);
        if mode & 0o022 != 0 {
            return Err(self.reject(format!(
                "writable by group or others (mode {mode:04o}); run chmod go-w {}",
                at.display()
            )));
        }
        let len = u64::try_from(stat.st_size).unwrap_or(u64::MAX);
        if len > max as u64 {
            return Err(self.reject(format!("{len} bytes, over the limit of {max} bytes")));
        }
        Ok(std::fs::File::from(file))
    }

    fn symlink(&self, component: &Path) -> Error {
        Error::FileSymlink {
            reference: self.reference.clone(),
            component: component.to_path_buf(),
        }
    }

    fn reject(&self, reason: String) -> Error {
        Error::FileRejected {
            reference: self.reference.clone(),
            reason,
        }
    }

    fn io(&self, what: impl Into<String>, errno: Errno) -> Error {
        Error::Io {
            reference: self.reference.clone(),
            what: what.into(),
            source: errno.into(),
        }
    }
}

fn file_type(stat: &Stat) -> FileType {
    FileType::from_raw_mode(stat.st_mode)
}

/// Permission bits of a mode, with setuid, setgid and sticky.
// `st_mode` is a u32 on Linux but narrower elsewhere.
#[allow(clippy::useless_conversion)]
fn mode_bits(stat: &Stat) -> u32 {
    u32::from(stat.st_mode) & 0o7777
}

/// A hook for the unit tests below: runs after each directory on the path was opened, to
/// change the tree at the moment a racing process would.
#[cfg(test)]
mod hooks {
    use std::cell::RefCell;
    use std::path::Path;

    type Hook = Box<dyn FnMut(&Path)>;

    thread_local! {
        static AFTER_DIR_OPENED: RefCell<Option<Hook>> = const { RefCell::new(None) };
    }

    pub(super) fn after_dir_opened(at: &Path) {
        AFTER_DIR_OPENED.with(|hook| {
            if let Some(hook) = hook.borrow_mut().as_mut() {
                hook(at);
            }
        });
    }

    /// Runs `f` with `hook` called after each directory is opened (on this thread).
    pub(super) fn with_hook<T>(hook: impl FnMut(&Path) + 'static, f: impl FnOnce() -> T) -> T {
        AFTER_DIR_OPENED.with(|h| *h.borrow_mut() = Some(Box::new(hook)));
        let out = f();
        AFTER_DIR_OPENED.with(|h| *h.borrow_mut() = None);
        out
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::symlink;

    use super::*;

    /// The moment after `trusted/d` was opened, `d` is renamed away and a link to a decoy
    /// directory takes its name: the read still comes from the directory that was checked,
    /// and the next resolution refuses the link.
    #[test]
    fn a_directory_swapped_for_a_link_after_it_was_opened_does_not_redirect_the_read() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = fs::canonicalize(tmp.path()).expect("canonicalize");
        let d = root.join("trusted/d");
        fs::create_dir_all(&d).expect("mkdir");
        fs::write(d.join("secret"), b"genuine").expect("write");
        fs::create_dir_all(root.join("decoy")).expect("mkdir");
        fs::write(root.join("decoy/secret"), b"decoy").expect("write");
        let policy = Policy {
            trusted_dirs: vec![root.join("trusted")],
            ..Policy::default()
        };
        let path = d.join("secret");
        let reference = crate::parse(&format!("file://{}", path.display())).expect("ref");

        let (swapped_dir, decoy) = (d.clone(), root.join("decoy"));
        let moved = root.join("trusted/d-moved");
        let swap = move |at: &Path| {
            if at == swapped_dir {
                fs::rename(&swapped_dir, &moved).expect("rename");
                symlink(&decoy, &swapped_dir).expect("symlink");
            }
        };
        let value = hooks::with_hook(swap, || resolve(&policy, &reference, &path))
            .expect("the opened directory is read");
        assert_eq!(value.expose_secret(), b"genuine");

        let err = resolve(&policy, &reference, &path).expect_err("now a link");
        assert!(
            matches!(&err, Error::FileSymlink { component, .. } if *component == d),
            "{err}"
        );
    }
}
