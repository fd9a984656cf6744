//! php-fpm's error log lines (reference §5.1–§5.3), pure: [`format_record`] builds the
//! exact bytes of one entry from a [`Record`], a [`Format`] and the time ([`Tm`]) passed
//! in; `log_limit` cutting; the SYSERR suffix. The binary's logger writes them.
use crate::Level;
use std::io;

/// A broken-down local time (the system's local time is read by `rfpm-sys`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tm {
    pub year: i32,
    /// 1..=12
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub min: u32,
    pub sec: u32,
    pub usec: u32,
}

/// Default `log_limit`.
pub const DEFAULT_LIMIT: usize = 1024;
/// Size of php-fpm's buffer for one-shot messages: a longer entry is cut.
pub const ONE_SHOT_BUFFER: usize = 2048;

/// What php-fpm's external logger (`sapi_cgi_log_fastcgi`) sends the web server on
/// FastCGI stderr for a one-shot message (`zlog`, e.g. `Access to the script '…' has been
/// denied`): formatted into a [`ONE_SHOT_BUFFER`]-byte buffer, a message of 2048 bytes or
/// more goes out as its first 2045 bytes and `...` (2048 bytes; measured on php-fpm 8.2).
/// `PHP message: …` lines are streams, cut at `log_limit` instead.
pub fn fcgi_one_shot(msg: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if msg.len() < ONE_SHOT_BUFFER {
        return std::borrow::Cow::Borrowed(msg);
    }
    let mut out = msg[..ONE_SHOT_BUFFER - 3].to_vec();
    out.extend_from_slice(b"...");
    std::borrow::Cow::Owned(out)
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `DD-Mon-YYYY HH:MM:SS`, or `DD-Mon-YYYY HH:MM:SS.uuuuuu` with `usec`.
pub fn format_time(tm: &Tm, usec: bool) -> String {
    let month = MONTHS
        .get((tm.month as usize).wrapping_sub(1))
        .copied()
        .unwrap_or("???");
    let mut s = format!(
        "{:02}-{}-{:04} {:02}:{:02}:{:02}",
        tm.day, month, tm.year, tm.hour, tm.min, tm.sec
    );
    if usec {
        s.push_str(&format!(".{:06}", tm.usec));
    }
    s
}

/// The text of `strerror(errno)`.
pub fn strerror(errno: i32) -> String {
    let text = io::Error::from_raw_os_error(errno).to_string();
    // std renders "<strerror> (os error <n>)".
    let suffix = format!(" (os error {errno})");
    match text.strip_suffix(&suffix) {
        Some(s) => s.to_string(),
        None => text,
    }
}

/// The SYSERR suffix: `: <strerror(errno)> (<errno>)`.
pub fn syserr_suffix(errno: i32) -> String {
    format!(": {} ({})", strerror(errno), errno)
}

/// Where and how entries are rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Master, file or stderr: `[time] LEVEL: message`.
    Master,
    /// Master, syslog: `[LEVEL] message` (the newline is not sent to syslog).
    Syslog,
    /// Worker: `LEVEL: message`.
    Worker,
}

/// How a too-long entry is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// A one-shot message (php-fpm's `zlog`): cut only when the entry (newline included)
    /// exceeds 2048 bytes, or exceeds `log_limit` and carries a SYSERR suffix; then cut to
    /// `min(log_limit, 2048)` bytes.
    OneShot,
    /// A stream entry (`PHP message: …`): cut when longer than `log_limit`, to `log_limit`.
    Stream,
}

/// Formatting parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    pub style: Style,
    /// The configured level is DEBUG: timestamps get microseconds and entries carry the
    /// pid (master) and the source location.
    pub debug: bool,
    /// `log_limit`.
    pub limit: usize,
    /// Pid shown in master debug entries.
    pub pid: u32,
}

/// One log entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    pub level: Level,
    /// Function (a `\w+` name) shown at debug level.
    pub function: &'a str,
    pub line: u32,
    pub message: &'a [u8],
    /// errno for the SYSERR suffix.
    pub errno: Option<i32>,
    pub cut: Cut,
}

