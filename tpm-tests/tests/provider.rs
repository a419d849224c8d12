//! The TPM KEK provider's own tests, each on a private swtpm: PCR binding (PCR 16 extended ->
//! unwrap fails naming the PCRs and pointing at recovery; reset -> it works again), a swtpm
//! restarted (orderly, and killed without shutdown) on the same state, a cleared TPM (fresh
//! state) with a recovery file KEK, tampered stanzas, the persisted SRK, concurrency on one
//! KEK and several KEKs on one TPM, and health while swtpm is down.
//!
//! Vaults here are built the way `vaultctl` builds them: the KEKs through the registry
//! (`kek_providers::create`), and on reopening from the URIs pinned in `vault.json`
//! (`vault::Kek::build_all`).
#![forbid(unsafe_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use envelope::{Dek, Health, KekProvider};
use kek_providers::Error;
use kek_providers::tpm::{self, Persisted, SealedBody, TpmKek};
use test_support::kek::{
    assert_tampered_stored_stanza_is_rejected, assert_unwraps, concurrent_round_trips, kek_failure,
    options, registry_kek, round_trip, snapshot, unwrap, wrap,
};
use test_support::stdout_of;
use tpm_tests::Swtpm;
use vault::{StoreKind, Vault, WrapMode};

/// The id of a KEK with the default label.
const KEK_ID: &str = "tpm2:tpm#v1";
/// The persistent handle `kek create` is given in these tests.
const SRK: u32 = 0x8100_0001;
/// What a PCR-policy failure says, after the selection.
const PCR_CHANGED: &str = "no longer hold the values the DEK was sealed to";
/// What it says to do.
const USE_RECOVERY: &str = "open the vault with another KEK of its keyring (e.g. the recovery KEK)";
/// What an unwrap under another SRK (a cleared TPM) says.
const OTHER_SRK: &str = "the secret was sealed under another TPM storage root key";
const CLEARED: &str = "the TPM was cleared, this is another TPM";

// ---------------------------------------------------------------------------------------
// Helpers

/// `tpm2:tcti=<tpm's TCTI><extra>`.
fn uri(tpm: &Swtpm, extra: &str) -> String {
    format!("tpm2:tcti={}{extra}", tpm.tcti())
}

fn open_kek(uri: &str) -> TpmKek {
    tpm::open_kek(uri).unwrap_or_else(|e| panic!("open {uri}: {e}"))
}

/// A recovery KEK: a new key file `<dir>/recovery.key` made through the registry.
fn recovery_kek(dir: &Path, vault_dir: &Path) -> vault::Kek {
    registry_kek(
        &format!("file:{}", dir.join("recovery.key").display()),
        vault_dir,
    )
}

fn assert_contains(text: &str, needles: &[&str]) {
    for needle in needles {
        assert!(text.contains(needle), "{needle:?} is not in: {text}");
    }
}

fn get(vault: &Vault, scope: &str, key: &str) -> Vec<u8> {
    vault
        .get(scope, key, None)
        .unwrap_or_else(|e| panic!("get {scope} {key}: {e}"))
        .expose_secret()
        .to_vec()
}

/// The secrets every vault here holds.
const SECRETS: [(&str, &str, &[u8]); 3] = [
    ("global", "db.password", b"hunter2"),
    ("principal:alice", "token", b"alice's token"),
    ("skill:mail", "smtp", b"smtp password"),
];

/// Sets [`SECRETS`] and seals caller data; returns the sealed data.
fn fill(vault: &Vault) -> Vec<u8> {
    for (scope, key, value) in SECRETS {
        vault
            .set(scope, key, value)
            .unwrap_or_else(|e| panic!("set {scope} {key}: {e}"));
    }
    vault
        .seal_data("billing", None, b"caller data")
        .expect("seal_data")
}

/// Every secret of [`fill`] reads back, and the sealed data opens.
fn assert_reads_everything(vault: &Vault, sealed: &[u8], what: &str) {
    for (scope, key, value) in SECRETS {
        let got = vault
            .get(scope, key, None)
            .unwrap_or_else(|e| panic!("{what}: get {scope} {key}: {e}"));
        assert_eq!(got.expose_secret(), value, "{what}: {scope} {key}");
    }
    let opened = vault
        .open_data("billing", None, sealed)
        .unwrap_or_else(|e| panic!("{what}: open_data: {e}"));
    assert_eq!(opened.expose_secret(), b"caller data", "{what}");
}

