//! The master: one thread, one event loop (reference §3, §4.1). The [`Supervisor`]
//! owns the running [`Generation`] (its pools' sockets, scoreboards, process-manager
//! memory and access logs), the table of its children, the lifecycle and the timers.
//!
//! - `event`: epoll tokens and the deadline heap;
//! - `generation`: a configuration's pools, running;
//! - `children`: the pid → child table and spawning a worker from a [`ChildSpec`];
//! - `output`: what workers write into their stdout/stderr pipes, logged;
//! - `control`: carries out the lifecycle's effects (signals, reload, exit);
//! - `timeouts`: slow log and `request_terminate_timeout`;
//! - `memory`: `pm.max_memory`, the workers' RSS read from `/proc`;
//! - `handoff`: what crosses `exec` on reload;
//! - `listen`: the listening sockets;
//! - `admin`: the admin listener (health, readiness, status, metrics; rfpm).
//!
//! `LIFECYCLE.md` beside this file draws the states, the signals and the effects.
mod admin;
mod children;
mod control;
mod event;
mod generation;
pub mod handoff;
pub mod listen;
mod memory;
mod output;
mod timeouts;

use crate::error::Error;
use crate::pm::{self, WorkerView};
use crate::pool::{Pm, Pool};
use crate::scoreboard::{now_us, Scoreboard};
use crate::timeouts::CrashWindow;
use crate::{signals, systemd, title};
use children::{ChildSpec, Children, SpawnError};
use event::{Deadlines, Timer, Token};
use generation::{Generation, Generations, PoolRuntime};
use listen::Listener;
use rfpm_core::lifecycle::{Intent, Lifecycle};
use rfpm_sys::epoll::{Epoll, Trigger};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// Everything the master starts with (made by `startup`).
pub struct Master {
    /// The command line, parsed: a reload plans the configuration it names.
    pub cli: crate::cli::Cli,
    /// The command line, re-executed on reload.
    pub argv: Vec<Vec<u8>>,
    /// Where the process title lives (workers set theirs there).
    pub title_area: Option<title::Area>,
    pub pools: Vec<Pool>,
    pub listeners: Vec<Listener>,
    pub pid_file: Option<conf::Bytes>,
    pub process_control_timeout: Duration,
    /// `[global]`: process.max, emergency restart, systemd, log level.
    pub global: conf::GlobalConf,
    /// The self-pipe the signal handler writes into.
    pub signal_pipe: OwnedFd,
    /// Each pool's access log, opened at start (reference §5.5).
    pub access_logs: Vec<Option<OwnedFd>>,
    /// The admin listener's socket (`admin.listen`, rfpm).
    pub admin: Option<Listener>,
}

impl Master {
    /// Starts the initial workers and runs until stopped. `Ok` is the exit code.
    pub fn run(self) -> Result<i32, Error> {
        Supervisor::start(self).map(Supervisor::run)
    }
}

/// The running master.
struct Supervisor {
    cli: crate::cli::Cli,
    /// The command line, re-executed on reload.
    argv: Vec<Vec<u8>>,
    title_area: Option<title::Area>,
    pid_file: Option<conf::Bytes>,
    process_control_timeout: Duration,
    global: conf::GlobalConf,
    /// The self-pipe the signal handler writes into (`None` in a forked worker).
    signal_pipe: Option<OwnedFd>,
    /// Sockets a reload's plan opened, on their way to the next image.
    reload_sockets: Vec<Listener>,
    epoll: Epoll,
    generations: Generations,
    children: Children,
    life: Lifecycle,
    deadlines: Deadlines,
    /// The request-timeout check's period, when a pool uses one.
    check_period: Option<Duration>,
    /// The systemd report's period, when systemd listens and it is enabled.
    systemd_period: Option<Duration>,
    /// Emergency restart: recent SIGSEGV/SIGBUS deaths.
    crash: CrashWindow,
    /// The process.max warning was given (re-armed by a successful spawn).
    process_max_warned: bool,
    /// systemd's notification socket, and the request count at the last report.
    notifier: Option<systemd::Notifier>,
    reported_requests: u64,
    /// The admin listener (`admin.listen`) and its connections.
    admin: Option<admin::Admin>,
}

