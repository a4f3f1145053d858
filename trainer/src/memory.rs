//! The process's resident memory (Linux `/proc/self/status`), for benchmarks.

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