/// Opens the vault in `dir` with the KEKs pinned in its `vault.json`, as a new process would;
/// the JIT cache is off, so every read goes to the keys.
fn open_pinned(dir: &Path) -> Vault {
    let keks = vault::Kek::build_all(dir, &[]).expect("build the pinned KEKs");
    let mut vault = Vault::open(dir, None, keks).expect("open with the pinned KEKs");
    vault.set_cache_ttl(Duration::ZERO);
    vault
}

/// Opens the vault in `dir` with the KEK `uri` alone.
fn open_with(dir: &Path, uri: &str) -> Result<Vault, vault::Error> {
    let keks = vault::Kek::build_all(dir, &[uri.to_owned()])?;
    let mut vault = Vault::open(dir, None, keks)?;
    vault.set_cache_ttl(Duration::ZERO);
    Ok(vault)
}

/// A vault in `<tpm dir>/<name>` whose root KEKs are the TPM KEK `tpm_uri` and a recovery
/// file KEK, filled with [`SECRETS`]; returns its directory, the recovery KEK's URI and the
/// sealed caller data.
fn vault_with_recovery(
    tpm: &Swtpm,
    name: &str,
    tpm_uri: &str,
    mode: WrapMode,
) -> (PathBuf, String, Vec<u8>) {
    let dir = tpm.dir().join(name);
    let key_dir = tpm.dir().join(format!("{name}-keys"));
    fs::create_dir(&key_dir).expect("a directory for the recovery key");
    let keks = vec![registry_kek(tpm_uri, &dir), recovery_kek(&key_dir, &dir)];
    let recovery = keks[1].uri.clone();
    let mut vault = Vault::init_with(&dir, &options(mode), keks).expect("init the vault");
    vault.set_cache_ttl(Duration::ZERO);
    let sealed = fill(&vault);
    assert_reads_everything(&vault, &sealed, "right after init");
    (dir, recovery, sealed)
}

/// With the TPM KEK broken (a changed PCR, a cleared TPM): opening with it alone fails with
/// an error containing `expected`, and leaves the directory as it was; the pinned KEKs (the
/// TPM one is left out) and the recovery KEK alone each open everything.
fn assert_recovery_reads(
    dir: &Path,
    tpm_uri: &str,
    recovery: &str,
    sealed: &[u8],
    expected: &[&str],
    what: &str,
) {
    let before = snapshot(dir);
    match open_with(dir, tpm_uri) {
        Ok(_) => panic!("{what}: the vault opened with the TPM KEK alone"),
        Err(e) => assert_contains(&e.to_string(), expected),
    }
    assert_eq!(
        snapshot(dir),
        before,
        "{what}: a failed open changed the vault dir"
    );

    let pinned = open_pinned(dir);
    assert_reads_everything(&pinned, sealed, &format!("{what}, pinned KEKs"));
    let status = pinned.status().expect("status");
    assert_eq!(
        status.missing_keks,
        [KEK_ID],
        "{what}: the TPM KEK is left out"
    );
    drop(pinned);

    let alone = open_with(dir, recovery).expect("open with the recovery KEK alone");
    assert_reads_everything(&alone, sealed, &format!("{what}, recovery KEK alone"));
}

// ---------------------------------------------------------------------------------------
// PCR binding

