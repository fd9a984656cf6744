//! Issue 16, worker mode: `worker.script` boots a PHP application once per worker and
//! serves the pool's requests through FrankenPHP's `frankenphp_handle_request()`. One
//! worker (pm = static, max_children = 1) runs `fixtures/worker/app.php`, a plain
//! worker script; each test checks what a request sees, or what happens to the worker.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use integration::helpers::{ok, start, text_of};
use integration::{wait_for_file, wait_until, Fpm, FpmBuilder, Kind, Req, DEADLINE};
use serde_json::Value;

fn app_path() -> PathBuf {
    integration::fixtures_dir().join("worker/app.php")
}

/// One worker running the app, its boots appended to `boots`.
fn one_worker(boots: &Path) -> FpmBuilder {
    Fpm::builder(Kind::Rfpm)
        .pool_line("pm.max_children = 1")
        .pool_line(format!("worker.script = {}", app_path().display()))
        .pool_line(format!("env[BOOT_LOG] = {}", boots.display()))
        .pool_line("catch_workers_output = yes")
}

fn boots_of(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

fn json(resp: &integration::fcgi::client::Response) -> Value {
    let text = text_of(resp);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn get(fpm: &Fpm, script: &str, query: &str) -> integration::fcgi::client::Response {
    ok(fpm.send(&Req::get(script).query(query)))
}

/// The app booted a second time, in a new worker: what that worker answers.
fn booted_again(fpm: &Fpm, boots: &Path, before: &Value) -> Value {
    assert!(
        wait_until(DEADLINE, || boots_of(boots) == 2),
        "{}",
        fpm.log()
    );
    let after = json(&get(fpm, "index.php", ""));
    assert_ne!(after["pid"], before["pid"], "{}", fpm.log());
    after
}

/// The app boots once, sees FRANKENPHP_WORKER at boot with PHP_SAPI still fpm-fcgi,
/// and every request reaches it (front controller) with its own SCRIPT_FILENAME,
/// SCRIPT_NAME and REQUEST_URI.
#[test]
fn boots_once_and_serves_every_request() {
    let dir = ok(tempfile::tempdir());
    let boots = dir.path().join("boots");
    let fpm = start(one_worker(&boots));
    for i in 1..=5 {
        let v = json(&get(&fpm, "any/where.php", &format!("i={i}")));
        assert_eq!(v["served"], i, "{v}");
        assert_eq!(v["get"]["i"], i.to_string());
        assert_eq!(
            v["server"]["SCRIPT_FILENAME"],
            format!("{}/any/where.php", fpm.docroot().display())
        );
        assert_eq!(v["server"]["SCRIPT_NAME"], "/any/where.php");
        assert_eq!(v["server"]["REQUEST_URI"], format!("/any/where.php?i={i}"));
        assert_eq!(v["server"]["FRANKENPHP_WORKER"], "1");
        assert_eq!(v["boot"]["worker"], "1");
        assert_eq!(v["boot"]["script"], app_path().display().to_string());
        assert_eq!(v["boot"]["sapi"], "fpm-fcgi");
        assert_eq!(v["boot"]["has_api"], true);
        assert_eq!(v["ignore_user_abort"], 1);
    }
    assert_eq!(boots_of(&boots), 1, "{}", fpm.log());
}

/// After a request that set a header, a 201, a cookie, an output buffer and a session
/// value, the next request sees none of them; globals and statics persist by design.
#[test]
fn per_request_state_is_reset() {
    let dir = ok(tempfile::tempdir());
    let boots = dir.path().join("boots");
    let fpm = start(one_worker(&boots).pool_line(format!(
        "php_value[session.save_path] = {}",
        dir.path().display()
    )));
    let dirty = get(&fpm, "index.php", "do=dirty");
    assert_eq!(dirty.status(), 201, "{}", fpm.log());
    assert_eq!(dirty.header("X-Dirty").as_deref(), Some("yes"));
    assert_eq!(text_of(&dirty), "dirty");
    let v = json(&get(&fpm, "index.php", ""));
    assert_eq!(v["status"], 200, "{v}");
    assert_eq!(v["headers_sent"], false);
    let headers: Vec<String> = v["headers"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|h| h.as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        headers
            .iter()
            .all(|h| !h.contains("X-Dirty") && !h.contains("Set-Cookie")),
        "{headers:?}"
    );
    assert_eq!(v["ob_level"], 0);
    assert_eq!(v["session_status"], 1, "PHP_SESSION_NONE");
    assert_eq!(v["session_set"], false);
    assert_eq!(v["session_id"], "");
    assert_eq!(v["cookie"], serde_json::json!([]));
    // What persists by design.
    assert_eq!(v["leaky"], 1);
    assert_eq!(v["global_leak"], "kept");
    assert_eq!(boots_of(&boots), 1);
}

/// `$_GET`, `$_POST` (form and JSON), `$_FILES` and cookies are each request's own;
/// uploaded files are gone after their request.
#[test]
fn input_is_each_requests_own() {
    let dir = ok(tempfile::tempdir());
    let fpm = start(one_worker(&dir.path().join("boots")).pool_line(format!(
        "php_admin_value[upload_tmp_dir] = {}",
        dir.path().display()
    )));
    let form = json(&ok(fpm.send(
        &Req::post(
            "index.php",
            "application/x-www-form-urlencoded",
            b"a=1&b=two".to_vec(),
        )
        .query("q=form")
        .param("HTTP_COOKIE", "c1=v1"),
    )));
    assert_eq!(
        form["post"],
        serde_json::json!({"a": "1", "b": "two"}),
        "{form}"
    );
    assert_eq!(form["get"], serde_json::json!({"q": "form"}));
    assert_eq!(form["cookie"], serde_json::json!({"c1": "v1"}));
    assert_eq!(form["request"]["a"], "1");
    assert_eq!(form["request"]["q"], "form");
    let body = br#"{"json":true}"#.to_vec();
    let j = json(&ok(fpm.send(&Req::post(
        "index.php",
        "application/json",
        body,
    ))));
    assert_eq!(j["post"], serde_json::json!([]), "{j}");
    assert_eq!(j["get"], serde_json::json!([]));
    assert_eq!(j["cookie"], serde_json::json!([]));
    assert_eq!(j["input"], r#"{"json":true}"#);
    let boundary = "XyZ";
    let multipart = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nfile content\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"field\"\r\n\r\nval\r\n--{boundary}--\r\n"
    );
    let up = json(&ok(fpm.send(&Req::post(
        "index.php",
        &format!("multipart/form-data; boundary={boundary}"),
        multipart.into_bytes(),
    ))));
    assert_eq!(up["files"]["f"]["content"], "file content", "{up}");
    assert_eq!(up["post"], serde_json::json!({"field": "val"}));
    let tmp = up["files"]["f"]["tmp"].as_str().unwrap_or("").to_string();
    assert!(!tmp.is_empty());
    let after = json(&get(&fpm, "index.php", ""));
    assert_eq!(after["files"], serde_json::json!([]), "{after}");
    assert_eq!(after["post"], serde_json::json!([]));
    assert_eq!(after["input"], "");
    assert!(
        !Path::new(&tmp).exists(),
        "the upload {tmp} outlived its request"
    );
}

/// A session belongs only to its cookie: a request without the cookie starts afresh.
#[test]
fn a_session_belongs_to_its_cookie() {
    let dir = ok(tempfile::tempdir());
    let fpm = start(one_worker(&dir.path().join("boots")).pool_line(format!(
        "php_value[session.save_path] = {}",
        dir.path().display()
    )));
    let first = get(&fpm, "index.php", "do=session");
    let v = json(&first);
    assert_eq!(v["n"], 1, "{v}");
    let id = v["id"].as_str().unwrap_or("").to_string();
    assert!(!id.is_empty());
    let cookie = format!("PHPSESSID={id}");
    let again = json(&ok(fpm.send(
        &Req::get("index.php")
            .query("do=session")
            .param("HTTP_COOKIE", &cookie),
    )));
    assert_eq!(again["n"], 2, "{again}");
    assert_eq!(again["id"], id.as_str());
    let other = json(&get(&fpm, "index.php", "do=session"));
    assert_eq!(other["n"], 1, "{other}");
    assert_ne!(other["id"], id.as_str());
}

/// An uncaught exception in the handler: that request gets a 500 (logged as a fatal
/// error), the next one is served by the same booted app.
#[test]
fn an_exception_is_a_500_and_the_app_goes_on() {
    let dir = ok(tempfile::tempdir());
    let boots = dir.path().join("boots");
    let fpm = start(
        one_worker(&boots)
            .define("display_errors", "0")
            .define("log_errors", "1"),
    );
    let before = json(&get(&fpm, "index.php", ""));
    let r = get(&fpm, "index.php", "do=throw");
    assert_eq!(r.status(), 500, "{}", fpm.log());
    assert!(
        r.stderr_str().starts_with(
            "PHP message: PHP Fatal error:  Uncaught LogicException: boom in the handler"
        ),
        "{}",
        r.stderr_str()
    );
    let after = json(&get(&fpm, "index.php", ""));
    assert_eq!(after["pid"], before["pid"]);
    assert_eq!(after["served"], 3);
    assert_eq!(boots_of(&boots), 1);
}

/// `exit()` in the handler: the response so far is delivered, then the app boots again
/// in a new worker.
#[test]
fn exit_delivers_then_boots_again() {
    let dir = ok(tempfile::tempdir());
    let boots = dir.path().join("boots");
    let fpm = start(one_worker(&boots));
    let before = json(&get(&fpm, "index.php", ""));
    let r = get(&fpm, "index.php", "do=exit");
    assert_eq!(text_of(&r), "bye");
    assert_eq!(r.status(), 200);
    let after = booted_again(&fpm, &boots, &before);
    assert_eq!(after["served"], 1);
}

/// `fastcgi_finish_request()` answers before the work after it ends; what the handler
/// prints after it is discarded.
#[test]
fn finish_request_answers_before_the_work_after_it() {
    let dir = ok(tempfile::tempdir());
    let fpm = start(one_worker(&dir.path().join("boots")));
    let (go, done) = (dir.path().join("go"), dir.path().join("done"));
    let r = get(
        &fpm,
        "index.php",
        &format!("do=finish&go={}&done={}", go.display(), done.display()),
    );
    assert_eq!(text_of(&r), "answered");
    assert!(
        !done.exists(),
        "the work after fastcgi_finish_request() ended first"
    );
    ok(std::fs::write(&go, b"go"));
    assert!(wait_for_file(&done, DEADLINE));
    let v = json(&get(&fpm, "index.php", ""));
    assert_eq!(v["served"], 2);
}

/// A 3 MiB response arrives whole.
#[test]
fn a_big_response_arrives_whole() {
    let dir = ok(tempfile::tempdir());
    let fpm = start(one_worker(&dir.path().join("boots")));
    let r = get(&fpm, "index.php", "do=big");
    let line = format!(
        "{}\n",
        "abcdefghijklmnopqrstuvwxyz"
            .repeat(40)
            .get(..1023)
            .unwrap_or("")
    );
    assert_eq!(r.body().len(), 3 * 1024 * 1024);
    assert_eq!(r.body(), line.repeat(3 * 1024).as_bytes());
}

/// `frankenphp_handle_request()` from within its handler, or outside a worker script,
/// throws RuntimeException.
#[test]
fn handle_request_outside_worker_mode_throws() {
    let dir = ok(tempfile::tempdir());
    let fpm = start(one_worker(&dir.path().join("boots")));
    let r = get(&fpm, "index.php", "do=nested");
    assert_eq!(
        text_of(&r),
        "RuntimeException: frankenphp_handle_request() called from its own handler"
    );
    let classic = start(Fpm::builder(Kind::Rfpm));
    let r = ok(classic.request("worker/classic_call.php", &[]));
    assert_eq!(
        text_of(&r),
        "RuntimeException: frankenphp_handle_request() called while not in worker mode"
    );
}

/// `pm.max_requests` counts handled requests: the limit's request is served, then the
/// script's next call returns false and a new worker boots.
#[test]
fn max_requests_recycles() {
    let dir = ok(tempfile::tempdir());
    let boots = dir.path().join("boots");
    let fpm = start(one_worker(&boots).pool_line("pm.max_requests = 3"));
    let pids: Vec<Value> = (0..6)
        .map(|_| json(&get(&fpm, "index.php", ""))["pid"].clone())
        .collect();
    assert_eq!(pids[0], pids[2]);
    assert_ne!(pids[2], pids[3]);
    assert_eq!(pids[3], pids[5]);
    assert!(wait_until(DEADLINE, || boots_of(&boots) >= 2));
    assert!(!fpm.log().contains("WARNING"), "{}", fpm.log());
}

/// A fatal error in the handler (memory_limit): the request gets a 500, the master
/// says why the worker went, and a new worker boots the app again.
#[test]
fn a_fatal_error_replaces_the_worker() {
    let dir = ok(tempfile::tempdir());
    let boots = dir.path().join("boots");
    let fpm = start(
        one_worker(&boots)
            .define("display_errors", "0")
            .define("log_errors", "1"),
    );
    let before = json(&get(&fpm, "index.php", ""));
    let r = get(&fpm, "index.php", "do=fatal");
    assert_eq!(r.status(), 500, "{}", fpm.log());
    assert!(
        r.stderr_str().contains("Allowed memory size"),
        "{}",
        r.stderr_str()
    );
    ok(fpm.wait_log("a fatal error ended the worker script", DEADLINE));
    booted_again(&fpm, &boots, &before);
}

/// A script that fails before its first frankenphp_handle_request(): the master backs
/// off (100 ms, 200 ms, …) rather than loop hot, and after 10 failures in a row stops
/// starting workers for the pool, with an ERROR.
#[test]
fn a_boot_failure_backs_off_then_gives_up() {
    let dir = ok(tempfile::tempdir());
    let boots = dir.path().join("boots");
    let port = ok(integration::free_port());
    let fpm = start(
        one_worker(&boots)
            .pool_line("env[BOOT_FAIL] = 1")
            .global(format!("admin.listen = 127.0.0.1:{port}")),
    );
    ok(fpm.wait_log("failed to boot (1 in a row), next boot in 100 ms", DEADLINE));
    ok(fpm.wait_log("failed to boot (2 in a row), next boot in 200 ms", DEADLINE));
    ok(fpm.wait_log("failed to boot (3 in a row), next boot in 400 ms", DEADLINE));
    // 100+200+...+5000 ms: the tenth failure comes within about 15 s.
    ok(fpm.wait_log(
        "failed to boot 10 times in a row: no worker is started for this pool until the next reload",
        std::time::Duration::from_secs(30),
    ));
    assert!(
        fpm.log().contains("ERROR: [pool www] the worker script"),
        "{}",
        fpm.log()
    );
    assert_eq!(boots_of(&boots), 10);
    assert!(fpm.worker_pids().is_empty());
    // The admin listener's readiness says why (a Kubernetes probe takes the pod out).
    let ready = ready_of(port);
    assert!(
        ready.starts_with("HTTP/1.1 503 ")
            && ready.ends_with("\r\n\r\nnot ready: pool www gave up booting its worker script\n"),
        "{ready}"
    );
}

/// A worker that boots its script takes no request yet: its state is `Booting` (on the
/// status page, counted with the idle workers, and in /metrics), and the admin
/// listener's /ready answers 503 until a worker has booted; then it is Idle and ready.
#[test]
fn a_booting_worker_is_shown_and_not_ready() {
    let dir = ok(tempfile::tempdir());
    let boots = dir.path().join("boots");
    let go = dir.path().join("go");
    let (port, status_port) = (ok(integration::free_port()), ok(integration::free_port()));
    let fpm = start(
        one_worker(&boots)
            .pool_line(format!("env[BOOT_WAIT] = {}", go.display()))
            .pool_line(format!("pm.status_listen = 127.0.0.1:{status_port}"))
            .global(format!("admin.listen = 127.0.0.1:{port}")),
    );
    assert!(
        wait_until(DEADLINE, || boots_of(&boots) == 1),
        "{}",
        fpm.log()
    );
    let status = || {
        let addr = integration::fcgi::client::Addr::Tcp(format!("127.0.0.1:{status_port}"));
        let mut c = ok(integration::connect(&addr));
        let req = Req::get("").param("SCRIPT_NAME", "/").query("json&full");
        json(&ok(integration::send_on(&mut c, &fpm.docroot(), &req)))
    };
    let v = status();
    assert_eq!(v["processes"][0]["state"], "Booting", "{v}");
    assert_eq!(v["idle processes"], 1, "{v}");
    assert_eq!(v["active processes"], 0, "{v}");
    let (code, body) = ok(integration::http_get(port, "/ready", None));
    assert_eq!(
        (code, body.as_str()),
        (503, "not ready: pool www is booting its worker script\n")
    );
    let (_, metrics) = ok(integration::http_get(port, "/metrics", None));
    let booting = metrics
        .lines()
        .find(|l| {
            l.starts_with("phpfpm_process_state{pool=\"www\"") && l.contains("state=\"Booting\"")
        })
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(booting.ends_with(" 1"), "{booting}");

    // The boot ends: the worker is Idle, the pool ready and serving.
    ok(std::fs::write(&go, "go"));
    assert!(
        wait_until(DEADLINE, || ok(integration::http_get(port, "/ready", None))
            .0
            == 200),
        "{}",
        fpm.log()
    );
    assert_eq!(status()["processes"][0]["state"], "Idle");
    let (_, metrics) = ok(integration::http_get(port, "/metrics", None));
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("phpfpm_process_state{pool=\"www\"")
                && l.contains("state=\"Booting\"")
                && l.ends_with(" 0")),
        "{metrics}"
    );
    // The boot's duration: one observation, in the pool's histogram.
    let count = metrics
        .lines()
        .find(|l| l.starts_with("rfpm_worker_boot_duration_seconds_count{pool=\"www\"}"));
    assert_eq!(
        count,
        Some("rfpm_worker_boot_duration_seconds_count{pool=\"www\"} 1"),
        "{metrics}"
    );
    assert_eq!(json(&get(&fpm, "index.php", ""))["served"], 1);
    assert_eq!(boots_of(&boots), 1);
}

