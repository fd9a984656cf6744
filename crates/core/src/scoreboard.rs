//! The scoreboard's layout: a pool's shared area is one `Header` and one `Slot` per
//! worker, `#[repr(C)]`, every field an atomic (the mapping itself is made by `rfpm-sys`).
//! Each worker writes its own slot; the master reads all of them. A slot's request
//! fields are written under a sequence counter (a seqlock) so that the master reads a
//! consistent copy. The master treats what it reads as untrusted input (a worker runs
//! arbitrary PHP): it never follows a pointer from here, and it takes indexes and pids
//! from its own records, not from the scoreboard.
use std::sync::atomic::{fence, AtomicI32, AtomicI64, AtomicU32, AtomicU64, AtomicU8, Ordering};

/// Worker states (reference §3.2), as stored in a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u32)]
pub enum WorkerState {
    #[default]
    Idle = 0,
    ReadingHeaders = 1,
    GettingRequestInfo = 2,
    Running = 3,
    Finishing = 4,
    Ending = 5,
    /// rfpm, worker mode: the worker script boots (it takes no request yet). Counted
    /// with the idle workers in the pool's figures (it is in no request, and the
    /// process manager must not start more workers for it), shown as `Booting`.
    Booting = 6,
}

impl WorkerState {
    pub fn from_u32(v: u32) -> WorkerState {
        match v {
            1 => WorkerState::ReadingHeaders,
            2 => WorkerState::GettingRequestInfo,
            3 => WorkerState::Running,
            4 => WorkerState::Finishing,
            5 => WorkerState::Ending,
            6 => WorkerState::Booting,
            _ => WorkerState::Idle,
        }
    }

    /// The name the status page shows.
    pub fn name(self) -> &'static str {
        match self {
            WorkerState::Idle => "Idle",
            WorkerState::ReadingHeaders => "Reading headers",
            WorkerState::GettingRequestInfo => "Getting request information",
            WorkerState::Running => "Running",
            WorkerState::Finishing => "Finishing",
            WorkerState::Ending => "Ending",
            WorkerState::Booting => "Booting",
        }
    }

    /// In no request: Idle, or Booting (worker mode). The pool's idle figures and the
    /// process manager count these.
    pub fn is_idle(self) -> bool {
        matches!(self, WorkerState::Idle | WorkerState::Booting)
    }
}

/// Per-pool counters. Written by the master (start time, listen queue, max children
/// reached) and by the workers (accepted, max active, slow requests by the master).
#[repr(C)]
pub struct Header {
    /// Requests read by the pool (`accepted conn`).
    pub accepted: AtomicU64,
    /// When the master created this area, µs since the epoch (`start time`).
    pub start_us: AtomicU64,
    /// Most workers seen active at once (`max active processes`).
    pub max_active: AtomicU64,
    /// Workers out of Idle now: adjusted by the workers as they leave and re-enter Idle
    /// (O(1) per request), recounted from the slots by the master every second (which
    /// also corrects it after a worker died mid-request).
    pub active: AtomicU64,
    /// Connections waiting in the accept queue, sampled by the master each second.
    pub listen_queue: AtomicU64,
    /// Maximum of `listen_queue` seen.
    pub max_listen_queue: AtomicU64,
    /// Capacity of the accept queue (0 where the system does not tell).
    pub listen_queue_len: AtomicU64,
    /// Times the process manager hit `pm.max_children` (reference §3.3).
    pub max_children_reached: AtomicU64,
    /// Requests that exceeded `request_slowlog_timeout` (reference §3.7).
    pub slow_requests: AtomicU64,
    /// The highest peak memory of a finished request, bytes (written by the workers as
    /// requests end): the status page's `memory peak` of php-fpm 8.4.
    pub memory_peak: AtomicU64,
    /// rfpm: the durations of the pool's finished requests (the metrics' histogram),
    /// recorded by each worker at a request's end.
    pub durations: Histogram,
    /// rfpm: the time between the web server receiving a request (`X-Request-Start`)
    /// and a worker starting to read it, for requests that carry the header.
    pub queue_times: Histogram,
    /// rfpm: finished requests by status class, 1xx to 5xx.
    pub responses: [AtomicU64; 5],
    /// rfpm, worker mode: how long each worker's script took to boot (from the script's
    /// start to its first `frankenphp_handle_request()`), recorded by the worker.
    pub boots: Histogram,
}

