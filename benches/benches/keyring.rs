//! Tiered-mode `seal_data`/`open_data` of 32 B, 64 B, 1 KiB and 64 KiB values beside the same
//! operations with the in-memory software KEK directly (`envelope::seal`/`open`, one KEK):
//! what the vault path (keyring lock, epoch lease, key selection) adds to a software wrap.
//! `scripts/bench.sh` divides the two (the target applies at 64 B, where it was set).

use std::hint::black_box;
use std::sync::Arc;

use benches::SECRET_SIZES;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use envelope::{Context, KekProvider, SoftwareKek, open, seal};
use vault::{EpochPolicy, InitOptions, Kek, StoreKind, Vault, WrapMode};

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
    let keks = [Arc::clone(&root)];
    let ctx = Context::new("transit", "bench", 0);

    let mut group = c.benchmark_group("keyring");
    for (size, label) in SECRET_SIZES {
        let data = vec![0u8; size];
        let sealed = vault.seal_data("bench", None, &data).expect("seal_data");
        let sealed_direct = seal(&data, &ctx, &keks).expect("seal");
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(format!("tiered_seal_{label}"), |b| {
            b.iter(|| {
                vault
                    .seal_data(black_box("bench"), None, black_box(&data))
                    .expect("seal_data")
            })
        });
        group.bench_function(format!("memory_kek_seal_{label}"), |b| {
            b.iter(|| seal(black_box(&data), black_box(&ctx), &keks).expect("seal"))
        });
        group.bench_function(format!("tiered_open_{label}"), |b| {
            b.iter(|| {
                vault
                    .open_data(black_box("bench"), None, black_box(&sealed))
                    .expect("open_data")
            })
        });
        group.bench_function(format!("memory_kek_open_{label}"), |b| {
            b.iter(|| open(black_box(&sealed_direct), black_box(&ctx), &keks).expect("open"))
        });
    }
    group.finish();
}

criterion_group!(benches, keyring);
criterion_main!(benches);
