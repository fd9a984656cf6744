//! Request timeouts, the slow-log trigger and emergency restart (reference §3.6, §3.7):
//! pure decisions over a snapshot and the current time, applied by the master.

use crate::scoreboard::WorkerState;

/// The smallest check period over all pools: a third of the shortest of
/// `request_terminate_timeout` and `request_slowlog_timeout`, at least 130 ms.
/// `None` when no pool uses either (the timer is not armed).
pub fn timer_period_ms(pools: &[TimeoutConf]) -> Option<u64> {
    pools
        .iter()
        .flat_map(|p| [p.terminate, p.slowlog])
        .filter(|&t| t > 0)
        .map(|t| (t * 1000 / 3).max(130))
        .min()
}

/// A pool's timeout settings (seconds; 0 = off).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeoutConf {
    pub terminate: u64,
    pub track_finished: bool,
    pub slowlog: u64,
}

/// One worker's current request as read from the (untrusted) scoreboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestView {
    pub state: WorkerState,
    /// Microseconds since the epoch when reading the request began.
    pub start_us: u64,
    /// The worker's request counter: tells one request from the next.
    pub seq: u64,
}

/// What the master remembers per worker between checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    /// The request (by `seq`) the master has watched in progress since its own check at
    /// this time (µs): see [`bound`].
    pub seen: Option<(u64, u64)>,
    /// The request (by `seq`) already logged as slow.
    pub slow_logged: Option<u64>,
    /// The request (by `seq`) already terminated.
    pub terminated: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// `executing too slow (…), logging`: dump the stack into the slow log.
    Slow { elapsed_us: u64 },
    /// `execution timed out (…), terminating`: SIGTERM.
    Terminate { elapsed_us: u64 },
}

/// The child the master spawned for a slot: what the slot's word is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// The pid `fork()` returned.
    pub pid: i32,
    /// When the master spawned it, µs since the epoch.
    pub spawned_us: u64,
}

/// How much earlier than the master's first sight of a request its start may lie,
/// beyond one check period (the timer may fire late).
const SEEN_SLACK_US: u64 = 1_000_000;

/// The scoreboard is written by workers, which run arbitrary PHP: one can forge a
/// sibling's slot (CVE-2021-21703 was php-fpm trusting it). Before [`check`] acts on a
/// slot, this decides what of it the master believes:
///
/// * nothing unless the pid in the slot is the child the master spawned for it (a
///   stale slot of a dead predecessor, or one claimed by another process, is ignored);
/// * a request start no earlier than the child's spawn, nor earlier than one check
///   period (plus a second of slack) before the master's own first sight of that
///   request in progress — a forged start "hours ago" buys at most that; the master
///   checks every period, so a real request is always seen within one period of its
///   start and its timing is unchanged;
/// * a start in the future stays as it is ([`check`] counts it as zero).
///
/// `mem` keeps the first sight across checks, per request (`seq`).
pub fn bound(
    conf: &TimeoutConf,
    owner: &Owner,
    slot_pid: i32,
    req: &RequestView,
    mem: &mut Memory,
    now_us: u64,
) -> Option<RequestView> {
    let in_progress = matches!(
        req.state,
        WorkerState::ReadingHeaders
            | WorkerState::GettingRequestInfo
            | WorkerState::Running
            | WorkerState::Finishing
    );
    if slot_pid != owner.pid || !in_progress || req.start_us == 0 {
        mem.seen = None;
        return None;
    }
    let seen_us = match mem.seen {
        Some((seq, at)) if seq == req.seq => at,
        _ => {
            mem.seen = Some((req.seq, now_us));
            now_us
        }
    };
    let period_us = timer_period_ms(&[*conf]).unwrap_or(0).saturating_mul(1000);
    let earliest = owner
        .spawned_us
        .max(seen_us.saturating_sub(period_us.saturating_add(SEEN_SLACK_US)));
    Some(RequestView {
        start_us: req.start_us.max(earliest),
        ..*req
    })
}

/// One check of one worker: first the slow-log rule, otherwise the terminate rule.
/// Elapsed time is compared in whole seconds (`elapsed >= timeout`).
pub fn check(
    conf: &TimeoutConf,
    mem: &mut Memory,
    req: &RequestView,
    now_us: u64,
) -> Option<Verdict> {
    let considered = match req.state {
        WorkerState::ReadingHeaders | WorkerState::GettingRequestInfo | WorkerState::Running => {
            true
        }
        WorkerState::Finishing => conf.track_finished,
        WorkerState::Idle | WorkerState::Ending | WorkerState::Booting => false,
    };
    if !considered || req.start_us == 0 {
        return None;
    }
    // A start time in the future (clock step, or a lying worker) counts as zero.
    let elapsed_us = now_us.saturating_sub(req.start_us);
    let secs = elapsed_us / 1_000_000;
    if conf.slowlog > 0
        && req.state == WorkerState::Running
        && secs >= conf.slowlog
        && mem.slow_logged != Some(req.seq)
    {
        mem.slow_logged = Some(req.seq);
        return Some(Verdict::Slow { elapsed_us });
    }
    if conf.terminate > 0 && secs >= conf.terminate && mem.terminated != Some(req.seq) {
        mem.terminated = Some(req.seq);
        return Some(Verdict::Terminate { elapsed_us });
    }
    None
}

