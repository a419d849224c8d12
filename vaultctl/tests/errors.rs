//! The real vaultctl binary on bad input: a clear message, exit code 1 (2 for usage), no
//! panic, nothing modified.

mod common;

use common::{Sandbox, assert_fails_with, stderr};

#[test]
fn missing_vault_directory() {
    let sb = Sandbox::new();
    let out = sb.run(&["get", "global", "x"]);
    assert_fails_with(&out, "vaultctl --vault");
}

#[test]
fn init_twice_is_refused() {
    let sb = Sandbox::new();
    sb.init_file_kek();
    assert_fails_with(&sb.run(&["init"]), "already");
}

#[test]
fn bad_scope_and_key_names() {
    let sb = Sandbox::new();
    sb.init_file_kek();
    for (scope, key) in [
        ("nosuch:x", "k"),
        ("principal:", "k"),
        ("global", ""),
        ("global", "../etc"),
        ("global", "a/b"),
        ("global", "line\nbreak"),
        ("global", &"k".repeat(200)),
    ] {
        let out = sb.run_with_input(&["set", scope, key], b"v");
        assert_eq!(
            out.status.code(),
            Some(1),
            "{scope:?} {key:?}: {}",
            stderr(&out)
        );
        assert!(!stderr(&out).contains("panicked"));
    }
    let listed = sb.ok(&["list", "--format", "json"], b"");
    assert_eq!(listed.stdout.trim_ascii(), b"[]", "nothing was stored");
}