impl Header {
    /// Worker side: a request ended with HTTP status `status` (a status outside
    /// 100..=599 is not counted).
    pub fn count_response(&self, status: u16) {
        if let Some(c) = usize::from(status / 100)
            .checked_sub(1)
            .and_then(|i| self.responses.get(i))
        {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The requests by status class, 1xx to 5xx.
    pub fn responses(&self) -> [u64; 5] {
        std::array::from_fn(|i| self.responses[i].load(Ordering::Relaxed))
    }
}

/// Upper bounds of the request histograms' buckets, µs (1 ms to 10 s; a last bucket
/// above them all is implicit).
pub const BUCKETS_US: [u64; 13] = [
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000, 10_000_000,
];

/// A histogram in shared memory: one counter per bucket and the sum, O(1) to record
/// and to read whatever the traffic.
#[repr(C)]
pub struct Histogram {
    /// Observations per bucket (not cumulative); the last is above every bound.
    counts: [AtomicU64; BUCKETS_US.len() + 1],
    sum_us: AtomicU64,
}

/// A histogram read out: per-bucket counts (not cumulative) and the sum, µs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistogramView {
    pub counts: [u64; BUCKETS_US.len() + 1],
    pub sum_us: u64,
}

impl HistogramView {
    /// Observations in all buckets (saturating: the figures come from workers).
    pub fn count(&self) -> u64 {
        self.counts.iter().fold(0u64, |a, &c| a.saturating_add(c))
    }
}

impl Histogram {
    /// Records one observation of `us` microseconds.
    pub fn observe(&self, us: u64) {
        let i = BUCKETS_US.partition_point(|&b| b < us);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    pub fn view(&self) -> HistogramView {
        HistogramView {
            counts: std::array::from_fn(|i| self.counts[i].load(Ordering::Relaxed)),
            sum_us: self.sum_us.load(Ordering::Relaxed),
        }
    }
}

/// Longest values a slot keeps (php-fpm's status area: method 15, URI 127, query 511,
/// script 255, auth user 31 bytes); longer values are truncated.
pub const METHOD_MAX: usize = 15;
pub const URI_MAX: usize = 127;
pub const QUERY_MAX: usize = 511;
pub const SCRIPT_MAX: usize = 255;
pub const USER_MAX: usize = 31;

/// A bounded byte string in shared memory: a length and `N` bytes, all atomics.
#[repr(C)]
pub struct Text<const N: usize> {
    len: AtomicU32,
    bytes: [AtomicU8; N],
}

impl<const N: usize> Text<N> {
    /// Stores `v`, cut to `N` bytes.
    pub fn set(&self, v: &[u8]) {
        let v = &v[..v.len().min(N)];
        for (dst, &b) in self.bytes.iter().zip(v) {
            dst.store(b, Ordering::Relaxed);
        }
        self.len.store(
            u32::try_from(v.len()).unwrap_or(u32::MAX),
            Ordering::Relaxed,
        );
    }

