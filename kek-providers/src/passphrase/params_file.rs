//! The passphrase KEK's parameter file `<vault dir>/kek-passphrase-<label>.json`: Argon2
//! costs, salt and key-check value. Not secret (it holds nothing a stanza does not already
//! expose to a guessing attack), but written owner-only like everything in the vault dir.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use super::kdf::{KdfParams, SALT_LEN, VERIFIER_LEN};
use super::label::Label;
use crate::{Error, durable_file};

/// The only file format version.
const FORMAT_VERSION: u32 = 1;
/// Largest parameter file read; a real one is about 200 bytes.
const MAX_FILE_LEN: usize = 4096;

/// The file's contents.
#[derive(Debug)]
pub(crate) struct ParamsFile {
    pub(crate) label: Label,
    pub(crate) kdf: KdfParams,
    pub(crate) salt: [u8; SALT_LEN],
    pub(crate) verifier: [u8; VERIFIER_LEN],
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Json {
    version: u32,
    label: String,
    m: u32,
    t: u32,
    p: u32,
    salt: String,
    verifier: String,
}

/// Where the parameter file of KEK `label` lives.
pub(crate) fn path_for(vault_dir: &Path, label: &Label) -> PathBuf {
    vault_dir.join(format!("kek-passphrase-{}.json", label.as_str()))
}

impl ParamsFile {
    /// Writes a new parameter file; an existing one is never replaced (its salt is what
    /// turns the passphrase into the key that wrapped the vault's secrets).
    pub(crate) fn create(&self, vault_dir: &Path) -> Result<PathBuf, Error> {
        let path = path_for(vault_dir, &self.label);
        let json = Json {
            version: FORMAT_VERSION,
            label: self.label.as_str().to_owned(),
            m: self.kdf.m_kib,
            t: self.kdf.t,
            p: self.kdf.p,
            salt: BASE64.encode(self.salt),
            verifier: BASE64.encode(self.verifier),
        };
        let mut text = serde_json::to_vec_pretty(&json).map_err(|e| Error::ParamsFileInvalid {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        text.push(b'\n');
        durable_file::create_new(&path, &text, || Error::ParamsFileExists {
            path: path.clone(),
        })?;
        Ok(path)
    }

    /// Reads and validates the parameter file of KEK `label`.
    pub(crate) fn read(vault_dir: &Path, label: &Label) -> Result<Self, Error> {
        let path = path_for(vault_dir, label);
        let invalid = |reason: String| Error::ParamsFileInvalid {
            path: path.clone(),
            reason,
        };
        let bytes = durable_file::read_small(&path, MAX_FILE_LEN).map_err(|e| match e.kind() {
            ErrorKind::NotFound => Error::ParamsFileMissing { path: path.clone() },
            ErrorKind::InvalidData => invalid(e.to_string()),
            _ => Error::io("reading", &path)(e),
        })?;
        let json: Json = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
        if json.version != FORMAT_VERSION {
            return Err(invalid(format!(
                "format version {} is not supported by this build",
                json.version
            )));
        }
        if json.label != label.as_str() {
            return Err(invalid(format!(
                "it names label {:?}, not {}",
                crate::error::shorten(&json.label, 64),
                label.as_str()
            )));
        }
        let kdf = KdfParams {
            m_kib: json.m,
            t: json.t,
            p: json.p,
        };
        kdf.check().map_err(|e| invalid(e.to_string()))?;
        Ok(Self {
            label: label.clone(),
            kdf,
            salt: decode_fixed(&json.salt)
                .ok_or_else(|| invalid("salt is not 16 bytes of base64".into()))?,
            verifier: decode_fixed(&json.verifier)
                .ok_or_else(|| invalid("verifier is not 32 bytes of base64".into()))?,
        })
    }
}

/// Decodes base64 of exactly `N` bytes.
fn decode_fixed<const N: usize>(text: &str) -> Option<[u8; N]> {
    BASE64.decode(text).ok()?.try_into().ok()
}

/// Labels of the passphrase KEKs that have a parameter file in `vault_dir`.
pub(crate) fn labels_in(vault_dir: &Path) -> Result<Vec<Label>, Error> {
    let entries = match std::fs::read_dir(vault_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("listing", vault_dir)(e)),
    };
    let mut labels = Vec::new();
    for entry in entries {
        let name = entry.map_err(Error::io("listing", vault_dir))?.file_name();
        let label = name
            .to_str()
            .and_then(|n| n.strip_prefix("kek-passphrase-"))
            .and_then(|n| n.strip_suffix(".json"))
            .and_then(|n| Label::parse(n).ok());
        labels.extend(label);
    }
    labels.sort();
    Ok(labels)
}
