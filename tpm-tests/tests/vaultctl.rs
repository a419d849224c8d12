//! The real `vaultctl` binary against a private swtpm per test: `kek create` persisting the
//! storage root key and `kek info` showing it, vaults (tiered and direct) whose root KEKs are
//! the TPM KEK bound to PCR 16 and a recovery `file:` KEK, every everyday command on them, and
//! the failures an operator meets: PCR 16 changed, the TPM cleared, swtpm down, a tampered
//! stanza. Each failure is exit code 1 with a message that says what is wrong and how to
//! recover, leaves the vault directory as it was, and the recovery KEK still reads everything;
//! no command shows a secret value on stderr.
//!
//! The binary is this build's `vaultctl`, built first when cargo runs the tests and linked into
//! the swtpm's private directory (`test_support::vaultctl_binary`). Each run has
//! `TSS2_LOG=all+none`, which silences tpm2-tss's own logging of the TPM errors these tests
//! provoke.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fs;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use test_support::{ErrorLine, Run};
use tpm_tests::Swtpm;

/// The id of the TPM KEK (default label).
const KEK_ID: &str = "tpm2:tpm#v1";
/// The persistent handle `kek create` is given.
const SRK: &str = "0x81000001";
/// What a PCR-policy failure says.
const PCR_CHANGED: &str = "PCRs sha256:16 no longer hold the values the DEK was sealed to";
/// How every TPM failure that a recovery KEK cures says to recover.
const USE_RECOVERY: &str = "open the vault with another KEK of its keyring (e.g. the recovery KEK)";
/// The secrets each vault holds: (scope, key, value).
const SECRETS: [(&str, &str, &str); 3] = [
    ("global", "db-password", "hunter2-on-the-tpm"),
    ("principal:alice", "api-token", "alice-token-0xdeadbeef"),
    ("skill:mail", "smtp", "smtp-password-behind-pcr16"),
];
/// `get` of the secret every vault holds.
const GET_DB_PASSWORD: [&str; 3] = ["get", "global", "db-password"];
/// Caller data sealed with `vaultctl seal`.
const CALLER_DATA: &str = "caller data sealed by the TPM vault";

/// vaultctl against one swtpm (which the test may restart meanwhile), with its home in the
/// swtpm's private directory and `TSS2_LOG=all+none`; no run shows a secret value or a
/// tpm2-tss log line on stderr, and a failure's last `error:` line is vaultctl's own.
struct Vaultctl {
    tcti: String,
    dir: PathBuf,
    runner: test_support::Vaultctl<'static>,
}

impl Deref for Vaultctl {
    type Target = test_support::Vaultctl<'static>;

    fn deref(&self) -> &Self::Target {
        &self.runner
    }
}

impl Vaultctl {
    fn new(tpm: &Swtpm) -> Self {
        let binary = test_support::vaultctl_binary(tpm.dir());
        let runner =
            test_support::Vaultctl::new(move || Command::new(&binary), &tpm.dir().join("home"));
        runner.set_env("TSS2_LOG", "all+none");
        for needle in [":esys:", ":tcti:"] {
            runner.forbid_on_stderr(needle);
        }
        runner.check_error_line(ErrorLine::Last);
        for (_, _, value) in SECRETS {
            runner.keep_secret(value);
        }
        runner.keep_secret(CALLER_DATA);
        Self {
            tcti: tpm.tcti(),
            dir: tpm.dir().to_owned(),
            runner,
        }
    }

    /// `tpm2:tcti=<the swtpm><extra>`.
    fn uri(&self, extra: &str) -> String {
        format!("tpm2:tcti={}{extra}", self.tcti)
    }

    /// A path in the swtpm's private directory, as a string for the command line.
    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// [`fails`](test_support::Vaultctl::fails) of `command` on `vault` with `--kek kek`.
    fn fails_with_kek(
        &self,
        vault: &str,
        kek: &str,
        command: &[&str],
        stdin: &[u8],
        expected: &[&str],
    ) -> String {
        let mut args = vec!["--vault", vault, "--kek", kek];
        args.extend_from_slice(command);
        self.fails(&args, stdin, expected)
    }

