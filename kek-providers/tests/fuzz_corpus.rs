//! Replays the checked-in corpora of the `threshold_stanza`, `pkcs11_uri`, `tpm2_uri` and
//! `kek_uri` fuzz targets (seeds and every input that ever crashed them) through the targets' checks, so a
//! fixed crash stays fixed.

use std::path::Path;
use std::sync::Arc;

use envelope::{Dek, KekId, KekProvider, SoftwareKek, StanzaRef};
use kek_providers::ThresholdKek;

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

/// Every file of fuzz target `target`'s checked-in corpus, as (file name, contents).
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    std::fs::read_dir(&dir)
        .expect("corpus dir")
        .map(|entry| {
            let path = entry.expect("entry").path();
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read(&path).expect("read"))
        })
        .collect()
}

#[test]
fn threshold_stanza_corpus_never_opens_or_panics() {
    let kek = fuzz_target_kek();
    let id = kek.id();
    let mut replayed = 0;
    for (_, body) in corpus("threshold_stanza") {
        let stanza = StanzaRef {
            kind: id.kind(),
            label: id.label(),
            version: id.version(),
            body: &body,
        };
        assert!(matches!(kek.unwrap(&stanza, b"fuzz aad"), Some(Err(_))));
        replayed += 1;
    }
    assert!(replayed >= 2, "the corpus is missing");
}

#[test]
fn pkcs11_uri_corpus_round_trips() {
    let mut replayed = 0;
    for (name, data) in corpus("pkcs11_uri") {
        let parsed = check_pkcs11_uri(&data);
        // Seeds say what they expect: ok-* parse, bad-* are refused (regression-* either).
        if name.starts_with("ok-") {
            assert!(parsed, "{name} was refused");
        } else if name.starts_with("bad-") {
            assert!(!parsed, "{name} parsed");
        }
        replayed += 1;
    }
    assert!(replayed > 0, "the corpus is missing");
}

#[test]
fn tpm2_uri_corpus_round_trips() {
    let mut replayed = 0;
    for (name, data) in corpus("tpm2_uri") {
        let (uri, body) = (check_tpm2_uri(&data), check_tpm2_body(&data));
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
        replayed += 1;
    }
    assert!(replayed > 0, "the corpus is missing");
}

#[test]
fn kek_uri_corpus_passes_the_registry_checks() {
    let mut replayed = 0;
    for (name, data) in corpus("kek_uri") {
        let well_formed = check_kek_uri(&data);
        // Seeds say what they expect: ok-* are well-formed, bad-* are refused.
        if name.starts_with("ok-") {
            assert!(well_formed, "{name} was refused");
        } else if name.starts_with("bad-") {
            assert!(!well_formed, "{name} was accepted");
        }
        replayed += 1;
    }
    assert!(replayed > 0, "the corpus is missing");
}
