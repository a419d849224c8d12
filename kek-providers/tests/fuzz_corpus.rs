//! Replays the checked-in corpora of the `threshold_stanza`, `pkcs11_uri`, `tpm2_uri` and
//! `kek_uri` fuzz targets (seeds and every input that ever crashed them) through the targets' checks, so a
//! fixed crash stays fixed.

use std::sync::Arc;

use envelope::{Dek, KekId, KekProvider, SoftwareKek, StanzaRef};
use kek_providers::ThresholdKek;
use test_support::fuzz_corpus::{assert_as_named, for_each_seed};

#[path = "fuzz_checks/pkcs11_uri.rs"]
mod pkcs11_uri_check;
use pkcs11_uri_check::check_pkcs11_uri;

#[path = "fuzz_checks/kek_uri.rs"]
mod kek_uri_check;
use kek_uri_check::check_kek_uri;

#[path = "fuzz_checks/tpm2_uri.rs"]
mod tpm2_uri_check;
use tpm2_uri_check::{check_tpm2_body, check_tpm2_uri};

/// The fuzz target's 2-of-3 KEK (fuzz/fuzz_targets/threshold_stanza.rs).
fn fuzz_target_kek() -> ThresholdKek {
    let members: Vec<Arc<dyn KekProvider>> = (1..=3u8)
        .map(|i| {
            let id = KekId::new("memory", &format!("member-{i}"), 1).expect("id");
            let key = Dek::from_slice(&[i; 32]).expect("key");
            Arc::new(SoftwareKek::new(id, key)) as Arc<dyn KekProvider>
        })
        .collect();
    let ids = members.iter().map(|m| m.id().clone()).collect();
    ThresholdKek::new(2, ids, members).expect("threshold KEK")
}

#[test]
fn threshold_stanza_corpus_never_opens_or_panics() {
    let kek = fuzz_target_kek();
    let id = kek.id();
    let replayed = for_each_seed("threshold_stanza", |_, body| {
        let stanza = StanzaRef {
            kind: id.kind(),
            label: id.label(),
            version: id.version(),
            body,
        };
        assert!(matches!(kek.unwrap(&stanza, b"fuzz aad"), Some(Err(_))));
    });
    assert!(replayed >= 2, "the corpus is missing");
}

#[test]
fn pkcs11_uri_corpus_round_trips() {
    for_each_seed("pkcs11_uri", |name, data| {
        let parsed = check_pkcs11_uri(data);
        assert_as_named(name, parsed);
    });
}

#[test]
fn tpm2_uri_corpus_round_trips() {
    for_each_seed("tpm2_uri", |name, data| {
        let (uri, body) = (check_tpm2_uri(data), check_tpm2_body(data));
        // Seeds say what they expect: ok-* parse as URIs, bad-* as neither, body-ok-* as
        // stanza bodies, body-bad-* not (regression-* either way).
        if let Some(kind) = name.strip_prefix("body-") {
            assert!(!uri, "{name} parsed as a URI");
            if kind.starts_with("ok-") {
                assert!(body, "{name} was refused");
            } else if kind.starts_with("bad-") {
                assert!(!body, "{name} parsed");
            }
        } else if name.starts_with("ok-") {
            assert!(uri, "{name} was refused");
        } else if name.starts_with("bad-") {
            assert!(!uri && !body, "{name} parsed");
        }
    });
}

#[test]
fn kek_uri_corpus_passes_the_registry_checks() {
    for_each_seed("kek_uri", |name, data| {
        let well_formed = check_kek_uri(data);
        assert_as_named(name, well_formed);
    });
}
