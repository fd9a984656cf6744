//! One signal handler for master and workers, installed before PHP's
//! `zend_signal_startup()` (PHP restores at each request only the handlers that existed
//! then). The master's handler writes the signal number into a self-pipe read by the
//! event loop; a worker's handler sets a flag (SIGQUIT: finish and exit) or dies by the
//! signal's default action (SIGTERM, SIGINT, SIGUSR1, SIGUSR2, SIGHUP), like php-fpm.
use crate::os;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

static PIPE_W: AtomicI32 = AtomicI32::new(-1);
static IS_WORKER: AtomicBool = AtomicBool::new(false);
static WORKER_QUIT: AtomicBool = AtomicBool::new(false);

/// Signals the master reacts to.
pub const MASTER_SIGNALS: [i32; 7] = [
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGCHLD,
    libc::SIGHUP,
];

/// Blocked around `fork()`: the master's signals, and SIGSEGV/SIGBUS, which a new
/// worker must meet with the default action (see [`become_worker`]).
pub const FORK_SIGNALS: [i32; 9] = [
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGCHLD,
    libc::SIGHUP,
    libc::SIGSEGV,
    libc::SIGBUS,
];

extern "C" fn on_signal(sig: libc::c_int) {
    // SAFETY: only async-signal-safe calls (write, sigaction, raise, errno access).
    unsafe {
        let saved = *libc::__errno_location();
        if IS_WORKER.load(Ordering::Relaxed) {
            match sig {
                libc::SIGQUIT => WORKER_QUIT.store(true, Ordering::Relaxed),
                libc::SIGCHLD => {}
                _ => {
                    let mut sa: libc::sigaction = std::mem::zeroed();
                    sa.sa_sigaction = libc::SIG_DFL;
                    libc::sigaction(sig, &sa, std::ptr::null_mut());
                    let mut set: libc::sigset_t = std::mem::zeroed();
                    libc::sigemptyset(&mut set);
                    libc::sigaddset(&mut set, sig);
                    libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
                    libc::raise(sig);
                }
            }
        } else {
            let fd = PIPE_W.load(Ordering::Relaxed);
            if fd >= 0 {
                let b = sig as u8;
                libc::write(fd, &b as *const u8 as *const libc::c_void, 1);
            }
        }
        *libc::__errno_location() = saved;
    }
}

/// Installs the handler for every signal master or workers use, and ignores SIGPIPE.
/// Returns the read end of the master's self-pipe.
pub fn install() -> std::io::Result<OwnedFd> {
    os::ignore(libc::SIGPIPE)?;
    let (r, w) = os::pipe()?;
    PIPE_W.store(w.as_raw_fd(), Ordering::Relaxed);
    std::mem::forget(w); // the write end lives as long as the process
    for sig in MASTER_SIGNALS {
        os::set_handler(sig, on_signal)?;
    }
    // A reload blocks them across exec: the new image takes them from here on.
    os::mask_signals(&MASTER_SIGNALS, false);
    Ok(r)
}

/// In a freshly forked worker: switch the handler to worker behaviour.
pub fn become_worker() {
    IS_WORKER.store(true, Ordering::Relaxed);
    let fd = PIPE_W.swap(-1, Ordering::Relaxed);
    if fd >= 0 {
        os::close(fd);
    }
    let _ = os::set_default(libc::SIGCHLD);
    // Rust's runtime catches SIGSEGV/SIGBUS (stack-overflow report) and swallows one
    // sent with kill(); a php-fpm worker dies of it, and the master counts it for the
    // emergency restart.
    let _ = os::set_default(libc::SIGSEGV);
    let _ = os::set_default(libc::SIGBUS);
}

/// A worker was asked to stop gracefully (SIGQUIT).
pub fn worker_quit() -> bool {
    WORKER_QUIT.load(Ordering::Relaxed)
}

/// Drains the self-pipe: the signals received since the last call, in order.
pub fn pending(pipe_r: &OwnedFd, out: &mut Vec<i32>) {
    out.clear();
    let mut buf = [0u8; 64];
    loop {
        match os::read_fd(pipe_r.as_raw_fd(), &mut buf) {
            Ok(0) => return,
            Ok(n) => out.extend(buf[..n].iter().map(|&b| b as i32)),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        }
    }
}
