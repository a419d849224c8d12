//! The fixture's own tests: the token exists, the body runs in a child with the fixture's
//! SOFTHSM2_CONF, and the skip rule holds.

use std::env;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;

use softhsm_tests::{SoftHsm, in_private_token};
use test_support::stdout_of;

#[test]
fn show_slots_lists_the_private_token() {
    in_private_token(|hsm| {
        let slots = stdout_of(hsm.command("softhsm2-util").arg("--show-slots"));
        let labels: Vec<&str> = slots
            .lines()
            .filter_map(|line| line.trim().strip_prefix("Label:"))
            .map(str::trim)
            .filter(|label| !label.is_empty())
            .collect();
        assert_eq!(labels, [hsm.token_label()], "{slots}");
    });
}

#[test]
fn the_body_runs_in_a_child_with_the_fixture_conf() {
    in_private_token(|hsm| {
        assert_eq!(
            env::var_os("SOFTHSM2_CONF").as_deref(),
            Some(hsm.conf().as_os_str())
        );
        assert!(hsm.conf().starts_with(hsm.dir()));
        let args: Vec<String> = env::args().skip(1).collect();
        assert_eq!(
            args.first().map(String::as_str),
            Some("the_body_runs_in_a_child_with_the_fixture_conf")
        );
        assert!(args.iter().any(|arg| arg == "--exact"), "{args:?}");
        let conf = fs::read_to_string(hsm.conf()).expect("read the conf");
        let tokens = hsm.dir().join("tokens");
        assert!(conf.contains(&format!("directories.tokendir = {}/", tokens.display())));
        assert!(tokens.is_dir());
    });
}

#[test]
fn pin_file_and_kek_uri_name_the_private_token() {
    in_private_token(|hsm: &SoftHsm| {
        let pin_file = hsm.pin_file();
        assert_eq!(
            fs::read_to_string(&pin_file).expect("read PIN"),
            hsm.user_pin()
        );
        let mode = fs::metadata(&pin_file)
            .expect("stat PIN")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            hsm.kek_uri("kek-1"),
            format!(
                "pkcs11:token=vault-test;object=kek-1?module-path={}&pin-source=file:{}",
                hsm.module_path().display(),
                pin_file.display()
            )
        );
        let debug = format!("{hsm:?}");
        assert!(
            !debug.contains(hsm.user_pin()) && !debug.contains(hsm.so_pin()),
            "{debug}"
        );
        assert!(debug.contains("[REDACTED]"), "{debug}");
    });
}

/// Runs `show_slots_lists_the_private_token` in this test binary with the module pointed at
/// a file that does not exist, so SoftHSM counts as missing.
#[test]
fn without_softhsm_a_test_skips_loudly_or_fails_when_hardware_is_required() {
    test_support::assert_skip_rule(
        "show_slots_lists_the_private_token",
        "SoftHSM2",
        "the module /nonexistent/libsofthsm2.so does not exist",
        |command| {
            command
                .env("VAULT_SOFTHSM_MODULE", "/nonexistent/libsofthsm2.so")
                .env_remove("VAULT_SOFTHSM_FIXTURE");
        },
    );
}

/// Fails in its child process when `SOFTHSM_TESTS_SELF_TEST_FAIL` is set (by the next test);
/// passes otherwise.
#[test]
fn a_body_that_fails_on_request() {
    in_private_token(|_hsm| {
        if env::var_os("SOFTHSM_TESTS_SELF_TEST_FAIL").is_some() {
            println!("output-of-the-failing-child");
            panic!("failed-on-request");
        }
    });
}

#[test]
fn a_failing_body_fails_the_test_with_the_childs_output() {
    if !softhsm_tests::softhsm_available() {
        return; // the other tests say that it is skipped
    }
    let output = Command::new(env::current_exe().expect("current exe"))
        .args(["a_body_that_fails_on_request", "--exact"])
        .env("SOFTHSM_TESTS_SELF_TEST_FAIL", "1")
        .env_remove("VAULT_SOFTHSM_FIXTURE")
        .output()
        .expect("run the test binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{stdout}");
    for expected in [
        "a_body_that_fails_on_request failed in its private-token process",
        "output-of-the-failing-child",
        "failed-on-request",
    ] {
        assert!(stdout.contains(expected), "no {expected:?} in:\n{stdout}");
    }
}
