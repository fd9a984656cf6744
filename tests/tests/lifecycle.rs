//! Process management, signals, timeouts, crashes and worker output (issue `lifecycle`,
//! reference §3, §4, §5, §10), each test against rfpm and php-fpm8.2 with real signals.
#![forbid(unsafe_code)]

use std::path::Path;

use integration::helpers::{count, ok, pid_of, start, text_of};
use integration::{
    both, fd_links, wait_for_file, wait_until, Fpm, FpmBuilder, Kind, Req, DEADLINE,
};

/// A wait.php request that blocks until `go` exists: returns once the script runs.
fn blocked_request<'s>(
    scope: &'s std::thread::Scope<'s, '_>,
    fpm: &'s Fpm,
    dir: &Path,
    n: usize,
    go: &Path,
) -> std::thread::ScopedJoinHandle<'s, Result<String, String>> {
    let started = dir.join(format!("started-{n}"));
    let q = format!("started={}&go={}", started.display(), go.display());
    let h = scope.spawn(move || {
        fpm.send(&Req::get("wait.php").query(&q))
            .map(|r| text_of(&r))
            .map_err(|e| e.to_string())
    });
    assert!(
        wait_for_file(&started, DEADLINE),
        "request {n} never started\n{}",
        fpm.log()
    );
    h
}

/// SIGQUIT to the master while a request runs: the request finishes (its script sees
/// the go file written after the stop began), then the FPM exits with code 0.
fn stop_during_a_request(fpm: &Fpm) {
    let dir = ok(tempfile::tempdir());
    let go = dir.path().join("go");
    std::thread::scope(|s| {
        let h = blocked_request(s, fpm, dir.path(), 0, &go);
        ok(fpm.signal(libc::SIGQUIT));
        ok(fpm.wait_log("NOTICE: Finishing ...", DEADLINE));
        ok(std::fs::write(&go, b"go"));
        let r = h.join().unwrap_or_else(|_| Err("panicked".into()));
        assert!(ok(r).contains("go=seen"), "{}", fpm.log());
    });
    let status = ok(fpm.wait_exit(DEADLINE));
    assert_eq!(status.code(), Some(0));
}

/// Sends `sig` to the pool's only worker, waits until the master logs its death by
/// `sig` (`what`: e.g. `15 (SIGTERM)`) and a new worker has taken its place; the old pid.
fn kill_the_worker(fpm: &Fpm, sig: i32, what: &str) -> u32 {
    let w = fpm.worker_pids();
    assert_eq!(w.len(), 1);
    let _ = integration::send_signal(w[0], sig);
    ok(fpm.wait_log(&format!("child {} exited on signal {what}", w[0]), DEADLINE));
    assert!(wait_until(DEADLINE, || {
        let now = fpm.worker_pids();
        now.len() == 1 && now[0] != w[0]
    }));
    w[0]
}

both!(static_keeps_max_children, |kind| {
    let fpm = start(Fpm::builder(kind).pool_line("pm.max_children = 3"));
    assert!(wait_until(DEADLINE, || fpm.worker_pids().len() == 3));
    // A request does not change the count.
    ok(fpm.request("hello.php", &[]));
    assert_eq!(fpm.worker_pids().len(), 3);
});

both!(dynamic_grows_under_load_and_shrinks_when_idle, |kind| {
    let fpm = start(
        Fpm::builder(kind)
            .pool_line("pm = dynamic")
            .pool_line("pm.max_children = 3")
            .pool_line("pm.start_servers = 1")
            .pool_line("pm.min_spare_servers = 1")
            .pool_line("pm.max_spare_servers = 2"),
    );
    assert!(wait_until(DEADLINE, || fpm.worker_pids().len() == 1));
    let dir = tempfile::tempdir().map_err(|e| e.to_string());
    let dir = ok(dir);
    let go = dir.path().join("go");
    std::thread::scope(|s| {
        // Three requests held open: the manager adds a worker per second up to 3.
        let mut hs = Vec::new();
        for n in 0..3 {
            hs.push(blocked_request(s, &fpm, dir.path(), n, &go));
        }
        assert_eq!(fpm.worker_pids().len(), 3, "{}", fpm.log());
        ok(fpm.wait_log(
            "WARNING: [pool www] server reached pm.max_children setting (3), consider raising it",
            DEADLINE,
        ));
        ok(std::fs::write(&go, b"go"));
        for h in hs {
            let r = h.join().unwrap_or_else(|_| Err("panicked".into()));
            assert!(ok(r).contains("go=seen"));
        }
    });
    // Idle again: 3 idle > max_spare 2, one is stopped.
    assert!(
        wait_until(DEADLINE, || fpm.worker_pids().len() == 2),
        "{}",
        fpm.log()
    );
});

