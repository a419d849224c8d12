//! Where envelopes are kept: `trait SecretStore` and its implementations (SQLite, PostgreSQL,
//! memory).
//!
//! Stores hold envelope bytes only (no plaintext at rest, ever) and never decrypt: `list`
//! answers from metadata. Every `set` adds a new version in one durable transaction, so a
//! crash leaves either the old or the new value.

mod audit_chains;
mod feed;
mod heads;
mod ledger;
mod memory;
mod postgres;
mod sqlite;
mod sqlite_schema;

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub use audit_chains::{AuditChains, ChainHead, StoredCheckpoint};
pub use feed::ChangeFeed;
pub use heads::{HeadAuth, KeyHead};
pub use ledger::{EpochLedger, LedgerEpoch};
pub use memory::MemoryStore;
pub use postgres::{
    DEFAULT_MAX_STALENESS, PASSWORD_ENV, PostgresStore, STORE_LOCATION_FILE, StoreLocation,
};
pub(crate) use sqlite::STORE_FILE;
pub use sqlite::SqliteStore;

use crate::Error;

/// Which store a vault uses; pinned in the vault marker at init.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreKind {
    /// SQLite in the vault directory (`secrets.db`): the embedded default.
    Sqlite,
    /// Process memory: nothing survives the process. For tests.
    Memory,
    /// A PostgreSQL database that `store.json` in the vault directory names: several vaultd
    /// replicas can share it.
    Postgres,
}

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreKind::Sqlite => "sqlite",
            StoreKind::Memory => "memory",
            StoreKind::Postgres => "postgres",
        })
    }
}

impl FromStr for StoreKind {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        match text {
            "sqlite" => Ok(StoreKind::Sqlite),
            "memory" => Ok(StoreKind::Memory),
            "postgres" => Ok(StoreKind::Postgres),
            other => Err(Error::UnknownStoreKind(other.chars().take(40).collect())),
        }
    }
}

/// What `list` tells about a secret: never its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretInfo {
    /// The scope, in its canonical text form.
    pub scope: String,
    /// The key name.
    pub key: String,
    /// The latest version.
    pub version: u64,
    /// How many versions are kept.
    pub versions: u64,
    /// When the first version was written (Unix milliseconds).
    pub created_at: i64,
    /// When the latest version was written (Unix milliseconds).
    pub updated_at: i64,
}

/// One stored version, as `scan` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVersion {
    /// The scope.
    pub scope: String,
    /// The key name.
    pub key: String,
    /// The version.
    pub version: u64,
    /// The envelope.
    pub envelope: Vec<u8>,
}

impl StoredVersion {
    /// Where a scan that stopped after this version resumes.
    pub fn position(&self) -> ScanPosition {
        ScanPosition {
            scope: self.scope.clone(),
            key: self.key.clone(),
            version: self.version,
        }
    }
}

/// A place in the (scope, key, version) order of a scan: the scan resumes after it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct ScanPosition {
    /// The scope.
    pub scope: String,
    /// The key name.
    pub key: String,
    /// The version.
    pub version: u64,
}

/// Where a paged listing resumes: after this scope and key (the last of the previous page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPosition {
    /// The scope of the last secret listed.
    pub scope: String,
    /// Its key.
    pub key: String,
}

impl ListPosition {
    /// The position as an opaque page token (what the API hands to its callers).
    pub fn to_token(&self) -> String {
        let text = format!("{}\n{}", self.scope, self.key);
        format!("{PAGE_TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(text))
    }

    /// The position a page token names. A token is only a place to resume; every name it
    /// holds is checked as a name, so a forged one can only start a listing elsewhere.
    pub fn from_token(token: &str) -> Result<Self, Error> {
        let invalid = || Error::InvalidPageToken;
        let text = token
            .strip_prefix(PAGE_TOKEN_PREFIX)
            .and_then(|encoded| URL_SAFE_NO_PAD.decode(encoded).ok())
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(invalid)?;
        let (scope, key) = text.split_once('\n').ok_or_else(invalid)?;
        let scope = crate::names::Scope::parse(scope).map_err(|_| invalid())?;
        crate::names::check_key(key).map_err(|_| invalid())?;
        Ok(Self {
            scope: scope.to_string(),
            key: key.to_owned(),
        })
    }
}

/// Marks the tokens of this encoding, so that a later one can be told apart.
const PAGE_TOKEN_PREFIX: &str = "p1.";

/// One page of a listing ([`crate::Vault::list_page`]).
#[derive(Debug, Clone)]
pub struct ListPage {
    /// The page's secrets, in scope then key order.
    pub secrets: Vec<SecretInfo>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<ListPosition>,
}

/// Replace the envelope of one version, if it still holds `old`.
#[derive(Debug, Clone)]
pub struct Replacement {
    /// The scope.
    pub scope: String,
    /// The key name.
    pub key: String,
    /// The version.
    pub version: u64,
    /// The envelope the version must still hold.
    pub old: Vec<u8>,
    /// Its new envelope.
    pub new: Vec<u8>,
}

/// Produces the envelope for the version number the store assigns. The version is part of
/// the envelope's AAD, so the store hands it to the sealer inside its write transaction.
pub type Sealer<'a> = dyn FnMut(u64) -> Result<Vec<u8>, Error> + 'a;

/// Produces the envelope of the `n`th name of a [`SecretStore::set_many`] for the version the
/// store assigns it.
pub type BatchSealer<'a> = dyn FnMut(usize, u64) -> Result<Vec<u8>, Error> + 'a;

/// A place that keeps versioned envelopes by scope and key. Scopes and keys arrive
/// validated; stores must be safe to share between threads.
///
/// Each key has a version counter (its [`KeyHead`], tagged through a [`HeadAuth`]): versions
/// never repeat, not even after a delete, and a read checks the counter, so rows deleted or
/// put back by anyone but the vault are reported as [`Error::Tampered`].
pub trait SecretStore: Send + Sync + fmt::Debug {
    /// The store's kind.
    fn kind(&self) -> StoreKind;

