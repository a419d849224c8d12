//! The process CSPRNG: a per-thread ChaCha20 generator seeded from the operating system.
//!
//! A `getrandom` system call costs about 0.4 us, more than the two AEAD operations of a
//! seal together, so keys and nonces come from a user-space generator instead. It is
//! reseeded from the OS every [`RESEED_AFTER`] bytes and in a child after `fork`.

use std::cell::RefCell;

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use ring::rand::SecureRandom;
use zeroize::Zeroize;

use crate::Error;
use crate::memory;

/// Output after which a thread's generator takes a fresh seed from the OS.
const RESEED_AFTER: u64 = 1 << 20;

struct State {
    rng: ChaCha20Rng,
    produced: u64,
    fork_generation: u64,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

fn os_fill(out: &mut [u8]) -> Result<(), Error> {
    ring::rand::SystemRandom::new()
        .fill(out)
        .map_err(|_| Error::Random)
}

fn seeded(fork_generation: u64) -> Result<State, Error> {
    let mut seed = [0u8; 32];
    os_fill(&mut seed)?;
    let rng = ChaCha20Rng::from_seed(seed);
    seed.zeroize();
    Ok(State {
        rng,
        produced: 0,
        fork_generation,
    })
}

/// Fills `out` with cryptographically secure random bytes.
pub(crate) fn fill(out: &mut [u8]) -> Result<(), Error> {
    let generation = memory::fork_generation();
    let done = STATE.try_with(|cell| -> Result<(), Error> {
        let mut slot = cell.borrow_mut();
        let stale = match slot.as_ref() {
            None => true,
            Some(s) => s.produced >= RESEED_AFTER || s.fork_generation != generation,
        };
        if stale {
            *slot = Some(seeded(generation)?);
        }
        let state = slot.as_mut().ok_or(Error::Random)?;
        state.rng.fill_bytes(out);
        state.produced += out.len() as u64;
        Ok(())
    });
    match done {
        Ok(result) => result,
        // The thread is being torn down: ask the OS directly.
        Err(_) => os_fill(out),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn output_differs_between_calls_and_threads() {
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        super::fill(&mut a).expect("rng");
        super::fill(&mut b).expect("rng");
        assert_ne!(a, b);
        let c = std::thread::spawn(|| {
            let mut c = [0u8; 32];
            super::fill(&mut c).expect("rng");
            c
        })
        .join()
        .expect("thread");
        assert_ne!(a, c);
        assert_ne!(b, c);
    }
}
