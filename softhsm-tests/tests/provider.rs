//! The PKCS#11 KEK provider against a real (SoftHSM2) token, in process: vaults on it in
//! both wrap modes, recovery from a lost login, concurrency, PIN handling, the errors that
//! name what is missing, a key deleted from the token, tampered stanzas, and `pin-value`.
//!
//! Every test body runs in a child process with a private token
//! (`softhsm_tests::in_private_token`).
#![forbid(unsafe_code)]

use std::fs;
use std::path::Path;
use std::sync::Arc;

use envelope::{Dek, EnvelopeRef, Health, KekProvider};
use kek_providers::pkcs11::{self, Pkcs11Kek, WrapMechanism};
use kek_providers::{Error, KekEnv};
use softhsm_tests::{SoftHsm, in_private_token};
use test_support::kek::{
    AAD, assert_tampered_stored_stanza_is_rejected, concurrent_round_trips, options, registry_kek,
    round_trip, snapshot, stanza, unwrap,
};
use test_support::stdout_of;
use vault::{StoreKind, Vault, WrapMode};

/// What `open_kek` says for a token refusing a wrong PIN.
const PIN_INCORRECT: &str = "CKR_PIN_INCORRECT";
const WRONG_PIN: &str = "not-the-pin-4711";

// ---------------------------------------------------------------------------------------
// Helpers

/// `uri` asking for `mechanism` (AES-GCM is the default: its URI says nothing).
fn with_mechanism(uri: &str, mechanism: WrapMechanism) -> String {
    match mechanism {
        WrapMechanism::AesGcm => uri.to_owned(),
        other => format!("{uri}&x-mechanism={other}"),
    }
}

/// The canonical form of `hsm.kek_uri(object)` with `mechanism`: what a vault pins.
fn canonical_uri(hsm: &SoftHsm, object: &str, mechanism: WrapMechanism) -> String {
    let mechanism = match mechanism {
        WrapMechanism::AesGcm => String::new(),
        other => format!("&x-mechanism={other}"),
    };
    format!(
        "pkcs11:token={};object={object}?pin-source=file:{}&module-path={}{mechanism}",
        hsm.token_label(),
        hsm.pin_file().display(),
        hsm.module_path().display(),
    )
}

/// A URI for `object` that gives the PIN with `pin-value` instead of a PIN file.
fn pin_value_uri(hsm: &SoftHsm, object: &str, pin: &str) -> String {
    format!(
        "pkcs11:token={};object={object}?module-path={}&pin-value={pin}",
        hsm.token_label(),
        hsm.module_path().display(),
    )
}

/// Generates the key `uri` names on the token.
fn create_key(uri: &str) {
    pkcs11::create_key(uri).unwrap_or_else(|e| panic!("create the key of {uri}: {e}"));
}

fn open_kek(uri: &str) -> Pkcs11Kek {
    pkcs11::open_kek(uri).unwrap_or_else(|e| panic!("open {uri}: {e}"))
}

/// The error opening `uri` gives (panics if it opens).
fn open_error(uri: &str) -> Error {
    pkcs11::open_kek(uri).expect_err("the KEK must not open")
}

/// A recovery KEK: a key file made through the registry.
fn recovery_kek(path: &Path, vault_dir: &Path) -> vault::Kek {
    registry_kek(&format!("file:{}", path.display()), vault_dir)
}

fn get(vault: &Vault, scope: &str, key: &str, version: Option<u64>) -> Vec<u8> {
    vault
        .get(scope, key, version)
        .unwrap_or_else(|e| panic!("get {scope}/{key} {version:?}: {e}"))
        .expose_secret()
        .to_vec()
}

/// The token's flags as `pkcs11-tool -T` lists them (read from the token files by another
/// process, so they are what the token itself records).
fn token_flags(hsm: &SoftHsm) -> String {
    let listing = stdout_of(hsm.pkcs11_tool().arg("--list-token-slots"));
    let flags: Vec<&str> = listing
        .lines()
        .filter_map(|line| line.trim().strip_prefix("token flags"))
        .collect();
    assert_eq!(flags.len(), 1, "one token: {listing}");
    flags[0].trim_start_matches([' ', ':']).to_owned()
}

/// Logs in with the right PIN from another process (`pkcs11-tool --login`), which also
/// clears the token's "user PIN count low" flag.
fn log_in_with_tool(hsm: &SoftHsm) {
    stdout_of(
        hsm.pkcs11_tool()
            .args(["--login", "--pin", hsm.user_pin(), "--list-objects"]),
    );
}

/// Deletes the secret key labelled `label` from the token with `pkcs11-tool`.
fn delete_key_with_tool(hsm: &SoftHsm, label: &str) {
    stdout_of(hsm.pkcs11_tool().args([
        "--login",
        "--pin",
        hsm.user_pin(),
        "--delete-object",
        "--type",
        "secrkey",
        "--label",
        label,
    ]));
}

