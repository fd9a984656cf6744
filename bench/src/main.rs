//! rfpm-bench: runs rfpm and php-fpm8.2 side by side with the same pool, php.ini and
//! OPcache, scenario by scenario in alternating rounds (A, B, A, B, ...), and reports
//! req/s, p50, p99, the ratio rfpm/php-fpm8.2, CPU per request, memory (PSS, RSS) and
//! start-up time; nginx + wrk end to end; the php-cgi8.2 `-T` in-process floor.
//! Results go to stdout and, between markers, into bench/RESULTS.md and README.md.
//! Every load is bounded in count and time; only Unix sockets and loopback are used.
#![forbid(unsafe_code)]

use std::fs::{self, File};
use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bench::load::{self, Outcome, Spec};
use bench::mem::{self, TreeMem};
use bench::scripts::{self, Call};
use bench::stats::{fmt_us, median};
use bench::wrk;
use fcgi::client::Addr;

const DEADLINE: Duration = Duration::from_secs(15);

struct Opts {
    rfpm: PathBuf,
    php_fpm: PathBuf,
    php_cgi: PathBuf,
    /// `php-embed-floor` (built beside this binary): the same floor through libphp8.2.
    embed_floor: PathBuf,
    secs: f64,
    rounds: usize,
    workers: usize,
    results: Option<PathBuf>,
    readme: Option<PathBuf>,
    only: Option<Vec<String>>,
}

fn parse_opts() -> Result<Opts, String> {
    let mut o = Opts {
        rfpm: PathBuf::from("target/release/rfpm"),
        // Set after the options: Debian's of the PHP rfpm was built for, unless given.
        php_fpm: PathBuf::new(),
        php_cgi: PathBuf::new(),
        embed_floor: std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join("php-embed-floor")))
            .unwrap_or_else(|| PathBuf::from("target/release/php-embed-floor")),
        // Five short rounds rather than three long ones: on the shared 2-core VM a
        // scheduling state (how often workers sleep) can last a whole round and move it
        // by 20 %; more alternations give the median ratio more to stand on.
        secs: 2.0,
        rounds: 5,
        workers: 4,
        results: None,
        readme: None,
        only: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let val = args
            .get(i + 1)
            .ok_or_else(|| format!("{} needs a value", args[i]))?
            .clone();
        match args[i].as_str() {
            "--rfpm" => o.rfpm = val.into(),
            "--php-fpm" => o.php_fpm = val.into(),
            "--php-cgi" => o.php_cgi = val.into(),
            "--embed-floor" => o.embed_floor = val.into(),
            "--secs" => o.secs = val.parse().map_err(|_| "--secs: a number")?,
            "--rounds" => o.rounds = val.parse().map_err(|_| "--rounds: a number")?,
            "--workers" => o.workers = val.parse().map_err(|_| "--workers: a number")?,
            "--results" => o.results = Some(val.into()),
            "--readme" => o.readme = Some(val.into()),
            "--only" => o.only = Some(val.split(',').map(str::to_string).collect()),
            other => return Err(format!("unknown option {other}")),
        }
        i += 2;
    }
    o.secs = o.secs.clamp(0.2, 30.0);
    o.rounds = o.rounds.clamp(1, 10);
    o.workers = o.workers.clamp(1, 64);
    let v = bench::php_mm_of(&o.rfpm);
    if o.php_fpm.as_os_str().is_empty() {
        o.php_fpm = PathBuf::from(format!("/usr/sbin/php-fpm{v}"));
    }
    if o.php_cgi.as_os_str().is_empty() {
        o.php_cgi = PathBuf::from(format!("/usr/bin/php-cgi{v}"));
    }
    Ok(o)
}

/// The php.ini both FPMs (and the php-cgi floor) get: no php.ini file, the same settings.
fn ini_args() -> Vec<String> {
    [
        "zend_extension=opcache.so",
        "opcache.enable=1",
        "opcache.enable_cli=0",
        "opcache.memory_consumption=128",
        "opcache.file_update_protection=0",
        "opcache.validate_timestamps=1",
        "opcache.revalidate_freq=2",
        "memory_limit=128M",
        "post_max_size=16M",
        "upload_max_filesize=8M",
        "max_execution_time=30",
        "error_reporting=32767",
        "display_errors=1",
        "log_errors=0",
        "expose_php=1",
        "realpath_cache_size=4096K",
    ]
    .iter()
    .flat_map(|s| ["-d".to_string(), s.to_string()])
    .collect()
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Rfpm,
    PhpFpm,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Rfpm => "rfpm",
            Kind::PhpFpm => "php-fpm8.2",
        }
    }
}