both!(ondemand_spawns_and_reaps, |kind| {
    let fpm = start(
        Fpm::builder(kind)
            .pool_line("pm = ondemand")
            .pool_line("pm.max_children = 2")
            .pool_line("pm.process_idle_timeout = 1s")
            .global("log_level = debug"),
    );
    assert!(fpm.worker_pids().is_empty());
    let r = ok(fpm.request("pid.php", &[]));
    let pid = pid_of(&r);
    assert!(pid > 0);
    assert!(fpm.worker_pids().contains(&pid));
    // Idle for longer than the timeout: reaped, not replaced.
    assert!(
        wait_until(DEADLINE, || fpm.worker_pids().is_empty()),
        "{}",
        fpm.log()
    );
    // Reaped by the master (DEBUG line): until then it still counts as an idle worker, and
    // php-fpm would leave a new connection waiting for the next readiness edge.
    ok(fpm.wait_log(
        &format!("[pool www] child {pid} has been killed by the process management after "),
        DEADLINE,
    ));
    assert!(!fpm.log_contains(&format!("child {pid} exited")));
    // And spawned again on demand.
    let r = ok(fpm.request("pid.php", &[]));
    assert_ne!(pid_of(&r), pid);
});

both!(max_requests_recycles_the_worker, |kind| {
    let fpm = start(
        Fpm::builder(kind)
            .pool_line("pm.max_children = 1")
            .pool_line("pm.max_requests = 2"),
    );
    let a = pid_of(&ok(fpm.request("pid.php", &[])));
    let b = pid_of(&ok(fpm.request("pid.php", &[])));
    assert_eq!(a, b);
    ok(fpm.wait_log(
        &format!("NOTICE: [pool www] child {a} exited with code 0 after "),
        DEADLINE,
    ));
    let c = pid_of(&ok(fpm.request("pid.php", &[])));
    assert_ne!(a, c);
    assert!(fpm.log_contains(&format!("NOTICE: [pool www] child {c} started")));
});

both!(request_terminate_timeout_kills_and_replaces, |kind| {
    let fpm = start(
        Fpm::builder(kind)
            .pool_line("pm.max_children = 1")
            .pool_line("request_terminate_timeout = 1"),
    );
    let worker = fpm.worker_pids();
    // Cut: the connection closes without a complete response.
    let r = fpm.send(&Req::get("slow.php").query("ms=8000"));
    assert!(r.is_err(), "the request should have been cut");
    ok(fpm.wait_log(
        "(request: \"GET /slow.php?ms=8000\") execution timed out (",
        DEADLINE,
    ));
    let line = fpm
        .log()
        .lines()
        .find(|l| l.contains("execution timed out"))
        .map(str::to_string)
        .unwrap_or_default();
    let script = fpm.docroot().join("slow.php");
    assert!(
        line.contains(&format!(
            "WARNING: [pool www] child {}, script '{}' (request:",
            worker[0],
            script.display()
        )),
        "{line}"
    );
    assert!(line.ends_with(" sec), terminating"), "{line}");
    ok(fpm.wait_log(
        &format!(
            "WARNING: [pool www] child {} exited on signal 15 (SIGTERM) after ",
            worker[0]
        ),
        DEADLINE,
    ));
    // Replaced: the next request is served.
    let r = ok(fpm.request("pid.php", &[]));
    assert_ne!(pid_of(&r), worker[0]);
});

