//! Thin wrappers over the system calls the master and workers make. Each is small and
//! does nothing clever; every `unsafe` block says why it is sound.
use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// php-fpm's "SYSERR suffix": `: <strerror> (<errno>)`.
pub fn syserr(e: &io::Error) -> String {
    let code = e.raw_os_error().unwrap_or(0);
    // SAFETY: strerror returns a pointer to a static (per-thread) string.
    let text = unsafe { CStr::from_ptr(libc::strerror(code)) };
    format!(": {} ({})", text.to_string_lossy(), code)
}

/// Text of an errno (`strerror`).
pub fn strerror(code: i32) -> String {
    // SAFETY: as above.
    unsafe { CStr::from_ptr(libc::strerror(code)) }
        .to_string_lossy()
        .into_owned()
}

pub enum Fork {
    Parent(libc::pid_t),
    Child,
}

/// fork(2). The caller guarantees the process has one thread (the master is
/// single-threaded by design, DESIGN.md §4.1).
pub fn fork() -> io::Result<Fork> {
    // SAFETY: fork in a single-threaded process; the child only continues our own code.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Fork::Child),
        p => Ok(Fork::Parent(p)),
    }
}

pub fn getpid() -> libc::pid_t {
    // SAFETY: no preconditions.
    unsafe { libc::getpid() }
}

pub fn geteuid() -> u32 {
    // SAFETY: no preconditions.
    unsafe { libc::geteuid() }
}

pub fn kill(pid: libc::pid_t, sig: i32) -> io::Result<()> {
    // SAFETY: plain syscall.
    cvt(unsafe { libc::kill(pid, sig) }).map(drop)
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal { sig: i32, core: bool },
}

/// Reaps one exited child without blocking.
pub fn wait_any() -> Option<(libc::pid_t, Exit)> {
    let mut status = 0;
    // SAFETY: valid out-pointer.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    if pid <= 0 {
        return None;
    }
    let exit = if libc::WIFEXITED(status) {
        Exit::Code(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        Exit::Signal {
            sig: libc::WTERMSIG(status),
            core: libc::WCOREDUMP(status),
        }
    } else {
        return Some((pid, Exit::Code(0)));
    };
    Some((pid, exit))
}

/// `SIGSEGV`-style name of a signal.
pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGCHLD => "SIGCHLD",
        libc::SIGCONT => "SIGCONT",
        libc::SIGSTOP => "SIGSTOP",
        libc::SIGTSTP => "SIGTSTP",
        libc::SIGTTIN => "SIGTTIN",
        libc::SIGTTOU => "SIGTTOU",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGVTALRM => "SIGVTALRM",
        libc::SIGPROF => "SIGPROF",
        libc::SIGSYS => "SIGSYS",
        _ => "?",
    }
}

/// Installs `handler` for `sig` (no SA_RESTART: blocking calls return EINTR so the
/// loops see the flag the handler set).
pub fn set_handler(sig: i32, handler: extern "C" fn(libc::c_int)) -> io::Result<()> {
    // SAFETY: a zeroed sigaction with a valid handler and an empty mask.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        sa.sa_flags = 0;
        cvt(libc::sigaction(sig, &sa, std::ptr::null_mut())).map(drop)
    }
}

pub fn set_default(sig: i32) -> io::Result<()> {
    set_disposition(sig, libc::SIG_DFL)
}

pub fn ignore(sig: i32) -> io::Result<()> {
    set_disposition(sig, libc::SIG_IGN)
}

fn set_disposition(sig: i32, what: libc::sighandler_t) -> io::Result<()> {
    // SAFETY: installs SIG_DFL/SIG_IGN, no handler code involved.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = what;
        libc::sigemptyset(&mut sa.sa_mask);
        cvt(libc::sigaction(sig, &sa, std::ptr::null_mut())).map(drop)
    }
}

/// Blocks or unblocks signals for the process.
pub fn mask_signals(sigs: &[i32], block: bool) {
    // SAFETY: a properly initialised sigset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in sigs {
            libc::sigaddset(&mut set, s);
        }
        let how = if block {
            libc::SIG_BLOCK
        } else {
            libc::SIG_UNBLOCK
        };
        libc::sigprocmask(how, &set, std::ptr::null_mut());
    }
}

