//! php-fpm's error log (reference §5.1–§5.3): line format, levels, `log_limit`, destinations.
//!
//! The bytes of one entry are `rfpm_core::logline`'s ([`format_record`]). Here,
//! [`Logger`] owns the destination
//! (stderr, a file, or syslog) and writes each entry with one `write(2)`; a process-wide
//! logger ([`with`], the `notice!`/`warning!`/`error!`/`alert!`/`debug!` macros and their
//! `*_sys!` forms with the SYSERR suffix) is used by the master and, after
//! [`Logger::worker_mode`], by the workers it forks.

use rfpm_sys::fd;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// fd 2, which the logger ties to the error log and back.
const STDERR: fd::Stdio = fd::Stdio::Err;

pub use rfpm_core::logline::{
    format_json_at, format_record_at, format_time, Cut, Format, JsonExtra, Record, Style, TimeText,
    DEFAULT_LIMIT,
};
/// Log levels (the worker's PHP messages use the same type).
pub use rfpm_core::Level;
pub use rfpm_sys::time::now;

/// Opens an error log file like php-fpm: append, create with mode 0600, close-on-exec.
pub fn open_log_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
}

pub use rfpm_sys::syslog::Syslog;

/// Where master entries go.
#[derive(Debug)]
pub enum Dest {
    /// fd 2.
    Stderr,
    /// An error log file, with its path for [`Logger::reopen`].
    File { file: File, path: PathBuf },
    /// syslog.
    Syslog(Syslog),
}

/// The log writer.
#[derive(Debug)]
pub struct Logger {
    dest: Dest,
    level: Level,
    limit: usize,
    launched: bool,
    worker: bool,
    /// The original fd 2, kept while fd 2 is tied to the log.
    saved_stderr: Option<OwnedFd>,
    stderr_tied: bool,
    /// The error log file while entries go to stderr (`-O`, or a TTY in the foreground):
    /// php-fpm opens it, writes nothing there, and reopens it on SIGUSR1 all the same
    /// (a rotation gets its new, empty file).
    held: Option<(File, PathBuf)>,
    /// The entries' time, formatted once a second.
    times: TimeText,
    /// `log_format = json` (rfpm): master entries to a file or stderr are JSON objects.
    /// Syslog keeps php-fpm's text (syslog stamps its own time and pid).
    json: bool,
    /// This process's pid, for JSON entries.
    pid: u32,
    /// In a worker: the master writes JSON entries, so `frankenphp_log()` entries go to
    /// it as records ([`app_entry`]).
    master_json: bool,
}

impl Default for Logger {
    fn default() -> Self {
        Logger::new()
    }
}

