//! The real `vaultctl` binary against a private SoftHSM2 token: `kek create` and `kek info`, a
//! vault whose KEK lives on the token (AES-GCM and AES key wrap with padding), a recovery
//! `file:` KEK next to it, and the failures an operator meets: a wrong PIN, a missing module,
//! token or key, a key deleted from the token, a tampered stanza. Each failure is exit code 1
//! with a message that says what is wrong, leaves the vault directory as it was, and no command
//! ever shows a PIN or a secret value on stderr.
//!
//! The binary is `<target dir>/<profile>/vaultctl`, next to this test's `deps/` directory. Cargo
//! builds a package's binaries only for that package's own integration tests, so under
//! `cargo test -p softhsm-tests` it could be missing or stale: each test process runs
//! `cargo build -p vaultctl` first and then runs a private link to the result (see
//! [`vaultctl_binary`]).
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::ops::Deref;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use softhsm_tests::{SoftHsm, in_private_token, vaultctl_binary};
use test_support::Run;

/// The id `kek list` and the errors give the KEK `hsm.kek_uri("kek-1")` names.
const KEK_ID: &str = "pkcs11:vault-test/kek-1#v1";
/// What `kek info` and `kek create` call a key made by `kek create`.
const VERDICT_CANNOT_LEAVE: &str = "cannot leave the token (sensitive and never extractable)";
/// The message of a token that refused the pinned key's wrapped DEK.
const REJECTED: &str =
    "rejected its wrapped key: the stanza was tampered with, or belongs to another secret";
/// The message of a key that is not (or no longer) on the token, after its quoted label.
const NOT_ON_TOKEN: &str =
    "is not on token \"vault-test\": it was deleted, or the URI names another key";
/// The `x-mechanism` query attribute for AES key wrap with padding.
const KWP: &str = "&x-mechanism=aes-key-wrap-pad";

/// vaultctl on one private token, with its home, config and data directories in the token's
/// private directory; no run shows a PIN, on stdout or stderr, or a secret value on stderr.
struct Vaultctl<'a> {
    hsm: &'a SoftHsm,
    runner: test_support::Vaultctl<'a>,
}

impl<'a> Deref for Vaultctl<'a> {
    type Target = test_support::Vaultctl<'a>;

    fn deref(&self) -> &Self::Target {
        &self.runner
    }
}

impl<'a> Vaultctl<'a> {
    fn new(hsm: &'a SoftHsm) -> Self {
        let binary = vaultctl_binary(hsm.dir());
        let runner =
            test_support::Vaultctl::new(move || hsm.command(&binary), &hsm.dir().join("home"));
        runner.keep_hidden(hsm.user_pin());
        runner.keep_hidden(hsm.so_pin());
        Self { hsm, runner }
    }

    /// A path in the token's private directory, as a string for the command line.
    fn path(&self, name: &str) -> String {
        self.hsm.dir().join(name).display().to_string()
    }

    /// `kek create uri`, asserting success.
    fn create_key(&self, uri: &str) {
        let out = self.ok(&["kek", "create", uri], b"").stdout();
        assert!(
            out.starts_with("created a non-extractable AES-256 key: pkcs11:token=vault-test;"),
            "{out}"
        );
    }

    /// `init --mode direct` of the vault in `<private dir>/<name>` with `keks`; returns the
    /// directory. Direct mode puts the token's stanza in every stored envelope, which these
    /// tests inspect (a device KEK's default is tiered: see `init_defaults_to_tiered`).
    fn init(&self, name: &str, keks: &[&str]) -> String {
        let dir = self.path(name);
        let mut args = vec!["--vault", dir.as_str(), "init", "--mode", "direct"];
        for kek in keks {
            args.extend(["--kek", kek]);
        }
        let out = self.ok(&args, b"").stdout();
        assert!(out.starts_with("initialised vault at "), "{out}");
        dir
    }

    /// `set scope key` with `value` on stdin; the value is secret from then on.
    fn set(&self, vault: &str, scope: &str, key: &str, value: &str) {
        self.keep_secret(value);
        let out = self
            .ok(&["--vault", vault, "set", scope, key], value.as_bytes())
            .stdout();
        assert!(
            out.starts_with(&format!("stored {scope} {key} version ")),
            "{out}"
        );
    }

    /// `get scope key`, asserting it returns `value` exactly.
    fn assert_get(&self, vault: &str, scope: &str, key: &str, value: &str) -> Run {
        let run = self.ok(&["--vault", vault, "get", scope, key], b"");
        assert_eq!(run.stdout(), value, "get {scope} {key}");
        run
    }

    /// `kek info uri` as a map from field name to value.
    fn info(&self, uri: &str) -> BTreeMap<String, String> {
        let out = self.ok(&["kek", "info", uri], b"").stdout();
        out.lines()
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
            .collect()
    }
}

