//! The OS keystore KEK (`keyring:service=...;account=...`, a random key in the Secret
//! Service) on a private, unlocked gnome-keyring, as the root KEK of a tiered vault. Named
//! `keystore`, not `keyring`: that group is the vault's own keyring of epoch keys.
//!
//! - tiered mode `seal_data`/`open_data` of 64 bytes with the keystore's key as root against
//!   the same vault with an in-memory software root KEK (`scripts/bench.sh` divides
//!   them): after unlock the epoch key does the per-value work in both;
//! - unlock: the KEK built from the URI pinned in the vault (one Secret Service lookup over
//!   D-Bus, on a thread of its own with a deadline) and `Vault::open`, which opens the epoch
//!   key with it; reported in ms, no target.
//!
//! The keystore KEK computes in process once read, so its own default mode is direct; the
//! tiered vault here is asked for tiered mode, to compare the root KEKs alone.
//!
//! The whole `main` runs in a child process under `dbus-run-session` with its own
//! gnome-keyring (`keystore_tests::main_in_keyring_session`); without gnome-keyring,
//! secret-tool or D-Bus it skips, saying so, unless `VAULT_REQUIRE_HW` is set.

mod common;

use criterion::Criterion;
use kek_providers::KekEnv;
use keystore_tests::Keyring;
use vault::{Kek, WrapMode};

/// The entry the root KEK's key is kept in.
const KEK_URI: &str = "keyring:service=vault-bench;account=root";

fn main() {
    keystore_tests::main_in_keyring_session(|keyring| {
        let mut criterion = Criterion::default().configure_from_args();
        bench(&mut criterion, keyring);
        criterion.final_summary();
    });
}

fn bench(c: &mut Criterion, keyring: &Keyring) {
    let dir = |name: &str| keyring.dir().join(name);
    let built = kek_providers::create(
        KEK_URI,
        &KekEnv {
            vault_dir: &dir("tiered"),
        },
    )
    .expect("create the KEK's keyring entry");
    assert_eq!(
        keystore_tests::lookup("vault-bench", "root").map(|key| key.len()),
        Some(32)
    );
    let keystore_kek = Kek {
        uri: built.uri,
        provider: built.provider,
    };
    let unlock_dir = dir("unlock");
    drop(common::vault(
        &unlock_dir,
        WrapMode::Tiered,
        keystore_kek.clone(),
    ));
    let vaults = common::TieredVaults::new(dir, keystore_kek);

    let mut group = c.benchmark_group("keystore");
    vaults.bench(&mut group);
    common::unlock::report_first_unlock("keystore/unlock", &unlock_dir);
    common::unlock::bench_unlock(&mut group, "unlock_open_vault", &unlock_dir);
    group.finish();
}
