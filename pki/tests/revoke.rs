//! `revoke` and `read_revoked`: idempotent, by fingerprint or certificate file, bad lines named.

mod common;

use common::{created, mode};
use pki::{Error, read_revoked};

#[test]
fn revoke_is_idempotent_and_read_revoked_round_trips() {
    let (_tmp, pki) = created();
    let alice = pki.issue_client("alice").unwrap();
    let bob = pki.issue_client("bob").unwrap();

    pki.revoke(&alice.fingerprint).unwrap();
    pki.revoke(&alice.fingerprint).unwrap();
    let once = std::fs::read_to_string(pki.revoked()).unwrap();
    assert_eq!(once.matches(&alice.fingerprint).count(), 1, "{once}");

    // By certificate path; the same cert by path again changes nothing.
    pki.revoke(bob.cert.to_str().unwrap()).unwrap();
    pki.revoke(bob.cert.to_str().unwrap()).unwrap();
    let set = read_revoked(&pki.revoked()).unwrap();
    assert_eq!(set.len(), 2);
    assert!(set.contains(&alice.fingerprint) && set.contains(&bob.fingerprint));
    let text = std::fs::read_to_string(pki.revoked()).unwrap();
    assert!(
        text.contains("# bob ("),
        "the note names the principal: {text}"
    );
    assert_eq!(mode(&pki.revoked()), 0o600);
}

#[test]
fn upper_case_and_colon_separated_fingerprints_are_accepted() {
    let (_tmp, pki) = created();
    let fp = pki.issue_client("carol").unwrap().fingerprint;
    let colons: Vec<String> = fp
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).to_uppercase())
        .collect();
    pki.revoke(&colons.join(":")).unwrap();
    pki.revoke(&fp).unwrap();
    assert_eq!(
        read_revoked(&pki.revoked())
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        [fp]
    );
}

#[test]
fn revoke_without_a_list_creates_one() {
    let (_tmp, pki) = created();
    std::fs::remove_file(pki.revoked()).unwrap();
    pki.revoke(&"ab".repeat(32)).unwrap();
    assert_eq!(read_revoked(&pki.revoked()).unwrap().len(), 1);
}

#[test]
fn neither_fingerprint_nor_cert_is_refused() {
    let (tmp, pki) = created();
    for bad in ["abc", "zz".repeat(32).as_str(), "/no/such/file.pem"] {
        let err = pki.revoke(bad).unwrap_err();
        assert!(
            matches!(err, Error::InvalidFingerprint { .. }),
            "{bad}: {err}"
        );
    }
    let not_pem = tmp.path().join("notes.txt");
    std::fs::write(&not_pem, "hello").unwrap();
    let err = pki.revoke(not_pem.to_str().unwrap()).unwrap_err();
    assert!(matches!(err, Error::InvalidFingerprint { .. }), "{err}");
    // A key file is not a certificate.
    let key = pki.server_key();
    assert!(matches!(
        pki.revoke(key.to_str().unwrap()),
        Err(Error::InvalidFingerprint { .. })
    ));
}

#[test]
fn read_revoked_ignores_comments_and_blanks_and_names_a_bad_line() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("revoked.txt");
    let fp = "0123456789abcdef".repeat(4);
    std::fs::write(
        &path,
        format!("# header\n\n  {fp}  \n   # indented comment\n"),
    )
    .unwrap();
    assert_eq!(
        read_revoked(&path).unwrap().into_iter().collect::<Vec<_>>(),
        std::slice::from_ref(&fp)
    );

    std::fs::write(&path, format!("{fp}\n# ok\n{}\n", fp.to_uppercase())).unwrap();
    let err = read_revoked(&path).unwrap_err();
    assert!(matches!(err, Error::RevokedLine { line: 3, .. }), "{err}");
    assert!(err.to_string().contains(":3:"), "{err}");

    // revoke refuses to add to a list it cannot read back.
    let (_tmp2, pki) = created();
    std::fs::write(pki.revoked(), "not a fingerprint\n").unwrap();
    assert!(matches!(
        pki.revoke(&fp),
        Err(Error::RevokedLine { line: 1, .. })
    ));
}

#[test]
fn read_revoked_of_a_missing_file_names_it() {
    let err = read_revoked(std::path::Path::new("/no/such/revoked.txt")).unwrap_err();
    assert!(err.to_string().contains("/no/such/revoked.txt"), "{err}");
}
