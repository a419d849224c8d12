//! Running the fixtures' tools.

use std::process::{Command, Stdio};

/// Runs `command` (stdin from `/dev/null`) and asserts that it succeeds, showing its status,
/// stdout and stderr if not; returns stdout, which must be UTF-8.
#[track_caller]
pub fn stdout_of(command: &mut Command) -> String {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap_or_else(|e| panic!("{command:?} wrote other than UTF-8 on stdout: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_stdout_and_fails_on_failure() {
        assert_eq!(
            stdout_of(Command::new("sh").args(["-c", "echo hi"])),
            "hi\n"
        );
        let failed = std::panic::catch_unwind(|| stdout_of(Command::new("false").arg("x")));
        assert!(failed.is_err());
    }
}
