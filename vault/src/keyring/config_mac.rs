//! The MACs of `vault.json`: one over each pinned KEK, one over each epoch, and one over the
//! whole file, all under the integrity key's `vault.json` key. The whole-file MAC decides;
//! the others say what was changed when it does not verify.

use super::integrity::{IntegrityKeys, tampered};
use crate::Error;
use crate::config::{EpochRecord, PinnedKek, VaultConfig};

/// Sets every MAC of `config` (entries first, then the whole file, which covers theirs).
pub(crate) fn mac_config(config: &mut VaultConfig, keys: &IntegrityKeys) {
    let id = config.id.clone();
    for kek in config_keks_mut(config) {
        kek.mac = keys.config_mac(&kek_parts(&id, kek).as_parts());
    }
    for epoch in &mut config.epochs {
        epoch.mac = keys.config_mac(&epoch_parts(&id, epoch).as_parts());
    }
    config.mac = keys.config_mac(&whole_parts(config).as_parts());
}

/// Checks the MACs of `config`; the error names what was added or changed without the
/// vault's keys.
pub(crate) fn verify_config(config: &VaultConfig, keys: &IntegrityKeys) -> Result<(), Error> {
    if keys.config_mac_ok(&whole_parts(config).as_parts(), &config.mac) {
        return Ok(());
    }
    let mut found = Vec::new();
    for kek in config.all_keks() {
        if !keys.config_mac_ok(&kek_parts(&config.id, kek).as_parts(), &kek.mac) {
            found.push(format!(
                "KEK {} ({}) was pinned or changed by someone without this vault's keys",
                kek.id, kek.uri
            ));
        }
    }
    for epoch in &config.epochs {
        if !keys.config_mac_ok(&epoch_parts(&config.id, epoch).as_parts(), &epoch.mac) {
            found.push(format!(
                "epoch {} (its key) was added or changed by someone without this vault's keys",
                epoch.number
            ));
        }
    }
    if found.is_empty() {
        found.push(
            "its settings (mode, policies, lock state, which KEKs or epochs it lists) were changed by someone without this vault's keys"
                .to_owned(),
        );
    }
    Err(tampered(found.join("; ")))
}

/// Sets the MAC of one epoch record (kept outside `vault.json`: in a shared store's ledger).
pub(crate) fn mac_epoch(vault_id: &str, epoch: &mut EpochRecord, keys: &IntegrityKeys) {
    epoch.mac = keys.config_mac(&epoch_parts(vault_id, epoch).as_parts());
}

/// Checks the MAC of one epoch record kept outside `vault.json`.
pub(crate) fn verify_epoch(
    vault_id: &str,
    epoch: &EpochRecord,
    keys: &IntegrityKeys,
) -> Result<(), Error> {
    if keys.config_mac_ok(&epoch_parts(vault_id, epoch).as_parts(), &epoch.mac) {
        Ok(())
    } else {
        Err(tampered(format!(
            "epoch {} in the store (its key) was added or changed by someone without this vault's keys",
            epoch.number
        )))
    }
}

fn config_keks_mut(config: &mut VaultConfig) -> impl Iterator<Item = &mut PinnedKek> {
    config.keks.iter_mut().chain(
        config
            .threshold
            .iter_mut()
            .flat_map(|t| t.members.iter_mut()),
    )
}

/// What one MAC covers: a domain name, then JSON of the entry with its MAC left empty.
struct Parts {
    domain: &'static [u8],
    vault_id: Vec<u8>,
    json: Vec<u8>,
}

impl Parts {
    fn as_parts(&self) -> [&[u8]; 3] {
        [self.domain, &self.vault_id, &self.json]
    }
}

fn kek_parts(vault_id: &str, kek: &PinnedKek) -> Parts {
    let unmaced = PinnedKek {
        mac: String::new(),
        ..kek.clone()
    };
    Parts {
        domain: b"pinned kek",
        vault_id: vault_id.as_bytes().to_vec(),
        json: serde_json::to_vec(&unmaced).unwrap_or_else(|_| unreachable_json()),
    }
}

fn epoch_parts(vault_id: &str, epoch: &EpochRecord) -> Parts {
    let unmaced = EpochRecord {
        mac: String::new(),
        ..epoch.clone()
    };
    Parts {
        domain: b"epoch",
        vault_id: vault_id.as_bytes().to_vec(),
        json: serde_json::to_vec(&unmaced).unwrap_or_else(|_| unreachable_json()),
    }
}

fn whole_parts(config: &VaultConfig) -> Parts {
    let unmaced = VaultConfig {
        mac: String::new(),
        ..config.clone()
    };
    Parts {
        domain: b"vault.json",
        vault_id: config.id.as_bytes().to_vec(),
        json: serde_json::to_vec(&unmaced).unwrap_or_else(|_| unreachable_json()),
    }
}

/// serde_json cannot fail on these types (strings, numbers, vectors: no maps with non-string
/// keys, no failing Serialize impls). Were it to, every MAC would be over the same bytes and
/// nothing would verify by accident against a forged file: panic instead of guessing.
fn unreachable_json() -> Vec<u8> {
    panic!("serializing vault.json for its MAC failed")
}
