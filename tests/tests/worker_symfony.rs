//! Issue 16, worker mode with a real application: a small Symfony 5.4 app built from
//! Debian's packages (`fixtures/symfony`), its worker front controller
//! (`public/worker.php`, written as FrankenPHP's documentation writes one) on one worker
//! (pm = static, max_children = 1), and its classic front controller beside it.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use integration::fcgi::client::Response;
use integration::helpers::{ok, start, text_of};
use integration::{wait_for_file, wait_until, Fpm, FpmBuilder, Kind, Req, DEADLINE};
use serde_json::Value;

fn app_dir() -> PathBuf {
    integration::fixtures_dir().join("symfony")
}

/// The extensions Symfony needs (the harness runs PHP with -n), errors logged.
fn php(b: FpmBuilder) -> FpmBuilder {
    ["ctype", "iconv", "tokenizer", "mbstring"]
        .iter()
        .fold(b, |b, e| b.define("extension", e))
        .define("display_errors", "0")
        .define("log_errors", "1")
}

fn worker(var: &Path) -> FpmBuilder {
    php(Fpm::builder(Kind::Rfpm))
        .pool_line("pm.max_children = 1")
        .pool_line(format!(
            "worker.script = {}",
            app_dir().join("public/worker.php").display()
        ))
        .pool_line(format!("env[APP_VAR_DIR] = {}", var.display()))
        .pool_line(format!("env[BOOT_LOG] = {}", var.join("boots").display()))
        .pool_line(format!("php_value[session.save_path] = {}", var.display()))
}