/// One running FPM.
struct Fpm {
    kind: Kind,
    dir: PathBuf,
    child: Option<Child>,
}

impl Fpm {
    fn sock(&self) -> PathBuf {
        self.dir.join("fpm.sock")
    }
    fn addr(&self) -> Addr {
        Addr::Unix(self.sock())
    }
    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }
    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default()
    }

    /// Starts the FPM and waits for the first correct answer to hello.php; returns it
    /// with the time from spawn to that answer.
    fn start(
        kind: Kind,
        bin: &Path,
        base: &Path,
        workers: usize,
        hello: &Call,
    ) -> Result<(Fpm, Duration), String> {
        let dir = base.join(kind.name());
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let d = dir.display();
        let conf = format!(
            "[global]\nerror_log = {d}/fpm.log\ndaemonize = no\npid = {d}/fpm.pid\n\n\
             [bench]\nlisten = {d}/fpm.sock\npm = static\npm.max_children = {workers}\n"
        );
        fs::write(dir.join("php-fpm.conf"), conf).map_err(|e| e.to_string())?;
        let stderr = File::create(dir.join("stderr.log")).map_err(|e| e.to_string())?;
        let t0 = Instant::now();
        let child = Command::new(bin)
            .arg("-n")
            .args(ini_args())
            .args(["-R", "-F", "-O", "-y"])
            .arg(dir.join("php-fpm.conf"))
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", bin.display()))?;
        let mut fpm = Fpm {
            kind,
            dir,
            child: Some(child),
        };
        let addr = fpm.addr();
        loop {
            if fpm.sock().exists()
                && load::probe(&addr, &hello.request, &hello.expect, Duration::from_secs(5)).is_ok()
            {
                return Ok((fpm, t0.elapsed()));
            }
            if let Some(c) = fpm.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    return Err(format!("{} exited ({st}):\n{}", kind.name(), fpm.log()));
                }
            }
            if t0.elapsed() > DEADLINE {
                let log = fpm.log();
                fpm.stop();
                return Err(format!(
                    "{} gave no answer within {DEADLINE:?}:\n{log}",
                    kind.name()
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// SIGTERM, wait (bounded), then SIGKILL the master and what is left of its workers.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id();
        let workers = mem::children(pid);
        signal(pid, libc::SIGTERM);
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        if !matches!(child.try_wait(), Ok(Some(_))) {
            let _ = child.kill();
            let _ = child.wait();
        }
        for w in workers {
            // Only our own workers: still children of the master we started, or orphans
            // re-parented elsewhere; check the pid still looks like an FPM before killing.
            let comm = fs::read_to_string(format!("/proc/{w}/cmdline")).unwrap_or_default();
            if comm.contains("fpm") || comm.contains("pool") {
                signal(w, libc::SIGKILL);
            }
        }
    }
}

impl Drop for Fpm {
    fn drop(&mut self) {
        self.stop();
    }
}

fn signal(pid: u32, sig: i32) {
    if let Ok(p) = libc::pid_t::try_from(pid) {
        if p > 0 {
            let _ = rfpm_sys::process::kill(p, sig);
        }
    }
}

/// CPU time (user + system) of a process tree, microseconds.
fn cpu_us(pids: &[u32]) -> u64 {
    let hz = rfpm_sys::time::clock_ticks_per_sec();
    pids.iter()
        .filter_map(|p| fs::read_to_string(format!("/proc/{p}/stat")).ok())
        .filter_map(|s| {
            let rest = s.get(s.rfind(')')? + 2..)?.to_string();
            let f: Vec<&str> = rest.split_whitespace().collect();
            // fields 14 and 15 of stat; index 11 and 12 after "state"
            let u: u64 = f.get(11)?.parse().ok()?;
            let k: u64 = f.get(12)?.parse().ok()?;
            Some((u + k) * 1_000_000 / hz)
        })
        .sum()
}

/// One measured run.
#[derive(Clone, Debug, Default)]
struct Run {
    rps: f64,
    p50: f64,
    p99: f64,
    errors: u64,
    first_error: Option<String>,
    /// FPM CPU time per answered request, µs (NaN when unknown).
    cpu_per_req: f64,
}

impl Run {
    fn from_outcome(o: &Outcome, cpu: u64) -> Run {
        Run {
            rps: o.rps(),
            p50: f64::from(o.p(50.0)),
            p99: f64::from(o.p(99.0)),
            errors: o.errors,
            first_error: o.first_error.clone(),
            cpu_per_req: if o.ok > 0 {
                cpu as f64 / o.ok as f64
            } else {
                f64::NAN
            },
        }
    }
}

struct Scenario {
    name: &'static str,
    what: &'static str,
    concurrency: usize,
    keep_alive: bool,
    call: Call,
}

#[derive(Default)]
struct Row {
    name: String,
    what: String,
    concurrency: usize,
    runs: [Vec<Run>; 2],
}

impl Row {
    fn med(&self, k: usize, f: impl Fn(&Run) -> f64) -> f64 {
        median(&self.runs[k].iter().map(f).collect::<Vec<_>>())
    }
    /// Median of the per-round ratios rfpm/php-fpm of req/s.
    fn ratio(&self) -> f64 {
        let r: Vec<f64> = self.runs[0]
            .iter()
            .zip(&self.runs[1])
            .map(|(a, b)| if b.rps > 0.0 { a.rps / b.rps } else { f64::NAN })
            .collect();
        median(&r)
    }
    fn errors(&self, k: usize) -> u64 {
        self.runs[k].iter().map(|r| r.errors).sum()
    }
}

fn run_load(fpm: &Fpm, sc: &Scenario, secs: f64, count: Option<u64>) -> Run {
    let mut pids = vec![fpm.pid()];
    pids.extend(mem::children(fpm.pid()));
    let cpu0 = cpu_us(&pids);
    let spec = Spec {
        addr: fpm.addr(),
        concurrency: sc.concurrency,
        count,
        duration: Some(Duration::from_secs_f64(secs)),
        keep_alive: sc.keep_alive,
        request: sc.call.request.clone(),
        expect: sc.call.expect.clone(),
        timeout: Duration::from_secs(30),
    };
    let o = load::run(&spec);
    let cpu1 = cpu_us(&pids);
    Run::from_outcome(&o, cpu1.saturating_sub(cpu0))
}

fn wanted(opts: &Opts, name: &str) -> bool {
    match &opts.only {
        None => true,
        Some(l) => l.iter().any(|n| name.starts_with(n.as_str())),
    }
}

fn main() {
    let opts = match parse_opts() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("rfpm-bench: {e}");
            std::process::exit(2);
        }
    };
    match run(&opts) {
        Ok(()) => {}
        Err(e) => {
            eprintln!("rfpm-bench: {e}");
            std::process::exit(1);
        }
    }
}

