//! The end of a request: its figures into the scoreboard slot, its access-log line.
use super::StatusSource;
use crate::access;
use crate::pool::Pool;
use crate::scoreboard::{now_us, RequestFigures, Slot};
use rfpm_core::scoreboard::Header;
use rfpm_sys::fd;
use std::cell::Cell;
use std::net::IpAddr;
use std::os::fd::BorrowedFd;

/// What the end of a request needs: the scoreboard slot, the access log.
pub(super) struct RequestLog<'a> {
    pub(super) slot: &'a Slot,
    /// The worker's own pool's counters (`memory peak`).
    pub(super) header: &'a Header,
    pub(super) pool: &'a Pool,
    pub(super) status: &'a StatusSource<'a>,
    pub(super) access_fd: Option<BorrowedFd<'a>>,
    pub(super) peer: Option<IpAddr>,
    pub(super) ppid: i32,
    pub(super) cpu_start: (u64, u64),
    /// The CPU times read at the request's end.
    pub(super) cpu_end: Cell<Option<(u64, u64)>>,
    pub(super) params: &'a fcgi::params::Params,
}

impl RequestLog<'_> {
    /// Request end (reference §5.5): figures into the slot (state Finishing), then the
    /// access-log line. Returns a notice to log when the line had to be cut.
    pub(super) fn end(&self, end: &sapi::RequestEnd<'_>) -> Option<String> {
        let now = now_us();
        let duration = now.saturating_sub(self.slot.request_start_us());
        let (u1, s1) = rfpm_sys::time::cpu_times_us();
        self.cpu_end.set(Some((u1, s1)));
        let cpu_user = u1.saturating_sub(self.cpu_start.0);
        let cpu_system = s1.saturating_sub(self.cpu_start.1);
        let figures = RequestFigures {
            duration_us: duration,
            cpu_user_us: cpu_user,
            cpu_system_us: cpu_system,
            memory: end.memory,
        };
        self.slot.end_request(&figures, now);
        self.header
            .memory_peak
            .fetch_max(end.memory, std::sync::atomic::Ordering::Relaxed);
        let fd = self.access_fd?;
        // The slot's text fields (five copies) only when an access log line needs them.
        let v = self.slot.view();
        let param = |name: &[u8]| self.params.get(name).map(<[u8]>::to_vec);
        let entry = access::Entry {
            remote: self.peer,
            user: &v.user,
            start_secs: i64::try_from(v.request_start_us / 1_000_000).unwrap_or(0),
            now_secs: i64::try_from(now / 1_000_000).unwrap_or(0),
            method: &v.method,
            uri: &v.uri,
            query: &v.query,
            status: end.status,
            script: &v.script,
            content_length: v.content_length,
            duration_us: duration,
            memory: end.memory,
            cpu_user_us: cpu_user,
            cpu_system_us: cpu_system,
            pool: &self.pool.name,
            pid: v.pid,
            ppid: self.ppid,
            param: &param,
            headers: &end.headers,
        };
        if access::suppressed(&self.pool.suppress_paths, &entry) {
            return None;
        }
        let (mut line, cut) = access::format(&self.pool.access_format, &entry, &|t, f| {
            rfpm_sys::time::strftime_local(t, f)
        });
        if line.is_empty() {
            return None;
        }
        line.push(b'\n');
        let _ = fd::write(fd, &line);
        cut.then(|| {
            format!(
                "the log buffer is full ({}). The access log request has been truncated.",
                access::LINE_MAX
            )
        })
    }
}