/// `uri` with its PIN read from `pin_file` instead of the fixture's.
fn with_pin_file(hsm: &SoftHsm, uri: &str, pin_file: &Path) -> String {
    let fixture_pin = hsm.pin_file().display().to_string();
    assert!(uri.contains(&fixture_pin), "{uri}");
    uri.replace(&fixture_pin, &pin_file.display().to_string())
}

/// Writes `pin` to `path`, mode 0600, replacing what was there.
fn write_pin(path: &Path, pin: &str) {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .expect("the pin file can be written");
    file.write_all(pin.as_bytes()).expect("the pin is written");
}

/// Every file of the vault's state below `dir` with its contents, to show that a failed
/// command changed nothing (see `compliance::state_files_below`).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    for path in compliance::state_files_below(dir) {
        let contents = fs::read(&path).expect("a vault file can be read");
        files.insert(path, contents);
    }
    assert!(!files.is_empty(), "{} has no files", dir.display());
    files
}

/// Asserts that the vault directory holds the same files with the same contents.
fn assert_unchanged(before: &BTreeMap<PathBuf, Vec<u8>>, dir: &str, what: &str) {
    let after = snapshot(Path::new(dir));
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "{what} added or removed files in the vault dir"
    );
    for (path, contents) in before {
        assert!(
            after.get(path) == Some(contents),
            "{what} changed {}",
            path.display()
        );
    }
}

/// Parses `seal --format json` output.
fn envelope_json(run: &Run) -> serde_json::Value {
    serde_json::from_slice(&run.stdout).expect("seal --format json writes JSON")
}

/// The decoded body of the envelope's stanza of `kind`.
fn stanza_body(envelope: &serde_json::Value, kind: &str) -> Vec<u8> {
    let stanza = envelope["stanzas"]
        .as_array()
        .expect("stanzas is an array")
        .iter()
        .find(|stanza| stanza["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} stanza in {envelope}"));
    base64::engine::general_purpose::STANDARD
        .decode(stanza["body"].as_str().expect("a stanza body is a string"))
        .expect("a stanza body is base64")
}

/// The envelope with its `kind` stanza's body replaced by `edit(body)`.
fn with_stanza_body(
    envelope: &serde_json::Value,
    kind: &str,
    edit: impl FnOnce(&mut Vec<u8>),
) -> serde_json::Value {
    let mut body = stanza_body(envelope, kind);
    edit(&mut body);
    let mut edited = envelope.clone();
    let stanza = edited["stanzas"]
        .as_array_mut()
        .expect("stanzas is an array")
        .iter_mut()
        .find(|stanza| stanza["kind"] == kind)
        .expect("the stanza is there");
    stanza["body"] = base64::engine::general_purpose::STANDARD
        .encode(&body)
        .into();
    edited
}

#[test]
fn kek_create_makes_a_key_that_cannot_leave_the_token_and_never_replaces_one() {
    in_private_token(|hsm| {
        let ctl = Vaultctl::new(hsm);
        let uri = hsm.kek_uri("kek-1");
        let out = ctl.ok(&["kek", "create", &uri], b"").stdout();
        assert!(
            out.contains(
                "created a non-extractable AES-256 key: pkcs11:token=vault-test;object=kek-1?"
            ),
            "{out}"
        );
        assert!(out.contains("vaultctl init --kek URI"), "{out}");

        let info = ctl.info(&uri);
        let field = |name: &str| info.get(name).map(String::as_str);
        assert_eq!(field("label"), Some("kek-1"), "{info:?}");
        assert_eq!(field("key type"), Some("CKK_AES"), "{info:?}");
        assert_eq!(field("value length"), Some("32 bytes"), "{info:?}");
        for (attribute, expected) in [
            ("CKA_TOKEN", "true"),
            ("CKA_PRIVATE", "true"),
            ("CKA_SENSITIVE", "true"),
            ("CKA_ALWAYS_SENSITIVE", "true"),
            ("CKA_EXTRACTABLE", "false"),
            ("CKA_NEVER_EXTRACTABLE", "true"),
            ("CKA_LOCAL", "true"),
            ("CKA_ENCRYPT", "true"),
            ("CKA_DECRYPT", "true"),
            ("CKA_WRAP", "true"),
            ("CKA_UNWRAP", "true"),
        ] {
            assert_eq!(field(attribute), Some(expected), "{attribute}: {info:?}");
        }
        assert_eq!(field("verdict"), Some(VERDICT_CANNOT_LEAVE), "{info:?}");
        let id = info.get("id").expect("kek info shows the id").clone();
        assert!(
            id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "a random 16-byte CKA_ID: {id}"
        );

        // The same label again, with either mechanism: refused, and the key stays as it was.
        for again in [uri.clone(), format!("{uri}{KWP}")] {
            ctl.fails(
                &["kek", "create", &again],
                b"",
                &[
                    "token \"vault-test\" already has an object labelled \"kek-1\"",
                    "kek create never replaces a key",
                ],
            );
        }
        assert_eq!(ctl.info(&uri), info, "kek info after the refused creates");
        let listed = hsm
            .pkcs11_tool()
            .args(["--login", "--pin", hsm.user_pin()])
            .args(["--list-objects", "--type", "secrkey"])
            .output()
            .expect("pkcs11-tool runs");
        let listed = String::from_utf8_lossy(&listed.stdout);
        assert_eq!(
            listed.matches("Secret Key Object").count(),
            1,
            "one key on the token:\n{listed}"
        );

        // kek create and kek info are for token keys: other URIs are usage errors.
        let file_kek = format!("file:{}", ctl.path("file.key"));
        for command in ["create", "info"] {
            ctl.fails_with_code(
                2,
                &["kek", command, &file_kek],
                b"",
                &["kek create and kek info take a pkcs11:, tpm2: or yubikey: URI"],
            );
        }
        assert!(!Path::new(&ctl.path("file.key")).exists());
    });
}

