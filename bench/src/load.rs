//! The FastCGI load generator: `concurrency` threads, each with its own connection (one
//! per request, or kept alive), bounded by a request count and by a duration, every
//! response validated (FastCGI status, HTTP status, body, empty stderr). A response that
//! fails validation is an error, not a success.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fcgi::client::{Addr, Client, ClientRequest, Response};

use crate::stats;

/// What a correct response looks like.
#[derive(Debug, Clone)]
pub struct Expect {
    /// HTTP status from the `Status:` header (200 when there is none).
    pub status: u16,
    pub body: BodyCheck,
}

#[derive(Debug, Clone)]
pub enum BodyCheck {
    /// The body must be exactly these bytes.
    Exact(Vec<u8>),
    /// The body must contain these bytes.
    Contains(Vec<u8>),
}

impl Expect {
    /// `None` when the response is correct, else why not.
    pub fn check(&self, r: &Response) -> Option<String> {
        if r.protocol_status != 0 {
            return Some(format!("FastCGI protocol status {}", r.protocol_status));
        }
        if !r.stderr.is_empty() {
            return Some(format!("stderr: {}", r.stderr_str().trim_end()));
        }
        let status = r.status();
        if status != self.status {
            return Some(format!("status {status}, expected {}", self.status));
        }
        let body = r.body();
        let ok = match &self.body {
            BodyCheck::Exact(e) => body == e.as_slice(),
            BodyCheck::Contains(e) => body.windows(e.len().max(1)).any(|w| w == e.as_slice()),
        };
        if ok {
            None
        } else {
            let shown: String = String::from_utf8_lossy(body).chars().take(200).collect();
            Some(format!("unexpected body ({} bytes): {shown:?}", body.len()))
        }
    }
}

/// One load run.
#[derive(Debug, Clone)]
pub struct Spec {
    pub addr: Addr,
    pub concurrency: usize,
    /// Stop after this many requests (sent, answered or failed).
    pub count: Option<u64>,
    /// Stop after this long; always bounded: [`MAX_DURATION`] when not given.
    pub duration: Option<Duration>,
    pub keep_alive: bool,
    pub request: ClientRequest,
    pub expect: Expect,
    /// Per-request read/write timeout.
    pub timeout: Duration,
}

/// The longest a run may last whatever it is asked.
pub const MAX_DURATION: Duration = Duration::from_secs(120);
/// Latency samples kept per thread (beyond that, requests are counted but not sampled).
const MAX_SAMPLES_PER_THREAD: usize = 2_000_000;

#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub ok: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    /// Latencies of the correct responses, microseconds, sorted.
    pub latencies_us: Vec<u32>,
}

impl Outcome {
    pub fn rps(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.ok as f64 / s
        } else {
            0.0
        }
    }
    pub fn p(&self, pct: f64) -> u32 {
        stats::percentile(&self.latencies_us, pct)
    }
}

