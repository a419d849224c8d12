//! The fixture: pcscd (started when not running), the cards on vpcd's readers, and the
//! machine-wide lock that makes card tests take turns.

use std::env;
use std::ffi::{CStr, CString};
use std::fs::File;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use pcsc::{Context, Protocols, ReaderState, Scope, ShareMode, State};

/// A factory-fresh card's PIN.
pub const DEFAULT_PIN: &[u8] = b"123456";
/// A factory-fresh card's PUK.
pub const DEFAULT_PUK: &[u8] = b"12345678";
/// vpcd's readers (Debian's vsmartcard-vpcd 3.3): one port each from 35963 on.
pub const MAX_CARDS: usize = 2;

const VPCD_PORT: u16 = 35963;
/// Names another pcscd program (tests of the skip rule name one that is not there).
const PCSCD_ENV: &str = "VAULT_PCSCD";
/// The vpcd reader driver pcscd loads (from /etc/reader.conf.d/vpcd).
const VPCD_DRIVER: &str = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so";
/// pcscd is machine-wide, so is the lock: every process's card tests take turns on it.
const LOCK_FILE: &str = "/tmp/vault-piv-card.lock";
/// How long pcscd, vpcd and a card get to come up (each takes milliseconds).
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a card plugged in gets to show up in pcscd before it is plugged in again (pcscd
/// polls vpcd's readers about every 400 ms).
const PLUG_IN_TIMEOUT: Duration = Duration::from_secs(3);
const POLL: Duration = Duration::from_millis(20);
/// Serial numbers of the cards: the first card's, then one more per reader.
const FIRST_SERIAL: u32 = 15_000_001;

/// Running emulated cards, one per vpcd reader, in pcscd; stopped on drop.
#[derive(Debug)]
pub struct PivCards {
    cards: Vec<PivCard>,
    /// The pcscd this fixture started (none when one was already running).
    pcscd: Option<Child>,
    _lock: File,
}

/// One emulated card in its reader.
#[derive(Debug)]
pub struct PivCard {
    serial: u32,
    reader: String,
    socket: TcpStream,
    thread: Option<JoinHandle<std::io::Result<()>>>,
    /// PINs the card was sent.
    verifications: Arc<AtomicUsize>,
}

impl PivCards {
    /// Starts `count` cards (at most [`MAX_CARDS`]) for the test `what`, after pcscd; `None`
    /// when pcscd or vpcd is not installed and the skip rule says skip (the skip line is
    /// printed; under `VAULT_REQUIRE_HW` this panics instead). Waits for the lock first.
    #[track_caller]
    pub fn start(what: &str, count: usize) -> Option<Self> {
        assert!(
            (1..=MAX_CARDS).contains(&count),
            "vpcd has {MAX_CARDS} readers"
        );
        if test_support::skip_unless_installed(what, "pcscd with vsmartcard-vpcd", missing()) {
            return None;
        }
        let lock = File::create(LOCK_FILE).unwrap_or_else(|e| panic!("create {LOCK_FILE}: {e}"));
        lock.lock()
            .unwrap_or_else(|e| panic!("lock {LOCK_FILE}: {e}"));
        let mut fixture = Self {
            cards: Vec::new(),
            pcscd: start_pcscd(),
            _lock: lock,
        };
        let context = wait_for(
            "pcscd to list vpcd's readers",
            || {
                let context = Context::establish(Scope::System).ok()?;
                (vpcd_readers(&context).len() >= MAX_CARDS).then_some(context)
            },
            &mut fixture,
        );
        for slot in 0..count {
            let card = PivCard::start(slot, &context, &mut fixture);
            fixture.cards.push(card);
        }
        Some(fixture)
    }

    /// The cards, in reader order.
    pub fn cards(&self) -> &[PivCard] {
        &self.cards
    }

    /// The first card.
    pub fn card(&self) -> &PivCard {
        &self.cards[0]
    }

    /// Pulls card `index` out of its reader, at once, whatever it is doing.
    pub fn stop(&mut self, index: usize) {
        self.cards[index].stop();
    }
}

impl Drop for PivCards {
    fn drop(&mut self) {
        for card in &mut self.cards {
            card.stop();
        }
        if let Some(mut pcscd) = self.pcscd.take() {
            let _ = pcscd.kill();
            let _ = pcscd.wait();
        }
    }
}

impl PivCard {
    fn start(slot: usize, context: &Context, fixture: &mut PivCards) -> Self {
        let port = VPCD_PORT + u16::try_from(slot).expect("a few readers");
        let serial = FIRST_SERIAL + u32::try_from(slot).expect("a few readers");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        // The last card pulled out of this reader must be gone from pcscd's view first, or
        // the new one would be mistaken for it.
        wait_for(
            &format!("vpcd's reader {slot} to be empty"),
            || {
                let reader = vpcd_readers(context).into_iter().nth(slot)?;
                reader_is_empty(context, &reader).then_some(())
            },
            fixture,
        );
        // A card that vpcd took in while it still held on to one pulled out mid-operation is
        // never seen by pcscd: such a card is pulled out again and plugged in anew.
        let started = Instant::now();
        loop {
            let socket = wait_for(
                &format!("vpcd to listen on {addr}"),
                || TcpStream::connect(addr).ok(),
                fixture,
            );
            let served = socket.try_clone().expect("clone the card's socket");
            let verifications = Arc::new(AtomicUsize::new(0));
            let counted = Arc::clone(&verifications);
            let thread = thread::Builder::new()
                .name(format!("piv-card-{serial}"))
                .spawn(move || crate::vpcd::serve(served, serial, counted))
                .expect("spawn the card's thread");
            let seen = Instant::now();
            while seen.elapsed() < PLUG_IN_TIMEOUT {
                if let Some(reader) = card_in_reader(context, slot) {
                    return Self {
                        serial,
                        reader,
                        socket,
                        thread: Some(thread),
                        verifications,
                    };
                }
                thread::sleep(POLL);
            }
            let _ = socket.shutdown(Shutdown::Both);
            if let Err(panic) = thread.join() {
                std::panic::resume_unwind(panic);
            }
            assert!(
                started.elapsed() < READY_TIMEOUT,
                "waited {READY_TIMEOUT:?} for the card in vpcd's reader {slot}"
            );
        }
    }

    /// The card's serial number (GET SERIAL).
    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// How many PINs (VERIFY commands with a PIN, right or wrong) the card was sent.
    pub fn pin_verifications(&self) -> usize {
        self.verifications.load(Ordering::Relaxed)
    }

    /// The name of the reader pcscd shows the card in.
    pub fn reader(&self) -> &str {
        &self.reader
    }

    /// Pulls the card out and waits until pcscd has seen its reader go empty (pcscd polls
    /// vpcd's readers, so that takes a moment), for whoever takes the lock next.
    fn stop(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        let _ = self.socket.shutdown(Shutdown::Both);
        if let Err(panic) = thread.join() {
            std::panic::resume_unwind(panic);
        }
        let Ok(context) = Context::establish(Scope::System) else {
            return;
        };
        let Ok(reader) = CString::new(self.reader.clone()) else {
            return;
        };
        let start = Instant::now();
        while !reader_is_empty(&context, &reader) && start.elapsed() < READY_TIMEOUT {
            thread::sleep(POLL);
        }
    }
}

/// What is missing for the cards: pcscd or vpcd.
fn missing() -> Option<String> {
    if pcscd_program().is_none() {
        return Some(match env::var_os(PCSCD_ENV) {
            Some(program) => format!(
                "{} is not an executable file or on PATH",
                program.to_string_lossy()
            ),
            None => "pcscd is not on PATH or in /usr/sbin".to_owned(),
        });
    }
    (!Path::new(VPCD_DRIVER).exists()).then(|| format!("no {VPCD_DRIVER}"))
}

/// The pcscd program: `VAULT_PCSCD` if set (a path, or a name looked up on `PATH`), else
/// pcscd on `PATH` or in /usr/sbin (not on a non-root user's `PATH` on Debian).
fn pcscd_program() -> Option<PathBuf> {
    match env::var_os(PCSCD_ENV) {
        Some(program) => test_support::find_program(program),
        None => test_support::find_program("pcscd")
            .or_else(|| test_support::find_program("/usr/sbin/pcscd")),
    }
}

/// Starts pcscd unless one answers already (there is no systemd here to start it).
fn start_pcscd() -> Option<Child> {
    if Context::establish(Scope::System).is_ok() {
        return None;
    }
    let program = pcscd_program().expect("checked by missing()");
    let child = Command::new(program)
        .arg("--foreground")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start pcscd");
    Some(child)
}

/// vpcd's readers, in slot order.
fn vpcd_readers(context: &Context) -> Vec<CString> {
    let mut readers: Vec<CString> = context
        .list_readers_owned()
        .unwrap_or_default()
        .into_iter()
        .filter(|name| name.to_bytes().starts_with(b"Virtual PCD"))
        .collect();
    readers.sort();
    readers
}

/// The name of vpcd's reader `slot` if pcscd sees a card in it that can be connected to.
fn card_in_reader(context: &Context, slot: usize) -> Option<String> {
    let reader = vpcd_readers(context).into_iter().nth(slot)?;
    context
        .connect(&reader, ShareMode::Shared, Protocols::ANY)
        .ok()?;
    Some(reader.into_string().expect("reader names are UTF-8"))
}

/// Whether pcscd sees no card in `reader`.
fn reader_is_empty(context: &Context, reader: &CStr) -> bool {
    let mut states = [ReaderState::new(reader, State::UNAWARE)];
    context
        .get_status_change(Duration::ZERO, &mut states)
        .is_ok_and(|()| states[0].event_state().contains(State::EMPTY))
}

/// Polls `ready` until it gives a value; panics after [`READY_TIMEOUT`] (the fixture's drop
/// stops what was started).
fn wait_for<T>(what: &str, mut ready: impl FnMut() -> Option<T>, _fixture: &mut PivCards) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = ready() {
            return value;
        }
        assert!(
            start.elapsed() < READY_TIMEOUT,
            "waited {READY_TIMEOUT:?} for {what}"
        );
        thread::sleep(POLL);
    }
}
