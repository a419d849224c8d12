//! [`Swtpm`]: a running swtpm that one test owns.

use std::ffi::OsStr;
use std::fmt;
use std::fs::{self, File};
use std::io::{BufRead as _, BufReader, Read as _, Seek as _, SeekFrom, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use test_support::child::show_output;

use crate::availability::{skip_without_swtpm, swtpm_program};
use crate::ports::PortPair;
use crate::sha256::{hex, sha256};

/// How long a freshly started swtpm may take to answer a TPM command.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for a stopped swtpm (and the shell watching it) to be gone.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How many port pairs to try when swtpm cannot bind the one it was given.
const BIND_ATTEMPTS: usize = 20;
/// The variable tpm2-tools read their TCTI from.
const TPM2TOOLS_TCTI: &str = "TPM2TOOLS_TCTI";
/// tpm2-tss logging: `all+none` silences the ESYS errors that tests provoke on purpose.
const TSS2_LOG: &str = "TSS2_LOG";

/// Runs swtpm (`$1`, with the arguments after it) in the background and prints its pid; a
/// watchdog kills it with SIGKILL as soon as this shell's stdin reaches end of file, which
/// happens when the fixture closes its end of the pipe, or when the test process dies in any
/// way (a pipe's write end closes with the last process holding it), so no swtpm outlives its
/// test. The shell exits with swtpm's status.
const LAUNCHER: &str = r#"
swtpm=$1
shift
exec 3<&0
"$swtpm" "$@" </dev/null >&2 3<&- &
pid=$!
echo "$pid"
( read -r line <&3; kill -KILL "$pid" 2>/dev/null ) </dev/null &
watchdog=$!
exec 3<&-
wait "$pid" 2>/dev/null
status=$?
kill "$watchdog" 2>/dev/null
exit "$status"
"#;

/// A running swtpm (a TPM 2.0 simulator) with a private state directory, listening on
/// 127.0.0.1 on ports no other test uses; [`Drop`] stops it and removes its directory.
///
/// Reach it with the TCTI string [`tcti`](Self::tcti) (tss-esapi, the provider's KEK URI) or
/// run tpm2-tools against it with [`command`](Self::command). There is no resource manager:
/// whoever talks to it shares its transient slots (3 loaded objects at most) and sessions.
///
/// ```no_run
/// #[test]
/// fn answers() {
///     let Some(tpm) = tpm_tests::Swtpm::start() else { return };
///     let out = tpm.command("tpm2_getrandom").args(["8", "--hex"]).output().unwrap();
///     assert!(out.status.success());
/// }
/// ```
pub struct Swtpm {
    // Stopped in Drop, before the ports are released and the directory removed.
    process: Option<Process>,
    ports: PortPair,
    started_in: Duration,
    state_dir: PathBuf,
    log_file: PathBuf,
    root: TempDir,
}

impl Swtpm {
    /// Starts a swtpm on a fresh state directory with a free pair of ports and waits until it
    /// answers a TPM command.
    ///
    /// Without swtpm or tpm2-tools it returns `None`, after printing
    /// `<test>: skipped: swtpm not installed (run scripts/install-deps.sh): <what is missing>`
    /// to the process's stderr (past libtest's capture), or panics saying so if
    /// `VAULT_REQUIRE_HW` is set. `VAULT_SWTPM` names another swtpm program. Panics, showing
    /// swtpm's stderr, if swtpm does not start or does not answer within 10 s.
    #[track_caller]
    pub fn start() -> Option<Self> {
        if skip_without_swtpm() {
            return None;
        }
        let started = Instant::now();
        let root = tempfile::Builder::new()
            .prefix("vault-swtpm-")
            .permissions(fs::Permissions::from_mode(0o700))
            .tempdir()
            .unwrap_or_else(|e| panic!("tpm-tests: cannot create a private swtpm dir: {e}"));
        let state_dir = root.path().join("tpm-state");
        fs::create_dir(&state_dir)
            .unwrap_or_else(|e| panic!("tpm-tests: cannot create {}: {e}", state_dir.display()));
        let log = root.path().join("swtpm.log");
        let mut refused = Vec::new();
        loop {
            let ports = PortPair::claim(&refused);
            match Process::launch(&state_dir, &ports, &log) {
                Ok(process) => {
                    return Some(Self {
                        process: Some(process),
                        ports,
                        started_in: started.elapsed(),
                        state_dir,
                        log_file: log,
                        root,
                    });
                }
                // Another program took a port after the check; try another pair.
                Err(failure) if failure.could_not_bind() && refused.len() + 1 < BIND_ATTEMPTS => {
                    refused.push(ports.server());
                }
                Err(failure) => panic!("tpm-tests: swtpm did not start: {failure}"),
            }
        }
    }

    /// The TCTI string for this swtpm: `swtpm:host=127.0.0.1,port=<port>`.
    pub fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.ports.server())
    }

    /// The TPM command port.
    pub fn port(&self) -> u16 {
        self.ports.server()
    }

    /// The control channel port (`port() + 1`), for `swtpm_ioctl --tcp 127.0.0.1:<port>`.
    pub fn ctrl_port(&self) -> u16 {
        self.ports.ctrl()
    }

    /// swtpm's state directory (`tpm2-00.permall` holds the persistent state).
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// A private directory (mode 0700, removed on drop) for the test's own files: vault
    /// directories, key files. The fixture keeps `tpm-state/` and `swtpm.log` in it.
    pub fn dir(&self) -> &Path {
        self.root.path()
    }

    /// swtpm's stderr and stdout, over all its starts.
    pub fn log_file(&self) -> &Path {
        &self.log_file
    }

    /// The process id of the running swtpm (it changes with every restart).
    pub fn pid(&self) -> u32 {
        self.process.as_ref().map_or(0, |process| process.pid)
    }

    /// How long the last start took, from the call to the first answered TPM command.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// Reboots the TPM the way an operating system does: `TPM2_Shutdown(CLEAR)`, then kill
    /// swtpm and start it again on the same state directory and ports (it starts with
    /// `TPM2_Startup(CLEAR)`). Persistent objects, NV indices and the seeds survive; PCRs,
    /// loaded objects and sessions do not. Panics if the shutdown or the start fails.
    #[track_caller]
    pub fn restart(&mut self) {
        if self.is_running() {
            self.run(self.command("tpm2_shutdown").arg("--clear"));
        }
        self.stop();
        self.relaunch("restart");
    }

    /// A power cut: kill swtpm without `TPM2_Shutdown` and start it again on the same state
    /// directory and ports. What [`restart`](Self::restart) keeps survives here too, but the
    /// TPM counts the disorderly stop as a dictionary-attack failure if a DA-protected
    /// authorisation was used since the last startup (a key or NV index without `noDA`): after
    /// three such stops ([`lockout_counter`](Self::lockout_counter) reaches 3) it refuses them
    /// with `TPM_RC_LOCKOUT` until `tpm2_dictionarylockout --clear-lockout`.
    #[track_caller]
    pub fn crash_restart(&mut self) {
        self.stop();
        self.relaunch("crash restart");
    }

    /// A cleared (in fact: brand-new) TPM: stop swtpm, wipe its state directory and start it
    /// again on the same ports. Every seed is new, so nothing sealed or persisted before can be
    /// loaded again.
    #[track_caller]
    pub fn clear(&mut self) {
        self.stop();
        let state_dir = self.state_dir();
        fs::remove_dir_all(state_dir)
            .and_then(|()| fs::create_dir(state_dir))
            .unwrap_or_else(|e| panic!("tpm-tests: cannot wipe {}: {e}", state_dir.display()));
        self.relaunch("clear");
    }

    /// Extends PCR 16 (resettable, debug) in the SHA-256 bank with the SHA-256 digest of
    /// `data`: `tpm2_pcrextend 16:sha256=<digest>`.
    #[track_caller]
    pub fn extend_pcr16(&self, data: &[u8]) {
        let argument = format!("16:sha256={}", hex(&sha256(data)));
        self.run(self.command("tpm2_pcrextend").arg(argument));
    }

    /// Resets PCR 16 to all zeros (allowed at locality 0): `tpm2_pcrreset 16`.
    #[track_caller]
    pub fn reset_pcr16(&self) {
        self.run(self.command("tpm2_pcrreset").arg("16"));
    }

    /// PCR 16 of the SHA-256 bank, 64 lowercase hex digits.
    #[track_caller]
    pub fn pcr16(&self) -> String {
        let output = self.run(self.command("tpm2_pcrread").arg("sha256:16"));
        parse_pcr(&output, 16)
            .unwrap_or_else(|| panic!("tpm-tests: no PCR 16 in tpm2_pcrread's output:\n{output}"))
    }

    /// The TPM's dictionary-attack failure count (`TPM2_PT_LOCKOUT_COUNTER`); it locks out
    /// DA-protected authorisations at 3 (`TPM2_PT_MAX_AUTH_FAIL`).
    #[track_caller]
    pub fn lockout_counter(&self) -> u32 {
        let output = self.run(self.command("tpm2_getcap").arg("properties-variable"));
        parse_property(&output, "TPM2_PT_LOCKOUT_COUNTER").unwrap_or_else(|| {
            panic!("tpm-tests: no TPM2_PT_LOCKOUT_COUNTER in tpm2_getcap's output:\n{output}")
        })
    }

    /// `program` (a tpm2-tools program, typically) with `TPM2TOOLS_TCTI` naming this swtpm,
    /// `TSS2_LOG=all+none` and stdin from `/dev/null`.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new(program);
        command
            .env(TPM2TOOLS_TCTI, self.tcti())
            .env(TSS2_LOG, "all+none")
            .stdin(Stdio::null());
        command
    }

    /// Runs `command` and returns its stdout; panics, showing its output, if it fails.
    #[track_caller]
    fn run(&self, command: &mut Command) -> String {
        let output = command
            .output()
            .unwrap_or_else(|e| panic!("tpm-tests: cannot run {command:?}: {e}"));
        if !output.status.success() {
            panic!(
                "tpm-tests: {command:?} failed ({}) against {}\n{}",
                output.status,
                self.tcti(),
                show_output(&output)
            );
        }
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn is_running(&mut self) -> bool {
        self.process
            .as_mut()
            .is_some_and(|process| matches!(process.shell.try_wait(), Ok(None)))
    }

    /// Kills swtpm and waits until it is gone; a no-op if it is not running.
    fn stop(&mut self) {
        if let Some(process) = self.process.take() {
            process.stop();
        }
    }

    /// Starts swtpm again on the same state directory and ports.
    #[track_caller]
    fn relaunch(&mut self, what: &str) {
        let started = Instant::now();
        let process = Process::launch(&self.state_dir, &self.ports, &self.log_file).unwrap_or_else(
            |failure| panic!("tpm-tests: swtpm did not start again ({what}): {failure}"),
        );
        self.process = Some(process);
        self.started_in = started.elapsed();
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        self.stop();
    }
}

