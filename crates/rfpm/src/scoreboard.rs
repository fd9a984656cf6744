//! A pool's scoreboard: the shared mapping that holds `rfpm_core::scoreboard`'s layout,
//! made by the master before forking. Each worker writes its own slot; the master reads
//! all of them, as untrusted input.
pub use rfpm_core::scoreboard::{Header, RequestFigures, RequestInfo, Slot, SlotView, WorkerState};
use std::io;
use std::ptr::NonNull;
use std::sync::atomic::Ordering;

/// Microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
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
    use rfpm_core::scoreboard::{
        RequestFigures, RequestInfo, METHOD_MAX, QUERY_MAX, SCRIPT_MAX, URI_MAX, USER_MAX,
    };

    #[test]
    fn shared_across_fork() {
        let sb = Scoreboard::new(3).expect("mmap");
        assert!(sb.slot(3).is_none());
        let s = sb.slot(2).expect("slot");
        // SAFETY: the child only touches the shared atomics and exits at once.
        match unsafe { libc::fork() } {
            0 => {
                s.set_state(WorkerState::Running, 1);
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
        s.request_info(
            &RequestInfo {
                method: b"GETXXXXXXXXXXXXXXXXXXXX",
                uri: &long,
                query: &long,
                content_length: 7,
            },
            6_000_001,
        );
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
        s.end_request(
            &RequestFigures {
                duration_us: 10,
                cpu_user_us: 1,
                cpu_system_us: 2,
                memory: 3,
            },
            6_000_002,
        );
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
