//! Issue 15, the admin listener (`admin.listen`, rfpm only): `/health`, `/ready`,
//! `/status` and `/metrics` served by the master itself over HTTP, with figures equal to
//! what the pool's own FastCGI status page says, under keep-alive, across worker ends
//! and reloads, and under hostile clients.
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use fcgi::client::Response;
use integration::helpers::{ok, start, text_of};
use integration::{
    connect, free_port, send_on, wait_for_file, wait_until, Fpm, FpmBuilder, Kind, Req, DEADLINE,
};

/// rfpm with the admin listener on a free loopback port; returns the builder and port.
fn with_admin(b: FpmBuilder) -> (FpmBuilder, u16) {
    let port = ok(free_port());
    (b.global(format!("admin.listen = 127.0.0.1:{port}")), port)
}

/// An HTTP answer: status code, header lines (lowercase names), body.
#[derive(Debug)]
struct Answer {
    code: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses one answer from the start of `raw` (None if it is not whole). Returns the
/// answer and the bytes it took.
fn parse_answer(raw: &[u8], head_only: bool) -> Option<(Answer, usize)> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let code = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let len = if head_only { 0 } else { len };
    if raw.len() < end + len {
        return None;
    }
    let body = String::from_utf8_lossy(&raw[end..end + len]).into_owned();
    Some((
        Answer {
            code,
            headers,
            body,
        },
        end + len,
    ))
}

/// Sends `raw` on a new connection and reads until the peer closes (or the deadline).
fn exchange(port: u16, raw: &[u8]) -> Vec<u8> {
    let mut s = ok(TcpStream::connect(("127.0.0.1", port)));
    ok(s.set_read_timeout(Some(Duration::from_secs(15))));
    let _ = s.write_all(raw);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

/// `GET path` with `extra` header lines, connection closed after.
fn get_with(port: u16, path: &str, extra: &str) -> Answer {
    let raw = exchange(
        port,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n").as_bytes(),
    );
    match parse_answer(&raw, false) {
        Some((a, _)) => a,
        None => panic!("no answer to {path}: {:?}", String::from_utf8_lossy(&raw)),
    }
}

fn get(port: u16, path: &str) -> Answer {
    get_with(port, path, "")
}

fn json(port: u16) -> serde_json::Value {
    let a = get(port, "/status");
    assert_eq!(a.code, 200, "{a:?}");
    match serde_json::from_str(&a.body) {
        Ok(v) => v,
        Err(e) => panic!("{e}: {}", a.body),
    }
}

/// The value of the sample `name{labels}` (labels as written, in order).
fn sample(metrics: &str, name_and_labels: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        l.strip_prefix(name_and_labels)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.parse().ok())
    })
}

fn www(name: &str, fpm: &Fpm) -> String {
    format!(
        "{name}{{pool=\"www\",scrape_uri=\"unix://{}\"}}",
        fpm.addr()
    )
}

/// The pool's FastCGI status page (`pm.status_path = /status`) in JSON.
fn fcgi_status(fpm: &Fpm) -> serde_json::Value {
    let mut c = ok(connect(&fpm.fcgi_addr()));
    let r = ok(send_on(
        &mut c,
        &fpm.docroot(),
        &Req::get("status").query("json&full"),
    ));
    match serde_json::from_slice(r.body()) {
        Ok(v) => v,
        Err(e) => panic!("{e}: {}", r.stdout_str()),
    }
}