#[test]
fn a_changed_pcr_fails_unwrap_naming_the_pcrs_and_a_reset_heals_it() {
    let Some(tpm) = Swtpm::start() else { return };
    let zeros = tpm.pcr16();
    assert_eq!(zeros, "0".repeat(64), "PCR 16 starts at zero");
    let kek = open_kek(&uri(&tpm, ";pcrs=sha256:16"));
    assert!(kek.assurance().platform_bound);
    let two = open_kek(&uri(&tpm, ";pcrs=sha256:7,16;label=two"));
    let (dek, body) = wrap(&kek);
    let (dek_two, body_two) = wrap(&two);
    assert_unwraps(&kek, &body, &dek, "before the change");
    let parsed = SealedBody::parse(&body).expect("the stanza parses");
    assert_eq!(
        parsed.pcrs.map(|p| p.to_string()).as_deref(),
        Some("sha256:16")
    );

    tpm.extend_pcr16(b"another boot");
    assert_ne!(tpm.pcr16(), zeros);
    let reason = kek_failure(unwrap(&kek, &body), KEK_ID);
    assert_contains(
        &reason,
        &[
            &format!("PCRs sha256:16 {PCR_CHANGED}"),
            USE_RECOVERY,
            "and rewrap",
        ],
    );
    let reason = kek_failure(unwrap(&two, &body_two), "tpm2:two#v1");
    assert_contains(&reason, &[&format!("PCRs sha256:7,16 {PCR_CHANGED}")]);
    // Failing is not being unhealthy: the TPM answers.
    assert_eq!(kek.health(), Health::Ok);
    // Wrapping seals to the values now: that works under the changed PCR, and fails after
    // the reset.
    let (dek_changed, body_changed) = wrap(&kek);
    assert_unwraps(&kek, &body_changed, &dek_changed, "sealed after the change");

    tpm.reset_pcr16();
    assert_eq!(tpm.pcr16(), zeros);
    assert_unwraps(&kek, &body, &dek, "after the reset");
    assert_unwraps(&two, &body_two, &dek_two, "two PCRs, after the reset");
    let reason = kek_failure(unwrap(&kek, &body_changed), KEK_ID);
    assert_contains(&reason, &[PCR_CHANGED]);
    // A stanza without PCRs is not affected by any of this.
    let plain = open_kek(&uri(&tpm, ";label=plain"));
    let (dek_plain, body_plain) = wrap(&plain);
    tpm.extend_pcr16(b"again");
    assert_unwraps(&plain, &body_plain, &dek_plain, "no PCR policy");
}

/// A vault on a PCR-16-bound TPM KEK and a recovery file KEK: after PCR 16 changes, the TPM
/// KEK alone cannot open it (the error names the PCRs), the pinned KEKs and the recovery KEK
/// can; after the reset the TPM KEK alone can again.
fn pcr_change_with_recovery(mode: WrapMode) {
    let Some(tpm) = Swtpm::start() else { return };
    let tpm_uri = uri(&tpm, ";pcrs=sha256:16");
    let (dir, recovery, sealed) = vault_with_recovery(&tpm, "vault", &tpm_uri, mode);

    tpm.extend_pcr16(b"another boot");
    assert_recovery_reads(
        &dir,
        &tpm_uri,
        &recovery,
        &sealed,
        &["PCRs sha256:16", PCR_CHANGED, USE_RECOVERY],
        "PCR 16 changed",
    );

    tpm.reset_pcr16();
    let vault = open_with(&dir, &tpm_uri).expect("the TPM KEK alone, after the reset");
    assert_reads_everything(&vault, &sealed, "TPM KEK alone after the reset");
    drop(vault);
    let vault = open_pinned(&dir);
    assert!(vault.status().expect("status").missing_keks.is_empty());
    vault.set("global", "after", b"reset").expect("set");
    assert_eq!(get(&vault, "global", "after"), b"reset");
}

#[test]
fn a_changed_pcr_leaves_a_direct_vault_to_its_recovery_kek() {
    pcr_change_with_recovery(WrapMode::Direct);
}

#[test]
fn a_changed_pcr_leaves_a_tiered_vault_to_its_recovery_kek() {
    pcr_change_with_recovery(WrapMode::Tiered);
}

// ---------------------------------------------------------------------------------------
// swtpm restarted on the same state

