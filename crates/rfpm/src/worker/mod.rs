//! A worker: forked from the master (PHP already started), it takes the pool's identity,
//! then accepts connections and serves FastCGI requests through PHP one at a time.
use crate::log::Level;
use crate::master::listen::Listener;
use crate::paths::{self, Kind, PathIni};
use crate::pool::Pool;
use crate::scoreboard::{now_us, RequestFigures, RequestInfo, Scoreboard, Slot, WorkerState};
use crate::{access, signals, status};
use fcgi::server::ServerConn;
use rfpm_sys::{fd, identity, net, process};
use std::cell::Cell;
use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{IpAddr, TcpStream};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;

/// An accepted connection.
pub enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Unix(s) => s.as_fd(),
            Stream::Tcp(s) => s.as_fd(),
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
const FIRST_BYTE_TIMEOUT_MS: u16 = 5000;

/// Whose status a worker's status page and `fpm_get_status()` show: its own pool's, or
/// for a hidden `pm.status_listen` pool the owner's (reference §9.4).
pub struct StatusSource<'a> {
    pub sb: &'a Scoreboard,
    pub pool: &'a str,
    pub pm: &'static str,
}

/// Worker entry point after fork. Never returns.
/// The caller has already switched the signal handler to worker mode
/// ([`signals::become_worker`]) while signals were blocked around `fork()`.
/// `access_fd`: the pool's access log, opened by the master.
pub fn main(
    pool: &Pool,
    listener: &Listener,
    sb: &Scoreboard,
    slot: usize,
    status: StatusSource<'_>,
    access_fd: Option<BorrowedFd<'_>>,
) -> ! {
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
        .store(process::getpid(), std::sync::atomic::Ordering::Relaxed);
    let allowed = match (&pool.allowed_clients, pool.is_unix) {
        (Some(list), false) => Some(parse_allowed_clients(list)),
        _ => None,
    };
    let mut w = Worker {
        bufs: None,
        drain: vec![0; 4096],
        allowed,
        sb,
        slot: my_slot,
        pool,
        served: 0,
        status,
        access_fd,
        peer: None,
        ppid: process::getppid(),
        cpu_start: rfpm_sys::time::cpu_times_us(),
    };
    w.accept_loop(listener.fd());
    std::process::exit(0);
}

