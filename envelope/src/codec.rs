//! The canonical binary encoding of envelopes, v2 and v1 (see FORMAT.md): the same layout,
//! told apart by the version byte, which changes what the payload AAD covers.
//!
//! ```text
//! magic "VLTE" | version u8 = 2 (or 1) | aead u8 = 1 | flags u8 = 0 | stanza count u8 (1..=16)
//! per stanza: kind_len u8 | kind | label_len u8 | label | key version u32 | body_len u16 | body
//! ---- end of header ----
//! ciphertext_len u32 (16..=MAX_PAYLOAD_LEN+16) | ciphertext with 16-byte tag
//! ```
//! All integers are big-endian. The parser validates every field once and never allocates.

use crate::Error;
use crate::kek::{StanzaRef, has_control_chars, is_valid_kind};

/// The four magic bytes that start every binary envelope.
pub const MAGIC: &[u8; 4] = b"VLTE";
/// The format version this crate writes.
pub const FORMAT_VERSION: u8 = 2;
/// The first format version: still read, never written. Its payload AAD covers the whole
/// header, so its stanzas cannot be changed without re-encrypting.
pub const FORMAT_VERSION_1: u8 = 1;
/// AEAD algorithm id: ChaCha20-Poly1305 with a single-use key and a zero nonce.
pub const AEAD_CHACHA20_POLY1305: u8 = 1;
/// Most stanzas in one envelope.
pub const MAX_STANZAS: usize = 16;
/// Longest provider kind.
pub const MAX_KIND_LEN: usize = 32;
/// Longest key label.
pub const MAX_LABEL_LEN: usize = 255;
/// Longest stanza body (room for TPM sealed-object blobs).
pub const MAX_BODY_LEN: usize = 8192;
/// Largest plaintext an envelope carries.
pub const MAX_PAYLOAD_LEN: usize = 64 << 20;
/// Poly1305 tag length.
pub const TAG_LEN: usize = 16;
/// Bytes before the first stanza.
pub(crate) const FIXED_HEADER_LEN: usize = 8;
/// The header prefix a v2 payload AAD covers: magic, version, aead and flags (not the
/// stanza count, so stanzas can be rewrapped without touching the payload).
pub(crate) const V2_AUTHENTICATED_PREFIX: usize = 7;

/// Whether this build reads envelopes of format `version`.
pub(crate) fn check_version(version: u8) -> Result<(), Error> {
    match version {
        FORMAT_VERSION_1 | FORMAT_VERSION => Ok(()),
        other => Err(Error::UnsupportedVersion(other)),
    }
}

/// A parsed, validated envelope borrowing the input bytes.
#[derive(Debug, Clone, Copy)]
pub struct EnvelopeRef<'a> {
    version: u8,
    header: &'a [u8],
    stanza_count: u8,
    ciphertext: &'a [u8],
}

impl<'a> EnvelopeRef<'a> {
    /// Parses and validates binary envelope bytes.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        Self::parse_visiting(bytes, |_| {})
    }

    /// Parses like [`EnvelopeRef::parse`] and hands each stanza to `visit` as it is
    /// validated, so that `open` needs no second pass over the header.
    pub(crate) fn parse_visiting(
        bytes: &'a [u8],
        mut visit: impl FnMut(StanzaRef<'a>),
    ) -> Result<Self, Error> {
        let mut r = Reader { bytes, pos: 0 };
        if r.take(4, "magic")? != MAGIC {
            return Err(Error::BadMagic);
        }
        let version = r.u8("version")?;
        check_version(version)?;
        let aead = r.u8("aead")?;
        if aead != AEAD_CHACHA20_POLY1305 {
            return Err(Error::UnsupportedAlgorithm(aead));
        }
        let flags = r.u8("flags")?;
        if flags != 0 {
            return Err(Error::UnsupportedFlags(flags));
        }
        let stanza_count = r.u8("stanza count")?;
        if stanza_count == 0 {
            return Err(Error::Malformed {
                field: "stanza count",
                reason: "must be at least 1",
            });
        }
        if usize::from(stanza_count) > MAX_STANZAS {
            let len = usize::from(stanza_count);
            return Err(Error::FieldTooLong {
                field: "stanza count",
                len,
                max: MAX_STANZAS,
            });
        }
        for _ in 0..stanza_count {
            visit(read_stanza(&mut r)?);
        }
        let header = &bytes[..r.pos];
        let ct_len = r.u32("ciphertext length")? as usize;
        if ct_len < TAG_LEN {
            return Err(Error::Malformed {
                field: "ciphertext",
                reason: "shorter than the tag",
            });
        }
        if ct_len > MAX_PAYLOAD_LEN + TAG_LEN {
            let max = MAX_PAYLOAD_LEN + TAG_LEN;
            return Err(Error::FieldTooLong {
                field: "ciphertext",
                len: ct_len,
                max,
            });
        }
        let ciphertext = r.take(ct_len, "ciphertext")?;
        if r.pos != bytes.len() {
            return Err(Error::TrailingBytes(bytes.len() - r.pos));
        }
        Ok(Self {
            version,
            header,
            stanza_count,
            ciphertext,
        })
    }

    /// The format version: 1 or 2.
    pub fn version(&self) -> u8 {
        self.version
    }

    /// The header bytes: fixed part and stanzas.
    pub fn header(&self) -> &'a [u8] {
        self.header
    }

    /// The header bytes the payload AAD covers after the context: the whole header in v1,
    /// only the fixed prefix (without the stanza count) in v2.
    pub(crate) fn authenticated_header(&self) -> &'a [u8] {
        match self.version {
            FORMAT_VERSION_1 => self.header,
            _ => &self.header[..V2_AUTHENTICATED_PREFIX],
        }
    }

    /// The KEK stanzas, in order.
    pub fn stanzas(&self) -> impl Iterator<Item = StanzaRef<'a>> + 'a {
        let mut r = Reader {
            bytes: self.header,
            pos: FIXED_HEADER_LEN,
        };
        // `parse` validated every field, so this only splits them again (it runs on every open).
        (0..self.stanza_count).map_while(move |_| split_stanza(&mut r))
    }

    /// The ciphertext including its tag.
    pub fn ciphertext(&self) -> &'a [u8] {
        self.ciphertext
    }

    /// Length of the plaintext inside.
    pub fn plaintext_len(&self) -> usize {
        self.ciphertext.len() - TAG_LEN
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len())?;
        let out = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], Error> {
        self.bytes(n).ok_or(Error::Truncated { field })
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, Error> {
        Ok(self.take(1, field)?[0])
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, Error> {
        let b = self.take(2, field)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, Error> {
        let b = self.take(4, field)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn str(&mut self, len: usize, field: &'static str) -> Result<&'a str, Error> {
        std::str::from_utf8(self.take(len, field)?).map_err(|_| Error::Malformed {
            field,
            reason: "not UTF-8",
        })
    }
}

fn read_stanza<'a>(r: &mut Reader<'a>) -> Result<StanzaRef<'a>, Error> {
    let kind_len = usize::from(r.u8("stanza kind length")?);
    if kind_len > MAX_KIND_LEN {
        return Err(Error::FieldTooLong {
            field: "stanza kind",
            len: kind_len,
            max: MAX_KIND_LEN,
        });
    }
    let kind = r.str(kind_len, "stanza kind")?;
    check_stanza_kind(kind)?;
    let label_len = usize::from(r.u8("stanza label length")?);
    let label = r.str(label_len, "stanza label")?;
    check_stanza_label(label)?;
    let version = r.u32("stanza key version")?;
    let body_len = usize::from(r.u16("stanza body length")?);
    check_stanza_body(body_len)?;
    let body = r.take(body_len, "stanza body")?;
    Ok(StanzaRef {
        kind,
        label,
        version,
        body,
    })
}

/// Splits a stanza that `read_stanza` already validated.
fn split_stanza<'a>(r: &mut Reader<'a>) -> Option<StanzaRef<'a>> {
    let kind_len = usize::from(*r.bytes(1)?.first()?);
    let kind = std::str::from_utf8(r.bytes(kind_len)?).ok()?;
    let label_len = usize::from(*r.bytes(1)?.first()?);
    let label = std::str::from_utf8(r.bytes(label_len)?).ok()?;
    let version = u32::from_be_bytes(r.bytes(4)?.try_into().ok()?);
    let body_len = u16::from_be_bytes(r.bytes(2)?.try_into().ok()?);
    let body = r.bytes(usize::from(body_len))?;
    Some(StanzaRef {
        kind,
        label,
        version,
        body,
    })
}

