//! What crosses `exec` when the master reloads (reference §4.3): the listening sockets
//! in `FPM_SOCKETS` (php-fpm's format, so either program can take over from the
//! other), the mark that the new image is already the daemon, the generation number,
//! and the generations whose workers still drain (`RFPM_HANDOFF`, see
//! `rfpm_core::handoff`): their pools' scoreboards on memfds and their workers' pids,
//! slots and output pipes. The new image reaps those workers while its own serve.
use super::children::Child;
use super::event::Timer;
use super::generation::{Draining, DrainingPool, GenerationId, Generations};
use super::listen::Listener;
use super::output::Output;
use super::Supervisor;
use crate::capture::{Capture, Stream};
use crate::scoreboard::{now_us, Scoreboard};
use rfpm_core::handoff as wire;
use rfpm_core::lifecycle::Sig;
use rfpm_sys::epoll::Trigger;
use rfpm_sys::{fd, process, signals};
use std::collections::HashSet;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

/// Set in the environment of a re-executed image: it must not daemonise again.
pub const REEXEC_ENV: &str = "RFPM_REEXEC";
/// The generation number of the image that re-executed itself.
const GENERATION_ENV: &str = "RFPM_GENERATION";
/// The draining generations.
const HANDOFF_ENV: &str = "RFPM_HANDOFF";

/// This image's generation: one more than the image that re-executed into it, else 1.
/// Read once, when the master starts (the variable is then removed).
pub fn generation_id() -> GenerationId {
    let previous = std::env::var(GENERATION_ENV)
        .ok()
        .and_then(|v| v.parse::<GenerationId>().ok());
    std::env::remove_var(GENERATION_ENV);
    previous.map_or(1, |g| g.saturating_add(1))
}

/// A generation handed over, its descriptors owned by this image.
pub struct Handed {
    pub id: GenerationId,
    pub pools: Vec<(wire::Pool, Option<OwnedFd>)>,
    pub children: Vec<(wire::Child, Option<OwnedFd>, Option<OwnedFd>)>,
}

/// What a handed-over descriptor must be: a scoreboard's memfd is a regular file, an
/// output pipe a FIFO. Anything else (a listening socket, the terminal, a closed number)
/// is not taken: this image may own it already.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    Memfd,
    Pipe,
}

fn is(n: i32, expect: Expect) -> bool {
    use std::os::unix::fs::FileTypeExt;
    if n <= 2 {
        return false;
    }
    let Ok(m) = std::fs::metadata(format!("/proc/self/fd/{n}")) else {
        return false;
    };
    match expect {
        Expect::Memfd => m.file_type().is_file(),
        Expect::Pipe => m.file_type().is_fifo(),
    }
}

/// The generations the previous image handed over (read once; the variable is then
/// removed, so no worker sees it). Each descriptor is taken only if it is open, of the
/// kind its entry says, and named once.
pub fn take() -> Vec<Handed> {
    let text = std::env::var(HANDOFF_ENV).unwrap_or_default();
    std::env::remove_var(HANDOFF_ENV);
    let mut seen = HashSet::new();
    let mut own = |n: Option<i32>, expect: Expect| {
        let n = n?;
        // A number named twice would be owned twice: only its first mention counts.
        if !seen.insert(n) || !is(n, expect) {
            return None;
        }
        fd::adopt_inherited(n)
    };
    wire::decode(&text)
        .into_iter()
        .map(|g| Handed {
            id: g.id,
            pools: g
                .pools
                .into_iter()
                .map(|p| {
                    let memfd = own(p.memfd, Expect::Memfd);
                    (p, memfd)
                })
                .collect(),
            children: g
                .children
                .into_iter()
                .map(|c| {
                    let (out, err) = (own(c.stdout, Expect::Pipe), own(c.stderr, Expect::Pipe));
                    (c, out, err)
                })
                .collect(),
        })
        .collect()
}

