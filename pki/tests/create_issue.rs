//! `create` and `issue_client`: what the certificates say, file modes, no overwrites.

mod common;

use common::{created, der_of, hosts, mode};
use pki::{Error, PkiDir, fingerprint, principal_of};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

fn san_uris(cert: &X509Certificate<'_>) -> Vec<String> {
    let san = cert
        .subject_alternative_name()
        .expect("test setup")
        .expect("a SAN extension");
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::URI(u) => Some(u.to_string()),
            _ => None,
        })
        .collect()
}

#[test]
fn issued_client_cert_names_the_principal_and_chains_to_the_ca() {
    let (_tmp, pki) = created();
    let issued = pki.issue_client("alice@example.org").unwrap();
    assert_eq!(issued.cert, pki.client_cert("alice@example.org"));
    assert_eq!(issued.key, pki.client_key("alice@example.org"));

    let ca_der = der_of(&pki.ca_cert());
    let der = der_of(&issued.cert);
    let (_, ca) = X509Certificate::from_der(&ca_der).unwrap();
    let (_, cert) = X509Certificate::from_der(&der).unwrap();

    assert_eq!(cert.issuer(), ca.subject());
    assert_eq!(
        ca.subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        "vault dev CA"
    );
    assert!(ca.is_ca());
    cert.verify_signature(Some(ca.public_key()))
        .expect("signed by the CA key");
    assert_eq!(san_uris(&cert), ["urn:vault:principal:alice@example.org"]);
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth);
    assert_eq!(principal_of(&der).unwrap(), "alice@example.org");

    // The fingerprint is the SHA-256 of the DER, stable across reads.
    assert_eq!(issued.fingerprint, fingerprint(&der));
    assert_eq!(issued.fingerprint, fingerprint(&der_of(&issued.cert)));
    assert_eq!(issued.fingerprint.len(), 64);
    assert!(
        issued
            .fingerprint
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
}

#[test]
fn server_cert_covers_the_hosts_and_the_ca_lasts_ten_years() {
    let (_tmp, pki) = created();
    let ca_der = der_of(&pki.ca_cert());
    let (_, ca) = X509Certificate::from_der(&ca_der).unwrap();
    let server_der = der_of(&pki.server_cert());
    let (_, server) = X509Certificate::from_der(&server_der).unwrap();
    server.verify_signature(Some(ca.public_key())).unwrap();
    let names: Vec<String> = server
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert!(names.iter().any(|n| n.contains("localhost")), "{names:?}");
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(
        server
            .extended_key_usage()
            .unwrap()
            .unwrap()
            .value
            .server_auth
    );
    let ca_days = (ca.validity().not_after - ca.validity().not_before)
        .unwrap()
        .whole_days();
    assert!((3649..=3651).contains(&ca_days), "{ca_days}");
    let days = (server.validity().not_after - server.validity().not_before)
        .unwrap()
        .whole_days();
    assert!((364..=366).contains(&days), "{days}");
}

#[test]
fn files_are_0600_and_directories_0700() {
    let (_tmp, pki) = created();
    let issued = pki.issue_client("bob").unwrap();
    assert_eq!(mode(&pki.dir), 0o700);
    assert_eq!(mode(&pki.dir.join("clients")), 0o700);
    for path in [
        pki.ca_cert(),
        pki.dir.join("ca.key"),
        pki.server_cert(),
        pki.server_key(),
        pki.revoked(),
        issued.cert,
        issued.key,
    ] {
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    assert!(pki::read_revoked(&pki.revoked()).unwrap().is_empty());
    // No temporary files left behind.
    let names: Vec<_> = std::fs::read_dir(&pki.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 6, "{names:?}");
}

#[test]
fn create_twice_is_refused_and_changes_nothing() {
    let (_tmp, pki) = created();
    let before = std::fs::read(pki.ca_cert()).unwrap();
    let err = pki.create(&hosts()).unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
    assert!(err.to_string().contains("ca.key"), "{err}");
    assert_eq!(std::fs::read(pki.ca_cert()).unwrap(), before);
}

#[test]
fn issue_twice_is_refused_and_keeps_the_first() {
    let (_tmp, pki) = created();
    let first = pki.issue_client("svc-1").unwrap();
    let err = pki.issue_client("svc-1").unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
    assert_eq!(fingerprint(&der_of(&first.cert)), first.fingerprint);
}

#[test]
fn invalid_principals_are_refused_before_anything_is_written() {
    let (_tmp, pki) = created();
    let long = "a".repeat(65);
    for bad in ["", "a/b", "../x", "a b", "é", "a\nb", "a:b", long.as_str()] {
        let err = pki.issue_client(bad).unwrap_err();
        assert!(
            matches!(err, Error::InvalidPrincipal { .. }),
            "{bad:?}: {err}"
        );
    }
    assert_eq!(
        std::fs::read_dir(pki.dir.join("clients")).unwrap().count(),
        0
    );
    let max = "Z".repeat(64);
    for good in ["a", "A.b_c@d+e-f", "0", max.as_str()] {
        pki.issue_client(good).unwrap();
    }
}

#[test]
fn issue_without_a_ca_says_how_to_make_one() {
    let tmp = tempfile::tempdir().unwrap();
    let err = PkiDir::new(tmp.path()).issue_client("alice").unwrap_err();
    assert!(matches!(err, Error::NoCa { .. }), "{err}");
}

#[test]
fn a_ca_key_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let (_tmp, pki) = created();
    let key = pki.dir.join("ca.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = pki.issue_client("alice").unwrap_err();
    assert!(err.to_string().contains("chmod 600"), "{err}");
}

#[test]
fn errors_and_debug_never_show_key_material() {
    let (_tmp, pki) = created();
    let key = pki.dir.join("ca.key");
    let pem = std::fs::read_to_string(&key).unwrap();
    let body: String = pem.lines().nth(1).unwrap().to_owned();
    // A corrupted key: the error names the file, not its contents.
    std::fs::write(&key, pem.replace(&body[..20], "!!!!!!!!!!!!!!!!!!!!")).unwrap();
    let err = pki.issue_client("alice").unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("ca.key"), "{shown}");
    assert!(!shown.contains(&body[20..40]), "{shown}");
}

#[test]
fn renewing_without_a_ca_key_says_so_and_keeps_the_pair() {
    let (_tmp, pki) = created();
    let old_cert = der_of(&pki.server_cert());
    std::fs::remove_file(pki.ca_key()).unwrap();
    let err = pki.renew_server(&hosts()).unwrap_err();
    assert!(matches!(err, Error::NoCa { .. }), "{err}");
    assert_eq!(der_of(&pki.server_cert()), old_cert);
}