impl Supervisor {
    /// The event loop, the generation's pools (scoreboards, ondemand watches), timers.
    fn start(m: Master) -> Result<Supervisor, Error> {
        let epoll = Epoll::new().map_err(|e| Error::sys("epoll_create1() failed", e))?;
        epoll
            .add(
                m.signal_pipe.as_fd(),
                Token::Signals.encode(),
                Trigger::Level,
            )
            .map_err(|e| Error::sys("failed to watch the signal pipe", e))?;
        let id = handoff::generation_id();
        let mut pools = Vec::with_capacity(m.pools.len());
        let mut logs = m.access_logs.into_iter();
        for (i, (spec, listener)) in m.pools.into_iter().zip(m.listeners).enumerate() {
            let scoreboard = Scoreboard::new(&spec.name, spec.max_children).map_err(|e| {
                Error::sys(
                    format!("[pool {}] unable to allocate the scoreboard", spec.name),
                    e,
                )
            })?;
            if spec.pm == Pm::Ondemand {
                let token = Token::Listen {
                    generation: id,
                    pool: u32::try_from(i).unwrap_or(u32::MAX),
                };
                epoll
                    .add(listener.fd(), token.encode(), Trigger::Edge)
                    .map_err(|e| {
                        Error::sys(
                            format!("[pool {}] unable to watch the listening socket", spec.name),
                            e,
                        )
                    })?;
            }
            pools.push(PoolRuntime {
                spec,
                listener,
                scoreboard,
                pm: pm::PmMemory::default(),
                access_log: logs.next().flatten(),
                ended: [0; rfpm_core::metrics::EndReason::ALL.len()],
                boot: generation::BootState::default(),
            });
        }
        let g = &m.global;
        let life = Lifecycle::new(g.shutdown_drain);
        let crash = CrashWindow::new(
            g.emergency_restart_threshold.get(),
            g.emergency_restart_interval.get(),
        );
        let check_period = crate::timeouts::timer_period_ms(
            &pools.iter().map(|p| p.spec.timeouts).collect::<Vec<_>>(),
        )
        .map(Duration::from_millis);
        let notifier = systemd::Notifier::from_env();
        let interval = g.systemd_interval_ms();
        let systemd_period =
            (interval > 0 && notifier.is_some()).then(|| Duration::from_millis(interval));
        let mut s = Supervisor {
            cli: m.cli,
            argv: m.argv,
            title_area: m.title_area,
            pid_file: m.pid_file,
            process_control_timeout: m.process_control_timeout,
            global: m.global,
            signal_pipe: Some(m.signal_pipe),
            reload_sockets: Vec::new(),
            epoll,
            generations: Generations::new(Generation { id, pools }, Vec::new()),
            children: Children::default(),
            life,
            deadlines: Deadlines::new(),
            check_period,
            systemd_period,
            crash,
            process_max_warned: false,
            notifier,
            reported_requests: 0,
            admin: m.admin.map(admin::Admin::new),
        };
        s.watch_admin();
        // The generations the previous image handed over (a reload) drain here.
        s.adopt_handed_over(handoff::take());
        Ok(s)
    }