/// The message of a KEK call of `kek` that failed (not a rejected stanza).
fn kek_failure(result: Result<impl Sized, envelope::Error>, kek: &Pkcs11Kek) -> String {
    test_support::kek::kek_failure(result, &kek.id().to_string())
}

fn assert_hides_pins(text: &str, hsm: &SoftHsm) {
    for pin in [hsm.user_pin(), hsm.so_pin(), WRONG_PIN] {
        assert!(!text.contains(pin), "shows a PIN: {text}");
    }
}

// ---------------------------------------------------------------------------------------
// Vaults on the token

/// A vault in `mode` whose only root KEK is the PKCS#11 KEK with `mechanism`: set, get,
/// list, delete, seal_data and open_data; then a new instance, built from the URI pinned in
/// vault.json, reads everything back.
fn vault_round_trip(hsm: &SoftHsm, mode: WrapMode, mechanism: WrapMechanism) {
    let uri = with_mechanism(&hsm.kek_uri("vault-kek"), mechanism);
    create_key(&uri);
    let dir = hsm.dir().join("vault");
    let kek = registry_kek(&uri, &dir);
    let canonical = canonical_uri(hsm, "vault-kek", mechanism);
    assert_eq!(kek.uri, canonical);
    assert_eq!(
        kek.provider.id().to_string(),
        "pkcs11:vault-test/vault-kek#v1"
    );
    let vault = Vault::init_with(&dir, &options(mode), vec![kek]).expect("init the vault");
    // Token calls leave the process: a daemon must run them on its pool, with a deadline.
    assert!(!vault.keks_are_software());

    assert_eq!(
        vault.set("global", "db.password", b"hunter2").expect("set"),
        1
    );
    assert_eq!(
        vault.set("global", "db.password", b"hunter3").expect("set"),
        2
    );
    assert_eq!(
        vault
            .set("principal:alice", "token", b"a-token")
            .expect("set"),
        1
    );
    vault.set("global", "doomed", b"x").expect("set");
    assert_eq!(get(&vault, "global", "db.password", None), b"hunter3");
    assert_eq!(get(&vault, "global", "db.password", Some(1)), b"hunter2");
    vault.delete("global", "doomed").expect("delete");
    assert!(matches!(
        vault.get("global", "doomed", None),
        Err(vault::Error::NotFound { .. })
    ));
    let listed: Vec<(String, String, u64)> = vault
        .list(None)
        .expect("list")
        .into_iter()
        .map(|info| (info.scope, info.key, info.versions))
        .collect();
    assert_eq!(
        listed,
        [
            ("global".into(), "db.password".into(), 2),
            ("principal:alice".into(), "token".into(), 1)
        ]
    );
    let sealed = vault
        .seal_data("billing", None, b"caller data")
        .expect("seal_data");
    assert_eq!(
        vault
            .open_data("billing", None, &sealed)
            .expect("open_data")
            .expose_secret(),
        b"caller data"
    );
    assert!(vault.open_data("other-context", None, &sealed).is_err());
    drop(vault);

    let config = Vault::read_config(&dir).expect("read vault.json");
    assert_eq!(config.mode, mode);
    assert_eq!(config.kek_uris(), std::slice::from_ref(&canonical));
    let marker = fs::read_to_string(dir.join(vault::CONFIG_FILE)).expect("vault.json");
    assert_hides_pins(&marker, hsm);
    // Where the token's wraps live: in every stored envelope (direct), or in the epoch
    // keys of vault.json (tiered).
    let store = vault::open_store(StoreKind::Sqlite, &dir).expect("open the store");
    let scanned = store.scan(None, 64).expect("scan the store");
    let stored = &scanned
        .iter()
        .rfind(|v| v.key == "db.password")
        .expect("stored envelope")
        .envelope;
    let kinds: Vec<String> = EnvelopeRef::parse(stored)
        .expect("parse the envelope")
        .stanzas()
        .map(|s| s.kind.to_owned())
        .collect();
    match mode {
        WrapMode::Direct => {
            assert_eq!(kinds, ["pkcs11"]);
            assert!(config.epochs.is_empty());
        }
        WrapMode::Tiered => {
            assert!(!kinds.contains(&"pkcs11".to_owned()), "{kinds:?}");
            let epoch = config.epochs.first().expect("an epoch").key_bytes();
            let epoch = epoch.expect("epoch key bytes");
            let parsed = EnvelopeRef::parse(&epoch).expect("parse the epoch key");
            let stanzas: Vec<String> = parsed.stanzas().map(|s| s.describe()).collect();
            assert_eq!(stanzas, ["pkcs11:vault-test/vault-kek#v1"]);
        }
    }
    drop(store);

    // A new process would build the pinned KEKs from vault.json.
    let keks = vault::Kek::build_all(&dir, &[]).expect("build the pinned KEK");
    assert_eq!(keks.len(), 1);
    assert_eq!(keks[0].uri, canonical);
    let reopened = Vault::open(&dir, Some(StoreKind::Sqlite), keks).expect("reopen");
    assert_eq!(get(&reopened, "global", "db.password", None), b"hunter3");
    assert_eq!(get(&reopened, "global", "db.password", Some(1)), b"hunter2");
    assert_eq!(get(&reopened, "principal:alice", "token", None), b"a-token");
    assert_eq!(
        reopened
            .open_data("billing", None, &sealed)
            .expect("open_data after reopen")
            .expose_secret(),
        b"caller data"
    );
    assert_eq!(
        reopened.set("global", "db.password", b"h4").expect("set"),
        3
    );
    assert_eq!(get(&reopened, "global", "db.password", None), b"h4");
}

