//! The master's children: a pid → child table, spawning a worker from a [`ChildSpec`]
//! (which generation, which pool), and reaping (reference §3.2, §3.4, §3.6).
use super::generation::{BootState, GenerationId, PoolRuntime, BOOT_FAILURES_MAX};
use super::output::{self, Output};
use super::Supervisor;
use crate::capture::{Capture, Stream};
use crate::log::Level;
use crate::master::listen::Listener;
use crate::pool::Pool;
use crate::scoreboard::{now_us, Scoreboard, WorkerState};
use crate::{signals, timeouts, title, worker};
use rfpm_core::lifecycle::Intent;
use rfpm_sys::fd::{self, Stdio};
use rfpm_sys::process::{self, Exit, Fork, Pid};
use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

/// A worker the master started.
pub struct Child {
    pub pid: Pid,
    pub generation: GenerationId,
    pub pool: usize,
    /// Index of its scoreboard slot.
    pub slot: usize,
    pub started: Instant,
    /// Seconds since the epoch of its start (the process manager stops the oldest).
    pub started_wall: u64,
    /// The process manager asked it to stop.
    pub asked_to_stop: bool,
    /// `pm.max_memory`: passes in a row it was seen over the limit while busy, and
    /// whether it was asked to finish because of it (it is replaced like any exit).
    pub memory_over: u32,
    pub recycling: bool,
    /// `request_terminate_timeout`: the master terminated it.
    pub terminated: bool,
    /// catch_workers_output: the read ends of the worker's stdout and stderr.
    pub output: Option<Output>,
    /// Which of its requests were already logged as slow or terminated.
    pub timeouts: timeouts::Memory,
}

/// The children, by pid (so every walk over them is in pid order, deterministic).
#[derive(Default)]
pub struct Children(BTreeMap<Pid, Child>);

impl Children {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get_mut(&mut self, pid: Pid) -> Option<&mut Child> {
        self.0.get_mut(&pid)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Child> {
        self.0.values()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Child> {
        self.0.values_mut()
    }

    /// Whether `pid` is a child the master started (and has not reaped).
    pub fn contains(&self, pid: Pid) -> bool {
        self.0.contains_key(&pid)
    }

    pub fn pids(&self) -> Vec<Pid> {
        self.0.keys().copied().collect()
    }

    /// The children of one pool of one generation.
    pub fn of_pool(&self, generation: GenerationId, pool: usize) -> impl Iterator<Item = &Child> {
        self.iter()
            .filter(move |c| c.generation == generation && c.pool == pool)
    }

    pub(super) fn insert(&mut self, c: Child) {
        self.0.insert(c.pid, c);
    }

    fn remove(&mut self, pid: Pid) -> Option<Child> {
        self.0.remove(&pid)
    }

    /// A forked worker lets go of the other workers' output pipes.
    fn forget_outputs(&mut self) {
        for c in self.0.values_mut() {
            c.output = None;
        }
    }
}

/// The child to start: which pool of which generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildSpec {
    pub generation: GenerationId,
    pub pool: usize,
    /// Log `child N started` as a notice (a replacement), not at debug level.
    pub announce: bool,
}

impl ChildSpec {
    pub fn new(generation: GenerationId, pool: usize, announce: bool) -> ChildSpec {
        ChildSpec {
            generation,
            pool,
            announce,
        }
    }
}

/// Why a worker was not started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpawnError {
    /// `process.max` (or the pool's slots) reached, or no such pool: not an error of
    /// the master.
    Limit,
    /// fork() failed.
    Failed,
}

