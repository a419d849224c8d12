//! Seal and open: a fresh DEK per envelope, wrapped under every KEK given.
//!
//! Both run once per secret operation, so they avoid heap work beyond the envelope itself:
//! the AAD is assembled in a reused per-thread buffer, `open` collects the stanzas while it
//! validates them, and the plaintext is decrypted straight into locked memory.

use std::sync::Arc;

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, Tag, UnboundKey};

use crate::codec::{
    self, EnvelopeRef, FIXED_HEADER_LEN, MAX_PAYLOAD_LEN, MAX_STANZAS, TAG_LEN, write_stanza_body,
    write_stanza_id,
};
use crate::scratch::ScratchBuf;
use crate::{Context, Dek, Error, KekProvider, SecretBytes, StanzaRef};

/// Each DEK encrypts exactly one message, so a fixed nonce never repeats under a key.
const PAYLOAD_NONCE: [u8; NONCE_LEN] = [0; NONCE_LEN];

#[inline(always)]
fn payload_key(dek: &Dek) -> Result<LessSafeKey, Error> {
    UnboundKey::new(&CHACHA20_POLY1305, dek.expose_secret())
        .map(LessSafeKey::new)
        .map_err(|_| Error::KeyLength {
            len: dek.expose_secret().len(),
        })
}

/// Seals `plaintext` for `ctx` under a fresh DEK wrapped by each of `keks`; returns the
/// binary envelope.
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
    codec::write_fixed_header(&mut out, keks.len())?;
    let dek = Dek::generate()?;

    let mut aad = ScratchBuf::take();
    ctx.encode_into(&mut aad);
    let ctx_len = aad.len();
    for kek in keks {
        let id = kek.id();
        let id_start = out.len();
        write_stanza_id(&mut out, id.kind(), id.label(), id.version());
        // Stanza AAD: the context and the KEK id, so a stanza only unwraps where it was made.
        aad.truncate(ctx_len);
        aad.extend_from_slice(&out[id_start..]);
        let body = kek.wrap(&dek, &aad)?;
        write_stanza_body(&mut out, &body)?;
    }
    // Payload AAD: the context and the whole header, so no stanza can be swapped.
    aad.truncate(ctx_len);
    aad.extend_from_slice(&out);

    let ct_len = plaintext.len() + TAG_LEN;
    out.extend_from_slice(&(ct_len as u32).to_be_bytes());
    let payload_start = out.len();
    out.extend_from_slice(plaintext);
    let nonce = Nonce::assume_unique_for_key(PAYLOAD_NONCE);
    let tag = payload_key(&dek)?
        .seal_in_place_separate_tag(nonce, Aad::from(&aad[..]), &mut out[payload_start..])
        .map_err(|_| Error::SecretTooLarge {
            max: MAX_PAYLOAD_LEN,
        })?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// Opens a binary envelope sealed for `ctx` with whichever of `keks` it was wrapped for.
pub fn open(
    envelope: &[u8],
    ctx: &Context<'_>,
    keks: &[Arc<dyn KekProvider>],
) -> Result<SecretBytes, Error> {
    ctx.check()?;
    let mut stanzas: [Option<StanzaRef<'_>>; MAX_STANZAS] = [None; MAX_STANZAS];
    let mut slots = stanzas.iter_mut();
    let parsed = EnvelopeRef::parse_visiting(envelope, |stanza| {
        // `parse` allows at most MAX_STANZAS, so there is always a slot.
        if let Some(slot) = slots.next() {
            *slot = Some(stanza);
        }
    })?;

    let mut aad = ScratchBuf::take();
    ctx.encode_into(&mut aad);
    let ctx_len = aad.len();
    let dek = unwrap_dek(stanzas.iter().map_while(|s| s.as_ref()), &mut aad, keks)
        .map_err(|e| e.unwrap_or_else(|| no_usable_kek(&parsed)))?;

    aad.truncate(ctx_len);
    aad.extend_from_slice(parsed.header());
    let (ciphertext, tag) = parsed
        .ciphertext()
        .split_at(parsed.ciphertext().len() - TAG_LEN);
    let tag = Tag::try_from(tag).map_err(|_| Error::Tampered)?;
    let mut plain = SecretBytes::zeroed(ciphertext.len())?;
    plain.expose_secret_mut().copy_from_slice(ciphertext);
    let nonce = Nonce::assume_unique_for_key(PAYLOAD_NONCE);
    payload_key(&dek)?
        .open_in_place_separate_tag(
            nonce,
            Aad::from(&aad[..]),
            tag,
            plain.expose_secret_mut(),
            0..,
        )
        .map_err(|_| Error::Tampered)?;
    Ok(plain)
}

/// Finds a stanza one of `keks` claims and unwraps it. A KEK that fails does not stop the
/// search (another KEK may still open the envelope); its error is returned if none does,
/// and `None` if no KEK claimed any stanza.
fn unwrap_dek<'a>(
    stanzas: impl Iterator<Item = &'a StanzaRef<'a>>,
    aad: &mut Vec<u8>,
    keks: &[Arc<dyn KekProvider>],
) -> Result<Dek, Option<Error>> {
    let ctx_len = aad.len();
    let mut first_failure = None;
    for stanza in stanzas {
        aad.truncate(ctx_len);
        codec::write_stanza_id(aad, stanza.kind, stanza.label, stanza.version);
        for kek in keks {
            match kek.unwrap(stanza, aad) {
                None => continue,
                Some(Ok(dek)) => return Ok(dek),
                Some(Err(e)) => {
                    first_failure.get_or_insert(e);
                }
            }
        }
    }
    Err(first_failure)
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