fn run(opts: &Opts) -> Result<(), String> {
    let started = Instant::now();
    let tmp = tempfile::Builder::new()
        .prefix("rfpm-bench-")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?;
    let base = tmp.path().to_path_buf();
    let root = base.join("docroot");
    scripts::write_docroot(&root).map_err(|e| format!("docroot: {e}"))?;
    let machine = machine_info(opts);
    eprintln!("{machine}");
    let bins = [opts.rfpm.clone(), opts.php_fpm.clone()];
    let kinds = [Kind::Rfpm, Kind::PhpFpm];
    let hello = scripts::hello(&root);

    // Start-up time: alternating fresh starts.
    let mut startup: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..opts.rounds {
        for k in 0..2 {
            let (mut f, t) = Fpm::start(kinds[k], &bins[k], &base, opts.workers, &hello)?;
            startup[k].push(t.as_secs_f64() * 1e6);
            f.stop();
        }
    }
    eprintln!(
        "start-up: rfpm {}, php-fpm8.2 {}",
        fmt_us(median(&startup[0])),
        fmt_us(median(&startup[1]))
    );

    let (a, _) = Fpm::start(Kind::Rfpm, &bins[0], &base, opts.workers, &hello)?;
    let (b, _) = Fpm::start(Kind::PhpFpm, &bins[1], &base, opts.workers, &hello)?;
    let fpms = [&a, &b];
    // Let both settle, then the idle memory.
    std::thread::sleep(Duration::from_millis(300));
    let mem_idle = [mem::tree(a.pid()), mem::tree(b.pid())];

    let w = opts.workers;
    let scenarios = [
        Scenario {
            name: "hello",
            what: "hello world",
            concurrency: w,
            keep_alive: false,
            call: scripts::hello(&root),
        },
        Scenario {
            name: "hello-keepalive",
            what: "hello world, FastCGI keep-alive",
            concurrency: w,
            keep_alive: true,
            call: scripts::hello(&root),
        },
        Scenario {
            name: "json",
            what: "json_encode of 200 records",
            concurrency: w,
            keep_alive: false,
            call: scripts::json(&root),
        },
        Scenario {
            name: "framework",
            what: "autoloader, 150 class files (OPcache)",
            concurrency: w,
            keep_alive: false,
            call: scripts::framework(&root),
        },
        Scenario {
            name: "post-1m",
            what: "POST of a 1 MiB body (php://input)",
            concurrency: w,
            keep_alive: false,
            call: scripts::post(&root),
        },
        Scenario {
            name: "upload-5m",
            what: "5 MiB multipart upload ($_FILES)",
            concurrency: w,
            keep_alive: false,
            call: scripts::upload(&root),
        },
        Scenario {
            name: "finish",
            what: "fastcgi_finish_request() then 20 ms usleep",
            concurrency: w,
            keep_alive: false,
            call: scripts::finish(&root),
        },
        Scenario {
            name: "queue",
            what: "usleep(20 ms), 4x more connections than workers",
            concurrency: 4 * w,
            keep_alive: false,
            call: scripts::sleep(&root),
        },
    ];
    let mut rows = Vec::new();
    for sc in scenarios.iter().filter(|s| wanted(opts, s.name)) {
        let mut row = Row {
            name: sc.name.into(),
            what: sc.what.into(),
            concurrency: sc.concurrency,
            ..Row::default()
        };
        // Warm-up: every worker compiles/caches the script, not measured.
        for f in fpms {
            let warm = run_load(f, sc, 5.0, Some(50 * w as u64));
            if warm.errors > 0 {
                return Err(format!(
                    "{}: warm-up against {} failed: {}\n{}",
                    sc.name,
                    f.kind.name(),
                    warm.first_error.unwrap_or_default(),
                    f.log()
                ));
            }
        }
        for _ in 0..opts.rounds {
            for (k, f) in fpms.iter().enumerate() {
                let r = run_load(f, sc, opts.secs, None);
                eprintln!(
                    "{:<16} {:<10} {:>9.0} req/s  p50 {:>9}  p99 {:>9}  cpu/req {:>9}  errors {}{}",
                    sc.name,
                    f.kind.name(),
                    r.rps,
                    fmt_us(r.p50),
                    fmt_us(r.p99),
                    fmt_us(r.cpu_per_req),
                    r.errors,
                    r.first_error
                        .as_deref()
                        .map(|e| format!(" ({e})"))
                        .unwrap_or_default()
                );
                row.runs[k].push(r);
            }
        }
        rows.push(row);
    }
    let mem_loaded = [mem::tree(a.pid()), mem::tree(b.pid())];

    // nginx + wrk, end to end.
    let mut e2e = Vec::new();
    if wanted(opts, "nginx") {
        match Nginx::start(&base, &root, &[a.sock(), b.sock()]) {
            Ok(mut ngx) => {
                for (path, needle, name) in [
                    (
                        "/hello.php",
                        scripts::HELLO_BODY.trim_end().to_string(),
                        "nginx-hello",
                    ),
                    (
                        "/framework.php",
                        scripts::framework_body().trim_end().to_string(),
                        "nginx-framework",
                    ),
                ] {
                    let mut row = Row {
                        name: name.into(),
                        what: format!("nginx + wrk -c{} GET {path}", 4 * w),
                        concurrency: 4 * w,
                        ..Row::default()
                    };
                    let script = base.join(format!("{name}.lua"));
                    fs::write(&script, wrk::lua_script(&needle)).map_err(|e| e.to_string())?;
                    for k in 0..2 {
                        // Check one answer by hand, then warm up.
                        http_check(ngx.ports[k], path, &needle)?;
                        let _ = wrk_run(ngx.ports[k], path, &script, 4 * w, 1.0);
                    }
                    for _ in 0..opts.rounds {
                        for (k, f) in fpms.iter().enumerate() {
                            let r = wrk_run(ngx.ports[k], path, &script, 4 * w, opts.secs)?;
                            eprintln!(
                                "{:<16} {:<10} {:>9.0} req/s  p50 {:>9}  p99 {:>9}  errors {}",
                                name,
                                f.kind.name(),
                                r.rps,
                                fmt_us(r.p50),
                                fmt_us(r.p99),
                                r.errors
                            );
                            row.runs[k].push(r);
                        }
                    }
                    e2e.push(row);
                }
                ngx.stop();
            }
            Err(e) => eprintln!("nginx + wrk skipped: {e}"),
        }
    }
    drop(a);
    drop(b);

    // The floor: php-cgi8.2 -T, in-process, no FastCGI.
    let floor = floor(opts, &root);

    // What a scrape of the admin listener costs rfpm's master (its own binary).
    let admin = if wanted(opts, "admin-scrape") {
        admin_scrape(opts)
    } else {
        None
    };

    let report = report(
        opts,
        &machine,
        &rows,
        &e2e,
        &mem_idle,
        &mem_loaded,
        &startup,
        &floor,
        started.elapsed(),
    );
    println!("{report}");
    if let Some(p) = &opts.results {
        splice(p, "bench-results", &report)?;
    }
    if let (Some(p), Some(table)) = (&opts.results, &admin) {
        splice(
            p,
            "bench-admin",
            &format!(
                "### Admin listener: the cost of a scrape (generated by `make bench`)\n\n{table}"
            ),
        )?;
    }
    if let Some(p) = &opts.readme {
        splice(
            p,
            "bench-summary",
            &summary(&rows, &e2e, &mem_loaded, &startup, &floor, &machine),
        )?;
    }
    Ok(())
}

