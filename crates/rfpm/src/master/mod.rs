//! The master: one thread, one event loop. It owns the listening sockets, forks the
//! workers, reaps and replaces them, and reacts to signals (reference §3, §4.1).
pub mod listen;

use crate::capture::{self, Capture, Stream};
use crate::log::Level;
use crate::master::listen::Listener;
use crate::pm::{self, PmMemory, WorkerView};
use crate::pool::{Pm, Pool};
use crate::scoreboard::{now_us, Scoreboard, WorkerState};
use crate::timeouts::{self, CrashWindow};
use crate::{signals, systemd, title, worker};
use rfpm_core::lifecycle::{Effect, Intent, Lifecycle, Sig};
use rfpm_sys::epoll::Trigger;
use rfpm_sys::fd::{self, Stdio};
use rfpm_sys::process::{self, Exit, Fork};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

struct Child {
    pid: libc::pid_t,
    pool: usize,
    /// Index of its scoreboard slot.
    slot: usize,
    started: Instant,
    started_wall: u64,
    /// The process manager asked it to stop.
    asked_to_stop: bool,
    /// catch_workers_output: the read ends of the worker's stdout and stderr.
    output: Option<Output>,
    /// Which of its requests were already logged as slow or terminated.
    timeouts: timeouts::Memory,
}

struct Output {
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    capture: Capture,
}

/// Everything the master runs with.
pub struct Master {
    /// The command line, re-executed on reload.
    pub argv: Vec<String>,
    /// Where the process title lives (workers set theirs there).
    pub title_area: Option<title::Area>,
    pub pools: Vec<Pool>,
    pub listeners: Vec<Listener>,
    pub pid_file: Option<String>,
    pub process_control_timeout: Duration,
    /// `[global]`: process.max, emergency restart, systemd, log level.
    pub global: conf::GlobalConf,
    /// The self-pipe the signal handler writes into (`None` in a forked worker).
    pub signal_pipe: Option<OwnedFd>,
    /// Each pool's access log, opened at start (reference §5.5).
    pub access_logs: Vec<Option<OwnedFd>>,
}

/// Why a worker was not started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SpawnError {
    /// `process.max` (or the pool's slots) reached: not an error of the master.
    Limit,
    /// fork() failed.
    Failed,
}

struct Runtime {
    m: Master,
    epoll: rfpm_sys::epoll::Epoll,
    scoreboards: Vec<Scoreboard>,
    pm_memory: Vec<PmMemory>,
    children: Vec<Child>,
    life: Lifecycle,
    /// Escalation: when to send the next signal.
    escalation: Option<Instant>,
    /// The escalation timer was armed in this loop pass: it is due at the next wake-up
    /// at the earliest (php-fpm's `process_control_timeout = 0` semantics).
    escalation_fresh: bool,
    /// Emergency restart: recent SIGSEGV/SIGBUS deaths.
    crash: CrashWindow,
    /// The process.max warning was given (re-armed by a successful spawn).
    process_max_warned: bool,
    /// systemd's notification socket, and the request count at the last report.
    notifier: Option<systemd::Notifier>,
    reported_requests: u64,
}

const TOKEN_SIGNALS: u64 = 1;
/// Tokens of ondemand pools' listening sockets: `TOKEN_LISTEN + pool index`.
const TOKEN_LISTEN: u64 = 1 << 40;
/// Tokens of worker output pipes: `TOKEN_OUTPUT + pid * 2 + stream`.
const TOKEN_OUTPUT: u64 = 16;

/// Reads of 8 KiB from one worker pipe per wake-up of the event loop.
const OUTPUT_READS_PER_WAKEUP: usize = 16;
/// Reads left to a dead worker's pipe: what a pipe holds at most (`pipe-max-size`, 1 MiB).
const OUTPUT_READS_AT_EXIT: usize = 128;

fn output_token(pid: libc::pid_t, stream: Stream) -> u64 {
    TOKEN_OUTPUT + (pid as u64) * 2 + u64::from(stream == Stream::Stderr)
}