#[test]
fn usage_errors_exit_2_and_values_are_never_taken_from_argv() {
    let sb = Sandbox::new();
    sb.init_file_kek();
    let out = sb.run(&["set", "global", "k", "the-value"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = sb.run(&["get"]);
    assert_eq!(out.status.code(), Some(2));
    let out = sb.run(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn wrong_kek_and_missing_kek() {
    let sb = Sandbox::new();
    sb.init_file_kek();
    sb.ok(&["set", "global", "k"], b"v");
    let other = format!("file:{}", sb.path("other/other.key").display());
    // Create a different key file through a second vault.
    let sb2 = Sandbox::new();
    sb2.ok(&["init", "--kek", &other], b"");
    assert_fails_with(
        &sb.run(&["--kek", &other, "get", "global", "k"]),
        "not one of this vault's KEKs",
    );
    std::fs::remove_file(sb.path("keys/kek.key")).expect("remove key");
    assert_fails_with(&sb.run(&["get", "global", "k"]), "kek.key");
}

#[test]
fn wrong_passphrase() {
    let sb = Sandbox::new();
    let uri = "passphrase:env=TEST_VAULT_PASSPHRASE;m=8192;t=1;p=1";
    let out = sb
        .cmd(&["init", "--kek", uri])
        .env("TEST_VAULT_PASSPHRASE", "correct horse")
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    let mut cmd = sb.cmd(&["set", "global", "k"]);
    cmd.env("TEST_VAULT_PASSPHRASE", "correct horse");
    assert!(common::run(cmd, b"v").status.success());
    let mut cmd = sb.cmd(&["get", "global", "k"]);
    cmd.env("TEST_VAULT_PASSPHRASE", "wrong staple");
    let out = common::run(cmd, b"");
    assert_fails_with(&out, "wrong passphrase");
    assert!(
        !stderr(&out).contains("wrong staple"),
        "the passphrase is never echoed"
    );
    let out = common::run(sb.cmd(&["get", "global", "k"]), b"");
    assert_fails_with(&out, "TEST_VAULT_PASSPHRASE");
}

#[test]
fn tampered_truncated_and_oversized_envelopes() {
    let sb = Sandbox::new();
    sb.init_file_kek();
    let sealed = sb.ok(&["seal"], b"caller data").stdout;

    let mut flipped = sealed.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert_fails_with(&sb.run_with_input(&["open"], &flipped), "tampered");

    assert_fails_with(
        &sb.run_with_input(&["open"], &sealed[..sealed.len() - 3]),
        "truncated",
    );

    let mut oversized = sealed.clone();
    // The 4-byte ciphertext length sits just before the ciphertext: claim 1 GiB.
    let ct_len_at = sealed.len() - (b"caller data".len() + 16) - 4;
    oversized[ct_len_at..ct_len_at + 4].copy_from_slice(&0x4000_0000u32.to_be_bytes());
    assert_fails_with(&sb.run_with_input(&["open"], &oversized), "over the limit");

    let mut trailing = sealed.clone();
    trailing.push(0);
    assert_fails_with(&sb.run_with_input(&["open"], &trailing), "unexpected bytes");

    assert_fails_with(
        &sb.run_with_input(&["open"], b"not an envelope"),
        "not a vault envelope",
    );
    assert_fails_with(&sb.run_with_input(&["open"], b"{\"format\": 1}"), "JSON");
}

#[test]
fn envelope_from_another_context_is_refused() {
    let sb = Sandbox::new();
    sb.init_file_kek();
    let sealed = sb.ok(&["seal", "--context", "a"], b"x").stdout;
    let out = sb.run_with_input(&["open", "--context", "b"], &sealed);
    assert_fails_with(&out, "tampered");
}

#[test]
fn failed_set_keeps_the_old_value() {
    let sb = Sandbox::new();
    sb.init_file_kek();
    sb.ok(&["set", "global", "k"], b"old");
    let too_big = vec![b'x'; (1 << 20) + 1];
    let out = sb.run_with_input(&["set", "global", "k"], &too_big);
    assert_fails_with(&out, "limit");
    assert_eq!(sb.ok(&["get", "global", "k"], b"").stdout, b"old");
}

#[test]
fn secret_values_never_appear_in_output_or_errors() {
    let sb = Sandbox::new();
    sb.init_file_kek();
    let secret = b"zq-SECRET-VALUE-8842";
    let mut outputs = vec![sb.ok(&["set", "global", "k"], secret)];
    outputs.push(sb.ok(&["list"], b""));
    outputs.push(sb.ok(&["status"], b""));
    outputs.push(sb.run(&["get", "global", "k", "--version", "9"]));
    outputs.push(sb.run_with_input(&["set", "global", "../x"], secret));
    for out in outputs {
        let all = [out.stdout, out.stderr].concat();
        assert!(
            !all.windows(secret.len()).any(|w| w == secret),
            "value leaked: {}",
            String::from_utf8_lossy(&all)
        );
    }
}

#[test]
fn a_stanza_swapped_between_envelopes_is_refused() {
    let sb = Sandbox::new();
    sb.init_file_kek();
    let data = b"same length data";
    let a = sb.ok(&["seal"], data).stdout;
    let b = sb.ok(&["seal"], data).stdout;
    // Both envelopes have one stanza of the same KEK, so their headers have the same length.
    let header_len = a.len() - (4 + data.len() + 16);
    let swapped = [&a[..header_len], &b[header_len..]].concat();
    assert_fails_with(&sb.run_with_input(&["open"], &swapped), "tampered");
    assert_eq!(
        sb.ok(&["open"], &a).stdout,
        data,
        "the originals still open"
    );
}

#[test]
fn a_stored_envelope_moved_to_another_key_scope_or_version_is_refused() {
    let sb = Sandbox::new();
    sb.init_file_kek();
    sb.ok(&["set", "global", "k"], b"the value");
    let db = rusqlite::Connection::open(sb.vault_dir().join("secrets.db")).expect("open db");
    let moved = |change: &str| {
        let copied = db
            .execute(
                &format!(
                    "INSERT INTO secrets (scope, key, version, envelope, written_at)
                     SELECT {change}, envelope, written_at FROM secrets
                     WHERE scope = 'global' AND key = 'k' AND version = 1"
                ),
                [],
            )
            .expect("copy the envelope");
        assert_eq!(copied, 1);
    };
    moved("'global', 'other', 1");
    assert_fails_with(&sb.run(&["get", "global", "other"]), "tampered");
    moved("'principal:mallory', 'k', 1");
    assert_fails_with(&sb.run(&["get", "principal:mallory", "k"]), "tampered");
    // A version the vault never wrote: the current one is still version 1.
    moved("'global', 'k', 2");
    assert_fails_with(
        &sb.run(&["get", "global", "k", "--version", "2"]),
        "never wrote",
    );
    assert_eq!(sb.ok(&["get", "global", "k"], b"").stdout, b"the value");
    // Version 1's place taken by another key's envelope: its AAD names the other key.
    sb.ok(&["set", "global", "moved"], b"another value");
    db.execute(
        "UPDATE secrets SET envelope = (SELECT envelope FROM secrets WHERE key = 'moved' AND version = 1)
         WHERE scope = 'global' AND key = 'k' AND version = 1",
        [],
    )
    .expect("move the envelope");
    assert_fails_with(&sb.run(&["get", "global", "k"]), "tampered");
    assert_eq!(
        sb.ok(&["get", "global", "moved"], b"").stdout,
        b"another value"
    );
}

#[test]
fn a_bad_second_kek_uri_creates_nothing() {
    let sb = Sandbox::new();
    let key = sb.path("keys/first.key");
    let first = format!("file:{}", key.display());
    let out = sb.run(&["init", "--kek", &first, "--kek", "nosuch:thing"]);
    assert_fails_with(&out, "nosuch");
    assert!(!key.exists(), "the first KEK's key file was not created");
    sb.ok(&["init", "--kek", &first], b"");
}
