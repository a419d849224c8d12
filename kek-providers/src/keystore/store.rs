//! Calls into the OS keystore through the `keyring` crate, each on a thread of its own with
//! a deadline, and the keystore's errors in this crate's words.

use std::sync::mpsc;
use std::time::Duration;

use envelope::{DEK_LEN, Dek};
use keyring::Entry;
use zeroize::Zeroize;

use super::KeyringKekSpec;
use crate::Error;

/// How long one keystore call may take. A Secret Service call answers in milliseconds
/// (about 130 writes and 890 reads per second with gnome-keyring); a locked keyring may show
/// an unlock prompt, which this leaves time to answer.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Which keystore this build talks to, for messages.
const STORE: &str = if cfg!(target_os = "macos") {
    "the macOS Keychain"
} else if cfg!(target_os = "windows") {
    "the Windows Credential Manager"
} else {
    "the Secret Service (gnome-keyring, KWallet) on the D-Bus session bus"
};

/// Stores `key` in a new entry; refuses when the entry exists already. Returns the key.
pub(super) fn write_new(spec: &KeyringKekSpec, key: Dek) -> Result<Dek, Error> {
    let owned = spec.clone();
    call(spec, "creating the KEK entry", move || {
        let entry = entry(&owned)?;
        match entry.get_secret() {
            Ok(mut existing) => {
                existing.zeroize();
                return Err(Error::KeystoreEntryExists {
                    service: owned.service.clone(),
                    account: owned.account.clone(),
                });
            }
            Err(keyring::Error::NoEntry) => {}
            Err(e) => return Err(keystore_error(&owned, "looking for the KEK entry", e)),
        }
        entry
            .set_secret(key.expose_secret())
            .map_err(|e| keystore_error(&owned, "writing the KEK entry", e))?;
        Ok(key)
    })
}

/// Removes the entry (one `create` made for an init that then failed); an entry already gone
/// is not an error.
pub(super) fn delete(spec: &KeyringKekSpec) -> Result<(), Error> {
    let owned = spec.clone();
    call(spec, "removing the KEK entry", move || {
        match entry(&owned)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(keystore_error(&owned, "removing the KEK entry", e)),
        }
    })
}

/// Reads the key from the entry, straight into locked memory.
pub(super) fn read(spec: &KeyringKekSpec) -> Result<Dek, Error> {
    let owned = spec.clone();
    call(spec, "reading the KEK entry", move || {
        let mut secret = entry(&owned)?
            .get_secret()
            .map_err(|e| keystore_error(&owned, "reading the KEK entry", e))?;
        let key = if secret.len() == DEK_LEN {
            Dek::from_slice(&secret).map_err(Error::from)
        } else {
            Err(Error::KeystoreEntryInvalid {
                service: owned.service.clone(),
                account: owned.account.clone(),
                reason: format!(
                    "it holds {} bytes, a KEK is {DEK_LEN}; the URI names an entry some other program made",
                    secret.len()
                ),
            })
        };
        secret.zeroize();
        key
    })
}

/// The entry the spec names; the first call connects to the keystore.
fn entry(spec: &KeyringKekSpec) -> Result<Entry, Error> {
    Entry::new(&spec.service, &spec.account).map_err(|e| match e {
        // The store is set up once per process; its own error says why it failed.
        keyring::Error::NoDefaultStore => match Entry::store_status() {
            Err(cause) => unavailable(cause),
            Ok(()) => unavailable(&e),
        },
        other => keystore_error(spec, "opening the KEK entry", other),
    })
}

/// Runs `op` on a thread of its own and waits at most [`CALL_TIMEOUT`] for it. A call that
/// does not return in time is left to finish on its own (it holds no lock of ours).
fn call<T: Send + 'static>(
    spec: &KeyringKekSpec,
    action: &'static str,
    op: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    let (done, result) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("os-keystore".into())
        .spawn(move || {
            // The receiver is gone only after a timeout, which was reported already.
            let _ = done.send(op());
        })
        .map_err(|e| Error::KeystoreCall {
            action,
            reason: format!("cannot start a thread for the call: {e}"),
        })?;
    match result.recv_timeout(CALL_TIMEOUT) {
        Ok(answer) => answer,
        Err(mpsc::RecvTimeoutError::Timeout) => Err(Error::KeystoreTimeout {
            action,
            seconds: CALL_TIMEOUT.as_secs(),
            service: spec.service.clone(),
            account: spec.account.clone(),
        }),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(Error::KeystoreCall {
            action,
            reason: "the call panicked inside the keyring library".into(),
        }),
    }
}

/// The keystore's error for `spec` while doing `action`.
fn keystore_error(spec: &KeyringKekSpec, action: &'static str, e: keyring::Error) -> Error {
    let names = || (spec.service.clone(), spec.account.clone());
    match e {
        keyring::Error::NoEntry => {
            let (service, account) = names();
            Error::KeystoreEntryMissing { service, account }
        }
        // A locked collection whose unlock prompt failed or was dismissed.
        keyring::Error::NoStorageAccess(cause) => {
            let (service, account) = names();
            Error::KeystoreLocked {
                service,
                account,
                cause: cause.to_string(),
            }
        }
        keyring::Error::Ambiguous(entries) => Error::KeystoreCall {
            action,
            reason: format!(
                "{} entries match service={} account={}; remove the extra ones so that one is left",
                entries.len(),
                spec.service,
                spec.account
            ),
        },
        keyring::Error::NoDefaultStore => unavailable(&e),
        keyring::Error::PlatformFailure(cause) => unavailable(&*cause),
        other => Error::KeystoreCall {
            action,
            reason: other.to_string(),
        },
    }
}

fn unavailable(cause: &dyn std::fmt::Display) -> Error {
    Error::KeystoreUnavailable {
        store: STORE,
        reason: cause.to_string(),
    }
}
