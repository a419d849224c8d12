//! The `tpm2_uri` fuzz target's check, shared by the target (fuzz/fuzz_targets/tpm2_uri.rs)
//! and the corpus replay (tests/fuzz_corpus.rs): both parsers of the TPM provider, the URI
//! and the stanza body, on the same input.

use kek_providers::tpm::{SealedBody, Tpm2Uri};

/// Whether `data` parsed as a `tpm2:` URI, after checking that an accepted URI's canonical
/// form parses back to it and is a fixed point.
pub fn check_tpm2_uri(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let Ok(uri) = Tpm2Uri::parse(text) else {
        return false;
    };
    let canonical = uri.to_canonical();
    let again = Tpm2Uri::parse(&canonical)
        .unwrap_or_else(|e| panic!("canonical form {canonical:?} refused: {e}"));
    assert_eq!(
        again, uri,
        "canonical form {canonical:?} parses differently"
    );
    assert_eq!(again.to_canonical(), canonical, "not a fixed point");
    true
}

/// Whether `data` parsed as a TPM stanza body, after checking that an accepted body encodes
/// back to exactly the same bytes (the format has one encoding of each body).
pub fn check_tpm2_body(data: &[u8]) -> bool {
    let Ok(body) = SealedBody::parse(data) else {
        return false;
    };
    let encoded = body.encode().expect("a parsed body is within the bounds");
    assert_eq!(encoded, data, "re-encoding differs");
    true
}
