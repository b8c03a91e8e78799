//! A global allocator that counts live heap bytes and their peak, so `drover bench` can report
//! the planner's peak memory without an external profiler. Knows nothing of Drover.
//!
//! Each thread adds up its own allocations and frees and moves the sum to the shared counters
//! only once it reaches [`FLUSH_BYTES`]: with one shared atomic per allocation, threads reading an
//! inventory's parts side by side spent more time fighting over that counter's cache line than
//! allocating. The peak is therefore exact to within `FLUSH_BYTES` per running thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, Ordering};

pub struct CountingAllocator;

/// Signed: a thread may hand in the frees of memory another thread has not reported yet.
static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);
static PEAK_BYTES: AtomicIsize = AtomicIsize::new(0);

/// How far a thread's unreported balance may grow, either way, before it is reported.
const FLUSH_BYTES: isize = 64 * 1024;

thread_local! {
    /// This thread's allocations minus its frees since it last reported them. A `Cell` of an
    /// integer: no destructor and no allocation, so the allocator may use it at any time.
    static UNREPORTED_BYTES: Cell<isize> = const { Cell::new(0) };
}

fn count(change: isize) {
    let report = UNREPORTED_BYTES
        .try_with(|unreported| {
            let balance = unreported.get() + change;
            if balance.abs() < FLUSH_BYTES {
                unreported.set(balance);
                return 0;
            }
            unreported.set(0);
            balance
        })
        // A thread being torn down reports at once.
        .unwrap_or(change);
    if report == 0 {
        return;
    }
    let live = LIVE_BYTES.fetch_add(report, Ordering::Relaxed) + report;
    // Reading first keeps the shared peak's cache line shared while it does not change.
    if live > PEAK_BYTES.load(Ordering::Relaxed) {
        PEAK_BYTES.fetch_max(live, Ordering::Relaxed);
    }
}

fn signed(bytes: usize) -> isize {
    isize::try_from(bytes).unwrap_or(isize::MAX)
}

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwards the caller's layout to the system allocator unchanged.
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            count(signed(layout.size()));
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: the pointer came from `alloc` above with this layout.
        unsafe { System.dealloc(pointer, layout) };
        count(-signed(layout.size()));
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as GlobalAlloc::realloc, forwarded.
        let moved = unsafe { System.realloc(pointer, layout, new_size) };
        if !moved.is_null() {
            count(signed(new_size) - signed(layout.size()));
        }
        moved
    }
}

/// Starts a new measurement: the peak becomes the current live size, which is returned.
pub fn reset_peak() -> usize {
    let live = LIVE_BYTES.load(Ordering::Relaxed);
    PEAK_BYTES.store(live, Ordering::Relaxed);
    usize::try_from(live).unwrap_or(0)
}

/// The highest live heap size since the last [`reset_peak`].
pub fn peak_bytes() -> usize {
    usize::try_from(PEAK_BYTES.load(Ordering::Relaxed)).unwrap_or(0)
}
