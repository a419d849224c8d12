//! The software KEKs of the default build, each measurement beside its limit in the same run
//! (`scripts/bench.sh` divides them):
//!
//! - the file KEK (`file:<path>`, a random key in a file of its own) in direct mode:
//!   `seal_data`/`open_data` of 32 B, 64 B, 1 KiB and 64 KiB against `envelope::seal`/`open`
//!   of the same data with an in-memory software KEK (the same ChaCha20-Poly1305 wrap without
//!   the vault around it); reported, no target (none was set);
//! - the passphrase KEK's unlock: the KEK built from the URI pinned in the vault (the
//!   passphrase read from its file, then Argon2id with the vault's costs, 64 MiB and 3 passes
//!   by default) and `Vault::open`, which opens the epoch key with it; reported in ms. Ten
//!   samples: each costs an Argon2id run.

mod common;

use std::hint::black_box;
use std::sync::Arc;

use benches::SECRET_SIZES;
use common::{bench_open_data, bench_seal_data};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use envelope::{Context, KekProvider, SoftwareKek, open, seal};
use kek_providers::KekEnv;
use vault::{Kek, WrapMode};

/// Unlock samples: few, each costs an Argon2id run (about 160 ms here).
const UNLOCK_SAMPLES: usize = 10;

fn software(c: &mut Criterion) {
    let dirs = tempfile::tempdir().expect("tempdir");
    let dir = |name: &str| dirs.path().join(name);
    let file_kek = create(&format!("file:{}", dir("file.key").display()), &dir("file"));
    let direct = common::vault(&dir("file"), WrapMode::Direct, file_kek);

    let memory: Arc<dyn KekProvider> = Arc::new(SoftwareKek::random("bench").expect("kek"));
    let keks = [memory];
    // The context `seal_data` uses: scope `transit`, key `bench`, version 0.
    let ctx = Context::new("transit", common::CONTEXT, 0);

    let mut group = c.benchmark_group("software");
    for (size, label) in SECRET_SIZES {
        let data = vec![0u8; size];
        let sealed = seal(&data, &ctx, &keks).expect("seal");
        group.throughput(Throughput::Bytes(size as u64));
        bench_seal_data(
            &mut group,
            &format!("file_direct_seal_{label}"),
            &direct,
            &data,
        );
        group.bench_function(format!("memory_kek_seal_{label}"), |b| {
            b.iter(|| seal(black_box(&data), black_box(&ctx), &keks).expect("seal"))
        });
        bench_open_data(
            &mut group,
            &format!("file_direct_open_{label}"),
            &direct,
            &data,
        );
        group.bench_function(format!("memory_kek_open_{label}"), |b| {
            b.iter(|| open(black_box(&sealed), black_box(&ctx), &keks).expect("open"))
        });
    }

    let passphrase_file = dir("passphrase");
    std::fs::write(&passphrase_file, "correct horse battery staple").expect("passphrase file");
    let unlock_dir = dir("passphrase-vault");
    let passphrase_kek = create(
        &format!("passphrase:file={};label=bench", passphrase_file.display()),
        &unlock_dir,
    );
    drop(common::vault(&unlock_dir, WrapMode::Tiered, passphrase_kek));
    common::unlock::report_first_unlock("software/passphrase_unlock", &unlock_dir);
    group
        .throughput(Throughput::Elements(1))
        .sample_size(UNLOCK_SAMPLES)
        .sampling_mode(SamplingMode::Flat);
    common::unlock::bench_unlock(&mut group, "passphrase_unlock_open_vault", &unlock_dir);
    group.finish();
}

/// Creates the KEK `uri` names for a vault in `vault_dir`.
fn create(uri: &str, vault_dir: &std::path::Path) -> Kek {
    let built = kek_providers::create(uri, &KekEnv { vault_dir }).expect("create the KEK");
    Kek {
        uri: built.uri,
        provider: built.provider,
    }
}

criterion_group!(benches, software);
criterion_main!(benches);