both!(slowlog_has_the_php_stack, |kind| {
    let logs = ok(tempfile::tempdir());
    let slowlog = logs.path().join("slow.log");
    let fpm = start(
        Fpm::builder(kind)
            .pool_line("pm.max_children = 1")
            .pool_line("request_slowlog_timeout = 1")
            .pool_line(format!("slowlog = {}", slowlog.display())),
    );
    let r = ok(fpm.send(&Req::get("slow.php").query("ms=2500")));
    let pid = pid_of(&r);
    ok(fpm.wait_log(
        &format!("WARNING: [pool www] child {pid}, script '"),
        DEADLINE,
    ));
    assert!(fpm.log_contains("\") executing too slow ("));
    assert!(fpm.log_contains(&format!("NOTICE: finished trace of {pid}")));
    let mut text = String::new();
    assert!(wait_until(DEADLINE, || {
        text = std::fs::read_to_string(&slowlog).unwrap_or_default();
        text.contains("outer()")
    }));
    let script = fpm.docroot().join("slow.php").display().to_string();
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.ends_with(&format!("]  [pool www] pid {pid}")))
        .unwrap_or(usize::MAX);
    assert!(at < lines.len(), "{text}");
    assert_eq!(lines[at - 1], "", "an empty line before each entry");
    assert_eq!(lines[at + 1], format!("script_filename = {script}"));
    let frame = |l: &str, f: &str, line: u32| {
        l.starts_with("[0x") && l.ends_with(&format!("] {f}() {script}:{line}"))
    };
    assert!(frame(lines[at + 2], "usleep", 4), "{text}");
    assert!(frame(lines[at + 3], "inner", 5), "{text}");
    assert!(frame(lines[at + 4], "outer", 9), "{text}");
    assert!(
        lines[at + 2].len() == "[0x0000000000000000] ".len() + "usleep() ".len() + script.len() + 2
    );
});

both!(sigsegv_is_logged_and_replaced, |kind| {
    let fpm = start(Fpm::builder(kind).pool_line("pm.max_children = 1"));
    let old = kill_the_worker(&fpm, libc::SIGSEGV, "11 (SIGSEGV");
    assert!(fpm.log_contains(&format!(
        "WARNING: [pool www] child {old} exited on signal 11 (SIGSEGV"
    )));
    ok(fpm.wait_log("NOTICE: [pool www] child ", DEADLINE));
    let r = ok(fpm.request("pid.php", &[]));
    assert!(pid_of(&r) > 0);
});

both!(emergency_restart_reloads_after_crashes, |kind| {
    let fpm = start(
        Fpm::builder(kind)
            .global("emergency_restart_threshold = 2")
            .global("emergency_restart_interval = 1m"),
    );
    let w = fpm.worker_pids();
    assert_eq!(w.len(), 2);
    for p in &w {
        let _ = integration::send_signal(*p, libc::SIGSEGV);
    }
    ok(fpm.wait_log(
        "WARNING: failed processes threshold (2 in 60 sec) is reached, initiating reload",
        DEADLINE,
    ));
    assert!(wait_until(DEADLINE, || count(
        &fpm,
        "NOTICE: ready to handle connections"
    ) == 2));
    assert!(fpm.log_contains("NOTICE: reloading: execvp("));
    assert!(!fpm.log_contains("Reloading in progress"));
    let r = ok(fpm.request("pid.php", &[]));
    assert!(pid_of(&r) > 0);
});

both!(sigquit_lets_the_running_request_finish, |kind| {
    let fpm = start(
        Fpm::builder(kind)
            .pool_line("pm.max_children = 1")
            .global("process_control_timeout = 10"),
    );
    stop_during_a_request(&fpm);
    assert!(fpm.log_contains("NOTICE: exiting, bye-bye!"));
});

/// rfpm hides pcntl unless a pool allows it (php-fpm8.2 has none).
fn with_pcntl(kind: Kind, b: FpmBuilder) -> FpmBuilder {
    if kind == Kind::Rfpm {
        b.pool_line("allow_pcntl = yes")
    } else {
        b
    }
}