/// Without `catch_workers_output` (php-fpm's default), what a worker's boot says still
/// reaches the master's log, so a boot that fails is told with its PHP error; what the
/// requests say afterwards goes nowhere, as in a classic pool.
#[test]
fn the_boot_speaks_without_catch_workers_output() {
    let dir = ok(tempfile::tempdir());
    let boots = dir.path().join("boots");
    let plain = |extra: &str| {
        Fpm::builder(Kind::Rfpm)
            .pool_line("pm.max_children = 1")
            .pool_line(format!("worker.script = {}", app_path().display()))
            .pool_line(format!("env[BOOT_LOG] = {}", boots.display()))
            .pool_line(extra.to_string())
    };
    let fpm = start(plain("env[BOOT_SAY] = the boot says hello"));
    ok(fpm.wait_log("said into stderr: \"the boot says hello\"", DEADLINE));
    let r = ok(fpm.send(&Req::get("index.php").query("do=log")));
    assert_eq!(json(&r)["constants"][0], -4, "{}", text_of(&r));
    // The request's log entries go nowhere (catch_workers_output = no): not even once
    // the master has read all its workers said, at its exit.
    ok(fpm.signal(libc::SIGQUIT));
    ok(fpm.wait_exit(DEADLINE));
    assert!(fpm.log_contains("exiting, bye-bye"), "{}", fpm.log());
    assert!(!fpm.log_contains("plain info"), "{}", fpm.log());
    drop(fpm);

    let fpm = start(plain("env[BOOT_FAIL] = 1"));
    ok(fpm.wait_log("failed to boot (1 in a row)", DEADLINE));
    assert!(
        fpm.log_contains("Uncaught RuntimeException: the application failed to boot"),
        "{}",
        fpm.log()
    );
}

