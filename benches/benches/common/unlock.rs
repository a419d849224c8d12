//! The unlock time of a vault whose root KEK is a provider's, as a starting process pays it:
//! the KEKs built from the URIs pinned in the vault (`Kek::build_all`), then `Vault::open`,
//! which unlocks (opens the epoch key with the root KEK). Each iteration drops the vault, and
//! with it the KEK, outside the timed part, so the next one starts with nothing open.

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{BenchmarkGroup, measurement::WallTime};
use vault::{Kek, Vault};

/// Measures the unlock of the vault in `dir`, as `name`.
pub fn bench_unlock(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, dir: &Path) {
    group.bench_function(name, |b| {
        b.iter_custom(|n| {
            let mut total = Duration::ZERO;
            for _ in 0..n {
                let started = Instant::now();
                let vault = open_vault(dir);
                total += started.elapsed();
                drop(vault);
            }
            total
        })
    });
}

/// Times one unlock in parts, on stderr as `<what>: ...` (the criterion figure is the whole).
pub fn report_first_unlock(what: &str, dir: &Path) {
    let started = Instant::now();
    let keks = Kek::build_all(dir, &[]).expect("build the pinned KEKs");
    let built = started.elapsed();
    let vault = Vault::open(dir, None, keks).expect("open the vault");
    let total = started.elapsed();
    drop(vault);
    eprintln!(
        "{what}: first unlock in this run {:.2} ms: KEK built from its pinned URI {:.2} ms, \
         Vault::open (unlock) {:.2} ms",
        ms(total),
        ms(built),
        ms(total - built)
    );
}

/// What a starting process does: the KEKs from the URIs pinned in the vault, then open and
/// unlock.
fn open_vault(dir: &Path) -> Vault {
    let keks = Kek::build_all(dir, &[]).expect("build the pinned KEKs");
    Vault::open(dir, None, keks).expect("open the vault")
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
