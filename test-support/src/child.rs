//! What the fixtures that run a test (or a benchmark's `main`) again in a child process
//! share: the child's libtest arguments, the check of its summary, its exit code passed on,
//! and its output shown in a panic message.

use std::os::unix::process::ExitStatusExt as _;
use std::process::{ExitStatus, Output};

/// The arguments after the test name: run exactly that test, even if it is `#[ignore]`d (the
/// parent was asked to run it, so it runs), on one thread, with its output left to us.
pub const CHILD_TEST_ARGS: [&str; 5] = [
    "--exact",
    "--nocapture",
    "--test-threads=1",
    "--include-ignored",
    "--color=never",
];

/// Whether libtest's summary on `stdout` says one test passed and nothing else happened.
pub fn ran_one_passing_test(stdout: &str) -> bool {
    stdout
        .lines()
        .any(|line| line.starts_with("test result: ok. 1 passed; 0 failed;"))
}

/// The process exit code that passes `status` on: its code, or 128 + the signal that ended it.
pub fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(1)
}

/// A process's stdout and stderr, labelled, for a panic message.
pub fn show_output(output: &Output) -> String {
    format!(
        "--- stdout ---\n{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&output.stdout).trim_end(),
        String::from_utf8_lossy(&output.stderr).trim_end()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_passing_test_counts() {
        let summary = |line: &str| format!("running 1 test\ntest t ... ok\n\n{line}\n");
        assert!(ran_one_passing_test(&summary(
            "test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 9 filtered out; \
             finished in 0.01s"
        )));
        assert!(!ran_one_passing_test(&summary(
            "test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 10 filtered out; \
             finished in 0.00s"
        )));
        assert!(!ran_one_passing_test(&summary(
            "test result: ok. 11 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; \
             finished in 0.00s"
        )));
    }

    #[test]
    fn a_signal_is_128_plus_its_number() {
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(15)), 143);
    }
}