    /// The stored bytes; the length is bounded by `N` whatever the slot says.
    pub fn get(&self) -> Vec<u8> {
        let n = (self.len.load(Ordering::Relaxed) as usize).min(N);
        self.bytes[..n]
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect()
    }
}

/// One worker's slot.
#[repr(C)]
pub struct Slot {
    pub pid: AtomicI32,
    pub state: AtomicU32,
    /// Requests this worker started reading.
    pub requests: AtomicU64,
    /// Microseconds since the epoch of the last state change.
    pub last_change_us: AtomicU64,
    /// When the worker was started, µs since the epoch (written by the master).
    pub start_us: AtomicU64,
    /// Sequence counter of the request fields below: odd while the worker writes them.
    seq: AtomicU32,
    /// When the current (or last) request started being read, µs since the epoch.
    request_start_us: AtomicU64,
    /// Duration of the last finished request, µs.
    duration_us: AtomicU64,
    /// CPU time of the last finished request, µs (user, system).
    cpu_user_us: AtomicU64,
    cpu_system_us: AtomicU64,
    /// Peak memory of the last finished request, bytes.
    memory: AtomicU64,
    content_length: AtomicI64,
    method: Text<METHOD_MAX>,
    uri: Text<URI_MAX>,
    query: Text<QUERY_MAX>,
    script: Text<SCRIPT_MAX>,
    user: Text<USER_MAX>,
    /// rfpm: the requests this worker has served (read whole), counted with the one in
    /// progress, and that request's id (see [`Slot::set_request_id`]).
    served: AtomicU64,
    request_id: Text<REQUEST_ID_MAX>,
}

/// Longest request id a slot keeps.
pub const REQUEST_ID_MAX: usize = crate::request_id::MAX_LEN;

/// A consistent copy of a slot, plain data.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SlotView {
    pub pid: i32,
    pub state: WorkerState,
    pub requests: u64,
    pub start_us: u64,
    pub request_start_us: u64,
    pub duration_us: u64,
    pub cpu_user_us: u64,
    pub cpu_system_us: u64,
    pub memory: u64,
    pub content_length: i64,
    pub method: Vec<u8>,
    pub uri: Vec<u8>,
    pub query: Vec<u8>,
    pub script: Vec<u8>,
    pub user: Vec<u8>,
    /// The current (or last) request's id as the worker wrote it: untrusted, see
    /// [`crate::request_id::RequestId::sanitized`].
    pub request_id: Vec<u8>,
}

/// The figures of a finished request, as the worker records them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestFigures {
    /// Wall time from the first byte read to the end, µs.
    pub duration_us: u64,
    /// CPU time, µs (user, system).
    pub cpu_user_us: u64,
    pub cpu_system_us: u64,
    /// Peak memory, bytes.
    pub memory: u64,
}

/// What a worker records when it has read a request (state Getting request information).
pub struct RequestInfo<'a> {
    pub method: &'a [u8],
    pub uri: &'a [u8],
    pub query: &'a [u8],
    pub content_length: i64,
}

impl Slot {
    /// Worker side: record a new state.
    pub fn set_state(&self, s: WorkerState, now_us: u64) {
        self.last_change_us.store(now_us, Ordering::Relaxed);
        self.state.store(s as u32, Ordering::Release);
    }

    pub fn state(&self) -> WorkerState {
        WorkerState::from_u32(self.state.load(Ordering::Acquire))
    }

    /// Runs `f` as one update of the request fields (readers retry around it).
    fn write(&self, f: impl FnOnce(&Slot)) {
        let s = self.seq.load(Ordering::Relaxed);
        self.seq.store(s.wrapping_add(1) | 1, Ordering::Relaxed);
        fence(Ordering::Release);
        f(self);
        self.seq
            .store((s.wrapping_add(1) | 1).wrapping_add(1), Ordering::Release);
    }

    /// Empties every request text field (inside a `write`).
    fn clear_texts(&self) {
        for t in [
            &self.method as &dyn TextField,
            &self.uri,
            &self.query,
            &self.script,
            &self.user,
        ] {
            t.clear();
        }
    }

    /// Worker side: a new request starts being read (state Reading headers): the
    /// request fields of the previous one are cleared.
    pub fn begin_request(&self, now_us: u64) {
        self.write(|s| {
            s.request_start_us.store(now_us, Ordering::Relaxed);
            s.content_length.store(0, Ordering::Relaxed);
            s.clear_texts();
            s.request_id.clear();
        });
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.set_state(WorkerState::ReadingHeaders, now_us);
    }

