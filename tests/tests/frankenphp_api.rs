//! FrankenPHP's helper functions beyond its worker API, in every pool as FrankenPHP has
//! them in both of its modes: `frankenphp_request_headers()`,
//! `frankenphp_response_headers()`. Each
//! test runs the same probe (`fixtures/worker/helpers.php`) in a classic pool and in a
//! worker pool (`fixtures/worker/app.php`, which calls the same code from its handler).
//! rfpm only: php-fpm has none of them.
#![forbid(unsafe_code)]

use integration::fcgi::client::Response;
use integration::helpers::{ok, start, text_of};
use integration::{fixtures_dir, Fpm, FpmBuilder, Kind, Req};
use serde_json::{json, Value};

/// The two kinds of pool a probe runs in.
#[derive(Debug, Clone, Copy)]
enum Pool {
    Classic,
    Worker,
}

const POOLS: [Pool; 2] = [Pool::Classic, Pool::Worker];

/// One worker, no `X-Powered-By` (a version in the expected headers otherwise).
fn builder(pool: Pool) -> FpmBuilder {
    let b = Fpm::builder(Kind::Rfpm)
        .pool_line("pm.max_children = 1")
        .define("expose_php", "0");
    match pool {
        Pool::Classic => b,
        Pool::Worker => b.pool_line(format!(
            "worker.script = {}",
            fixtures_dir().join("worker/app.php").display()
        )),
    }
}

/// The probe of `query` (`do=…`) with extra params: the classic pool requests the
/// probe's script, the worker pool's application answers whatever is requested.
fn probe(fpm: &Fpm, pool: Pool, query: &str, extra: &[(&str, &str)]) -> Response {
    let script = match pool {
        Pool::Classic => "worker/helpers.php",
        Pool::Worker => "index.php",
    };
    let mut req = Req::get(script).query(query);
    for (k, v) in extra {
        req = req.param(k, v);
    }
    ok(fpm.send(&req))
}

fn json_of(resp: &Response) -> Value {
    let text = text_of(resp);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// `frankenphp_request_headers()` is `apache_request_headers()`: every `HTTP_*` param
/// (and `CONTENT_TYPE`/`CONTENT_LENGTH`) as a header name, the request's own in a
/// worker pool too.
#[test]
fn request_headers_are_apache_request_headers() {
    for pool in POOLS {
        let fpm = start(builder(pool));
        for (n, tag) in [(1, "first"), (2, "second")] {
            let r = probe(
                &fpm,
                pool,
                "do=request_headers",
                &[
                    ("HTTP_X_TEST", tag),
                    ("HTTP_ACCEPT_LANGUAGE", "fr"),
                    ("HTTP_X_MULTI_WORD_NAME", &n.to_string()),
                ],
            );
            let v = json_of(&r);
            let want = json!({
                "Content-Type": "",
                "Content-Length": "",
                "Host": "localhost",
                "X-Test": tag,
                "Accept-Language": "fr",
                "X-Multi-Word-Name": n.to_string(),
            });
            assert_eq!(v["franken"], want, "{pool:?}: {v}");
            assert_eq!(v["apache"], want, "{pool:?}: {v}");
        }
    }
}

/// `frankenphp_response_headers()`: the headers set so far, name => value, the name
/// before the colon and the value after it without its leading blanks; a repeated
/// header (a second `header(..., false)`, a second `setcookie()`) gives its last value,
/// as `apache_response_headers()` does in PHP's SAPIs; names keep their case (so
/// `x-repeat` is another key than `X-Repeat`). `headers_list()` still has them all.
#[test]
fn response_headers_are_the_ones_set_so_far() {
    for pool in POOLS {
        let fpm = start(builder(pool));
        // Twice: the second request sees only its own headers.
        for _ in 0..2 {
            let r = probe(&fpm, pool, "do=response_headers", &[]);
            assert_eq!(r.status(), 202, "{pool:?}");
            let v = json_of(&r);
            assert_eq!(
                v["headers"],
                json!({
                    "Content-Type": "application/json",
                    "X-One": "1",
                    "X-Repeat": "second",
                    "x-repeat": "third",
                    "X-Spaced": "padded",
                    "Set-Cookie": "b=2",
                }),
                "{pool:?}: {v}"
            );
            assert_eq!(
                v["names"],
                json!([
                    "Content-Type",
                    "X-One",
                    "X-Repeat",
                    "x-repeat",
                    "X-Spaced",
                    "Set-Cookie"
                ]),
                "{pool:?}"
            );
            assert_eq!(
                v["list"],
                json!([
                    "Content-Type: application/json",
                    "X-One: 1",
                    "X-Repeat: first",
                    "X-Repeat: second",
                    "x-repeat: third",
                    "X-Spaced: \t  padded",
                    "Set-Cookie: a=1",
                    "Set-Cookie: b=2",
                ]),
                "{pool:?}"
            );
        }
    }
}
