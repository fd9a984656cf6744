//! JSON logs and request ids (issue 15, the logging half): `log_format = json`,
//! `access.log_format = json`, `request_id.server_var`, the id in the access log, the
//! error log and the slow log. rfpm only, except the check that `$_SERVER` stays
//! php-fpm's by default (run against both).
#![forbid(unsafe_code)]

use std::path::Path;

use integration::fcgi::client::ClientRequest;
use integration::helpers::{ok, pid_of, start, text_of};
use integration::{both, connect, nginx_params, wait_until, Fpm, Kind, Req, DEADLINE};
use serde_json::Value;

/// Every line of `text` as JSON; panics (with the text) on a line that is not one object.
fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| match serde_json::from_str::<Value>(l) {
            Ok(v) if v.is_object() => v,
            _ => panic!("not a JSON object: {l:?}\n--- whole log:\n{text}"),
        })
        .collect()
}

/// The JSON error log entries whose `msg` contains `pattern`.
fn entries_with(fpm: &Fpm, pattern: &str) -> Vec<Value> {
    json_lines(&fpm.log())
        .into_iter()
        .filter(|v| v["msg"].as_str().is_some_and(|m| m.contains(pattern)))
        .collect()
}

/// Waits until the JSON error log has an entry whose `msg` contains `pattern`.
fn wait_entry(fpm: &Fpm, pattern: &str) -> Value {
    let mut found = None;
    let seen = wait_until(DEADLINE, || {
        found = entries_with(fpm, pattern).into_iter().next();
        found.is_some()
    });
    assert!(seen, "no entry with {pattern:?} in\n{}", fpm.log());
    found.unwrap_or_default()
}

/// Waits until `path` has at least `n` lines and returns them as JSON.
fn wait_json_file(path: &Path, n: usize) -> Vec<Value> {
    let mut text = String::new();
    let enough = wait_until(DEADLINE, || {
        text = std::fs::read_to_string(path).unwrap_or_default();
        text.lines().count() >= n
    });
    assert!(
        enough,
        "fewer than {n} lines in {}:\n{text}",
        path.display()
    );
    json_lines(&text)
}

