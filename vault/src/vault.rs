//! The Vault: a directory holding its configuration, a store of envelopes, and, while
//! unlocked, the keys that open them.

use std::fs::DirBuilder;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use envelope::{Context, KekProvider, SecretBytes};

use crate::Error;
use crate::cache::{Cache, DEFAULT_CACHE_TTL};
use crate::config::{EpochPolicy, ThresholdPolicy, VaultConfig, WrapMode};
use crate::keyring::{
    Epochs, IntegrityKeys, Keyring, RootSet, mac_config, new_integrity_key, open_root, pin,
};
use crate::names::{Scope, check_key};
use crate::store::{
    ListPage, ListPosition, SecretInfo, SecretStore, StoreKind, now_ms, open_store,
};

/// Largest secret value `set` accepts. Secrets are credentials and keys, not files; caller
/// data of any size up to the envelope limit goes through `seal_data`.
pub const MAX_VALUE_LEN: usize = 1 << 20;
/// Epoch wraps a process leases at a time (tiered mode); see `Vault::set_epoch_lease`.
const DEFAULT_EPOCH_LEASE: u64 = 64;
/// AAD scope of caller data sealed with `seal_data`; the caller's context is the key. Data
/// bound to a caller has the scope `transit:principal:<id>` instead (see `transit_scope`).
const TRANSIT_SCOPE: &str = "transit";

/// A KEK the vault uses: the URI it was built from and the provider.
#[derive(Debug, Clone)]
pub struct Kek {
    /// The canonical URI, pinned in the configuration.
    pub uri: String,
    /// The provider.
    pub provider: Arc<dyn KekProvider>,
}

impl Kek {
    /// Builds the KEKs named by `uris`, or the ones pinned in the vault in `dir` when `uris`
    /// is empty. A KEK that cannot be built (an unset passphrase variable, a missing key
    /// file, an unplugged token) is reported and skipped as long as another one remains:
    /// any one KEK (or m of a threshold group) opens the vault.
    pub fn build_all(dir: &Path, uris: &[String]) -> Result<Vec<Kek>, Error> {
        Self::build_all_with(dir, uris, None)
    }

    /// Like [`Kek::build_all`], with the passphrase of passphrase KEKs given instead of read
    /// from their sources (a daemon's API takes it: the daemon cannot prompt).
    pub fn build_all_with(
        dir: &Path,
        uris: &[String],
        passphrase: Option<&SecretBytes>,
    ) -> Result<Vec<Kek>, Error> {
        let uris = if uris.is_empty() {
            VaultConfig::read(dir)?.kek_uris()
        } else {
            uris.to_vec()
        };
        Self::build_uris(dir, &uris, passphrase)
    }

    /// Builds the KEKs named by `uris` (see [`Kek::build_all`]).
    fn build_uris(
        dir: &Path,
        uris: &[String],
        passphrase: Option<&SecretBytes>,
    ) -> Result<Vec<Kek>, Error> {
        let env = kek_providers::KekEnv { vault_dir: dir };
        let mut keks = Vec::new();
        let mut failures = Vec::new();
        for uri in uris {
            let built = match passphrase {
                Some(passphrase) => kek_providers::open_with_passphrase(uri, &env, passphrase),
                None => kek_providers::open(uri, &env),
            };
            match built {
                Ok(built) => keks.push(Kek {
                    uri: built.uri,
                    provider: built.provider,
                }),
                Err(e) => failures.push((uri, e)),
            }
        }
        Self::built_or_failed(keks, failures)
    }
}

