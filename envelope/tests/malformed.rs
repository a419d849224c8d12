//! The binary parser rejects every kind of malformed input with its own error, never panics,
//! and `open` reports the same errors.

use std::sync::Arc;

use envelope::{
    Context, Dek, EnvelopeRef, Error, KekId, KekProvider, MAX_BODY_LEN, MAX_KIND_LEN,
    MAX_PAYLOAD_LEN, MAX_STANZAS, SoftwareKek, TAG_LEN, open, seal,
};

// Offsets in an envelope with one stanza of KEK `memory:k#v1` (FORMAT.md).
const VERSION: usize = 4;
const AEAD: usize = 5;
const FLAGS: usize = 6;
const COUNT: usize = 7;
const KIND_LEN: usize = 8;
const LABEL_LEN: usize = 15;
const BODY_LEN: usize = 21;
const CT_LEN: usize = 23 + 61;

fn kek() -> Arc<dyn KekProvider> {
    let id = KekId::new("memory", "k", 1).expect("id");
    Arc::new(SoftwareKek::new(id, Dek::generate().expect("dek")))
}

fn ctx() -> Context<'static> {
    Context::new("global", "db-password", 1)
}

fn sealed(kek: &Arc<dyn KekProvider>) -> Vec<u8> {
    let env = seal(b"s3cret", &ctx(), std::slice::from_ref(kek)).expect("seal");
    assert_eq!(
        &env[KIND_LEN + 1..LABEL_LEN],
        b"memory",
        "offsets match the layout"
    );
    assert_eq!(env.len(), CT_LEN + 4 + 6 + TAG_LEN);
    env
}

/// The parse error, after checking that `open` fails with the same variant.
fn parse_err(bytes: &[u8]) -> Error {
    let k = kek();
    let from_open = open(bytes, &ctx(), &[k]).expect_err("open of malformed input");
    let err = EnvelopeRef::parse(bytes).expect_err("malformed input");
    assert_eq!(
        std::mem::discriminant(&err),
        std::mem::discriminant(&from_open),
        "{err:?} vs {from_open:?}"
    );
    err
}

fn with(env: &[u8], at: usize, bytes: &[u8]) -> Vec<u8> {
    let mut out = env.to_vec();
    out[at..at + bytes.len()].copy_from_slice(bytes);
    out
}

#[test]
fn every_truncation_is_reported_as_truncated() {
    let env = sealed(&kek());
    for len in 0..env.len() {
        let err = parse_err(&env[..len]);
        assert!(matches!(err, Error::Truncated { .. }), "len {len}: {err:?}");
    }
}

#[test]
fn bad_magic_is_reported() {
    let env = sealed(&kek());
    for i in 0..4 {
        let mut bad = env.clone();
        bad[i] ^= 0x20;
        assert!(matches!(parse_err(&bad), Error::BadMagic), "byte {i}");
    }
    assert!(matches!(parse_err(b"{\"format\": 1}"), Error::BadMagic));
}

#[test]
fn unknown_version_algorithm_and_flags_have_distinct_errors() {
    let env = sealed(&kek());
    assert_eq!(env[VERSION], 2, "seal writes format v2");
    for v in [0u8, 3, 255] {
        let err = parse_err(&with(&env, VERSION, &[v]));
        assert!(
            matches!(err, Error::UnsupportedVersion(x) if x == v),
            "{err:?}"
        );
    }
    for a in [0u8, 2, 255] {
        let err = parse_err(&with(&env, AEAD, &[a]));
        assert!(
            matches!(err, Error::UnsupportedAlgorithm(x) if x == a),
            "{err:?}"
        );
    }
    for f in [1u8, 0x80] {
        let err = parse_err(&with(&env, FLAGS, &[f]));
        assert!(
            matches!(err, Error::UnsupportedFlags(x) if x == f),
            "{err:?}"
        );
    }
}

