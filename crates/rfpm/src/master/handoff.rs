//! What crosses `exec` when the master reloads (reference §4.3): the listening sockets
//! in `FPM_SOCKETS` (php-fpm's format, so either program can take over from the other),
//! the mark that the new image is already the daemon, and the generation number.
use super::generation::{Generation, GenerationId};
use rfpm_sys::{fd, process, signals};
use std::os::fd::AsRawFd;

/// Set in the environment of a re-executed image: it must not daemonise again.
pub const REEXEC_ENV: &str = "RFPM_REEXEC";
/// The generation number of the image that re-executed itself.
const GENERATION_ENV: &str = "RFPM_GENERATION";

/// This image's generation: one more than the image that re-executed into it, else 1.
/// Read once, when the master starts (the variable is then removed).
pub fn generation_id() -> GenerationId {
    let previous = std::env::var(GENERATION_ENV)
        .ok()
        .and_then(|v| v.parse::<GenerationId>().ok());
    std::env::remove_var(GENERATION_ENV);
    previous.map_or(1, |g| g.saturating_add(1))
}

/// Re-executes the master's command line in this process with the sockets handed over.
/// Returns only on failure (the sockets are close-on-exec again then).
pub fn reexec(argv: &[String], generation: &Generation) -> std::io::Error {
    signals::mask(&signals::MASTER_SIGNALS, true);
    let _ = crate::log::with(|l| l.restore_stderr());
    let listeners: Vec<_> = generation.pools.iter().map(|p| &p.listener).collect();
    let socks: Vec<(String, i32)> = listeners
        .iter()
        .map(|l| (l.key.clone(), l.fd.as_raw_fd()))
        .collect();
    for l in &listeners {
        let _ = fd::set_cloexec(l.fd(), false);
    }
    let vars = rfpm_core::listen_addr::export_vars(&socks);
    for (k, v) in &vars {
        std::env::set_var(k, v);
    }
    std::env::remove_var(format!("FPM_SOCKETS_{}", vars.len().max(1)));
    std::env::set_var(REEXEC_ENV, "1");
    std::env::set_var(GENERATION_ENV, generation.id.to_string());
    let shown: Vec<String> = argv.iter().take(11).map(|a| format!("\"{a}\"")).collect();
    crate::notice!(
        "reloading: execvp(\"{}\", {{{}}})",
        argv.first().map_or("", String::as_str),
        shown.join(", ")
    );
    let e = process::execvp(argv);
    for l in &listeners {
        let _ = fd::set_cloexec(l.fd(), true);
    }
    std::env::remove_var(GENERATION_ENV);
    signals::mask(&signals::MASTER_SIGNALS, false);
    e
}
