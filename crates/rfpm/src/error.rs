//! Why rfpm could not start or go on: typed errors whose `Display` is php-fpm's wording
//! (greppable against php-fpm's sources), each with the exit code php-fpm ends with.
//! `main` is the one place an error becomes log lines and an exit code.
use crate::cli::{EX_CONFIG, EX_SOFTWARE};
use crate::log::Level;
use std::io;

/// A failure that ends the program.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration did not hold (parse, validation, a pool's user or socket
    /// permissions): its diagnostics, already in php-fpm's words, come first.
    #[error("FPM initialization failed")]
    Config(Vec<conf::Diag>),
    /// A step of initialization failed in the system (rlimits, priority, a socket):
    /// php-fpm logs the reason, then `FPM initialization failed`.
    #[error("{what}{}", sys_suffix(.source))]
    Init {
        what: String,
        #[source]
        source: Option<io::Error>,
    },
    /// A file the master writes could not be opened or written (access log, pid file).
    #[error("{what}{}", rfpm_sys::syserr(.source))]
    File {
        what: String,
        #[source]
        source: io::Error,
    },
    /// The process could not do what it must (signals, fork, epoll, shared memory).
    #[error("{what}{}", rfpm_sys::syserr(.source))]
    Sys {
        what: String,
        #[source]
        source: io::Error,
    },
    /// PHP's module start-up failed.
    #[error("{0}")]
    Engine(#[from] sapi::EngineError),
}

fn sys_suffix(e: &Option<io::Error>) -> String {
    e.as_ref().map(rfpm_sys::syserr).unwrap_or_default()
}

impl Error {
    /// A system call failed: `what: <strerror> (<errno>)`, exit 70.
    pub fn sys(what: impl Into<String>, source: io::Error) -> Error {
        Error::Sys {
            what: what.into(),
            source,
        }
    }

    /// An initialization step failed: `what[: <strerror> (<errno>)]`, then
    /// `FPM initialization failed`, exit 78.
    pub fn init(what: impl Into<String>, source: Option<io::Error>) -> Error {
        Error::Init {
            what: what.into(),
            source,
        }
    }

    /// The exit code php-fpm ends with for this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) | Error::Init { .. } | Error::File { .. } => EX_CONFIG,
            Error::Sys { .. } | Error::Engine(_) => EX_SOFTWARE,
        }
    }

    /// The log lines php-fpm writes for this failure, in order (without the
    /// diagnostics of a configuration error, which [`Error::log`] prints first). A
    /// line with an errno gets the SYSERR suffix from the logger, which also cuts it
    /// at `log_limit` the way php-fpm cuts such lines.
    pub fn lines(&self) -> Vec<Line> {
        let failed = Line::error("FPM initialization failed", None);
        match self {
            Error::Config(_) => vec![failed],
            Error::Init { what, source } => {
                vec![Line::error(what, source.as_ref()), failed]
            }
            Error::File { what, source } | Error::Sys { what, source } => {
                vec![Line::error(what, Some(source))]
            }
            Error::Engine(e) => vec![Line::error(&e.to_string(), None)],
        }
    }

    /// Logs why, without php-fpm's closing `FPM initialization failed` (a reload that
    /// does not go through: the master serves on).
    pub fn log_reason(&self) {
        if let Error::Config(diags) = self {
            crate::plan::print_diags(diags);
        }
        let failed = "FPM initialization failed";
        for l in self.lines().into_iter().filter(|l| l.text != failed) {
            match l.errno {
                Some(errno) => crate::log_sys_at!(l.level, errno, "{}", l.text),
                None => crate::log_at!(l.level, "{}", l.text),
            }
        }
    }

    /// Logs the failure as php-fpm does.
    pub fn log(&self) {
        if let Error::Config(diags) = self {
            crate::plan::print_diags(diags);
        }
        for l in self.lines() {
            match l.errno {
                Some(errno) => crate::log_sys_at!(l.level, errno, "{}", l.text),
                None => crate::log_at!(l.level, "{}", l.text),
            }
        }
    }
}

/// One log line of a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub level: Level,
    pub text: String,
    /// For the SYSERR suffix (`: <strerror> (<errno>)`).
    pub errno: Option<i32>,
}

impl Line {
    fn error(text: &str, source: Option<&io::Error>) -> Line {
        Line {
            level: Level::Error,
            text: text.to_string(),
            errno: source.map(|e| e.raw_os_error().unwrap_or(0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wording_and_exit_codes() {
        let e = Error::sys(
            "failed to create pipe",
            io::Error::from_raw_os_error(libc::EMFILE),
        );
        assert_eq!(
            e.to_string(),
            "failed to create pipe: Too many open files (24)"
        );
        assert_eq!(e.exit_code(), EX_SOFTWARE);

        let e = Error::init(
            "Unable to set priority for the master process",
            Some(io::Error::from_raw_os_error(libc::EACCES)),
        );
        assert_eq!(
            e.to_string(),
            "Unable to set priority for the master process: Permission denied (13)"
        );
        let lines = e.lines();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            (lines[0].text.as_str(), lines[0].errno),
            ("Unable to set priority for the master process", Some(13))
        );
        assert_eq!(
            (lines[1].text.as_str(), lines[1].errno),
            ("FPM initialization failed", None)
        );
        assert_eq!(e.exit_code(), EX_CONFIG);

        let e = Error::init("Another FPM instance seems to already listen on /x", None);
        assert_eq!(
            e.to_string(),
            "Another FPM instance seems to already listen on /x"
        );
        let e = Error::Config(vec![]);
        assert_eq!(e.lines().len(), 1);
        assert_eq!(e.exit_code(), EX_CONFIG);
    }
}