impl fmt::Debug for Swtpm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Swtpm")
            .field("tcti", &self.tcti())
            .field("ctrl_port", &self.ports.ctrl())
            .field("pid", &self.pid())
            .field("dir", &self.dir())
            .finish()
    }
}

/// A swtpm started through [`LAUNCHER`].
struct Process {
    /// The launcher shell; it exits when swtpm does, with swtpm's status.
    shell: Child,
    /// The launcher's stdin: closing it makes the watchdog kill swtpm.
    watchdog: ChildStdin,
    pid: u32,
}

/// Why swtpm did not start.
enum LaunchFailure {
    /// swtpm (or the launcher) exited before answering.
    Exited { status: ExitStatus, log: String },
    /// It still does not answer after [`READY_TIMEOUT`].
    TimedOut { last_error: String, log: String },
    /// It could not be run at all.
    Spawn(String),
}

impl LaunchFailure {
    /// Whether swtpm exited because a port was taken.
    fn could_not_bind(&self) -> bool {
        matches!(self, Self::Exited { log, .. } if log.contains("Address already in use"))
    }
}

impl fmt::Display for LaunchFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exited { status, log } => {
                write!(f, "it exited ({status})\n--- swtpm stderr ---\n{log}")
            }
            Self::TimedOut { last_error, log } => write!(
                f,
                "it did not answer TPM2_GetRandom within {READY_TIMEOUT:?} (last: {last_error})\n\
                 --- swtpm stderr ---\n{log}"
            ),
            Self::Spawn(error) => f.write_str(error),
        }
    }
}

