//! Revocation: the list's entries and their canonical forms, bad lines named, and `revoke`
//! by certificate file, fingerprint, serial or key hash (atomic, idempotent, locked), with
//! what each entry revokes: a re-encoded copy and a new certificate for the same key too.

mod common;

use std::path::Path;

use common::{created, der_of, mode};
use pki::{
    Error, PkiDir, RevocationEntry, RevocationList, Serial, certificate_ids, fingerprint,
    read_revoked, subject_hash,
};

fn list_of(path: &Path, text: &str) -> Result<RevocationList, Error> {
    RevocationList::parse(path, text)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A certificate for the key of `clients/<principal>.key`, newly signed by the directory's
/// CA with another serial: what a renewal, or a CA issuing for a stolen key, produces.
fn reissued_for_same_key(pki: &PkiDir, principal: &str) -> Vec<u8> {
    let key = rcgen::KeyPair::from_pem(
        &std::fs::read_to_string(pki.client_key(principal)).expect("test setup"),
    )
    .expect("test setup");
    let ca_key =
        rcgen::KeyPair::from_pem(&std::fs::read_to_string(pki.ca_key()).expect("test setup"))
            .expect("test setup");
    let ca_pem = std::fs::read_to_string(pki.ca_cert()).expect("test setup");
    let issuer = rcgen::Issuer::from_ca_cert_pem(&ca_pem, ca_key).expect("test setup");
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, principal);
    params.subject_alt_names = vec![rcgen::SanType::URI(
        format!("urn:vault:principal:{principal}")
            .try_into()
            .expect("test setup"),
    )];
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x42, 0x01]));
    params
        .signed_by(&key, &issuer)
        .expect("test setup")
        .der()
        .to_vec()
}

#[test]
fn entries_parse_in_every_form_and_print_canonically() {
    let fp = "0123456789abcdef".repeat(4);
    let issuer = "fedcba9876543210".repeat(4);
    let path = Path::new("revoked.txt");
    let text = format!(
        "# header\n\n  {fp}  \n   # indented comment\nspki-sha256:{issuer}\n\
         issuer-serial:{issuer}:1a2b\ncert-sha256:{fp}\nissuer-serial:{fp}:0\n"
    );
    let list = list_of(path, &text).unwrap();
    // The bare fingerprint and its cert-sha256 form are one entry.
    assert_eq!(list.len(), 4, "{list:?}");
    let printed: Vec<String> = list.iter().map(ToString::to_string).collect();
    for line in [
        format!("cert-sha256:{fp}"),
        format!("spki-sha256:{issuer}"),
        format!("issuer-serial:{issuer}:1a2b"),
        format!("issuer-serial:{fp}:0"),
    ] {
        assert!(printed.contains(&line), "{line} not in {printed:?}");
        // Every printed entry parses back to itself.
        let entry = RevocationEntry::parse(&line).unwrap();
        assert_eq!(entry.to_string(), line);
        assert!(list.contains(&entry));
    }
    assert!(list_of(path, "# only comments\n\n").unwrap().is_empty());
}