/// Runs `admin-scrape` (built beside this binary) on the rfpm under test: its table, or
/// `None` (said on stderr) when it fails.
fn admin_scrape(opts: &Opts) -> Option<String> {
    let bin = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("admin-scrape")))
        .unwrap_or_else(|| PathBuf::from("target/release/admin-scrape"));
    let o = Command::new(&bin)
        .arg("--rfpm")
        .arg(&opts.rfpm)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output();
    match o {
        Ok(o) if o.status.success() => Some(String::from_utf8_lossy(&o.stdout).into_owned()),
        Ok(o) => {
            eprintln!("admin-scrape failed ({}); its table is left out", o.status);
            None
        }
        Err(e) => {
            eprintln!("{}: {e}; its table is left out", bin.display());
            None
        }
    }
}

/// Replaces the text between `<!-- NAME:begin -->` and `<!-- NAME:end -->` in `path`
/// (appends the block when the markers are missing).
fn splice(path: &Path, name: &str, text: &str) -> Result<(), String> {
    let old = fs::read_to_string(path).unwrap_or_default();
    let (b, e) = (
        format!("<!-- {name}:begin -->"),
        format!("<!-- {name}:end -->"),
    );
    let block = format!("{b}\n{}\n{e}", text.trim_end());
    let new = match (old.find(&b), old.find(&e)) {
        (Some(i), Some(j)) if j > i => format!("{}{block}{}", &old[..i], &old[j + e.len()..]),
        _ => format!("{}\n{block}\n", old.trim_end()),
    };
    fs::write(path, new).map_err(|e| format!("{}: {e}", path.display()))
}

