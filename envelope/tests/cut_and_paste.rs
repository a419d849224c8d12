//! An envelope or a piece of one moved anywhere it was not made for fails to open, and a KEK
//! that is not the envelope's is told apart from one that is but fails.

use std::sync::Arc;

use envelope::{Context, Dek, EnvelopeRef, Error, KekId, KekProvider, SoftwareKek, open, seal};

fn kek_with(kind: &str, label: &str, version: u32, key: &[u8; 32]) -> Arc<dyn KekProvider> {
    let id = KekId::new(kind, label, version).expect("id");
    Arc::new(SoftwareKek::new(id, Dek::from_slice(key).expect("key")))
}

fn kek(label: &str) -> Arc<dyn KekProvider> {
    Arc::new(SoftwareKek::random(label).expect("kek"))
}

const CTX: Context<'static> = Context {
    scope: "global",
    key: "db-password",
    version: 1,
};

/// Header length of an envelope, to cut it into header and ciphertext part.
fn header_len(env: &[u8]) -> usize {
    EnvelopeRef::parse(env).expect("parse").header().len()
}

#[test]
fn stanza_from_another_envelope_of_the_same_context_fails() {
    let k = kek("a");
    let a = seal(b"secret A", &CTX, std::slice::from_ref(&k)).expect("seal");
    let b = seal(b"secret B", &CTX, std::slice::from_ref(&k)).expect("seal");
    let h = header_len(&a);
    assert_eq!(h, header_len(&b));
    // B's header (its stanza, which unwraps B's DEK) in front of A's ciphertext.
    let spliced = [&b[..h], &a[h..]].concat();
    let err = open(&spliced, &CTX, std::slice::from_ref(&k)).expect_err("spliced");
    assert!(matches!(err, Error::Tampered), "{err:?}");
    // And A's header in front of B's ciphertext.
    let spliced = [&a[..h], &b[h..]].concat();
    let err = open(&spliced, &CTX, &[k]).expect_err("spliced");
    assert!(matches!(err, Error::Tampered), "{err:?}");
}

#[test]
fn swapping_the_order_of_stanzas_fails() {
    let (x, y) = (kek("x"), kek("y"));
    let env = seal(b"secret", &CTX, &[x.clone(), y.clone()]).expect("seal");
    let parsed = EnvelopeRef::parse(&env).expect("parse");
    let stanzas: Vec<_> = parsed.stanzas().collect();
    // Re-encode the header with the two stanzas swapped (FORMAT.md: the stanza layout).
    let mut swapped = env[..8].to_vec();
    for s in stanzas.iter().rev() {
        swapped.push(s.kind.len() as u8);
        swapped.extend_from_slice(s.kind.as_bytes());
        swapped.push(s.label.len() as u8);
        swapped.extend_from_slice(s.label.as_bytes());
        swapped.extend_from_slice(&s.version.to_be_bytes());
        swapped.extend_from_slice(&(s.body.len() as u16).to_be_bytes());
        swapped.extend_from_slice(s.body);
    }
    swapped.extend_from_slice(&env[parsed.header().len()..]);
    assert_eq!(swapped.len(), env.len());
    for k in [x, y] {
        let err = open(&swapped, &CTX, &[k]).expect_err("swapped stanzas");
        assert!(matches!(err, Error::Tampered), "{err:?}");
    }
}

#[test]
fn a_stanza_renamed_to_another_kek_id_fails() {
    let key = [9u8; 32];
    let v1 = kek_with("file", "main", 1, &key);
    let v2 = kek_with("file", "main", 2, &key);
    let env = seal(b"secret", &CTX, &[v1]).expect("seal");
    // Same key bytes under version 2: rewrite the stanza's version field to 2.
    let at = 8 + 1 + 4 + 1 + 4;
    let mut renamed = env.clone();
    renamed[at..at + 4].copy_from_slice(&2u32.to_be_bytes());
    let err = open(&renamed, &CTX, &[v2]).expect_err("renamed stanza");
    assert!(matches!(err, Error::StanzaRejected { .. }), "{err:?}");
}

