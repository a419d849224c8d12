//! `vaultctl upgrade`: a format 2 vault (made before the integrity key) becomes format 3.
//!
//! The upgrade trusts the vault as it is now (whoever runs it vouches for it) and makes
//! that state authenticated: an integrity key sealed under every root KEK, canaries bound to
//! the vault id, MACs over `vault.json`, tagged stanzas for root KEKs that wrap without a
//! secret (epoch keys, and every stored envelope in direct mode), and a version counter for
//! every stored key.
//!
//! Crash safety: the new configuration is written to `vault.json.upgrade` first; the store
//! is changed next (each step can be repeated); `vault.json` is replaced last. A run that
//! finds `vault.json.upgrade` beside a format 2 `vault.json` continues with the integrity
//! key in it. Until `vault.json` is replaced, every other command refuses the vault.

use std::path::Path;
use std::sync::Arc;

use envelope::{Context, KekProvider};
use serde_json::Value;

use crate::config::{CONFIG_FILE, FORMAT_BEFORE_MAC, VaultConfig, sync_dir, synced_temp_file};
use crate::keyring::{
    IntegrityKeys, RootSet, mac_config, new_integrity_key, open_integrity_key, pin, verify_config,
};
use crate::store::{Replacement, open_store};
use crate::{Error, Kek, WrapMode};

/// The configuration written before the store is changed.
const UPGRADE_FILE: &str = "vault.json.upgrade";
/// Versions rewrapped per store transaction.
const BATCH: usize = 256;

/// What `upgrade` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpgradeReport {
    /// Keys that got a version counter.
    pub counters: u64,
    /// Stored versions whose root stanzas were tagged (direct mode, public-wrap KEKs).
    pub tagged: u64,
    /// Epoch keys sealed again with tagged stanzas.
    pub epochs: u64,
}

/// The pinned KEK URIs of the format 2 vault in `dir`, to build its KEKs with.
pub fn legacy_kek_uris(dir: &Path) -> Result<Vec<String>, Error> {
    let config = legacy_config(dir)?;
    Ok(config.kek_uris())
}

/// Upgrades the format 2 vault in `dir` with its KEKs (all of them: each one's canary and
/// stanzas are made again).
pub fn upgrade(dir: &Path, keks: Vec<Kek>) -> Result<UpgradeReport, Error> {
    let legacy = legacy_config(dir)?;
    let missing: Vec<String> = legacy
        .all_keks()
        .filter(|p| !keks.iter().any(|k| k.provider.id().to_string() == p.id))
        .map(|p| p.id.clone())
        .collect();
    if !missing.is_empty() {
        return Err(Error::IncompleteRoot {
            missing: missing.join(", "),
        });
    }
    let (config, keys, root) = match read_pending(dir, &legacy, &keks)? {
        Some(pending) => pending,
        None => start(dir, legacy, keks)?,
    };
    let mut report = UpgradeReport {
        epochs: config.epochs.len() as u64,
        ..UpgradeReport::default()
    };
    let store = open_store(config.store.parse()?, dir)?;
    if config.mode == WrapMode::Direct
        && root
            .raw_unwrap_set()
            .iter()
            .any(|p| p.wraps_without_secret())
    {
        report.tagged = retag_store(store.as_ref(), &root)?;
    }
    report.counters = store.adopt_heads(keys.as_ref())?;
    let pending = dir.join(UPGRADE_FILE);
    std::fs::rename(&pending, dir.join(CONFIG_FILE)).map_err(Error::io(format!(
        "replacing {CONFIG_FILE} with {}",
        pending.display()
    )))?;
    sync_dir(dir)?;
    Ok(report)
}

/// Makes the format 3 configuration and writes it to `vault.json.upgrade`.
fn start(
    dir: &Path,
    mut config: VaultConfig,
    keks: Vec<Kek>,
) -> Result<(VaultConfig, Arc<IntegrityKeys>, RootSet), Error> {
    // Canaries bound to the vault id, each made after the KEK opened its old canary.
    for kek in &keks {
        let id = kek.provider.id().to_string();
        let legacy_canary = |p: &crate::PinnedKek| p.id == id;
        if let Some(pinned) = config.all_keks().find(|p| legacy_canary(p)) {
            let opened = envelope::open(
                &pinned.canary_bytes()?,
                &Context::new("vault", "canary", 0),
                &[Arc::clone(&kek.provider)],
            )?;
            if opened.expose_secret() != b"vault canary v1" {
                return Err(envelope::Error::Tampered.into());
            }
        }
        let fresh = pin(kek, &config.id)?;
        for pinned in config
            .keks
            .iter_mut()
            .chain(
                config
                    .threshold
                    .iter_mut()
                    .flat_map(|t| t.members.iter_mut()),
            )
            .filter(|p| p.id == id)
        {
            pinned.canary.clone_from(&fresh.canary);
        }
    }
    let root = RootSet::build(&config, keks)?;
    let (sealed, keys) = new_integrity_key(&config.id, &root)?;
    config.integrity_key = sealed;
    let root = root.with_integrity(&keys);
    for record in &mut config.epochs {
        let context = Context::new("keyring", "epoch", u64::from(record.number));
        let resealed = envelope::rewrap(
            &record.key_bytes()?,
            &context,
            root.raw_unwrap_set(),
            root.wrap_set()?,
        )?;
        record.key = crate::config::encode(&resealed.envelope);
    }
    mac_config(&mut config, &keys);
    let text = serde_json::to_vec_pretty(&config).map_err(|e| Error::Marker {
        path: dir.join(CONFIG_FILE),
        reason: e.to_string(),
    })?;
    synced_temp_file(dir, &text)?
        .persist(dir.join(UPGRADE_FILE))
        .map_err(|e| Error::io(format!("writing {UPGRADE_FILE}"))(e.error))?;
    sync_dir(dir)?;
    Ok((config, keys, root))
}