impl Kek {
    /// For a command that only reads: the root KEKs to open the vault in `dir` with, asking
    /// as few devices as it can. Any one any-of root KEK opens the vault, and every envelope
    /// wrapped since it was pinned has a stanza for it (wrapping takes every root KEK), so the
    /// pinned KEKs are built in order until one holds a secret of its own: with a token and
    /// a recovery KEK, only the token is opened. An envelope older than that KEK's pinning
    /// gives `Error::NoUsableKek`; [`Kek::build_all`] then opens it.
    ///
    /// A KEK that wraps without a secret (a TPM, a card's public key) does not end the search,
    /// and is kept beside the one that does: a stanza for such a KEK alone could have been
    /// planted, and it is still checked (and warned about) as before. Each KEK is built at most once
    /// (a wrong PIN is tried once); with one KEK or a threshold group (every member is needed
    /// anyway) this is [`Kek::build_all`].
    ///
    /// `config` is the vault's configuration as read by [`Vault::read_config`], to be given to
    /// [`Vault::open_with_config`] next: the file is read once, and the KEKs are built from
    /// the very bytes that are then verified.
    pub fn build_for_reading(dir: &Path, config: &VaultConfig) -> Result<Vec<Kek>, Error> {
        if config.threshold.is_some() || config.keks.len() < 2 {
            return Self::build_uris(dir, &config.kek_uris(), None);
        }
        let env = kek_providers::KekEnv { vault_dir: dir };
        let mut keks = Vec::new();
        let mut failures = Vec::new();
        for pinned in &config.keks {
            match kek_providers::open(&pinned.uri, &env) {
                Ok(built) => {
                    let holds_secret = !built.provider.wraps_without_secret();
                    keks.push(Kek {
                        uri: built.uri,
                        provider: built.provider,
                    });
                    if holds_secret {
                        break;
                    }
                }
                Err(e) => failures.push((&pinned.uri, e)),
            }
        }
        Self::built_or_failed(keks, failures)
    }

    /// `keks` if any was built (warning about the `failures`), else the failures' error.
    fn built_or_failed(
        keks: Vec<Kek>,
        failures: Vec<(&String, kek_providers::Error)>,
    ) -> Result<Vec<Kek>, Error> {
        if keks.is_empty() {
            return Err(match failures.len() {
                0 => Error::NoKek,
                1 => failures
                    .into_iter()
                    .next()
                    .map_or(Error::NoKek, |(_, e)| Error::from(e)),
                _ => Error::NoKekOpened {
                    reasons: failures
                        .iter()
                        .map(|(uri, e)| format!("{uri}: {e}"))
                        .collect::<Vec<_>>()
                        .join("; "),
                },
            });
        }
        for (uri, failure) in failures {
            log::warn!("KEK {uri} cannot be opened: {failure}; continuing with the other KEKs");
        }
        Ok(keks)
    }
}

/// How to create a vault.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// The store, pinned.
    pub store: StoreKind,
    /// The wrap mode; `None` picks tiered when a KEK is a device (it does not compute in
    /// process) or a threshold is set, direct otherwise.
    pub mode: Option<WrapMode>,
    /// Require any `m` of the given KEKs instead of any one.
    pub threshold: Option<usize>,
    /// When epochs close (tiered mode).
    pub epoch_policy: EpochPolicy,
}

impl InitOptions {
    /// Defaults for `store`.
    pub fn new(store: StoreKind) -> Self {
        InitOptions {
            store,
            mode: None,
            threshold: None,
            epoch_policy: EpochPolicy::default(),
        }
    }
}

/// An open vault. Safe to share between threads.
#[derive(Debug)]
pub struct Vault {
    pub(crate) dir: PathBuf,
    pub(crate) id: String,
    pub(crate) mode: WrapMode,
    pub(crate) store: Box<dyn SecretStore>,
    /// `None` while locked.
    keyring: RwLock<Option<Keyring>>,
    /// The integrity keys: held from open (also when the vault opens locked, for the audit
    /// key) until `lock`.
    integrity: RwLock<Option<Arc<IntegrityKeys>>>,
    pub(crate) cache: Cache,
    lease: AtomicU64,
}

impl Vault {
    /// Creates a vault in `dir` with the defaults for `store`.
    pub fn init(dir: &Path, store: StoreKind, keks: Vec<Kek>) -> Result<Self, Error> {
        Self::init_with(dir, &InitOptions::new(store), keks)
    }

