//! PKCS#11 URIs (RFC 7512, from configuration and the command line): `Pkcs11Uri::parse` never
//! panics, and whatever it accepts has a canonical form that parses back to the same URI
//! (without the PIN), is its own canonical form, is no longer than the input and carries no
//! `pin-value` attribute. kek-providers/tests/fuzz_corpus.rs replays the corpus through the
//! same checks.
#![no_main]

use kek_providers::pkcs11::Pkcs11Uri;
use libfuzzer_sys::fuzz_target;

/// The attribute names of a URI, path and query (the canonical form is a valid URI, so its
/// names are delimited: `;` in the path, `&` in the query, `=` after each name).
fn attribute_names(uri: &str) -> impl Iterator<Item = &str> {
    let rest = uri.strip_prefix("pkcs11:").unwrap_or(uri);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    path.split(';')
        .chain(query.split('&'))
        .filter_map(|attribute| attribute.split_once('=').map(|(name, _)| name))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(mut uri) = Pkcs11Uri::parse(text) else {
        return;
    };
    let canonical = uri.to_canonical();
    // A value may spell "pin-value" (e.g. object=pin-value); the attribute must not be there.
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
});
