//! The `foundation` issue: a real FPM serving real FastCGI requests. Every test runs against
//! both rfpm and php-fpm8.2 with the same configuration (`<name>::rfpm`, `<name>::phpfpm`).
#![forbid(unsafe_code)]

use std::collections::BTreeSet;

use integration::{both, md5_hex, send_on, wait_for_file, Fpm, HarnessError, Kind, Req, DEADLINE};

fn start(kind: Kind) -> Fpm {
    match Fpm::builder(kind).start() {
        Ok(f) => f,
        Err(e) => panic!("starting {}: {e}", kind.name()),
    }
}

fn ok<T>(r: Result<T, HarnessError>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `key=value` lines of a body, in order.
fn fields(body: &[u8]) -> Vec<(String, String)> {
    text(body)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn field(body: &[u8], key: &str) -> String {
    match fields(body).into_iter().find(|(k, _)| k == key) {
        Some((_, v)) => v,
        None => panic!("no {key}= in body {:?}", text(body)),
    }
}

fn num(body: &[u8], key: &str) -> u64 {
    let v = field(body, key);
    match v.parse() {
        Ok(n) => n,
        Err(_) => panic!("{key}={v:?} is not a number"),
    }
}

both!(hello_world, |kind| {
    let fpm = start(kind);
    let resp = ok(fpm.request("hello.php", &[]));
    assert_eq!(text(resp.body()), "Hello, world!\n");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.header("Status"), None, "no Status header for 200");
    assert_eq!(
        resp.header("Content-type").as_deref(),
        Some("text/html; charset=UTF-8")
    );
    // expose_php defaults to On without a php.ini: X-Powered-By: PHP/8.x.y comes first.
    let headers = resp.headers();
    let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["X-Powered-By", "Content-type"], "{headers:?}");
    let powered = resp.header("X-Powered-By").unwrap_or_default();
    assert!(
        powered.starts_with(&format!("PHP/{}.", integration::php_mm())),
        "X-Powered-By: {powered}"
    );
    assert_eq!(resp.app_status, 0);
    assert_eq!(resp.protocol_status, 0);
    assert_eq!(text(&resp.stderr), "", "no FastCGI stderr");
    assert_framing(&resp);
});

/// FastCGI framing as php-fpm writes it: every record padded to a multiple of 8, no empty
/// STDOUT/STDERR record, END_REQUEST (8 bytes) last.
fn assert_framing(resp: &integration::fcgi::client::Response) {
    const STDOUT: u8 = 6;
    const STDERR: u8 = 7;
    const END_REQUEST: u8 = 3;
    let recs = &resp.records;
    assert_eq!(
        recs.last().map(|r| (r.0, r.1)),
        Some((END_REQUEST, 8)),
        "{recs:?}"
    );
    for &(kind, len, pad) in recs {
        assert_eq!(
            (usize::from(len) + usize::from(pad)) % 8,
            0,
            "padding: {recs:?}"
        );
        if kind == STDOUT || kind == STDERR {
            assert!(len > 0, "empty stream record: {recs:?}");
        }
    }
}

both!(get_query_values, |kind| {
    let fpm = start(kind);
    let resp = ok(fpm.send(&Req::get("query.php").query("a=1&b=hello%20world&c[]=x&c[]=y")));
    assert_eq!(resp.status(), 200);
    assert_eq!(
        text(resp.body()),
        "QUERY_STRING=a=1&b=hello%20world&c[]=x&c[]=y\na=1\nb=hello world\nc=array(x,y)\n"
    );
});

both!(post_urlencoded, |kind| {
    let fpm = start(kind);
    let body = b"name=J%C3%B6rg&empty=&sum=1%2B1%3D2".to_vec();
    let resp = ok(fpm.send(&Req::post(
        "post.php",
        "application/x-www-form-urlencoded",
        body,
    )));
    assert_eq!(resp.status(), 200);
    assert_eq!(
        text(resp.body()),
        "REQUEST_METHOD=POST\nname=J\u{f6}rg\nempty=\nsum=1+1=2\n"
    );
});

