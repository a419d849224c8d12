//! Calls that must not wait on a KEK device: a daemon answers seal, open and rewrap on its
//! async workers when the keys they need are in memory (a tiered vault's epoch keys with a
//! lease of wraps left, or root KEKs that compute in process), and sends them to its bounded
//! pool only when a device would be asked (an HSM or TPM wrap or unwrap, an epoch opened or
//! started, a lease renewed: that one also writes `vault.json`).
//!
//! [`without_devices`] marks the running thread for the length of one call; each place that
//! would reach a device asks [`device_allowed`] first, which fails the call and remembers
//! why. The call's result is then discarded, so an error path cannot be mistaken for an
//! answer, and the caller runs the same call again where devices may be used. Nothing a
//! refused call did before the refusal outlives it: the checks come before any wrap is
//! counted, any key is opened or anything is written.

use std::cell::Cell;

use crate::Error;

thread_local! {
    /// Whether this thread is inside [`without_devices`].
    static RULED_OUT: Cell<bool> = const { Cell::new(false) };
    /// Whether a call inside it wanted a device.
    static WANTED: Cell<bool> = const { Cell::new(false) };
}

/// Runs `call` with devices ruled out: `Some` of its result if it needed none, `None` if it
/// wanted one (and was stopped before using it).
pub(crate) fn without_devices<T>(call: impl FnOnce() -> T) -> Option<T> {
    let outer = Outer {
        ruled_out: RULED_OUT.replace(true),
        wanted: WANTED.replace(false),
    };
    let result = call();
    let wanted = WANTED.get();
    drop(outer);
    (!wanted).then_some(result)
}

/// The state around a [`without_devices`] call, put back when it ends, also by a panic:
/// the thread (a daemon's async worker) goes on to run other calls.
struct Outer {
    ruled_out: bool,
    wanted: bool,
}

impl Drop for Outer {
    fn drop(&mut self) {
        RULED_OUT.set(self.ruled_out);
        WANTED.set(self.wanted);
    }
}

/// Whether this thread is inside [`without_devices`]: work it hands to other threads must
/// then stay on it, where the rule applies.
pub(crate) fn devices_ruled_out() -> bool {
    RULED_OUT.get()
}

/// Ok where a device may be used; inside [`without_devices`], the error that stops the
/// call.
pub(crate) fn device_allowed() -> Result<(), Error> {
    if RULED_OUT.get() {
        WANTED.set(true);
        Err(Error::DeviceRuledOut)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_that_wants_a_device_gives_none_and_others_their_result() {
        assert_eq!(without_devices(|| 7), Some(7));
        assert!(without_devices(|| device_allowed().map(|()| 7)).is_none());
        // Even when the call swallows the error, it is known to have wanted a device.
        assert_eq!(without_devices(|| device_allowed().unwrap_or(())), None);
        assert!(
            device_allowed().is_ok(),
            "outside, devices are allowed again"
        );
    }

    #[test]
    fn a_panicking_call_leaves_devices_allowed() {
        let panicked =
            std::panic::catch_unwind(|| without_devices(|| -> u8 { panic!("in the call") }));
        assert!(panicked.is_err());
        assert!(device_allowed().is_ok());
    }

    #[test]
    fn nested_calls_restore_the_outer_state() {
        let outer = without_devices(|| {
            assert_eq!(without_devices(|| 1), Some(1));
            device_allowed()
        });
        assert!(outer.is_none());
        let outer = without_devices(|| {
            assert!(without_devices(device_allowed).is_none());
            // The inner call's wish is not the outer call's.
            2
        });
        assert_eq!(outer, Some(2));
    }
}
