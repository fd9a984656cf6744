//! The `requests` issue end to end: Debian's nginx in front of the FPM, driven by curl and
//! by a raw HTTP client — big uploads through `client_body_in_file_only` +
//! `REQUEST_BODY_FILE`, a 50 MB response, a client hanging up mid-response.
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::net::TcpStream;

use integration::{both, fd_links, md5_hex, wait_for_file, Fpm, HarnessError, Nginx, DEADLINE};

fn ok<T>(r: Result<T, HarnessError>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}

/// `/bodyfile/input.php`: nginx writes the body to a file and passes only its name
/// (`REQUEST_BODY_FILE`), not the body; the script is `input.php`.
const BODY_FILE_LOCATION: &str = "
        client_max_body_size 100m;
        location = /bodyfile/input.php {
            client_body_in_file_only clean;
            include /etc/nginx/fastcgi_params;
            fastcgi_pass_request_body off;
            fastcgi_param REQUEST_BODY_FILE $request_body_file;
            fastcgi_param SCRIPT_FILENAME $document_root/input.php;
            fastcgi_pass unix:{sock};
        }";

both!(nginx_upload_20mb_through_request_body_file, |kind| {
    let fpm = ok(Fpm::builder(kind).define("post_max_size", "64M").start());
    let nginx = ok(Nginx::start_with(
        &fpm.addr(),
        &fpm.docroot(),
        BODY_FILE_LOCATION,
    ));
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("{e}"),
    };
    let data: Vec<u8> = (0..20 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let file = dir.path().join("upload.bin");
    if let Err(e) = std::fs::write(&file, &data) {
        panic!("{e}");
    }
    let want = format!("{} {}\n", data.len(), ok(md5_hex(&data)));
    let arg = format!("@{}", file.display());
    let content_type = "Content-Type: application/octet-stream";
    // No `Expect: 100-continue` (curl -i would show the interim response first).
    let no_expect = "Expect:";
    // Through the body file.
    let via_file = ok(nginx.curl(
        "/bodyfile/input.php",
        &["--data-binary", &arg, "-H", content_type, "-H", no_expect],
    ));
    assert_eq!(via_file.status, 200, "{}", nginx.log());
    assert_eq!(via_file.body_str(), want);
    // And streamed over FastCGI STDIN, for comparison.
    let via_stdin = ok(nginx.curl(
        "/input.php",
        &["--data-binary", &arg, "-H", content_type, "-H", no_expect],
    ));
    assert_eq!(via_stdin.status, 200, "{}", nginx.log());
    assert_eq!(via_stdin.body_str(), want);
});

both!(nginx_response_50mb, |kind| {
    let fpm = ok(Fpm::builder(kind).start());
    let nginx = ok(Nginx::start(&fpm.addr(), &fpm.docroot()));
    let n = 50 * 1024 * 1024;
    let resp = ok(nginx.curl(&format!("/out.php?n={n}&c=1048576"), &[]));
    assert_eq!(resp.status, 200, "{}", nginx.log());
    assert_eq!(resp.body.len(), n);
    let pattern = b"0123456789abcdef";
    let bad = resp.body.chunks(16).position(|c| c != pattern);
    assert_eq!(bad, None, "body differs from the pattern at chunk {bad:?}");
});

