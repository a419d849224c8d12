//! The real `vaultctl` binary on the emulated YubiKey: `kek create` and `kek info` of a
//! YubiKey KEK, a vault whose root KEKs are the card and a recovery `file:` KEK (tiered by
//! default) and every everyday command on it, a wrong PIN (the tries left, the recovery KEK
//! still reads), the card pulled out (a clear error naming it, the vault directory unchanged
//! byte for byte, the recovery KEK reads everything), and two cards without a serial. No run
//! shows the PIN, on stdout or stderr, or a stored value on stderr.
#![forbid(unsafe_code)]

use std::fs;
use std::path::Path;
use std::process::Command;

use test_support::ErrorLine;
use yubikey_tests::{DEFAULT_PIN, PinFile, PivCards};

/// The secrets the vault holds: (scope, key, value).
const SECRETS: [(&str, &str, &str); 3] = [
    ("global", "db-password", "hunter2-on-the-yubikey"),
    ("principal:alice", "api-token", "alice-token-0xfeedface"),
    ("skill:mail", "smtp", "smtp-password-behind-piv"),
];
/// Caller data sealed with `vaultctl seal`.
const CALLER_DATA: &str = "caller data sealed by the YubiKey vault";
const WRONG_PIN: &[u8] = b"654321";

/// vaultctl with its home in `dir`; no run shows a PIN or a stored value.
fn vaultctl(dir: &Path) -> test_support::Vaultctl<'static> {
    let binary = yubikey_tests::vaultctl_binary(dir);
    let ctl = test_support::Vaultctl::new(move || Command::new(&binary), &dir.join("home"));
    ctl.keep_hidden(std::str::from_utf8(DEFAULT_PIN).expect("an ASCII PIN"));
    ctl.keep_hidden(std::str::from_utf8(WRONG_PIN).expect("an ASCII PIN"));
    for (_, _, value) in SECRETS {
        ctl.keep_secret(value);
    }
    ctl.keep_secret(CALLER_DATA);
    // vaultctl's own error comes last, after any warning about a KEK left out.
    ctl.check_error_line(ErrorLine::Last);
    ctl
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

/// `args` on `vault`, with `extra` (e.g. `--kek URI`) before the command.
fn on<'a>(vault: &'a str, extra: &[&'a str], command: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--vault", vault];
    args.extend_from_slice(extra);
    args.extend_from_slice(command);
    args
}

/// Every secret and the sealed caller data read back through `extra`'s KEKs.
fn assert_reads_everything(
    ctl: &test_support::Vaultctl<'_>,
    vault: &str,
    extra: &[&str],
    sealed: &str,
) {
    for (scope, key, value) in SECRETS {
        let run = ctl.ok(&on(vault, extra, &["get", scope, key]), b"");
        assert_eq!(run.stdout(), value, "{scope} {key}");
    }
    let run = ctl.ok(&on(vault, extra, &["open", "--in", sealed]), b"");
    assert_eq!(run.stdout(), CALLER_DATA);
}