/// The pool's identity and environment (reference §3.2, §3.8, §3.9).
fn setup(pool: &Pool) -> Result<(), String> {
    // stdout/stderr: /dev/null unless the master captures them.
    if !pool.catch_workers_output {
        let _ = fd::devnull_onto(fd::Stdio::Out);
        let _ = fd::devnull_onto(fd::Stdio::Err);
    }
    identity(pool)?;
    if pool.clear_env {
        for (k, _) in std::env::vars_os() {
            std::env::remove_var(k);
        }
    }
    for (k, v) in &pool.env {
        std::env::set_var(k, v);
    }
    if !pool.env.iter().any(|(k, _)| k == "USER") {
        if let Some(u) = &pool.identity.user {
            std::env::set_var("USER", u);
        }
    }
    if !pool.env.iter().any(|(k, _)| k == "HOME") {
        if let Some(h) = &pool.identity.home {
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

/// Limits, root directory, working directory, priority, user and dumpability, in
/// php-fpm's order (reference §3.8). `Err` is a fatal message.
fn identity(pool: &Pool) -> Result<(), String> {
    let name = &pool.name;
    for (which, value, what, res) in [
        (
            identity::Rlimit::Files,
            pool.rlimit_files,
            "rlimit_files",
            "RLIMIT_NOFILE",
        ),
        (
            identity::Rlimit::Core,
            pool.rlimit_core,
            "rlimit_core",
            "RLIMIT_CORE",
        ),
    ] {
        if value == 0 {
            continue;
        }
        if let Err(e) = identity::set_rlimit(which, value) {
            // Only logged: the worker carries on with the inherited limit.
            crate::log::log(
                Level::Error,
                "fpm_unix_init_child",
                line!(),
                &format!("[pool {name}] failed to set {what} for this pool. Please check your system limits or decrease {what}. setrlimit({res}, {value})"),
                e.raw_os_error(),
            );
        }
    }
    if let Some(root) = &pool.chroot {
        identity::chroot(root).map_err(|e| {
            format!(
                "[pool {name}] failed to chroot({root}){}",
                rfpm_sys::syserr(&e)
            )
        })?;
    }
    if let Some(dir) = &pool.chdir {
        std::env::set_current_dir(dir).map_err(|e| {
            format!(
                "[pool {name}] failed to chdir({dir}){}",
                rfpm_sys::syserr(&e)
            )
        })?;
    } else if pool.chroot.is_some() {
        if let Err(e) = std::env::set_current_dir("/") {
            crate::log::log(
                Level::Warning,
                "fpm_unix_init_child",
                line!(),
                &format!("[pool {name}] failed to chdir(/)"),
                e.raw_os_error(),
            );
        }
    }
    if let Some(prio) = pool.priority {
        identity::set_priority(prio).map_err(|e| {
            format!(
                "[pool {name}] Unable to set priority for this new process{}",
                rfpm_sys::syserr(&e)
            )
        })?;
    }
    if let Some(uid) = pool.identity.uid {
        let gid = pool.identity.gid.unwrap_or(0);
        identity::switch_user(pool.identity.initgroups_user.as_deref(), uid, gid)
            .map_err(|m| format!("[pool {name}] {m}"))?;
    }
    if pool.dumpable {
        identity::set_dumpable().map_err(|e| {
            format!(
                "[pool {name}] failed to prctl(PR_SET_DUMPABLE){}",
                rfpm_sys::syserr(&e)
            )
        })?;
    }
    if let Some(hat) = &pool.apparmor_hat {
        let (current, attr) = identity::apparmor_current().map_err(|e| {
            format!(
                "[pool {name}] failed to query apparmor confinement. Please check if \"/proc/*/attr/current\" is read and writeable.{}",
                rfpm_sys::syserr(&e)
            )
        })?;
        let new = format!("{current}//{hat}");
        identity::apparmor_change_profile(&attr, &new).map_err(|e| {
            format!(
                "[pool {name}] failed to change to new confinement ({new}). Please check if \"/proc/*/attr/current\" is read and writeable and \"change_profile -> {current}//*\" is allowed.{}",
                rfpm_sys::syserr(&e)
            )
        })?;
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
    status: StatusSource<'p>,
    access_fd: Option<BorrowedFd<'p>>,
    /// The FastCGI peer of the current connection (TCP only).
    peer: Option<IpAddr>,
    ppid: i32,
    /// Where the current request's CPU time starts: the previous request's end (or the
    /// worker's start). times() once per request, not twice: what a worker does between
    /// requests is a few µs, below the clock tick times() counts in.
    cpu_start: (u64, u64),
    /// The previous connection's buffers, reused by the next one.
    bufs: Option<fcgi::server::Buffers>,
    /// Where close_gracefully discards what the peer still sends.
    drain: Vec<u8>,
}

impl Worker<'_> {
    fn accept_loop(&mut self, listen_fd: BorrowedFd<'_>) {
        loop {
            if signals::worker_quit() {
                return;
            }
            if self.slot.state() != WorkerState::Idle {
                self.sb.leave_active();
            }
            self.slot.set_state(WorkerState::Idle, now_us());
            let fd = match net::accept(listen_fd) {
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
                    self.peer = Some(ip);
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
            self.peer = None;
            Stream::Unix(UnixStream::from(fd))
        } else {
            let s = TcpStream::from(fd);
            self.peer = s.peer_addr().ok().map(|a| a.ip());
            Stream::Tcp(s)
        };
        self.serve_connection(stream)
    }

    /// Serves the requests of an accepted connection; `false` when the worker must exit.
    fn serve_connection(&mut self, stream: Stream) -> bool {
        let unix = matches!(stream, Stream::Unix(_));
        // A web server writes the request as soon as its connect() returns, so it is
        // usually queued by the time accept() does: look (the probe below needs the
        // figure anyway) and wait only when nothing is there yet.
        let queued = if unix {
            net::readable_bytes(stream.fd()).filter(|&n| n > 0)
        } else {
            None
        };
        if queued.is_none() && !wait_readable(stream.fd(), FIRST_BYTE_TIMEOUT_MS, Quit::KeepWaiting)
        {
            return true;
        }
        let mut conn = ServerConn::with_buffers(stream, self.bufs.take().unwrap_or_default());
        if unix {
            // Keeps the request's last record queued while the script runs, so the web
            // server waiting for the answer is not woken for nothing (a context switch
            // on both sides per request: hello went from 0.86 to ~1.0 of php-fpm8.2;
            // bench/RESULTS.md).
            conn.set_queued_probe(|s| net::readable_bytes(s.fd()));
            if let Some(n) = queued {
                conn.set_queued_hint(n);
            }
        }
        let go_on = self.serve_requests(&mut conn);
        // The socket closes here (the stream is dropped); the buffers serve the next one.
        self.bufs = Some(conn.into_parts().1);
        go_on
    }

    /// The requests of one connection; `false` when the worker must exit.
    fn serve_requests(&mut self, conn: &mut ServerConn<Stream>) -> bool {
        loop {
            let was_idle = self.slot.state() == WorkerState::Idle;
            self.slot.begin_request(now_us());
            self.sb.header().accepted.fetch_add(1, Ordering::Relaxed);
            if was_idle {
                self.sb.enter_active();
            }
            let Ok(Some(mut req)) = conn.read_request() else {
                // End of stream or a malformed request: php-fpm closes at once, without
                // the graceful shutdown (the peer may see a reset).
                return true;
            };
            self.served += 1;
            let keep = self.serve(conn, &mut req);
            // The next request decodes into these params' allocations.
            conn.recycle_params(std::mem::take(&mut req.params));
            if self.pool.catch_workers_output {
                // End of request: the master ends any pending partial line here.
                let _ = std::io::stdout().flush();
                let _ = fd::write(fd::Stdio::Err.borrow(), crate::capture::MARKER);
            }
            let limit_reached = self.pool.max_requests > 0 && self.served >= self.pool.max_requests;
            if limit_reached {
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

    /// One request; returns whether the connection stays open for another.
    fn serve(&mut self, conn: &mut ServerConn<Stream>, req: &mut fcgi::server::Request) -> bool {
        let fpm_ini = sapi::fpm_ini();
        let has_script_param =
            req.params.contains("SCRIPT_FILENAME") || req.params.contains("PATH_TRANSLATED");
        let path_ini = PathIni {
            fix_pathinfo: fpm_ini.fix_pathinfo,
            discard_path: fpm_ini.discard_path,
            // Only read (a hash lookup and two allocations) when resolve would use it.
            doc_root: if fpm_ini.fix_pathinfo && !req.params.contains("DOCUMENT_ROOT") {
                sapi::ini_string("doc_root")
                    .filter(|s| !s.is_empty())
                    .map(String::into_bytes)
            } else {
                None
            },
        };
        let resolved = paths::resolve(&mut req.params, &path_ini, &probe, &sapi::path_exists);
        // The request's strings as PHP reads them: borrowed from the params (their
        // arena keeps a NUL after every value) or made from the resolved paths.
        let p = &req.params;
        let method = p.get_cstr("REQUEST_METHOD");
        let (query, content_type, content_length, auth) = if has_script_param {
            (
                p.get_cstr("QUERY_STRING").unwrap_or_default(),
                p.get_cstr("CONTENT_TYPE").unwrap_or_default(),
                p.get_str("CONTENT_LENGTH").map(atol).unwrap_or(0),
                p.get_cstr("HTTP_AUTHORIZATION"),
            )
        } else {
            (c"", c"", 0, None)
        };
        let uri = resolved.uri.map(c_string);
        let script = resolved.script.map(c_string);
        let cookie = p.get_cstr("HTTP_COOKIE");
        let php_self = c_string(resolved.php_self);

        self.slot.request_info(
            &RequestInfo {
                method: method.map_or(b"", CStr::to_bytes),
                uri: uri.as_deref().map_or(b"", CStr::to_bytes),
                query: query.to_bytes(),
                content_length,
            },
            now_us(),
        );
        // The worker is Running while it produces its own status page (reference §9.1).
        self.slot.set_state(WorkerState::Running, now_us());
        let head = method.is_some_and(|m| m.to_bytes() == b"HEAD");
        let action = self.action(
            method.is_some(),
            has_script_param,
            uri.as_deref(),
            script.as_deref(),
            query,
            head,
        );
        if action == sapi::Action::Execute {
            if let Some(s) = &script {
                self.slot.set_script(s.to_bytes());
            }
        }

        let vars = ParamVars(p);
        let body_file = p
            .get("REQUEST_BODY_FILE")
            .filter(|f| !f.is_empty())
            .map(|f| String::from_utf8_lossy(f).into_owned());
        let sreq = sapi::Request {
            vars: &vars,
            method,
            query,
            content_type,
            content_length,
            request_uri: uri.as_deref(),
            path_translated: script.as_deref(),
            auth,
            cookie,
            php_self: &php_self,
            action,
        };
        let log = RequestLog {
            slot: self.slot,
            pool: self.pool,
            status: &self.status,
            access_fd: self.access_fd,
            peer: self.peer,
            ppid: self.ppid,
            cpu_start: self.cpu_start,
            cpu_end: Cell::new(None),
            params: p,
        };
        let mut io = FcgiIo {
            log: &log,
            conn,
            body_path: body_file,
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
            if let Some(value) = req.params.get(name) {
                sapi::apply_request_ini(value, admin, &mut |msg| {
                    sapi::Conn::log(&mut io, Level::Error, msg.as_bytes());
                });
            }
        }
        let outcome = sapi::run(&mut io, &sreq);
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

    fn action(
        &self,
        has_method: bool,
        has_script_param: bool,
        uri: Option<&CStr>,
        script: Option<&CStr>,
        query: &CStr,
        head: bool,
    ) -> sapi::Action {
        let uri = uri.map(CStr::to_bytes);
        if !has_method {
            return sapi::Action::Execute;
        }
        if has_script_param {
            if let (Some(uri), Some((path, response))) = (uri, &self.pool.ping) {
                if uri == &path[..] {
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
            if let (Some(uri), Some(path)) = (uri, &self.pool.status_path) {
                if uri == &path[..] {
                    return self.status_page(query.to_bytes(), head);
                }
            }
        }
        let Some(script) = script.map(CStr::to_bytes) else {
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

impl Worker<'_> {
    /// The status page (reference §9.3) from the status source's scoreboard.
    fn status_page(&self, query: &[u8], head: bool) -> sapi::Action {
        let (format, full) = status::select(query);
        let snapshot = pool_status(&self.status);
        let body = status::render(&snapshot, format, full, &|t| {
            rfpm_sys::time::strftime_local(t as i64, access::TIME_FORMAT)
        });
        let mut headers = vec![status::EXPIRES.to_string(), status::NO_CACHE.to_string()];
        if !head {
            headers.push(status::content_type(format).to_string());
        }
        sapi::Action::Respond { headers, body }
    }
}

/// A snapshot of the status source's pool, now.
fn pool_status(src: &StatusSource<'_>) -> status::PoolStatus {
    let h = src.sb.header();
    src.sb.count_active();
    let ld = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let counters = status::Counters {
        start_us: ld(&h.start_us),
        accepted: ld(&h.accepted),
        listen_queue: ld(&h.listen_queue),
        max_listen_queue: ld(&h.max_listen_queue),
        listen_queue_len: ld(&h.listen_queue_len),
        max_active: ld(&h.max_active),
        max_children_reached: ld(&h.max_children_reached),
        slow_requests: ld(&h.slow_requests),
    };
    status::PoolStatus::build(src.pool, src.pm, &counters, &src.sb.views(), now_us())
}

/// What the end of a request needs: the scoreboard slot, the access log.
struct RequestLog<'a> {
    slot: &'a Slot,
    pool: &'a Pool,
    status: &'a StatusSource<'a>,
    access_fd: Option<BorrowedFd<'a>>,
    peer: Option<IpAddr>,
    ppid: i32,
    cpu_start: (u64, u64),
    /// The CPU times read at the request's end.
    cpu_end: Cell<Option<(u64, u64)>>,
    params: &'a fcgi::params::Params,
}

impl RequestLog<'_> {
    /// Request end (reference §5.5): figures into the slot (state Finishing), then the
    /// access-log line. Returns a notice to log when the line had to be cut.
    fn end(&self, end: &sapi::RequestEnd<'_>) -> Option<String> {
        let now = now_us();
        let duration = now.saturating_sub(self.slot.request_start_us());
        let (u1, s1) = rfpm_sys::time::cpu_times_us();
        self.cpu_end.set(Some((u1, s1)));
        let cpu_user = u1.saturating_sub(self.cpu_start.0);
        let cpu_system = s1.saturating_sub(self.cpu_start.1);
        let figures = RequestFigures {
            duration_us: duration,
            cpu_user_us: cpu_user,
            cpu_system_us: cpu_system,
            memory: end.memory,
        };
        self.slot.end_request(&figures, now);
        let fd = self.access_fd?;
        // The slot's text fields (five copies) only when an access log line needs them.
        let v = self.slot.view();
        let param = |name: &[u8]| self.params.get(name).map(<[u8]>::to_vec);
        let entry = access::Entry {
            remote: self.peer,
            user: &v.user,
            start_secs: (v.request_start_us / 1_000_000) as i64,
            now_secs: (now / 1_000_000) as i64,
            method: &v.method,
            uri: &v.uri,
            query: &v.query,
            status: end.status,
            script: &v.script,
            content_length: v.content_length,
            duration_us: duration,
            memory: end.memory,
            cpu_user_us: cpu_user,
            cpu_system_us: cpu_system,
            pool: &self.pool.name,
            pid: v.pid,
            ppid: self.ppid,
            param: &param,
            headers: &end.headers,
        };
        if access::suppressed(&self.pool.suppress_paths, &entry) {
            return None;
        }
        let (mut line, cut) = access::format(&self.pool.access_format, &entry, &|t, f| {
            rfpm_sys::time::strftime_local(t, f)
        });
        if line.is_empty() {
            return None;
        }
        line.push(b'\n');
        let _ = fd::write(fd, &line);
        cut.then(|| {
            format!(
                "the log buffer is full ({}). The access log request has been truncated.",
                access::LINE_MAX
            )
        })
    }
}

/// A C string of `v` up to its first NUL (as C would read it), without copying it.
fn c_string(mut v: Vec<u8>) -> CString {
    if let Some(i) = v.iter().position(|&b| b == 0) {
        v.truncate(i);
    }
    CString::new(v).unwrap_or_default()
}

/// The request's params as the SAPI reads them.
struct ParamVars<'a>(&'a fcgi::params::Params);

impl sapi::Vars for ParamVars<'_> {
    fn each(&self, f: &mut dyn FnMut(&CStr, &[u8])) {
        for (name, value) in self.0.iter_lifo_cstr() {
            f(name, value);
        }
    }
    fn get(&self, name: &[u8]) -> Option<&[u8]> {
        self.0.get(name)
    }
    fn get_cstr(&self, name: &[u8]) -> Option<&CStr> {
        self.0.get_cstr(name)
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

/// Waits until `fd` is readable (or at end of stream), at most `timeout_ms` in all.
fn wait_readable(fd: BorrowedFd<'_>, timeout_ms: u16, on_quit: Quit) -> bool {
    let deadline =
        std::time::Instant::now() + std::time::Duration::from_millis(u64::from(timeout_ms));
    let mut wait = i32::from(timeout_ms);
    loop {
        match fd::poll_readable(fd, wait) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                if on_quit == Quit::GiveUp && signals::worker_quit() {
                    return false;
                }
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                wait = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
            }
            Ok(ready) => return ready,
            Err(_) => return false,
        }
    }
}

/// What [`wait_readable`] does when a graceful stop (SIGQUIT) interrupts it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Quit {
    /// Stop waiting.
    GiveUp,
    /// Keep waiting: an accepted connection is served even during a graceful stop or a
    /// reload (php-fpm retries its poll too); dropping it would lose the request.
    KeepWaiting,
}

/// After the last response: stop sending, then discard what the peer still sends until
/// it closes (php-fpm's close), bounded so a silent peer cannot hold the worker.
fn close_gracefully(conn: &mut ServerConn<Stream>, buf: &mut [u8]) {
    let _ = conn.flush();
    net::shutdown_write(conn.get_ref().fd());
    let mut budget = 64;
    // The peer has often closed already: look before waiting (saves the poll).
    while budget > 0 {
        match net::recv_nowait(conn.get_ref().fd(), buf) {
            Ok(0) => return,
            Ok(_) => budget -= 1,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(_) => return,
        }
    }
    while budget > 0 && wait_readable(conn.get_ref().fd(), 1000, Quit::GiveUp) {
        match conn.get_mut().read(buf) {
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
    log: &'c RequestLog<'c>,
    conn: &'c mut ServerConn<Stream>,
    /// `REQUEST_BODY_FILE`, when the web server sent one: the body is read from it.
    body_path: Option<String>,
    /// That file, opened at the first read (php-fpm retries, and warns, at every read
    /// until it opens).
    body: Option<File>,
    finished: bool,
    closed: bool,
    broken: bool,
    keep: bool,
    stderr_started: bool,
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
            return Ok(self.conn.fill_stdin(buf).unwrap_or(0));
        };
        if self.body.is_none() {
            match File::open(path) {
                Ok(f) => self.body = Some(f),
                Err(e) => {
                    let errno = e.raw_os_error().unwrap_or(0);
                    return Err(format!(
                        "REQUEST_BODY_FILE: open('{path}') failed: {} ({errno})",
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

    fn started(&mut self, auth_user: Option<&[u8]>) {
        if let Some(u) = auth_user {
            self.log.slot.set_user(u);
        }
    }

    fn ended(&mut self, end: &sapi::RequestEnd<'_>) {
        if let Some(notice) = self.log.end(end) {
            sapi::Conn::log(self, Level::Notice, notice.as_bytes());
        }
    }

    fn status(&mut self) -> Option<Vec<(&'static str, sapi::StatusValue)>> {
        Some(status::to_array(&pool_status(self.log.status)))
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