    /// Adds the next version of `scope`/`key` (1 for a key never written, else one past the
    /// newest ever written, deleted or not) with the envelope `seal` makes for it, durably,
    /// and returns the version. With `expected`, only if that is the key's current version
    /// (0: it has none), checked in the same transaction: else [`Error::VersionMismatch`].
    fn set(
        &self,
        scope: &str,
        key: &str,
        expected: Option<u64>,
        auth: &dyn HeadAuth,
        seal: &mut Sealer<'_>,
    ) -> Result<u64, Error>;

    /// Like [`SecretStore::set`] for each (scope, key) of `names` in order, all in one
    /// durable transaction: all are written or none. Returns the versions, in order.
    fn set_many(
        &self,
        names: &[(&str, &str)],
        auth: &dyn HeadAuth,
        seal: &mut BatchSealer<'_>,
    ) -> Result<Vec<u64>, Error>;

    /// The envelope of the latest version, or of `version`, with its version number.
    fn get(
        &self,
        scope: &str,
        key: &str,
        version: Option<u64>,
        auth: &dyn HeadAuth,
    ) -> Result<(u64, Vec<u8>), Error>;

    /// Removes every version of `scope`/`key`; `NotFound` if there is none. The counter
    /// stays, so a re-created key continues its versions.
    fn delete(&self, scope: &str, key: &str, auth: &dyn HeadAuth) -> Result<(), Error>;

    /// Gives every key that has versions but no counter one (its newest version, nothing
    /// deleted); how many. Used once, when a vault made before counters is upgraded.
    fn adopt_heads(&self, auth: &dyn HeadAuth) -> Result<u64, Error>;

    /// Metadata of up to `limit` secrets (of every scope, or of `scope`) that come after
    /// `after` (from the first if `None`), ordered by scope then key: one page of a listing.
    fn list(
        &self,
        scope: Option<&str>,
        after: Option<&ListPosition>,
        limit: usize,
    ) -> Result<Vec<SecretInfo>, Error>;

    /// How many secrets (not versions) the store holds.
    fn count(&self) -> Result<u64, Error>;

    /// How many secrets a listing of `scope` (of every scope if `None`) holds: what
    /// [`SecretStore::list`] returns over all its pages, counted in the store (one statement)
    /// rather than by reading the names out.
    fn count_in(&self, scope: Option<&str>) -> Result<u64, Error>;

    /// How many versions the store holds.
    fn count_versions(&self) -> Result<u64, Error>;

    /// Up to `limit` stored versions after `after` (from the start if `None`), in
    /// (scope, key, version) order. Used by rewrap, which walks every envelope.
    fn scan(&self, after: Option<&ScanPosition>, limit: usize)
    -> Result<Vec<StoredVersion>, Error>;

    /// Applies `batch` in one durable transaction, skipping versions whose envelope is no
    /// longer `old` (deleted or changed meanwhile); returns how many were replaced.
    fn replace(&self, batch: &[Replacement]) -> Result<usize, Error>;

    /// Takes part in electing the one process that runs the store's singleton jobs, for as
    /// long as the store is open (a daemon calls this; one-shot commands do not). A store no
    /// other machine shares has no such jobs.
    fn join_leader_election(&self) -> Result<(), Error> {
        Ok(())
    }

    /// Whether this process leads the singleton jobs now; `None` for a store without them.
    fn leads(&self) -> Option<bool> {
        None
    }

    /// Where a store that replicas share keeps a tiered vault's epochs; `None` for a store of
    /// one machine, whose vault keeps them in `vault.json`.
    fn epoch_ledger(&self) -> Option<&dyn EpochLedger> {
        None
    }

    /// Where other processes' writes are announced, for a store that processes on other
    /// machines share; `None` for a store whose other writers a cache cannot hear of.
    fn change_feed(&self) -> Option<std::sync::Arc<ChangeFeed>> {
        None
    }

    /// Where a store that replicas share keeps their audit chains; `None` for a store of one
    /// machine, whose daemon's audit log is the record.
    fn audit_chains(&self) -> Option<&dyn AuditChains> {
        None
    }
}

/// Opens (creating if absent) the store of `kind` for the vault directory `dir`.
pub fn open_store(kind: StoreKind, dir: &std::path::Path) -> Result<Box<dyn SecretStore>, Error> {
    Ok(match kind {
        StoreKind::Sqlite => Box::new(SqliteStore::open(dir)?),
        StoreKind::Memory => Box::new(MemoryStore::new()),
        StoreKind::Postgres => Box::new(PostgresStore::open(dir)?),
    })
}

pub(crate) fn not_found(scope: &str, key: &str, version: Option<u64>) -> Error {
    Error::NotFound {
        scope: scope.to_owned(),
        key: key.to_owned(),
        version,
    }
}

/// Now in Unix milliseconds (0 if the clock is before 1970).
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
