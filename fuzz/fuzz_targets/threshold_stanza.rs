//! m-of-n stanza bodies (read back from the store, so attacker-writable): `ThresholdKek::unwrap`
//! never panics on any body, and never opens one it did not wrap.
#![no_main]

use std::sync::{Arc, LazyLock};

use envelope::{Dek, KekId, KekProvider, SoftwareKek, StanzaRef};
use kek_providers::ThresholdKek;
use libfuzzer_sys::fuzz_target;

/// A 2-of-3 KEK over fixed member keys, built once.
static KEK: LazyLock<ThresholdKek> = LazyLock::new(|| {
    let members: Vec<Arc<dyn KekProvider>> = (1..=3u8)
        .map(|i| {
            let id = KekId::new("memory", &format!("member-{i}"), 1).expect("id");
            let key = Dek::from_slice(&[i; 32]).expect("key");
            Arc::new(SoftwareKek::new(id, key)) as Arc<dyn KekProvider>
        })
        .collect();
    let ids = members.iter().map(|m| m.id().clone()).collect();
    ThresholdKek::new(2, ids, members).expect("threshold KEK")
});

fuzz_target!(|body: &[u8]| {
    let id = KEK.id();
    let stanza = StanzaRef {
        kind: id.kind(),
        label: id.label(),
        version: id.version(),
        body,
    };
    let result = KEK.unwrap(&stanza, b"fuzz aad");
    assert!(
        !matches!(result, Some(Ok(_))),
        "a body nobody wrapped opened"
    );
});
