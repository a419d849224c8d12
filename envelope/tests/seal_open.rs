//! Seal/open behaviour through the public API.

use std::sync::Arc;

use envelope::{Context, Error, KekProvider, SoftwareKek, open, seal};

fn kek(label: &str) -> Arc<dyn KekProvider> {
    Arc::new(SoftwareKek::random(label).expect("kek"))
}

#[test]
fn round_trip_with_one_and_several_keks() {
    let a = kek("a");
    let b = kek("b");
    let ctx = Context::new("global", "db-password", 1);
    let env = seal(b"s3cret", &ctx, &[a.clone(), b.clone()]).expect("seal");
    assert_eq!(
        open(&env, &ctx, std::slice::from_ref(&a))
            .expect("open a")
            .expose_secret(),
        b"s3cret"
    );
    assert_eq!(
        open(&env, &ctx, &[b]).expect("open b").expose_secret(),
        b"s3cret"
    );
    let empty = seal(b"", &ctx, std::slice::from_ref(&a)).expect("seal empty");
    assert!(open(&empty, &ctx, &[a]).expect("open empty").is_empty());
}

#[test]
fn moved_envelope_fails_to_open() {
    let k = kek("a");
    let ctx = Context::new("global", "db-password", 1);
    let env = seal(b"s3cret", &ctx, std::slice::from_ref(&k)).expect("seal");
    for other in [
        Context::new("principal:alice", "db-password", 1),
        Context::new("global", "other", 1),
        Context::new("global", "db-password", 2),
    ] {
        let err = open(&env, &other, std::slice::from_ref(&k)).expect_err("moved");
        assert!(matches!(err, Error::StanzaRejected { .. }), "{err:?}");
    }
}

#[test]
fn unknown_kek_is_reported_with_the_wanted_ids() {
    let env = seal(b"x", &Context::new("global", "k", 1), &[kek("a")]).expect("seal");
    let err = open(&env, &Context::new("global", "k", 1), &[kek("b")]).expect_err("wrong kek");
    match err {
        Error::NoUsableKek { wanted } => assert_eq!(wanted, "memory:a#v1"),
        other => panic!("unexpected {other:?}"),
    }
}
