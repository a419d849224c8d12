//! The `pkcs11_uri` fuzz target's check, shared by the target (fuzz/fuzz_targets/pkcs11_uri.rs)
//! and the corpus replay (tests/fuzz_corpus.rs).

use kek_providers::pkcs11::Pkcs11Uri;

/// The attribute names of a URI, path and query.
fn attribute_names(uri: &str) -> impl Iterator<Item = &str> {
    let rest = uri.strip_prefix("pkcs11:").unwrap_or(uri);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    path.split(';')
        .chain(query.split('&'))
        .filter_map(|attribute| attribute.split_once('=').map(|(name, _)| name))
}

/// The check: whether `data`
/// parsed, after checking that an accepted URI's canonical form parses back to it (without
/// the PIN), is a fixed point, is no longer than the input and has no `pin-value` attribute.
pub fn check_pkcs11_uri(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let Ok(mut uri) = Pkcs11Uri::parse(text) else {
        return false;
    };
    let canonical = uri.to_canonical();
    assert!(
        attribute_names(&canonical).all(|name| name != "pin-value"),
        "pin-value attribute in the canonical form {canonical:?}"
    );
    assert!(
        canonical.len() <= text.len(),
        "canonical form {canonical:?} longer than the input"
    );
    uri.clear_pin_value();
    let again = Pkcs11Uri::parse(&canonical)
        .unwrap_or_else(|e| panic!("canonical form {canonical:?} refused: {e}"));
    assert!(!again.pin_value_given());
    assert_eq!(
        again, uri,
        "canonical form {canonical:?} parses differently"
    );
    assert_eq!(again.to_canonical(), canonical, "not a fixed point");
    true
}