#[test]
fn a_bad_line_is_an_error_naming_it() {
    let fp = "0123456789abcdef".repeat(4);
    let path = Path::new("/etc/vault/tls/revoked.txt");
    let bad_lines = [
        fp.to_uppercase(),                                // upper-case hex
        format!("SPKI-SHA256:{fp}"),                      // upper-case kind
        format!("spki-sha256:{}", &fp[..63]),             // short
        format!("spki-sha256:{fp}0"),                     // long
        format!("issuer-serial:{fp}:01"),                 // a leading zero in the serial
        format!("issuer-serial:{fp}:"),                   // no serial
        format!("issuer-serial:{fp}:1A"),                 // upper-case serial
        format!("issuer-serial:{fp}"),                    // no serial part
        format!("issuer-serial:{fp}:{}", "1".repeat(65)), // too long a serial
        format!("crl-sha256:{fp}"),                       // unknown kind
        format!("{fp} # alice"),                          // a trailing comment
        "not a fingerprint".to_owned(),
    ];
    for bad in bad_lines {
        let text = format!("# ok\n{fp}\n{bad}\n");
        let err = list_of(path, &text).unwrap_err();
        assert!(
            matches!(err, Error::RevokedLine { line: 3, .. }),
            "{bad:?}: {err}"
        );
        let message = err.to_string();
        assert!(
            message.contains("/etc/vault/tls/revoked.txt:3:") && message.contains("spki-sha256:"),
            "{message}"
        );
    }
    let not_utf8 = RevocationList::parse_bytes(path, b"# ok\n\xff\xfe\n").unwrap_err();
    assert!(
        matches!(not_utf8, Error::RevokedLine { line: 2, .. }),
        "{not_utf8}"
    );
}

#[test]
fn read_revoked_names_a_missing_file_and_refuses_a_huge_one() {
    let err = read_revoked(Path::new("/no/such/revoked.txt")).unwrap_err();
    assert!(err.to_string().contains("/no/such/revoked.txt"), "{err}");

    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("revoked.txt");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(pki::MAX_LIST_BYTES + 1).unwrap();
    let err = read_revoked(&path).unwrap_err();
    assert!(matches!(err, Error::RevokedTooLarge { .. }), "{err}");
}

#[test]
fn a_new_list_has_a_header_that_reads_as_empty() {
    let (_tmp, pki) = created();
    let text = std::fs::read_to_string(pki.revoked()).unwrap();
    assert!(
        text.contains("spki-sha256:") && text.contains("issuer-serial:"),
        "{text}"
    );
    assert!(read_revoked(&pki.revoked()).unwrap().is_empty());
}

#[test]
fn revoking_a_certificate_file_lists_its_key_and_serial_once_with_a_note() {
    let (_tmp, pki) = created();
    let alice = pki.issue_client("alice").unwrap();
    let ids = certificate_ids(&der_of(&alice.cert)).unwrap();

    let first = pki.revoke(alice.cert.to_str().unwrap()).unwrap();
    assert_eq!(first.added, 2);
    assert_eq!(first.principal.as_deref(), Some("alice"));
    assert_eq!(
        first.entries,
        [
            RevocationEntry::Key(ids.key),
            RevocationEntry::IssuerSerial {
                issuer: ids.issuer,
                serial: ids.serial.clone()
            }
        ]
    );
    assert!(!first.fingerprint_only());
    let text = std::fs::read_to_string(pki.revoked()).unwrap();
    assert!(
        text.contains(&format!("spki-sha256:{}\n", hex(&ids.key))),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "issuer-serial:{}:{}\n",
            hex(&ids.issuer),
            ids.serial
        )),
        "{text}"
    );
    assert!(
        text.contains("# alice ("),
        "the note names the principal: {text}"
    );

    // Again, by file or by the fingerprint `issue` printed (found in clients/): no change.
    let again = pki.revoke(alice.cert.to_str().unwrap()).unwrap();
    assert_eq!(again.added, 0);
    let by_fp = pki.revoke(&alice.fingerprint).unwrap();
    assert_eq!((by_fp.added, by_fp.entries), (0, first.entries));
    assert_eq!(std::fs::read_to_string(pki.revoked()).unwrap(), text);
    assert_eq!(read_revoked(&pki.revoked()).unwrap().len(), 2);
    assert_eq!(mode(&pki.revoked()), 0o600);
}