impl Master {
    /// Starts the initial workers and runs until stopped. Returns the exit code.
    pub fn run(self) -> i32 {
        let epoll = match rfpm_sys::epoll::Epoll::new() {
            Ok(e) => e,
            Err(e) => {
                crate::error_sys!(e, "epoll_create1() failed");
                return crate::cli::EX_SOFTWARE;
            }
        };
        let watched = match &self.signal_pipe {
            Some(p) => epoll.add(p.as_fd(), TOKEN_SIGNALS, Trigger::Level),
            None => Ok(()),
        };
        if let Err(e) = watched {
            crate::error_sys!(e, "failed to watch the signal pipe");
            return crate::cli::EX_SOFTWARE;
        }
        let mut scoreboards = Vec::new();
        for (i, p) in self.pools.iter().enumerate() {
            match Scoreboard::new(&p.name, p.max_children) {
                Ok(sb) => scoreboards.push(sb),
                Err(e) => {
                    crate::error_sys!(e, "[pool {}] unable to allocate the scoreboard", p.name);
                    return crate::cli::EX_SOFTWARE;
                }
            }
            if p.pm == Pm::Ondemand {
                if let Err(e) = epoll.add(
                    self.listeners[i].fd(),
                    TOKEN_LISTEN + i as u64,
                    Trigger::Edge,
                ) {
                    crate::error_sys!(e, "[pool {}] unable to watch the listening socket", p.name);
                    return crate::cli::EX_SOFTWARE;
                }
            }
        }
        let pm_memory = vec![PmMemory::default(); self.pools.len()];
        let crash = CrashWindow::new(
            self.global.emergency_restart_threshold.get(),
            self.global.emergency_restart_interval.get(),
        );
        let check_period =
            timeouts::timer_period_ms(&self.pools.iter().map(|p| p.timeouts).collect::<Vec<_>>())
                .map(Duration::from_millis);
        let systemd_interval = self.global.systemd_interval_ms();
        let mut rt = Runtime {
            m: self,
            epoll,
            scoreboards,
            pm_memory,
            children: Vec::new(),
            life: Lifecycle::new(),
            escalation: None,
            escalation_fresh: false,
            crash,
            process_max_warned: false,
            notifier: systemd::Notifier::from_env(),
            reported_requests: 0,
        };
        'initial: for p in 0..rt.m.pools.len() {
            for _ in 0..rt.m.pools[p].initial_workers() {
                match rt.spawn(p, false) {
                    Ok(()) => {}
                    Err(SpawnError::Limit) => break,
                    Err(SpawnError::Failed) => {
                        rt.intend(Intent::Terminate);
                        break 'initial;
                    }
                }
            }
        }
        crate::notice!("ready to handle connections");
        rt.notify_ready(systemd_interval);
        let mut ready = Vec::new();
        let mut sigs = Vec::new();
        let mut next_tick = Instant::now() + Duration::from_secs(1);
        let mut next_check = check_period.map(|p| Instant::now() + p);
        let systemd_period = (systemd_interval > 0 && rt.notifier.is_some())
            .then(|| Duration::from_millis(systemd_interval));
        let mut next_report = systemd_period.map(|p| Instant::now() + p);
        loop {
            let mut due = next_tick;
            for t in [next_check, next_report].into_iter().flatten() {
                due = due.min(t);
            }
            let until = |t: Instant| {
                let d = t.saturating_duration_since(Instant::now());
                // Round up: waking a little early would only loop.
                d.as_micros().div_ceil(1000).min(1000) as i32
            };
            let timeout = match rt.escalation {
                // Just armed: due at the next wake-up, whatever wakes us (≤ 1 s).
                Some(_) if rt.escalation_fresh => until(due),
                Some(at) => until(due.min(at)),
                None => until(due),
            };
            if let Err(e) = rt.epoll.wait(timeout, &mut ready) {
                crate::error_sys!(e, "epoll_wait() failed");
            }
            rt.escalation_fresh = false;
            for &token in &ready {
                if token >= TOKEN_LISTEN {
                    rt.on_connection((token - TOKEN_LISTEN) as usize);
                } else if token >= TOKEN_OUTPUT {
                    rt.on_output(token);
                }
            }
            if Instant::now() >= next_tick {
                next_tick = Instant::now() + Duration::from_secs(1);
                rt.sample_status();
                if rt.life.state().spawns() {
                    rt.maintenance();
                }
            }
            if let (Some(at), Some(period)) = (next_check, check_period) {
                if Instant::now() >= at {
                    next_check = Some(Instant::now() + period);
                    rt.check_timeouts();
                }
            }
            if let (Some(at), Some(period)) = (next_report, systemd_period) {
                if Instant::now() >= at {
                    next_report = Some(Instant::now() + period);
                    rt.report_to_systemd(systemd_interval);
                }
            }
            if let Some(p) = &rt.m.signal_pipe {
                signals::pending(p, &mut sigs);
            }
            for &s in &sigs {
                rt.on_signal(s);
            }
            rt.escalate();
            if rt.children.is_empty() {
                if let Some(code) = rt.intend(Intent::ChildrenGone) {
                    return code;
                }
            }
        }
    }
}

