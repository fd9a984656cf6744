//! Signals: one handler for master and workers, installed before PHP's
//! `zend_signal_startup()` (PHP restores at each request only the handlers that existed
//! then). The master's handler writes the signal number into a self-pipe read by the
//! event loop; a worker's handler sets a flag (SIGQUIT: finish and exit) or dies by the
//! signal's default action (SIGTERM, SIGINT, SIGUSR1, SIGUSR2, SIGHUP), like php-fpm.
//!
//! The one list of signals the master handles is [`MASTER_SIGNALS`]; [`FORK_SIGNALS`]
//! adds those a new worker must not receive before it has its own dispositions.
use crate::errno::cvt;
use crate::fd;
use std::io;
use std::os::fd::{AsFd, IntoRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// The self-pipe's write end, owned by this static from `install` on (the handler can
/// use only a number); -1 when there is none (a worker closed it).
static PIPE_W: AtomicI32 = AtomicI32::new(-1);
static IS_WORKER: AtomicBool = AtomicBool::new(false);
static WORKER_QUIT: AtomicBool = AtomicBool::new(false);

/// The signals the master reacts to.
pub const MASTER_SIGNALS: [i32; 7] = [
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGCHLD,
    libc::SIGHUP,
];

/// Blocked around fork: the master's, and those a worker gives back their default.
pub const FORK_SIGNALS: [i32; 9] = {
    let mut all = [libc::SIGSEGV; 9];
    let mut i = 0;
    while i < MASTER_SIGNALS.len() {
        all[i] = MASTER_SIGNALS[i];
        i += 1;
    }
    all[8] = libc::SIGBUS;
    all
};

extern "C" fn on_signal(sig: libc::c_int) {
    // SAFETY: errno is a thread-local int that libc keeps valid for the thread's life;
    // the handler saves and restores it around its own calls.
    let saved = unsafe { *libc::__errno_location() };
    if IS_WORKER.load(Ordering::Relaxed) {
        match sig {
            libc::SIGQUIT => WORKER_QUIT.store(true, Ordering::Relaxed),
            libc::SIGCHLD => {}
            _ => die_by(sig),
        }
    } else {
        let fd = PIPE_W.load(Ordering::Relaxed);
        if fd >= 0 {
            // Signal numbers fit a byte (Linux has 64).
            let b = u8::try_from(sig).unwrap_or(0);
            // SAFETY: write is async-signal-safe; `fd` is the pipe's write end, owned by
            // PIPE_W for the life of the process; `b` is a live local of one byte. A full
            // pipe (O_NONBLOCK) loses the byte, which the loop does not need twice.
            unsafe { libc::write(fd, std::ptr::from_ref(&b).cast(), 1) };
        }
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = saved };
}

/// A worker dies by the signal's default action (async-signal-safe calls only).
fn die_by(sig: libc::c_int) {
    // SAFETY: all-zero is a valid sigaction and sigset_t (plain C structs); sigaction,
    // sigemptyset, sigaddset, sigprocmask and raise are async-signal-safe and get
    // pointers to live locals only.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(sig, &raw const sa, std::ptr::null_mut());
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&raw mut set);
        libc::sigaddset(&raw mut set, sig);
        libc::sigprocmask(libc::SIG_UNBLOCK, &raw const set, std::ptr::null_mut());
        libc::raise(sig);
    }
}

/// Installs `handler` for `sig` (no SA_RESTART: blocking calls return EINTR so the
/// loops see the flag the handler set).
fn set_handler(sig: i32, handler: extern "C" fn(libc::c_int)) -> io::Result<()> {
    // The kernel ABI stores the handler's address in `sa_sigaction`.
    set_disposition(sig, handler as libc::sighandler_t)
}

/// Gives `sig` its default action.
pub fn set_default(sig: i32) -> io::Result<()> {
    set_disposition(sig, libc::SIG_DFL)
}

/// Ignores `sig`.
pub fn ignore(sig: i32) -> io::Result<()> {
    set_disposition(sig, libc::SIG_IGN)
}

fn set_disposition(sig: i32, what: libc::sighandler_t) -> io::Result<()> {
    // SAFETY: all-zero is a valid sigaction (a plain C struct); `what` is SIG_DFL,
    // SIG_IGN or `on_signal`, a handler that is async-signal-safe; sigaction reads the
    // live local and keeps no pointer to it.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = what;
        libc::sigemptyset(&raw mut sa.sa_mask);
        sa.sa_flags = 0;
        cvt(libc::sigaction(sig, &raw const sa, std::ptr::null_mut())).map(drop)
    }
}

/// Blocks or unblocks signals for the process.
pub fn mask(sigs: &[i32], block: bool) {
    let how = if block {
        libc::SIG_BLOCK
    } else {
        libc::SIG_UNBLOCK
    };
    // SAFETY: all-zero is a valid sigset_t, initialised by sigemptyset; sigprocmask
    // reads the live local only.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&raw mut set);
        for &s in sigs {
            libc::sigaddset(&raw mut set, s);
        }
        libc::sigprocmask(how, &raw const set, std::ptr::null_mut());
    }
}

/// The master's handlers: SIGPIPE ignored, [`MASTER_SIGNALS`] into a self-pipe whose
/// read end is returned (the event loop watches it).
pub fn install() -> io::Result<OwnedFd> {
    ignore(libc::SIGPIPE)?;
    let (r, w) = fd::pipe()?;
    // The write end now belongs to PIPE_W for the life of the process (the handler can
    // only use a number); `become_worker` closes it in a worker.
    PIPE_W.store(w.into_raw_fd(), Ordering::Relaxed);
    for sig in MASTER_SIGNALS {
        set_handler(sig, on_signal)?;
    }
    // A reload blocks them across exec: the new image takes them from here on.
    mask(&MASTER_SIGNALS, false);
    Ok(r)
}

/// In a new worker, right after fork (signals still blocked): the handler now acts as
/// a worker's, the master's self-pipe is closed, and the signals a worker dies of get
/// their default action.
pub fn become_worker() {
    IS_WORKER.store(true, Ordering::Relaxed);
    let fd = PIPE_W.swap(-1, Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: `fd` is the write end PIPE_W owned (taken out of it just now, so no
        // handler uses it any more); nothing else owns it.
        drop(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) });
    }
    let _ = set_default(libc::SIGCHLD);
    // Rust's runtime catches SIGSEGV/SIGBUS (stack-overflow report) and swallows one
    // sent with kill(); a php-fpm worker dies of it, and the master counts it for the
    // emergency restart.
    let _ = set_default(libc::SIGSEGV);
    let _ = set_default(libc::SIGBUS);
}

/// A worker received SIGQUIT: it finishes its request and exits.
pub fn worker_quit() -> bool {
    WORKER_QUIT.load(Ordering::Relaxed)
}

/// The signals the self-pipe holds, in arrival order.
pub fn pending(pipe_r: &OwnedFd, out: &mut Vec<i32>) {
    out.clear();
    let mut buf = [0u8; 64];
    loop {
        match fd::read(pipe_r.as_fd(), &mut buf) {
            Ok(0) => return,
            Ok(n) => out.extend(buf[..n].iter().map(|&b| i32::from(b))),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fork_signals_are_the_masters_and_the_fatal_ones() {
        assert_eq!(&FORK_SIGNALS[..MASTER_SIGNALS.len()], &MASTER_SIGNALS[..]);
        assert_eq!(
            &FORK_SIGNALS[MASTER_SIGNALS.len()..],
            &[libc::SIGSEGV, libc::SIGBUS]
        );
    }
}
