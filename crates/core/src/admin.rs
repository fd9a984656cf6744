//! The admin listener's HTTP (rfpm): requests parsed with `httparse` under fixed
//! bounds, the routes, the responses, and the `/status` JSON document. Pure: the master
//! owns the sockets (`crates/rfpm/src/master/admin.rs`) and hands bytes in and out.
//!
//! Only `GET` and `HEAD` without a body are served; a connection may carry several
//! requests one after another (HTTP/1.1 keep-alive), never pipelined ahead of an answer
//! the master has not yet written.
use crate::metrics::{EndReason, PoolMetrics};
use serde_json::{json, Map, Value};

/// Most bytes a request head (request line and headers) may take: past this, 431.
pub const MAX_HEAD: usize = 8192;
/// Most header fields a request may carry: past this, 431.
pub const MAX_HEADERS: usize = 32;

/// An HTTP method the listener tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Other,
}

/// A request head, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// The path, without the query string.
    pub path: String,
    pub accept: Option<String>,
    /// The connection stays open after the answer.
    pub keep_alive: bool,
    /// Bytes of the buffer the head took.
    pub len: usize,
}

/// What the bytes received so far make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parse {
    /// More bytes are needed (and may come: the head is under [`MAX_HEAD`]).
    Incomplete,
    Request(Request),
    /// A request that is refused with this status; the connection closes after it.
    Refuse(u16),
}

/// Parses the head at the start of `buf`.
pub fn parse(buf: &[u8]) -> Parse {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => return Parse::Refuse(431),
        Ok(httparse::Status::Partial) => return Parse::Incomplete,
        Err(httparse::Error::TooManyHeaders) => return Parse::Refuse(431),
        Err(_) => return Parse::Refuse(400),
    };
    if len > MAX_HEAD {
        return Parse::Refuse(431);
    }
    let method = match req.method {
        Some("GET") => Method::Get,
        Some("HEAD") => Method::Head,
        _ => Method::Other,
    };
    let mut accept = None;
    let mut connection = String::new();
    for h in req.headers.iter() {
        let value = || String::from_utf8_lossy(h.value).into_owned();
        if h.name.eq_ignore_ascii_case("accept") {
            accept = Some(value());
        } else if h.name.eq_ignore_ascii_case("connection") {
            connection = value().to_ascii_lowercase();
        } else if h.name.eq_ignore_ascii_case("transfer-encoding")
            || (h.name.eq_ignore_ascii_case("content-length")
                && h.value
                    .iter()
                    .any(|&b| b != b'0' && !b.is_ascii_whitespace()))
        {
            // No request here has a body; one that comes cannot be skipped safely.
            return Parse::Refuse(400);
        }
    }
    let has = |token: &str| connection.split(',').any(|t| t.trim() == token);
    let keep_alive = match req.version {
        Some(1) => !has("close"),
        _ => has("keep-alive"),
    };
    let target = req.path.unwrap_or("/");
    let path = target.split('?').next().unwrap_or("/").to_string();
    Parse::Request(Request {
        method,
        path,
        accept,
        keep_alive,
        len,
    })
}

/// The listener's pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `/`: the status page for a browser.
    Page,
    Health,
    Ready,
    Status,
    Metrics,
    NotFound,
}

pub fn route(path: &str) -> Route {
    match path {
        "/" | "/index.html" => Route::Page,
        "/health" => Route::Health,
        "/ready" => Route::Ready,
        "/status" => Route::Status,
        "/metrics" => Route::Metrics,
        _ => Route::NotFound,
    }
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// A whole response. `head_only`: the headers of a `HEAD` request (the length of the
/// body it would have had, no body).
pub fn response(
    code: u16,
    content_type: &str,
    body: &[u8],
    head_only: bool,
    keep_alive: bool,
) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {code} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n",
        reason(code),
        body.len()
    );
    if code == 405 {
        out.push_str("Allow: GET, HEAD\r\n");
    }
    out.push_str(if keep_alive {
        "Connection: keep-alive\r\n\r\n"
    } else {
        "Connection: close\r\n\r\n"
    });
    let mut out = out.into_bytes();
    if !head_only {
        out.extend_from_slice(body);
    }
    out
}

/// A refusal: a short text body, the connection closed after it.
pub fn refusal(code: u16) -> Vec<u8> {
    response(
        code,
        "text/plain; charset=utf-8",
        format!("{}\n", reason(code)).as_bytes(),
        false,
        false,
    )
}

/// What `/status` says besides the pools.
#[derive(Debug, Clone, Copy)]
pub struct Overview<'a> {
    pub version: &'a str,
    pub php_version: &'a str,
    pub pid: i32,
    pub generation: u32,
    /// The master's lifecycle state (`running`, `stopping`, …).
    pub state: &'a str,
    pub ready: bool,
}

/// A pool's `/status` entry besides its metrics.
#[derive(Debug, Clone, Copy)]
pub struct PoolExtra {
    /// `request_slowlog_timeout`, seconds (0: none), for the page to mark slow requests.
    pub slowlog_timeout: u64,
    pub max_children: u64,
    /// Whether the pool can take a request now (see `/ready`).
    pub ready: bool,
}

fn text(b: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(b).into_owned())
}

