//! The vault: secrets sealed in envelopes, kept in a store on a directory, opened with the
//! KEKs pinned when the vault was created.
//!
//! Scopes and key names are validated here (see [`Scope`] for the rules); stores hold
//! envelope bytes only and never decrypt.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod admin;
pub mod audit;
pub mod backup;
mod bulk;
mod cache;
mod config;
mod error;
mod in_memory;
mod keyring;
mod names;
mod rewrap;
mod status;
mod store;
mod upgrade;
mod vault;

pub use admin::KekCheck;
pub use cache::DEFAULT_CACHE_TTL;
pub use config::{
    CONFIG_FILE, EpochPolicy, EpochRecord, PinnedKek, ThresholdPolicy, VaultConfig, WrapMode,
};
pub use error::Error;
pub use names::{MAX_KEY_LEN, MAX_SCOPE_COMPONENT, Scope, check_key, shorten_name};
pub use rewrap::{RewrapOptions, RewrapProgress, RewrapReport};
pub use status::{KekStatus, Status};
pub use store::{
    BatchSealer, ChangeFeed, DEFAULT_MAX_STALENESS, EpochLedger, HeadAuth, KeyHead, LedgerEpoch,
    ListPage, ListPosition, MemoryStore, PASSWORD_ENV, PostgresStore, Replacement,
    STORE_LOCATION_FILE, ScanPosition, Sealer, SecretInfo, SecretStore, SqliteStore, StoreKind,
    StoreLocation, StoredVersion, open_store,
};
pub use upgrade::{UpgradeReport, legacy_kek_uris, upgrade};
pub use vault::{InitOptions, Kek, MAX_VALUE_LEN, Vault};
