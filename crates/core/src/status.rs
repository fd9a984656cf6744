//! The status page (reference §9.3) and `fpm_get_status()` (§8.2): pure renderers over a
//! snapshot of a pool's scoreboard. The time is a parameter; so is the function that
//! prints a time in the pages' local format.

use crate::scoreboard::SlotView;

/// A value of `fpm_get_status()`'s array.
#[derive(Debug, Clone, PartialEq)]
pub enum StatusValue {
    Int(i64),
    Float(f64),
    Str(Vec<u8>),
    /// A list of string-keyed arrays (`procs`).
    List(Vec<Vec<(&'static str, StatusValue)>>),
}

/// A pool's status at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PoolStatus {
    /// The pool's name, the configuration's bytes.
    pub pool: Vec<u8>,
    /// `static`, `dynamic` or `ondemand`.
    pub pm: &'static str,
    /// Seconds since the epoch.
    pub start_time: u64,
    pub start_since: u64,
    pub accepted: u64,
    pub listen_queue: u64,
    pub max_listen_queue: u64,
    pub listen_queue_len: u64,
    pub idle: u64,
    pub active: u64,
    pub max_active: u64,
    pub max_children_reached: u64,
    pub slow_requests: u64,
    /// `memory peak` (php-fpm ≥ 8.4, see [`crate::compat::Compat::status_memory_peak`]):
    /// the highest peak memory of a finished request of the pool, bytes; `None`: not
    /// shown.
    pub memory_peak: Option<u64>,
    pub procs: Vec<ProcStatus>,
}

/// One worker on the status page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcStatus {
    pub pid: i32,
    pub state: &'static str,
    pub start_time: u64,
    pub start_since: u64,
    pub requests: u64,
    /// µs: the last request's duration when Idle, else the time since the current
    /// request started.
    pub duration: u64,
    /// Empty when none.
    pub method: Vec<u8>,
    /// The effective SCRIPT_NAME, without the query string.
    pub uri: Vec<u8>,
    pub query: Vec<u8>,
    pub content_length: i64,
    pub user: Vec<u8>,
    pub script: Vec<u8>,
    /// Percent of the last request's wall time (Idle only, else 0).
    pub cpu: f64,
    /// Bytes (Idle only, else 0).
    pub memory: u64,
    /// A worker of a generation that drains after a reload (rfpm only): the pages mark
    /// it (`generation: draining`); php-fpm has no such worker, so its pages never
    /// carry the mark.
    pub draining: bool,
}

/// The pool-level figures read from the scoreboard header.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counters {
    pub start_us: u64,
    pub accepted: u64,
    pub listen_queue: u64,
    pub max_listen_queue: u64,
    pub listen_queue_len: u64,
    pub max_active: u64,
    pub max_children_reached: u64,
    pub slow_requests: u64,
    /// `None` where the page does not show it.
    pub memory_peak: Option<u64>,
}

impl PoolStatus {
    /// The pool's name as text (Prometheus labels, JSON): U+FFFD for a byte that is
    /// not UTF-8.
    pub fn pool_text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.pool)
    }

    /// Builds the snapshot from scoreboard data (already bounded) at `now_us`.
    pub fn build(
        pool: &[u8],
        pm: &'static str,
        c: &Counters,
        slots: &[SlotView],
        now_us: u64,
    ) -> PoolStatus {
        PoolStatus::build_with_draining(pool, pm, c, slots, &[], now_us)
    }

    /// [`PoolStatus::build`] with the workers of the pool's draining generations (after
    /// a reload), listed after the pool's own and marked.
    pub fn build_with_draining(
        pool: &[u8],
        pm: &'static str,
        c: &Counters,
        slots: &[SlotView],
        draining: &[SlotView],
        now_us: u64,
    ) -> PoolStatus {
        let marked = slots
            .iter()
            .map(|v| (v, false))
            .chain(draining.iter().map(|v| (v, true)));
        let secs = |us: u64| us / 1_000_000;
        let since = |us: u64| secs(now_us).saturating_sub(secs(us));
        let mut idle = 0;
        let mut active = 0;
        let procs: Vec<ProcStatus> = marked
            .map(|(v, draining)| {
                let is_idle = v.state.is_idle();
                if is_idle {
                    idle += 1;
                } else {
                    active += 1;
                }
                let (duration, cpu, memory) = if is_idle {
                    let cpu = if v.duration_us > 0 {
                        (v.cpu_user_us.saturating_add(v.cpu_system_us)) as f64 * 100.0
                            / v.duration_us as f64
                    } else {
                        0.0
                    };
                    (v.duration_us, cpu, v.memory)
                } else {
                    (now_us.saturating_sub(v.request_start_us), 0.0, 0)
                };
                ProcStatus {
                    pid: v.pid,
                    state: v.state.name(),
                    start_time: secs(v.start_us),
                    start_since: since(v.start_us),
                    requests: v.requests,
                    duration,
                    method: v.method.clone(),
                    uri: v.uri.clone(),
                    query: v.query.clone(),
                    content_length: v.content_length,
                    user: v.user.clone(),
                    script: v.script.clone(),
                    cpu,
                    memory,
                    draining,
                }
            })
            .collect();
        PoolStatus {
            pool: pool.to_vec(),
            pm,
            start_time: secs(c.start_us),
            start_since: since(c.start_us),
            accepted: c.accepted,
            listen_queue: c.listen_queue,
            max_listen_queue: c.max_listen_queue,
            listen_queue_len: c.listen_queue_len,
            idle,
            active,
            max_active: c.max_active.max(active),
            max_children_reached: c.max_children_reached,
            slow_requests: c.slow_requests,
            memory_peak: c.memory_peak,
            procs,
        }
    }

    fn total(&self) -> u64 {
        self.idle + self.active
    }
}

