//! The scoreboard: one `MAP_SHARED` anonymous mapping per pool, made by the master
//! before forking. Each worker writes its own slot; the master reads all of them.
//! Every field is an atomic, and the master treats what it reads as untrusted input
//! (a worker runs arbitrary PHP): it never follows a pointer from here, and it takes
//! indexes and pids from its own records, not from the scoreboard.
use std::io;
use std::ptr::NonNull;
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
        self.len.store(v.len() as u32, Ordering::Relaxed);
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

/// What a worker records when it has read a request (state Getting request information).
pub struct RequestInfo<'a> {
    pub method: &'a [u8],
    pub uri: &'a [u8],
    pub query: &'a [u8],
    pub content_length: i64,
}

/// Microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

impl Slot {
    /// Worker side: record a new state.
    pub fn set_state(&self, s: WorkerState) {
        self.last_change_us.store(now_us(), Ordering::Relaxed);
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
        self.set_state(WorkerState::ReadingHeaders);
    }

    /// Worker side: the request was read.
    pub fn request_info(&self, info: &RequestInfo<'_>) {
        self.write(|s| {
            s.method.set(info.method);
            s.uri.set(info.uri);
            s.query.set(info.query);
            s.content_length
                .store(info.content_length, Ordering::Relaxed);
        });
        self.set_state(WorkerState::GettingRequestInfo);
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
    pub fn end_request(&self, duration_us: u64, cpu_user_us: u64, cpu_system_us: u64, memory: u64) {
        self.write(|s| {
            s.duration_us.store(duration_us, Ordering::Relaxed);
            s.cpu_user_us.store(cpu_user_us, Ordering::Relaxed);
            s.cpu_system_us.store(cpu_system_us, Ordering::Relaxed);
            s.memory.store(memory, Ordering::Relaxed);
        });
        self.set_state(WorkerState::Finishing);
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
        self.set_state(WorkerState::Idle);
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
            if s1.is_multiple_of(2) && self.seq.load(Ordering::Relaxed) == s1 {
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

/// A pool's shared area: a header and `n` slots.
pub struct Scoreboard {
    base: NonNull<u8>,
    slots: usize,
    len: usize,
}

// SAFETY: the mapping holds only atomics; it is shared by design between processes and
// may be shared between threads the same way.
unsafe impl Send for Scoreboard {}
// SAFETY: as above.
unsafe impl Sync for Scoreboard {}

fn slots_offset() -> usize {
    let a = std::mem::align_of::<Slot>();
    std::mem::size_of::<Header>().div_ceil(a) * a
}

impl Scoreboard {
    pub fn new(slots: usize) -> io::Result<Scoreboard> {
        let slots = slots.max(1);
        let len = slots_offset() + slots * std::mem::size_of::<Slot>();
        // SAFETY: an anonymous shared mapping; zero-filled by the kernel, which is a
        // valid initial value for every atomic field.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base =
            NonNull::new(p as *mut u8).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))?;
        let sb = Scoreboard { base, slots, len };
        sb.header().start_us.store(now_us(), Ordering::Relaxed);
        Ok(sb)
    }

    pub fn header(&self) -> &Header {
        // SAFETY: the mapping starts with a zero-initialised Header, page-aligned.
        unsafe { &*(self.base.as_ptr() as *const Header) }
    }

    pub fn slot_count(&self) -> usize {
        self.slots
    }

    /// Slots in use (a worker's pid recorded), in slot order.
    pub fn views(&self) -> Vec<SlotView> {
        (0..self.slots)
            .filter_map(|i| self.slot(i))
            .filter(|s| s.pid.load(Ordering::Relaxed) > 0)
            .map(Slot::view)
            .collect()
    }

    /// Workers in use that are not Idle; also raises `max active processes`.
    pub fn count_active(&self) -> u64 {
        let n = (0..self.slots)
            .filter_map(|i| self.slot(i))
            .filter(|s| s.pid.load(Ordering::Relaxed) > 0 && s.state() != WorkerState::Idle)
            .count() as u64;
        self.header().active.store(n, Ordering::Relaxed);
        self.header().max_active.fetch_max(n, Ordering::Relaxed);
        n
    }

    /// Worker side: it leaves Idle for a request.
    pub fn enter_active(&self) {
        let h = self.header();
        let n = h.active.fetch_add(1, Ordering::Relaxed).saturating_add(1);
        h.max_active.fetch_max(n, Ordering::Relaxed);
    }

    /// Worker side: it is Idle again.
    pub fn leave_active(&self) {
        let _ = self
            .header()
            .active
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(1))
            });
    }

    /// Slot `i`, if it exists.
    pub fn slot(&self, i: usize) -> Option<&Slot> {
        if i >= self.slots {
            return None;
        }
        // SAFETY: bounds-checked; slots start at an aligned offset inside the mapping.
        unsafe { Some(&*(self.base.as_ptr().add(slots_offset()) as *const Slot).add(i)) }
    }
}

impl Drop for Scoreboard {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping, once.
        unsafe {
            libc::munmap(self.base.as_ptr() as *mut libc::c_void, self.len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_across_fork() {
        let sb = Scoreboard::new(3).expect("mmap");
        assert!(sb.slot(3).is_none());
        let s = sb.slot(2).expect("slot");
        // SAFETY: the child only touches the shared atomics and exits at once.
        match unsafe { libc::fork() } {
            0 => {
                s.set_state(WorkerState::Running);
                sb.header().accepted.fetch_add(5, Ordering::Relaxed);
                // SAFETY: terminate the forked child without running the test harness.
                unsafe { libc::_exit(0) }
            }
            pid if pid > 0 => {
                let mut st = 0;
                // SAFETY: waiting for our own child.
                unsafe { libc::waitpid(pid, &mut st, 0) };
                assert_eq!(s.state(), WorkerState::Running);
                assert_eq!(sb.header().accepted.load(Ordering::Relaxed), 5);
            }
            _ => panic!("fork failed"),
        }
    }

    #[test]
    fn request_fields_are_bounded_and_reset() {
        let sb = Scoreboard::new(2).expect("mmap");
        let s = sb.slot(1).expect("slot");
        s.reset(5_000_000);
        s.pid.store(42, Ordering::Relaxed);
        s.begin_request(6_000_000);
        let long = vec![b'u'; 1000];
        s.request_info(&RequestInfo {
            method: b"GETXXXXXXXXXXXXXXXXXXXX",
            uri: &long,
            query: &long,
            content_length: 7,
        });
        s.set_user(&long);
        s.set_script(&long);
        let v = s.view();
        assert_eq!(v.state, WorkerState::GettingRequestInfo);
        assert_eq!(
            (
                v.method.len(),
                v.uri.len(),
                v.query.len(),
                v.user.len(),
                v.script.len()
            ),
            (METHOD_MAX, URI_MAX, QUERY_MAX, USER_MAX, SCRIPT_MAX)
        );
        assert_eq!(
            (v.requests, v.content_length, v.request_start_us),
            (1, 7, 6_000_000)
        );
        s.end_request(10, 1, 2, 3);
        assert_eq!(s.state(), WorkerState::Finishing);
        s.begin_request(7_000_000);
        let v = s.view();
        assert!(v.uri.is_empty() && v.script.is_empty() && v.user.is_empty());
        assert_eq!((v.duration_us, v.memory, v.requests), (10, 3, 2));
        // Only slots with a pid are listed; the non-idle one counts as active.
        assert_eq!(sb.views().len(), 1);
        assert_eq!(sb.count_active(), 1);
        assert_eq!(sb.header().max_active.load(Ordering::Relaxed), 1);
    }
}
