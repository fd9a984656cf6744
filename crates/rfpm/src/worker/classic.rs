//! The classic worker loop: next connection → next request → prepare → run PHP →
//! finish, one request at a time (reference §3.2).
use super::accept::{close_gracefully, Acceptor, Connection};
use super::finish::RequestLog;
use super::io::FcgiIo;
use super::StatusSource;
use crate::log::Level;
use crate::pool::Pool;
use crate::scoreboard::{now_us, Scoreboard, Slot, WorkerState};
use crate::{access, signals, status};
use fcgi::server::ServerConn;
use rfpm_sys::fd;
use std::cell::Cell;
use std::io::{self, Write};
use std::net::IpAddr;
use std::os::fd::BorrowedFd;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

pub(super) struct Worker<'p> {
    pub(super) pool: &'p Pool,
    pub(super) sb: &'p Scoreboard,
    pub(super) slot: &'p Slot,
    pub(super) served: u64,
    /// This worker's `pm.max_requests` (with its jitter); 0 = no limit.
    pub(super) max_requests: u64,
    pub(super) status: StatusSource<'p>,
    pub(super) access_fd: Option<BorrowedFd<'p>>,
    /// The FastCGI peer of the current connection (TCP only).
    pub(super) peer: Option<IpAddr>,
    pub(super) ppid: i32,
    /// Where the current request's CPU time starts: the previous request's end (or the
    /// worker's start). times() once per request, not twice: what a worker does between
    /// requests is a few µs, below the clock tick times() counts in.
    pub(super) cpu_start: (u64, u64),
    /// Where close_gracefully discards what the peer still sends.
    pub(super) drain: Vec<u8>,
    /// The request id generator, when the pool's requests get ids (rfpm).
    pub(super) ids: Option<rfpm_core::request_id::Generator>,
    /// The current request's id (empty when the pool gives none).
    pub(super) request_id: rfpm_core::request_id::RequestId,
}

