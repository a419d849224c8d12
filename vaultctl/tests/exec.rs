//! `vaultctl exec` and `vaultctl resolve` with real files and real child processes: values
//! reach the child's environment, exit statuses pass through, every refused reference stops
//! the run before anything starts, and no value ever shows in vaultctl's output or the
//! vault's files.

mod common;

use std::fs::{self, DirBuilder};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use common::{Sandbox, on_pseudo_terminal, stderr, stdout};

/// The values planted for the tests; none may appear in anything vaultctl prints or writes.
const VAULT_VALUE: &str = "vault-value-7f3a";
const FILE_VALUE: &str = "file-value-91bc";
const ENV_VALUE: &str = "env-value-c0de";
const EXEC_VALUE: &str = "exec-value-5e11";
const LEAKY_VALUES: [&str; 4] = [VAULT_VALUE, FILE_VALUE, ENV_VALUE, EXEC_VALUE];

/// A vault holding `global/db-password`, a trusted directory holding `api-key`, and a
/// helper program printing a value; `root` is the sandbox's real path (no links).
struct Fixture {
    sb: Sandbox,
    root: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let sb = Sandbox::new();
        sb.init_file_kek();
        sb.ok(&["set", "global", "db-password"], VAULT_VALUE.as_bytes());
        let root = fs::canonicalize(sb.root.path()).expect("canonicalize");
        let fx = Fixture { sb, root };
        fx.write("trusted/api-key", FILE_VALUE.as_bytes(), 0o600);
        fx.write(
            "bin/helper",
            format!("#!/bin/sh\necho {EXEC_VALUE}\n").as_bytes(),
            0o700,
        );
        fx
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Writes `name` with `mode`; directories are made 0700 whatever the umask (file
    /// references refuse directories others may write).
    fn write(&self, name: &str, contents: &[u8], mode: u32) -> PathBuf {
        let path = self.path(name);
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path.parent().expect("parent"))
            .expect("mkdir");
        fs::write(&path, contents).expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }

    fn trusted(&self) -> String {
        self.path("trusted").display().to_string()
    }

    fn helper(&self) -> String {
        self.path("bin/helper").display().to_string()
    }

    /// Runs vaultctl with `SOURCE_ENV` (and `AWS_KEY`) set to the env value.
    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = self.sb.cmd(args);
        cmd.env("SOURCE_ENV", ENV_VALUE).env("AWS_KEY", ENV_VALUE);
        common::run(cmd, b"")
    }
}

/// `exec --env DB=vault://global/db-password -- COMMAND...`: vaultctl's arguments to run
/// `command` with the vault's value in its environment.
fn exec_with_db<'a>(command: &[&'a str]) -> Vec<&'a str> {
    [
        &["exec", "--env", "DB=vault://global/db-password", "--"],
        command,
    ]
    .concat()
}

fn assert_no_value_in(what: &str, text: &str) {
    for value in LEAKY_VALUES {
        assert!(!text.contains(value), "{what} shows a secret value: {text}");
    }
}

/// Every file under `dir`, as bytes (the vault's store, config and audit log).
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push((path.clone(), fs::read(&path).expect("read")));
            }
        }
    }
    out
}

#[test]
fn exec_injects_every_kind_of_reference_and_prints_nothing() {
    let fx = Fixture::new();
    let vault_env = "DB=vault://global/db-password";
    let file_env = format!("API=file://{}/api-key", fx.trusted());
    let exec_env = format!("TOKEN=exec://{}", fx.helper());
    let check = format!(
        "test \"$DB\" = {VAULT_VALUE} && test \"$API\" = {FILE_VALUE} && test \"$FROM_ENV\" = {ENV_VALUE} && test \"$TOKEN\" = {EXEC_VALUE} && test \"$UNTOUCHED\" = kept"
    );
    let mut cmd = fx.sb.cmd(&[
        "exec",
        "--env",
        vault_env,
        "--env",
        &file_env,
        "--env",
        "FROM_ENV=env://SOURCE_ENV",
        "--env",
        &exec_env,
        "--allow-env",
        "SOURCE_*",
        "--trusted-dir",
        &fx.trusted(),
        "--allow-exec",
        &fx.helper(),
        "--",
        "sh",
        "-c",
        &check,
    ]);
    cmd.env("SOURCE_ENV", ENV_VALUE).env("UNTOUCHED", "kept");
    let out = common::run(cmd, b"");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "");
    assert_eq!(stderr(&out), "");
}