/// What a new worker keeps of the master's resources: its pool (with its socket,
/// scoreboard and access log) and the scoreboard whose status it shows. Everything
/// else the master holds is closed or unmapped in the worker.
struct WorkerStart {
    spec: Pool,
    listener: Listener,
    scoreboard: Scoreboard,
    access_log: Option<OwnedFd>,
    /// The status page's owner pool (`pm.status_listen`), when not the worker's own.
    status_owner: Option<(Scoreboard, conf::Bytes, &'static str)>,
    /// The scoreboards of that pool's draining generations (listed on its page).
    draining: Vec<Scoreboard>,
}

impl WorkerStart {
    /// Runs the worker; never returns.
    fn run(self, slot: usize) -> ! {
        let status = match &self.status_owner {
            Some((sb, name, pm)) => worker::StatusSource {
                sb,
                pool: name,
                pm,
                draining: &self.draining,
            },
            None => worker::StatusSource {
                sb: &self.scoreboard,
                pool: &self.spec.name,
                pm: self.spec.pm_name(),
                draining: &self.draining,
            },
        };
        worker::main(
            &self.spec,
            &self.listener,
            &self.scoreboard,
            slot,
            status,
            self.access_log.as_ref().map(AsFd::as_fd),
        )
    }
}

impl Supervisor {
    /// Starts a worker for `spec`. Returns its pid.
    pub(super) fn spawn(&mut self, spec: ChildSpec) -> Result<Pid, SpawnError> {
        // Only the current generation gets new workers.
        if spec.generation != self.generations.current().id {
            return Err(SpawnError::Limit);
        }
        let pool = spec.pool;
        let Some(p) = self.generations.pool(spec.generation, pool) else {
            return Err(SpawnError::Limit);
        };
        // Worker mode: backing off after failed boots, or given up until a reload.
        if p.boot.blocks_spawn() {
            return Err(SpawnError::Limit);
        }
        // process.max counts the workers of all pools (reference §3.4).
        let process_max = self.global.process_max.get();
        if process_max > 0 && self.children.len() >= process_max {
            if !self.process_max_warned {
                self.process_max_warned = true;
                crate::warning!("The maximum number of processes has been reached. Please review your configuration and consider raising 'process.max'");
            }
            return Err(SpawnError::Limit);
        }
        // pm.max_children counts the pool's workers of every generation: a reload
        // never runs more workers than the operator planned for (new ones start as
        // draining ones leave).
        let alive = self
            .children
            .iter()
            .filter(|c| {
                c.generation == spec.generation && c.pool == pool
                    || c.generation != spec.generation
                        && self
                            .generations
                            .info(c.generation, c.pool)
                            .is_some_and(|i| *i.name == p.spec.name)
            })
            .count();
        if alive >= p.spec.max_children.max(1) {
            return Err(SpawnError::Limit);
        }
        // A free scoreboard slot, by the master's own records.
        let taken: Vec<usize> = self
            .children
            .of_pool(spec.generation, pool)
            .map(|c| c.slot)
            .collect();
        let Some(slot) = (0..p.scoreboard.slot_count()).find(|i| !taken.contains(i)) else {
            return Err(SpawnError::Limit);
        };
        if let Some(s) = p.scoreboard.slot(slot) {
            s.reset(now_us());
        }
        // A worker-mode worker's output is captured during its boot whatever
        // catch_workers_output says (see `worker::app`): a failed boot's PHP error
        // reaches this log.
        let pipes = if p.spec.catch_workers_output || p.spec.worker_script.is_some() {
            match (fd::capture_pipe(), fd::capture_pipe()) {
                (Ok(o), Ok(e)) => Some((o, e)),
                (Err(err), _) | (_, Err(err)) => {
                    crate::error_sys!(err, "failed to create the output pipes");
                    None
                }
            }
        } else {
            None
        };
        // Signals wait while we fork: a new child must never run the master's handler
        // (it would write into the master's self-pipe).
        signals::mask(&signals::FORK_SIGNALS, true);
        let master = process::getpid();
        let forked = process::fork_single_threaded();
        if let Ok(Fork::Child) = forked {
            signals::become_worker();
            // The master's death (even by SIGKILL) is a SIGQUIT to the worker: it
            // finishes its request and exits rather than serve on as an orphan.
            if !process::die_with_parent(libc::SIGQUIT, master).unwrap_or(true) {
                process::exit_now(0);
            }
        }
        signals::mask(&signals::FORK_SIGNALS, false);
        match forked {
            Ok(Fork::Child) => {
                if let Some(((_, out_w), (_, err_w))) = &pipes {
                    let _ = fd::dup_onto(out_w.as_fd(), Stdio::Out.borrow());
                    let _ = fd::dup_onto(err_w.as_fd(), Stdio::Err.borrow());
                }
                drop(pipes);
                self.keep_for_worker(pool).run(slot)
            }
            Ok(Fork::Parent(pid)) => {
                self.adopt(spec, slot, pid, pipes);
                Ok(pid)
            }
            Err(e) if e.raw_os_error() == Some(libc::EDEADLK) => {
                // fork_single_threaded refused: a forked copy of a multi-threaded master
                // could deadlock (an extension that starts threads at module start-up).
                crate::error!(
                    "fork() refused: the master runs {} threads, a worker forked from it could deadlock",
                    process::thread_count().unwrap_or(0)
                );
                Err(SpawnError::Failed)
            }
            Err(e) => {
                crate::error_sys!(e, "fork() failed");
                Err(SpawnError::Failed)
            }
        }
    }