/// A non-blocking, close-on-exec pipe.
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: valid array of two ints.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) })?;
    // SAFETY: pipe2 gave us two fresh descriptors we now own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A close-on-exec pipe whose read end only is non-blocking (worker output capture:
/// the worker's writes block rather than lose data).
pub fn capture_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: valid array of two ints.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 gave us two fresh descriptors we now own.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: fcntl on our own descriptor.
    unsafe {
        let fl = libc::fcntl(r.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(r.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
    Ok((r, w))
}

pub fn write_fd(fd: RawFd, data: &[u8]) -> io::Result<usize> {
    // SAFETY: valid buffer for the call.
    let n = unsafe { libc::write(fd, data.as_ptr() as *const libc::c_void, data.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

pub fn read_fd(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: valid buffer for the call.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

pub fn dup2(from: RawFd, to: RawFd) -> io::Result<()> {
    // SAFETY: plain syscall on descriptors.
    cvt(unsafe { libc::dup2(from, to) }).map(drop)
}

pub fn close(fd: RawFd) {
    // SAFETY: the caller gives up this descriptor.
    unsafe {
        libc::close(fd);
    }
}

pub fn set_cloexec(fd: RawFd, on: bool) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor.
    unsafe {
        let flags = cvt(libc::fcntl(fd, libc::F_GETFD))?;
        let flags = if on {
            flags | libc::FD_CLOEXEC
        } else {
            flags & !libc::FD_CLOEXEC
        };
        cvt(libc::fcntl(fd, libc::F_SETFD, flags)).map(drop)
    }
}

/// Opens /dev/null onto `fd`.
pub fn devnull_onto(fd: RawFd, write: bool) -> io::Result<()> {
    let f = std::fs::OpenOptions::new()
        .read(!write)
        .write(write)
        .open("/dev/null")?;
    dup2(f.as_raw_fd(), fd)
}

pub fn isatty(fd: RawFd) -> bool {
    // SAFETY: plain query.
    unsafe { libc::isatty(fd) == 1 }
}

pub fn setsid() {
    // SAFETY: plain syscall; failure (already a leader) is harmless.
    unsafe {
        libc::setsid();
    }
}

/// accept(2) that returns EINTR to the caller (std retries it, which would hide
/// SIGQUIT from an idle worker). The new descriptor is close-on-exec.
pub fn accept(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: NULL address pointers are allowed; the new fd is ours.
    let r = unsafe {
        libc::accept4(
            fd,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_CLOEXEC,
        )
    };
    // SAFETY: r is a fresh descriptor.
    cvt(r).map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Epoll instance for the master's event loop.
pub struct Epoll(OwnedFd);

impl Epoll {
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: plain syscall; the fd is ours.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: fresh descriptor.
        Ok(Epoll(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    pub fn add(&self, fd: RawFd, token: u64, edge: bool) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN as u32) | if edge { libc::EPOLLET as u32 } else { 0 },
            u64: token,
        };
        // SAFETY: valid event struct.
        cvt(unsafe { libc::epoll_ctl(self.0.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) })
            .map(drop)
    }

    pub fn raw(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    /// Waits up to `timeout_ms`; returns the tokens that are ready (EINTR → none).
    pub fn wait(&self, timeout_ms: i32, out: &mut Vec<u64>) -> io::Result<()> {
        out.clear();
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 32];
        // SAFETY: valid buffer of 32 events.
        let n = unsafe {
            libc::epoll_wait(
                self.0.as_raw_fd(),
                evs.as_mut_ptr(),
                evs.len() as i32,
                timeout_ms,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(())
            } else {
                Err(e)
            };
        }
        out.extend(evs[..n as usize].iter().map(|e| e.u64));
        Ok(())
    }
}

/// A passwd entry.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
}

fn passwd_from(p: *const libc::passwd) -> Option<User> {
    if p.is_null() {
        return None;
    }
    // SAFETY: getpwnam_r filled `p` with pointers into our buffer, valid here.
    unsafe {
        let p = &*p;
        Some(User {
            name: CStr::from_ptr(p.pw_name).to_string_lossy().into_owned(),
            uid: p.pw_uid,
            gid: p.pw_gid,
            home: CStr::from_ptr(p.pw_dir).to_string_lossy().into_owned(),
        })
    }
}

/// Initial buffer for the reentrant passwd/group lookups; it grows on ERANGE (a group
/// with thousands of members does not fit in 16 KiB).
const NSS_BUF: usize = 16 * 1024;
/// The buffer stops growing here: an entry this large is treated as missing.
const NSS_BUF_MAX: usize = 16 * 1024 * 1024;

/// Runs a reentrant NSS lookup with a buffer that doubles while the call answers
/// ERANGE. `lookup` returns the call's error number (0 on success, found or not).
fn nss_lookup<T>(
    initial: usize,
    mut lookup: impl FnMut(&mut [libc::c_char]) -> (libc::c_int, Option<T>),
) -> Option<T> {
    let mut len = initial.max(1);
    loop {
        let mut buf = vec![0 as libc::c_char; len];
        match lookup(&mut buf) {
            (libc::ERANGE, _) if len < NSS_BUF_MAX => len *= 2,
            (0, found) => return found,
            _ => return None,
        }
    }
}

fn user_by_name_buf(name: &str, initial: usize) -> Option<User> {
    let cname = CString::new(name).ok()?;
    nss_lookup(initial, |buf| {
        // SAFETY: zeroed passwd and a buffer we own, sizes passed correctly; the result
        // points into `buf`, read before it goes away.
        unsafe {
            let mut pw: libc::passwd = std::mem::zeroed();
            let mut res: *mut libc::passwd = std::ptr::null_mut();
            let rc = libc::getpwnam_r(
                cname.as_ptr(),
                &mut pw,
                buf.as_mut_ptr(),
                buf.len(),
                &mut res,
            );
            (rc, passwd_from(res))
        }
    })
}

pub fn user_by_name(name: &str) -> Option<User> {
    user_by_name_buf(name, NSS_BUF)
}

pub fn user_by_uid(uid: u32) -> Option<User> {
    nss_lookup(NSS_BUF, |buf| {
        // SAFETY: as above.
        unsafe {
            let mut pw: libc::passwd = std::mem::zeroed();
            let mut res: *mut libc::passwd = std::ptr::null_mut();
            let rc = libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut res);
            (rc, passwd_from(res))
        }
    })
}

fn group_by_name_buf(name: &str, initial: usize) -> Option<u32> {
    let cname = CString::new(name).ok()?;
    nss_lookup(initial, |buf| {
        // SAFETY: zeroed group struct and our buffer; only the gid is read.
        unsafe {
            let mut gr: libc::group = std::mem::zeroed();
            let mut res: *mut libc::group = std::ptr::null_mut();
            let rc = libc::getgrnam_r(
                cname.as_ptr(),
                &mut gr,
                buf.as_mut_ptr(),
                buf.len(),
                &mut res,
            );
            (rc, (!res.is_null()).then(|| (*res).gr_gid))
        }
    })
}

pub fn group_by_name(name: &str) -> Option<u32> {
    group_by_name_buf(name, NSS_BUF)
}

/// setgid (when `gid` is not 0) + initgroups (when a user name is known) + setuid (when
/// `uid` is not 0), in that order, like php-fpm's worker (reference §3.8). `Err` is
/// php-fpm's message with the SYSERR suffix.
pub fn switch_user(initgroups_user: Option<&str>, uid: u32, gid: u32) -> Result<(), String> {
    if gid != 0 {
        // SAFETY: plain syscall.
        if unsafe { libc::setgid(gid) } < 0 {
            return Err(format!(
                "failed to setgid({gid}){}",
                syserr(&io::Error::last_os_error())
            ));
        }
    }
    if let Some(name) = initgroups_user {
        let cname =
            CString::new(name).map_err(|_| format!("failed to initgroups({name}, {gid})"))?;
        // SAFETY: NUL-terminated name; initgroups reads the group database.
        if unsafe { libc::initgroups(cname.as_ptr(), gid) } < 0 {
            return Err(format!(
                "failed to initgroups({name}, {gid}){}",
                syserr(&io::Error::last_os_error())
            ));
        }
    }
    if uid != 0 {
        // SAFETY: plain syscall.
        if unsafe { libc::setuid(uid) } < 0 {
            return Err(format!(
                "failed to setuid({uid}){}",
                syserr(&io::Error::last_os_error())
            ));
        }
    }
    Ok(())
}

/// Which limit [`set_rlimit`] sets.
#[derive(Debug, Clone, Copy)]
pub enum Rlimit {
    Files,
    Core,
}

/// setrlimit with soft = hard = `value` (`-1` = unlimited, for `rlimit_core`).
pub fn set_rlimit(which: Rlimit, value: i32) -> io::Result<()> {
    let v = if value < 0 {
        libc::RLIM_INFINITY
    } else {
        value as libc::rlim_t
    };
    let lim = libc::rlimit {
        rlim_cur: v,
        rlim_max: v,
    };
    let res = match which {
        Rlimit::Files => libc::RLIMIT_NOFILE,
        Rlimit::Core => libc::RLIMIT_CORE,
    };
    // SAFETY: a valid rlimit struct.
    cvt(unsafe { libc::setrlimit(res, &lim) }).map(drop)
}

/// setpriority(PRIO_PROCESS, 0, prio): the nice value of this process.
pub fn set_priority(prio: i32) -> io::Result<()> {
    // SAFETY: plain syscall on ourselves.
    cvt(unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, prio) }).map(drop)
}

pub fn chroot(path: &str) -> io::Result<()> {
    let c = CString::new(path).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: NUL-terminated path.
    cvt(unsafe { libc::chroot(c.as_ptr()) }).map(drop)
}

/// prctl(PR_SET_DUMPABLE, 1).
pub fn set_dumpable() -> io::Result<()> {
    // SAFETY: plain prctl with integer arguments.
    cvt(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) }).map(drop)
}

