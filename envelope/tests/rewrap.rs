//! Rewrap: the DEK of an envelope wrapped under other KEKs. A v2 envelope keeps its payload
//! bytes; a v1 envelope is sealed again as v2. Only a stanza whose DEK authenticates the
//! payload is ever rewrapped.

mod golden;

use std::sync::Arc;

use envelope::{
    Context, Dek, EnvelopeRef, Error, FORMAT_VERSION, KekId, KekProvider, SoftwareKek, open,
    rewrap, seal,
};
use proptest::prelude::*;

fn kek(label: &str) -> Arc<dyn KekProvider> {
    Arc::new(SoftwareKek::random(label).expect("kek"))
}

const CTX: Context<'static> = Context {
    scope: "global",
    key: "db-password",
    version: 3,
};

fn ids(env: &[u8]) -> Vec<String> {
    let parsed = EnvelopeRef::parse(env).expect("parse");
    parsed.stanzas().map(|s| s.describe()).collect()
}

fn ciphertext(env: &[u8]) -> &[u8] {
    EnvelopeRef::parse(env).expect("parse").ciphertext()
}

#[test]
fn rewrap_replaces_the_stanzas_and_keeps_the_ciphertext() {
    let (old, new_a, new_b) = (kek("old"), kek("new-a"), kek("new-b"));
    let env = seal(b"s3cret", &CTX, std::slice::from_ref(&old)).expect("seal");
    let out = rewrap(
        &env,
        &CTX,
        std::slice::from_ref(&old),
        &[new_a.clone(), new_b.clone()],
    )
    .expect("rewrap");
    assert!(!out.reencrypted);
    let parsed = EnvelopeRef::parse(&out.envelope).expect("parse");
    assert_eq!(parsed.version(), FORMAT_VERSION);
    assert_eq!(ids(&out.envelope), ["memory:new-a#v1", "memory:new-b#v1"]);
    assert_eq!(ciphertext(&out.envelope), ciphertext(&env));
    for k in [new_a, new_b] {
        let opened = open(&out.envelope, &CTX, &[k]).expect("a new KEK opens");
        assert_eq!(opened.expose_secret(), b"s3cret");
    }
    let err = open(&out.envelope, &CTX, &[old]).expect_err("the old KEK is gone");
    assert!(matches!(err, Error::NoUsableKek { .. }), "{err:?}");
}

#[test]
fn a_swapped_in_stanza_tried_first_does_not_make_rewrap_lose_the_secret() {
    let (x, y, z) = (kek("x"), kek("y"), kek("z"));
    let a = seal(b"secret A", &CTX, &[x.clone(), y.clone()]).expect("seal");
    let b = seal(b"secret B", &CTX, std::slice::from_ref(&x)).expect("seal");
    // A's header with its x-stanza replaced by B's (FORMAT.md: the header layout).
    let (a_env, b_env) = (
        EnvelopeRef::parse(&a).expect("a"),
        EnvelopeRef::parse(&b).expect("b"),
    );
    let a_stanzas = &a_env.header()[8..];
    let b_stanza = &b_env.header()[8..];
    let a_x_len = b_stanza.len(); // same id, same SoftwareKek body length
    let spliced = [
        &a[..8],
        b_stanza,
        &a_stanzas[a_x_len..],
        &a[a_env.header().len()..],
    ]
    .concat();
    assert_eq!(spliced.len(), a.len());

    let out = rewrap(&spliced, &CTX, &[x.clone(), y], std::slice::from_ref(&z))
        .expect("rewrap via y's stanza");
    let opened = open(&out.envelope, &CTX, &[z]).expect("open");
    assert_eq!(opened.expose_secret(), b"secret A");
    // With only x, whose stanza now holds B's DEK, nothing authenticates A's payload.
    let err = rewrap(
        &spliced,
        &CTX,
        std::slice::from_ref(&x),
        std::slice::from_ref(&x),
    )
    .expect_err("x");
    assert!(matches!(err, Error::Tampered), "{err:?}");
}

#[test]
fn a_tampered_payload_is_not_rewrapped() {
    let k = kek("k");
    let env = seal(b"s3cret", &CTX, std::slice::from_ref(&k)).expect("seal");
    let last = env.len() - 1;
    for at in [last - 16, last] {
        let mut bad = env.clone();
        bad[at] ^= 1;
        let err = rewrap(
            &bad,
            &CTX,
            std::slice::from_ref(&k),
            std::slice::from_ref(&k),
        )
        .expect_err("tampered");
        assert!(matches!(err, Error::Tampered), "{err:?}");
    }
}