    /// The master's side of a new worker: its slot's pid, its output pipes watched, its
    /// entry in the table.
    fn adopt(
        &mut self,
        spec: ChildSpec,
        slot: usize,
        pid: Pid,
        pipes: Option<((OwnedFd, OwnedFd), (OwnedFd, OwnedFd))>,
    ) {
        let pool = spec.pool;
        let Some(p) = self.generations.pool(spec.generation, pool) else {
            return;
        };
        if let Some(s) = p.scoreboard.slot(slot) {
            s.pid.store(pid, Relaxed);
        }
        let name = p.spec.name.clone();
        let capture_max =
            output::max_captured_text(&p.spec.name, p.spec.decorate_workers_output, pid);
        let output = pipes.map(|((out_r, _), (err_r, _))| Output {
            stdout: self.watch_output(out_r, pid, Stream::Stdout),
            stderr: self.watch_output(err_r, pid, Stream::Stderr),
            capture: Capture::new(capture_max),
        });
        self.children.insert(Child {
            pid,
            generation: spec.generation,
            pool,
            slot,
            started: Instant::now(),
            started_wall: now_us() / 1_000_000,
            asked_to_stop: false,
            memory_over: 0,
            recycling: false,
            terminated: false,
            output,
            timeouts: timeouts::Memory::default(),
        });
        self.process_max_warned = false;
        if spec.announce {
            crate::notice!("[pool {name}] child {pid} started");
        } else {
            crate::debug!("[pool {name}] child {pid} started");
        }
    }

    /// In a new worker, right after fork: keeps its pool and the status owner's
    /// scoreboard, and closes what belongs to the master (the other pools' sockets,
    /// scoreboards and access logs, the event loop, the self-pipe, the other workers'
    /// output pipes), like php-fpm's workers, which hold none of them either.
    fn keep_for_worker(&mut self, pool: usize) -> WorkerStart {
        self.children.forget_outputs();
        self.signal_pipe = None;
        self.epoll.close();
        // The admin listener and its connections are the master's alone.
        self.admin = None;
        // The worker's pool is one of the current generation (checked by `spawn`); of the
        // draining generations it keeps only the scoreboards its status page lists.
        let owner_name = {
            let pools = &self.generations.current().pools;
            pools
                .get(status_owner(pools, pool))
                .map(|p| p.spec.name.clone())
                .unwrap_or_default()
        };
        let (current, draining) = self.generations.take_for_worker(&owner_name);
        let owner = status_owner(&current, pool);
        let mut pools: Vec<Option<PoolRuntime>> = current.into_iter().map(Some).collect();
        let status_owner = if owner == pool {
            None
        } else {
            pools.get_mut(owner).and_then(Option::take).map(|o| {
                let pm = o.spec.pm_name();
                (o.scoreboard, o.spec.name, pm)
            })
        };
        // `pool` is an index of the generation (checked by `spawn`).
        let mine = pools.get_mut(pool).and_then(Option::take);
        drop(pools);
        let Some(mine) = mine else {
            process::exit_now(crate::cli::EX_SOFTWARE);
        };
        if let Some(area) = self.title_area {
            title::set(area, &format!("php-fpm: pool {}", mine.spec.name));
        }
        WorkerStart {
            spec: mine.spec,
            listener: mine.listener,
            scoreboard: mine.scoreboard,
            access_log: mine.access_log,
            status_owner,
            draining,
        }
    }