/// Cuts `entry` (which ends in `\n`) to `len` bytes ending in `...\n`.
fn cut_to(entry: &mut Vec<u8>, len: usize) {
    let keep = len.saturating_sub(4);
    entry.truncate(keep);
    entry.extend_from_slice(b"...\n");
}

/// Builds the bytes of one entry, newline included (for [`Style::Syslog`] the caller drops
/// the newline when sending to syslog and keeps it for the stderr copy).
pub fn format_record(fmt: &Format, tm: &Tm, rec: &Record<'_>) -> Vec<u8> {
    format_record_at(fmt, &format_time(tm, fmt.debug), rec)
}

/// The time of log lines as text, formatted once per second: a burst of entries (a
/// worker's output, thousands of lines a second) formats it once.
#[derive(Debug)]
pub struct TimeText {
    second: Option<Tm>,
    text: String,
}

impl TimeText {
    pub const fn new() -> TimeText {
        TimeText {
            second: None,
            text: String::new(),
        }
    }

    /// [`format_time`] of `tm`, from the cache when only the microseconds differ (and
    /// they are not shown).
    pub fn get(&mut self, tm: &Tm, usec: bool) -> &str {
        if usec {
            self.second = None;
            self.text = format_time(tm, true);
            return &self.text;
        }
        let second = Tm { usec: 0, ..*tm };
        if self.second != Some(second) {
            self.text = format_time(&second, false);
            self.second = Some(second);
        }
        &self.text
    }
}

impl Default for TimeText {
    fn default() -> Self {
        TimeText::new()
    }
}

