//! The process's memory: resident figures (Linux `/proc/self/status`) for benchmarks, and
//! the allocator's purge policy for training.

/// A `/proc/self/status` field in MiB: `VmRSS` (now) or `VmHWM` (peak so far).
pub fn status_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| {
        l.strip_prefix(field)
            .is_some_and(|rest| rest.starts_with(':'))
    })?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Peak resident memory of this process so far, MiB.
pub fn peak_rss_mib() -> Option<f64> {
    status_mib("VmHWM")
}

/// `mi_option_purge_delay`'s index in mimalloc.h (v2 and v3 alike).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps freed pages in mimalloc instead of returning them to the kernel: a training
/// step frees and reallocates the same large buffers every few milliseconds, and a
/// returned page costs a page fault and a clear when it comes back. Memory then stays
/// at its peak. `MIMALLOC_PURGE_DELAY` in the environment wins. Returns the purge delay
/// in force afterwards (−1: never purge).
///
/// Measured (2026-12-03, ufp4-all at 10 000 users, top 2 layers, 32 pairs a step, 20
/// steps): with mimalloc v3's default of 1 000 ms the run purged 8 GiB and took 258 000
/// page faults, 14.4 pairs/s; never purging, 1 244 faults and 18.9 pairs/s (1.32×). From
/// 2026-11-27 to that day the check knew only v2's default of 10, and libmimalloc-sys
/// 0.1.49 builds v3: the option was never set, so every trainer speed figure before
/// 2026-12-03 ran with the 1 s purge delay.
#[allow(unsafe_code)] // mimalloc's C option API.
pub fn keep_freed_pages() -> i64 {
    // SAFETY: plain integer option reads and writes; `copl-train` calls this first thing
    // in `main`, before it starts any thread (mimalloc's option calls are not
    // thread-safe against each other).
    unsafe {
        let delay = libmimalloc_sys::mi_option_get(PURGE_DELAY) as i64;
        // The index is checked by the option's default: 10 ms in v2, 1 000 ms in v3.
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() && matches!(delay, 10 | 1000) {
            libmimalloc_sys::mi_option_set(PURGE_DELAY, -1);
        }
        libmimalloc_sys::mi_option_get(PURGE_DELAY) as i64
    }
}

#[cfg(test)]
mod tests {
    /// The purge delay is off after the call (the failure it guards against: a default
    /// that the check did not know, so the option silently stayed at 1 000 ms).
    #[test]
    fn freed_pages_are_kept() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        assert_eq!(super::keep_freed_pages(), -1);
    }
}
