//! Where a passphrase comes from: an environment variable, a file, or the terminal.

use std::fmt;
use std::io::ErrorKind;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use envelope::SecretBytes;
use zeroize::Zeroize;

use crate::Error;

/// Longest passphrase accepted from any source.
pub const MAX_PASSPHRASE_LEN: usize = 64 * 1024;

/// Where to read a passphrase (or PIN) from. Holds only the place, never the secret, so its
/// `Debug` is safe to print; the secret is read on demand into locked memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// The environment variable of this name.
    Env(String),
    /// This file; one trailing newline is ignored.
    File(PathBuf),
    /// The terminal, without echo.
    Prompt,
}

/// What `env:NAME` in a KEK URI's PIN or authorisation source must name.
pub(crate) const ENV_NAME_RULE: &str = "env:NAME needs a variable name of letters, digits and _";

impl SecretSource {
    /// The source `env:NAME` of a KEK URI, when `name` is a variable name (letters, digits
    /// and `_`); else [`ENV_NAME_RULE`].
    pub(crate) fn env_named(name: &str) -> Result<Self, &'static str> {
        let valid =
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if valid {
            Ok(Self::Env(name.to_owned()))
        } else {
            Err(ENV_NAME_RULE)
        }
    }

    /// Reads the secret; `prompt` is shown when asking the terminal. An empty secret is an
    /// error.
    pub fn read(&self, prompt: &str) -> Result<SecretBytes, Error> {
        let secret = match self {
            Self::Env(name) => read_env(name)?,
            Self::File(path) => self.read_file(path)?,
            Self::Prompt => read_prompt(prompt)?,
        };
        if secret.is_empty() {
            return Err(Error::EmptyPassphrase {
                source_name: self.to_string(),
            });
        }
        if secret.len() > MAX_PASSPHRASE_LEN {
            return Err(self.too_long());
        }
        Ok(secret)
    }

    /// The source as written in a KEK URI: `env=NAME`, `file=PATH` or `prompt`.
    pub fn uri_form(&self) -> String {
        match self {
            Self::Env(name) => format!("env={name}"),
            Self::File(path) => format!("file={}", path.display()),
            Self::Prompt => "prompt".to_owned(),
        }
    }

    fn read_file(&self, path: &std::path::Path) -> Result<SecretBytes, Error> {
        let mut file = std::fs::File::open(path).map_err(|e| match e.kind() {
            ErrorKind::NotFound => Error::PassphraseFileMissing {
                path: path.to_path_buf(),
            },
            _ => Error::io("opening the passphrase file", path)(e),
        })?;
        let mut secret =
            SecretBytes::read_from(&mut file, MAX_PASSPHRASE_LEN).map_err(|e| match e {
                envelope::Error::SecretTooLarge { .. } => self.too_long(),
                envelope::Error::Read(kind) => {
                    Error::io("reading the passphrase file", path)(kind.into())
                }
                other => other.into(),
            })?;
        // Editors and `echo` end files with a newline that is not part of the passphrase.
        let mut len = secret.len();
        if secret.expose_secret().ends_with(b"\n") {
            len -= 1;
            if secret.expose_secret()[..len].ends_with(b"\r") {
                len -= 1;
            }
        }
        secret.truncate(len);
        Ok(secret)
    }

    fn too_long(&self) -> Error {
        Error::PassphraseTooLong {
            source_name: self.to_string(),
            max: MAX_PASSPHRASE_LEN,
        }
    }
}

/// Names the source for messages: `env NAME`, `file PATH`, `the terminal prompt`.
impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env(name) => write!(f, "env {name}"),
            Self::File(path) => write!(f, "file {}", path.display()),
            Self::Prompt => f.write_str("the terminal prompt"),
        }
    }
}

fn read_env(name: &str) -> Result<SecretBytes, Error> {
    let Some(value) = std::env::var_os(name) else {
        return Err(Error::EnvVarUnset {
            name: name.to_owned(),
        });
    };
    let mut bytes = value.into_vec();
    let secret = SecretBytes::from_slice(&bytes);
    bytes.zeroize();
    Ok(secret?)
}

fn read_prompt(prompt: &str) -> Result<SecretBytes, Error> {
    // The prompt talks to the controlling terminal (/dev/tty), not stdin, so a secret piped
    // into stdin and a prompted passphrase work together. Without a terminal (CI, services)
    // the error says how to pass the passphrase instead.
    super::hidden_prompt::read_hidden(prompt)
}
