//! The YubiKey PIV KEK on an emulated card (piv-card's, answering as a YubiKey 5), as the
//! root KEK of a tiered vault (its default mode: each card operation costs tens of
//! milliseconds, or a touch):
//!
//! - tiered mode `seal_data`/`open_data` of 64 bytes with the card's key as root against the
//!   same vault with an in-memory software root KEK (`scripts/bench.sh` divides them):
//!   after unlock the epoch key does the per-value work, so the card should cost nothing;
//! - unlock: the KEK built from the URI pinned in the vault (open the card, read the slot's
//!   certificate, verify the PIN from its file) and `Vault::open`, which opens the epoch key
//!   by one card ECDH; reported in ms, no target. Ten samples: each costs card operations.
//!
//! One card serves the whole run (`PivCards::start`), PIN in a file; without pcscd and
//! vsmartcard-vpcd this skips, saying so, unless `VAULT_REQUIRE_HW` is set.

mod common;

use criterion::{Criterion, SamplingMode};
use kek_providers::KekEnv;
use vault::{Kek, WrapMode};
use yubikey_tests::{DEFAULT_PIN, PinFile, PivCards};

/// Unlock samples: few, each costs card operations (about 60 ms an ECDH on the emulator).
const UNLOCK_SAMPLES: usize = 10;

fn main() {
    let Some(cards) = PivCards::start("yubikey benchmarks", 1) else {
        return;
    };
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion, &cards);
    criterion.final_summary();
}

fn bench(c: &mut Criterion, cards: &PivCards) {
    let pin = PinFile::new(DEFAULT_PIN);
    let dirs = tempfile::tempdir().expect("tempdir");
    let dir = |name: &str| dirs.path().join(name);
    let uri = pin.uri(Some(cards.card().serial()), "9d");
    let built = kek_providers::create(
        &uri,
        &KekEnv {
            vault_dir: &dir("tiered"),
        },
    )
    .expect("create the KEK in slot 9d");
    assert!(!built.provider.computes_in_process(), "a card operation");
    let card_kek = Kek {
        uri: built.uri,
        provider: built.provider,
    };
    let unlock_dir = dir("unlock");
    // Made now and opened later, when no other KEK holds the card.
    drop(common::vault(
        &unlock_dir,
        WrapMode::Tiered,
        card_kek.clone(),
    ));
    let vaults = common::TieredVaults::new(dir, card_kek);

    let mut group = c.benchmark_group("yubikey");
    vaults.bench(&mut group);
    drop(vaults);

    common::unlock::report_first_unlock("yubikey/unlock", &unlock_dir);
    group
        .sample_size(UNLOCK_SAMPLES)
        .sampling_mode(SamplingMode::Flat);
    common::unlock::bench_unlock(&mut group, "unlock_open_vault", &unlock_dir);
    group.finish();
}
