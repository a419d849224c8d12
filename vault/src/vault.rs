//! The Vault: a directory holding a marker, a store of envelopes, and the KEKs that open them.

use std::fs::DirBuilder;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use envelope::{Assurance, Context, Health, KekProvider, SecretBytes};

use crate::Error;
use crate::marker::{Marker, PinnedKek};
use crate::names::{Scope, check_key};
use crate::store::{SecretInfo, SecretStore, StoreKind, now_ms, open_store};

/// Largest secret value `set` accepts. Secrets are credentials and keys, not files; caller
/// data of any size up to the envelope limit goes through `seal_data`.
pub const MAX_VALUE_LEN: usize = 1 << 20;

/// AAD scope of the canary: not a user scope, so no secret can collide with it.
const CANARY_SCOPE: &str = "vault";
const CANARY_KEY: &str = "canary";
const CANARY_VALUE: &[u8] = b"vault canary v1";
/// AAD scope of caller data sealed with `seal_data`; the caller's context is the key.
const TRANSIT_SCOPE: &str = "transit";

/// A KEK the vault uses: the URI it was built from and the provider.
#[derive(Debug, Clone)]
pub struct Kek {
    /// The canonical URI, pinned in the marker at init.
    pub uri: String,
    /// The provider.
    pub provider: Arc<dyn KekProvider>,
}

/// One KEK's line in [`Status`].
#[derive(Debug, Clone)]
pub struct KekStatus {
    /// `kind:label#vN`.
    pub id: String,
    /// The URI it was built from.
    pub uri: String,
    /// Whether it answers now.
    pub health: Health,
    /// What it assures.
    pub assurance: Assurance,
}

/// What `status` reports.
#[derive(Debug, Clone)]
pub struct Status {
    /// The vault directory.
    pub dir: PathBuf,
    /// The store kind.
    pub store: StoreKind,
    /// How many secrets are stored.
    pub secrets: u64,
    /// The KEKs this vault was opened with.
    pub keks: Vec<KekStatus>,
    /// How much secret memory is locked.
    pub memory: envelope::memory::LockStatus,
}

/// An open vault. Safe to share between threads.
#[derive(Debug)]
pub struct Vault {
    dir: PathBuf,
    store: Box<dyn SecretStore>,
    keks: Vec<Kek>,
    providers: Vec<Arc<dyn KekProvider>>,
}

impl Vault {
    /// Creates a vault in `dir` (made 0700 if absent) with a `store` and the `keks` every
    /// secret will be wrapped under. The marker is written last, so a crash leaves no vault
    /// rather than half of one.
    pub fn init(dir: &Path, store: StoreKind, keks: Vec<Kek>) -> Result<Self, Error> {
        if keks.is_empty() {
            return Err(Error::NoKek);
        }
        match Marker::read(dir) {
            Err(Error::NoVault { .. }) => {}
            _ => {
                return Err(Error::AlreadyInitialised {
                    dir: dir.to_path_buf(),
                });
            }
        }
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(Error::io(format!("creating {}", dir.display())))?;
        let vault = Self::assemble(dir, store, keks)?;
        let canary = envelope::seal(CANARY_VALUE, &canary_context(), &vault.providers)?;
        let pinned = vault
            .keks
            .iter()
            .map(|k| PinnedKek {
                uri: k.uri.clone(),
                id: k.provider.id().to_string(),
            })
            .collect();
        Marker::new(store.to_string(), pinned, now_ms(), &canary).write_new(dir)?;
        Ok(vault)
    }

    /// Reads what the vault in `dir` pinned at init, without opening it.
    pub fn read_marker(dir: &Path) -> Result<Marker, Error> {
        Marker::read(dir)
    }

