//! `vaultctl init --kek auto` with the TPM unreachable (VAULTCTL_TPM_TCTI names a closed port)
//! and a private SoftHSM2 token configured in VAULTCTL_PKCS11_URI: auto generates a new
//! non-extractable key on the token (or uses the key the URI names), pins the full URI, says
//! why it skipped the TPM, and the vault round-trips secrets. A configured token that cannot
//! be used (a wrong PIN) is an error, not a fall-through to a weaker KEK. A key auto
//! generated for an init or a kek add that then fails is destroyed again, and no other
//! object with it.
#![forbid(unsafe_code)]

use kek_providers::{AutoProbe, Created, KekEnv};
use softhsm_tests::{SoftHsm, in_private_token, vaultctl_binary};
use test_support::Vaultctl;
use test_support::auto::closed_tpm_tcti;

const VALUE: &str = "sealed-under-the-auto-picked-token";
/// What `kek info` says of a key made on the token.
const CANNOT_LEAVE: &str = "cannot leave the token (sensitive and never extractable)";

/// vaultctl on the token with the TPM unreachable, no session bus and `pkcs11_uri` as
/// VAULTCTL_PKCS11_URI.
fn vaultctl<'a>(hsm: &'a SoftHsm, pkcs11_uri: &str) -> Vaultctl<'a> {
    let binary = vaultctl_binary(hsm.dir());
    let ctl = Vaultctl::new(
        move || {
            let mut command = hsm.command(&binary);
            command.env_remove("DBUS_SESSION_BUS_ADDRESS");
            command
        },
        &hsm.dir().join("home"),
    );
    ctl.keep_hidden(hsm.user_pin());
    ctl.keep_hidden(hsm.so_pin());
    ctl.keep_secret(VALUE);
    ctl.set_tpm_tcti(&closed_tpm_tcti());
    ctl.set_env("VAULTCTL_PKCS11_URI", pkcs11_uri);
    ctl
}

/// The token's URI without an object: what an operator puts in VAULTCTL_PKCS11_URI.
fn token_uri(hsm: &SoftHsm) -> String {
    hsm.kek_uri("placeholder")
        .replace(";object=placeholder", "")
}

fn round_trip(ctl: &Vaultctl<'_>, vault: &str) {
    ctl.ok(
        &["--vault", vault, "set", "global", "db-password"],
        VALUE.as_bytes(),
    );
    let got = ctl.ok(&["--vault", vault, "get", "global", "db-password"], b"");
    assert_eq!(got.stdout(), VALUE);
}

/// The one KEK URI `kek list --format json` shows.
fn pinned(ctl: &Vaultctl<'_>, vault: &str) -> String {
    let out = ctl.ok(&["--vault", vault, "kek", "list", "--format", "json"], b"");
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("kek list --format json");
    let keks = doc["keks"].as_array().expect("a keks array");
    assert_eq!(keks.len(), 1, "{doc}");
    keks[0]["uri"].as_str().expect("a uri").to_owned()
}

#[test]
fn auto_generates_a_key_on_the_configured_token_when_the_tpm_is_unreachable() {
    in_private_token(|hsm| {
        let ctl = vaultctl(hsm, &token_uri(hsm));
        let vault = hsm.dir().join("vault").display().to_string();
        let out = ctl.ok(&["--vault", &vault, "init", "--kek", "auto"], b"");

        let notes: Vec<&str> = out
            .stderr
            .lines()
            .filter(|line| line.starts_with("note: auto: skipped "))
            .collect();
        assert_eq!(notes.len(), 1, "{}", out.stderr);
        assert!(
            notes[0].starts_with("note: auto: skipped TPM: cannot reach the TPM through swtpm:"),
            "{notes:?}"
        );
        let stdout = out.stdout();
        assert!(
            stdout.contains(
                "(auto: PKCS#11 because VAULTCTL_PKCS11_URI names token \"vault-test\"; a new non-extractable AES-256 key \"vault-kek-"
            ),
            "{stdout}"
        );
        assert!(stdout.contains("mode: tiered\n"), "{stdout}");

        // The pinned URI is the token's with the new key's label; the key is on the token.
        let uri = pinned(&ctl, &vault);
        let label = uri
            .split(';')
            .find_map(|part| part.strip_prefix("object="))
            .and_then(|rest| rest.split('?').next())
            .expect("the pinned URI names the key");
        assert!(
            label.starts_with("vault-kek-") && label.len() == 22,
            "{uri}"
        );
        assert!(uri.contains("pin-source=file:"), "{uri}");
        let info = ctl.ok(&["kek", "info", &uri], b"").stdout();
        assert!(info.contains(CANNOT_LEAVE), "{info}");
        let objects = test_support::stdout_of(hsm.pkcs11_tool().args([
            "--login",
            "--pin",
            hsm.user_pin(),
            "--list-objects",
        ]));
        assert!(objects.contains(label), "{objects}");

        round_trip(&ctl, &vault);
    });
}