    /// Creates a vault in `dir` (made 0700 if absent) whose root KEKs are `keks`. The
    /// configuration is written last, so a crash leaves no vault rather than half of one.
    pub fn init_with(dir: &Path, options: &InitOptions, keks: Vec<Kek>) -> Result<Self, Error> {
        if keks.is_empty() {
            return Err(Error::NoKek);
        }
        match VaultConfig::read(dir) {
            Err(Error::NoVault { .. }) => {}
            _ => {
                return Err(Error::AlreadyInitialised {
                    dir: dir.to_path_buf(),
                });
            }
        }
        if let Some(m) = options.threshold
            && !(2..=keks.len()).contains(&m)
        {
            return Err(Error::Unsupported(format!(
                "a threshold of {m} with {} KEKs: it must be at least 2 and at most the number of KEKs",
                keks.len()
            )));
        }
        // A KEK that calls out of the process (an HSM, a TPM, a card), even an emulated one,
        // is asked once per unlock in tiered mode instead of once per secret.
        let device = keks.iter().any(|k| !k.provider.computes_in_process());
        let mode = options
            .mode
            .unwrap_or(if device || options.threshold.is_some() {
                WrapMode::Tiered
            } else {
                WrapMode::Direct
            });
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(Error::io(format!("creating {}", dir.display())))?;
        let id = random_id()?;
        let pinned = keks
            .iter()
            .map(|kek| pin(kek, &id))
            .collect::<Result<Vec<_>, _>>()?;
        let (anyof, threshold) = match options.threshold {
            Some(m) => (Vec::new(), Some(ThresholdPolicy { m, members: pinned })),
            None => (pinned, None),
        };
        let mut config = VaultConfig {
            format: VaultConfig::FORMAT,
            id,
            store: options.store.to_string(),
            mode,
            keks: anyof,
            threshold,
            created_at_ms: now_ms(),
            epoch_policy: options.epoch_policy,
            epochs: Vec::new(),
            min_decryption_version: 1,
            locked: false,
            audit_anchor: None,
            integrity_key: String::new(),
            mac: String::new(),
        };
        let root = RootSet::build(&config, keks)?;
        let (sealed, integrity) = new_integrity_key(&config.id, &root)?;
        config.integrity_key = sealed;
        let root = root.with_integrity(&integrity);
        let store = open_store(options.store, dir)?;
        if let Some(ledger) = store.epoch_ledger()
            && (store.count_versions()? > 0 || ledger.newest_epoch()?.is_some())
        {
            // Its heads are tagged with another vault's key: every read would be refused.
            return Err(Error::StoreLocation {
                path: dir.join(crate::store::STORE_LOCATION_FILE),
                reason: "the database already holds another vault's secrets: to run a replica of that vault, copy its directory (vault.json and store.json) here instead of running init; for a new vault, name an empty database".into(),
            });
        }
        if mode == WrapMode::Tiered {
            match store.epoch_ledger() {
                // Replicas share the store's epochs, not vault.json's.
                Some(ledger) => {
                    let (epoch, _) = crate::keyring::new_ledger_epoch(
                        &config.id, 1, &root, &integrity, None, 0,
                    )?;
                    ledger.add_epoch(&epoch)?;
                }
                None => {
                    let (record, _) = crate::keyring::new_epoch_for_init(&config.id, &root)?;
                    config.epochs.push(record);
                }
            }
        }
        mac_config(&mut config, &integrity);
        let keyring =
            Keyring::assemble(&config, root, Arc::clone(&integrity), store.epoch_ledger())?;
        config.create_new(dir)?;
        Ok(Self::assemble(
            dir,
            &config,
            store,
            Some(keyring),
            Some(integrity),
        ))
    }

    /// Reads the configuration of the vault in `dir`, without opening it.
    pub fn read_config(dir: &Path) -> Result<VaultConfig, Error> {
        VaultConfig::read(dir)
    }

    /// Opens the vault in `dir` with one or more of its root KEKs (any one, or `m` of a
    /// threshold group). `store`, if given, must be the pinned kind. A locked vault opens
    /// locked: the KEKs are checked but no key is opened until [`Vault::unlock`].
    pub fn open(dir: &Path, store: Option<StoreKind>, keks: Vec<Kek>) -> Result<Self, Error> {
        Self::open_with_config(dir, VaultConfig::read(dir)?, store, keks)
    }

