//! Size-class pool of slots in locked chunks, with a per-thread cache of free slots.

use std::cell::RefCell;
use std::ptr::NonNull;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{account_lock, os};
use crate::Error;

/// Slot sizes; a secret larger than the last one gets a mapping of its own.
const CLASSES: [usize; 9] = [16, 32, 64, 128, 256, 512, 1024, 2048, 4096];
/// Bytes mapped and locked at once for one size class, once it has a chunk.
const CHUNK: usize = 64 * 1024;
/// Bytes of a class's first chunk: one page. Locking populates every page, and a one-shot
/// command (a `vaultctl get`) uses a few slots of a few classes, so 64 KiB per class was
/// paid in page faults and zeroing by every process; a class that runs out grows by `CHUNK`.
const FIRST_CHUNK: usize = 4096;
/// Free slots a thread keeps per class before handing them back to the global lists.
const THREAD_CACHE_MAX: usize = 64;
/// Released mappings kept (zeroed, still locked) for the next large secret, so that opening
/// 64 KiB or 1 MiB does not cost an mmap, an mlock, an munlock and an munmap each time.
const CACHED_MAPPINGS: usize = 8;
/// The largest mapping kept (a 1 MiB transit payload and its envelope fit); larger ones go
/// back to the kernel when released.
const MAX_CACHED_MAPPING: usize = 2 << 20;
/// The most bytes kept in all: kept mappings stay locked, and RLIMIT_MEMLOCK is shared with
/// every other secret.
const MAX_CACHED_BYTES: usize = 4 << 20;

/// Released mappings as (address, mapped length), at most [`CACHED_MAPPINGS`].
static MAPPINGS: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());

/// A kept mapping for `mapped` bytes: the smallest that holds them, and at most twice as
/// large (a 2 MiB mapping is not spent on a 64 KiB secret).
fn take_mapping(mapped: usize) -> Option<(usize, usize)> {
    let mut kept = lock_mappings();
    let best = kept
        .iter()
        .enumerate()
        .filter(|(_, (_, len))| *len >= mapped && *len / 2 <= mapped)
        .min_by_key(|(_, (_, len))| *len)
        .map(|(at, _)| at)?;
    Some(kept.swap_remove(best))
}

/// Where a buffer's memory came from, and so how to release it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Slot(u8),
    Mapping(usize),
}

impl Kind {
    pub(crate) fn capacity(self) -> usize {
        match self {
            Kind::Slot(class) => CLASSES[usize::from(class)],
            Kind::Mapping(len) => len,
        }
    }
}

/// Free slot addresses per class (addresses as `usize` so the lists are `Send`).
#[derive(Default)]
struct FreeLists([Vec<usize>; CLASSES.len()]);

static GLOBAL: Mutex<FreeLists> = Mutex::new(FreeLists([const { Vec::new() }; CLASSES.len()]));
/// Whether each class has been given a chunk yet (changed under the `GLOBAL` lock).
static GROWN: [AtomicBool; CLASSES.len()] = [const { AtomicBool::new(false) }; CLASSES.len()];

/// A thread's cache; returns its slots to the global lists when the thread exits.
#[derive(Default)]
struct ThreadCache(FreeLists);

impl Drop for ThreadCache {
    fn drop(&mut self) {
        let mut global = lock_global();
        for (class, list) in self.0.0.iter_mut().enumerate() {
            global.0[class].append(list);
        }
    }
}

thread_local! {
    static CACHE: RefCell<ThreadCache> = const {
        RefCell::new(ThreadCache(FreeLists([const { Vec::new() }; CLASSES.len()])))
    };
}

fn lock_global() -> std::sync::MutexGuard<'static, FreeLists> {
    lock(&GLOBAL)
}

fn lock_mappings() -> std::sync::MutexGuard<'static, Vec<(usize, usize)>> {
    lock(&MAPPINGS)
}

