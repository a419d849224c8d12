//! Choosing the TCP ports of a swtpm: a pair (server `p`, control `p + 1`) that no other swtpm
//! of this or another test process uses, outside the kernel's ephemeral port range.
//!
//! The swtpm TCTI opens one TCP connection per TPM command, so a test leaves hundreds of
//! sockets in TIME_WAIT on ephemeral ports; a swtpm listening on an ephemeral port could find it
//! taken when it restarts, and so could vsmartcard's vpcd, which binds 35963 and 35964 (inside
//! Linux's default ephemeral range) without SO_REUSEADDR. So ports come from 20000..32000 (or
//! whatever else lies outside `/proc/sys/net/ipv4/ip_local_port_range`), never 35963 or 35964.
//!
//! A pair is claimed by an exclusive `flock` on `<temp dir>/vault-swtpm-ports/<p>.lock`, held
//! as long as the [`PortPair`] lives (the kernel drops it if the process dies), so test threads
//! and test processes using this crate never pick the same pair; within a process a set of
//! claimed ports does the same should the lock directory be unusable. Both ports must also
//! bind right now, which keeps away from other programs' listeners. What is left, another
//! program binding the port between that check and swtpm's own bind, makes swtpm exit at once;
//! the fixture then tries the next pair.

use std::collections::HashSet;
use std::fs::{self, File, TryLockError};
use std::net::{Ipv4Addr, TcpListener};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

/// Ports vsmartcard's vpcd needs free (it binds them without SO_REUSEADDR).
const RESERVED: [u16; 2] = [35963, 35964];
/// Where server ports are taken from when the kernel's ephemeral range allows it.
const PREFERRED: Range<u16> = 20000..32000;
/// Where else they may come from when it does not.
const FALLBACK: Range<u16> = 10000..65000;
/// Linux's default, used if `/proc` cannot be read.
const DEFAULT_EPHEMERAL: (u16, u16) = (32768, 60999);

/// Server ports claimed by this process (a guard besides the lock files).
static CLAIMED: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
/// Where the next search starts, so that threads (and, by the process id, processes) starting
/// swtpms at the same time try different pairs first.
static NEXT: OnceLock<AtomicUsize> = OnceLock::new();

/// A claimed pair of ports: `server` and `server + 1`.
#[derive(Debug)]
pub(crate) struct PortPair {
    server: u16,
    /// The lock file's handle; closing it releases the claim for other processes.
    _lock: Option<File>,
}

impl PortPair {
    /// Claims a free pair, skipping every server port in `avoid` (pairs that swtpm could not
    /// bind a moment ago). Panics if none is free.
    #[track_caller]
    pub(crate) fn claim(avoid: &[u16]) -> Self {
        let candidates = candidates(ephemeral_range());
        let next = NEXT.get_or_init(|| AtomicUsize::new(std::process::id() as usize * 7919));
        let start = next.fetch_add(1, Ordering::Relaxed);
        let lock_dir = lock_dir();
        for i in 0..candidates.len() {
            let server = candidates[(start + i) % candidates.len()];
            if avoid.contains(&server) || !claim_in_process(server) {
                continue;
            }
            let lock = match lock_dir.as_ref().map(|dir| try_lock(dir, server)) {
                Some(Ok(Some(file))) => Some(file),
                // Held by another swtpm fixture.
                Some(Ok(None)) => {
                    release_in_process(server);
                    continue;
                }
                // The lock directory is unusable: the in-process claim and the bind check
                // have to do.
                Some(Err(())) | None => None,
            };
            if binds(server) && binds(server + 1) {
                return Self {
                    server,
                    _lock: lock,
                };
            }
            release_in_process(server);
        }
        panic!(
            "tpm-tests: no free pair of TCP ports for swtpm among {} candidates outside the \
             ephemeral port range",
            candidates.len()
        );
    }

    /// The TPM command port (the TCTI's `port`).
    pub(crate) fn server(&self) -> u16 {
        self.server
    }

    /// The control channel port, `server + 1`.
    pub(crate) fn ctrl(&self) -> u16 {
        self.server + 1
    }
}

impl Drop for PortPair {
    fn drop(&mut self) {
        release_in_process(self.server);
        // The lock file's handle closes after this, releasing the flock.
    }
}