#[test]
fn exec_passes_the_childs_output_and_exit_status_through() {
    let fx = Fixture::new();
    let run = |script: &str| fx.run(&exec_with_db(&["sh", "-c", script]));
    let out = run("echo child-output; echo child-error >&2; exit 0");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "child-output\n");
    assert_eq!(stderr(&out), "child-error\n");
    let out = run("exit 3");
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(stderr(&out), "", "a child's status is passed on silently");
    let out = run("exit 255");
    assert_eq!(out.status.code(), Some(255));
    let out = run("kill -TERM $$");
    assert_eq!(out.status.code(), Some(128 + 15), "a signal becomes 128+n");
    let out = run("kill -KILL $$");
    assert_eq!(out.status.code(), Some(128 + 9));

    // Not found: 127; found but not runnable: 126 (as env(1)).
    let out = fx.run(&exec_with_db(&["/nonexistent/cmd"]));
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot run /nonexistent/cmd"));
    let not_exec = fx.write("bin/not-exec", b"#!/bin/sh\n", 0o600);
    let out = fx.run(&exec_with_db(&[not_exec.to_str().expect("utf8")]));
    assert_eq!(out.status.code(), Some(126), "{}", stderr(&out));
}

#[test]
fn env_file_entries_are_injected_and_env_flags_win() {
    let fx = Fixture::new();
    let file = fx.write(
        "app.env",
        format!(
            "# references only; safe to commit\n\nDB=vault://global/db-password\n  API=file://{}/api-key  \nOVERRIDDEN=vault://global/missing\n",
            fx.trusted()
        )
        .as_bytes(),
        0o644,
    );
    let out = fx.run(&[
        "exec",
        "--env-file",
        file.to_str().expect("utf8"),
        "--env",
        "OVERRIDDEN=env://SOURCE_ENV",
        "--allow-env",
        "SOURCE_ENV",
        "--trusted-dir",
        &fx.trusted(),
        "--",
        "sh",
        "-c",
        &format!(
            "test \"$DB\" = {VAULT_VALUE} && test \"$API\" = {FILE_VALUE} && test \"$OVERRIDDEN\" = {ENV_VALUE}"
        ),
    ]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
}

#[test]
fn env_file_errors_name_the_file_and_line_but_not_the_text() {
    let fx = Fixture::new();
    for (contents, line, needle) in [
        (
            "DB=vault://global/db-password\n# fine\nDB_PASSWORD=hunter2-plain\n",
            3,
            "starts with vault://",
        ),
        ("\nhunter2-plain\n", 2, "write NAME=REF"),
        ("1BAD=env://X\n", 1, "not a variable name"),
        ("A=env://X\nA=env://Y\n", 2, "already set at"),
        ("A=vault://nope/k\n", 1, "invalid scope"),
    ] {
        let file = fx.write("bad.env", contents.as_bytes(), 0o644);
        let marker = fx.path("ran");
        let out = fx.run(&[
            "exec",
            "--env-file",
            file.to_str().expect("utf8"),
            "--",
            "touch",
            marker.to_str().expect("utf8"),
        ]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{contents:?}: {err}");
        assert!(
            err.contains(&format!("{}:{line}: ", file.display())),
            "{err}"
        );
        assert!(err.contains(needle), "{contents:?}: {err}");
        assert!(!err.contains("hunter2"), "{err}");
        assert!(!marker.exists(), "nothing runs on a bad env file");
    }
    let out = fx.run(&["exec", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--env NAME=REF or --env-file FILE"));
    let out = fx.run(&["exec", "--env", "DB=vault://global/db-password"]);
    assert_eq!(out.status.code(), Some(2), "the command is required");
}

/// Every refused reference: what to pass, what the error must say. Each run would create
/// `marker` if the command ran.
fn failing_cases(fx: &Fixture) -> Vec<(Vec<String>, &'static str)> {
    let trusted = fx.trusted();
    // A link to the trusted secret, in the leaf and in a parent directory.
    let leaf_link = fx.path("trusted/link");
    symlink(fx.path("trusted/api-key"), &leaf_link).expect("symlink");
    fs::create_dir_all(fx.path("real-dir")).expect("mkdir");
    fx.write("real-dir/secret", FILE_VALUE.as_bytes(), 0o600);
    symlink(fx.path("real-dir"), fx.path("trusted/dir-link")).expect("symlink");
    fx.write("outside/secret", FILE_VALUE.as_bytes(), 0o600);
    fx.write("trusted/group-writable", FILE_VALUE.as_bytes(), 0o660);
    // A directory on the way that anyone may write: the file below it could be swapped.
    fx.write("trusted/open-dir/secret", FILE_VALUE.as_bytes(), 0o600);
    fs::set_permissions(
        fx.path("trusted/open-dir"),
        fs::Permissions::from_mode(0o777),
    )
    .expect("chmod");
    let hang = fx.write(
        "bin/hang",
        format!("#!/bin/sh\nprintf {EXEC_VALUE}\nexec sleep 30\n").as_bytes(),
        0o700,
    );
    let chatty = fx.write(
        "bin/chatty",
        format!("#!/bin/sh\nwhile :; do echo {EXEC_VALUE}; done\n").as_bytes(),
        0o700,
    );
    let failing = fx.write(
        "bin/failing",
        format!("#!/bin/sh\necho {EXEC_VALUE}\necho {EXEC_VALUE} >&2\nexit 4\n").as_bytes(),
        0o700,
    );
    let exec = |program: &Path| {
        vec![
            format!("X=exec://{}", program.display()),
            "--allow-exec".into(),
            program.display().to_string(),
            "--exec-timeout".into(),
            "500ms".into(),
        ]
    };
    let file = |name: &str| {
        vec![
            format!("X=file://{}", fx.path(name).display()),
            "--trusted-dir".into(),
            trusted.clone(),
        ]
    };
    vec![
        (
            vec!["X=env://AWS_KEY".into()],
            "env://AWS_KEY is not on the environment allowlist: allow it with --allow-env AWS_KEY",
        ),
        (
            vec![
                "X=env://AWS_KEY".into(),
                "--allow-env".into(),
                "AWS_SECRET".into(),
            ],
            "--allow-env AWS_KEY",
        ),
        (
            // A prefix ends at an underscore: AWS_* is not AWSX_*.
            vec![
                "X=env://AWSX_KEY".into(),
                "--allow-env".into(),
                "AWS_*".into(),
            ],
            "--allow-env AWSX_KEY",
        ),
        (file("trusted/link"), "trusted/link is a symbolic link"),
        (
            file("trusted/dir-link/secret"),
            "trusted/dir-link is a symbolic link",
        ),
        (file("outside/secret"), "outside the trusted directories"),
        (
            vec![format!("X=file://{}", fx.path("outside/secret").display())],
            "none configured",
        ),
        (
            file("trusted/group-writable"),
            "writable by group or others (mode 0660)",
        ),
        (
            file("trusted/open-dir/secret"),
            "trusted/open-dir is writable by group or others (mode 0777)",
        ),
        (exec(&hang), "did not finish within 500 ms and was killed"),
        (exec(&chatty), "printed more than the limit of 65536 bytes"),
        (exec(&failing), "exited with status 4"),
        (
            vec![format!("X=exec://{}", fx.helper())],
            "is not an allowed program; allow it with --allow-exec",
        ),
        (
            vec!["X=vault://global/missing".into()],
            "secret not found: global missing",
        ),
        (vec!["X=vault://global/db-password#9".into()], "version 9"),
    ]
}

#[test]
fn every_refused_reference_stops_the_run_with_a_clear_error() {
    let fx = Fixture::new();
    let marker = fx.path("ran");
    for (mut args, needle) in failing_cases(&fx) {
        let mut argv = vec!["exec".to_owned(), "--env".to_owned()];
        argv.append(&mut args);
        argv.extend(["--", "touch"].map(String::from));
        argv.push(marker.display().to_string());
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let started = Instant::now();
        let out = fx.run(&argv);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{argv:?}: {err}");
        assert!(err.contains(needle), "{argv:?}: {err}");
        assert!(
            err.contains("error: cannot set X (--env), nothing was run: "),
            "{err}"
        );
        let reference = argv[2].trim_start_matches("X=");
        assert!(
            err.contains(reference),
            "the error names the reference: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        assert!(!marker.exists(), "{argv:?}: the command ran");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{argv:?} took {:?}",
            started.elapsed()
        );
        assert_no_value_in("stderr", &err);
        assert_no_value_in("stdout", &stdout(&out));
    }
}

#[test]
fn no_secret_value_reaches_output_or_the_vault_files_in_any_failure() {
    let fx = Fixture::new();
    let mut outputs = Vec::new();
    for (mut args, _) in failing_cases(&fx) {
        let mut argv = vec!["exec".to_owned(), "--env".to_owned()];
        argv.append(&mut args);
        argv.extend(["--", "true"].map(String::from));
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        outputs.push(fx.run(&argv));
        // The same reference through `resolve` (stdout is a pipe, so it would print on
        // success; every case fails).
        let reference = argv[2].trim_start_matches("X=");
        let mut resolve_argv = vec!["resolve", reference];
        resolve_argv.extend(&argv[3..argv.len() - 2]);
        let out = fx.run(&resolve_argv);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{resolve_argv:?}: {}",
            stderr(&out)
        );
        outputs.push(out);
    }
    // Failing children and failing exec commands print nothing of ours either.
    outputs.push(fx.run(&exec_with_db(&["sh", "-c", "exit 7"])));
    outputs.push(fx.run(&exec_with_db(&["/nonexistent"])));
    for out in &outputs {
        assert_no_value_in("stderr", &stderr(out));
        assert_no_value_in("stdout", &stdout(out));
    }
    // The vault directory (store, config, audit log) holds no value in the clear.
    for (path, bytes) in files_under(&fx.sb.vault_dir()) {
        let text = String::from_utf8_lossy(&bytes);
        assert_no_value_in(&path.display().to_string(), &text);
    }
}

#[test]
fn an_env_prefix_must_end_at_an_underscore() {
    let fx = Fixture::new();
    let marker = fx.path("ran");
    let marker = marker.to_str().expect("utf8");
    let out = fx.run(&[
        "exec",
        "--env",
        "X=env://AWS_KEY",
        "--allow-env",
        "AWS*",
        "--",
        "touch",
        marker,
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "a usage error: {err}");
    assert!(err.contains("must end at an underscore"), "{err}");
    assert!(err.contains("--allow-env 'AWS_*'"), "{err}");
    assert!(!fx.path("ran").exists(), "nothing runs on a bad prefix");
    let out = fx.run(&["resolve", "env://AWS_KEY", "--allow-env", "AWS*"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    // Written with the underscore, the prefix allows the variables below it.
    let out = fx.run(&["resolve", "env://AWS_KEY", "--allow-env", "AWS_*"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(out.stdout, ENV_VALUE.as_bytes());
}

#[test]
fn resolve_prints_exactly_the_value() {
    let fx = Fixture::new();
    let out = fx.run(&["resolve", "vault://global/db-password"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        out.stdout,
        VAULT_VALUE.as_bytes(),
        "raw bytes, no newline added"
    );
    let out = fx.run(&["resolve", "env://SOURCE_ENV", "--allow-env", "SOURCE_ENV"]);
    assert_eq!(out.stdout, ENV_VALUE.as_bytes());
    let file_ref = format!("file://{}/api-key", fx.trusted());
    let out = fx.run(&["resolve", &file_ref, "--trusted-dir", &fx.trusted()]);
    assert_eq!(out.stdout, FILE_VALUE.as_bytes());
    let exec_ref = format!("exec://{}", fx.helper());
    let out = fx.run(&["resolve", &exec_ref, "--allow-exec", &fx.helper()]);
    assert_eq!(
        out.stdout,
        EXEC_VALUE.as_bytes(),
        "the trailing newline is trimmed"
    );
    // A relative trusted directory is taken from the current directory.
    let mut cmd = fx
        .sb
        .cmd(&["resolve", &file_ref, "--trusted-dir", "trusted"]);
    cmd.current_dir(&fx.root);
    let out = common::run(cmd, b"");
    assert_eq!(out.stdout, FILE_VALUE.as_bytes(), "{}", stderr(&out));
    // Only vault:// needs a vault: the others work without one.
    let mut cmd = fx
        .sb
        .cmd(&["resolve", "env://SOURCE_ENV", "--allow-env", "SOURCE_ENV"]);
    cmd.arg("--vault")
        .arg(fx.path("no-vault-here"))
        .env("SOURCE_ENV", ENV_VALUE);
    let out = common::run(cmd, b"");
    assert_eq!(out.stdout, ENV_VALUE.as_bytes(), "{}", stderr(&out));
    // A value passed where a reference belongs is not repeated.
    let out = fx.run(&["resolve", "hunter2-plain"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!stderr(&out).contains("hunter2"), "{}", stderr(&out));
    let out = fx.run(&["resolve", "env://X", "--exec-timeout", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

/// Runs vaultctl on a pseudo-terminal (util-linux `script`) and returns what it showed.
fn on_terminal(fx: &Fixture, args: &[&str]) -> (bool, String) {
    let out = common::run(on_pseudo_terminal(&fx.sb.cmd(args)), b"");
    (out.status.success(), stdout(&out))
}

#[test]
fn resolve_refuses_a_terminal_unless_asked_to_reveal() {
    let fx = Fixture::new();
    let (ok, screen) = on_terminal(&fx, &["resolve", "vault://global/db-password"]);
    assert!(!ok, "{screen}");
    assert!(
        screen.contains("refusing to print a secret to a terminal"),
        "{screen}"
    );
    assert!(!screen.contains(VAULT_VALUE), "{screen}");
    let (ok, screen) = on_terminal(&fx, &["resolve", "--reveal", "vault://global/db-password"]);
    assert!(ok, "{screen}");
    assert!(screen.contains(VAULT_VALUE), "{screen}");
}

#[test]
fn the_vaults_own_passphrase_variable_is_not_passed_to_the_command() {
    let sb = Sandbox::new();
    let passphrase = "kek-passphrase-4d2f";
    let mut init = sb.cmd(&[
        "init",
        "--kek",
        "passphrase:env=REFS_TEST_PASS;m=8192;t=1;p=1",
    ]);
    init.env("REFS_TEST_PASS", passphrase);
    let out = common::run(init, b"");
    assert!(out.status.success(), "{}", stderr(&out));
    let mut set = sb.cmd(&["set", "global", "db-password"]);
    set.env("REFS_TEST_PASS", passphrase);
    assert!(common::run(set, VAULT_VALUE.as_bytes()).status.success());
    let check = format!(
        "test \"$DB\" = {VAULT_VALUE} && test -z \"${{REFS_TEST_PASS+set}}\" && test \"$OTHER\" = kept"
    );
    let mut exec = sb.cmd(&exec_with_db(&["sh", "-c", &check]));
    exec.env("REFS_TEST_PASS", passphrase).env("OTHER", "kept");
    let out = common::run(exec, b"");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains(passphrase));
}

#[test]
fn signals_sent_to_vaultctl_reach_the_command() {
    let fx = Fixture::new();
    let ready = fx.path("ready");
    let script = format!(
        "trap 'exit 42' TERM; touch {}; while :; do sleep 0.05; done",
        ready.display()
    );
    let mut cmd = fx.sb.cmd(&exec_with_db(&["sh", "-c", &script]));
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut vaultctl = cmd.spawn().expect("spawn vaultctl");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready.exists() {
        assert!(Instant::now() < deadline, "the command never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = vaultctl.id().to_string();
    let send = |signal: &str| {
        let sent = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("kill");
        assert!(sent.success());
    };
    // SIGINT to vaultctl alone: ignored (a terminal's Ctrl-C reaches the command directly).
    send("-INT");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        vaultctl.try_wait().expect("try_wait").is_none(),
        "vaultctl died of SIGINT"
    );
    // SIGTERM is passed on: the command's trap decides the exit status.
    send("-TERM");
    let out = vaultctl.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(42), "{}", stderr(&out));
}