#[test]
fn the_endpoints_and_their_status_codes() {
    let (b, port) = with_admin(
        Fpm::builder(Kind::Rfpm).pool("second", &["pm = ondemand", "pm.max_children = 3"]),
    );
    let fpm = start(b);
    let h = get(port, "/health");
    assert_eq!((h.code, h.body.as_str()), (200, "ok\n"), "{h:?}");
    let r = get(port, "/ready");
    assert_eq!((r.code, r.body.as_str()), (200, "ready\n"), "{r:?}");
    let v = json(port);
    assert_eq!(v["rfpm"]["ready"], true);
    assert_eq!(v["rfpm"]["state"], "normal");
    assert_eq!(v["rfpm"]["generation"], 1);
    let pools: Vec<&str> = v["pools"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p["pool"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(pools, ["www", "second"], "{v}");
    assert_eq!(v["pools"][0]["processes"].as_array().map(Vec::len), Some(2));
    assert!(
        v["pools"][0]["processes"][0]["rss"].as_u64().unwrap_or(0) > 0,
        "{v}"
    );
    assert_eq!(v["pools"][1]["process manager"], "ondemand");

    let m = get(port, "/metrics");
    assert_eq!(m.code, 200);
    assert_eq!(
        m.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(!m.body.contains("# EOF"));
    let om = get_with(
        port,
        "/metrics",
        "Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\n",
    );
    assert_eq!(
        om.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(om.body.ends_with("# EOF\n"), "{}", om.body);

    assert_eq!(get(port, "/nope").code, 404);
    let page = get(port, "/");
    assert_eq!(page.code, 200);
    assert!(page
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/html")));

    // HEAD: the headers of the answer, no body.
    let raw = exchange(port, b"HEAD /health HTTP/1.1\r\nConnection: close\r\n\r\n");
    let text = String::from_utf8_lossy(&raw).into_owned();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(
        text.contains("Content-Length: 3\r\n") && text.ends_with("\r\n\r\n"),
        "{text}"
    );
    // Other methods: 405 with Allow.
    let raw = exchange(port, b"DELETE /health HTTP/1.1\r\n\r\n");
    let (a, _) = parse_answer(&raw, false).unwrap_or_else(|| panic!("{raw:?}"));
    assert_eq!((a.code, a.header("allow")), (405, Some("GET, HEAD")));
    drop(fpm);
}

/// Keep-alive: several requests on one connection, each answered in turn, also when
/// they arrive in one write.
#[test]
fn keep_alive_serves_requests_in_turn() {
    let (b, port) = with_admin(Fpm::builder(Kind::Rfpm));
    let _fpm = start(b);
    let mut s = ok(TcpStream::connect(("127.0.0.1", port)));
    ok(s.set_read_timeout(Some(Duration::from_secs(10))));
    ok(s.write_all(
        b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /ready HTTP/1.1\r\nHost: x\r\n\r\n",
    ));
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let mut answers = Vec::new();
    while answers.len() < 2 {
        let n = ok(s.read(&mut buf));
        assert!(n > 0, "closed after {} answers", answers.len());
        raw.extend_from_slice(&buf[..n]);
        while let Some((a, used)) = parse_answer(&raw, false) {
            raw.drain(..used);
            answers.push(a);
        }
    }
    assert_eq!(answers[0].body, "ok\n");
    assert_eq!(answers[1].body, "ready\n");
    assert_eq!(answers[1].header("connection"), Some("keep-alive"));
    ok(s.write_all(b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n"));
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    raw.extend_from_slice(&rest);
    let (a, _) = parse_answer(&raw, false).unwrap_or_else(|| panic!("{raw:?}"));
    assert_eq!((a.code, a.header("connection")), (200, Some("close")));
}

/// 300 requests in one write, read only after they were all sent: the answers (24
/// workers' metrics each, about 10 MB in all, more than loopback's socket buffers hold)
/// wait for the client to read, in order, none lost, while other clients are served
/// meanwhile.
#[test]
fn pipelined_requests_wait_for_a_slow_reader() {
    let (b, port) = with_admin(Fpm::builder(Kind::Rfpm).pool_line("pm.max_children = 24"));
    let _fpm = start(b);
    let mut s = ok(TcpStream::connect(("127.0.0.1", port)));
    ok(s.set_read_timeout(Some(Duration::from_secs(10))));
    let one = b"GET /metrics HTTP/1.1\r\n\r\n";
    let n = admin_max_head() / one.len() - 1;
    let all: Vec<u8> = one.iter().copied().cycle().take(one.len() * n).collect();
    ok(s.write_all(&all));
    // Another client meanwhile.
    assert_eq!(get(port, "/health").code, 200);
    let mut raw = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut answers = 0;
    while answers < n {
        let got = ok(s.read(&mut buf));
        assert!(got > 0, "closed after {answers} of {n}");
        raw.extend_from_slice(&buf[..got]);
        while let Some((a, used)) = parse_answer(&raw, false) {
            assert_eq!(a.code, 200);
            assert!(a.body.ends_with("} 1\n"), "{}", a.body);
            raw.drain(..used);
            answers += 1;
        }
    }
    assert!(raw.is_empty());
}

/// The head bound of the admin listener (`rfpm_core::admin::MAX_HEAD`).
fn admin_max_head() -> usize {
    8192
}

const EXPORTER_POOL_METRICS: [&str; 13] = [
    "phpfpm_up",
    "phpfpm_start_since",
    "phpfpm_accepted_connections",
    "phpfpm_listen_queue",
    "phpfpm_max_listen_queue",
    "phpfpm_listen_queue_length",
    "phpfpm_idle_processes",
    "phpfpm_active_processes",
    "phpfpm_total_processes",
    "phpfpm_max_active_processes",
    "phpfpm_max_children_reached",
    "phpfpm_slow_requests",
    "phpfpm_scrape_failures",
];

const EXPORTER_PROCESS_METRICS: [&str; 5] = [
    "phpfpm_process_requests",
    "phpfpm_process_state",
    "phpfpm_process_request_duration",
    "phpfpm_process_last_request_cpu",
    "phpfpm_process_last_request_memory",
];

const RFPM_METRICS: [&str; 8] = [
    "rfpm_request_duration_seconds_bucket",
    "rfpm_request_duration_seconds_count",
    "rfpm_request_queue_seconds_bucket",
    "rfpm_request_queue_seconds_sum",
    "rfpm_worker_restarts_total",
    "rfpm_worker_memory_bytes",
    "rfpm_requests_total",
    "rfpm_build_info",
];

/// Every metric name of the issue, for every pool; per-worker ones for every worker.
#[test]
fn every_metric_for_every_pool() {
    let (b, port) = with_admin(Fpm::builder(Kind::Rfpm).pool(
        "second",
        &[
            "pm = dynamic",
            "pm.max_children = 4",
            "pm.start_servers = 3",
            "pm.min_spare_servers = 1",
            "pm.max_spare_servers = 3",
        ],
    ));
    let fpm = start(b);
    let m = get(port, "/metrics").body;
    for pool in ["www", "second"] {
        let label = format!("pool=\"{pool}\"");
        for name in EXPORTER_POOL_METRICS
            .iter()
            .chain(&EXPORTER_PROCESS_METRICS)
            .chain(RFPM_METRICS[..7].iter())
        {
            assert!(
                m.lines()
                    .any(|l| l.starts_with(&format!("{name}{{")) && l.contains(&label)),
                "{name} for {pool} missing:\n{m}"
            );
        }
    }
    // Per worker: one series per state each, and its memory, for all five workers.
    let v = json(port);
    let pids: Vec<u64> = v["pools"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["processes"].as_array().cloned().unwrap_or_default())
        .filter_map(|w| w["pid"].as_u64())
        .collect();
    assert_eq!(pids.len(), 5, "{v}");
    for pid in pids {
        let pid = format!("pid=\"{pid}\"");
        let states = m
            .lines()
            .filter(|l| l.starts_with("phpfpm_process_state{") && l.contains(&pid))
            .count();
        assert_eq!(states, 6, "{pid}\n{m}");
        assert!(m
            .lines()
            .any(|l| l.starts_with("rfpm_worker_memory_bytes{") && l.contains(&pid)));
    }
    assert!(
        m.lines()
            .any(|l| l.starts_with("rfpm_build_info{version=\"")
                && l.contains("php_version=\"8.")
                && l.ends_with(" 1")),
        "{m}"
    );
    drop(fpm);
}

/// After requests of several outcomes (some over one keep-alive connection), the
/// metrics say what the pool's FastCGI status page says in the same state, and the
/// histogram counted each request once.
#[test]
fn metrics_equal_the_status_page() {
    let (b, port) = with_admin(Fpm::builder(Kind::Rfpm).pool_line("pm.status_path = /status"));
    let fpm = start(b);
    let mut ok_count = 0u64;
    for i in 0..5 {
        let r = ok(fpm.request("hello.php", &[]));
        assert!(text_of(&r).contains("Hello"), "{i}: {}", text_of(&r));
        ok_count += 1;
    }
    // Keep-alive: three requests on one connection.
    let mut c = ok(connect(&fpm.fcgi_addr()));
    for _ in 0..3 {
        ok(send_on(
            &mut c,
            &fpm.docroot(),
            &Req::get("hello.php").keep_conn(true),
        ));
        ok_count += 1;
    }
    drop(c);
    let r = ok(fpm.send(&Req::get("status.php").query("code=404")));
    assert_eq!(r.status(), 404);
    let r = ok(fpm.send(&Req::get("status.php").query("code=503")));
    assert_eq!(r.status(), 503);
    let r = ok(fpm.send(&Req::get("status.php").query("code=302&h[]=Location:%20/x")));
    assert_eq!(r.status(), 302);
    let sent = ok_count + 3;

    // Every worker back to Idle (a worker is Finishing a moment after its answer), then
    // the status page (itself a request: counted), then the metrics once its worker is
    // Idle again: the same state, seen from the pool and from the admin listener.
    let settled = || {
        let m = get(port, "/metrics").body;
        (sample(&m, &www("phpfpm_idle_processes", &fpm)) == Some(2.0)).then_some(m)
    };
    assert!(wait_until(DEADLINE, || settled().is_some()));
    let page = fcgi_status(&fpm);
    let mut m = String::new();
    assert!(wait_until(DEADLINE, || settled().map(|s| m = s).is_some()));
    // php-fpm's `accepted conn` counts reads a worker starts (reference §11): the end of
    // the keep-alive connection was one, the status request another. The finished
    // requests (the histogram, the status classes) count neither.
    let accepted = page["accepted conn"].as_u64().unwrap_or(0);
    assert_eq!(accepted, sent + 2, "{page}");
    let same = [
        ("phpfpm_accepted_connections", "accepted conn"),
        ("phpfpm_max_children_reached", "max children reached"),
        ("phpfpm_slow_requests", "slow requests"),
        ("phpfpm_total_processes", "total processes"),
        ("phpfpm_listen_queue", "listen queue"),
        ("phpfpm_listen_queue_length", "listen queue len"),
    ];
    for (metric, field) in same {
        assert_eq!(
            sample(&m, &www(metric, &fpm)),
            page[field].as_f64(),
            "{metric} vs {field}\n{m}\n{page}"
        );
    }
    // The status request was running when the page was made, not when the metrics were.
    assert_eq!(
        (
            page["active processes"].as_u64(),
            page["idle processes"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(sample(&m, &www("phpfpm_active_processes", &fpm)), Some(0.0));
    // Per worker: the requests each served, as the page lists them.
    for p in page["processes"].as_array().into_iter().flatten() {
        let pid = p["pid"].as_u64().unwrap_or(0);
        let key = format!(
            "phpfpm_process_requests{{pool=\"www\",child=\"{}\",pid=\"{pid}\",scrape_uri=\"unix://{}\"}}",
            page["processes"]
                .as_array()
                .and_then(|a| a.iter().position(|q| q["pid"] == p["pid"]))
                .unwrap_or(0),
            fpm.addr()
        );
        assert_eq!(sample(&m, &key), p["requests"].as_f64(), "{key}\n{m}");
    }
    // The histogram and the status classes count every request once (the status page
    // request too: a 200).
    assert_eq!(
        sample(&m, "rfpm_request_duration_seconds_count{pool=\"www\"}"),
        Some((sent + 1) as f64),
        "{m}"
    );
    assert_eq!(
        sample(
            &m,
            "rfpm_request_duration_seconds_bucket{pool=\"www\",le=\"+Inf\"}"
        ),
        Some((sent + 1) as f64)
    );
    let class = |c: &str| {
        sample(
            &m,
            &format!("rfpm_requests_total{{pool=\"www\",status=\"{c}\"}}"),
        )
    };
    assert_eq!(class("2xx"), Some((ok_count + 1) as f64), "{m}");
    assert_eq!(class("3xx"), Some(1.0));
    assert_eq!(class("4xx"), Some(1.0));
    assert_eq!(class("5xx"), Some(1.0));
    // No X-Request-Start was sent: the queue histogram is empty.
    assert_eq!(
        sample(&m, "rfpm_request_queue_seconds_count{pool=\"www\"}"),
        Some(0.0)
    );
}

/// `X-Request-Start` (nginx: `fastcgi_param HTTP_X_REQUEST_START "t=${msec}";`) feeds the
/// queue histogram: a request the web server received 2 s ago waited between 1 and 2.5 s.
#[test]
fn x_request_start_feeds_the_queue_histogram() {
    let (b, port) = with_admin(Fpm::builder(Kind::Rfpm));
    let fpm = start(b);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let t = format!("t={:.3}", now - 2.0);
    ok(fpm.send(&Req::get("hello.php").param("HTTP_X_REQUEST_START", &t)));
    // Milliseconds work too (an older web server's form).
    let ms = format!("t={}", ((now - 2.0) * 1000.0) as u64);
    ok(fpm.send(&Req::get("hello.php").param("HTTP_X_REQUEST_START", &ms)));
    // Garbage is ignored.
    ok(fpm.send(&Req::get("hello.php").param("HTTP_X_REQUEST_START", "t=soon")));
    let m = get(port, "/metrics").body;
    let b = |le: &str| {
        sample(
            &m,
            &format!("rfpm_request_queue_seconds_bucket{{pool=\"www\",le=\"{le}\"}}"),
        )
    };
    assert_eq!(
        sample(&m, "rfpm_request_queue_seconds_count{pool=\"www\"}"),
        Some(2.0),
        "{m}"
    );
    assert_eq!(b("1"), Some(0.0), "{m}");
    assert_eq!(b("2.5"), Some(2.0), "{m}");
    let sum = sample(&m, "rfpm_request_queue_seconds_sum{pool=\"www\"}").unwrap_or(0.0);
    assert!((4.0..5.0).contains(&sum), "{sum}\n{m}");
}

/// A running request: `slices.php` for `secs` seconds, started (its file written).
struct Busy {
    _dir: tempfile::TempDir,
}

impl Busy {
    fn start<'s>(
        s: &'s std::thread::Scope<'s, '_>,
        fpm: &'s Fpm,
        secs: u32,
    ) -> (
        Busy,
        std::thread::ScopedJoinHandle<'s, Result<Response, String>>,
    ) {
        let dir = ok(tempfile::tempdir());
        let started = dir.path().join("started");
        let q = format!("started={}&secs={secs}", started.display());
        let h = s.spawn(move || {
            fpm.send(&Req::get("slices.php").query(&q))
                .map_err(|e| e.to_string())
        });
        assert!(
            wait_for_file(&started, DEADLINE),
            "never started\n{}",
            fpm.log()
        );
        (Busy { _dir: dir }, h)
    }
}

/// With every worker busy the admin listener still answers, and shows the request.
#[test]
fn answers_while_every_worker_is_busy() {
    let (b, port) = with_admin(Fpm::builder(Kind::Rfpm).pool_line("pm.max_children = 1"));
    let fpm = start(b);
    std::thread::scope(|s| {
        let (busy, h) = Busy::start(s, &fpm, 3);
        let t = Instant::now();
        assert_eq!(get(port, "/health").code, 200);
        let m = get(port, "/metrics").body;
        let v = json(port);
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert_eq!(
            sample(&m, &www("phpfpm_active_processes", &fpm)),
            Some(1.0),
            "{m}"
        );
        let w = &v["pools"][0]["processes"][0];
        assert_eq!(w["state"], "Running", "{v}");
        assert!(
            w["request uri"]
                .as_str()
                .is_some_and(|u| u.contains("slices.php")),
            "{v}"
        );
        drop(busy);
        let r = h.join().unwrap_or_else(|_| Err("panicked".into()));
        assert!(r.is_ok_and(|r| text_of(&r).contains("done")));
    });
}

/// `/ready` turns 503 as soon as a graceful stop begins (with a request in flight),
/// while `/health` still answers; the request still completes.
#[test]
fn ready_turns_503_during_a_graceful_stop() {
    let (b, port) = with_admin(
        Fpm::builder(Kind::Rfpm)
            .pool_line("pm.max_children = 1")
            .global("process_control_timeout = 20"),
    );
    let fpm = start(b);
    std::thread::scope(|s| {
        let (busy, h) = Busy::start(s, &fpm, 3);
        assert_eq!(get(port, "/ready").code, 200);
        ok(fpm.signal(libc::SIGQUIT));
        ok(fpm.wait_log("NOTICE: Finishing ...", DEADLINE));
        let r = get(port, "/ready");
        assert_eq!(
            (r.code, r.body.as_str()),
            (503, "not ready: the master is finishing\n")
        );
        assert_eq!(get(port, "/health").code, 200);
        let v = json(port);
        assert_eq!(
            (v["rfpm"]["ready"].clone(), v["rfpm"]["state"].clone()),
            (false.into(), "finishing".into())
        );
        drop(busy);
        let r = h.join().unwrap_or_else(|_| Err("panicked".into()));
        assert!(
            r.is_ok_and(|r| text_of(&r).contains("done")),
            "{}",
            fpm.log()
        );
    });
    ok(fpm.wait_exit(DEADLINE));
}

/// A pool that has no worker able to accept and cannot start one on demand makes the
/// master unready: here `process.max` leaves none for the second pool.
#[test]
fn ready_is_503_while_a_pool_has_no_worker() {
    let (b, port) = with_admin(
        Fpm::builder(Kind::Rfpm)
            .global("process.max = 2")
            .pool("second", &["pm = static", "pm.max_children = 1"]),
    );
    let fpm = start(b);
    let r = get(port, "/ready");
    assert_eq!(
        (r.code, r.body.as_str()),
        (503, "not ready: pool second has no worker able to accept\n"),
        "{}",
        fpm.log()
    );
    let v = json(port);
    assert_eq!(v["pools"][0]["ready"], true);
    assert_eq!(v["pools"][1]["ready"], false);
}

/// Worker ends are counted by reason: `pm.max_requests`, a crash signal, and
/// `request_terminate_timeout`; the counters survive the workers.
#[test]
fn worker_restarts_are_counted_by_reason() {
    let (b, port) = with_admin(
        Fpm::builder(Kind::Rfpm)
            .pool_line("pm.max_children = 1")
            .pool_line("pm.max_requests = 2")
            .pool_line("request_terminate_timeout = 1s"),
    );
    let fpm = start(b);
    let reason = |r: &str| {
        let m = get(port, "/metrics").body;
        sample(
            &m,
            &format!("rfpm_worker_restarts_total{{pool=\"www\",reason=\"{r}\"}}"),
        )
    };
    assert_eq!(reason("max_requests"), Some(0.0));
    ok(fpm.request("hello.php", &[]));
    ok(fpm.request("hello.php", &[]));
    assert!(
        wait_until(DEADLINE, || reason("max_requests") == Some(1.0)),
        "{}",
        fpm.log()
    );
    // A crash: SIGKILL from outside.
    ok(fpm.wait_ready());
    let w = fpm.worker_pids();
    assert_eq!(w.len(), 1);
    let _ = rfpm_sys::process::kill(i32::try_from(w[0]).unwrap_or(0), libc::SIGKILL);
    assert!(
        wait_until(DEADLINE, || reason("crash") == Some(1.0)),
        "{}",
        fpm.log()
    );
    // A request past request_terminate_timeout.
    assert!(wait_until(DEADLINE, || fpm.worker_pids().len() == 1));
    let _ = fpm.send(&Req::get("slices.php").query("secs=5"));
    assert!(
        wait_until(DEADLINE, || reason("terminate_timeout") == Some(1.0)),
        "{}",
        fpm.log()
    );
    assert_eq!(reason("exit"), Some(0.0));
    assert_eq!(reason("max_requests"), Some(1.0));
    // The pool's counters outlive its workers: the two answered requests are still
    // there after three workers ended.
    let m = get(port, "/metrics").body;
    let ok2xx = sample(&m, "rfpm_requests_total{pool=\"www\",status=\"2xx\"}");
    assert!(ok2xx.is_some_and(|n| n >= 2.0), "{m}");
}

/// The listener survives hostile clients: 100 malformed requests each get a 4xx and a
/// close, 1,000 idle connections do not lock out a health check, a request that
/// trickles in gets a 408, and the pools serve on; the master's descriptors stay
/// bounded.
#[test]
fn survives_malformed_requests_and_idle_connections() {
    let (b, port) = with_admin(Fpm::builder(Kind::Rfpm));
    let fpm = start(b);
    let long = format!("GET / HTTP/1.1\r\nX-Long: {}\r\n\r\n", "a".repeat(10_000));
    let many: String = (0..100)
        .flat_map(|i| ["X-".to_string(), i.to_string(), ": v\r\n".to_string()])
        .collect();
    let many = format!("GET / HTTP/1.1\r\n{many}\r\n");
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n".to_vec(),
            400,
        ),
        (b"GET\r\n\r\n".to_vec(), 400),
        (b"GET / HTTP/9.9\r\n\r\n".to_vec(), 400),
        (b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n".to_vec(), 400),
        (
            b"POST /metrics HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody".to_vec(),
            400,
        ),
        (
            b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(),
            400,
        ),
        (long.into_bytes(), 431),
        (many.into_bytes(), 431),
        (b"BREW /pot HTTP/1.1\r\n\r\n".to_vec(), 405),
        (vec![0u8; 300], 400),
    ];
    for i in 0..100 {
        let (raw, want) = &cases[i % cases.len()];
        let got = exchange(port, raw);
        let text = String::from_utf8_lossy(&got).into_owned();
        assert!(
            text.starts_with(&format!("HTTP/1.1 {want} ")) && text.contains("Connection: close"),
            "case {}: {text:?}",
            i % cases.len()
        );
    }
    // 1,000 idle connections (the test may need more descriptors than a default limit).
    let _ = rfpm_sys::identity::set_rlimit(rfpm_sys::identity::Rlimit::Files, 4096);
    let idle: Vec<TcpStream> = (0..1000)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    assert!(idle.len() >= 900, "{}", idle.len());
    let h = get(port, "/health");
    assert_eq!(h.code, 200);
    let r = ok(fpm.request("hello.php", &[]));
    assert!(text_of(&r).contains("Hello"));
    let fds = std::fs::read_dir(format!("/proc/{}/fd", fpm.master_pid()))
        .map(|d| d.count())
        .unwrap_or(0);
    assert!(fds < 200, "the master holds {fds} descriptors");
    drop(idle);
    // A client that sends half a request and stops: 408 at the deadline, then closed.
    let mut s = ok(TcpStream::connect(("127.0.0.1", port)));
    ok(s.set_read_timeout(Some(Duration::from_secs(20))));
    ok(s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n"));
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    assert!(text.starts_with("HTTP/1.1 408 "), "{text:?}");
    assert_eq!(get(port, "/health").code, 200);
    assert!(fpm.exited().ok().flatten().is_none(), "{}", fpm.log());
}

/// The admin listener crosses a reload: same port, generation 2 in `/status`, and the
/// counters of the pools start again with the new generation.
#[test]
fn the_admin_listener_crosses_a_reload() {
    let (b, port) = with_admin(Fpm::builder(Kind::Rfpm));
    let fpm = start(b);
    assert_eq!(json(port)["rfpm"]["generation"], 1);
    ok(fpm.signal(libc::SIGUSR2));
    assert!(
        wait_until(DEADLINE, || {
            std::panic::catch_unwind(|| json(port)["rfpm"]["generation"] == 2).unwrap_or(false)
        }),
        "{}",
        fpm.log()
    );
    assert!(wait_until(DEADLINE, || get(port, "/ready").code == 200));
    let r = ok(fpm.request("hello.php", &[]));
    assert!(text_of(&r).contains("Hello"));
}

/// A worker holds neither the admin listener nor an admin connection: the sockets the
/// master holds (beyond the pool's) are not among the worker's descriptors, also for a
/// worker started while an admin connection was open.
#[test]
fn workers_hold_no_admin_socket() {
    let (b, port) = with_admin(Fpm::builder(Kind::Rfpm).pool_line("pm.max_children = 1"));
    let fpm = start(b);
    let mut open = ok(TcpStream::connect(("127.0.0.1", port)));
    ok(open.write_all(b"GET /health HTTP/1.1\r\n\r\n"));
    let first = fpm.worker_pids()[0];
    let _ = integration::send_signal(first, libc::SIGKILL);
    assert!(wait_until(DEADLINE, || {
        let w = fpm.worker_pids();
        w.len() == 1 && w[0] != first
    }));
    let worker = fpm.worker_pids()[0];
    // It served a request: it is past its start-up.
    ok(fpm.request("hello.php", &[]));
    let master = integration::fd_links(fpm.master_pid());
    let links = integration::fd_links(worker);
    let sockets: Vec<&String> = master.iter().filter(|l| l.starts_with("socket:")).collect();
    // The pool's socket is shared; the admin listener and the connection are not.
    let shared = sockets.iter().filter(|s| links.contains(s)).count();
    assert_eq!(shared, 1, "master {sockets:?}\nworker {links:?}");
    assert!(sockets.len() >= 3, "{sockets:?}");
    drop(open);
}

/// `admin.listen` on a Unix socket, with its mode; removed when the master exits.
#[test]
fn a_unix_admin_socket() {
    let dir = ok(tempfile::tempdir());
    let path: PathBuf = dir.path().join("admin.sock");
    let fpm = start(
        Fpm::builder(Kind::Rfpm)
            .global(format!("admin.listen = {}", path.display()))
            .global("admin.listen.mode = 0600"),
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(&ok(std::fs::metadata(&path)).permissions());
    assert_eq!(mode & 0o777, 0o600);
    let mut s = ok(std::os::unix::net::UnixStream::connect(&path));
    ok(s.write_all(b"GET /health HTTP/1.0\r\n\r\n"));
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert!(String::from_utf8_lossy(&out).ends_with("\r\n\r\nok\n"));
    ok(fpm.signal(libc::SIGQUIT));
    ok(fpm.wait_exit(DEADLINE));
    assert!(!path.exists());
}
