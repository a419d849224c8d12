//! `principal_of` (SAN URI first, CN fallback) and `check_private`.

use std::os::unix::fs::PermissionsExt;

use pki::{Error, check_private, principal_of};
use rcgen::{CertificateParams, DnType, KeyPair, SanType};

/// A self-signed certificate with this CN and these SAN URIs.
fn cert(cn: Option<&str>, uris: &[&str]) -> Vec<u8> {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    if let Some(cn) = cn {
        params.distinguished_name.push(DnType::CommonName, cn);
    }
    params.subject_alt_names = uris
        .iter()
        .map(|u| SanType::URI((*u).try_into().expect("test setup")))
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
fn without_a_principal_uri_the_cn_names_the_principal() {
    assert_eq!(
        principal_of(&cert(Some("ci-runner.7"), &[])).unwrap(),
        "ci-runner.7"
    );
    assert_eq!(
        principal_of(&cert(Some("bob"), &["urn:other:x"])).unwrap(),
        "bob"
    );
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
