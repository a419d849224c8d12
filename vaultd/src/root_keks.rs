//! The root KEKs the daemon opened its vault with. Built from their URIs at start; dropped
//! at `Lock`, and with them what they hold in memory (a key file's key, a passphrase's
//! derived key, a token's logged-in session); built again from their sources at `Unlock`
//! (the key file and PIN file read again, the passphrase asked for again), so that an admin
//! certificate alone does not unlock a vault whose KEK sources are gone.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use envelope::SecretBytes;
use vault::Kek;

use crate::metrics::KekMetrics;

/// The daemon's root KEKs and where they come from.
#[derive(Debug)]
pub struct RootKeks {
    dir: PathBuf,
    uris: Vec<String>,
    built: Mutex<Option<Vec<Kek>>>,
    /// Wraps the KEKs built again at unlock, as the first ones were (see `metered`).
    metrics: Option<KekMetrics>,
}

impl RootKeks {
    /// `keks`, built from `uris` (or the vault's pinned URIs when empty) for the vault in `dir`.
    pub fn new(dir: PathBuf, uris: Vec<String>, keks: Vec<Kek>) -> Self {
        RootKeks {
            dir,
            uris,
            built: Mutex::new(Some(keks)),
            metrics: None,
        }
    }

    /// The same, with the KEKs built at unlock timed and counted by `metrics` (the ones
    /// given to `new` must already be: see `KekMetrics::instrument`).
    pub fn metered(mut self, metrics: KekMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The KEKs held now (none while locked).
    pub fn held(&self) -> Option<Vec<Kek>> {
        self.lock().clone()
    }

    /// The KEKs held now, or built afresh for one use (while locked).
    pub fn held_or_built(&self) -> Result<Vec<Kek>, vault::Error> {
        match self.held() {
            Some(keks) => Ok(keks),
            None => self.build(None),
        }
    }

    /// Drops the KEKs: their key material goes once the vault's keyring lets go too.
    pub fn drop_all(&self) {
        self.lock().take();
    }

    /// Builds the KEKs again from their sources (or with `passphrase` for passphrase KEKs).
    pub fn build(&self, passphrase: Option<&SecretBytes>) -> Result<Vec<Kek>, vault::Error> {
        let keks = Kek::build_all_with(&self.dir, &self.uris, passphrase)?;
        Ok(match &self.metrics {
            Some(metrics) => metrics.instrument(keks),
            None => keks,
        })
    }

    /// Holds `keks` (after a successful unlock).
    pub fn hold(&self, keks: Vec<Kek>) {
        *self.lock() = Some(keks);
    }

    fn lock(&self) -> MutexGuard<'_, Option<Vec<Kek>>> {
        self.built.lock().unwrap_or_else(|p| p.into_inner())
    }
}
