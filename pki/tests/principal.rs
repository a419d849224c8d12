//! `principal_of` (the SAN URI when there is a SAN, else the CN), `validate_principal`,
//! `check_private` and `check_not_writable_by_others`.

use std::os::unix::fs::PermissionsExt;

use pki::{Error, check_not_writable_by_others, check_private, principal_of, validate_principal};
use rcgen::{CertificateParams, DnType, KeyPair, SanType};

/// A self-signed certificate with this CN and these SANs (`dns:` names, URIs otherwise).
fn cert(cn: Option<&str>, sans: &[&str]) -> Vec<u8> {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    if let Some(cn) = cn {
        params.distinguished_name.push(DnType::CommonName, cn);
    }
    params.subject_alt_names = sans
        .iter()
        .map(|san| match san.strip_prefix("dns:") {
            Some(name) => SanType::DnsName(name.try_into().expect("test setup")),
            None => SanType::URI((*san).try_into().expect("test setup")),
        })
        .collect();
    let key = KeyPair::generate().expect("test setup");
    params.self_signed(&key).expect("test setup").der().to_vec()
}

#[test]
fn the_san_uri_wins_over_the_cn() {
    let der = cert(
        Some("someone-else"),
        &["https://example.org", "urn:vault:principal:alice"],
    );
    assert_eq!(principal_of(&der).unwrap(), "alice");
}

#[test]
fn without_a_san_the_cn_names_the_principal() {
    assert_eq!(
        principal_of(&cert(Some("ci-runner.7"), &[])).unwrap(),
        "ci-runner.7"
    );
}

#[test]
fn with_a_san_the_cn_is_never_read() {
    // A valid admin CN does not help a certificate whose SAN names no principal.
    for sans in [
        &["dns:localhost"][..],
        &["urn:other:x"],
        &["https://example.org"],
    ] {
        let err = principal_of(&cert(Some("admin"), sans)).unwrap_err();
        assert!(
            matches!(err, Error::BadCertificate { .. }),
            "{sans:?}: {err}"
        );
        assert!(err.to_string().contains("never by the CN"), "{err}");
    }
}

#[test]
fn the_principal_uri_prefix_is_case_insensitive_and_the_id_is_not() {
    for uri in [
        "URN:VAULT:PRINCIPAL:ci-bot",
        "urn:Vault:Principal:ci-bot",
        "Urn:vault:principal:ci-bot",
    ] {
        assert_eq!(
            principal_of(&cert(Some("x"), &[uri])).unwrap(),
            "ci-bot",
            "{uri}"
        );
    }
    assert_eq!(
        principal_of(&cert(None, &["urn:vault:principal:CI-Bot"])).unwrap(),
        "CI-Bot"
    );
    // One id, however its prefix is spelled, is one principal; two ids are refused.
    let same = cert(None, &["urn:vault:principal:a", "URN:VAULT:PRINCIPAL:a"]);
    assert_eq!(principal_of(&same).unwrap(), "a");
    let two = cert(None, &["urn:vault:principal:a", "URN:VAULT:PRINCIPAL:A"]);
    assert!(matches!(
        principal_of(&two),
        Err(Error::BadCertificate { .. })
    ));
    // Not a prefix: a look-alike scheme.
    let err = principal_of(&cert(None, &["urn:vaults:principal:a"])).unwrap_err();
    assert!(matches!(err, Error::BadCertificate { .. }), "{err}");
}

#[test]
fn the_principal_rule_is_the_shared_one() {
    for bad in ["", ".hidden", "-", "a b", "a/b", &"a".repeat(65)] {
        let err = validate_principal(bad).unwrap_err();
        assert!(
            matches!(err, Error::InvalidPrincipal { .. }),
            "{bad:?}: {err}"
        );
        assert!(principal_id::check(bad).is_err(), "{bad:?}");
    }
    for good in ["a", "-a", "a-", "ci.bot", "x@y+z_1"] {
        validate_principal(good).unwrap();
    }
    for bad in [".hidden", "-"] {
        let uri = format!("urn:vault:principal:{bad}");
        let err = principal_of(&cert(None, &[uri.as_str()])).unwrap_err();
        assert!(
            matches!(err, Error::InvalidPrincipal { .. }),
            "{bad:?}: {err}"
        );
        let err = principal_of(&cert(Some(bad), &[])).unwrap_err();
        assert!(
            matches!(err, Error::InvalidPrincipal { .. }),
            "CN {bad:?}: {err}"
        );
    }
}

#[test]
fn bad_or_missing_principals_are_refused() {
    for der in [
        cert(Some("has space"), &[]),
        cert(Some("ok"), &["urn:vault:principal:a/b"]),
        cert(Some("ok"), &["urn:vault:principal:"]),
    ] {
        let err = principal_of(&der).unwrap_err();
        assert!(matches!(err, Error::InvalidPrincipal { .. }), "{err}");
    }
    let err = principal_of(&cert(None, &[])).unwrap_err();
    assert!(matches!(err, Error::BadCertificate { .. }), "{err}");
    let two = cert(None, &["urn:vault:principal:a", "urn:vault:principal:b"]);
    assert!(matches!(
        principal_of(&two),
        Err(Error::BadCertificate { .. })
    ));
    assert!(matches!(
        principal_of(b"not der"),
        Err(Error::BadCertificate { .. })
    ));
    let mut trailing = cert(Some("x"), &[]);
    trailing.push(0);
    assert!(matches!(
        principal_of(&trailing),
        Err(Error::BadCertificate { .. })
    ));
}

#[test]
fn check_private_refuses_group_or_other_access_with_the_chmod_to_run() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("server.key");
    std::fs::write(&path, "x").unwrap();
    for mode in [0o644, 0o640, 0o602, 0o660] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let err = check_private(&path).unwrap_err();
        assert!(matches!(err, Error::NotPrivate { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("chmod 600") && text.contains("server.key"),
            "{text}"
        );
    }
    for mode in [0o600, 0o400, 0o700] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        check_private(&path).unwrap();
    }
    let err = check_private(&tmp.path().join("missing")).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
}

#[test]
fn check_not_writable_by_others_refuses_group_or_other_write_with_the_chmod_to_run() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("ca.pem");
    std::fs::write(&file, "x").unwrap();
    let dir = tmp.path().join("tls");
    std::fs::create_dir(&dir).unwrap();
    for path in [&file, &dir] {
        for mode in [0o664, 0o646, 0o622, 0o777, 0o1777] {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = check_not_writable_by_others(path).unwrap_err();
            assert!(matches!(err, Error::WritableByOthers { .. }), "{err}");
            let text = err.to_string();
            assert!(
                text.contains(&format!("chmod go-w {}", path.display()))
                    && text.contains(&format!("{mode:04o}")),
                "{text}"
            );
        }
        for mode in [0o644, 0o600, 0o755, 0o700, 0o444] {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
            check_not_writable_by_others(path).unwrap();
        }
    }
    let err = check_not_writable_by_others(&tmp.path().join("missing")).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
}
