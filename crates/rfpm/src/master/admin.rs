//! The admin listener (rfpm, `admin.listen`): `/health`, `/ready`, `/status`,
//! `/metrics` and a status page for a browser, served over HTTP/1.1 by the master's own
//! event loop, so it answers while every worker of every pool is busy.
//!
//! Everything is bounded: a request head ([`admin::MAX_HEAD`] bytes, parsed by
//! `rfpm_core::admin`), the connections ([`MAX_CONNS`]: past it the one idle longest is
//! closed for the newcomer), the time a connection has to send a whole request
//! ([`DEADLINE`]: 408 if it sent part of one) or may wait idle between two ([`IDLE`]),
//! both checked by the 1-second tick, accepts per wake-up. The sockets are non-blocking: an answer the kernel does not take at once
//! waits for the socket to be writable (within the same deadline). When the master runs
//! out of descriptors it stops watching the listener until the next tick instead of
//! spinning.
use super::event::Token;
use super::listen::Listener;
use super::Supervisor;
use crate::pool::Pm;
use crate::scoreboard;
use rfpm_core::admin::{self, Method, Parse, Route};
use rfpm_core::metrics::{self, BuildInfo, PoolMetrics};
use rfpm_sys::epoll::Trigger;
use rfpm_sys::net;
use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

/// Most admin connections open at once.
pub const MAX_CONNS: usize = 128;
/// Time a connection has to send a whole request (from its accept, or from the first
/// byte of a next one) and to take the answer.
pub const DEADLINE: Duration = Duration::from_secs(10);
/// Time a keep-alive connection may wait idle for its next request: longer than the
/// usual scrape intervals (Prometheus' default is 15 s), so a scraper keeps its
/// connection; [`MAX_CONNS`] bounds how many may wait.
pub const IDLE: Duration = Duration::from_secs(60);
/// Connections accepted per wake-up (the listener is level-triggered: more wake it
/// again).
const ACCEPTS_PER_WAKEUP: usize = 32;
/// Largest answer kept: a status of many thousands of workers is far below it.
const MAX_ANSWER: usize = 64 << 20;

/// The status page for a browser (`GET /`): it reads `/status` and draws it.
const PAGE: &str = include_str!("../../../../share/admin.html");

/// The listener and its connections.
pub struct Admin {
    pub listener: Listener,
    conns: BTreeMap<u32, Conn>,
    next_id: u32,
    /// The listener is out of the epoll set (descriptors ran out) until the next tick.
    paused: bool,
}

struct Conn {
    fd: OwnedFd,
    /// Received bytes not yet answered.
    buf: Vec<u8>,
    /// The answer being written, and how much of it was.
    out: Vec<u8>,
    sent: usize,
    /// Watched for writability (an answer waits), not for reading.
    writable: bool,
    close_after: bool,
    deadline: Instant,
    /// Last time bytes moved either way (the longest idle is closed first).
    active: Instant,
}

/// What a connection does after an event.
enum Next {
    Keep,
    Close,
}

impl Admin {
    pub fn new(listener: Listener) -> Admin {
        Admin {
            listener,
            conns: BTreeMap::new(),
            next_id: 0,
            paused: false,
        }
    }
}

impl Supervisor {
    /// Puts the admin listener in the event loop (non-blocking, level-triggered).
    pub(super) fn watch_admin(&mut self) {
        let Some(a) = &self.admin else {
            return;
        };
        let fd = a.listener.fd();
        if let Err(e) = rfpm_sys::fd::set_nonblocking(fd) {
            crate::error_sys!(e, "admin.listen: unable to make the socket non-blocking");
        }
        if let Err(e) = self.epoll.add(fd, Token::Admin.encode(), Trigger::Level) {
            crate::error_sys!(e, "admin.listen: unable to watch the socket");
        }
    }

