//! A per-thread buffer reused for the additional authenticated data of seal and open.
//!
//! The AAD is public (context and header bytes), so keeping the buffer between calls leaks
//! nothing, and it saves a heap allocation and free on every seal and open (a fifth of the
//! envelope's own cost for small secrets). Taking the buffer out of the thread-local slot,
//! rather than borrowing it, keeps a KEK provider that itself seals or opens envelopes
//! working: the nested call finds the slot empty and allocates.

use std::cell::Cell;
use std::ops::{Deref, DerefMut};

/// Buffers larger than this are freed rather than kept (an envelope with big stanzas
/// should not pin its AAD in every thread).
const MAX_KEPT: usize = 16 * 1024;

thread_local! {
    static SPARE: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// An empty byte buffer that goes back to its thread's slot when dropped.
pub(crate) struct ScratchBuf(Vec<u8>);

impl ScratchBuf {
    pub(crate) fn take() -> Self {
        let mut buf = SPARE.try_with(Cell::take).unwrap_or_default();
        buf.clear();
        Self(buf)
    }
}

impl Deref for ScratchBuf {
    type Target = Vec<u8>;

    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl DerefMut for ScratchBuf {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl Drop for ScratchBuf {
    fn drop(&mut self) {
        if self.0.capacity() <= MAX_KEPT {
            let buf = std::mem::take(&mut self.0);
            // During thread teardown the slot is gone and the buffer is simply freed.
            let _ = SPARE.try_with(|slot| slot.set(buf));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ScratchBuf;

    #[test]
    fn the_buffer_is_reused_empty_and_nested_takes_get_their_own() {
        let mut a = ScratchBuf::take();
        a.extend_from_slice(b"context");
        let ptr = a.as_ptr();
        let mut nested = ScratchBuf::take();
        nested.push(1);
        assert_ne!(nested.as_ptr(), ptr);
        drop(nested);
        drop(a);
        let b = ScratchBuf::take();
        assert!(b.is_empty());
        assert!(b.capacity() >= 7);
    }
}
