//! The keyring with the real binary: recovery with a second KEK, m-of-n, rewrap killed and
//! resumed over 10,000 secrets, lock and unlock.

mod common;

use std::collections::HashMap;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::{Sandbox, assert_fails_with, assert_success, stderr, stdout};
use kek_providers::KekEnv;
use vault::{Kek, StoreKind, Vault};

const PASS_VAR: &str = "VAULT_TEST_RECOVERY_PASSPHRASE";

fn with_env(sb: &Sandbox, args: &[&str], input: &[u8], env: &[(&str, &str)]) -> Output {
    let mut cmd = sb.cmd(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    common::run(cmd, input)
}

#[test]
fn a_deleted_key_file_is_recovered_with_the_passphrase_kek() {
    let sb = Sandbox::new();
    let env = [(PASS_VAR, "recovery passphrase in the safe")];
    let key = sb.path("keys/daily.key");
    let file = format!("file:{}", key.display());
    let pass = format!("passphrase:env={PASS_VAR};m=8192;t=1;p=1");
    assert_success(
        &with_env(&sb, &["init", "--kek", &file, "--kek", &pass], b"", &env),
        &["init"],
    );
    for i in 0..5 {
        let out = with_env(
            &sb,
            &["set", "global", &format!("k{i}")],
            format!("value {i}").as_bytes(),
            &env,
        );
        assert_success(&out, &["set"]);
    }
    assert_success(
        &with_env(&sb, &["kek", "check"], b"", &env),
        &["kek", "check"],
    );

    std::fs::remove_file(&key).expect("delete the key file");
    for i in 0..5 {
        let out = with_env(&sb, &["get", "global", &format!("k{i}")], b"", &env);
        assert_success(&out, &["get"]);
        assert_eq!(out.stdout, format!("value {i}").as_bytes());
    }
    let check = with_env(&sb, &["kek", "check"], b"", &env);
    assert_eq!(check.status.code(), Some(1), "{}", stderr(&check));
    let report = stdout(&check);
    let line = |kind: &str| {
        report
            .lines()
            .find(|l| l.starts_with(kind))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        line("file:").contains("failed") && line("file:").contains("daily.key"),
        "{report}"
    );
    assert!(line("passphrase:").contains(" ok"), "{report}");
    // Writes need every root KEK: refused with a message naming the missing one.
    let out = with_env(&sb, &["set", "global", "new"], b"x", &env);
    assert_fails_with(&out, "file:");
}

/// A read opens the vault with the first pinned KEK that holds a secret of its own: the
/// recovery KEK beside it is not asked (here: its passphrase is not even set), so it is not
/// warned about either. Writes still need both.
#[test]
fn reads_ask_only_the_first_kek_and_writes_every_one() {
    let sb = Sandbox::new();
    let env = [(PASS_VAR, "recovery passphrase in the safe")];
    let file = format!("file:{}", sb.path("keys/daily.key").display());
    let pass = format!("passphrase:env={PASS_VAR};m=8192;t=1;p=1");
    assert_success(
        &with_env(&sb, &["init", "--kek", &file, "--kek", &pass], b"", &env),
        &["init"],
    );
    assert_success(
        &with_env(&sb, &["set", "global", "k"], b"v", &env),
        &["set"],
    );

    let get = sb.run(&["get", "global", "k"]);
    assert_success(&get, &["get"]);
    assert_eq!(get.stdout, b"v");
    assert_eq!(stderr(&get), "", "the recovery KEK was asked");
    let list = sb.run(&["list"]);
    assert_success(&list, &["list"]);
    assert!(stdout(&list).contains("global"), "{}", stdout(&list));
    assert_eq!(stderr(&list), "", "the recovery KEK was asked");
    // Without the passphrase, a write says the recovery KEK is missing.
    assert_fails_with(&sb.run_with_input(&["set", "global", "k"], b"w"), PASS_VAR);
}

#[test]
fn two_of_three_key_files_open_the_vault_and_one_does_not() {
    let sb = Sandbox::new();
    let keys: Vec<_> = (0..3)
        .map(|i| sb.path(&format!("keys/member{i}.key")))
        .collect();
    let uris: Vec<String> = keys
        .iter()
        .map(|k| format!("file:{}", k.display()))
        .collect();
    let mut init = vec!["init", "--threshold", "2"];
    for uri in &uris {
        init.extend(["--kek", uri.as_str()]);
    }
    let out = sb.ok(&init, b"");
    assert!(stdout(&out).contains("mode: tiered"), "{}", stdout(&out));
    sb.ok(&["set", "global", "k"], b"shared secret");

    std::fs::remove_file(&keys[2]).expect("lose member 3");
    assert_eq!(sb.ok(&["get", "global", "k"], b"").stdout, b"shared secret");
    std::fs::remove_file(&keys[1]).expect("lose member 2");
    let out = sb.run(&["get", "global", "k"]);
    assert_fails_with(&out, "1 more");
}

#[test]
fn lock_refuses_reads_until_unlock() {
    let sb = Sandbox::new();
    sb.init_file_kek();
    sb.ok(&["set", "global", "k"], b"v");
    sb.ok(&["lock"], b"");
    assert_fails_with(&sb.run(&["get", "global", "k"]), "locked");
    assert_fails_with(&sb.run_with_input(&["seal"], b"data"), "locked");
    let status = stdout(&sb.ok(&["status"], b""));
    assert!(status.contains("locked:  yes"), "{status}");
    sb.ok(&["unlock"], b"");
    assert_eq!(sb.ok(&["get", "global", "k"], b"").stdout, b"v");
}

/// The `examined` count in the saved rewrap progress, if a run has saved one.
fn saved_progress(sb: &Sandbox) -> Option<u64> {
    let text = std::fs::read_to_string(sb.vault_dir().join("rewrap.json")).ok()?;
    let doc: serde_json::Value = serde_json::from_str(&text).ok()?;
    doc["examined"].as_u64()
}

#[test]
fn rewrap_killed_at_random_points_over_10000_secrets_completes_when_run_again() {
    const SECRETS: usize = 10_000;
    let sb = Sandbox::new();
    let uri = format!("file:{}", sb.path("keys/kek.key").display());
    sb.ok(&["init", "--kek", &uri, "--mode", "tiered"], b"");
    let dir = sb.vault_dir();
    let open = || {
        let built = kek_providers::open(&uri, &KekEnv { vault_dir: &dir }).expect("kek");
        Vault::open(
            &dir,
            Some(StoreKind::Sqlite),
            vec![Kek {
                uri: built.uri,
                provider: built.provider,
            }],
        )
        .expect("open")
    };
    let values: HashMap<String, Vec<u8>> = (0..SECRETS)
        .map(|i| (format!("s{i}"), format!("value-{i}").into_bytes()))
        .collect();
    {
        let vault = open();
        vault.set_epoch_lease(SECRETS as u64);
        for (key, value) in &values {
            vault.set("global", key, value).expect("set");
        }
    }
    sb.ok(&["rotate"], b"");

    // Random stopping points, printed so that a failure can be replayed.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    let mut state = seed;
    let mut stops: Vec<u64> = (0..3)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Well before the end: a run told to stop at its last batch may
            // finish before the poll below sees its progress.
            100 + state % (SECRETS as u64 - 1_000)
        })
        .collect();
    stops.sort_unstable();
    eprintln!("rewrap kill points (seed {seed}): {stops:?}");
    let mut kills = 0;
    let mut last_killed = false;
    for stop_at in stops {
        let mut child = sb
            .cmd(&["rewrap", "--batch", "100"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn rewrap");
        let deadline = Instant::now() + Duration::from_secs(120);
        let killed = loop {
            if saved_progress(&sb).is_some_and(|n| n >= stop_at) {
                child.kill().expect("SIGKILL");
                break true;
            }
            if child.try_wait().expect("poll").is_some() {
                break false;
            }
            assert!(Instant::now() < deadline, "rewrap made no progress");
            std::thread::sleep(Duration::from_millis(2));
        };
        child.wait().expect("reap");
        kills += usize::from(killed);
        last_killed = killed;
    }
    eprintln!("{kills} rewrap runs were killed");
    assert!(
        kills >= 1,
        "no run was interrupted: the test proved nothing"
    );
    let out = sb.ok(&["rewrap"], b"");
    if last_killed {
        assert!(stdout(&out).contains("resumed"), "{}", stdout(&out));
    }
    assert!(
        !dir.join("rewrap.json").exists(),
        "a finished run leaves no progress file"
    );

    let store = vault::open_store(StoreKind::Sqlite, &dir).expect("store");
    let mut after = None;
    let mut seen = 0;
    while let Some(last) = {
        let page = store.scan(after.as_ref(), 1000).expect("scan");
        for v in &page {
            let stanzas: Vec<String> = envelope::EnvelopeRef::parse(&v.envelope)
                .expect("parse")
                .stanzas()
                .map(|s| s.describe())
                .collect();
            assert!(
                stanzas.len() == 1 && stanzas[0].ends_with("#v2"),
                "{}: {stanzas:?}",
                v.key
            );
        }
        seen += page.len();
        page.last().map(|v| v.position())
    } {
        after = Some(last);
    }
    assert_eq!(seen, SECRETS);

    sb.ok(&["min-decryption-version", "2"], b"");
    let config = Vault::read_config(&dir).expect("config");
    assert!(
        config.epochs.iter().all(|e| e.number >= 2),
        "epoch 1's key is gone"
    );
    let vault = open();
    for (key, value) in &values {
        assert_eq!(
            vault.get("global", key, None).expect("get").expose_secret(),
            &value[..],
            "{key}"
        );
    }
    assert_eq!(
        vault.list(None).expect("list").len(),
        SECRETS,
        "no secret was lost or added"
    );
}