#[test]
fn direct_vault_with_aes_gcm() {
    in_private_token(|hsm| vault_round_trip(hsm, WrapMode::Direct, WrapMechanism::AesGcm));
}

#[test]
fn direct_vault_with_aes_key_wrap_pad() {
    in_private_token(|hsm| {
        vault_round_trip(hsm, WrapMode::Direct, WrapMechanism::AesKeyWrapPad);
    });
}

#[test]
fn tiered_vault_with_aes_gcm() {
    in_private_token(|hsm| vault_round_trip(hsm, WrapMode::Tiered, WrapMechanism::AesGcm));
}

#[test]
fn tiered_vault_with_aes_key_wrap_pad() {
    in_private_token(|hsm| {
        vault_round_trip(hsm, WrapMode::Tiered, WrapMechanism::AesKeyWrapPad);
    });
}

// ---------------------------------------------------------------------------------------
// The key and its stanzas

/// What a daemon may run on its async workers: a tiered vault on the token seals and opens
/// with its epoch key alone once it holds a lease of wraps, renews that lease ahead of need
/// without ever wrapping past it, and goes to the token (outside `without_devices`) only
/// to start the lease; a direct vault on the token never runs without it.
#[test]
fn calls_that_need_only_keys_in_memory_run_without_the_token() {
    in_private_token(|hsm| {
        let uri = hsm.kek_uri("vault-kek");
        create_key(&uri);
        let dir = hsm.dir().join("tiered");
        let kek = registry_kek(&uri, &dir);
        let vault = Vault::init_with(&dir, &options(WrapMode::Tiered), vec![kek]).expect("init");
        let lease = 8;
        vault.set_epoch_lease(lease);
        let seal = |v: &Vault| v.seal_data("ctx", None, b"payload");

        // No lease yet: sealing would write vault.json; it is left for the pool.
        assert!(vault.epoch_lease_low());
        assert!(vault.without_devices(seal).is_none());
        let first = seal(&vault).expect("seal where the token may be used");
        let opened = vault
            .without_devices(|v| v.open_data("ctx", None, &first))
            .expect("the epoch key is in memory")
            .expect("open");
        assert_eq!(opened.expose_secret(), b"payload");

        // The rest of the lease seals in memory; the last quarter asks for a renewal ahead.
        let mut sealed = vec![first];
        for n in 1..lease {
            assert_eq!(vault.epoch_lease_low(), n > lease - lease / 4, "after {n}");
            let envelope = vault.without_devices(seal).expect("within the lease");
            sealed.push(envelope.expect("seal"));
        }
        assert!(vault.epoch_lease_low());
        // Exhausted: the next seal would renew, so it is not run here.
        assert!(vault.without_devices(seal).is_none());
        vault.renew_epoch_lease().expect("renew ahead");
        assert!(!vault.epoch_lease_low());
        for _ in 0..lease / 2 {
            sealed.push(vault.without_devices(seal).expect("renewed").expect("seal"));
        }
        // Every wrap was leased first: vault.json reserves at least as many as were made.
        let config = Vault::read_config(&dir).expect("vault.json");
        let reserved: u64 = config.epochs.iter().map(|e| e.wraps_reserved).sum();
        assert!(reserved >= sealed.len() as u64, "{reserved} reserved");
        assert_eq!(reserved, 2 * lease, "two leases");
        for envelope in &sealed {
            let opened = vault
                .without_devices(|v| v.open_data("ctx", None, envelope))
                .expect("in memory")
                .expect("open");
            assert_eq!(opened.expose_secret(), b"payload");
        }

        let dir = hsm.dir().join("direct");
        let kek = registry_kek(&uri, &dir);
        let vault = Vault::init_with(&dir, &options(WrapMode::Direct), vec![kek]).expect("init");
        assert!(!vault.epoch_lease_low(), "no epochs in direct mode");
        assert!(vault.without_devices(seal).is_none());
        let envelope = seal(&vault).expect("seal on the token");
        assert!(
            vault
                .without_devices(|v| v.open_data("ctx", None, &envelope))
                .is_none()
        );
        vault.renew_epoch_lease().expect("a no-op in direct mode");
    });
}

