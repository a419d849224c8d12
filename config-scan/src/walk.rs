//! Finding the files to scan under the given paths.
//!
//! A path named on the command line is scanned even if it is a symlink or its format is not
//! recognised. Inside a directory, only files whose extension or name says TOML, YAML, JSON,
//! INI or .env are read; `.git`, `target` and `node_modules` are skipped, and symlinks are
//! never followed (one leading out of the tree is noted, one inside it is skipped because
//! its target is scanned where it is).

use std::fs;
use std::path::{Path, PathBuf};

use crate::Error;
use crate::format::Format;

/// Directories never entered: version control, build output, vendored packages.
pub const SKIPPED_DIRS: [&str; 5] = [".git", ".hg", ".svn", "target", "node_modules"];

/// A file to scan.
#[derive(Debug)]
pub(crate) struct FileToScan {
    pub path: PathBuf,
    /// Relative to the root, `/`-separated.
    pub rel: String,
    pub format: Option<Format>,
}

impl FileToScan {
    /// A file named on its own (not found in a directory): relative to itself, its file name.
    pub(crate) fn named(path: &Path) -> Self {
        let name = path.file_name().map_or_else(
            || path.to_string_lossy().into_owned(),
            |n| n.to_string_lossy().into_owned(),
        );
        FileToScan {
            path: path.to_path_buf(),
            rel: name,
            format: Format::of(path),
        }
    }
}

/// The files under a root, sorted, and notes about what was skipped.
#[derive(Debug, Default)]
pub(crate) struct Walk {
    pub files: Vec<FileToScan>,
    /// `(path, message)`.
    pub notes: Vec<(PathBuf, String)>,
}

/// The files under `root`.
pub(crate) fn files_under(root: &Path) -> Result<Walk, Error> {
    let unreadable = |source| Error::Unreadable {
        path: root.to_path_buf(),
        source,
    };
    let meta = fs::metadata(root).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::NoSuchPath {
                path: root.to_path_buf(),
            }
        } else {
            unreadable(e)
        }
    })?;
    let mut files = Vec::new();
    let mut notes = Vec::new();
    if !meta.is_dir() && !meta.is_file() {
        return Err(unreadable(std::io::Error::other(
            "not a regular file or directory",
        )));
    }
    if meta.is_file() {
        files.push(FileToScan::named(root));
        return Ok(Walk { files, notes });
    }
    let canonical_root = fs::canonicalize(root).map_err(unreadable)?;
    // The root must be listable: a clear error beats an empty report.
    fs::read_dir(root).map_err(unreadable)?;
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let listing = match fs::read_dir(&dir) {
            Ok(listing) => listing,
            Err(e) => {
                notes.push((dir.clone(), format!("cannot list directory: {e}")));
                continue;
            }
        };
        for child in listing.filter_map(Result::ok) {
            let path = child.path();
            let Ok(kind) = child.file_type() else {
                notes.push((path, "cannot stat: skipped".into()));
                continue;
            };
            let name = child.file_name();
            if kind.is_dir() {
                if !SKIPPED_DIRS.iter().any(|s| name == *s) {
                    pending.push(path);
                }
            } else if kind.is_symlink() {
                match fs::canonicalize(&path) {
                    Ok(target) if target.starts_with(&canonical_root) => {}
                    Ok(_) => notes.push((
                        path,
                        "symlink leads out of the scanned tree: not followed".into(),
                    )),
                    Err(_) => {}
                }
            } else if kind.is_file()
                && let Some(format) = Format::of(&path)
            {
                let rel = path
                    .strip_prefix(root)
                    .unwrap_or(&path)
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                files.push(FileToScan {
                    path,
                    rel,
                    format: Some(format),
                });
            }
        }
    }
    files.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(Walk { files, notes })
}
