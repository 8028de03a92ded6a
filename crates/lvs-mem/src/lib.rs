//! Memory hints for `lvs-core`, which forbids unsafe code: a read prefetch, so the cache misses
//! of the next packets' table slots start without waiting for them, and huge pages for the big
//! tables, so a random slot costs a cache miss but rarely a page walk. Both only advise the
//! hardware or the kernel; neither changes a value.
#![no_std]

extern crate alloc;

use alloc::vec::Vec;

/// Asks the CPU to bring the cache line holding `*r` into all cache levels. Only a hint: it
/// changes no value and never faults. A no-op on targets other than x86_64.
///
/// A plain load that misses holds its place in the reorder buffer until the data arrives; a
/// prefetch retires at once.
#[inline(always)]
pub fn prefetch_read<T>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` reads nothing architecturally and cannot fault (a prefetch of any
    // address is dropped rather than trapping); the address here comes from a live reference
    // anyway. It needs SSE, which is part of the x86_64 baseline, so the instruction exists on
    // every CPU this code can run on.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>((r as *const T).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = r;
}

/// The huge page size the advice below aligns to (x86_64 and arm64 with 4 KiB base pages).
const HUGE_PAGE: usize = 2 << 20;

/// Allocations smaller than this are left alone: they span no whole huge page worth the advice.
const MIN_ADVISED: usize = 2 * HUGE_PAGE;

/// Asks Linux to back the allocated capacity of `v` with transparent huge pages
/// (`madvise(MADV_HUGEPAGE)` on the 2 MiB-aligned part of it), for tables read at random: with
/// 4 KiB pages nearly every random slot of a table of many MiB also misses the TLB, and under a
/// hypervisor that walk is nested. Call it on a fresh `Vec::with_capacity` before filling it, so
/// the pages are huge when first touched. A no-op for small vectors, on other systems, and when
/// the kernel refuses (THP `never`); the pages are then plain pages, as without the call.
#[allow(clippy::ptr_arg, reason = "the advice covers the capacity, which a slice does not carry")]
pub fn advise_huge_pages<T>(v: &Vec<T>) {
    let bytes = v.capacity().saturating_mul(core::mem::size_of::<T>());
    if bytes < MIN_ADVISED {
        return;
    }
    let start = v.as_ptr() as usize;
    let first = (start + HUGE_PAGE - 1) & !(HUGE_PAGE - 1);
    let end = (start + bytes) & !(HUGE_PAGE - 1);
    if end <= first {
        return;
    }
    #[cfg(target_os = "linux")]
    // SAFETY: MADV_HUGEPAGE changes how the kernel backs the range, never its contents, and the
    // range lies inside an allocation that `v` owns (its buffer of `capacity()` elements,
    // rounded inward to whole huge pages). A failure only leaves the advice ungiven.
    unsafe {
        libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE);
    }
}
