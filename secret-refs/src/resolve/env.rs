//! `env://NAME`: allowed names only.

use std::os::unix::ffi::OsStringExt;

use envelope::SecretBytes;
use zeroize::Zeroizing;

use crate::{Error, Policy};

pub(super) fn resolve(policy: &Policy, name: &str) -> Result<SecretBytes, Error> {
    if !policy.env_allowed(name) {
        return Err(Error::EnvNotAllowed { name: name.into() });
    }
    let value = std::env::var_os(name).ok_or_else(|| Error::EnvUnset { name: name.into() })?;
    let bytes = Zeroizing::new(value.into_vec());
    Ok(SecretBytes::from_slice(&bytes)?)
}