/// Writes the access ACL of a file (the `system.posix_acl_access` attribute, the
/// kernel's own format; see [`crate::acl`]).
pub fn set_access_acl(path: &str, xattr: &[u8]) -> io::Result<()> {
    let c = CString::new(path).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: NUL-terminated path and name, a buffer with its length.
    cvt(unsafe {
        libc::setxattr(
            c.as_ptr(),
            c"system.posix_acl_access".as_ptr(),
            xattr.as_ptr().cast(),
            xattr.len(),
            0,
        )
    })
    .map(drop)
}

pub fn umask(mask: u32) -> u32 {
    // SAFETY: plain syscall.
    unsafe { libc::umask(mask as libc::mode_t) as u32 }
}

pub fn chown(path: &str, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
    let c = CString::new(path).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: NUL-terminated path; -1 means "leave unchanged".
    cvt(unsafe { libc::chown(c.as_ptr(), uid.unwrap_or(u32::MAX), gid.unwrap_or(u32::MAX)) })
        .map(drop)
}

/// recv(2) that never blocks (`MSG_DONTWAIT`); `WouldBlock` when nothing is there.
pub fn recv_nowait(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: a valid, writable buffer of `buf.len()` bytes for the call.
    let n = unsafe {
        libc::recv(
            fd,
            buf.as_mut_ptr() as *mut libc::c_void,
            buf.len(),
            libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Bytes queued for reading on a socket (`FIONREAD`); `None` if the kernel cannot say.
pub fn readable_bytes(fd: RawFd) -> Option<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer.
    let r = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n as *mut libc::c_int) };
    (r == 0).then(|| usize::try_from(n).ok()).flatten()
}

