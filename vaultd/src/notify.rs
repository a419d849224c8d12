//! Telling the service manager how the daemon is doing (systemd's `Type=notify`), when it
//! was started with `NOTIFY_SOCKET`: `READY=1` once the daemon listens and the vault is
//! unlocked (a vault that starts locked is ready when an admin unlocks it), `RELOADING=1`
//! and `READY=1` around a reload, `STOPPING=1` when the drain starts, and a `STATUS=` line
//! saying what it waits for. Without `NOTIFY_SOCKET` every call does nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use sd_notify::NotifyState;

/// How often a locked vault is looked at until it is unlocked: the lock state has no
/// event to wait for, and a look is one read of a lock.
const UNLOCK_POLL: Duration = Duration::from_millis(100);

/// The notifications of one daemon.
#[derive(Debug, Default)]
pub struct Notifier {
    /// `READY=1` was sent.
    ready: AtomicBool,
    /// `STOPPING=1` was sent: no `READY=1` after it.
    stopping: AtomicBool,
    /// A send failed and was logged (once is enough).
    failed: AtomicBool,
}

impl Notifier {
    /// A notifier that has sent nothing yet.
    pub fn new() -> Arc<Self> {
        Arc::new(Notifier::default())
    }

    /// Whether `READY=1` was sent.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// Call once the daemon listens on `addr`: sends `READY=1` as soon as `vault` is
    /// unlocked (at once if it is), with a `STATUS=` line meanwhile.
    pub fn ready_when_unlocked(self: &Arc<Self>, vault: &Arc<vault::Vault>, addr: String) {
        let notifier = Arc::clone(self);
        let vault: Weak<vault::Vault> = Arc::downgrade(vault);
        tokio::spawn(async move {
            let mut said_locked = false;
            loop {
                let Some(locked) = vault.upgrade().map(|v| v.is_locked()) else {
                    return;
                };
                if notifier.stopping.load(Ordering::SeqCst) {
                    return;
                }
                if !locked {
                    let status = format!("serving on {addr}");
                    notifier.send(&[NotifyState::Ready, NotifyState::Status(&status)]);
                    notifier.ready.store(true, Ordering::SeqCst);
                    return;
                }
                if !said_locked {
                    let status = format!("listening on {addr}; locked: waiting for an unlock");
                    notifier.send(&[NotifyState::Status(&status)]);
                    said_locked = true;
                }
                tokio::time::sleep(UNLOCK_POLL).await;
            }
        });
    }

    /// A reload begins: `RELOADING=1` (with the monotonic time systemd 253 and later ask
    /// for), if the daemon was ready. Returns whether it was sent; pass that to
    /// [`Notifier::reloaded`].
    pub fn reloading(&self) -> bool {
        if !self.is_ready() {
            return false;
        }
        match NotifyState::monotonic_usec_now() {
            Ok(now) => self.send(&[NotifyState::Reloading, now]),
            Err(_) => self.send(&[NotifyState::Reloading]),
        }
        true
    }

    /// A reload ended (taken or refused, as `status` says): `READY=1` again if
    /// `announced` (what [`Notifier::reloading`] returned).
    pub fn reloaded(&self, announced: bool, status: &str) {
        if announced && !self.stopping.load(Ordering::SeqCst) {
            self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
        } else {
            self.send(&[NotifyState::Status(status)]);
        }
    }

    /// The drain begins: `STOPPING=1`.
    pub fn stopping(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.send(&[
            NotifyState::Stopping,
            NotifyState::Status("draining in-flight calls"),
        ]);
    }

    fn send(&self, states: &[NotifyState<'_>]) {
        // `false`: NOTIFY_SOCKET stays set for the notifications that follow.
        if let Err(e) = sd_notify::notify(false, states)
            && !self.failed.swap(true, Ordering::SeqCst)
        {
            log::warn!("cannot notify the service manager (NOTIFY_SOCKET): {e}");
        }
    }
}
