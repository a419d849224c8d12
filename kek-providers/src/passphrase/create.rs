//! Creating a passphrase KEK: a fresh salt, the derived key, and its parameter file.

use std::path::Path;

use envelope::SecretBytes;

use super::kdf::{self, KdfParams, SALT_LEN};
use super::label::Label;
use super::params_file::{self, ParamsFile};
use super::{PassphraseKekSpec, SecretSource, build, kek_id};
use crate::{BuiltKek, Created, Error};

/// Creates the KEK named by the spec's label (or a random one) in `vault_dir`.
pub(crate) fn create(spec: &PassphraseKekSpec, vault_dir: &Path) -> Result<BuiltKek, Error> {
    let label = match &spec.label {
        Some(label) => label.clone(),
        None => Label::random()?,
    };
    let defaults = KdfParams::DEFAULT;
    let kdf = KdfParams {
        m_kib: spec.m_kib.unwrap_or(defaults.m_kib),
        t: spec.t.unwrap_or(defaults.t),
        p: spec.p.unwrap_or(defaults.p),
    };
    kdf.check()?;
    // Checked before asking for the passphrase so nobody types it for nothing; the
    // no-clobber write below is what actually guarantees an existing file is kept.
    let path = params_file::path_for(vault_dir, &label);
    if path.symlink_metadata().is_ok() {
        return Err(Error::ParamsFileExists { path });
    }
    let passphrase = read_new_passphrase(&spec.source, &label)?;
    let mut salt = [0u8; SALT_LEN];
    envelope::random_bytes(&mut salt)?;
    let key = kdf.derive(&passphrase, &salt)?;
    let file = ParamsFile {
        verifier: kdf::verifier(&key),
        label,
        kdf,
        salt,
    };
    file.create(vault_dir)?;
    log::info!(
        "created passphrase KEK {} (Argon2id m={} KiB, t={}, p={})",
        file.label.as_str(),
        kdf.m_kib,
        kdf.t,
        kdf.p
    );
    let mut built = build(spec, &file.label, key)?;
    built.created = Some(Created::File(params_file::path_for(vault_dir, &file.label)));
    Ok(built)
}

/// Reads the new passphrase; typed at a prompt, it is asked twice, since a typo here would
/// lock every secret of the vault behind a passphrase nobody knows.
fn read_new_passphrase(source: &SecretSource, label: &Label) -> Result<SecretBytes, Error> {
    let id = kek_id(label)?;
    let first = source.read(&format!("New passphrase for KEK {id}: "))?;
    if *source == SecretSource::Prompt {
        let second = source.read("Repeat the passphrase: ")?;
        if first != second {
            return Err(Error::PassphrasesDiffer);
        }
    }
    Ok(first)
}
