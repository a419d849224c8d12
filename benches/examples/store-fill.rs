//! Fills an initialised vault with secrets for the daemon's store benchmark
//! (`scripts/load-store.sh`): `COUNT` secrets of 64 bytes named as
//! [`benches::preloaded_key`] names them, in the `global` scope, through `Vault::set_many` in
//! large transactions (a million `Put` calls would take far longer than the measurement):
//! `CHUNK` secrets each, 50,000 unless given, from `THREADS` threads (1 unless given). A
//! PostgreSQL vault needs smaller transactions (`scripts/load-postgres.sh`): its `set_many`
//! takes an advisory lock per key, and the server's lock table (`max_locks_per_transaction`
//! x `max_connections` entries, 6,400 by default) runs out at a few thousand ("out of shared
//! memory"). And it makes a few round trips to the server per secret, which threads on
//! connections of their own overlap (SQLite's writes take turns: no use there).
//!
//! ```text
//! cargo run --release -p benches --example store-fill -- VAULT_DIR KEK_URI COUNT [CHUNK [THREADS]]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use benches::{TARGET_SIZE, preloaded_key};
use kek_providers::KekEnv;
use vault::{Kek, Vault};

/// Secrets per `set_many` transaction, unless given.
const CHUNK: usize = 50_000;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("store-fill: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (dir, uri, count, rest) = match args.as_slice() {
        [dir, uri, count, rest @ ..] if rest.len() <= 2 => (dir, uri, count, rest),
        _ => return Err("usage: store-fill VAULT_DIR KEK_URI COUNT [CHUNK [THREADS]]".into()),
    };
    let dir = PathBuf::from(dir);
    let count: usize = count.parse().map_err(|e| format!("COUNT {count:?}: {e}"))?;
    let above_0 = |what: &str, n: &String| {
        n.parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{what} {n:?}: not a number above 0"))
    };
    let chunk = rest.first().map_or(Ok(CHUNK), |n| above_0("CHUNK", n))?;
    let threads = rest.get(1).map_or(Ok(1), |n| above_0("THREADS", n))?;
    let built = kek_providers::open(uri, &KekEnv { vault_dir: &dir })
        .map_err(|e| format!("opening the KEK {uri}: {e}"))?;
    let kek = Kek {
        uri: built.uri,
        provider: built.provider,
    };
    let vault =
        Vault::open(&dir, None, vec![kek]).map_err(|e| format!("opening the vault: {e}"))?;
    // Every wrap of the fill leased at once: one vault.json write instead of one per lease.
    vault.set_epoch_lease(count as u64 + 1);
    let started = Instant::now();
    // Thread t fills chunks t, t + threads, t + 2 threads...
    std::thread::scope(|scope| {
        let fills: Vec<_> = (0..threads)
            .map(|t| {
                let vault = &vault;
                scope.spawn(move || {
                    let mut firsts = (0..count).step_by(chunk).skip(t).step_by(threads);
                    firsts.try_for_each(|first| fill(vault, first..count.min(first + chunk)))
                })
            })
            .collect();
        fills.into_iter().try_for_each(|f| {
            f.join()
                .unwrap_or_else(|_| Err("a filling thread panicked".into()))
        })
    })?;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "store-fill: {count} secrets in {seconds:.1} s ({:.0}/s, {chunk} per transaction, {threads} thread(s))",
        count as f64 / seconds
    );
    Ok(())
}

/// Secrets `numbers` in one `set_many` transaction.
fn fill(vault: &Vault, numbers: std::ops::Range<usize>) -> Result<(), String> {
    let value = [7u8; TARGET_SIZE];
    let keys: Vec<String> = numbers.map(preloaded_key).collect();
    let entries: Vec<(&str, &str, &[u8])> = keys
        .iter()
        .map(|k| ("global", k.as_str(), &value[..]))
        .collect();
    vault
        .set_many(&entries)
        .map(drop)
        .map_err(|e| format!("filling: {e}"))
}