impl Process {
    /// Starts swtpm on `state_dir` and `ports`, appending its output to `log`, and waits until
    /// it answers a TPM command.
    fn launch(state_dir: &Path, ports: &PortPair, log: &Path) -> Result<Self, LaunchFailure> {
        let spawn_error = |e: std::io::Error| LaunchFailure::Spawn(e.to_string());
        let log_file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(spawn_error)?;
        let log_start = log_file.metadata().map_err(spawn_error)?.len();
        let mut shell = Command::new("sh")
            .arg("-c")
            .arg(LAUNCHER)
            .arg("sh")
            .arg(swtpm_program())
            .args(["socket", "--tpm2"])
            .arg("--tpmstate")
            .arg(format!("dir={}", state_dir.display()))
            .arg("--server")
            .arg(format!(
                "type=tcp,port={},bindaddr=127.0.0.1",
                ports.server()
            ))
            .arg("--ctrl")
            .arg(format!("type=tcp,port={},bindaddr=127.0.0.1", ports.ctrl()))
            .args(["--flags", "not-need-init,startup-clear"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .map_err(|e| LaunchFailure::Spawn(format!("cannot run sh: {e}")))?;
        let watchdog = shell.stdin.take().expect("stdin is piped");
        let stdout = shell.stdout.take().expect("stdout is piped");
        let mut line = String::new();
        let pid = BufReader::new(stdout)
            .read_line(&mut line)
            .ok()
            .and_then(|_| line.trim().parse::<u32>().ok());
        let Some(pid) = pid else {
            drop(watchdog);
            let status = shell.wait().map_err(spawn_error)?;
            return Err(LaunchFailure::Exited {
                status,
                log: read_from(log, log_start),
            });
        };
        let process = Self {
            shell,
            watchdog,
            pid,
        };
        process.wait_until_ready(ports.server(), log, log_start)
    }

    /// Polls with TPM2_GetRandom until swtpm answers; stops it on failure.
    fn wait_until_ready(
        mut self,
        port: u16,
        log: &Path,
        log_start: u64,
    ) -> Result<Self, LaunchFailure> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.shell.try_wait() {
                return Err(LaunchFailure::Exited {
                    status,
                    log: read_from(log, log_start),
                });
            }
            // An answer while this swtpm still runs is its own: the ports were free a moment
            // before it started, and a program that took one since would have made it exit.
            let last_error = match get_random(port) {
                Ok(()) if matches!(self.shell.try_wait(), Ok(None)) => return Ok(self),
                Ok(()) => "answered, but swtpm is not running".to_owned(),
                Err(error) => error,
            };
            if Instant::now() >= deadline {
                self.stop();
                return Err(LaunchFailure::TimedOut {
                    last_error,
                    log: read_from(log, log_start),
                });
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Closes the watchdog's pipe, so swtpm gets SIGKILL, and waits for swtpm and its shell to
    /// be gone. Should the shell not end, kills both directly.
    fn stop(mut self) {
        drop(self.watchdog);
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match self.shell.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) if Instant::now() >= deadline => break,
                Ok(None) => std::thread::sleep(Duration::from_millis(1)),
            }
        }
        let _ = Command::new("kill")
            .args(["-KILL", &self.pid.to_string()])
            .stderr(Stdio::null())
            .status();
        let _ = self.shell.kill();
        let _ = self.shell.wait();
    }
}

