//! The admin listener's `/metrics` (rfpm): Prometheus text format 0.0.4, or OpenMetrics
//! 1.0 when the scrape asks for it, rendered from a snapshot of every pool.
//!
//! Two sets of names:
//! - `phpfpm_*`: the names, types and meaning of the widely used php-fpm exporter
//!   (hipages/php-fpm_exporter), so dashboards built on it work unchanged. They keep
//!   their historical names (counters without `_total`); in OpenMetrics, whose counters
//!   must end in `_total`, those counters are typed `unknown` so that their names stay
//!   the same whichever format Prometheus negotiates.
//! - `rfpm_*`: rfpm's own, named by Prometheus' conventions (base units in the name,
//!   `_total` counters).
//!
//! Everything here is computed from figures whose size depends on the number of pools
//! and workers, never on the traffic: a scrape costs the same after ten requests or ten
//! million.
use crate::scoreboard::{HistogramView, BUCKETS_US};
use crate::status::PoolStatus;
use std::fmt::Write;

/// Why a worker ended (`rfpm_worker_restarts_total{reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// It served `pm.max_requests` requests and exited.
    MaxRequests,
    /// `pm.max_memory`: the master asked it to finish.
    Memory,
    /// A signal the master did not send (a crash, or someone else's kill).
    Crash,
    /// `request_terminate_timeout`: the master terminated it.
    TerminateTimeout,
    /// The process manager stopped it (an idle worker of a dynamic or ondemand pool).
    Idle,
    /// It exited on its own with any other status.
    Exit,
}

impl EndReason {
    pub const ALL: [EndReason; 6] = [
        EndReason::MaxRequests,
        EndReason::Memory,
        EndReason::Crash,
        EndReason::TerminateTimeout,
        EndReason::Idle,
        EndReason::Exit,
    ];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            EndReason::MaxRequests => "max_requests",
            EndReason::Memory => "memory",
            EndReason::Crash => "crash",
            EndReason::TerminateTimeout => "terminate_timeout",
            EndReason::Idle => "idle",
            EndReason::Exit => "exit",
        }
    }

    /// Its index in [`EndReason::ALL`] (and in a pool's counters).
    pub fn index(self) -> usize {
        self as usize
    }
}

/// What the master knows of a worker that ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ending {
    /// The master itself ended it, and why (memory, terminate timeout, idle).
    pub by_master: Option<EndReason>,
    /// It was killed by a signal (else it exited).
    pub signaled: bool,
    /// The exit status, when it exited.
    pub code: i32,
    /// Requests it served, as its slot says (untrusted: it only chooses a label).
    pub requests: u64,
    /// The pool's `pm.max_requests` (0: none).
    pub max_requests: u64,
}

/// Classifies a worker's end.
pub fn end_reason(e: &Ending) -> EndReason {
    if let Some(r) = e.by_master {
        return r;
    }
    if e.signaled {
        EndReason::Crash
    } else if e.code == 0 && e.max_requests > 0 && e.requests >= e.max_requests {
        EndReason::MaxRequests
    } else {
        EndReason::Exit
    }
}

/// A pool's figures for one scrape.
#[derive(Debug, Clone)]
pub struct PoolMetrics<'a> {
    /// The status page's snapshot (the same figures `?json&full` shows).
    pub status: &'a PoolStatus,
    /// The exporter's `scrape_uri` label: the pool's socket (`tcp://…` or `unix://…`).
    pub scrape_uri: &'a str,
    pub durations: HistogramView,
    pub queue_times: HistogramView,
    /// Finished requests by status class, 1xx to 5xx.
    pub responses: [u64; 5],
    /// Workers ended, by [`EndReason`] index.
    pub restarts: [u64; EndReason::ALL.len()],
    /// Resident memory of each worker of `status.procs`, in the same order (`None`:
    /// unreadable, e.g. the worker just ended).
    pub rss: &'a [Option<u64>],
    /// The pool runs a worker script (`worker.script`): its workers also have rfpm's
    /// `Booting` state, reported as a seventh `phpfpm_process_state` series, and the
    /// pool has `rfpm_worker_boot_duration_seconds`.
    pub worker_mode: bool,
    /// Worker mode: the boots' durations.
    pub boots: HistogramView,
}

