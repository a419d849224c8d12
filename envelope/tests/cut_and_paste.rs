//! An envelope or a piece of one moved anywhere it was not made for fails to open, and a KEK
//! that is not the envelope's is told apart from one that is but fails. In format v2 the
//! stanzas may be reordered or removed (the payload AAD leaves them out, so that `rewrap` can
//! replace them); a stanza from another envelope still fails, without hiding the good ones.

use std::sync::Arc;

mod golden;

use envelope::{
    Context, Dek, EnvelopeRef, Error, KekId, KekProvider, SoftwareKek, StanzaRef, open, seal,
};

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

/// `env` with its stanzas replaced by `stanzas` (FORMAT.md: the stanza layout), keeping the
/// fixed header prefix and the ciphertext.
fn with_stanzas(env: &[u8], stanzas: &[StanzaRef<'_>]) -> Vec<u8> {
    let mut out = env[..7].to_vec();
    out.push(stanzas.len() as u8);
    for s in stanzas {
        out.push(s.kind.len() as u8);
        out.extend_from_slice(s.kind.as_bytes());
        out.push(s.label.len() as u8);
        out.extend_from_slice(s.label.as_bytes());
        out.extend_from_slice(&s.version.to_be_bytes());
        out.extend_from_slice(&(s.body.len() as u16).to_be_bytes());
        out.extend_from_slice(s.body);
    }
    out.extend_from_slice(&env[header_len(env)..]);
    out
}

fn stanzas_of(env: &[u8]) -> Vec<StanzaRef<'_>> {
    EnvelopeRef::parse(env).expect("parse").stanzas().collect()
}

#[test]
fn a_stanza_swapped_in_from_another_envelope_fails_but_does_not_hide_the_good_one() {
    let (x, y) = (kek("x"), kek("y"));
    let a = seal(b"secret A", &CTX, &[x.clone(), y.clone()]).expect("seal");
    let b = seal(b"secret B", &CTX, &[x.clone(), y.clone()]).expect("seal");
    // A with B's x-stanza in place of its own: x unwraps B's DEK, A's payload rejects it.
    let spliced = with_stanzas(&a, &[stanzas_of(&b)[0], stanzas_of(&a)[1]]);
    let err = open(&spliced, &CTX, std::slice::from_ref(&x)).expect_err("swapped stanza");
    assert!(matches!(err, Error::Tampered), "{err:?}");
    // Open goes on to A's own y-stanza, tried after the swapped one.
    let opened = open(&spliced, &CTX, &[x.clone(), y.clone()]).expect("y still opens");
    assert_eq!(opened.expose_secret(), b"secret A");
    // B's stanza added in front of A's own: the same.
    let added = with_stanzas(&a, &[stanzas_of(&b)[0], stanzas_of(&a)[0]]);
    assert_eq!(
        open(&added, &CTX, &[x]).expect("open").expose_secret(),
        b"secret A"
    );
}

/// By design (FORMAT.md, "Why v2 may leave the stanzas out"): the v2 payload AAD does not
/// cover the stanzas, so someone who can write the store can reorder or remove them. That
/// gains nothing they could not get by deleting the envelope, and it is what lets `rewrap`
/// replace them without re-encrypting.
#[test]
fn reordering_or_removing_stanzas_of_a_v2_envelope_still_opens() {
    let (x, y) = (kek("x"), kek("y"));
    let env = seal(b"secret", &CTX, &[x.clone(), y.clone()]).expect("seal");
    let stanzas = stanzas_of(&env);
    let reordered = with_stanzas(&env, &[stanzas[1], stanzas[0]]);
    assert_eq!(reordered.len(), env.len());
    let only_y = with_stanzas(&env, &stanzas[1..]);
    for (edited, keks) in [
        (&reordered, vec![x.clone()]),
        (&reordered, vec![y.clone()]),
        (&only_y, vec![y.clone()]),
    ] {
        let opened = open(edited, &CTX, &keks).expect("opens");
        assert_eq!(opened.expose_secret(), b"secret");
    }
    let err = open(&only_y, &CTX, &[x]).expect_err("x's stanza is gone");
    assert!(matches!(err, Error::NoUsableKek { .. }), "{err:?}");
}

#[test]
fn reordering_the_stanzas_of_a_v1_envelope_fails() {
    let v = golden::VECTORS
        .iter()
        .find(|v| v.name == "two-stanzas")
        .expect("v1 vector with two stanzas");
    let path = golden::vectors_dir().join("two-stanzas.bin");
    let env = std::fs::read(path).expect("read vector");
    assert_eq!(env[4], envelope::FORMAT_VERSION_1);
    let stanzas = stanzas_of(&env);
    let swapped = with_stanzas(&env, &[stanzas[1], stanzas[0]]);
    for k in v.keks {
        let err = open(&swapped, &v.context(), &[k.provider()]).expect_err("v1 reordered");
        assert!(matches!(err, Error::Tampered), "{err:?}");
    }
}

#[test]
fn an_envelope_relabelled_to_the_other_format_version_fails() {
    let k = kek("a");
    let env = seal(b"secret", &CTX, std::slice::from_ref(&k)).expect("seal");
    assert_eq!(env[4], envelope::FORMAT_VERSION);
    let mut as_v1 = env.clone();
    as_v1[4] = envelope::FORMAT_VERSION_1;
    // The context in the stanza AAD carries the version byte, so the stanza no longer unwraps.
    let err = open(&as_v1, &CTX, &[k]).expect_err("v2 read as v1");
    assert!(matches!(err, Error::StanzaRejected { .. }), "{err:?}");

    let v = &golden::VECTORS[0];
    let mut as_v2 =
        std::fs::read(golden::vectors_dir().join(format!("{}.bin", v.name))).expect("read vector");
    assert_eq!(as_v2[4], envelope::FORMAT_VERSION_1);
    as_v2[4] = envelope::FORMAT_VERSION;
    let err = open(&as_v2, &v.context(), &[v.keks[0].provider()]).expect_err("v1 read as v2");
    assert!(matches!(err, Error::StanzaRejected { .. }), "{err:?}");
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