/// Writes all of `buf` to `fd` (one `write(2)` unless interrupted or short).
fn write_fd(mut w: impl Write, buf: &[u8]) {
    let mut rest = buf;
    while !rest.is_empty() {
        match w.write(rest) {
            Ok(0) => return,
            Ok(n) => rest = &rest[n.min(rest.len())..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

fn write_stderr(buf: &[u8]) {
    write_fd(io::stderr().lock(), buf);
}

/// Makes `target` (fd 2 or the log file's descriptor) refer to `src`'s file.
fn dup2(src: impl AsFd, target: BorrowedFd<'_>) -> io::Result<()> {
    fd::dup_onto(src.as_fd(), target)
}

impl Logger {
    /// A master logger writing to stderr at NOTICE level, not launched (the state before
    /// the configuration is loaded).
    pub const fn new() -> Logger {
        Logger {
            dest: Dest::Stderr,
            level: Level::Notice,
            limit: DEFAULT_LIMIT,
            launched: false,
            worker: false,
            saved_stderr: None,
            stderr_tied: false,
            held: None,
            times: TimeText::new(),
            json: false,
            pid: 0,
            master_json: false,
        }
    }

    /// `log_format`: JSON entries (`true`) or php-fpm's lines.
    pub fn set_json(&mut self, json: bool) {
        self.json = json;
        self.pid = std::process::id();
    }

    /// The pid JSON entries show: this process's (after daemonising, the daemon's).
    pub fn refresh_pid(&mut self) {
        self.pid = std::process::id();
    }

    /// Whether the master writes JSON entries now (not to syslog, not in a worker).
    pub fn json(&self) -> bool {
        self.json && self.style() == Style::Master
    }

    #[allow(dead_code)] // status page and tests
    pub fn level(&self) -> Level {
        self.level
    }

    pub fn set_level(&mut self, level: Level) {
        self.level = level;
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Sets `log_limit`.
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    /// Whether an entry of this level is written at all.
    pub fn enabled(&self, level: Level) -> bool {
        level >= self.level
    }

    pub fn dest(&self) -> &Dest {
        &self.dest
    }

    /// Replaces the destination (the previous file or syslog connection is closed).
    #[allow(dead_code)] // tests and future destinations
    pub fn set_dest(&mut self, dest: Dest) {
        self.dest = dest;
    }

    /// Opens `path` (see [`open_log_file`]) and makes it the destination.
    #[cfg(test)]
    pub fn open_file(&mut self, path: &Path) -> io::Result<()> {
        let file = open_log_file(path)?;
        self.dest = Dest::File {
            file,
            path: path.to_path_buf(),
        };
        Ok(())
    }

    /// Keeps the error log file open without writing to it (entries go to stderr), for
    /// SIGUSR1 to reopen (see [`Logger::held`]).
    pub fn hold_file(&mut self, file: File, path: PathBuf) {
        self.held = Some((file, path));
    }

    /// Makes syslog the destination.
    pub fn open_syslog(&mut self, ident: &[u8], facility: libc::c_int) {
        // Close a previous connection first so the new openlog is not undone by its Drop.
        self.dest = Dest::Stderr;
        self.dest = Dest::Syslog(Syslog::open(ident, facility));
    }

    #[allow(dead_code)] // status page and tests
    pub fn launched(&self) -> bool {
        self.launched
    }

    /// Marks the master launched: from now on NOTICE-or-higher entries are no longer
    /// copied to stderr.
    pub fn set_launched(&mut self, launched: bool) {
        self.launched = launched;
    }

    /// Ties fd 2 to the destination (reference §3.1 step 11): the error log file, or
    /// `/dev/null` for syslog; nothing for stderr. The original fd 2 is kept (close-on-exec)
    /// so [`Logger::restore_stderr`] can bring it back (before reopening the log, and before
    /// the re-exec of a reload).
    pub fn tie_stderr(&mut self) -> io::Result<()> {
        let target = match &self.dest {
            Dest::Stderr => return Ok(()),
            Dest::File { file, .. } => file.try_clone()?,
            Dest::Syslog(_) => OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_CLOEXEC)
                .open("/dev/null")?,
        };
        if self.saved_stderr.is_none() {
            self.saved_stderr = Some(io::stderr().as_fd().try_clone_to_owned()?);
        }
        dup2(&target, STDERR.borrow())?;
        self.stderr_tied = true;
        Ok(())
    }

    /// Points fd 2 back at the original stderr (if [`Logger::tie_stderr`] moved it).
    pub fn restore_stderr(&mut self) -> io::Result<()> {
        if let Some(saved) = &self.saved_stderr {
            dup2(saved, STDERR.borrow())?;
        }
        self.stderr_tied = false;
        Ok(())
    }

    /// SIGUSR1: reopens the error log file onto the same descriptor; when fd 2 was tied to
    /// the log, the original stderr is restored first (so a log path such as `/dev/stderr`
    /// resolves to the real stderr, GH-8885) and fd 2 is tied again afterwards. Nothing to
    /// do for stderr/syslog.
    ///
    /// `others` (the access logs) runs after it, while the original stderr is still restored,
    /// so that their `/dev/stderr` also means the real stderr (GH-8885); it must not log (the
    /// logger is borrowed). Returns the error log's result and what `others` returned.
    pub fn reopen_with<R>(&mut self, others: impl FnOnce() -> R) -> (io::Result<()>, R) {
        // Only a log file is reopened; with syslog fd 2 stays on /dev/null throughout.
        let tied = self.stderr_tied && matches!(self.dest, Dest::File { .. });
        let mut result = Ok(());
        if tied {
            if let Some(saved) = &self.saved_stderr {
                result = dup2(saved, STDERR.borrow());
            }
        }
        if let (Ok(()), Dest::File { file, path }) = (&result, &self.dest) {
            result = open_log_file(path).and_then(|fresh| dup2(&fresh, file.as_fd()));
        }
        if let (Ok(()), Some((file, path))) = (&result, &self.held) {
            result = open_log_file(path).and_then(|fresh| dup2(&fresh, file.as_fd()));
        }
        let r = others();
        if tied {
            if let Dest::File { file, .. } = &self.dest {
                let retied = dup2(file, STDERR.borrow());
                result = result.and(retied);
            }
        }
        (result, r)
    }

    /// Switches a freshly forked worker to worker mode: the master's error log (and the
    /// saved original stderr) are closed in this process, entries go to fd 2 as
    /// `LEVEL: message`.
    pub fn worker_mode(&mut self) {
        // The master wraps what a worker writes (JSON or not): workers write php-fpm's
        // `LEVEL: message`, and frankenphp_log() records when the master writes JSON.
        self.master_json = self.json();
        self.json = false;
        self.dest = Dest::Stderr;
        self.saved_stderr = None;
        self.stderr_tied = false;
        self.held = None;
        self.worker = true;
        self.launched = true;
    }

    #[allow(dead_code)] // status page and tests
    pub fn is_worker(&self) -> bool {
        self.worker
    }

    fn style(&self) -> Style {
        if self.worker {
            Style::Worker
        } else if matches!(self.dest, Dest::Syslog(_)) {
            Style::Syslog
        } else {
            Style::Master
        }
    }

    /// The format this logger uses now.
    pub fn format(&self) -> Format {
        Format {
            style: self.style(),
            debug: self.level == Level::Debug,
            limit: self.limit,
            // Shown in debug entries only: no getpid() for every other line.
            pid: if self.level == Level::Debug {
                std::process::id()
            } else {
                0
            },
        }
    }

    /// Writes one entry (if its level is enabled), stamped with the current time.
    pub fn log(&mut self, rec: &Record<'_>) {
        if !self.enabled(rec.level) {
            return;
        }
        if self.json() {
            self.log_json(rec, &JsonExtra::default());
            return;
        }
        let fmt = self.format();
        let entry = format_record_at(&fmt, self.times.get(&now(), fmt.debug), rec);
        self.write_entry(rec.level, &entry);
    }

    /// Writes one entry as JSON (whatever `log_format`; the caller checked [`Logger::json`]).
    pub fn log_json(&mut self, rec: &Record<'_>, extra: &JsonExtra<'_>) {
        if !self.enabled(rec.level) {
            return;
        }
        let fmt = Format {
            pid: self.pid,
            ..self.format()
        };
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let time = rfpm_core::json::rfc3339_utc(ms);
        let entry = format_json_at(&fmt, &time, rec, extra);
        self.write_entry(rec.level, &entry);
    }

    /// Writes an already formatted entry (ending in `\n`) to the destination, plus the
    /// stderr copy before launch.
    pub fn write_entry(&mut self, level: Level, entry: &[u8]) {
        let copy_to_stderr = !self.launched && level >= Level::Notice;
        match &self.dest {
            Dest::Stderr => write_stderr(entry),
            Dest::File { file, .. } => {
                write_fd(file, entry);
                if copy_to_stderr {
                    write_stderr(entry);
                }
            }
            Dest::Syslog(syslog) => {
                let text = entry.strip_suffix(b"\n").unwrap_or(entry);
                // php-fpm's quirk: the priority is the configured level's, not the entry's.
                syslog.send(self.level.syslog_priority(), text);
                if copy_to_stderr {
                    write_stderr(entry);
                }
            }
        }
    }
}

static GLOBAL: Mutex<Logger> = Mutex::new(Logger::new());

fn global() -> MutexGuard<'static, Logger> {
    // A panic while logging leaves the logger usable.
    GLOBAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs `f` on the process-wide logger (the master is single-threaded; a forked worker
/// inherits it — call [`Logger::worker_mode`] there). Do not log from inside `f`.
pub fn with<R>(f: impl FnOnce(&mut Logger) -> R) -> R {
    f(&mut global())
}

/// Logs a one-shot message through the process-wide logger. Bytes shown in it through
/// [`rfpm_core::shown::Shown`] (a configured path that is not UTF-8) are written as the
/// bytes they are, as php-fpm prints its C strings.
pub fn log(level: Level, function: &str, line: u32, message: &str, errno: Option<i32>) {
    log_bytes(
        level,
        function,
        line,
        &rfpm_core::shown::unshow(message),
        errno,
    );
}

/// Logs a one-shot message of exact bytes (a `-tt` line showing a configured path that
/// is not UTF-8, as php-fpm prints it).
pub fn log_bytes(level: Level, function: &str, line: u32, message: &[u8], errno: Option<i32>) {
    let mut logger = global();
    if !logger.enabled(level) {
        return;
    }
    logger.log(&Record {
        level,
        function,
        line,
        message,
        errno,
        cut: Cut::OneShot,
    });
}

/// Logs a stream entry (`PHP message: …`, cut at `log_limit`) through the process-wide
/// logger.
pub fn log_stream(level: Level, function: &str, line: u32, message: &[u8]) {
    let mut logger = global();
    if !logger.enabled(level) {
        return;
    }
    logger.log(&Record {
        level,
        function,
        line,
        message,
        errno: None,
        cut: Cut::Stream,
    });
}

/// A `frankenphp_log()` entry of a worker, through the process-wide logger, where the
/// worker's log lines go (its stderr, captured by the master): the worker's line
/// `LEVEL: message {context}` (cut at `log_limit`), or when the master writes JSON a
/// record that it writes as a JSON entry with a `context` member (`rfpm_core::applog`).
pub fn app_entry(level: Level, message: &[u8], context: Option<&[u8]>) {
    let mut logger = global();
    if !logger.enabled(level) {
        return;
    }
    if logger.master_json {
        if let Some(record) = rfpm_core::applog::record(level, message, context, logger.limit) {
            logger.write_entry(level, &record);
            return;
        }
    }
    let text = rfpm_core::applog::text(message, context);
    logger.log(&Record {
        level,
        function: "frankenphp_log",
        line: line!(),
        message: &text,
        errno: None,
        cut: Cut::Stream,
    });
}

/// Whether the process-wide logger writes entries of `level` (to skip costly formatting).
pub fn enabled(level: Level) -> bool {
    global().enabled(level)
}

/// The last path segment of a `type_name` of a function-local item: the enclosing
/// function's name, reduced to `\w` characters (`{{closure}}` segments are skipped).
pub fn function_name(type_name: &'static str) -> &'static str {
    let path = type_name.strip_suffix("__f").unwrap_or(type_name);
    path.trim_end_matches("::")
        .rsplit("::")
        .find(|seg| !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .unwrap_or("main")
}

/// The name of the enclosing function, for debug-level entries.
#[macro_export]
macro_rules! __rfpm_fn_name {
    () => {{
        fn __f() {}
        fn __type_name_of<T>(_: T) -> &'static str {
            ::std::any::type_name::<T>()
        }
        $crate::log::function_name(__type_name_of(__f))
    }};
}

/// Logs at a level: `log_at!(Level::Notice, "fpm is running, pid {}", pid)`.
#[macro_export]
macro_rules! log_at {
    ($level:expr, $($arg:tt)+) => {{
        let level = $level;
        if $crate::log::enabled(level) {
            $crate::log::log(level, $crate::__rfpm_fn_name!(), line!(), &format!($($arg)+), None);
        }
    }};
}

/// What a SYSERR suffix is made of: an errno, or the `io::Error` that carries one.
pub trait Errno {
    fn errno(&self) -> i32;
}

impl Errno for i32 {
    fn errno(&self) -> i32 {
        *self
    }
}

impl Errno for io::Error {
    fn errno(&self) -> i32 {
        self.raw_os_error().unwrap_or(0)
    }
}

impl<T: Errno + ?Sized> Errno for &T {
    fn errno(&self) -> i32 {
        (**self).errno()
    }
}

/// Logs at a level with the SYSERR suffix of an errno or an `io::Error`:
/// `log_sys_at!(Level::Error, e, "failed to open error_log ({})", path)`.
#[macro_export]
macro_rules! log_sys_at {
    ($level:expr, $errno:expr, $($arg:tt)+) => {{
        let level = $level;
        let errno: i32 = $crate::log::Errno::errno(&$errno);
        if $crate::log::enabled(level) {
            $crate::log::log(level, $crate::__rfpm_fn_name!(), line!(), &format!($($arg)+), Some(errno));
        }
    }};
}

/// `debug!("...", args)`.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => { $crate::log_at!($crate::log::Level::Debug, $($arg)+) };
}

/// `notice!("...", args)`.
#[macro_export]
macro_rules! notice {
    ($($arg:tt)+) => { $crate::log_at!($crate::log::Level::Notice, $($arg)+) };
}

/// `warning!("...", args)`.
#[macro_export]
macro_rules! warning {
    ($($arg:tt)+) => { $crate::log_at!($crate::log::Level::Warning, $($arg)+) };
}

/// `error!("...", args)`.
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => { $crate::log_at!($crate::log::Level::Error, $($arg)+) };
}

/// `alert!("...", args)`.
#[macro_export]
macro_rules! alert {
    ($($arg:tt)+) => { $crate::log_at!($crate::log::Level::Alert, $($arg)+) };
}

/// `warning_sys!(errno, "...", args)`: with the SYSERR suffix.
#[macro_export]
macro_rules! warning_sys {
    ($errno:expr, $($arg:tt)+) => { $crate::log_sys_at!($crate::log::Level::Warning, $errno, $($arg)+) };
}

/// `error_sys!(errno, "...", args)`: with the SYSERR suffix.
#[macro_export]
macro_rules! error_sys {
    ($errno:expr, $($arg:tt)+) => { $crate::log_sys_at!($crate::log::Level::Error, $errno, $($arg)+) };
}

/// `alert_sys!(errno, "...", args)`: with the SYSERR suffix.
#[macro_export]
macro_rules! alert_sys {
    ($errno:expr, $($arg:tt)+) => { $crate::log_sys_at!($crate::log::Level::Alert, $errno, $($arg)+) };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(level: Level, message: &str) -> Record<'_> {
        Record {
            level,
            function: "fpm_init",
            line: 72,
            message: message.as_bytes(),
            errno: None,
            cut: Cut::OneShot,
        }
    }

    #[test]
    fn logger_filters_by_level() {
        let mut logger = Logger::new();
        assert!(!logger.enabled(Level::Debug) && logger.enabled(Level::Notice));
        logger.set_level(Level::Warning);
        assert!(!logger.enabled(Level::Notice) && logger.enabled(Level::Error));
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rfpm-log-{}-{}", tag, std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_default();
        dir
    }

    #[test]
    fn file_destination_mode_append_and_reopen() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp_dir("file");
        let path = dir.join("log");
        std::fs::write(&path, b"old\n").unwrap_or_default();
        std::fs::remove_file(&path).unwrap_or_default();
        let mut logger = Logger::new();
        logger.set_launched(true);
        assert!(logger.open_file(&path).is_ok());
        let mode = std::fs::metadata(&path)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0);
        assert_eq!(mode, 0o600);
        if let Dest::File { file, .. } = logger.dest() {
            assert!(rfpm_sys::fd::is_cloexec(file.as_fd()).unwrap_or(false));
        }
        logger.log(&rec(Level::Notice, "one"));
        logger.log(&rec(Level::Debug, "filtered"));
        // Rotate: rename, reopen; the next entry lands in a new file at the old path.
        let rotated = dir.join("log.1");
        std::fs::rename(&path, &rotated).unwrap_or_default();
        logger.write_entry(Level::Notice, b"after rotate\n");
        // fd 2 was never tied, so reopen leaves the test runner's stderr alone.
        assert!(logger.reopen_with(|| ()).0.is_ok());
        logger.write_entry(Level::Notice, b"two\n");
        let old = std::fs::read_to_string(&rotated).unwrap_or_default();
        let new = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(old.ends_with("] NOTICE: one\nafter rotate\n"), "{old:?}");
        assert!(!old.contains("filtered"));
        assert_eq!(new, "two\n");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// fd 2 tied to the log, the log rotated and reopened, fd 2 restored: run in a child
    /// process (this test binary re-executed) so the runner's own fd 2 is never touched.
    #[test]
    fn tie_reopen_restore_in_a_child() {
        const ENV: &str = "RFPM_LOG_TIE_CHILD";
        if let Ok(dir) = std::env::var(ENV) {
            let dir = PathBuf::from(dir);
            let mut logger = Logger::new();
            assert!(logger.open_file(&dir.join("log")).is_ok());
            assert!(logger.tie_stderr().is_ok());
            logger.set_launched(true);
            write_stderr(b"engine says\n");
            assert!(std::fs::rename(dir.join("log"), dir.join("log.1")).is_ok());
            // While the logs are reopened fd 2 is the original stderr (GH-8885).
            let (reopened, ()) = logger.reopen_with(|| write_stderr(b"during reopen\n"));
            assert!(reopened.is_ok());
            write_stderr(b"after reopen\n");
            logger.log(&rec(Level::Notice, "entry"));
            assert!(logger.restore_stderr().is_ok());
            write_stderr(b"restored\n");
            return;
        }
        let dir = temp_dir("tie");
        let exe = match std::env::current_exe() {
            Ok(exe) => exe,
            Err(e) => panic!("current_exe: {e}"),
        };
        let out = std::process::Command::new(exe)
            .args([
                "--exact",
                "log::tests::tie_reopen_restore_in_a_child",
                "--nocapture",
            ])
            .env(ENV, &dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .output();
        let out = match out {
            Ok(out) => out,
            Err(e) => panic!("spawn: {e}"),
        };
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert_eq!(stderr, "during reopen\nrestored\n");
        let old = std::fs::read_to_string(dir.join("log.1")).unwrap_or_default();
        let new = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
        assert_eq!(old, "engine says\n");
        assert!(new.starts_with("after reopen\n["), "{new:?}");
        assert!(new.ends_with("] NOTICE: entry\n"), "{new:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn macros_expand_and_filter() {
        // The process-wide logger starts at NOTICE: these are dropped (nothing is written).
        assert!(!enabled(Level::Debug));
        assert!(enabled(Level::Notice));
        crate::debug!("spawned {} children", 3);
        crate::log_sys_at!(Level::Debug, libc::ENOENT, "failed to open {}", "/x");
        assert_eq!(with(|l| l.level()), Level::Notice);
    }

    #[test]
    fn open_failure_is_reported() {
        let mut logger = Logger::new();
        let err = logger.open_file(Path::new("/nonexistent-dir-rfpm/log"));
        assert_eq!(err.map_err(|e| e.raw_os_error()), Err(Some(libc::ENOENT)));
        assert!(matches!(logger.dest(), Dest::Stderr));
    }

    #[test]
    fn function_names() {
        assert_eq!(function_name("rfpm::master::run::__f"), "run");
        assert_eq!(function_name("rfpm::master::run::{{closure}}::__f"), "run");
        assert_eq!(function_name("__f"), "main");
        fn outer() -> &'static str {
            crate::__rfpm_fn_name!()
        }
        assert_eq!(outer(), "outer");
    }
}