both!(nginx_client_hangs_up_mid_response, |kind| {
    let fpm = ok(Fpm::builder(kind).start());
    let nginx = ok(Nginx::start(&fpm.addr(), &fpm.docroot()));
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("{e}"),
    };
    let marker = dir.path().join("endless.done");
    let mut conn = match TcpStream::connect(("127.0.0.1", nginx.port())) {
        Ok(c) => c,
        Err(e) => panic!("connect: {e}"),
    };
    let _ = conn.set_read_timeout(Some(DEADLINE));
    let req = format!(
        "GET /endless.php?marker={} HTTP/1.1\r\nHost: localhost\r\n\r\n",
        marker.display()
    );
    if let Err(e) = conn.write_all(req.as_bytes()) {
        panic!("{e}");
    }
    // Read the first megabyte: the script is streaming.
    let mut got = 0usize;
    let mut buf = vec![0u8; 65536];
    while got < 1024 * 1024 {
        match conn.read(&mut buf) {
            Ok(0) => panic!("nginx closed after {got} bytes: {}", nginx.log()),
            Ok(n) => got += n,
            Err(e) => panic!("after {got} bytes: {e}"),
        }
    }
    // Meanwhile the other worker serves other requests.
    for _ in 0..3 {
        let hello = ok(nginx.curl("/hello.php", &[]));
        assert_eq!(hello.status, 200);
        assert_eq!(hello.body_str(), "Hello, world!\n");
    }
    // Hang up: nginx drops the FastCGI connection, PHP sees the client gone at its next
    // write and stops the script (ignore_user_abort is off).
    drop(conn);
    assert!(
        wait_for_file(&marker, DEADLINE),
        "the script did not stop after the client left\n{}",
        nginx.log()
    );
    let report = std::fs::read_to_string(&marker).unwrap_or_default();
    assert_eq!(report, "aborted=1 status=1 pieces>=16:1");
    // Both workers are still there and serve.
    assert_eq!(fpm.worker_pids().len(), 2);
    for _ in 0..4 {
        let hello = ok(nginx.curl("/hello.php", &[]));
        assert_eq!(hello.status, 200);
        assert_eq!(hello.body_str(), "Hello, world!\n");
    }
});

/// The sockets open in the FPM's workers (`socket:[inode]`).
fn worker_sockets(fpm: &Fpm) -> std::collections::BTreeSet<String> {
    fpm.worker_pids()
        .into_iter()
        .flat_map(fd_links)
        .filter(|l| l.starts_with("socket:"))
        .collect()
}

// nginx with FastCGI keep-alive (upstream `keepalive`, `fastcgi_keep_conn on`), as
// production setups run it: request after request on the same FPM connections, GETs,
// POSTs whose body the script reads and POSTs whose body it never reads (the FPM must
// skip it to find the next request) — every answer right, no upstream error in nginx's
// log, and the connections stay open in the workers between requests.
both!(nginx_fastcgi_keepalive_serves_mixed_requests, |kind| {
    let fpm = ok(Fpm::builder(kind).pool_line("pm.max_children = 4").start());
    let before = worker_sockets(&fpm);
    let nginx = ok(Nginx::start_keepalive(&fpm.addr(), &fpm.docroot()));
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("{e}"),
    };
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let file = dir.path().join("body.bin");
    if let Err(e) = std::fs::write(&file, &data) {
        panic!("{e}");
    }
    let arg = format!("@{}", file.display());
    let post = [
        "--data-binary",
        &arg,
        "-H",
        "Content-Type: application/octet-stream",
        "-H",
        "Expect:",
    ];
    let want_input = format!("{} {}\n", data.len(), ok(md5_hex(&data)));
    // Whether one connection served two requests in a row: the same accepted socket seen
    // in a worker after two consecutive requests (a new connection per request gives a
    // new socket each time, the previous one already closed).
    let mut kept = false;
    let mut last = std::collections::BTreeSet::new();
    for i in 0..24 {
        let (path, args, want): (String, &[&str], String) = match i % 3 {
            0 => (
                format!("/query.php?i={i}"),
                &[],
                format!("QUERY_STRING=i={i}\ni={i}\n"),
            ),
            1 => ("/input.php".into(), &post, want_input.clone()),
            _ => ("/hello.php".into(), &post, "Hello, world!\n".into()),
        };
        let r = ok(nginx.curl(&path, args));
        assert_eq!(r.status, 200, "#{i} {path}: {}", nginx.log());
        assert_eq!(r.body_str(), want, "#{i} {path}");
        let now: std::collections::BTreeSet<String> =
            worker_sockets(&fpm).difference(&before).cloned().collect();
        kept |= now.intersection(&last).next().is_some();
        last = now;
    }
    let log = nginx.log();
    assert!(!log.contains("upstream"), "{log}");
    assert!(kept, "no FPM connection kept open between requests");
});