/// Half-closes a connection (no more writes from us).
pub fn shutdown_write(fd: RawFd) {
    // SAFETY: plain syscall on a socket we own.
    unsafe {
        libc::shutdown(fd, libc::SHUT_WR);
    }
}

/// `strftime(fmt)` of a Unix time in local time (`TZ`, `/etc/localtime`); at most 256
/// bytes of output, empty when the format produces nothing or more.
pub fn strftime_local(secs: i64, fmt: &str) -> String {
    let Ok(cfmt) = CString::new(fmt) else {
        return String::new();
    };
    let t = secs as libc::time_t;
    let mut buf = [0u8; 256];
    // SAFETY: `tm` is plain data for which zero bytes are valid; localtime_r writes only
    // into it; strftime writes at most buf.len() bytes into buf and returns the count.
    let n = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return String::new();
        }
        libc::strftime(
            buf.as_mut_ptr() as *mut libc::c_char,
            buf.len(),
            cfmt.as_ptr(),
            &tm,
        )
    };
    String::from_utf8_lossy(&buf[..n.min(buf.len())]).into_owned()
}

/// CPU time used by this process and its reaped children, µs: (user, system), at the
/// clock-tick resolution of times(2) (as php-fpm measures it).
pub fn cpu_times_us() -> (u64, u64) {
    // SAFETY: `tms` is plain data; times() only writes into it; sysconf is a query.
    let (tms, tick) = unsafe {
        let mut tms: libc::tms = std::mem::zeroed();
        libc::times(&mut tms);
        (tms, libc::sysconf(libc::_SC_CLK_TCK))
    };
    let tick = if tick > 0 { tick as u64 } else { 100 };
    let us = |t: libc::clock_t| (t.max(0) as u64).saturating_mul(1_000_000) / tick;
    (
        us(tms.tms_utime) + us(tms.tms_cutime),
        us(tms.tms_stime) + us(tms.tms_cstime),
    )
}

