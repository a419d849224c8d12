//! Argon2id key derivation and the key-check value that tells a wrong passphrase apart.

use argon2::{Algorithm, Argon2, Params, Version};
use envelope::{DEK_LEN, Dek, SecretBytes};
use ring::hmac;

use crate::Error;

/// Smallest memory cost accepted, in KiB (8 MiB): below it Argon2 stops being memory-hard
/// enough to matter against GPUs.
pub(crate) const MIN_M_KIB: u32 = 8192;
/// Largest memory cost accepted, in KiB (4 GiB): more is a typo, not a choice.
pub(crate) const MAX_M_KIB: u32 = 4 * 1024 * 1024;
/// Largest number of passes accepted.
pub(crate) const MAX_T: u32 = 100;
/// Largest parallelism accepted.
pub(crate) const MAX_P: u32 = 64;
/// Salt length written by `create`.
pub(crate) const SALT_LEN: usize = 16;
/// Length of the key-check value.
pub(crate) const VERIFIER_LEN: usize = 32;

/// What the key-check value authenticates: a fixed message, so it proves knowledge of the
/// key without being the key or anything the key encrypts.
const VERIFIER_MESSAGE: &[u8] = b"vault passphrase verifier v1";

/// Argon2id costs: memory in KiB, passes, lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KdfParams {
    /// Memory cost in KiB.
    pub(crate) m_kib: u32,
    /// Number of passes.
    pub(crate) t: u32,
    /// Degree of parallelism.
    pub(crate) p: u32,
}

impl KdfParams {
    /// 64 MiB, 3 passes, 1 lane: about 160 ms here, paid once per unlock.
    pub(crate) const DEFAULT: Self = Self {
        m_kib: 65536,
        t: 3,
        p: 1,
    };

    /// Refuses costs outside the accepted bounds, naming the parameter that is out.
    pub(crate) fn check(&self) -> Result<(), Error> {
        check_m(self.m_kib)?;
        check_t(self.t)?;
        check_p(self.p)
    }

    /// Derives the 32-byte key from `passphrase` and `salt` straight into locked memory.
    pub(crate) fn derive(&self, passphrase: &SecretBytes, salt: &[u8]) -> Result<Dek, Error> {
        self.check()?;
        let failed = |e: argon2::Error| Error::KeyDerivation {
            reason: e.to_string(),
        };
        let params = Params::new(self.m_kib, self.t, self.p, Some(DEK_LEN)).map_err(failed)?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        // The output buffer is locked secret memory, so no unlocked copy of the key is made.
        let mut out = SecretBytes::zeroed(DEK_LEN)?;
        argon2
            .hash_password_into(passphrase.expose_secret(), salt, out.expose_secret_mut())
            .map_err(failed)?;
        Ok(Dek::from_slice(out.expose_secret())?)
    }
}

/// The key-check value stored beside the salt: HMAC-SHA256(key, fixed message).
pub(crate) fn verifier(key: &Dek) -> [u8; VERIFIER_LEN] {
    let tag = hmac::sign(&hmac_key(key), VERIFIER_MESSAGE);
    let mut out = [0u8; VERIFIER_LEN];
    out.copy_from_slice(tag.as_ref());
    out
}

/// Whether `key` matches the stored key-check value (constant time).
pub(crate) fn verify(key: &Dek, expected: &[u8]) -> bool {
    hmac::verify(&hmac_key(key), VERIFIER_MESSAGE, expected).is_ok()
}

/// ring keeps the HMAC pad states derived from the key, not the key itself, and only for
/// the one call.
fn hmac_key(key: &Dek) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, key.expose_secret())
}

pub(crate) fn check_m(m_kib: u32) -> Result<(), Error> {
    check_range("m", m_kib, MIN_M_KIB, MAX_M_KIB, "memory in KiB")
}

pub(crate) fn check_t(t: u32) -> Result<(), Error> {
    check_range("t", t, 1, MAX_T, "passes")
}

pub(crate) fn check_p(p: u32) -> Result<(), Error> {
    check_range("p", p, 1, MAX_P, "lanes")
}

fn check_range(
    name: &'static str,
    value: u32,
    min: u32,
    max: u32,
    unit: &str,
) -> Result<(), Error> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(Error::InvalidParameter {
            name,
            reason: format!("{value} is outside {min}..={max} ({unit})"),
        })
    }
}