/// Output format of the status page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Plain,
    Html,
    Xml,
    Json,
    OpenMetrics,
}

/// The format and `full` flag chosen by the query string: the first of html, xml, json,
/// openmetrics named by a key. `prefix_match` (php-fpm before 8.4, see
/// [`crate::compat::Compat::status_query_prefix_match`]): a key selects a keyword it is a
/// prefix of (`?j&f` is json and full); otherwise the key must be the whole keyword.
pub fn select(query: &[u8], prefix_match: bool) -> (Format, bool) {
    let keys: Vec<Vec<u8>> = query
        .split(|&b| b == b'&')
        .map(|kv| {
            let k = kv.split(|&b| b == b'=').next().unwrap_or_default();
            let k = url_decode(k);
            // PHP cuts a key at its first '[' (array syntax).
            match k.iter().position(|&b| b == b'[') {
                Some(i) => k[..i].to_vec(),
                None => k,
            }
        })
        .filter(|k| !k.is_empty())
        .collect();
    let has = |word: &str| {
        keys.iter().any(|k| {
            if prefix_match {
                word.as_bytes().starts_with(k)
            } else {
                word.as_bytes() == k.as_slice()
            }
        })
    };
    let format = if has("html") {
        Format::Html
    } else if has("xml") {
        Format::Xml
    } else if has("json") {
        Format::Json
    } else if has("openmetrics") {
        Format::OpenMetrics
    } else {
        Format::Plain
    };
    (format, has("full"))
}

fn url_decode(s: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok());
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < s.len() => match (hex(s[i + 1]), hex(s[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// The content type header each format sends (PHP adds the charset to text types).
pub fn content_type(f: Format) -> &'static str {
    match f {
        Format::Plain => "Content-Type: text/plain",
        Format::Html => "Content-Type: text/html",
        Format::Xml => "Content-Type: text/xml",
        Format::Json => "Content-Type: application/json",
        Format::OpenMetrics => {
            "Content-Type: application/openmetrics-text; version=1.0.0; charset=utf-8"
        }
    }
}

pub const EXPIRES: &str = "Expires: Thu, 01 Jan 1970 00:00:00 GMT";
pub const NO_CACHE: &str = "Cache-Control: no-cache, no-store, must-revalidate, max-age=0";

/// `&`, `<`, `>`, `"` as HTML/XML entities.
fn escape_html(s: &[u8], out: &mut Vec<u8>) {
    for &b in s {
        match b {
            b'&' => out.extend_from_slice(b"&amp;"),
            b'<' => out.extend_from_slice(b"&lt;"),
            b'>' => out.extend_from_slice(b"&gt;"),
            b'"' => out.extend_from_slice(b"&quot;"),
            _ => out.push(b),
        }
    }
}

/// A JSON string's contents the way PHP's json_encode writes them by default: `/`
/// escaped, non-ASCII as `\uXXXX` (surrogate pairs beyond the BMP), invalid UTF-8 dropped.
fn escape_json(s: &[u8], out: &mut Vec<u8>) {
    for chunk in s.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                '/' => out.extend_from_slice(b"\\/"),
                '\u{8}' => out.extend_from_slice(b"\\b"),
                '\u{c}' => out.extend_from_slice(b"\\f"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                '\t' => out.extend_from_slice(b"\\t"),
                c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        out.extend_from_slice(format!("\\u{:04x}", u).as_bytes());
                    }
                }
                c => out.push(c as u8),
            }
        }
    }
}

fn or_dash(v: &[u8]) -> &[u8] {
    if v.is_empty() {
        b"-"
    } else {
        v
    }
}

/// URI as the pages show it: `uri?query` (query only when non-empty), `-` if none.
fn page_uri(p: &ProcStatus) -> Vec<u8> {
    if p.uri.is_empty() && p.query.is_empty() {
        return b"-".to_vec();
    }
    let mut u = p.uri.clone();
    if !p.query.is_empty() {
        u.push(b'?');
        u.extend_from_slice(&p.query);
    }
    u
}

const PROC_LABELS: [&str; 13] = [
    "pid",
    "state",
    "start time",
    "start since",
    "requests",
    "request duration",
    "request method",
    "request uri",
    "content length",
    "user",
    "script",
    "last request cpu",
    "last request memory",
];

/// A field value: text to escape, or a number/time printed as is.
enum V {
    Text(Vec<u8>),
    Raw(String),
    Time(u64),
}

/// The pool's fields: label and value, in php-fpm's order.
fn pool_fields(s: &PoolStatus) -> Vec<(&'static str, V)> {
    let mut f = vec![
        ("pool", V::Text(s.pool.clone())),
        ("process manager", V::Text(s.pm.as_bytes().to_vec())),
        ("start time", V::Time(s.start_time)),
        ("start since", V::Raw(s.start_since.to_string())),
        ("accepted conn", V::Raw(s.accepted.to_string())),
        ("listen queue", V::Raw(s.listen_queue.to_string())),
        ("max listen queue", V::Raw(s.max_listen_queue.to_string())),
        ("listen queue len", V::Raw(s.listen_queue_len.to_string())),
        ("idle processes", V::Raw(s.idle.to_string())),
        ("active processes", V::Raw(s.active.to_string())),
        ("total processes", V::Raw(s.total().to_string())),
        ("max active processes", V::Raw(s.max_active.to_string())),
        (
            "max children reached",
            V::Raw(s.max_children_reached.to_string()),
        ),
        ("slow requests", V::Raw(s.slow_requests.to_string())),
    ];
    if let Some(peak) = s.memory_peak {
        f.push(("memory peak", V::Raw(peak.to_string())));
    }
    f
}

