//! Issue `harden`: bounds, hostile input and hostile workers (each test names what it
//! guards); differential where php-fpm8.2 is the reference.
#![forbid(unsafe_code)]

use integration::fcgi::client::{Addr, ClientRequest};
use integration::{both, connect, nginx_params, send_on, Fpm, Kind, Req, DEADLINE};

fn ok<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}

// With `cgi.fix_pathinfo = 0`, a long SCRIPT_FILENAME refused by
// `security.limit_extensions`: the message to the web server is php-fpm's one-shot zlog
// buffer (2048 bytes: the first 2045 and `...`), not `log_limit`.
both!(denied_message_cut_at_2048, |kind| {
    let fpm = ok(Fpm::builder(kind).define("cgi.fix_pathinfo", "0").start());
    for total in [2047usize, 2048, 4000] {
        let path = format!("/n/{}.txt", "a".repeat(total - 78));
        let full = format!(
            "Access to the script '{path}' has been denied (see security.limit_extensions)"
        );
        assert_eq!(full.len(), total);
        let resp = ok(fpm.request("hello.php", &[("SCRIPT_FILENAME", &path)]));
        let want = if total < 2048 {
            full
        } else {
            format!("{}...", &full[..2045])
        };
        assert_eq!(resp.stderr_str(), want, "{total} bytes");
        assert_eq!(resp.status(), 403);
        assert_eq!(resp.body(), b"Access denied.\n");
    }
});

