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
    let (allowed, cut_len) = bounds(fmt, rec);
    if out.len() > allowed {
        cut_to(&mut out, cut_len);
    }
    out
}

/// An entry's bounds, newline included: `(allowed, cut_len)`, an entry longer than
/// `allowed` is cut to `cut_len`. A one-shot message is bounded by php-fpm's buffer, and
/// by `log_limit` only when it carries a SYSERR suffix; a stream entry by `log_limit`.
fn bounds(fmt: &Format, rec: &Record<'_>) -> (usize, usize) {
    let limit = fmt.limit.max(4);
    match rec.cut {
        Cut::OneShot => {
            let cut_len = limit.min(ONE_SHOT_BUFFER);
            let allowed = if rec.errno.is_some() {
                cut_len
            } else {
                ONE_SHOT_BUFFER
            };
            (allowed, cut_len)
        }
        Cut::Stream => (limit, limit),
    }
}

/// The members of a JSON entry beyond `time`, `level`, `msg` and `pid`: where they apply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JsonExtra<'a> {
    pub pool: Option<&'a [u8]>,
    /// The worker a captured line comes from.
    pub child: Option<i32>,
    /// `stdout` or `stderr` for a captured line.
    pub stream: Option<&'a str>,
    pub request_id: Option<&'a [u8]>,
    /// A `frankenphp_log()` entry's context: a JSON object, validated by
    /// [`crate::applog::parse`].
    pub context: Option<&'a [u8]>,
}

/// Splits php-fpm's `[pool NAME] ` prefix off a master message: `(Some(NAME), rest)`.
pub fn split_pool(message: &[u8]) -> (Option<&[u8]>, &[u8]) {
    let Some(rest) = message.strip_prefix(b"[pool ".as_slice()) else {
        return (None, message);
    };
    match rest.iter().position(|&b| b == b']') {
        Some(end) if rest.get(end + 1) == Some(&b' ') => (Some(&rest[..end]), &rest[end + 2..]),
        _ => (None, message),
    }
}