fn machine_info(opts: &Opts) -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memk = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| mem::parse_kib_line(&m, "MemTotal:"))
        .unwrap_or(0);
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let date = cmd_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let php = cmd_line(&opts.php_fpm.display().to_string(), &["-n", "-v"]);
    let rev = cmd_line("git", &["describe", "--always", "--dirty"]);
    format!(
        "- date: {date}\n- machine: {cpu}, {cores} cores, {} MiB RAM, Linux {}\n- load average at start: {}\n- php-fpm: {php}\n- rfpm: {} (git {rev}, release build)",
        memk / 1024,
        kernel.trim(),
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        opts.rfpm.display()
    )
}

fn cmd_line(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// The in-process floor of one script: `php-cgi8.2 -T` (Debian's CGI executable) and
/// `php-embed-floor -T` (rfpm's SAPI in libphp8.2, the library rfpm runs PHP in), both
/// with the FPMs' php.ini settings, req/s medians of the rounds (`None`: it failed).
struct FloorRow {
    script: &'static str,
    n: u64,
    cgi: Option<f64>,
    embed: Option<f64>,
    /// Median of the per-round embed/cgi ratios.
    ratio: Option<f64>,
}

type Floor = Vec<FloorRow>;

/// One `-T n` run of `bin`: req/s from its `Elapsed time:` line, `None` when the output
/// is not `n` times the expected body.
fn floor_run(bin: &Path, script: &Path, n: u64, body: &str) -> Option<f64> {
    let t0 = Instant::now();
    let o = Command::new(bin)
        .arg("-n")
        .args(ini_args())
        .args(["-q", "-T", &n.to_string()])
        .arg(script)
        .current_dir(script.parent().unwrap_or(Path::new("/")))
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let wall = t0.elapsed().as_secs_f64();
    if !o.status.success() || o.stdout != body.repeat(n as usize).as_bytes() {
        eprintln!(
            "floor {}: {} gave unexpected output ({} bytes, {}): {}",
            script.display(),
            bin.display(),
            o.stdout.len(),
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        );
        return None;
    }
    let elapsed = String::from_utf8_lossy(&o.stderr)
        .lines()
        .find_map(|l| l.strip_prefix("Elapsed time:"))
        .and_then(|v| v.trim().trim_end_matches("sec").trim().parse::<f64>().ok())
        .filter(|&s| s > 0.0)
        .unwrap_or(wall);
    Some(n as f64 / elapsed)
}

fn floor(opts: &Opts, root: &Path) -> Floor {
    let mut out = Vec::new();
    for (script, n, body) in [
        ("hello.php", 20_000u64, scripts::HELLO_BODY.to_string()),
        ("framework.php", 2_000, scripts::framework_body()),
        ("cpu.php", 500, scripts::cpu_body()),
    ] {
        let path = root.join(script);
        let (mut cgi, mut embed, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        // Alternating, like the FPMs: CGI, embed, CGI, embed, ...
        for _ in 0..opts.rounds {
            let c = floor_run(&opts.php_cgi, &path, n, &body);
            let e = floor_run(&opts.embed_floor, &path, n, &body);
            cgi.extend(c);
            embed.extend(e);
            if let (Some(c), Some(e)) = (c, e) {
                ratios.push(e / c);
            }
        }
        let med = |v: &[f64]| (!v.is_empty()).then(|| median(v));
        let row = FloorRow {
            script,
            n,
            cgi: med(&cgi),
            embed: med(&embed),
            ratio: med(&ratios),
        };
        eprintln!(
            "floor {script}: php-cgi8.2 {:.0} req/s, libphp8.2 (php-embed-floor) {:.0} req/s, ratio {:.3}",
            row.cgi.unwrap_or(0.0),
            row.embed.unwrap_or(0.0),
            row.ratio.unwrap_or(0.0)
        );
        out.push(row);
    }
    out
}

/// One nginx (master_process off, 1 worker) with one server per FPM on free loopback ports.
struct Nginx {
    child: Option<Child>,
    ports: Vec<u16>,
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

impl Nginx {
    fn start(base: &Path, root: &Path, socks: &[PathBuf]) -> Result<Nginx, String> {
        let dir = base.join("nginx");
        fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let d = dir.display();
        let mut servers = String::new();
        let mut ports = Vec::new();
        for s in socks {
            let port = free_port()?;
            ports.push(port);
            servers.push_str(&format!(
                "    server {{
        listen 127.0.0.1:{port} backlog=1024;
        root {root};
        location ~ \\.php$ {{
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            fastcgi_pass unix:{sock};
        }}
    }}
",
                root = root.display(),
                sock = s.display()
            ));
        }
        let conf = format!(
            "daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    keepalive_requests 1000000;
{servers}}}
"
        );
        fs::write(dir.join("nginx.conf"), conf).map_err(|e| e.to_string())?;
        let child = Command::new("/usr/sbin/nginx")
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("nginx: {e}"))?;
        let mut n = Nginx {
            child: Some(child),
            ports,
        };
        let t0 = Instant::now();
        for &p in &n.ports.clone() {
            while TcpStream::connect(("127.0.0.1", p)).is_err() {
                if t0.elapsed() > DEADLINE {
                    n.stop();
                    let log = fs::read_to_string(dir.join("error.log")).unwrap_or_default();
                    return Err(format!("nginx does not accept on {p}: {log}"));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        Ok(n)
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal(c.id(), libc::SIGQUIT);
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One plain HTTP/1.0 GET, checked by hand (status 200 and the body).
fn http_check(port: u16, path: &str, needle: &str) -> Result<(), String> {
    use std::io::Read;
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    s.take(1 << 20)
        .read_to_end(&mut buf)
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&buf);
    if text.starts_with("HTTP/1.1 200") && text.contains(needle) {
        Ok(())
    } else {
        Err(format!("nginx GET {path} on port {port}: {text}"))
    }
}

fn wrk_run(port: u16, path: &str, script: &Path, conns: usize, secs: f64) -> Result<Run, String> {
    let out = Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{conns}"),
            &format!("-d{}s", secs.ceil() as u64),
            "--latency",
            "--timeout",
            "10s",
            "-s",
        ])
        .arg(script)
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("wrk: {e} (make deps installs it)"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let r = wrk::parse(&text).ok_or_else(|| format!("wrk output: {text}"))?;
    Ok(Run {
        rps: r.rps,
        p50: r.p50_us,
        p99: r.p99_us,
        errors: r.errors,
        first_error: (r.errors > 0).then(|| "wrk counted errors".to_string()),
        cpu_per_req: f64::NAN,
    })
}

fn kib(k: u64) -> String {
    format!("{:.1} MiB", k as f64 / 1024.0)
}

fn ratio_str(r: f64) -> String {
    if r.is_nan() {
        "-".into()
    } else {
        format!("{r:.2}")
    }
}

fn table(rows: &[Row], cpu: bool) -> String {
    let mut s = String::from(
        "| scenario | conc | rfpm req/s | php-fpm8.2 req/s | ratio | rfpm p50 | php-fpm p50 | rfpm p99 | php-fpm p99 |",
    );
    s.push_str(if cpu {
        " rfpm CPU/req | php-fpm CPU/req | errors |\n"
    } else {
        " errors |\n"
    });
    s.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    s.push_str(if cpu { "---:|---:|---:|\n" } else { "---:|\n" });
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {:.0} | {:.0} | **{}** | {} | {} | {} | {} |",
            r.name,
            r.concurrency,
            r.med(0, |x| x.rps),
            r.med(1, |x| x.rps),
            ratio_str(r.ratio()),
            fmt_us(r.med(0, |x| x.p50)),
            fmt_us(r.med(1, |x| x.p50)),
            fmt_us(r.med(0, |x| x.p99)),
            fmt_us(r.med(1, |x| x.p99)),
        ));
        if cpu {
            s.push_str(&format!(
                " {} | {} |",
                fmt_us(r.med(0, |x| x.cpu_per_req)),
                fmt_us(r.med(1, |x| x.cpu_per_req))
            ));
        }
        s.push_str(&format!(" {} / {} |\n", r.errors(0), r.errors(1)));
    }
    s
}