// A script that replaced signal handlers (pcntl_signal, where the SAPI has pcntl: rfpm
// with `allow_pcntl`) must not change how the worker reacts to signals in later
// requests: SIGQUIT still lets the running request finish, SIGTERM still ends the worker
// at once.
both!(signals_after_a_script_replaced_handlers, |kind| {
    let fpm = start(with_pcntl(
        kind,
        Fpm::builder(kind)
            .pool_line("pm.max_children = 1")
            .global("process_control_timeout = 10"),
    ));
    for _ in 0..3 {
        let r = ok(fpm.request("signals.php", &[]));
        let t = text_of(&r);
        let want = if kind == Kind::Rfpm {
            "pcntl=yes"
        } else {
            "pcntl=no"
        };
        assert!(t.contains(want), "{t}");
    }
    // SIGTERM straight to the worker: it dies of it, and the master replaces it.
    kill_the_worker(&fpm, libc::SIGTERM, "15 (SIGTERM)");
    for _ in 0..3 {
        let r = ok(fpm.request("signals.php", &[]));
        assert!(pid_of(&r) > 0);
    }
    // SIGQUIT to the master while a request runs: the request finishes.
    stop_during_a_request(&fpm);
});

// The same with the worker idle when the graceful stop comes: it exits cleanly (code 0),
// it is not killed by SIGQUIT's default action.
both!(
    idle_worker_stops_cleanly_after_a_script_replaced_handlers,
    |kind| {
        let fpm = start(with_pcntl(
            kind,
            Fpm::builder(kind)
                .pool_line("pm.max_children = 1")
                .global("log_level = debug")
                // Without it the master sends SIGTERM right after SIGQUIT.
                .global("process_control_timeout = 10"),
        ));
        for _ in 0..2 {
            let r = ok(fpm.request("signals.php", &[]));
            assert!(pid_of(&r) > 0);
        }
        let w = fpm.worker_pids();
        assert_eq!(w.len(), 1);
        ok(fpm.signal(libc::SIGQUIT));
        let status = ok(fpm.wait_exit(DEADLINE));
        assert_eq!(status.code(), Some(0));
        let log = fpm.log();
        assert!(
            log.contains(&format!("child {} exited with code 0", w[0])),
            "{log}"
        );
        assert!(!log.contains("exited on signal"), "{log}");
    }
);

// A graceful stop that reaches a worker between accept() and the request's first byte
// must not drop the connection: the request is served, then the worker exits (php-fpm
// retries its wait for the first byte). Dropping it lost requests during reloads.
both!(graceful_stop_serves_an_accepted_connection, |kind| {
    let fpm = start(
        Fpm::builder(kind)
            .pool_line("pm.max_children = 1")
            .global("process_control_timeout = 10"),
    );
    let w = fpm.worker_pids();
    assert_eq!(w.len(), 1);
    let sockets = |pid: u32| -> Vec<String> {
        fd_links(pid)
            .into_iter()
            .filter(|l| l.starts_with("socket:"))
            .collect()
    };
    let before = sockets(w[0]);
    // Connected, nothing sent yet: the worker accepts and waits for the first byte. The
    // accepted connection is a socket the worker did not have (counting would race with
    // descriptors the worker closes meanwhile).
    let mut client = ok(fpm.client());
    assert!(
        wait_until(DEADLINE, || sockets(w[0])
            .iter()
            .any(|l| !before.contains(l))),
        "the worker never accepted the connection"
    );
    ok(fpm.signal(libc::SIGQUIT));
    ok(fpm.wait_log("NOTICE: Finishing ...", DEADLINE));
    let req = Req::get("pid.php").query("n=late").build(&fpm.docroot());
    let resp = ok(client.request(&req));
    assert!(text_of(&resp).contains("n=late"), "{}", text_of(&resp));
    assert_eq!(pid_of(&resp), w[0]);
    // The worker drains until the client closes (php-fpm: without a time limit).
    drop(client);
    let status = ok(fpm.wait_exit(DEADLINE));
    assert_eq!(status.code(), Some(0));
});

