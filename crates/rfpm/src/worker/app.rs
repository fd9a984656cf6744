//! Worker mode (`worker.script`): the worker runs the pool's worker script once (the
//! boot: the application starts), and the script's `frankenphp_handle_request()` calls
//! pull the pool's requests from the same acceptor the classic loop uses, one per call
//! (FrankenPHP's worker API, `crates/sapi/src/worker.rs`). Every request of the pool
//! goes to the application (front controller), except the ping and status pages, which
//! the worker answers itself.
//!
//! How the script ended becomes the worker's exit code, which the master reads
//! ([`BOOT_FAILED`], [`FATAL_IN_REQUEST`]): a boot that fails is retried with a growing
//! delay, a fatal error replaces the worker, `exit()` in a handler boots again.
use super::accept::{close_gracefully, Acceptor, Connection};
use super::classic::Worker;
use super::io::FcgiIo;
use crate::log::Level;
use crate::scoreboard::{now_us, WorkerState};
use crate::signals;
use fcgi::server::ServerConn;
use sapi::worker::{Host, Served};
use std::cell::Cell;
use std::ffi::{CStr, CString};
use std::io::Write;

/// The worker script ended before its first `frankenphp_handle_request()` call (or
/// could not be opened): the boot failed.
pub const BOOT_FAILED: i32 = 78;
/// A fatal error (memory limit, `max_execution_time`, …) ended the worker script after
/// its boot.
pub const FATAL_IN_REQUEST: i32 = 79;

/// Runs the worker script; never returns.
pub(super) fn run(w: Worker<'_>, acceptor: Acceptor<'_>, script: &conf::Bytes) -> ! {
    // Until its first frankenphp_handle_request() the worker takes no request: the
    // status page and the admin listener's /ready tell it from an idle one.
    let boot_started_us = now_us();
    w.slot.set_state(WorkerState::Booting, boot_started_us);
    // In the environment, so getenv() and every $_SERVER of the worker see it.
    std::env::set_var("FRANKENPHP_WORKER", "1");
    // The path's bytes as configured (a Latin-1 name is the file of that name).
    let script_bytes: &[u8] = script;
    let name = script_bytes
        .rsplit(|&b| b == b'/')
        .next()
        .unwrap_or(script_bytes);
    let dir: &[u8] = match script_bytes.iter().rposition(|&b| b == b'/') {
        Some(0) => b"/",
        Some(i) => &script_bytes[..i],
        None => b"",
    };
    let script_name = [b"/", name].concat();
    let vars = BootVars::new(&[
        (b"FRANKENPHP_WORKER", b"1"),
        (b"SCRIPT_FILENAME", script_bytes),
        (b"SCRIPT_NAME", &script_name),
        (b"PHP_SELF", &script_name),
        (b"DOCUMENT_ROOT", dir),
    ]);
    let path = CString::new(script_bytes).unwrap_or_default();
    let uri = CString::new(script_name).unwrap_or_default();
    let boot = sapi::Request {
        vars: &vars,
        method: None,
        query: c"",
        content_type: c"",
        content_length: 0,
        request_uri: Some(&uri),
        path_translated: Some(&path),
        auth: None,
        cookie: None,
        php_self: &uri,
        action: sapi::Action::Execute,
    };
    let mut app = App {
        w,
        acceptor,
        kept: None,
        boot_started_us: Some(boot_started_us),
    };
    let end = sapi::worker::run(&mut BootIo, &boot, &mut app);
    let _ = std::io::stdout().flush();
    if let Some(mut conn) = app.kept.take() {
        close_gracefully(&mut conn, &mut app.w.drain);
    }
    if let Some(errno) = end.open_errno {
        crate::error!(
            "[pool {}] unable to open the worker.script '{script}': {} ({errno})",
            app.w.pool.name,
            rfpm_sys::strerror(errno)
        );
    }
    let code = if end.startup_failed {
        crate::cli::EX_SOFTWARE
    } else if end.calls == 0 {
        BOOT_FAILED
    } else if end.fatal || end.exit_status == 255 {
        // A fatal error ends the script by a bailout, or (inside a function call) by
        // the same unwinding exit() uses; its exit status tells it apart.
        FATAL_IN_REQUEST
    } else {
        0
    };
    std::process::exit(code);
}

/// The boot's side of PHP: output (and output between requests) to the worker's
/// stdout, messages to the worker log; no response, no body.
struct BootIo;

impl sapi::Conn for BootIo {
    fn write(&mut self, data: &[u8]) -> bool {
        let _ = std::io::stdout().write_all(data);
        true
    }
    fn flush(&mut self) -> bool {
        let _ = std::io::stdout().flush();
        true
    }
    fn read_body(&mut self, _buf: &mut [u8]) -> Result<usize, String> {
        Ok(0)
    }
    fn finish(&mut self) -> bool {
        false
    }
    fn is_open(&self) -> bool {
        false
    }
    fn log(&mut self, level: Level, msg: &[u8]) {
        crate::log::log_stream(level, "fpm_request", line!(), msg);
    }
    fn app_log(&mut self, level: Level, message: &[u8], context: Option<&[u8]>) {
        crate::log::app_entry(level, message, context);
    }
    fn app_log_enabled(&self, level: Level) -> bool {
        crate::log::enabled(level)
    }
}

/// The boot's `$_SERVER` variables (beside the environment).
struct BootVars(Vec<(CString, CString)>);