/// The configuration an earlier, interrupted run wrote, if any, opened and verified.
fn read_pending(
    dir: &Path,
    legacy: &VaultConfig,
    keks: &[Kek],
) -> Result<Option<(VaultConfig, Arc<IntegrityKeys>, RootSet)>, Error> {
    let path = dir.join(UPGRADE_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("reading {}", path.display()))(e)),
    };
    let config = VaultConfig::from_bytes(&path, &bytes)?;
    if config.id != legacy.id {
        return Err(Error::Marker {
            path,
            reason: "it belongs to another vault; remove it and run the upgrade again".into(),
        });
    }
    let mut root = RootSet::build(&config, keks.to_vec())?;
    let keys = open_integrity_key(&config.id, &config.integrity_key_bytes()?, &mut root)?;
    verify_config(&config, &keys)?;
    let root = root.with_integrity(&keys);
    Ok(Some((config, keys, root)))
}

/// Rewraps every stored version whose root stanzas are not tagged yet (direct mode).
fn retag_store(store: &dyn crate::SecretStore, root: &RootSet) -> Result<u64, Error> {
    // Tagged first: a version tagged by an interrupted run opens with it; then as written.
    let unwrap_with: Vec<Arc<dyn KekProvider>> = root
        .unwrap_set()
        .iter()
        .chain(root.raw_unwrap_set())
        .cloned()
        .collect();
    let mut tagged = 0;
    let mut after = None;
    loop {
        let page = store.scan(after.as_ref(), BATCH)?;
        let Some(last) = page.last() else {
            return Ok(tagged);
        };
        after = Some(last.position());
        let mut batch = Vec::with_capacity(page.len());
        for version in &page {
            let context = Context::new(&version.scope, &version.key, version.version);
            let rewrapped =
                envelope::rewrap(&version.envelope, &context, &unwrap_with, root.wrap_set()?)?;
            batch.push(Replacement {
                scope: version.scope.clone(),
                key: version.key.clone(),
                version: version.version,
                old: version.envelope.clone(),
                new: rewrapped.envelope,
            });
        }
        tagged += store.replace(&batch)? as u64;
    }
}

/// Reads `vault.json` of format 2 as a format 3 configuration with empty MACs and integrity
/// key (the fields format 3 added).
fn legacy_config(dir: &Path) -> Result<VaultConfig, Error> {
    let path = dir.join(CONFIG_FILE);
    let bytes = std::fs::read(&path).map_err(Error::io(format!("reading {}", path.display())))?;
    let damaged = |reason: String| Error::Marker {
        path: path.clone(),
        reason,
    };
    let mut value: Value =
        serde_json::from_slice(&bytes).map_err(|e| damaged(format!("not valid JSON ({e})")))?;
    match value.get("format").and_then(Value::as_u64) {
        Some(f) if f == u64::from(FORMAT_BEFORE_MAC) => {}
        Some(f) if f == u64::from(VaultConfig::FORMAT) => {
            return Err(Error::Unsupported(format!(
                "the vault in {} is already format {f}: nothing to upgrade",
                dir.display()
            )));
        }
        _ => return Err(damaged("it is not a format 2 vault configuration".into())),
    }
    let object = value
        .as_object_mut()
        .ok_or_else(|| damaged("it is not a JSON object".into()))?;
    object.insert("format".into(), VaultConfig::FORMAT.into());
    object.insert("integrity_key".into(), "".into());
    object.insert("mac".into(), "".into());
    for list in ["keks", "epochs"] {
        add_empty_macs(object.get_mut(list));
    }
    if let Some(threshold) = object.get_mut("threshold").and_then(Value::as_object_mut) {
        add_empty_macs(threshold.get_mut("members"));
    }
    let text = serde_json::to_vec(&value).map_err(|e| damaged(e.to_string()))?;
    VaultConfig::from_bytes(&path, &text)
}

fn add_empty_macs(list: Option<&mut Value>) {
    for entry in list.and_then(Value::as_array_mut).into_iter().flatten() {
        if let Some(entry) = entry.as_object_mut() {
            entry.insert("mac".into(), "".into());
        }
    }
}
