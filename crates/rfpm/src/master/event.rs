//! What wakes the master: epoll tokens that name their source, and a heap of deadlines.
//!
//! A [`Token`] is encoded into epoll's 64-bit user data and decoded back; a value that
//! does not decode (it cannot happen, but the loop must not trust arithmetic) is
//! ignored. [`Deadlines`] holds the master's timers; a timer armed "for the next
//! wake-up" is neither counted in the wait's timeout nor due until the loop has woken
//! once more (php-fpm's `process_control_timeout = 0`: due at the next wake-up, whatever
//! wakes the master, at most a second later).
use crate::capture::Stream;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

/// A source of events in the master's epoll set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token {
    /// The signal handler's self-pipe.
    Signals,
    /// An ondemand pool's listening socket has a waiting connection.
    Listen { generation: u32, pool: u32 },
    /// A worker wrote into its stdout or stderr pipe (`catch_workers_output`).
    Output { pid: i32, stream: Stream },
    /// The admin listener has a waiting connection.
    Admin,
    /// An admin connection can be read (or written, while an answer waits).
    AdminConn { id: u32 },
}

const KIND_SIGNALS: u64 = 1;
const KIND_LISTEN: u64 = 2;
const KIND_OUTPUT: u64 = 3;
const KIND_ADMIN: u64 = 4;
const KIND_ADMIN_CONN: u64 = 5;

impl Token {
    /// The 64 bits epoll carries: kind in the top byte, then the fields.
    pub fn encode(self) -> u64 {
        match self {
            Token::Signals => KIND_SIGNALS << 56,
            Token::Listen { generation, pool } => {
                (KIND_LISTEN << 56) | (u64::from(generation & 0x00ff_ffff) << 32) | u64::from(pool)
            }
            Token::Output { pid, stream } => {
                let pid = u64::from(pid.unsigned_abs());
                (KIND_OUTPUT << 56) | (pid << 1) | u64::from(stream == Stream::Stderr)
            }
            Token::Admin => KIND_ADMIN << 56,
            Token::AdminConn { id } => (KIND_ADMIN_CONN << 56) | u64::from(id),
        }
    }

    /// The token epoll gave back; `None` for a value no token encodes to.
    pub fn decode(v: u64) -> Option<Token> {
        match v >> 56 {
            KIND_SIGNALS if v == KIND_SIGNALS << 56 => Some(Token::Signals),
            KIND_LISTEN => Some(Token::Listen {
                generation: u32::try_from((v >> 32) & 0x00ff_ffff).ok()?,
                pool: u32::try_from(v & 0xffff_ffff).ok()?,
            }),
            KIND_OUTPUT => {
                let low = v & ((1 << 56) - 1);
                let stream = if low & 1 == 1 {
                    Stream::Stderr
                } else {
                    Stream::Stdout
                };
                Some(Token::Output {
                    pid: i32::try_from(low >> 1).ok()?,
                    stream,
                })
            }
            KIND_ADMIN if v == KIND_ADMIN << 56 => Some(Token::Admin),
            KIND_ADMIN_CONN => Some(Token::AdminConn {
                id: u32::try_from(v & ((1 << 56) - 1)).ok()?,
            }),
            _ => None,
        }
    }
}

/// The master's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// Once a second: status figures and the process manager's pass.
    Tick,
    /// The request-timeout check (slow log, terminate), when a pool uses one.
    RequestTimeouts,
    /// The periodic STATUS report to systemd.
    SystemdReport,
    /// `process_control_timeout` of a stop: signal the workers harder.
    Escalation,
    /// `process_control_timeout` of a draining generation: signal its workers harder.
    Drain(u32),
    /// Worker mode: the next boot of pool N after failed ones.
    BootRetry(u32),
}

#[derive(Debug, Clone, Copy)]
struct Armed {
    at: Instant,
    /// Which arming this is (older heap entries of the timer are stale).
    seq: u64,
    /// Armed for the next wake-up: not due in the current pass.
    fresh: bool,
}

/// Deadlines of the master's timers, a min-heap with lazy removal: re-arming or
/// disarming a timer leaves its old entry in the heap, skipped when it surfaces.
#[derive(Debug, Default)]
pub struct Deadlines {
    heap: BinaryHeap<Reverse<(Instant, u64, Timer)>>,
    armed: HashMap<Timer, Armed>,
    seq: u64,
}

/// The longest the loop sleeps: it wakes at least once a second.
const MAX_WAIT: Duration = Duration::from_secs(1);

impl Deadlines {
    pub fn new() -> Deadlines {
        Deadlines::default()
    }

    fn push(&mut self, timer: Timer, at: Instant, fresh: bool) {
        self.seq += 1;
        self.armed.insert(
            timer,
            Armed {
                at,
                seq: self.seq,
                fresh,
            },
        );
        self.heap.push(Reverse((at, self.seq, timer)));
        // Stale entries are dropped when they surface; bound them anyway.
        if self.heap.len() > 64 {
            self.compact();
        }
    }