#[test]
fn a_created_key_cannot_leave_the_token() {
    in_private_token(|hsm| {
        let uri = hsm.kek_uri("kek-1");
        create_key(&uri);
        let info = pkcs11::key_info(&uri).expect("key info");
        assert_eq!(info.label, "kek-1");
        assert_eq!(info.key_type, "CKK_AES");
        assert_eq!(info.value_len, 32);
        assert_eq!(info.id.len(), 32, "a random 16-byte id: {}", info.id);
        assert!(info.token && info.private && info.sensitive && info.always_sensitive);
        assert!(!info.extractable && info.never_extractable && info.local);
        assert_eq!(info.encrypt_decrypt, (true, true));
        assert_eq!(info.wrap_unwrap, (true, true));
        assert!(info.cannot_leave_token());
        assert!(
            info.to_string().contains("cannot leave the token"),
            "{info}"
        );
        match pkcs11::create_key(&uri) {
            Err(Error::Pkcs11KeyExists { object, token }) => {
                assert_eq!((object.as_str(), token.as_str()), ("kek-1", "vault-test"));
            }
            other => panic!("a second create_key must refuse, got {other:?}"),
        }
        let kek = open_kek(&uri);
        let assurance = kek.assurance();
        assert!(assurance.non_exportable, "{assurance:?}");
        assert!(
            !assurance.hardware,
            "SoftHSM is no hardware slot: {assurance:?}"
        );
        assert_eq!(kek.health(), Health::Ok);
    });
}

#[test]
fn stanzas_record_their_mechanism_and_open_with_either_setting() {
    in_private_token(|hsm| {
        let uri = hsm.kek_uri("kek-1");
        create_key(&uri);
        let gcm = open_kek(&uri);
        let kwp = open_kek(&with_mechanism(&uri, WrapMechanism::AesKeyWrapPad));
        assert_eq!(gcm.mechanism(), WrapMechanism::AesGcm, "the default");
        assert_eq!(kwp.mechanism(), WrapMechanism::AesKeyWrapPad);
        assert_eq!(gcm.id(), kwp.id(), "the same key, whatever the mechanism");
        let dek = Dek::generate().expect("a DEK");
        let gcm_body = gcm.wrap(&dek, AAD).expect("wrap with AES-GCM");
        let kwp_body = kwp.wrap(&dek, AAD).expect("wrap with AES key wrap");
        assert_eq!((gcm_body.len(), gcm_body[0]), (61, 1));
        assert_eq!((kwp_body.len(), kwp_body[0]), (73, 2));
        for kek in [&gcm, &kwp] {
            for body in [&gcm_body, &kwp_body] {
                let back = unwrap(kek, body).expect("unwrap either mechanism's stanza");
                assert_eq!(back.expose_secret(), dek.expose_secret());
            }
        }
        // AES-GCM stanzas use a fresh IV: wrapping the same DEK twice differs.
        assert_ne!(gcm.wrap(&dek, AAD).expect("wrap"), gcm_body);
    });
}

/// Every single-byte change of a stanza body is `StanzaRejected` naming the KEK, never
/// another error (a KEK failure would send an operator looking at a healthy HSM).
fn every_flip_is_stanza_rejected(kek: &Pkcs11Kek) {
    let dek = Dek::generate().expect("a DEK");
    let body = kek.wrap(&dek, AAD).expect("wrap");
    for at in 0..body.len() {
        for mask in [0x01u8, 0x80] {
            let mut flipped = body.clone();
            flipped[at] ^= mask;
            match unwrap(kek, &flipped) {
                Err(envelope::Error::StanzaRejected { kek: id }) => {
                    assert_eq!(id, kek.id().to_string());
                }
                Err(other) => panic!("byte {at} ^ {mask:#04x}: {other:?}, not StanzaRejected"),
                Ok(_) => panic!("byte {at} ^ {mask:#04x}: unwrapped"),
            }
        }
    }
    // The KEK still works after all those rejections.
    round_trip(kek);
}

/// A vault (direct mode) whose stored envelope has one byte of its PKCS#11 stanza body
/// flipped: `get` is `StanzaRejected`, and the untouched neighbour still reads.
fn tampered_stored_stanza(hsm: &SoftHsm, mechanism: WrapMechanism) {
    let uri = with_mechanism(&hsm.kek_uri("kek-1"), mechanism);
    create_key(&uri);
    let kek = open_kek(&uri);
    every_flip_is_stanza_rejected(&kek);

    assert_tampered_stored_stanza_is_rejected(
        &hsm.dir().join("vault"),
        &uri,
        "pkcs11:vault-test/kek-1#v1",
        |body| body.len() / 2,
    );
}

