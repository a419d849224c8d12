//! PKCS#11 failures as this crate's errors: the function and return value by their PKCS#11
//! names, and what to check.

use cryptoki::error::{Error as CkError, RvError};

use crate::Error;

/// Return values after which reopening sessions and logging in again may help.
pub(super) fn is_recoverable(error: &CkError) -> bool {
    matches!(
        error,
        CkError::Pkcs11(
            RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::UserNotLoggedIn
                | RvError::DeviceRemoved
                | RvError::TokenNotPresent
                | RvError::KeyHandleInvalid
                | RvError::ObjectHandleInvalid
                | RvError::WrappingKeyHandleInvalid
                | RvError::UnwrappingKeyHandleInvalid,
            _
        )
    )
}

/// Return values with which a token rejects a ciphertext or wrapped key (SoftHSM2 answers a
/// tampered AES-GCM ciphertext with CKR_GENERAL_ERROR).
pub(super) fn is_rejected_input(error: &CkError) -> bool {
    matches!(
        error,
        CkError::Pkcs11(
            RvError::EncryptedDataInvalid
                | RvError::EncryptedDataLenRange
                | RvError::WrappedKeyInvalid
                | RvError::WrappedKeyLenRange
                | RvError::GeneralError,
            _
        )
    )
}

/// The PKCS#11 name of a return value: `SessionHandleInvalid` -> `CKR_SESSION_HANDLE_INVALID`.
pub(super) fn rv_name(rv: RvError) -> String {
    let mut name = String::from("CKR");
    for c in format!("{rv:?}").chars() {
        if c.is_ascii_uppercase() {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

/// A cryptoki error as [`Error::Pkcs11Call`] (or a module error when it is not a PKCS#11
/// return value).
pub(super) fn call_error(error: CkError) -> Error {
    match error {
        CkError::Pkcs11(rv, function) => Error::Pkcs11Call {
            function: format!("C_{function:?}"),
            rv: rv_name(rv),
            hint: hint(rv),
        },
        other => Error::Pkcs11Call {
            function: "(cryptoki)".into(),
            rv: other.to_string(),
            hint: "the module answered something the PKCS#11 standard does not allow; check its version",
        },
    }
}

fn hint(rv: RvError) -> &'static str {
    match rv {
        RvError::DeviceRemoved | RvError::TokenNotPresent | RvError::DeviceError => {
            "check that the HSM is connected and reachable; the vault retried a few times"
        }
        RvError::SessionHandleInvalid
        | RvError::SessionClosed
        | RvError::UserNotLoggedIn
        | RvError::SessionCount => {
            "the token closed or logged out the vault's sessions and reopening them did not help; check the HSM's session limits and logs"
        }
        RvError::MechanismInvalid | RvError::MechanismParamInvalid => {
            "the token does not support this mechanism; choose another with x-mechanism=aes-gcm or x-mechanism=aes-key-wrap-pad in the KEK URI"
        }
        RvError::KeyFunctionNotPermitted | RvError::KeyTypeInconsistent => {
            "the key's attributes do not allow this use; `vaultctl kek info URI` shows them"
        }
        RvError::KeyHandleInvalid
        | RvError::ObjectHandleInvalid
        | RvError::WrappingKeyHandleInvalid
        | RvError::UnwrappingKeyHandleInvalid => {
            "the key disappeared from the token; open the vault with another of its KEKs"
        }
        RvError::TokenWriteProtected => "the token is read-only; kek create needs a writable token",
        _ => "see the HSM's documentation of this return value",
    }
}
