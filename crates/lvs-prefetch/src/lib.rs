//! A read prefetch hint, so that `lvs-core` (`#![forbid(unsafe_code)]`) can start the cache
//! misses of the next packets' table slots without waiting for them: a plain load that misses
//! holds its place in the reorder buffer until the data arrives, a prefetch retires at once.
#![no_std]

/// Asks the CPU to bring the cache line holding `*r` into all cache levels. Only a hint: it
/// changes no value and never faults. A no-op on targets other than x86_64.
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