/// A listening TCP socket's accept queue: (waiting connections, capacity), from
/// `TCP_INFO` (Linux reports them in `tcpi_unacked` and `tcpi_sacked` for a socket in
/// LISTEN state). `None` for other sockets.
pub fn listen_queue(fd: RawFd) -> Option<(u64, u64)> {
    // SAFETY: `tcp_info` is plain data; getsockopt writes at most `len` bytes into it.
    unsafe {
        let mut info: libc::tcp_info = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        let r = libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            &mut info as *mut libc::tcp_info as *mut libc::c_void,
            &mut len,
        );
        // TCP_LISTEN is state 10 in the kernel's numbering.
        if r != 0 || info.tcpi_state != 10 {
            return None;
        }
        Some((u64::from(info.tcpi_unacked), u64::from(info.tcpi_sacked)))
    }
}

/// The parent's pid.
pub fn getppid() -> libc::pid_t {
    // SAFETY: plain query.
    unsafe { libc::getppid() }
}

/// Opens an access log (append, create with mode 0600, close-on-exec).
pub fn open_append(path: &str) -> io::Result<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    Ok(OwnedFd::from(f))
}

/// This task's AppArmor attribute file (`current`): the AppArmor-specific one where the
/// kernel has it, else the shared LSM one, like libapparmor.
fn apparmor_attr(tid: libc::pid_t) -> io::Result<(String, String)> {
    let specific = format!("/proc/{tid}/attr/apparmor/current");
    match std::fs::read_to_string(&specific) {
        Ok(text) => Ok((specific, text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let shared = format!("/proc/{tid}/attr/current");
            std::fs::read_to_string(&shared).map(|text| (shared, text))
        }
        Err(e) => Err(e),
    }
}

/// The current AppArmor label (without the ` (mode)` suffix) and the file to write a
/// profile change to.
pub fn apparmor_current() -> io::Result<(String, String)> {
    // SAFETY: plain syscall.
    let tid = unsafe { libc::gettid() };
    let (path, text) = apparmor_attr(tid)?;
    Ok((apparmor_label(&text).to_string(), path))
}

/// `profile (enforce)\n` → `profile`; `unconfined\n` → `unconfined`.
fn apparmor_label(text: &str) -> &str {
    let label = text.trim_end_matches(['\n', '\0']);
    match label
        .strip_suffix(')')
        .and_then(|l| l.rfind(" (").map(|i| &l[..i]))
    {
        Some(l) => l,
        None => label,
    }
}

/// Asks AppArmor to move this task to `profile` (`changeprofile <profile>`).
pub fn apparmor_change_profile(attr_path: &str, profile: &str) -> io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().write(true).open(attr_path)?;
    f.write_all(format!("changeprofile {profile}").as_bytes())
}

#[cfg(test)]
mod tests {
    #[test]
    fn apparmor_labels() {
        assert_eq!(super::apparmor_label("php-fpm (enforce)\n"), "php-fpm");
        assert_eq!(super::apparmor_label("unconfined\n"), "unconfined");
        assert_eq!(super::apparmor_label("a (b) (complain)"), "a (b)");
    }

    #[test]
    fn lookups_grow_their_buffer_on_erange() {
        // A 1-byte buffer cannot hold any entry: the lookup must retry with a larger one.
        let root = super::user_by_name_buf("root", 1);
        assert_eq!(root.as_ref().map(|u| u.uid), Some(0), "{root:?}");
        assert_eq!(super::group_by_name_buf("root", 1), Some(0));
        assert!(super::user_by_name_buf("no-such-user-rfpm", 1).is_none());
        assert!(super::group_by_name_buf("no-such-group-rfpm", 1).is_none());
        assert_eq!(
            super::user_by_uid(0).map(|u| u.name),
            Some("root".to_string())
        );
    }
}
