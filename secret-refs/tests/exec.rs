//! `exec://` references with real child processes: output, arguments without a shell, the
//! cleared environment, exit statuses, the timeout and the output cap.

mod common;

use std::time::{Duration, Instant};

use common::{Dir, resolve, resolve_err};
use secret_refs::{Error, Policy, SecretRef};

fn exec_ref(program: &std::path::Path, args: &[&str]) -> SecretRef {
    SecretRef::Exec {
        program: program.to_owned(),
        args: args.iter().map(|a| (*a).to_owned()).collect(),
    }
}

fn allowing(program: &std::path::Path) -> Policy {
    Policy {
        allow_exec: vec![program.to_owned()],
        ..Policy::default()
    }
}

#[test]
fn stdout_is_the_secret_with_one_trailing_newline_trimmed() {
    let dir = Dir::new();
    for (body, expected) in [
        ("printf 'exec-value\\n'", &b"exec-value"[..]),
        ("printf 'v\\r\\n'", b"v"),
        ("printf 'v\\n\\n'", b"v\n"),
        ("printf 'no-newline'", b"no-newline"),
        ("true", b""),
    ] {
        let program = dir.script("helper", body);
        let value = resolve(allowing(&program), &exec_ref(&program, &[])).expect(body);
        assert_eq!(value, expected, "{body}");
    }
}

#[test]
fn arguments_reach_the_program_verbatim_without_a_shell() {
    let dir = Dir::new();
    let program = dir.script("args", "printf '%s|' \"$#\" \"$@\"");
    let tricky = ["a b", "$(touch /tmp/pwned)", "'; rm -rf / #", "", "x&arg=y"];
    let reference = exec_ref(&program, &tricky);
    // Through the text form too: the encoding carries every byte.
    let reparsed = secret_refs::parse(&reference.to_string()).expect("parses");
    assert_eq!(reparsed, reference);
    let value = resolve(allowing(&program), &reparsed).expect("runs");
    assert_eq!(
        String::from_utf8(value).expect("utf8"),
        "5|a b|$(touch /tmp/pwned)|'; rm -rf / #||x&arg=y|"
    );
}

#[test]
fn the_environment_is_cleared_but_for_path_and_home() {
    let dir = Dir::new();
    // cargo sets CARGO_MANIFEST_DIR for the test process; the program must not see it.
    assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
    let program = dir.script(
        "env",
        "printf '%s|%s|%s|' \"$PATH\" \"${CARGO_MANIFEST_DIR-unset}\" \"$(pwd)\"; env | wc -l",
    );
    let value =
        String::from_utf8(resolve(allowing(&program), &exec_ref(&program, &[])).expect("runs"))
            .expect("utf8");
    let expected_prefix = "/usr/bin:/bin|unset|/|";
    assert!(value.starts_with(expected_prefix), "{value}");
    // PATH, HOME, and what sh itself adds (PWD, SHLVL, _...): a handful, not the parent's.
    let count: usize = value[expected_prefix.len()..]
        .trim()
        .parse()
        .expect("count");
    assert!(count <= 6, "{value}");
}

#[test]
fn programs_not_on_the_allowlist_are_refused() {
    let dir = Dir::new();
    let program = dir.script("helper", "echo never-run-value");
    let err = resolve_err(Policy::default(), &exec_ref(&program, &[]));
    assert!(matches!(err, Error::ExecNotAllowed { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains(&format!("--allow-exec {}", program.display())),
        "{message}"
    );
    // The allowlist compares paths exactly.
    let other = dir.script("other", "echo x");
    let err = resolve_err(allowing(&other), &exec_ref(&program, &[]));
    assert!(matches!(err, Error::ExecNotAllowed { .. }), "{err}");
}

#[test]
fn a_failing_program_is_an_error_naming_its_status_not_its_output() {
    let dir = Dir::new();
    let program = dir.script(
        "fails",
        "echo leaked-stdout-value; echo leaked-stderr-value >&2; exit 3",
    );
    let err = resolve_err(allowing(&program), &exec_ref(&program, &[]));
    let message = err.to_string();
    assert!(message.contains("exited with status 3"), "{message}");
    assert!(!message.contains("leaked"), "{message}");

    let program = dir.script("signalled", "kill -TERM $$");
    let err = resolve_err(allowing(&program), &exec_ref(&program, &[]));
    assert!(err.to_string().contains("killed by signal 15"), "{err}");

    let missing = dir.root.join("missing");
    let err = resolve_err(allowing(&missing), &exec_ref(&missing, &[]));
    assert!(matches!(err, Error::Io { .. }), "{err}");
}

#[test]
fn a_hanging_program_is_killed_after_the_timeout() {
    let dir = Dir::new();
    let timeout = Duration::from_millis(500);
    // Silent and hanging; printing then hanging with stdout closed; a grandchild keeping
    // the pipe open after its parent is killed.
    for body in [
        "exec sleep 30",
        "printf partial-value; exec >&-; exec sleep 30",
        "sleep 30; echo late",
    ] {
        let program = dir.script("hangs", body);
        let policy = Policy {
            exec_timeout: timeout,
            ..allowing(&program)
        };
        let started = Instant::now();
        let err = resolve_err(policy, &exec_ref(&program, &[]));
        let took = started.elapsed();
        assert!(matches!(err, Error::ExecTimeout { .. }), "{body}: {err}");
        assert!(
            err.to_string().contains("within 500 ms and was killed"),
            "{err}"
        );
        assert!(!err.to_string().contains("partial"), "{err}");
        assert!(
            took >= timeout && took < timeout * 4,
            "{body}: took {took:?}"
        );
    }
}

#[test]
fn output_over_the_cap_is_refused() {
    let dir = Dir::new();
    for body in ["head -c 4096 /dev/zero", "exec yes"] {
        let program = dir.script("chatty", body);
        let policy = Policy {
            max_secret_len: 1024,
            ..allowing(&program)
        };
        let started = Instant::now();
        let err = resolve_err(policy, &exec_ref(&program, &[]));
        assert!(
            err.to_string()
                .contains("more than the limit of 1024 bytes"),
            "{body}: {err}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    // Exactly at the cap is fine.
    let program = dir.script("exact", "head -c 1024 /dev/zero");
    let policy = Policy {
        max_secret_len: 1024,
        ..allowing(&program)
    };
    assert_eq!(
        resolve(policy, &exec_ref(&program, &[]))
            .expect("fits")
            .len(),
        1024
    );
}
