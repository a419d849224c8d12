//! The parsed form of a secret reference and its canonical text (`Display`).

use std::fmt;
use std::path::PathBuf;

use vault::Scope;

use crate::percent;

/// A parsed secret reference. It says where a secret lives, never what it is, so `Debug`
/// and `Display` are safe to print and to log.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SecretRef {
    /// `vault://SCOPE/KEY[#VERSION]`: a secret in the vault (latest version if none given).
    Vault {
        /// The secret's scope.
        scope: Scope,
        /// The key name (validated by `vault::check_key`).
        key: String,
        /// A version number (1 or more), or the latest.
        version: Option<u64>,
    },
    /// `env://NAME`: a variable of the resolving process's environment.
    Env {
        /// The variable name: `[A-Za-z_][A-Za-z0-9_]*`.
        name: String,
    },
    /// `file:///ABS/PATH`: a file's contents.
    File {
        /// An absolute path with no `.`, `..` or empty components.
        path: PathBuf,
    },
    /// `exec:///ABS/PROGRAM?arg=A&arg=B`: a program's standard output.
    Exec {
        /// The program's absolute path (same rules as a file path).
        program: PathBuf,
        /// Its arguments, in order.
        args: Vec<String>,
    },
}

impl SecretRef {
    /// The scheme, e.g. `vault`.
    pub fn scheme(&self) -> &'static str {
        match self {
            SecretRef::Vault { .. } => "vault",
            SecretRef::Env { .. } => "env",
            SecretRef::File { .. } => "file",
            SecretRef::Exec { .. } => "exec",
        }
    }
}

/// The canonical text; `parse` of it gives the same reference back.
impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Vault {
                scope,
                key,
                version,
            } => {
                write!(f, "vault://{scope}/{key}")?;
                if let Some(v) = version {
                    write!(f, "#{v}")?;
                }
                Ok(())
            }
            SecretRef::Env { name } => write!(f, "env://{name}"),
            SecretRef::File { path } => {
                let mut text = String::from("file://");
                // Parsed paths are UTF-8; a hand-built non-UTF-8 path shows lossily.
                percent::encode(&path.to_string_lossy(), &mut text);
                f.write_str(&text)
            }
            SecretRef::Exec { program, args } => {
                let mut text = String::from("exec://");
                percent::encode(&program.to_string_lossy(), &mut text);
                for (i, arg) in args.iter().enumerate() {
                    text.push_str(if i == 0 { "?arg=" } else { "&arg=" });
                    percent::encode(arg, &mut text);
                }
                f.write_str(&text)
            }
        }
    }
}

impl std::str::FromStr for SecretRef {
    type Err = crate::Error;

    fn from_str(text: &str) -> Result<Self, crate::Error> {
        crate::parse(text)
    }
}
