//! `catch_workers_output` (reference §3.10): what workers write into their stdout and
//! stderr pipes, cut into entries by `capture` and logged as php-fpm logs them.
use super::Supervisor;
use crate::capture::{self, Capture, Stream};
use crate::log::Level;
use rfpm_sys::fd;
use rfpm_sys::process::Pid;
use std::os::fd::{AsFd, OwnedFd};

/// One read from a worker pipe: a whole pipe buffer (64 KiB by default), so a worker that
/// writes much costs the master few reads (and few wake-ups of the writer).
const READ_SIZE: usize = 64 * 1024;
/// Reads from one worker pipe per wake-up of the event loop (128 KiB).
pub const READS_PER_WAKEUP: usize = 2;
/// Reads left to a dead worker's pipe: what a pipe holds at most (`pipe-max-size`, 1 MiB).
pub const READS_AT_EXIT: usize = 16;

/// A worker's output pipes (read ends) and what was read of them.
pub struct Output {
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    pub capture: Capture,
}

/// The longest captured text that fits one `log_limit` entry with its decoration.
pub fn max_captured_text(pool: &[u8], decorate: bool, pid: Pid) -> usize {
    let (limit, json) = crate::log::with(|l| (l.limit(), l.json()));
    // JSON entries (log_format = json): the text whole up to log_limit, its decoration
    // in other members.
    if !decorate || json {
        return limit.saturating_sub(1);
    }
    // "[DD-Mon-YYYY HH:MM:SS] WARNING: [pool P] child N said into stderr: \"" + "\"" + "\n"
    let head = 23
        + "WARNING: ".len()
        + "[pool ".len()
        + pool.len()
        + format!("] child {pid} said into stderr: \"").len();
    limit.saturating_sub(head + 2)
}

impl Supervisor {
    /// Reads what a worker wrote, at most `max_reads` reads of 8 KiB, and logs it read
    /// by read: a worker that writes without pause can neither hold the master in this
    /// loop nor make it buffer (the pipes are level-triggered: the rest comes at the
    /// next pass).
    pub(super) fn drain_output(&mut self, pid: Pid, stream: Stream, max_reads: usize) {
        let Some(child) = self.children.get_mut(pid) else {
            return;
        };
        let info = self.generations.info(child.generation, child.pool);
        let (name, decorate) = match &info {
            Some(p) => (p.name, p.decorate_workers_output),
            None => (&conf::Bytes::default(), true),
        };
        // log_format = json: each entry carries the id of the request it was written
        // during, from the worker's slot (see `request_ids`).
        let json = crate::log::with(|l| l.json());
        let slot = info
            .as_ref()
            .and_then(|p| p.scoreboard)
            .and_then(|sb| sb.slot(child.slot));
        let mut ids = RequestIds {
            slot: if json { slot } else { None },
            cached: None,
        };
        let Some(out) = child.output.as_mut() else {
            return;
        };
        let slot = match stream {
            Stream::Stdout => &mut out.stdout,
            Stream::Stderr => &mut out.stderr,
        };
        // Taken out while reading; put back unless the pipe ended (dropping the read end
        // also removes it from epoll: no other process holds it).
        let Some(pipe) = slot.take() else {
            return;
        };
        let mut open = true;
        let mut entries = Vec::new();
        // One buffer for every line of this pass.
        let mut line = Vec::new();
        let mut buf = vec![0u8; READ_SIZE];
        for _ in 0..max_reads {
            let last = match fd::read(pipe.as_fd(), &mut buf) {
                Ok(0) => {
                    out.capture.close(stream, &mut entries);
                    open = false;
                    true
                }
                Ok(n) => {
                    out.capture.feed(stream, &buf[..n], &mut entries);
                    false
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => false,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => true,
                Err(e) => {
                    crate::error_sys!(
                        e,
                        "unable to read what child {pid} said into {}",
                        stream.name()
                    );
                    open = false;
                    true
                }
            };
            for e in entries.drain(..) {
                if e.stream == Stream::Stderr {
                    if let Some(app) = rfpm_core::applog::parse(&e.text) {
                        log_app(name, decorate, pid, &e, &app, json.then(|| ids.of(&e)));
                        continue;
                    }
                }
                if json {
                    log_captured_json(name, pid, &e, ids.of(&e));
                } else {
                    log_captured(name, decorate, pid, &e, &mut line);
                }
            }
            if last {
                break;
            }
        }
        if open {
            *slot = Some(pipe);
        }
    }
}

/// Which request a captured entry belongs to. The worker writes its request's id into
/// its scoreboard slot with its served count (`Slot::set_request_id`) before PHP runs,
/// and an end-of-request marker into its stderr after the request; an entry that
/// follows `n` markers was written during the worker's `n + 1`-th request, whose id the
/// slot still holds unless the worker has gone on to the next request meanwhile (then
/// the entry has no id rather than a wrong one).
struct RequestIds<'a> {
    slot: Option<&'a crate::scoreboard::Slot>,
    /// The last (served count, id) found.
    cached: Option<(u64, rfpm_core::request_id::RequestId)>,
}

