//! A worker: forked from the master (PHP already started), it takes the pool's identity,
//! then accepts connections and serves FastCGI requests through PHP one at a time.
use crate::listen::Listener;
use crate::log::Level;
use crate::paths::{self, Kind, PathIni};
use crate::pool::Pool;
use crate::scoreboard::{Scoreboard, Slot, WorkerState};
use crate::{os, signals};
use fcgi::server::ServerConn;
use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{IpAddr, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;

/// An accepted connection.
pub enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    fn raw(&self) -> i32 {
        match self {
            Stream::Unix(s) => s.as_raw_fd(),
            Stream::Tcp(s) => s.as_raw_fd(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write_vectored(bufs),
            Stream::Tcp(s) => s.write_vectored(bufs),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// How long a fresh connection may stay silent before it is dropped (php-fpm: 5 s).
const FIRST_BYTE_TIMEOUT_MS: i32 = 5000;

/// Worker entry point after fork. Never returns.
/// The caller has already switched the signal handler to worker mode
/// ([`signals::become_worker`]) while signals were blocked around `fork()`.
pub fn main(pool: &Pool, listener: &Listener, sb: &Scoreboard, slot: usize) -> ! {
    crate::log::with(|l| l.worker_mode());
    if let Err(msg) = setup(pool) {
        crate::log::log(Level::Error, "main", line!(), &msg, None);
        crate::log::log(
            Level::Error,
            "main",
            line!(),
            &format!("[pool {}] child failed to initialize", pool.name),
            None,
        );
        std::process::exit(crate::cli::EX_SOFTWARE);
    }
    let Some(my_slot) = sb.slot(slot) else {
        std::process::exit(crate::cli::EX_SOFTWARE);
    };
    my_slot
        .pid
        .store(os::getpid(), std::sync::atomic::Ordering::Relaxed);
    let allowed = match (&pool.allowed_clients, pool.is_unix) {
        (Some(list), false) => Some(parse_allowed_clients(list)),
        _ => None,
    };
    let mut w = Worker {
        allowed,
        sb,
        slot: my_slot,
        pool,
        served: 0,
        vars: sapi::Vars::new(),
    };
    w.accept_loop(listener.raw());
    std::process::exit(0);
}

/// The pool's identity and environment (reference §3.2, §3.8, §3.9).
fn setup(pool: &Pool) -> Result<(), String> {
    // stdout/stderr: /dev/null unless the master captures them.
    if !pool.catch_workers_output {
        let _ = os::devnull_onto(1, true);
        let _ = os::devnull_onto(2, true);
    }
    if let Some(dir) = &pool.chdir {
        std::env::set_current_dir(dir).map_err(|e| {
            format!(
                "[pool {}] failed to chdir({}){}",
                pool.name,
                dir,
                os::syserr(&e)
            )
        })?;
    }
    if let Some(id) = &pool.identity {
        os::switch_user(&id.user, id.uid, id.gid)
            .map_err(|m| format!("[pool {}] {}", pool.name, m))?;
    }
    if pool.clear_env {
        for (k, _) in std::env::vars_os() {
            std::env::remove_var(k);
        }
    }
    for (k, v) in &pool.env {
        std::env::set_var(k, v);
    }
    let (user, home) = match &pool.identity {
        Some(id) => (Some(id.user.clone()), Some(id.home.clone())),
        None => match os::user_by_uid(os::geteuid()) {
            Some(u) => (Some(u.name), Some(u.home)),
            None => (None, None),
        },
    };
    if !pool.env.iter().any(|(k, _)| k == "USER") {
        if let Some(u) = user {
            std::env::set_var("USER", u);
        }
    }
    if !pool.env.iter().any(|(k, _)| k == "HOME") {
        if let Some(h) = home {
            std::env::set_var("HOME", h);
        }
    }
    for (k, v) in &pool.php_values {
        if !sapi::set_ini(k, v, false) {
            crate::log::log(
                Level::Error,
                "fpm_php_apply_defaults",
                line!(),
                &format!("Unable to set php_value '{k}'"),
                None,
            );
        }
    }
    for (k, v) in &pool.php_admin_values {
        if !sapi::set_ini(k, v, true) {
            crate::log::log(
                Level::Error,
                "fpm_php_apply_defaults",
                line!(),
                &format!("Unable to set php_admin_value '{k}'"),
                None,
            );
        }
    }
    Ok(())
}

/// `listen.allowed_clients` (reference §6.3): split at `,` without trimming, literal
/// addresses only. `None`: everybody is allowed. Logs php-fpm's errors.
fn parse_allowed_clients(list: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for entry in list.split(',') {
        match entry.parse::<IpAddr>() {
            Ok(ip) => out.push(ip),
            Err(_) => crate::error!("Wrong IP address '{entry}' in listen.allowed_clients"),
        }
    }
    if out.is_empty() {
        crate::error!("There are no allowed addresses");
    }
    out
}

/// Whether a TCP peer may talk to this pool: IPv4 against IPv4 entries (also when it
/// arrives IPv4-mapped on a `[::]` socket), IPv6 against IPv6 entries, all 16 bytes.
fn client_allowed(allowed: &[IpAddr], peer: IpAddr) -> bool {
    let peer = match peer {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    allowed.contains(&peer)
}

struct Worker<'p> {
    pool: &'p Pool,
    allowed: Option<Vec<IpAddr>>,
    sb: &'p Scoreboard,
    slot: &'p Slot,
    served: u64,
    vars: sapi::Vars,
}

impl Worker<'_> {
    fn accept_loop(&mut self, listen_fd: i32) {
        loop {
            if signals::worker_quit() {
                return;
            }
            self.slot.set_state(WorkerState::Idle);
            let fd = match os::accept(listen_fd) {
                Ok(fd) => fd,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EAGAIN) | Some(libc::ECONNABORTED)
                    ) =>
                {
                    continue
                }
                Err(e) => {
                    crate::log::log(
                        Level::Error,
                        "accept_loop",
                        line!(),
                        "failed to accept a connection",
                        e.raw_os_error(),
                    );
                    return;
                }
            };
            let keep_serving = self.connection(fd);
            if !keep_serving || signals::worker_quit() {
                return;
            }
        }
    }

    /// Serves one connection; `false` when the worker must exit (max_requests).
    fn connection(&mut self, fd: OwnedFd) -> bool {
        if let Some(allowed) = &self.allowed {
            let peer = TcpStream::from(fd);
            let ip = peer.peer_addr().map(|a| a.ip());
            match ip {
                Ok(ip) if client_allowed(allowed, ip) => {
                    return self.serve_connection(Stream::Tcp(peer));
                }
                Ok(ip) => {
                    let shown = match ip {
                        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
                        v4 => v4,
                    };
                    crate::error!("Connection disallowed: IP address '{shown}' has been dropped.");
                    return true;
                }
                Err(_) => return true,
            }
        }
        let stream = if self.pool.is_unix {
            Stream::Unix(UnixStream::from(fd))
        } else {
            Stream::Tcp(TcpStream::from(fd))
        };
        self.serve_connection(stream)
    }

    /// Serves the requests of an accepted connection; `false` when the worker must exit.
    fn serve_connection(&mut self, stream: Stream) -> bool {
        if !wait_readable(stream.raw(), FIRST_BYTE_TIMEOUT_MS) {
            return true;
        }
        let mut conn = ServerConn::new(stream);
        loop {
            self.slot.set_state(WorkerState::ReadingHeaders);
            self.slot
                .request_start_us
                .store(crate::scoreboard::now_us(), Ordering::Relaxed);
            self.slot.requests.fetch_add(1, Ordering::Relaxed);
            self.sb.header().accepted.fetch_add(1, Ordering::Relaxed);
            let Ok(Some(req)) = conn.read_request() else {
                break;
            };
            self.slot.set_state(WorkerState::GettingRequestInfo);
            self.served += 1;
            let keep = self.serve(&mut conn, req);
            if self.pool.catch_workers_output {
                // End of request: the master ends any pending partial line here.
                let _ = std::io::stdout().flush();
                let _ = os::write_fd(2, crate::capture::MARKER);
            }
            let limit_reached = self.pool.max_requests > 0 && self.served >= self.pool.max_requests;
            if limit_reached {
                close_gracefully(&mut conn);
                return false;
            }
            if !keep || signals::worker_quit() {
                break;
            }
        }
        close_gracefully(&mut conn);
        true
    }

    /// One request; returns whether the connection stays open for another.
    fn serve(&mut self, conn: &mut ServerConn<Stream>, mut req: fcgi::server::Request) -> bool {
        let fpm_ini = sapi::fpm_ini();
        let has_script_param =
            req.params.contains("SCRIPT_FILENAME") || req.params.contains("PATH_TRANSLATED");
        let path_ini = PathIni {
            fix_pathinfo: fpm_ini.fix_pathinfo,
            discard_path: fpm_ini.discard_path,
            doc_root: sapi::ini_string("doc_root")
                .filter(|s| !s.is_empty())
                .map(String::into_bytes),
        };
        let resolved = paths::resolve(&mut req.params, &path_ini, &probe);
        let p = &req.params;
        let cstr = |v: Option<&[u8]>| v.and_then(|v| CString::new(trim_nul(v)).ok());
        let method = cstr(p.get("REQUEST_METHOD"));
        let (query, content_type, content_length, auth) = if has_script_param {
            (
                cstr(p.get("QUERY_STRING")).unwrap_or_default(),
                cstr(p.get("CONTENT_TYPE")).unwrap_or_default(),
                p.get_str("CONTENT_LENGTH").map(atol).unwrap_or(0),
                cstr(p.get("HTTP_AUTHORIZATION")),
            )
        } else {
            (CString::default(), CString::default(), 0, None)
        };
        let uri = cstr(resolved.uri.as_deref());
        let script = cstr(resolved.script.as_deref());
        let cookie = cstr(p.get("HTTP_COOKIE"));
        let php_self = CString::new(trim_nul(&resolved.php_self)).unwrap_or_default();

        let action = self.action(method.is_some(), has_script_param, &resolved);
        // What the master shows in timeout and slow-log lines (reference §3.7).
        self.slot
            .method
            .store(method.as_ref().map_or(&b""[..], |m| m.as_bytes()));
        self.slot
            .request_uri
            .store(uri.as_ref().map_or(&b""[..], |u| u.as_bytes()));
        self.slot.query.store(query.as_bytes());
        self.slot
            .script
            .store(script.as_ref().map_or(&b""[..], |u| u.as_bytes()));

        self.vars.clear();
        for (n, v) in req.params.iter_lifo() {
            self.vars.push(n, v);
        }
        let body_file = req
            .params
            .get("REQUEST_BODY_FILE")
            .filter(|f| !f.is_empty())
            .map(|f| String::from_utf8_lossy(f).into_owned());
        let sreq = sapi::Request {
            vars: &self.vars,
            method: method.as_deref(),
            query: &query,
            content_type: &content_type,
            content_length,
            request_uri: uri.as_deref(),
            path_translated: script.as_deref(),
            auth: auth.as_deref(),
            cookie: cookie.as_deref(),
            php_self: &php_self,
            action,
        };
        let mut io = FcgiIo {
            conn,
            body: body_file.map(|path| File::open(path).ok()),
            finished: false,
            closed: false,
            broken: false,
            keep: req.keep_conn,
            stderr_started: false,
            logging: fpm_ini.fastcgi_logging,
        };
        self.slot.set_state(WorkerState::Running);
        let outcome = sapi::run(&mut io, &sreq);
        self.slot.set_state(WorkerState::Finishing);
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

    fn action(
        &self,
        has_method: bool,
        has_script_param: bool,
        r: &paths::Resolved,
    ) -> sapi::Action {
        if !has_method {
            return sapi::Action::Execute;
        }
        if has_script_param {
            if let (Some(uri), Some((path, response))) = (&r.uri, &self.pool.ping) {
                if uri == path {
                    return sapi::Action::Respond {
                        headers: vec![
                            "Content-Type: text/plain".into(),
                            "Expires: Thu, 01 Jan 1970 00:00:00 GMT".into(),
                            "Cache-Control: no-cache, no-store, must-revalidate, max-age=0".into(),
                        ],
                        body: response.clone(),
                    };
                }
            }
        }
        let Some(script) = &r.script else {
            return sapi::Action::NotFound;
        };
        if !self.pool.limit_extensions.is_empty()
            && !self
                .pool
                .limit_extensions
                .iter()
                .any(|ext| script.len() > ext.len() && script.ends_with(ext))
        {
            return sapi::Action::Denied;
        }
        sapi::Action::Execute
    }
}

fn trim_nul(v: &[u8]) -> &[u8] {
    match v.iter().position(|&b| b == 0) {
        Some(i) => &v[..i],
        None => v,
    }
}

/// C `atol`: optional sign and leading digits, 0 otherwise.
fn atol(s: &str) -> i64 {
    let s = s.trim_start();
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut n: i64 = 0;
    for b in digits.bytes().take_while(u8::is_ascii_digit) {
        n = n.saturating_mul(10).saturating_add(i64::from(b - b'0'));
    }
    if neg {
        -n
    } else {
        n
    }
}

fn probe(path: &[u8]) -> Kind {
    use std::os::unix::ffi::OsStrExt;
    match std::fs::metadata(std::ffi::OsStr::from_bytes(path)) {
        Ok(m) if m.is_file() => Kind::File,
        Ok(_) => Kind::Other,
        Err(_) => Kind::Missing,
    }
}

fn wait_readable(fd: i32, timeout_ms: i32) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if r < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            if signals::worker_quit() {
                return false;
            }
            continue;
        }
        return r > 0;
    }
}