#[test]
fn declared_lengths_over_their_bounds_are_field_too_long() {
    let env = sealed(&kek());
    let too_many = u8::try_from(MAX_STANZAS + 1).expect("fits");
    let kind = u8::try_from(MAX_KIND_LEN + 1).expect("fits");
    let body = u16::try_from(MAX_BODY_LEN + 1).expect("fits");
    let ct = u32::try_from(MAX_PAYLOAD_LEN + TAG_LEN + 1).expect("fits");
    let cases: [(Vec<u8>, &str, usize); 5] = [
        (with(&env, COUNT, &[too_many]), "stanza count", MAX_STANZAS),
        (with(&env, COUNT, &[255]), "stanza count", MAX_STANZAS),
        (with(&env, KIND_LEN, &[kind]), "stanza kind", MAX_KIND_LEN),
        (
            with(&env, BODY_LEN, &body.to_be_bytes()),
            "stanza body",
            MAX_BODY_LEN,
        ),
        (
            with(&env, CT_LEN, &ct.to_be_bytes()),
            "ciphertext",
            MAX_PAYLOAD_LEN + TAG_LEN,
        ),
    ];
    for (bytes, want_field, want_max) in cases {
        match parse_err(&bytes) {
            Error::FieldTooLong { field, max, .. } => {
                assert_eq!((field, max), (want_field, want_max));
            }
            other => panic!("{want_field}: {other:?}"),
        }
    }
    // The label length is a u8 and its bound is 255, so it can only run past the input.
    let err = parse_err(&with(&env, LABEL_LEN, &[255]));
    assert!(matches!(err, Error::Truncated { .. }), "{err:?}");
}

#[test]
fn out_of_domain_fields_are_malformed() {
    let env = sealed(&kek());
    let cases: [(Vec<u8>, &str); 6] = [
        (with(&env, COUNT, &[0]), "stanza count"),
        (with(&env, KIND_LEN + 1, b"M"), "stanza kind"),
        (with(&env, KIND_LEN + 1, &[0xff]), "stanza kind"),
        (with(&env, LABEL_LEN + 1, &[0x07]), "stanza label"),
        (with(&env, BODY_LEN, &[0, 0]), "stanza body"),
        (with(&env, CT_LEN, &15u32.to_be_bytes()), "ciphertext"),
    ];
    for (bytes, want) in cases {
        match parse_err(&bytes) {
            Error::Malformed { field, .. } => assert_eq!(field, want),
            other => panic!("{want}: {other:?}"),
        }
    }
    let mut zero_kind = env[..KIND_LEN].to_vec();
    zero_kind.push(0);
    zero_kind.extend_from_slice(&env[LABEL_LEN..]);
    assert!(matches!(
        parse_err(&zero_kind),
        Error::Malformed {
            field: "stanza kind",
            ..
        }
    ));
}

#[test]
fn trailing_bytes_are_rejected_with_their_count() {
    let env = sealed(&kek());
    let mut one = env.clone();
    one.push(0);
    assert!(matches!(parse_err(&one), Error::TrailingBytes(1)));
    let twice = [env.as_slice(), &env].concat();
    let err = parse_err(&twice);
    assert!(
        matches!(err, Error::TrailingBytes(n) if n == env.len()),
        "{err:?}"
    );
}

#[test]
fn the_smallest_and_largest_valid_fields_parse() {
    let k = kek();
    let env = sealed(&k);
    let parsed = EnvelopeRef::parse(&env).expect("valid");
    assert_eq!(parsed.header(), &env[..CT_LEN]);
    assert_eq!(parsed.ciphertext(), &env[CT_LEN + 4..]);
    assert_eq!(parsed.plaintext_len(), 6);
    let stanza = parsed.stanzas().next().expect("one stanza");
    assert_eq!(
        (stanza.kind, stanza.label, stanza.version),
        ("memory", "k", 1)
    );
    assert_eq!(stanza.body.len(), 61);

    let label = "l".repeat(255);
    let kind = "k".repeat(MAX_KIND_LEN);
    let wide: Arc<dyn KekProvider> = Arc::new(SoftwareKek::new(
        KekId::new(&kind, &label, u32::MAX).expect("id at its bounds"),
        Dek::generate().expect("dek"),
    ));
    let keks: Vec<_> = (0..MAX_STANZAS).map(|_| wide.clone()).collect();
    let env = seal(b"", &ctx(), &keks).expect("seal with the most stanzas");
    assert_eq!(
        EnvelopeRef::parse(&env).expect("parse").stanzas().count(),
        16
    );
    assert!(open(&env, &ctx(), &[wide]).expect("open").is_empty());
}