/// Vaults (direct and tiered) on a transient-primary KEK, a persisted-SRK KEK and a
/// PCR-16-bound KEK, each filled; after `restart` the open instances and new ones read
/// everything and take new secrets.
fn secrets_survive(restart: impl Fn(&mut Swtpm)) {
    let Some(mut tpm) = Swtpm::start() else {
        return;
    };
    let persisted = uri(&tpm, &format!(";srk={SRK:#010x}"));
    assert!(matches!(
        tpm::persist_srk(&persisted),
        Ok(Persisted::Now { .. })
    ));
    let mut vaults = Vec::new();
    for (name, extra) in [
        ("primary", String::new()),
        ("persisted", format!(";srk={SRK:#010x}")),
        ("pcr16", ";pcrs=sha256:16".to_owned()),
    ] {
        for mode in [WrapMode::Direct, WrapMode::Tiered] {
            let dir = tpm.dir().join(format!("{name}-{mode}"));
            let kek = registry_kek(&uri(&tpm, &extra), &dir);
            let mut vault = Vault::init_with(&dir, &options(mode), vec![kek]).expect("init");
            vault.set_cache_ttl(Duration::ZERO);
            let sealed = fill(&vault);
            vaults.push((format!("{name}, {mode}"), dir, vault, sealed));
        }
    }

    restart(&mut tpm);
    for (what, dir, vault, sealed) in &vaults {
        assert_reads_everything(vault, sealed, &format!("{what}: open instance"));
        vault.set("global", "after", b"restart").expect("set");
        let reopened = open_pinned(dir);
        assert_reads_everything(&reopened, sealed, &format!("{what}: reopened"));
        assert_eq!(get(&reopened, "global", "after"), b"restart", "{what}");
        let status = reopened.status().expect("status");
        assert!(status.missing_keks.is_empty(), "{what}: {status:?}");
        assert_eq!(status.keks[0].health, Health::Ok, "{what}");
    }
}

#[test]
fn secrets_open_again_after_an_orderly_restart() {
    secrets_survive(|tpm| tpm.restart());
}

#[test]
fn secrets_open_again_after_swtpm_is_killed_and_restarted() {
    secrets_survive(|tpm| tpm.crash_restart());
}

// ---------------------------------------------------------------------------------------
// A cleared TPM

/// A vault on the TPM KEK `extra` names and a recovery KEK; the TPM is cleared: the TPM
/// KEK's error says so, and the recovery KEK (alone, or among the pinned ones) opens
/// everything.
fn cleared_with_recovery(extra: &str, mode: WrapMode) {
    let Some(mut tpm) = Swtpm::start() else {
        return;
    };
    let tpm_uri = uri(&tpm, extra);
    if extra.contains(";srk=") {
        tpm::persist_srk(&tpm_uri).expect("persist the SRK");
    }
    let (dir, recovery, sealed) = vault_with_recovery(&tpm, "vault", &tpm_uri, mode);
    let kek = open_kek(&tpm_uri);
    let (dek, body) = wrap(&kek);

    tpm.clear();
    let expected: &[&str] = if extra.contains(";srk=") {
        // The persisted SRK is gone with the rest.
        &[
            "TPM persistent handle 0x81000001 (srk= in the KEK URI) holds no key",
            "the TPM was cleared or this is another TPM",
            USE_RECOVERY,
        ]
    } else {
        &[OTHER_SRK, CLEARED, USE_RECOVERY]
    };
    let reason = kek_failure(unwrap(&kek, &body), KEK_ID);
    assert_contains(&reason, expected);
    drop(dek);
    if extra.contains(";srk=") {
        let error = tpm::open_kek(&tpm_uri).expect_err("no SRK at the handle");
        assert!(
            matches!(error, Error::TpmSrkMissing { handle: SRK }),
            "{error:?}"
        );
    }
    assert_recovery_reads(&dir, &tpm_uri, &recovery, &sealed, expected, "cleared TPM");
}

#[test]
fn a_cleared_tpm_leaves_a_direct_vault_to_its_recovery_kek() {
    cleared_with_recovery("", WrapMode::Direct);
}

#[test]
fn a_cleared_tpm_leaves_a_tiered_vault_to_its_recovery_kek() {
    cleared_with_recovery("", WrapMode::Tiered);
}

#[test]
fn a_cleared_tpm_loses_the_persisted_srk_and_the_recovery_kek_reads_everything() {
    cleared_with_recovery(&format!(";srk={SRK:#010x}"), WrapMode::Direct);
}