#[test]
fn auto_uses_the_key_the_configured_uri_names() {
    in_private_token(|hsm| {
        let existing = hsm.kek_uri("made-before");
        let ctl = vaultctl(hsm, &existing);
        ctl.ok(&["kek", "create", &existing], b"");
        let vault = hsm.dir().join("vault").display().to_string();
        let out = ctl.ok(&["--vault", &vault, "init", "--kek", "auto"], b"");
        assert!(
            out.stdout()
                .contains("(auto: PKCS#11 because VAULTCTL_PKCS11_URI names key \"made-before\" on token \"vault-test\")"),
            "{}",
            out.stdout()
        );
        assert!(pinned(&ctl, &vault).contains(";object=made-before"));
        round_trip(&ctl, &vault);
    });
}

#[test]
fn a_configured_token_that_refuses_the_pin_is_an_error_not_a_fall_through() {
    in_private_token(|hsm| {
        let wrong_pin = hsm.dir().join("wrong.pin");
        std::fs::write(&wrong_pin, "000000").expect("write the wrong PIN");
        let uri = token_uri(hsm).replace(
            &hsm.pin_file().display().to_string(),
            &wrong_pin.display().to_string(),
        );
        let ctl = vaultctl(hsm, &uri);
        let vault = hsm.dir().join("vault").display().to_string();
        ctl.fails(
            &["--vault", &vault, "init", "--kek", "auto"],
            b"",
            &["--kek auto: VAULTCTL_PKCS11_URI is set, but "],
        );
        // No vault, and no key file from a fall-through.
        assert!(!hsm.dir().join("vault/vault.json").exists());
        assert!(!hsm.dir().join("home/.config/vault/keys").exists());
    });
}

/// (label, CKA_ID in hex) of every object on the token, in pkcs11-tool's order.
fn objects(hsm: &SoftHsm) -> Vec<(String, String)> {
    let listing = test_support::stdout_of(hsm.pkcs11_tool().args([
        "--login",
        "--pin",
        hsm.user_pin(),
        "--list-objects",
    ]));
    let mut objects: Vec<(String, String)> = Vec::new();
    for line in listing.lines() {
        if !line.starts_with(' ') {
            objects.push((String::new(), String::new()));
        } else if let (Some(object), Some((name, value))) =
            (objects.last_mut(), line.split_once(':'))
        {
            match name.trim() {
                "label" => object.0 = value.trim().to_owned(),
                "ID" => object.1 = value.trim().to_owned(),
                _ => {}
            }
        }
    }
    objects
}

/// vaultctl on the token (as VAULTCTL_PKCS11_URI) whose runs must never leave a key auto made on
/// the token nor fail to destroy one, with the operator's own key made before (`kek create`):
/// no failed init or kek add may touch it. Returns the runner, the token's objects then, and
/// the vault's path.
fn beside_the_operators_key(hsm: &SoftHsm) -> (Vaultctl<'_>, Vec<(String, String)>, String) {
    let ctl = vaultctl(hsm, &token_uri(hsm));
    ctl.forbid_on_stderr("left on the token");
    ctl.forbid_on_stderr("could not destroy");
    ctl.ok(&["kek", "create", &hsm.kek_uri("made-before")], b"");
    let before = objects(hsm);
    let vault = hsm.dir().join("vault").display().to_string();
    (ctl, before, vault)
}

fn auto_keys(objects: &[(String, String)]) -> Vec<&str> {
    objects
        .iter()
        .map(|(label, _)| label.as_str())
        .filter(|label| label.starts_with("vault-kek-"))
        .collect()
}

