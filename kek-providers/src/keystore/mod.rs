//! The OS keystore KEK: a random 256-bit key kept in the platform's credential store (the
//! Secret Service on Linux, e.g. gnome-keyring or KWallet; the Keychain on macOS; the
//! Credential Manager on Windows), reached through the `keyring` crate behind the
//! `os-keystore` feature. The URI parser is in every build.
//!
//! URI: `keyring:service=NAME;account=NAME`, both optional (`service=vault`, `account=kek`);
//! the canonical form names both.
//!
//! What it assures: the key is protected at rest by the OS (encrypted under the user's login
//! secret, readable by that user's session only while the keyring is unlocked). It is read
//! once when the KEK is opened and held in locked process memory, where wrap and unwrap
//! compute ([`envelope::SoftwareKek`]): not hardware, not non-exportable.
//!
//! Every call into the keystore runs on a thread of its own with a deadline, so a keystore
//! that waits on an unanswered unlock prompt, or hangs, is an error rather than a hang.

mod uri;

#[cfg(feature = "os-keystore")]
mod kek;
#[cfg(feature = "os-keystore")]
mod store;

pub(crate) use uri::KeyringKekSpec;

#[cfg(feature = "os-keystore")]
pub(crate) use kek::{create, open};

/// Removes the entry `service`/`account` that `create` made (an init that then failed).
#[cfg(feature = "os-keystore")]
pub(crate) fn discard(service: &str, account: &str) -> Result<(), crate::Error> {
    store::delete(&KeyringKekSpec {
        service: service.to_owned(),
        account: account.to_owned(),
    })
}

/// Without the provider no entry was created: nothing to remove.
#[cfg(not(feature = "os-keystore"))]
pub(crate) fn discard(_service: &str, _account: &str) -> Result<(), crate::Error> {
    Ok(())
}
