//! Issue 14, rfpm's own directives: `shutdown.drain` (SIGTERM lets the running requests
//! finish), `pm.max_requests_jitter` (each worker's limit differs) and `pm.max_memory`
//! (the master recycles a worker whose resident memory is too large, and says so). The
//! fast stop they leave alone is checked against php-fpm8.2 too.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use integration::helpers::{ok, pid_of, start, text_of};
use integration::{both, wait_for_file, wait_until, Fpm, FpmBuilder, Kind, Req, DEADLINE};

/// Starts a wait.php request (it waits in 10 ms slices for `go`, at most ~10 s), signals
/// the master with `sig` once the script runs, waits for `announce` in the log, then
/// creates `go`. Returns the request's body (`Err`: the request failed) and the master's
/// exit code.
fn signal_during_a_request(fpm: &Fpm, sig: i32, announce: &str) -> (Result<String, String>, i32) {
    let dir = ok(tempfile::tempdir());
    let (started, go) = (dir.path().join("started"), dir.path().join("go"));
    let q = format!("started={}&go={}", started.display(), go.display());
    let body = std::thread::scope(|s| {
        let h = s.spawn(|| {
            fpm.send(&Req::get("wait.php").query(&q))
                .map(|r| text_of(&r))
                .map_err(|e| e.to_string())
        });
        assert!(
            wait_for_file(&started, DEADLINE),
            "the request never started\n{}",
            fpm.log()
        );
        ok(fpm.signal(sig));
        ok(fpm.wait_log(announce, DEADLINE));
        ok(std::fs::write(&go, b"go"));
        h.join().unwrap_or_else(|_| Err("panicked".into()))
    });
    let status = ok(fpm.wait_exit(DEADLINE));
    (body, status.code().unwrap_or(-1))
}

fn one_worker(kind: Kind) -> FpmBuilder {
    Fpm::builder(kind)
        .pool_line("pm.max_children = 1")
        // Time to drain in: without it the busy worker gets SIGTERM at once.
        .global("process_control_timeout = 10")
}

// php-fpm's SIGTERM (no shutdown.drain): a fast stop, the running request is cut.
both!(sigterm_cuts_the_running_request, |kind| {
    let fpm = start(one_worker(kind));
    let (body, code) = signal_during_a_request(&fpm, libc::SIGTERM, "NOTICE: Terminating ...");
    assert!(
        !body.as_deref().unwrap_or("").contains("go=seen"),
        "{body:?}\n{}",
        fpm.log()
    );
    assert_eq!(code, 0);
    assert!(fpm.log_contains("NOTICE: exiting, bye-bye!"));
});

/// With `shutdown.drain = yes` SIGTERM is a graceful stop: the running request finishes
/// with its whole body (it saw the go file written after the stop began), then the
/// master exits 0.
#[test]
fn shutdown_drain_lets_the_running_request_finish_on_sigterm() {
    let fpm = start(one_worker(Kind::Rfpm).global("shutdown.drain = yes"));
    let w = fpm.worker_pids();
    let (body, code) = signal_during_a_request(&fpm, libc::SIGTERM, "NOTICE: Finishing ...");
    let body = ok(body);
    assert!(body.contains("go=seen"), "{body}\n{}", fpm.log());
    assert!(body.contains(&format!("pid={}", w[0])), "{body}");
    assert_eq!(code, 0);
    let log = fpm.log();
    assert!(!log.contains("Terminating"), "{log}");
    assert!(log.contains("NOTICE: exiting, bye-bye!"), "{log}");
    assert!(!log.contains("exited on signal"), "{log}");
}

/// SIGINT stays a fast stop with `shutdown.drain = yes` (Ctrl-C; the way to cut a drain
/// short).
#[test]
fn shutdown_drain_leaves_sigint_a_fast_stop() {
    let fpm = start(one_worker(Kind::Rfpm).global("shutdown.drain = yes"));
    let (body, code) = signal_during_a_request(&fpm, libc::SIGINT, "NOTICE: Terminating ...");
    assert!(
        !body.as_deref().unwrap_or("").contains("go=seen"),
        "{body:?}\n{}",
        fpm.log()
    );
    assert_eq!(code, 0);
}

