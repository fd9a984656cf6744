//! The status page, `pm.status_listen` and the access log (issue `status`, reference §5.5,
//! §9), against rfpm and php-fpm8.2, and the two side by side.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;

use integration::fcgi::client::{Addr, Response};
use integration::{
    both, chromium, connect, send_on, wait_for_file, Fpm, HarnessError, Kind, Req, DEADLINE,
};

fn ok<T>(r: Result<T, HarnessError>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}

/// Pool `www` (static, 2 workers) with a status page answered on its own socket and on
/// the hidden `www_status` pool's socket, and an access log.
fn start(kind: Kind, format: Option<&str>) -> Fpm {
    let mut b = Fpm::builder(kind)
        .pool_line("pm.status_path = /status")
        .pool_line("pm.status_listen = ${HOME}/www_status.sock")
        .pool_line("ping.path = /ping")
        .pool_line("access.log = ${HOME}/access.log");
    if let Some(f) = format {
        b = b.pool_line(format!("access.format = \"{f}\""));
    }
    ok(b.start())
}

fn status_addr(fpm: &Fpm) -> Addr {
    Addr::Unix(fpm.dir().join("www_status.sock"))
}

/// `GET /status?<query>` through the hidden status pool.
fn status(fpm: &Fpm, query: &str) -> Response {
    let mut c = ok(connect(&status_addr(fpm)));
    ok(send_on(
        &mut c,
        &fpm.docroot(),
        &Req::get("status").query(query),
    ))
}

/// A request running `wait.php` until [`Running::finish`]: the state "one request running,
/// one worker idle".
struct Running {
    go: PathBuf,
    handle: Option<thread::JoinHandle<Result<Response, HarnessError>>>,
}

impl Running {
    fn start(fpm: &Fpm) -> Running {
        let started = fpm.dir().join("started");
        let go = fpm.dir().join("go");
        let req = Req::get("wait.php").query(&format!(
            "started={}&go={}",
            started.display(),
            go.display()
        ));
        let addr = fpm.fcgi_addr();
        let docroot = fpm.docroot();
        let handle = thread::spawn(move || {
            let mut c = connect(&addr)?;
            send_on(&mut c, &docroot, &req)
        });
        assert!(
            wait_for_file(&started, DEADLINE),
            "wait.php did not start\n{}",
            fpm.log()
        );
        Running {
            go,
            handle: Some(handle),
        }
    }

    fn finish(mut self) -> Response {
        let _ = std::fs::write(&self.go, b"go");
        match self.handle.take().map(|h| h.join()) {
            Some(Ok(r)) => ok(r),
            _ => panic!("the waiting request failed"),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.go, b"go");
    }
}

