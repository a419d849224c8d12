//! The threshold stanza body codec (the layout is in the `threshold` module doc) and its MAC.
//!
//! The parser is strictly bounded: every length is checked against what is left and against
//! its own bound before it is used, it never indexes past the input, and it rejects trailing
//! bytes, so it never panics whatever the input.

use envelope::{Dek, KekId, MAX_BODY_LEN, MAX_KIND_LEN};
use ring::{hkdf, hmac};

use super::MAX_THRESHOLD_MEMBERS as MAX_MEMBERS;

/// The only body version this build writes and reads.
pub(super) const BODY_VERSION: u8 = 1;
/// Most bytes of one member's wrapped share.
pub(super) const MAX_WRAPPED_SHARE_LEN: usize = 4096;
/// Length of the body MAC (HMAC-SHA256).
pub(super) const MAC_LEN: usize = 32;
/// HKDF salt and info deriving the MAC key from the DEK (key separation: the DEK itself is
/// only ever a ChaCha20-Poly1305 key).
const MAC_SALT: &[u8] = b"vault threshold kek v1";
const MAC_INFO: &[u8] = b"body mac";

/// Why a body was refused; shown to users, so it names the field and never a byte of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Malformed(pub(super) String);

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn malformed(reason: impl Into<String>) -> Malformed {
    Malformed(reason.into())
}

/// One member's share as stored: the member KEK's id and what the member wrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Entry<'a> {
    pub(super) kind: &'a str,
    pub(super) label: &'a str,
    pub(super) version: u32,
    pub(super) wrapped: &'a [u8],
}

impl Entry<'_> {
    /// Whether the entry names exactly `id`.
    pub(super) fn is_for(&self, id: &KekId) -> bool {
        self.kind == id.kind() && self.label == id.label() && self.version == id.version()
    }

    /// The entry's member id, for error messages.
    pub(super) fn describe(&self) -> String {
        format!("{}:{}#v{}", self.kind, self.label, self.version)
    }
}

/// A parsed body, borrowing from the input.
#[derive(Debug)]
pub(super) struct Body<'a> {
    pub(super) m: u8,
    pub(super) n: u8,
    /// Entry k is the share of member k (the parser checks the index bytes).
    pub(super) entries: Vec<Entry<'a>>,
    /// The bytes the MAC covers: everything before it.
    pub(super) authenticated: &'a [u8],
    pub(super) mac: &'a [u8],
}

/// Writes `version | m | n`.
pub(super) fn write_header(out: &mut Vec<u8>, m: usize, n: usize) {
    out.extend_from_slice(&[BODY_VERSION, m as u8, n as u8]);
}

/// Writes member `index`'s entry.
pub(super) fn write_entry(
    out: &mut Vec<u8>,
    index: usize,
    id: &KekId,
    wrapped: &[u8],
) -> Result<(), Malformed> {
    if wrapped.is_empty() || wrapped.len() > MAX_WRAPPED_SHARE_LEN {
        return Err(malformed(format!(
            "member {id} wrapped its share into {} bytes; 1 to {MAX_WRAPPED_SHARE_LEN} fit",
            wrapped.len()
        )));
    }
    // KekId bounds the kind to 32 bytes and the label to 255, so both lengths fit a byte.
    out.push(index as u8);
    out.push(id.kind().len() as u8);
    out.extend_from_slice(id.kind().as_bytes());
    out.push(id.label().len() as u8);
    out.extend_from_slice(id.label().as_bytes());
    out.extend_from_slice(&id.version().to_be_bytes());
    out.extend_from_slice(&(wrapped.len() as u16).to_be_bytes());
    out.extend_from_slice(wrapped);
    Ok(())
}

/// Appends the MAC of everything written so far, keyed from `dek`.
pub(super) fn append_mac(out: &mut Vec<u8>, dek: &Dek) -> Result<(), Malformed> {
    let tag = hmac::sign(&mac_key(dek)?, out);
    out.extend_from_slice(tag.as_ref());
    Ok(())
}

/// Whether the body's MAC is the one `dek` gives (compared in constant time).
pub(super) fn mac_is_valid(body: &Body<'_>, dek: &Dek) -> bool {
    mac_key(dek).is_ok_and(|key| hmac::verify(&key, body.authenticated, body.mac).is_ok())
}

fn mac_key(dek: &Dek) -> Result<hmac::Key, Malformed> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, MAC_SALT).extract(dek.expose_secret());
    let okm = prk
        .expand(&[MAC_INFO], hmac::HMAC_SHA256)
        .map_err(|_| malformed("deriving the MAC key failed"))?;
    Ok(hmac::Key::from(okm))
}