    /// Opens the vault in `dir` with one or more of its pinned KEKs. `store`, if given, must
    /// be the pinned kind: a vault never switches stores silently.
    pub fn open(dir: &Path, store: Option<StoreKind>, keks: Vec<Kek>) -> Result<Self, Error> {
        if keks.is_empty() {
            return Err(Error::NoKek);
        }
        let marker = Marker::read(dir)?;
        let pinned_kind: StoreKind = marker.store.parse().map_err(|_| Error::Marker {
            path: dir.join(crate::marker::MARKER_FILE),
            reason: format!("unknown store kind {:?}", marker.store),
        })?;
        if let Some(wanted) = store.filter(|w| *w != pinned_kind) {
            return Err(Error::StoreKindMismatch {
                dir: dir.to_path_buf(),
                pinned: pinned_kind.to_string(),
                wanted: wanted.to_string(),
            });
        }
        for kek in &keks {
            let id = kek.provider.id().to_string();
            if !marker.keks.iter().any(|p| p.id == id) {
                let pinned: Vec<&str> = marker.keks.iter().map(|p| p.id.as_str()).collect();
                return Err(Error::KekNotPinned {
                    id,
                    pinned: pinned.join(", "),
                });
            }
        }
        let vault = Self::assemble(dir, pinned_kind, keks)?;
        // Proves the KEKs open this vault before any secret is touched.
        envelope::open(&marker.canary(dir)?, &canary_context(), &vault.providers)?;
        Ok(vault)
    }

    fn assemble(dir: &Path, kind: StoreKind, keks: Vec<Kek>) -> Result<Self, Error> {
        let store = open_store(kind, dir)?;
        let providers = keks.iter().map(|k| Arc::clone(&k.provider)).collect();
        Ok(Vault {
            dir: dir.to_path_buf(),
            store,
            keks,
            providers,
        })
    }

    /// The vault directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stores `value` as a new version of `scope`/`key` and returns the version.
    pub fn set(&self, scope: &str, key: &str, value: &[u8]) -> Result<u64, Error> {
        let scope = Scope::parse(scope)?.to_string();
        check_key(key)?;
        if value.len() > MAX_VALUE_LEN {
            return Err(Error::ValueTooLarge {
                len: value.len(),
                max: MAX_VALUE_LEN,
            });
        }
        self.store.set(&scope, key, &mut |version| {
            Ok(envelope::seal(
                value,
                &Context::new(&scope, key, version),
                &self.providers,
            )?)
        })
    }

    /// The latest value of `scope`/`key`, or the value of `version`.
    pub fn get(&self, scope: &str, key: &str, version: Option<u64>) -> Result<SecretBytes, Error> {
        let scope = Scope::parse(scope)?.to_string();
        check_key(key)?;
        let (version, sealed) = self.store.get(&scope, key, version)?;
        Ok(envelope::open(
            &sealed,
            &Context::new(&scope, key, version),
            &self.providers,
        )?)
    }

    /// Deletes every version of `scope`/`key`.
    pub fn delete(&self, scope: &str, key: &str) -> Result<(), Error> {
        let scope = Scope::parse(scope)?.to_string();
        check_key(key)?;
        self.store.delete(&scope, key)
    }

    /// Names, versions and times of the secrets, in `scope` or all; never decrypts.
    pub fn list(&self, scope: Option<&str>) -> Result<Vec<SecretInfo>, Error> {
        let scope = scope.map(Scope::parse).transpose()?.map(|s| s.to_string());
        self.store.list(scope.as_deref())
    }

    /// Seals caller data for `context` (nothing is stored); `open_data` with the same
    /// context opens it.
    pub fn seal_data(&self, context: &str, data: &[u8]) -> Result<Vec<u8>, Error> {
        Ok(envelope::seal(
            data,
            &transit_context(context),
            &self.providers,
        )?)
    }

    /// Opens caller data sealed by `seal_data` with the same `context`.
    pub fn open_data(&self, context: &str, sealed: &[u8]) -> Result<SecretBytes, Error> {
        Ok(envelope::open(
            sealed,
            &transit_context(context),
            &self.providers,
        )?)
    }

    /// The store, the secret count, each KEK's health, and memory locking.
    pub fn status(&self) -> Result<Status, Error> {
        let keks = self
            .keks
            .iter()
            .map(|k| KekStatus {
                id: k.provider.id().to_string(),
                uri: k.uri.clone(),
                health: k.provider.health(),
                assurance: k.provider.assurance(),
            })
            .collect();
        Ok(Status {
            dir: self.dir.clone(),
            store: self.store.kind(),
            secrets: self.store.count()?,
            keks,
            memory: envelope::memory::lock_status(),
        })
    }
}

fn canary_context() -> Context<'static> {
    Context::new(CANARY_SCOPE, CANARY_KEY, 0)
}

fn transit_context(context: &str) -> Context<'_> {
    Context::new(TRANSIT_SCOPE, context, 0)
}