#[test]
fn key_and_serial_entries_revoke_every_encoding_and_the_key_every_certificate() {
    let (_tmp, pki) = created();
    let bob = pki.issue_client("bob").unwrap();
    let der = der_of(&bob.cert);
    let copy = test_support::x509::high_s_copy(&der);
    assert_ne!(
        fingerprint(&copy),
        fingerprint(&der),
        "the copy is other bytes"
    );
    let renewed = reissued_for_same_key(&pki, "bob");
    let (ids, copy_ids, renewed_ids) = (
        certificate_ids(&der).unwrap(),
        certificate_ids(&copy).unwrap(),
        certificate_ids(&renewed).unwrap(),
    );
    assert_eq!((copy_ids.key, copy_ids.issuer), (ids.key, ids.issuer));
    assert_eq!(copy_ids.serial, ids.serial);
    assert_eq!(renewed_ids.key, ids.key);
    assert_ne!(renewed_ids.serial, ids.serial);
    let carol = certificate_ids(&der_of(&pki.issue_client("carol").unwrap().cert)).unwrap();
    let path = Path::new("revoked.txt");

    // A fingerprint misses the copy: why it is not enough.
    let by_fp = list_of(path, &format!("{}\n", hex(&ids.fingerprint))).unwrap();
    assert!(by_fp.revoked_by(&ids).is_some());
    assert!(by_fp.revoked_by(&copy_ids).is_none());

    let serial_line = format!("issuer-serial:{}:{}\n", hex(&ids.issuer), ids.serial);
    let by_serial = list_of(path, &serial_line).unwrap();
    assert!(by_serial.revoked_by(&ids).is_some());
    assert!(by_serial.revoked_by(&copy_ids).is_some());
    assert!(by_serial.revoked_by(&renewed_ids).is_none());
    assert!(by_serial.revoked_by(&carol).is_none());

    let key_line = format!("spki-sha256:{}\n", hex(&ids.key));
    let by_key = list_of(path, &format!("{serial_line}{key_line}")).unwrap();
    for revoked in [&ids, &copy_ids, &renewed_ids] {
        // The strongest entry is the one reported.
        assert_eq!(
            by_key.revoked_by(revoked),
            Some(&RevocationEntry::Key(ids.key))
        );
    }
    assert!(by_key.revoked_by(&carol).is_none());
}

#[test]
fn revoking_by_serial_uses_the_vault_ca_as_issuer() {
    let (_tmp, pki) = created();
    let dave = pki.issue_client("dave").unwrap();
    let ids = certificate_ids(&der_of(&dave.cert)).unwrap();
    assert_eq!(ids.issuer, subject_hash(&der_of(&pki.ca_cert())).unwrap());

    // As openssl prints it: upper case, maybe with a leading zero byte and colons.
    let upper = format!("00{}", ids.serial.as_str().to_uppercase());
    let revoked = pki.revoke_serial(&upper).unwrap();
    assert_eq!(revoked.added, 1);
    assert_eq!(
        revoked.principal.as_deref(),
        Some("dave"),
        "found in clients/"
    );
    let list = read_revoked(&pki.revoked()).unwrap();
    assert!(list.revoked_by(&ids).is_some());
    assert_eq!(
        pki.revoke_serial(&format!("0x{}", ids.serial))
            .unwrap()
            .added,
        0
    );

    // A serial no certificate here has is listed all the same.
    let other = pki.revoke_serial("1:2:3").unwrap();
    assert_eq!(other.principal, None);
    assert_eq!(
        other.entries,
        [RevocationEntry::IssuerSerial {
            issuer: ids.issuer,
            serial: Serial::from_hex("10203").unwrap()
        }]
    );
    for bad in ["", "xyz", "12 34"] {
        assert!(
            matches!(pki.revoke_serial(bad), Err(Error::InvalidSerial { .. })),
            "{bad:?}"
        );
    }
}