/// `tpm2_clear` (TPM2_Clear in the platform hierarchy, as firmware setup does it) rather
/// than a fresh state: the owner seed changes and the persisted SRK is evicted, under KEKs
/// that hold them loaded.
#[test]
fn tpm2_clear_under_open_keks_is_named_as_a_cleared_tpm() {
    let Some(tpm) = Swtpm::start() else { return };
    let persisted_uri = uri(&tpm, &format!(";srk={SRK:#010x};label=persisted"));
    tpm::persist_srk(&persisted_uri).expect("persist the SRK");
    let primary = open_kek(&uri(&tpm, ""));
    let persisted = open_kek(&persisted_uri);
    let (dek, body) = wrap(&primary);
    let (dek_persisted, body_persisted) = wrap(&persisted);
    assert_unwraps(&primary, &body, &dek, "before the clear");
    assert_unwraps(
        &persisted,
        &body_persisted,
        &dek_persisted,
        "before the clear",
    );

    stdout_of(tpm.command("tpm2_clear").arg("--auth-hierarchy=p"));
    let reason = kek_failure(unwrap(&primary, &body), KEK_ID);
    assert_contains(&reason, &[OTHER_SRK, CLEARED, USE_RECOVERY]);
    let reason = kek_failure(unwrap(&persisted, &body_persisted), "tpm2:persisted#v1");
    assert_contains(
        &reason,
        &[
            "TPM persistent handle 0x81000001 (srk= in the KEK URI) holds no key",
            "the TPM was cleared or this is another TPM",
        ],
    );
    // The primary KEK seals under the new SRK.
    round_trip(&primary);
}

#[test]
fn a_stanza_of_another_tpm_is_refused_naming_the_srks() {
    let (Some(one), Some(other)) = (Swtpm::start(), Swtpm::start()) else {
        return;
    };
    let kek = open_kek(&uri(&one, ""));
    let (_, body) = wrap(&kek);
    let elsewhere = open_kek(&uri(&other, ""));
    let reason = kek_failure(unwrap(&elsewhere, &body), KEK_ID);
    assert_contains(&reason, &[OTHER_SRK, CLEARED, "this TPM's is "]);
}

// ---------------------------------------------------------------------------------------
// Tampered stanzas

/// Where the parts of a stanza body lie: (start, end) of the public and private parts.
fn part_ranges(body: &[u8]) -> [(usize, usize); 2] {
    let parsed = SealedBody::parse(body).expect("the stanza parses");
    let at = |part: &[u8]| {
        let start = part.as_ptr() as usize - body.as_ptr() as usize;
        (start, start + part.len())
    };
    [at(parsed.public), at(parsed.private)]
}

/// `StanzaRejected` by `kek`, or a panic saying what `bad` gave instead.
fn assert_rejected(kek: &TpmKek, bad: &[u8], what: &str) {
    match unwrap(kek, bad) {
        Err(envelope::Error::StanzaRejected { kek: id }) => assert_eq!(id, kek.id().to_string()),
        Err(other) => panic!("{what}: {other}, not StanzaRejected"),
        Ok(_) => panic!("{what}: unwrapped"),
    }
}

/// Every flip (bit 0 and bit 7 of each byte) in the sealed object's public or private part
/// is `StanzaRejected`: the TPM refuses to load the object. (A flip in the SRK name or the
/// PCR selection, which the TPM does not authenticate, fails too, but as "another SRK" or
/// "the PCRs changed": only the TPM's answer can tell.)
fn every_flip_of_the_sealed_object_is_rejected(kek: &TpmKek) {
    let (_, body) = wrap(kek);
    let [public, private] = part_ranges(&body);
    for at in (public.0..public.1).chain(private.0..private.1) {
        for mask in [0x01u8, 0x80] {
            let mut flipped = body.clone();
            flipped[at] ^= mask;
            assert_rejected(kek, &flipped, &format!("byte {at} ^ {mask:#04x}"));
        }
    }
    for at in 0..public.0 {
        let mut flipped = body.clone();
        flipped[at] ^= 0x01;
        assert!(unwrap(kek, &flipped).is_err(), "header byte {at} ^ 0x01");
    }
    round_trip(kek);
}

#[test]
fn every_flip_of_the_sealed_object_is_stanza_rejected() {
    let Some(tpm) = Swtpm::start() else { return };
    every_flip_of_the_sealed_object_is_rejected(&open_kek(&uri(&tpm, "")));
    every_flip_of_the_sealed_object_is_rejected(&open_kek(&uri(&tpm, ";pcrs=sha256:16;label=pcr")));
}