#[test]
fn a_key_auto_generated_for_an_init_that_fails_is_destroyed_and_the_corrected_init_runs() {
    in_private_token(|hsm| {
        let (ctl, before, vault) = beside_the_operators_key(hsm);
        assert_eq!(before.len(), 1, "{before:?}");

        // auto generates its key on the token, then the second --kek fails to be created.
        let taken = hsm.dir().join("taken.key");
        std::fs::write(&taken, [7u8; 32]).expect("write a key file in the way");
        let taken_uri = format!("file:{}", taken.display());
        ctl.fails(
            &[
                "--vault", &vault, "init", "--kek", "auto", "--kek", &taken_uri,
            ],
            b"",
            &["already exists"],
        );
        assert_eq!(
            objects(hsm),
            before,
            "the failed init left the token as it was"
        );
        assert_eq!(std::fs::read(&taken).expect("the key file"), [7u8; 32]);

        // Every key is made, then the vault refuses the options: a threshold needs 2 KEKs.
        ctl.fails(
            &[
                "--vault",
                &vault,
                "init",
                "--kek",
                "auto",
                "--threshold",
                "2",
            ],
            b"",
            &["threshold"],
        );
        assert_eq!(
            objects(hsm),
            before,
            "the failed init left the token as it was"
        );
        assert!(!hsm.dir().join("vault/vault.json").exists());

        let out = ctl.ok(&["--vault", &vault, "init", "--kek", "auto"], b"");
        assert!(
            out.stdout().contains("(auto: PKCS#11 because "),
            "{}",
            out.stdout()
        );
        let after = objects(hsm);
        assert_eq!(auto_keys(&after).len(), 1, "{after:?}");
        assert!(after.contains(&before[0]), "{after:?}");
        round_trip(&ctl, &vault);
    });
}

#[test]
fn discarding_an_auto_key_destroys_only_the_object_with_its_label_and_id() {
    in_private_token(|hsm| {
        let dir = hsm.dir().join("vault");
        std::fs::create_dir(&dir).expect("vault dir");
        let probe = AutoProbe {
            tpm_tcti: Some(closed_tpm_tcti()),
            tpm_device: hsm.dir().join("no-tpmrm0"),
            pkcs11_uri: Some(token_uri(hsm)),
            session_bus: None,
            file_uri: None,
        };
        let choice = probe
            .choose(&KekEnv { vault_dir: &dir })
            .expect("auto generates a key on the token");
        let Some(Created::TokenKey { label, id, .. }) = choice.kek.created.clone() else {
            panic!("a generated token key is recorded as created: {choice:?}");
        };
        assert_eq!(id.len(), 16, "a random CKA_ID");
        let id_hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(objects(hsm), [(label.clone(), id_hex)]);

        // Another key with the same label, made outside the vault: only the id tells them apart.
        test_support::stdout_of(hsm.pkcs11_tool().args([
            "--login",
            "--pin",
            hsm.user_pin(),
            "--keygen",
            "--key-type",
            "AES:32",
            "--label",
            &label,
            "--id",
            "01",
        ]));
        assert_eq!(objects(hsm).len(), 2);

        kek_providers::discard_created(std::slice::from_ref(&choice.kek));
        let kept = [(label.clone(), "01".to_owned())];
        assert_eq!(objects(hsm), kept);
        // A second discard finds nothing of its own: a warning, and the other key stays.
        kek_providers::discard_created(std::slice::from_ref(&choice.kek));
        assert_eq!(objects(hsm), kept);
        assert!(!dir.join("vault.json").exists());
    });
}

#[test]
fn a_key_kek_add_auto_generated_for_a_vault_that_refuses_it_is_destroyed() {
    in_private_token(|hsm| {
        let (ctl, before, vault) = beside_the_operators_key(hsm);
        let (first, second) = (hsm.dir().join("first.key"), hsm.dir().join("second.key"));
        ctl.ok(
            &[
                "--vault",
                &vault,
                "init",
                "--mode",
                "tiered",
                "--kek",
                &format!("file:{}", first.display()),
                "--kek",
                &format!("file:{}", second.display()),
            ],
            b"",
        );
        // The vault opens with the first key alone, but a tiered vault wraps its epoch keys
        // under every root KEK, so it cannot take a new one while the second is missing.
        let away = hsm.dir().join("second.key.away");
        std::fs::rename(&second, &away).expect("move the second key away");
        ctl.fails(
            &["--vault", &vault, "kek", "add", "auto"],
            b"",
            &[
                "cannot wrap a new key while root KEK(s) ",
                " are not available",
            ],
        );
        assert_eq!(
            objects(hsm),
            before,
            "the failed kek add left the token as it was"
        );

        std::fs::rename(&away, &second).expect("put the second key back");
        let out = ctl.ok(&["--vault", &vault, "kek", "add", "auto"], b"");
        assert!(
            out.stdout().contains("(auto: PKCS#11 because "),
            "{}",
            out.stdout()
        );
        assert_eq!(auto_keys(&objects(hsm)).len(), 1);
        round_trip(&ctl, &vault);
    });
}