/// Runs the load and returns what happened. Errors are counted, never fatal.
pub fn run(spec: &Spec) -> Outcome {
    let mut req = spec.request.clone();
    req.keep_conn = spec.keep_alive;
    let wire = match req.encode() {
        Ok(w) => Arc::new(w),
        Err(e) => {
            return Outcome {
                errors: 1,
                first_error: Some(format!("cannot encode the request: {e}")),
                ..Outcome::default()
            }
        }
    };
    let duration = spec.duration.unwrap_or(MAX_DURATION).min(MAX_DURATION);
    let start = Instant::now();
    let deadline = start + duration;
    let tickets = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let first_error: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let mut handles = Vec::new();
    for _ in 0..spec.concurrency.max(1) {
        let wire = Arc::clone(&wire);
        let tickets = Arc::clone(&tickets);
        let stop = Arc::clone(&stop);
        let first_error = Arc::clone(&first_error);
        let spec = spec.clone();
        let id = req.id;
        handles.push(std::thread::spawn(move || {
            let mut lat = Vec::with_capacity(4096);
            let (mut ok, mut errors) = (0u64, 0u64);
            let mut conn: Option<Client> = None;
            loop {
                if stop.load(Ordering::Relaxed) || Instant::now() >= deadline {
                    break;
                }
                if let Some(max) = spec.count {
                    if tickets.fetch_add(1, Ordering::Relaxed) >= max {
                        break;
                    }
                }
                let t0 = Instant::now();
                let res = one(&spec, &wire, id, &mut conn);
                let dt = t0.elapsed();
                match res.and_then(|r| spec.expect.check(&r).map_or(Ok(()), Err)) {
                    Ok(()) => {
                        ok += 1;
                        if lat.len() < MAX_SAMPLES_PER_THREAD {
                            lat.push(stats::us(dt));
                        }
                    }
                    Err(e) => {
                        errors += 1;
                        conn = None;
                        if let Ok(mut f) = first_error.lock() {
                            f.get_or_insert(e);
                        }
                        // A dead server must not turn the run into a busy loop.
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
                if !spec.keep_alive {
                    conn = None;
                }
            }
            (ok, errors, lat)
        }));
    }
    let mut out = Outcome::default();
    for h in handles {
        match h.join() {
            Ok((ok, errors, lat)) => {
                out.ok += ok;
                out.errors += errors;
                out.latencies_us.extend(lat);
            }
            Err(_) => {
                out.errors += 1;
                stop.store(true, Ordering::Relaxed);
            }
        }
    }
    out.elapsed = start.elapsed();
    out.latencies_us.sort_unstable();
    out.first_error = first_error.lock().ok().and_then(|f| f.clone());
    out
}

/// One request on the thread's connection (opened if there is none).
fn one(spec: &Spec, wire: &[u8], id: u16, conn: &mut Option<Client>) -> Result<Response, String> {
    if conn.is_none() {
        let mut c = Client::connect(&spec.addr).map_err(|e| format!("connect: {e}"))?;
        c.set_timeout(Some(spec.timeout))
            .map_err(|e| format!("timeout: {e}"))?;
        *conn = Some(c);
    }
    let Some(c) = conn.as_mut() else {
        return Err("no connection".into());
    };
    c.send_raw(wire).map_err(|e| format!("send: {e}"))?;
    c.read_response(id).map_err(|e| format!("read: {e}"))
}

/// Sends one request and checks it (for readiness probes and pre-checks).
pub fn probe(
    addr: &Addr,
    req: &ClientRequest,
    expect: &Expect,
    timeout: Duration,
) -> Result<(), String> {
    let mut r = req.clone();
    r.keep_conn = false;
    let wire = r.encode().map_err(|e| e.to_string())?;
    let spec = Spec {
        addr: addr.clone(),
        concurrency: 1,
        count: Some(1),
        duration: Some(timeout),
        keep_alive: false,
        request: r.clone(),
        expect: expect.clone(),
        timeout,
    };
    let mut conn = None;
    let resp = one(&spec, &wire, r.id, &mut conn)?;
    match expect.check(&resp) {
        None => Ok(()),
        Some(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(stdout: &[u8]) -> Response {
        Response {
            stdout: stdout.to_vec(),
            ..Response::default()
        }
    }

    #[test]
    fn validation_rejects_wrong_answers() {
        let e = Expect {
            status: 200,
            body: BodyCheck::Exact(b"hi\n".to_vec()),
        };
        assert!(e
            .check(&resp(b"Content-type: text/html\r\n\r\nhi\n"))
            .is_none());
        assert!(e
            .check(&resp(b"Content-type: text/html\r\n\r\nho\n"))
            .is_some());
        assert!(e
            .check(&resp(b"Status: 500 Internal Server Error\r\n\r\nhi\n"))
            .is_some());
        let mut r = resp(b"\r\n\r\nhi\n");
        r.stderr = b"PHP Warning: x".to_vec();
        assert!(e.check(&r).is_some());
        let mut r = resp(b"\r\n\r\nhi\n");
        r.protocol_status = 3;
        assert!(e.check(&r).is_some());
        let c = Expect {
            status: 404,
            body: BodyCheck::Contains(b"not found".to_vec()),
        };
        assert!(c
            .check(&resp(b"Status: 404 Not Found\r\n\r\nFile gone"))
            .is_some());
        assert!(c
            .check(&resp(b"Status: 404 Not Found\r\n\r\nfile not found."))
            .is_none());
    }

    #[test]
    fn a_dead_address_counts_errors_and_stays_bounded() {
        let dir = std::env::temp_dir().join(format!("fcgi-load-test-{}", std::process::id()));
        let spec = Spec {
            addr: Addr::Unix(dir.join("nobody.sock")),
            concurrency: 2,
            count: Some(10),
            duration: Some(Duration::from_secs(5)),
            keep_alive: false,
            request: ClientRequest::new(),
            expect: Expect {
                status: 200,
                body: BodyCheck::Exact(Vec::new()),
            },
            timeout: Duration::from_secs(1),
        };
        let o = run(&spec);
        assert_eq!(o.ok, 0);
        assert_eq!(o.errors, 10);
        assert!(o.first_error.is_some_and(|e| e.starts_with("connect")));
        assert!(o.latencies_us.is_empty());
    }
}