fn is_generated_id(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[test]
fn a_long_worker_line_is_one_json_entry() {
    let fpm = start(
        Fpm::builder(Kind::Rfpm)
            .global("log_format = json")
            .global("log_limit = 8192")
            .pool_line("catch_workers_output = yes"),
    );
    let r = ok(fpm.send(&Req::get("jsonlog.php").query("mode=long")));
    let pid = pid_of(&r);
    let e = wait_entry(&fpm, "0123456789");
    let msg = e["msg"].as_str().unwrap_or_default();
    assert_eq!(msg.len(), 5000, "{e}");
    assert_eq!(msg, format!("{}0123456789", "x".repeat(4990)));
    assert_eq!(e["level"], "warning");
    assert_eq!(e["pool"], "www");
    assert_eq!(e["stream"], "stderr");
    assert_eq!(e["child"].as_u64(), Some(u64::from(pid)));
    assert!(e["time"]
        .as_str()
        .is_some_and(|t| t.len() == 24 && t.ends_with('Z')));
    // One entry: no line of the log holds part of it.
    let lines = fpm
        .log()
        .lines()
        .filter(|l| l.contains("xxxxxxxxxx"))
        .count();
    assert_eq!(lines, 1, "{}", fpm.log());
}

#[test]
fn worker_bytes_are_escaped() {
    let fpm = start(
        Fpm::builder(Kind::Rfpm)
            .global("log_format = json")
            .pool_line("catch_workers_output = yes")
            .pool_line("decorate_workers_output = no"),
    );
    ok(fpm.send(&Req::get("jsonlog.php").query("mode=bytes")));
    let e = wait_entry(&fpm, "end");
    assert_eq!(
        e["msg"].as_str(),
        Some(String::from_utf8_lossy(b"q\"b\\c\x01\x1f\xff\xc3(\tend").as_ref())
    );
}

/// Start, a request with worker output, a child killed, a reload, a stop: every line of
/// the error log is a JSON object.
#[test]
fn every_error_log_line_is_json() {
    let fpm = start(
        Fpm::builder(Kind::Rfpm)
            .log_to_file()
            .global("log_format = json")
            .pool_line("catch_workers_output = yes")
            .pool_line("pm.max_children = 1"),
    );
    let r = ok(fpm.send(&Req::get("stderr.php")));
    assert_eq!(text_of(&r), "ok\n");
    let said = wait_entry(&fpm, "to stderr");
    assert!(is_generated_id(&said["request_id"]), "{said}");
    let worker = fpm.worker_pids();
    assert_eq!(worker.len(), 1);
    ok(integration::send_signal(worker[0], libc::SIGKILL));
    let exited = wait_entry(&fpm, "exited on signal 9 (SIGKILL)");
    assert_eq!(exited["pool"], "www");
    assert_eq!(exited["child"].as_u64(), Some(u64::from(worker[0])));
    assert_eq!(exited["level"], "warning");
    ok(fpm.signal(libc::SIGUSR2));
    assert!(wait_until(DEADLINE, || entries_with(
        &fpm,
        "ready to handle connections"
    )
    .len()
        >= 2));
    let r = ok(fpm.send(&Req::get("stderr.php")));
    assert_eq!(text_of(&r), "ok\n");
    assert!(wait_until(DEADLINE, || entries_with(&fpm, "to stderr")
        .len()
        >= 2));
    ok(fpm.signal(libc::SIGQUIT));
    ok(fpm.wait_exit(DEADLINE));
    let all = json_lines(&fpm.log());
    for want in [
        "fpm is running",
        "Reloading in progress",
        "exiting, bye-bye!",
    ] {
        assert!(
            all.iter()
                .any(|v| v["msg"].as_str().is_some_and(|m| m.contains(want))),
            "{want}\n{}",
            fpm.log()
        );
    }
    for v in &all {
        assert!(
            v["time"].is_string() && v["level"].is_string() && v["pid"].is_u64(),
            "{v}"
        );
    }
}

/// Params sent directly over FastCGI, bytes and all.
fn raw_request(fpm: &Fpm, uri: &[u8], query: &[u8], extra: &[(&str, &[u8])]) -> u32 {
    let docroot = fpm.docroot();
    let mut req = ClientRequest::new();
    for (k, v) in nginx_params(&docroot, "jsonlog.php", "GET", "", "", "") {
        match k.as_str() {
            "REQUEST_URI" => req = req.param(k, uri),
            "QUERY_STRING" => req = req.param(k, query),
            _ => req = req.param(k, v),
        }
    }
    for (k, v) in extra {
        req = req.param(k, v);
    }
    let mut client = ok(connect(&fpm.fcgi_addr()));
    let resp = ok(client.request(&req));
    pid_of(&resp)
}

#[test]
fn access_log_json_escapes_every_uri() {
    let logs = ok(tempfile::tempdir());
    let access = logs.path().join("access.log");
    let fpm = start(
        Fpm::builder(Kind::Rfpm)
            .pool_line(format!("access.log = {}", access.display()))
            .pool_line("access.log_format = json"),
    );
    let uris: [&[u8]; 5] = [
        b"/jsonlog.php?a=\"quoted\"",
        b"/jsonlog.php/back\\slash",
        b"/jsonlog.php?c=\x01\x02\x1f\t\r\n",
        b"/jsonlog.php?bad=\xff\xfe\xc3(",
        b"/jsonlog.php?pct=%22%5C%00%FF",
    ];
    let mut pids = Vec::new();
    for uri in uris {
        let query = uri.splitn(2, |&b| b == b'?').nth(1).unwrap_or_default();
        pids.push(raw_request(&fpm, uri, query, &[]));
    }
    let lines = wait_json_file(&access, uris.len());
    assert_eq!(lines.len(), uris.len());
    for ((v, uri), pid) in lines.iter().zip(uris).zip(pids) {
        let query = uri.splitn(2, |&b| b == b'?').nth(1).unwrap_or_default();
        assert_eq!(
            v["uri"].as_str(),
            Some(String::from_utf8_lossy(uri).as_ref())
        );
        assert_eq!(
            v["query"].as_str(),
            Some(String::from_utf8_lossy(query).as_ref())
        );
        assert_eq!(v["method"], "GET");
        assert_eq!(v["status"], 200);
        assert_eq!(v["pool"], "www");
        assert_eq!(v["pid"].as_u64(), Some(u64::from(pid)));
        assert_eq!(v["remote_addr"], "127.0.0.1");
        assert_eq!(v["content_length"], 0);
        assert!(v["user"].is_null());
        let script = fpm.docroot().join("jsonlog.php").display().to_string();
        assert_eq!(v["script"].as_str(), Some(script.as_str()));
        assert!(v["duration_ms"].as_f64().is_some_and(|d| d > 0.0), "{v}");
        assert!(v["cpu_ms"].as_f64().is_some_and(|d| d >= 0.0), "{v}");
        assert!(v["memory_bytes"].as_u64().is_some_and(|m| m > 0), "{v}");
        assert!(v["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{v}");
        assert!(is_generated_id(&v["request_id"]), "{v}");
    }
}

/// The id from `X-Request-Id` in the access log, the worker's line written during the
/// request, the slow log, and `$_SERVER` through `request_id.server_var`.
#[test]
fn request_id_from_the_web_server_is_everywhere() {
    let logs = ok(tempfile::tempdir());
    let access = logs.path().join("access.log");
    let slowlog = logs.path().join("slow.log");
    let fpm = start(
        Fpm::builder(Kind::Rfpm)
            .global("log_format = json")
            .pool_line("pm.max_children = 1")
            .pool_line("catch_workers_output = yes")
            .pool_line(format!("access.log = {}", access.display()))
            .pool_line("access.log_format = json")
            .pool_line("request_slowlog_timeout = 1")
            .pool_line(format!("slowlog = {}", slowlog.display()))
            .pool_line("request_id.server_var = REQUEST_ID"),
    );
    let id = "f81d4fae-7dec-11d0-a765-00a0c91e6bf6";
    let r = ok(fpm.send(
        &Req::get("jsonlog.php")
            .query("mode=id&ms=2500&var=REQUEST_ID")
            .param("HTTP_X_REQUEST_ID", id),
    ));
    assert!(
        text_of(&r).contains(&format!("id={id}\n")),
        "{}",
        text_of(&r)
    );
    let line = wait_entry(&fpm, "during the request");
    assert_eq!(line["request_id"], id, "{line}");
    let slow = wait_entry(&fpm, "executing too slow");
    assert_eq!(slow["request_id"], id, "{slow}");
    let mut text = String::new();
    assert!(wait_until(DEADLINE, || {
        text = std::fs::read_to_string(&slowlog).unwrap_or_default();
        text.contains("usleep()")
    }));
    assert!(text.contains(&format!("\nrequest_id = {id}\n")), "{text}");
    let entries = wait_json_file(&access, 1);
    assert_eq!(entries[0]["request_id"], id);

    // No header (or an unusable one): a generated id, in $_SERVER and the access log.
    let r = ok(fpm.send(
        &Req::get("jsonlog.php")
            .query("mode=id&var=REQUEST_ID")
            .param("HTTP_X_REQUEST_ID", "not a valid id\""),
    ));
    let body = text_of(&r);
    let got = body
        .lines()
        .find_map(|l| l.strip_prefix("id="))
        .unwrap_or_default()
        .to_string();
    assert!(is_generated_id(&Value::from(got.clone())), "{body}");
    let entries = wait_json_file(&access, 2);
    assert_eq!(entries[1]["request_id"].as_str(), Some(got.as_str()));
    assert!(wait_until(DEADLINE, || entries_with(
        &fpm,
        "during the request"
    )
    .iter()
    .any(|e| e["request_id"].as_str() == Some(got.as_str()))));
}

// `$_SERVER` is php-fpm's when no directive asks for the id: the header is passed on
// as a param like any other, nothing is added.
both!(server_vars_unchanged_by_default, |kind| {
    let fpm = start(Fpm::builder(kind));
    let r = ok(fpm.send(&Req::get("env.php").param("HTTP_X_REQUEST_ID", "abc-1")));
    let body = text_of(&r);
    let server: Vec<&str> = body
        .split("--\n")
        .next()
        .unwrap_or_default()
        .lines()
        .collect();
    assert!(server.contains(&"HTTP_X_REQUEST_ID=abc-1"), "{body}");
    assert!(
        !server.iter().any(|l| l.starts_with("REQUEST_ID=")),
        "{body}"
    );
    assert_eq!(
        server.iter().filter(|l| l.contains("abc-1")).count(),
        1,
        "{body}"
    );
});

/// A php-fpm configuration writes php-fpm's lines: no JSON, no id in the slow log.
#[test]
fn plain_stays_plain() {
    let logs = ok(tempfile::tempdir());
    let access = logs.path().join("access.log");
    let fpm = start(
        Fpm::builder(Kind::Rfpm)
            .pool_line("catch_workers_output = yes")
            .pool_line(format!("access.log = {}", access.display())),
    );
    ok(fpm.send(&Req::get("stderr.php").param("HTTP_X_REQUEST_ID", "abc-1")));
    ok(fpm.wait_log("said into stderr: \"to stderr\"", DEADLINE));
    assert!(!fpm.log().contains('{'), "{}", fpm.log());
    let mut text = String::new();
    assert!(wait_until(DEADLINE, || {
        text = std::fs::read_to_string(&access).unwrap_or_default();
        !text.is_empty()
    }));
    assert!(text.ends_with("\"GET /stderr.php\" 200\n"), "{text}");
}

/// `-t` refuses a bad value as php-fpm refuses one; `-tt` prints the directives when set.
#[test]
fn test_mode_checks_and_dumps() {
    let bad = Fpm::builder(Kind::Rfpm)
        .global("log_format = yaml")
        .arg("-t");
    let fpm = ok(bad.spawn());
    let status = ok(fpm.wait_exit(DEADLINE));
    assert_eq!(status.code(), Some(78));
    assert!(
        fpm.log().contains(
            "unable to parse value for entry 'log_format': invalid value (plain or json)"
        ),
        "{}",
        fpm.log()
    );
    let bad = Fpm::builder(Kind::Rfpm)
        .pool_line("request_id.server_var = \"A-B\"")
        .arg("-t");
    let fpm = ok(bad.spawn());
    assert_eq!(ok(fpm.wait_exit(DEADLINE)).code(), Some(78));
    assert!(
        fpm.log()
            .contains("ERROR: [pool www] request_id.server_var 'A-B' is not a valid variable name"),
        "{}",
        fpm.log()
    );
    let good = Fpm::builder(Kind::Rfpm)
        .global("log_format = json")
        .pool_line("access.log_format = json")
        .pool_line("request_id.server_var = REQUEST_ID")
        .arg("-tt");
    let fpm = ok(good.spawn());
    assert_eq!(ok(fpm.wait_exit(DEADLINE)).code(), Some(0));
    let log = fpm.log();
    for want in [
        "\\tlog_format = json",
        "\\taccess.log_format = json",
        "\\trequest_id.server_var = REQUEST_ID",
    ] {
        assert!(log.contains(want), "{want}\n{log}");
    }
}

/// A plain access log can carry the request's id too: `request_id.server_var` makes it
/// a param, which `%{NAME}e` prints (php-fpm's own token, no new syntax).
#[test]
fn a_plain_access_log_prints_the_id_through_e() {
    let logs = ok(tempfile::tempdir());
    let access = logs.path().join("access.log");
    let fpm = start(
        Fpm::builder(Kind::Rfpm)
            .pool_line("pm.max_children = 1")
            .pool_line(format!("access.log = {}", access.display()))
            .pool_line("access.format = \"%s %{REQUEST_ID}e\"")
            .pool_line("request_id.server_var = REQUEST_ID"),
    );
    let id = "f81d4fae-7dec-11d0-a765-00a0c91e6bf6";
    ok(fpm.send(
        &Req::get("jsonlog.php")
            .query("mode=id&var=REQUEST_ID")
            .param("HTTP_X_REQUEST_ID", id),
    ));
    let r = ok(fpm.send(&Req::get("jsonlog.php").query("mode=id&var=REQUEST_ID")));
    let generated = text_of(&r)
        .lines()
        .find_map(|l| l.strip_prefix("id="))
        .unwrap_or_default()
        .to_string();
    assert!(
        is_generated_id(&Value::from(generated.clone())),
        "{}",
        text_of(&r)
    );
    let mut text = String::new();
    assert!(wait_until(DEADLINE, || {
        text = std::fs::read_to_string(&access).unwrap_or_default();
        text.lines().count() >= 2
    }));
    assert_eq!(text, format!("200 {id}\n200 {generated}\n"));
}
