//! The passphrase KEK: wrong passphrases, sources, parameters, the parameter file.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use kek_providers::{BuiltKek, Error, KekEnv, SecretSource};

/// Small Argon2 costs so the tests are fast.
const FAST: &str = "m=8192;t=1;p=1";

fn env(dir: &Path) -> KekEnv<'_> {
    KekEnv { vault_dir: dir }
}

fn passphrase_file(dir: &Path, name: &str, passphrase: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, passphrase).expect("write passphrase");
    path
}

fn create_with_file(dir: &Path, passphrase: &str, label: &str) -> BuiltKek {
    let file = passphrase_file(dir, &format!("{label}.pass"), passphrase);
    let uri = format!("passphrase:file={};{FAST};label={label}", file.display());
    kek_providers::create(&uri, &env(dir)).expect("create")
}

#[test]
fn the_canonical_uri_reopens_the_same_kek() {
    let dir = tempfile::tempdir().expect("tempdir");
    let built = create_with_file(dir.path(), "correct horse battery staple\n", "main");
    let file = dir.path().join("main.pass");
    assert_eq!(
        built.uri,
        format!("passphrase:file={};label=main", file.display())
    );
    assert_eq!(built.provider.id().to_string(), "passphrase:main#v1");
    let reopened = kek_providers::open(&built.uri, &env(dir.path())).expect("open");
    assert_eq!(reopened.uri, built.uri);
    assert_eq!(reopened.provider.id(), built.provider.id());
    // The trailing newline is not part of the passphrase.
    fs::write(&file, "correct horse battery staple").expect("rewrite");
    kek_providers::open(&built.uri, &env(dir.path())).expect("open without newline");
}

#[test]
fn a_wrong_passphrase_says_so_and_never_shows_either_passphrase() {
    let dir = tempfile::tempdir().expect("tempdir");
    let built = create_with_file(dir.path(), "the-right-one-4711", "main");
    let wrong = passphrase_file(dir.path(), "wrong.pass", "a-wrong-guess-0815");
    let uri = format!("passphrase:file={};label=main", wrong.display());
    let err = kek_providers::open(&uri, &env(dir.path())).expect_err("wrong");
    assert!(matches!(err, Error::WrongPassphrase { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("wrong passphrase"), "{message}");
    assert!(
        message.contains(&format!("file {}", wrong.display())),
        "{message}"
    );
    for shown in [message, format!("{err:?}")] {
        assert!(!shown.contains("the-right-one-4711") && !shown.contains("a-wrong-guess-0815"));
    }
    let debug = format!("{built:?}");
    assert!(!debug.contains("the-right-one-4711"), "{debug}");
}

#[test]
fn the_env_source_reads_the_variable() {
    // Tests run in parallel threads, so no test sets a variable; cargo sets this one.
    let Ok(value) = std::env::var("CARGO_PKG_NAME") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let uri = format!("passphrase:env=CARGO_PKG_NAME;{FAST};label=env");
    let built = kek_providers::create(&uri, &env(dir.path())).expect("create");
    assert_eq!(built.uri, "passphrase:env=CARGO_PKG_NAME;label=env");
    // The same passphrase from a file opens the same KEK.
    let file = passphrase_file(dir.path(), "same.pass", &value);
    let same = format!("passphrase:file={};label=env", file.display());
    let reopened = kek_providers::open(&same, &env(dir.path())).expect("open");
    assert_eq!(reopened.provider.id(), built.provider.id());
    // And a wrong one names the variable.
    create_with_file(dir.path(), "something else", "other");
    let err = kek_providers::open(
        "passphrase:env=CARGO_PKG_NAME;label=other",
        &env(dir.path()),
    )
    .expect_err("wrong");
    assert!(
        err.to_string()
            .contains("wrong passphrase from env CARGO_PKG_NAME"),
        "{err}"
    );
}

#[test]
fn an_unset_variable_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let name = "KEK_PROVIDERS_TEST_NEVER_SET_7F3A";
    let uri = format!("passphrase:env={name};{FAST};label=x");
    let err = kek_providers::create(&uri, &env(dir.path())).expect_err("unset");
    assert!(matches!(err, Error::EnvVarUnset { .. }), "{err:?}");
    assert!(
        err.to_string().contains(name) && err.to_string().contains("set"),
        "{err}"
    );
    let err = SecretSource::Env(name.into())
        .read("unused")
        .expect_err("unset");
    assert!(err.to_string().contains(name), "{err}");
}

#[test]
fn costs_outside_the_bounds_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = passphrase_file(dir.path(), "p", "pw");
    for params in [
        "m=8191",
        "m=4194305",
        "t=0",
        "t=101",
        "p=0",
        "p=65",
        "m=",
        "m=-1",
        "t=99999999999",
    ] {
        let uri = format!("passphrase:file={};{params}", file.display());
        let err = kek_providers::create(&uri, &env(dir.path())).expect_err(params);
        assert!(
            matches!(err, Error::InvalidParameter { .. }),
            "{params}: {err:?}"
        );
    }
    assert_eq!(
        fs::read_dir(dir.path()).expect("ls").count(),
        1,
        "nothing was created"
    );
}

