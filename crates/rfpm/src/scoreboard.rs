//! A pool's scoreboard: the shared mapping that holds `rfpm_core::scoreboard`'s layout,
//! made by the master before forking. Each worker writes its own slot; the master reads
//! all of them, as untrusted input.
pub use rfpm_core::scoreboard::{Header, RequestFigures, RequestInfo, Slot, SlotView, WorkerState};
use rfpm_sys::shm::SharedTable;
use std::io;
use std::sync::atomic::Ordering;

/// Microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// A pool's shared area: a header and `n` slots.
pub struct Scoreboard {
    table: SharedTable<Header, Slot>,
}

impl Scoreboard {
    /// A fresh area for `slots` workers (at least one); `pool` names its memfd.
    pub fn new(pool: &[u8], slots: usize) -> io::Result<Scoreboard> {
        // The memfd's name is a label in /proc (lossy is enough there).
        let pool = String::from_utf8_lossy(pool);
        let table = SharedTable::create(&format!("rfpm-scoreboard-{pool}"), slots)?;
        let sb = Scoreboard { table };
        sb.header().start_us.store(now_us(), Ordering::Relaxed);
        Ok(sb)
    }

    /// The area of a pool of the previous image (a reload), mapped again from its memfd;
    /// refused unless it is exactly the size `slots` slots need.
    pub fn adopt(fd: std::os::fd::OwnedFd, slots: usize) -> io::Result<Scoreboard> {
        Ok(Scoreboard {
            table: SharedTable::adopt(fd, slots)?,
        })
    }

    /// The memfd behind the area, to hand across exec (`None` without memfds).
    pub fn memfd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.table.memfd()
    }

    pub fn header(&self) -> &Header {
        self.table.header()
    }

    pub fn slot_count(&self) -> usize {
        self.table.slot_count()
    }

    /// Slot `i`, if it exists.
    pub fn slot(&self, i: usize) -> Option<&Slot> {
        self.table.slot(i)
    }

    /// Slots in use (a worker's pid recorded), in slot order.
    pub fn views(&self) -> Vec<SlotView> {
        (0..self.slot_count())
            .filter_map(|i| self.slot(i))
            .filter(|s| s.pid.load(Ordering::Relaxed) > 0)
            .map(Slot::view)
            .collect()
    }

    /// Workers in a request (not Idle, not Booting); also raises `max active processes`.
    pub fn count_active(&self) -> u64 {
        let n = (0..self.slot_count())
            .filter_map(|i| self.slot(i))
            .filter(|s| s.pid.load(Ordering::Relaxed) > 0 && !s.state().is_idle())
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
}

/// A snapshot of a pool for its status page and the admin listener, now: the figures of
/// its scoreboard and its workers, then those of its draining generations (marked).
pub fn pool_status<'a>(
    pool: &[u8],
    pm: &'static str,
    sb: &Scoreboard,
    draining: impl IntoIterator<Item = &'a Scoreboard>,
) -> rfpm_core::status::PoolStatus {
    use rfpm_core::status;
    let h = sb.header();
    sb.count_active();
    let ld = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let counters = status::Counters {
        start_us: ld(&h.start_us),
        accepted: ld(&h.accepted),
        listen_queue: ld(&h.listen_queue),
        max_listen_queue: ld(&h.max_listen_queue),
        listen_queue_len: ld(&h.listen_queue_len),
        max_active: ld(&h.max_active),
        max_children_reached: ld(&h.max_children_reached),
        slow_requests: ld(&h.slow_requests),
        // php-fpm 8.4's memory peak, on the pages of the version that has it.
        memory_peak: sapi::COMPAT.status_memory_peak.then(|| ld(&h.memory_peak)),
    };
    let draining: Vec<_> = draining.into_iter().flat_map(Scoreboard::views).collect();
    status::PoolStatus::build_with_draining(pool, pm, &counters, &sb.views(), &draining, now_us())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rfpm_core::scoreboard::{
        RequestFigures, RequestInfo, METHOD_MAX, QUERY_MAX, SCRIPT_MAX, URI_MAX, USER_MAX,
    };

    #[test]
    fn request_fields_are_bounded_and_reset() {
        let sb = Scoreboard::new(b"test", 2).expect("mmap");
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

    #[test]
    fn request_ids_pair_with_the_served_count() {
        let sb = Scoreboard::new(b"test-rid", 1).expect("mmap");
        let s = sb.slot(0).expect("slot");
        s.reset(1);
        assert_eq!(s.request_id_of(1), None);
        s.begin_request(2);
        s.set_request_id(1, b"abc-1");
        assert_eq!(
            s.request_id_of(1).map(|i| i.as_bytes().to_vec()),
            Some(b"abc-1".to_vec())
        );
        // The worker went on: its first request's id is no longer known.
        s.begin_request(3);
        s.set_request_id(2, b"abc-2");
        assert_eq!(s.request_id_of(1), None);
        // A forged id is cut and sanitised.
        let mut forged = b"x\n\"y".to_vec();
        forged.extend_from_slice(&[b'z'; 200]);
        s.set_request_id(3, &forged);
        let got = s.request_id_of(3).expect("id");
        assert_eq!(got.as_bytes().len(), rfpm_core::request_id::MAX_LEN);
        assert!(got.as_bytes().starts_with(b"x..y"));
        assert_eq!(s.current_request_id(), got);
        s.reset(4);
        assert!(s.current_request_id().is_empty());
    }
}
