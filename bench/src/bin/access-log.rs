//! access-log: what a JSON access log costs per request, against the plain one
//! (`access.log_format = json` beside php-fpm's `access.format` line), rfpm alone.
//!
//! access-log --rfpm PATH [--rounds N] [--secs N] [--out FILE]
//!
//! rfpm runs 2 static workers on a Unix socket with an access log (the default
//! `access.format`, or `access.log_format = json`); a kept-alive load of 2 connections
//! sends hello-world requests with nginx's params (an `X-Request-Id` on every other
//! round's requests is not needed: the id is generated) for N seconds (default 3, at most
//! 20). Reported per round and format: requests per second, CPU time (user + system of
//! master and workers, /proc) per request, and the bytes of access log per request;
//! then the medians of the per-round ratios json/plain. Rounds alternate plain, json.
#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use bench::load::{self, BodyCheck, Expect, Spec};
use fcgi::client::{Addr, ClientRequest};

struct Round {
    rps: f64,
    cpu_us_per_req: f64,
    log_bytes_per_req: f64,
}

fn round(bin: &Path, json: bool, secs: u64) -> Result<Round, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let d = dir.path();
    let sock = d.join("fpm.sock");
    let conf = d.join("fpm.conf");
    let access = d.join("access.log");
    std::fs::write(
        &conf,
        format!(
            "[global]\nerror_log = {}\n[www]\nlisten = {}\npm = static\npm.max_children = 2\n\
             access.log = {}\n{}",
            d.join("fpm.log").display(),
            sock.display(),
            access.display(),
            if json {
                "access.log_format = json\n"
            } else {
                ""
            }
        ),
    )
    .map_err(|e| e.to_string())?;
    let script = d.join("hello.php");
    std::fs::write(&script, "<?php echo 'Hello, World!';").map_err(|e| e.to_string())?;
    let mut child = Command::new(bin)
        .args(["-n", "-R", "-F", "-O", "-y"])
        .arg(&conf)
        .current_dir(d)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sock.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut request = ClientRequest::new();
    for (k, v) in [
        ("QUERY_STRING", "a=1&b=\"two\""),
        ("REQUEST_METHOD", "GET"),
        ("CONTENT_TYPE", ""),
        ("CONTENT_LENGTH", ""),
        ("SCRIPT_NAME", "/hello.php"),
        ("REQUEST_URI", "/hello.php?a=1&b=\"two\""),
        ("DOCUMENT_URI", "/hello.php"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("GATEWAY_INTERFACE", "CGI/1.1"),
        ("REMOTE_ADDR", "192.0.2.7"),
        ("REMOTE_PORT", "54321"),
        ("SERVER_NAME", "localhost"),
        ("HTTP_HOST", "localhost"),
    ] {
        request = request.param(k, v);
    }
    request = request
        .param("DOCUMENT_ROOT", d.display().to_string())
        .param("SCRIPT_FILENAME", script.display().to_string());
    let spec = |duration: Duration| Spec {
        addr: Addr::Unix(sock.clone()),
        concurrency: 2,
        count: None,
        duration: Some(duration),
        keep_alive: true,
        request: request.clone(),
        expect: Expect {
            status: 200,
            body: BodyCheck::Exact(b"Hello, World!".to_vec()),
        },
        timeout: Duration::from_secs(5),
    };
    // Warm-up (not measured).
    let _ = load::run(&spec(Duration::from_millis(500)));
    let master = child.id();
    let size0 = std::fs::metadata(&access).map_or(0, |m| m.len());
    let t0 = bench::mem::tree_ticks(master);
    let out = load::run(&spec(Duration::from_secs(secs)));
    let t1 = bench::mem::tree_ticks(master);
    let size1 = std::fs::metadata(&access).map_or(0, |m| m.len());
    let _ = rfpm_sys::process::kill(
        i32::try_from(master).map_err(|e| e.to_string())?,
        libc::SIGTERM,
    );
    let _ = child.wait();
    if out.errors > 0 || out.ok == 0 {
        return Err(format!(
            "{} errors, first: {:?}",
            out.errors, out.first_error
        ));
    }
    let tick_us = 1_000_000.0 / rfpm_sys::time::clock_ticks_per_sec().max(1) as f64;
    Ok(Round {
        rps: out.rps(),
        cpu_us_per_req: (t1.saturating_sub(t0)) as f64 * tick_us / out.ok as f64,
        log_bytes_per_req: size1.saturating_sub(size0) as f64 / out.ok as f64,
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut rfpm = None;
    let mut rounds = 5usize;
    let mut secs = 3u64;
    let mut out = None;
    let mut i = 0;
    while i + 1 < args.len() {
        match args[i].as_str() {
            "--rfpm" => rfpm = Some(PathBuf::from(&args[i + 1])),
            "--rounds" => rounds = args[i + 1].parse().unwrap_or(5).clamp(1, 20),
            "--secs" => secs = args[i + 1].parse().unwrap_or(3).clamp(1, 20),
            "--out" => out = Some(PathBuf::from(&args[i + 1])),
            _ => {}
        }
        i += 2;
    }
    let Some(rfpm) = rfpm else {
        eprintln!("usage: access-log --rfpm PATH [--rounds N] [--secs N] [--out FILE]");
        return ExitCode::from(2);
    };
    let mut text = String::from(
        "| round | access log | req/s | CPU per request | log bytes per request |\n|---|---|---:|---:|---:|\n",
    );
    let (mut rps_ratios, mut cpu_ratios) = (Vec::new(), Vec::new());
    for r in 1..=rounds {
        let mut pair = Vec::new();
        for json in [false, true] {
            match round(&rfpm, json, secs) {
                Ok(m) => {
                    let _ = writeln!(
                        text,
                        "| {r} | {} | {:.0} | {:.1} µs | {:.0} |",
                        if json { "json" } else { "plain" },
                        m.rps,
                        m.cpu_us_per_req,
                        m.log_bytes_per_req
                    );
                    pair.push(m);
                }
                Err(e) => {
                    eprintln!("round {r}: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        if let [plain, json] = pair.as_slice() {
            rps_ratios.push(json.rps / plain.rps);
            cpu_ratios.push(json.cpu_us_per_req / plain.cpu_us_per_req.max(f64::MIN_POSITIVE));
        }
    }
    let _ = writeln!(
        text,
        "\njson/plain, median of the per-round ratios: req/s {:.3}, CPU per request {:.3}",
        bench::stats::median(&rps_ratios),
        bench::stats::median(&cpu_ratios)
    );
    bench::print_and_save(&text, out.as_deref())
}