#[test]
fn the_parameter_file_is_private_and_holds_no_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    create_with_file(dir.path(), "pw", "main");
    let path = dir.path().join("kek-passphrase-main.json");
    let meta = fs::metadata(&path).expect("stat");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let json: serde_json::Value =
        serde_json::from_slice(&fs::read(&path).expect("read")).expect("json");
    assert_eq!(json["version"], 1);
    assert_eq!(json["label"], "main");
    assert_eq!(
        (json["m"].as_u64(), json["t"].as_u64(), json["p"].as_u64()),
        (Some(8192), Some(1), Some(1))
    );
    assert_eq!(
        json["salt"].as_str().map(str::len),
        Some(24),
        "16 bytes of base64"
    );
    assert_eq!(
        json["verifier"].as_str().map(str::len),
        Some(44),
        "32 bytes of base64"
    );
}

#[test]
fn create_refuses_an_existing_kek_and_open_a_missing_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let built = create_with_file(dir.path(), "pw", "main");
    let err = kek_providers::create(&built.uri, &env(dir.path())).expect_err("exists");
    assert!(matches!(err, Error::ParamsFileExists { .. }), "{err:?}");

    let elsewhere = tempfile::tempdir().expect("tempdir");
    let err = kek_providers::open(&built.uri, &env(elsewhere.path())).expect_err("missing");
    assert!(matches!(err, Error::ParamsFileMissing { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("kek-passphrase-main.json") && message.contains("vault directory"));
}

#[test]
fn uri_costs_must_agree_with_the_parameter_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let built = create_with_file(dir.path(), "pw", "main");
    kek_providers::open(&format!("{};{FAST}", built.uri), &env(dir.path())).expect("same costs");
    let err = kek_providers::open(&format!("{};t=2", built.uri), &env(dir.path()))
        .expect_err("contradicts");
    assert!(
        matches!(err, Error::ParamsContradict { name: "t", .. }),
        "{err:?}"
    );
}

#[test]
fn without_a_label_open_finds_the_only_kek_and_create_picks_a_random_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = passphrase_file(dir.path(), "pass", "pw");
    let uri = format!("passphrase:file={};{FAST}", file.display());
    let built = kek_providers::create(&uri, &env(dir.path())).expect("create");
    let label = built.provider.id().label().to_owned();
    assert_eq!(label.len(), 8);
    assert!(built.uri.ends_with(&format!(";label={label}")));
    let found = kek_providers::open(&uri, &env(dir.path())).expect("the only one");
    assert_eq!(found.provider.id(), built.provider.id());

    kek_providers::create(&uri, &env(dir.path())).expect("a second one");
    let err = kek_providers::open(&uri, &env(dir.path())).expect_err("ambiguous");
    assert!(matches!(err, Error::LabelNeeded { .. }), "{err:?}");
    assert!(err.to_string().contains(&label), "{err}");
}

#[test]
fn empty_and_oversized_passphrases_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = passphrase_file(dir.path(), "empty", "\n");
    let err = SecretSource::File(empty).read("unused").expect_err("empty");
    assert!(matches!(err, Error::EmptyPassphrase { .. }), "{err:?}");
    let big = dir.path().join("big");
    fs::write(&big, vec![b'x'; kek_providers::MAX_PASSPHRASE_LEN + 1]).expect("write");
    let err = SecretSource::File(big)
        .read("unused")
        .expect_err("too long");
    assert!(matches!(err, Error::PassphraseTooLong { .. }), "{err:?}");
    let err = SecretSource::File(dir.path().join("absent"))
        .read("unused")
        .expect_err("absent");
    assert!(
        matches!(err, Error::PassphraseFileMissing { .. }),
        "{err:?}"
    );
}

#[test]
fn the_prompt_source_without_a_terminal_says_what_to_use() {
    // Where a terminal exists (a developer's shell) the prompt would wait for input; the
    // test script runs without one, so there this test always runs.
    if std::fs::File::open("/dev/tty").is_ok() {
        return;
    }
    let err = SecretSource::Prompt
        .read("Passphrase: ")
        .expect_err("no tty");
    assert!(matches!(err, Error::NoTerminal), "{err:?}");
    assert!(
        err.to_string().contains("env=") && err.to_string().contains("file="),
        "{err}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let err = kek_providers::create(&format!("passphrase:prompt;{FAST}"), &env(dir.path()))
        .expect_err("no tty");
    assert!(matches!(err, Error::NoTerminal), "{err:?}");
}
