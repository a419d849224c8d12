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
        Self::parse_visiting(bytes, |_, _| {})
    }

    /// Parses like [`EnvelopeRef::parse`] and hands each stanza to `visit` as it is
    /// validated, with the bytes of its id (kind, label and key version, as encoded: the
    /// stanza AAD's suffix), so that `open` needs no second pass over the header.
    pub(crate) fn parse_visiting(
        bytes: &'a [u8],
        mut visit: impl FnMut(StanzaRef<'a>, &'a [u8]),
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
            let (stanza, id) = read_stanza(&mut r)?;
            visit(stanza, id);
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

/// Reads and validates one stanza; returns it with the bytes of its id.
fn read_stanza<'a>(r: &mut Reader<'a>) -> Result<(StanzaRef<'a>, &'a [u8]), Error> {
    let start = r.pos;
    let (kind, label) = match split_kind_and_label(r) {
        Some(strs) => strs,
        None => read_kind_and_label(r)?,
    };
    check_stanza_kind(kind)?;
    check_stanza_label(label)?;
    let version = r.u32("stanza key version")?;
    let id = &r.bytes[start..r.pos];
    let body_len = usize::from(r.u16("stanza body length")?);
    check_stanza_body(body_len)?;
    let body = r.take(body_len, "stanza body")?;
    let stanza = StanzaRef {
        kind,
        label,
        version,
        body,
    };
    Ok((stanza, id))
}

/// The fast path of reading a stanza's kind and label: when both are present and the
/// bytes from the kind to the end of the label (the label's length byte included) are
/// UTF-8 with the two fields on character boundaries, one UTF-8 check covers both. Otherwise
/// `None`, with `r` unmoved, and [`read_kind_and_label`] reads them field by field to report
/// the first problem exactly as the format defines it.
#[inline]
fn split_kind_and_label<'a>(r: &mut Reader<'a>) -> Option<(&'a str, &'a str)> {
    let rest = r.bytes.get(r.pos..)?;
    let kind_len = usize::from(*rest.first()?);
    if kind_len > MAX_KIND_LEN {
        return None;
    }
    let label_end = 2 + kind_len + usize::from(*rest.get(1 + kind_len)?);
    let both = std::str::from_utf8(rest.get(1..label_end)?).ok()?;
    // Boundaries on both sides of the label's length byte make it a character of its own,
    // so each part is valid UTF-8 on its own, as the field-by-field path requires.
    let kind = both.get(..kind_len)?;
    let label = both.get(kind_len + 1..)?;
    r.pos += label_end;
    Some((kind, label))
}

/// Reads a stanza's kind and label field by field, checking each as it is read.
#[cold]
fn read_kind_and_label<'a>(r: &mut Reader<'a>) -> Result<(&'a str, &'a str), Error> {
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
    Ok((kind, label))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Stanza reading field by field, in FORMAT.md's order: what `read_stanza` did before it
    /// checked the kind and the label in one pass, and must still do.
    fn read_stanza_field_by_field<'a>(r: &mut Reader<'a>) -> Result<StanzaRef<'a>, Error> {
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

    fn stanza(kind: &[u8], label: &[u8]) -> Vec<u8> {
        let mut out = vec![kind.len() as u8];
        out.extend_from_slice(kind);
        out.push(label.len() as u8);
        out.extend_from_slice(label);
        out.extend_from_slice(&7u32.to_be_bytes());
        out.extend_from_slice(&[0, 3, 1, 2, 3]);
        out
    }

    #[test]
    fn one_pass_kind_and_label_reads_and_fails_like_field_by_field() {
        let long_label = [b'a'; 200];
        let mut cases = vec![
            stanza(b"memory", b"bench"),
            stanza(b"file", b""),
            stanza(b"file", "cl\u{e9} \u{1F511}".as_bytes()),
            stanza(b"file", &long_label[..130]), // length byte 0x82, a continuation byte
            stanza(b"file", &long_label[..195]), // length byte 0xc3, a lead byte
            stanza(b"file", &long_label),
            stanza(b"file", "\u{e9}".repeat(100).as_bytes()),
            // The kind's last byte and the label length byte form "\u{e9}".
            stanza(b"ab\xc3", &long_label[..0xa9]),
            stanza(b"ab\xc3", "\u{e9}".repeat(84).as_bytes()),
            stanza(b"File", b"x"),
            stanza(b"", b"x"),
            stanza(&[b'a'; 33], b"x"),
            stanza(b"fi\xffle", b"x"),
            stanza(b"file", b"x\xff"),
            stanza(b"file", b"x\x07"),
            stanza(b"file", b"x\xc2\x85"), // U+0085, a control character
            stanza("fil\u{e9}".as_bytes(), b"x"),
        ];
        let mut truncated = Vec::new();
        for case in &cases {
            truncated.extend((0..case.len()).map(|n| case[..n].to_vec()));
        }
        // A bad kind before a truncated label: the kind's error comes first.
        let mut bad_kind = stanza(b"File", b"abc");
        bad_kind.truncate(7);
        cases.push(bad_kind);
        cases.extend(truncated);

        for case in &cases {
            let mut fast = Reader {
                bytes: case,
                pos: 0,
            };
            let mut reference = Reader {
                bytes: case,
                pos: 0,
            };
            let got = read_stanza(&mut fast);
            let want = read_stanza_field_by_field(&mut reference);
            match (got, want) {
                (Ok((stanza, id)), Ok(want)) => {
                    assert_eq!(stanza, want, "{case:x?}");
                    assert_eq!(fast.pos, reference.pos, "{case:x?}");
                    let mut written = Vec::new();
                    write_stanza_id(&mut written, want.kind, want.label, want.version);
                    assert_eq!(id, written, "{case:x?}");
                }
                (got, want) => assert_eq!(
                    format!("{:?}", got.map(|(s, _)| s)),
                    format!("{want:?}"),
                    "{case:x?}"
                ),
            }
        }
    }
}