both!(post_multipart_upload, |kind| {
    let fpm = start(kind);
    // 100 KiB of non-text bytes, so the upload is not trivially small.
    let file: Vec<u8> = (0..100 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let boundary = "----itestBoundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"field\"\r\n\r\nfield value\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"upload\"; filename=\"data.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(&file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let ct = format!("multipart/form-data; boundary={boundary}");
    let resp = ok(fpm.send(&Req::post("upload.php", &ct, body)));
    assert_eq!(resp.status(), 200, "{}", resp.stdout_str());
    let want_md5 = ok(md5_hex(&file));
    assert_eq!(
        text(resp.body()),
        format!(
            "name=data.bin\ntype=application/octet-stream\nsize={}\nerror=0\nmd5={want_md5}\nfield=field value\n",
            file.len()
        )
    );
});

both!(post_4mb_php_input, |kind| {
    let fpm = start(kind);
    let body: Vec<u8> = (0..4 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_246_822_519) >> 11) as u8)
        .collect();
    let want = format!("{} {}\n", body.len(), ok(md5_hex(&body)));
    let resp = ok(fpm.send(&Req::post("input.php", "application/octet-stream", body)));
    assert_eq!(resp.status(), 200);
    assert_eq!(text(resp.body()), want);
});

both!(custom_header_and_status_418, |kind| {
    let fpm = start(kind);
    let resp = ok(fpm.request("headers.php", &[]));
    assert_eq!(resp.status(), 418);
    let headers = resp.headers();
    // The generated Status header comes first; code 418 has no standard reason in PHP's table.
    assert_eq!(
        headers.first().map(|(n, v)| (n.as_str(), v.as_str())),
        Some(("Status", "418")),
        "{headers:?}"
    );
    assert_eq!(resp.header("X-Custom").as_deref(), Some("custom-value"));
    assert_eq!(text(resp.body()), "teapot\n");
});

both!(location_gives_302, |kind| {
    let fpm = start(kind);
    let resp = ok(fpm.request("redirect.php", &[]));
    let headers = resp.headers();
    assert_eq!(
        headers.first().map(|(n, v)| (n.as_str(), v.as_str())),
        Some(("Status", "302 Found")),
        "{headers:?}"
    );
    assert_eq!(resp.header("Location").as_deref(), Some("/x"));
    assert_eq!(resp.body(), b"");
});

both!(missing_script_404, |kind| {
    let fpm = start(kind);
    let resp = ok(fpm.request("no-such-script.php", &[]));
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.header("Status").as_deref(), Some("404 Not Found"));
    assert_eq!(text(resp.body()), "File not found.\n");
    assert_eq!(
        resp.header("Content-type").as_deref(),
        Some("text/html; charset=UTF-8")
    );
    assert_eq!(text(&resp.stderr), "Primary script unknown");
    assert_eq!(resp.app_status, 0);
    assert_framing(&resp);
});

both!(fastcgi_finish_request_ends_response_early, |kind| {
    let fpm = start(kind);
    let go = fpm.dir().join("go");
    let marker = fpm.dir().join("marker");
    let query = format!("go={}&marker={}", go.display(), marker.display());
    // The script cannot write the marker before `go` exists, and `go` is created only after
    // the whole response (up to END_REQUEST) has arrived: the response ended while the script
    // was still running.
    let resp = ok(fpm.send(&Req::get("finish.php").query(&query)));
    assert!(!marker.exists(), "marker written before the test said go");
    assert_eq!(text(resp.body()), "before finish\n");
    assert_eq!(resp.status(), 200);
    ok(std::fs::write(&go, b"go").map_err(|e| HarnessError::Other(e.to_string())));
    assert!(
        wait_for_file(&marker, DEADLINE),
        "the script did not go on after fastcgi_finish_request()"
    );
    let got = ok(std::fs::read_to_string(&marker).map_err(|e| HarnessError::Other(e.to_string())));
    assert_eq!(got, "done finish=true");
});

both!(sapi_name_is_fpm_fcgi, |kind| {
    let fpm = start(kind);
    let resp = ok(fpm.request("sapi.php", &[]));
    assert_eq!(text(resp.body()), "fpm-fcgi\nfpm-fcgi\n");
});

// PHP_BINARY is the FPM's own executable, by its real path (php-fpm8.2 sets it from argv[0]).
both!(php_binary_is_the_fpm, |kind| {
    let fpm = start(kind);
    let resp = ok(fpm.request("binary.php", &[]));
    let bin = std::fs::canonicalize(kind.binary()).expect("canonicalize");
    assert_eq!(text(resp.body()), format!("{}\n", bin.display()));
});

