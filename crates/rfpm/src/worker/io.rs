//! The worker's side of a request as the SAPI sees it: FastCGI output, the request
//! body (stdin or `REQUEST_BODY_FILE`), `fastcgi_finish_request()`, messages.
use super::accept::Connection;
use super::classic::pool_status;
use super::finish::RequestLog;
use crate::log::Level;
use crate::status;
use fcgi::server::ServerConn;
use rfpm_sys::net;
use std::fs::File;
use std::io::Read;

/// A message during a request: worker log (`LEVEL: msg` on the worker's stderr) and,
/// while the connection is open and `fastcgi.logging` is on, FastCGI stderr — several
/// messages of one request joined with `"; "`.
pub(super) fn log_request(
    conn: &mut ServerConn<Connection>,
    level: Level,
    msg: &[u8],
    started: &mut bool,
    to_fcgi: bool,
) {
    crate::log::log_stream(level, "fpm_request", line!(), msg);
    if !to_fcgi {
        return;
    }
    let mut out = Vec::with_capacity(msg.len() + 2);
    if *started {
        out.extend_from_slice(b"; ");
    }
    // PHP's messages are php-fpm log streams (cut at log_limit); the worker's own messages
    // (zlog) are one-shot, cut at php-fpm's 2048-byte buffer.
    let limit = crate::log::with(|l| l.limit()).saturating_sub(9);
    if !msg.starts_with(sapi::PHP_MESSAGE_PREFIX) {
        out.extend_from_slice(&rfpm_core::logline::fcgi_one_shot(msg));
    } else if msg.len() > limit && limit > 3 {
        out.extend_from_slice(&msg[..limit - 3]);
        out.extend_from_slice(b"...");
    } else {
        out.extend_from_slice(msg);
    }
    *started = true;
    let _ = conn.write_stderr(&out);
}

/// The worker's side of a request, as the SAPI sees it.
pub(super) struct FcgiIo<'c> {
    pub(super) log: &'c RequestLog<'c>,
    pub(super) conn: &'c mut ServerConn<Connection>,
    /// `REQUEST_BODY_FILE`, when the web server sent one: the body is read from it.
    /// `REQUEST_BODY_FILE`: the web server's path, bytes.
    pub(super) body_path: Option<Vec<u8>>,
    /// That file, opened at the first read (php-fpm retries, and warns, at every read
    /// until it opens).
    pub(super) body: Option<File>,
    pub(super) finished: bool,
    pub(super) closed: bool,
    pub(super) broken: bool,
    pub(super) keep: bool,
    pub(super) stderr_started: bool,
}

impl sapi::Conn for FcgiIo<'_> {
    fn write(&mut self, data: &[u8]) -> bool {
        if self.finished {
            return true;
        }
        if self.broken {
            return false;
        }
        if self.conn.write_stdout(data).is_err() {
            self.broken = true;
            return false;
        }
        true
    }

    fn flush(&mut self) -> bool {
        if self.finished {
            return true;
        }
        if self.broken || self.conn.flush().is_err() {
            self.broken = true;
            return false;
        }
        true
    }

    fn read_body(&mut self, buf: &mut [u8]) -> Result<usize, String> {
        let Some(path) = &self.body_path else {
            return match self.conn.fill_stdin(buf) {
                Ok(n) => Ok(n),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    // request_read_timeout passed while PHP read the body before the
                    // script: the connection is given up (as a client that went away).
                    let msg = format!(
                        "[pool {}] request_read_timeout ({}s) passed before the request body was read: connection closed",
                        self.log.pool.name, self.log.pool.read_timeout
                    );
                    let msg = rfpm_core::shown::unshow(&msg);
                    crate::log::log_stream(Level::Warning, "fpm_request", line!(), &msg);
                    self.broken = true;
                    Ok(0)
                }
                Err(_) => Ok(0),
            };
        };
        if self.body.is_none() {
            use std::os::unix::ffi::OsStrExt;
            match File::open(std::ffi::OsStr::from_bytes(path)) {
                Ok(f) => self.body = Some(f),
                Err(e) => {
                    let errno = e.raw_os_error().unwrap_or(0);
                    return Err(format!(
                        "REQUEST_BODY_FILE: open('{}') failed: {} ({errno})",
                        rfpm_core::shown::Shown(path),
                        rfpm_sys::strerror(errno)
                    ));
                }
            }
        }
        match &mut self.body {
            Some(f) => Ok(f.read(buf).unwrap_or(0)),
            None => Ok(0),
        }
    }

    fn finish(&mut self) -> bool {
        if self.closed || self.broken {
            return false;
        }
        if !self.finished {
            self.finished = true;
            if self.conn.end_request(0, 0).is_err() {
                self.broken = true;
                return true;
            }
            if !self.keep {
                net::shutdown_write(self.conn.get_ref().fd());
                self.closed = true;
            }
        }
        true
    }

    fn is_open(&self) -> bool {
        !self.closed && !self.broken
    }

    fn log(&mut self, level: Level, msg: &[u8]) {
        let to_fcgi = sapi::fastcgi_logging() && !self.finished && !self.broken;
        log_request(self.conn, level, msg, &mut self.stderr_started, to_fcgi);
    }

    fn app_log(&mut self, level: Level, message: &[u8], context: Option<&[u8]>) {
        // The error log only: an application's log is not the web server's business.
        crate::log::app_entry(level, message, context);
    }

    fn app_log_enabled(&self, level: Level) -> bool {
        crate::log::enabled(level)
    }

    fn started(&mut self, auth_user: Option<&[u8]>) {
        if let Some(u) = auth_user {
            self.log.slot.set_user(u);
        }
        // The script runs: what it reads of the body is its own business, no deadline.
        self.conn.get_mut().set_deadline(None);
    }

    fn ended(&mut self, end: &sapi::RequestEnd<'_>) {
        if let Some(notice) = self.log.end(end) {
            sapi::Conn::log(self, Level::Notice, &rfpm_core::shown::unshow(&notice));
        }
    }

    fn status(&mut self) -> Option<Vec<(&'static str, sapi::StatusValue)>> {
        Some(status::to_array(&pool_status(self.log.status)))
    }
}