// max_execution_time (Zend's SIGPROF timer) stops a busy script on every request of a
// worker, not only on its first (rfpm stops re-registering Zend's signal handlers after
// the first request).
both!(max_execution_time_fires_on_every_request, |kind| {
    let fpm = start(
        Fpm::builder(kind)
            .pool_line("pm.max_children = 1")
            .pool_line("php_admin_value[max_execution_time] = 1"),
    );
    let mut pids = Vec::new();
    for i in 0..3 {
        let r = ok(fpm.request("busy.php", &[("QUERY_STRING", "secs=8")]));
        let t = text_of(&r);
        assert!(
            t.contains("Maximum execution time of 1 second exceeded"),
            "request {i}: {t}"
        );
        assert!(!t.contains("not stopped"), "request {i}: {t}");
        pids.push(fpm.worker_pids());
    }
    // The same worker served all three.
    assert!(pids.windows(2).all(|w| w[0] == w[1]), "{pids:?}");
});

both!(sigusr2_under_load_loses_no_request, |kind| {
    let fpm = start(
        Fpm::builder(kind)
            .pool_line("pm.max_children = 2")
            .global("process_control_timeout = 10"),
    );
    let done = std::sync::atomic::AtomicBool::new(false);
    let progress = std::sync::atomic::AtomicUsize::new(0);
    let (sent, failures) = std::thread::scope(|s| {
        let load = s.spawn(|| {
            let mut sent = 0;
            let mut failures = Vec::new();
            // Bounded: at most 3000 requests, and 20 more once the reload is done.
            let mut after = 0;
            while sent < 3000 && after < 20 {
                if done.load(std::sync::atomic::Ordering::Relaxed) {
                    after += 1;
                }
                sent += 1;
                progress.store(sent, std::sync::atomic::Ordering::Relaxed);
                match fpm.request("pid.php", &[("QUERY_STRING", &format!("n={sent}"))]) {
                    Ok(r) if text_of(&r).contains(&format!("n={sent}\n")) => {}
                    Ok(r) => failures.push(format!("#{sent}: {:?}", text_of(&r))),
                    Err(e) => failures.push(format!("#{sent}: {e}")),
                }
            }
            (sent, failures)
        });
        // Let the load run, then reload in the middle of it.
        assert!(wait_until(DEADLINE, || progress
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 10));
        ok(fpm.signal(libc::SIGUSR2));
        let reloaded = wait_until(DEADLINE, || {
            count(&fpm, "NOTICE: ready to handle connections") == 2
        });
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(reloaded, "{}", fpm.log());
        load.join().unwrap_or((0, vec!["panicked".into()]))
    });
    assert!(sent > 20);
    assert!(
        failures.is_empty(),
        "{} of {sent} failed: {failures:?}",
        failures.len()
    );
    assert!(fpm.log_contains("NOTICE: Reloading in progress ..."));
    assert!(fpm.log_contains("NOTICE: using inherited socket fd="));
});

both!(sigusr1_reopens_a_rotated_log, |kind| {
    let fpm = start(Fpm::builder(kind).log_to_file());
    let log = fpm.error_log_file();
    let rotated = fpm.dir().join("fpm.log.1");
    ok(std::fs::rename(&log, &rotated));
    ok(fpm.signal(libc::SIGUSR1));
    ok(fpm.wait_log("NOTICE: error log file re-opened", DEADLINE));
    let old = std::fs::read_to_string(&rotated).unwrap_or_default();
    assert!(old.contains("NOTICE: ready to handle connections"));
    assert!(!old.contains("re-opened"));
    // New lines go to the new file.
    ok(fpm.signal(libc::SIGTERM));
    ok(fpm.wait_exit(DEADLINE));
    assert!(fpm.log_contains("NOTICE: exiting, bye-bye!"));
    assert!(!std::fs::read_to_string(&rotated)
        .unwrap_or_default()
        .contains("bye-bye"));
});

