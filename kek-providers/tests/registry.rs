//! The URI registry: refusals with useful messages, never a panic.

use kek_providers::{Error, KekEnv, MAX_URI_LEN, check_uri};
use proptest::prelude::*;

#[test]
fn an_unknown_kind_lists_the_known_ones() {
    let err = check_uri("vaultkey:abc").expect_err("unknown");
    assert!(matches!(err, Error::UnknownKind { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("vaultkey") && message.contains("file, passphrase"),
        "{message}"
    );
    let err = check_uri("/etc/vault/kek.key").expect_err("no kind");
    assert!(matches!(err, Error::InvalidUri { .. }), "{err:?}");
}

#[test]
fn hardware_kinds_not_built_name_their_feature() {
    for (uri, kind, feature, built) in [
        (
            "pkcs11:token=vault;object=kek",
            "pkcs11",
            "pkcs11",
            cfg!(feature = "pkcs11"),
        ),
        (
            "tpm2:tcti=device:/dev/tpmrm0",
            "tpm2",
            "tpm",
            cfg!(feature = "tpm"),
        ),
        (
            "yubikey:serial=1;slot=9d",
            "yubikey",
            "yubikey",
            cfg!(feature = "yubikey"),
        ),
        (
            "keyring:service=vault",
            "keyring",
            "os-keystore",
            cfg!(feature = "os-keystore"),
        ),
    ] {
        if built {
            continue;
        }
        let err = check_uri(uri).expect_err(uri);
        assert!(
            matches!(err, Error::FeatureNotBuilt { .. }),
            "{uri}: {err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "KEK kind {kind} is not built into this binary; rebuild with --features {feature}"
            )
        );
    }
}

#[test]
fn passphrase_parameters_are_strict() {
    let err = check_uri("passphrase:env=P;colour=blue").expect_err("unknown");
    assert!(matches!(err, Error::UnknownParameter { .. }), "{err:?}");
    assert!(err.to_string().contains("colour"), "{err}");

    let err = check_uri("passphrase:env=P;t=1;t=1").expect_err("duplicate");
    assert!(
        matches!(err, Error::DuplicateParameter { name: "t" }),
        "{err:?}"
    );
    let err = check_uri("passphrase:env=P;label=a;label=b").expect_err("duplicate");
    assert!(
        matches!(err, Error::DuplicateParameter { name: "label" }),
        "{err:?}"
    );

    for bad in ["", "label=", &"x".repeat(65), "a b", "a/b", "ä"] {
        let uri = format!("passphrase:env=P;label={bad}");
        assert!(check_uri(&uri).is_err(), "{uri}");
    }
    check_uri(&format!("passphrase:env=P;label={}", "a".repeat(64))).expect("64 is fine");
    check_uri("passphrase:prompt;m=8192;t=1;p=1;label=Ok_-9").expect("valid");
    check_uri("passphrase:file=/run/secrets/vault").expect("valid");
}

#[test]
fn a_mistyped_passphrase_source_is_not_echoed() {
    for uri in [
        "passphrase:hunter2-secret",
        "passphrase:env=P;hunter2-secret",
        "passphrase:",
        "passphrase:env=",
        "passphrase:env=1X",
        "passphrase:file=",
    ] {
        let err = check_uri(uri).expect_err(uri);
        assert!(matches!(err, Error::InvalidUri { .. }), "{uri}: {err:?}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}

#[test]
fn over_long_and_control_character_uris_are_refused() {
    let long = format!("file:/{}", "a".repeat(MAX_URI_LEN));
    let err = check_uri(&long).expect_err("long");
    assert!(matches!(err, Error::UriTooLong { .. }), "{err:?}");
    for uri in ["file:/tmp/a\nb", "file:/tmp/\0", "passphrase:env=P\r"] {
        let err = check_uri(uri).expect_err(uri);
        assert!(matches!(err, Error::InvalidUri { .. }), "{err:?}");
    }
    for uri in ["file:", "file:/tmp/dir/"] {
        assert!(check_uri(uri).is_err(), "{uri}");
    }
}

#[test]
fn create_and_open_refuse_bad_uris_before_touching_anything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = KekEnv {
        vault_dir: dir.path(),
    };
    for uri in ["pkcs11:x", "nope:x", "passphrase:env=P;q=1"] {
        assert!(kek_providers::create(uri, &env).is_err(), "{uri}");
        assert!(kek_providers::open(uri, &env).is_err(), "{uri}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 0);
}

proptest! {
    #[test]
    fn arbitrary_uris_never_panic(uri in "\\PC{0,80}|(file|passphrase|pkcs11|tpm2):[ -~]{0,80}") {
        let _ = check_uri(&uri);
    }

    #[test]
    fn arbitrary_passphrase_parameters_never_panic(
        params in proptest::collection::vec("[a-z]{0,6}=?[ -:<-~]{0,12}", 0..6),
    ) {
        let _ = check_uri(&format!("passphrase:env=P;{}", params.join(";")));
    }

    #[test]
    fn open_of_arbitrary_uris_never_panics(rest in "[ -~]{0,60}") {
        let dir = tempfile::tempdir().expect("tempdir");
        let env = KekEnv { vault_dir: dir.path() };
        for kind in ["file", "passphrase"] {
            let _ = kek_providers::open(&format!("{kind}:{rest}"), &env);
        }
    }
}