impl Supervisor {
    /// Takes in the generations the previous image handed over: their scoreboards, their
    /// workers (their output pipes watched again), and a `process_control_timeout` after
    /// which their workers are signalled harder.
    pub(super) fn adopt_handed_over(&mut self, handed: Vec<Handed>) {
        let now = Instant::now();
        let now_wall = now_us() / 1_000_000;
        let mut draining = Vec::new();
        for h in handed {
            if h.id == self.generations.current().id {
                continue;
            }
            let pools: Vec<DrainingPool> = h
                .pools
                .into_iter()
                .map(|(p, memfd)| DrainingPool {
                    scoreboard: memfd.and_then(|fd| Scoreboard::adopt(fd, p.slots).ok()),
                    name: conf::Bytes::new(p.name),
                    decorate_workers_output: p.decorate,
                })
                .collect();
            let mut any = false;
            for (c, out, err) in h.children {
                let Some(pool) = pools.get(c.pool) else {
                    continue;
                };
                let output = (out.is_some() || err.is_some()).then(|| Output {
                    stdout: out.and_then(|f| self.watch_output(f, c.pid, Stream::Stdout)),
                    stderr: err.and_then(|f| self.watch_output(f, c.pid, Stream::Stderr)),
                    capture: Capture::new(super::output::max_captured_text(
                        &pool.name,
                        pool.decorate_workers_output,
                        c.pid,
                    )),
                });
                let age = Duration::from_secs(now_wall.saturating_sub(c.started));
                self.children.insert(Child {
                    pid: c.pid,
                    generation: h.id,
                    pool: c.pool,
                    slot: c.slot,
                    started: now.checked_sub(age).unwrap_or(now),
                    started_wall: c.started,
                    asked_to_stop: false,
                    output,
                    timeouts: crate::timeouts::Memory::default(),
                    memory_over: 0,
                    recycling: false,
                    terminated: false,
                });
                any = true;
            }
            if any {
                let at = now + self.process_control_timeout;
                self.deadlines.arm_after_wakeup(Timer::Drain(h.id), at);
                draining.push(Draining {
                    id: h.id,
                    pools,
                    sent: Sig::Quit,
                });
            }
        }
        for d in draining {
            self.generations.add_draining(d);
        }
    }

    /// Watches a worker's output pipe; a pipe the loop cannot watch is closed at once
    /// (the worker's writes then fail instead of blocking it when the pipe is full).
    pub(super) fn watch_output(&self, pipe: OwnedFd, pid: i32, stream: Stream) -> Option<OwnedFd> {
        let token = super::Token::Output { pid, stream }.encode();
        match self.epoll.add(pipe.as_fd(), token, Trigger::Level) {
            Ok(()) => Some(pipe),
            Err(e) => {
                crate::error_sys!(
                    e,
                    "unable to watch what child {pid} says into {}",
                    stream.name()
                );
                None
            }
        }
    }

    /// A draining generation's `process_control_timeout` passed: its workers get the next
    /// signal (TERM, then KILL every second).
    pub(super) fn escalate_draining(&mut self, id: GenerationId) {
        let Some(d) = self.generations.draining_mut(id) else {
            return;
        };
        let next = if d.sent == Sig::Quit {
            Sig::Term
        } else {
            Sig::Kill
        };
        d.sent = next;
        let sig = match next {
            Sig::Quit => libc::SIGQUIT,
            Sig::Term => libc::SIGTERM,
            Sig::Kill => libc::SIGKILL,
        };
        for c in self.children.iter().filter(|c| c.generation == id) {
            let _ = process::kill(c.pid, sig);
        }
        self.deadlines
            .arm(Timer::Drain(id), Instant::now() + Duration::from_secs(1));
    }
}

/// What the next image takes over: every generation's workers (the current one's, told
/// to finish, and those still draining) with their pools' scoreboards and output pipes.
fn describe(sup: &Supervisor) -> Vec<wire::Generation> {
    let raw = |f: &OwnedFd| f.as_raw_fd();
    let child = |c: &Child| wire::Child {
        pid: c.pid,
        pool: c.pool,
        slot: c.slot,
        started: c.started_wall,
        stdout: c.output.as_ref().and_then(|o| o.stdout.as_ref()).map(raw),
        stderr: c.output.as_ref().and_then(|o| o.stderr.as_ref()).map(raw),
    };
    let gens: &Generations = &sup.generations;
    let mut out: Vec<wire::Generation> = gens
        .all_draining()
        .iter()
        .map(|d| wire::Generation {
            id: d.id,
            pools: d
                .pools
                .iter()
                .map(|p| wire::Pool {
                    name: p.name.to_vec(),
                    decorate: p.decorate_workers_output,
                    memfd: p
                        .scoreboard
                        .as_ref()
                        .and_then(Scoreboard::memfd)
                        .map(|f| f.as_raw_fd()),
                    slots: p.scoreboard.as_ref().map_or(1, Scoreboard::slot_count),
                })
                .collect(),
            children: sup
                .children
                .iter()
                .filter(|c| c.generation == d.id)
                .map(child)
                .collect(),
        })
        .collect();
    let current = gens.current();
    out.push(wire::Generation {
        id: current.id,
        pools: current
            .pools
            .iter()
            .map(|p| wire::Pool {
                name: p.spec.name.to_vec(),
                decorate: p.spec.decorate_workers_output,
                memfd: p.scoreboard.memfd().map(|f| f.as_raw_fd()),
                slots: p.scoreboard.slot_count(),
            })
            .collect(),
        children: sup
            .children
            .iter()
            .filter(|c| c.generation == current.id)
            .map(child)
            .collect(),
    });
    out.retain(|g| !g.children.is_empty());
    out
}

