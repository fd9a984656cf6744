//! Processes: fork, signals to children, reaping, exec, identity numbers.
use crate::errno::cvt;
use std::ffi::CString;
use std::io;

pub type Pid = libc::pid_t;

/// Which side of a fork this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fork {
    Parent(Pid),
    Child,
}

/// How many threads this process runs, from `/proc/self/stat` (field 20); `None` when
/// it cannot be read.
pub fn thread_count() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces and parentheses).
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    rest.split_whitespace().nth(20 - 3)?.parse().ok()
}

/// fork(2).
///
/// # Safety
/// The calling process must run exactly one thread (the master is single-threaded by
/// design, DESIGN.md §4.1). In a multi-threaded process the child gets a copy of memory
/// in which other threads may hold locks (the allocator's, stdio's) that nobody will
/// ever release; the child may then deadlock or see torn data.
pub unsafe fn fork() -> io::Result<Fork> {
    debug_assert_eq!(
        thread_count().unwrap_or(1),
        1,
        "fork() in a multi-threaded process"
    );
    // SAFETY: the caller guarantees one thread (see `# Safety`), so the child's copy of
    // memory holds no lock of another thread; each side continues with its own copy.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Fork::Child),
        p => Ok(Fork::Parent(p)),
    }
}

/// fork(2) after checking that this process runs one thread; refuses (`EDEADLK`)
/// otherwise. The master forks its workers and the daemon through this.
pub fn fork_single_threaded() -> io::Result<Fork> {
    match thread_count() {
        Some(1) => {}
        // Without /proc the master's own design is the guarantee (it starts no thread).
        None => {}
        Some(_) => return Err(io::Error::from_raw_os_error(libc::EDEADLK)),
    }
    // SAFETY: one thread runs, just checked (or /proc is missing and the master, which
    // never starts a thread, is the only caller).
    unsafe { fork() }
}

/// The parent whose death [`die_with_parent`] watches, and the signal it sends (0: none),
/// for [`die_with_parent_again`].
static WATCHED_PARENT: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);
static PARENT_DEATH_SIGNAL: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// In a child right after fork: the kernel sends `sig` to this process when its parent,
/// `parent` (the pid the parent had before forking), dies (`PR_SET_PDEATHSIG`).
///
/// The parent may have died between fork and this call, and then no signal ever comes:
/// `Ok(false)` says so (`getppid()` no longer is `parent`: the child was re-parented).
///
/// The kernel forgets the setting when the process changes its effective or filesystem
/// uid or gid: call [`die_with_parent_again`] after switching identity.
pub fn die_with_parent(sig: i32, parent: Pid) -> io::Result<bool> {
    let arg =
        libc::c_ulong::try_from(sig).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: prctl(PR_SET_PDEATHSIG, n, 0, 0, 0) takes plain integers and touches no
    // memory of ours; it only records a signal number in this process's task (an invalid
    // number is refused with EINVAL). The unused arguments are zero, as prctl(2) asks.
    cvt(unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            arg,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    })?;
    WATCHED_PARENT.store(parent, std::sync::atomic::Ordering::Relaxed);
    PARENT_DEATH_SIGNAL.store(sig, std::sync::atomic::Ordering::Relaxed);
    Ok(getppid() == parent)
}

/// [`die_with_parent`] again with the same signal and parent (after `setuid()` and the
/// like cleared it); `Ok(true)` when nothing was set up.
pub fn die_with_parent_again() -> io::Result<bool> {
    let sig = PARENT_DEATH_SIGNAL.load(std::sync::atomic::Ordering::Relaxed);
    if sig == 0 {
        return Ok(true);
    }
    die_with_parent(
        sig,
        WATCHED_PARENT.load(std::sync::atomic::Ordering::Relaxed),
    )
}

pub fn getpid() -> Pid {
    // SAFETY: getpid has no preconditions and cannot fail.
    unsafe { libc::getpid() }
}

pub fn getppid() -> Pid {
    // SAFETY: getppid has no preconditions and cannot fail.
    unsafe { libc::getppid() }
}

pub fn geteuid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

pub fn getegid() -> u32 {
    // SAFETY: getegid has no preconditions and cannot fail.
    unsafe { libc::getegid() }
}

/// Sends `sig` to `pid`.
pub fn kill(pid: Pid, sig: i32) -> io::Result<()> {
    // SAFETY: kill takes two integers and touches no memory of ours.
    cvt(unsafe { libc::kill(pid, sig) }).map(drop)
}

/// Becomes a session leader (failing when already one is harmless).
pub fn setsid() {
    // SAFETY: setsid takes no arguments and touches no memory of ours.
    unsafe {
        libc::setsid();
    }
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal { sig: i32, core: bool },
}

/// Reaps one exited child without blocking.
pub fn wait_any() -> Option<(Pid, Exit)> {
    let mut status = 0;
    // SAFETY: `status` is a live local the kernel writes one int into.
    let pid = unsafe { libc::waitpid(-1, &raw mut status, libc::WNOHANG) };
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
        Exit::Code(0)
    };
    Some((pid, exit))
}

/// Blocks until `pid` exits (tests and the `request` command's helpers).
pub fn wait_for(pid: Pid) -> io::Result<Exit> {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a live local the kernel writes one int into.
        let r = unsafe { libc::waitpid(pid, &raw mut status, 0) };
        if r == pid {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(if libc::WIFSIGNALED(status) {
        Exit::Signal {
            sig: libc::WTERMSIG(status),
            core: libc::WCOREDUMP(status),
        }
    } else {
        Exit::Code(libc::WEXITSTATUS(status))
    })
}

/// Ends this process at once, without running destructors or atexit handlers (a forked
/// child that must not touch its parent's state).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit takes an integer and never returns; nothing of ours runs after it.
    unsafe { libc::_exit(code) }
}

/// Replaces this process's image with `argv[0]` (searched in `PATH`), keeping the pid
/// and the descriptors without close-on-exec. Returns only on failure. The arguments are
/// bytes (as the process was given them).
pub fn execvp(argv: &[Vec<u8>]) -> io::Error {
    let args: Vec<CString> = match argv.iter().map(|a| CString::new(a.as_slice())).collect() {
        Ok(a) => a,
        Err(_) => return io::Error::from_raw_os_error(libc::EINVAL),
    };
    if args.is_empty() {
        return io::Error::from_raw_os_error(libc::EINVAL);
    }
    let mut ptrs: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // SAFETY: `ptrs` is a NULL-terminated array of pointers to NUL-terminated strings
    // owned by `args`, which outlives the call; on success nothing of ours survives.
    unsafe {
        libc::execvp(ptrs[0], ptrs.as_ptr());
    }
    io::Error::last_os_error()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_count_sees_this_test_thread() {
        // The test harness runs tests on threads: at least one.
        assert!(thread_count().is_some_and(|n| n >= 1));
    }

    #[test]
    fn fork_refuses_with_many_threads() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            let _ = rx.recv();
        });
        let r = fork_single_threaded();
        assert_eq!(r.err().and_then(|e| e.raw_os_error()), Some(libc::EDEADLK));
        drop(tx);
        let _ = t.join();
    }

    #[test]
    fn names() {
        assert_eq!(signal_name(libc::SIGSEGV), "SIGSEGV");
        assert_eq!(signal_name(1000), "?");
    }
}