// The embed library has PHP's chroot() (built for the CLI, CGI and embed SAPIs); php-fpm
// has none, and neither does a pool's worker in rfpm.
both!(chroot_is_not_a_function, |kind| {
    let fpm = start(kind);
    let resp = ok(fpm.request("chroot.php", &[]));
    assert_eq!(
        text(resp.body()),
        "chroot=no\nError: Call to undefined function chroot()\n"
    );
});

both!(opcache_shared_between_workers, |kind| {
    let fpm = match Fpm::builder(kind).opcache().start() {
        Ok(f) => f,
        Err(e) => panic!("{e}"),
    };
    let dir = fpm.dir().to_path_buf();
    // Warm up: compiles wait.php into the shared cache.
    let go0 = dir.join("go0");
    ok(std::fs::write(&go0, b"").map_err(|e| HarnessError::Other(e.to_string())));
    let q0 = format!("started={}&go={}", dir.join("s0").display(), go0.display());
    let warm = ok(fpm.send(&Req::get("wait.php").query(&q0)));
    assert_eq!(field(warm.body(), "enabled"), "1", "{}", warm.stdout_str());
    let h0 = num(warm.body(), "hits");

    // Two requests in flight at the same time: with pm.max_children = 2 they are served by
    // the two different workers. Each one is a cache hit (counted when the script is looked
    // up, before it runs), and each reads the counter after both have started: a shared
    // cache shows at least h0 + 2 in both workers.
    let go = dir.join("go");
    let started = [dir.join("s1"), dir.join("s2")];
    let results = std::thread::scope(|s| {
        let handles: Vec<_> = started
            .iter()
            .map(|st| {
                let q = format!("started={}&go={}", st.display(), go.display());
                let fpm = &fpm;
                s.spawn(move || fpm.send(&Req::get("wait.php").query(&q)))
            })
            .collect();
        let both_started = started.iter().all(|p| wait_for_file(p, DEADLINE));
        // Release the scripts whatever happened, so the threads end.
        let _ = std::fs::write(&go, b"");
        assert!(
            both_started,
            "the two requests were not running at the same time"
        );
        handles
            .into_iter()
            .map(|h| match h.join() {
                Ok(r) => ok(r),
                Err(_) => panic!("request thread panicked"),
            })
            .collect::<Vec<_>>()
    });
    let pids: BTreeSet<u64> = results.iter().map(|r| num(r.body(), "pid")).collect();
    assert_eq!(pids.len(), 2, "two workers answered: {pids:?}");
    let mut last = 0;
    for r in &results {
        assert_eq!(field(r.body(), "go"), "seen");
        assert_eq!(field(r.body(), "enabled"), "1");
        let h = num(r.body(), "hits");
        assert!(h >= h0 + 2, "hits {h} < {h0} + 2: not one shared cache");
        last = last.max(h);
    }
    // The counter keeps growing over further requests, whichever worker serves them.
    // (wait.php again, released at once through go0: every lookup is a hit.)
    for _ in 0..4 {
        let r = ok(fpm.send(&Req::get("wait.php").query(&q0)));
        assert_eq!(field(r.body(), "enabled"), "1");
        let pid = num(r.body(), "pid");
        assert!(pids.contains(&pid), "pid {pid} is not one of {pids:?}");
        let h = num(r.body(), "hits");
        assert!(h > last, "hits {h} did not grow past {last}");
        last = h;
    }
});

both!(dying_script_does_not_harm_the_worker, |kind| {
    let fpm = match Fpm::builder(kind)
        .pool_line("pm.max_children = 1")
        .define("display_errors", "0")
        .define("log_errors", "1")
        .start()
    {
        Ok(f) => f,
        Err(e) => panic!("{e}"),
    };
    let first = ok(fpm.send(&Req::get("pid.php").query("n=1")));
    let pid = field(first.body(), "pid");

    let fatal = ok(fpm.send(&Req::get("die.php").query("mode=fatal")));
    assert_eq!(fatal.status(), 500, "{}", fatal.stdout_str());
    assert_eq!(field(fatal.body(), "pid"), pid);
    let err = text(&fatal.stderr);
    assert!(
        err.starts_with(
            "PHP message: PHP Fatal error:  Uncaught Error: Call to undefined function no_such_function_at_all()"
        ),
        "stderr: {err:?}"
    );
    assert_eq!(fatal.app_status, 0);

    let after_fatal = ok(fpm.send(&Req::get("pid.php").query("n=2")));
    assert_eq!(text(after_fatal.body()), format!("pid={pid}\nn=2\n"));
    assert_eq!(after_fatal.status(), 200);

    let exited = ok(fpm.send(&Req::get("die.php").query("mode=exit")));
    assert_eq!(exited.status(), 200);
    assert_eq!(text(exited.body()), format!("pid={pid}\n"));
    assert_eq!(
        exited.app_status, 0,
        "appStatus is always 0, also after exit(3)"
    );

    let after_exit = ok(fpm.send(&Req::get("pid.php").query("n=3")));
    assert_eq!(text(after_exit.body()), format!("pid={pid}\nn=3\n"));
    assert_eq!(fpm.worker_pids().len(), 1);
    assert_eq!(fpm.worker_pids()[0].to_string(), pid);
});