/// `GET /ready` from the admin listener on `port`, the whole answer.
fn ready_of(port: u16) -> String {
    use std::io::{Read, Write};
    let mut s = ok(std::net::TcpStream::connect(("127.0.0.1", port)));
    ok(s.write_all(b"GET /ready HTTP/1.0\r\n\r\n"));
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// request_terminate_timeout ends a long request; time spent idle between requests
/// never counts (the worker waits longer than the timeout between two requests).
#[test]
fn terminate_timeout_counts_only_the_request() {
    let dir = ok(tempfile::tempdir());
    let boots = dir.path().join("boots");
    let fpm = start(one_worker(&boots).pool_line("request_terminate_timeout = 1s"));
    let first = json(&get(&fpm, "index.php", ""));
    // Idle for longer than the timeout: waited for by a request that takes 0.5 s
    // three times, on the same worker.
    for _ in 0..3 {
        let r = get(&fpm, "index.php", "do=slow&secs=0.5");
        assert_eq!(text_of(&r), "slow done", "{}", fpm.log());
    }
    let again = json(&get(&fpm, "index.php", ""));
    assert_eq!(again["pid"], first["pid"], "{}", fpm.log());
    // Idle longer than the timeout on a kept-alive connection, then on none: waited for
    // as the timeout's log line that must not come.
    let mut kept = ok(fpm.client());
    let k = Req::get("index.php").keep_conn(true);
    ok(integration::send_on(&mut kept, &fpm.docroot(), &k));
    assert!(
        fpm.wait_log(
            "execution timed out",
            std::time::Duration::from_millis(2500)
        )
        .is_err(),
        "{}",
        fpm.log()
    );
    let v = json(&ok(integration::send_on(&mut kept, &fpm.docroot(), &k)));
    assert_eq!(v["pid"], first["pid"], "{}", fpm.log());
    drop(kept);
    assert!(
        fpm.wait_log(
            "execution timed out",
            std::time::Duration::from_millis(1500)
        )
        .is_err(),
        "{}",
        fpm.log()
    );
    let v = json(&get(&fpm, "index.php", ""));
    assert_eq!(v["pid"], first["pid"], "{}", fpm.log());
    let r = fpm.send(&Req::get("index.php").query("do=slow&secs=5"));
    assert!(r.map(|r| text_of(&r) != "slow done").unwrap_or(true));
    ok(fpm.wait_log("execution timed out", DEADLINE));
    assert!(
        wait_until(DEADLINE, || boots_of(&boots) == 2),
        "{}",
        fpm.log()
    );
}

/// `-t` refuses a worker.script that is not there, in php-fpm's words.
#[test]
fn config_test_checks_the_worker_script() {
    let fpm = ok(Fpm::builder(Kind::Rfpm)
        .pool_line("worker.script = /nonexistent/worker.php")
        .arg("-t")
        .spawn());
    let status = ok(fpm.wait_exit(DEADLINE));
    assert_ne!(status.code(), Some(0));
    assert!(
        fpm.log().contains(
            "ERROR: [pool www] the worker.script '/nonexistent/worker.php' is not a file the pool's user can read: No such file or directory (2)"
        ),
        "{}",
        fpm.log()
    );
}

/// What a request allocates is released after it: the PHP heap of the worker is the
/// same after 200 more requests (with their own query, cookie and form body).
#[test]
fn the_heap_does_not_grow_per_request() {
    let dir = ok(tempfile::tempdir());
    let fpm = start(one_worker(&dir.path().join("boots")));
    let send = |i: usize| {
        json(&ok(fpm.send(
            &Req::post(
                "index.php",
                "application/x-www-form-urlencoded",
                format!("f={:04}", i).into_bytes(),
            )
            .query(&format!("q={:04}", i))
            .param("HTTP_COOKIE", &format!("c={:04}", i)),
        )))
    };
    for i in 0..50 {
        send(i);
    }
    let before = send(50)["memory"].clone();
    for i in 51..250 {
        send(i);
    }
    let after = send(250)["memory"].clone();
    assert_eq!(before, after, "the PHP heap grew over 200 requests");
}

/// The status page, fpm_get_status() and the access log work in a worker pool; the
/// access log names the request's own script.
#[test]
fn status_and_access_log_work() {
    let dir = ok(tempfile::tempdir());
    let access = dir.path().join("access.log");
    let fpm = start(
        one_worker(&dir.path().join("boots"))
            .pool_line("pm.status_path = /status")
            .pool_line(format!("access.log = {}", access.display()))
            .pool_line("access.format = \"%m %r %s %f\""),
    );
    let v = json(&get(&fpm, "any.php", "do=status"));
    assert_eq!(v["pool"], "www", "{v}");
    assert_eq!(v["accepted"], 1);
    let page = ok(fpm.send(&Req::get("status").param("SCRIPT_NAME", "/status")));
    let text = text_of(&page);
    assert!(text.contains("pool:                 www"), "{text}");
    assert!(text.contains("accepted conn:        2"), "{text}");
    assert!(
        wait_until(DEADLINE, || std::fs::read_to_string(&access)
            .is_ok_and(|l| l.lines().count() >= 2)),
        "{}",
        fpm.log()
    );
    let log = ok(std::fs::read_to_string(&access));
    let first = log.lines().next().unwrap_or("");
    assert_eq!(
        first,
        format!("GET /any.php 200 {}/any.php", fpm.docroot().display())
    );
}

/// The slow log shows the handler's request, with the frames of the worker script
/// under frankenphp_handle_request().
#[test]
fn the_slow_log_shows_the_handlers_request() {
    let dir = ok(tempfile::tempdir());
    let slowlog = dir.path().join("slow.log");
    let fpm = start(
        one_worker(&dir.path().join("boots"))
            .pool_line(format!("slowlog = {}", slowlog.display()))
            .pool_line("request_slowlog_timeout = 1s"),
    );
    let r = get(&fpm, "slow.php", "do=slow&secs=2.5");
    assert_eq!(text_of(&r), "slow done");
    assert!(
        wait_until(DEADLINE, || std::fs::read_to_string(&slowlog)
            .is_ok_and(|l| l.contains("frankenphp_handle_request()"))),
        "{:?}\n{}",
        std::fs::read_to_string(&slowlog),
        fpm.log()
    );
    let log = ok(std::fs::read_to_string(&slowlog));
    assert!(
        log.contains(&format!(
            "script_filename = {}/slow.php",
            fpm.docroot().display()
        )),
        "{log}"
    );
    assert!(log.contains("usleep()"), "{log}");
    assert!(fpm.log().contains("executing too slow"), "{}", fpm.log());
}

/// A reload boots the application again in the new generation.
#[test]
fn a_reload_boots_again() {
    let dir = ok(tempfile::tempdir());
    let boots = dir.path().join("boots");
    let fpm = start(one_worker(&boots));
    let before = json(&get(&fpm, "index.php", ""));
    ok(fpm.signal(libc::SIGUSR2));
    let after = booted_again(&fpm, &boots, &before);
    assert_eq!(after["served"], 1);
}

/// max_execution_time counts each request's own CPU time: three requests of 0.6 s of
/// CPU each pass a 1 s limit (the timer is re-armed per request, disarmed in between);
/// a request of more than 1 s ends with a fatal error, a 500, and a new worker.
#[test]
fn max_execution_time_counts_each_request() {
    let fpm = start(
        Fpm::builder(Kind::Rfpm)
            .pool_line("pm.max_children = 1")
            .pool_line(format!(
                "worker.script = {}",
                integration::fixtures_dir().join("worker/cpu.php").display()
            ))
            .pool_line("php_admin_value[max_execution_time] = 1")
            .define("display_errors", "0")
            .define("log_errors", "1"),
    );
    let mut pids = Vec::new();
    for _ in 0..3 {
        let r = get(&fpm, "index.php", "cpu=0.6");
        assert_eq!(r.status(), 200, "{}\n{}", r.stderr_str(), fpm.log());
        pids.push(json(&r)["pid"].clone());
    }
    assert!(pids.iter().all(|p| *p == pids[0]), "{pids:?}");
    let r = get(&fpm, "index.php", "cpu=3");
    assert_eq!(r.status(), 500, "{}", fpm.log());
    assert!(
        r.stderr_str()
            .contains("Maximum execution time of 1 second exceeded"),
        "{}",
        r.stderr_str()
    );
    ok(fpm.wait_log("a fatal error ended the worker script", DEADLINE));
    let after = json(&get(&fpm, "index.php", "cpu=0"));
    assert_ne!(after["pid"], pids[0]);
}

/// pm = ondemand: a worker is started for the first connection, boots the app, then
/// serves; dynamic keeps its spare workers booted.
#[test]
fn ondemand_and_dynamic_pools_boot_their_workers() {
    let dir = ok(tempfile::tempdir());
    let boots = dir.path().join("boots");
    let fpm = start(
        one_worker(&boots)
            .pool_line("pm = ondemand")
            .pool_line("pm.max_children = 2"),
    );
    assert_eq!(boots_of(&boots), 0);
    let v = json(&get(&fpm, "index.php", "i=1"));
    assert_eq!(v["served"], 1, "{}", fpm.log());
    assert_eq!(boots_of(&boots), 1);
    let dir2 = ok(tempfile::tempdir());
    let boots2 = dir2.path().join("boots");
    let fpm2 = start(
        one_worker(&boots2)
            .pool_line("pm = dynamic")
            .pool_line("pm.max_children = 3")
            .pool_line("pm.start_servers = 2")
            .pool_line("pm.min_spare_servers = 1")
            .pool_line("pm.max_spare_servers = 2"),
    );
    assert!(
        wait_until(DEADLINE, || boots_of(&boots2) == 2),
        "{}",
        fpm2.log()
    );
    let v = json(&get(&fpm2, "index.php", ""));
    assert_eq!(v["served"], 1);
}

/// zlib.output_compression behaves as in a classic pool, where each request starts from
/// the pool's INI values: an `ini_set()` of it compresses that request's response only
/// (the next request starts from the value the boot left, unlike other INI changes,
/// which persist as in FrankenPHP), compression configured for the pool applies to every
/// request, and the encoding is the one each request's client accepts (ext/zlib would
/// keep the first request's and gzip a response for a client that asked for none). The
/// same requests to a classic pool and to a worker pool, with and without
/// `php_value[zlib.output_compression] = 1`, give the same answers.
#[test]
fn output_compression_starts_from_the_pools_value_each_request() {
    // (query, Accept-Encoding) → (Content-Encoding, the ini value the request saw when
    // its body can be read).
    type Step = (
        &'static str,
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
    );
    let unconfigured: &[Step] = &[
        ("do=zlib&set=1", Some("gzip"), Some("gzip"), None),
        ("do=zlib", Some("gzip"), None, Some("0")),
        ("do=zlib&set=1", None, None, Some("1")),
        ("do=zlib&set=1", Some("deflate"), Some("deflate"), None),
        ("do=zlib", Some("gzip, deflate"), None, Some("0")),
    ];
    let configured: &[Step] = &[
        ("do=zlib", Some("gzip"), Some("gzip"), None),
        ("do=zlib&set=0", Some("gzip"), None, Some("0")),
        ("do=zlib", Some("gzip"), Some("gzip"), None),
        ("do=zlib", None, None, Some("1")),
        ("do=zlib", Some("deflate"), Some("deflate"), None),
    ];
    let app = app_path();
    for (steps, value) in [(unconfigured, None), (configured, Some("1"))] {
        for worker in [false, true] {
            let mut b = Fpm::builder(Kind::Rfpm).pool_line("pm.max_children = 1");
            if worker {
                b = b.pool_line(format!("worker.script = {}", app.display()));
            }
            if let Some(v) = value {
                b = b.pool_line(format!("php_value[zlib.output_compression] = {v}"));
            }
            let fpm = start(b);
            let script = if worker {
                "index.php"
            } else {
                "worker/helpers.php"
            };
            for (i, (query, accept, encoding, ini)) in steps.iter().enumerate() {
                let mut req = Req::get(script).query(query);
                if let Some(a) = accept {
                    req = req.param("HTTP_ACCEPT_ENCODING", a);
                }
                let r = ok(fpm.send(&req));
                let what = format!(
                    "step {i} ({query}, {accept:?}), configured {value:?}, worker {worker}"
                );
                assert_eq!(r.header("Content-Encoding").as_deref(), *encoding, "{what}");
                if let Some(ini) = ini {
                    assert_eq!(json(&r)["ini"], *ini, "{what}");
                } else {
                    assert!(r.body().len() < 1000, "{what}: not compressed");
                }
            }
        }
    }
}

/// A worker-mode response carries `X-Powered-By` exactly when a classic one does
/// (`expose_php`, on without a php.ini): each request starts with the headers PHP gives
/// a fresh request.
#[test]
fn x_powered_by_as_in_a_classic_pool() {
    let app = app_path();
    for expose in [None, Some("0")] {
        let mut seen = Vec::new();
        for worker in [false, true] {
            let mut b = Fpm::builder(Kind::Rfpm).pool_line("pm.max_children = 1");
            if worker {
                b = b.pool_line(format!("worker.script = {}", app.display()));
            }
            if let Some(v) = expose {
                b = b.pool_line(format!("php_admin_value[expose_php] = {v}"));
            }
            let fpm = start(b);
            let script = if worker { "index.php" } else { "hello.php" };
            // Twice: the second request of a worker starts from a reset too.
            for _ in 0..2 {
                let r = ok(fpm.send(&Req::get(script)));
                seen.push(r.header("X-Powered-By"));
            }
        }
        let want = expose
            .is_none()
            .then(|| format!("PHP/{}", integration::php_version()));
        assert!(
            seen.iter().all(|h| *h == want),
            "expose_php {expose:?}: {seen:?}, want {want:?}"
        );
    }
}