/// SIGUSR1: every access log opened again onto its descriptor (reference §4.1). Returns
/// whether some pool has one, and the last error; logs nothing (see `Logger::reopen_with`).
fn reopen_access_logs(m: &Master) -> (bool, Option<std::io::Error>) {
    let mut any = false;
    let mut failed = None;
    for (pool, fd) in m.access_logs.iter().enumerate() {
        let (Some(fd), Some(path)) = (fd, m.pools[pool].access_log.as_deref()) else {
            continue;
        };
        any = true;
        if let Err(e) = fd::open_append(path).and_then(|new| fd::dup_onto(new.as_fd(), fd.as_fd()))
        {
            failed = Some(e);
        }
    }
    (any, failed)
}

/// What a new worker keeps of the master's resources: its pool's socket and access
/// log. Everything else the master holds open is closed in the worker.
struct WorkerStart {
    pool: usize,
    listener: Listener,
    access_log: Option<OwnedFd>,
}

impl WorkerStart {
    /// Where `fpm_get_status()` reads (the pool whose status page this pool shares).
    fn status<'a>(&self, rt: &'a Runtime) -> worker::StatusSource<'a> {
        let owner = rt.m.pools[self.pool]
            .shared
            .filter(|&o| o < rt.m.pools.len())
            .unwrap_or(self.pool);
        worker::StatusSource {
            sb: &rt.scoreboards[owner],
            pool: &rt.m.pools[owner].name,
            pm: rt.m.pools[owner].pm_name(),
        }
    }
}

impl Runtime {
    /// In a new worker, right after fork: keeps its pool's socket and access log and
    /// closes what belongs to the master (the other pools' sockets and access logs, the
    /// event loop, the self-pipe, the other workers' output pipes), like php-fpm's
    /// workers, which hold none of them either.
    fn keep_for_worker(&mut self, pool: usize) -> WorkerStart {
        for c in &mut self.children {
            c.output = None;
        }
        self.m.signal_pipe = None;
        self.epoll.close();
        if let Some(area) = self.m.title_area {
            title::set(area, &format!("php-fpm: pool {}", self.m.pools[pool].name));
        }
        let mut listeners = std::mem::take(&mut self.m.listeners);
        let mut logs = std::mem::take(&mut self.m.access_logs);
        // The pool's index is valid: listeners and access logs were made per pool.
        let listener = listeners.swap_remove(pool);
        let access_log = if pool < logs.len() {
            logs.swap_remove(pool)
        } else {
            None
        };
        WorkerStart {
            pool,
            listener,
            access_log,
        }
    }

