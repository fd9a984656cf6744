//! admin-scrape: what a scrape of the admin listener costs rfpm's master (issue 15):
//! `/metrics` and `/status` of a static pool of 1, 8 and 32 workers, before any request
//! and after 20,000 and 40,000 requests served, to show the cost does not grow with
//! traffic.
//!
//! admin-scrape --rfpm PATH [--scrapes K] [--reps R] [--requests N] [--workers 1,8,32]
//!              [--out FILE]
//!
//! Per pool size and endpoint, after 0, N (default 20,000) and 2N hello.php requests
//! served: the median of R (default 3) measurements of K (default 500) scrapes one after
//! another on one kept-alive connection; each measurement takes the master's CPU time
//! (user + system) from `/proc/PID/stat` (clock ticks, 10 ms each) and from
//! `/proc/PID/schedstat` (nanoseconds: the precise figure) before and after, divided by
//! K; the wall time per scrape as the client sees it; the bytes of one answer's body.
//! Every answer is checked (200, the length it announced, the format's first bytes).
//! Loopback and Unix sockets only; every loop is bounded.
#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use bench::load::{self, Spec};
use bench::scripts;
use fcgi::client::Addr;

const DEADLINE: Duration = Duration::from_secs(20);

/// The master's time on a CPU, nanoseconds (`/proc/PID/schedstat`, first field).
fn cpu_ns(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// One kept-alive HTTP/1.1 connection to the admin listener.
struct Http {
    r: BufReader<TcpStream>,
}

impl Http {
    fn connect(port: u16) -> Result<Http, String> {
        let s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
        s.set_read_timeout(Some(DEADLINE))
            .map_err(|e| e.to_string())?;
        s.set_nodelay(true).map_err(|e| e.to_string())?;
        Ok(Http {
            r: BufReader::new(s),
        })
    }

    /// `GET path`; the body of a 200.
    fn get(&mut self, path: &str) -> Result<Vec<u8>, String> {
        let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        self.r
            .get_mut()
            .write_all(req.as_bytes())
            .map_err(|e| format!("send: {e}"))?;
        let mut line = String::new();
        let mut status = 0u16;
        let mut len = None;
        loop {
            line.clear();
            let n = self
                .r
                .read_line(&mut line)
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("connection closed".into());
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if status == 0 {
                status = l
                    .split(' ')
                    .nth(1)
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0);
            } else if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse::<usize>().ok();
                }
            }
        }
        let len = len.ok_or("no Content-Length")?;
        let mut body = vec![0u8; len];
        self.r
            .read_exact(&mut body)
            .map_err(|e| format!("body: {e}"))?;
        if status != 200 {
            return Err(format!("status {status}"));
        }
        Ok(body)
    }
}

/// One rfpm with `workers` static workers and its admin listener.
struct Rfpm {
    child: Child,
    port: u16,
    sock: PathBuf,
    root: PathBuf,
    _dir: tempfile::TempDir,
}

