//! The real vaultctl's command-line conventions: `--format json` on the commands that print
//! data, value enums that list their choices, shell completions and man pages generated from
//! the same definitions as the parser.

mod common;

use common::{Sandbox, assert_success, stderr, stdout};

/// Runs `args` and asserts a usage error (exit 2) whose message lists `choices`.
fn refuses_with_choices(sb: &Sandbox, args: &[&str], choices: &str) {
    let out = sb.run(args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(
        err.contains(&format!("[possible values: {choices}]")),
        "{args:?}: {err}"
    );
}

#[test]
fn enumerated_options_list_their_choices_and_refuse_others() {
    let sb = Sandbox::new();
    refuses_with_choices(
        &sb,
        &["init", "--store", "mysql"],
        "sqlite, memory, postgres",
    );
    refuses_with_choices(&sb, &["init", "--mode", "both"], "direct, tiered");
    refuses_with_choices(&sb, &["list", "--format", "xml"], "text, json");
    refuses_with_choices(&sb, &["status", "--format", "yaml"], "text, json");
    refuses_with_choices(&sb, &["seal", "--format", "text"], "binary, json");
    refuses_with_choices(
        &sb,
        &["completions", "tcsh"],
        "bash, elvish, fish, powershell, zsh",
    );
    assert!(!sb.vault_dir().exists(), "a refused init creates nothing");

    let help = stdout(&sb.ok(&["init", "--help"], b""));
    assert!(help.contains("sqlite") && help.contains("memory"), "{help}");
    assert!(help.contains("direct") && help.contains("tiered"), "{help}");
    let help = stdout(&sb.ok(&["list", "--help"], b""));
    assert!(help.contains("text") && help.contains("json"), "{help}");

    // The choices work.
    let uri = format!("file:{}", sb.path("k.key").display());
    sb.ok(
        &[
            "init", "--store", "memory", "--mode", "tiered", "--kek", &uri,
        ],
        b"",
    );
    let status = stdout(&sb.ok(&["status"], b""));
    assert!(
        status.contains("store:   memory") && status.contains("mode:    tiered"),
        "{status}"
    );
}

#[test]
fn data_commands_print_json_that_parses() {
    let sb = Sandbox::new();
    let uri = sb.init_file_kek();
    sb.ok(&["set", "global", "db-password"], b"hunter2");
    sb.ok(&["set", "principal:alice", "token"], b"one");
    sb.ok(&["set", "principal:alice", "token"], b"two");

    let json = |args: &[&str]| -> serde_json::Value {
        let out = sb.ok(args, b"");
        let text = stdout(&out);
        assert!(
            !text.contains("hunter2") && !text.contains("two"),
            "{args:?} shows no value: {text}"
        );
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"))
    };

    let listed = json(&["list", "--format", "json"]);
    let rows = listed.as_array().expect("list: an array");
    assert_eq!(rows.len(), 2);
    let alice = rows
        .iter()
        .find(|r| r["scope"] == "principal:alice")
        .expect("alice's row");
    assert_eq!(
        (alice["version"].as_u64(), alice["versions"].as_u64()),
        (Some(2), Some(2))
    );
    let updated = alice["updated_at"].as_str().expect("updated_at text");
    assert!(
        updated.len() == 24 && updated.ends_with('Z') && updated.as_bytes()[10] == b'T',
        "{updated}"
    );
    assert!(alice["updated_at_ms"].as_i64().expect("updated_at_ms") > 1_600_000_000_000);

    let status = json(&["status", "--format", "json"]);
    assert_eq!(status["store"], "sqlite");
    assert_eq!(status["secrets"], 2);
    assert_eq!(status["keks"][0]["uri"], uri.as_str());

    let keks = json(&["kek", "list", "--format", "json"]);
    assert_eq!(keks["keks"][0]["uri"], uri.as_str());
    assert_eq!(keks["mode"], "direct");

    let checked = json(&["kek", "check", "--format", "json"]);
    assert_eq!(checked[0]["state"], "ok");

    // Text stays the default.
    let text = stdout(&sb.ok(&["kek", "check"], b""));
    assert!(text.contains(" ok "), "{text}");
}

#[test]
fn list_shows_utc_dates() {
    let sb = Sandbox::new();
    sb.init_file_kek();
    sb.ok(&["set", "global", "a"], b"x");
    let text = stdout(&sb.ok(&["list"], b""));
    let mut lines = text.lines();
    let header = lines.next().expect("a header");
    assert!(header.ends_with("UPDATED (UTC)"), "{text}");
    let row = lines.next().expect("a row");
    // `... 1  2026-12-06 16:10:29`
    let date: Vec<&str> = row.split_whitespace().rev().take(2).collect();
    let (time, day) = (date[0], date[1]);
    assert!(
        time.len() == 8 && time.as_bytes()[2] == b':' && time.as_bytes()[5] == b':',
        "{row}"
    );
    assert!(
        day.len() == 10 && day.as_bytes()[4] == b'-' && day.as_bytes()[7] == b'-',
        "{row}"
    );
}

#[test]
fn completions_are_generated_for_every_shell() {
    let sb = Sandbox::new();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let mut cmd = sb.cmd(&["completions", shell]);
        // Remote settings do not matter: nothing is contacted.
        cmd.env("VAULTCTL_ADDR", "https://127.0.0.1:1");
        let out = common::run(cmd, b"");
        assert_success(&out, &["completions", shell]);
        let script = stdout(&out);
        for word in [
            "vaultctl",
            "min-decryption-version",
            "rewrap",
            "completions",
            "format",
            "connect-timeout",
        ] {
            assert!(script.contains(word), "{shell} script lacks {word:?}");
        }
    }
    let bash = stdout(&sb.ok(&["completions", "bash"], b""));
    assert!(bash.contains("complete -F _vaultctl"), "{bash}");
    // The value enums' choices are completed.
    assert!(
        bash.contains("sqlite memory"),
        "bash completes --store's values"
    );
}

#[test]
fn man_pages_come_from_the_definitions() {
    let sb = Sandbox::new();
    let page = stdout(&sb.ok(&["man"], b""));
    assert!(
        page.starts_with(".ie") || page.contains(".TH vaultctl 1"),
        "{page}"
    );
    assert!(page.contains(".TH vaultctl 1"), "{page}");
    for word in [
        "completions",
        "rewrap",
        "connect\\-timeout",
        "VAULTCTL_ADDR",
    ] {
        assert!(page.contains(word), "the page lacks {word:?}");
    }

    let dir = sb.path("man1");
    let dir_s = dir.to_str().expect("utf-8 path");
    let out = stdout(&sb.ok(&["man", "--out-dir", dir_s], b""));
    assert!(out.contains("man pages"), "{out}");
    for name in [
        "vaultctl",
        "vaultctl-list",
        "vaultctl-kek",
        "vaultctl-kek-add",
        "vaultctl-audit-tail",
    ] {
        let path = dir.join(format!("{name}.1"));
        let page =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(page.contains(&format!(".TH {name} 1")), "{name}: {page}");
    }
    let kek_add = std::fs::read_to_string(dir.join("vaultctl-kek-add.1")).expect("read");
    assert!(kek_add.contains("existing"), "{kek_add}");
    assert!(!dir.join("vaultctl-help.1").exists());
}
