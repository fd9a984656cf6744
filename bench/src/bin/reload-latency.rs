//! reload-latency: what a reload costs the requests that arrive during it, rfpm beside
//! php-fpm8.2 in one run (issue `reload`).
//!
//! reload-latency --rfpm PATH [--php-fpm PATH] [--rounds N] [--out FILE]
//!
//! Each FPM runs 4 static workers (`process_control_timeout = 10s`, Unix socket). Three
//! clients send short requests in a loop; a 3 s request is in flight (it sleeps in
//! slices, so the workers' QUIT does not cut it short) when SIGUSR2 arrives. Reported per
//! FPM and round: the longest short-request latency during the reload, the short
//! requests that failed, whether the slow one completed, and how many short requests
//! were answered in the 3 s. Rounds alternate rfpm, php-fpm8.2. Bounded: each round lasts
//! at most 15 s.
#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fcgi::client::{Addr, Client, ClientRequest};

/// One round's figures.
struct Round {
    max_short_ms: f64,
    failed: usize,
    answered: usize,
    slow_completed: bool,
}

fn request(sock: &Path, script: &Path) -> Result<Vec<u8>, String> {
    let mut c = Client::connect(&Addr::Unix(sock.to_path_buf())).map_err(|e| e.to_string())?;
    c.set_timeout(Some(Duration::from_secs(15)))
        .map_err(|e| e.to_string())?;
    let s = script.display().to_string();
    let req = ClientRequest::new()
        .param("SCRIPT_FILENAME", &s)
        .param("SCRIPT_NAME", "/x.php")
        .param("REQUEST_METHOD", "GET")
        .param("QUERY_STRING", "");
    c.request(&req)
        .map(|r| r.body().to_vec())
        .map_err(|e| e.to_string())
}

fn start(bin: &Path, dir: &Path, conf: &Path, sock: &Path) -> Result<Child, String> {
    let _ = std::fs::remove_file(sock);
    let child = Command::new(bin)
        .args(["-n", "-R", "-F", "-O", "-y"])
        .arg(conf)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if sock.exists() {
            return Ok(child);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(format!("{} did not open {}", bin.display(), sock.display()))
}

fn round(bin: &Path, dir: &Path) -> Result<Round, String> {
    let conf = dir.join("fpm.conf");
    let sock = dir.join("fpm.sock");
    std::fs::write(
        &conf,
        format!(
            "[global]\nerror_log = {}\npid = {}\nprocess_control_timeout = 10s\n\
             [www]\nlisten = {}\npm = static\npm.max_children = 4\n",
            dir.join("fpm.log").display(),
            dir.join("fpm.pid").display(),
            sock.display()
        ),
    )
    .map_err(|e| e.to_string())?;
    let short = dir.join("short.php");
    let slow = dir.join("slow.php");
    let started = dir.join("slow-started");
    let _ = std::fs::remove_file(&started);
    std::fs::write(&short, "<?php echo 'ok';").map_err(|e| e.to_string())?;
    std::fs::write(
        &slow,
        format!(
            "<?php touch('{}'); $t = microtime(true); \
             while (microtime(true) - $t < 3) usleep(20000); echo 'slow';",
            started.display()
        ),
    )
    .map_err(|e| e.to_string())?;
    let mut child = start(bin, dir, &conf, &sock)?;
    let pid = i32::try_from(child.id()).map_err(|e| e.to_string())?;
    let stop = AtomicBool::new(false);
    let max_us = AtomicU64::new(0);
    let failed = AtomicUsize::new(0);
    let answered = AtomicUsize::new(0);
    let measuring = AtomicBool::new(false);
    let result = std::thread::scope(|s| {
        let slow_h = s.spawn(|| request(&sock, &slow));
        let deadline = Instant::now() + Duration::from_secs(5);
        while !started.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let clients: Vec<_> = (0..3)
            .map(|_| {
                s.spawn(|| {
                    // Bounded: 200,000 requests per client at most (the window is ~4 s).
                    for _ in 0..200_000 {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let t = Instant::now();
                        let ok = request(&sock, &short).is_ok_and(|b| b == b"ok");
                        if measuring.load(Ordering::Relaxed) {
                            let us = u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX);
                            max_us.fetch_max(us, Ordering::Relaxed);
                            if ok {
                                answered.fetch_add(1, Ordering::Relaxed);
                            } else {
                                failed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        measuring.store(true, Ordering::Relaxed);
        let _ = rfpm_sys::process::kill(pid, libc::SIGUSR2);
        let slow_ok = slow_h
            .join()
            .ok()
            .and_then(Result::ok)
            .is_some_and(|b| b == b"slow");
        // A little more after the slow request, then stop.
        std::thread::sleep(Duration::from_millis(300));
        measuring.store(false, Ordering::Relaxed);
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            let _ = c.join();
        }
        slow_ok
    });
    let _ = rfpm_sys::process::kill(pid, libc::SIGQUIT);
    let _ = child.wait();
    Ok(Round {
        max_short_ms: max_us.load(Ordering::Relaxed) as f64 / 1000.0,
        failed: failed.load(Ordering::Relaxed),
        answered: answered.load(Ordering::Relaxed),
        slow_completed: result,
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut rfpm = None;
    let mut phpfpm = None;
    let mut rounds = 3usize;
    let mut out = None;
    let mut i = 0;
    while i + 1 < args.len() {
        match args[i].as_str() {
            "--rfpm" => rfpm = Some(PathBuf::from(&args[i + 1])),
            "--php-fpm" => phpfpm = Some(PathBuf::from(&args[i + 1])),
            "--rounds" => rounds = args[i + 1].parse().unwrap_or(3).clamp(1, 10),
            "--out" => out = Some(PathBuf::from(&args[i + 1])),
            _ => {}
        }
        i += 2;
    }
    let Some(rfpm) = rfpm else {
        eprintln!("usage: reload-latency --rfpm PATH [--php-fpm PATH] [--rounds N] [--out FILE]");
        return ExitCode::from(2);
    };
    // Debian's php-fpm of the PHP rfpm was built for, unless given.
    let phpfpm = phpfpm.unwrap_or_else(|| bench::reference_fpm(&rfpm));
    let phpfpm_name = bench::bin_name(&phpfpm);
    let mut text = String::from(
        "| round | FPM | longest short request during the reload | short requests failed | answered in the window | 3 s request completed |\n|---|---|---:|---:|---:|---|\n",
    );
    for r in 1..=rounds {
        for (name, bin) in [("rfpm", &rfpm), (phpfpm_name.as_str(), &phpfpm)] {
            let dir = match tempfile::tempdir() {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("tempdir: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match round(bin, dir.path()) {
                Ok(x) => {
                    let _ = writeln!(
                        text,
                        "| {r} | {name} | {:.1} ms | {} | {} | {} |",
                        x.max_short_ms,
                        x.failed,
                        x.answered,
                        if x.slow_completed { "yes" } else { "no" }
                    );
                }
                Err(e) => {
                    eprintln!("{name}: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    bench::print_and_save(&text, out.as_deref())
}