both!(status_listen_shows_the_pool, |kind| {
    let fpm = start(kind, None);
    let running = Running::start(&fpm);
    // php-fpm8.2 reads each worker's scoreboard slot without waiting and leaves out one
    // that is locked at that moment: on a busy machine a page can miss the running
    // worker (total 1, active 0). Read again until both workers are on it.
    let mut plain = status(&fpm, "");
    let since = std::time::Instant::now();
    while !plain.stdout_str().contains("total processes:      2\n") && since.elapsed() < DEADLINE {
        thread::yield_now();
        plain = status(&fpm, "");
    }
    assert_eq!(plain.status(), 200);
    let body = plain.stdout_str();
    for line in [
        "pool:                 www\n",
        "process manager:      static\n",
        "accepted conn:        1\n",
        "idle processes:       1\n",
        "active processes:     1\n",
        "total processes:      2\n",
        "max active processes: 1\n",
    ] {
        assert!(body.contains(line), "{line:?} missing in\n{body}");
    }
    assert_eq!(
        plain.header("Content-type").as_deref(),
        Some("text/plain;charset=UTF-8")
    );
    assert_eq!(
        plain.header("Cache-Control").as_deref(),
        Some("no-cache, no-store, must-revalidate, max-age=0")
    );
    assert_eq!(
        plain.header("Expires").as_deref(),
        Some("Thu, 01 Jan 1970 00:00:00 GMT")
    );

    // JSON parses, with the running request's fields.
    let json = status(&fpm, "json&full");
    assert_eq!(
        json.header("Content-Type").as_deref(),
        Some("application/json")
    );
    let v: serde_json::Value = match serde_json::from_slice(json.body()) {
        Ok(v) => v,
        Err(e) => panic!("{e}: {}", json.stdout_str()),
    };
    assert_eq!(v["pool"], "www");
    assert_eq!(v["active processes"], 1);
    let procs = v["processes"].as_array().cloned().unwrap_or_default();
    assert_eq!(procs.len(), 2);
    let run = procs.iter().find(|p| p["state"] == "Running");
    let run = run.cloned().unwrap_or_default();
    assert_eq!(run["request method"], "GET");
    assert!(
        run["request uri"]
            .as_str()
            .unwrap_or_default()
            .starts_with("/wait.php?started="),
        "{run}"
    );
    assert_eq!(
        run["script"],
        fpm.docroot().join("wait.php").display().to_string()
    );

    // OpenMetrics passes a real parser (Python's prometheus_client).
    let om = status(&fpm, "openmetrics");
    assert_eq!(
        om.header("Content-Type").as_deref(),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    check_openmetrics(om.body());

    // HEAD: the cache headers, PHP's default content type, no body.
    let mut c = ok(connect(&status_addr(&fpm)));
    let head = ok(send_on(
        &mut c,
        &fpm.docroot(),
        &Req::get("status")
            .query("json")
            .param("REQUEST_METHOD", "HEAD"),
    ));
    assert!(head.body().is_empty());
    assert_eq!(
        head.header("Content-type").as_deref(),
        Some("text/html; charset=UTF-8")
    );
    running.finish();
});

/// Parses the `openmetrics` page with prometheus_client's Prometheus text-format parser;
/// panics with its error. (Its strict OpenMetrics parser rejects php-fpm 8.2's page
/// itself — `Clashing name: phpfpm_start_since`, counters without `_total` — and rfpm
/// sends the same bytes, so the text-format parser is the one scrapers can use.)
fn check_openmetrics(text: &[u8]) {
    let script = "import sys\n\
from prometheus_client.parser import text_string_to_metric_families\n\
fams = list(text_string_to_metric_families(sys.stdin.read()))\n\
print(len(fams))\n";
    // Debian's python3, where the python3-prometheus-client package installs.
    let mut child = match Command::new("/usr/bin/python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => panic!("python3: {e}"),
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = std::io::Write::write_all(&mut stdin, text);
    }
    let out = match child.wait_with_output() {
        Ok(o) => o,
        Err(e) => panic!("python3: {e}"),
    };
    assert!(
        out.status.success(),
        "OpenMetrics parser (install python3-prometheus-client: make deps) rejected:\n{}\n{}",
        String::from_utf8_lossy(text),
        String::from_utf8_lossy(&out.stderr)
    );
    // php-fpm 8.4 added phpfpm_memory_peak.
    let families = if integration::php_at_least(8, 4) {
        "13"
    } else {
        "12"
    };
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), families);
}

