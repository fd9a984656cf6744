//! worker-symfony: the same Symfony 5.4 app (tests/fixtures/symfony, Debian's packages)
//! served three ways in one run: php-fpm8.2 with its classic front controller, rfpm with
//! the classic front controller, rfpm in worker mode (`worker.script`, the worker front
//! controller), issue 16.
//!
//! worker-symfony --rfpm PATH [--php-fpm PATH] [--secs N] [--rounds N] [--mem N] [--out FILE]
//!                [--readme FILE]
//!
//! `--readme`: the medians and the memory line replace what stands between
//! `<!-- worker-bench:begin -->` and `<!-- worker-bench:end -->` in FILE.
//!
//! Each setup: pm = static, 2 workers, OPcache on, the extensions Symfony needs; the
//! load generator (4 connections, one request each) asks for the app's `/` route (a JSON
//! response from a controller) for N seconds after a warm-up; every response is checked.
//! Reported: requests per second, p50/p99 latency, and the CPU time (user + system of the
//! master and its workers, from /proc) per request; rounds alternate the setups. Then
//! memory: one worker-mode worker's RSS after a warm-up and after `--mem` (3000) more
//! requests.
#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use bench::load::{self, BodyCheck, Expect, Spec};
use fcgi::client::{Addr, ClientRequest};

/// A setup: its name, its FPM binary, whether it runs in worker mode.
struct Setup<'a> {
    name: &'static str,
    bin: &'a Path,
    worker: bool,
}

fn app_dir() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/symfony");
    // php-fpm takes a path with `..` for an unknown script.
    p.canonicalize().unwrap_or(p)
}

struct Running {
    child: Child,
    sock: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = rfpm_sys::process::kill(pid, libc::SIGQUIT);
        }
        let _ = self.child.wait();
    }
}

fn start(s: &Setup<'_>, children: usize) -> Result<Running, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let d = dir.path();
    let sock = d.join("fpm.sock");
    let app = app_dir();
    let mut pool = format!(
        "[global]\nerror_log = {}\npid = {}\n[www]\nlisten = {}\npm = static\n\
         pm.max_children = {children}\nenv[APP_VAR_DIR] = {}\n",
        d.join("fpm.log").display(),
        d.join("fpm.pid").display(),
        sock.display(),
        d.display()
    );
    if s.worker {
        let _ = writeln!(
            pool,
            "worker.script = {}",
            app.join("public/worker.php").display()
        );
    }
    std::fs::write(d.join("fpm.conf"), pool).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(s.bin);
    cmd.arg("-n");
    for e in ["ctype", "iconv", "tokenizer", "mbstring"] {
        cmd.arg("-d").arg(format!("extension={e}"));
    }
    for d in [
        "zend_extension=opcache.so",
        "opcache.enable=1",
        "opcache.validate_timestamps=0",
        "opcache.memory_consumption=64",
        "display_errors=0",
        "log_errors=1",
        "memory_limit=128M",
    ] {
        cmd.arg("-d").arg(d);
    }
    let child = cmd
        .args(["-R", "-F", "-y"])
        .arg(d.join("fpm.conf"))
        .current_dir(d)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", s.bin.display()))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sock.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(Running {
        child,
        sock,
        _dir: dir,
    })
}

fn request() -> ClientRequest {
    let public = app_dir().join("public");
    let script = public.join("index.php").display().to_string();
    ClientRequest::new()
        .param("SCRIPT_FILENAME", &script)
        .param("SCRIPT_NAME", "/index.php")
        .param("REQUEST_URI", "/")
        .param("DOCUMENT_ROOT", public.display().to_string())
        .param("REQUEST_METHOD", "GET")
        .param("SERVER_PROTOCOL", "HTTP/1.1")
        .param("SERVER_NAME", "localhost")
        .param("HTTP_HOST", "localhost")
}

