//! Locked, zeroizing memory for secrets: the only module of the workspace with `unsafe`.
//!
//! Secrets live in slots carved out of page-aligned chunks that are `mlock`ed (kept out of
//! swap) and marked `MADV_DONTDUMP` (kept out of core dumps). Locking a page per secret
//! would cost two system calls on every seal and open, so small secrets share chunks: each
//! size class has a free list, cached per thread so that the hot path takes no lock. Large
//! secrets get a mapping of their own. Every slot is zeroized when it is released.
//!
//! Locking is best effort by default: when the kernel refuses (RLIMIT_MEMLOCK), the failure
//! is logged once and the memory is used unlocked. [`require_locking`] makes it fatal.
#![allow(unsafe_code)]

mod boxed;
mod os;
mod pool;

use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use zeroize::Zeroize;

use crate::Error;

pub use boxed::LockedBox;
pub use os::{harden_process, keep_freed_heap, lock_all_memory};

static REQUIRE_LOCKING: AtomicBool = AtomicBool::new(false);
static LOCK_FAILURE_REPORTED: AtomicBool = AtomicBool::new(false);
static LOCKED_BYTES: AtomicU64 = AtomicU64::new(0);
static UNLOCKED_BYTES: AtomicU64 = AtomicU64::new(0);

/// What the process achieved in keeping secret memory out of swap and core dumps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockStatus {
    /// Bytes of secret memory mapped and locked.
    pub locked_bytes: u64,
    /// Bytes of secret memory mapped that the kernel refused to lock.
    pub unlocked_bytes: u64,
    /// Whether a failure to lock is fatal (see [`require_locking`]).
    pub required: bool,
}

/// Reports how much secret memory is locked and how much could not be.
pub fn lock_status() -> LockStatus {
    LockStatus {
        locked_bytes: LOCKED_BYTES.load(Ordering::Relaxed),
        unlocked_bytes: UNLOCKED_BYTES.load(Ordering::Relaxed),
        required: REQUIRE_LOCKING.load(Ordering::Relaxed),
    }
}

/// Makes a failure to lock secret memory an error instead of a logged warning.
///
/// Checks at once that a chunk can be locked, so that a misconfigured host fails at start-up
/// rather than on the first secret.
pub fn require_locking() -> Result<(), Error> {
    REQUIRE_LOCKING.store(true, Ordering::Relaxed);
    pool::reserve()
}

/// Records the outcome of locking a new mapping; errs when locking is required.
fn account_lock(len: usize, locked: Result<(), i32>) -> Result<(), Error> {
    match locked {
        Ok(()) => {
            LOCKED_BYTES.fetch_add(len as u64, Ordering::Relaxed);
            Ok(())
        }
        Err(errno) => {
            if REQUIRE_LOCKING.load(Ordering::Relaxed) {
                return Err(Error::MemoryLock { errno });
            }
            UNLOCKED_BYTES.fetch_add(len as u64, Ordering::Relaxed);
            if !LOCK_FAILURE_REPORTED.swap(true, Ordering::Relaxed) {
                log::warn!(
                    "could not lock secret memory (errno {errno}); secrets may be swapped out. \
                     Raise RLIMIT_MEMLOCK (ulimit -l) or grant CAP_IPC_LOCK to fix this."
                );
            }
            Ok(())
        }
    }
}

/// A zeroizing buffer in locked memory. Owns its bytes exclusively, like `Box<[u8]>`.
pub(crate) struct LockedBuf {
    ptr: NonNull<u8>,
    len: usize,
    kind: pool::Kind,
}

// SAFETY: LockedBuf owns its allocation exclusively (no aliasing pointers exist), so moving
// it to another thread or sharing `&LockedBuf` is as safe as for `Box<[u8]>`.
unsafe impl Send for LockedBuf {}
// SAFETY: see above; `&LockedBuf` only gives out `&[u8]`.
unsafe impl Sync for LockedBuf {}

impl LockedBuf {
    /// A buffer of `len` zero bytes.
    #[inline]
    pub(crate) fn zeroed(len: usize) -> Result<Self, Error> {
        let (ptr, kind) = pool::alloc(len)?;
        Ok(Self { ptr, len, kind })
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` points to at least `len` initialised bytes (slots and mappings are
        // zero-filled when handed out) owned by `self` for its whole lifetime.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`; `&mut self` guarantees exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// Shortens the visible length; the cut-off bytes are zeroized now.
    pub(crate) fn truncate(&mut self, len: usize) {
        if len < self.len {
            self.as_mut_slice()[len..].zeroize();
            self.len = len;
        }
    }

    /// How many bytes the buffer can hold without moving.
    pub(crate) fn capacity(&self) -> usize {
        self.kind.capacity()
    }

    /// Grows the visible length up to `capacity()`; the new bytes are zero.
    pub(crate) fn extend_within_capacity(&mut self, len: usize) {
        debug_assert!(len <= self.capacity());
        self.len = len.min(self.capacity());
    }
}

impl Drop for LockedBuf {
    fn drop(&mut self) {
        // SAFETY: the whole capacity belongs to this buffer and nothing else refers to it
        // (`&mut self`); bytes past `len` are zero or were zeroized by `truncate`, but wiping
        // all of it keeps the invariant (free memory is zero) simple.
        unsafe { wipe(self.ptr, self.kind.capacity()) };
        pool::free(self.ptr, self.kind);
    }
}

/// Overwrites `len` bytes at `ptr` with zeros before the memory is released.
///
/// One `memset` rather than `zeroize`: its volatile stores go one byte at a time, which on a
/// 64 KiB secret cost about as much as the AEAD that opened it. The stores cannot be dropped
/// as dead: `black_box` hands the pointer to code the compiler must assume reads through it,
/// and the memory goes on to a free list shared by every thread (or to `munmap`).
///
/// # Safety
/// `ptr` must be valid for writes of `len` bytes, and nothing may refer to them.
#[inline]
unsafe fn wipe(ptr: NonNull<u8>, len: usize) {
    // SAFETY: the caller guarantees `ptr..ptr+len` is writable and exclusively ours.
    unsafe { std::ptr::write_bytes(ptr.as_ptr(), 0, len) };
    std::hint::black_box(ptr);
    std::sync::atomic::compiler_fence(Ordering::SeqCst);
}

/// Incremented in the child after `fork`, so that per-thread random generators reseed.
static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);

pub(crate) fn fork_generation() -> u64 {
    os::register_fork_handler();
    FORK_GENERATION.load(Ordering::Relaxed)
}