/// The even server ports to choose from: their pairs lie outside the ephemeral range `(low,
/// high)` and away from [`RESERVED`]; from [`PREFERRED`] if any there qualify, else from
/// [`FALLBACK`], else (an ephemeral range covering everything) from [`PREFERRED`] regardless.
fn candidates((low, high): (u16, u16)) -> Vec<u16> {
    let usable = |port: u16| {
        let pair = [port, port + 1];
        pair.iter()
            .all(|p| !(low..=high).contains(p) && !RESERVED.contains(p))
    };
    let from =
        |range: Range<u16>| -> Vec<u16> { range.step_by(2).filter(|&port| usable(port)).collect() };
    let preferred = from(PREFERRED);
    if !preferred.is_empty() {
        return preferred;
    }
    let fallback = from(FALLBACK);
    if !fallback.is_empty() {
        return fallback;
    }
    PREFERRED
        .step_by(2)
        .filter(|port| !RESERVED.contains(port) && !RESERVED.contains(&(port + 1)))
        .collect()
}

/// The kernel's ephemeral port range, from `/proc/sys/net/ipv4/ip_local_port_range`.
fn ephemeral_range() -> (u16, u16) {
    fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| parse_range(&text))
        .unwrap_or(DEFAULT_EPHEMERAL)
}

fn parse_range(text: &str) -> Option<(u16, u16)> {
    let mut numbers = text.split_whitespace().map(str::parse::<u16>);
    match (numbers.next(), numbers.next(), numbers.next()) {
        (Some(Ok(low)), Some(Ok(high)), None) if low <= high => Some((low, high)),
        _ => None,
    }
}

/// Whether a listener can bind `127.0.0.1:port` right now (std sets SO_REUSEADDR, as swtpm
/// does, so sockets in TIME_WAIT do not count).
fn binds(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

fn claim_in_process(server: u16) -> bool {
    CLAIMED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get_or_insert_with(HashSet::new)
        .insert(server)
}

fn release_in_process(server: u16) {
    if let Some(claimed) = CLAIMED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_mut()
    {
        claimed.remove(&server);
    }
}

/// `<temp dir>/vault-swtpm-ports`, created if need be (world-writable and sticky, like
/// `/tmp`, so that users share it); `None` if it cannot be.
fn lock_dir() -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = std::env::temp_dir().join("vault-swtpm-ports");
    match fs::create_dir(&dir) {
        Ok(()) => {
            let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(0o1777));
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(_) => return None,
    }
    dir.is_dir().then_some(dir)
}

/// The exclusive lock on `<dir>/<server>.lock`: `Ok(None)` if someone holds it, `Err` if the
/// file cannot be opened or locked at all.
fn try_lock(dir: &std::path::Path, server: u16) -> Result<Option<File>, ()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o666)
        .open(dir.join(format!("{server}.lock")))
        .map_err(drop)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(_)) => Err(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_avoid_the_ephemeral_range_and_vpcd() {
        let linux_default = candidates((32768, 60999));
        assert_eq!(linux_default.first(), Some(&20000));
        assert_eq!(linux_default.last(), Some(&31998));
        assert!(linux_default.iter().all(|p| p % 2 == 0));

        // A range that swallows the preferred window pushes ports above it, past vpcd's.
        let wide = candidates((15000, 40000));
        assert_eq!(wide.first(), Some(&10000));
        assert!(wide.contains(&40002));
        assert!(!wide.contains(&40000));
        assert!(wide.iter().all(|p| !(15000..=40000).contains(&(p + 1))));

        let low = candidates((1024, 34000));
        assert!(!low.is_empty());
        for port in &low {
            assert!(*port > 34000);
            assert!(![35962, 35963, 35964].contains(port), "{port}");
        }

        // Everything ephemeral: the preferred window all the same.
        let all = candidates((1, 65535));
        assert_eq!(all.first(), Some(&20000));
    }

    #[test]
    fn parses_the_proc_file() {
        assert_eq!(parse_range("32768\t60999\n"), Some((32768, 60999)));
        assert_eq!(parse_range("1024 65535"), Some((1024, 65535)));
        assert_eq!(parse_range("60999 32768"), None);
        assert_eq!(parse_range("32768"), None);
        assert_eq!(parse_range(""), None);
    }

    #[test]
    fn a_claimed_pair_is_not_claimed_twice() {
        let first = PortPair::claim(&[]);
        let second = PortPair::claim(&[]);
        assert_ne!(first.server(), second.server());
        assert_eq!(first.ctrl(), first.server() + 1);
        let avoided = PortPair::claim(&[first.server(), second.server()]);
        assert_ne!(avoided.server(), first.server());
        assert_ne!(avoided.server(), second.server());
        // The lock file keeps another claimant (here: one that ignores the in-process set)
        // away.
        if let Some(dir) = lock_dir() {
            assert!(matches!(try_lock(&dir, first.server()), Ok(None)));
            let server = first.server();
            drop(first);
            assert!(matches!(try_lock(&dir, server), Ok(Some(_))));
        }
    }
}
