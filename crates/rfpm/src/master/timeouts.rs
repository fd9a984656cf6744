//! The request-timeout timer (reference §3.7): `request_slowlog_timeout` writes the
//! slow log (the worker's PHP stack, read from its memory without stopping it), then
//! `request_terminate_timeout` terminates the worker. The decisions are
//! `rfpm_core::timeouts`'; this module reads the scoreboard and carries them out.
use super::generation::PoolRuntime;
use super::Supervisor;
use crate::log::Level;
use crate::scoreboard::now_us;
use crate::timeouts;
use rfpm_core::request_id::RequestId;
use rfpm_sys::process::{self, Pid};
use std::sync::atomic::Ordering::Relaxed;

impl Supervisor {
    /// Checks every worker's current request against its pool's timeouts.
    pub(super) fn check_timeouts(&mut self) {
        let now = now_us();
        for pid in self.children.pids() {
            let Some(child) = self.children.get_mut(pid) else {
                continue;
            };
            // Old generations' requests time out too.
            let Some(p) = self.generations.pool(child.generation, child.pool) else {
                continue;
            };
            let conf = p.spec.timeouts;
            if conf.terminate == 0 && conf.slowlog == 0 {
                continue;
            }
            let Some(s) = p.scoreboard.slot(child.slot).map(|s| s.view()) else {
                continue;
            };
            let view = timeouts::RequestView {
                state: s.state,
                start_us: s.request_start_us,
                seq: s.requests,
            };
            // The slot is the workers' word (any of them can write it): believed only
            // for the child spawned for it, its start bounded (see timeouts::bound).
            let age_us = u64::try_from(child.started.elapsed().as_micros()).unwrap_or(u64::MAX);
            let owner = timeouts::Owner {
                pid,
                spawned_us: now.saturating_sub(age_us),
            };
            let Some(view) = timeouts::bound(&conf, &owner, s.pid, &view, &mut child.timeouts, now)
            else {
                continue;
            };
            let Some(verdict) = timeouts::check(&conf, &mut child.timeouts, &view, now) else {
                continue;
            };
            let what = timeouts::describe(&s.script, &s.method, &s.uri, &s.query);
            let name = &p.spec.name;
            // The request's id (rfpm), as the worker wrote it: untrusted, sanitised.
            let rid = RequestId::sanitized(&s.request_id);
            let rid = (p.spec.request_ids && !rid.is_empty()).then_some(rid);
            match verdict {
                timeouts::Verdict::Slow { elapsed_us } => {
                    warn_with_id(
                        &format!(
                            "[pool {name}] child {pid}, {what} executing too slow ({} sec), logging",
                            timeouts::seconds(elapsed_us)
                        ),
                        rid.as_ref(),
                    );
                    p.scoreboard.header().slow_requests.fetch_add(1, Relaxed);
                    write_slow_log(p, &s.script, pid, rid.as_ref());
                }
                timeouts::Verdict::Terminate { elapsed_us } => {
                    warn_with_id(
                        &format!(
                            "[pool {name}] child {pid}, {what} execution timed out ({} sec), terminating",
                            timeouts::seconds(elapsed_us)
                        ),
                        rid.as_ref(),
                    );
                    child.terminated = true;
                    let _ = process::kill(pid, libc::SIGTERM);
                }
            }
        }
    }
}

/// A WARNING about a request; in a JSON error log with the request's id as a member.
fn warn_with_id(msg: &str, rid: Option<&RequestId>) {
    let json = crate::log::with(|l| l.json());
    match rid {
        Some(id) if json => {
            let rec = crate::log::Record {
                level: Level::Warning,
                function: "fpm_request_check_timed_out",
                line: line!(),
                message: &rfpm_core::shown::unshow(msg),
                errno: None,
                cut: crate::log::Cut::OneShot,
            };
            let extra = crate::log::JsonExtra {
                request_id: Some(id.as_bytes()),
                ..crate::log::JsonExtra::default()
            };
            crate::log::with(|l| l.log_json(&rec, &extra));
        }
        _ => crate::warning!("{msg}"),
    }
}

/// Appends one entry to the pool's slow log: a blank line, the time and pool, the
/// script, (rfpm, when the pool gives request ids) `request_id = …`, then the worker's
/// PHP stack read from its memory (reference §3.7).
fn write_slow_log(p: &PoolRuntime, script: &[u8], pid: Pid, rid: Option<&RequestId>) {
    let Some(path) = p.spec.slowlog.as_ref() else {
        return;
    };
    let debug = crate::log::with(|l| l.level()) == Level::Debug;
    let mut entry = format!(
        "\n[{}]  [pool ",
        crate::log::format_time(&crate::log::now(), debug)
    )
    .into_bytes();
    entry.extend_from_slice(&p.spec.name);
    entry.extend_from_slice(format!("] pid {pid}\nscript_filename = ").as_bytes());
    entry.extend_from_slice(script);
    entry.push(b'\n');
    if let Some(id) = rid {
        entry.extend_from_slice(b"request_id = ");
        entry.extend_from_slice(id.as_bytes());
        entry.push(b'\n');
    }
    crate::notice!("about to trace {pid}");
    match sapi::stack::trace_process(pid, p.spec.slowlog_depth) {
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