fn mem_table(idle: &[TreeMem; 2], loaded: &[TreeMem; 2], startup: &[Vec<f64>; 2]) -> String {
    let row = |name: &str, f: &dyn Fn(&TreeMem) -> u64, m: &[TreeMem; 2]| {
        let (a, b) = (f(&m[0]), f(&m[1]));
        format!(
            "| {name} | {} | {} | {} |\n",
            kib(a),
            kib(b),
            ratio_str(if b > 0 { a as f64 / b as f64 } else { f64::NAN })
        )
    };
    let mut s =
        String::from("| memory / start-up | rfpm | php-fpm8.2 | ratio |\n|---|---:|---:|---:|\n");
    s.push_str(&row(
        "PSS master + workers, idle after start",
        &|m| m.pss_total_kib,
        idle,
    ));
    s.push_str(&row(
        "PSS master + workers, after the scenarios",
        &|m| m.pss_total_kib,
        loaded,
    ));
    s.push_str(&row(
        "RSS per worker (mean), after the scenarios",
        &|m| m.worker_rss_mean_kib,
        loaded,
    ));
    s.push_str(&row(
        "RSS per worker (max), after the scenarios",
        &|m| m.worker_rss_max_kib,
        loaded,
    ));
    s.push_str(&row(
        "RSS master, after the scenarios",
        &|m| m.master_rss_kib,
        loaded,
    ));
    let (a, b) = (median(&startup[0]), median(&startup[1]));
    s.push_str(&format!(
        "| start-up to the first answered request (median) | {} | {} | {} |\n",
        fmt_us(a),
        fmt_us(b),
        ratio_str(a / b)
    ));
    s.push_str(&format!(
        "| workers counted | {} | {} | |\n",
        loaded[0].workers, loaded[1].workers
    ));
    s
}

