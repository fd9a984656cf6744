//! capture-cpu: what a worker's output costs the master (`catch_workers_output = yes`),
//! rfpm beside php-fpm8.2 in one run (issue `harden`, item 6).
//!
//! capture-cpu --rfpm PATH [--php-fpm PATH] [--rounds N] [--mb N] [--out FILE]
//!
//! One static worker writes N MB (default 100) to stderr in lines of 100 bytes; reported
//! per FPM and round: the master's CPU time (user + system, from /proc) while it reads
//! and logs that output, per MB, and the size of the error log it wrote. Rounds alternate
//! rfpm, php-fpm8.2.
#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use fcgi::client::{Addr, Client, ClientRequest};

/// The error log's size once it stops growing (the master has logged everything).
fn settled_size(log: &Path) -> u64 {
    let mut last = u64::MAX;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let now = std::fs::metadata(log).map_or(0, |m| m.len());
        if now == last {
            return now;
        }
        last = now;
        std::thread::sleep(Duration::from_millis(300));
    }
    last
}

fn round(bin: &Path, dir: &Path, mb: usize) -> Result<(f64, u64), String> {
    let conf = dir.join("fpm.conf");
    let sock = dir.join("fpm.sock");
    let log = dir.join("fpm.log");
    let pidf = dir.join("fpm.pid");
    std::fs::write(
        &conf,
        format!(
            "[global]\nerror_log = {}\npid = {}\n[www]\nlisten = {}\npm = static\n\
             pm.max_children = 1\ncatch_workers_output = yes\n",
            log.display(),
            pidf.display(),
            sock.display()
        ),
    )
    .map_err(|e| e.to_string())?;
    let script = dir.join("spew.php");
    std::fs::write(
        &script,
        format!(
            "<?php $chunk = str_repeat(str_repeat('a', 99) . \"\\n\", 10000); \
             $fd = fopen('php://stderr', 'w'); \
             for ($i = 0; $i < {}; $i++) fwrite($fd, $chunk); echo 'done';",
            mb
        ),
    )
    .map_err(|e| e.to_string())?;
    let mut child = Command::new(bin)
        .args(["-n", "-R", "-F", "-y"])
        .arg(&conf)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sock.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = child.id();
    let before = bench::mem::cpu_ticks(pid).ok_or("no /proc stat")?;
    let size_before = settled_size(&log);
    let mut c = Client::connect(&Addr::Unix(sock.clone())).map_err(|e| e.to_string())?;
    c.set_timeout(Some(Duration::from_secs(120)))
        .map_err(|e| e.to_string())?;
    let s = script.display().to_string();
    let req = ClientRequest::new()
        .param("SCRIPT_FILENAME", &s)
        .param("SCRIPT_NAME", "/spew.php")
        .param("REQUEST_METHOD", "GET");
    let body = c.request(&req).map_err(|e| e.to_string())?;
    if body.body() != b"done" {
        return Err(format!("unexpected answer {:?}", body.stdout_str()));
    }
    let size = settled_size(&log).saturating_sub(size_before);
    let after = bench::mem::cpu_ticks(pid).ok_or("no /proc stat")?;
    let _ = rfpm_sys::process::kill(
        i32::try_from(pid).map_err(|e| e.to_string())?,
        libc::SIGQUIT,
    );
    let _ = child.wait();
    let tick = rfpm_sys::time::clock_ticks_per_sec() as f64;
    Ok(((after - before) as f64 / tick, size))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut rfpm = None;
    let mut phpfpm = None;
    let (mut rounds, mut mb) = (3usize, 100usize);
    let mut out = None;
    let mut i = 0;
    while i + 1 < args.len() {
        match args[i].as_str() {
            "--rfpm" => rfpm = Some(PathBuf::from(&args[i + 1])),
            "--php-fpm" => phpfpm = Some(PathBuf::from(&args[i + 1])),
            "--rounds" => rounds = args[i + 1].parse().unwrap_or(3).clamp(1, 10),
            "--mb" => mb = args[i + 1].parse().unwrap_or(100).clamp(1, 1000),
            "--out" => out = Some(PathBuf::from(&args[i + 1])),
            _ => {}
        }
        i += 2;
    }
    let Some(rfpm) = rfpm else {
        eprintln!(
            "usage: capture-cpu --rfpm PATH [--php-fpm PATH] [--rounds N] [--mb N] [--out FILE]"
        );
        return ExitCode::from(2);
    };
    // Debian's php-fpm of the PHP rfpm was built for, unless given.
    let phpfpm = phpfpm.unwrap_or_else(|| bench::reference_fpm(&rfpm));
    let phpfpm_name = bench::bin_name(&phpfpm);
    let mut text = format!(
        "| round | FPM | master CPU for {mb} MB | per MB | error log written |\n|---|---|---:|---:|---:|\n"
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
            match round(bin, dir.path(), mb) {
                Ok((secs, size)) => {
                    let _ = writeln!(
                        text,
                        "| {r} | {name} | {secs:.2} s | {:.1} ms | {size} bytes |",
                        secs * 1000.0 / mb as f64
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