/// `script '<script>' (request: "<METHOD> <uri>[?<query>]")` with the script's bytes
/// outside 0x20..=0x7f replaced by `.`.
pub fn describe(script: &[u8], method: &[u8], uri: &[u8], query: &[u8]) -> String {
    let script: String = script
        .iter()
        .map(|&b| {
            if (0x20..=0x7f).contains(&b) {
                b as char
            } else {
                '.'
            }
        })
        .collect();
    // The request's bytes as php-fpm prints them (through `Shown`: the logger writes
    // them back as they were).
    use crate::shown::Shown;
    let mut req = Shown(method).to_string();
    req.push(' ');
    req.push_str(&Shown(uri).to_string());
    if !query.is_empty() {
        req.push('?');
        req.push_str(&Shown(query).to_string());
    }
    format!("script '{script}' (request: \"{req}\")")
}

/// `<s>.<micro6>`.
pub fn seconds(us: u64) -> String {
    format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
}

/// Emergency restart: the times of the last `threshold` SIGSEGV/SIGBUS deaths.
#[derive(Debug, Clone, Default)]
pub struct CrashWindow {
    threshold: usize,
    interval: u64,
    times: std::collections::VecDeque<u64>,
}

impl CrashWindow {
    /// Active only if both settings are non-zero.
    pub fn new(threshold: usize, interval: u64) -> CrashWindow {
        CrashWindow {
            threshold,
            interval,
            times: std::collections::VecDeque::new(),
        }
    }

    /// A worker died of SIGSEGV or SIGBUS at `now` (seconds). `true`: the threshold is
    /// reached (every remembered death lies within the interval): reload.
    pub fn record(&mut self, now: u64) -> bool {
        if self.threshold == 0 || self.interval == 0 {
            return false;
        }
        self.times.push_back(now);
        while self.times.len() > self.threshold {
            self.times.pop_front();
        }
        let full = self.times.len() == self.threshold;
        if full
            && self
                .times
                .iter()
                .all(|&t| now.saturating_sub(t) <= self.interval)
        {
            self.times.clear();
            return true;
        }
        false
    }

    pub fn threshold(&self) -> usize {
        self.threshold
    }

