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

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    pub(super) fn keep_freed_heap() {
        // SAFETY: mallopt takes two integers and changes only glibc's allocation thresholds.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, super::HEAP_MMAP_THRESHOLD);
            libc::mallopt(libc::M_TRIM_THRESHOLD, super::HEAP_TRIM_THRESHOLD);
        }
    }

    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    pub(super) fn keep_freed_heap() {}

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

    pub(crate) fn keep_freed_heap() {}

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

/// Below this size glibc serves an allocation from its heap rather than a mapping of its own.
const HEAP_MMAP_THRESHOLD: i32 = 4 << 20;
/// Free memory at the top of a glibc heap is kept up to this size instead of being returned.
const HEAP_TRIM_THRESHOLD: i32 = 32 << 20;

/// Keeps freed heap memory for the next allocation instead of handing it back to the kernel
/// at once (glibc: buffers under 4 MiB come from the heap, and up to 32 MiB of free memory at
/// a heap's top is kept). For a daemon that carries messages of a MiB: with glibc's adaptive
/// defaults, a few such buffers freed together exceed its trim threshold, and each request
/// then maps, faults in and zeroes fresh pages for every large buffer (a fifth of the
/// daemon's time on 1 MiB transit calls). The memory kept is the process's own (locked with
/// the rest under `mlockall`, never in a core dump after [`harden_process`]). Elsewhere than
/// on glibc, nothing to do.
pub fn keep_freed_heap() {
    imp::keep_freed_heap();
}

static FORK_HANDLER: Once = Once::new();

pub(crate) fn register_fork_handler() {
    FORK_HANDLER.call_once(imp::register_fork_handler);
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    /// Page faults this thread took so far (soft ones: a page mapped in and zeroed).
    fn minor_faults() -> i64 {
        // SAFETY: an all-zero rusage is a valid value of the plain C struct.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: getrusage writes one rusage into the struct we pass.
        let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
        assert_eq!(rc, 0, "getrusage");
        usage.ru_minflt
    }

    #[test]
    fn large_buffers_freed_together_are_reused_without_faulting_in_new_pages() {
        super::keep_freed_heap();
        // A thread of its own: its own arena, and faults counted for it alone.
        std::thread::spawn(|| {
            const BUFFERS: usize = 8;
            const ROUNDS: i64 = 10;
            let round = || {
                let buffers: Vec<Vec<u8>> = (0..BUFFERS).map(|_| vec![1u8; 1 << 20]).collect();
                std::hint::black_box(&buffers);
            };
            round();
            let before = minor_faults();
            for _ in 0..ROUNDS {
                round();
            }
            let faults = minor_faults() - before;
            // Fresh pages every round would be 8 MiB / 4 KiB = 2048 faults a round.
            assert!(
                faults < ROUNDS * 100,
                "{faults} page faults in {ROUNDS} rounds of {BUFFERS} freed 1 MiB buffers"
            );
        })
        .join()
        .expect("the allocating thread");
    }
}