/// `pm.max_requests = 5` with `pm.max_requests_jitter = 50`: each worker serves its own
/// limit, somewhere in 5..=55, and they are not all the same. Requests go one at a time,
/// so when the master has logged a worker's exit every request it served was counted.
#[test]
fn max_requests_jitter_gives_each_worker_its_own_limit() {
    let fpm = start(
        Fpm::builder(Kind::Rfpm)
            .pool_line("pm.max_children = 4")
            .pool_line("pm.max_requests = 5")
            .pool_line("pm.max_requests_jitter = 50"),
    );
    let mut served: BTreeMap<u32, u64> = BTreeMap::new();
    let until = Instant::now() + Duration::from_secs(60);
    let limits = loop {
        let pid = pid_of(&ok(fpm.request("pid.php", &[])));
        assert!(pid > 0);
        *served.entry(pid).or_default() += 1;
        let log = fpm.log();
        let done: Vec<u64> = served
            .iter()
            .filter(|(pid, _)| log.contains(&format!("child {pid} exited with code 0")))
            .map(|(_, &n)| n)
            .collect();
        if done.len() >= 4 {
            break done;
        }
        assert!(
            Instant::now() < until,
            "fewer than 4 workers replaced: {served:?}\n{log}"
        );
    };
    assert!(limits.iter().all(|n| (5..=55).contains(n)), "{limits:?}");
    assert!(
        limits.iter().any(|&n| n != limits[0]),
        "every worker served {} requests: {limits:?}",
        limits[0]
    );
}

/// `pm.max_memory`: a worker that keeps its memory after its requests (PHP's allocator
/// keeps as many chunks as its requests use on average) is recycled; the master's notice
/// gives the figure it read, and a new worker serves.
#[test]
fn max_memory_recycles_a_worker_and_says_why() {
    let fpm = start(
        Fpm::builder(Kind::Rfpm)
            .pool_line("pm.max_children = 1")
            .pool_line("pm.max_memory = 40M"),
    );
    let first = pid_of(&ok(fpm.request("pid.php", &[])));
    assert!(first > 0);
    let notice = format!("NOTICE: [pool www] child {first} exceeded pm.max_memory (");
    // Heavy requests (each ~96 MB at its peak) until the idle worker keeps more than the
    // limit, as the test reads it from /proc; then the master's next pass recycles it.
    let rss = || rfpm_sys::procfs::rss_bytes(i32::try_from(first).unwrap_or(0)).unwrap_or(0);
    let until = Instant::now() + DEADLINE;
    while !fpm.log_contains(&notice) && rss() <= 40 << 20 {
        assert!(
            Instant::now() < until,
            "still {} bytes\n{}",
            rss(),
            fpm.log()
        );
        let r = ok(fpm.request("memory.php", &[]));
        assert!(text_of(&r).contains("peak="), "{}", text_of(&r));
    }
    ok(fpm.wait_log(&notice, DEADLINE));
    ok(fpm.wait_log(
        &format!("NOTICE: [pool www] child {first} exited with code 0 after "),
        DEADLINE,
    ));
    // The figure: more than the limit, in MiB.
    let log = fpm.log();
    let line = log
        .lines()
        .find(|l| l.contains(&notice))
        .unwrap_or_default();
    let figure = line
        .split_once(&notice)
        .and_then(|(_, rest)| rest.split_once(" MiB > 40 MiB), recycling"))
        .and_then(|(rss, _)| rss.parse::<f64>().ok());
    assert!(figure.is_some_and(|mib| mib > 40.0), "{line}");
    assert!(wait_until(DEADLINE, || {
        let w = fpm.worker_pids();
        w.len() == 1 && w[0] != first
    }));
    let next = pid_of(&ok(fpm.request("pid.php", &[])));
    assert_ne!(next, first);
    assert!(fpm.log_contains(&format!("NOTICE: [pool www] child {next} started")));
}

