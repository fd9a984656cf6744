//! The scoreboard: one `MAP_SHARED` anonymous mapping per pool, made by the master
//! before forking. Each worker writes its own slot; the master reads all of them.
//! Every field is an atomic, and the master treats what it reads as untrusted input
//! (a worker runs arbitrary PHP): it never follows a pointer from here, and it takes
//! indexes and pids from its own records, not from the scoreboard.
use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, AtomicU8, Ordering};

/// Worker states (reference §3.2), as stored in a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum WorkerState {
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
}

/// Per-pool counters.
#[repr(C)]
#[derive(Default)]
pub struct Header {
    /// Requests read by the pool (`accepted conn`).
    pub accepted: AtomicU64,
    /// Requests the master logged as slow (`slow requests`); written by the master.
    pub slow_requests: AtomicU64,
}

/// One worker's slot.
#[repr(C)]
#[derive(Default)]
pub struct Slot {
    pub pid: AtomicI32,
    pub state: AtomicU32,
    /// Requests this worker started reading.
    pub requests: AtomicU64,
    /// Microseconds since the epoch of the last state change.
    pub last_change_us: AtomicU64,
    /// Microseconds since the epoch when the current request started being read.
    pub request_start_us: AtomicU64,
    /// The current request as php-fpm's status area stores it (reference §3.7:
    /// script 255, URI 127, query 511, method 15 bytes).
    pub method: Text<16>,
    pub request_uri: Text<128>,
    pub query: Text<512>,
    pub script: Text<256>,
}

/// A short byte string in the shared area: a length and bytes, all atomics. A reader
/// may see a torn value while the worker writes; it never reads out of bounds.
#[repr(C)]
pub struct Text<const N: usize> {
    len: AtomicU32,
    bytes: [AtomicU8; N],
}

impl<const N: usize> Default for Text<N> {
    fn default() -> Self {
        Text {
            len: AtomicU32::new(0),
            bytes: std::array::from_fn(|_| AtomicU8::new(0)),
        }
    }
}

impl<const N: usize> Text<N> {
    /// Stores at most `N - 1` bytes of `v` (php-fpm keeps a terminating NUL).
    pub fn store(&self, v: &[u8]) {
        let n = v.len().min(N.saturating_sub(1));
        for (dst, &b) in self.bytes.iter().zip(&v[..n]) {
            dst.store(b, Ordering::Relaxed);
        }
        self.len.store(n as u32, Ordering::Release);
    }

    /// The bytes, bounded by `N - 1` whatever the length field says.
    pub fn load(&self) -> Vec<u8> {
        let n = (self.len.load(Ordering::Acquire) as usize).min(N.saturating_sub(1));
        self.bytes[..n]
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect()
    }
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
        Ok(Scoreboard { base, slots, len })
    }

    pub fn header(&self) -> &Header {
        // SAFETY: the mapping starts with a zero-initialised Header, page-aligned.
        unsafe { &*(self.base.as_ptr() as *const Header) }
    }

    pub fn slot_count(&self) -> usize {
        self.slots
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
    fn text_is_bounded() {
        let t: Text<4> = Text::default();
        t.store(b"abcdef");
        assert_eq!(t.load(), b"abc");
        // A hostile length is clamped.
        t.len.store(u32::MAX, Ordering::Relaxed);
        assert_eq!(t.load(), b"abc");
        t.store(b"");
        assert_eq!(t.load(), b"");
    }

    #[test]
    fn shared_across_fork() {
        let sb = Scoreboard::new(3).expect("mmap");
        assert!(sb.slot(3).is_none());
        let s = sb.slot(2).expect("slot");
        // SAFETY: the child only touches the shared atomics and exits at once.
        match unsafe { libc::fork() } {
            0 => {
                s.set_state(WorkerState::Running);
                s.method.store(b"GET");
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
                assert_eq!(s.method.load(), b"GET");
            }
            _ => panic!("fork failed"),
        }
    }
}