/// A flip in the sealed object's private part or its integrity-checked public fields, any
/// cut or flip of the framing, and another secret's stanza are `StanzaRejected`; the KEK still
/// works afterwards.
fn flips_are_stanza_rejected(kek: &TpmKek) {
    let (_, body) = wrap(kek);
    let [public, private] = part_ranges(&body);
    let rejected = |bad: &[u8], what: &str| assert_rejected(kek, bad, what);
    // The public part's type and name algorithm, its auth policy and parameters (past the
    // attributes), and the whole private part.
    for at in (public.0..public.0 + 4)
        .chain(public.0 + 8..public.1)
        .chain(private.0..private.1)
    {
        let mut flipped = body.clone();
        flipped[at] ^= 0x01;
        rejected(&flipped, &format!("byte {at} ^ 0x01"));
    }
    // The version and flags bytes, the lengths before each part.
    for at in [
        0,
        1,
        public.0 - 2,
        public.0 - 1,
        private.0 - 2,
        private.0 - 1,
    ] {
        let mut flipped = body.clone();
        flipped[at] ^= 0x80;
        rejected(&flipped, &format!("framing byte {at} ^ 0x80"));
    }
    rejected(&body[..body.len() - 1], "cut by one byte");
    rejected(&[body.as_slice(), &[0]].concat(), "one byte appended");
    // Another secret's stanza (another AAD).
    let other = kek.wrap(&Dek::generate().expect("a DEK"), b"another secret");
    rejected(&other.expect("wrap"), "another secret's stanza");
    round_trip(kek);
}

#[test]
fn a_tampered_stanza_is_stanza_rejected() {
    let Some(tpm) = Swtpm::start() else { return };
    flips_are_stanza_rejected(&open_kek(&uri(&tpm, "")));
    flips_are_stanza_rejected(&open_kek(&uri(&tpm, ";pcrs=sha256:16;label=pcr")));
    flips_are_stanza_rejected(&open_kek(&uri(&tpm, ";encrypt;label=enc")));

    // In a stored envelope: that secret is StanzaRejected, its neighbour still reads.
    assert_tampered_stored_stanza_is_rejected(
        &tpm.dir().join("vault"),
        &uri(&tpm, ""),
        KEK_ID,
        |body| {
            // A stored TPM stanza ends in the vault's 32-byte tag (the TPM wraps without a
            // secret); the sealed object comes before it.
            let [_, private] = part_ranges(&body[..body.len() - 32]);
            (private.0 + private.1) / 2
        },
    );
}

// ---------------------------------------------------------------------------------------
// The persisted SRK