/// Replaces the values that differ between two runs (pids, times, durations) and the temp
/// dir, and sorts the process entries (which worker took the request is not fixed).
fn normalise(fmt: &str, body: &str, dir: &Path) -> String {
    let dir = dir.display().to_string();
    let body = body
        .replace(&dir.replace('/', "\\/"), "DIR")
        .replace(&dir, "DIR");
    let volatile = [
        "pid",
        "start time",
        "start since",
        "request duration",
        "start-time",
        "start-since",
        "request-duration",
        "phpfpm_start_since",
        // php-fpm 8.4: the peak memory of the requests so far, not the same in two FPMs.
        "memory peak",
        "memory-peak",
        "phpfpm_memory_peak",
    ];
    match fmt {
        "json" => {
            let mut v: serde_json::Value = match serde_json::from_str(&body) {
                Ok(v) => v,
                Err(e) => panic!("{e}: {body}"),
            };
            if let Some(o) = v.as_object_mut() {
                for k in volatile {
                    if o.contains_key(k) {
                        o.insert(k.into(), 0.into());
                    }
                }
                if let Some(serde_json::Value::Array(ps)) = o.get_mut("processes") {
                    for p in ps.iter_mut() {
                        if let Some(p) = p.as_object_mut() {
                            for k in volatile {
                                if p.contains_key(k) {
                                    p.insert(k.into(), 0.into());
                                }
                            }
                        }
                    }
                    ps.sort_by_key(|p| p.to_string());
                }
            }
            v.to_string()
        }
        _ => {
            // Line-based: plain ("label: value"), xml/html (one element per line or per
            // process), openmetrics ("name value").
            let mut out: Vec<String> = Vec::new();
            let mut procs: Vec<String> = Vec::new();
            for line in body.split_inclusive('\n') {
                let mut l = line.to_string();
                for k in volatile {
                    l = blank_after(&l, &format!("{k}:"), "\n");
                    l = blank_after(&l, &format!("<{k}>"), "<");
                    l = blank_after(&l, &format!("<{}>", k.replace(' ', "-")), "<");
                    l = blank_after(&l, &format!("{k} "), "\n");
                    // html pool table: <tr><th>start since</th><td>3</td></tr>
                    l = blank_after(&l, &format!("<th>{k}</th><td>"), "<");
                }
                if l.starts_with("<process>") || l.starts_with("<tr><td>") {
                    l = blank_cells(&l);
                    procs.push(l);
                } else {
                    out.push(l);
                }
            }
            procs.sort();
            // Plain "full": sort the process blocks too.
            let text = out.concat();
            let mut blocks: Vec<&str> = text.split("\n************************\n").collect();
            let head = blocks.remove(0).to_string();
            blocks.sort();
            let mut s = head;
            for b in blocks {
                s.push_str("\n************************\n");
                s.push_str(b);
            }
            s.push_str(&procs.concat());
            s
        }
    }
}

/// Replaces what follows `marker` up to `end` with `X`.
fn blank_after(line: &str, marker: &str, end: &str) -> String {
    match line.find(marker) {
        Some(i) => {
            let start = i + marker.len();
            let rest = &line[start..];
            let stop = rest.find(end).unwrap_or(rest.len());
            format!("{}X{}", &line[..start], &rest[stop..])
        }
        None => line.to_string(),
    }
}

/// An html process row: pid, start time, start since and duration cells blanked.
fn blank_cells(line: &str) -> String {
    if !line.starts_with("<tr><td>") {
        return line.to_string();
    }
    let cells: Vec<&str> = line.split("</td><td>").collect();
    cells
        .iter()
        .enumerate()
        .map(|(i, c)| match i {
            0 => "<tr><td>X",
            2 | 3 | 5 => "X",
            _ => c,
        })
        .collect::<Vec<_>>()
        .join("</td><td>")
}

#[test]
fn status_differential_rfpm() {
    let reference = start(Kind::PhpFpm, None);
    let rfpm = start(Kind::Rfpm, None);
    let r1 = Running::start(&reference);
    let r2 = Running::start(&rfpm);
    let mut diffs = Vec::new();
    for (fmt, query) in [
        ("plain", ""),
        ("plain", "full"),
        ("json", "json"),
        ("json", "json&full"),
        ("xml", "xml"),
        ("xml", "xml&full"),
        ("html", "html"),
        ("html", "html&full"),
        ("openmetrics", "openmetrics"),
        ("openmetrics", "openmetrics&full"),
        // A key selects the keyword it begins in php-fpm 8.2; 8.4 needs whole keys.
        (
            if integration::php_at_least(8, 4) {
                "plain"
            } else {
                "json"
            },
            "j&f",
        ),
    ] {
        let want = status(&reference, query);
        let got = status(&rfpm, query);
        let body = |r: &Response| String::from_utf8_lossy(r.body()).into_owned();
        let w = normalise(fmt, &body(&want), reference.dir());
        let g = normalise(fmt, &body(&got), rfpm.dir());
        if w != g {
            diffs.push(format!("?{query}\n--- php-fpm\n{w}\n--- rfpm\n{g}"));
        }
    }
    r1.finish();
    r2.finish();
    assert!(diffs.is_empty(), "{}", diffs.join("\n\n"));
}

/// Every access-log token (reference §5.5).
const EVERY_TOKEN: &str = "%R|%u|%t|%T|%m|%r|%Q|%q|%s|%f|%l|%{milli}d|%d|%{micro}d|%M|%{kilo}M|%C|%{user}C|%{system}C|%n|%p|%P|%{HTTP_HOST}e|%{NOPE}e|%{Content-type}o|%{X-Custom}o|%{Location}o|%{%Y}t|%%";

