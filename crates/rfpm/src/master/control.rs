//! Carrying out what the lifecycle decides (`rfpm_core::lifecycle`): announcements,
//! systemd notices, signals to the workers, the escalation timer, re-execution and
//! exit; and SIGUSR1's log reopening. `LIFECYCLE.md` beside this file draws it.
use super::event::Timer;
use super::generation::Generations;
use super::listen::{self, Listener};
use super::{handoff, Supervisor};
use crate::plan;
use rfpm_core::lifecycle::{Effect, Intent, Sig};
use rfpm_sys::{fd, process};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

impl Supervisor {
    /// Steps the lifecycle and carries out its effects. `Some(code)`: the master is
    /// done (it exits with `code`, or its re-execution failed).
    pub(super) fn intend(&mut self, intent: Intent) -> Option<i32> {
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
                    let at = Instant::now() + self.process_control_timeout;
                    self.deadlines.arm_after_wakeup(Timer::Escalation, at);
                }
                Effect::RearmEscalation => {
                    let at = Instant::now() + Duration::from_secs(1);
                    self.deadlines.arm(Timer::Escalation, at);
                }
                Effect::PlanReload => {
                    let answer = match self.plan_reload() {
                        Some(opened) => {
                            self.reload_sockets = opened;
                            Intent::Planned
                        }
                        None => Intent::ReloadFailed,
                    };
                    if let Some(code) = self.intend(answer) {
                        done = Some(code);
                    }
                }
                Effect::ReExec => {
                    let opened = std::mem::take(&mut self.reload_sockets);
                    let e = handoff::reexec(self, &opened);
                    // Still here: the workers were told to finish and are replaced as
                    // they go; the running configuration serves on.
                    crate::error_sys!(e, "failed to reload: execvp() failed");
                    listen::discard(opened);
                    self.intend(Intent::ReloadFailed);
                }
                Effect::Exit => {
                    self.cleanup();
                    crate::notice!("exiting, bye-bye!");
                    done = Some(0);
                }
            }
        }
        done
    }

    /// A reload's plan (reference §4.3, and beyond php-fpm, which exits on a bad
    /// configuration): the configuration is loaded and validated, its pools resolved
    /// (users, groups, the root rule), its new sockets opened (those the running pools
    /// hold are handed over as they are) and its access logs opened, all before anything
    /// running is touched. `Some`: the sockets the plan opened, for the next image.
    /// `None`: it does not hold; why was logged, and the running generation serves on.
    fn plan_reload(&mut self) -> Option<Vec<Listener>> {
        let aborted = || {
            crate::error!(
                "failed to reload: the new configuration cannot be used, the running one keeps serving"
            );
        };
        let plan = match plan::load(&self.cli) {
            Ok(p) => p,
            Err(f) => {
                f.log.print_said();
                f.error.log_reason();
                aborted();
                return None;
            }
        };
        let pools = match plan::pools(&plan.config, &self.cli) {
            Ok((pools, _)) => pools,
            Err(e) => {
                e.log_reason();
                aborted();
                return None;
            }
        };
        let held: Vec<Vec<u8>> = self
            .generations
            .pools()
            .map(|p| p.listener.key.clone())
            .chain(self.admin.as_ref().map(|a| a.listener.key.clone()))
            .collect();
        let mut opened: Vec<Listener> = Vec::new();
        // The admin listener (rfpm) is planned like a pool's socket.
        let admin = match plan.config.global.admin_listen.as_deref() {
            Some(a) => match listen::admin_perms(&plan.config.global) {
                Ok(perms) => Some((a, perms)),
                Err(e) => {
                    e.log_reason();
                    aborted();
                    return None;
                }
            },
            None => None,
        };
        let sockets = pools
            .iter()
            .map(|p| (p.listen.as_bytes(), p.backlog, listen::perms_of(p)))
            .chain(admin.map(|(a, perms)| (a, crate::startup::ADMIN_BACKLOG, perms)));
        for (addr, backlog, perms) in sockets {
            let keys = listen::keys_for(addr);
            let known = |k: &Vec<u8>| held.contains(k) || opened.iter().any(|l| &l.key == k);
            if keys.iter().any(known) {
                continue;
            }
            let mut notices = Vec::new();
            let res = listen::open(addr, backlog, &perms, &mut Vec::new(), &mut notices);
            for n in notices {
                crate::notice!("{n}");
            }
            match res {
                Ok(l) => opened.push(l),
                Err(msg) => {
                    crate::error!("{msg}");
                    listen::discard(opened);
                    aborted();
                    return None;
                }
            }
        }
        for path in pools.iter().filter_map(|p| p.access_log.as_ref()) {
            if let Err(e) = fd::open_append(path) {
                crate::error_sys!(e, "failed to open access log ({path})");
                listen::discard(opened);
                aborted();
                return None;
            }
        }
        Some(opened)
    }

    /// Sends `sig` to every worker.
    pub(super) fn signal_children(&self, sig: i32) {
        for pid in self.children.pids() {
            let _ = process::kill(pid, sig);
        }
    }

    /// SIGUSR1 (reference §4.1): the error log and the access logs are opened again
    /// (log rotation); the workers, which hold the old access logs, finish their
    /// request and are replaced.
    pub(super) fn reopen_logs(&mut self) {
        // The access logs are reopened while fd 2 is the original stderr again, so that
        // `access.log = /dev/stderr` keeps meaning the real stderr (GH-8885).
        let generations = &self.generations;
        let (error_log, (any, failed)) =
            crate::log::with(|l| l.reopen_with(|| reopen_access_logs(generations)));
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
            self.signal_children(libc::SIGQUIT);
        }
    }

    /// After `ready to handle connections` (reference §10.1): readiness to systemd, then
    /// the monitor notice a systemd build of php-fpm always logs.
    pub(super) fn notify_ready(&mut self) {
        if let Some(n) = &self.notifier {
            if n.send(&rfpm_core::systemd::ready_message(process::getpid()))
                .is_err()
            {
                crate::warning!("failed to notify start to systemd");
            }
        }
        let interval_ms = self.global.systemd_interval_ms();
        if interval_ms > 0 {
            crate::notice!("systemd monitor interval set to {interval_ms}ms");
        } else {
            crate::notice!("systemd monitor disabled");
        }
    }

    /// The periodic STATUS report, counters summed over all pools.
    pub(super) fn report_to_systemd(&mut self) {
        use std::sync::atomic::Ordering::Relaxed;
        let Some(n) = &self.notifier else {
            return;
        };
        let (mut active, mut idle, mut requests, mut slow) = (0u64, 0u64, 0u64, 0u64);
        for c in self.children.iter() {
            let state = self
                .generations
                .info(c.generation, c.pool)
                .and_then(|p| p.scoreboard)
                .and_then(|sb| sb.slot(c.slot))
                .map(|s| s.state());
            match state {
                Some(s) if s.is_idle() => idle += 1,
                _ => active += 1,
            }
        }
        for sb in self.generations.scoreboards() {
            let h = sb.header();
            requests += h.accepted.load(Relaxed);
            slow += h.slow_requests.load(Relaxed);
        }
        let since = requests.saturating_sub(self.reported_requests);
        self.reported_requests = requests;
        let msg = rfpm_core::systemd::status_message(
            self.global.systemd_watchdog,
            active,
            idle,
            requests,
            slow,
            since,
            self.global.systemd_interval_ms(),
        );
        if n.send(&msg).is_err() {
            crate::notice!("failed to notify status to systemd");
        }
    }

    /// The master exits: its Unix sockets and its pid file are removed.
    fn cleanup(&self) {
        let admin = self.admin.as_ref().map(|a| &a.listener);
        for l in self.generations.pools().map(|p| &p.listener).chain(admin) {
            if let Some(path) = &l.unix_path {
                let _ = std::fs::remove_file(path);
            }
        }
        if let Some(pid) = &self.pid_file {
            if let Err(e) = std::fs::remove_file(pid) {
                crate::error_sys!(e, "Unable to remove the PID file ({pid}).");
            }
        }
    }
}

/// SIGUSR1: every access log opened again onto its descriptor. Returns whether some
/// pool has one, and the last error; logs nothing (see `Logger::reopen_with`).
fn reopen_access_logs(generations: &Generations) -> (bool, Option<std::io::Error>) {
    let mut any = false;
    let mut failed = None;
    for p in generations.pools() {
        let (Some(log), Some(path)) = (&p.access_log, p.spec.access_log.as_ref()) else {
            continue;
        };
        any = true;
        if let Err(e) = fd::open_append(path).and_then(|new| fd::dup_onto(new.as_fd(), log.as_fd()))
        {
            failed = Some(e);
        }
    }
    (any, failed)
}

/// The signal number of a lifecycle signal.
fn signal_number(sig: Sig) -> i32 {
    match sig {
        Sig::Quit => libc::SIGQUIT,
        Sig::Term => libc::SIGTERM,
        Sig::Kill => libc::SIGKILL,
    }
}