/// After the last response: stop sending, then discard what the peer still sends until
/// it closes (php-fpm's close), bounded so a silent peer cannot hold the worker.
fn close_gracefully(conn: &mut ServerConn<Stream>) {
    let fd = conn.get_ref().raw();
    let _ = conn.flush();
    os::shutdown_write(fd);
    let mut buf = [0u8; 4096];
    let mut budget = 64;
    while budget > 0 && wait_readable(fd, 1000) {
        match conn.get_mut().read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => budget -= 1,
        }
    }
}

/// A message during a request: worker log (`LEVEL: msg` on the worker's stderr) and,
/// while the connection is open and `fastcgi.logging` is on, FastCGI stderr — several
/// messages of one request joined with `"; "`.
fn log_request(
    conn: &mut ServerConn<Stream>,
    level: Level,
    msg: &[u8],
    started: &mut bool,
    to_fcgi: bool,
) {
    crate::log::log_stream(level, "fpm_request", line!(), msg);
    if !to_fcgi {
        return;
    }
    let limit = crate::log::with(|l| l.limit()).saturating_sub(9);
    let mut out = Vec::with_capacity(msg.len() + 2);
    if *started {
        out.extend_from_slice(b"; ");
    }
    if msg.len() > limit && limit > 3 {
        out.extend_from_slice(&msg[..limit - 3]);
        out.extend_from_slice(b"...");
    } else {
        out.extend_from_slice(msg);
    }
    *started = true;
    let _ = conn.write_stderr(&out);
}

