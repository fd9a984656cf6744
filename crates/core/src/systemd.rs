//! systemd `Type=notify` (reference §10.1): the texts of the datagrams the master sends.

/// `READY=1\nSTATUS=Ready to handle connections\nMAINPID=<pid>`.
pub fn ready_message(pid: i32) -> String {
    format!("READY=1\nSTATUS=Ready to handle connections\nMAINPID={pid}")
}

/// The periodic report: counters summed over all pools; `traffic` is requests since
/// the previous report × 1000 / interval in ms.
pub fn status_message(
    watchdog: bool,
    active: u64,
    idle: u64,
    requests: u64,
    slow: u64,
    since_last: u64,
    interval_ms: u64,
) -> String {
    let traffic = if interval_ms == 0 {
        0.0
    } else {
        since_last as f64 * 1000.0 / interval_ms as f64
    };
    format!(
        "READY=1\n{}STATUS=Processes active: {active}, idle: {idle}, Requests: {requests}, slow: {slow}, Traffic: {traffic:.2}req/sec",
        if watchdog { "WATCHDOG=1\n" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        assert_eq!(
            ready_message(42),
            "READY=1\nSTATUS=Ready to handle connections\nMAINPID=42"
        );
        assert_eq!(
            status_message(false, 1, 2, 30, 0, 5, 10_000),
            "READY=1\nSTATUS=Processes active: 1, idle: 2, Requests: 30, slow: 0, Traffic: 0.50req/sec"
        );
        assert_eq!(
            status_message(true, 0, 0, 0, 0, 0, 2500),
            "READY=1\nWATCHDOG=1\nSTATUS=Processes active: 0, idle: 0, Requests: 0, slow: 0, Traffic: 0.00req/sec"
        );
    }
}