impl Rfpm {
    fn start(bin: &Path, workers: usize) -> Result<Rfpm, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
        let root = dir.path().join("docroot");
        scripts::write_docroot(&root).map_err(|e| format!("docroot: {e}"))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("a free port: {e}"))?
            .port();
        let sock = dir.path().join("fpm.sock");
        let conf = dir.path().join("fpm.conf");
        std::fs::write(
            &conf,
            format!(
                "[global]\nerror_log = {}\npid = {}\nadmin.listen = 127.0.0.1:{port}\n\
                 [www]\nlisten = {}\npm = static\npm.max_children = {workers}\n",
                dir.path().join("fpm.log").display(),
                dir.path().join("fpm.pid").display(),
                sock.display()
            ),
        )
        .map_err(|e| e.to_string())?;
        let child = Command::new(bin)
            .args(["-n", "-R", "-F", "-y"])
            .arg(&conf)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{}: {e}", bin.display()))?;
        let f = Rfpm {
            child,
            port,
            sock,
            root,
            _dir: dir,
        };
        // Ready: every worker is in the status document.
        let deadline = Instant::now() + DEADLINE;
        loop {
            let up = Http::connect(port)
                .and_then(|mut h| h.get("/status"))
                .is_ok_and(|b| total_processes(&String::from_utf8_lossy(&b)) == Some(workers));
            if up {
                return Ok(f);
            }
            if Instant::now() > deadline {
                return Err(format!("rfpm with {workers} workers never showed them all"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Serves `n` hello.php requests (4 clients, a new connection each).
    fn traffic(&self, n: u64) -> Result<(), String> {
        let call = scripts::hello(&self.root);
        let o = load::run(&Spec {
            addr: Addr::Unix(self.sock.clone()),
            concurrency: 4,
            count: Some(n),
            duration: Some(load::MAX_DURATION),
            keep_alive: false,
            request: call.request,
            expect: call.expect,
            timeout: DEADLINE,
        });
        if o.errors > 0 || o.ok != n {
            return Err(format!(
                "traffic: {} ok, {} errors ({})",
                o.ok,
                o.errors,
                o.first_error.unwrap_or_default()
            ));
        }
        Ok(())
    }
}

impl Drop for Rfpm {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = rfpm_sys::process::kill(pid, libc::SIGQUIT);
        }
        let deadline = Instant::now() + DEADLINE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The pool's `"total processes"` in a `/status` document of one pool.
fn total_processes(doc: &str) -> Option<usize> {
    let key = "\"total processes\":";
    let rest = &doc[doc.find(key)? + key.len()..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// A measurement: per scrape, master CPU from stat and from schedstat, wall time, and
/// the bytes of one answer.
struct Cost {
    cpu_stat_us: f64,
    cpu_us: f64,
    wall_us: f64,
    bytes: usize,
}

fn measure(f: &Rfpm, path: &str, k: usize) -> Result<Cost, String> {
    let mut h = Http::connect(f.port)?;
    let first = if path == "/metrics" {
        "# HELP phpfpm_up "
    } else {
        "{\""
    };
    // One answer not measured: the connection is set up, the pages are warm.
    let body = h.get(path)?;
    if !body.starts_with(first.as_bytes()) {
        return Err(format!(
            "{path}: unexpected answer {:?}",
            String::from_utf8_lossy(&body[..body.len().min(100)])
        ));
    }
    let pid = f.pid();
    let (t0, n0, w0) = (
        bench::mem::cpu_ticks(pid).ok_or("no /proc/PID/stat")?,
        cpu_ns(pid).ok_or("no /proc/PID/schedstat")?,
        Instant::now(),
    );
    let mut bytes = 0;
    for _ in 0..k {
        let b = h.get(path)?;
        if !b.starts_with(first.as_bytes()) {
            return Err(format!("{path}: an unexpected answer"));
        }
        bytes = b.len();
    }
    let wall = w0.elapsed();
    let (t1, n1) = (
        bench::mem::cpu_ticks(pid).ok_or("no /proc/PID/stat")?,
        cpu_ns(pid).ok_or("no /proc/PID/schedstat")?,
    );
    let tick_us = 1e6 / rfpm_sys::time::clock_ticks_per_sec() as f64;
    Ok(Cost {
        cpu_stat_us: (t1 - t0) as f64 * tick_us / k as f64,
        cpu_us: (n1 - n0) as f64 / 1e3 / k as f64,
        wall_us: wall.as_secs_f64() * 1e6 / k as f64,
        bytes,
    })
}

/// The median (by CPU) of `reps` measurements: the machine is shared, one burst of
/// another job in one of them does not make the figure.
fn measure_median(f: &Rfpm, path: &str, k: usize, reps: usize) -> Result<Cost, String> {
    let mut all = (0..reps)
        .map(|_| measure(f, path, k))
        .collect::<Result<Vec<_>, _>>()?;
    all.sort_by(|a, b| a.cpu_us.total_cmp(&b.cpu_us));
    let mid = all.len() / 2;
    Ok(all.swap_remove(mid))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut rfpm = None;
    let (mut k, mut requests, mut reps) = (500usize, 20_000u64, 3usize);
    let mut sizes = vec![1usize, 8, 32];
    let mut out = None;
    let mut i = 0;
    while i + 1 < args.len() {
        match args[i].as_str() {
            "--rfpm" => {
                let p = PathBuf::from(&args[i + 1]);
                rfpm = Some(std::fs::canonicalize(&p).unwrap_or(p));
            }
            "--scrapes" => k = args[i + 1].parse().unwrap_or(500).clamp(10, 10_000),
            "--requests" => requests = args[i + 1].parse().unwrap_or(20_000).clamp(1, 200_000),
            "--workers" => {
                sizes = args[i + 1]
                    .split(',')
                    .filter_map(|s| s.parse().ok())
                    .map(|n: usize| n.clamp(1, 128))
                    .collect();
            }
            "--reps" => reps = args[i + 1].parse().unwrap_or(3).clamp(1, 9),
            "--out" => out = Some(PathBuf::from(&args[i + 1])),
            _ => {}
        }
        i += 2;
    }
    let Some(rfpm) = rfpm else {
        eprintln!(
            "usage: admin-scrape --rfpm PATH [--scrapes K] [--reps R] [--requests N] [--workers 1,8,32] [--out FILE]"
        );
        return ExitCode::from(2);
    };
    let mut text = format!(
        "{k} scrapes per measurement on one kept-alive connection, the median of {reps} \
         measurements; master CPU per scrape from /proc/PID/schedstat (from /proc/PID/stat \
         in parentheses: 10 ms ticks).\n\n\
         | workers | endpoint | requests served | µs CPU per scrape | µs wall per scrape | bytes per answer |\n\
         |---:|---|---:|---:|---:|---:|\n"
    );
    for &w in &sizes {
        let f = match Rfpm::start(&rfpm, w) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("admin-scrape: {e}");
                return ExitCode::FAILURE;
            }
        };
        // Requests served so far: none, N, then N more (the figures of the last two
        // must be the same: nothing grows with traffic).
        for (served, more) in [(0, 0), (requests, requests), (2 * requests, requests)] {
            if more > 0 {
                if let Err(e) = f.traffic(more) {
                    eprintln!("admin-scrape: {e}");
                    return ExitCode::FAILURE;
                }
            }
            for path in ["/metrics", "/status"] {
                match measure_median(&f, path, k, reps) {
                    Ok(c) => {
                        let line = format!(
                            "| {w} | `{path}` | {served} | {:.0} ({:.0}) | {:.0} | {} |",
                            c.cpu_us, c.cpu_stat_us, c.wall_us, c.bytes
                        );
                        eprintln!("{line}");
                        let _ = writeln!(text, "{line}");
                    }
                    Err(e) => {
                        eprintln!("admin-scrape: {w} workers, {path}: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
        }
    }
    bench::print_and_save(&text, out.as_deref())
}