#[test]
fn a_persisted_srk_survives_restarts_and_kek_create_never_replaces_a_key() {
    let Some(mut tpm) = Swtpm::start() else {
        return;
    };
    let persisted_uri = uri(&tpm, &format!(";srk={SRK:#010x}"));
    // Nothing at the handle yet: opening says to run kek create.
    let error = tpm::open_kek(&persisted_uri).expect_err("an empty handle");
    assert!(
        matches!(error, Error::TpmSrkMissing { handle: SRK }),
        "{error:?}"
    );
    assert_contains(&error.to_string(), &["vaultctl kek create URI"]);

    // Without srk= there is nothing to persist: the SRK's name is reported.
    let transient = match tpm::persist_srk(&uri(&tpm, "")) {
        Ok(Persisted::Transient { name }) => name,
        other => panic!("persist_srk without srk=: {other:?}"),
    };
    let name = match tpm::persist_srk(&persisted_uri) {
        Ok(Persisted::Now { handle: SRK, name }) => name,
        other => panic!("persist_srk: {other:?}"),
    };
    assert_eq!(
        name, transient,
        "the persisted SRK is the template's primary"
    );
    assert_eq!(
        tpm::persist_srk(&persisted_uri).expect("persist_srk again"),
        Persisted::Already {
            handle: SRK,
            name: name.clone()
        }
    );

    let info = tpm::key_info(&format!("{persisted_uri};pcrs=sha256:16")).expect("key_info");
    assert_eq!(info.srk_handle, Some(SRK));
    assert_eq!(info.srk_name, name);
    assert_eq!(info.manufacturer, "IBM", "{info:?}");
    assert!(!info.hardware, "{info:?}");
    assert_eq!(info.tcti, tpm.tcti());
    let (selection, values) = info.pcrs.expect("the PCR values");
    assert_eq!(selection.to_string(), "sha256:16");
    assert_eq!(values, [(16, tpm.pcr16())]);

    // The same key: stanzas of the transient primary and of the persisted SRK open with
    // either.
    let kek = open_kek(&persisted_uri);
    let primary = open_kek(&uri(&tpm, ""));
    let (dek, body) = wrap(&kek);
    let (dek_primary, body_primary) = wrap(&primary);
    assert_unwraps(&primary, &body, &dek, "persisted SRK's stanza, primary KEK");
    assert_unwraps(&kek, &body_primary, &dek_primary, "primary's stanza");

    tpm.restart();
    let after = open_kek(&persisted_uri);
    assert_unwraps(&after, &body, &dek, "after a restart, new instance");
    assert_unwraps(&kek, &body, &dek, "after a restart, old instance");
    tpm.crash_restart();
    assert_unwraps(&kek, &body, &dek, "after a crash");
    let info = tpm::key_info(&persisted_uri).expect("key_info after restarts");
    assert_eq!((info.srk_handle, info.srk_name), (Some(SRK), name));

    // Another key at another handle: kek create refuses it; a KEK can use it as its SRK,
    // and says that stanzas of the template's SRK were sealed under another one.
    let context = tpm.dir().join("other-primary.ctx");
    stdout_of(
        tpm.command("tpm2_createprimary")
            .args(["--hierarchy=o", "--key-algorithm=ecc384", "--key-context"])
            .arg(&context),
    );
    stdout_of(
        tpm.command("tpm2_evictcontrol")
            .args(["--hierarchy=o", "--object-context"])
            .arg(&context)
            .arg("0x81000002"),
    );
    stdout_of(tpm.command("tpm2_flushcontext").arg("--transient-object"));
    let occupied = uri(&tpm, ";srk=0x81000002");
    let error = tpm::persist_srk(&occupied).expect_err("another key is there");
    assert!(
        matches!(
            error,
            Error::TpmSrkOccupied {
                handle: 0x8100_0002,
                ..
            }
        ),
        "{error:?}"
    );
    assert_contains(
        &error.to_string(),
        &[
            "already holds another key",
            "kek create never replaces a key",
        ],
    );
    let elsewhere = open_kek(&occupied);
    let reason = kek_failure(unwrap(&elsewhere, &body), KEK_ID);
    assert_contains(&reason, &[OTHER_SRK, "srk= changed"]);
    round_trip(&elsewhere);
    // And the vault's SRK is still there.
    assert_unwraps(&kek, &body, &dek, "after the refused create");
}

/// `persist_srk` (what `kek create` runs) beside a KEK of the same process that uses the
/// persisted SRK must leave that KEK working.
#[test]
fn persist_srk_beside_an_open_kek_leaves_it_working() {
    let Some(tpm) = Swtpm::start() else { return };
    let persisted_uri = uri(&tpm, &format!(";srk={SRK:#010x}"));
    tpm::persist_srk(&persisted_uri).expect("persist the SRK");
    let kek = open_kek(&persisted_uri);
    round_trip(&kek);
    assert!(matches!(
        tpm::persist_srk(&persisted_uri),
        Ok(Persisted::Already { .. })
    ));
    round_trip(&kek);
    assert_eq!(kek.health(), Health::Ok);
}

// ---------------------------------------------------------------------------------------
// Concurrency and the TPM's object slots

#[test]
fn four_threads_share_one_kek() {
    let Some(tpm) = Swtpm::start() else { return };
    for extra in ["", ";pcrs=sha256:16;encrypt"] {
        let kek = Arc::new(open_kek(&uri(&tpm, extra)));
        concurrent_round_trips(&kek, 4, 50, |_, _, _| {});
        assert_eq!(kek.health(), Health::Ok);
    }
}

/// The transient objects loaded in the TPM (`tpm2_getcap handles-transient`).
fn loaded_objects(tpm: &Swtpm) -> usize {
    stdout_of(tpm.command("tpm2_getcap").arg("handles-transient"))
        .lines()
        .filter(|line| line.trim_start().starts_with("- 0x"))
        .count()
}