/// The `/status` document: every pool with the fields of php-fpm's `?json&full` (the
/// same names), and rfpm's own (generation, readiness, resident memory per worker,
/// requests by status class, worker ends by reason).
pub fn status_json(o: &Overview<'_>, pools: &[(PoolMetrics<'_>, PoolExtra)]) -> String {
    let pools: Vec<Value> = pools
        .iter()
        .map(|(m, extra)| {
            let s = m.status;
            let processes: Vec<Value> = s
                .procs
                .iter()
                .zip(m.rss.iter().chain(std::iter::repeat(&None)))
                .map(|(p, rss)| {
                    let mut uri = p.uri.clone();
                    if !p.query.is_empty() {
                        uri.push(b'?');
                        uri.extend_from_slice(&p.query);
                    }
                    json!({
                        "pid": p.pid,
                        "state": p.state,
                        "start time": p.start_time,
                        "start since": p.start_since,
                        "requests": p.requests,
                        "request duration": p.duration,
                        "request method": text(if p.method.is_empty() { b"-" } else { &p.method }),
                        "request uri": text(if uri.is_empty() { b"-" } else { &uri }),
                        "content length": p.content_length,
                        "user": text(if p.user.is_empty() { b"-" } else { &p.user }),
                        "script": text(if p.script.is_empty() { b"-" } else { &p.script }),
                        "last request cpu": (p.cpu * 100.0).round() / 100.0,
                        "last request memory": p.memory,
                        "rss": rss,
                        "draining": p.draining,
                    })
                })
                .collect();
            let mut restarts = Map::new();
            for (r, n) in EndReason::ALL.iter().zip(m.restarts) {
                restarts.insert(r.label().to_string(), json!(n));
            }
            let mut responses = Map::new();
            for (class, n) in ["1xx", "2xx", "3xx", "4xx", "5xx"].iter().zip(m.responses) {
                responses.insert((*class).to_string(), json!(n));
            }
            json!({
                "pool": s.pool_text(),
                "process manager": s.pm,
                "start time": s.start_time,
                "start since": s.start_since,
                "accepted conn": s.accepted,
                "listen queue": s.listen_queue,
                "max listen queue": s.max_listen_queue,
                "listen queue len": s.listen_queue_len,
                "idle processes": s.idle,
                "active processes": s.active,
                "total processes": s.idle + s.active,
                "max active processes": s.max_active,
                "max children reached": s.max_children_reached,
                "slow requests": s.slow_requests,
                "generation": o.generation,
                "ready": extra.ready,
                "max children": extra.max_children,
                "request slowlog timeout": extra.slowlog_timeout,
                "socket": m.scrape_uri,
                "responses": responses,
                "restarts": restarts,
                "processes": processes,
            })
        })
        .collect();
    let doc = json!({
        "rfpm": {
            "version": o.version,
            "php version": o.php_version,
            "pid": o.pid,
            "generation": o.generation,
            "state": o.state,
            "ready": o.ready,
        },
        "pools": pools,
    });
    let mut s = doc.to_string();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(s: &str) -> Request {
        match parse(s.as_bytes()) {
            Parse::Request(r) => r,
            other => panic!("{s:?}: {other:?}"),
        }
    }

    #[test]
    fn heads() {
        let r = req("GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept: text/plain\r\n\r\nGET");
        assert_eq!(r.method, Method::Get);
        assert_eq!(r.path, "/metrics");
        assert_eq!(r.accept.as_deref(), Some("text/plain"));
        assert!(r.keep_alive);
        assert_eq!(
            r.len,
            "GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept: text/plain\r\n\r\n".len()
        );
        assert!(!req("GET / HTTP/1.1\r\nConnection: Close\r\n\r\n").keep_alive);
        assert!(!req("GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(req("HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive);
        assert_eq!(req("POST / HTTP/1.1\r\n\r\n").method, Method::Other);
        assert_eq!(
            req("GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n").method,
            Method::Get
        );
    }

    #[test]
    fn refusals() {
        assert_eq!(parse(b"GET / HTTP/1.1\r\nHost: a"), Parse::Incomplete);
        assert_eq!(parse(b"\x00\x01garbage\r\n\r\n"), Parse::Refuse(400));
        assert_eq!(
            parse(b"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"),
            Parse::Refuse(400)
        );
        assert_eq!(
            parse(b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Parse::Refuse(400)
        );
        let many: String = (0..40)
            .flat_map(|i| ["X-".to_string(), i.to_string(), ": v\r\n".to_string()])
            .collect();
        assert_eq!(
            parse(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()),
            Parse::Refuse(431)
        );
        let long = format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(MAX_HEAD));
        assert_eq!(parse(long.as_bytes()), Parse::Refuse(431));
    }

    #[test]
    fn responses() {
        let r = String::from_utf8(response(200, "text/plain", b"ok\n", false, true)).unwrap();
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(r.contains("Content-Length: 3\r\n"));
        assert!(r.ends_with("Connection: keep-alive\r\n\r\nok\n"));
        let h = String::from_utf8(response(200, "text/plain", b"ok\n", true, false)).unwrap();
        assert!(h.contains("Content-Length: 3\r\n") && h.ends_with("\r\n\r\n"));
        assert!(String::from_utf8(refusal(405))
            .unwrap()
            .contains("Allow: GET, HEAD\r\n"));
    }

    #[test]
    fn routes() {
        assert_eq!(route("/health"), Route::Health);
        assert_eq!(route("/"), Route::Page);
        assert_eq!(route("/metrics/"), Route::NotFound);
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_parse_without_panic(b in proptest::collection::vec(proptest::num::u8::ANY, 0..2000)) {
            match parse(&b) {
                Parse::Request(r) => proptest::prop_assert!(r.len <= b.len()),
                Parse::Incomplete => proptest::prop_assert!(b.len() < MAX_HEAD),
                Parse::Refuse(c) => proptest::prop_assert!(c == 400 || c == 431),
            }
        }
    }
}