#[test]
fn a_v1_envelope_is_sealed_again_as_v2() {
    for v in golden::VECTORS.iter().filter(|v| v.format == 1) {
        let path = golden::vectors_dir().join(format!("{}.bin", v.name));
        let env = std::fs::read(path).expect("read vector");
        let new = kek("new");
        let out = rewrap(
            &env,
            &v.context(),
            &[v.keks[0].provider()],
            std::slice::from_ref(&new),
        )
        .expect("rewrap v1");
        assert!(out.reencrypted, "{}", v.name);
        let parsed = EnvelopeRef::parse(&out.envelope).expect("parse");
        assert_eq!(parsed.version(), FORMAT_VERSION);
        let opened = open(&out.envelope, &v.context(), std::slice::from_ref(&new)).expect("open");
        assert_eq!(opened.expose_secret(), v.plaintext, "{}", v.name);
        // Once v2, a further rewrap keeps the payload.
        let again = rewrap(&out.envelope, &v.context(), &[new], &[kek("newer")]).expect("again");
        assert!(!again.reencrypted);
        assert_eq!(ciphertext(&again.envelope), ciphertext(&out.envelope));
    }
}

#[test]
fn rewrap_reports_the_errors_of_open_and_seal() {
    let key = [7u8; 32];
    let id = KekId::new("file", "main", 1).expect("id");
    let k: Arc<dyn KekProvider> = Arc::new(SoftwareKek::new(
        id.clone(),
        Dek::from_slice(&key).expect("key"),
    ));
    let impostor: Arc<dyn KekProvider> = Arc::new(SoftwareKek::new(
        id,
        Dek::from_slice(&[8; 32]).expect("key"),
    ));
    let env = seal(b"s", &CTX, std::slice::from_ref(&k)).expect("seal");
    let new = [kek("new")];
    let err = |unwrap_with: &[Arc<dyn KekProvider>], wrap_with: &[Arc<dyn KekProvider>]| {
        rewrap(&env, &CTX, unwrap_with, wrap_with).expect_err("rewrap fails")
    };
    assert!(
        matches!(err(&[kek("other")], &new), Error::NoUsableKek { wanted } if wanted == "file:main#v1")
    );
    assert!(matches!(err(&[], &new), Error::NoUsableKek { .. }));
    assert!(matches!(
        err(&[impostor], &new),
        Error::StanzaRejected { .. }
    ));
    assert!(matches!(err(std::slice::from_ref(&k), &[]), Error::NoKek));
    let many: Vec<_> = (0..17).map(|_| new[0].clone()).collect();
    assert!(matches!(
        err(std::slice::from_ref(&k), &many),
        Error::TooManyKeks { count: 17, max: 16 }
    ));
    let moved = rewrap(
        &env,
        &Context::new("global", "other", 3),
        std::slice::from_ref(&k),
        &new,
    );
    assert!(
        matches!(moved, Err(Error::StanzaRejected { .. })),
        "{moved:?}"
    );
    let truncated = rewrap(&env[..env.len() - 1], &CTX, &[k], &new);
    assert!(
        matches!(truncated, Err(Error::Truncated { .. })),
        "{truncated:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn rewrap_under_random_kek_sets_opens_to_the_same_secret(
        secret in proptest::collection::vec(any::<u8>(), 0..300),
        old_count in 1usize..4,
        new_count in 1usize..4,
        keep_old in any::<bool>(),
        version in any::<u64>(),
    ) {
        let ctx = Context::new("global", "prop", version);
        let old: Vec<_> = (0..old_count).map(|i| kek(&format!("old-{i}"))).collect();
        let mut new: Vec<_> = (0..new_count).map(|i| kek(&format!("new-{i}"))).collect();
        if keep_old {
            new.push(old[0].clone());
        }
        let env = seal(&secret, &ctx, &old).expect("seal");
        // Any one old KEK is enough to rewrap.
        let out = rewrap(&env, &ctx, &old[old_count - 1..], &new).expect("rewrap");
        prop_assert!(!out.reencrypted);
        prop_assert_eq!(ciphertext(&out.envelope), ciphertext(&env));
        for k in &new {
            let opened = open(&out.envelope, &ctx, std::slice::from_ref(k)).expect("open");
            prop_assert_eq!(opened.expose_secret(), &secret[..]);
        }
        for (i, k) in old.iter().enumerate() {
            let opened = open(&out.envelope, &ctx, std::slice::from_ref(k));
            prop_assert_eq!(opened.is_ok(), keep_old && i == 0);
        }
    }
}
