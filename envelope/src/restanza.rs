//! Changing the stanza list of a v2 envelope without its DEK: keeping some of its stanzas,
//! and adding stanzas of another envelope that wraps the same DEK (made by [`crate::rewrap`],
//! which keeps the DEK and the ciphertext of a v2 input). The vault uses this to drop a
//! removed KEK from an envelope, or to add a new one, while other KEKs are not present.

use crate::codec::{self, EnvelopeRef, FORMAT_VERSION};
use crate::{Error, StanzaRef};

/// `envelope` with the stanzas `keep` selects (in its order), then every stanza of `extra`
/// whose KEK id `envelope` keeps no stanza for. `extra`, if given, must be a v2 envelope with
/// the same ciphertext (the same payload under the same DEK); stanzas taken from it wrap that
/// DEK. v1 envelopes are refused: their payload AAD covers the stanzas.
pub fn restanza(
    envelope: &[u8],
    keep: impl Fn(&StanzaRef<'_>) -> bool,
    extra: Option<&[u8]>,
) -> Result<Vec<u8>, Error> {
    let parsed = EnvelopeRef::parse(envelope)?;
    let only_v2 = |e: &EnvelopeRef<'_>| {
        if e.version() == FORMAT_VERSION {
            Ok(())
        } else {
            Err(Error::UnsupportedVersion(e.version()))
        }
    };
    only_v2(&parsed)?;
    let mut stanzas: Vec<StanzaRef<'_>> = parsed.stanzas().filter(|s| keep(s)).collect();
    let extra = extra.map(EnvelopeRef::parse).transpose()?;
    if let Some(extra) = &extra {
        only_v2(extra)?;
        if extra.ciphertext() != parsed.ciphertext() {
            return Err(Error::Tampered);
        }
        for stanza in extra.stanzas() {
            if !stanzas.iter().any(|s| s.describe() == stanza.describe()) {
                stanzas.push(stanza);
            }
        }
    }
    if stanzas.is_empty() {
        return Err(Error::NoKek);
    }
    let ciphertext = parsed.ciphertext();
    let mut out = Vec::with_capacity(envelope.len() + extra.map_or(0, |_| 256));
    codec::write_fixed_header(&mut out, FORMAT_VERSION, stanzas.len())?;
    for stanza in &stanzas {
        codec::write_stanza_id(&mut out, stanza.kind, stanza.label, stanza.version);
        codec::write_stanza_body(&mut out, stanza.body)?;
    }
    // `parse` bounded the ciphertext length to fit a u32.
    out.extend_from_slice(&(ciphertext.len() as u32).to_be_bytes());
    out.extend_from_slice(ciphertext);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{Context, Dek, KekId, KekProvider, SoftwareKek, open, rewrap, seal};

    fn kek(label: &str) -> Arc<dyn KekProvider> {
        Arc::new(SoftwareKek::new(
            KekId::new("test", label, 1).expect("id"),
            Dek::generate().expect("key"),
        ))
    }

    #[test]
    fn drops_and_adds_stanzas_without_the_other_keks() {
        let ctx = Context::new("s", "k", 1);
        let (a, b, c) = (kek("a"), kek("b"), kek("c"));
        let sealed = seal(b"payload", &ctx, &[a.clone(), b.clone()]).expect("seal");
        // Drop b: a still opens, b no longer does.
        let without_b = restanza(&sealed, |s| s.label != "b", None).expect("drop b");
        assert_eq!(
            open(&without_b, &ctx, std::slice::from_ref(&a))
                .expect("a")
                .expose_secret(),
            b"payload"
        );
        assert!(open(&without_b, &ctx, std::slice::from_ref(&b)).is_err());
        // Add c with a alone (b absent), keeping b's stanza.
        let for_c = rewrap(
            &sealed,
            &ctx,
            std::slice::from_ref(&a),
            std::slice::from_ref(&c),
        )
        .expect("rewrap");
        let with_c = restanza(&sealed, |_| true, Some(&for_c.envelope)).expect("add c");
        for kek in [a, b, c] {
            assert_eq!(
                open(&with_c, &ctx, &[kek]).expect("opens").expose_secret(),
                b"payload"
            );
        }
        // Stanzas of another payload are refused, and so is dropping every stanza.
        let other = seal(b"other", &ctx, &[kek("d")]).expect("seal");
        assert!(matches!(
            restanza(&sealed, |_| true, Some(&other)),
            Err(Error::Tampered)
        ));
        assert!(matches!(
            restanza(&sealed, |_| false, None),
            Err(Error::NoKek)
        ));
    }
}