#[test]
fn a_vault_on_the_yubikey_round_trips_and_survives_a_wrong_pin_and_the_card_pulled_out() {
    let Some(mut cards) = PivCards::start("yubikey vaultctl: round trip", 1) else {
        return;
    };
    let serial = cards.card().serial();
    let dir = tempfile::tempdir().expect("a private directory");
    let dir = dir.path();
    let ctl = vaultctl(dir);
    let pin = PinFile::new(DEFAULT_PIN);
    let uri = pin.uri(Some(serial), "9d");

    let out = ctl
        .ok(&["kek", "create", &pin.uri(None, "9d")], b"")
        .stdout();
    assert!(out.contains(&format!("KEK URI: {uri}\n")), "{out}");
    ctl.fails(
        &["kek", "create", &uri],
        b"",
        &[&format!("YubiKey {serial} already holds a key in slot 9d")],
    );
    let info = ctl.ok(&["kek", "info", &uri], b"").stdout();
    for line in [
        format!("uri:                    {uri}"),
        format!("serial:                 {serial}"),
        "firmware:               5.4.3".to_owned(),
        "slot:                   9d".to_owned(),
        "pin tries left:         3".to_owned(),
    ] {
        assert!(info.contains(&line), "{line}:\n{info}");
    }
    let kek_id = info
        .lines()
        .find_map(|line| line.strip_prefix("kek id:"))
        .expect("kek info shows the KEK id")
        .trim()
        .to_owned();
    assert!(kek_id.starts_with("yubikey:"), "{kek_id}");

    let recovery = format!("file:{}", path(dir, "recovery.key"));
    let vault = path(dir, "vault");
    let out = ctl
        .ok(
            &["--vault", &vault, "init", "--kek", &uri, "--kek", &recovery],
            b"",
        )
        .stdout();
    assert!(out.contains("mode: tiered\n"), "{out}");
    assert!(out.contains(&format!("kek: {kek_id} ({uri})")), "{out}");
    for (scope, key, value) in SECRETS {
        let out = ctl
            .ok(&["--vault", &vault, "set", scope, key], value.as_bytes())
            .stdout();
        assert_eq!(out, format!("stored {scope} {key} version 1\n"));
    }
    let listed = ctl.ok(&["--vault", &vault, "list"], b"").stdout();
    for (scope, key, value) in SECRETS {
        assert!(listed.contains(scope) && listed.contains(key), "{listed}");
        assert!(!listed.contains(value), "list shows a value:\n{listed}");
    }
    let keks = ctl.ok(&["--vault", &vault, "kek", "list"], b"").stdout();
    assert!(keks.contains(&kek_id) && keks.contains(&uri), "{keks}");
    let sealed = ctl
        .ok(
            &["--vault", &vault, "seal", "--format", "json"],
            CALLER_DATA.as_bytes(),
        )
        .stdout;
    let sealed_path = path(dir, "sealed.json");
    fs::write(&sealed_path, sealed).expect("write the envelope");
    assert_reads_everything(&ctl, &vault, &[], &sealed_path);
    assert_reads_everything(&ctl, &vault, &["--kek", &uri], &sealed_path);
    assert_reads_everything(&ctl, &vault, &["--kek", &recovery], &sealed_path);

    // A wrong PIN in the file: the card's KEK says how many tries are left.
    fs::write(pin.path().join("pin"), WRONG_PIN).expect("a wrong PIN");
    ctl.fails(
        &on(&vault, &["--kek", &uri], &["get", "global", "db-password"]),
        b"",
        &["the YubiKey refused the PIN (2 tries left"],
    );
    fs::write(pin.path().join("pin"), DEFAULT_PIN).expect("the right PIN again");
    assert_reads_everything(&ctl, &vault, &["--kek", &uri], &sealed_path);
    let info = ctl.ok(&["kek", "info", &uri], b"").stdout();
    assert!(info.contains("pin tries left:         3"), "{info}");

    // The card pulled out: its KEK names the card; nothing in the vault changes; the
    // recovery KEK reads everything.
    let before = test_support::kek::snapshot(Path::new(&vault));
    cards.stop(0);
    let stderr = ctl.fails(
        &on(&vault, &["--kek", &uri], &["get", "global", "db-password"]),
        b"",
        &[&format!("no YubiKey with serial {serial} is plugged in")],
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    ctl.fails(
        &["kek", "info", &uri],
        b"",
        &[&format!("no YubiKey with serial {serial} is plugged in")],
    );
    assert_reads_everything(&ctl, &vault, &["--kek", &recovery], &sealed_path);
    assert_eq!(
        test_support::kek::snapshot(Path::new(&vault)),
        before,
        "a failed command changed the vault directory"
    );
}

#[test]
fn two_cards_and_no_serial_is_a_clear_error_naming_both() {
    let Some(cards) = PivCards::start("yubikey vaultctl: two cards", 2) else {
        return;
    };
    let dir = tempfile::tempdir().expect("a private directory");
    let ctl = vaultctl(dir.path());
    let pin = PinFile::new(DEFAULT_PIN);
    let serials: Vec<String> = cards
        .cards()
        .iter()
        .map(|c| c.serial().to_string())
        .collect();
    let expected = format!(
        "several YubiKeys are plugged in (serials {})",
        serials.join(", ")
    );
    ctl.fails(
        &["kek", "create", &pin.uri(None, "9d")],
        b"",
        &[&expected, "serial=N"],
    );
    ctl.fails(&["kek", "info", &pin.uri(None, "9d")], b"", &[&expected]);
    let vault = path(dir.path(), "vault");
    ctl.fails(
        &["--vault", &vault, "init", "--kek", &pin.uri(None, "9d")],
        b"",
        &[&expected],
    );
    let left = fs::read_dir(&vault).map(Iterator::count).unwrap_or(0);
    assert_eq!(left, 0, "a failed init left files in {vault}");
    let second = cards.cards()[1].serial();
    let out = ctl
        .ok(&["kek", "create", &pin.uri(Some(second), "9d")], b"")
        .stdout();
    assert!(
        out.contains(&format!("yubikey:serial={second};slot=9d")),
        "{out}"
    );
}

/// Someone who can write the vault directory wraps for the card's public key (no card, no
/// PIN needed): a value sealed for a secret's own context, and an epoch key of their choosing.
/// Both would open with the card; both are refused, because neither carries this vault's tag
/// or MAC.
#[test]
fn a_value_and_an_epoch_wrapped_for_the_public_key_are_refused() {
    let Some(cards) = PivCards::start("yubikey vaultctl: planted stanzas", 1) else {
        return;
    };
    let serial = cards.card().serial();
    let dir = tempfile::tempdir().expect("a private directory");
    let dir = dir.path();
    let ctl = vaultctl(dir);
    let pin = PinFile::new(DEFAULT_PIN);
    let uri = pin.uri(Some(serial), "9d");
    ctl.ok(&["kek", "create", &uri], b"");
    let recovery = format!("file:{}", path(dir, "recovery.key"));
    let attackers_kek = |vault: &str| {
        let env = kek_providers::KekEnv {
            vault_dir: Path::new(vault),
        };
        kek_providers::open(&uri, &env)
            .expect("the card's public key")
            .provider
    };

    let direct = path(dir, "direct");
    ctl.ok(
        &[
            "--vault", &direct, "init", "--mode", "direct", "--kek", &uri, "--kek", &recovery,
        ],
        b"",
    );
    let (scope, key, value) = SECRETS[0];
    ctl.ok(&["--vault", &direct, "set", scope, key], value.as_bytes());
    compliance::tamper::plant_secret(
        Path::new(&direct),
        &attackers_kek(&direct),
        (scope, key, 1),
        b"planted by someone else",
    );
    ctl.fails(
        &on(&direct, &["--kek", &uri], &["get", scope, key]),
        b"",
        &["rejected its wrapped key"],
    );

    let tiered = path(dir, "tiered");
    let recovery = format!("file:{}", path(dir, "recovery-tiered.key"));
    ctl.ok(
        &[
            "--vault", &tiered, "init", "--kek", &uri, "--kek", &recovery,
        ],
        b"",
    );
    ctl.ok(&["--vault", &tiered, "set", scope, key], value.as_bytes());
    let number = compliance::tamper::append_epoch(Path::new(&tiered), &attackers_kek(&tiered));
    let named = format!(
        "epoch {number} (its key) was added or changed by someone without this vault's keys"
    );
    ctl.fails(
        &["--vault", &tiered, "set", "global", "new"],
        b"x",
        &[&named],
    );
    ctl.fails(
        &on(&tiered, &["--kek", &uri], &["get", scope, key]),
        b"",
        &[&named],
    );
}
