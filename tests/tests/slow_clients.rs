//! `request_read_timeout` (rfpm only; issue `harden`): a client that trickles its
//! request holds a worker for at most that time. Without it (php-fpm8.2, and rfpm by
//! default) a slow-loris client holds the worker as long as it likes.
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use integration::helpers::{ok, start, text_of};
use integration::{both, wait_until, Fpm, Kind, Req, DEADLINE};

/// Sends `wire` a byte every 50 ms until the server closes the connection or `limit`
/// passes; returns how many bytes went out and whether the server closed it.
fn trickle(fpm: &Fpm, wire: &[u8], limit: Duration) -> (usize, bool) {
    let mut s = ok(UnixStream::connect(fpm.addr()));
    ok(s.set_read_timeout(Some(Duration::from_millis(50))));
    let until = Instant::now() + limit;
    let mut sent = 0;
    while Instant::now() < until && sent < wire.len() {
        if s.write_all(&wire[sent..=sent]).is_err() {
            return (sent, true);
        }
        sent += 1;
        let mut b = [0u8; 64];
        match s.read(&mut b) {
            Ok(0) => return (sent, true),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (sent, true),
            _ => {}
        }
    }
    (sent, false)
}

#[test]
fn a_trickled_request_is_cut_off_and_the_worker_serves_others() {
    let fpm = start(
        Fpm::builder(Kind::Rfpm)
            .pool_line("pm.max_children = 1")
            .pool_line("catch_workers_output = yes")
            .pool_line("request_read_timeout = 1s"),
    );
    let req = Req::get("pid.php").build(&fpm.docroot());
    let wire = ok(req.encode());
    // A whole request takes the loris well over a second at a byte every 50 ms.
    assert!(wire.len() > 100, "{} bytes", wire.len());
    let (sent, closed) = trickle(&fpm, &wire, DEADLINE);
    assert!(
        closed,
        "the trickled connection stayed open ({sent} bytes sent)"
    );
    assert!(sent < wire.len(), "the whole request went out first");
    ok(fpm.wait_log(
        "request_read_timeout (1s) passed before the request was read: connection closed",
        DEADLINE,
    ));
    // The one worker is free again.
    let r = ok(fpm.request("pid.php", &[]));
    assert!(text_of(&r).starts_with("pid="));
}

// php-fpm8.2's behaviour, and rfpm's by default.
both!(
    without_the_directive_a_trickled_request_still_holds_its_worker,
    |kind| {
        let fpm = start(Fpm::builder(kind).pool_line("pm.max_children = 1"));
        let req = Req::get("pid.php").build(&fpm.docroot());
        let wire = ok(req.encode());
        // 1.5 s of trickling: not cut off.
        let (sent, closed) = trickle(&fpm, &wire, Duration::from_millis(1500));
        assert!(!closed, "closed after {sent} bytes");
        assert!(!fpm.log_contains("request_read_timeout"));
        assert!(wait_until(DEADLINE, || fpm.worker_pids().len() == 1));
    }
);
