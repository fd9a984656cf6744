//! Daemon mode (reference §2.4) and the pid file: the launching process waits for the
//! master to say whether it started, then exits with the answer.
use crate::cli::{EX_OK, EX_SOFTWARE};
use crate::error::Error;
use rfpm_sys::{fd, process};
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

/// How long the launching process waits for the master's answer.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Which side of the daemonising fork this is.
pub enum Side {
    /// The launching process: it must exit with this code now.
    Launcher(i32),
    /// The master, with the pipe to report its start on.
    Master(Reporter),
}

/// The master's way to tell the launching process how start-up went: `1` started,
/// `0` failed. Dropped without a report, it reports a failure.
pub struct Reporter {
    pipe: Option<OwnedFd>,
}

impl Reporter {
    /// Start-up succeeded: the launcher exits 0.
    pub fn started(mut self) {
        self.send(b"1");
    }

    fn send(&mut self, what: &[u8]) {
        if let Some(pipe) = self.pipe.take() {
            let _ = fd::write(pipe.as_fd(), what);
        }
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        // Whatever ended start-up was logged before this runs (it is dropped after).
        self.send(b"0");
    }
}

/// Forks. The launcher waits ([`LAUNCH_TIMEOUT`] at most) for the master's report.
pub fn daemonize() -> Result<Side, Error> {
    let (r, w) = fd::pipe().map_err(|e| Error::sys("failed to create pipe", e))?;
    match process::fork_single_threaded() {
        Ok(process::Fork::Child) => {
            drop(r);
            // Until it is launched the master still writes every line to the launching
            // stderr too, like php-fpm (start-up errors such as an unknown pool user
            // reach the caller); at launch fd 2 is let go (GH-9754), see `startup`.
            Ok(Side::Master(Reporter { pipe: Some(w) }))
        }
        Ok(process::Fork::Parent(_)) => {
            drop(w);
            Ok(Side::Launcher(wait_for_report(&r)))
        }
        Err(e) => Err(Error::sys("failed to daemonize", e)),
    }
}

/// The launcher's side: the master's report as an exit code.
fn wait_for_report(r: &OwnedFd) -> i32 {
    let deadline = Instant::now() + LAUNCH_TIMEOUT;
    let mut buf = [0u8; 1];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            crate::error!("the master process didn't send back its status (via the pipe to the calling process)");
            return EX_SOFTWARE;
        }
        let wait = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
        if !fd::poll_readable(r.as_fd(), wait).unwrap_or(false) {
            continue;
        }
        return match fd::read(r.as_fd(), &mut buf) {
            Ok(1) if buf[0] == b'1' => EX_OK,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            _ => EX_SOFTWARE,
        };
    }
}

/// Writes the master's pid to `path` (a stale file is replaced).
pub fn write_pid_file(path: &conf::Bytes) -> Result<(), Error> {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
        .map_err(|source| Error::File {
            what: format!("Unable to create the PID file ({path})."),
            source,
        })?;
    write!(f, "{}", process::getpid()).map_err(|source| Error::File {
        what: "Unable to write to the PID file.".to_string(),
        source,
    })
}
