//! What the KEK provider benchmarks (`software`, `pkcs11`, `tpm`, `yubikey`, `keystore`) share: the KEK
//! opened from its URI, the vaults on it (direct and tiered) and on an in-memory software
//! root KEK, the `seal_data`/`open_data` measurements (64 bytes unless sized), and the unlock time
//! ([`unlock`]).
#![allow(dead_code, reason = "each benchmark uses a part of the shared module")]

pub mod unlock;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use criterion::{BenchmarkGroup, measurement::WallTime};
use envelope::{SecretBytes, SoftwareKek};
use kek_providers::KekEnv;
use vault::{EpochPolicy, InitOptions, Kek, StoreKind, Vault, WrapMode};

const DATA: [u8; 64] = [0u8; 64];
/// The `seal_data` context: the vault seals it as scope `transit`, key `bench`, version 0.
pub const CONTEXT: &str = "bench";
/// Epoch wraps leased at a time: the benchmark should not rewrite vault.json while it runs.
const LEASE: u64 = 1 << 20;

/// The device KEK `uri` names, opened for a vault in `vault_dir`.
pub fn open_kek(uri: &str, vault_dir: &Path) -> Kek {
    let built = kek_providers::open(uri, &KekEnv { vault_dir }).expect("open the KEK");
    Kek {
        uri: built.uri,
        provider: built.provider,
    }
}

/// The vaults to measure, in `dir(name)`: direct on `device_kek`, and the tiered pair on it.
pub struct Vaults {
    pub direct: Vault,
    pub tiered: TieredVaults,
}

impl Vaults {
    pub fn new(dir: impl Fn(&str) -> PathBuf, device_kek: Kek) -> Self {
        Self {
            direct: vault(&dir("direct"), WrapMode::Direct, device_kek.clone()),
            tiered: TieredVaults::new(dir, device_kek),
        }
    }

    /// The tiered vaults, device root beside software root: seal, then open.
    pub fn bench_tiered(&self, group: &mut BenchmarkGroup<'_, WallTime>) {
        self.tiered.bench(group);
    }
}

/// Tiered vaults in `dir("tiered")` on a root KEK of a provider and in `dir("software")` on
/// an in-memory software root KEK: after unlock the epoch key does the per-value work in
/// both, so the provider should cost nothing per value.
pub struct TieredVaults {
    pub root: Vault,
    pub software: Vault,
}

impl TieredVaults {
    pub fn new(dir: impl Fn(&str) -> PathBuf, root_kek: Kek) -> Self {
        Self {
            root: vault(&dir("tiered"), WrapMode::Tiered, root_kek),
            software: vault(
                &dir("software"),
                WrapMode::Tiered,
                Kek {
                    uri: "memory:bench".into(),
                    provider: Arc::new(SoftwareKek::random("bench").expect("kek")),
                },
            ),
        }
    }

    /// Provider root beside software root: seal, then open.
    pub fn bench(&self, group: &mut BenchmarkGroup<'_, WallTime>) {
        bench_seal(group, "tiered_seal_64B", &self.root);
        bench_seal(group, "software_seal_64B", &self.software);
        bench_open(group, "tiered_open_64B", &self.root);
        bench_open(group, "software_open_64B", &self.software);
    }
}

/// A vault in `dir` (memory store) with `kek` as its one root KEK.
pub fn vault(dir: &Path, mode: WrapMode, kek: Kek) -> Vault {
    let options = InitOptions {
        mode: Some(mode),
        epoch_policy: EpochPolicy {
            max_wraps: 1 << 40,
            ..EpochPolicy::default()
        },
        ..InitOptions::new(StoreKind::Memory)
    };
    let vault = Vault::init_with(dir, &options, vec![kek]).expect("init");
    vault.set_epoch_lease(LEASE);
    vault
}

/// `seal_data` of 64 bytes, as `name`.
pub fn bench_seal(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, vault: &Vault) {
    bench_seal_data(group, name, vault, &DATA);
}

/// `open_data` of what `seal_data` of 64 bytes made, as `name`.
pub fn bench_open(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, vault: &Vault) {
    bench_open_data(group, name, vault, &DATA);
}

/// `seal_data` of `data`, as `name`.
pub fn bench_seal_data(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    vault: &Vault,
    data: &[u8],
) {
    group.bench_function(name, |b| b.iter(|| seal_data(vault, data)));
}

/// `open_data` of what `seal_data` of `data` made, as `name`.
pub fn bench_open_data(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    vault: &Vault,
    data: &[u8],
) {
    let sealed = seal_data(vault, data);
    group.bench_function(name, |b| b.iter(|| open(vault, &sealed)));
}

/// `seal_data` of 64 bytes.
pub fn seal(vault: &Vault) -> Vec<u8> {
    seal_data(vault, &DATA)
}

/// `seal_data` of `data`.
pub fn seal_data(vault: &Vault, data: &[u8]) -> Vec<u8> {
    vault
        .seal_data(black_box(CONTEXT), None, black_box(data))
        .expect("seal_data")
}

/// `open_data` of `sealed`.
pub fn open(vault: &Vault, sealed: &[u8]) -> SecretBytes {
    vault
        .open_data(black_box(CONTEXT), None, black_box(sealed))
        .expect("open_data")
}