    fn compact(&mut self) {
        let live: Vec<_> = self
            .armed
            .iter()
            .map(|(&t, a)| Reverse((a.at, a.seq, t)))
            .collect();
        self.heap = live.into();
    }

    /// Arms (or re-arms) `timer` for `at`.
    pub fn arm(&mut self, timer: Timer, at: Instant) {
        self.push(timer, at, false);
    }

    /// Arms `timer` for `at`, but not before the loop's next wake-up.
    pub fn arm_after_wakeup(&mut self, timer: Timer, at: Instant) {
        self.push(timer, at, true);
    }

    pub fn disarm(&mut self, timer: Timer) {
        self.armed.remove(&timer);
    }

    #[cfg(test)]
    pub fn is_armed(&self, timer: Timer) -> bool {
        self.armed.contains_key(&timer)
    }

    /// The loop woke up: timers armed for the next wake-up count from now on.
    pub fn woke_up(&mut self) {
        for a in self.armed.values_mut() {
            a.fresh = false;
        }
    }

    /// How long the loop may sleep: until the earliest deadline that counts, at most
    /// a second, rounded up to whole milliseconds (waking early would only loop).
    pub fn timeout_ms(&mut self, now: Instant) -> i32 {
        let mut next = None::<Instant>;
        while let Some(Reverse((at, seq, timer))) = self.heap.peek().copied() {
            match self.armed.get(&timer) {
                Some(a) if a.seq == seq => {
                    if a.fresh {
                        // Not counted; look at the others (rare: scan what is armed).
                        next = self.armed.values().filter(|a| !a.fresh).map(|a| a.at).min();
                    } else {
                        next = Some(at);
                    }
                    break;
                }
                _ => {
                    self.heap.pop();
                }
            }
        }
        let wait = next.map_or(MAX_WAIT, |at| {
            at.saturating_duration_since(now).min(MAX_WAIT)
        });
        i32::try_from(wait.as_micros().div_ceil(1000)).unwrap_or(1000)
    }

    /// If `timer` is armed, counts in this pass and is due at `now`: disarms it and
    /// says so.
    pub fn take_if_due(&mut self, timer: Timer, now: Instant) -> bool {
        match self.armed.get(&timer) {
            Some(a) if !a.fresh && a.at <= now => {
                self.armed.remove(&timer);
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        for t in [
            Token::Signals,
            Token::Listen {
                generation: 3,
                pool: 7,
            },
            Token::Listen {
                generation: 0x00ff_ffff,
                pool: u32::MAX,
            },
            Token::Output {
                pid: 4_194_304,
                stream: Stream::Stderr,
            },
            Token::Output {
                pid: 1,
                stream: Stream::Stdout,
            },
            Token::Admin,
            Token::AdminConn { id: 0 },
            Token::AdminConn { id: u32::MAX },
        ] {
            assert_eq!(Token::decode(t.encode()), Some(t), "{t:?}");
        }
        assert_eq!(Token::decode(0), None);
        assert_eq!(Token::decode(u64::MAX), None);
        assert_eq!(Token::decode((KIND_SIGNALS << 56) | 5), None);
    }

    #[test]
    fn the_earliest_deadline_sets_the_timeout() {
        let now = Instant::now();
        let mut d = Deadlines::new();
        assert_eq!(d.timeout_ms(now), 1000);
        d.arm(Timer::Tick, now + Duration::from_millis(800));
        d.arm(Timer::RequestTimeouts, now + Duration::from_micros(130_001));
        assert_eq!(d.timeout_ms(now), 131);
        // Re-arming moves it: the stale entry is skipped.
        d.arm(Timer::RequestTimeouts, now + Duration::from_millis(900));
        assert_eq!(d.timeout_ms(now), 800);
        d.disarm(Timer::Tick);
        assert_eq!(d.timeout_ms(now), 900);
        assert!(!d.take_if_due(Timer::RequestTimeouts, now));
        assert!(d.take_if_due(Timer::RequestTimeouts, now + Duration::from_secs(1)));
        assert!(!d.is_armed(Timer::RequestTimeouts));
        assert_eq!(d.timeout_ms(now), 1000);
    }

    #[test]
    fn a_timer_for_the_next_wakeup_waits_one_pass() {
        let now = Instant::now();
        let mut d = Deadlines::new();
        d.arm(Timer::Tick, now + Duration::from_millis(500));
        // process_control_timeout = 0: due now, but only after the next wake-up.
        d.arm_after_wakeup(Timer::Escalation, now);
        assert!(!d.take_if_due(Timer::Escalation, now));
        assert_eq!(d.timeout_ms(now), 500);
        d.woke_up();
        assert_eq!(d.timeout_ms(now), 0);
        assert!(d.take_if_due(Timer::Escalation, now));
    }

    #[test]
    fn stale_entries_stay_bounded() {
        let now = Instant::now();
        let mut d = Deadlines::new();
        for i in 0..10_000u64 {
            d.arm(Timer::Tick, now + Duration::from_millis(i));
        }
        assert!(d.heap.len() <= 65);
        assert_eq!(d.timeout_ms(now), 1000);
    }
}
