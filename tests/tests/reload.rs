//! Reload with worker generations (issue `reload`), rfpm only: this is where rfpm does
//! more than php-fpm8.2, which stops every worker before it re-executes (a request that
//! arrives meanwhile waits for the slowest one) and exits on a configuration it cannot
//! use. rfpm plans the new configuration first, serves on when it does not hold, and
//! hands its workers to the new image, which reaps them while its own already serve.
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use integration::helpers::{count, ok, start, text_of};
use integration::{fd_links, wait_for_file, wait_until, Fpm, Kind, Req, DEADLINE};

/// Sends SIGUSR2 and waits for the `n`-th `ready to handle connections`.
fn reload(fpm: &Fpm, n: usize) {
    ok(fpm.signal(libc::SIGUSR2));
    assert!(
        wait_until(DEADLINE, || count(
            fpm,
            "NOTICE: ready to handle connections"
        ) >= n),
        "reload {n} did not finish: {}",
        fpm.log()
    );
}

/// A script in the FPM's temp dir (the fixtures stay untouched).
fn write_script(fpm: &Fpm, name: &str, body: &str) -> String {
    let path = fpm.dir().join(name);
    ok(std::fs::write(&path, body));
    path.display().to_string()
}

fn run_script(fpm: &Fpm, path: &str) -> String {
    let r = ok(fpm.send(&Req::get("hello.php").param("SCRIPT_FILENAME", path)));
    text_of(&r)
}

/// Short requests in a loop until `stop`, bounded; returns (sent, failures).
fn load(fpm: &Fpm, stop: &AtomicBool, sent: &AtomicUsize) -> Vec<String> {
    let mut failures = Vec::new();
    let mut after = 0;
    let mut n = 0;
    // Bounded: at most 5000 requests, and 20 more once the reloads are done.
    while n < 5000 && after < 20 {
        if stop.load(Ordering::Relaxed) {
            after += 1;
        }
        n += 1;
        sent.store(n, Ordering::Relaxed);
        match fpm.request("pid.php", &[("QUERY_STRING", &format!("n={n}"))]) {
            Ok(r) if text_of(&r).contains(&format!("n={n}\n")) => {}
            Ok(r) => failures.push(format!("#{n}: {:?}", text_of(&r))),
            Err(e) => failures.push(format!("#{n}: {e}")),
        }
    }
    failures
}

// A 3 s request in flight during SIGUSR2 completes with its whole body while short
// requests go on being answered by the new generation (none fails); the new code is live
// with opcache.validate_timestamps = 0; the master keeps its pid.
#[test]
fn reload_hands_the_old_workers_over_and_serves_at_once() {
    let fpm = start(
        Fpm::builder(Kind::Rfpm)
            .opcache()
            .define("opcache.validate_timestamps", "0")
            .pool_line("pm.max_children = 4")
            .pool_line("catch_workers_output = yes")
            .global("process_control_timeout = 20"),
    );
    let master = fpm.master_pid();
    let pid_file = ok(std::fs::read_to_string(fpm.pid_file()));
    let code = write_script(&fpm, "code.php", "<?php echo 'v1';");
    // Cached by every worker that runs it, never checked again.
    for _ in 0..4 {
        assert_eq!(run_script(&fpm, &code), "v1");
    }
    let old_workers = fpm.worker_pids();
    let started = fpm.dir().join("slow-started");
    // Sleeps in slices: the QUIT the old workers get must not cut it short.
    let slow_script = write_script(
        &fpm,
        "slow.php",
        &format!(
            "<?php touch('{}'); $t = microtime(true); \
             while (microtime(true) - $t < 3) usleep(20000); \
             error_log('the old worker is done'); \
             echo str_repeat('x', 100000), \"\\nslow done\";",
            started.display()
        ),
    );
    let stop = AtomicBool::new(false);
    let sent = AtomicUsize::new(0);
    let (slow, failures) = std::thread::scope(|s| {
        let slow =
            s.spawn(|| fpm.send(&Req::get("hello.php").param("SCRIPT_FILENAME", &slow_script)));
        assert!(wait_for_file(&started, DEADLINE), "slow.php did not start");
        let shorts = s.spawn(|| load(&fpm, &stop, &sent));
        assert!(wait_until(DEADLINE, || sent.load(Ordering::Relaxed) >= 5));
        ok(std::fs::write(
            fpm.dir().join("code.php"),
            "<?php echo 'v2';",
        ));
        reload(&fpm, 2);
        // The new generation serves while the slow request still runs.
        let during = sent.load(Ordering::Relaxed);
        assert!(
            wait_until(DEADLINE, || sent.load(Ordering::Relaxed) >= during + 20),
            "no request was answered during the slow one: {}",
            fpm.log()
        );
        stop.store(true, Ordering::Relaxed);
        let failures = shorts.join().unwrap_or_else(|_| vec!["panicked".into()]);
        (slow.join(), failures)
    });
    let slow = match slow {
        Ok(r) => ok(r),
        Err(_) => panic!("the slow request's thread panicked"),
    };
    let body = text_of(&slow);
    assert_eq!(
        body,
        format!("{}\nslow done", "x".repeat(100_000)),
        "the slow request did not complete whole\n{}",
        fpm.log()
    );
    assert!(failures.is_empty(), "{failures:?}\n{}", fpm.log());
    // New code, new workers, the same master and pid file.
    assert_eq!(run_script(&fpm, &code), "v2");
    assert_eq!(fpm.master_pid(), master);
    assert_eq!(ok(std::fs::read_to_string(fpm.pid_file())), pid_file);
    assert!(wait_until(DEADLINE, || {
        let now = fpm.worker_pids();
        now.len() == 4 && now.iter().all(|p| !old_workers.contains(p))
    }));
    assert!(fpm.log_contains("NOTICE: reloading: execvp("));
    // What the old worker wrote after the hand-over reached the new image's log.
    ok(fpm.wait_log("PHP message: the old worker is done", DEADLINE));
    assert!(!fpm.log_contains("ERROR"), "{}", fpm.log());
}