    fn spawn(&mut self, pool: usize, announce: bool) -> Result<(), SpawnError> {
        // process.max counts the workers of all pools (reference §3.4).
        let process_max = self.m.global.process_max.get();
        if process_max > 0 && self.children.len() >= process_max {
            if !self.process_max_warned {
                self.process_max_warned = true;
                crate::warning!("The maximum number of processes has been reached. Please review your configuration and consider raising 'process.max'");
            }
            return Err(SpawnError::Limit);
        }
        // A free scoreboard slot, by the master's own records.
        let Some(slot) = (0..self.scoreboards[pool].slot_count())
            .find(|i| !self.children.iter().any(|c| c.pool == pool && c.slot == *i))
        else {
            return Err(SpawnError::Limit);
        };
        if let Some(s) = self.scoreboards[pool].slot(slot) {
            s.reset(now_us());
        }
        let pipes = if self.m.pools[pool].catch_workers_output {
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
        // The master never starts threads (DESIGN.md §4.1): fork is safe here.
        // Signals wait while we fork: a new child must never run the master's handler
        // (it would write into the master's self-pipe).
        signals::mask(&signals::FORK_SIGNALS, true);
        let forked = process::fork_single_threaded();
        if let Ok(Fork::Child) = forked {
            signals::become_worker();
        }
        signals::mask(&signals::FORK_SIGNALS, false);
        match forked {
            Ok(Fork::Child) => {
                if let Some(((_, out_w), (_, err_w))) = &pipes {
                    let _ = fd::dup_onto(out_w.as_fd(), Stdio::Out.borrow());
                    let _ = fd::dup_onto(err_w.as_fd(), Stdio::Err.borrow());
                }
                drop(pipes);
                let start = self.keep_for_worker(pool);
                worker::main(
                    &self.m.pools[pool],
                    &start.listener,
                    &self.scoreboards[pool],
                    slot,
                    start.status(self),
                    start.access_log.as_ref().map(AsFd::as_fd),
                )
            }
            Ok(Fork::Parent(pid)) => {
                if let Some(s) = self.scoreboards[pool].slot(slot) {
                    s.pid.store(pid, std::sync::atomic::Ordering::Relaxed);
                }
                // A pipe the loop cannot watch is closed at once: the worker's writes then
                // fail (SIGPIPE is ignored) instead of blocking it when the pipe is full.
                let watch =
                    |epoll: &rfpm_sys::epoll::Epoll, fd: OwnedFd, stream: Stream| match epoll.add(
                        fd.as_fd(),
                        output_token(pid, stream),
                        Trigger::Level,
                    ) {
                        Ok(()) => Some(fd),
                        Err(e) => {
                            crate::error_sys!(
                                e,
                                "unable to watch what child {pid} says into {}",
                                stream.name()
                            );
                            None
                        }
                    };
                let output = pipes.map(|((out_r, _), (err_r, _))| Output {
                    stdout: watch(&self.epoll, out_r, Stream::Stdout),
                    stderr: watch(&self.epoll, err_r, Stream::Stderr),
                    capture: Capture::new(self.max_captured_text(pool, pid)),
                });
                self.children.push(Child {
                    pid,
                    pool,
                    slot,
                    started: Instant::now(),
                    started_wall: now_us() / 1_000_000,
                    asked_to_stop: false,
                    output,
                    timeouts: timeouts::Memory::default(),
                });
                self.process_max_warned = false;
                let name = &self.m.pools[pool].name;
                if announce {
                    crate::notice!("[pool {name}] child {pid} started");
                } else {
                    crate::debug!("[pool {name}] child {pid} started");
                }
                Ok(())
            }
            Err(e) => {
                crate::error_sys!(e, "fork() failed");
                Err(SpawnError::Failed)
            }
        }
    }

    /// The workers of a pool as the process manager sees them.
    fn views(&self, pool: usize) -> Vec<WorkerView> {
        let sb = &self.scoreboards[pool];
        self.children
            .iter()
            .filter(|c| c.pool == pool)
            .map(|c| {
                let (idle, last_change) = match sb.slot(c.slot) {
                    Some(s) => (
                        s.state() == WorkerState::Idle,
                        s.last_change_us.load(std::sync::atomic::Ordering::Relaxed) / 1_000_000,
                    ),
                    None => (false, 0),
                };
                WorkerView {
                    pid: c.pid,
                    idle,
                    started: c.started_wall,
                    last_change,
                    asked_to_stop: c.asked_to_stop,
                }
            })
            .collect()
    }

    /// The 1-second pass of every pool (dynamic and ondemand).
    fn maintenance(&mut self) {
        let now = now_us() / 1_000_000;
        for pool in 0..self.m.pools.len() {
            let conf = self.m.pools[pool].pm_conf();
            let views = self.views(pool);
            let actions = pm::tick(&conf, &mut self.pm_memory[pool], &views, now);
            self.apply(pool, actions);
        }
    }

    /// Once a second: the status figures only the master knows (reference §11).
    fn sample_status(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        for (pool, sb) in self.scoreboards.iter().enumerate() {
            let h = sb.header();
            if let Some((queue, len)) = self
                .m
                .listeners
                .get(pool)
                .and_then(|l| rfpm_sys::net::listen_queue(l.fd()))
            {
                h.listen_queue.store(queue, Relaxed);
                h.max_listen_queue.fetch_max(queue, Relaxed);
                h.listen_queue_len.store(len, Relaxed);
            }
            if let Some(m) = self.pm_memory.get(pool) {
                h.max_children_reached
                    .store(m.max_children_reached, Relaxed);
            }
            sb.count_active();
        }
    }

    /// An ondemand pool's socket has a waiting connection.
    fn on_connection(&mut self, pool: usize) {
        if !self.life.state().spawns() || pool >= self.m.pools.len() {
            return;
        }
        let conf = self.m.pools[pool].pm_conf();
        let views = self.views(pool);
        let actions = pm::on_connection(&conf, &mut self.pm_memory[pool], &views);
        self.apply(pool, actions);
    }

    fn apply(&mut self, pool: usize, actions: Vec<pm::Action>) {
        let name = self.m.pools[pool].name.clone();
        let max = self.m.pools[pool].max_children;
        for a in actions {
            match a {
                pm::Action::Spawn(n) => {
                    for _ in 0..n {
                        if self.spawn(pool, false).is_err() {
                            break;
                        }
                    }
                }
                pm::Action::Stop { pid, kill } => {
                    if let Some(c) = self.children.iter_mut().find(|c| c.pid == pid) {
                        c.asked_to_stop = true;
                        let _ =
                            process::kill(pid, if kill { libc::SIGKILL } else { libc::SIGQUIT });
                    }
                }
                pm::Action::WarnMaxChildren { with_pm_prefix } => {
                    let pm_prefix = if with_pm_prefix { "pm." } else { "" };
                    crate::warning!("[pool {name}] server reached {pm_prefix}max_children setting ({max}), consider raising it");
                }
                pm::Action::WarnBusy { rate, idle, total } => {
                    crate::warning!("[pool {name}] seems busy (you may need to increase pm.start_servers, or pm.min/max_spare_servers), spawning {rate} children, there are {idle} idle, and {total} total children");
                }
            }
        }
    }

    /// The longest captured text that fits one `log_limit` entry with its decoration.
    fn max_captured_text(&self, pool: usize, pid: libc::pid_t) -> usize {
        let limit = crate::log::with(|l| l.limit());
        let p = &self.m.pools[pool];
        if !p.decorate_workers_output {
            return limit.saturating_sub(1);
        }
        // "[DD-Mon-YYYY HH:MM:SS] WARNING: [pool P] child N said into stderr: \"" + "\"" + "\n"
        let head = 23
            + "WARNING: ".len()
            + format!("[pool {}] child {pid} said into stderr: \"", p.name).len();
        limit.saturating_sub(head + 2)
    }

    /// A worker's stdout or stderr is readable (or closed).
    fn on_output(&mut self, token: u64) {
        let pid = ((token - TOKEN_OUTPUT) / 2) as libc::pid_t;
        let stream = if (token - TOKEN_OUTPUT) % 2 == 1 {
            Stream::Stderr
        } else {
            Stream::Stdout
        };
        self.drain_output(pid, stream, OUTPUT_READS_PER_WAKEUP);
    }

    /// Reads what a worker wrote, at most `max_reads` reads of 8 KiB, and logs it read by
    /// read: a worker that writes without pause can neither hold the master in this loop
    /// nor make it buffer (the pipes are level-triggered: the rest comes at the next pass).
    fn drain_output(&mut self, pid: libc::pid_t, stream: Stream, max_reads: usize) {
        let Some(child) = self.children.iter_mut().find(|c| c.pid == pid) else {
            return;
        };
        let p = &self.m.pools[child.pool];
        let Some(out) = child.output.as_mut() else {
            return;
        };
        let slot = match stream {
            Stream::Stdout => &mut out.stdout,
            Stream::Stderr => &mut out.stderr,
        };
        // Taken out while reading; put back unless the pipe ended (dropping the read end
        // also removes it from epoll: no other process holds it).
        let Some(fd) = slot.take() else {
            return;
        };
        let mut open = true;
        let mut entries = Vec::new();
        let mut buf = [0u8; 8192];
        let mut reads = 0;
        while reads < max_reads {
            reads += 1;
            let last = match fd::read(fd.as_fd(), &mut buf) {
                Ok(0) => {
                    out.capture.close(stream, &mut entries);
                    open = false;
                    true
                }
                Ok(n) => {
                    out.capture.feed(stream, &buf[..n], &mut entries);
                    false
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => false,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => true,
                Err(e) => {
                    crate::error_sys!(
                        e,
                        "unable to read what child {pid} said into {}",
                        stream.name()
                    );
                    open = false;
                    true
                }
            };
            for e in entries.drain(..) {
                log_captured(&p.name, p.decorate_workers_output, pid, &e);
            }
            if last {
                break;
            }
        }
        if open {
            *slot = Some(fd);
        }
    }

    fn on_signal(&mut self, sig: i32) {
        match sig {
            libc::SIGCHLD => self.reap(),
            libc::SIGTERM | libc::SIGINT => {
                self.intend(Intent::Terminate);
            }
            libc::SIGQUIT => {
                self.intend(Intent::Finish);
            }
            libc::SIGUSR1 => self.reopen_logs(),
            libc::SIGUSR2 => {
                self.intend(Intent::Reload { announce: true });
            }
            _ => {}
        }
    }

    fn reopen_logs(&mut self) {
        // The access logs are reopened while fd 2 is the original stderr again, so that
        // `access.log = /dev/stderr` keeps meaning the real stderr (GH-8885).
        let m = &self.m;
        let (error_log, (any, failed)) =
            crate::log::with(|l| l.reopen_with(|| reopen_access_logs(m)));
        match error_log {
            Ok(()) => crate::notice!("error log file re-opened"),
            Err(e) => crate::error_sys!(e, "unable to re-opened error log file"),
        }
        match (any, failed) {
            (false, _) => {}
            (true, None) => crate::notice!("access log file re-opened"),
            (true, Some(e)) => crate::error_sys!(e, "unable to re-opened access log file"),
        }
        if any {
            // Workers hold the old files: they finish their request and are replaced.
            self.signal_children(libc::SIGQUIT);
        }
    }

    /// Steps the lifecycle and carries out its effects. `Some(code)`: the master is
    /// done (it exits with `code`, or its re-execution failed).
    fn intend(&mut self, intent: Intent) -> Option<i32> {
        let effects = self.life.step(intent);
        let mut done = None;
        for e in effects {
            match e {
                Effect::Announce(text) => crate::notice!("{text}"),
                Effect::Refused { to, from } => crate::debug!(
                    "not switching to '{}' state, because already in '{}' state",
                    to.name(),
                    from.name()
                ),
                Effect::NotifySystemd(text) => {
                    if let Some(n) = &self.notifier {
                        let _ = n.send(text);
                    }
                }
                Effect::SignalChildren(sig) => self.signal_children(signal_number(sig)),
                Effect::ArmEscalation => {
                    self.escalation = Some(Instant::now() + self.m.process_control_timeout);
                    self.escalation_fresh = true;
                }
                Effect::RearmEscalation => {
                    self.escalation = Some(Instant::now() + Duration::from_secs(1));
                }
                Effect::ReExec => {
                    let e = reexec(&self.m);
                    crate::error_sys!(e, "failed to reload: execvp() failed");
                    done = Some(crate::cli::EX_SOFTWARE);
                }
                Effect::Exit => {
                    cleanup(&self.m);
                    crate::notice!("exiting, bye-bye!");
                    done = Some(0);
                }
            }
        }
        done
    }

    fn signal_children(&self, sig: i32) {
        for c in &self.children {
            let _ = process::kill(c.pid, sig);
        }
    }

    /// process_control_timeout expired: the lifecycle signals harder.
    fn escalate(&mut self) {
        let Some(at) = self.escalation else {
            return;
        };
        if self.escalation_fresh || self.children.is_empty() || Instant::now() < at {
            return;
        }
        self.intend(Intent::EscalationDue);
    }

    fn reap(&mut self) {
        while let Some((pid, exit)) = process::wait_any() {
            let Some(i) = self.children.iter().position(|c| c.pid == pid) else {
                crate::warning!(
                    "unknown child ({pid}) exited {} - potentially a bug or pre exec child (e.g. s6-notifyoncheck)",
                    how(exit)
                );
                continue;
            };
            // What the worker said last comes before its exit line.
            self.drain_output(pid, Stream::Stdout, OUTPUT_READS_AT_EXIT);
            self.drain_output(pid, Stream::Stderr, OUTPUT_READS_AT_EXIT);
            let child = self.children.swap_remove(i);
            let pool = child.pool;
            // The slot is free: the status page no longer lists the worker.
            if let Some(s) = self.scoreboards[pool].slot(child.slot) {
                s.pid.store(0, std::sync::atomic::Ordering::Relaxed);
                s.set_state(WorkerState::Idle, now_us());
            }
            let name = self.m.pools[pool].name.clone();
            let elapsed = child.started.elapsed();
            let after = format!("{}.{:06}", elapsed.as_secs(), elapsed.subsec_micros());
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
                let _ = self.spawn(pool, true);
            }
        }
    }

    /// After `ready to handle connections` (reference §10.1): readiness to systemd, then
    /// the monitor notice a systemd build of php-fpm always logs.
    fn notify_ready(&mut self, interval_ms: u64) {
        if let Some(n) = &self.notifier {
            if n.send(&rfpm_core::systemd::ready_message(process::getpid()))
                .is_err()
            {
                crate::warning!("failed to notify start to systemd");
            }
        }
        if interval_ms > 0 {
            crate::notice!("systemd monitor interval set to {interval_ms}ms");
        } else {
            crate::notice!("systemd monitor disabled");
        }
    }

    /// The periodic STATUS report, counters summed over all pools.
    fn report_to_systemd(&mut self, interval_ms: u64) {
        let Some(n) = &self.notifier else {
            return;
        };
        let (mut active, mut idle, mut requests, mut slow) = (0u64, 0u64, 0u64, 0u64);
        for c in &self.children {
            match self.scoreboards[c.pool].slot(c.slot).map(|s| s.state()) {
                Some(WorkerState::Idle) => idle += 1,
                _ => active += 1,
            }
        }
        for sb in &self.scoreboards {
            let h = sb.header();
            requests += h.accepted.load(std::sync::atomic::Ordering::Relaxed);
            slow += h.slow_requests.load(std::sync::atomic::Ordering::Relaxed);
        }
        let since = requests.saturating_sub(self.reported_requests);
        self.reported_requests = requests;
        let msg = rfpm_core::systemd::status_message(
            self.m.global.systemd_watchdog,
            active,
            idle,
            requests,
            slow,
            since,
            interval_ms,
        );
        if n.send(&msg).is_err() {
            crate::notice!("failed to notify status to systemd");
        }
    }

    /// The request-timeout timer (reference §3.7): slow log, then terminate.
    fn check_timeouts(&mut self) {
        let now = now_us();
        for i in 0..self.children.len() {
            let (pool, slot, pid) = {
                let c = &self.children[i];
                (c.pool, c.slot, c.pid)
            };
            let conf = self.m.pools[pool].timeouts;
            if conf.terminate == 0 && conf.slowlog == 0 {
                continue;
            }
            let Some(s) = self.scoreboards[pool].slot(slot).map(|s| s.view()) else {
                continue;
            };
            let view = timeouts::RequestView {
                state: s.state,
                start_us: s.request_start_us,
                seq: s.requests,
            };
            let Some(verdict) = timeouts::check(&conf, &mut self.children[i].timeouts, &view, now)
            else {
                continue;
            };
            let what = timeouts::describe(&s.script, &s.method, &s.uri, &s.query);
            let name = &self.m.pools[pool].name;
            match verdict {
                timeouts::Verdict::Slow { elapsed_us } => {
                    crate::warning!(
                        "[pool {name}] child {pid}, {what} executing too slow ({} sec), logging",
                        timeouts::seconds(elapsed_us)
                    );
                    self.scoreboards[pool]
                        .header()
                        .slow_requests
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    self.write_slow_log(pool, slot, pid);
                }
                timeouts::Verdict::Terminate { elapsed_us } => {
                    crate::warning!(
                        "[pool {name}] child {pid}, {what} execution timed out ({} sec), terminating",
                        timeouts::seconds(elapsed_us)
                    );
                    let _ = process::kill(pid, libc::SIGTERM);
                }
            }
        }
    }

    /// Appends one entry to the pool's slow log: a blank line, the time and pool, the
    /// script, then the worker's PHP stack read from its memory (reference §3.7).
    fn write_slow_log(&mut self, pool: usize, slot: usize, pid: libc::pid_t) {
        let p = &self.m.pools[pool];
        let Some(path) = p.slowlog.as_deref() else {
            return;
        };
        let script = self.scoreboards[pool]
            .slot(slot)
            .map(|s| s.view().script)
            .unwrap_or_default();
        let debug = crate::log::with(|l| l.level()) == Level::Debug;
        let mut entry = format!(
            "\n[{}]  [pool {}] pid {pid}\nscript_filename = ",
            crate::log::format_time(&crate::log::now(), debug),
            p.name
        )
        .into_bytes();
        entry.extend_from_slice(&script);
        entry.push(b'\n');
        crate::notice!("about to trace {pid}");
        match sapi::stack::trace_process(pid, p.slowlog_depth) {
            Ok(frames) => {
                for f in frames {
                    entry.extend_from_slice(&f);
                    entry.push(b'\n');
                }
            }
            Err(e) => {
                crate::error_sys!(e, "failed to read the PHP stack of child {pid}");
                entry.extend_from_slice(b"+++ dump failed\n");
            }
        }
        crate::notice!("finished trace of {pid}");
        let written = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, &entry));
        if let Err(e) = written {
            crate::error_sys!(e, "unable to write to the slowlog ({path})");
        }
    }
}