/// One of the pool's lists. A panic while holding the lock cannot leave a list inconsistent
/// (each push and pop is complete), so a poisoned lock is still usable.
fn lock<T>(list: &'static Mutex<T>) -> std::sync::MutexGuard<'static, T> {
    list.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn class_for(len: usize) -> Option<u8> {
    CLASSES
        .iter()
        .position(|&size| len <= size)
        .and_then(|c| u8::try_from(c).ok())
}

/// The slot at `addr`. Addresses in the free lists come from non-null mappings; were one
/// null all the same, handing out a dangling pointer in its place would let a secret be
/// written anywhere, so it is an error instead.
#[inline]
fn to_ptr(addr: usize) -> Result<NonNull<u8>, Error> {
    NonNull::new(addr as *mut u8).ok_or(Error::Internal(
        "the locked memory pool's free list held a null slot",
    ))
}

// The fast paths (a slot from this thread's cache, and back) are inlined into every secret
// allocation; each seal and open makes two, so a call and a result passed through memory
// showed up in the envelope benchmarks.
#[inline]
pub(crate) fn alloc(len: usize) -> Result<(NonNull<u8>, Kind), Error> {
    match class_for(len) {
        Some(class) => {
            let c = usize::from(class);
            let cached = CACHE
                .try_with(|cache| cache.borrow_mut().0.0[c].pop())
                .ok()
                .flatten();
            match cached {
                Some(addr) => Ok((to_ptr(addr)?, Kind::Slot(class))),
                None => alloc_slot(class).map(|ptr| (ptr, Kind::Slot(class))),
            }
        }
        None => alloc_mapping(len),
    }
}

#[cold]
fn alloc_slot(class: u8) -> Result<NonNull<u8>, Error> {
    let c = usize::from(class);
    let mut global = lock_global();
    if global.0[c].is_empty() {
        add_chunk(&mut global, c)?;
    }
    let addr = global.0[c]
        .pop()
        .ok_or(Error::Internal("a new chunk of locked memory gave no slot"))?;
    to_ptr(addr)
}

/// Maps and locks a chunk and adds its slots to the global free list of `class`.
fn add_chunk(global: &mut FreeLists, class: usize) -> Result<(), Error> {
    let len = if GROWN[class].load(Ordering::Relaxed) {
        CHUNK
    } else {
        FIRST_CHUNK.max(os::page_size())
    };
    let ptr = os::map(len).ok_or(Error::OutOfMemory)?;
    if let Err(e) = account_lock(len, os::lock(ptr, len)) {
        os::unmap(ptr, len);
        return Err(e);
    }
    GROWN[class].store(true, Ordering::Relaxed);
    let size = CLASSES[class];
    let base = ptr.as_ptr() as usize;
    global.0[class].extend((0..len / size).rev().map(|i| base + i * size));
    Ok(())
}

fn alloc_mapping(len: usize) -> Result<(NonNull<u8>, Kind), Error> {
    let page = os::page_size();
    let mapped = len
        .checked_next_multiple_of(page)
        .ok_or(Error::OutOfMemory)?;
    if let Some((addr, len)) = take_mapping(mapped) {
        return Ok((to_ptr(addr)?, Kind::Mapping(len)));
    }
    let ptr = os::map(mapped).ok_or(Error::OutOfMemory)?;
    if let Err(e) = account_lock(mapped, os::lock(ptr, mapped)) {
        os::unmap(ptr, mapped);
        return Err(e);
    }
    Ok((ptr, Kind::Mapping(mapped)))
}

/// Keeps a released (zeroized) mapping for reuse, or unmaps it.
fn free_mapping(ptr: NonNull<u8>, len: usize) {
    if len <= MAX_CACHED_MAPPING {
        let mut kept = lock_mappings();
        let bytes: usize = kept.iter().map(|(_, len)| len).sum();
        if kept.len() < CACHED_MAPPINGS && bytes + len <= MAX_CACHED_BYTES {
            kept.push((ptr.as_ptr() as usize, len));
            return;
        }
    }
    os::unmap(ptr, len);
}

/// Releases zeroized memory: a slot goes back to a free list, a mapping is unmapped.
#[inline]
pub(crate) fn free(ptr: NonNull<u8>, kind: Kind) {
    match kind {
        Kind::Mapping(len) => free_mapping(ptr, len),
        Kind::Slot(class) => {
            let c = usize::from(class);
            let addr = ptr.as_ptr() as usize;
            let kept = CACHE
                .try_with(|cache| {
                    let mut cache = cache.borrow_mut();
                    let list = &mut cache.0.0[c];
                    if list.len() < THREAD_CACHE_MAX {
                        list.push(addr);
                    } else {
                        spill_half(list, c, addr);
                    }
                })
                .is_ok();
            if !kept {
                lock_global().0[c].push(addr);
            }
        }
    }
}

/// Hands half of a full thread cache back, so that a thread that only frees does not hoard.
#[cold]
fn spill_half(list: &mut Vec<usize>, class: usize, addr: usize) {
    let half = list.split_off(THREAD_CACHE_MAX / 2);
    lock_global().0[class].extend(half);
    list.push(addr);
}

/// Maps and locks one chunk now, failing if the kernel refuses to lock it.
pub(crate) fn reserve() -> Result<(), Error> {
    add_chunk(&mut lock_global(), 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where `bufs` start, sorted, each address once.
    fn distinct_addresses(bufs: &[super::super::LockedBuf]) -> Vec<usize> {
        let mut addrs: Vec<usize> = bufs
            .iter()
            .map(|b| b.as_slice().as_ptr() as usize)
            .collect();
        addrs.sort_unstable();
        addrs.dedup();
        addrs
    }

    #[test]
    fn classes_cover_small_sizes_and_leave_large_to_mappings() {
        assert_eq!(class_for(0), Some(0));
        assert_eq!(class_for(16), Some(0));
        assert_eq!(class_for(17), Some(1));
        assert_eq!(class_for(4096), Some(8));
        assert_eq!(class_for(4097), None);
    }

    #[test]
    fn slots_are_reused_zeroed_and_distinct() {
        let a = super::super::LockedBuf::zeroed(32).expect("alloc");
        let b = super::super::LockedBuf::zeroed(32).expect("alloc");
        assert_ne!(a.as_slice().as_ptr(), b.as_slice().as_ptr());
        let mut c = super::super::LockedBuf::zeroed(20).expect("alloc");
        c.as_mut_slice().fill(0xAA);
        let addr = c.as_slice().as_ptr();
        drop(c);
        let d = super::super::LockedBuf::zeroed(20).expect("alloc");
        assert_eq!(
            d.as_slice().as_ptr(),
            addr,
            "freed slot is reused from the thread cache"
        );
        assert!(
            d.as_slice().iter().all(|&x| x == 0),
            "reused slot is zeroed"
        );
    }

    #[test]
    fn a_null_address_in_a_free_list_is_an_error_not_a_dangling_pointer() {
        // Fault injection: free lists only ever hold addresses of mapped chunks.
        let class = class_for(100).expect("a slot class");
        CACHE.with(|cache| cache.borrow_mut().0.0[usize::from(class)].push(0));
        let got = alloc(100);
        assert!(
            matches!(got, Err(Error::Internal(_))),
            "a slot at address 0 must not be handed out: {:?}",
            got.map(|(ptr, _)| ptr)
        );
        // The list is usable again: the bad entry was taken off it.
        let buf = super::super::LockedBuf::zeroed(100).expect("alloc");
        assert!(buf.as_slice().iter().all(|&b| b == 0));
    }

    #[test]
    fn released_mappings_are_reused_zeroed_and_never_shared() {
        use super::super::LockedBuf;
        let mut first = LockedBuf::zeroed(64 * 1024).expect("alloc");
        first.as_mut_slice().fill(0x5A);
        drop(first);
        // Whichever kept mappings they get (other tests run meanwhile), each is zeroed in
        // its whole capacity, at most twice what was asked, and no two buffers share one.
        let mut taken: Vec<_> = (0..=CACHED_MAPPINGS)
            .map(|_| LockedBuf::zeroed(60 * 1024).expect("alloc"))
            .collect();
        for buf in &mut taken {
            let capacity = buf.capacity();
            assert!(
                (60 * 1024..=2 * 64 * 1024).contains(&capacity),
                "{capacity}"
            );
            buf.extend_within_capacity(capacity);
            assert!(
                buf.as_slice().iter().all(|&b| b == 0),
                "a kept mapping is zeroed"
            );
        }
        let addrs = distinct_addresses(&taken);
        assert_eq!(addrs.len(), taken.len(), "a mapping handed out twice");
        drop(taken);
        // A kept mapping far larger than asked is not spent on a small secret.
        let big = LockedBuf::zeroed(MAX_CACHED_MAPPING).expect("alloc");
        let big_addr = big.as_slice().as_ptr() as usize;
        drop(big);
        let small = LockedBuf::zeroed(64 * 1024).expect("alloc");
        assert_ne!(small.as_slice().as_ptr() as usize, big_addr);
    }

    #[test]
    fn a_class_grows_past_its_first_chunk_with_distinct_zeroed_slots() {
        // More 2 KiB slots than a first chunk (one page) holds, all live at once.
        let slots = 2 * CHUNK / CLASSES[7];
        let mut taken: Vec<_> = (0..slots)
            .map(|_| super::super::LockedBuf::zeroed(2000).expect("alloc"))
            .collect();
        for buf in &mut taken {
            assert!(
                buf.as_slice().iter().all(|&b| b == 0),
                "a new slot is zeroed"
            );
            buf.as_mut_slice().fill(0x3C);
        }
        let addrs = distinct_addresses(&taken);
        assert_eq!(addrs.len(), slots, "a slot handed out twice");
        assert!(
            addrs.windows(2).all(|w| w[1] - w[0] >= CLASSES[7]),
            "slots overlap"
        );
    }

    #[test]
    fn large_buffers_get_their_own_mapping() {
        let mut big = super::super::LockedBuf::zeroed(100_000).expect("alloc");
        assert_eq!(big.as_slice().len(), 100_000);
        big.as_mut_slice()[99_999] = 7;
        assert!(big.capacity() >= 100_000);
    }
}