/// `rfpm -n -tt` on a configuration of `[global]` lines and `[www]` lines: the output
/// without timestamps, and the exit code.
fn test_config(global: &str, pool: &str) -> (String, i32) {
    let dir = ok(tempfile::tempdir());
    let conf = dir.path().join("php-fpm.conf");
    let d = dir.path().display();
    ok(std::fs::write(
        &conf,
        format!(
            "[global]\nerror_log = {d}/err.log\n{global}\n[www]\nlisten = {d}/s.sock\n\
             pm = static\npm.max_children = 1\n{pool}\n"
        ),
    ));
    let out = ok(std::process::Command::new(integration::rfpm_bin())
        .args(["-n", "-tt", "-R", "-y"])
        .arg(&conf)
        .stdin(std::process::Stdio::null())
        .output());
    let text: String = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(|l| l.get(23..).unwrap_or(l).replace(&d.to_string(), "@DIR@") + "\n")
        .collect();
    (text, out.status.code().unwrap_or(-1))
}

#[test]
fn config_test_dumps_rfpm_directives_only_when_set() {
    let (unset, code) = test_config("", "");
    assert_eq!(code, 0, "{unset}");
    for name in ["shutdown.drain", "pm.max_requests_jitter", "pm.max_memory"] {
        assert!(!unset.contains(name), "{unset}");
    }
    let (set, code) = test_config(
        "shutdown.drain = yes\nprocess_control_timeout = 30s",
        "pm.max_requests = 500\npm.max_requests_jitter = 50\npm.max_memory = 256M",
    );
    assert_eq!(code, 0, "{set}");
    for line in [
        "NOTICE: \tshutdown.drain = yes\n",
        "NOTICE: \tpm.max_requests = 500\nNOTICE: \tpm.max_requests_jitter = 50\n\
         NOTICE: \tpm.max_memory = 268435456\n",
    ] {
        assert!(set.contains(line), "{line:?} not in\n{set}");
    }
    assert!(!set.contains("WARNING"), "{set}");
    // The rest is the dump without them.
    let without: String = set
        .lines()
        .filter(|l| !l.contains("shutdown.drain") && !l.contains("pm.max_requests_jitter"))
        .filter(|l| !l.contains("pm.max_memory") && !l.contains("process_control_timeout"))
        .filter(|l| !l.contains("pm.max_requests"))
        .flat_map(|l| [l, "\n"])
        .collect();
    let unset_without: String = unset
        .lines()
        .filter(|l| !l.contains("process_control_timeout") && !l.contains("pm.max_requests"))
        .flat_map(|l| [l, "\n"])
        .collect();
    assert_eq!(without, unset_without);
}

#[test]
fn config_test_refuses_invalid_rfpm_values() {
    let cases = [
        (
            "",
            "pm.max_memory = 1.5G",
            "unable to parse value for entry 'pm.max_memory': is not a valid size (greater or equal than zero)",
        ),
        (
            "",
            "pm.max_memory = 64MB",
            "unable to parse value for entry 'pm.max_memory': unknown suffix used in size value (K, M or G)",
        ),
        (
            "",
            "pm.max_requests_jitter = lots",
            "unable to parse value for entry 'pm.max_requests_jitter': is not a valid number (greater or equal than zero)",
        ),
        (
            "",
            "pm.max_requests_jitter = -3",
            "ERROR: [pool www] pm.max_requests_jitter can't be negative",
        ),
        (
            "shutdown.drain = maybe",
            "",
            "unable to parse value for entry 'shutdown.drain': invalid boolean value",
        ),
    ];
    for (global, pool, want) in cases {
        let (out, code) = test_config(global, pool);
        assert_eq!(code, 78, "{global}{pool}: {out}");
        assert!(out.contains(want), "{want:?} not in\n{out}");
        assert!(out.contains("ERROR: FPM initialization failed"), "{out}");
    }
    // A drain without time to drain in is allowed, with a warning.
    let (out, code) = test_config("shutdown.drain = yes", "");
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("WARNING: shutdown.drain has no effect while process_control_timeout is 0"),
        "{out}"
    );
}