fn proc_values(p: &ProcStatus) -> [V; 13] {
    [
        V::Raw(p.pid.to_string()),
        V::Raw(p.state.to_string()),
        V::Time(p.start_time),
        V::Raw(p.start_since.to_string()),
        V::Raw(p.requests.to_string()),
        V::Raw(p.duration.to_string()),
        V::Text(or_dash(&p.method).to_vec()),
        V::Text(page_uri(p)),
        V::Raw(p.content_length.to_string()),
        V::Text(or_dash(&p.user).to_vec()),
        V::Text(or_dash(&p.script).to_vec()),
        V::Raw(format!("{:.2}", p.cpu)),
        V::Raw(p.memory.to_string()),
    ]
}

/// Renders the page body. `time` prints a Unix time as `%d/%b/%Y:%H:%M:%S %z` in
/// local time (plain and html).
pub fn render(s: &PoolStatus, f: Format, full: bool, time: &dyn Fn(u64) -> String) -> Vec<u8> {
    match f {
        Format::Plain => plain(s, full, time),
        Format::Html => html(s, full, time),
        Format::Xml => xml(s, full),
        Format::Json => json(s, full),
        Format::OpenMetrics => openmetrics(s),
    }
}

fn plain(s: &PoolStatus, full: bool, time: &dyn Fn(u64) -> String) -> Vec<u8> {
    let mut o = Vec::new();
    let line = |o: &mut Vec<u8>, label: &str, v: V| {
        o.extend_from_slice(format!("{:<22}", format!("{label}:")).as_bytes());
        match v {
            V::Text(t) => o.extend_from_slice(&t),
            V::Raw(r) => o.extend_from_slice(r.as_bytes()),
            V::Time(t) => o.extend_from_slice(time(t).as_bytes()),
        }
        o.push(b'\n');
    };
    for (label, v) in pool_fields(s) {
        line(&mut o, label, v);
    }
    if full {
        for p in &s.procs {
            o.extend_from_slice(b"\n************************\n");
            for (label, v) in PROC_LABELS.iter().zip(proc_values(p)) {
                let label = if *label == "request uri" {
                    "request URI"
                } else {
                    label
                };
                line(&mut o, label, v);
            }
            if p.draining {
                line(&mut o, "generation", V::Raw(DRAINING.into()));
            }
        }
    }
    o
}

/// The mark of a draining generation's worker (rfpm only).
const DRAINING: &str = "draining";

fn html(s: &PoolStatus, full: bool, time: &dyn Fn(u64) -> String) -> Vec<u8> {
    let cell = |o: &mut Vec<u8>, v: V| match v {
        V::Text(t) => escape_html(&t, o),
        V::Raw(r) => escape_html(r.as_bytes(), o),
        V::Time(t) => o.extend_from_slice(time(t).as_bytes()),
    };
    let mut o = Vec::new();
    o.extend_from_slice(
        b"<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Strict//EN\" \"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd\">\n\
<html xmlns=\"http://www.w3.org/1999/xhtml\" xml:lang=\"en\" lang=\"en\">\n\
<head><title>PHP-FPM Status Page</title></head>\n\
<body>\n\
<table>\n",
    );
    for (label, v) in pool_fields(s) {
        o.extend_from_slice(format!("<tr><th>{label}</th><td>").as_bytes());
        if label == "pool" {
            o.extend_from_slice(&s.pool);
        } else {
            cell(&mut o, v);
        }
        o.extend_from_slice(b"</td></tr>\n");
    }
    o.extend_from_slice(b"</table>\n");
    if !full {
        o.extend_from_slice(b"</body></html>");
        return o;
    }
    o.extend_from_slice(b"<table border=\"1\">\n<tr>");
    for label in PROC_LABELS {
        o.extend_from_slice(format!("<th>{label}</th>").as_bytes());
    }
    o.extend_from_slice(b"</tr>\n");
    for p in &s.procs {
        o.extend_from_slice(b"<tr>");
        for (label, v) in PROC_LABELS.iter().zip(proc_values(p)) {
            o.extend_from_slice(b"<td>");
            cell(&mut o, v);
            if p.draining && *label == "state" {
                o.extend_from_slice(format!(" ({DRAINING})").as_bytes());
            }
            o.extend_from_slice(b"</td>");
        }
        o.extend_from_slice(b"</tr>\n");
    }
    o.extend_from_slice(b"</table></body></html>");
    o
}