fn floor_text(floor: &Floor, rows: &[Row]) -> String {
    let rate = |r: Option<f64>| r.map_or("failed".to_string(), |v| format!("{v:.0} req/s"));
    let mut s = String::new();
    for f in floor {
        let (script, n) = (f.script, f.n);
        s.push_str(&format!(
            "- `{script}`, {n} requests in one process, no FastCGI: `php-cgi8.2 -T` **{}**, \
             libphp8.2 through rfpm's SAPI (`php-embed-floor -T`) **{}**",
            rate(f.cgi),
            rate(f.embed)
        ));
        if let Some(ratio) = f.ratio {
            s.push_str(&format!(" (ratio {ratio:.2})"));
        }
        let name = script.trim_end_matches(".php");
        if let Some(r) = rows.iter().find(|r| r.name == name) {
            s.push_str(&format!(
                "; over FastCGI with {} connections: rfpm {:.0}, php-fpm8.2 {:.0} req/s",
                r.concurrency,
                r.med(0, |x| x.rps),
                r.med(1, |x| x.rps)
            ));
        }
        s.push('\n');
    }
    s.push_str(
        "\nThe embed library is what rfpm runs PHP in; php-fpm8.2, like php-cgi8.2, has PHP \
         built into the executable. `cpu.php` is PHP's own work only (no I/O, next to nothing \
         of the SAPI's): its ratio is what the library costs on that work: on scripts whose \
         time is PHP's own, an FPM built on libphp8.2 trails php-fpm8.2 by about that much \
         whatever it does around PHP. hello's ratio is mostly the two SAPIs' own work per \
         request.\n",
    );
    s
}