/// `rfpm_build_info`'s labels.
#[derive(Debug, Clone, Copy)]
pub struct BuildInfo<'a> {
    pub version: &'a str,
    pub php_version: &'a str,
}

/// The exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Text,
    /// OpenMetrics 1.0.
    OpenMetrics,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// The format an `Accept` header asks for: OpenMetrics when it accepts
/// `application/openmetrics-text` at least as much as plain text, else text 0.0.4.
pub fn negotiate(accept: Option<&str>) -> Format {
    let Some(accept) = accept else {
        return Format::Text;
    };
    let mut om = 0.0f64;
    let mut text = 0.0f64;
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.strip_prefix("q="))
            .find_map(|q| q.parse::<f64>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            "application/openmetrics-text" => om = om.max(q),
            "text/plain" | "text/*" | "*/*" => text = text.max(q),
            _ => {}
        }
    }
    if om > 0.0 && om >= text {
        Format::OpenMetrics
    } else {
        Format::Text
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Gauge,
    Counter,
    Histogram,
    Info,
}

/// Writes the exposition, one family after another.
struct Out {
    f: Format,
    s: String,
}

impl Out {
    /// `# HELP` and `# TYPE` of a family. `name` is the sample name (with `_total` for
    /// conventional counters, with `_info` for info metrics).
    fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let (family, ty) = match (self.f, kind) {
            (Format::Text, Kind::Gauge | Kind::Info) => (name, "gauge"),
            (Format::Text, Kind::Counter) => (name, "counter"),
            (_, Kind::Histogram) => (name, "histogram"),
            (Format::OpenMetrics, Kind::Gauge) => (name, "gauge"),
            (Format::OpenMetrics, Kind::Counter) => match name.strip_suffix("_total") {
                Some(base) => (base, "counter"),
                // The exporter's historical counter names: kept as they are.
                None => (name, "unknown"),
            },
            (Format::OpenMetrics, Kind::Info) => {
                (name.strip_suffix("_info").unwrap_or(name), "info")
            }
        };
        let _ = writeln!(self.s, "# HELP {family} {help}");
        let _ = writeln!(self.s, "# TYPE {family} {ty}");
    }

    /// One sample: `name{labels} value`.
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: &dyn std::fmt::Display) {
        self.s.push_str(name);
        if !labels.is_empty() {
            self.s.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.s.push(',');
                }
                self.s.push_str(k);
                self.s.push_str("=\"");
                escape_label(v, &mut self.s);
                self.s.push('"');
            }
            self.s.push('}');
        }
        let _ = writeln!(self.s, " {value}");
    }

    fn histogram(&mut self, name: &str, pool: &str, h: &HistogramView) {
        let mut cumulative = 0u64;
        for (i, &c) in h.counts.iter().enumerate() {
            cumulative = cumulative.saturating_add(c);
            let le = BUCKETS_US
                .get(i)
                .map_or_else(|| "+Inf".to_string(), |&us| seconds(us));
            self.sample(
                &format!("{name}_bucket"),
                &[("pool", pool), ("le", &le)],
                &cumulative,
            );
        }
        self.sample(
            &format!("{name}_sum"),
            &[("pool", pool)],
            &seconds(h.sum_us),
        );
        self.sample(&format!("{name}_count"), &[("pool", pool)], &cumulative);
    }
}