fn spec(sock: &Path, concurrency: usize, count: Option<u64>, secs: Option<f64>) -> Spec {
    Spec {
        addr: Addr::Unix(sock.to_path_buf()),
        concurrency,
        count,
        duration: secs.map(Duration::from_secs_f64),
        keep_alive: false,
        request: request(),
        expect: Expect {
            status: 200,
            body: BodyCheck::Contains(b"\"served\"".to_vec()),
        },
        timeout: Duration::from_secs(10),
    }
}

struct Figures {
    rps: f64,
    p50: u32,
    p99: u32,
    cpu_us_per_req: f64,
    errors: u64,
}

fn measure(s: &Setup<'_>, secs: f64) -> Result<Figures, String> {
    let r = start(s, 2)?;
    // Warm-up: the cache is built, OPcache filled, the workers booted.
    let warm = load::run(&spec(&r.sock, 2, Some(200), None));
    if warm.ok == 0 {
        return Err(format!("{}: no answer ({:?})", s.name, warm.first_error));
    }
    let master = r.child.id();
    let before = bench::mem::tree_ticks(master);
    let out = load::run(&spec(&r.sock, 4, None, Some(secs)));
    let after = bench::mem::tree_ticks(master);
    let tick = rfpm_sys::time::clock_ticks_per_sec() as f64;
    let cpu_us = (after.saturating_sub(before)) as f64 / tick * 1e6;
    Ok(Figures {
        rps: out.rps(),
        p50: out.p(50.0),
        p99: out.p(99.0),
        cpu_us_per_req: if out.ok > 0 {
            cpu_us / out.ok as f64
        } else {
            0.0
        },
        errors: out.errors,
    })
}