// GH-8885: an access log on `/dev/stderr` still goes to the master's stderr after SIGUSR1,
// although fd 2 of the master points at the error log file (reference §9, SIGUSR1).
both!(
    sigusr1_keeps_an_access_log_on_dev_stderr_on_stderr,
    |kind| {
        let fpm = start(
            Fpm::builder(kind)
                .log_to_file()
                .pool_line("access.log = /dev/stderr")
                .pool_line("access.format = \"access %m %r %s\""),
        );
        let stderr = || std::fs::read_to_string(fpm.dir().join("stderr.log")).unwrap_or_default();
        let hits = |text: &str| text.matches("access GET /hello.php 200").count();
        ok(fpm.request("hello.php", &[]));
        assert!(
            wait_until(DEADLINE, || hits(&stderr()) == 1),
            "{}",
            stderr()
        );
        ok(fpm.signal(libc::SIGUSR1));
        ok(fpm.wait_log("NOTICE: access log file re-opened", DEADLINE));
        ok(fpm.request("hello.php", &[]));
        assert!(
            wait_until(DEADLINE, || hits(&stderr()) == 2),
            "{}",
            stderr()
        );
        assert_eq!(hits(&fpm.log()), 0, "{}", fpm.log());
    }
);

both!(worker_stderr_is_captured, |kind| {
    let fpm = start(
        Fpm::builder(kind)
            .pool_line("pm.max_children = 1")
            .pool_line("catch_workers_output = yes"),
    );
    let r = ok(fpm.request("stderr.php", &[]));
    assert_eq!(text_of(&r), "ok\n");
    let w = fpm.worker_pids();
    ok(fpm.wait_log(
        &format!(
            "WARNING: [pool www] child {} said into stderr: \"to stderr\"\n",
            w[0]
        ),
        DEADLINE,
    ));
});

both!(process_max_limits_the_workers, |kind| {
    let fpm = start(
        Fpm::builder(kind)
            .global("process.max = 2")
            .pool_line("pm.max_children = 3"),
    );
    ok(fpm.wait_log(
        "WARNING: The maximum number of processes has been reached. Please review your configuration and consider raising 'process.max'",
        DEADLINE,
    ));
    assert!(wait_until(DEADLINE, || fpm.worker_pids().len() == 2));
    ok(fpm.request("hello.php", &[]));
});

both!(systemd_notify_ready_and_status, |kind| {
    let dir = ok(tempfile::tempdir());
    let sock_path = dir.path().join("notify.sock");
    let sock = ok(std::os::unix::net::UnixDatagram::bind(&sock_path));
    ok(sock.set_read_timeout(Some(DEADLINE)));
    let fpm = start(
        Fpm::builder(kind)
            .env("NOTIFY_SOCKET", &sock_path.display().to_string())
            .global("systemd_interval = 1"),
    );
    // php-fpm logs it after "ready to handle connections" (start's cue): waited for.
    ok(fpm.wait_log("NOTICE: systemd monitor interval set to 1000ms", DEADLINE));
    let mut buf = [0u8; 512];
    let n = ok(sock.recv(&mut buf));
    assert_eq!(
        String::from_utf8_lossy(&buf[..n]),
        format!(
            "READY=1\nSTATUS=Ready to handle connections\nMAINPID={}",
            fpm.master_pid()
        )
    );
    ok(fpm.request("hello.php", &[]));
    let mut status = String::new();
    for _ in 0..5 {
        let n = ok(sock.recv(&mut buf));
        status = String::from_utf8_lossy(&buf[..n]).into_owned();
        if status.contains("Requests: 1,") {
            break;
        }
    }
    assert!(
        status.starts_with("READY=1\nSTATUS=Processes active: ")
            && status.contains(", idle: ")
            && status.contains("Requests: 1, slow: 0, Traffic: ")
            && status.ends_with("req/sec"),
        "{status:?}"
    );
});

