//! What a [`Resolver`](crate::Resolver) may touch. Everything is refused by default: a
//! reference works only once its variable, directory or program is named here.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use crate::Error;

/// Default timeout of an `exec://` program.
pub const DEFAULT_EXEC_TIMEOUT: Duration = Duration::from_secs(10);
/// Default cap on a `file://` secret's size and an `exec://` program's output.
pub const DEFAULT_MAX_SECRET_LEN: usize = 64 * 1024;

/// The resolver's policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Environment variables `env://` may read: exact names, or prefixes written `PREFIX_*`
    /// (the star right after an underscore; `AWS_*` allows `AWS_KEY`, not `AWSX_KEY`).
    pub allow_env: Vec<String>,
    /// Directories under which `file://` may read (absolute; every component of the file's
    /// path, these included, must not be a symbolic link, and every directory on it must be
    /// owned by us or root and not writable by others unless sticky).
    pub trusted_dirs: Vec<PathBuf>,
    /// Programs `exec://` may run, by absolute path (compared exactly, not resolved).
    pub allow_exec: Vec<PathBuf>,
    /// How long an `exec://` program may run before it is killed.
    pub exec_timeout: Duration,
    /// Largest `file://` secret and `exec://` output, in bytes.
    pub max_secret_len: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            allow_env: Vec::new(),
            trusted_dirs: Vec::new(),
            allow_exec: Vec::new(),
            exec_timeout: DEFAULT_EXEC_TIMEOUT,
            max_secret_len: DEFAULT_MAX_SECRET_LEN,
        }
    }
}

impl Policy {
    /// Checks that every entry means what it says.
    pub fn validate(&self) -> Result<(), Error> {
        for entry in &self.allow_env {
            check_env_entry(entry)?;
        }
        for (list, what) in [
            (&self.trusted_dirs, "trusted directory"),
            (&self.allow_exec, "allowed program"),
        ] {
            for path in list {
                if !is_plain_absolute(path) {
                    return Err(Error::Policy(format!(
                        "the {what} {} must be an absolute path without '.' or '..'",
                        path.display()
                    )));
                }
            }
        }
        if self.exec_timeout.is_zero() {
            return Err(Error::Policy(
                "the exec timeout must be more than zero".into(),
            ));
        }
        Ok(())
    }

    /// Whether `env://name` is allowed: an entry names it exactly, or it is a prefix
    /// `PREFIX_*` and `name` is `PREFIX_` followed by at least one more character.
    pub fn env_allowed(&self, name: &str) -> bool {
        self.allow_env
            .iter()
            .any(|entry| match entry.strip_suffix('*') {
                Some(prefix) => name.len() > prefix.len() && name.starts_with(prefix),
                None => entry == name,
            })
    }
}

/// An `allow_env` entry is a variable name, or a prefix written `PREFIX_*`: the star comes
/// last, right after an underscore, so that `AWS_*` allows `AWS_KEY` but never `AWSX_KEY`
/// (which `AWS*` would).
fn check_env_entry(entry: &str) -> Result<(), Error> {
    let shown = vault::shorten_name(entry);
    let (name, prefix) = match entry.strip_suffix('*') {
        Some(prefix) => (prefix.strip_suffix('_').unwrap_or(prefix), Some(prefix)),
        None => (entry, None),
    };
    let valid_name = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid_name {
        return Err(Error::Policy(format!(
            "allowed variable {shown:?} is not a name (A-Z a-z 0-9 _, not starting with a digit) \
             or a prefix written PREFIX_*"
        )));
    }
    if let Some(prefix) = prefix
        && !prefix.ends_with('_')
    {
        return Err(Error::Policy(format!(
            "allowed variable prefix {shown:?} must end at an underscore, written PREFIX_*: \
             use --allow-env '{name}_*' (it allows {name}_KEY but not {name}X_KEY), or list \
             the variables by name"
        )));
    }
    Ok(())
}

fn is_plain_absolute(path: &Path) -> bool {
    path.is_absolute()
        && path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
}
