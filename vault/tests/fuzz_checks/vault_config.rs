//! The `vault_config` fuzz target's check, shared by the target
//! (fuzz/fuzz_targets/vault_config.rs) and the corpus replay (tests/fuzz_corpus.rs).

use std::path::Path;

use vault::{Error, VaultConfig};

/// The check: whether `data` parsed as a `vault.json`, after checking that a refusal is a
/// damaged-marker error (or, for format 2, the upgrade notice), and that an accepted configuration pins a KEK and is written (as
/// `VaultConfig::update` writes it) to bytes that parse back to the same configuration.
pub fn check_vault_config(data: &[u8]) -> bool {
    let path = Path::new("/vault/vault.json");
    match VaultConfig::from_bytes(path, data) {
        Ok(config) => {
            assert!(config.all_keks().next().is_some(), "no KEK pinned");
            assert_eq!(config.kek_uris().len(), config.all_keks().count());
            for kek in config.all_keks() {
                let _ = kek.canary_bytes();
            }
            for epoch in &config.epochs {
                let _ = epoch.key_bytes();
                let _ = epoch.is_closed(&config.epoch_policy, i64::MAX);
                let _ = epoch.is_closed(&config.epoch_policy, i64::MIN);
            }
            let written = serde_json::to_vec_pretty(&config).expect("serialize");
            let again = VaultConfig::from_bytes(path, &written)
                .unwrap_or_else(|e| panic!("the written configuration is refused: {e}"));
            assert_eq!(again, config, "the written configuration reads differently");
            true
        }
        Err(e) => {
            assert!(
                matches!(e, Error::Marker { .. } | Error::FormatUpgrade { .. }),
                "{e:?}"
            );
            false
        }
    }
}