/// The descriptors `describe` names: the scoreboards' memfds and the workers' output
/// pipes, as this process owns them.
fn handed_descriptors(sup: &Supervisor) -> Vec<BorrowedFd<'_>> {
    let draining = sup
        .generations
        .all_draining()
        .iter()
        .flat_map(|d| d.pools.iter().filter_map(|p| p.scoreboard.as_ref()));
    let current = sup.generations.pools().map(|p| &p.scoreboard);
    let mut out: Vec<BorrowedFd<'_>> = draining
        .chain(current)
        .filter_map(Scoreboard::memfd)
        .collect();
    for c in sup.children.iter() {
        if let Some(o) = &c.output {
            out.extend(
                [&o.stdout, &o.stderr]
                    .into_iter()
                    .flatten()
                    .map(AsFd::as_fd),
            );
        }
    }
    out
}

/// Re-executes the master's command line in this process, handing over the sockets
/// (those of the current generation and `opened` by the reload's plan) and the
/// generations whose workers drain. Returns only on failure (everything is
/// close-on-exec again then).
pub(super) fn reexec(sup: &Supervisor, opened: &[Listener]) -> std::io::Error {
    signals::mask(&signals::MASTER_SIGNALS, true);
    let _ = crate::log::with(|l| l.restore_stderr());
    let listeners: Vec<&Listener> = sup
        .generations
        .pools()
        .map(|p| &p.listener)
        .chain(sup.admin.as_ref().map(|a| &a.listener))
        .chain(opened.iter())
        .collect();
    let socks: Vec<(Vec<u8>, i32)> = listeners
        .iter()
        .map(|l| (l.key.clone(), l.fd.as_raw_fd()))
        .collect();
    let handed = describe(sup);
    let mut kept: Vec<BorrowedFd<'_>> = listeners.iter().map(|l| l.fd()).collect();
    kept.extend(handed_descriptors(sup));
    let set_cloexec = |on: bool| {
        for &f in &kept {
            let _ = fd::set_cloexec(f, on);
        }
    };
    set_cloexec(false);
    let vars = rfpm_core::listen_addr::export_vars(&socks);
    for (k, v) in &vars {
        // A key is a socket's path exactly, which need not be UTF-8.
        std::env::set_var(
            k,
            <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(v),
        );
    }
    std::env::remove_var(format!("FPM_SOCKETS_{}", vars.len().max(1)));
    std::env::set_var(REEXEC_ENV, "1");
    std::env::set_var(GENERATION_ENV, sup.generations.current().id.to_string());
    std::env::set_var(HANDOFF_ENV, wire::encode(&handed));
    let argv = &sup.argv;
    let shown: Vec<String> = argv
        .iter()
        .take(11)
        .map(|a| format!("\"{}\"", String::from_utf8_lossy(a)))
        .collect();
    crate::notice!(
        "reloading: execvp(\"{}\", {{{}}})",
        argv.first()
            .map_or_else(String::new, |a| String::from_utf8_lossy(a).into_owned()),
        shown.join(", ")
    );
    let e = process::execvp(argv);
    set_cloexec(true);
    for k in [REEXEC_ENV, GENERATION_ENV, HANDOFF_ENV] {
        std::env::remove_var(k);
    }
    signals::mask(&signals::MASTER_SIGNALS, false);
    e
}
