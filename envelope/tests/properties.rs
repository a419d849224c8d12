//! Properties of the codec and of seal/open over arbitrary inputs.

use std::sync::Arc;

use envelope::{
    Context, EnvelopeRef, KekId, KekProvider, SoftwareKek, from_json, open, seal, to_json,
};
use proptest::prelude::*;

fn keks(n: usize) -> Vec<Arc<dyn KekProvider>> {
    (0..n)
        .map(|i| {
            let kek = SoftwareKek::random(&format!("prop-{i}")).expect("kek");
            Arc::new(kek) as Arc<dyn KekProvider>
        })
        .collect()
}

/// A valid envelope of the fixed context `global/k#1`, and a KEK that opens it.
fn fixed_envelope(plaintext: &[u8]) -> (Vec<u8>, Arc<dyn KekProvider>) {
    let k = keks(1).remove(0);
    let env = seal(
        plaintext,
        &Context::new("global", "k", 1),
        std::slice::from_ref(&k),
    );
    (env.expect("seal"), k)
}

/// Opening must fail on bytes that are not exactly a sealed envelope.
fn assert_open_fails(bytes: &[u8], kek: &Arc<dyn KekProvider>) {
    let ctx = Context::new("global", "k", 1);
    let result = open(bytes, &ctx, std::slice::from_ref(kek));
    assert!(result.is_err(), "a modified envelope opened");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn seal_parse_json_binary_open_round_trips(
        plaintext in proptest::collection::vec(any::<u8>(), 0..600),
        scope in ".{0,40}",
        key in ".{0,40}",
        version in any::<u64>(),
        kek_count in 1usize..4,
    ) {
        let keks = keks(kek_count);
        let ctx = Context::new(&scope, &key, version);
        let env = seal(&plaintext, &ctx, &keks).expect("seal");
        let parsed = EnvelopeRef::parse(&env).expect("parse");
        prop_assert_eq!(parsed.plaintext_len(), plaintext.len());
        prop_assert_eq!(parsed.stanzas().count(), kek_count);
        let json = to_json(&env).expect("to_json");
        prop_assert_eq!(&from_json(&json).expect("from_json"), &env);
        for k in &keks {
            let opened = open(&env, &ctx, std::slice::from_ref(k)).expect("open");
            prop_assert_eq!(opened.expose_secret(), &plaintext[..]);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = EnvelopeRef::parse(&bytes);
        let (_, k) = fixed_envelope(b"");
        assert_open_fails(&bytes, &k);
        let _ = from_json(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn edited_envelopes_never_panic_and_never_open(
        plaintext in proptest::collection::vec(any::<u8>(), 0..100),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let (mut env, k) = fixed_envelope(&plaintext);
        let original = env.clone();
        for (at, value) in edits {
            let i = at.index(env.len());
            env[i] = value;
        }
        if truncate {
            env.truncate(cut.index(env.len()));
        }
        if env != original {
            let _ = EnvelopeRef::parse(&env);
            assert_open_fails(&env, &k);
        }
    }

    #[test]
    fn edited_json_never_panics(
        at in any::<prop::sample::Index>(),
        insert in ".{0,4}",
        remove in 0usize..8,
    ) {
        let (env, _) = fixed_envelope(b"secret");
        let json = to_json(&env).expect("to_json");
        let mut chars: Vec<char> = json.chars().collect();
        let i = at.index(chars.len());
        let end = (i + remove).min(chars.len());
        chars.splice(i..end, insert.chars());
        let edited: String = chars.into_iter().collect();
        if let Ok(bytes) = from_json(&edited) {
            // Whatever still parses is a canonical envelope again.
            prop_assert_eq!(from_json(&to_json(&bytes).expect("to_json")).expect("again"), bytes);
        }
    }

    #[test]
    fn a_bit_flip_in_a_random_envelope_never_opens(
        plaintext in proptest::collection::vec(any::<u8>(), 0..200),
        bit in any::<prop::sample::Index>(),
    ) {
        let (mut env, k) = fixed_envelope(&plaintext);
        let i = bit.index(env.len() * 8);
        env[i / 8] ^= 1 << (i % 8);
        assert_open_fails(&env, &k);
    }
}

#[test]
fn every_single_bit_flip_makes_open_fail() {
    let (env, k) =
        fixed_envelope(b"a 64-byte secret, give or take: 0123456789abcdef0123456789abcdef");
    for i in 0..env.len() * 8 {
        let mut flipped = env.clone();
        flipped[i / 8] ^= 1 << (i % 8);
        assert_open_fails(&flipped, &k);
    }
}

/// In v2 the payload AAD leaves the stanzas out (FORMAT.md), so a flip inside a stanza of
/// another KEK may leave the envelope opening, but only to the sealed secret; a flip
/// anywhere else fails.
#[test]
fn a_bit_flip_outside_the_other_keks_stanza_fails_and_inside_it_cannot_change_the_secret() {
    let two = keks(2);
    let ctx = Context::new("global", "k", 1);
    let env = seal(b"two stanzas", &ctx, &two).expect("seal");
    let parsed = EnvelopeRef::parse(&env).expect("parse");
    let first = parsed.stanzas().next().expect("stanza");
    let first_end = 8 + 1 + first.kind.len() + 1 + first.label.len() + 4 + 2 + first.body.len();
    for i in 0..env.len() * 8 {
        let mut flipped = env.clone();
        flipped[i / 8] ^= 1 << (i % 8);
        if (8..first_end).contains(&(i / 8)) {
            if let Ok(opened) = open(&flipped, &ctx, std::slice::from_ref(&two[1])) {
                assert_eq!(opened.expose_secret(), b"two stanzas");
            }
        } else {
            assert_open_fails(&flipped, &two[1]);
        }
    }
}

#[test]
fn stanza_ids_round_trip_through_both_forms() {
    let id = KekId::new("pkcs11", "slot 0 / key \"main\" ✓", u32::MAX).expect("id");
    let kek: Arc<dyn KekProvider> = Arc::new(SoftwareKek::new(
        id,
        envelope::Dek::generate().expect("dek"),
    ));
    let env = seal(b"x", &Context::new("", "", 0), std::slice::from_ref(&kek)).expect("seal");
    let back = from_json(&to_json(&env).expect("json")).expect("binary");
    let parsed = EnvelopeRef::parse(&back).expect("parse");
    let stanza = parsed.stanzas().next().expect("stanza");
    assert!(stanza.is_for(kek.id()));
}