impl Worker<'_> {
    /// Serves connections until the worker must stop (SIGQUIT, `pm.max_requests`, a
    /// failed accept).
    pub(super) fn serve_all(&mut self, acceptor: &mut Acceptor<'_>) {
        let (slot, sb) = (self.slot, self.sb);
        let mark_idle = || {
            if slot.state() != WorkerState::Idle {
                sb.leave_active();
            }
            slot.set_state(WorkerState::Idle, now_us());
        };
        while let Some(accepted) = acceptor.next(mark_idle) {
            self.peer = accepted.peer;
            let mut conn = accepted.conn;
            conn.set_max_params_len(self.pool.max_params_size);
            let go_on = self.serve_requests(&mut conn);
            // The socket closes here; the buffers serve the next connection.
            acceptor.recycle(conn);
            if !go_on || signals::worker_quit() {
                return;
            }
        }
    }

    /// The requests of one connection; `false` when the worker must exit.
    pub(super) fn serve_requests(&mut self, conn: &mut ServerConn<Connection>) -> bool {
        loop {
            let Some(mut req) = self.read_request(conn) else {
                // End of stream or a malformed request: php-fpm closes at once, without
                // the graceful shutdown (the peer may see a reset).
                return true;
            };
            self.served += 1;
            let keep = self.serve(conn, &mut req);
            self.after_request(conn, req);
            if self.limit_reached() {
                close_gracefully(conn, &mut self.drain);
                return false;
            }
            if !keep || signals::worker_quit() {
                break;
            }
        }
        close_gracefully(conn, &mut self.drain);
        true
    }

    /// `pm.max_requests` (with its jitter) is reached.
    pub(super) fn limit_reached(&self) -> bool {
        self.max_requests > 0 && self.served >= self.max_requests
    }

    /// The next request of a connection (the slot Reading headers); `None` at the end
    /// of the stream, for a malformed request (refused or logged as php-fpm does) or
    /// when `request_read_timeout` passed: the connection must then be closed.
    pub(super) fn read_request(
        &mut self,
        conn: &mut ServerConn<Connection>,
    ) -> Option<fcgi::server::Request> {
        let was_idle = self.slot.state() == WorkerState::Idle;
        self.slot.begin_request(now_us());
        self.sb.header().accepted.fetch_add(1, Ordering::Relaxed);
        if was_idle {
            self.sb.enter_active();
        }
        if self.pool.read_timeout > 0 {
            let t = Duration::from_secs(self.pool.read_timeout);
            conn.get_mut().set_deadline(Some(Instant::now() + t));
        }
        let read = conn.read_request();
        let Ok(Some(req)) = read else {
            if conn.close_reason() == Some(fcgi::server::CloseReason::ParamsTooLarge) {
                self.refuse_params(conn);
            }
            if matches!(&read, Err(fcgi::server::Error::Io(e)) if e.kind() == io::ErrorKind::TimedOut)
            {
                // A client that trickles its request holds the worker no longer.
                crate::warning!(
                    "[pool {}] request_read_timeout ({}s) passed before the request was read: connection closed",
                    self.pool.name,
                    self.pool.read_timeout
                );
            }
            return None;
        };
        Some(req)
    }

    /// After a request: its params' allocations kept for the next one, the end of its
    /// output marked for the master.
    pub(super) fn after_request(
        &mut self,
        conn: &mut ServerConn<Connection>,
        mut req: fcgi::server::Request,
    ) {
        // The next request decodes into these params' allocations.
        conn.recycle_params(std::mem::take(&mut req.params));
        if self.pool.catch_workers_output {
            // End of request: the master ends any pending partial line here.
            let _ = std::io::stdout().flush();
            let _ = fd::write(fd::Stdio::Err.borrow(), crate::capture::MARKER);
        }
    }

    /// A request whose params exceed `request.max_params_size` (rfpm's bound; php-fpm
    /// has none): said in the worker log and to the web server (FastCGI stderr, then
    /// END_REQUEST), where php-fpm's worker messages go; the connection then closes.
    fn refuse_params(&mut self, conn: &mut ServerConn<Connection>) {
        let msg = format!(
            "[pool {}] request refused: its FastCGI params exceed request.max_params_size ({} bytes)",
            self.pool.name, self.pool.max_params_size
        );
        let mut started = false;
        let msg = rfpm_core::shown::unshow(&msg);
        super::io::log_request(conn, Level::Warning, &msg, &mut started, true);
        let _ = conn.end_request(0, 0);
        // What the peer still sends is discarded (within close_gracefully's bound), so
        // the answer is not lost to a reset.
        close_gracefully(conn, &mut self.drain);
    }

    /// One request; returns whether the connection stays open for another.
    pub(super) fn serve(
        &mut self,
        conn: &mut ServerConn<Connection>,
        req: &mut fcgi::server::Request,
    ) -> bool {
        self.serve_with(conn, req, |io, sreq| sapi::run(io, sreq))
    }

    /// One request, PHP's part run by `php` (a request of its own in a classic worker,
    /// the application's handler in worker mode); returns whether the connection stays
    /// open for another.
    pub(super) fn serve_with(
        &mut self,
        conn: &mut ServerConn<Connection>,
        req: &mut fcgi::server::Request,
        mut php: impl FnMut(&mut FcgiIo<'_>, &sapi::Request<'_>) -> sapi::Outcome,
    ) -> bool {
        self.assign_request_id(&mut req.params);
        let prepared = self.prepare(&mut req.params);
        let sreq = prepared.request();
        let p = prepared.vars.0;
        let log = RequestLog {
            slot: self.slot,
            header: self.sb.header(),
            pool: self.pool,
            status: &self.status,
            access_fd: self.access_fd,
            peer: self.peer,
            ppid: self.ppid,
            cpu_start: self.cpu_start,
            cpu_end: Cell::new(None),
            params: p,
            request_id: self.request_id,
        };
        let mut io = FcgiIo {
            log: &log,
            conn,
            body_path: prepared.body_file.clone(),
            body: None,
            finished: false,
            closed: false,
            broken: false,
            keep: req.keep_conn,
            stderr_started: false,
        };
        // PHP_VALUE, then PHP_ADMIN_VALUE: applied to the worker's master values before
        // PHP starts the request, so they persist (reference §7.8).
        for (name, admin) in [("PHP_VALUE", false), ("PHP_ADMIN_VALUE", true)] {
            if let Some(value) = p.get(name) {
                sapi::apply_request_ini(value, admin, &mut |msg| {
                    sapi::Conn::log(&mut io, Level::Error, &rfpm_core::shown::unshow(&msg));
                });
            }
        }
        let outcome = php(&mut io, &sreq);
        // The next request's CPU time starts where this one's ended.
        self.cpu_start = log
            .cpu_end
            .get()
            .unwrap_or_else(rfpm_sys::time::cpu_times_us);
        if self.slot.state() != WorkerState::Finishing {
            // No PHP request end (start-up failed, or no method): still Finishing.
            self.slot.set_state(WorkerState::Finishing, now_us());
        }
        let FcgiIo {
            finished,
            closed,
            broken,
            ..
        } = io;
        if outcome.startup_failed {
            let _ = conn.end_request(0, 0);
            std::process::exit(crate::cli::EX_SOFTWARE);
        }
        if !finished && conn.end_request(0, 0).is_err() {
            return false;
        }
        if closed || broken || !req.keep_conn {
            return false;
        }
        conn.drain_stdin().is_ok() && conn.keep_alive()
    }
}

impl Worker<'_> {
    /// The request's id (rfpm, when the pool gives ids): the web server's
    /// `HTTP_X_REQUEST_ID` when usable, else a generated one. Written into the slot with
    /// the served count (the master pairs the worker's output with it), and into the
    /// params under `request_id.server_var` when set (so `$_SERVER` is php-fpm's
    /// otherwise).
    fn assign_request_id(&mut self, params: &mut fcgi::params::Params) {
        let Some(gen) = self.ids.as_mut() else {
            return;
        };
        let id = rfpm_core::request_id::choose(params.get(rfpm_core::request_id::PARAM), gen);
        self.request_id = id;
        self.slot.set_request_id(self.served, id.as_bytes());
        if let Some(var) = &self.pool.request_id_var {
            params.set(var, id.as_bytes());
        }
    }

    /// The status page (reference §9.3) from the status source's scoreboard.
    pub(super) fn status_page(&self, query: &[u8], head: bool) -> sapi::Action {
        let (format, full) = status::select(query, sapi::COMPAT.status_query_prefix_match);
        let snapshot = pool_status(&self.status);
        let body = status::render(&snapshot, format, full, &|t| {
            let text = rfpm_sys::time::strftime_local(
                i64::try_from(t).unwrap_or(i64::MAX),
                access::TIME_FORMAT.as_bytes(),
            );
            // The C locale's digits and month names: ASCII.
            String::from_utf8_lossy(&text).into_owned()
        });
        let mut headers = vec![status::EXPIRES.to_string(), status::NO_CACHE.to_string()];
        if !head {
            headers.push(status::content_type(format).to_string());
        }
        sapi::Action::Respond { headers, body }
    }
}

/// A snapshot of the status source's pool, now.
pub(super) fn pool_status(src: &StatusSource<'_>) -> status::PoolStatus {
    crate::scoreboard::pool_status(src.pool, src.pm, src.sb, src.draining)
}