/// The pid in a message that starts with `child N` (`child 123 exited with code 0`).
pub fn leading_child(message: &[u8]) -> Option<i32> {
    let rest = message.strip_prefix(b"child ".as_slice())?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || rest.get(digits).is_some_and(u8::is_ascii_alphanumeric) {
        return None;
    }
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

/// The message text of a JSON entry, cut as [`format_record_at`] cuts the line it is
/// part of (the thresholds apply to the text with its newline): a stream entry at
/// `log_limit`, a one-shot message beyond 2048 bytes (or `log_limit` with a SYSERR
/// suffix); a cut text ends in `...`.
fn json_message(fmt: &Format, rec: &Record<'_>, message: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(message.len() + 32);
    m.extend_from_slice(message);
    if let Some(errno) = rec.errno {
        m.extend_from_slice(syserr_suffix(errno).as_bytes());
    }
    let (allowed, cut_len) = bounds(fmt, rec);
    if m.len() + 1 > allowed {
        m.truncate(cut_len.saturating_sub(4));
        m.extend_from_slice(b"...");
    }
    m
}

/// One error log entry as a JSON object on one line (`log_format = json`):
/// `{"time":…,"level":"notice","msg":…,"pid":…}`, then `pool`, `child`, `stream`,
/// `request_id`, `context` where they apply, and at debug level the source location
/// (`function`, `line`). A master message's `[pool NAME] ` prefix becomes the `pool`
/// member (and a following `child N`, the `child` member). `time` is RFC 3339 (UTC,
/// milliseconds), `fmt.pid` the writing process.
pub fn format_json_at(
    fmt: &Format,
    time: &str,
    rec: &Record<'_>,
    extra: &JsonExtra<'_>,
) -> Vec<u8> {
    let (pool, text) = match extra.pool {
        Some(p) => (Some(p), rec.message),
        None => split_pool(rec.message),
    };
    let child = extra
        .child
        .or_else(|| pool.and_then(|_| leading_child(text)));
    let msg = json_message(fmt, rec, text);
    let mut out = Vec::with_capacity(96 + msg.len());
    let mut level = [0u8; 8];
    let name = rec.level.as_str().as_bytes();
    let n = name.len().min(level.len());
    level[..n].copy_from_slice(&name[..n]);
    level[..n].make_ascii_lowercase();
    let mut o = crate::json::Object::new(&mut out);
    o.str("time", time.as_bytes())
        .str("level", &level[..n])
        .str("msg", &msg)
        .u64("pid", u64::from(fmt.pid));
    if let Some(p) = pool {
        o.str("pool", p);
    }
    if let Some(c) = child {
        o.i64("child", i64::from(c));
    }
    if let Some(s) = extra.stream {
        o.str("stream", s.as_bytes());
    }
    if let Some(r) = extra.request_id {
        o.str("request_id", r);
    }
    if let Some(c) = extra.context {
        o.json("context", c);
    }
    if fmt.debug {
        o.str("function", rec.function.as_bytes())
            .u64("line", u64::from(rec.line));
    }
    o.finish();
    out.push(b'\n');
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

    fn json(line: &[u8]) -> serde_json::Value {
        assert!(line.ends_with(b"\n") && !line[..line.len() - 1].contains(&b'\n'));
        serde_json::from_slice(line).expect("one JSON object")
    }

    #[test]
    fn json_master_line() {
        let f = fmt(Style::Master, false, 1024);
        let line = format_json_at(
            &f,
            "2026-11-04T03:13:25.000Z",
            &rec(Level::Notice, "fpm is running, pid 26377"),
            &JsonExtra::default(),
        );
        assert_eq!(
            String::from_utf8_lossy(&line),
            "{\"time\":\"2026-11-04T03:13:25.000Z\",\"level\":\"notice\",\"msg\":\"fpm is running, pid 26377\",\"pid\":26377}\n"
        );
        let r = Record {
            errno: Some(2),
            ..rec(
                Level::Warning,
                "[pool www] child 42 exited on signal 9 (SIGKILL) \"x\"",
            )
        };
        let v = json(&format_json_at(&f, "t", &r, &JsonExtra::default()));
        assert_eq!(v["pool"], "www");
        assert_eq!(v["child"], 42);
        assert_eq!(v["level"], "warning");
        assert_eq!(
            v["msg"],
            "child 42 exited on signal 9 (SIGKILL) \"x\": No such file or directory (2)"
        );
        let d = json(&format_json_at(
            &fmt(Style::Master, true, 1024),
            "t",
            &rec(Level::Debug, "x"),
            &JsonExtra::default(),
        ));
        assert_eq!(
            (d["function"].as_str(), d["line"].as_u64()),
            (Some("fpm_init"), Some(72))
        );
    }

    #[test]
    fn json_captured_line_is_whole_and_escaped() {
        let mut text = vec![b'a'; 5000];
        text.extend_from_slice(b"\"\\\x01\xff\tend");
        let r = Record {
            cut: Cut::Stream,
            message: &text,
            ..rec(Level::Warning, "")
        };
        let extra = JsonExtra {
            pool: Some(b"www"),
            child: Some(7),
            stream: Some("stderr"),
            request_id: Some(b"rid"),
            context: None,
        };
        let v = json(&format_json_at(
            &fmt(Style::Master, false, 8192),
            "t",
            &r,
            &extra,
        ));
        assert_eq!(
            v["msg"].as_str(),
            Some(String::from_utf8_lossy(&text).as_ref())
        );
        assert_eq!(
            (
                v["pool"].as_str(),
                v["child"].as_i64(),
                v["stream"].as_str(),
                v["request_id"].as_str()
            ),
            (Some("www"), Some(7), Some("stderr"), Some("rid"))
        );
        // Longer than log_limit: cut, and said so.
        let v = json(&format_json_at(
            &fmt(Style::Master, false, 1024),
            "t",
            &r,
            &extra,
        ));
        let msg = v["msg"].as_str().unwrap_or_default();
        assert_eq!(msg.len(), 1023);
        assert!(msg.ends_with("a..."));
    }

    #[test]
    fn json_app_entry_has_its_context() {
        let r = Record {
            cut: Cut::Stream,
            ..rec(Level::Warning, "disk low")
        };
        let extra = JsonExtra {
            pool: Some(b"www"),
            child: Some(7),
            request_id: Some(b"rid"),
            context: Some(br#"{"free":12,"mount":"/srv"}"#),
            ..JsonExtra::default()
        };
        let line = format_json_at(&fmt(Style::Master, false, 1024), "t", &r, &extra);
        assert_eq!(
            String::from_utf8_lossy(&line),
            "{\"time\":\"t\",\"level\":\"warning\",\"msg\":\"disk low\",\"pid\":26377,\"pool\":\"www\",\"child\":7,\"request_id\":\"rid\",\"context\":{\"free\":12,\"mount\":\"/srv\"}}\n"
        );
        json(&line);
    }

    #[test]
    fn pool_prefixes() {
        assert_eq!(split_pool(b"[pool www] x"), (Some(&b"www"[..]), &b"x"[..]));
        assert_eq!(split_pool(b"[pool www]x"), (None, &b"[pool www]x"[..]));
        assert_eq!(split_pool(b"no pool"), (None, &b"no pool"[..]));
        assert_eq!(leading_child(b"child 12 exited"), Some(12));
        assert_eq!(leading_child(b"child 12, script"), Some(12));
        assert_eq!(leading_child(b"child 12x"), None);
        assert_eq!(leading_child(b"children"), None);
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