#[test]
fn many_keks_on_one_tpm_flush_what_they_load() {
    let Some(tpm) = Swtpm::start() else { return };
    tpm::persist_srk(&uri(&tpm, &format!(";srk={SRK:#010x}"))).expect("persist the SRK");
    // More KEKs than swtpm has object slots (3), each of its own kind.
    let keks: Vec<TpmKek> = [
        ";label=a",
        ";pcrs=sha256:16;label=b",
        ";encrypt;label=c",
        ";srk=0x81000001;label=d",
        ";srk=0x81000001;pcrs=sha256:7,16;encrypt;label=e",
    ]
    .iter()
    .map(|extra| open_kek(&uri(&tpm, extra)))
    .collect();
    let mut stanzas = Vec::new();
    for _ in 0..5 {
        for kek in &keks {
            stanzas.push((kek, wrap(kek)));
        }
    }
    for (kek, (dek, body)) in &stanzas {
        assert_unwraps(*kek, body, dek, &kek.id().to_string());
    }
    // Only the transient primary SRK, which the process's context for this TPM keeps, stays
    // loaded: every sealed object was flushed.
    assert_eq!(loaded_objects(&tpm), 1, "transient objects left loaded");
}

// ---------------------------------------------------------------------------------------
// Health, and swtpm going away

#[test]
fn health_is_unreachable_while_swtpm_is_down_and_ok_after_a_restart() {
    let Some(mut tpm) = Swtpm::start() else {
        return;
    };
    let kek = open_kek(&uri(&tpm, ""));
    let (dek, body) = wrap(&kek);
    assert_eq!(kek.health(), Health::Ok);

    // Killed from outside, by its pid.
    let killed = Command::new("kill")
        .args(["-KILL", &tpm.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let started = Instant::now();
    match kek.health() {
        Health::Unreachable(reason) => assert_contains(
            &reason,
            &[
                &format!("cannot reach the TPM through {}", tpm.tcti()),
                "check that the simulator is running",
            ],
        ),
        other => panic!("health while swtpm is down: {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "health took {:?}",
        started.elapsed()
    );
    let reason = kek_failure(unwrap(&kek, &body), KEK_ID);
    assert_contains(&reason, &["cannot reach the TPM through"]);
    let error = tpm::open_kek(&uri(&tpm, ";label=new")).expect_err("swtpm is down");
    assert!(matches!(error, Error::TpmUnreachable { .. }), "{error:?}");

    tpm.restart();
    assert_eq!(kek.health(), Health::Ok);
    assert_unwraps(&kek, &body, &dek, "after the restart");
    round_trip(&kek);
}

// ---------------------------------------------------------------------------------------
// What the vault makes of a TPM KEK

#[test]
fn a_vault_on_a_tpm_kek_defaults_to_tiered_and_says_what_the_tpm_assures() {
    let Some(tpm) = Swtpm::start() else { return };
    let dir = tpm.dir().join("vault");
    let tpm_uri = uri(&tpm, ";pcrs=sha256:16");
    let kek = registry_kek(&tpm_uri, &dir);
    assert_eq!(kek.uri, format!("{tpm_uri};label=tpm"), "the canonical URI");
    let vault = Vault::init(&dir, StoreKind::Sqlite, vec![kek]).expect("init");
    assert!(!vault.keks_are_software());
    let sealed = fill(&vault);
    let status = vault.status().expect("status");
    assert_eq!(status.mode, WrapMode::Tiered);
    assert_eq!(status.keks.len(), 1);
    let assurance = status.keks[0].assurance;
    assert!(!assurance.hardware, "swtpm is a simulator: {assurance:?}");
    assert!(
        assurance.non_exportable && assurance.platform_bound,
        "{assurance:?}"
    );
    assert_eq!(status.keks[0].health, Health::Ok);
    drop(vault);
    let config = Vault::read_config(&dir).expect("vault.json");
    assert_eq!(config.kek_uris(), [format!("{tpm_uri};label=tpm")]);
    assert_reads_everything(&open_pinned(&dir), &sealed, "reopened");
}