/// Reload (reference §4.3): the same command line is executed again in this process,
/// the listening sockets handed over in `FPM_SOCKETS`. Returns only on failure.
fn reexec(m: &Master) -> std::io::Error {
    signals::mask(&signals::MASTER_SIGNALS, true);
    let _ = crate::log::with(|l| l.restore_stderr());
    let socks: Vec<(String, i32)> = m
        .listeners
        .iter()
        .map(|l| (l.key.clone(), std::os::fd::AsRawFd::as_raw_fd(&l.fd)))
        .collect();
    for l in &m.listeners {
        let _ = fd::set_cloexec(l.fd(), false);
    }
    let vars = rfpm_core::listen_addr::export_vars(&socks);
    for (k, v) in &vars {
        std::env::set_var(k, v);
    }
    std::env::remove_var(format!("FPM_SOCKETS_{}", vars.len().max(1)));
    std::env::set_var(crate::startup::REEXEC_ENV, "1");
    let shown: Vec<String> = m.argv.iter().take(11).map(|a| format!("\"{a}\"")).collect();
    crate::notice!(
        "reloading: execvp(\"{}\", {{{}}})",
        m.argv[0],
        shown.join(", ")
    );
    let e = process::execvp(&m.argv);
    signals::mask(&signals::MASTER_SIGNALS, false);
    e
}

