//! Process-manager decisions (reference §3.3, §3.4): pure functions from a snapshot of a
//! pool and its settings to actions. The master applies them.

/// A pool's process manager (`pm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pm {
    Static,
    Dynamic,
    Ondemand,
}

impl Pm {
    /// The name php-fpm shows (status page, `-tt`).
    pub fn name(self) -> &'static str {
        match self {
            Pm::Static => "static",
            Pm::Dynamic => "dynamic",
            Pm::Ondemand => "ondemand",
        }
    }
}

/// A worker as the decision sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerView {
    pub pid: i32,
    pub idle: bool,
    /// Seconds since the epoch of the worker's start (oldest first is killed first).
    pub started: u64,
    /// Seconds since the epoch of its last state change.
    pub last_change: u64,
    /// The manager already asked it to stop.
    pub asked_to_stop: bool,
}

/// The pool's settings that matter here.
#[derive(Debug, Clone, Copy)]
pub struct PmConf {
    pub pm: Pm,
    pub max_children: usize,
    pub min_spare: usize,
    pub max_spare: usize,
    pub max_spawn_rate: usize,
    pub idle_timeout: u64,
}

/// What the manager remembers about a pool between passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PmMemory {
    pub spawn_rate: usize,
    /// The max_children warning was given in this episode.
    pub warned: bool,
    /// How often max_children was reached (status page).
    pub max_children_reached: u64,
}

