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
        WorkerState::Idle | WorkerState::Ending => false,
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
    let mut req = String::from_utf8_lossy(method).into_owned();
    req.push(' ');
    req.push_str(&String::from_utf8_lossy(uri));
    if !query.is_empty() {
        req.push('?');
        req.push_str(&String::from_utf8_lossy(query));
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