    pub fn interval(&self) -> u64 {
        self.interval
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000;

    fn running(start: u64, seq: u64) -> RequestView {
        RequestView {
            state: WorkerState::Running,
            start_us: start,
            seq,
        }
    }

    #[test]
    fn period_follows_the_shortest_timeout() {
        assert_eq!(timer_period_ms(&[TimeoutConf::default()]), None);
        let t = |terminate, slowlog| TimeoutConf {
            terminate,
            slowlog,
            track_finished: false,
        };
        assert_eq!(timer_period_ms(&[t(30, 0)]), Some(10_000));
        assert_eq!(timer_period_ms(&[t(30, 0), t(0, 3)]), Some(1000));
        // 1 s / 3 = 333 ms; never below 130 ms.
        assert_eq!(timer_period_ms(&[t(1, 0)]), Some(333));
        assert_eq!(timer_period_ms(&[t(0, 0), t(10, 1)]), Some(333));
    }

    #[test]
    fn terminate_in_whole_seconds_once_per_request() {
        let c = TimeoutConf {
            terminate: 2,
            ..Default::default()
        };
        let mut m = Memory::default();
        let start = 100 * S;
        assert_eq!(
            check(&c, &mut m, &running(start, 1), start + 2 * S - 1),
            None
        );
        assert_eq!(
            check(&c, &mut m, &running(start, 1), start + 2 * S),
            Some(Verdict::Terminate { elapsed_us: 2 * S })
        );
        assert_eq!(check(&c, &mut m, &running(start, 1), start + 3 * S), None);
        // The next request of the same worker is watched again.
        assert!(check(&c, &mut m, &running(start + 3 * S, 2), start + 6 * S).is_some());
    }

    /// A hostile worker writes a sibling's slot: Running, started long ago.
    #[test]
    fn forged_slots_are_not_believed() {
        let c = TimeoutConf {
            terminate: 30,
            ..Default::default()
        };
        let owner = Owner {
            pid: 42,
            spawned_us: 1000 * S,
        };
        let forged = running(S, 5);
        let now = 5000 * S;
        // Another pid in the slot (a stale predecessor, or a claim): nothing acts on it.
        let mut m = Memory::default();
        assert_eq!(bound(&c, &owner, 43, &forged, &mut m, now), None);
        assert_eq!(bound(&c, &owner, 0, &forged, &mut m, now), None);
        // The owner's pid, a start long ago: the start the master believes is one
        // period (10 s) and the slack before its own first sight, so no kill now...
        let v = bound(&c, &owner, 42, &forged, &mut m, now);
        assert_eq!(v.map(|v| v.start_us), Some(now - 11 * S));
        assert_eq!(check(&c, &mut m, &v.unwrap_or(forged), now), None);
        // ...nor while the master has watched it for less than the timeout...
        let later = now + 18 * S;
        let v = bound(&c, &owner, 42, &forged, &mut m, later).unwrap_or(forged);
        assert_eq!(check(&c, &mut m, &v, later), None);
        // ...and never earlier than the child's spawn.
        let young = Owner {
            pid: 42,
            spawned_us: now - 2 * S,
        };
        let mut m2 = Memory::default();
        let v = bound(&c, &young, 42, &forged, &mut m2, now);
        assert_eq!(v.map(|v| v.start_us), Some(now - 2 * S));
        // The slot idle again: the first sight is forgotten.
        let idle = RequestView {
            state: WorkerState::Idle,
            ..forged
        };
        assert_eq!(bound(&c, &owner, 42, &idle, &mut m, later), None);
        assert_eq!(m.seen, None);
    }

    /// A real request is seen by the master within a period of its start: its timing
    /// is the worker's own, to the microsecond.
    #[test]
    fn real_requests_keep_their_timing() {
        let c = TimeoutConf {
            terminate: 3,
            ..Default::default()
        };
        let owner = Owner {
            pid: 7,
            spawned_us: 10 * S,
        };
        let mut m = Memory::default();
        let start = 100 * S + 123;
        // The timer runs every second (3 s / 3): first sight up to a period later.
        let mut t = start + S - 1;
        let mut verdict = None;
        while verdict.is_none() && t < start + 10 * S {
            let v = bound(&c, &owner, 7, &running(start, 1), &mut m, t);
            assert_eq!(v.map(|v| v.start_us), Some(start));
            verdict = v.and_then(|v| check(&c, &mut m, &v, t));
            t += S;
        }
        assert_eq!(
            verdict,
            Some(Verdict::Terminate {
                elapsed_us: 3 * S - 1 + S
            })
        );
    }

    #[test]
    fn states_considered() {
        let c = TimeoutConf {
            terminate: 1,
            ..Default::default()
        };
        let at = |state| RequestView {
            state,
            start_us: S,
            seq: 1,
        };
        for st in [
            WorkerState::ReadingHeaders,
            WorkerState::GettingRequestInfo,
            WorkerState::Running,
        ] {
            assert!(check(&c, &mut Memory::default(), &at(st), 10 * S).is_some());
        }
        for st in [
            WorkerState::Idle,
            WorkerState::Finishing,
            WorkerState::Ending,
        ] {
            assert!(check(&c, &mut Memory::default(), &at(st), 10 * S).is_none());
        }
        let tracked = TimeoutConf {
            track_finished: true,
            ..c
        };
        assert!(check(
            &tracked,
            &mut Memory::default(),
            &at(WorkerState::Finishing),
            10 * S
        )
        .is_some());
        // A start time from the future never fires.
        assert!(check(&c, &mut Memory::default(), &running(20 * S, 1), 10 * S).is_none());
    }

    #[test]
    fn slow_log_first_then_terminate() {
        let c = TimeoutConf {
            terminate: 2,
            slowlog: 1,
            track_finished: false,
        };
        let mut m = Memory::default();
        let r = running(S, 7);
        assert_eq!(
            check(&c, &mut m, &r, 2 * S),
            Some(Verdict::Slow { elapsed_us: S })
        );
        assert_eq!(check(&c, &mut m, &r, 2 * S + 1), None);
        // Both due in one check: slow log wins, terminate comes at the next check.
        let mut m = Memory::default();
        assert_eq!(
            check(&c, &mut m, &r, 5 * S),
            Some(Verdict::Slow { elapsed_us: 4 * S })
        );
        assert_eq!(
            check(&c, &mut m, &r, 5 * S),
            Some(Verdict::Terminate { elapsed_us: 4 * S })
        );
        // Slow log only while Running.
        let reading = RequestView {
            state: WorkerState::ReadingHeaders,
            ..r
        };
        let c2 = TimeoutConf { terminate: 0, ..c };
        assert_eq!(check(&c2, &mut Memory::default(), &reading, 5 * S), None);
    }

    #[test]
    fn description_like_php_fpm() {
        assert_eq!(
            describe(b"/srv/a\x01\xff.php", b"GET", b"/a.php", b"x=1"),
            "script '/srv/a...php' (request: \"GET /a.php?x=1\")"
        );
        assert_eq!(
            describe(b"/s.php", b"POST", b"/s.php", b""),
            "script '/s.php' (request: \"POST /s.php\")"
        );
        assert_eq!(seconds(2_000_123), "2.000123");
    }

    #[test]
    fn emergency_restart_window() {
        let mut off = CrashWindow::new(0, 10);
        assert!(!off.record(1));
        let mut w = CrashWindow::new(3, 10);
        assert!(!w.record(100));
        assert!(!w.record(105));
        assert!(w.record(110));
        // Cleared after firing.
        assert!(!w.record(111));
        assert!(!w.record(130));
        // 111 is more than 10 s before 130: still one short.
        assert!(!w.record(131));
        assert!(w.record(135));
    }
}
