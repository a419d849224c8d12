//! `exec`'s command as a child: spawned with the secrets in its environment, then waited
//! for while vaultctl stands in for it. SIGTERM, SIGHUP, SIGUSR1 and SIGUSR2 sent to
//! vaultctl are passed on to the command (a service manager or `kill` stopping vaultctl
//! stops the command, not just its parent); SIGINT and SIGQUIT are ignored by vaultctl,
//! since a terminal already delivers them to the command in the same process group.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::{Command, ExitStatus};
use std::time::Duration;

use envelope::SecretBytes;
use rustix::process::{Pid, Signal, kill_process};
use tokio::signal::unix::{SignalKind, signal};

use crate::error::Error;

/// Signals vaultctl handles while the command runs, and what it passes on (None: ignored).
const SIGNALS: [(SignalKind, Option<Signal>); 6] = [
    (SignalKind::terminate(), Some(Signal::TERM)),
    (SignalKind::hangup(), Some(Signal::HUP)),
    (SignalKind::user_defined1(), Some(Signal::USR1)),
    (SignalKind::user_defined2(), Some(Signal::USR2)),
    (SignalKind::interrupt(), None),
    (SignalKind::quit(), None),
];

/// A fallback poll in case a SIGCHLD is missed; SIGCHLD normally wakes the wait at once.
const POLL: Duration = Duration::from_millis(250);

/// Spawns `command` (whose environment holds `values`), zeroizes our copies right after the
/// spawn, and waits for it while forwarding signals.
pub fn spawn_and_wait(
    mut command: Command,
    values: Vec<(&str, SecretBytes)>,
    program: &OsStr,
) -> Result<ExitStatus, Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::io("starting the signal handler"))?;
    runtime.block_on(async move {
        // Handlers first, so that no signal between the spawn and the wait kills vaultctl
        // and leaves the command behind.
        let mut handlers = Vec::with_capacity(SIGNALS.len());
        for (kind, forward) in SIGNALS {
            handlers.push((
                signal(kind).map_err(Error::io("installing signal handlers"))?,
                forward,
            ));
        }
        let mut exited =
            signal(SignalKind::child()).map_err(Error::io("installing signal handlers"))?;

        let spawned = command.spawn();
        // std keeps its own copies of the environment in the Command; drop it at once (it
        // is freed, not zeroized: std offers no way to), and zeroize ours.
        drop(command);
        drop(values);
        let mut child = spawned.map_err(|source| Error::Spawn {
            program: PathBuf::from(program),
            source,
        })?;

        let pid = Pid::from_child(&child);
        for (mut stream, forward) in handlers {
            tokio::spawn(async move {
                while stream.recv().await.is_some() {
                    if let Some(sig) = forward {
                        // The command may have exited already; nothing to do then.
                        let _ = kill_process(pid, sig);
                    }
                }
            });
        }
        loop {
            // Returning right after the reap, with no await in between, means no signal is
            // forwarded to a pid that could have been reused.
            if let Some(status) = child
                .try_wait()
                .map_err(Error::io("waiting for the command"))?
            {
                return Ok(status);
            }
            tokio::select! {
                _ = exited.recv() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    })
}
