//! Tiered-mode `seal_data`/`open_data` of a 64-byte value beside the same operations with
//! the in-memory software KEK directly (`envelope::seal`/`open`, one KEK): what the vault
//! path (keyring lock, epoch lease, key selection) adds to a software wrap.
//! `scripts/bench-ratios.sh` divides the two.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use envelope::{Context, KekProvider, SoftwareKek, open, seal};
use vault::{EpochPolicy, InitOptions, Kek, StoreKind, Vault, WrapMode};

const DATA: [u8; 64] = [0u8; 64];
/// Epoch wraps leased at a time: the benchmark should not rewrite vault.json while it runs.
const LEASE: u64 = 1 << 20;

fn keyring(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root: Arc<dyn KekProvider> = Arc::new(SoftwareKek::random("bench").expect("kek"));
    let options = InitOptions {
        mode: Some(WrapMode::Tiered),
        epoch_policy: EpochPolicy {
            max_wraps: 1 << 40,
            ..EpochPolicy::default()
        },
        ..InitOptions::new(StoreKind::Memory)
    };
    let vault = Vault::init_with(
        dir.path(),
        &options,
        vec![Kek {
            uri: "memory:bench".into(),
            provider: Arc::clone(&root),
        }],
    )
    .expect("init");
    vault.set_epoch_lease(LEASE);
    let sealed = vault.seal_data("bench", &DATA).expect("seal_data");

    let keks = [Arc::clone(&root)];
    let ctx = Context::new("transit", "bench", 0);
    let sealed_direct = seal(&DATA, &ctx, &keks).expect("seal");

    let mut group = c.benchmark_group("keyring");
    group.bench_function("tiered_seal_64B", |b| {
        b.iter(|| {
            vault
                .seal_data(black_box("bench"), black_box(&DATA))
                .expect("seal_data")
        })
    });
    group.bench_function("tiered_open_64B", |b| {
        b.iter(|| {
            vault
                .open_data(black_box("bench"), black_box(&sealed))
                .expect("open_data")
        })
    });
    group.bench_function("memory_kek_seal_64B", |b| {
        b.iter(|| seal(black_box(&DATA), black_box(&ctx), &keks).expect("seal"))
    });
    group.bench_function("memory_kek_open_64B", |b| {
        b.iter(|| open(black_box(&sealed_direct), black_box(&ctx), &keks).expect("open"))
    });
    group.finish();
}

criterion_group!(benches, keyring);
criterion_main!(benches);