fn boots(var: &Path) -> usize {
    std::fs::read_to_string(var.join("boots"))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

/// `path` of the app (REQUEST_URI), as nginx would send it to the front controller.
fn route(path: &str) -> Req {
    Req::get("symfony/public/index.php")
        .param("SCRIPT_NAME", "/index.php")
        .param("REQUEST_URI", path)
}

fn send(fpm: &Fpm, req: &Req) -> Response {
    ok(fpm.send(req))
}

fn json(r: &Response) -> Value {
    let t = text_of(r);
    serde_json::from_str(&t).unwrap_or_else(|e| panic!("not JSON ({e}): {t}"))
}

/// `headers_list()` at a fresh request's start, as a classic request has it.
fn fresh_headers() -> serde_json::Value {
    serde_json::json!([format!("X-Powered-By: PHP/{}", integration::php_version())])
}

#[test]
fn the_app_boots_once_and_a_request_leaves_nothing_behind() {
    let var = ok(tempfile::tempdir());
    let fpm = start(worker(var.path()));
    let first = json(&send(&fpm, &route("/")));
    assert_eq!(first["worker"], "1", "{}", fpm.log());
    let dirty = send(&fpm, &route("/dirty"));
    assert_eq!(dirty.status(), 201, "{}", fpm.log());
    assert_eq!(dirty.header("X-Dirty").as_deref(), Some("yes"));
    assert!(text_of(&dirty).ends_with("dirty"));
    let after = json(&send(&fpm, &route("/")));
    assert_eq!(after["status"], 200, "{after}");
    // Only what PHP gives a fresh request (expose_php is on without a php.ini).
    assert_eq!(after["headers"], fresh_headers());
    assert_eq!(after["ob_level"], 0);
    assert_eq!(after["session_status"], 1);
    assert_eq!(after["cookies"], serde_json::json!([]));
    // The same booted app (its controller counted every request).
    assert_eq!(after["pid"], first["pid"]);
    assert_eq!(after["served"], 2);
    // No session cookie: a fresh session, without the dirty request's value.
    let s = json(&send(&fpm, &route("/session")));
    assert_eq!(s, serde_json::json!({"n": 1, "dirty": null}));
    assert_eq!(boots(var.path()), 1);
}

#[test]
fn input_and_sessions_are_each_requests_own() {
    let var = ok(tempfile::tempdir());
    let fpm = start(worker(var.path()).pool_line(format!(
        "php_admin_value[upload_tmp_dir] = {}",
        var.path().display()
    )));
    let form = json(&send(
        &fpm,
        &Req::post(
            "symfony/public/index.php",
            "application/x-www-form-urlencoded",
            b"a=1".to_vec(),
        )
        .query("q=1")
        .param("SCRIPT_NAME", "/index.php")
        .param("REQUEST_URI", "/input?q=1")
        .param("HTTP_COOKIE", "c=1"),
    ));
    assert_eq!(form["post"], serde_json::json!({"a": "1"}), "{form}");
    assert_eq!(form["query"], serde_json::json!({"q": "1"}));
    assert_eq!(form["cookies"], serde_json::json!({"c": "1"}));
    let j = json(&send(
        &fpm,
        &Req::post(
            "symfony/public/index.php",
            "application/json",
            br#"{"k":"v"}"#.to_vec(),
        )
        .param("SCRIPT_NAME", "/index.php")
        .param("REQUEST_URI", "/input"),
    ));
    assert_eq!(j["json"], serde_json::json!({"k": "v"}), "{j}");
    assert_eq!(j["post"], serde_json::json!([]));
    assert_eq!(j["query"], serde_json::json!([]));
    assert_eq!(j["cookies"], serde_json::json!([]));
    let mp = "--B\r\nContent-Disposition: form-data; name=\"up\"; filename=\"u.txt\"\r\n\r\nuploaded\r\n--B--\r\n";
    let up = json(&send(
        &fpm,
        &Req::post(
            "symfony/public/index.php",
            "multipart/form-data; boundary=B",
            mp.as_bytes().to_vec(),
        )
        .param("SCRIPT_NAME", "/index.php")
        .param("REQUEST_URI", "/input"),
    ));
    assert_eq!(up["files"]["up"]["content"], "uploaded", "{up}");
    let tmp = up["files"]["up"]["path"].as_str().unwrap_or("").to_string();
    let next = json(&send(&fpm, &route("/input")));
    assert_eq!(next["files"], serde_json::json!([]));
    assert!(
        !tmp.is_empty() && !Path::new(&tmp).exists(),
        "{tmp} outlived its request"
    );
    // A session belongs to its cookie only.
    let a = send(&fpm, &route("/session"));
    let cookie = a
        .header("Set-Cookie")
        .and_then(|c| c.split(';').next().map(str::to_string))
        .unwrap_or_default();
    assert!(cookie.starts_with("PHPSESSID="), "{:?}", a.headers());
    let again = json(&send(
        &fpm,
        &route("/session").param("HTTP_COOKIE", &cookie),
    ));
    assert_eq!(again["n"], 2);
    let other = json(&send(&fpm, &route("/session")));
    assert_eq!(other["n"], 1);
}

#[test]
fn an_exception_is_a_500_exit_boots_again() {
    let var = ok(tempfile::tempdir());
    let fpm = start(worker(var.path()));
    let first = json(&send(&fpm, &route("/")));
    assert_eq!(send(&fpm, &route("/boom")).status(), 500);
    let same = json(&send(&fpm, &route("/")));
    assert_eq!(same["pid"], first["pid"]);
    assert_eq!(boots(var.path()), 1);
    let bye = send(&fpm, &route("/exit"));
    assert_eq!(text_of(&bye), "bye");
    assert!(
        wait_until(DEADLINE, || boots(var.path()) == 2),
        "{}",
        fpm.log()
    );
    let new = json(&send(&fpm, &route("/")));
    assert_ne!(new["pid"], first["pid"]);
}

#[test]
fn finish_big_response_and_max_requests() {
    let var = ok(tempfile::tempdir());
    let fpm = start(worker(var.path()).pool_line("pm.max_requests = 4"));
    let (go, done) = (var.path().join("go"), var.path().join("done"));
    let q = format!("go={}&done={}", go.display(), done.display());
    let r = send(&fpm, &route(&format!("/finish?{q}")).query(&q));
    assert_eq!(text_of(&r), "answered", "{}", fpm.log());
    assert!(!done.exists());
    ok(std::fs::write(&go, b"go"));
    assert!(wait_for_file(&done, DEADLINE));
    let big = send(&fpm, &route("/big"));
    assert_eq!(big.body().len(), 3 * 1024 * 1024);
    let pids: Vec<Value> = (0..4)
        .map(|_| json(&send(&fpm, &route("/")))["pid"].clone())
        .collect();
    // Requests 3 and 4 end the first worker's four; 5 and 6 are a new worker's.
    assert_eq!(pids[0], pids[1]);
    assert_ne!(pids[1], pids[2]);
    assert_eq!(pids[2], pids[3]);
    assert!(wait_until(DEADLINE, || boots(var.path()) == 2));
}

/// The classic front controller of the same app, in a classic pool: it boots the kernel
/// for every request and answers the same.
#[test]
fn the_classic_front_controller_serves_the_same_app() {
    let var = ok(tempfile::tempdir());
    let fpm = start(
        php(Fpm::builder(Kind::Rfpm))
            .pool_line(format!("env[APP_VAR_DIR] = {}", var.path().display()))
            .pool_line(format!(
                "php_value[session.save_path] = {}",
                var.path().display()
            )),
    );
    let v = json(&send(&fpm, &route("/")));
    assert_eq!(v["worker"], Value::Null, "{v}");
    assert_eq!(v["served"], 1);
    let v = json(&send(&fpm, &route("/")));
    assert_eq!(v["served"], 1);
    assert_eq!(send(&fpm, &route("/dirty")).status(), 201);
}

/// Behind nginx, with the server block Symfony's documentation gives (every path to
/// `index.php`) and FastCGI keep-alive: the worker-mode app answers its routes, and a
/// request's state stays its own over kept-alive connections.
#[test]
fn behind_nginx_with_keep_alive() {
    let var = ok(tempfile::tempdir());
    let fpm = start(worker(var.path()));
    let public = app_dir().join("public");
    let sock = fpm.addr();
    let nginx = ok(integration::Nginx::start_server(|port| {
        format!(
            "upstream fpm {{\n    server unix:{sock};\n    keepalive 4;\n}}\n\
             server {{\n    listen 127.0.0.1:{port};\n    root {root};\n\
             location / {{\n        try_files $uri /index.php$is_args$args;\n    }}\n\
             location ~ ^/index\\.php(/|$) {{\n        fastcgi_pass fpm;\n\
                     fastcgi_keep_conn on;\n\
                     fastcgi_split_path_info ^(.+\\.php)(/.*)$;\n\
                     include /etc/nginx/fastcgi_params;\n\
                     fastcgi_param SCRIPT_FILENAME $realpath_root$fastcgi_script_name;\n\
                     fastcgi_param DOCUMENT_ROOT $realpath_root;\n        internal;\n    }}\n}}\n",
            root = public.display()
        )
    }));
    let dirty = ok(nginx.curl("/dirty", &[]));
    assert_eq!(dirty.status, 201, "{}\n{}", nginx.log(), fpm.log());
    for _ in 0..5 {
        let r = ok(nginx.curl("/?a=1", &[]));
        assert_eq!(r.status, 200);
        let v: Value = serde_json::from_str(&r.body_str()).unwrap_or(Value::Null);
        assert_eq!(
            v["query"],
            serde_json::json!({"a": "1"}),
            "{}",
            r.body_str()
        );
        assert_eq!(v["cookies"], serde_json::json!([]));
        assert_eq!(v["headers"], fresh_headers());
        assert_eq!(v["worker"], "1");
    }
    assert!(ok(nginx.curl("/session", &[]))
        .body_str()
        .contains("\"n\":1"));
    assert_eq!(boots(var.path()), 1, "{}", fpm.log());
}