/// Everything a vault does with its only KEK on the token, with the mechanism `x_mechanism`
/// (empty for the default) that writes stanza bodies starting with `tag` of `body_len` bytes.
fn round_trip(hsm: &SoftHsm, x_mechanism: &str, tag: u8, body_len: usize) {
    let ctl = Vaultctl::new(hsm);
    let uri = format!("{}{x_mechanism}", hsm.kek_uri("kek-1"));
    ctl.create_key(&uri);
    let vault = ctl.init("vault", &[&uri]);
    let vault = vault.as_str();

    // set (stdin), get, versions, list, delete.
    ctl.set(vault, "global", "db-password", "hunter2-on-the-token");
    ctl.set(vault, "principal:alice", "token", "alice-token-v1");
    ctl.set(vault, "principal:alice", "token", "alice-token-v2");
    ctl.assert_get(vault, "global", "db-password", "hunter2-on-the-token");
    ctl.assert_get(vault, "principal:alice", "token", "alice-token-v2");
    let v1 = ctl.ok(
        &[
            "--vault",
            vault,
            "get",
            "principal:alice",
            "token",
            "--version",
            "1",
        ],
        b"",
    );
    assert_eq!(v1.stdout(), "alice-token-v1");
    let binary = b"\x00\x01binary\xffvalue\n";
    ctl.ok(&["--vault", vault, "set", "skill:deploy", "key"], binary);
    let got = ctl.ok(&["--vault", vault, "get", "skill:deploy", "key"], b"");
    assert_eq!(got.stdout, binary);

    let listed = ctl
        .ok(&["--vault", vault, "list", "--format", "json"], b"")
        .stdout();
    let rows: serde_json::Value =
        serde_json::from_str(&listed).expect("list --format json is JSON");
    let mut names: Vec<(String, u64)> = rows
        .as_array()
        .expect("list --format json is an array")
        .iter()
        .map(|row| {
            (
                format!(
                    "{} {}",
                    row["scope"].as_str().unwrap_or("?"),
                    row["key"].as_str().unwrap_or("?")
                ),
                row["version"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            ("global db-password".to_owned(), 1),
            ("principal:alice token".to_owned(), 2),
            ("skill:deploy key".to_owned(), 1)
        ]
    );
    assert!(
        !listed.contains("hunter2") && !listed.contains("alice-token"),
        "{listed}"
    );

    ctl.ok(&["--vault", vault, "delete", "global", "db-password"], b"");
    ctl.fails(
        &["--vault", vault, "get", "global", "db-password"],
        b"",
        &["secret not found: global db-password"],
    );
    let listed = ctl.ok(&["--vault", vault, "list"], b"").stdout();
    assert!(
        !listed.contains("db-password") && listed.contains("principal:alice"),
        "{listed}"
    );

    // seal and open caller data, in binary and JSON form; the context binds.
    let data = "caller data sealed under the token KEK";
    ctl.keep_secret(data);
    let sealed = ctl.ok(
        &["--vault", vault, "seal", "--context", "ctx-a"],
        data.as_bytes(),
    );
    assert!(
        !sealed
            .stdout
            .windows(data.len())
            .any(|w| w == data.as_bytes())
    );
    let opened = ctl.ok(
        &["--vault", vault, "open", "--context", "ctx-a"],
        &sealed.stdout,
    );
    assert_eq!(opened.stdout(), data);
    ctl.fails(
        &["--vault", vault, "open", "--context", "ctx-b"],
        &sealed.stdout,
        &[KEK_ID, REJECTED],
    );
    let json = envelope_json(&ctl.ok(
        &["--vault", vault, "seal", "--format", "json"],
        data.as_bytes(),
    ));
    let stanzas = json["stanzas"].as_array().expect("stanzas");
    assert_eq!(stanzas.len(), 1, "{json}");
    assert_eq!(stanzas[0]["label"], "vault-test/kek-1", "{json}");
    let body = stanza_body(&json, "pkcs11");
    assert_eq!(
        (body[0], body.len()),
        (tag, body_len),
        "the stanza records the mechanism{x_mechanism}"
    );
    let json_file = ctl.path("sealed.json");
    let out_file = ctl.path("opened.txt");
    fs::write(&json_file, json.to_string()).expect("write the envelope");
    ctl.ok(
        &[
            "--vault", vault, "open", "--in", &json_file, "--out", &out_file,
        ],
        b"",
    );
    assert_eq!(
        fs::read_to_string(&out_file).expect("open --out wrote"),
        data
    );

    // status, kek list, kek check: healthy and non-exportable.
    let status = ctl.ok(&["--vault", vault, "status"], b"").stdout();
    let kek_line = status
        .lines()
        .find(|line| line.starts_with("kek:"))
        .unwrap_or_else(|| panic!("no kek line:\n{status}"));
    assert!(kek_line.contains(KEK_ID), "{status}");
    assert!(kek_line.ends_with("health ok; non-exportable"), "{status}");
    assert!(
        kek_line.contains(x_mechanism.trim_start_matches('&')),
        "{status}"
    );
    let status: serde_json::Value = serde_json::from_str(
        &ctl.ok(&["--vault", vault, "status", "--format", "json"], b"")
            .stdout(),
    )
    .expect("status --format json is JSON");
    assert_eq!(status["keks"][0]["id"], KEK_ID, "{status}");
    assert_eq!(status["keks"][0]["health"], "ok", "{status}");
    assert_eq!(status["keks"][0]["assurance"], "non-exportable", "{status}");
    assert_eq!(status["missing_keks"], serde_json::json!([]), "{status}");
    assert_eq!(status["secrets"], 2, "{status}");
    let list = ctl.ok(&["--vault", vault, "kek", "list"], b"").stdout();
    assert!(list.lines().any(|line| line.starts_with(KEK_ID)), "{list}");
    let check = ctl.ok(&["--vault", vault, "kek", "check"], b"").stdout();
    assert!(
        check
            .lines()
            .any(|line| line.starts_with(KEK_ID) && line.contains(" ok")),
        "{check}"
    );
}

#[test]
fn a_vault_on_the_token_stores_reads_seals_and_opens_with_aes_gcm() {
    in_private_token(|hsm| round_trip(hsm, "", 0x01, 61));
}

#[test]
fn a_vault_on_the_token_stores_reads_seals_and_opens_with_aes_key_wrap_pad() {
    in_private_token(|hsm| round_trip(hsm, KWP, 0x02, 73));
}

#[test]
fn a_recovery_file_kek_is_listed_next_to_the_token_kek_and_opens_alone() {
    in_private_token(|hsm| {
        let ctl = Vaultctl::new(hsm);
        let uri = hsm.kek_uri("kek-1");
        let recovery = format!("file:{}", ctl.path("recovery.key"));
        ctl.create_key(&uri);
        let vault = ctl.init("vault", &[&uri, &recovery]);
        let vault = vault.as_str();
        ctl.set(vault, "global", "api-key", "api-key-under-two-keks");

        let list = ctl.ok(&["--vault", vault, "kek", "list"], b"").stdout();
        let rows: Vec<&str> = list
            .lines()
            .filter(|line| !line.starts_with("mode:"))
            .collect();
        assert_eq!(rows.len(), 2, "{list}");
        assert!(
            rows[0].starts_with(KEK_ID) && rows[0].contains("any-of"),
            "{list}"
        );
        assert!(
            rows[1].starts_with("file:") && rows[1].contains("any-of"),
            "{list}"
        );
        assert!(rows[1].ends_with(&recovery), "{list}");
        let json: serde_json::Value = serde_json::from_str(
            &ctl.ok(&["--vault", vault, "kek", "list", "--format", "json"], b"")
                .stdout(),
        )
        .expect("kek list --format json is JSON");
        let ids: Vec<&str> = json["keks"]
            .as_array()
            .expect("keks")
            .iter()
            .filter_map(|kek| kek["id"].as_str())
            .collect();
        assert_eq!(ids.len(), 2, "{json}");
        assert_eq!(ids[0], KEK_ID, "{json}");
        assert!(
            ids[1].starts_with("file:") && ids[1].ends_with("#v1"),
            "{json}"
        );
        let file_id = ids[1].to_owned();

        let check = ctl.ok(&["--vault", vault, "kek", "check"], b"").stdout();
        for id in [KEK_ID, &file_id] {
            assert!(
                check
                    .lines()
                    .any(|line| line.starts_with(id) && line.contains(" ok")),
                "{check}"
            );
        }
        let status = ctl.ok(&["--vault", vault, "status"], b"").stdout();
        assert!(
            status.contains(&format!("{KEK_ID} (")) && status.contains("health ok; non-exportable"),
            "{status}"
        );
        assert!(
            status.contains(&format!("{file_id} ({recovery}) health ok; software")),
            "{status}"
        );

        // Either KEK alone opens the vault.
        for kek in [uri.as_str(), recovery.as_str()] {
            let run = ctl.ok(
                &["--vault", vault, "--kek", kek, "get", "global", "api-key"],
                b"",
            );
            assert_eq!(run.stdout(), "api-key-under-two-keks");
        }
    });
}

#[test]
fn a_key_deleted_from_the_token_is_named_and_the_recovery_kek_still_reads_everything() {
    in_private_token(|hsm| {
        let ctl = Vaultctl::new(hsm);
        let uri = hsm.kek_uri("kek-1");
        let recovery = format!("file:{}", ctl.path("recovery.key"));
        ctl.create_key(&uri);
        let vault = ctl.init("vault", &[&uri, &recovery]);
        let vault = vault.as_str();
        let secrets = [
            ("global", "db-password", "db-secret-before-deletion"),
            ("principal:bob", "token", "bob-secret-before-deletion"),
            (
                "channel:slack:ops",
                "webhook",
                "webhook-secret-before-deletion",
            ),
        ];
        for (scope, key, value) in secrets {
            ctl.set(vault, scope, key, value);
        }
        let data = "sealed before the key was deleted";
        ctl.keep_secret(data);
        let sealed = ctl.ok(&["--vault", vault, "seal"], data.as_bytes()).stdout;

        let deleted = hsm
            .pkcs11_tool()
            .args(["--login", "--pin", hsm.user_pin()])
            .args(["--delete-object", "--type", "secrkey", "--label", "kek-1"])
            .output()
            .expect("pkcs11-tool runs");
        assert!(
            deleted.status.success(),
            "pkcs11-tool --delete-object: {}",
            String::from_utf8_lossy(&deleted.stderr)
        );
        let before = snapshot(Path::new(vault));
        let missing_key = format!("PKCS#11 key \"kek-1\" {NOT_ON_TOKEN}");

        // Reads go through the recovery KEK, with a warning that names the missing key.
        for (scope, key, value) in secrets {
            let run = ctl.assert_get(vault, scope, key, value);
            assert!(
                run.stderr
                    .contains("warn: KEK pkcs11:token=vault-test;object=kek-1")
                    && run
                        .stderr
                        .contains(&format!("cannot be opened: {missing_key}"))
                    && run.stderr.contains("continuing with the other KEKs"),
                "{}",
                run.stderr
            );
        }
        let listed = ctl.ok(&["--vault", vault, "list"], b"").stdout();
        // The header, a row per secret, and how many there are.
        assert_eq!(listed.lines().count(), 2 + secrets.len(), "{listed}");
        assert_eq!(
            listed.lines().last(),
            Some(format!("{} secrets", secrets.len()).as_str()),
            "{listed}"
        );
        let opened = ctl.ok(&["--vault", vault, "open"], &sealed);
        assert_eq!(opened.stdout(), data);

        // What needs the token KEK names it.
        let not_available =
            format!("cannot wrap a new key while root KEK(s) {KEK_ID} are not available");
        let stderr = ctl.fails(
            &["--vault", vault, "set", "global", "new"],
            b"value-that-cannot-be-stored",
            &[&not_available, "vaultctl kek remove"],
        );
        assert!(stderr.contains(&missing_key), "{stderr}");
        ctl.fails(&["--vault", vault, "seal"], b"more data", &[&not_available]);
        ctl.fails(
            &[
                "--vault",
                vault,
                "--kek",
                &uri,
                "get",
                "global",
                "db-password",
            ],
            b"",
            &[&missing_key],
        );
        ctl.fails(&["kek", "info", &uri], b"", &[&missing_key]);
        let check = ctl.run(&["--vault", vault, "kek", "check"], b"");
        assert_eq!(check.code, Some(1), "{}", check.stderr);
        assert!(
            check.stderr.contains("error: 1 of 2 KEKs are not ok"),
            "{}",
            check.stderr
        );
        let rows = check.stdout();
        assert!(
            rows.lines().any(|line| line.starts_with(KEK_ID)
                && line.contains(" failed ")
                && line.contains(&missing_key)),
            "{rows}"
        );
        assert!(
            rows.lines()
                .any(|line| line.starts_with("file:") && line.contains(" ok")),
            "{rows}"
        );
        let status = ctl.ok(&["--vault", vault, "status"], b"").stdout();
        assert!(
            status.contains(&format!(
                "kek:     {KEK_ID} not available: reads work, new keys cannot be wrapped"
            )),
            "{status}"
        );
        assert!(status.contains("health ok; software"), "{status}");
        assert_unchanged(&before, vault, "commands without the token key");

        // The way out: remove the token KEK through the recovery KEK; writes work again.
        let removed = ctl
            .ok(&["--vault", vault, "kek", "remove", KEK_ID], b"")
            .stdout();
        assert!(
            removed.contains(&format!("removed kek {KEK_ID}")),
            "{removed}"
        );
        ctl.set(vault, "global", "new", "stored-after-removal");
        ctl.assert_get(vault, "global", "new", "stored-after-removal");
        for (scope, key, value) in secrets {
            let run = ctl.assert_get(vault, scope, key, value);
            assert!(!run.stderr.contains("kek-1"), "{}", run.stderr);
        }
    });
}

#[test]
fn a_wrong_pin_is_refused_naming_the_pin_source_and_never_the_pin() {
    in_private_token(|hsm| {
        let ctl = Vaultctl::new(hsm);
        let pin_file = hsm.dir().join("vault.pin");
        write_pin(&pin_file, hsm.user_pin());
        let uri = with_pin_file(hsm, &hsm.kek_uri("kek-1"), &pin_file);
        ctl.create_key(&uri);
        let vault = ctl.init("vault", &[&uri]);
        let vault = vault.as_str();
        ctl.set(vault, "global", "db-password", "secret-behind-the-pin");
        let sealed = ctl
            .ok(&["--vault", vault, "seal"], b"data behind the pin")
            .stdout;
        let before = snapshot(Path::new(vault));

        let wrong_pin = "wrong-pin-7c1e";
        ctl.keep_secret(wrong_pin);
        write_pin(&pin_file, wrong_pin);
        let refused = format!(
            "token \"vault-test\" refused the PIN from file {} (CKR_PIN_INCORRECT)",
            pin_file.display()
        );
        let expected = [refused.as_str(), "the vault does not retry a refused PIN"];
        let recovery = format!("file:{}", ctl.path("other.key"));
        let attempts: [(&[&str], &[u8]); 8] = [
            (&["--vault", vault, "get", "global", "db-password"], b""),
            (
                &["--vault", vault, "set", "global", "other"],
                b"value-never-stored",
            ),
            (&["--vault", vault, "list"], b""),
            (&["--vault", vault, "status"], b""),
            (&["--vault", vault, "seal"], b"data"),
            (&["--vault", vault, "open"], &sealed),
            (&["--vault", vault, "kek", "add", &recovery], b""),
            (&["kek", "info", &uri], b""),
        ];
        ctl.keep_secret("value-never-stored");
        for (args, stdin) in attempts {
            let run = ctl.run(args, stdin);
            assert_eq!(run.code, Some(1), "{args:?}: {}", run.stderr);
            assert!(
                run.stderr.contains(&format!("error: {}", expected[0]))
                    && run.stderr.contains(expected[1]),
                "{args:?}: {}",
                run.stderr
            );
        }
        assert!(
            !Path::new(&ctl.path("other.key")).exists(),
            "kek add made no key file"
        );
        let check = ctl.run(&["--vault", vault, "kek", "check"], b"");
        assert_eq!(check.code, Some(1), "{}", check.stderr);
        assert!(
            check.stdout().contains(&refused) && check.stderr.contains("1 of 1 KEKs are not ok"),
            "{}\n{}",
            check.stdout(),
            check.stderr
        );
        assert_unchanged(&before, vault, "commands with a wrong PIN");

        // The token did not lock: with the right PIN back everything works.
        write_pin(&pin_file, hsm.user_pin());
        ctl.assert_get(vault, "global", "db-password", "secret-behind-the-pin");
    });
}

/// A vault on the token's `kek-1`, then every way of using `bad` (by `--kek`, `kek add`,
/// `kek info`, `init`, and `kek create` when `create_fails`): exit code 1 with `expected`, and
/// the vault unchanged.
fn refused_everywhere(hsm: &SoftHsm, bad: &str, expected: &[&str], create_fails: bool) {
    let ctl = Vaultctl::new(hsm);
    let uri = hsm.kek_uri("kek-1");
    ctl.create_key(&uri);
    let vault = ctl.init("vault", &[&uri]);
    let vault = vault.as_str();
    ctl.set(vault, "global", "db-password", "secret-of-a-good-vault");
    let before = snapshot(Path::new(vault));

    for args in [
        &[
            "--vault",
            vault,
            "--kek",
            bad,
            "get",
            "global",
            "db-password",
        ][..],
        &["--vault", vault, "--kek", bad, "list"],
        &["--vault", vault, "--kek", bad, "status"],
        &["--vault", vault, "kek", "add", "--existing", bad],
        &["--vault", vault, "kek", "add", bad],
        &["kek", "info", bad],
    ] {
        ctl.fails(args, b"", expected);
    }
    ctl.fails(
        &["--vault", vault, "--kek", bad, "set", "global", "x"],
        b"value-x",
        expected,
    );
    if create_fails {
        ctl.fails(&["kek", "create", bad], b"", expected);
    }
    let fresh = ctl.path("fresh-vault");
    ctl.fails(&["--vault", &fresh, "init", "--kek", bad], b"", expected);
    assert!(
        !Path::new(&fresh).join("vault.json").exists(),
        "a failed init pinned nothing"
    );
    assert_unchanged(&before, vault, "commands with a bad KEK URI");
    let list = ctl.ok(&["--vault", vault, "kek", "list"], b"").stdout();
    assert_eq!(list.lines().count(), 2, "kek add added nothing:\n{list}");
    ctl.assert_get(vault, "global", "db-password", "secret-of-a-good-vault");
}

#[test]
fn a_missing_module_is_a_clear_error() {
    in_private_token(|hsm| {
        let bad = hsm.kek_uri("kek-1").replace(
            &format!("module-path={}", hsm.module_path().display()),
            "module-path=/nonexistent/lib.so",
        );
        assert!(bad.contains("module-path=/nonexistent/lib.so"), "{bad}");
        refused_everywhere(
            hsm,
            &bad,
            &[
                "cannot load PKCS#11 module /nonexistent/lib.so: no such file",
                "check module-path in the KEK URI",
            ],
            true,
        );
    });
}

#[test]
fn an_unknown_token_label_is_a_clear_error() {
    in_private_token(|hsm| {
        let bad = hsm
            .kek_uri("kek-1")
            .replace("token=vault-test;", "token=no-such-token;");
        assert!(bad.contains("token=no-such-token;"), "{bad}");
        refused_everywhere(
            hsm,
            &bad,
            &[
                "no PKCS#11 token matches \"no-such-token\"",
                "tokens present: \"vault-test\"",
                "SOFTHSM2_CONF",
            ],
            true,
        );
    });
}

#[test]
fn an_unknown_key_label_is_a_clear_error() {
    in_private_token(|hsm| {
        let bad = hsm.kek_uri("no-such-key");
        let missing = format!("PKCS#11 key \"no-such-key\" {NOT_ON_TOKEN}");
        refused_everywhere(
            hsm,
            &bad,
            &[missing.as_str(), "vaultctl kek create URI"],
            false,
        );
    });
}

#[test]
fn a_tampered_stanza_is_rejected_with_either_mechanism() {
    in_private_token(|hsm| {
        let ctl = Vaultctl::new(hsm);
        for (label, x_mechanism) in [("kek-gcm", ""), ("kek-kwp", KWP)] {
            let uri = format!("{}{x_mechanism}", hsm.kek_uri(label));
            let kek_id = format!("pkcs11:vault-test/{label}#v1");
            ctl.create_key(&uri);
            let vault = ctl.init(label, &[&uri]);
            let vault = vault.as_str();
            let data = format!("caller data under {label}");
            ctl.keep_secret(&data);
            let json = envelope_json(&ctl.ok(
                &["--vault", vault, "seal", "--format", "json"],
                data.as_bytes(),
            ));
            let before = snapshot(Path::new(vault));
            let open = |envelope: &serde_json::Value| {
                let file = ctl.path(&format!("{label}.json"));
                fs::write(&file, envelope.to_string()).expect("write the envelope");
                ctl.run(&["--vault", vault, "open", "--in", &file], b"")
            };
            assert_eq!(open(&json).stdout(), data, "the untampered envelope opens");

            let len = stanza_body(&json, "pkcs11").len();
            let tampered = [
                (
                    "a flipped bit in the wrapped key",
                    with_stanza_body(&json, "pkcs11", |b| b[20] ^= 0x01),
                ),
                (
                    "a flipped bit in the last byte",
                    with_stanza_body(&json, "pkcs11", |b| b[len - 1] ^= 0x80),
                ),
                (
                    "the other mechanism's tag",
                    with_stanza_body(&json, "pkcs11", |b| b[0] ^= 0x03),
                ),
                (
                    "a truncated body",
                    with_stanza_body(&json, "pkcs11", |b| b.truncate(len - 1)),
                ),
            ];
            for (what, envelope) in &tampered {
                let run = open(envelope);
                assert_eq!(run.code, Some(1), "{label}, {what}: {}", run.stderr);
                let expected = format!("error: KEK {kek_id} {REJECTED}");
                assert!(
                    run.stderr.contains(&expected),
                    "{label}, {what}: {}",
                    run.stderr
                );
                assert!(run.stdout.is_empty(), "{label}, {what}: nothing opened");
            }
            assert_unchanged(&before, vault, "opening tampered envelopes");

            // With a recovery KEK too: the token KEK alone still rejects the tampered stanza,
            // while the vault's pinned KEKs open the envelope through the intact file stanza.
            let recovery = format!("file:{}", ctl.path(&format!("{label}-recovery.key")));
            let both = ctl.init(&format!("{label}-with-recovery"), &[&uri, &recovery]);
            let sealed = envelope_json(&ctl.ok(
                &["--vault", &both, "seal", "--format", "json"],
                data.as_bytes(),
            ));
            let tampered = with_stanza_body(&sealed, "pkcs11", |b| b[20] ^= 0x01);
            let file = ctl.path(&format!("{label}-both.json"));
            fs::write(&file, tampered.to_string()).expect("write the envelope");
            ctl.fails(
                &["--vault", &both, "--kek", &uri, "open", "--in", &file],
                b"",
                &[&kek_id, REJECTED],
            );
            let run = ctl.ok(&["--vault", &both, "open", "--in", &file], b"");
            assert_eq!(run.stdout(), data);
        }
    });
}

#[test]
fn a_pin_value_uri_works_with_a_warning_and_the_pin_is_never_stored() {
    in_private_token(|hsm| {
        let ctl = Vaultctl::new(hsm);
        let with_source = hsm.kek_uri("kek-1");
        ctl.create_key(&with_source);
        let (without_pin, _) = with_source
            .split_once("&pin-source=")
            .expect("the fixture's URI ends with its pin-source");
        let with_value = format!("{without_pin}&pin-value={}", hsm.user_pin());
        let warning =
            "warn: the PIN for PKCS#11 token vault-test is given with pin-value in the KEK URI";

        let info = ctl.run(&["kek", "info", &with_value], b"");
        assert_eq!(info.code, Some(0), "{}", info.stderr);
        assert!(info.stderr.contains(warning), "{}", info.stderr);
        assert!(
            info.stdout()
                .contains(&format!("uri:                    {without_pin}\n")),
            "the canonical URI drops pin-value:\n{}",
            info.stdout()
        );
        let vault = ctl.init("vault", &[&with_value]);
        let vault = vault.as_str();
        for (path, contents) in snapshot(Path::new(vault)) {
            assert!(
                !contents
                    .windows(hsm.user_pin().len())
                    .any(|window| window == hsm.user_pin().as_bytes()),
                "{} holds the PIN",
                path.display()
            );
        }
        // The pinned URI has no PIN: opening needs one, by --kek (or a pin-source).
        ctl.fails(
            &["--vault", vault, "list"],
            b"",
            &["token \"vault-test\" needs a PIN", "pin-source=file:"],
        );
        ctl.ok(
            &["--vault", vault, "--kek", &with_value, "set", "global", "k"],
            b"pin-value-secret",
        );
        ctl.keep_secret("pin-value-secret");
        let got = ctl.ok(
            &[
                "--vault",
                vault,
                "--kek",
                &with_source,
                "get",
                "global",
                "k",
            ],
            b"",
        );
        assert_eq!(got.stdout(), "pin-value-secret");
    });
}

/// When a later PKCS#11 KEK cannot be opened, the key file made for an earlier `file:` KEK
/// is removed again, so the corrected command runs.
#[test]
fn a_failed_init_leaves_no_key_file_behind() {
    in_private_token(|hsm| {
        let ctl = Vaultctl::new(hsm);
        let uri = hsm.kek_uri("kek-1");
        ctl.create_key(&uri);
        let key_file = ctl.path("first.key");
        let file_kek = format!("file:{key_file}");
        let missing = hsm.kek_uri("no-such-key");
        let dir = ctl.path("vault");
        ctl.fails(
            &[
                "--vault", &dir, "init", "--kek", &file_kek, "--kek", &missing,
            ],
            b"",
            &["PKCS#11 key \"no-such-key\""],
        );
        assert!(
            !Path::new(&key_file).exists(),
            "the failed init left {key_file}"
        );
        ctl.init("vault", &[&file_kek, &uri]);
    });
}

#[test]
fn a_pin_from_an_environment_variable_works_and_only_its_name_is_pinned() {
    in_private_token(|hsm| {
        let ctl = Vaultctl::new(hsm);
        let uri = hsm.kek_uri("kek-1").replace(
            &format!("file:{}", hsm.pin_file().display()),
            "env:VAULT_TEST_PKCS11_PIN",
        );
        assert!(uri.contains("pin-source=env:"), "{uri}");
        ctl.fails(
            &["kek", "create", &uri],
            b"",
            &["environment variable VAULT_TEST_PKCS11_PIN is not set; set it to the token's user PIN"],
        );
        ctl.set_env("VAULT_TEST_PKCS11_PIN", hsm.user_pin());
        ctl.create_key(&uri);
        let dir = ctl.init("vault", &[&uri]);
        ctl.keep_secret("env-pin-secret");
        ctl.set(&dir, "global", "k", "env-pin-secret");
        ctl.assert_get(&dir, "global", "k", "env-pin-secret");
        let pinned = fs::read_to_string(Path::new(&dir).join("vault.json")).expect("vault.json");
        assert!(
            pinned.contains("pin-source=env:VAULT_TEST_PKCS11_PIN"),
            "{pinned}"
        );
        assert!(!pinned.contains(hsm.user_pin()), "the PIN is in vault.json");
    });
}

#[test]
fn init_defaults_to_tiered() {
    in_private_token(|hsm| {
        let ctl = Vaultctl::new(hsm);
        let uri = hsm.kek_uri("kek-1");
        ctl.create_key(&uri);
        let dir = ctl.path("vault");
        let out = ctl
            .ok(&["--vault", &dir, "init", "--kek", &uri], b"")
            .stdout();
        assert!(out.contains("mode: tiered"), "{out}");
        ctl.keep_secret("tiered-secret");
        ctl.set(&dir, "global", "k", "tiered-secret");
        ctl.assert_get(&dir, "global", "k", "tiered-secret");
    });
}