fn xml(s: &PoolStatus, full: bool) -> Vec<u8> {
    let tag = |label: &str| label.replace(' ', "-");
    let cell = |o: &mut Vec<u8>, v: V| match v {
        V::Text(t) => escape_html(&t, o),
        V::Raw(r) => escape_html(r.as_bytes(), o),
        V::Time(t) => o.extend_from_slice(t.to_string().as_bytes()),
    };
    let mut o = b"<?xml version=\"1.0\" ?>\n<status>\n".to_vec();
    for (label, v) in pool_fields(s) {
        let t = tag(label);
        o.extend_from_slice(format!("<{t}>").as_bytes());
        if label == "pool" {
            o.extend_from_slice(&s.pool);
        } else {
            cell(&mut o, v);
        }
        o.extend_from_slice(format!("</{t}>\n").as_bytes());
    }
    if full {
        o.extend_from_slice(b"<processes>\n");
        for p in &s.procs {
            o.extend_from_slice(b"<process>");
            for (label, v) in PROC_LABELS.iter().zip(proc_values(p)) {
                let t = tag(label);
                o.extend_from_slice(format!("<{t}>").as_bytes());
                cell(&mut o, v);
                o.extend_from_slice(format!("</{t}>").as_bytes());
            }
            if p.draining {
                o.extend_from_slice(format!("<generation>{DRAINING}</generation>").as_bytes());
            }
            o.extend_from_slice(b"</process>\n");
        }
        o.extend_from_slice(b"</processes>\n");
    }
    o.extend_from_slice(b"</status>");
    o
}

fn json(s: &PoolStatus, full: bool) -> Vec<u8> {
    let mut o = b"{".to_vec();
    let field = |o: &mut Vec<u8>, first: bool, label: &str, v: V| {
        if !first {
            o.push(b',');
        }
        o.extend_from_slice(format!("\"{label}\":").as_bytes());
        match v {
            V::Text(t) => {
                o.push(b'"');
                escape_json(&t, o);
                o.push(b'"');
            }
            V::Raw(r) => o.extend_from_slice(r.as_bytes()),
            V::Time(t) => o.extend_from_slice(t.to_string().as_bytes()),
        }
    };
    for (i, (label, v)) in pool_fields(s).into_iter().enumerate() {
        match (label, v) {
            // The pool's name and its process manager are written as they are: php-fpm
            // does not escape them (a name's bytes are the configuration's).
            ("pool" | "process manager", V::Text(t)) => {
                if i > 0 {
                    o.push(b',');
                }
                o.extend_from_slice(format!("\"{label}\":\"").as_bytes());
                o.extend_from_slice(&t);
                o.push(b'"');
            }
            (_, v) => field(&mut o, i == 0, label, v),
        }
    }
    if full {
        o.extend_from_slice(b", \"processes\":[");
        for (n, p) in s.procs.iter().enumerate() {
            if n > 0 {
                o.push(b',');
            }
            o.push(b'{');
            for (i, (label, v)) in PROC_LABELS.iter().zip(proc_values(p)).enumerate() {
                let v = match *label {
                    "state" => V::Raw(format!("\"{}\"", p.state)),
                    _ => v,
                };
                field(&mut o, i == 0, label, v);
            }
            if p.draining {
                field(
                    &mut o,
                    false,
                    "generation",
                    V::Raw(format!("\"{DRAINING}\"")),
                );
            }
            o.push(b'}');
        }
        o.push(b']');
    }
    o.push(b'}');
    o
}

fn openmetrics(s: &PoolStatus) -> Vec<u8> {
    let mut o = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, v: u64, type_first: bool| {
        if type_first {
            o.push_str(&format!(
                "# TYPE phpfpm_{name} {kind}\n# HELP phpfpm_{name} {help}\n"
            ));
        } else {
            o.push_str(&format!(
                "# HELP phpfpm_{name} {help}\n# TYPE phpfpm_{name} {kind}\n"
            ));
        }
        o.push_str(&format!("phpfpm_{name} {v}\n"));
    };
    metric(
        "up",
        "gauge",
        &format!(
            "Could pool {} using a {} PM on PHP-FPM be reached?",
            crate::shown::Shown(&s.pool),
            s.pm
        ),
        1,
        false,
    );
    metric(
        "start_since",
        "counter",
        "The number of seconds since FPM has started.",
        s.start_since,
        false,
    );
    metric(
        "accepted_connections",
        "counter",
        "The number of requests accepted by the pool.",
        s.accepted,
        false,
    );
    metric(
        "listen_queue",
        "gauge",
        "The number of requests in the queue of pending connections.",
        s.listen_queue,
        false,
    );
    metric(
        "max_listen_queue",
        "counter",
        "The maximum number of requests in the queue of pending connections since FPM has started.",
        s.max_listen_queue,
        false,
    );
    metric(
        "listen_queue_length",
        "gauge",
        "The size of the socket queue of pending connections.",
        s.listen_queue_len,
        true,
    );
    metric(
        "idle_processes",
        "gauge",
        "The number of idle processes.",
        s.idle,
        false,
    );
    metric(
        "active_processes",
        "gauge",
        "The number of active processes.",
        s.active,
        false,
    );
    metric(
        "total_processes",
        "gauge",
        "The number of idle + active processes.",
        s.total(),
        false,
    );
    metric(
        "max_active_processes",
        "counter",
        "The maximum number of active processes since FPM has started.",
        s.max_active,
        false,
    );
    metric("max_children_reached", "counter", "The number of times, the process limit has been reached, when pm tries to start more children (works only for pm 'dynamic' and 'ondemand').", s.max_children_reached, false);
    metric(
        "slow_requests",
        "counter",
        "The number of requests that exceeded your 'request_slowlog_timeout' value.",
        s.slow_requests,
        false,
    );
    if let Some(peak) = s.memory_peak {
        metric(
            "memory_peak",
            "gauge",
            "The memory usage peak since FPM has started.",
            peak,
            false,
        );
    }
    o.push_str("# EOF\n");
    // The pool's name in the first HELP line, as its bytes.
    crate::shown::unshow(&o).into_owned()
}