#[test]
fn tampered_stanza_is_rejected_with_aes_gcm() {
    in_private_token(|hsm| tampered_stored_stanza(hsm, WrapMechanism::AesGcm));
}

#[test]
fn tampered_stanza_is_rejected_with_aes_key_wrap_pad() {
    in_private_token(|hsm| tampered_stored_stanza(hsm, WrapMechanism::AesKeyWrapPad));
}

// ---------------------------------------------------------------------------------------
// Sessions: recovery and concurrency

#[test]
fn a_lost_login_is_recovered() {
    in_private_token(|hsm| {
        let uri = hsm.kek_uri("kek-1");
        create_key(&uri);
        let kek = open_kek(&uri);
        let dek = Dek::generate().expect("a DEK");
        let body = kek.wrap(&dek, AAD).expect("wrap");

        kek.log_out_everywhere().expect("log out");
        let back = unwrap(&kek, &body).expect("unwrap after the logout");
        assert_eq!(back.expose_secret(), dek.expose_secret());
        round_trip(&kek);

        kek.log_out_everywhere().expect("log out");
        round_trip(&kek);
        kek.log_out_everywhere().expect("log out");
        assert_eq!(kek.health(), Health::Ok);

        // The logout is real: the next call must log in again, and cannot while the PIN
        // file is away. A PIN that cannot be read is not a refused PIN: once the file is
        // back, the KEK works again.
        kek.log_out_everywhere().expect("log out");
        let away = hsm.dir().join("user.pin.away");
        fs::rename(hsm.pin_file(), &away).expect("move the PIN file away");
        let reason = kek_failure(kek.wrap(&dek, AAD), &kek);
        assert!(
            reason.contains(&hsm.pin_file().display().to_string()),
            "names the PIN file: {reason}"
        );
        fs::rename(&away, hsm.pin_file()).expect("put the PIN file back");
        let back = unwrap(&kek, &body).expect("unwrap once the PIN file is back");
        assert_eq!(back.expose_secret(), dek.expose_secret());
        round_trip(&kek);
    });
}

#[test]
fn four_threads_share_one_kek() {
    in_private_token(|hsm| {
        let uri = hsm.kek_uri("kek-1");
        create_key(&uri);
        for mechanism in [WrapMechanism::AesGcm, WrapMechanism::AesKeyWrapPad] {
            let kek = Arc::new(open_kek(&with_mechanism(&uri, mechanism)));
            concurrent_round_trips(&kek, 4, 200, |_, _, _| {});
        }
    });
}

#[test]
fn four_threads_recover_from_a_logout_mid_run() {
    in_private_token(|hsm| {
        let uri = hsm.kek_uri("kek-1");
        create_key(&uri);
        let kek = Arc::new(open_kek(&uri));
        concurrent_round_trips(&kek, 4, 200, |kek, thread, round| {
            // The first thread logs every session out, while the others are mid-call.
            if thread == 0 && round == 100 {
                kek.log_out_everywhere().expect("log out");
            }
        });
        assert_eq!(kek.health(), Health::Ok);
    });
}

// ---------------------------------------------------------------------------------------
// PINs

#[test]
fn a_wrong_pin_is_refused_naming_its_source_and_never_locks_the_token() {
    in_private_token(|hsm| {
        let uri = hsm.kek_uri("kek-1");
        create_key(&uri);
        let wrong_value = pin_value_uri(hsm, "kek-1", WRONG_PIN);
        for attempt in 1..=3 {
            let error = open_error(&wrong_value);
            let Error::Pkcs11Pin {
                token,
                source_name,
                rv,
            } = &error
            else {
                panic!("attempt {attempt}: expected Pkcs11Pin, got {error}");
            };
            assert_eq!(token, "vault-test");
            assert_eq!(source_name, "pin-value in the URI");
            assert_eq!(rv, PIN_INCORRECT);
            let message = error.to_string();
            assert!(message.contains("pin-value in the URI"), "{message}");
            assert_hides_pins(&message, hsm);
            assert_hides_pins(&format!("{error:?}"), hsm);
        }

        let wrong_file = hsm.dir().join("wrong.pin");
        fs::write(&wrong_file, format!("{WRONG_PIN}\n")).expect("write a wrong PIN file");
        let file_uri = hsm.kek_uri("kek-1").replace(
            &hsm.pin_file().display().to_string(),
            &wrong_file.display().to_string(),
        );
        let error = open_error(&file_uri);
        assert!(matches!(error, Error::Pkcs11Pin { .. }), "{error}");
        let message = error.to_string();
        assert!(
            message.contains(&format!("file {}", wrong_file.display())),
            "names the PIN file: {message}"
        );
        assert_hides_pins(&message, hsm);

        // Four wrong PINs later the right one still logs in: the token is not locked.
        let flags = token_flags(hsm);
        assert!(flags.contains("user PIN count low"), "{flags}");
        assert!(!flags.contains("locked"), "{flags}");
        let kek = open_kek(&uri);
        round_trip(&kek);
        let flags = token_flags(hsm);
        assert!(
            !flags.contains("count low") && !flags.contains("locked"),
            "{flags}"
        );
    });
}