    /// Worker side: the request was read.
    pub fn request_info(&self, info: &RequestInfo<'_>, now_us: u64) {
        self.write(|s| {
            s.method.set(info.method);
            s.uri.set(info.uri);
            s.query.set(info.query);
            s.content_length
                .store(info.content_length, Ordering::Relaxed);
        });
        self.set_state(WorkerState::GettingRequestInfo, now_us);
    }

    /// Worker side: the authenticated user PHP found in the request.
    pub fn set_user(&self, user: &[u8]) {
        self.write(|s| s.user.set(user));
    }

    /// Worker side: the script that runs.
    pub fn set_script(&self, script: &[u8]) {
        self.write(|s| s.script.set(script));
    }

    /// Worker side: the id of its `served`-th request (counted from 1 since the worker
    /// started), which it is serving now. The master pairs it with the worker's output:
    /// what comes before the worker's `served`-th end-of-request marker belongs to it.
    pub fn set_request_id(&self, served: u64, id: &[u8]) {
        self.write(|s| {
            s.served.store(served, Ordering::Relaxed);
            s.request_id.set(id);
        });
    }

    /// Master side: the id of the worker's `served`-th request, if that is the one the
    /// slot holds (the worker may have gone on to the next one). Untrusted: bounded,
    /// and sanitised to the id charset.
    pub fn request_id_of(&self, served: u64) -> Option<crate::request_id::RequestId> {
        for _ in 0..64 {
            let s1 = self.seq.load(Ordering::Acquire);
            let n = self.served.load(Ordering::Relaxed);
            let id = self.request_id.get();
            fence(Ordering::Acquire);
            if s1 % 2 == 0 && self.seq.load(Ordering::Relaxed) == s1 {
                return (n == served && !id.is_empty())
                    .then(|| crate::request_id::RequestId::sanitized(&id));
            }
            std::hint::spin_loop();
        }
        None
    }

    /// Master side: the id of the request in progress (empty when none was recorded),
    /// sanitised.
    pub fn current_request_id(&self) -> crate::request_id::RequestId {
        crate::request_id::RequestId::sanitized(&self.view().request_id)
    }

    /// Worker side: when its current request started being read (the worker is the only
    /// writer of this field, so no sequence check is needed).
    pub fn request_start_us(&self) -> u64 {
        self.request_start_us.load(Ordering::Relaxed)
    }

    /// Worker side: the request is over (state Finishing) with these figures.
    pub fn end_request(&self, figures: &RequestFigures, now_us: u64) {
        self.write(|s| {
            s.duration_us.store(figures.duration_us, Ordering::Relaxed);
            s.cpu_user_us.store(figures.cpu_user_us, Ordering::Relaxed);
            s.cpu_system_us
                .store(figures.cpu_system_us, Ordering::Relaxed);
            s.memory.store(figures.memory, Ordering::Relaxed);
        });
        self.set_state(WorkerState::Finishing, now_us);
    }

    /// Master side, before forking into the slot: a clean slot for a new worker.
    pub fn reset(&self, start_us: u64) {
        self.write(|s| {
            s.request_start_us.store(0, Ordering::Relaxed);
            s.duration_us.store(0, Ordering::Relaxed);
            s.cpu_user_us.store(0, Ordering::Relaxed);
            s.cpu_system_us.store(0, Ordering::Relaxed);
            s.memory.store(0, Ordering::Relaxed);
            s.content_length.store(0, Ordering::Relaxed);
            s.clear_texts();
            s.served.store(0, Ordering::Relaxed);
            s.request_id.clear();
        });
        self.pid.store(0, Ordering::Relaxed);
        self.requests.store(0, Ordering::Relaxed);
        self.start_us.store(start_us, Ordering::Relaxed);
        self.set_state(WorkerState::Idle, start_us);
    }

