//! The PKCS#11 KEK's stanza body: which mechanism wrapped the DEK, then what it produced.
//!
//! ```text
//! 0x01 | IV (12) | AES-GCM ciphertext of the DEK (32) | tag (16)         61 bytes
//! 0x02 | AES key wrap with padding of DEK (32) || SHA-256(AAD) (32)      73 bytes
//! ```
//! AES key wrap has no AAD, so the AAD's digest travels inside the wrapped key and is checked
//! after unwrapping: a stanza moved to another envelope, scope or key fails either way.

/// AES-GCM IV length: 96 bits, random per wrap.
pub(super) const GCM_IV_LEN: usize = 12;
/// AES-GCM tag length: 128 bits.
pub(super) const GCM_TAG_LEN: usize = 16;
/// What AES key wrap with padding wraps: the DEK and SHA-256 of the AAD.
pub(super) const KWP_PLAIN_LEN: usize = envelope::DEK_LEN + 32;
/// RFC 5649 output for a 64-byte key: one 8-byte integrity block more.
const KWP_WRAPPED_LEN: usize = KWP_PLAIN_LEN + 8;
const GCM_BODY_LEN: usize = 1 + GCM_IV_LEN + envelope::DEK_LEN + GCM_TAG_LEN;

const TAG_GCM: u8 = 1;
const TAG_KWP: u8 = 2;

/// A stanza body, parsed.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Body<'a> {
    /// IV and ciphertext-with-tag.
    Gcm { iv: &'a [u8], sealed: &'a [u8] },
    /// The wrapped key.
    Kwp { wrapped: &'a [u8] },
}

impl<'a> Body<'a> {
    /// Parses a body; `None` when it is not one this provider writes (wrong length or tag).
    pub(super) fn parse(body: &'a [u8]) -> Option<Self> {
        match body.split_first() {
            Some((&TAG_GCM, rest)) if body.len() == GCM_BODY_LEN => {
                let (iv, sealed) = rest.split_at(GCM_IV_LEN);
                Some(Self::Gcm { iv, sealed })
            }
            Some((&TAG_KWP, wrapped)) if wrapped.len() == KWP_WRAPPED_LEN => {
                Some(Self::Kwp { wrapped })
            }
            _ => None,
        }
    }
}

/// `0x01 | iv | sealed`.
pub(super) fn gcm(iv: &[u8; GCM_IV_LEN], sealed: &[u8]) -> Vec<u8> {
    [&[TAG_GCM][..], iv, sealed].concat()
}

/// `0x02 | wrapped`.
pub(super) fn kwp(wrapped: &[u8]) -> Vec<u8> {
    [&[TAG_KWP][..], wrapped].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_parse_back_and_odd_ones_are_refused() {
        let body = gcm(&[7; GCM_IV_LEN], &[9; 48]);
        assert_eq!(body.len(), GCM_BODY_LEN);
        assert_eq!(
            Body::parse(&body),
            Some(Body::Gcm {
                iv: &[7; GCM_IV_LEN],
                sealed: &[9; 48]
            })
        );
        let body = kwp(&[5; KWP_WRAPPED_LEN]);
        assert!(matches!(Body::parse(&body), Some(Body::Kwp { .. })));
        for bad in [&[][..], &[1][..], &[3; 61][..], &body[..body.len() - 1]] {
            assert_eq!(Body::parse(bad), None);
        }
    }
}
