//! Opening a passphrase KEK: its parameter file, the passphrase, and the key check.

use std::path::Path;

use envelope::SecretBytes;

use super::kdf;
use super::label::Label;
use super::params_file::{self, ParamsFile};
use super::{PassphraseKekSpec, build, kek_id};
use crate::{BuiltKek, Error};

/// Opens the KEK named by the spec's label (or the only one in `vault_dir`), with `supplied` as
/// the passphrase, or else the one its source holds.
pub(crate) fn open(
    spec: &PassphraseKekSpec,
    vault_dir: &Path,
    supplied: Option<&SecretBytes>,
) -> Result<BuiltKek, Error> {
    let label = match &spec.label {
        Some(label) => label.clone(),
        None => only_label(vault_dir)?,
    };
    // The file first: a wrong vault directory should not cost a passphrase prompt.
    let file = ParamsFile::read(vault_dir, &label)?;
    let stored = [("m", file.kdf.m_kib), ("t", file.kdf.t), ("p", file.kdf.p)];
    let given = [spec.m_kib, spec.t, spec.p];
    for ((name, stored), given) in stored.into_iter().zip(given) {
        match given {
            Some(given) if given != stored => {
                return Err(Error::ParamsContradict {
                    label: label.as_str().to_owned(),
                    name,
                    stored,
                    given,
                });
            }
            _ => {}
        }
    }
    let id = kek_id(&label)?;
    let read;
    let (passphrase, source_name) = match supplied {
        Some(supplied) => (supplied, "the passphrase given".to_owned()),
        None => {
            read = spec.source.read(&format!("Passphrase for KEK {id}: "))?;
            (&read, spec.source.to_string())
        }
    };
    let key = file.kdf.derive(passphrase, &file.salt)?;
    if !kdf::verify(&key, &file.verifier) {
        return Err(Error::WrongPassphrase {
            source_name,
            kek: id.to_string(),
        });
    }
    build(spec, &label, key)
}

/// The label of the only passphrase KEK in `vault_dir`, for URIs that give none.
fn only_label(vault_dir: &Path) -> Result<Label, Error> {
    let labels = params_file::labels_in(vault_dir)?;
    match labels.as_slice() {
        [only] => Ok(only.clone()),
        [] => Err(Error::LabelNeeded {
            reason: format!(
                "{} holds no passphrase KEK (is the vault directory right?)",
                vault_dir.display()
            ),
        }),
        many => Err(Error::LabelNeeded {
            reason: format!(
                "{} holds passphrase KEKs {}",
                vault_dir.display(),
                many.iter()
                    .map(Label::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}
