//! Running a test, or a whole benchmark `main`, again in a child process of the current
//! executable that has `SOFTHSM2_CONF` set from the start.
//!
//! SoftHSM reads `SOFTHSM2_CONF` once, at `C_Initialize`, which happens once per process, and
//! setting an environment variable in a running process is `unsafe` (edition 2024) and racy
//! with other test threads. A fresh process with the variable set on its `Command` has none
//! of these problems, and gives each test a token no other test can see.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use test_support::child::{CHILD_TEST_ARGS, ran_one_passing_test, show_output};

use crate::setup::PrivateToken;
use crate::softhsm::{SOFTHSM2_CONF, SoftHsm};

/// Set in the child to the private token's directory; its presence is what tells the child
/// to run the test body instead of starting another child.
pub(crate) const FIXTURE_ENV: &str = "VAULT_SOFTHSM_FIXTURE";

/// Whether this process has already handed out its token; one test per child process.
static ENTERED: AtomicBool = AtomicBool::new(false);

/// In a child started by this crate, the token its parent set up; `None` in a parent.
#[track_caller]
pub(crate) fn fixture_child() -> Option<SoftHsm> {
    let dir = env::var_os(FIXTURE_ENV).filter(|dir| !dir.is_empty())?;
    let hsm = SoftHsm::at(Path::new(&dir));
    let conf = env::var_os(SOFTHSM2_CONF);
    if conf.as_deref() != Some(hsm.conf().as_os_str()) {
        panic!(
            "softhsm-tests: {FIXTURE_ENV} is set to {} but {SOFTHSM2_CONF} is {conf:?}, not {}; \
             only the fixture itself should set {FIXTURE_ENV}",
            hsm.dir().display(),
            hsm.conf().display()
        );
    }
    if ENTERED.swap(true, Ordering::SeqCst) {
        panic!(
            "softhsm-tests: the private-token fixture was entered twice in one process; call \
             in_private_token once per test, as the whole body of the test"
        );
    }
    Some(hsm)
}

/// The libtest name of the running test (`module::test_fn`, without the crate name).
///
/// libtest runs every test on a thread named after the test, also with `--test-threads=1`
/// (checked with Rust 1.95). Only if it could not spawn that thread does it run the test on
/// the main thread; then, and whenever the thread has no usable name, the name comes from the
/// test closure's type, `crate::module::test_fn::{{closure}}`, which names the function the
/// closure was written in. A wrong name is caught anyway: the child would run no test, and
/// [`run_test_in_child`] refuses a run of anything but exactly one passing test.
#[track_caller]
pub(crate) fn current_test_name(closure_type: &str) -> String {
    match std::thread::current().name() {
        Some(name) if name != "main" => name.to_owned(),
        _ => name_from_closure_type(closure_type).unwrap_or_else(|| {
            panic!(
                "softhsm-tests: cannot tell which test is running (the thread is not named \
                 after it, and {closure_type} is not a closure written in the test function); \
                 call in_private_token from a #[test] function with a closure literal"
            )
        }),
    }
}

fn name_from_closure_type(closure_type: &str) -> Option<String> {
    let mut path = closure_type;
    while let Some(outer) = path.strip_suffix("::{{closure}}") {
        path = outer;
    }
    if path.len() == closure_type.len() {
        return None;
    }
    let (_crate_name, test) = path.split_once("::")?;
    Some(test.to_owned())
}

/// Runs test `name` alone in a child process with the token's environment; panics, showing
/// the child's output, unless exactly that one test ran and passed. `setup` is how long the
/// token took to make, for the summary line.
#[track_caller]
pub(crate) fn run_test_in_child(name: &str, token: &PrivateToken, setup: Duration) {
    let exe = current_exe();
    let started = Instant::now();
    let output = child_command(&exe, token.hsm())
        .arg(name)
        .args(CHILD_TEST_ARGS)
        .output()
        .unwrap_or_else(|e| panic!("softhsm-tests: cannot run {}: {e}", exe.display()));
    let ran = started.elapsed();
    if !output.status.success() {
        panic!(
            "softhsm-tests: test {name} failed in its private-token process ({})\n{}",
            output.status,
            show_output(&output)
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !ran_one_passing_test(&stdout) {
        panic!(
            "softhsm-tests: the private-token process for {name} did not run exactly one \
             passing test (is {name:?} the test's full name?)\n{}",
            show_output(&output)
        );
    }
    // Through print!/eprint!, so libtest shows it only for --nocapture or a failing test.
    println!(
        "softhsm-tests: {name}: token set up in {} ms, test process ran in {} ms; its output:",
        setup.as_millis(),
        ran.as_millis()
    );
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
}

/// Runs the current executable again with the same arguments in the token's environment and
/// returns how it ended.
pub(crate) fn rerun_main_in_child(token: &PrivateToken) -> ExitStatus {
    let exe = current_exe();
    child_command(&exe, token.hsm())
        .args(env::args_os().skip(1))
        .status()
        .unwrap_or_else(|e| panic!("softhsm-tests: cannot run {}: {e}", exe.display()))
}

fn child_command(exe: &Path, hsm: &SoftHsm) -> Command {
    let mut command = hsm.command(exe);
    command.env(FIXTURE_ENV, hsm.dir());
    command
}

pub(crate) fn current_exe() -> PathBuf {
    env::current_exe()
        .unwrap_or_else(|e| panic!("softhsm-tests: cannot find the running executable: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_thread_is_named_after_the_test() {
        assert_eq!(
            current_test_name("unused"),
            "reexec::tests::the_test_thread_is_named_after_the_test"
        );
    }

    #[test]
    fn closure_types_name_the_test_function() {
        let name = |closure_type| name_from_closure_type(closure_type);
        assert_eq!(
            name("fixture::lists_token::{{closure}}").as_deref(),
            Some("lists_token")
        );
        assert_eq!(
            name("my_crate::m::t::{{closure}}::{{closure}}").as_deref(),
            Some("m::t")
        );
        assert_eq!(name("my_crate::m::helper"), None);
        assert_eq!(name("{{closure}}"), None);
    }

    #[test]
    fn the_closure_type_is_what_the_fallback_expects() {
        fn type_of<F: FnOnce()>(f: F) -> &'static str {
            std::any::type_name_of_val(&f)
        }
        assert_eq!(
            name_from_closure_type(type_of(|| ())).as_deref(),
            Some("reexec::tests::the_closure_type_is_what_the_fallback_expects")
        );
    }
}