#[test]
fn a_refused_pin_is_never_tried_again() {
    in_private_token(|hsm| {
        let uri = hsm.kek_uri("kek-1");
        create_key(&uri);
        let kek = open_kek(&uri);
        let dek = Dek::generate().expect("a DEK");
        let body = kek.wrap(&dek, AAD).expect("wrap");
        assert!(!token_flags(hsm).contains("count low"));

        // The PIN changes under the open KEK, and the token logs it out.
        fs::write(hsm.pin_file(), WRONG_PIN).expect("write a wrong PIN");
        kek.log_out_everywhere().expect("log out");
        let expected = Error::Pkcs11Pin {
            token: "vault-test".into(),
            source_name: format!("file {}", hsm.pin_file().display()),
            rv: PIN_INCORRECT.into(),
        }
        .to_string();
        assert_eq!(kek_failure(kek.wrap(&dek, AAD), &kek), expected);
        // The token saw that one wrong login...
        assert!(token_flags(hsm).contains("user PIN count low"));
        // ...and forgets it after a right one (from another process).
        log_in_with_tool(hsm);
        assert!(!token_flags(hsm).contains("count low"));

        for _ in 0..5 {
            assert_eq!(kek_failure(kek.wrap(&dek, AAD), &kek), expected);
            assert_eq!(
                kek_failure(kek.unwrap(&stanza(&kek, &body), AAD).expect("mine"), &kek),
                expected
            );
            assert_eq!(kek.health(), Health::Failed(expected.clone()));
        }
        // Not one more C_Login with the wrong PIN: the token would have flagged it.
        let flags = token_flags(hsm);
        assert!(
            !flags.contains("count low") && !flags.contains("locked"),
            "{flags}"
        );

        // Even with the right PIN back, this KEK does not try again; opening it again does.
        fs::write(hsm.pin_file(), hsm.user_pin()).expect("write the right PIN");
        assert_eq!(kek_failure(kek.wrap(&dek, AAD), &kek), expected);
        let reopened = open_kek(&uri);
        let back = unwrap(&reopened, &body).expect("unwrap with the reopened KEK");
        assert_eq!(back.expose_secret(), dek.expose_secret());
    });
}

#[test]
fn a_wrong_pin_is_refused_while_another_kek_keeps_the_token_logged_in() {
    in_private_token(|hsm| {
        let uri = hsm.kek_uri("kek-1");
        create_key(&uri);
        let logged_in = open_kek(&uri);
        // The token answers this C_Login with CKR_USER_ALREADY_LOGGED_IN without looking
        // at the PIN; the provider compares it with the PIN that logged in.
        let error = open_error(&pin_value_uri(hsm, "kek-1", WRONG_PIN));
        let Error::Pkcs11Pin { rv, .. } = &error else {
            panic!("expected Pkcs11Pin, got {error}");
        };
        assert!(
            rv.contains("other than the one this process logged in with"),
            "{rv}"
        );
        assert_hides_pins(&error.to_string(), hsm);
        // The right PIN, given another way, is accepted alongside.
        let same_pin = open_kek(&pin_value_uri(hsm, "kek-1", hsm.user_pin()));
        round_trip(&same_pin);
        round_trip(&logged_in);
    });
}

#[test]
fn an_unreadable_pin_source_is_named_in_pin_terms() {
    in_private_token(|hsm| {
        let uri = hsm.kek_uri("kek-1");
        create_key(&uri);
        let missing = hsm.dir().join("no-such.pin");
        let missing_uri = uri.replace(
            &hsm.pin_file().display().to_string(),
            &missing.display().to_string(),
        );
        let message = open_error(&missing_uri).to_string();
        assert!(
            message.contains(&format!("PIN file {} does not exist", missing.display()))
                && message.contains("pin-source=file:"),
            "{message}"
        );
        let empty = hsm.dir().join("empty.pin");
        fs::write(&empty, "").expect("write an empty PIN file");
        let empty_uri = uri.replace(
            &hsm.pin_file().display().to_string(),
            &empty.display().to_string(),
        );
        let message = open_error(&empty_uri).to_string();
        assert!(
            message.contains("the PIN from file") && message.contains("is empty"),
            "{message}"
        );
        assert!(!message.contains("passphrase"), "{message}");
    });
}