    /// SIGCHLD: reaps every exited child, logs how it ended, frees its slot, counts
    /// crashes for the emergency restart and replaces it while the master serves.
    pub(super) fn reap(&mut self) {
        while let Some((pid, exit)) = process::wait_any() {
            if !self.children.0.contains_key(&pid) {
                crate::warning!(
                    "unknown child ({pid}) exited {} - potentially a bug or pre exec child (e.g. s6-notifyoncheck)",
                    how(exit)
                );
                continue;
            }
            // What the worker said last comes before its exit line.
            self.drain_output(pid, Stream::Stdout, output::READS_AT_EXIT);
            self.drain_output(pid, Stream::Stderr, output::READS_AT_EXIT);
            let Some(child) = self.children.remove(pid) else {
                continue;
            };
            let pool = child.pool;
            let name = match self.generations.info(child.generation, pool) {
                Some(p) => {
                    // The slot is free: the status page no longer lists the worker.
                    if let Some(s) = p.scoreboard.and_then(|sb| sb.slot(child.slot)) {
                        s.pid.store(0, Relaxed);
                        s.set_state(WorkerState::Idle, now_us());
                    }
                    p.name.to_string()
                }
                None => String::new(),
            };
            let current = self.generations.current().id;
            if child.generation != current {
                // A worker of a draining generation: asked to finish by the reload.
                let after = after_of(child.started);
                self.drained(child, &name, exit, &after);
                continue;
            }
            let after = after_of(child.started);
            if self.life.state().spawns() {
                self.count_end(&child, exit);
            }
            if child.asked_to_stop
                && exit
                    != (Exit::Signal {
                        sig: libc::SIGKILL,
                        core: false,
                    })
            {
                crate::debug!("[pool {name}] child {pid} has been killed by the process management after {after} seconds from start");
                continue;
            }
            let level = if !self.life.state().spawns() {
                Level::Debug
            } else {
                match exit {
                    Exit::Code(0)
                    | Exit::Signal {
                        sig: libc::SIGQUIT, ..
                    } => Level::Notice,
                    _ => Level::Warning,
                }
            };
            crate::log_at!(
                level,
                "[pool {name}] child {pid} exited {} after {after} seconds from start",
                how(exit)
            );
            if !self.worker_exit(&child, &name, exit) {
                continue;
            }
            let crashed = matches!(
                exit,
                Exit::Signal {
                    sig: libc::SIGSEGV | libc::SIGBUS,
                    ..
                }
            );
            if self.life.state().spawns() && crashed && self.crash.record(now_us() / 1_000_000) {
                crate::warning!(
                    "failed processes threshold ({} in {} sec) is reached, initiating reload",
                    self.crash.threshold(),
                    self.crash.interval()
                );
                self.intend(Intent::Reload { announce: false });
            }
            if self.life.state().spawns() {
                let _ = self.spawn(ChildSpec::new(child.generation, pool, true));
            }
        }
    }
}

impl Supervisor {
    /// Counts a worker of the current generation that ended while the master serves,
    /// by reason (the admin listener's `rfpm_worker_restarts_total`).
    fn count_end(&mut self, child: &Child, exit: Exit) {
        use rfpm_core::metrics::{end_reason, EndReason, Ending};
        let Some(p) = self.generations.current_mut().pools.get_mut(child.pool) else {
            return;
        };
        let by_master = if child.recycling {
            Some(EndReason::Memory)
        } else if child.terminated {
            Some(EndReason::TerminateTimeout)
        } else if child.asked_to_stop {
            Some(EndReason::Idle)
        } else {
            None
        };
        let (signaled, code) = match exit {
            Exit::Code(c) => (false, c),
            Exit::Signal { .. } => (true, 0),
        };
        let requests = p
            .scoreboard
            .slot(child.slot)
            .map_or(0, |s| s.requests.load(Relaxed));
        let reason = end_reason(&Ending {
            by_master,
            signaled,
            code,
            requests,
            max_requests: p.spec.max_requests,
        });
        let n = &mut p.ended[reason.index()];
        *n = n.saturating_add(1);
    }