    /// `kek info uri` as a map from field name to value (`pcr 16` lines included).
    fn info(&self, uri: &str) -> BTreeMap<String, String> {
        let out = self.ok(&["kek", "info", uri], b"").stdout();
        out.lines()
            .filter_map(|line| {
                let line = line.trim();
                match line.strip_prefix("pcr ") {
                    Some(rest) => {
                        let (index, value) = rest.split_once(' ')?;
                        Some((format!("pcr {index}"), value.trim().to_owned()))
                    }
                    None => line
                        .split_once(':')
                        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned())),
                }
            })
            .collect()
    }

    /// `init` of the vault in `<private dir>/<name>` with `keks` and `--mode mode`; returns
    /// the directory and checks what init says.
    fn init(&self, name: &str, keks: &[&str], mode: &str) -> String {
        let dir = self.path(name);
        let mut args = vec!["--vault", dir.as_str(), "init", "--mode", mode];
        for kek in keks {
            args.extend(["--kek", kek]);
        }
        let out = self.ok(&args, b"").stdout();
        assert!(out.starts_with("initialised vault at "), "{out}");
        assert!(out.contains("store: sqlite\n"), "{out}");
        assert!(out.contains(&format!("mode: {mode}\n")), "{out}");
        dir
    }

    /// Sets [`SECRETS`] and one doomed secret, which it deletes; checks `list`.
    fn fill(&self, vault: &str) {
        for (scope, key, value) in SECRETS {
            let out = self
                .ok(&["--vault", vault, "set", scope, key], value.as_bytes())
                .stdout();
            assert_eq!(out, format!("stored {scope} {key} version 1\n"));
        }
        let out = self
            .ok(
                &["--vault", vault, "set", "global", "db-password"],
                b"hunter3-newer",
            )
            .stdout();
        assert_eq!(out, "stored global db-password version 2\n");
        self.ok(
            &["--vault", vault, "set", "global", "doomed"],
            b"short-lived",
        );
        let out = self
            .ok(&["--vault", vault, "delete", "global", "doomed"], b"")
            .stdout();
        assert_eq!(out, "deleted global doomed\n");
        self.fails(
            &["--vault", vault, "get", "global", "doomed"],
            b"",
            &["secret not found: global doomed"],
        );
        let listed = self.ok(&["--vault", vault, "list", "--format", "json"], b"");
        let rows: serde_json::Value =
            serde_json::from_slice(&listed.stdout).expect("list --format json");
        let mut names: Vec<(String, String, u64)> = rows
            .as_array()
            .expect("an array")
            .iter()
            .map(|row| {
                (
                    row["scope"].as_str().expect("scope").to_owned(),
                    row["key"].as_str().expect("key").to_owned(),
                    row["versions"].as_u64().expect("versions"),
                )
            })
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                ("global".to_owned(), "db-password".to_owned(), 2),
                ("principal:alice".to_owned(), "api-token".to_owned(), 1),
                ("skill:mail".to_owned(), "smtp".to_owned(), 1),
            ]
        );
        let table = self.ok(&["--vault", vault, "list"], b"").stdout();
        for (_, _, value) in SECRETS {
            assert!(!table.contains(value), "list shows a value:\n{table}");
        }
    }

    /// Every secret of [`fill`](Self::fill) reads back (`extra` are the arguments before
    /// the command, e.g. `--kek URI`); the first version of db-password too.
    fn assert_reads_everything(&self, vault: &str, extra: &[&str], envelope: &str) {
        let args = |rest: &[&'static str]| {
            let mut args = vec!["--vault", vault];
            args.extend_from_slice(extra);
            args.extend_from_slice(rest);
            args
        };
        let got = |run: Run| run.stdout();
        assert_eq!(
            got(self.ok(&args(&["get", "global", "db-password"]), b"")),
            "hunter3-newer"
        );
        assert_eq!(
            got(self.ok(
                &args(&["get", "global", "db-password", "--version", "1"]),
                b""
            )),
            SECRETS[0].2
        );
        for (scope, key, value) in &SECRETS[1..] {
            let mut get_args = args(&["get"]);
            get_args.extend([*scope, *key]);
            assert_eq!(got(self.ok(&get_args, b"")), *value, "{scope} {key}");
        }
        let mut open_args = args(&["open", "--in"]);
        open_args.push(envelope);
        assert_eq!(got(self.ok(&open_args, b"")), CALLER_DATA);
    }

    /// `seal --format json` of [`CALLER_DATA`] into `<private dir>/<name>`; returns the path.
    fn seal(&self, vault: &str, name: &str) -> String {
        let run = self.ok(
            &["--vault", vault, "seal", "--format", "json"],
            CALLER_DATA.as_bytes(),
        );
        let json: serde_json::Value =
            serde_json::from_slice(&run.stdout).expect("seal --format json");
        let path = self.path(name);
        fs::write(&path, json.to_string()).expect("write the envelope");
        path
    }
}

