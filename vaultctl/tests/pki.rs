//! `vaultctl pki init | issue | revoke` on a sandbox's `<vault dir>/tls` or a --pki-dir.

mod common;

use common::{Sandbox, stderr, stdout};

/// The fingerprint `pki issue` printed.
fn printed_fingerprint(text: &str) -> String {
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("fingerprint:"));
    line.and_then(|l| l.split_whitespace().nth(1))
        .expect("a fingerprint line")
        .to_owned()
}

/// The revocation list of `dir`.
fn revoked(dir: &std::path::Path) -> pki::RevocationList {
    pki::read_revoked(&dir.join("revoked.txt")).expect("revoked.txt")
}

/// The identifiers of a PEM certificate file.
fn ids_of(cert: &std::path::Path) -> pki::CertificateIds {
    let bytes = std::fs::read(cert).expect("read the certificate");
    let (_, pem) = x509_parser::pem::parse_x509_pem(&bytes).expect("PEM");
    pki::certificate_ids(&pem.contents).expect("a certificate")
}

#[test]
fn init_issue_revoke_in_the_vault_tls_dir() {
    let sb = Sandbox::new();
    let tls = sb.vault_dir().join("tls");
    let out = sb.ok(&["pki", "init"], b"");
    assert!(stdout(&out).contains("pki issue"), "{}", stdout(&out));
    assert!(tls.join("ca.pem").exists() && tls.join("server.key").exists());

    let out = sb.ok(&["pki", "issue", "--principal", "alice"], b"");
    let text = stdout(&out);
    let cert = tls.join("clients/alice.pem");
    assert!(text.contains(&cert.display().to_string()), "{text}");
    assert!(
        text.contains(&tls.join("clients/alice.key").display().to_string()),
        "{text}"
    );
    let fp = printed_fingerprint(&text);
    assert_eq!(fp.len(), 64, "{text}");

    // Revoking by file lists its key and serial; by the fingerprint issue printed (the
    // certificate is found in clients/), nothing more.
    let out = sb.ok(&["pki", "revoke", cert.to_str().expect("utf-8 path")], b"");
    let text = stdout(&out);
    assert!(
        text.contains("the certificate of alice") && text.contains("2 entries added"),
        "{text}"
    );
    let out = sb.ok(&["pki", "revoke", &fp], b"");
    assert!(stdout(&out).contains("0 entries added"), "{}", stdout(&out));
    assert!(
        stderr(&out).is_empty(),
        "no fingerprint warning: {}",
        stderr(&out)
    );
    let ids = ids_of(&cert);
    let list = revoked(&tls);
    assert_eq!(list.len(), 2);
    assert_eq!(
        list.revoked_by(&ids),
        Some(&pki::RevocationEntry::Key(ids.key))
    );

    // Issuing again is refused, and says what to do.
    let out = sb.run(&["pki", "issue", "--principal", "alice"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
}

#[test]
fn issue_json_with_a_pki_dir() {
    let sb = Sandbox::new();
    let dir = sb.path("elsewhere");
    let dir_s = dir.to_str().expect("utf-8 path");
    sb.ok(
        &[
            "pki",
            "init",
            "--pki-dir",
            dir_s,
            "--host",
            "vault.internal",
        ],
        b"",
    );
    let out = sb.ok(
        &[
            "pki",
            "issue",
            "--principal",
            "ci@build",
            "--pki-dir",
            dir_s,
            "--format",
            "json",
        ],
        b"",
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["principal"], "ci@build");
    let cert = std::path::PathBuf::from(doc["cert"].as_str().expect("cert"));
    assert_eq!(cert, dir.join("clients/ci@build.pem"));
    sb.ok(
        &[
            "pki",
            "revoke",
            cert.to_str().expect("utf-8 path"),
            "--pki-dir",
            dir_s,
        ],
        b"",
    );
    assert_eq!(revoked(&dir).len(), 2);
    assert!(revoked(&dir).revoked_by(&ids_of(&cert)).is_some());
    assert!(!sb.vault_dir().join("tls").exists());
}

#[test]
fn bad_input_is_a_usage_error_and_a_missing_ca_says_how_to_make_one() {
    let sb = Sandbox::new();
    let out = sb.run(&["pki", "issue", "--principal", "alice"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("vaultctl pki init"),
        "{}",
        stderr(&out)
    );

    sb.ok(&["pki", "init"], b"");
    let out = sb.run(&["pki", "issue", "--principal", "../etc"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("invalid principal"),
        "{}",
        stderr(&out)
    );
    for bad in [
        &["pki", "revoke", "not-a-fingerprint"][..],
        &["pki", "revoke", "--serial", "xyz"],
        &["pki", "revoke", "--key-hash", "abc"],
        &["pki", "revoke"],
        &[
            "pki",
            "revoke",
            "--serial",
            "1",
            "--key-hash",
            &"ab".repeat(32),
        ],
    ] {
        let out = sb.run(bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", stderr(&out));
    }
    let out = sb.run(&["pki", "init"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already"), "{}", stderr(&out));
}

#[test]
fn revoke_by_serial_key_hash_or_unknown_fingerprint() {
    let sb = Sandbox::new();
    let tls = sb.vault_dir().join("tls");
    sb.ok(&["pki", "init"], b"");
    sb.ok(&["pki", "issue", "--principal", "bob"], b"");
    sb.ok(&["pki", "issue", "--principal", "carol"], b"");
    let bob = ids_of(&tls.join("clients/bob.pem"));
    let carol = ids_of(&tls.join("clients/carol.pem"));

    let serial = bob.serial.as_str().to_uppercase();
    let out = sb.ok(&["pki", "revoke", "--serial", &serial], b"");
    let text = stdout(&out);
    assert!(
        text.contains("the certificate of bob") && text.contains("issuer-serial:"),
        "{text}"
    );
    let key: String = carol.key.iter().map(|b| format!("{b:02x}")).collect();
    let out = sb.ok(&["pki", "revoke", "--key-hash", &key], b"");
    assert!(
        stdout(&out).contains(&format!("spki-sha256:{key}")),
        "{}",
        stdout(&out)
    );
    let list = revoked(&tls);
    assert!(matches!(
        list.revoked_by(&bob),
        Some(pki::RevocationEntry::IssuerSerial { .. })
    ));
    assert_eq!(
        list.revoked_by(&carol),
        Some(&pki::RevocationEntry::Key(carol.key))
    );

    // A fingerprint of no certificate here is listed, with a warning that it is weak.
    let out = sb.ok(&["pki", "revoke", &"ab".repeat(32)], b"");
    assert!(
        stderr(&out).contains("--serial or --key-hash"),
        "{}",
        stderr(&out)
    );
    assert_eq!(revoked(&tls).len(), 3);
}

#[test]
fn renew_server_replaces_the_pair_for_the_hosts_given() {
    let sb = Sandbox::new();
    let tls = sb.vault_dir().join("tls");
    sb.ok(&["pki", "init"], b"");
    let old = std::fs::read(tls.join("server.pem")).expect("server.pem");
    let out = sb.ok(&["pki", "renew-server", "--host", "vault.example.org"], b"");
    assert!(
        stdout(&out).contains("vault.example.org"),
        "{}",
        stdout(&out)
    );
    let new = std::fs::read(tls.join("server.pem")).expect("server.pem");
    assert_ne!(new, old);
    let (_, pem) = x509_parser::pem::parse_x509_pem(&new).expect("PEM");
    let cert = pem.parse_x509().expect("a certificate");
    let san = cert
        .subject_alternative_name()
        .expect("extensions")
        .expect("a SAN");
    let names: Vec<String> = san
        .value
        .general_names
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(names, ["DNSName(vault.example.org)"]);

    // Without the CA key (an offline CA): a clear error, and the pair stays.
    std::fs::remove_file(tls.join("ca.key")).expect("remove ca.key");
    let out = sb.run(&["pki", "renew-server"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("ca.key"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(tls.join("server.pem")).expect("server.pem"),
        new
    );
}
