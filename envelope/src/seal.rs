//! Seal and open: a fresh DEK per envelope, wrapped under every KEK given.
//!
//! Both run once per secret operation, so they avoid heap work beyond the envelope itself:
//! the AAD is assembled in a reused per-thread buffer, `open` collects the stanzas while it
//! validates them, and the plaintext is decrypted straight into locked memory. `rewrap`
//! reuses the pieces: the stanza writer of `seal` and the unwrap-and-authenticate of `open`.

use std::sync::Arc;

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, Tag, UnboundKey};

use crate::codec::{
    self, EnvelopeRef, FIXED_HEADER_LEN, FORMAT_VERSION, MAX_PAYLOAD_LEN, MAX_STANZAS, TAG_LEN,
    V2_AUTHENTICATED_PREFIX, write_stanza_body, write_stanza_id,
};
use crate::scratch::ScratchBuf;
use crate::{Context, Dek, Error, KekProvider, SecretBytes, StanzaRef};

/// Each DEK encrypts exactly one message, so a fixed nonce never repeats under a key.
const PAYLOAD_NONCE: [u8; NONCE_LEN] = [0; NONCE_LEN];

/// Runs `op` with ring's key object for `dek`. The object is built here and lent, not
/// returned: it is a large enum, and every move of it through a `Result` was one more copy
/// of it (and of the DEK inside it) on the stack, and a measurable part of an open.
#[inline(always)]
fn with_payload_key<R>(dek: &Dek, op: impl FnOnce(&LessSafeKey) -> R) -> Result<R, Error> {
    match UnboundKey::new(&CHACHA20_POLY1305, dek.expose_secret()) {
        Ok(key) => Ok(op(&LessSafeKey::new(key))),
        Err(_) => Err(Error::KeyLength {
            len: dek.expose_secret().len(),
        }),
    }
}

/// Seals `plaintext` for `ctx` under a fresh DEK wrapped by each of `keks`; returns the
/// binary envelope (format v2).
pub fn seal(
    plaintext: &[u8],
    ctx: &Context<'_>,
    keks: &[Arc<dyn KekProvider>],
) -> Result<Vec<u8>, Error> {
    ctx.check()?;
    if plaintext.len() > MAX_PAYLOAD_LEN {
        return Err(Error::SecretTooLarge {
            max: MAX_PAYLOAD_LEN,
        });
    }
    let mut out =
        Vec::with_capacity(FIXED_HEADER_LEN + 128 * keks.len() + 4 + plaintext.len() + TAG_LEN);
    codec::write_fixed_header(&mut out, FORMAT_VERSION, keks.len())?;
    let dek = Dek::generate()?;

    let mut aad = ScratchBuf::take();
    ctx.encode_into(FORMAT_VERSION, &mut aad);
    write_stanzas(&mut out, &mut aad, &dek, keks)?;
    // Payload AAD: the context and the header's fixed prefix. The stanzas are left out so
    // that `rewrap` can replace them; each stanza binds its DEK to the context itself.
    aad.extend_from_slice(&out[..V2_AUTHENTICATED_PREFIX]);

    let ct_len = plaintext.len() + TAG_LEN;
    out.extend_from_slice(&(ct_len as u32).to_be_bytes());
    let payload_start = out.len();
    out.extend_from_slice(plaintext);
    let nonce = Nonce::assume_unique_for_key(PAYLOAD_NONCE);
    let tag = with_payload_key(&dek, |key| {
        key.seal_in_place_separate_tag(nonce, Aad::from(&aad[..]), &mut out[payload_start..])
    })?
    .map_err(|_| Error::SecretTooLarge {
        max: MAX_PAYLOAD_LEN,
    })?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// Appends one stanza per KEK, each wrapping `dek`. `aad` holds the encoded context on
/// entry and again on return.
pub(crate) fn write_stanzas(
    out: &mut Vec<u8>,
    aad: &mut Vec<u8>,
    dek: &Dek,
    keks: &[Arc<dyn KekProvider>],
) -> Result<(), Error> {
    let ctx_len = aad.len();
    for kek in keks {
        let id = kek.id();
        let id_start = out.len();
        write_stanza_id(out, id.kind(), id.label(), id.version());
        // Stanza AAD: the context and the KEK id, so a stanza only unwraps where it was made.
        aad.truncate(ctx_len);
        aad.extend_from_slice(&out[id_start..]);
        let body = kek.wrap(dek, aad)?;
        write_stanza_body(out, &body)?;
    }
    aad.truncate(ctx_len);
    Ok(())
}

/// Opens a binary envelope (v1 or v2) sealed for `ctx` with whichever of `keks` it was
/// wrapped for.
pub fn open(
    envelope: &[u8],
    ctx: &Context<'_>,
    keks: &[Arc<dyn KekProvider>],
) -> Result<SecretBytes, Error> {
    ctx.check()?;
    let mut stanzas = Stanzas::new();
    let parsed = stanzas.parse(envelope)?;
    let (_dek, plain) = unwrap_and_open(&parsed, &stanzas, ctx, keks)?;
    Ok(plain)
}

/// The stanzas of an envelope, collected while they were validated so that no second pass
/// over the header is needed. Filled in place by [`Stanzas::parse`]: the array is large
/// (16 stanza references), and returning it inside a `Result` cost two copies of it on
/// every open.
pub(crate) struct Stanzas<'a> {
    /// Each stanza with the encoded bytes of its id, the suffix of its stanza AAD.
    slots: [Option<(StanzaRef<'a>, &'a [u8])>; MAX_STANZAS],
}