impl Default for PmMemory {
    fn default() -> Self {
        PmMemory {
            spawn_rate: 1,
            warned: false,
            max_children_reached: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Spawn(usize),
    /// Stop a worker: SIGQUIT, or SIGKILL when it was asked before.
    Stop {
        pid: i32,
        kill: bool,
    },
    /// `server reached pm.max_children setting (N), consider raising it` (dynamic) or
    /// `server reached max_children setting (N), consider raising it` (ondemand).
    WarnMaxChildren {
        with_pm_prefix: bool,
    },
    /// `seems busy (...), spawning R children, there are I idle, and T total children`.
    WarnBusy {
        rate: usize,
        idle: usize,
        total: usize,
    },
}

fn oldest_idle(workers: &[WorkerView]) -> Option<&WorkerView> {
    workers.iter().filter(|w| w.idle).min_by_key(|w| w.started)
}

/// The 1-second maintenance pass of one pool.
pub fn tick(conf: &PmConf, mem: &mut PmMemory, workers: &[WorkerView], now: u64) -> Vec<Action> {
    let idle = workers.iter().filter(|w| w.idle).count();
    let total = workers.len();
    match conf.pm {
        Pm::Static => Vec::new(),
        Pm::Ondemand => {
            let Some(w) = oldest_idle(workers) else {
                return Vec::new();
            };
            if w.last_change < now.saturating_sub(conf.idle_timeout) {
                vec![Action::Stop {
                    pid: w.pid,
                    kill: w.asked_to_stop,
                }]
            } else {
                Vec::new()
            }
        }
        Pm::Dynamic => {
            if idle > conf.max_spare {
                mem.spawn_rate = 1;
                return match oldest_idle(workers) {
                    Some(w) => vec![Action::Stop {
                        pid: w.pid,
                        kill: w.asked_to_stop,
                    }],
                    None => Vec::new(),
                };
            }
            if idle < conf.min_spare {
                let mut out = Vec::new();
                let room = conf.max_children.saturating_sub(total);
                let n = mem.spawn_rate.min(conf.min_spare - idle).min(room);
                if total >= conf.max_children || n == 0 {
                    if !mem.warned {
                        out.push(Action::WarnMaxChildren {
                            with_pm_prefix: true,
                        });
                        mem.max_children_reached += 1;
                        mem.warned = true;
                    }
                    mem.spawn_rate = 1;
                    return out;
                }
                if mem.spawn_rate >= 8 {
                    out.push(Action::WarnBusy {
                        rate: mem.spawn_rate,
                        idle,
                        total,
                    });
                }
                out.push(Action::Spawn(n));
                mem.warned = false;
                if mem.spawn_rate < conf.max_spawn_rate {
                    mem.spawn_rate *= 2;
                }
                return out;
            }
            mem.spawn_rate = 1;
            Vec::new()
        }
    }
}

/// Ondemand: a connection is waiting on the listening socket.
pub fn on_connection(conf: &PmConf, mem: &mut PmMemory, workers: &[WorkerView]) -> Vec<Action> {
    if workers.len() >= conf.max_children {
        if !mem.warned {
            mem.warned = true;
            mem.max_children_reached += 1;
            return vec![Action::WarnMaxChildren {
                with_pm_prefix: false,
            }];
        }
        return Vec::new();
    }
    mem.warned = false;
    if workers.iter().any(|w| w.idle) {
        return Vec::new();
    }
    vec![Action::Spawn(1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(pm: Pm) -> PmConf {
        PmConf {
            pm,
            max_children: 3,
            min_spare: 1,
            max_spare: 2,
            max_spawn_rate: 32,
            idle_timeout: 2,
        }
    }

    fn w(pid: i32, idle: bool, started: u64, last_change: u64) -> WorkerView {
        WorkerView {
            pid,
            idle,
            started,
            last_change,
            asked_to_stop: false,
        }
    }

    /// Replays the trace of reference §3.3: max_children 3, start 1, min 1, max 2, five
    /// slow requests: one more worker per second while busy, then the warning once.
    #[test]
    fn dynamic_grows_one_per_second_then_warns_once() {
        let c = conf(Pm::Dynamic);
        let mut m = PmMemory::default();
        let mut ws = vec![w(1, false, 0, 0)];
        assert_eq!(tick(&c, &mut m, &ws, 1), vec![Action::Spawn(1)]);
        ws.push(w(2, false, 1, 1));
        assert_eq!(tick(&c, &mut m, &ws, 2), vec![Action::Spawn(1)]);
        ws.push(w(3, false, 2, 2));
        assert_eq!(
            tick(&c, &mut m, &ws, 3),
            vec![Action::WarnMaxChildren {
                with_pm_prefix: true
            }]
        );
        assert_eq!(tick(&c, &mut m, &ws, 4), vec![]);
        assert_eq!(m.max_children_reached, 1);
        // All idle now: one idle worker, the oldest, removed per pass.
        let ws: Vec<_> = ws.iter().map(|x| WorkerView { idle: true, ..*x }).collect();
        assert_eq!(
            tick(&c, &mut m, &ws, 5),
            vec![Action::Stop {
                pid: 1,
                kill: false
            }]
        );
        let mut ws2 = ws[1..].to_vec();
        assert_eq!(tick(&c, &mut m, &ws2, 6), vec![]);
        ws2[0].asked_to_stop = true;
        ws2.push(w(9, true, 0, 0));
        assert_eq!(
            tick(&c, &mut m, &ws2, 7),
            vec![Action::Stop {
                pid: 9,
                kill: false
            }]
        );
    }

    #[test]
    fn dynamic_spawn_rate_doubles_and_warns_busy() {
        let c = PmConf {
            max_children: 100,
            min_spare: 50,
            max_spare: 60,
            ..conf(Pm::Dynamic)
        };
        let mut m = PmMemory::default();
        let mut ws: Vec<WorkerView> = Vec::new();
        let mut spawned = Vec::new();
        for t in 0..6 {
            for a in tick(&c, &mut m, &ws, t) {
                match a {
                    Action::Spawn(n) => {
                        spawned.push(n);
                        for i in 0..n {
                            ws.push(w((ws.len() + i) as i32, false, t, t));
                        }
                    }
                    Action::WarnBusy { rate, .. } => assert!(rate >= 8),
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        assert_eq!(spawned, vec![1, 2, 4, 8, 16, 32]);
    }

    #[test]
    fn ondemand_spawns_when_no_idle_and_reaps_after_timeout() {
        let c = conf(Pm::Ondemand);
        let mut m = PmMemory::default();
        assert_eq!(on_connection(&c, &mut m, &[]), vec![Action::Spawn(1)]);
        let ws = vec![w(1, true, 10, 10)];
        assert_eq!(on_connection(&c, &mut m, &ws), vec![]);
        // Idle since 10, timeout 2: not yet at 12, gone at 13 (whole seconds, strict).
        assert_eq!(tick(&c, &mut m, &ws, 12), vec![]);
        assert_eq!(
            tick(&c, &mut m, &ws, 13),
            vec![Action::Stop {
                pid: 1,
                kill: false
            }]
        );
        let full = vec![w(1, false, 0, 0), w(2, false, 0, 0), w(3, false, 0, 0)];
        assert_eq!(
            on_connection(&c, &mut m, &full),
            vec![Action::WarnMaxChildren {
                with_pm_prefix: false
            }]
        );
        assert_eq!(on_connection(&c, &mut m, &full), vec![]);
        assert_eq!(m.max_children_reached, 1);
    }

    #[test]
    fn static_does_nothing() {
        let c = conf(Pm::Static);
        let mut m = PmMemory::default();
        assert!(tick(&c, &mut m, &[w(1, true, 0, 0)], 100).is_empty());
    }
}
