//! Rewrap: an envelope's DEK wrapped again under other KEKs (key rotation, a KEK added or
//! removed), without re-encrypting the payload. Safe in format v2 only, whose payload AAD
//! leaves the stanzas out: the DEK still encrypts exactly one payload, once (FORMAT.md,
//! "Rewrap").

use std::sync::Arc;

use crate::codec::{self, FIXED_HEADER_LEN, FORMAT_VERSION, FORMAT_VERSION_1};
use crate::scratch::ScratchBuf;
use crate::seal::{Stanzas, seal, unwrap_and_open, write_stanzas};
use crate::{Context, Error, KekProvider};

/// The outcome of [`rewrap`].
#[derive(Debug)]
pub struct Rewrapped {
    /// The new binary envelope, format v2, with one stanza per KEK of `wrap_with`.
    pub envelope: Vec<u8>,
    /// Whether the payload was encrypted again under a fresh DEK: true for a v1 input (its
    /// payload AAD covers its stanzas), false when only the stanzas were replaced.
    pub reencrypted: bool,
}

/// Wraps the DEK of `envelope` (sealed for `ctx`) under each of `wrap_with` instead of its
/// current KEKs, unwrapping it with one of `unwrap_with`.
///
/// A v2 envelope keeps its payload bytes: the DEK is unwrapped, the payload authenticated
/// with it (decrypted into locked memory and dropped: the plaintext is never returned) and
/// a new header written. A stanza whose DEK does not authenticate the payload (one swapped
/// in from another envelope) is skipped, so it cannot make the good stanzas be dropped. A
/// v1 envelope is opened and sealed again as v2 under a fresh DEK.
///
/// Errors are those of [`crate::open`] and, for `wrap_with`, of [`crate::seal`]
/// (`NoKek`, `TooManyKeks`, a KEK's wrap failure).
pub fn rewrap(
    envelope: &[u8],
    ctx: &Context<'_>,
    unwrap_with: &[Arc<dyn KekProvider>],
    wrap_with: &[Arc<dyn KekProvider>],
) -> Result<Rewrapped, Error> {
    ctx.check()?;
    let mut stanzas = Stanzas::new();
    let parsed = stanzas.parse(envelope)?;
    // Before any KEK is asked to unwrap: that may be a slow or rate-limited device.
    codec::check_kek_count(wrap_with.len())?;
    let (dek, plain) = unwrap_and_open(&parsed, &stanzas, ctx, unwrap_with)?;
    if parsed.version() == FORMAT_VERSION_1 {
        // New stanzas need a new v1 payload AAD, and re-sealing under the old DEK would
        // reuse its one-time key: seal afresh, as v2.
        let envelope = seal(plain.expose_secret(), ctx, wrap_with)?;
        return Ok(Rewrapped {
            envelope,
            reencrypted: true,
        });
    }
    // Authenticated: the payload is this DEK's. Its plaintext is not needed.
    drop(plain);

    let ciphertext = parsed.ciphertext();
    let mut out =
        Vec::with_capacity(FIXED_HEADER_LEN + 128 * wrap_with.len() + 4 + ciphertext.len());
    codec::write_fixed_header(&mut out, FORMAT_VERSION, wrap_with.len())?;
    let mut aad = ScratchBuf::take();
    ctx.encode_into(FORMAT_VERSION, &mut aad);
    write_stanzas(&mut out, &mut aad, &dek, wrap_with)?;
    // `parse` bounded the ciphertext length to fit a u32.
    out.extend_from_slice(&(ciphertext.len() as u32).to_be_bytes());
    out.extend_from_slice(ciphertext);
    Ok(Rewrapped {
        envelope: out,
        reencrypted: false,
    })
}
