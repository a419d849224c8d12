//! vaultctl on a real pseudo-terminal (util-linux `script`): secrets and passphrases are
//! typed at no-echo prompts and never appear in what the terminal shows.

mod common;

use std::io::{Read, Write};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Sandbox, on_pseudo_terminal};

/// What the terminal showed, and whether vaultctl succeeded.
struct Session {
    screen: String,
    success: bool,
}

/// Runs vaultctl on a pseudo-terminal; for each `(prompt, answer)` waits until `prompt` is
/// on the screen, then types `answer` (so nothing is typed while echo is still on).
fn on_tty(sb: &Sandbox, args: &[&str], dialogue: &[(&str, &str)]) -> Session {
    let mut cmd = on_pseudo_terminal(&sb.cmd(args));
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("script (util-linux) runs; scripts/install-deps.sh installs it");
    let screen = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let screen = Arc::clone(&screen);
        let mut out = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            let mut buf = [0u8; 1024];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                screen.lock().expect("screen").extend_from_slice(&buf[..n]);
            }
        })
    };
    let mut stdin = child.stdin.take().expect("stdin");
    let mut shown = 0;
    for (prompt, answer) in dialogue {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = String::from_utf8_lossy(&screen.lock().expect("screen")).into_owned();
            if let Some(at) = text[shown..].find(prompt) {
                shown += at + prompt.len();
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no prompt {prompt:?}; the terminal shows: {text}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        stdin
            .write_all(format!("{answer}\n").as_bytes())
            .expect("type");
    }
    let status = child.wait().expect("wait");
    drop(stdin);
    reader.join().expect("reader");
    let screen = String::from_utf8_lossy(&screen.lock().expect("screen")).into_owned();
    Session {
        screen,
        success: status.success(),
    }
}

#[test]
fn a_secret_typed_at_the_prompt_is_stored_and_not_echoed() {
    let sb = Sandbox::new();
    sb.init_file_kek();
    let typed = "typed-secret-4711";
    let session = on_tty(&sb, &["set", "global", "k"], &[("(not echoed): ", typed)]);
    assert!(session.success, "{}", session.screen);
    assert!(
        !session.screen.contains(typed),
        "echoed: {}",
        session.screen
    );
    assert!(
        session.screen.contains("stored global k version 1"),
        "{}",
        session.screen
    );
    assert_eq!(sb.ok(&["get", "global", "k"], b"").stdout, typed.as_bytes());
}

#[test]
fn a_passphrase_kek_is_asked_twice_at_init_and_once_to_open() {
    let sb = Sandbox::new();
    let pass = "correct horse battery";
    let init = on_tty(
        &sb,
        &["init", "--kek", "passphrase:prompt;m=8192;t=1;p=1"],
        &[
            ("New passphrase for KEK", pass),
            ("Repeat the passphrase: ", pass),
        ],
    );
    assert!(init.success, "{}", init.screen);
    let value = "value-typed-after-the-passphrase";
    let set = on_tty(
        &sb,
        &["set", "global", "k"],
        &[("Passphrase for KEK", pass), ("(not echoed): ", value)],
    );
    assert!(set.success, "{}", set.screen);
    let wrong = on_tty(
        &sb,
        &["get", "global", "k"],
        &[("Passphrase for KEK", "wrong horse")],
    );
    assert!(!wrong.success);
    assert!(
        wrong.screen.contains("wrong passphrase"),
        "{}",
        wrong.screen
    );
    let get = on_tty(
        &sb,
        &["get", "global", "k"],
        &[("Passphrase for KEK", pass)],
    );
    assert!(get.success, "{}", get.screen);
    assert!(get.screen.ends_with(value), "{}", get.screen);
    for session in [&init, &set, &wrong, &get] {
        assert!(
            !session.screen.contains(pass),
            "passphrase echoed: {}",
            session.screen
        );
    }
    assert!(!set.screen.contains(value), "value echoed: {}", set.screen);
}

#[test]
fn mistyped_passphrase_confirmation_creates_nothing() {
    let sb = Sandbox::new();
    let init = on_tty(
        &sb,
        &["init", "--kek", "passphrase:prompt;m=8192;t=1;p=1"],
        &[
            ("New passphrase for KEK", "one"),
            ("Repeat the passphrase: ", "two"),
        ],
    );
    assert!(!init.success, "{}", init.screen);
    assert!(
        !sb.vault_dir().join("vault.json").exists(),
        "no vault was created"
    );
}

#[test]
fn rewrap_on_a_terminal_shows_progress_with_rate_and_eta() {
    let sb = Sandbox::new();
    let uri = sb.init_file_kek();
    let dir = sb.vault_dir();
    {
        let env = kek_providers::KekEnv { vault_dir: &dir };
        let built = kek_providers::open(&uri, &env).expect("kek");
        let vault = vault::Vault::open(
            &dir,
            None,
            vec![vault::Kek {
                uri: built.uri,
                provider: built.provider,
            }],
        )
        .expect("open");
        for i in 0..300 {
            vault.set("global", &format!("k{i}"), b"v").expect("set");
        }
    }
    let second = format!("file:{}", sb.path("keys/second.key").display());
    sb.ok(&["kek", "add", &second], b"");
    let dry = sb.ok(&["rewrap", "--dry-run"], b"");
    assert!(
        common::stdout(&dry).contains("300 of 300 secret versions would be rewrapped"),
        "{}",
        common::stdout(&dry)
    );
    let session = on_tty(&sb, &["rewrap", "--batch", "50"], &[]);
    assert!(session.success, "{}", session.screen);
    for needle in ["[", "%", "/s", "ETA", "rewrapped 300 of 300"] {
        assert!(
            session.screen.contains(needle),
            "no {needle:?} in: {}",
            session.screen
        );
    }
    assert!(
        common::stdout(&sb.ok(&["rewrap"], b"")).contains("rewrapped 0 of 300"),
        "a second run has nothing to do"
    );
}
