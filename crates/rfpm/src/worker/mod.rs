//! A worker: forked from the master (PHP already started), it takes the pool's identity,
//! then accepts connections and serves FastCGI requests through PHP one at a time.

mod accept;
mod app;
mod classic;
mod finish;
mod io;
mod prepare;
mod setup;

use crate::log::Level;
use crate::master::listen::Listener;
use crate::pool::Pool;
use crate::scoreboard::Scoreboard;
use rfpm_sys::process;
use std::os::fd::BorrowedFd;

pub use app::{BOOT_FAILED, FATAL_IN_REQUEST};

/// Whose status a worker's status page and `fpm_get_status()` show: its own pool's, or
/// for a hidden `pm.status_listen` pool the owner's (reference §9.4).
pub struct StatusSource<'a> {
    pub sb: &'a Scoreboard,
    pub pool: &'a [u8],
    pub pm: &'static str,
    /// The scoreboards of the pool's draining generations (after a reload): their
    /// workers are listed too, marked.
    pub draining: &'a [Scoreboard],
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
    if let Err(msg) = setup::setup(pool) {
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
    // Switching uid/gid cleared the parent-death signal: set it again, and leave now if
    // the master died meanwhile.
    match process::die_with_parent_again() {
        Ok(true) => {}
        Ok(false) => std::process::exit(0),
        Err(e) => crate::error_sys!(e, "[pool {}] prctl(PR_SET_PDEATHSIG) failed", pool.name),
    }
    let Some(my_slot) = sb.slot(slot) else {
        std::process::exit(crate::cli::EX_SOFTWARE);
    };
    my_slot
        .pid
        .store(process::getpid(), std::sync::atomic::Ordering::Relaxed);
    let allowed = match (&pool.allowed_clients, pool.is_unix) {
        (Some(list), false) => Some(accept::parse_allowed_clients(list)),
        _ => None,
    };
    let mut acceptor = accept::Acceptor::new(listener.fd(), pool.is_unix, allowed);
    let mut w = classic::Worker {
        drain: vec![0; 4096],
        sb,
        slot: my_slot,
        pool,
        served: 0,
        max_requests: request_limit(pool),
        status,
        access_fd,
        peer: None,
        ppid: process::getppid(),
        cpu_start: rfpm_sys::time::cpu_times_us(),
        ids: pool.request_ids.then(|| {
            // Drawn once per worker (the pid and the clock mixed in, in case the
            // kernel's generator fails): no system call per request.
            let pid = u64::from(process::getpid().unsigned_abs());
            let seed = rfpm_sys::random::u64().unwrap_or(0)
                ^ pid.wrapping_mul(0x9E37_79B9_7F4A_7C15)
                ^ crate::scoreboard::now_us();
            rfpm_core::request_id::Generator::new(seed)
        }),
        request_id: rfpm_core::request_id::RequestId::default(),
    };
    if let Some(script) = &pool.worker_script {
        app::run(w, acceptor, script);
    }
    w.serve_all(&mut acceptor);
    std::process::exit(0);
}

/// This worker's request limit: `pm.max_requests` plus a random 0..=`pm.max_requests_jitter`
/// drawn now, in the worker, so that each worker of a pool has its own.
fn request_limit(pool: &Pool) -> u64 {
    let entropy = if pool.max_requests_jitter > 0 {
        // Without the kernel's generator: the pid and the clock still differ between
        // the workers of a pool.
        rfpm_sys::random::u64().unwrap_or_else(|| {
            u64::from(process::getpid().unsigned_abs()).wrapping_mul(0x9E37_79B9_7F4A_7C15)
                ^ crate::scoreboard::now_us()
        })
    } else {
        0
    };
    rfpm_core::recycle::request_limit(pool.max_requests, pool.max_requests_jitter, entropy)
}