    /// Like [`Vault::open`], with the configuration as read by [`Vault::read_config`] (not yet
    /// trusted: it is verified here exactly as `open` verifies the file it reads), so that a
    /// caller that needed it to choose the KEKs does not read and parse the file again.
    pub fn open_with_config(
        dir: &Path,
        config: VaultConfig,
        store: Option<StoreKind>,
        keks: Vec<Kek>,
    ) -> Result<Self, Error> {
        let pinned_kind: StoreKind = config.store.parse().map_err(|_| Error::Marker {
            path: dir.join(crate::config::CONFIG_FILE),
            reason: format!("unknown store kind {:?}", config.store),
        })?;
        if let Some(wanted) = store.filter(|w| *w != pinned_kind) {
            return Err(Error::StoreKindMismatch {
                dir: dir.to_path_buf(),
                pinned: pinned_kind.to_string(),
                wanted: wanted.to_string(),
            });
        }
        // Before the keys only where the store keeps epochs (a shared one): opening a local
        // store may create its file, which a wrong KEK should not leave behind.
        let early_store = match pinned_kind {
            StoreKind::Postgres => Some(open_store(pinned_kind, dir)?),
            _ => None,
        };
        let ledger = early_store.as_ref().and_then(|s| s.epoch_ledger());
        let (keyring, integrity) = if config.locked {
            // The KEKs are checked and the configuration verified; no data key is opened.
            let (_, integrity) = open_root(&config, keks)?;
            (None, integrity)
        } else {
            let keyring = Keyring::unlock(&config, keks, ledger)?;
            let integrity = Arc::clone(&keyring.integrity);
            (Some(keyring), integrity)
        };
        let store = match early_store {
            Some(store) => store,
            None => open_store(pinned_kind, dir)?,
        };
        Ok(Self::assemble(
            dir,
            &config,
            store,
            keyring,
            Some(integrity),
        ))
    }

    fn assemble(
        dir: &Path,
        config: &VaultConfig,
        store: Box<dyn SecretStore>,
        keyring: Option<Keyring>,
        integrity: Option<Arc<IntegrityKeys>>,
    ) -> Self {
        let cache = Cache::new(DEFAULT_CACHE_TTL, store.change_feed());
        Vault {
            dir: dir.to_path_buf(),
            id: config.id.clone(),
            mode: config.mode,
            store,
            keyring: RwLock::new(keyring),
            integrity: RwLock::new(integrity),
            cache,
            lease: AtomicU64::new(DEFAULT_EPOCH_LEASE),
        }
    }

    /// Sets how long opened secrets stay cached (zero disables the cache). On a store other
    /// processes write (PostgreSQL), the cache follows their changes through the store's
    /// change feed, and serves nothing while the feed is more than its bound behind.
    pub fn set_cache_ttl(&mut self, ttl: Duration) {
        self.cache = Cache::new(ttl, self.store.change_feed());
    }

    /// Takes part, for as long as this vault is open, in electing the one process that runs
    /// the store's singleton jobs (a store replicas share: PostgreSQL). For daemons: a
    /// one-shot command that won would leave the jobs undone until its lease expired.
    pub fn join_leader_election(&self) -> Result<(), Error> {
        self.store.join_leader_election()
    }

    /// Verifies the replicas' audit chains and checkpoints in a store that replicas share
    /// (see [`crate::audit::replicas`]); `None` for a store of one machine.
    pub fn verify_replica_audit(
        &self,
    ) -> Result<Option<crate::audit::replicas::ReplicasReport>, Error> {
        match self.store.audit_chains() {
            Some(chains) => {
                crate::audit::replicas::verify_replicas(chains, &self.audit_key()?).map(Some)
            }
            None => Ok(None),
        }
    }

    /// Whether this process leads the store's singleton jobs now; `None` when the store has
    /// none (it is not shared).
    pub fn leads(&self) -> Option<bool> {
        self.store.leads()
    }