impl BootVars {
    fn new(vars: &[(&[u8], &[u8])]) -> BootVars {
        BootVars(
            vars.iter()
                .rev()
                .filter_map(|(k, v)| Some((CString::new(*k).ok()?, CString::new(*v).ok()?)))
                .collect(),
        )
    }
}

impl sapi::Vars for BootVars {
    fn each(&self, f: &mut dyn FnMut(&CStr, &[u8])) {
        for (k, v) in &self.0 {
            f(k, v.to_bytes());
        }
    }
    fn get(&self, name: &[u8]) -> Option<&[u8]> {
        self.get_cstr(name).map(CStr::to_bytes)
    }
    fn get_cstr(&self, name: &[u8]) -> Option<&CStr> {
        self.0
            .iter()
            .find(|(k, _)| k.to_bytes() == name)
            .map(|(_, v)| v.as_c_str())
    }
}

/// Where the worker script's requests come from: the pool's acceptor, and the
/// connection kept alive since the previous request.
struct App<'w, 'a> {
    w: Worker<'w>,
    acceptor: Acceptor<'a>,
    kept: Option<ServerConn<Connection>>,
    /// When the boot began, until the first `frankenphp_handle_request()` records it.
    boot_started_us: Option<u64>,
}

impl App<'_, '_> {
    fn must_stop(&self) -> bool {
        signals::worker_quit() || (self.w.max_requests > 0 && self.w.served >= self.w.max_requests)
    }

    fn close(&mut self, mut conn: ServerConn<Connection>) {
        close_gracefully(&mut conn, &mut self.w.drain);
        self.acceptor.recycle(conn);
    }
}

impl Host for App<'_, '_> {
    fn handle(
        &mut self,
        serve: &mut dyn FnMut(&mut dyn sapi::Conn, &sapi::Request<'_>) -> Served,
    ) -> bool {
        if let Some(t) = self.boot_started_us.take() {
            let us = now_us().saturating_sub(t);
            self.w.sb.header().boots.observe(us);
            // The boot's output and PHP errors went to the master's log (a failed
            // boot is told there with its cause); the requests' go where
            // catch_workers_output says, as in a classic pool.
            if !self.w.pool.catch_workers_output {
                let _ = std::io::stdout().flush();
                let _ = rfpm_sys::fd::devnull_onto(rfpm_sys::fd::Stdio::Out);
                let _ = rfpm_sys::fd::devnull_onto(rfpm_sys::fd::Stdio::Err);
            }
        }
        loop {
            if self.must_stop() {
                if let Some(conn) = self.kept.take() {
                    self.close(conn);
                }
                return false;
            }
            let (slot, sb) = (self.w.slot, self.w.sb);
            let mark_idle = || {
                // From a request (not from the boot, which was never active).
                if !slot.state().is_idle() {
                    sb.leave_active();
                }
                slot.set_state(WorkerState::Idle, now_us());
            };
            let mut conn = match self.kept.take() {
                Some(c) => {
                    // A kept-alive connection's wait for its next request is idle time
                    // too: no request timer runs until a byte arrives.
                    mark_idle();
                    if !c.has_buffered_input() && !wait_next_request(c.get_ref()) {
                        self.close(c);
                        continue;
                    }
                    c
                }
                None => {
                    let Some(accepted) = self.acceptor.next(mark_idle) else {
                        return false;
                    };
                    self.w.peer = accepted.peer;
                    let mut c = accepted.conn;
                    c.set_max_params_len(self.w.pool.max_params_size);
                    c
                }
            };
            let Some(mut req) = self.w.read_request(&mut conn) else {
                // End of stream or a malformed request: closed at once, as classic.
                self.acceptor.recycle(conn);
                continue;
            };
            self.w.served += 1;
            let ended = Cell::new(None::<Served>);
            let keep = self.w.serve_with(&mut conn, &mut req, |io, sreq| {
                if let sapi::Action::Respond { headers, body } = &sreq.action {
                    return respond(io, sreq, headers, body);
                }
                let s = serve(io, sreq);
                ended.set(Some(s));
                s.outcome
            });
            self.w.after_request(&mut conn, req);
            let last = ended.get().is_some_and(|s| s.exited || s.fatal);
            if keep && !last && !self.must_stop() {
                self.kept = Some(conn);
            } else {
                self.close(conn);
            }
            return true;
        }
    }
}

/// Waits, however long, until a kept-alive connection has its next request's first
/// byte (or its end); `false` when the worker must stop meanwhile.
fn wait_next_request(conn: &Connection) -> bool {
    loop {
        if signals::worker_quit() {
            return false;
        }
        match rfpm_sys::fd::poll_readable(conn.fd(), 1000) {
            Ok(true) => return true,
            Ok(false) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
}

/// The ping and status pages in a worker pool: answered without PHP (the application
/// owns PHP's request).
fn respond(
    io: &mut FcgiIo<'_>,
    sreq: &sapi::Request<'_>,
    headers: &[String],
    body: &[u8],
) -> sapi::Outcome {
    use sapi::Conn;
    let mut out = Vec::with_capacity(body.len() + 256);
    for h in headers {
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if sreq.method.is_none_or(|m| m.to_bytes() != b"HEAD") {
        out.extend_from_slice(body);
    }
    io.write(&out);
    let header_lines: Vec<&[u8]> = headers.iter().map(|h| h.as_bytes()).collect();
    io.ended(&sapi::RequestEnd {
        status: 200,
        memory: 0,
        headers: header_lines,
    });
    sapi::Outcome {
        status: 200,
        exit_status: 0,
        startup_failed: false,
    }
}