// A NUL inside a param: php-fpm reads every value as a C string, so it ends there in
// $_SERVER, getenv(), the access log and the status page; a name with a NUL is
// registered in $_SERVER cut, and lookups by the cut name miss it.
both!(nul_in_param_cuts_the_value, |kind| {
    let fpm = ok(Fpm::builder(kind)
        .pool_line("pm.max_children = 1")
        .pool_line("access.log = ${HOME}/access.log")
        .pool_line("access.format = \"%{X}e|%{REQUEST_URI}e|%r|%{Y}e\"")
        .pool_line("pm.status_path = /status")
        .pool_line("pm.status_listen = ${HOME}/status.sock")
        .start());
    let mut req = ClientRequest::new();
    for (k, v) in nginx_params(&fpm.docroot(), "nul.php", "GET", "", "", "") {
        req = req.param(k, v);
    }
    req = req
        .param("X", b"ab\0cd")
        .param(b"Y\0Z", "1")
        .param("REQUEST_URI", b"/nul.php\0evil");
    let mut c = ok(connect(&fpm.fcgi_addr()));
    let resp = ok(c.request(&req));
    assert_eq!(
        String::from_utf8_lossy(resp.body()),
        "server=6162\ngetenv=6162\ngetenv_local=\nname=cut\ngetenv_y=false\n\
         uri=2f6e756c2e706870\n"
    );
    let log = fpm.dir().join("access.log");
    assert!(integration::wait_until(integration::DEADLINE, || {
        std::fs::read(&log).is_ok_and(|l| l.ends_with(b"\n"))
    }));
    assert_eq!(ok(std::fs::read(&log)), b"ab|/nul.php|/nul.php|-\n");
    // The one worker of www last served that request: its status line says so.
    let mut s = ok(connect(&Addr::Unix(fpm.dir().join("status.sock"))));
    let page = ok(send_on(
        &mut s,
        &fpm.docroot(),
        &Req::get("status").query("full&json"),
    ));
    let page = String::from_utf8_lossy(page.body()).into_owned();
    assert!(page.contains(r#""request uri":"\/nul.php""#), "{page}");
    assert!(!page.contains("evil"), "{page}");
});

/// A request with about `total` bytes of params (50,000-byte `HTTP_X_<n>` headers).
fn big_params_request(fpm: &Fpm, total: usize) -> ClientRequest {
    let mut req = ClientRequest::new();
    for (k, v) in nginx_params(&fpm.docroot(), "hello.php", "GET", "", "", "") {
        req = req.param(k, v);
    }
    let value = "a".repeat(50_000);
    for i in 0..total / 50_000 {
        req = req.param(format!("HTTP_X_{i}"), &value);
    }
    req
}

// 20 MB of params: php-fpm8.2 answers (it has no bound); rfpm answers once
// `request.max_params_size` (rfpm only) allows it.
both!(params_of_20_mb_answered_within_the_bound, |kind| {
    let mut b = Fpm::builder(kind);
    if kind == Kind::Rfpm {
        b = b.pool_line("request.max_params_size = 33554432");
    }
    let fpm = ok(b.start());
    let resp = ok(ok(fpm.client()).request(&big_params_request(&fpm, 20_000_000)));
    assert_eq!(resp.body(), b"Hello, world!\n");
});

// Over the bound, rfpm refuses the request and says so: a WARNING naming the pool and
// the bound, to the worker log (seen with catch_workers_output) and to the web server
// (FastCGI stderr, then END_REQUEST), instead of a silent reset.
#[test]
fn params_over_the_bound_refused_with_a_warning() {
    let fpm = ok(Fpm::builder(Kind::Rfpm)
        .pool_line("request.max_params_size = 1000000")
        .pool_line("catch_workers_output = yes")
        .start());
    let resp = ok(ok(fpm.client()).request(&big_params_request(&fpm, 1_100_000)));
    let msg = "[pool www] request refused: its FastCGI params exceed \
               request.max_params_size (1000000 bytes)";
    assert_eq!(resp.stderr_str(), msg);
    assert_eq!(resp.stdout_str(), "");
    ok(fpm.wait_log(&format!("said into stderr: \"WARNING: {msg}\""), DEADLINE));
    // Within the bound, the same worker goes on answering.
    let resp = ok(ok(fpm.client()).request(&big_params_request(&fpm, 900_000)));
    assert_eq!(resp.body(), b"Hello, world!\n");
}

// `-F -O` with an error_log file: php-fpm writes its log to stderr, yet holds the file open
// and reopens it on SIGUSR1, so a rotation gets its new (empty) file; nothing is ever
// written into either file.
both!(usr1_reopens_the_error_log_file_under_force_stderr, |kind| {
    let fpm = ok(Fpm::builder(kind).start());
    let file = fpm.error_log_file();
    let moved = fpm.dir().join("fpm.log.1");
    ok(std::fs::rename(&file, &moved));
    ok(fpm.signal(10));
    ok(fpm.wait_log("NOTICE: error log file re-opened", DEADLINE));
    assert!(
        integration::wait_until(DEADLINE, || file.exists()),
        "no new error log file"
    );
    assert_eq!(ok(std::fs::read(&file)), b"");
    assert_eq!(ok(std::fs::read(&moved)), b"");
});

// Beyond php-fpm (whose workers live on as orphans and keep accepting): when the master
// dies, even by SIGKILL, rfpm's workers notice (PR_SET_PDEATHSIG → SIGQUIT); idle ones
// exit at once, a busy one finishes its request first.
#[test]
fn workers_end_with_a_killed_master() {
    let fpm = ok(Fpm::builder(Kind::Rfpm).start());
    let workers = fpm.worker_pids();
    assert_eq!(workers.len(), 2, "{workers:?}");
    let started = fpm.dir().join("started");
    let req = Req::get("slices.php").query(&format!("secs=2&started={}", started.display()));
    let mut client = ok(fpm.client());
    let docroot = fpm.docroot();
    let slow = std::thread::spawn(move || send_on(&mut client, &docroot, &req));
    let pid_in = |p: &std::path::Path| std::fs::read_to_string(p).ok()?.trim().parse().ok();
    assert!(integration::wait_until(DEADLINE, || pid_in(&started).is_some()));
    let busy: u32 = pid_in(&started).unwrap_or_default();
    let idle: Vec<u32> = workers.iter().copied().filter(|&p| p != busy).collect();
    assert_eq!(idle.len(), 1, "{workers:?} busy {busy}");
    ok(integration::send_signal(fpm.master_pid(), 9));
    assert!(
        integration::wait_until(DEADLINE, || !integration::process_alive(idle[0])),
        "the idle worker outlived its master"
    );
    let resp = match slow.join() {
        Ok(r) => ok(r),
        Err(_) => panic!("request thread panicked"),
    };
    assert_eq!(
        String::from_utf8_lossy(resp.body()),
        format!("pid={busy}\ndone\n"),
        "the busy worker finishes its request"
    );
    assert!(
        integration::wait_until(DEADLINE, || !integration::process_alive(busy)),
        "the busy worker outlived its master after its request"
    );
}