/// Requests of all kinds; returns the access log once they are done.
fn access_lines(fpm: &Fpm) -> Vec<String> {
    let reqs = [
        Req::get("hello.php"),
        Req::get("query.php").query("a=1&b=%22x%22"),
        Req::get("no-such-script.php"),
        Req::get("headers.php"),
        Req::get("redirect.php"),
        Req::post(
            "post.php",
            "application/x-www-form-urlencoded",
            b"n=42".to_vec(),
        ),
        Req::get("hello.php").param("HTTP_AUTHORIZATION", "Basic Zm9vOmJhcg=="),
        Req::get("hello.php").param("REQUEST_METHOD", "HEAD"),
        Req::get("ping"),
        Req::get("status").query("json"),
    ];
    for r in &reqs {
        ok(fpm.send(r));
    }
    // The line is written before the response ends: it is there now.
    std::fs::read_to_string(fpm.dir().join("access.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Blanks the fields of an every-token line that differ between two runs.
fn normalise_access(line: &str) -> String {
    line.split('|')
        .enumerate()
        .map(|(i, f)| match i {
            // %t %T %{milli}d %d %{micro}d %C %{user}C %{system}C %p %P %{%Y}t
            2 | 3 | 11 | 12 | 13 | 16 | 17 | 18 | 20 | 21 | 27 => "X",
            _ => f,
        })
        .collect::<Vec<_>>()
        .join("|")
}

fn default_normalise(line: &str) -> String {
    // `- -  24/Nov/2026:03:13:26 +0000 "GET /hello.php" 200`: the time is 26 bytes long.
    match line.find(" \"") {
        Some(q) if q >= 26 => format!("{}X{}", &line[..q - 26], &line[q..]),
        _ => line.to_string(),
    }
}

#[test]
fn access_log_differential_rfpm() {
    for format in [None, Some(EVERY_TOKEN)] {
        let reference = start(Kind::PhpFpm, format);
        let rfpm = start(Kind::Rfpm, format);
        let want = access_lines(&reference);
        let got = access_lines(&rfpm);
        assert_eq!(want.len(), 10, "{want:?}");
        let norm = |l: &String, dir: &Path| {
            let l = l.replace(&dir.display().to_string(), "DIR");
            match format {
                None => default_normalise(&l),
                Some(_) => normalise_access(&l),
            }
        };
        let w: Vec<String> = want.iter().map(|l| norm(l, reference.dir())).collect();
        let g: Vec<String> = got.iter().map(|l| norm(l, rfpm.dir())).collect();
        assert_eq!(w, g, "format {format:?}");
        if format.is_some() {
            // The pids are the worker's and the master's.
            let master = rfpm.master_pid().to_string();
            assert!(got
                .iter()
                .all(|l| l.split('|').nth(21) == Some(master.as_str())));
        }
    }
}

both!(access_log_suppress_path, |kind| {
    let fpm = ok(Fpm::builder(kind)
        .pool_line("ping.path = /ping")
        .pool_line("access.log = ${HOME}/access.log")
        .pool_line("access.suppress_path[] = /ping")
        .pool_line("access.suppress_path[] = /hello.php")
        .start());
    ok(fpm.send(&Req::get("ping")));
    ok(fpm.send(&Req::get("hello.php")));
    ok(fpm.send(&Req::get("hello.php").query("x=1")));
    ok(fpm.send(&Req::get("hello.php").param("CONTENT_LENGTH", "100")));
    ok(fpm.send(&Req::post("hello.php", "text/plain", b"abc".to_vec())));
    ok(fpm.send(&Req::get("query.php")));
    let log = std::fs::read_to_string(fpm.dir().join("access.log")).unwrap_or_default();
    let uris: Vec<&str> = log.lines().filter_map(|l| l.split('"').nth(1)).collect();
    assert_eq!(
        uris,
        [
            "GET /hello.php",
            "GET /hello.php",
            "POST /hello.php",
            "GET /query.php"
        ],
        "{log}"
    );
});

both!(access_log_reopened_on_sigusr1, |kind| {
    let fpm = start(kind, None);
    ok(fpm.send(&Req::get("hello.php")));
    let log = fpm.dir().join("access.log");
    let rotated = fpm.dir().join("access.log.1");
    if let Err(e) = std::fs::rename(&log, &rotated) {
        panic!("rename: {e}");
    }
    ok(fpm.signal(libc::SIGUSR1));
    ok(fpm.wait_log("access log file re-opened", DEADLINE));
    assert!(wait_for_file(&log, DEADLINE));
    // Workers were recycled onto the new file: retry until a new worker answers.
    let ok_line = integration::wait_until(DEADLINE, || {
        let _ = fpm.send(&Req::get("query.php"));
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("GET /query.php")
    });
    assert!(ok_line, "{}", fpm.log());
    let old = std::fs::read_to_string(&rotated).unwrap_or_default();
    assert!(old.contains("GET /hello.php"), "{old}");
});

both!(fpm_get_status_array, |kind| {
    let fpm = start(kind, None);
    // php-fpm8.2 was seen to die of SIGSEGV in fpm_get_status() called in the first
    // milliseconds after start: wait until both workers show up idle.
    assert!(integration::wait_until(DEADLINE, || {
        String::from_utf8_lossy(status(&fpm, "").body()).contains("idle processes:       2\n")
    }));
    let dir = fpm.dir().to_path_buf();
    let script = dir.join("fs.php");
    if let Err(e) = std::fs::write(
        &script,
        "<?php $s = fpm_get_status(); echo json_encode([$s['pool'], $s['process-manager'], $s['active-processes'], $s['total-processes'], count($s['procs']), array_keys($s), array_keys($s['procs'][0])]);",
    ) {
        panic!("{e}");
    }
    let r = ok(fpm.send(
        &Req::get("fs.php")
            .param("SCRIPT_FILENAME", &script.display().to_string())
            .param("DOCUMENT_ROOT", &dir.display().to_string()),
    ));
    assert_eq!(
        String::from_utf8_lossy(r.body()),
        format!(
            r#"["www","static",1,2,2,["pool","process-manager","start-time","start-since","accepted-conn","listen-queue","max-listen-queue","listen-queue-len","idle-processes","active-processes","total-processes","max-active-processes","max-children-reached","slow-requests",{}"procs"],["pid","state","start-time","start-since","requests","request-duration","request-method","request-uri","query-string","request-length","user","script","last-request-cpu","last-request-memory"]]"#,
            // php-fpm 8.4 added the pool's memory peak (16 keys).
            if integration::php_at_least(8, 4) {
                r#""memory-peak","#
            } else {
                ""
            }
        ),
        "{}",
        r.stdout_str()
    );
});

both!(status_html_in_chromium, |kind| {
    // nginx passes `*.php` to the FPM: the status page lives at /fpm-status.php.
    let fpm = ok(Fpm::builder(kind)
        .pool_line("pm.status_path = /fpm-status.php")
        .start());
    let site = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("{e}"),
    };
    let page = integration::workspace_dir().join("share/status.html");
    if let Err(e) = std::fs::copy(&page, site.path().join("status.html")) {
        panic!("{}: {e}", page.display());
    }
    let nginx = ok(integration::Nginx::start(&fpm.addr(), site.path()));
    let url = nginx.url("/status.html?url=/fpm-status.php&refresh=0");
    let profile = site.path().join("profile");

    let dom = chromium(&profile, &["--dump-dom"], &url);
    let html = String::from_utf8_lossy(&dom.stdout);
    assert!(
        html.contains("data-loaded=\"1\""),
        "the page did not load the JSON:\n{html}\n{}\n{}",
        String::from_utf8_lossy(&dom.stderr),
        nginx.log()
    );
    assert!(html.contains("<th>pool</th><td>www</td>"), "{html}");
    assert!(
        html.contains("<th>process manager</th><td>static</td>"),
        "{html}"
    );
    // The worker answering the JSON shows itself Running, the other one Idle.
    assert!(
        html.contains("Active processes (<span id=\"n-active\">1</span>)"),
        "{html}"
    );
    assert!(
        html.contains("Idle processes (<span id=\"n-idle\">1</span>)"),
        "{html}"
    );

    let shot =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("status-html-{}.png", kind.name()));
    let _ = std::fs::remove_file(&shot);
    let out = chromium(
        &profile,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,900",
        ],
        &url,
    );
    assert!(
        wait_for_file(&shot, DEADLINE),
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("status.html screenshot: {}", shot.display());
});
