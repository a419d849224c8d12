//! Seal and open: a fresh DEK per envelope, wrapped under every KEK given.

use std::sync::Arc;

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use crate::codec::{
    self, EnvelopeRef, FIXED_HEADER_LEN, MAX_PAYLOAD_LEN, TAG_LEN, write_stanza_body,
    write_stanza_id,
};
use crate::{Context, Dek, Error, KekProvider, SecretBytes};

/// Each DEK encrypts exactly one message, so a fixed nonce never repeats under a key.
const PAYLOAD_NONCE: [u8; NONCE_LEN] = [0; NONCE_LEN];

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
    let dek = Dek::generate()?;

    let mut aad = Vec::with_capacity(ctx.encoded_len() + 512);
    ctx.encode_into(&mut aad);
    let ctx_len = aad.len();

    let mut out =
        Vec::with_capacity(FIXED_HEADER_LEN + 128 * keks.len() + 4 + plaintext.len() + TAG_LEN);
    codec::write_fixed_header(&mut out, keks.len())?;
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
    let parsed = EnvelopeRef::parse(envelope)?;
    let mut aad = Vec::with_capacity(ctx.encoded_len() + parsed.header().len());
    ctx.encode_into(&mut aad);
    let ctx_len = aad.len();

    let dek = unwrap_dek(&parsed, &mut aad, ctx_len, keks)?;

    aad.truncate(ctx_len);
    aad.extend_from_slice(parsed.header());
    let mut plain = SecretBytes::zeroed(parsed.ciphertext().len())?;
    plain
        .expose_secret_mut()
        .copy_from_slice(parsed.ciphertext());
    let nonce = Nonce::assume_unique_for_key(PAYLOAD_NONCE);
    let opened = payload_key(&dek)?
        .open_in_place(nonce, Aad::from(&aad[..]), plain.expose_secret_mut())
        .map(|p| p.len());
    match opened {
        Ok(len) => {
            plain.truncate(len);
            Ok(plain)
        }
        Err(_) => Err(Error::Tampered),
    }
}

/// Finds a stanza one of `keks` claims and unwraps it. A KEK that fails does not stop the
/// search (another KEK may still open the envelope); its error is returned if none does.
fn unwrap_dek(
    parsed: &EnvelopeRef<'_>,
    aad: &mut Vec<u8>,
    ctx_len: usize,
    keks: &[Arc<dyn KekProvider>],
) -> Result<Dek, Error> {
    let mut first_failure = None;
    for stanza in parsed.stanzas() {
        aad.truncate(ctx_len);
        codec::write_stanza_id(aad, stanza.kind, stanza.label, stanza.version);
        for kek in keks {
            match kek.unwrap(&stanza, aad) {
                None => continue,
                Some(Ok(dek)) => return Ok(dek),
                Some(Err(e)) => {
                    first_failure.get_or_insert(e);
                }
            }
        }
    }
    Err(first_failure.unwrap_or_else(|| Error::NoUsableKek {
        wanted: parsed
            .stanzas()
            .map(|s| s.describe())
            .collect::<Vec<_>>()
            .join(", "),
    }))
}