fn goal(rows: &[Row], loaded: &[TreeMem; 2]) -> String {
    let mut s = String::new();
    for r in rows
        .iter()
        .filter(|r| ["hello", "json", "framework"].contains(&r.name.as_str()))
    {
        let ratio = r.ratio();
        let (p99a, p99b) = (r.med(0, |x| x.p99), r.med(1, |x| x.p99));
        s.push_str(&format!(
            "- {}: req/s ratio {} {} 1.00 — p99 {} {} {}\n",
            r.name,
            ratio_str(ratio),
            if ratio >= 1.0 { "≥" } else { "<" },
            fmt_us(p99a),
            if p99a <= p99b { "≤" } else { ">" },
            fmt_us(p99b)
        ));
    }
    let (a, b) = (loaded[0].pss_total_kib, loaded[1].pss_total_kib);
    s.push_str(&format!(
        "- PSS master + workers: {} {} {}\n",
        kib(a),
        if a <= b { "≤" } else { ">" },
        kib(b)
    ));
    s
}

#[allow(clippy::too_many_arguments)]
fn report(
    opts: &Opts,
    machine: &str,
    rows: &[Row],
    e2e: &[Row],
    idle: &[TreeMem; 2],
    loaded: &[TreeMem; 2],
    startup: &[Vec<f64>; 2],
    floor: &Floor,
    took: Duration,
) -> String {
    let mut s = String::from("## Latest run (generated by `make bench`)\n\n");
    s.push_str(machine);
    s.push_str(&format!(
        "\n- setup: `pm = static`, {} workers each, Unix sockets, `-n` + the same `-d` settings (OPcache on), {} rounds of {} s per scenario, alternating rfpm / php-fpm8.2; medians of the rounds; ratio = median of the per-round rfpm/php-fpm8.2 req/s ratios; CPU/req = user+system time of master+workers per answered request; run took {:.0} s\n\n",
        opts.workers,
        opts.rounds,
        opts.secs,
        took.as_secs_f64()
    ));
    s.push_str("### Direct FastCGI (our load generator, every response validated)\n\n");
    for r in rows {
        s.push_str(&format!("- `{}`: {}\n", r.name, r.what));
    }
    s.push('\n');
    s.push_str(&table(rows, true));
    if !e2e.is_empty() {
        s.push_str("\n### nginx + wrk end to end (every response checked by a wrk Lua script)\n\n");
        s.push_str(&table(e2e, false));
    }
    s.push_str("\n### Memory and start-up\n\n");
    s.push_str(&mem_table(idle, loaded, startup));
    s.push_str("\n### The floor: the same scripts in-process, no FastCGI\n\n");
    s.push_str(&floor_text(floor, rows));
    s.push_str("\n### The goal (hello, JSON, framework; 4 static workers, Unix socket)\n\n");
    s.push_str(&goal(rows, loaded));
    s
}

fn summary(
    rows: &[Row],
    e2e: &[Row],
    loaded: &[TreeMem; 2],
    startup: &[Vec<f64>; 2],
    floor: &Floor,
    machine: &str,
) -> String {
    let date = machine
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("- ");
    let mut s = format!(
        "Last `make bench` ({date}; details, machine and method in [bench/RESULTS.md](bench/RESULTS.md)); ratio = rfpm / php-fpm8.2, higher is better:\n\n"
    );
    let pick: Vec<&Row> = rows
        .iter()
        .chain(e2e)
        .filter(|r| {
            [
                "hello",
                "json",
                "framework",
                "post-1m",
                "upload-5m",
                "nginx-hello",
                "nginx-framework",
            ]
            .contains(&r.name.as_str())
        })
        .collect();
    s.push_str("| scenario | rfpm req/s | php-fpm8.2 req/s | ratio | rfpm p99 | php-fpm p99 |\n|---|---:|---:|---:|---:|---:|\n");
    for r in pick {
        s.push_str(&format!(
            "| {} | {:.0} | {:.0} | **{}** | {} | {} |\n",
            r.name,
            r.med(0, |x| x.rps),
            r.med(1, |x| x.rps),
            ratio_str(r.ratio()),
            fmt_us(r.med(0, |x| x.p99)),
            fmt_us(r.med(1, |x| x.p99))
        ));
    }
    let (a, b) = (loaded[0].pss_total_kib, loaded[1].pss_total_kib);
    s.push_str(&format!(
        "\nPSS master + workers: rfpm {}, php-fpm8.2 {}. Start-up to the first answer: rfpm {}, php-fpm8.2 {}.",
        kib(a),
        kib(b),
        fmt_us(median(&startup[0])),
        fmt_us(median(&startup[1]))
    ));
    if let Some(rps) = floor.first().and_then(|f| f.cgi) {
        s.push_str(&format!(
            " Floor (`php-cgi8.2 -T`, hello in-process): {rps:.0} req/s.\n"
        ));
    }
    s
}
