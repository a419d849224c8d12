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
fn revoked(dir: &std::path::Path) -> Vec<String> {
    let set = pki::read_revoked(&dir.join("revoked.txt")).expect("revoked.txt");
    set.into_iter().collect()
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

    // Revoking by file lists the fingerprint issue printed; by fingerprint again, no change.
    sb.ok(&["pki", "revoke", cert.to_str().expect("utf-8 path")], b"");
    sb.ok(&["pki", "revoke", &fp], b"");
    assert_eq!(revoked(&tls), [fp]);

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
            "--json",
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
    assert_eq!(doc["fingerprint"], revoked(&dir)[0]);
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
    let out = sb.run(&["pki", "revoke", "not-a-fingerprint"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = sb.run(&["pki", "init"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already"), "{}", stderr(&out));
}