/// The configuration file with one change applied to the harness's own text.
fn rewrite(fpm: &Fpm, good: &str, change: &dyn Fn(&str) -> String) {
    ok(std::fs::write(fpm.conf_path(), change(good)));
}

// Each broken configuration is refused with php-fpm's words, the running generation
// serves on (same workers, same master), and the next valid reload works.
#[test]
fn a_reload_with_a_broken_configuration_keeps_serving() {
    let fpm = start(Fpm::builder(Kind::Rfpm));
    let good = ok(std::fs::read_to_string(fpm.conf_path()));
    let missing_dir = fpm.dir().join("no-such-dir").join("x.sock");
    let append = |line: &'static str| move |g: &str| format!("{g}{line}\n");
    let listen = missing_dir.display().to_string();
    type Change = Box<dyn Fn(&str) -> String>;
    let cases: Vec<(&str, Change, String)> = vec![
        (
            "syntax error",
            Box::new(append("pm.max_children = = 4")),
            "PHP:  syntax error".into(),
        ),
        (
            "unknown directive",
            Box::new(append("bogus_directive = 1")),
            "ERROR: [".to_string() + &fpm.conf_path().display().to_string(),
        ),
        (
            "invalid value",
            Box::new(append("pm.max_children = abc")),
            "is not a valid number".into(),
        ),
        (
            "listen directory missing",
            Box::new(move |g: &str| {
                g.lines()
                    .map(|l| {
                        if l.starts_with("listen =") {
                            format!("listen = {listen}")
                        } else {
                            l.to_string()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            }),
            "unable to bind listening socket for address".into(),
        ),
        (
            "unknown user",
            Box::new(append("user = no-such-user-rfpm")),
            "cannot get uid for user 'no-such-user-rfpm'".into(),
        ),
    ];
    let workers = fpm.worker_pids();
    for (i, (what, change, said)) in cases.iter().enumerate() {
        rewrite(&fpm, &good, change.as_ref());
        ok(fpm.signal(libc::SIGUSR2));
        let refused = wait_until(DEADLINE, || {
            count(
                &fpm,
                "ERROR: failed to reload: the new configuration cannot be used",
            ) > i
        });
        assert!(refused, "{what}: {}", fpm.log());
        assert!(
            fpm.log_contains(said),
            "{what}: no {said:?} in\n{}",
            fpm.log()
        );
        let r = ok(fpm.request("pid.php", &[]));
        assert!(text_of(&r).starts_with("pid="), "{what}");
        assert_eq!(fpm.worker_pids(), workers, "{what}: the workers changed");
    }
    assert_eq!(count(&fpm, "NOTICE: ready to handle connections"), 1);
    assert!(!fpm.log_contains("reloading: execvp"));
    // Fixed: the next reload goes through.
    ok(std::fs::write(fpm.conf_path(), &good));
    reload(&fpm, 2);
    let r = ok(fpm.request("pid.php", &[]));
    assert!(text_of(&r).starts_with("pid="));
}

// `user = root` is refused without -R: the master, started without -R as root, serves
// on. Only as root (as nobody the master cannot switch to root anyway).
#[test]
fn a_reload_to_root_without_r_keeps_serving() {
    if rfpm_sys::process::geteuid() != 0 {
        eprintln!("skipped: needs root");
        return;
    }
    let fpm = start(
        Fpm::builder(Kind::Rfpm)
            .pool_line("user = nobody")
            .pool_line("group = nogroup")
            .without_r(),
    );
    let good = ok(std::fs::read_to_string(fpm.conf_path()));
    ok(std::fs::write(
        fpm.conf_path(),
        good.replace("user = nobody", "user = root"),
    ));
    ok(fpm.signal(libc::SIGUSR2));
    ok(fpm.wait_log(
        "ERROR: [pool www] please specify user and group other than root",
        DEADLINE,
    ));
    ok(fpm.wait_log("ERROR: failed to reload", DEADLINE));
    let r = ok(fpm.request("pid.php", &[]));
    assert!(text_of(&r).starts_with("pid="));
}

/// Open descriptors of a process.
fn fds(pid: u32) -> usize {
    fd_links(pid).len()
}

// 20 reloads in a row under continuous load: no request fails, the master holds no more
// descriptors than before, and exactly the configured workers are left (no orphan, no
// draining generation left over).
#[test]
fn twenty_reloads_under_load_lose_and_leak_nothing() {
    let fpm = start(
        Fpm::builder(Kind::Rfpm)
            .pool_line("pm.max_children = 3")
            .pool_line("catch_workers_output = yes")
            .global("process_control_timeout = 10"),
    );
    let master = fpm.master_pid();
    let before = fds(master);
    let rss_before = rss_kb(master);
    let mut env_first = 0;
    let stop = AtomicBool::new(false);
    let sent = AtomicUsize::new(0);
    let failures = std::thread::scope(|s| {
        let shorts = s.spawn(|| load(&fpm, &stop, &sent));
        for i in 0..20 {
            let at = sent.load(Ordering::Relaxed);
            reload(&fpm, i + 2);
            if i == 0 {
                // From the first re-exec on, the environment carries the hand-over.
                env_first = environ_len(master);
            }
            // Some requests between reloads.
            assert!(wait_until(DEADLINE, || sent.load(Ordering::Relaxed) >= at + 3));
        }
        stop.store(true, Ordering::Relaxed);
        shorts.join().unwrap_or_else(|_| vec!["panicked".into()])
    });
    assert!(failures.is_empty(), "{failures:?}\n{}", fpm.log());
    assert_eq!(fpm.master_pid(), master);
    // Every draining worker is gone: only the current generation's three remain.
    assert!(
        wait_until(DEADLINE, || integration::children_of(master).len() == 3),
        "children: {:?}\n{}",
        integration::children_of(master),
        fpm.log()
    );
    assert!(
        wait_until(DEADLINE, || fds(master) <= before),
        "the master holds {} descriptors, {before} before: {:?}",
        fds(master),
        fd_links(master)
    );
    // Each reload is a fresh exec of the same binary: the master's memory and the
    // environment it hands itself must not grow from one image to the next.
    let (rss_after, env_after) = (rss_kb(master), environ_len(master));
    eprintln!(
        "master RSS {rss_before} kB -> {rss_after} kB, environment {env_first} -> {env_after} bytes"
    );
    assert!(
        rss_after <= rss_before + rss_before / 4,
        "master RSS {rss_before} kB before 20 reloads, {rss_after} kB after"
    );
    // The environment differs between execs only by the hand-over's list of the workers
    // alive at that moment (about 36 bytes each): a few more of them, not 20 reloads' worth
    // of anything, fits in 512 bytes.
    assert!(
        env_after <= env_first + 512,
        "master environment {env_first} bytes after the first reload, {env_after} after 20"
    );
}

/// The resident set of `pid` in kB (`VmRSS` of /proc/PID/status).
fn rss_kb(pid: u32) -> u64 {
    let status = ok(std::fs::read_to_string(format!("/proc/{pid}/status")));
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS for {pid}: {status}"))
}

/// The size of the environment block `pid` was exec'd with (its contents are gone: the
/// process title overwrites them, as php-fpm's does).
fn environ_len(pid: u32) -> usize {
    ok(std::fs::read(format!("/proc/{pid}/environ"))).len()
}

/// `pid.php` on the Unix socket at `path`.
fn request_on(fpm: &Fpm, path: &std::path::Path) -> Result<String, String> {
    let addr = integration::fcgi::client::Addr::Unix(path.to_path_buf());
    let mut client = integration::connect(&addr).map_err(|e| e.to_string())?;
    integration::send_on(&mut client, &fpm.docroot(), &Req::get("pid.php"))
        .map(|r| text_of(&r))
        .map_err(|e| e.to_string())
}

// The new configuration's pools are what runs after the reload: a pool added starts on
// its own socket, a pool removed drains and its socket goes, a pool whose `listen`
// changed answers on the new address only.
#[test]
fn a_reload_adds_removes_and_moves_pools() {
    let fpm = start(Fpm::builder(Kind::Rfpm).pool("gone", &["pm.max_children = 1"]));
    let dir = fpm.dir().to_path_buf();
    let gone = dir.join("gone.sock");
    assert!(request_on(&fpm, &gone).is_ok_and(|t| t.starts_with("pid=")));
    let gone_workers = fpm.worker_pids().len();
    let text = ok(std::fs::read_to_string(fpm.conf_path()));
    // www moves to moved.sock, "gone" is removed, "added" appears.
    let www_sock = dir.join("fpm.sock");
    let moved = dir.join("moved.sock");
    let added = dir.join("added.sock");
    let head = &text[..text.find("[gone]").unwrap_or(text.len())];
    let new_text = format!(
        "{}\n[added]\nlisten = {}\npm = static\npm.max_children = 1\n",
        head.replace(
            &format!("listen = {}", www_sock.display()),
            &format!("listen = {}", moved.display())
        ),
        added.display()
    );
    ok(std::fs::write(fpm.conf_path(), new_text));
    reload(&fpm, 2);
    for (what, sock) in [("added", &added), ("moved", &moved)] {
        let r = request_on(&fpm, sock);
        assert!(
            r.as_ref().is_ok_and(|t| t.starts_with("pid=")),
            "{what}: {r:?}\n{}",
            fpm.log()
        );
    }
    // The removed pool's socket and the old address are gone.
    assert!(wait_until(DEADLINE, || !gone.exists()), "{}", fpm.log());
    assert!(!www_sock.exists());
    assert!(request_on(&fpm, &gone).is_err());
    // www (2) + added (1), the removed pool's worker drained away.
    assert!(
        wait_until(DEADLINE, || fpm.worker_pids().len() == 3),
        "{} workers, {gone_workers} before\n{}",
        fpm.worker_pids().len(),
        fpm.log()
    );
}

// While a generation drains, the status page (and fpm_get_status()) of the new one lists
// its workers too, marked `"generation":"draining"`; once they are gone the page is
// php-fpm's again.
#[test]
fn the_status_page_lists_the_draining_generation() {
    let fpm = start(
        Fpm::builder(Kind::Rfpm)
            .pool_line("pm.status_path = /status")
            .global("process_control_timeout = 20"),
    );
    let started = fpm.dir().join("slow-started");
    let go = fpm.dir().join("go");
    let slow_script = write_script(
        &fpm,
        "hold.php",
        &format!(
            "<?php touch('{}'); $t = microtime(true); \
             while (!file_exists('{}') && microtime(true) - $t < 10) usleep(20000); \
             echo 'held';",
            started.display(),
            go.display()
        ),
    );
    let status = || {
        let r = ok(fpm.send(&Req::get("status").query("json&full")));
        text_of(&r)
    };
    std::thread::scope(|s| {
        let slow =
            s.spawn(|| fpm.send(&Req::get("hello.php").param("SCRIPT_FILENAME", &slow_script)));
        assert!(wait_for_file(&started, DEADLINE), "hold.php did not start");
        reload(&fpm, 2);
        let page = status();
        assert_eq!(
            page.matches("\"generation\":\"draining\"").count(),
            1,
            "{page}"
        );
        assert!(page.contains("\"state\":\"Running\""), "{page}");
        ok(std::fs::write(&go, b""));
        let r = match slow.join() {
            Ok(r) => ok(r),
            Err(_) => panic!("the slow request's thread panicked"),
        };
        assert_eq!(text_of(&r), "held");
    });
    // The draining worker is gone: the page is php-fpm's again.
    assert!(
        wait_until(DEADLINE, || !status().contains("generation")),
        "{}",
        status()
    );
}