/// Every file below `dir` with its contents, to show that a failed command changed nothing.
fn snapshot(dir: &str) -> BTreeMap<PathBuf, Vec<u8>> {
    let files: BTreeMap<PathBuf, Vec<u8>> = compliance::state_files_below(Path::new(dir))
        .into_iter()
        .map(|path| {
            let contents = fs::read(&path).expect("a vault file can be read");
            (path, contents)
        })
        .collect();
    assert!(!files.is_empty(), "{dir} has no files");
    files
}

/// Kills `tpm`'s swtpm (SIGKILL: no orderly shutdown).
fn kill(tpm: &Swtpm) {
    let killed = Command::new("kill")
        .args(["-KILL", &tpm.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
}

/// Asserts that `stderr` has one `error:` line.
fn assert_one_error_line(stderr: &str) {
    let errors = stderr
        .lines()
        .filter(|line| line.starts_with("error: "))
        .count();
    assert_eq!(errors, 1, "{stderr}");
}

/// `uri`'s canonical form as `kek create` and `init` print it.
fn canonical(uri: &str) -> String {
    kek_providers::tpm::Tpm2Uri::parse(uri)
        .expect("a valid tpm2: URI")
        .to_canonical()
}

#[test]
fn kek_create_persists_the_srk_and_kek_info_shows_the_tpm() {
    let Some(tpm) = Swtpm::start() else { return };
    let ctl = Vaultctl::new(&tpm);
    let uri = ctl.uri(&format!(";srk={SRK}"));

    // Nothing there yet: info says to run kek create.
    ctl.fails(
        &["kek", "info", &uri],
        b"",
        &[
            "TPM persistent handle 0x81000001 (srk= in the KEK URI) holds no key",
            "run `vaultctl kek create URI`",
        ],
    );

    let out = ctl.ok(&["kek", "create", &uri], b"").stdout();
    let name = out
        .strip_prefix("persisted the ECC P-256 storage root key at 0x81000001 (name ")
        .and_then(|rest| rest.split_once(")\n"))
        .map(|(name, _)| name.to_owned())
        .unwrap_or_else(|| panic!("kek create: {out}"));
    assert!(
        name.len() == 68 && name.starts_with("000b"),
        "a SHA-256 TPM name: {name}"
    );
    assert!(
        out.contains(&format!("KEK URI: {}\n", canonical(&uri))),
        "{out}"
    );
    assert!(out.contains("vaultctl init --kek URI"), "{out}");

    // Again: the same key is there already.
    let out = ctl.ok(&["kek", "create", &uri], b"").stdout();
    assert!(
        out.starts_with(&format!(
            "the ECC P-256 storage root key is persistent at 0x81000001 already (name {name})\n"
        )),
        "{out}"
    );
    // Without srk= there is nothing to persist; the primary is the same key.
    let out = ctl.ok(&["kek", "create", &ctl.uri("")], b"").stdout();
    assert!(
        out.contains(&format!(
            "ECC P-256 primary (name {name}), derived at each start"
        )),
        "{out}"
    );
    assert!(out.contains("add ;srk=0x81000001 to the URI"), "{out}");

    let with_pcrs = format!("{uri};pcrs=sha256:16");
    let info = ctl.info(&with_pcrs);
    let field = |name: &str| info.get(name).map(String::as_str);
    assert_eq!(
        field("uri"),
        Some(canonical(&with_pcrs).as_str()),
        "{info:?}"
    );
    assert_eq!(field("tcti"), Some(tpm.tcti().as_str()), "{info:?}");
    assert_eq!(field("manufacturer"), Some("IBM"), "{info:?}");
    assert_eq!(
        field("kind"),
        Some("software TPM (simulator): not dedicated hardware"),
        "{info:?}"
    );
    assert_eq!(field("srk"), Some("persistent at 0x81000001"), "{info:?}");
    assert_eq!(field("srk name"), Some(name.as_str()), "{info:?}");
    assert_eq!(field("pcrs"), Some("sha256:16"), "{info:?}");
    assert_eq!(field("pcr 16"), Some(tpm.pcr16().as_str()), "{info:?}");
    tpm.extend_pcr16(b"kek info shows the change");
    let changed = ctl.info(&with_pcrs);
    assert_eq!(
        changed.get("pcr 16").map(String::as_str),
        Some(tpm.pcr16().as_str())
    );
    assert_ne!(changed.get("pcr 16"), info.get("pcr 16"));
    let transient = ctl.info(&ctl.uri(""));
    assert!(
        transient["srk"].starts_with("transient ECC P-256 primary"),
        "{transient:?}"
    );
    assert_eq!(transient["srk name"], name);

    // Another key at another handle: never replaced.
    let context = ctl.path("other-primary.ctx");
    for (program, args) in [
        (
            "tpm2_createprimary",
            vec![
                "--hierarchy=o",
                "--key-algorithm=ecc384",
                "--key-context",
                &context,
            ],
        ),
        (
            "tpm2_evictcontrol",
            vec!["--hierarchy=o", "--object-context", &context, "0x81000002"],
        ),
        ("tpm2_flushcontext", vec!["--transient-object"]),
    ] {
        let output = tpm
            .command(program)
            .args(&args)
            .output()
            .expect("run tpm2-tools");
        assert!(output.status.success(), "{program}: {output:?}");
    }
    let occupied = ctl.uri(";srk=0x81000002");
    ctl.fails(
        &["kek", "create", &occupied],
        b"",
        &[
            "TPM persistent handle 0x81000002 already holds another key",
            "kek create never replaces a key",
        ],
    );
    let other = ctl.info(&occupied);
    assert_ne!(other["srk name"], name, "{other:?}");

    // A URI the parser refuses: named, and nothing is asked of the TPM.
    ctl.fails(
        &["kek", "create", &format!("{uri};color=blue")],
        b"",
        &["color"],
    );
}

/// A vault in `mode` on the TPM KEK `tpm_extra` (bound to PCR 16) and a recovery file KEK;
/// every everyday command; then PCR 16 changes (the TPM KEK alone fails naming the PCRs,
/// the pinned KEKs and the recovery KEK read everything), is reset (the TPM KEK alone reads
/// everything again), and the TPM is cleared (the TPM KEK alone fails saying so, the
/// recovery KEK reads everything). Failed commands leave the vault dir as it was.
fn vault_on_the_tpm(mode: &str, tpm_extra: &str, cleared: &[&str]) {
    let Some(mut tpm) = Swtpm::start() else {
        return;
    };
    let ctl = Vaultctl::new(&tpm);
    let tpm_uri = ctl.uri(tpm_extra);
    if tpm_extra.contains(";srk=") {
        ctl.ok(&["kek", "create", &tpm_uri], b"");
    }
    let recovery = format!("file:{}", ctl.path("recovery.key"));
    let vault = ctl.init("vault", &[&tpm_uri, &recovery], mode);
    let vault = vault.as_str();
    let pinned = fs::read_to_string(Path::new(vault).join("vault.json")).expect("vault.json");
    assert!(pinned.contains(&canonical(&tpm_uri)), "{pinned}");
    ctl.fill(vault);
    let envelope = ctl.seal(vault, "sealed.json");
    ctl.assert_reads_everything(vault, &[], &envelope);
    ctl.assert_reads_everything(vault, &["--kek", &tpm_uri], &envelope);

    let status = ctl.ok(&["--vault", vault, "status"], b"").stdout();
    assert!(status.contains(&format!("mode:    {mode}\n")), "{status}");
    assert!(status.contains("secrets: 3\n"), "{status}");
    assert!(
        status.contains(&format!(
            "kek:     {KEK_ID} ({}) health ok; non-exportable, platform-bound\n",
            canonical(&tpm_uri)
        )),
        "{status}"
    );
    let json = ctl.ok(&["--vault", vault, "status", "--format", "json"], b"");
    let json: serde_json::Value =
        serde_json::from_slice(&json.stdout).expect("status --format json");
    assert_eq!(json["mode"], mode);
    assert_eq!(json["keks"].as_array().map(Vec::len), Some(2), "{json}");
    assert_eq!(json["missing_keks"], serde_json::json!([]), "{json}");

    // PCR 16 changes.
    tpm.extend_pcr16(b"another boot");
    let before = snapshot(vault);
    for command in [
        &GET_DB_PASSWORD[..],
        &["list"],
        &["status"],
        &["open", "--in", &envelope],
    ] {
        ctl.fails_with_kek(vault, &tpm_uri, command, b"", &[PCR_CHANGED, USE_RECOVERY]);
    }
    ctl.fails_with_kek(
        vault,
        &tpm_uri,
        &["set", "global", "x"],
        b"value-x",
        &[PCR_CHANGED],
    );
    assert_eq!(
        snapshot(vault),
        before,
        "failed commands changed the vault dir"
    );
    // The pinned KEKs: the TPM one is left out with a warning, the recovery one reads.
    let run = ctl.ok(&["--vault", vault, "get", "global", "db-password"], b"");
    assert_eq!(run.stdout(), "hunter3-newer");
    assert!(
        run.stderr.contains(&format!(
            "warn: KEK {KEK_ID} did not open its canary, so it is left out"
        )) && run.stderr.contains(PCR_CHANGED),
        "{}",
        run.stderr
    );
    ctl.assert_reads_everything(vault, &[], &envelope);
    ctl.assert_reads_everything(vault, &["--kek", &recovery], &envelope);
    let status = ctl.ok(&["--vault", vault, "status"], b"").stdout();
    assert!(
        status.contains(&format!(
            "kek:     {KEK_ID} not available: reads work, new keys cannot be wrapped"
        )),
        "{status}"
    );

    // PCR 16 back to its value: the TPM KEK alone works again.
    tpm.reset_pcr16();
    ctl.assert_reads_everything(vault, &["--kek", &tpm_uri], &envelope);
    let out = ctl
        .ok(
            &["--vault", vault, "set", "global", "after-reset"],
            b"after-reset-value",
        )
        .stdout();
    assert!(
        out.starts_with("stored global after-reset version 1"),
        "{out}"
    );
    ctl.keep_secret("after-reset-value");

    // The TPM is cleared.
    tpm.clear();
    let before = snapshot(vault);
    for command in [&GET_DB_PASSWORD[..], &["open", "--in", &envelope]] {
        ctl.fails_with_kek(vault, &tpm_uri, command, b"", cleared);
    }
    assert_eq!(
        snapshot(vault),
        before,
        "failed commands changed the vault dir"
    );
    ctl.assert_reads_everything(vault, &[], &envelope);
    ctl.assert_reads_everything(vault, &["--kek", &recovery], &envelope);
    let run = ctl.ok(&["--vault", vault, "get", "global", "after-reset"], b"");
    assert_eq!(run.stdout(), "after-reset-value");
    assert!(
        run.stderr.starts_with("warn: ") && run.stderr.contains(cleared[0]),
        "warns about the TPM KEK: {}",
        run.stderr
    );
}

#[test]
fn a_tiered_vault_on_a_persisted_srk_survives_a_pcr_change_and_a_cleared_tpm() {
    vault_on_the_tpm(
        "tiered",
        &format!(";srk={SRK};pcrs=sha256:16"),
        &[
            "TPM persistent handle 0x81000001 (srk= in the KEK URI) holds no key",
            "the TPM was cleared or this is another TPM",
            USE_RECOVERY,
        ],
    );
}

#[test]
fn a_direct_vault_on_the_primary_survives_a_pcr_change_and_a_cleared_tpm() {
    vault_on_the_tpm(
        "direct",
        ";pcrs=sha256:16",
        &[
            "the secret was sealed under another TPM storage root key",
            "the TPM was cleared, this is another TPM",
            USE_RECOVERY,
        ],
    );
}

#[test]
fn swtpm_down_is_named_and_the_recovery_kek_reads_meanwhile() {
    let Some(mut tpm) = Swtpm::start() else {
        return;
    };
    let ctl = Vaultctl::new(&tpm);
    let tpm_uri = ctl.uri("");
    let recovery = format!("file:{}", ctl.path("recovery.key"));
    let vault = ctl.init("vault", &[&tpm_uri, &recovery], "tiered");
    let vault = vault.as_str();
    ctl.fill(vault);
    let envelope = ctl.seal(vault, "sealed.json");

    kill(&tpm);
    let unreachable = format!("cannot reach the TPM through {}", tpm.tcti());
    ctl.fails_with_kek(
        vault,
        &tpm_uri,
        &GET_DB_PASSWORD,
        b"",
        &[&unreachable, "check that the simulator is running"],
    );
    let run = ctl.ok(&["--vault", vault, "get", "global", "db-password"], b"");
    assert_eq!(run.stdout(), "hunter3-newer");
    assert!(run.stderr.contains(&unreachable), "{}", run.stderr);

    tpm.restart();
    ctl.assert_reads_everything(vault, &["--kek", &tpm_uri], &envelope);
    let status = ctl.ok(&["--vault", vault, "status"], b"").stdout();
    assert!(
        status.contains(&format!(
            "kek:     {KEK_ID} ({}) health ok",
            canonical(&tpm_uri)
        )),
        "{status}"
    );
}

#[test]
fn a_tampered_tpm_stanza_is_rejected_and_the_recovery_stanza_still_opens() {
    let Some(tpm) = Swtpm::start() else { return };
    let ctl = Vaultctl::new(&tpm);
    let tpm_uri = ctl.uri("");
    let recovery = format!("file:{}", ctl.path("recovery.key"));
    let vault = ctl.init("vault", &[&tpm_uri, &recovery], "direct");
    let vault = vault.as_str();
    let path = ctl.seal(vault, "sealed.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&path).expect("read")).expect("JSON");
    let stanza = json["stanzas"]
        .as_array_mut()
        .expect("stanzas")
        .iter_mut()
        .find(|stanza| stanza["kind"] == "tpm2")
        .expect("a tpm2 stanza");
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut body = b64
        .decode(stanza["body"].as_str().expect("a body"))
        .expect("base64");
    // A bit of the private part, near the end.
    let at = body.len() - 10;
    body[at] ^= 0x01;
    stanza["body"] = b64.encode(&body).into();
    let tampered = ctl.path("tampered.json");
    fs::write(&tampered, json.to_string()).expect("write");
    let before = snapshot(vault);
    ctl.fails_with_kek(
        vault,
        &tpm_uri,
        &["open", "--in", &tampered],
        b"",
        &[&format!(
            "KEK {KEK_ID} rejected its wrapped key: the stanza was tampered with"
        )],
    );
    assert_eq!(snapshot(vault), before);
    let run = ctl.ok(&["--vault", vault, "open", "--in", &tampered], b"");
    assert_eq!(run.stdout(), CALLER_DATA);
}

/// A failing command says what failed once, in vaultctl's terms: tss-esapi's own log records
/// (`log::error!` in the crate, e.g. "Error in unsealing: a policy check failed") are not
/// shown as further `error:` lines before it.
#[test]
fn a_tpm_failure_is_one_error_line() {
    let Some(tpm) = Swtpm::start() else { return };
    let ctl = Vaultctl::new(&tpm);
    let tpm_uri = ctl.uri(";pcrs=sha256:16");
    let recovery = format!("file:{}", ctl.path("recovery.key"));
    let vault = ctl.init("vault", &[&tpm_uri, &recovery], "direct");
    let vault = vault.as_str();
    ctl.fill(vault);
    tpm.extend_pcr16(b"another boot");
    let stderr = ctl.fails_with_kek(vault, &tpm_uri, &GET_DB_PASSWORD, b"", &[PCR_CHANGED]);
    assert_one_error_line(&stderr);
    // The pinned KEKs read, with one warning about the TPM KEK and nothing else.
    let run = ctl.ok(&["--vault", vault, "get", "global", "db-password"], b"");
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    // The TPM goes away (its private directory, with the vault, stays).
    kill(&tpm);
    let stderr = ctl.fails_with_kek(
        vault,
        &tpm_uri,
        &GET_DB_PASSWORD,
        b"",
        &["cannot reach the TPM through"],
    );
    assert_one_error_line(&stderr);
}

/// The TPM KEK, built as the vault builds it, for the attacker to seal with.
fn attackers_tpm_kek(uri: &str, vault: &str) -> std::sync::Arc<dyn envelope::KekProvider> {
    let env = kek_providers::KekEnv {
        vault_dir: Path::new(vault),
    };
    kek_providers::open(uri, &env)
        .expect("open the TPM KEK")
        .provider
}

/// Someone who can write the vault directory and send this TPM commands (TPM2_Create needs
/// no secret), but holds no KEK secret, seals a value for a secret's own context, and an epoch
/// key of their choosing: both open with the TPM, and both are refused, because neither
/// carries this vault's tag or MAC.
#[test]
fn a_value_and_an_epoch_sealed_by_someone_else_with_the_tpm_are_refused() {
    let Some(tpm) = Swtpm::start() else { return };
    let ctl = Vaultctl::new(&tpm);
    let tpm_uri = ctl.uri("");
    let recovery = format!("file:{}", ctl.path("recovery.key"));

    let direct = ctl.init("direct", &[&tpm_uri, &recovery], "direct");
    ctl.fill(&direct);
    let kek = attackers_tpm_kek(&tpm_uri, &direct);
    compliance::tamper::plant_secret(
        Path::new(&direct),
        &kek,
        ("global", "db-password", 2),
        b"planted by someone else",
    );
    drop(kek);
    let rejected = format!("KEK {KEK_ID} rejected its wrapped key");
    ctl.fails_with_kek(&direct, &tpm_uri, &GET_DB_PASSWORD, b"", &[&rejected]);
    ctl.fails(
        &["--vault", &direct, "get", "global", "db-password"],
        b"",
        &[&rejected],
    );

    let tiered = ctl.init("tiered", &[&tpm_uri], "tiered");
    ctl.fill(&tiered);
    let kek = attackers_tpm_kek(&tpm_uri, &tiered);
    let number = compliance::tamper::append_epoch(Path::new(&tiered), &kek);
    drop(kek);
    let before = snapshot(&tiered);
    let named = format!(
        "epoch {number} (its key) was added or changed by someone without this vault's keys"
    );
    ctl.fails(
        &["--vault", &tiered, "set", "global", "new"],
        b"x",
        &[&named],
    );
    ctl.fails(
        &["--vault", &tiered, "get", "global", "db-password"],
        b"",
        &[&named],
    );
    assert_eq!(snapshot(&tiered), before, "nothing was written");
}