/// Sends TPM2_GetRandom(8) to `127.0.0.1:port` in one connection, as the swtpm TCTI does, and
/// checks for a successful response.
fn get_random(port: u16) -> Result<(), String> {
    /// TPM_ST_NO_SESSIONS, size 12, TPM_CC_GetRandom, bytesRequested 8.
    const COMMAND: [u8; 12] = [0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x7b, 0, 8];
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_millis(500))
        .map_err(|e| format!("connect: {e}"))?;
    let timeout = Some(Duration::from_secs(2));
    stream
        .set_read_timeout(timeout)
        .and_then(|()| stream.set_write_timeout(timeout))
        .and_then(|()| stream.write_all(&COMMAND))
        .map_err(|e| format!("send: {e}"))?;
    let mut header = [0u8; 10];
    stream
        .read_exact(&mut header)
        .map_err(|e| format!("receive: {e}"))?;
    let code = u32::from_be_bytes([header[6], header[7], header[8], header[9]]);
    if header[..2] != [0x80, 0x01] || code != 0 {
        return Err(format!(
            "response tag {:02x}{:02x}, code {code:#x}",
            header[0], header[1]
        ));
    }
    Ok(())
}

/// `path` from byte `start` on, for an error message.
fn read_from(path: &Path, start: u64) -> String {
    let mut text = Vec::new();
    let read = File::open(path).and_then(|mut file| {
        file.seek(SeekFrom::Start(start))?;
        file.read_to_end(&mut text)
    });
    match read {
        Ok(_) => String::from_utf8_lossy(&text).trim_end().to_owned(),
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// PCR `index` from `tpm2_pcrread` output (`  sha256:` then `    16: 0x<HEX>`), lowercase.
fn parse_pcr(output: &str, index: u32) -> Option<String> {
    let prefix = format!("{index}:");
    output.lines().find_map(|line| {
        let value = line.trim().strip_prefix(&prefix)?.trim();
        let digits = value.strip_prefix("0x")?;
        (digits.len() == 64 && digits.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| digits.to_ascii_lowercase())
    })
}

/// The number after `<name>:` in `tpm2_getcap` output (`0x...` or decimal).
fn parse_property(output: &str, name: &str) -> Option<u32> {
    output.lines().find_map(|line| {
        let value = line.trim().strip_prefix(name)?.strip_prefix(':')?.trim();
        match value.strip_prefix("0x") {
            Some(digits) => u32::from_str_radix(digits, 16).ok(),
            None => value.parse().ok(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pcrread_output() {
        let output = "  sha256:\n    16: 0x589F9FFED4C477966BFB8D41F37895B08C69047DF8F911D6F3B57FBE08FAEE8D\n";
        assert_eq!(
            parse_pcr(output, 16).as_deref(),
            Some("589f9ffed4c477966bfb8d41f37895b08c69047df8f911d6f3b57fbe08faee8d")
        );
        assert_eq!(parse_pcr(output, 1), None);
        assert_eq!(parse_pcr("  sha256:\n    16: 0x00\n", 16), None);
    }

    #[test]
    fn parses_getcap_properties() {
        let output = "TPM2_PT_LOCKOUT_COUNTER: 0x2\nTPM2_PT_MAX_AUTH_FAIL: 0x3\n";
        assert_eq!(parse_property(output, "TPM2_PT_LOCKOUT_COUNTER"), Some(2));
        assert_eq!(parse_property(output, "TPM2_PT_MAX_AUTH_FAIL"), Some(3));
        assert_eq!(parse_property(output, "TPM2_PT_LOCKOUT"), None);
    }
}