both!(keep_alive_carries_several_requests, |kind| {
    let fpm = start(kind);
    let mut client = ok(fpm.client());
    let mut pids = BTreeSet::new();
    for n in 1..=5 {
        let req = Req::get("pid.php").query(&format!("n={n}")).keep_conn(true);
        let resp = ok(send_on(&mut client, &fpm.docroot(), &req));
        assert_eq!(field(resp.body(), "n"), n.to_string());
        assert_eq!(resp.app_status, 0);
        pids.insert(field(resp.body(), "pid"));
    }
    assert_eq!(
        pids.len(),
        1,
        "one connection is served by one worker: {pids:?}"
    );
});

both!(get_values, |kind| {
    let fpm = start(kind);
    let mut client = ok(fpm.client());
    let values = match client.get_values(&["FCGI_MPXS_CONNS", "FCGI_MAX_CONNS", "FCGI_MAX_REQS"]) {
        Ok(v) => v,
        Err(e) => panic!("GET_VALUES: {e}"),
    };
    assert_eq!(values, vec![(b"FCGI_MPXS_CONNS".to_vec(), b"0".to_vec())]);
    // The connection stays usable for a normal request.
    let resp = ok(send_on(&mut client, &fpm.docroot(), &Req::get("hello.php")));
    assert_eq!(text(resp.body()), "Hello, world!\n");
});

fn master_log_and_stop(kind: Kind, sig: i32, announce: &str) {
    let fpm = start(kind);
    let pid = fpm.master_pid();
    assert!(
        fpm.log_contains(&format!("NOTICE: fpm is running, pid {pid}\n")),
        "{}",
        fpm.log()
    );
    assert!(fpm.log_contains("NOTICE: ready to handle connections\n"));
    // Every master line carries a timestamp: [DD-Mon-YYYY HH:MM:SS] LEVEL: message.
    for line in fpm.log().lines() {
        let ok_format = line.len() > 23
            && line.starts_with('[')
            && line.as_bytes().get(21) == Some(&b']')
            && line.as_bytes().get(22) == Some(&b' ');
        assert!(ok_format, "badly formatted log line {line:?}");
    }
    assert_eq!(fpm.worker_pids().len(), 2, "pm.max_children = 2 workers");
    let pid_file = std::fs::read_to_string(fpm.pid_file()).unwrap_or_default();
    assert_eq!(pid_file.trim(), pid.to_string(), "pid file");
    let sock = std::path::PathBuf::from(fpm.addr());
    assert!(sock.exists());

    ok(fpm.signal(sig));
    ok(fpm.wait_log(announce, DEADLINE));
    ok(fpm.wait_log("NOTICE: exiting, bye-bye!", DEADLINE));
    let status = ok(fpm.wait_exit(DEADLINE));
    assert_eq!(status.code(), Some(0), "exit status");
    assert!(!fpm.pid_file().exists(), "pid file removed on exit");
    assert!(!sock.exists(), "socket removed on exit");
    let log = fpm.log();
    let announce_at = log.find(announce).unwrap_or(usize::MAX);
    let bye_at = log.find("exiting, bye-bye!").unwrap_or(0);
    assert!(announce_at < bye_at, "{log}");
}

both!(process_titles, |kind| {
    let fpm = start(kind);
    assert_eq!(
        integration::process_title(fpm.master_pid()),
        format!("php-fpm: master process ({})", fpm.conf_path().display())
    );
    let workers = fpm.worker_pids();
    assert_eq!(workers.len(), 2);
    for w in workers {
        // A worker renames itself right after fork, maybe after the master said "ready".
        let renamed = integration::wait_until(DEADLINE, || {
            integration::process_title(w) == "php-fpm: pool www"
        });
        assert!(renamed, "worker {w}: {:?}", integration::process_title(w));
    }
});