#[test]
fn revoking_by_key_hash_accepts_the_usual_spellings() {
    let (_tmp, pki) = created();
    let erin = pki.issue_client("erin").unwrap();
    let ids = certificate_ids(&der_of(&erin.cert)).unwrap();
    let key = hex(&ids.key);
    let colons: Vec<String> = key
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).to_uppercase())
        .collect();
    let first = pki.revoke_key_hash(&colons.join(":")).unwrap();
    assert_eq!((first.added, first.principal.as_deref()), (1, Some("erin")));
    assert_eq!(
        pki.revoke_key_hash(&format!("spki-sha256:{key}"))
            .unwrap()
            .added,
        0
    );
    assert!(
        read_revoked(&pki.revoked())
            .unwrap()
            .revoked_by(&ids)
            .is_some()
    );
    for bad in ["abc", &"zz".repeat(32), &key[..62]] {
        assert!(
            matches!(pki.revoke_key_hash(bad), Err(Error::InvalidKeyHash { .. })),
            "{bad:?}"
        );
    }
}

#[test]
fn an_unknown_fingerprint_is_listed_as_such_in_any_spelling() {
    let (_tmp, pki) = created();
    let fp = "ab".repeat(32);
    let colons: Vec<String> = fp
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).to_uppercase())
        .collect();
    let revoked = pki.revoke(&colons.join(":")).unwrap();
    assert!(revoked.fingerprint_only(), "{revoked:?}");
    assert_eq!(pki.revoke(&fp).unwrap().added, 0);
    let text = std::fs::read_to_string(pki.revoked()).unwrap();
    assert_eq!(
        text.matches(&format!("cert-sha256:{fp}")).count(),
        1,
        "{text}"
    );
}

#[test]
fn revoke_without_a_list_creates_one_and_old_lists_are_kept() {
    let (_tmp, pki) = created();
    std::fs::remove_file(pki.revoked()).unwrap();
    pki.revoke(&"ab".repeat(32)).unwrap();
    assert_eq!(read_revoked(&pki.revoked()).unwrap().len(), 1);

    // A list written before the new forms: its bare fingerprint stays, new lines follow.
    let old = "cd".repeat(32);
    std::fs::write(pki.revoked(), format!("# old\n{old}")).unwrap();
    let frank = pki.issue_client("frank").unwrap();
    pki.revoke(frank.cert.to_str().unwrap()).unwrap();
    let text = std::fs::read_to_string(pki.revoked()).unwrap();
    assert!(
        text.starts_with(&format!("# old\n{old}\n# frank (")),
        "{text}"
    );
    assert_eq!(read_revoked(&pki.revoked()).unwrap().len(), 3);
}

#[test]
fn bad_arguments_and_bad_lists_are_refused_and_the_list_kept() {
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

    // revoke refuses to add to a list it cannot read back, and leaves it as it was.
    std::fs::write(pki.revoked(), "not a fingerprint\n").unwrap();
    assert!(matches!(
        pki.revoke(&"ab".repeat(32)),
        Err(Error::RevokedLine { line: 1, .. })
    ));
    assert_eq!(
        std::fs::read_to_string(pki.revoked()).unwrap(),
        "not a fingerprint\n"
    );
}

#[test]
fn concurrent_revocations_all_land() {
    let (_tmp, pki) = created();
    let certs: Vec<_> = (0..8)
        .map(|i| pki.issue_client(&format!("p{i}")).unwrap().cert)
        .collect();
    std::thread::scope(|scope| {
        for cert in &certs {
            let pki = pki.clone();
            scope.spawn(move || pki.revoke(cert.to_str().unwrap()).unwrap());
        }
    });
    assert_eq!(read_revoked(&pki.revoked()).unwrap().len(), 2 * certs.len());
}

#[test]
fn issued_certificates_have_random_serials() {
    let (_tmp, pki) = created();
    let serials: Vec<Serial> = (0..4)
        .map(|i| {
            let cert = pki.issue_client(&format!("s{i}")).unwrap().cert;
            certificate_ids(&der_of(&cert)).unwrap().serial
        })
        .collect();
    for (i, serial) in serials.iter().enumerate() {
        assert!(
            serial.as_str().len() <= 40 && serial.as_str().len() > 30,
            "{serial}"
        );
        assert!(!serials[i + 1..].contains(serial), "{serials:?}");
    }
}