    /// A copy of the slot, consistent unless its worker keeps writing (then the last
    /// attempt is returned: every length is bounded anyway).
    pub fn view(&self) -> SlotView {
        let mut v = SlotView::default();
        for _ in 0..64 {
            let s1 = self.seq.load(Ordering::Acquire);
            v = SlotView {
                pid: self.pid.load(Ordering::Relaxed),
                state: self.state(),
                requests: self.requests.load(Ordering::Relaxed),
                start_us: self.start_us.load(Ordering::Relaxed),
                request_start_us: self.request_start_us.load(Ordering::Relaxed),
                duration_us: self.duration_us.load(Ordering::Relaxed),
                cpu_user_us: self.cpu_user_us.load(Ordering::Relaxed),
                cpu_system_us: self.cpu_system_us.load(Ordering::Relaxed),
                memory: self.memory.load(Ordering::Relaxed),
                content_length: self.content_length.load(Ordering::Relaxed),
                method: self.method.get(),
                uri: self.uri.get(),
                query: self.query.get(),
                script: self.script.get(),
                user: self.user.get(),
                request_id: self.request_id.get(),
            };
            fence(Ordering::Acquire);
            if s1 % 2 == 0 && self.seq.load(Ordering::Relaxed) == s1 {
                break;
            }
            std::hint::spin_loop();
        }
        v
    }
}

trait TextField {
    fn clear(&self);
}

impl<const N: usize> TextField for Text<N> {
    fn clear(&self) {
        self.len.store(0, Ordering::Relaxed);
    }
}

/// The moment an `X-Request-Start` header names, µs since the epoch: `t=` (optional)
/// then seconds with an optional fraction, or whole milliseconds, microseconds or
/// nanoseconds (the New Relic and Heroku convention, told apart by magnitude).
/// `None` for anything else.
pub fn parse_request_start(v: &[u8]) -> Option<u64> {
    let v = std::str::from_utf8(v).ok()?.trim();
    let v = v.strip_prefix("t=").unwrap_or(v);
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let t: f64 = v.parse().ok()?;
    let us = if t >= 1e17 {
        t / 1e3
    } else if t >= 1e14 {
        t
    } else if t >= 1e11 {
        t * 1e3
    } else {
        t * 1e6
    };
    // Within u64 and not before 2001 (a value that small is no timestamp).
    (us.is_finite() && (1e15..1.8e19).contains(&us)).then(|| {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let us = us.round() as u64;
        us
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_inclusive_upper_bounds() {
        let h = Histogram {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_us: AtomicU64::new(0),
        };
        h.observe(0);
        h.observe(1_000);
        h.observe(1_001);
        h.observe(10_000_000);
        h.observe(10_000_001);
        let v = h.view();
        assert_eq!(v.counts[0], 2);
        assert_eq!(v.counts[1], 1);
        assert_eq!(v.counts[12], 1);
        assert_eq!(v.counts[13], 1);
        assert_eq!(v.count(), 5);
        assert_eq!(v.sum_us, 20_002_002);
    }

    #[test]
    fn request_start_forms() {
        let s = 1_733_390_000u64;
        assert_eq!(
            parse_request_start(b"t=1733390000.123"),
            Some(s * 1_000_000 + 123_000)
        );
        assert_eq!(
            parse_request_start(b"t=1733390000123"),
            Some(s * 1_000_000 + 123_000)
        );
        assert_eq!(
            parse_request_start(b"1733390000123456"),
            Some(s * 1_000_000 + 123_456)
        );
        assert_eq!(
            parse_request_start(b"t=1733390000123456000"),
            Some(s * 1_000_000 + 123_456)
        );
        assert_eq!(parse_request_start(b"t=1733390000"), Some(s * 1_000_000));
        for bad in [
            &b""[..],
            b"t=",
            b"t=abc",
            b"t=-5",
            b"t=12",
            b"t=1e20",
            b"t=1.2.3",
        ] {
            assert_eq!(parse_request_start(bad), None, "{bad:?}");
        }
    }
}