both!(master_log_sigquit, |kind| {
    master_log_and_stop(kind, libc::SIGQUIT, "NOTICE: Finishing ...");
});

both!(master_log_sigterm, |kind| {
    master_log_and_stop(kind, libc::SIGTERM, "NOTICE: Terminating ...");
});

/// Differential: the same requests against php-fpm8.2 and rfpm (same config) give the same
/// stdout (headers and body, byte for byte), stderr, statuses and record types.
#[test]
fn differential_responses_rfpm() {
    let reference = start(Kind::PhpFpm);
    let rfpm = start(Kind::Rfpm);
    let requests = [
        Req::get("hello.php"),
        Req::get("query.php").query("a=1&b=hello%20world&c[]=x&c[]=y"),
        Req::post(
            "post.php",
            "application/x-www-form-urlencoded",
            b"name=J%C3%B6rg&empty=&sum=1%2B1%3D2".to_vec(),
        ),
        Req::get("headers.php"),
        Req::get("redirect.php"),
        Req::get("no-such-script.php"),
        Req::get("sapi.php"),
    ];
    let mut diffs = Vec::new();
    for req in &requests {
        let want = ok(reference.send(req));
        let got = ok(rfpm.send(req));
        let kinds = |r: &integration::fcgi::client::Response| {
            r.records.iter().map(|x| x.0).collect::<Vec<_>>()
        };
        if want.stdout != got.stdout
            || want.stderr != got.stderr
            || want.app_status != got.app_status
            || want.protocol_status != got.protocol_status
            || kinds(&want) != kinds(&got)
        {
            diffs.push(format!(
                "{req:?}\n  php-fpm: stdout {:?} stderr {:?} app {} proto {} records {:?}\n  rfpm:    stdout {:?} stderr {:?} app {} proto {} records {:?}",
                want.stdout_str(),
                want.stderr_str(),
                want.app_status,
                want.protocol_status,
                want.records,
                got.stdout_str(),
                got.stderr_str(),
                got.app_status,
                got.protocol_status,
                got.records,
            ));
        }
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}

// While a script runs, the end of the request it came in stays queued in the socket
// (php-fpm reads record by record and leaves the empty STDIN record there). On a Unix
// socket this is what keeps a web server that sent a whole request from being woken
// for nothing: reading the last byte of the server's write frees that write and wakes
// every thread sleeping on the server's end (bench/RESULTS.md, a context switch per
// request). SIOCOUTQ on the client's end counts the bytes the FPM has not freed yet.
both!(request_tail_queued_while_script_runs, |kind| {
    use std::io::{Read, Write};
    let fpm = start(kind);
    let dir = fpm.dir().to_path_buf();
    let (started, go) = (dir.join("tail-started"), dir.join("tail-go"));
    let q = format!("started={}&go={}", started.display(), go.display());
    let wire = match Req::get("wait.php")
        .query(&q)
        .build(&fpm.docroot())
        .encode()
    {
        Ok(w) => w,
        Err(e) => panic!("{e}"),
    };
    let mut s = ok(std::os::unix::net::UnixStream::connect(fpm.addr())
        .map_err(|e| HarnessError::Other(e.to_string())));
    ok(s.set_read_timeout(Some(DEADLINE))
        .map_err(|e| HarnessError::Other(e.to_string())));
    // One write: the whole request is one buffer in the kernel.
    ok(s.write_all(&wire)
        .map_err(|e| HarnessError::Other(e.to_string())));
    let running = wait_for_file(&started, DEADLINE);
    let unread = rfpm_sys::net::unsent_bytes(std::os::fd::AsFd::as_fd(&s));
    // Release the script whatever happened.
    ok(std::fs::write(&go, b"").map_err(|e| HarnessError::Other(e.to_string())));
    assert!(running, "wait.php did not start");
    let Some(unread) = unread else {
        panic!("SIOCOUTQ: {}", std::io::Error::last_os_error());
    };
    assert!(
        unread > 0,
        "the FPM consumed the whole request before answering ({unread} bytes queued)"
    );
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    assert!(text(&reply).contains("go=seen"), "{}", text(&reply));
});
