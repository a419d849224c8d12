//! Secret byte types: locked, zeroized on drop, redacted in Debug, reachable only through
//! `expose_secret`.

use std::fmt;
use std::io::Read;

use crate::Error;
use crate::memory::LockedBuf;

/// Variable-length secret bytes in locked memory.
///
/// No `Display`, no `Serialize`, no `Clone` (use [`SecretBytes::try_clone`]). The bytes are
/// reachable only through [`SecretBytes::expose_secret`], so every use is easy to find.
pub struct SecretBytes(LockedBuf);

impl SecretBytes {
    /// Copies `bytes` into locked memory. The caller should zeroize its own copy.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        let mut buf = LockedBuf::zeroed(bytes.len())?;
        buf.as_mut_slice().copy_from_slice(bytes);
        Ok(Self(buf))
    }

    /// `len` zero bytes, to be filled through [`SecretBytes::expose_secret_mut`].
    pub fn zeroed(len: usize) -> Result<Self, Error> {
        Ok(Self(LockedBuf::zeroed(len)?))
    }

    /// Reads `reader` to its end straight into locked memory, refusing more than `max_len`
    /// bytes (so that no unlocked copy of the secret is ever made).
    pub fn read_from(reader: &mut impl Read, max_len: usize) -> Result<Self, Error> {
        let mut buf = LockedBuf::zeroed(64)?;
        let mut filled = 0;
        loop {
            if filled == buf.capacity() {
                if filled >= max_len.saturating_add(1) {
                    return Err(Error::SecretTooLarge { max: max_len });
                }
                let mut bigger = LockedBuf::zeroed(buf.capacity() * 2)?;
                bigger.as_mut_slice()[..filled].copy_from_slice(&buf.as_slice()[..filled]);
                buf = bigger;
            }
            buf.extend_within_capacity(buf.capacity());
            match reader.read(&mut buf.as_mut_slice()[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::Read(e.kind())),
            }
            if filled > max_len {
                return Err(Error::SecretTooLarge { max: max_len });
            }
        }
        buf.truncate(filled);
        Ok(Self(buf))
    }

    /// The secret bytes. Every call site is a place where the secret leaves protection.
    pub fn expose_secret(&self) -> &[u8] {
        self.0.as_slice()
    }

    /// The secret bytes, writable (to fill a buffer made by [`SecretBytes::zeroed`]).
    pub fn expose_secret_mut(&mut self) -> &mut [u8] {
        self.0.as_mut_slice()
    }

    /// Number of secret bytes.
    pub fn len(&self) -> usize {
        self.0.as_slice().len()
    }

    /// Whether there are no secret bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Shortens the secret, zeroizing the bytes cut off (e.g. a trailing newline).
    pub fn truncate(&mut self, len: usize) {
        self.0.truncate(len);
    }

    /// A second locked copy.
    pub fn try_clone(&self) -> Result<Self, Error> {
        Self::from_slice(self.expose_secret())
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl PartialEq for SecretBytes {
    /// Constant-time comparison (a secret's length is not hidden).
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        bool::from(self.expose_secret().ct_eq(other.expose_secret()))
    }
}

/// Length of a data-encryption key.
pub const DEK_LEN: usize = 32;

/// A 32-byte data-encryption key (or any 256-bit symmetric key) in locked memory.
pub struct Dek(LockedBuf);

impl Dek {
    /// A fresh random key from the process CSPRNG.
    pub fn generate() -> Result<Self, Error> {
        let mut buf = LockedBuf::zeroed(DEK_LEN)?;
        crate::rng::fill(buf.as_mut_slice())?;
        Ok(Self(buf))
    }

    /// Copies a key from `bytes`, which must be exactly 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() != DEK_LEN {
            return Err(Error::KeyLength { len: bytes.len() });
        }
        let mut buf = LockedBuf::zeroed(DEK_LEN)?;
        buf.as_mut_slice().copy_from_slice(bytes);
        Ok(Self(buf))
    }

    /// A key already in locked memory (e.g. unwrapped in place), which must be 32 bytes.
    pub(crate) fn from_locked(buf: LockedBuf) -> Result<Self, Error> {
        match buf.as_slice().len() {
            DEK_LEN => Ok(Self(buf)),
            len => Err(Error::KeyLength { len }),
        }
    }

    /// Fault injection for tests: a key of the wrong length, which no constructor makes.
    #[cfg(test)]
    fn with_wrong_length_for_tests(len: usize) -> Self {
        Self(LockedBuf::zeroed(len).expect("alloc"))
    }

    /// The key bytes. Every call site is a place where the key leaves protection.
    pub fn expose_secret(&self) -> &[u8; DEK_LEN] {
        match self.0.as_slice().try_into() {
            Ok(key) => key,
            // Every constructor checks the length and nothing changes it after, so this is a
            // bug; an all-zero key in its place would seal secrets under a public key.
            Err(_) => panic!(
                "a data-encryption key holds {} bytes instead of {DEK_LEN}",
                self.0.as_slice().len()
            ),
        }
    }

    /// A second locked copy.
    pub fn try_clone(&self) -> Result<Self, Error> {
        Self::from_slice(self.expose_secret())
    }
}

impl fmt::Debug for Dek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = SecretBytes::from_slice(b"hunter2").expect("alloc");
        assert_eq!(format!("{s:?}"), "[REDACTED]");
        let k = Dek::generate().expect("dek");
        assert_eq!(format!("{k:?}"), "[REDACTED]");
    }

    #[test]
    fn read_from_grows_and_enforces_the_limit() {
        let data = vec![7u8; 10_000];
        let s = SecretBytes::read_from(&mut &data[..], 10_000).expect("read");
        assert_eq!(s.expose_secret(), &data[..]);
        let err = SecretBytes::read_from(&mut &data[..], 9_999).expect_err("too large");
        assert!(matches!(err, Error::SecretTooLarge { max: 9_999 }));
        let empty = SecretBytes::read_from(&mut &b""[..], 10).expect("read");
        assert!(empty.is_empty());
    }

    #[test]
    #[should_panic(expected = "instead of 32")]
    fn a_dek_of_the_wrong_length_panics_rather_than_expose_a_zero_key() {
        let broken = Dek::with_wrong_length_for_tests(31);
        let key = broken.expose_secret();
        // Not reached; before, this was a key of 32 zero bytes.
        assert_ne!(key, &[0; DEK_LEN]);
    }

    #[test]
    fn dek_requires_32_bytes_and_generates_distinct_keys() {
        assert!(Dek::from_slice(&[1; 31]).is_err());
        let a = Dek::generate().expect("dek");
        let b = Dek::generate().expect("dek");
        assert_ne!(a.expose_secret(), b.expose_secret());
    }
}
