//! slowloris: normal clients' success under 200 slow-loris connections, php-fpm8.2
//! beside rfpm without and with `request_read_timeout` (issue `harden`).
//!
//! slowloris --rfpm PATH [--php-fpm PATH] [--secs N] [--loris N] [--out FILE]
//!
//! Each FPM runs 4 static workers on a Unix socket. N loris connections (default 200,
//! at most 200) each send a
//! request's bytes one at a time, one byte per connection every 500 ms, and reconnect
//! when the FPM closes them; meanwhile one normal client sends requests one after the
//! other with a 2 s timeout. Reported: the normal client's answered and failed requests
//! and its answers per second over the window (N seconds, default 10). Bounded: 200
//! connections, N ≤ 30 s per FPM.
#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fcgi::client::{Addr, Client, ClientRequest};

fn request(script: &Path) -> ClientRequest {
    ClientRequest::new()
        .param("SCRIPT_FILENAME", script.display().to_string())
        .param("SCRIPT_NAME", "/ok.php")
        .param("REQUEST_METHOD", "GET")
        .param("QUERY_STRING", "")
}

fn run(bin: &Path, extra: &str, secs: u64, loris: usize) -> Result<(usize, usize, f64), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let d = dir.path();
    let sock = d.join("fpm.sock");
    let conf = d.join("fpm.conf");
    std::fs::write(
        &conf,
        format!(
            "[global]\nerror_log = {}\n[www]\nlisten = {}\npm = static\npm.max_children = 4\n{extra}\n",
            d.join("fpm.log").display(),
            sock.display()
        ),
    )
    .map_err(|e| e.to_string())?;
    let script = d.join("ok.php");
    std::fs::write(&script, "<?php echo 'ok';").map_err(|e| e.to_string())?;
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
    let wire = request(&script).encode().map_err(|e| e.to_string())?;
    let stop = AtomicBool::new(false);
    let (ok, failed) = std::thread::scope(|s| {
        // The loris: one thread, `loris` connections, one byte each every 500 ms.
        s.spawn(|| {
            let mut conns: Vec<(Option<UnixStream>, usize)> =
                (0..loris).map(|_| (None, 0)).collect();
            while !stop.load(Ordering::Relaxed) {
                for (conn, sent) in &mut conns {
                    if conn.is_none() {
                        *conn = UnixStream::connect(&sock).ok();
                        *sent = 0;
                        if let Some(c) = conn {
                            let _ = c.set_nonblocking(true);
                        }
                    }
                    let Some(c) = conn else { continue };
                    // Never the last byte: the request stays incomplete.
                    let at = (*sent).min(wire.len() - 2);
                    match c.write(&wire[at..=at]) {
                        Ok(_) => *sent += 1,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(_) => *conn = None,
                    }
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        });
        // Let the loris take the workers.
        std::thread::sleep(Duration::from_secs(2));
        let until = Instant::now() + Duration::from_secs(secs);
        let (mut ok, mut failed) = (0usize, 0usize);
        while Instant::now() < until {
            let answered = Client::connect(&Addr::Unix(sock.clone()))
                .and_then(|mut c| {
                    c.set_timeout(Some(Duration::from_secs(2)))?;
                    Ok(c)
                })
                .ok()
                .and_then(|mut c| c.request(&request(&script)).ok())
                .is_some_and(|r| r.body() == b"ok");
            if answered {
                ok += 1;
            } else {
                failed += 1;
            }
        }
        stop.store(true, Ordering::Relaxed);
        (ok, failed)
    });
    let _ = rfpm_sys::process::kill(
        i32::try_from(child.id()).map_err(|e| e.to_string())?,
        libc::SIGTERM,
    );
    let _ = child.wait();
    Ok((ok, failed, ok as f64 / secs as f64))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut rfpm = None;
    let mut phpfpm = None;
    let mut secs = 10u64;
    let mut loris = 200usize;
    let mut out = None;
    let mut i = 0;
    while i + 1 < args.len() {
        match args[i].as_str() {
            "--rfpm" => rfpm = Some(PathBuf::from(&args[i + 1])),
            "--php-fpm" => phpfpm = Some(PathBuf::from(&args[i + 1])),
            "--secs" => secs = args[i + 1].parse().unwrap_or(10).clamp(2, 30),
            "--loris" => loris = args[i + 1].parse().unwrap_or(200).clamp(1, 200),
            "--out" => out = Some(PathBuf::from(&args[i + 1])),
            _ => {}
        }
        i += 2;
    }
    let Some(rfpm) = rfpm else {
        eprintln!("usage: slowloris --rfpm PATH [--php-fpm PATH] [--secs N] [--out FILE]");
        return ExitCode::from(2);
    };
    // Debian's php-fpm of the PHP rfpm was built for, unless given.
    let phpfpm = phpfpm.unwrap_or_else(|| bench::reference_fpm(&rfpm));
    let phpfpm_name = bench::bin_name(&phpfpm);
    let mut text = format!(
        "| FPM ({loris} loris connections) | normal requests answered in {secs} s | failed (2 s timeout) | answered per second |\n|---|---:|---:|---:|\n"
    );
    for (name, bin, extra) in [
        (phpfpm_name.as_str(), &phpfpm, ""),
        ("rfpm", &rfpm, ""),
        (
            "rfpm, request_read_timeout = 2s",
            &rfpm,
            "request_read_timeout = 2s",
        ),
    ] {
        match run(bin, extra, secs, loris) {
            Ok((ok, failed, rate)) => {
                let _ = writeln!(text, "| {name} | {ok} | {failed} | {rate:.1} |");
            }
            Err(e) => {
                eprintln!("{name}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    bench::print_and_save(&text, out.as_deref())
}
