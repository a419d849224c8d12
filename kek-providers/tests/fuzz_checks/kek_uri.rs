//! The `kek_uri` fuzz target's check, shared by the target (fuzz/fuzz_targets/kek_uri.rs) and
//! the corpus replay (tests/fuzz_corpus.rs).
//!
//! Every KEK URI from configuration and the command line enters through the registry
//! (`kek_providers::check_uri`, then `create`/`open`), so the target goes through it with
//! every scheme: `file:`, `passphrase:`, `yubikey:`, `keyring:`, `pkcs11:` and `tpm2:`. The
//! per-scheme parsers behind it are private to the crate, and their canonical forms need the
//! file system (`file:` and `passphrase:` paths are made absolute) or the card's serial
//! (`yubikey:`); the `pkcs11_uri` and `tpm2_uri` targets check those schemes' public
//! canonical forms.

use kek_providers::pkcs11::Pkcs11Uri;
use kek_providers::tpm::Tpm2Uri;
use kek_providers::{Error, MAX_URI_LEN, check_uri};

/// Longest error message: names echoed from the URI are cut to 32 characters and reasons
/// are fixed text, so a 4 KiB URI never becomes a 4 KiB message.
const MAX_ERROR_LEN: usize = 1024;

/// A secret typed where it does not belong; no refusal may repeat it.
const CANARY: &str = "Zx9CanaryQ7Secret";

/// The URI's verdict: `Ok(true)` well-formed and built in, `Ok(false)` well-formed but its
/// provider is not built into this binary, `Err` refused (with a bounded message).
fn verdict(uri: &str) -> Result<bool, Error> {
    match check_uri(uri) {
        Ok(()) => Ok(true),
        Err(Error::FeatureNotBuilt { .. } | Error::NotImplemented { .. }) => Ok(false),
        Err(e) => {
            let message = e.to_string();
            assert!(
                message.len() <= MAX_ERROR_LEN,
                "error of {} bytes: {message}",
                message.len()
            );
            Err(e)
        }
    }
}

/// Asserts that checking `uri` does not repeat [`CANARY`] in a refusal.
fn assert_not_echoed(uri: &str) {
    if let Err(e) = check_uri(uri) {
        let message = e.to_string();
        assert!(
            !message.contains(CANARY),
            "{uri:?}: the secret is repeated in {message:?}"
        );
    }
}

/// Places a secret where users put them by mistake, after the fuzzed URI: the value of an
/// unknown parameter (`;pin=...`), a PKCS#11 `pin-value`, and in a passphrase URI its source
/// (a passphrase typed in place of `env=NAME`) or a part without `=`. (Elsewhere a part
/// without `=` is a flag such as `tpm2:...;encrypt`, and an unknown one is named back.)
fn check_secrets_not_echoed(uri: &str) {
    assert_not_echoed(&format!("{uri};pin={CANARY}"));
    if uri.starts_with("pkcs11:") {
        let joiner = if uri.contains('?') { '&' } else { '?' };
        assert_not_echoed(&format!("{uri}{joiner}pin-value={CANARY}"));
    }
    if let Some(rest) = uri.strip_prefix("passphrase:") {
        let params = rest.split_once(';').map_or("", |(_, params)| params);
        assert_not_echoed(&format!("passphrase:{CANARY};{params}"));
        assert_not_echoed(&format!("passphrase:{CANARY}"));
        assert_not_echoed(&format!("{uri};{CANARY}"));
    }
}

/// The check: whether `data` is a well-formed KEK URI, after checking that the registry never
/// panics, that its refusals are bounded and never repeat a secret placed in the URI, and
/// that it agrees with the public `pkcs11:` and `tpm2:` parsers.
pub fn check_kek_uri(data: &[u8]) -> bool {
    let Ok(uri) = std::str::from_utf8(data) else {
        return false;
    };
    let verdict = verdict(uri);
    if uri.len() > MAX_URI_LEN {
        assert!(matches!(verdict, Err(Error::UriTooLong { .. })));
    }
    if uri.starts_with("pkcs11:") && verdict.is_ok() {
        // The provider may ask for more than the URI grammar (a module), never less.
        Pkcs11Uri::parse(uri).expect("the registry accepted what the PKCS#11 parser refuses");
    }
    if uri.starts_with("tpm2:") && !uri.chars().any(char::is_control) && uri.len() <= MAX_URI_LEN {
        assert_eq!(
            verdict.is_ok(),
            Tpm2Uri::parse(uri).is_ok(),
            "the registry and the TPM parser disagree"
        );
    }
    if !uri
        .to_ascii_lowercase()
        .contains(&CANARY.to_ascii_lowercase())
    {
        check_secrets_not_echoed(uri);
    }
    verdict.is_ok()
}
