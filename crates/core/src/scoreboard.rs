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
}

impl WorkerState {
    pub fn from_u32(v: u32) -> WorkerState {
        match v {
            1 => WorkerState::ReadingHeaders,
            2 => WorkerState::GettingRequestInfo,
            3 => WorkerState::Running,
            4 => WorkerState::Finishing,
            5 => WorkerState::Ending,
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
        }
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
}

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