/// `fpm_get_status()`'s array (reference §8.2).
pub fn to_array(s: &PoolStatus) -> Vec<(&'static str, StatusValue)> {
    use StatusValue::{Float, Int, List, Str};
    let n = |v: u64| Int(i64::try_from(v).unwrap_or(i64::MAX));
    let procs = s
        .procs
        .iter()
        .map(|p| {
            let mut v = vec![
                ("pid", Int(i64::from(p.pid))),
                ("state", Str(p.state.as_bytes().to_vec())),
                ("start-time", n(p.start_time)),
                ("start-since", n(p.start_since)),
                ("requests", n(p.requests)),
                ("request-duration", n(p.duration)),
                ("request-method", Str(or_dash(&p.method).to_vec())),
                ("request-uri", Str(p.uri.clone())),
                ("query-string", Str(p.query.clone())),
                ("request-length", Int(p.content_length)),
                ("user", Str(or_dash(&p.user).to_vec())),
                ("script", Str(or_dash(&p.script).to_vec())),
                ("last-request-cpu", Float(p.cpu)),
                ("last-request-memory", n(p.memory)),
            ];
            if p.draining {
                v.push(("generation", Str(DRAINING.as_bytes().to_vec())));
            }
            v
        })
        .collect();
    [
        ("pool", Str(s.pool.clone())),
        ("process-manager", Str(s.pm.as_bytes().to_vec())),
        ("start-time", n(s.start_time)),
        ("start-since", n(s.start_since)),
        ("accepted-conn", n(s.accepted)),
        ("listen-queue", n(s.listen_queue)),
        ("max-listen-queue", n(s.max_listen_queue)),
        ("listen-queue-len", n(s.listen_queue_len)),
        ("idle-processes", n(s.idle)),
        ("active-processes", n(s.active)),
        ("total-processes", n(s.total())),
        ("max-active-processes", n(s.max_active)),
        ("max-children-reached", n(s.max_children_reached)),
        ("slow-requests", n(s.slow_requests)),
    ]
    .into_iter()
    .chain(s.memory_peak.map(|peak| ("memory-peak", n(peak))))
    .chain([("procs", List(procs))])
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoreboard::WorkerState;

    /// The state the issue asks about: one request running, one worker idle, and the
    /// worker answering the status request.
    fn snapshot() -> PoolStatus {
        let p = |pid, state, requests, duration, uri: &str, query: &str| ProcStatus {
            pid,
            state,
            start_time: 1_795_490_005,
            start_since: 3,
            requests,
            duration,
            method: b"GET".to_vec(),
            uri: uri.as_bytes().to_vec(),
            query: query.as_bytes().to_vec(),
            content_length: 0,
            user: Vec::new(),
            script: Vec::new(),
            cpu: 0.0,
            memory: 0,
            draining: false,
        };
        PoolStatus {
            pool: b"www".to_vec(),
            pm: "static",
            start_time: 1_795_490_005,
            start_since: 3,
            accepted: 5,
            listen_queue: 0,
            max_listen_queue: 0,
            listen_queue_len: 4096,
            idle: 1,
            active: 2,
            max_active: 2,
            max_children_reached: 0,
            slow_requests: 0,
            memory_peak: None,
            procs: vec![
                p(26379, "Running", 3, 104, "/status", "json&full"),
                ProcStatus {
                    script: b"/srv/www/<x>.php".to_vec(),
                    user: b"foo".to_vec(),
                    ..p(
                        26380,
                        "Running",
                        1,
                        2_000_000,
                        "/<script>",
                        "a=b\"c&d=\u{e9}/",
                    )
                },
                ProcStatus {
                    cpu: 12.5,
                    memory: 2_097_152,
                    ..p(26381, "Idle", 2, 350, "/hello.php", "")
                },
            ],
        }
    }

    #[test]
    fn draining_workers_are_listed_and_marked_in_every_format() {
        let mine = SlotView {
            pid: 10,
            state: WorkerState::Idle,
            ..SlotView::default()
        };
        let old = SlotView {
            pid: 9,
            state: WorkerState::Running,
            request_start_us: 1_000_000,
            ..SlotView::default()
        };
        let s = PoolStatus::build_with_draining(
            b"www",
            "static",
            &Counters::default(),
            &[mine],
            &[old],
            2_000_000,
        );
        assert_eq!((s.idle, s.active, s.total()), (1, 1, 2));
        assert_eq!(
            s.procs
                .iter()
                .map(|p| (p.pid, p.draining))
                .collect::<Vec<_>>(),
            vec![(10, false), (9, true)]
        );
        let page =
            |f| String::from_utf8(render(&s, f, true, &|_| String::new())).unwrap_or_default();
        assert_eq!(
            page(Format::Plain)
                .matches("generation:           draining\n")
                .count(),
            1
        );
        assert_eq!(
            page(Format::Json)
                .matches(",\"generation\":\"draining\"}")
                .count(),
            1
        );
        assert_eq!(
            page(Format::Xml)
                .matches("<generation>draining</generation></process>")
                .count(),
            1
        );
        assert_eq!(
            page(Format::Html)
                .matches("<td>Running (draining)</td>")
                .count(),
            1
        );
        let arr = to_array(&s);
        let Some((_, StatusValue::List(procs))) = arr.last() else {
            panic!("no procs");
        };
        assert_eq!(procs[0].len(), 14);
        assert_eq!(
            procs[1].last(),
            Some(&("generation", StatusValue::Str(b"draining".to_vec())))
        );
        // Without draining workers the pages are php-fpm's (no mark anywhere).
        let plain =
            String::from_utf8(render(&snapshot(), Format::Plain, true, &utc)).unwrap_or_default();
        assert!(!plain.contains("generation"));
    }

    fn utc(t: u64) -> String {
        assert_eq!(t, 1_795_490_005);
        "24/Nov/2026:03:13:25 +0000".into()
    }

    fn text(f: Format, full: bool) -> String {
        String::from_utf8(render(&snapshot(), f, full, &utc)).unwrap_or_default()
    }

    const POOL_PLAIN: &str = "pool:                 www
process manager:      static
start time:           24/Nov/2026:03:13:25 +0000
start since:          3
accepted conn:        5
listen queue:         0
max listen queue:     0
listen queue len:     4096
idle processes:       1
active processes:     2
total processes:      3
max active processes: 2
max children reached: 0
slow requests:        0
";

    #[test]
    fn plain() {
        assert_eq!(text(Format::Plain, false), POOL_PLAIN);
        let full = text(Format::Plain, true);
        assert!(full.starts_with(POOL_PLAIN));
        assert_eq!(
            &full[POOL_PLAIN.len()..],
            "
************************
pid:                  26379
state:                Running
start time:           24/Nov/2026:03:13:25 +0000
start since:          3
requests:             3
request duration:     104
request method:       GET
request URI:          /status?json&full
content length:       0
user:                 -
script:               -
last request cpu:     0.00
last request memory:  0

************************
pid:                  26380
state:                Running
start time:           24/Nov/2026:03:13:25 +0000
start since:          3
requests:             1
request duration:     2000000
request method:       GET
request URI:          /<script>?a=b\"c&d=\u{e9}/
content length:       0
user:                 foo
script:               /srv/www/<x>.php
last request cpu:     0.00
last request memory:  0

************************
pid:                  26381
state:                Idle
start time:           24/Nov/2026:03:13:25 +0000
start since:          3
requests:             2
request duration:     350
request method:       GET
request URI:          /hello.php
content length:       0
user:                 -
script:               -
last request cpu:     12.50
last request memory:  2097152
"
        );
    }

    #[test]
    fn json() {
        let pool = r#"{"pool":"www","process manager":"static","start time":1795490005,"start since":3,"accepted conn":5,"listen queue":0,"max listen queue":0,"listen queue len":4096,"idle processes":1,"active processes":2,"total processes":3,"max active processes":2,"max children reached":0,"slow requests":0"#;
        assert_eq!(text(Format::Json, false), format!("{pool}}}"));
        assert_eq!(
            text(Format::Json, true),
            format!(
                "{pool}, \"processes\":[{},{},{}]}}",
                r#"{"pid":26379,"state":"Running","start time":1795490005,"start since":3,"requests":3,"request duration":104,"request method":"GET","request uri":"\/status?json&full","content length":0,"user":"-","script":"-","last request cpu":0.00,"last request memory":0}"#,
                r#"{"pid":26380,"state":"Running","start time":1795490005,"start since":3,"requests":1,"request duration":2000000,"request method":"GET","request uri":"\/<script>?a=b\"c&d=\u00e9\/","content length":0,"user":"foo","script":"\/srv\/www\/<x>.php","last request cpu":0.00,"last request memory":0}"#,
                r#"{"pid":26381,"state":"Idle","start time":1795490005,"start since":3,"requests":2,"request duration":350,"request method":"GET","request uri":"\/hello.php","content length":0,"user":"-","script":"-","last request cpu":12.50,"last request memory":2097152}"#,
            )
        );
    }

    #[test]
    fn json_escaping() {
        let mut o = Vec::new();
        escape_json(b"a\x01\n\t\\\xff\xf0\x9f\x98\x80", &mut o);
        assert_eq!(String::from_utf8_lossy(&o), r"a\u0001\n\t\\\ud83d\ude00");
    }

    #[test]
    fn xml() {
        let pool = "<?xml version=\"1.0\" ?>
<status>
<pool>www</pool>
<process-manager>static</process-manager>
<start-time>1795490005</start-time>
<start-since>3</start-since>
<accepted-conn>5</accepted-conn>
<listen-queue>0</listen-queue>
<max-listen-queue>0</max-listen-queue>
<listen-queue-len>4096</listen-queue-len>
<idle-processes>1</idle-processes>
<active-processes>2</active-processes>
<total-processes>3</total-processes>
<max-active-processes>2</max-active-processes>
<max-children-reached>0</max-children-reached>
<slow-requests>0</slow-requests>
";
        assert_eq!(text(Format::Xml, false), format!("{pool}</status>"));
        let full = text(Format::Xml, true);
        assert_eq!(
            &full[pool.len()..],
            "<processes>
<process><pid>26379</pid><state>Running</state><start-time>1795490005</start-time><start-since>3</start-since><requests>3</requests><request-duration>104</request-duration><request-method>GET</request-method><request-uri>/status?json&amp;full</request-uri><content-length>0</content-length><user>-</user><script>-</script><last-request-cpu>0.00</last-request-cpu><last-request-memory>0</last-request-memory></process>
<process><pid>26380</pid><state>Running</state><start-time>1795490005</start-time><start-since>3</start-since><requests>1</requests><request-duration>2000000</request-duration><request-method>GET</request-method><request-uri>/&lt;script&gt;?a=b&quot;c&amp;d=\u{e9}/</request-uri><content-length>0</content-length><user>foo</user><script>/srv/www/&lt;x&gt;.php</script><last-request-cpu>0.00</last-request-cpu><last-request-memory>0</last-request-memory></process>
<process><pid>26381</pid><state>Idle</state><start-time>1795490005</start-time><start-since>3</start-since><requests>2</requests><request-duration>350</request-duration><request-method>GET</request-method><request-uri>/hello.php</request-uri><content-length>0</content-length><user>-</user><script>-</script><last-request-cpu>12.50</last-request-cpu><last-request-memory>2097152</last-request-memory></process>
</processes>
</status>"
        );
    }

    #[test]
    fn html() {
        let head = "<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Strict//EN\" \"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd\">
<html xmlns=\"http://www.w3.org/1999/xhtml\" xml:lang=\"en\" lang=\"en\">
<head><title>PHP-FPM Status Page</title></head>
<body>
<table>
<tr><th>pool</th><td>www</td></tr>
<tr><th>process manager</th><td>static</td></tr>
<tr><th>start time</th><td>24/Nov/2026:03:13:25 +0000</td></tr>
<tr><th>start since</th><td>3</td></tr>
<tr><th>accepted conn</th><td>5</td></tr>
<tr><th>listen queue</th><td>0</td></tr>
<tr><th>max listen queue</th><td>0</td></tr>
<tr><th>listen queue len</th><td>4096</td></tr>
<tr><th>idle processes</th><td>1</td></tr>
<tr><th>active processes</th><td>2</td></tr>
<tr><th>total processes</th><td>3</td></tr>
<tr><th>max active processes</th><td>2</td></tr>
<tr><th>max children reached</th><td>0</td></tr>
<tr><th>slow requests</th><td>0</td></tr>
</table>
";
        assert_eq!(text(Format::Html, false), format!("{head}</body></html>"));
        let full = text(Format::Html, true);
        assert_eq!(
            &full[head.len()..],
            "<table border=\"1\">
<tr><th>pid</th><th>state</th><th>start time</th><th>start since</th><th>requests</th><th>request duration</th><th>request method</th><th>request uri</th><th>content length</th><th>user</th><th>script</th><th>last request cpu</th><th>last request memory</th></tr>
<tr><td>26379</td><td>Running</td><td>24/Nov/2026:03:13:25 +0000</td><td>3</td><td>3</td><td>104</td><td>GET</td><td>/status?json&amp;full</td><td>0</td><td>-</td><td>-</td><td>0.00</td><td>0</td></tr>
<tr><td>26380</td><td>Running</td><td>24/Nov/2026:03:13:25 +0000</td><td>3</td><td>1</td><td>2000000</td><td>GET</td><td>/&lt;script&gt;?a=b&quot;c&amp;d=\u{e9}/</td><td>0</td><td>foo</td><td>/srv/www/&lt;x&gt;.php</td><td>0.00</td><td>0</td></tr>
<tr><td>26381</td><td>Idle</td><td>24/Nov/2026:03:13:25 +0000</td><td>3</td><td>2</td><td>350</td><td>GET</td><td>/hello.php</td><td>0</td><td>-</td><td>-</td><td>12.50</td><td>2097152</td></tr>
</table></body></html>"
        );
        assert!(!full.contains("<script>"));
    }

    #[test]
    fn openmetrics() {
        let expected = "# HELP phpfpm_up Could pool www using a static PM on PHP-FPM be reached?
# TYPE phpfpm_up gauge
phpfpm_up 1
# HELP phpfpm_start_since The number of seconds since FPM has started.
# TYPE phpfpm_start_since counter
phpfpm_start_since 3
# HELP phpfpm_accepted_connections The number of requests accepted by the pool.
# TYPE phpfpm_accepted_connections counter
phpfpm_accepted_connections 5
# HELP phpfpm_listen_queue The number of requests in the queue of pending connections.
# TYPE phpfpm_listen_queue gauge
phpfpm_listen_queue 0
# HELP phpfpm_max_listen_queue The maximum number of requests in the queue of pending connections since FPM has started.
# TYPE phpfpm_max_listen_queue counter
phpfpm_max_listen_queue 0
# TYPE phpfpm_listen_queue_length gauge
# HELP phpfpm_listen_queue_length The size of the socket queue of pending connections.
phpfpm_listen_queue_length 4096
# HELP phpfpm_idle_processes The number of idle processes.
# TYPE phpfpm_idle_processes gauge
phpfpm_idle_processes 1
# HELP phpfpm_active_processes The number of active processes.
# TYPE phpfpm_active_processes gauge
phpfpm_active_processes 2
# HELP phpfpm_total_processes The number of idle + active processes.
# TYPE phpfpm_total_processes gauge
phpfpm_total_processes 3
# HELP phpfpm_max_active_processes The maximum number of active processes since FPM has started.
# TYPE phpfpm_max_active_processes counter
phpfpm_max_active_processes 2
# HELP phpfpm_max_children_reached The number of times, the process limit has been reached, when pm tries to start more children (works only for pm 'dynamic' and 'ondemand').
# TYPE phpfpm_max_children_reached counter
phpfpm_max_children_reached 0
# HELP phpfpm_slow_requests The number of requests that exceeded your 'request_slowlog_timeout' value.
# TYPE phpfpm_slow_requests counter
phpfpm_slow_requests 0
# EOF
";
        assert_eq!(text(Format::OpenMetrics, false), expected);
        assert_eq!(text(Format::OpenMetrics, true), expected);
    }

    #[test]
    fn query_selects_format() {
        for prefix in [true, false] {
            let select = |q: &[u8]| select(q, prefix);
            assert_eq!(select(b""), (Format::Plain, false));
            assert_eq!(select(b"full"), (Format::Plain, true));
            assert_eq!(select(b"json&full"), (Format::Json, true));
            assert_eq!(select(b"full&json"), (Format::Json, true));
            assert_eq!(select(b"json&html"), (Format::Html, false));
            assert_eq!(select(b"xml&openmetrics"), (Format::Xml, false));
            assert_eq!(select(b"openmetrics"), (Format::OpenMetrics, false));
            assert_eq!(select(b"jsonx"), (Format::Plain, false));
            assert_eq!(select(b"=json"), (Format::Plain, false));
            assert_eq!(select(b"%6Ason=1&full[]=x"), (Format::Json, true));
        }
        // php-fpm 8.2: a key selects a keyword it begins.
        assert_eq!(select(b"j&f", true), (Format::Json, true));
        assert_eq!(select(b"%6Aso=1", true), (Format::Json, false));
        // php-fpm 8.4: only the whole keyword.
        assert_eq!(select(b"j&f", false), (Format::Plain, false));
        assert_eq!(select(b"%6Aso=1", false), (Format::Plain, false));
    }

    /// php-fpm 8.4's `memory peak`: after `slow requests` in every format (observed
    /// from php-fpm 8.4.28), and only when shown.
    #[test]
    fn memory_peak_in_every_format() {
        let mut s = snapshot();
        for f in [
            Format::Plain,
            Format::Html,
            Format::Xml,
            Format::Json,
            Format::OpenMetrics,
        ] {
            let page = String::from_utf8(render(&s, f, false, &utc)).expect("utf-8");
            assert!(!page.contains("memory peak") && !page.contains("memory-peak"));
            assert!(!page.contains("memory_peak"));
        }
        assert!(!to_array(&s).iter().any(|(k, _)| *k == "memory-peak"));
        s.memory_peak = Some(5_099_520);
        let page = |f| String::from_utf8(render(&s, f, false, &utc)).expect("utf-8");
        assert!(page(Format::Plain)
            .ends_with("slow requests:        0\nmemory peak:          5099520\n"));
        assert!(page(Format::Html).contains(
            "<tr><th>slow requests</th><td>0</td></tr>\n<tr><th>memory peak</th><td>5099520</td></tr>\n</table>"
        ));
        assert!(page(Format::Xml).ends_with(
            "<slow-requests>0</slow-requests>\n<memory-peak>5099520</memory-peak>\n</status>"
        ));
        assert!(page(Format::Json).ends_with("\"slow requests\":0,\"memory peak\":5099520}"));
        assert!(page(Format::OpenMetrics).ends_with(
            "phpfpm_slow_requests 0\n\
             # HELP phpfpm_memory_peak The memory usage peak since FPM has started.\n\
             # TYPE phpfpm_memory_peak gauge\n\
             phpfpm_memory_peak 5099520\n# EOF\n"
        ));
        let a = to_array(&s);
        assert_eq!(a.len(), 16);
        assert_eq!(a[14], ("memory-peak", StatusValue::Int(5_099_520)));
        assert_eq!(a[15].0, "procs");
    }

    #[test]
    fn snapshot_from_scoreboard_views() {
        let idle = SlotView {
            pid: 10,
            state: WorkerState::Idle,
            requests: 4,
            start_us: 1_000_000_000,
            request_start_us: 1_000_500_000,
            duration_us: 200_000,
            cpu_user_us: 10_000,
            cpu_system_us: 40_000,
            memory: 2_097_152,
            method: b"POST".to_vec(),
            ..SlotView::default()
        };
        let running = SlotView {
            pid: 11,
            state: WorkerState::ReadingHeaders,
            request_start_us: 1_002_000_000,
            duration_us: 99,
            memory: 5,
            ..idle.clone()
        };
        let c = Counters {
            start_us: 999_000_000,
            accepted: 9,
            max_active: 0,
            ..Counters::default()
        };
        let s = PoolStatus::build(b"www", "dynamic", &c, &[idle, running], 1_003_500_000);
        assert_eq!((s.idle, s.active, s.total(), s.max_active), (1, 1, 2, 1));
        assert_eq!((s.start_time, s.start_since), (999, 4));
        assert_eq!(s.procs[0].duration, 200_000);
        assert!((s.procs[0].cpu - 25.0).abs() < 1e-9);
        assert_eq!(s.procs[0].memory, 2_097_152);
        assert_eq!(s.procs[1].state, "Reading headers");
        assert_eq!(
            (s.procs[1].duration, s.procs[1].cpu, s.procs[1].memory),
            (1_500_000, 0.0, 0)
        );
    }

    #[test]
    fn fpm_get_status_array() {
        let a = to_array(&snapshot());
        let keys: Vec<&str> = a.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            keys,
            [
                "pool",
                "process-manager",
                "start-time",
                "start-since",
                "accepted-conn",
                "listen-queue",
                "max-listen-queue",
                "listen-queue-len",
                "idle-processes",
                "active-processes",
                "total-processes",
                "max-active-processes",
                "max-children-reached",
                "slow-requests",
                "procs"
            ]
        );
        let Some((_, StatusValue::List(procs))) = a.last() else {
            panic!("procs missing");
        };
        assert_eq!(procs.len(), 3);
        assert_eq!(
            procs[1][7],
            ("request-uri", StatusValue::Str(b"/<script>".to_vec()))
        );
        assert_eq!(
            procs[1][8],
            (
                "query-string",
                StatusValue::Str("a=b\"c&d=\u{e9}/".as_bytes().to_vec())
            )
        );
        assert_eq!(procs[0][10], ("user", StatusValue::Str(b"-".to_vec())));
    }
}