    /// The listener has connections waiting.
    pub(super) fn on_admin_listener(&mut self) {
        for _ in 0..ACCEPTS_PER_WAKEUP {
            let Some(a) = &mut self.admin else {
                return;
            };
            let fd = match net::accept_nonblocking(a.listener.fd()) {
                Ok(fd) => fd,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                    crate::warning!(
                        "admin.listen: out of file descriptors, not accepting until the next second"
                    );
                    let _ = self.epoll.delete(a.listener.fd());
                    a.paused = true;
                    return;
                }
                // ECONNABORTED and the like: that connection is gone, the others wait.
                Err(_) => continue,
            };
            if a.conns.len() >= MAX_CONNS {
                // Room for the newcomer: the connection idle longest goes.
                if let Some(id) = a
                    .conns
                    .iter()
                    .min_by_key(|(_, c)| c.active)
                    .map(|(&id, _)| id)
                {
                    self.close_admin(id);
                }
            }
            let Some(a) = &mut self.admin else {
                return;
            };
            a.next_id = a.next_id.wrapping_add(1);
            let id = a.next_id;
            if self
                .epoll
                .add(fd.as_fd(), Token::AdminConn { id }.encode(), Trigger::Level)
                .is_err()
            {
                continue;
            }
            let now = Instant::now();
            a.conns.insert(
                id,
                Conn {
                    fd,
                    buf: Vec::new(),
                    out: Vec::new(),
                    sent: 0,
                    writable: false,
                    close_after: false,
                    deadline: now + DEADLINE,
                    active: now,
                },
            );
        }
    }

    /// A connection is readable (or writable while an answer waits).
    pub(super) fn on_admin_conn(&mut self, id: u32) {
        let Some(mut c) = self.admin.as_mut().and_then(|a| a.conns.remove(&id)) else {
            return;
        };
        let next = if c.out.is_empty() {
            self.read_and_answer(&mut c, id)
        } else {
            match self.flush(&mut c, id) {
                // The answer left: requests that came meanwhile are answered now.
                Next::Keep if c.out.is_empty() => self.answer(&mut c, id),
                next => next,
            }
        };
        match next {
            Next::Keep => {
                if let Some(a) = &mut self.admin {
                    a.conns.insert(id, c);
                }
            }
            Next::Close => {
                let _ = self.epoll.delete(c.fd.as_fd());
            }
        }
    }

    fn read_and_answer(&mut self, c: &mut Conn, id: u32) -> Next {
        let mut chunk = [0u8; 4096];
        loop {
            let room = (admin::MAX_HEAD + 1).saturating_sub(c.buf.len());
            if room == 0 {
                break;
            }
            let want = room.min(chunk.len());
            match net::recv_nowait(c.fd.as_fd(), &mut chunk[..want]) {
                Ok(0) => return Next::Close,
                Ok(n) => {
                    let now = Instant::now();
                    if c.buf.is_empty() {
                        // A request begins: it has DEADLINE to arrive whole.
                        c.deadline = c.deadline.min(now + DEADLINE);
                    }
                    c.buf.extend_from_slice(&chunk[..n]);
                    c.active = now;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Next::Close,
            }
        }
        self.answer(c, id)
    }

    /// Answers the requests at the head of the buffer, one after another, while they
    /// are whole and their answers leave at once.
    fn answer(&mut self, c: &mut Conn, id: u32) -> Next {
        loop {
            match admin::parse(&c.buf) {
                Parse::Incomplete => return Next::Keep,
                Parse::Refuse(code) => {
                    c.buf.clear();
                    c.out = admin::refusal(code);
                    c.close_after = true;
                }
                Parse::Request(req) => {
                    c.buf.drain(..req.len.min(c.buf.len()));
                    c.out = match req.method {
                        Method::Other => {
                            c.close_after = true;
                            admin::refusal(405)
                        }
                        Method::Get | Method::Head => {
                            c.close_after = !req.keep_alive;
                            let (code, ctype, body) = self.page(&req);
                            admin::response(
                                code,
                                ctype,
                                body.as_bytes(),
                                req.method == Method::Head,
                                req.keep_alive,
                            )
                        }
                    };
                    if c.out.len() > MAX_ANSWER {
                        c.out = admin::refusal(503);
                        c.close_after = true;
                    }
                }
            }
            match self.flush(c, id) {
                // Sent whole, the connection stays: a next request may be here already.
                Next::Keep if c.out.is_empty() && !c.buf.is_empty() => {}
                next => return next,
            }
        }
    }

    /// Writes what the kernel takes; the rest waits for the socket to be writable.
    fn flush(&mut self, c: &mut Conn, id: u32) -> Next {
        let token = Token::AdminConn { id }.encode();
        while c.sent < c.out.len() {
            match net::send_nowait(c.fd.as_fd(), &c.out[c.sent..]) {
                Ok(n) => {
                    c.sent += n;
                    c.active = Instant::now();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if c.writable {
                        return Next::Keep;
                    }
                    c.writable = true;
                    return match self.epoll.modify(c.fd.as_fd(), token, Trigger::Writable) {
                        Ok(()) => Next::Keep,
                        Err(_) => Next::Close,
                    };
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Next::Close,
            }
        }
        c.out.clear();
        c.sent = 0;
        if c.close_after {
            return Next::Close;
        }
        c.deadline = Instant::now() + if c.buf.is_empty() { IDLE } else { DEADLINE };
        if c.writable {
            c.writable = false;
            if self
                .epoll
                .modify(c.fd.as_fd(), token, Trigger::Level)
                .is_err()
            {
                return Next::Close;
            }
        }
        Next::Keep
    }

    fn close_admin(&mut self, id: u32) {
        if let Some(c) = self.admin.as_mut().and_then(|a| a.conns.remove(&id)) {
            let _ = self.epoll.delete(c.fd.as_fd());
        }
    }

    /// The 1-second tick: connections past their deadline are answered 408 (when they
    /// sent part of a request) and closed; a paused listener is watched again.
    pub(super) fn admin_tick(&mut self) {
        let Some(a) = &mut self.admin else {
            return;
        };
        if a.paused {
            a.paused = false;
            let _ = self
                .epoll
                .add(a.listener.fd(), Token::Admin.encode(), Trigger::Level);
        }
        let now = Instant::now();
        let late: Vec<u32> = a
            .conns
            .iter()
            .filter(|(_, c)| c.deadline <= now)
            .map(|(&id, _)| id)
            .collect();
        for id in late {
            let Some(c) = self.admin.as_mut().and_then(|a| a.conns.remove(&id)) else {
                continue;
            };
            if c.out.is_empty() && !c.buf.is_empty() {
                // One try, never blocking: the client gets a reason if it listens.
                let _ = net::send_nowait(c.fd.as_fd(), &admin::refusal(408));
            }
            let _ = self.epoll.delete(c.fd.as_fd());
        }
    }

    /// The answer to a GET: status, content type, body.
    fn page(&self, req: &admin::Request) -> (u16, &'static str, String) {
        const TEXT: &str = "text/plain; charset=utf-8";
        match admin::route(&req.path) {
            Route::Health => (200, TEXT, "ok\n".to_string()),
            Route::Ready => match self.unready_reason() {
                None => (200, TEXT, "ready\n".to_string()),
                Some(why) => (503, TEXT, format!("not ready: {why}\n")),
            },
            Route::Status => (200, "application/json", self.status_document()),
            Route::Metrics => {
                let f = metrics::negotiate(req.accept.as_deref());
                (200, f.content_type(), self.metrics_text(f))
            }
            Route::Page => (200, "text/html; charset=utf-8", PAGE.to_string()),
            Route::NotFound => (404, TEXT, "not found\n".to_string()),
        }
    }

    /// Why the master cannot take requests now, if it cannot: it is stopping, or a pool
    /// has no worker able to accept and cannot start one on demand (worker mode: its
    /// script failed to boot too often and the pool gave up until a reload).
    fn unready_reason(&self) -> Option<String> {
        use rfpm_core::lifecycle::State;
        match self.life.state() {
            State::Normal | State::Reloading => {}
            s => return Some(format!("the master is {}", s.name())),
        }
        let current = self.generations.current();
        current
            .pools
            .iter()
            .enumerate()
            .find(|&(i, p)| !self.pool_ready(i, p))
            .map(|(i, p)| {
                // An HTTP body: the name as text.
                let name = p.spec.name.to_str_lossy();
                if p.boot.not_spawning {
                    format!("pool {name} gave up booting its worker script")
                } else if self.workers(i).any(|(_, booting)| booting) {
                    format!("pool {name} is booting its worker script")
                } else {
                    format!("pool {name} has no worker able to accept")
                }
            })
    }

    fn pool_ready(&self, i: usize, p: &super::generation::PoolRuntime) -> bool {
        // A worker that still boots its worker script takes no request yet.
        let accepting = self
            .workers(i)
            .any(|(c, booting)| !c.asked_to_stop && !c.recycling && !booting);
        !p.boot.not_spawning && (accepting || p.spec.pm == Pm::Ondemand)
    }

    /// The workers of pool `i` of the current generation, each with whether its slot
    /// says it boots (worker mode).
    fn workers(&self, i: usize) -> impl Iterator<Item = (&super::children::Child, bool)> {
        let current = self.generations.current();
        let sb = current.pool(i).map(|p| &p.scoreboard);
        self.children.of_pool(current.id, i).map(move |c| {
            let booting = sb
                .and_then(|sb| sb.slot(c.slot))
                .is_some_and(|s| s.state() == crate::scoreboard::WorkerState::Booting);
            (c, booting)
        })
    }

    /// Each pool's figures for one scrape, with the status snapshot they come from.
    fn snapshots(&self) -> Vec<Snapshot> {
        let current = self.generations.current();
        current
            .pools
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let draining = self
                    .generations
                    .all_draining()
                    .iter()
                    .flat_map(|d| d.pools.iter())
                    .filter(|d| d.name == p.spec.name)
                    .filter_map(|d| d.scoreboard.as_ref());
                let status = scoreboard::pool_status(
                    &p.spec.name,
                    p.spec.pm_name(),
                    &p.scoreboard,
                    draining,
                );
                // RSS only of the master's own children: a pid read from the scoreboard
                // is the workers' word.
                let rss = status
                    .procs
                    .iter()
                    .map(|w| {
                        self.children
                            .contains(w.pid)
                            .then(|| rfpm_sys::procfs::rss_bytes(w.pid))
                            .flatten()
                    })
                    .collect();
                let h = p.scoreboard.header();
                Snapshot {
                    status,
                    scrape_uri: scrape_uri(&p.spec),
                    durations: h.durations.view(),
                    queue_times: h.queue_times.view(),
                    responses: h.responses(),
                    restarts: p.ended,
                    rss,
                    ready: self.pool_ready(i, p),
                    slowlog_timeout: p.spec.timeouts.slowlog,
                    max_children: u64::try_from(p.spec.max_children).unwrap_or(u64::MAX),
                    worker_mode: p.spec.worker_script.is_some(),
                    boots: h.boots.view(),
                }
            })
            .collect()
    }

    fn metrics_text(&self, f: metrics::Format) -> String {
        let snaps = self.snapshots();
        let pools: Vec<PoolMetrics<'_>> = snaps.iter().map(Snapshot::metrics).collect();
        let php = sapi::php_version();
        let build = BuildInfo {
            version: env!("CARGO_PKG_VERSION"),
            php_version: &php,
        };
        metrics::render(&pools, &build, f)
    }

    fn status_document(&self) -> String {
        let snaps = self.snapshots();
        let pools: Vec<_> = snaps
            .iter()
            .map(|s| {
                let extra = admin::PoolExtra {
                    slowlog_timeout: s.slowlog_timeout,
                    max_children: s.max_children,
                    ready: s.ready,
                };
                (s.metrics(), extra)
            })
            .collect();
        let php = sapi::php_version();
        let ready = self.unready_reason().is_none();
        let overview = admin::Overview {
            version: env!("CARGO_PKG_VERSION"),
            php_version: &php,
            pid: rfpm_sys::process::getpid(),
            generation: self.generations.current().id,
            state: self.life.state().name(),
            ready,
        };
        admin::status_json(&overview, &pools)
    }
}

