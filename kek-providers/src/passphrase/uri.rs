//! Parsing `passphrase:<source>[;m=KIB][;t=N][;p=N][;label=L]`.

use std::path::PathBuf;

use super::kdf::{check_m, check_p, check_t};
use super::label::Label;
use crate::error::shorten;
use crate::{Error, SecretSource};

/// The parameters a passphrase URI takes, for messages.
const KNOWN_PARAMETERS: &str = "m=KIB, t=N, p=N, label=L";
/// Longest environment variable name accepted.
const MAX_ENV_NAME_LEN: usize = 255;

/// A parsed passphrase KEK URI. Costs not given are `None`: `create` uses the defaults and
/// `open` the values in the parameter file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PassphraseKekSpec {
    pub(crate) source: SecretSource,
    pub(crate) m_kib: Option<u32>,
    pub(crate) t: Option<u32>,
    pub(crate) p: Option<u32>,
    pub(crate) label: Option<Label>,
}

impl PassphraseKekSpec {
    /// Parses what follows `passphrase:`.
    pub(crate) fn parse(rest: &str) -> Result<Self, Error> {
        let mut parts = rest.split(';');
        let source = parse_source(parts.next().unwrap_or_default())?;
        let mut spec = Self {
            source,
            m_kib: None,
            t: None,
            p: None,
            label: None,
        };
        for part in parts {
            // A part without `=` is not echoed: it may be a passphrase typed into the URI.
            let Some((name, value)) = part.split_once('=') else {
                return Err(Error::InvalidUri {
                    reason: format!(
                        "passphrase KEK parameters are name=value separated by ';' ({KNOWN_PARAMETERS})"
                    ),
                });
            };
            match name {
                "m" => set_once(
                    &mut spec.m_kib,
                    "m",
                    parse_u32("m", value).and_then(|m| check_m(m).map(|()| m))?,
                )?,
                "t" => set_once(
                    &mut spec.t,
                    "t",
                    parse_u32("t", value).and_then(|t| check_t(t).map(|()| t))?,
                )?,
                "p" => set_once(
                    &mut spec.p,
                    "p",
                    parse_u32("p", value).and_then(|p| check_p(p).map(|()| p))?,
                )?,
                "label" => set_once(&mut spec.label, "label", Label::parse(value)?)?,
                _ => {
                    return Err(Error::UnknownParameter {
                        kind: "passphrase",
                        name: shorten(name, 32),
                        known: KNOWN_PARAMETERS,
                    });
                }
            }
        }
        Ok(spec)
    }

    /// `passphrase:<source>;label=<label>`: the costs live in the parameter file.
    pub(crate) fn canonical_uri(&self, label: &Label) -> String {
        format!(
            "passphrase:{};label={}",
            self.source.uri_form(),
            label.as_str()
        )
    }
}

fn parse_source(text: &str) -> Result<SecretSource, Error> {
    if text == "prompt" {
        return Ok(SecretSource::Prompt);
    }
    if let Some(name) = text.strip_prefix("env=") {
        let valid = (1..=MAX_ENV_NAME_LEN).contains(&name.len())
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            return Err(Error::InvalidUri {
                reason: "env= needs a variable name of A-Z, a-z, 0-9 and _, e.g. passphrase:env=VAULT_PASSPHRASE".into(),
            });
        }
        return Ok(SecretSource::Env(name.to_owned()));
    }
    if let Some(path) = text.strip_prefix("file=") {
        if path.is_empty() {
            return Err(Error::InvalidUri {
                reason: "file= needs the passphrase file's path, e.g. passphrase:file=/run/secrets/vault".into(),
            });
        }
        // Absolute, so the pinned URI reads the same file from any working directory.
        let path: PathBuf =
            std::path::absolute(path).map_err(Error::io("resolving the path", path.as_ref()))?;
        if path.to_str().is_none() {
            return Err(Error::InvalidUri {
                reason: "the absolute passphrase file path is not valid UTF-8".into(),
            });
        }
        return Ok(SecretSource::File(path));
    }
    // Not echoed: a mistyped source may well be the passphrase itself.
    Err(Error::InvalidUri {
        reason: "a passphrase KEK starts with its source: env=NAME, file=PATH or prompt, e.g. passphrase:env=VAULT_PASSPHRASE".into(),
    })
}

fn parse_u32(name: &'static str, value: &str) -> Result<u32, Error> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::InvalidParameter {
            name,
            reason: "must be a decimal number".into(),
        });
    }
    value.parse().map_err(|_| Error::InvalidParameter {
        name,
        reason: "is too large".into(),
    })
}

fn set_once<T>(slot: &mut Option<T>, name: &'static str, value: T) -> Result<(), Error> {
    if slot.is_some() {
        return Err(Error::DuplicateParameter { name });
    }
    *slot = Some(value);
    Ok(())
}