/// Parses a body; any deviation from the layout is an error, never a panic.
pub(super) fn parse(body: &[u8]) -> Result<Body<'_>, Malformed> {
    if body.len() > MAX_BODY_LEN {
        return Err(malformed(format!(
            "it is {} bytes long, over the limit of {MAX_BODY_LEN}",
            body.len()
        )));
    }
    let mut reader = Reader { rest: body };
    let version = reader.u8("version")?;
    if version != BODY_VERSION {
        return Err(malformed(format!(
            "body version {version} is not supported by this build (it reads {BODY_VERSION})"
        )));
    }
    let m = reader.u8("threshold m")?;
    let n = reader.u8("member count n")?;
    if m < 2 || m > n || usize::from(n) > MAX_MEMBERS {
        return Err(malformed(format!(
            "policy {m} of {n} is outside 2 <= m <= n <= {MAX_MEMBERS}"
        )));
    }
    let mut entries = Vec::with_capacity(usize::from(n));
    for expected in 0..n {
        let index = reader.u8("share index")?;
        if index != expected {
            return Err(malformed(format!(
                "entry {expected} holds share index {index}"
            )));
        }
        entries.push(reader.entry()?);
    }
    let authenticated = &body[..body.len() - reader.rest.len()];
    let mac = reader.take(MAC_LEN, "MAC")?;
    if !reader.rest.is_empty() {
        return Err(malformed(format!(
            "{} unexpected bytes follow the MAC",
            reader.rest.len()
        )));
    }
    Ok(Body {
        m,
        n,
        entries,
        authenticated,
        mac,
    })
}

/// A cursor over the unread bytes.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize, field: &str) -> Result<&'a [u8], Malformed> {
        if len > self.rest.len() {
            return Err(malformed(format!("it is truncated in the {field}")));
        }
        let (taken, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self, field: &str) -> Result<[u8; N], Malformed> {
        let bytes = self.take(N, field)?;
        bytes
            .try_into()
            .map_err(|_| malformed(format!("it is truncated in the {field}")))
    }

    fn u8(&mut self, field: &str) -> Result<u8, Malformed> {
        Ok(self.array::<1>(field)?[0])
    }

    fn text(&mut self, len: usize, field: &str) -> Result<&'a str, Malformed> {
        std::str::from_utf8(self.take(len, field)?)
            .map_err(|_| malformed(format!("a member {field} is not UTF-8")))
    }

    /// Everything of an entry after its index byte.
    fn entry(&mut self) -> Result<Entry<'a>, Malformed> {
        let kind_len = usize::from(self.u8("kind length")?);
        if kind_len == 0 || kind_len > MAX_KIND_LEN {
            return Err(malformed(format!(
                "a member kind is {kind_len} bytes long; 1 to {MAX_KIND_LEN} are allowed"
            )));
        }
        let kind = self.text(kind_len, "kind")?;
        let label_len = usize::from(self.u8("label length")?);
        let label = self.text(label_len, "label")?;
        let version = u32::from_be_bytes(self.array("key version")?);
        let wrapped_len = usize::from(u16::from_be_bytes(self.array("share length")?));
        if wrapped_len == 0 || wrapped_len > MAX_WRAPPED_SHARE_LEN {
            return Err(malformed(format!(
                "a wrapped share is {wrapped_len} bytes long; 1 to {MAX_WRAPPED_SHARE_LEN} are allowed"
            )));
        }
        let wrapped = self.take(wrapped_len, "wrapped share")?;
        Ok(Entry {
            kind,
            label,
            version,
            wrapped,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: usize) -> (Vec<u8>, Dek) {
        let dek = Dek::generate().expect("dek");
        let mut out = Vec::new();
        write_header(&mut out, 2, n);
        for k in 0..n {
            let id = KekId::new("memory", &format!("m{k}"), 7).expect("id");
            write_entry(&mut out, k, &id, &[k as u8; 61]).expect("entry");
        }
        append_mac(&mut out, &dek).expect("mac");
        (out, dek)
    }

    #[test]
    fn written_bodies_parse_back_with_a_valid_mac() {
        let (bytes, dek) = sample(3);
        let body = parse(&bytes).expect("parse");
        assert_eq!((body.m, body.n, body.entries.len()), (2, 3, 3));
        assert_eq!(body.entries[2].describe(), "memory:m2#v7");
        assert_eq!(body.entries[1].wrapped, &[1u8; 61][..]);
        assert!(mac_is_valid(&body, &dek));
        assert!(!mac_is_valid(&body, &Dek::generate().expect("dek")));
    }

    #[test]
    fn every_prefix_and_an_extension_are_refused() {
        let (bytes, _) = sample(3);
        for len in 0..bytes.len() {
            assert!(parse(&bytes[..len]).is_err(), "prefix of {len}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(parse(&longer).is_err());
    }

    #[test]
    fn out_of_bound_policies_and_lengths_are_refused() {
        let (bytes, _) = sample(3);
        for (at, value) in [(0, 2), (1, 1), (1, 4), (2, 17), (4, 0), (4, 33)] {
            let mut bad = bytes.clone();
            bad[at] = value;
            assert!(parse(&bad).is_err(), "byte {at} = {value}");
        }
        let mut moved = bytes.clone();
        moved[3] = 1;
        assert!(parse(&moved).is_err(), "entry 0 with index 1");
        assert!(parse(&vec![1; MAX_BODY_LEN + 1]).is_err());
    }

    #[test]
    fn an_empty_or_oversized_share_is_not_written() {
        let id = KekId::new("memory", "m", 1).expect("id");
        let mut out = Vec::new();
        assert!(write_entry(&mut out, 0, &id, &[]).is_err());
        assert!(write_entry(&mut out, 0, &id, &[0; MAX_WRAPPED_SHARE_LEN + 1]).is_err());
        assert!(out.is_empty());
    }
}