impl<'a> Stanzas<'a> {
    #[inline]
    pub(crate) fn new() -> Self {
        Self {
            slots: [None; MAX_STANZAS],
        }
    }

    /// Parses `bytes`, keeping its stanzas here.
    #[inline]
    pub(crate) fn parse(&mut self, bytes: &'a [u8]) -> Result<EnvelopeRef<'a>, Error> {
        let mut slots = self.slots.iter_mut();
        EnvelopeRef::parse_visiting(bytes, |stanza, id| {
            // `parse` allows at most MAX_STANZAS, so there is always a slot.
            if let Some(slot) = slots.next() {
                *slot = Some((stanza, id));
            }
        })
    }

    fn iter(&self) -> impl Iterator<Item = &(StanzaRef<'a>, &'a [u8])> {
        self.slots.iter().map_while(|s| s.as_ref())
    }
}

/// Unwraps that may fail per KEK and envelope before that KEK is asked no more: each one may
/// be a device round trip, a PIN use or a touch, and a forged stanza costs nothing to write.
/// Two leave room for one stanza swapped in from another envelope in front of the good one.
pub const MAX_FAILED_UNWRAPS_PER_KEK: u8 = 2;

/// Unwraps a DEK from a stanza one of `keks` claims and opens the payload with it; returns
/// both. Stanzas are tried in order, and a DEK under which the payload does not
/// authenticate does not end the search: the v2 payload AAD leaves the stanzas out, so a
/// stanza swapped in from another envelope unwraps to another DEK, and the envelope's own
/// stanza must still be found. A KEK that fails does not end it either, but a KEK is asked
/// no more once [`MAX_FAILED_UNWRAPS_PER_KEK`] of its unwraps failed (refused, errored, or
/// gave a DEK the payload did not authenticate under), so forged stanzas cannot multiply
/// the calls to it.
///
/// Errors: `Tampered` if a DEK unwrapped but none authenticated the payload, else the first
/// KEK failure, else `NoUsableKek` (no KEK claimed any stanza).
pub(crate) fn unwrap_and_open(
    envelope: &EnvelopeRef<'_>,
    stanzas: &Stanzas<'_>,
    ctx: &Context<'_>,
    keks: &[Arc<dyn KekProvider>],
) -> Result<(Dek, SecretBytes), Error> {
    let mut aad = ScratchBuf::take();
    ctx.encode_into(envelope.version(), &mut aad);
    let ctx_len = aad.len();
    let mut tampered = false;
    let mut first_failure = None;
    // Failed unwraps per KEK (by index in `keks`); allocated at the first failure only, so
    // an envelope that opens at once costs no heap work here.
    let mut failures: Vec<u8> = Vec::new();
    for (stanza, id) in stanzas.iter() {
        for (index, kek) in keks.iter().enumerate() {
            if failures.get(index).copied().unwrap_or(0) >= MAX_FAILED_UNWRAPS_PER_KEK {
                continue;
            }
            // Stanza AAD: the context and the stanza's id bytes as the envelope encodes them
            // (the encoding is canonical, so they are what `write_stanza_id` wrote at seal).
            aad.truncate(ctx_len);
            aad.extend_from_slice(id);
            let dek = match kek.unwrap(stanza, &aad) {
                None => continue,
                Some(Ok(dek)) => dek,
                Some(Err(e)) => {
                    first_failure.get_or_insert(e);
                    count_failure(&mut failures, index, keks.len());
                    continue;
                }
            };
            aad.truncate(ctx_len);
            aad.extend_from_slice(envelope.authenticated_header());
            match open_payload(&dek, &aad, envelope.ciphertext()) {
                Ok(plain) => return Ok((dek, plain)),
                Err(Error::Tampered) => {
                    tampered = true;
                    count_failure(&mut failures, index, keks.len());
                }
                Err(e) => return Err(e),
            }
        }
    }
    Err(if tampered {
        Error::Tampered
    } else {
        first_failure.unwrap_or_else(|| no_usable_kek(envelope))
    })
}

/// Counts one failed unwrap of the KEK at `index` (of `count`).
#[cold]
fn count_failure(failures: &mut Vec<u8>, index: usize, count: usize) {
    if failures.is_empty() {
        failures.resize(count, 0);
    }
    if let Some(n) = failures.get_mut(index) {
        *n = n.saturating_add(1);
    }
}

/// Decrypts a payload (ciphertext and tag) straight into locked memory.
fn open_payload(dek: &Dek, aad: &[u8], sealed: &[u8]) -> Result<SecretBytes, Error> {
    let (ciphertext, tag) = sealed
        .split_at_checked(sealed.len().wrapping_sub(TAG_LEN))
        .ok_or(Error::Tampered)?;
    let tag = Tag::try_from(tag).map_err(|_| Error::Tampered)?;
    let mut plain = SecretBytes::zeroed(ciphertext.len())?;
    plain.expose_secret_mut().copy_from_slice(ciphertext);
    let nonce = Nonce::assume_unique_for_key(PAYLOAD_NONCE);
    with_payload_key(dek, |key| {
        key.open_in_place_separate_tag(nonce, Aad::from(aad), tag, plain.expose_secret_mut(), 0..)
            .map(|_| ())
    })?
    .map_err(|_| Error::Tampered)?;
    Ok(plain)
}

fn no_usable_kek(parsed: &EnvelopeRef<'_>) -> Error {
    Error::NoUsableKek {
        wanted: parsed
            .stanzas()
            .map(|s| s.describe())
            .collect::<Vec<_>>()
            .join(", "),
    }
}