#[test]
fn pin_value_works_and_is_never_pinned() {
    in_private_token(|hsm| {
        let uri = pin_value_uri(hsm, "kek-pv", hsm.user_pin());
        create_key(&uri);
        let kek = open_kek(&uri);
        round_trip(&kek);
        assert_hides_pins(&format!("{kek:?} {kek:#?}"), hsm);

        let dir = hsm.dir().join("vault");
        let root = registry_kek(&uri, &dir);
        assert_eq!(
            root.uri,
            format!(
                "pkcs11:token=vault-test;object=kek-pv?module-path={}",
                hsm.module_path().display()
            )
        );
        assert_hides_pins(&format!("{root:?}"), hsm);
        let vault = Vault::init_with(&dir, &options(WrapMode::Direct), vec![root]).expect("init");
        vault.set("global", "k", b"value").expect("set");
        assert_eq!(get(&vault, "global", "k", None), b"value");
        drop(vault);
        drop(kek);

        for file in compliance::files_below(&dir) {
            let bytes = fs::read(&file).expect("read a vault file");
            assert!(
                !bytes
                    .windows(hsm.user_pin().len())
                    .any(|w| w == hsm.user_pin().as_bytes()),
                "the PIN is in {}",
                file.display()
            );
        }
        let config = Vault::read_config(&dir).expect("vault.json");
        assert!(config.kek_uris().iter().all(|u| !u.contains("pin-value")));
        // The pinned URI has no PIN, so it cannot log in by itself.
        match vault::Kek::build_all(&dir, &[]) {
            Err(vault::Error::Kek(Error::Pkcs11PinNeeded { token })) => {
                assert_eq!(token, "vault-test");
            }
            other => panic!("expected Pkcs11PinNeeded, got {other:?}"),
        }
        // With the PIN given again, the vault opens.
        let vault = Vault::open(&dir, None, vec![registry_kek(&uri, &dir)]).expect("open");
        assert_eq!(get(&vault, "global", "k", None), b"value");
    });
}

// ---------------------------------------------------------------------------------------
// What is missing is named

#[test]
fn a_missing_module_is_named() {
    in_private_token(|hsm| {
        let missing = hsm.dir().join("no-such-module.so");
        let uri = hsm.kek_uri("kek-1").replace(
            &hsm.module_path().display().to_string(),
            &missing.display().to_string(),
        );
        assert!(uri.contains("no-such-module.so"), "{uri}");
        for error in [
            open_error(&uri),
            kek_providers::open(
                &uri,
                &KekEnv {
                    vault_dir: hsm.dir(),
                },
            )
            .expect_err("the registry must not open it"),
        ] {
            match &error {
                Error::Pkcs11Module { path, .. } => assert_eq!(path, &missing),
                other => panic!("expected Pkcs11Module, got {other}"),
            }
            let message = error.to_string();
            assert!(
                message.contains(&missing.display().to_string()),
                "{message}"
            );
        }
    });
}

#[test]
fn an_unknown_token_lists_the_tokens_present() {
    in_private_token(|hsm| {
        let uri = hsm
            .kek_uri("kek-1")
            .replace("token=vault-test", "token=no-such-token");
        let error = open_error(&uri);
        match &error {
            Error::Pkcs11Token {
                problem, present, ..
            } => {
                assert!(problem.contains("no-such-token"), "{problem}");
                assert_eq!(present, "\"vault-test\"");
            }
            other => panic!("expected Pkcs11Token, got {other}"),
        }
        let message = error.to_string();
        assert!(message.contains("SOFTHSM2_CONF"), "{message}");
        assert!(matches!(
            pkcs11::create_key(&uri),
            Err(Error::Pkcs11Token { .. })
        ));
    });
}

#[test]
fn an_unknown_key_is_named() {
    in_private_token(|hsm| {
        let uri = hsm.kek_uri("never-made");
        let env = KekEnv {
            vault_dir: hsm.dir(),
        };
        for error in [
            open_error(&uri),
            pkcs11::key_info(&uri).expect_err("no key info for a missing key"),
            // The registry's `create` (vault init) opens a key made beforehand; it never
            // generates one.
            kek_providers::create(&uri, &env).expect_err("create must not generate a key"),
            pkcs11::key_info(&uri).expect_err("still no key after the registry's create"),
        ] {
            match &error {
                Error::Pkcs11KeyNotFound { object, token } => {
                    assert_eq!(
                        (object.as_str(), token.as_str()),
                        ("never-made", "vault-test")
                    );
                }
                other => panic!("expected Pkcs11KeyNotFound, got {other}"),
            }
            assert!(error.to_string().contains("\"never-made\""), "{error}");
        }
    });
}