    /// Spawns the initial workers, then serves events until the lifecycle ends.
    fn run(mut self) -> i32 {
        // Handed-over workers that ended between the previous image's exec and this
        // image's signal handlers: their SIGCHLD was discarded by exec (a pending signal
        // whose disposition becomes the default "ignore" is dropped), so look now.
        self.reap();
        let current = self.generations.current();
        let (id, initial): (_, Vec<usize>) = (
            current.id,
            current
                .pools
                .iter()
                .map(|p| p.spec.initial_workers())
                .collect(),
        );
        'initial: for (pool, n) in initial.into_iter().enumerate() {
            for _ in 0..n {
                match self.spawn(ChildSpec::new(id, pool, false)) {
                    Ok(_) => {}
                    Err(SpawnError::Limit) => break,
                    Err(SpawnError::Failed) => {
                        self.intend(Intent::Terminate);
                        break 'initial;
                    }
                }
            }
        }
        crate::notice!("ready to handle connections");
        self.notify_ready();
        let now = Instant::now();
        self.deadlines
            .arm(Timer::Tick, now + Duration::from_secs(1));
        if let Some(p) = self.check_period {
            self.deadlines.arm(Timer::RequestTimeouts, now + p);
        }
        if let Some(p) = self.systemd_period {
            self.deadlines.arm(Timer::SystemdReport, now + p);
        }
        let mut ready = Vec::new();
        let mut sigs = Vec::new();
        loop {
            let timeout = self.deadlines.timeout_ms(Instant::now());
            if let Err(e) = self.epoll.wait(timeout, &mut ready) {
                crate::error_sys!(e, "epoll_wait() failed");
            }
            self.deadlines.woke_up();
            for &token in &ready {
                match Token::decode(token) {
                    Some(Token::Listen { generation, pool }) => {
                        self.on_connection(generation, pool);
                    }
                    Some(Token::Output { pid, stream }) => {
                        self.drain_output(pid, stream, output::READS_PER_WAKEUP);
                    }
                    Some(Token::Admin) => self.on_admin_listener(),
                    Some(Token::AdminConn { id }) => self.on_admin_conn(id),
                    // The self-pipe is read below, every pass.
                    Some(Token::Signals) | None => {}
                }
            }
            self.on_timers();
            if let Some(p) = &self.signal_pipe {
                signals::pending(p, &mut sigs);
            }
            for &s in &sigs {
                self.on_signal(s);
            }
            if !self.children.is_empty()
                && self
                    .deadlines
                    .take_if_due(Timer::Escalation, Instant::now())
            {
                self.intend(Intent::EscalationDue);
            }
            if self.children.is_empty() {
                if let Some(code) = self.intend(Intent::ChildrenGone) {
                    return code;
                }
            }
        }
    }

    /// The periodic timers that are due: status and process manager (every second),
    /// request timeouts, the systemd report.
    fn on_timers(&mut self) {
        let now = Instant::now();
        if self.deadlines.take_if_due(Timer::Tick, now) {
            self.deadlines
                .arm(Timer::Tick, Instant::now() + Duration::from_secs(1));
            if !self.generations.all_draining().is_empty() {
                // While generations drain, reaping does not rely on SIGCHLD alone (see
                // `run`); waitpid(WNOHANG) finds nothing when nothing ended.
                self.reap();
            }
            self.sample_status();
            self.admin_tick();
            if self.life.state().spawns() {
                self.maintenance();
                self.check_memory();
            }
        }
        if let Some(p) = self.check_period {
            if self.deadlines.take_if_due(Timer::RequestTimeouts, now) {
                self.deadlines
                    .arm(Timer::RequestTimeouts, Instant::now() + p);
                self.check_timeouts();
            }
        }
        if let Some(p) = self.systemd_period {
            if self.deadlines.take_if_due(Timer::SystemdReport, now) {
                self.deadlines.arm(Timer::SystemdReport, Instant::now() + p);
                self.report_to_systemd();
            }
        }
        self.boot_retries(now);
        let draining: Vec<u32> = self
            .generations
            .all_draining()
            .iter()
            .map(|d| d.id)
            .collect();
        for id in draining {
            if self.deadlines.take_if_due(Timer::Drain(id), now) {
                self.escalate_draining(id);
            }
        }
    }

    /// The workers of a pool of the current generation as the process manager sees
    /// them.
    fn views(&self, pool: usize) -> Vec<WorkerView> {
        let current = self.generations.current();
        let Some(p) = current.pool(pool) else {
            return Vec::new();
        };
        self.children
            .of_pool(current.id, pool)
            .map(|c| {
                let (idle, last_change) = match p.scoreboard.slot(c.slot) {
                    Some(s) => (
                        s.state().is_idle(),
                        s.last_change_us.load(Relaxed) / 1_000_000,
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

    /// The 1-second pass of every pool of the current generation (dynamic and ondemand).
    fn maintenance(&mut self) {
        let now = now_us() / 1_000_000;
        for pool in 0..self.generations.current().pools.len() {
            let views = self.views(pool);
            let p = &mut self.generations.current_mut().pools[pool];
            let actions = pm::tick(&p.spec.pm_conf(), &mut p.pm, &views, now);
            self.apply(pool, actions);
        }
    }

    /// Once a second: the status figures only the master knows (reference §11).
    fn sample_status(&self) {
        for p in self.generations.pools() {
            let h = p.scoreboard.header();
            if let Some((queue, len)) = rfpm_sys::net::listen_queue(p.listener.fd()) {
                h.listen_queue.store(queue, Relaxed);
                h.max_listen_queue.fetch_max(queue, Relaxed);
                h.listen_queue_len.store(len, Relaxed);
            }
            h.max_children_reached
                .store(p.pm.max_children_reached, Relaxed);
            p.scoreboard.count_active();
        }
    }

    /// An ondemand pool's socket has a waiting connection.
    fn on_connection(&mut self, generation: u32, pool: u32) {
        let Ok(pool) = usize::try_from(pool) else {
            return;
        };
        if !self.life.state().spawns()
            || generation != self.generations.current().id
            || pool >= self.generations.current().pools.len()
        {
            return;
        }
        let views = self.views(pool);
        let p = &mut self.generations.current_mut().pools[pool];
        let actions = pm::on_connection(&p.spec.pm_conf(), &mut p.pm, &views);
        self.apply(pool, actions);
    }

    /// Carries out the process manager's decisions for a pool of the current generation.
    fn apply(&mut self, pool: usize, actions: Vec<pm::Action>) {
        let current = self.generations.current();
        let id = current.id;
        let Some(p) = current.pool(pool) else {
            return;
        };
        let name = p.spec.name.clone();
        let max = p.spec.max_children;
        for a in actions {
            match a {
                pm::Action::Spawn(n) => {
                    for _ in 0..n {
                        if self.spawn(ChildSpec::new(id, pool, false)).is_err() {
                            break;
                        }
                    }
                }
                pm::Action::Stop { pid, kill } => {
                    if let Some(c) = self.children.get_mut(pid) {
                        c.asked_to_stop = true;
                        let sig = if kill { libc::SIGKILL } else { libc::SIGQUIT };
                        let _ = rfpm_sys::process::kill(pid, sig);
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

    fn on_signal(&mut self, sig: i32) {
        match sig {
            libc::SIGCHLD => self.reap(),
            // SIGTERM drains with `shutdown.drain`; SIGINT is always a fast stop.
            libc::SIGTERM => {
                self.intend(Intent::Stop);
            }
            libc::SIGINT => {
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
}