/// [`format_record`] with the time already formatted (see [`TimeText`]).
pub fn format_record_at(fmt: &Format, time: &str, rec: &Record<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + rec.message.len());
    match fmt.style {
        Style::Master => {
            out.extend_from_slice(b"[");
            out.extend_from_slice(time.as_bytes());
            out.extend_from_slice(b"] ");
            out.extend_from_slice(rec.level.as_str().as_bytes());
            out.extend_from_slice(b": ");
            if fmt.debug {
                out.extend_from_slice(
                    format!("pid {}, {}(), line {}: ", fmt.pid, rec.function, rec.line).as_bytes(),
                );
            }
        }
        Style::Syslog => {
            out.extend_from_slice(b"[");
            out.extend_from_slice(rec.level.as_str().as_bytes());
            out.extend_from_slice(b"] ");
            if fmt.debug {
                out.extend_from_slice(
                    format!("{}(), line {}: ", rec.function, rec.line).as_bytes(),
                );
            }
        }
        Style::Worker => {
            out.extend_from_slice(rec.level.as_str().as_bytes());
            out.extend_from_slice(b": ");
            if fmt.debug {
                out.extend_from_slice(
                    format!("{}(), line {}: ", rec.function, rec.line).as_bytes(),
                );
            }
        }
    }
    out.extend_from_slice(rec.message);
    if let Some(errno) = rec.errno {
        out.extend_from_slice(syserr_suffix(errno).as_bytes());
    }
    out.push(b'\n');
    let limit = fmt.limit.max(4);
    match rec.cut {
        Cut::OneShot => {
            let cut_len = limit.min(ONE_SHOT_BUFFER);
            let allowed = if rec.errno.is_some() {
                cut_len
            } else {
                ONE_SHOT_BUFFER
            };
            if out.len() > allowed {
                cut_to(&mut out, cut_len);
            }
        }
        Cut::Stream => {
            if out.len() > limit {
                cut_to(&mut out, limit);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fcgi_one_shot_cuts_at_2048() {
        for n in [0, 1, 2047] {
            assert_eq!(fcgi_one_shot(&vec![b'a'; n]).len(), n);
        }
        for n in [2048, 2049, 4000] {
            let m: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
            let out = fcgi_one_shot(&m);
            assert_eq!(out.len(), 2048);
            assert_eq!(&out[..2045], &m[..2045]);
            assert_eq!(&out[2045..], b"...");
        }
    }

    const TM: Tm = Tm {
        year: 2026,
        month: 11,
        day: 4,
        hour: 3,
        min: 13,
        sec: 25,
        usec: 42,
    };

    fn fmt(style: Style, debug: bool, limit: usize) -> Format {
        Format {
            style,
            debug,
            limit,
            pid: 26377,
        }
    }

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

    fn text(v: Vec<u8>) -> String {
        String::from_utf8(v).unwrap_or_default()
    }

    #[test]
    fn levels() {
        assert_eq!(Level::parse("debug"), Some(Level::Debug));
        assert_eq!(Level::parse("NOTICE"), Some(Level::Notice));
        assert_eq!(Level::parse("Warning"), Some(Level::Warning));
        assert_eq!(Level::parse("warn"), Some(Level::Warning));
        assert_eq!(Level::parse("error"), Some(Level::Error));
        assert_eq!(Level::parse("alert"), Some(Level::Alert));
        assert_eq!(Level::parse("info"), None);
        assert_eq!(Level::parse(""), None);
        assert!(Level::Debug < Level::Notice && Level::Error < Level::Alert);
    }

    #[test]
    fn time_text_is_formatted_once_a_second() {
        let mut t = TimeText::new();
        assert_eq!(t.get(&TM, false), "04-Nov-2026 03:13:25");
        assert_eq!(
            t.get(&Tm { usec: 999, ..TM }, false),
            "04-Nov-2026 03:13:25"
        );
        assert_eq!(t.get(&Tm { sec: 26, ..TM }, false), "04-Nov-2026 03:13:26");
        assert_eq!(t.get(&TM, true), "04-Nov-2026 03:13:25.000042");
        assert_eq!(t.get(&TM, false), "04-Nov-2026 03:13:25");
        let r = Record {
            level: Level::Notice,
            function: "f",
            line: 1,
            message: b"x",
            errno: None,
            cut: Cut::OneShot,
        };
        let f = Format {
            style: Style::Master,
            debug: false,
            limit: 1024,
            pid: 1,
        };
        assert_eq!(
            format_record(&f, &TM, &r),
            format_record_at(&f, TimeText::new().get(&TM, false), &r)
        );
    }

    #[test]
    fn time_format() {
        assert_eq!(format_time(&TM, false), "04-Nov-2026 03:13:25");
        assert_eq!(format_time(&TM, true), "04-Nov-2026 03:13:25.000042");
        let months: Vec<String> = (1..=12)
            .map(|m| format_time(&Tm { month: m, ..TM }, false)[3..6].to_string())
            .collect();
        assert_eq!(
            months.join(" "),
            "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec"
        );
    }

    #[test]
    fn master_line() {
        let line = format_record(
            &fmt(Style::Master, false, 1024),
            &TM,
            &rec(Level::Notice, "fpm is running, pid 26377"),
        );
        assert_eq!(
            text(line),
            "[04-Nov-2026 03:13:25] NOTICE: fpm is running, pid 26377\n"
        );
    }

    #[test]
    fn master_debug_line() {
        let line = format_record(
            &fmt(Style::Master, true, 1024),
            &TM,
            &rec(Level::Error, "FPM initialization failed"),
        );
        assert_eq!(
            text(line),
            "[04-Nov-2026 03:13:25.000042] ERROR: pid 26377, fpm_init(), line 72: FPM initialization failed\n"
        );
    }

    #[test]
    fn syslog_and_worker_lines() {
        let r = rec(Level::Warning, "msg");
        assert_eq!(
            text(format_record(&fmt(Style::Syslog, false, 1024), &TM, &r)),
            "[WARNING] msg\n"
        );
        assert_eq!(
            text(format_record(&fmt(Style::Syslog, true, 1024), &TM, &r)),
            "[WARNING] fpm_init(), line 72: msg\n"
        );
        assert_eq!(
            text(format_record(&fmt(Style::Worker, false, 1024), &TM, &r)),
            "WARNING: msg\n"
        );
        assert_eq!(
            text(format_record(&fmt(Style::Worker, true, 1024), &TM, &r)),
            "WARNING: fpm_init(), line 72: msg\n"
        );
    }

    #[test]
    fn syserr() {
        assert_eq!(strerror(2), "No such file or directory");
        assert_eq!(syserr_suffix(2), ": No such file or directory (2)");
        assert_eq!(syserr_suffix(13), ": Permission denied (13)");
        let r = Record {
            errno: Some(2),
            ..rec(Level::Error, "failed to open configuration file '/x'")
        };
        assert_eq!(
            text(format_record(&fmt(Style::Master, false, 1024), &TM, &r)),
            "[04-Nov-2026 03:13:25] ERROR: failed to open configuration file '/x': No such file or directory (2)\n"
        );
    }

    /// A master line of exactly `total` bytes (newline included).
    fn master_of_len(total: usize, errno: Option<i32>) -> (String, Vec<u8>) {
        let head = "[04-Nov-2026 03:13:25] ERROR: ".len();
        let tail = errno.map(|e| syserr_suffix(e).len()).unwrap_or(0) + 1;
        let msg = "m".repeat(total - head - tail);
        let r = Record {
            errno,
            message: msg.as_bytes(),
            ..rec(Level::Error, "")
        };
        let out = format_record(&fmt(Style::Master, false, 1024), &TM, &r);
        (msg, out)
    }

    #[test]
    fn one_shot_cut_at_2048_to_log_limit() {
        // Verified against php-fpm8.2: a plain line up to 2048 bytes is kept whole even
        // with log_limit 1024; one byte more and it is cut to 1024.
        let (_, out) = master_of_len(2048, None);
        assert_eq!(out.len(), 2048);
        assert!(!out.ends_with(b"...\n"));
        let (_, out) = master_of_len(2049, None);
        assert_eq!(out.len(), 1024);
        assert!(out.ends_with(b"mmm...\n"));
        assert!(out.starts_with(b"[04-Nov-2026 03:13:25] ERROR: mmm"));
    }

    #[test]
    fn one_shot_with_syserr_cut_at_log_limit() {
        let (_, out) = master_of_len(1024, Some(2));
        assert_eq!(out.len(), 1024);
        assert!(out.ends_with(b"(2)\n"));
        let (_, out) = master_of_len(1025, Some(2));
        assert_eq!(out.len(), 1024);
        assert!(out.ends_with(b"...\n"));
    }

    #[test]
    fn one_shot_cut_never_beyond_2048() {
        // log_limit 4096: a 3000-byte line is cut to 2048, a 1600-byte SYSERR line is kept.
        let msg = "u".repeat(3000);
        let r = rec(Level::Error, &msg);
        let out = format_record(&fmt(Style::Master, false, 4096), &TM, &r);
        assert_eq!(out.len(), 2048);
        assert!(out.ends_with(b"u...\n"));
        let msg = "u".repeat(1600);
        let r = Record {
            errno: Some(2),
            ..rec(Level::Error, &msg)
        };
        let out = format_record(&fmt(Style::Master, false, 4096), &TM, &r);
        assert!(out.len() > 1600 && out.ends_with(b"(2)\n"));
    }

    #[test]
    fn stream_cut_at_log_limit() {
        // Reference: log_limit 2048 → `NOTICE: PHP message: ` + 2023 chars + `...`.
        let msg = format!("PHP message: {}", "a".repeat(4000));
        let r = Record {
            cut: Cut::Stream,
            ..rec(Level::Notice, &msg)
        };
        let out = text(format_record(&fmt(Style::Worker, false, 2048), &TM, &r));
        assert_eq!(
            out,
            format!("NOTICE: PHP message: {}...\n", "a".repeat(2023))
        );
        let msg = "b".repeat(2048 - "NOTICE: \n".len());
        let r = Record {
            cut: Cut::Stream,
            ..rec(Level::Notice, &msg)
        };
        let out = format_record(&fmt(Style::Worker, false, 2048), &TM, &r);
        assert_eq!(out.len(), 2048);
        assert!(out.ends_with(b"b\n"));
        // Not capped at 2048.
        let msg = "c".repeat(5000);
        let r = Record {
            cut: Cut::Stream,
            ..rec(Level::Notice, &msg)
        };
        let out = format_record(&fmt(Style::Worker, false, 4096), &TM, &r);
        assert_eq!(out.len(), 4096);
    }
}
