//! Fills an initialised vault with secrets for the daemon's store benchmark
//! (`scripts/load-store.sh`): `COUNT` secrets of 64 bytes named as
//! [`benches::preloaded_key`] names them, in the `global` scope, through `Vault::set_many` in
//! large transactions (a million `Put` calls would take far longer than the measurement).
//!
//! ```text
//! cargo run --release -p benches --example store-fill -- VAULT_DIR KEK_URI COUNT
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use benches::{TARGET_SIZE, preloaded_key};
use kek_providers::KekEnv;
use vault::{Kek, Vault};

/// Secrets per `set_many` transaction.
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
    let [dir, uri, count] = args.as_slice() else {
        return Err("usage: store-fill VAULT_DIR KEK_URI COUNT".into());
    };
    let dir = PathBuf::from(dir);
    let count: usize = count.parse().map_err(|e| format!("COUNT {count:?}: {e}"))?;
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
    let value = [7u8; TARGET_SIZE];
    let started = Instant::now();
    for first in (0..count).step_by(CHUNK) {
        let keys: Vec<String> = (first..count.min(first + CHUNK))
            .map(preloaded_key)
            .collect();
        let entries: Vec<(&str, &str, &[u8])> = keys
            .iter()
            .map(|k| ("global", k.as_str(), &value[..]))
            .collect();
        vault
            .set_many(&entries)
            .map_err(|e| format!("filling: {e}"))?;
    }
    eprintln!(
        "store-fill: {count} secrets in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
