//! `exec:///PROGRAM?arg=...`: an allowed program, run without a shell, in a cleared
//! environment, from `/`, with no stdin and its stderr discarded (it could echo the secret
//! into a log); its stdout, capped, is the secret, one trailing newline trimmed. It is
//! killed when the timeout passes; a non-zero exit or a signal is an error.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use envelope::SecretBytes;

use crate::{Error, Policy, SecretRef};

/// The whole environment a program gets: enough to find tools, and HOME for helpers such as
/// `pass` or `gpg` that keep their state there.
const EXEC_PATH: &str = "/usr/bin:/bin";

/// How often a running child is polled; the timeout is met to within this.
const POLL: Duration = Duration::from_millis(10);

pub(super) fn resolve(
    policy: &Policy,
    reference: &SecretRef,
    program: &Path,
    args: &[String],
) -> Result<SecretBytes, Error> {
    let text = reference.to_string();
    if !policy.allow_exec.iter().any(|p| p == program) {
        return Err(Error::ExecNotAllowed {
            reference: text,
            program: program.to_owned(),
        });
    }
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .env("PATH", EXEC_PATH)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(home) = std::env::var_os("HOME") {
        command.env("HOME", home);
    }
    let mut child = command.spawn().map_err(|source| Error::Io {
        reference: text.clone(),
        what: format!("starting {}", program.display()),
        source,
    })?;
    let deadline = Instant::now() + policy.exec_timeout;
    let failed = |reason: String| Error::ExecFailed {
        reference: text.clone(),
        reason,
    };
    let timed_out = || Error::ExecTimeout {
        reference: text.clone(),
        timeout_ms: policy.exec_timeout.as_millis(),
    };

    // Read on a thread so the timeout holds even while the program writes nothing. If the
    // program left a grandchild holding the pipe, the thread outlives this call until it
    // exits; the secret it may hold is in locked, zeroizing memory.
    let Some(mut stdout) = child.stdout.take() else {
        kill(&mut child);
        return Err(failed("its standard output could not be captured".into()));
    };
    let max = policy.max_secret_len;
    let (sender, receiver) = mpsc::channel();
    let reader = std::thread::Builder::new()
        .name("exec-ref-stdout".into())
        .spawn(move || {
            let _ = sender.send(SecretBytes::read_from(&mut stdout, max));
        });
    if let Err(source) = reader {
        kill(&mut child);
        return Err(Error::Io {
            reference: text.clone(),
            what: "starting the thread that reads the program's output".into(),
            source,
        });
    }
    let output = match receiver.recv_timeout(policy.exec_timeout) {
        Ok(Ok(output)) => output,
        Ok(Err(envelope::Error::SecretTooLarge { .. })) => {
            kill(&mut child);
            return Err(failed(format!(
                "the program printed more than the limit of {max} bytes and was killed"
            )));
        }
        Ok(Err(envelope::Error::Read(kind))) => {
            kill(&mut child);
            return Err(Error::Io {
                reference: text.clone(),
                what: "reading the program's output".into(),
                source: kind.into(),
            });
        }
        Ok(Err(other)) => {
            kill(&mut child);
            return Err(Error::Memory(other));
        }
        Err(_) => {
            kill(&mut child);
            return Err(timed_out());
        }
    };
    let Some(status) = wait_until(&mut child, deadline).map_err(|source| Error::Io {
        reference: text.clone(),
        what: "waiting for the program".into(),
        source,
    })?
    else {
        return Err(timed_out());
    };
    if !status.success() {
        return Err(failed(describe_failure(status)));
    }
    let mut output = output;
    let mut len = output.len();
    if output.expose_secret().ends_with(b"\n") {
        len -= 1;
        if output.expose_secret()[..len].ends_with(b"\r") {
            len -= 1;
        }
    }
    output.truncate(len);
    Ok(output)
}

/// Waits for the child until `deadline`; kills it and returns `None` when the deadline
/// passes first.
fn wait_until(child: &mut Child, deadline: Instant) -> std::io::Result<Option<ExitStatus>> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            kill(child);
            return Ok(None);
        }
        std::thread::sleep(POLL.min(deadline - now));
    }
}

/// Kills and reaps the child (killing one that already exited is a harmless error).
fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn describe_failure(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!(
            "the program exited with status {code} (its standard error is discarded; run it by hand to see why)"
        ),
        (None, Some(signal)) => format!("the program was killed by signal {signal}"),
        _ => format!("the program failed: {status}"),
    }
}