/// The stanza kind's domain (binary and JSON form alike).
pub(crate) fn check_stanza_kind(kind: &str) -> Result<(), Error> {
    if kind.len() > MAX_KIND_LEN {
        return Err(Error::FieldTooLong {
            field: "stanza kind",
            len: kind.len(),
            max: MAX_KIND_LEN,
        });
    }
    if !is_valid_kind(kind) {
        return Err(Error::Malformed {
            field: "stanza kind",
            reason: "must be 1 to 32 of a-z, 0-9, -",
        });
    }
    Ok(())
}

/// The stanza label's domain (binary and JSON form alike).
pub(crate) fn check_stanza_label(label: &str) -> Result<(), Error> {
    if label.len() > MAX_LABEL_LEN {
        return Err(Error::FieldTooLong {
            field: "stanza label",
            len: label.len(),
            max: MAX_LABEL_LEN,
        });
    }
    if has_control_chars(label) {
        return Err(Error::Malformed {
            field: "stanza label",
            reason: "control characters",
        });
    }
    Ok(())
}

/// The stanza body length's domain.
pub(crate) fn check_stanza_body(len: usize) -> Result<(), Error> {
    if len == 0 {
        return Err(Error::Malformed {
            field: "stanza body",
            reason: "empty",
        });
    }
    if len > MAX_BODY_LEN {
        return Err(Error::FieldTooLong {
            field: "stanza body",
            len,
            max: MAX_BODY_LEN,
        });
    }
    Ok(())
}

/// Whether an envelope can carry a stanza for each of `count` KEKs.
pub(crate) fn check_kek_count(count: usize) -> Result<(), Error> {
    if count == 0 {
        return Err(Error::NoKek);
    }
    if count > MAX_STANZAS {
        return Err(Error::TooManyKeks {
            count,
            max: MAX_STANZAS,
        });
    }
    Ok(())
}

/// Appends the fixed part of a header of format `version`.
pub(crate) fn write_fixed_header(
    out: &mut Vec<u8>,
    version: u8,
    stanza_count: usize,
) -> Result<(), Error> {
    check_kek_count(stanza_count)?;
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[version, AEAD_CHACHA20_POLY1305, 0, stanza_count as u8]);
    Ok(())
}

/// Appends a stanza's id fields (validated by `KekId::new`).
pub(crate) fn write_stanza_id(out: &mut Vec<u8>, kind: &str, label: &str, version: u32) {
    out.push(kind.len() as u8);
    out.extend_from_slice(kind.as_bytes());
    out.push(label.len() as u8);
    out.extend_from_slice(label.as_bytes());
    out.extend_from_slice(&version.to_be_bytes());
}

/// Appends a stanza body with its length prefix.
pub(crate) fn write_stanza_body(out: &mut Vec<u8>, body: &[u8]) -> Result<(), Error> {
    check_stanza_body(body.len())?;
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
    Ok(())
}
