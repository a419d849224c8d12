//! A value of any type kept in a locked, zeroized slot: for key objects of crypto libraries
//! (ring's `LessSafeKey` holds the raw key bytes) that are built once and used many times.

use std::marker::PhantomData;
use std::ops::Deref;

use super::LockedBuf;
use crate::Error;

/// Owns a `T` stored in locked memory; the bytes are zeroized after `T` is dropped. `Debug`
/// shows nothing of the value.
pub struct LockedBox<T> {
    buf: LockedBuf,
    _owns: PhantomData<T>,
}

// SAFETY: LockedBox<T> owns its T exclusively, like Box<T>, so it is Send/Sync when T is.
unsafe impl<T: Send> Send for LockedBox<T> {}
// SAFETY: as above; `&LockedBox<T>` only gives out `&T`.
unsafe impl<T: Sync> Sync for LockedBox<T> {}

impl<T> LockedBox<T> {
    /// Moves `value` into locked memory. The caller's copy is whatever the compiler left on
    /// the stack: build the value right before this call.
    pub fn new(value: T) -> Result<Self, Error> {
        let size = size_of::<T>().max(align_of::<T>());
        let buf = LockedBuf::zeroed(size)?;
        let ptr = buf.ptr.as_ptr().cast::<T>();
        // Slots are aligned to their power-of-two size class and mappings to a page, so a
        // slot of at least `align_of::<T>()` bytes is aligned for T; checked anyway.
        if !ptr.is_aligned() || buf.capacity() < size_of::<T>() {
            return Err(Error::OutOfMemory);
        }
        // SAFETY: `ptr` is valid for writes of `size_of::<T>()` bytes (the slot's capacity),
        // aligned for T (checked above), and owned exclusively by `buf`.
        unsafe { ptr.write(value) };
        Ok(Self {
            buf,
            _owns: PhantomData,
        })
    }
}

impl<T> std::fmt::Debug for LockedBox<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LockedBox([REDACTED])")
    }
}

impl<T> Deref for LockedBox<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: `new` wrote a valid T at this aligned address, and it stays there until
        // `drop`; `&self` keeps the box alive for the returned lifetime.
        unsafe { &*self.buf.ptr.as_ptr().cast::<T>() }
    }
}

impl<T> Drop for LockedBox<T> {
    fn drop(&mut self) {
        // SAFETY: the slot holds the T written by `new`, dropped exactly once here; `buf`
        // then zeroizes and releases the bytes.
        unsafe { std::ptr::drop_in_place(self.buf.ptr.as_ptr().cast::<T>()) };
    }
}

#[cfg(test)]
mod tests {
    use super::LockedBox;

    #[test]
    fn holds_the_value_and_runs_its_drop() {
        use std::sync::Arc;
        let shared = Arc::new([7u64; 40]);
        let boxed = LockedBox::new(Arc::clone(&shared)).expect("alloc");
        assert_eq!(boxed[39], 7);
        assert_eq!(Arc::strong_count(&shared), 2);
        drop(boxed);
        assert_eq!(Arc::strong_count(&shared), 1);
        let big = LockedBox::new([1u128; 300]).expect("alloc");
        assert!(big.iter().all(|&x| x == 1));
    }
}