/// Microseconds as seconds, the shortest decimal form (`0.0025`, `10`).
fn seconds(us: u64) -> String {
    let whole = us / 1_000_000;
    let frac = us % 1_000_000;
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:06}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// A label value escaped: `\`, `"` and line feeds.
fn escape_label(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Pool-level families of the exporter: name, type, help, value.
type PoolFamily = (&'static str, Kind, &'static str, fn(&PoolStatus) -> u64);

const POOL_FAMILIES: [PoolFamily; 12] = [
    (
        "phpfpm_start_since",
        Kind::Counter,
        "Seconds since the pool started.",
        |s| s.start_since,
    ),
    (
        "phpfpm_accepted_connections",
        Kind::Counter,
        "Requests the pool has accepted.",
        |s| s.accepted,
    ),
    (
        "phpfpm_listen_queue",
        Kind::Gauge,
        "Connections waiting in the pool's accept queue.",
        |s| s.listen_queue,
    ),
    (
        "phpfpm_max_listen_queue",
        Kind::Counter,
        "Most connections seen waiting in the accept queue since the pool started.",
        |s| s.max_listen_queue,
    ),
    (
        "phpfpm_listen_queue_length",
        Kind::Gauge,
        "Capacity of the pool's accept queue.",
        |s| s.listen_queue_len,
    ),
    (
        "phpfpm_idle_processes",
        Kind::Gauge,
        "Workers waiting for a request.",
        |s| s.idle,
    ),
    (
        "phpfpm_active_processes",
        Kind::Gauge,
        "Workers serving a request.",
        |s| s.active,
    ),
    (
        "phpfpm_total_processes",
        Kind::Gauge,
        "Workers, idle and active.",
        |s| s.idle + s.active,
    ),
    (
        "phpfpm_max_active_processes",
        Kind::Counter,
        "Most workers seen active at once since the pool started.",
        |s| s.max_active,
    ),
    (
        "phpfpm_max_children_reached",
        Kind::Counter,
        "Times the process manager wanted more workers than pm.max_children allows.",
        |s| s.max_children_reached,
    ),
    (
        "phpfpm_slow_requests",
        Kind::Counter,
        "Requests that ran longer than request_slowlog_timeout.",
        |s| s.slow_requests,
    ),
    (
        "phpfpm_up",
        Kind::Gauge,
        "Whether the pool answered (always 1: rfpm reports its own pools).",
        |_| 1,
    ),
];

/// The worker states the exporter reports, one series each per worker.
const STATES: [&str; 6] = [
    "Idle",
    "Running",
    "Finishing",
    "Reading headers",
    "Getting request information",
    "Ending",
];

const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The whole exposition.
pub fn render(pools: &[PoolMetrics<'_>], build: &BuildInfo<'_>, f: Format) -> String {
    let mut o = Out {
        f,
        s: String::with_capacity(4096),
    };
    // phpfpm_up first, as the exporter lists it; then the other pool figures.
    for (name, kind, help, value) in POOL_FAMILIES[11..].iter().chain(&POOL_FAMILIES[..11]) {
        o.family(name, *kind, help);
        for p in pools {
            let pool = p.status.pool_text();
            let labels = [("pool", &*pool), ("scrape_uri", p.scrape_uri)];
            o.sample(name, &labels, &value(p.status));
        }
    }
    o.family(
        "phpfpm_scrape_failures",
        Kind::Counter,
        "Failed reads of the pool's status (always 0: rfpm reads its own scoreboard).",
    );
    for p in pools {
        let pool = p.status.pool_text();
        let labels = [("pool", &*pool), ("scrape_uri", p.scrape_uri)];
        o.sample("phpfpm_scrape_failures", &labels, &0);
    }
    per_process(&mut o, pools);
    rfpm_families(&mut o, pools, build);
    if f == Format::OpenMetrics {
        o.s.push_str("# EOF\n");
    }
    o.s
}

/// The exporter's per-worker families (labels `pool`, `child` (its index in the pool),
/// `pid`, `scrape_uri`).
fn per_process(o: &mut Out, pools: &[PoolMetrics<'_>]) {
    type ProcFamily = (
        &'static str,
        Kind,
        &'static str,
        fn(&crate::status::ProcStatus) -> String,
    );
    let families: [ProcFamily; 4] = [
        (
            "phpfpm_process_requests",
            Kind::Counter,
            "Requests the worker has served.",
            |p| p.requests.to_string(),
        ),
        (
            "phpfpm_process_last_request_memory",
            Kind::Gauge,
            "Peak memory of the worker's last request, bytes.",
            |p| p.memory.to_string(),
        ),
        (
            "phpfpm_process_last_request_cpu",
            Kind::Gauge,
            "CPU of the worker's last request, percent of its duration.",
            |p| format!("{:.2}", p.cpu),
        ),
        (
            "phpfpm_process_request_duration",
            Kind::Gauge,
            "Duration of the worker's current or last request, microseconds.",
            |p| p.duration.to_string(),
        ),
    ];
    o.family(
        "phpfpm_process_state",
        Kind::Gauge,
        "The worker's state: 1 for the state it is in, 0 for the others.",
    );
    for p in pools {
        let pool = p.status.pool_text();
        for (i, proc_) in p.status.procs.iter().enumerate() {
            let (child, pid) = (i.to_string(), proc_.pid.to_string());
            let booting = p.worker_mode.then_some("Booting");
            for state in STATES.into_iter().chain(booting) {
                let labels = [
                    ("pool", &*pool),
                    ("child", child.as_str()),
                    ("pid", pid.as_str()),
                    ("state", state),
                    ("scrape_uri", p.scrape_uri),
                ];
                o.sample(
                    "phpfpm_process_state",
                    &labels,
                    &u8::from(proc_.state == state),
                );
            }
        }
    }
    for (name, kind, help, value) in families {
        o.family(name, kind, help);
        for p in pools {
            let pool = p.status.pool_text();
            for (i, proc_) in p.status.procs.iter().enumerate() {
                let (child, pid) = (i.to_string(), proc_.pid.to_string());
                let labels = [
                    ("pool", &*pool),
                    ("child", child.as_str()),
                    ("pid", pid.as_str()),
                    ("scrape_uri", p.scrape_uri),
                ];
                o.sample(name, &labels, &value(proc_));
            }
        }
    }
}

fn rfpm_families(o: &mut Out, pools: &[PoolMetrics<'_>], build: &BuildInfo<'_>) {
    // The histograms: name, help, the pool's figures (`None`: the pool has none).
    type Figures = fn(&PoolMetrics<'_>) -> Option<HistogramView>;
    let histograms: [(&str, &str, Figures); 3] = [
        (
            "rfpm_request_duration_seconds",
            "Time from a worker starting to read a request to its end.",
            |p| Some(p.durations),
        ),
        (
            "rfpm_request_queue_seconds",
            "Time from the web server receiving a request (X-Request-Start) to a worker starting it.",
            |p| Some(p.queue_times),
        ),
        (
            "rfpm_worker_boot_duration_seconds",
            "Worker mode: time from a worker script's start to its first frankenphp_handle_request().",
            |p| p.worker_mode.then_some(p.boots),
        ),
    ];
    for (name, help, figures) in histograms {
        if pools.iter().all(|p| figures(p).is_none()) {
            continue;
        }
        o.family(name, Kind::Histogram, help);
        for p in pools {
            if let Some(h) = figures(p) {
                o.histogram(name, &p.status.pool_text(), &h);
            }
        }
    }
    o.family(
        "rfpm_requests_total",
        Kind::Counter,
        "Finished requests by HTTP status class.",
    );
    for p in pools {
        let pool = p.status.pool_text();
        for (class, n) in STATUS_CLASSES.iter().zip(p.responses) {
            let labels = [("pool", &*pool), ("status", class)];
            o.sample("rfpm_requests_total", &labels, &n);
        }
    }
    o.family(
        "rfpm_worker_restarts_total",
        Kind::Counter,
        "Workers that ended while the pool served, by reason.",
    );
    for p in pools {
        let pool = p.status.pool_text();
        for (r, n) in EndReason::ALL.iter().zip(p.restarts) {
            let labels = [("pool", &*pool), ("reason", r.label())];
            o.sample("rfpm_worker_restarts_total", &labels, &n);
        }
    }
    o.family(
        "rfpm_worker_memory_bytes",
        Kind::Gauge,
        "Resident memory of each worker (RSS), bytes.",
    );
    for p in pools {
        let pool = p.status.pool_text();
        for (proc_, rss) in p.status.procs.iter().zip(p.rss) {
            if let Some(rss) = rss {
                let pid = proc_.pid.to_string();
                let labels = [("pool", &*pool), ("pid", pid.as_str())];
                o.sample("rfpm_worker_memory_bytes", &labels, rss);
            }
        }
    }
    o.family(
        "rfpm_build_info",
        Kind::Info,
        "The running rfpm and the PHP it embeds.",
    );
    o.sample(
        "rfpm_build_info",
        &[
            ("version", build.version),
            ("php_version", build.php_version),
        ],
        &1,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::ProcStatus;

    fn pool() -> PoolStatus {
        PoolStatus {
            pool: b"w\"w".to_vec(),
            pm: "static",
            accepted: 7,
            idle: 1,
            active: 1,
            procs: vec![
                ProcStatus {
                    pid: 10,
                    state: "Idle",
                    requests: 3,
                    cpu: 12.5,
                    memory: 2_097_152,
                    duration: 1500,
                    ..Default::default()
                },
                ProcStatus {
                    pid: 11,
                    state: "Running",
                    requests: 4,
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    fn metrics(p: &PoolStatus, f: Format) -> String {
        let mut durations = HistogramView::default();
        durations.counts[0] = 2;
        durations.counts[13] = 1;
        durations.sum_us = 11_000_500;
        let m = PoolMetrics {
            status: p,
            scrape_uri: "tcp://127.0.0.1:9000",
            durations,
            queue_times: HistogramView::default(),
            responses: [0, 5, 1, 1, 0],
            restarts: [1, 0, 2, 0, 0, 0],
            rss: &[Some(4096), None],
            worker_mode: false,
            boots: HistogramView::default(),
        };
        render(
            &[m],
            &BuildInfo {
                version: "0.1.0",
                php_version: "8.2.29",
            },
            f,
        )
    }

    #[test]
    fn text_format_families_and_values() {
        let p = pool();
        let t = metrics(&p, Format::Text);
        let labels = "pool=\"w\\\"w\",scrape_uri=\"tcp://127.0.0.1:9000\"";
        for line in [
            format!("phpfpm_up{{{labels}}} 1"),
            format!("phpfpm_accepted_connections{{{labels}}} 7"),
            format!("phpfpm_total_processes{{{labels}}} 2"),
            "# TYPE phpfpm_accepted_connections counter".to_string(),
            "phpfpm_process_state{pool=\"w\\\"w\",child=\"1\",pid=\"11\",state=\"Running\",scrape_uri=\"tcp://127.0.0.1:9000\"} 1".to_string(),
            "phpfpm_process_state{pool=\"w\\\"w\",child=\"1\",pid=\"11\",state=\"Idle\",scrape_uri=\"tcp://127.0.0.1:9000\"} 0".to_string(),
            "phpfpm_process_last_request_cpu{pool=\"w\\\"w\",child=\"0\",pid=\"10\",scrape_uri=\"tcp://127.0.0.1:9000\"} 12.50".to_string(),
            "rfpm_request_duration_seconds_bucket{pool=\"w\\\"w\",le=\"0.001\"} 2".to_string(),
            "rfpm_request_duration_seconds_bucket{pool=\"w\\\"w\",le=\"10\"} 2".to_string(),
            "rfpm_request_duration_seconds_bucket{pool=\"w\\\"w\",le=\"+Inf\"} 3".to_string(),
            "rfpm_request_duration_seconds_count{pool=\"w\\\"w\"} 3".to_string(),
            "rfpm_request_duration_seconds_sum{pool=\"w\\\"w\"} 11.0005".to_string(),
            "rfpm_requests_total{pool=\"w\\\"w\",status=\"2xx\"} 5".to_string(),
            "rfpm_worker_restarts_total{pool=\"w\\\"w\",reason=\"max_requests\"} 1".to_string(),
            "rfpm_worker_restarts_total{pool=\"w\\\"w\",reason=\"crash\"} 2".to_string(),
            "rfpm_worker_memory_bytes{pool=\"w\\\"w\",pid=\"10\"} 4096".to_string(),
            "# TYPE rfpm_requests_total counter".to_string(),
            "# TYPE rfpm_build_info gauge".to_string(),
            "rfpm_build_info{version=\"0.1.0\",php_version=\"8.2.29\"} 1".to_string(),
        ] {
            assert!(t.lines().any(|l| l == line), "missing {line}\n{t}");
        }
        // An unreadable RSS is left out, not reported as 0.
        assert!(!t.contains("pid=\"11\"} 0\nrfpm_build"));
        assert!(!t
            .lines()
            .any(|l| l.starts_with("rfpm_worker_memory_bytes{pool=\"w\\\"w\",pid=\"11\"")));
        assert!(!t.contains("# EOF"));
        // Every family's samples follow its TYPE line, once.
        let types: Vec<&str> = t.lines().filter(|l| l.starts_with("# TYPE")).collect();
        let mut unique = types.clone();
        unique.dedup();
        assert_eq!(types.len(), unique.len());
    }

    #[test]
    fn openmetrics_keeps_the_exporter_names() {
        let p = pool();
        let t = metrics(&p, Format::OpenMetrics);
        assert!(t.ends_with("# EOF\n"));
        assert!(t.contains("# TYPE phpfpm_accepted_connections unknown\n"));
        assert!(t.contains("# TYPE rfpm_requests counter\n"));
        assert!(t.contains("# TYPE rfpm_build info\n"));
        assert!(t.contains("\nrfpm_requests_total{"));
        assert!(t.contains("\nphpfpm_accepted_connections{"));
    }

    #[test]
    fn negotiation() {
        assert_eq!(negotiate(None), Format::Text);
        assert_eq!(negotiate(Some("text/plain")), Format::Text);
        // What Prometheus 2.x sends.
        assert_eq!(
            negotiate(Some("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")),
            Format::OpenMetrics
        );
        assert_eq!(
            negotiate(Some(
                "text/plain;version=0.0.4;q=1,application/openmetrics-text;q=0.5"
            )),
            Format::Text
        );
        assert_eq!(
            negotiate(Some("application/openmetrics-text;q=0")),
            Format::Text
        );
    }

    #[test]
    fn seconds_are_short() {
        assert_eq!(seconds(1_000), "0.001");
        assert_eq!(seconds(2_500), "0.0025");
        assert_eq!(seconds(10_000_000), "10");
        assert_eq!(seconds(11_000_500), "11.0005");
    }

    #[test]
    fn end_reasons() {
        let e = Ending {
            by_master: None,
            signaled: false,
            code: 0,
            requests: 5,
            max_requests: 5,
        };
        assert_eq!(end_reason(&e), EndReason::MaxRequests);
        assert_eq!(
            end_reason(&Ending {
                max_requests: 0,
                ..e
            }),
            EndReason::Exit
        );
        assert_eq!(end_reason(&Ending { code: 255, ..e }), EndReason::Exit);
        assert_eq!(
            end_reason(&Ending {
                signaled: true,
                ..e
            }),
            EndReason::Crash
        );
        assert_eq!(
            end_reason(&Ending {
                by_master: Some(EndReason::Memory),
                signaled: true,
                ..e
            }),
            EndReason::Memory
        );
    }
}