#[test]
fn a_deleted_kek_leaves_the_vault_to_its_recovery_kek() {
    in_private_token(|hsm| {
        let uri = hsm.kek_uri("kek-del");
        create_key(&uri);
        let dir = hsm.dir().join("vault");
        let recovery_key = hsm.dir().join("recovery.key");
        let keks = vec![registry_kek(&uri, &dir), recovery_kek(&recovery_key, &dir)];
        let vault = Vault::init_with(&dir, &options(WrapMode::Direct), keks).expect("init");
        let secrets: Vec<(String, String, Vec<u8>)> = (0..10)
            .map(|i| {
                let scope = if i % 2 == 0 {
                    "global"
                } else {
                    "principal:bob"
                };
                (
                    scope.to_owned(),
                    format!("key-{i}"),
                    format!("value {i}").into_bytes(),
                )
            })
            .collect();
        for (scope, key, value) in &secrets {
            vault.set(scope, key, value).expect("set");
        }
        let sealed = vault
            .seal_data("ctx", None, b"sealed data")
            .expect("seal_data");
        drop(vault);

        delete_key_with_tool(hsm, "kek-del");
        let before = snapshot(&dir);
        assert!(
            before.keys().any(|p| p.ends_with(vault::CONFIG_FILE)),
            "{before:?}"
        );

        let missing = |error: &Error| match error {
            Error::Pkcs11KeyNotFound { object, token } => {
                assert_eq!((object.as_str(), token.as_str()), ("kek-del", "vault-test"));
                assert!(error.to_string().contains("\"kek-del\""), "{error}");
            }
            other => panic!("expected Pkcs11KeyNotFound, got {other}"),
        };
        missing(&open_error(&uri));
        missing(
            &kek_providers::open(&uri, &KekEnv { vault_dir: &dir })
                .expect_err("the registry must not open it"),
        );
        match vault::Kek::build_all(
            &dir,
            &[canonical_uri(hsm, "kek-del", WrapMechanism::AesGcm)],
        ) {
            Err(vault::Error::Kek(error)) => missing(&error),
            other => panic!("expected the missing key, got {other:?}"),
        }
        // As `vaultctl` opens it, from the pinned URIs, while the recovery key is away too.
        let away = hsm.dir().join("recovery.key.away");
        fs::rename(&recovery_key, &away).expect("move the recovery key away");
        match vault::Kek::build_all(&dir, &[]) {
            Err(error @ vault::Error::NoKekOpened { .. }) => {
                let text = error.to_string();
                assert!(text.contains("\"kek-del\""), "{text}");
                assert!(text.contains("recovery.key"), "{text}");
            }
            other => panic!("expected both KEKs' failures, got {other:?}"),
        }
        fs::rename(&away, &recovery_key).expect("put the recovery key back");
        assert_eq!(
            snapshot(&dir),
            before,
            "the failing opens changed the vault directory"
        );

        // The pinned KEKs without the deleted one: the recovery KEK alone.
        let keks = vault::Kek::build_all(&dir, &[]).expect("build the pinned KEKs");
        let uris: Vec<&str> = keks.iter().map(|k| k.uri.as_str()).collect();
        assert_eq!(uris, [format!("file:{}", recovery_key.display())]);
        let vault = Vault::open(&dir, None, keks).expect("open with the recovery KEK");
        for (scope, key, value) in &secrets {
            assert_eq!(&get(&vault, scope, key, None), value);
        }
        assert_eq!(
            vault
                .open_data("ctx", None, &sealed)
                .expect("open_data")
                .expose_secret(),
            b"sealed data"
        );
    });
}

#[test]
fn a_kek_deleted_while_open_fails_by_name_and_the_other_kek_reads_on() {
    in_private_token(|hsm| {
        let uri = hsm.kek_uri("kek-del");
        create_key(&uri);
        let dir = hsm.dir().join("vault");
        let pkcs11_kek = registry_kek(&uri, &dir);
        let provider = Arc::clone(&pkcs11_kek.provider);
        let keks = vec![
            pkcs11_kek,
            recovery_kek(&hsm.dir().join("recovery.key"), &dir),
        ];
        let mut vault = Vault::init_with(&dir, &options(WrapMode::Direct), keks).expect("init");
        vault.set_cache_ttl(std::time::Duration::ZERO);
        vault.set("global", "k", b"value").expect("set");
        assert_eq!(provider.health(), Health::Ok);

        delete_key_with_tool(hsm, "kek-del");
        match provider.health() {
            Health::Failed(reason) => assert!(reason.contains("\"kek-del\""), "{reason}"),
            other => panic!("expected a failed health naming the key, got {other:?}"),
        }
        // Opening tries the PKCS#11 stanza, then the recovery KEK's.
        assert_eq!(get(&vault, "global", "k", None), b"value");
        // Sealing needs every root KEK (direct mode): it fails, naming the missing key.
        match vault.set("global", "k", b"new value") {
            Err(vault::Error::Envelope(envelope::Error::Kek { kek, reason })) => {
                assert_eq!(kek, "pkcs11:vault-test/kek-del#v1");
                assert!(reason.contains("\"kek-del\""), "{reason}");
            }
            other => panic!("expected a KEK failure naming the key, got {other:?}"),
        }
        assert_eq!(get(&vault, "global", "k", None), b"value");
    });
}