/// The worker's side of a request, as the SAPI sees it.
struct FcgiIo<'c> {
    conn: &'c mut ServerConn<Stream>,
    /// `REQUEST_BODY_FILE`: `Some(None)` when it could not be opened (empty body).
    body: Option<Option<File>>,
    finished: bool,
    closed: bool,
    broken: bool,
    keep: bool,
    stderr_started: bool,
    logging: bool,
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

    fn read_body(&mut self, buf: &mut [u8]) -> usize {
        match &mut self.body {
            Some(Some(f)) => f.read(buf).unwrap_or(0),
            Some(None) => 0,
            None => self.conn.fill_stdin(buf).unwrap_or(0),
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
                os::shutdown_write(self.conn.get_ref().raw());
                self.closed = true;
            }
        }
        true
    }

    fn is_open(&self) -> bool {
        !self.closed && !self.broken
    }

    fn log(&mut self, level: sapi::Level, msg: &[u8]) {
        let level = match level {
            sapi::Level::Debug => Level::Debug,
            sapi::Level::Notice => Level::Notice,
            sapi::Level::Warning => Level::Warning,
            sapi::Level::Error => Level::Error,
            sapi::Level::Alert => Level::Alert,
        };
        let to_fcgi = self.logging && !self.finished && !self.broken;
        log_request(self.conn, level, msg, &mut self.stderr_started, to_fcgi);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_clients_match_like_php_fpm() {
        let list = parse_allowed_clients("127.0.0.1,::1");
        assert!(client_allowed(
            &list,
            "127.0.0.1".parse().unwrap_or(IpAddr::V4([0; 4].into()))
        ));
        assert!(client_allowed(
            &list,
            "::ffff:127.0.0.1"
                .parse()
                .unwrap_or(IpAddr::V4([0; 4].into()))
        ));
        assert!(client_allowed(
            &list,
            "::1".parse().unwrap_or(IpAddr::V4([0; 4].into()))
        ));
        assert!(!client_allowed(
            &list,
            "::2".parse().unwrap_or(IpAddr::V4([0; 4].into()))
        ));
        // No trimming: " ::1" is not an address.
        assert_eq!(parse_allowed_clients("127.0.0.1, ::1").len(), 1);
        assert!(parse_allowed_clients("xxx").is_empty());
    }
}
