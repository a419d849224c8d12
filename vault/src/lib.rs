//! The vault: secrets sealed in envelopes, kept in a store on a directory, opened with the
//! KEKs pinned when the vault was created.
//!
//! Scopes and key names are validated here (see [`Scope`] for the rules); stores hold
//! envelope bytes only and never decrypt.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod marker;
mod names;
mod store;
mod vault;

pub use error::Error;
pub use marker::{MARKER_FILE, Marker, PinnedKek};
pub use names::{MAX_KEY_LEN, MAX_SCOPE_COMPONENT, Scope, check_key};
pub use store::{
    MemoryStore, Replacement, ScanPosition, Sealer, SecretInfo, SecretStore, SqliteStore,
    StoreKind, StoredVersion, open_store,
};
pub use vault::{Kek, KekStatus, MAX_VALUE_LEN, Status, Vault};