fn cleanup(m: &Master) {
    for l in &m.listeners {
        if let Some(p) = &l.unix_path {
            let _ = std::fs::remove_file(p);
        }
    }
    if let Some(pid) = &m.pid_file {
        if let Err(e) = std::fs::remove_file(pid) {
            crate::error_sys!(e, "Unable to remove the PID file ({pid}).");
        }
    }
}

/// One captured entry as a master log line (reference §3.10): decorated
/// `WARNING: [pool p] child N said into stderr: "text"`, or the raw text.
fn log_captured(pool: &str, decorate: bool, pid: libc::pid_t, e: &capture::Entry) {
    if decorate {
        let mut msg = format!(
            "[pool {pool}] child {pid} said into {}: \"",
            e.stream.name()
        )
        .into_bytes();
        msg.extend_from_slice(&e.text);
        msg.push(b'"');
        if e.pipe_closed {
            msg.extend_from_slice(b", pipe is closed");
        }
        crate::log::log_stream(Level::Warning, "fpm_stdio_child_said", line!(), &msg);
    } else {
        let mut line = e.text.clone();
        line.push(b'\n');
        crate::log::with(|l| l.write_entry(Level::Warning, &line));
    }
}

fn signal_number(sig: Sig) -> i32 {
    match sig {
        Sig::Quit => libc::SIGQUIT,
        Sig::Term => libc::SIGTERM,
        Sig::Kill => libc::SIGKILL,
    }
}

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
