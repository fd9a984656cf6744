//! The end of a request: its figures into the scoreboard slot, its access-log line.
use super::StatusSource;
use crate::access;
use crate::pool::Pool;
use crate::scoreboard::{now_us, Header, RequestFigures, Slot};
use rfpm_sys::fd;
use std::cell::Cell;
use std::net::IpAddr;
use std::os::fd::BorrowedFd;

/// What the end of a request needs: the scoreboard slot, the access log.
pub(super) struct RequestLog<'a> {
    pub(super) slot: &'a Slot,
    /// The worker's own pool's scoreboard header (its request figures, rfpm's metrics).
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
    /// The request's id (empty when the pool gives none).
    pub(super) request_id: rfpm_core::request_id::RequestId,
}

impl RequestLog<'_> {
    /// The pool's request figures for the admin listener's metrics (O(1): a few
    /// counters in the scoreboard header): duration, status class, and the time the
    /// request waited since the web server received it when it says (`X-Request-Start`).
    fn record(&self, duration_us: u64, status: i32) {
        let h = self.header;
        h.durations.observe(duration_us);
        h.count_response(u16::try_from(status).unwrap_or(0));
        if let Some(t) = self
            .params
            .get(b"HTTP_X_REQUEST_START")
            .and_then(rfpm_core::scoreboard::parse_request_start)
        {
            h.queue_times
                .observe(self.slot.request_start_us().saturating_sub(t));
        }
    }

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
        self.record(duration, end.status);
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
        if self.pool.access_json {
            let time = rfpm_core::json::rfc3339_utc(v.request_start_us / 1000);
            let uri = self.params.get("REQUEST_URI").unwrap_or(&v.uri);
            let j = access::JsonEntry {
                time: &time,
                request_id: self.request_id.as_bytes(),
                uri,
                query: self.params.get("QUERY_STRING").unwrap_or(&v.query),
                remote_addr: self.params.get("REMOTE_ADDR"),
            };
            let (mut line, _) = access::format_json(&entry, &j);
            line.push(b'\n');
            let _ = fd::write(fd, &line);
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
