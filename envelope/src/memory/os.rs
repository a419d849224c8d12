//! The operating-system calls behind locked memory, one function each.

use std::sync::Once;

#[cfg(unix)]
mod imp {
    use std::ptr::NonNull;

    /// Maps `len` bytes of zeroed, private, anonymous memory.
    pub(crate) fn map(len: usize) -> Option<NonNull<u8>> {
        // SAFETY: an anonymous private mapping with no address hint touches no existing
        // memory; the result is checked against MAP_FAILED before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return None;
        }
        NonNull::new(ptr.cast())
    }

    /// Locks the mapping into RAM and excludes it from core dumps; Err carries errno.
    pub(crate) fn lock(ptr: NonNull<u8>, len: usize) -> Result<(), i32> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        // SAFETY: `ptr..ptr+len` is a mapping we own; madvise only changes dump behaviour.
        // A failure here is harmless (the memory is still usable), so the result is ignored.
        unsafe {
            libc::madvise(ptr.as_ptr().cast(), len, libc::MADV_DONTDUMP);
        }
        // SAFETY: `ptr..ptr+len` is a mapping we own; mlock does not change its contents.
        let rc = unsafe { libc::mlock(ptr.as_ptr().cast(), len) };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
        }
    }

    /// Unlocks and unmaps a mapping made by `map`.
    pub(crate) fn unmap(ptr: NonNull<u8>, len: usize) {
        // SAFETY: `ptr..ptr+len` was returned by `map` with this length and no reference
        // into it outlives this call (the owner is being dropped).
        unsafe {
            libc::munlock(ptr.as_ptr().cast(), len);
            libc::munmap(ptr.as_ptr().cast(), len);
        }
    }

    pub(crate) fn page_size() -> usize {
        // SAFETY: sysconf has no memory-safety preconditions.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        usize::try_from(size)
            .ok()
            .filter(|s| *s >= 4096)
            .unwrap_or(4096)
    }

    /// Disables core dumps and ptrace attachment by other processes of the same user.
    pub(super) fn harden_process() -> Result<(), i32> {
        let no_core = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: setrlimit reads a valid, initialised rlimit struct.
        if unsafe { libc::setrlimit(libc::RLIMIT_CORE, &no_core) } != 0 {
            return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
        }
        #[cfg(target_os = "linux")]
        // SAFETY: PR_SET_DUMPABLE with a constant argument has no memory-safety preconditions.
        if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
            return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
        }
        Ok(())
    }

    pub(super) fn lock_all_memory() -> Result<(), i32> {
        // SAFETY: mlockall takes flags only and touches no memory we own.
        if unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) } != 0 {
            return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
        }
        Ok(())
    }

    extern "C" fn after_fork_in_child() {
        // Only an atomic increment: async-signal-safe, as a fork handler must be.
        super::super::FORK_GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn register_fork_handler() {
        // SAFETY: the handler is a plain `extern "C"` function with no captured state that
        // performs one atomic operation.
        unsafe {
            libc::pthread_atfork(None, None, Some(after_fork_in_child));
        }
    }
}

#[cfg(not(unix))]
mod imp {
    //! Portable fallback: zeroed heap memory, never locked (reported as such).
    use std::alloc::{Layout, alloc_zeroed, dealloc};
    use std::ptr::NonNull;

    const ALIGN: usize = 4096;

    pub(crate) fn map(len: usize) -> Option<NonNull<u8>> {
        let layout = Layout::from_size_align(len, ALIGN).ok()?;
        // SAFETY: `len` is non-zero (callers map whole pages).
        NonNull::new(unsafe { alloc_zeroed(layout) })
    }

    pub(crate) fn lock(_ptr: NonNull<u8>, _len: usize) -> Result<(), i32> {
        Err(0)
    }

    pub(crate) fn unmap(ptr: NonNull<u8>, len: usize) {
        if let Ok(layout) = Layout::from_size_align(len, ALIGN) {
            // SAFETY: allocated by `map` with this same layout.
            unsafe { dealloc(ptr.as_ptr(), layout) }
        }
    }

    pub(crate) fn page_size() -> usize {
        ALIGN
    }

    pub(crate) fn harden_process() -> Result<(), i32> {
        Ok(())
    }

    pub(crate) fn lock_all_memory() -> Result<(), i32> {
        Ok(())
    }

    pub(crate) fn register_fork_handler() {}
}

pub(crate) use imp::{lock, map, page_size, unmap};

/// Disables core dumps of this process (and, on Linux, ptrace by same-user processes).
///
/// Call it first thing in a binary that handles secrets. Errs with the errno if the kernel
/// refuses.
pub fn harden_process() -> Result<(), crate::Error> {
    imp::harden_process().map_err(|errno| crate::Error::Harden { errno })
}

/// Locks every page of the process, now and future, into RAM (`mlockall`): for a daemon that
/// wants no byte of its heap in swap, not only the secret pool. Needs RLIMIT_MEMLOCK above
/// the process size or CAP_IPC_LOCK.
pub fn lock_all_memory() -> Result<(), crate::Error> {
    imp::lock_all_memory().map_err(|errno| crate::Error::MemoryLock { errno })
}

static FORK_HANDLER: Once = Once::new();

pub(crate) fn register_fork_handler() {
    FORK_HANDLER.call_once(imp::register_fork_handler);
}