    /// Worker mode: what a worker's exit says of its application's boot (the exit codes
    /// of `worker::app`), logged; a failed boot delays the next one (100 ms, doubled,
    /// at most 5 s) and after [`BOOT_FAILURES_MAX`] in a row the pool starts no worker
    /// until the next reload. `false`: the worker is not replaced now.
    fn worker_exit(&mut self, child: &Child, name: &str, exit: Exit) -> bool {
        let pool = child.pool;
        let Some(p) = self.generations.current_mut().pools.get_mut(pool) else {
            return true;
        };
        let Some(script) = p.spec.worker_script.clone() else {
            return true;
        };
        let pid = child.pid;
        match exit {
            Exit::Code(worker::BOOT_FAILED) => {
                p.boot.failures += 1;
                let n = p.boot.failures;
                if n >= BOOT_FAILURES_MAX {
                    p.boot.not_spawning = true;
                    crate::error!("[pool {name}] the worker script '{script}' failed to boot {n} times in a row: no worker is started for this pool until the next reload");
                    return false;
                }
                let delay = BootState::delay(n);
                p.boot.retry_pending = true;
                crate::warning!(
                    "[pool {name}] child {pid}: the worker script '{script}' failed to boot ({n} in a row), next boot in {} ms",
                    delay.as_millis()
                );
                let timer = super::event::Timer::BootRetry(u32::try_from(pool).unwrap_or(u32::MAX));
                self.deadlines.arm(timer, Instant::now() + delay);
                false
            }
            Exit::Code(worker::FATAL_IN_REQUEST) => {
                p.boot.failures = 0;
                crate::warning!("[pool {name}] child {pid}: a fatal error ended the worker script '{script}', the application boots again in a new worker");
                true
            }
            _ => {
                p.boot.failures = 0;
                true
            }
        }
    }

    /// Worker mode: the pools whose next boot is due start their workers again.
    pub(super) fn boot_retries(&mut self, now: Instant) {
        let id = self.generations.current().id;
        for pool in 0..self.generations.current().pools.len() {
            let timer = super::event::Timer::BootRetry(u32::try_from(pool).unwrap_or(u32::MAX));
            if !self.deadlines.take_if_due(timer, now) {
                continue;
            }
            let static_pool = {
                let p = &mut self.generations.current_mut().pools[pool];
                p.boot.retry_pending = false;
                p.spec.pm == crate::pool::Pm::Static
            };
            if !self.life.state().spawns() {
                continue;
            }
            // A static pool is filled up again; the others follow their manager.
            let _ = self.spawn(ChildSpec::new(id, pool, true));
            while static_pool && self.spawn(ChildSpec::new(id, pool, true)).is_ok() {}
        }
    }

    /// A worker of a draining generation is gone: logged at debug level (it was asked to
    /// finish, as php-fpm's workers are during a reload); the generation is forgotten
    /// with its last worker; its pool in the current generation may start a worker in
    /// its place (pm.max_children counts both).
    fn drained(&mut self, child: Child, name: &str, exit: Exit, after: &str) {
        let pid = child.pid;
        crate::debug!(
            "[pool {name}] child {pid} exited {} after {after} seconds from start",
            how(exit)
        );
        let id = child.generation;
        if !self.children.iter().any(|c| c.generation == id) {
            self.generations.retire(id);
            self.deadlines.disarm(super::event::Timer::Drain(id));
        }
        if !self.life.state().spawns() {
            return;
        }
        let current = self.generations.current();
        let Some(pool) = current.pools.iter().position(|p| p.spec.name == name) else {
            return;
        };
        let p = &current.pools[pool];
        // A static pool is kept at pm.max_children; the others follow their manager.
        if p.spec.pm == crate::pool::Pm::Static
            && self.children.of_pool(current.id, pool).count() < p.spec.max_children
        {
            let _ = self.spawn(ChildSpec::new(current.id, pool, false));
        }
    }
}

/// `S.uuuuuu` seconds since `started`.
fn after_of(started: Instant) -> String {
    let elapsed = started.elapsed();
    format!("{}.{:06}", elapsed.as_secs(), elapsed.subsec_micros())
}

/// The pool whose status page pool `i` shows: its own, or for a hidden
/// `pm.status_listen` pool the owner's (reference §9.4).
fn status_owner(pools: &[PoolRuntime], i: usize) -> usize {
    pools
        .get(i)
        .and_then(|p| p.spec.shared)
        .filter(|&o| o < pools.len())
        .unwrap_or(i)
}

/// `with code N` / `on signal N (SIGNAME[ - core dumped])`.
fn how(exit: Exit) -> String {
    match exit {
        Exit::Code(c) => format!("with code {c}"),
        Exit::Signal { sig, core } => {
            format!(
                "on signal {sig} ({}{})",
                process::signal_name(sig),
                if core { " - core dumped" } else { "" }
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_descriptions() {
        assert_eq!(how(Exit::Code(0)), "with code 0");
        assert_eq!(
            how(Exit::Signal {
                sig: libc::SIGSEGV,
                core: true
            }),
            "on signal 11 (SIGSEGV - core dumped)"
        );
    }
}