#[test]
fn an_envelope_opened_under_another_scope_key_or_version_fails() {
    let k = kek("a");
    let ctx = Context::new("ab", "c", 7);
    let env = seal(b"secret", &ctx, std::slice::from_ref(&k)).expect("seal");
    for other in [
        Context::new("a", "bc", 7),
        Context::new("abc", "", 7),
        Context::new("ab", "c", 8),
        Context::new("ab", "c", 7 << 32),
        Context::new("AB", "c", 7),
        Context::new("ab", "c\0", 7),
    ] {
        let err = open(&env, &other, std::slice::from_ref(&k)).expect_err("moved");
        assert!(
            matches!(err, Error::StanzaRejected { .. }),
            "{other:?}: {err:?}"
        );
    }
    assert_eq!(
        open(&env, &ctx, &[k]).expect("open").expose_secret(),
        b"secret"
    );
}

#[test]
fn a_kek_with_another_id_is_not_usable_and_a_wrong_key_is_rejected() {
    let key = [1u8; 32];
    let env = seal(b"s", &CTX, &[kek_with("file", "main", 1, &key)]).expect("seal");
    for other in [
        kek_with("file", "main", 2, &key),
        kek_with("file", "other", 1, &key),
        kek_with("passphrase", "main", 1, &key),
    ] {
        match open(&env, &CTX, &[other]).expect_err("not its KEK") {
            Error::NoUsableKek { wanted } => assert_eq!(wanted, "file:main#v1"),
            err => panic!("{err:?}"),
        }
    }
    // Same id, other key bytes: the KEK claims the stanza and fails ("mine but failed").
    let impostor = kek_with("file", "main", 1, &[2u8; 32]);
    let err = open(&env, &CTX, std::slice::from_ref(&impostor)).expect_err("wrong key");
    assert!(matches!(err, Error::StanzaRejected { kek } if kek == "file:main#v1"));
    // A failing KEK does not stop another from opening the envelope.
    let right = kek_with("file", "main", 1, &key);
    let opened = open(&env, &CTX, &[impostor, right]).expect("second KEK opens");
    assert_eq!(opened.expose_secret(), b"s");
}

#[test]
fn no_kek_to_open_with_lists_every_stanza() {
    let env = seal(b"s", &CTX, &[kek("a"), kek("b")]).expect("seal");
    match open(&env, &CTX, &[]).expect_err("no KEKs") {
        Error::NoUsableKek { wanted } => assert_eq!(wanted, "memory:a#v1, memory:b#v1"),
        err => panic!("{err:?}"),
    }
}

#[test]
fn sealing_checks_its_inputs() {
    let k = kek("a");
    assert!(matches!(seal(b"s", &CTX, &[]), Err(Error::NoKek)));
    let many: Vec<_> = (0..17).map(|_| k.clone()).collect();
    assert!(matches!(
        seal(b"s", &CTX, &many),
        Err(Error::TooManyKeks { count: 17, max: 16 })
    ));
    let long = "x".repeat(1025);
    for ctx in [Context::new(&long, "k", 1), Context::new("s", &long, 1)] {
        let err = seal(b"s", &ctx, std::slice::from_ref(&k)).expect_err("long name");
        assert!(matches!(err, Error::InvalidName { .. }), "{err:?}");
        let err = open(b"", &ctx, std::slice::from_ref(&k)).expect_err("long name");
        assert!(matches!(err, Error::InvalidName { .. }), "{err:?}");
    }
    let big = vec![0u8; envelope::MAX_PAYLOAD_LEN + 1];
    let err = seal(&big, &CTX, &[k]).expect_err("too large");
    assert!(matches!(err, Error::SecretTooLarge { .. }), "{err:?}");
}