/// One pool's figures, owned for the length of a scrape.
struct Snapshot {
    status: rfpm_core::status::PoolStatus,
    scrape_uri: String,
    durations: rfpm_core::scoreboard::HistogramView,
    queue_times: rfpm_core::scoreboard::HistogramView,
    responses: [u64; 5],
    restarts: [u64; metrics::EndReason::ALL.len()],
    rss: Vec<Option<u64>>,
    ready: bool,
    slowlog_timeout: u64,
    max_children: u64,
    worker_mode: bool,
    boots: rfpm_core::scoreboard::HistogramView,
}

impl Snapshot {
    fn metrics(&self) -> PoolMetrics<'_> {
        PoolMetrics {
            status: &self.status,
            scrape_uri: &self.scrape_uri,
            durations: self.durations,
            queue_times: self.queue_times,
            responses: self.responses,
            restarts: self.restarts,
            rss: &self.rss,
            worker_mode: self.worker_mode,
            boots: self.boots,
        }
    }
}

/// The exporter's `scrape_uri` for a pool: its socket as a URI.
fn scrape_uri(p: &crate::pool::Pool) -> String {
    if p.is_unix {
        // A label and a JSON string: text (a byte that is not UTF-8 shows as U+FFFD).
        format!("unix://{}", p.listen.to_str_lossy())
    } else {
        format!("tcp://{}", p.listen.to_str_lossy())
    }
}