    /// Sets how many epoch wraps this process reserves at a time: a long-running daemon
    /// takes more (fewer configuration writes), a one-shot command fewer (less is lost when
    /// it exits).
    pub fn set_epoch_lease(&self, wraps: u64) {
        self.lease.store(wraps.max(1), Ordering::Relaxed);
    }

    /// The vault directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the vault is locked.
    pub fn is_locked(&self) -> bool {
        self.read_keyring().is_none()
    }

    /// Zeroizes every key and cached value (the integrity key too: only the copy an audit
    /// log took of its own key stays) and marks the vault locked on disk, so that other
    /// processes open it locked too.
    pub fn lock(&self) -> Result<(), Error> {
        let keyring = self.write_keyring().take();
        self.cache.flush();
        let keys = self
            .integrity
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        drop(keyring);
        let keys = keys.ok_or(Error::Locked)?;
        VaultConfig::update(&self.dir, &keys, |c| {
            c.locked = true;
            Ok(())
        })?;
        Ok(())
    }

    /// Opens the keys again with `keks` (any one root KEK, or `m` of a threshold group)
    /// and marks the vault unlocked on disk.
    pub fn unlock(&self, keks: Vec<Kek>) -> Result<(), Error> {
        let config = VaultConfig::read(&self.dir)?;
        let keyring = Keyring::unlock(&config, keks, self.store.epoch_ledger())?;
        let keys = Arc::clone(&keyring.integrity);
        *self.write_keyring() = Some(keyring);
        *self.integrity.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::clone(&keys));
        if config.locked {
            VaultConfig::update(&self.dir, &keys, |c| {
                c.locked = false;
                Ok(())
            })?;
        }
        Ok(())
    }

    /// The audit log's key, derived from the integrity key: a copy in locked memory for the
    /// log to keep (it outlives `lock`, so that denials are still recorded while locked).
    pub fn audit_key(&self) -> Result<crate::audit::AuditKey, Error> {
        let key = self.integrity_keys()?.audit_key()?;
        crate::audit::AuditKey::from_slice(key.expose_secret())
    }

    /// The integrity keys held now, or `Locked`.
    pub(crate) fn integrity_keys(&self) -> Result<Arc<IntegrityKeys>, Error> {
        self.integrity
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or(Error::Locked)
    }

    /// The audit log's anchor in this vault's `vault.json`, MACed with the integrity keys held
    /// now (for a command that verifies a log while it has the vault open).
    pub fn audit_anchor(&self) -> Result<crate::audit::VaultAnchor, Error> {
        Ok(crate::audit::VaultAnchor::held(
            &self.dir,
            self.integrity_keys()?,
        ))
    }

    /// The audit log's anchor in this vault's `vault.json`, MACed with whatever integrity
    /// keys the vault holds at each use: a daemon's log keeps no copy of them, so while the
    /// vault is locked no anchor is written (the first checkpoint after unlock writes it).
    pub fn following_audit_anchor(self: &Arc<Self>) -> crate::audit::VaultAnchor {
        crate::audit::VaultAnchor::following(self)
    }

    pub(crate) fn read_keyring(&self) -> RwLockReadGuard<'_, Option<Keyring>> {
        // The keyring is replaced whole, never left half-changed by a panicking writer.
        self.keyring.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn write_keyring(&self) -> RwLockWriteGuard<'_, Option<Keyring>> {
        self.keyring.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` with the keyring, or fails with `Locked`.
    pub(crate) fn with_keyring<T>(
        &self,
        f: impl FnOnce(&Keyring) -> Result<T, Error>,
    ) -> Result<T, Error> {
        match self.read_keyring().as_ref() {
            Some(keyring) => f(keyring),
            None => Err(Error::Locked),
        }
    }

    pub(crate) fn lease(&self) -> u64 {
        self.lease.load(Ordering::Relaxed)
    }

    /// Seals `plaintext` for `ctx` under the current keys.
    pub(crate) fn seal_with(
        &self,
        keyring: &Keyring,
        plaintext: &[u8],
        ctx: &Context<'_>,
    ) -> Result<Vec<u8>, Error> {
        let keks =
            keyring.seal_keks(&self.dir, &self.id, self.lease(), self.store.epoch_ledger())?;
        Ok(envelope::seal(plaintext, ctx, keks.as_slice())?)
    }

    /// Stores `value` as a new version of `scope`/`key` and returns the version.
    pub fn set(&self, scope: &str, key: &str, value: &[u8]) -> Result<u64, Error> {
        self.set_if(scope, key, value, None)
    }

    /// Like [`Vault::set`], only if `expected` (when given) is the secret's current version,
    /// 0 for a secret that has none (never written, or deleted): compare-and-set, checked in
    /// the store's write transaction, so of two writers expecting the same version exactly
    /// one succeeds; the other gets [`Error::VersionMismatch`] and nothing changes.
    pub fn set_if(
        &self,
        scope: &str,
        key: &str,
        value: &[u8],
        expected: Option<u64>,
    ) -> Result<u64, Error> {
        let scope = Scope::parse(scope)?.to_string();
        check_key(key)?;
        if value.len() > MAX_VALUE_LEN {
            return Err(Error::ValueTooLarge {
                len: value.len(),
                max: MAX_VALUE_LEN,
            });
        }
        let version = self.with_keyring(|keyring| {
            // The keys are chosen (in tiered mode, the wrap counted) before the store's write
            // and not inside it: choosing may read or start epochs, which a shared store keeps
            // in the same database.
            let keks =
                keyring.seal_keks(&self.dir, &self.id, self.lease(), self.store.epoch_ledger())?;
            self.store.set(
                &scope,
                key,
                expected,
                keyring.integrity.as_ref(),
                &mut |version| {
                    let ctx = Context::new(&scope, key, version);
                    Ok(envelope::seal(value, &ctx, keks.as_slice())?)
                },
            )
        })?;
        self.cache.invalidate(&scope, key);
        Ok(version)
    }

    /// The latest value of `scope`/`key`, or the value of `version`.
    pub fn get(&self, scope: &str, key: &str, version: Option<u64>) -> Result<SecretBytes, Error> {
        self.get_versioned(scope, key, version)
            .map(|(_, value)| value)
    }

    /// Like [`Vault::get`], with the version the value is.
    pub fn get_versioned(
        &self,
        scope: &str,
        key: &str,
        version: Option<u64>,
    ) -> Result<(u64, SecretBytes), Error> {
        let scope = Scope::parse(scope)?.to_string();
        check_key(key)?;
        self.with_keyring(|keyring| {
            if let Some(hit) = self.cache.get(&scope, key, version) {
                return Ok(hit);
            }
            let generation = self.cache.generation();
            let (found, sealed) =
                self.store
                    .get(&scope, key, version, keyring.integrity.as_ref())?;
            let value = self.open_with(keyring, &sealed, &Context::new(&scope, key, found))?;
            self.cache
                .put(&scope, key, version, found, &value, generation);
            Ok((found, value))
        })
    }

    /// The value of `scope`/`key` if the JIT cache holds it: never touches the store or a
    /// KEK, so a daemon can answer it while slow hardware holds its worker pool. `None` when
    /// locked, invalid or not cached.
    pub fn get_cached(
        &self,
        scope: &str,
        key: &str,
        version: Option<u64>,
    ) -> Option<(u64, SecretBytes)> {
        let scope = Scope::parse(scope).ok()?.to_string();
        self.read_keyring().as_ref()?;
        self.cache.get(&scope, key, version)
    }

    /// Lookups in the JIT cache since this vault was opened, and how many found a fresh
    /// value (for a daemon's metrics: cheaper than [`Vault::status`], which asks the KEKs).
    pub fn cache_stats(&self) -> (u64, u64) {
        self.cache.stats()
    }

    /// Deletes every version of `scope`/`key`.
    pub fn delete(&self, scope: &str, key: &str) -> Result<(), Error> {
        let scope = Scope::parse(scope)?.to_string();
        check_key(key)?;
        self.with_keyring(|keyring| self.store.delete(&scope, key, keyring.integrity.as_ref()))?;
        self.cache.invalidate(&scope, key);
        Ok(())
    }

    /// Names, versions and times of the secrets, in `scope` or all; never decrypts. Every
    /// page of [`Vault::list_page`] at once: for a large vault, page instead.
    pub fn list(&self, scope: Option<&str>) -> Result<Vec<SecretInfo>, Error> {
        const PAGE: usize = 10_000;
        let mut all = Vec::new();
        let mut after = None;
        loop {
            let page = self.list_page(scope, after.as_ref(), PAGE)?;
            all.extend(page.secrets);
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(all),
            }
        }
    }

    /// Up to `limit` secrets of `scope` (or of every scope) after `after`, in scope then key
    /// order, and where the next page starts (`None` on the last page). Pages are read from
    /// the store one at a time: a secret written or deleted between two pages shows in a
    /// later page or not at all, and every other secret shows exactly once.
    pub fn list_page(
        &self,
        scope: Option<&str>,
        after: Option<&ListPosition>,
        limit: usize,
    ) -> Result<ListPage, Error> {
        let scope = scope.map(Scope::parse).transpose()?.map(|s| s.to_string());
        let limit = limit.max(1);
        let secrets = self.with_keyring(|_| self.store.list(scope.as_deref(), after, limit))?;
        let next = (secrets.len() == limit)
            .then(|| secrets.last())
            .flatten()
            .map(|last| ListPosition {
                scope: last.scope.clone(),
                key: last.key.clone(),
            });
        Ok(ListPage { secrets, next })
    }

    /// How many secrets the listing of `scope` (or of every scope) holds over all its pages,
    /// counted in the store without reading the names out (one statement; it still reads
    /// every head of the scope, so a caller pays for it once per listing, not per page).
    pub fn count(&self, scope: Option<&str>) -> Result<u64, Error> {
        let scope = scope.map(Scope::parse).transpose()?.map(|s| s.to_string());
        self.with_keyring(|_| self.store.count_in(scope.as_deref()))
    }

    /// Seals caller data for `context` (nothing is stored); `open_data` with the same
    /// context and binding opens it.
    ///
    /// `bound_to` names the principal the data is bound to, if any: its id becomes part of
    /// the envelope's AAD (scope `transit:principal:<id>` instead of `transit`), so the data
    /// opens only for that same principal, whoever else may use the context. `None` seals
    /// for the context alone, shared by everyone allowed on it.
    pub fn seal_data(
        &self,
        context: &str,
        bound_to: Option<&str>,
        data: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let scope = transit_scope(bound_to)?;
        self.with_keyring(|keyring| {
            self.seal_with(keyring, data, &Context::new(&scope, context, 0))
        })
    }

    /// Opens caller data sealed by `seal_data` with the same `context` and `bound_to`.
    pub fn open_data(
        &self,
        context: &str,
        bound_to: Option<&str>,
        sealed: &[u8],
    ) -> Result<SecretBytes, Error> {
        let scope = transit_scope(bound_to)?;
        self.with_keyring(|keyring| {
            self.open_with(keyring, sealed, &Context::new(&scope, context, 0))
        })
    }

    /// Opens `sealed` for `ctx`. In tiered mode an envelope under an epoch that another
    /// process started after this one was unlocked opens once that epoch is opened too.
    fn open_with(
        &self,
        keyring: &Keyring,
        sealed: &[u8],
        ctx: &Context<'_>,
    ) -> Result<SecretBytes, Error> {
        match envelope::open(sealed, ctx, keyring.unwrap_keks()?.as_slice()) {
            Err(envelope::Error::NoUsableKek { .. })
                if keyring.open_new_epochs(&self.dir, self.store.epoch_ledger())? =>
            {
                Ok(envelope::open(
                    sealed,
                    ctx,
                    keyring.unwrap_keks()?.as_slice(),
                )?)
            }
            other => Ok(other?),
        }
    }

    /// Runs `call` where no KEK device may be used (a daemon's async worker): `Some` of its
    /// result when it needed only keys in memory, `None` when it would have asked a device
    /// (an HSM or TPM wrap or unwrap, an epoch opened or started, the epoch lease renewed,
    /// which also writes `vault.json`). It was stopped before anything happened; run it
    /// again where devices may be used.
    pub fn without_devices<T>(&self, call: impl FnOnce(&Vault) -> T) -> Option<T> {
        crate::in_memory::without_devices(|| call(self))
    }

    /// Whether this process's epoch lease is running low (tiered mode): [`renew_epoch_lease`]
    /// then leases the next block before sealing would have to wait for it.
    ///
    /// [`renew_epoch_lease`]: Vault::renew_epoch_lease
    pub fn epoch_lease_low(&self) -> bool {
        self.read_keyring()
            .as_ref()
            .is_some_and(|k| k.lease_running_low(self.lease()))
    }

    /// Leases the next block of epoch wraps ahead of need (tiered mode; a no-op when the lease
    /// is not low or another renewal is under way). Writes `vault.json`, and starts an epoch
    /// with the root KEKs if the current one closed: run it where devices may be used. Seals
    /// go on meanwhile.
    pub fn renew_epoch_lease(&self) -> Result<(), Error> {
        self.with_keyring(|keyring| {
            keyring.renew_lease_ahead(&self.dir, &self.id, self.lease(), self.store.epoch_ledger())
        })
    }

    /// Whether every root KEK this vault was unlocked with computes in process memory (see
    /// `KekProvider::computes_in_process`): then sealing and opening never wait on a device,
    /// and a daemon may run them inline instead of on its bounded pool. False while locked.
    pub fn keks_are_software(&self) -> bool {
        self.read_keyring().as_ref().is_some_and(|k| {
            k.root
                .given()
                .iter()
                .all(|kek| kek.provider.computes_in_process())
        })
    }

    /// Moves caller data sealed for `context` (and `bound_to`, as `seal_data` took it) onto
    /// the current keys (the payload is not re-encrypted; see `envelope::rewrap`). The
    /// binding stays as it was.
    pub fn rewrap_data(
        &self,
        context: &str,
        bound_to: Option<&str>,
        sealed: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let scope = transit_scope(bound_to)?;
        self.with_keyring(|keyring| {
            let keks =
                keyring.seal_keks(&self.dir, &self.id, self.lease(), self.store.epoch_ledger())?;
            let rewrapped = envelope::rewrap(
                sealed,
                &Context::new(&scope, context, 0),
                keyring.unwrap_keks()?.as_slice(),
                keks.as_slice(),
            )?;
            Ok(rewrapped.envelope)
        })
    }

    /// Ends the epoch lease of this process (tests and `rotate`).
    pub(crate) fn end_lease(&self, keyring: &Keyring) {
        if let Some(mut epochs) = keyring.epochs() {
            Epochs::end_lease(&mut epochs);
        }
    }
}

/// The AAD scope of caller data: `transit`, or `transit:principal:<id>` when it is bound to
/// the principal `id`. No stored secret's scope starts with `transit`, and the scope is
/// length-prefixed in the AAD, so the two never meet each other or a stored secret.
fn transit_scope(bound_to: Option<&str>) -> Result<String, Error> {
    match bound_to {
        None => Ok(TRANSIT_SCOPE.to_owned()),
        Some(id) => {
            let principal =
                Scope::parse(&format!("principal:{id}")).map_err(|_| Error::InvalidScope {
                    scope: format!("principal:{}", crate::names::shorten_name(id)),
                    reason: "transit data can only be bound to a principal id: 1 to 64 of \
                             A-Z a-z 0-9 . _ @ + - not starting with '.'"
                        .into(),
                })?;
            Ok(format!("{TRANSIT_SCOPE}:{principal}"))
        }
    }
}

/// 8 random bytes in hex: names the vault's epoch keys.
fn random_id() -> Result<String, Error> {
    let mut id = [0u8; 8];
    envelope::random_bytes(&mut id)?;
    Ok(id.iter().map(|b| format!("{b:02x}")).collect())
}