impl RequestIds<'_> {
    fn of(&mut self, e: &capture::Entry) -> Option<rfpm_core::request_id::RequestId> {
        let served = e.markers.checked_add(1)?;
        if let Some((n, id)) = self.cached {
            if n == served {
                return Some(id);
            }
        }
        let id = self.slot?.request_id_of(served)?;
        self.cached = Some((served, id));
        Some(id)
    }
}

/// A `frankenphp_log()` record a worker wrote (`rfpm_core::applog`): a JSON entry of its
/// own level, with the context as a `context` member and no `stream` (it is not what
/// the script printed); in a text log (a record written before a reload changed
/// `log_format`), the worker's line it stands for, captured as any other.
fn log_app(
    pool: &[u8],
    decorate: bool,
    pid: Pid,
    e: &capture::Entry,
    app: &rfpm_core::applog::Parsed<'_>,
    json: Option<Option<rfpm_core::request_id::RequestId>>,
) {
    let Some(request_id) = json else {
        let entry = capture::Entry {
            text: app.line(),
            ..e.clone()
        };
        log_captured(pool, decorate, pid, &entry, &mut Vec::new());
        return;
    };
    let rec = crate::log::Record {
        level: app.level,
        function: "frankenphp_log",
        line: line!(),
        message: app.msg.as_bytes(),
        errno: None,
        cut: crate::log::Cut::Stream,
    };
    let extra = crate::log::JsonExtra {
        pool: Some(pool),
        child: Some(pid),
        stream: None,
        request_id: request_id.as_ref().map(|r| r.as_bytes()),
        context: app.context,
    };
    crate::log::with(|l| l.log_json(&rec, &extra));
}

/// One captured entry as a JSON error log entry: the text whole (up to log_limit),
/// escaped, with the pool, the child, the stream and the request id as members.
fn log_captured_json(
    pool: &[u8],
    pid: Pid,
    e: &capture::Entry,
    request_id: Option<rfpm_core::request_id::RequestId>,
) {
    let rec = crate::log::Record {
        level: Level::Warning,
        function: "fpm_stdio_child_said",
        line: line!(),
        message: &e.text,
        errno: None,
        cut: crate::log::Cut::Stream,
    };
    let extra = crate::log::JsonExtra {
        pool: Some(pool),
        child: Some(pid),
        stream: Some(e.stream.name()),
        request_id: request_id.as_ref().map(|r| r.as_bytes()),
        context: None,
    };
    crate::log::with(|l| l.log_json(&rec, &extra));
}

/// One captured entry as a master log line (reference §3.10): decorated
/// `WARNING: [pool p] child N said into stderr: "text"`, or the raw text.
fn log_captured(pool: &[u8], decorate: bool, pid: Pid, e: &capture::Entry, msg: &mut Vec<u8>) {
    use std::io::Write;
    msg.clear();
    if decorate {
        msg.extend_from_slice(b"[pool ");
        msg.extend_from_slice(pool);
        let _ = write!(msg, "] child {pid} said into {}: \"", e.stream.name());
        msg.extend_from_slice(&e.text);
        msg.push(b'"');
        if e.pipe_closed {
            msg.extend_from_slice(b", pipe is closed");
        }
        crate::log::log_stream(Level::Warning, "fpm_stdio_child_said", line!(), msg);
    } else {
        msg.extend_from_slice(&e.text);
        msg.push(b'\n');
        crate::log::with(|l| l.write_entry(Level::Warning, msg));
    }
}
