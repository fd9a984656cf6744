//! Readings from `/proc`: what the kernel says about a process.
use crate::process::Pid;

/// Resident set size of `pid`, bytes (`/proc/PID/statm`, second field, in pages);
/// `None` when the process is gone or the file cannot be read.
pub fn rss_bytes(pid: Pid) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages.saturating_mul(page_size()))
}

/// The system's page size.
pub fn page_size() -> u64 {
    // SAFETY: sysconf is a query without memory arguments.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    #[test]
    fn own_rss_is_positive() {
        let me = crate::process::getpid();
        assert!(super::rss_bytes(me).is_some_and(|b| b > 0));
        assert_eq!(super::rss_bytes(-5), None);
    }
}