/// Daemon mode (reference §10.2, §10.3): the launcher exits 0 once the master is up; the
/// master writes its PID file (no newline) and removes it on SIGTERM.
fn daemon(kind: Kind) {
    let b = Fpm::builder(kind);
    let dir = ok(tempfile::tempdir());
    let conf = dir.path().join("php-fpm.conf");
    let text = b
        .config_text(dir.path())
        .replace("daemonize = no", "daemonize = yes");
    ok(std::fs::write(&conf, text));
    let status = std::process::Command::new(kind.binary())
        .args(["-n", "-R", "-y"])
        .arg(&conf)
        .current_dir(dir.path())
        .env_remove("NOTIFY_SOCKET")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    let status = ok(status);
    assert_eq!(status.code(), Some(0));
    let pid_file = dir.path().join("fpm.pid");
    // The launcher is gone: the PID file names the daemon, without a newline.
    let text = std::fs::read_to_string(&pid_file).unwrap_or_default();
    assert!(!text.ends_with('\n'), "{text:?}");
    let pid: u32 = text.parse().unwrap_or(0);
    assert!(pid > 0 && integration::process_alive(pid), "{text:?}");
    let log = dir.path().join("fpm.log");
    assert!(wait_until(DEADLINE, || std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("ready to handle connections")));
    let mut client = ok(integration::connect(
        &integration::fcgi::client::Addr::parse(&dir.path().join("fpm.sock").display().to_string()),
    ));
    let r = ok(integration::send_on(
        &mut client,
        &integration::fixtures_dir(),
        &Req::get("hello.php"),
    ));
    assert_eq!(r.body(), b"Hello, world!\n");
    let _ = integration::send_signal(pid, libc::SIGTERM);
    assert!(wait_until(DEADLINE, || !integration::process_alive(pid)));
    assert!(wait_until(DEADLINE, || !pid_file.exists()));
    assert!(std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("NOTICE: exiting, bye-bye!"));
}

both!(daemon_mode_and_pid_file, |kind| {
    daemon(kind);
});

/// As root without `-R` (reference §10.4): a pool without `user` and a pool running as
/// root are both refused, exit 78. Skipped (with a message) when not run as root.
fn refuse_root(kind: Kind) {
    // SAFETY: a plain query.
    if rfpm_sys::process::geteuid() != 0 {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = ok(tempfile::tempdir());
    let base = format!(
        "[global]\nerror_log = {}/fpm.log\ndaemonize = no\n[www]\nlisten = {}/fpm.sock\npm = static\npm.max_children = 1\n",
        dir.path().display(),
        dir.path().display()
    );
    let cases = [
        ("", "ALERT: [pool www] user has not been defined"),
        (
            "user = root\n",
            "ERROR: [pool www] please specify user and group other than root",
        ),
    ];
    for (extra, expected) in cases {
        let conf = dir.path().join("php-fpm.conf");
        ok(std::fs::write(&conf, format!("{base}{extra}")));
        let out = ok(std::process::Command::new(kind.binary())
            .args(["-n", "-F", "-O", "-y"])
            .arg(&conf)
            .current_dir(dir.path())
            .stdin(std::process::Stdio::null())
            .output());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{err}");
        assert!(err.contains(expected), "{err}");
        assert!(err.contains("ERROR: FPM initialization failed"), "{err}");
    }
}

both!(root_is_refused_without_allow_to_run_as_root, |kind| {
    refuse_root(kind);
});

// A worker holds none of the master's own descriptors: no event loop (epoll) instance,
// no signal pipe; a worker started by the event loop (after a crash) included.
both!(worker_holds_no_master_descriptor, |kind| {
    let fpm = start(Fpm::builder(kind).pool_line("pm.max_children = 1"));
    assert!(wait_until(DEADLINE, || fpm.worker_pids().len() == 1));
    let first = fpm.worker_pids()[0];
    let _ = integration::send_signal(first, libc::SIGKILL);
    assert!(wait_until(DEADLINE, || {
        let w = fpm.worker_pids();
        w.len() == 1 && w[0] != first
    }));
    let worker = fpm.worker_pids()[0];
    // A request served by the new worker: it has finished starting up (a child fresh
    // from fork still holds the master's descriptors for a moment; php-fpm8.2's does).
    let r = ok(fpm.request("pid.php", &[]));
    assert_eq!(pid_of(&r), worker);
    let master_pipes: Vec<String> = fd_links(fpm.master_pid())
        .into_iter()
        .filter(|l| l.starts_with("pipe:"))
        .collect();
    let links = fd_links(worker);
    assert!(!links.is_empty(), "no /proc/{worker}/fd");
    assert!(
        !links.iter().any(|l| l == "anon_inode:[eventpoll]"),
        "{links:?}"
    );
    // The master's signal pipe (both ends in the master) is not in the worker.
    for p in &master_pipes {
        let ends = master_pipes.iter().filter(|q| *q == p).count();
        assert!(ends < 2 || !links.contains(p), "{p} in {links:?}");
    }
});