/// One worker-mode worker's RSS (KiB) after a warm-up and after `n` more requests.
fn memory(rfpm: &Path, n: u64) -> Result<(u64, u64), String> {
    let s = Setup {
        name: "rfpm worker",
        bin: rfpm,
        worker: true,
    };
    let r = start(&s, 1)?;
    let _ = load::run(&spec(&r.sock, 1, Some(100), None));
    let worker = bench::mem::children(r.child.id())
        .into_iter()
        .next()
        .ok_or("no worker")?;
    let before = bench::mem::rss_kib(worker).ok_or("no RSS")?;
    let out = load::run(&spec(&r.sock, 1, Some(n), None));
    if out.errors > 0 {
        return Err(format!("errors: {:?}", out.first_error));
    }
    if bench::mem::children(r.child.id()).first() != Some(&worker) {
        return Err("the worker was replaced during the run".into());
    }
    let after = bench::mem::rss_kib(worker).ok_or("no RSS")?;
    Ok((before, after))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut rfpm = None;
    let mut phpfpm = None;
    let (mut secs, mut rounds, mut mem_n) = (5.0f64, 3usize, 3000u64);
    let mut out = None;
    let mut readme = None;
    let mut i = 0;
    while i + 1 < args.len() {
        match args[i].as_str() {
            "--rfpm" => rfpm = Some(PathBuf::from(&args[i + 1])),
            "--php-fpm" => phpfpm = Some(PathBuf::from(&args[i + 1])),
            "--secs" => secs = args[i + 1].parse().unwrap_or(5.0f64).clamp(0.5, 60.0),
            "--rounds" => rounds = args[i + 1].parse().unwrap_or(3).clamp(1, 10),
            "--mem" => mem_n = args[i + 1].parse().unwrap_or(3000).clamp(100, 100_000),
            "--out" => out = Some(PathBuf::from(&args[i + 1])),
            "--readme" => readme = Some(PathBuf::from(&args[i + 1])),
            _ => {}
        }
        i += 2;
    }
    let Some(rfpm) = rfpm else {
        eprintln!("usage: worker-symfony --rfpm PATH [--php-fpm PATH] [--secs N] [--rounds N] [--mem N] [--out FILE]");
        return ExitCode::from(2);
    };
    // Debian's php-fpm of the PHP rfpm was built for, unless given.
    let phpfpm = phpfpm.unwrap_or_else(|| bench::reference_fpm(&rfpm));
    let setups = [
        Setup {
            name: "php-fpm8.2 classic",
            bin: &phpfpm,
            worker: false,
        },
        Setup {
            name: "rfpm classic",
            bin: &rfpm,
            worker: false,
        },
        Setup {
            name: "rfpm worker mode",
            bin: &rfpm,
            worker: true,
        },
    ];
    let mut text = String::from(
        "| round | setup | req/s | p50 | p99 | CPU per request | errors |\n|---|---|---:|---:|---:|---:|---:|\n",
    );
    let mut rps = vec![Vec::new(); setups.len()];
    let mut cpu = vec![Vec::new(); setups.len()];
    for r in 1..=rounds {
        for (k, s) in setups.iter().enumerate() {
            match measure(s, secs) {
                Ok(f) => {
                    let _ = writeln!(
                        text,
                        "| {r} | {} | {:.0} | {} | {} | {} | {} |",
                        s.name,
                        f.rps,
                        bench::stats::fmt_us(f64::from(f.p50)),
                        bench::stats::fmt_us(f64::from(f.p99)),
                        bench::stats::fmt_us(f.cpu_us_per_req),
                        f.errors
                    );
                    rps[k].push(f.rps);
                    cpu[k].push(f.cpu_us_per_req);
                }
                Err(e) => {
                    eprintln!("{}: {e}", s.name);
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    let med = |v: &[f64]| bench::stats::median(v);
    let base_rps = med(&rps[0]);
    let base_cpu = med(&cpu[0]);
    let mut medians = String::from(
        "| setup | req/s | × php-fpm8.2 | CPU per request | × php-fpm8.2 |\n|---|---:|---:|---:|---:|\n",
    );
    for (k, s) in setups.iter().enumerate() {
        let (r, c) = (med(&rps[k]), med(&cpu[k]));
        let _ = writeln!(
            medians,
            "| {} | {r:.0} | {:.2} | {} | {:.2} |",
            s.name,
            if base_rps > 0.0 { r / base_rps } else { 0.0 },
            bench::stats::fmt_us(c),
            if base_cpu > 0.0 { c / base_cpu } else { 0.0 }
        );
    }
    let mem_line = match memory(&rfpm, mem_n) {
        Ok((before, after)) => format!(
            "Memory: one worker-mode worker, RSS {before} KiB after 100 requests, {after} KiB after {mem_n} more ({:+} KiB, {:.2} KiB per 1000 requests).",
            after as i64 - before as i64,
            (after as f64 - before as f64) * 1000.0 / mem_n as f64
        ),
        Err(e) => {
            eprintln!("memory: {e}");
            return ExitCode::FAILURE;
        }
    };
    let _ = write!(
        text,
        "\nMedians, as ratios to php-fpm8.2 classic:\n\n{medians}\n{mem_line}\n"
    );
    if let Some(path) = readme {
        let date = Command::new("date")
            .args(["-u", "+%Y-%m-%d %H:%M UTC"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        let block = format!(
            "Last `make bench-worker` (date: {date}; method in [bench/WORKER.md](bench/WORKER.md)): the same Symfony 5.4 app, medians of {rounds} rounds of {secs} s, 2 workers, 4 connections:\n\n{medians}\n{mem_line}\n"
        );
        if let Err(e) = replace_block(&path, "worker-bench", &block) {
            eprintln!("{}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    bench::print_and_save(&text, out.as_deref())
}

/// Replaces what stands between `<!-- NAME:begin -->` and `<!-- NAME:end -->` in `path`.
fn replace_block(path: &Path, name: &str, block: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let (begin, end) = (
        format!("<!-- {name}:begin -->\n"),
        format!("<!-- {name}:end -->"),
    );
    let (Some(b), Some(e)) = (text.find(&begin), text.find(&end)) else {
        return Err(format!("no {begin} … {end} markers"));
    };
    if e < b {
        return Err("markers out of order".into());
    }
    let new = format!("{}{begin}{block}{}", &text[..b], &text[e..]);
    std::fs::write(path, new).map_err(|e| e.to_string())
}
