//! FrankenPHP's helper functions beyond its worker API, in every pool as FrankenPHP has
//! them in both of its modes: `frankenphp_request_headers()`,
//! `frankenphp_response_headers()`, `frankenphp_log()` and its level constants. Each
//! test runs the same probe (`fixtures/worker/helpers.php`) in a classic pool and in a
//! worker pool (`fixtures/worker/app.php`, which calls the same code from its handler).
//! rfpm only: php-fpm has none of them.
#![forbid(unsafe_code)]

use integration::fcgi::client::Response;
use integration::helpers::{ok, start, text_of};
use integration::{fixtures_dir, wait_until, Fpm, FpmBuilder, Kind, Req, DEADLINE};
use serde_json::{json, Value};

/// The two kinds of pool a probe runs in.
#[derive(Debug, Clone, Copy)]
enum Pool {
    Classic,
    Worker,
}

const POOLS: [Pool; 2] = [Pool::Classic, Pool::Worker];

/// One worker (so its pid is the `child` of every entry), capturing its output (the
/// worker log, where frankenphp_log() entries go), no `X-Powered-By` (a version in
/// the expected headers otherwise).
fn builder(pool: Pool) -> FpmBuilder {
    let b = Fpm::builder(Kind::Rfpm)
        .pool_line("pm.max_children = 1")
        .pool_line("catch_workers_output = yes")
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

/// Every line of `text` as JSON (a line that is not fails the test).
fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| {
            serde_json::from_str::<Value>(l)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}\n--- whole log:\n{text}"))
        })
        .collect()
}

/// The pool's only worker (the `child` of its entries).
fn worker_pid(fpm: &Fpm) -> u32 {
    let pids = fpm.worker_pids();
    assert_eq!(pids.len(), 1, "{pids:?}");
    pids[0]
}

/// `frankenphp_log()` in php-fpm's text log: one worker line per entry, `LEVEL:
/// message {context}`, captured by the master like any worker line. Levels: below 0
/// DEBUG, 0..3 NOTICE, 4..7 WARNING, 8 and more ERROR; the DEBUG entry is not written
/// at the default `log_level`. A line feed in the message is written `\n` (one entry,
/// one line); the context is one compact JSON object, the array's order, integer keys as
/// strings, what cannot be encoded (INF) as json_encode()'s partial output writes it
/// (0); the script's `json_last_error()` is untouched.
#[test]
fn log_entries_in_the_text_log() {
    for pool in POOLS {
        let fpm = start(builder(pool));
        let r = probe(&fpm, pool, "do=log", &[]);
        let v = json_of(&r);
        assert_eq!(v["constants"], json!([-4, 0, 4, 8]), "{pool:?}");
        assert_eq!(v["json_last_error"], 4, "{pool:?}: JSON_ERROR_SYNTAX");
        // Nothing for the web server.
        assert_eq!(r.stderr_str(), "", "{pool:?}");
        let pid = worker_pid(&fpm);
        let said =
            |text: &str| format!("WARNING: [pool www] child {pid} said into stderr: \"{text}\"\n");
        let expected = [
            said("NOTICE: plain info"),
            said(
                r#"WARNING: two\nlines {"user":"jé","ids":[1,2],"nested":{"ok":true,"none":null},"7":"seven"}"#,
            ),
            said(r#"ERROR: it failed {"inf":0}"#),
            said("NOTICE: level two"),
            said("WARNING: level five"),
        ];
        ok(fpm.wait_log(&expected[4], DEADLINE));
        let log = fpm.log();
        let lines: Vec<&str> = log
            .split_inclusive('\n')
            .filter(|l| l.contains(&format!("child {pid} said into stderr")))
            .map(|l| l.split_once("] ").map_or(l, |(_, rest)| rest))
            .collect();
        assert_eq!(lines, expected, "{pool:?}\n{log}");
        assert!(!log.contains("debug detail"), "{pool:?}\n{log}");
    }
}

/// At `log_level = debug` the DEBUG entry is written too (with the worker's debug
/// decoration, as its other lines).
#[test]
fn debug_entries_at_log_level_debug() {
    for pool in POOLS {
        let fpm = start(builder(pool).global("log_level = debug"));
        probe(&fpm, pool, "do=log", &[]);
        ok(fpm.wait_log("debug detail {\"x\":1}", DEADLINE));
        let log = fpm.log();
        let line = log
            .lines()
            .find(|l| l.contains("debug detail"))
            .unwrap_or_default();
        assert!(
            line.contains("said into stderr: \"DEBUG: frankenphp_log(), line "),
            "{pool:?}: {line}"
        );
    }
}

/// `log_format = json`: each entry is a JSON entry of its own level, `msg` the message
/// (its line feed escaped by JSON), the context a `context` object in the array's order,
/// `pool`, `child`, the `request_id` of the request, and no `stream` (it is not what the
/// script printed). Bounded by `log_limit`: a long message is cut (`...`), the context
/// kept.
#[test]
fn log_entries_in_the_json_log() {
    for pool in POOLS {
        let fpm = start(
            builder(pool)
                .global("log_format = json")
                .global("log_limit = 512"),
        );
        probe(
            &fpm,
            pool,
            "do=log&long=2000",
            &[("HTTP_X_REQUEST_ID", "fapi-1")],
        );
        let pid = worker_pid(&fpm);
        let mut entries = Vec::new();
        let complete = wait_until(DEADLINE, || {
            entries = json_lines(&fpm.log())
                .into_iter()
                .filter(|v| v["child"] == pid && v.get("stream").is_none())
                .collect();
            entries.len() >= 6
        });
        assert!(complete, "{pool:?}\n{}", fpm.log());
        let got: Vec<Value> = entries
            .iter()
            .map(|v| {
                let mut v = v.clone();
                if let Some(o) = v.as_object_mut() {
                    assert!(o.remove("time").is_some_and(|t| t.is_string()));
                    assert_eq!(o.remove("pid"), Some(json!(fpm.master_pid())));
                }
                v
            })
            .collect();
        let base = |level: &str, msg: &str| json!({"level": level, "msg": msg, "pool": "www", "child": pid, "request_id": "fapi-1"});
        let with = |mut v: Value, context: Value| {
            v["context"] = context;
            v
        };
        // The record the worker writes fits log_limit - 1 bytes: what is left of them
        // for the message once the rest of the record is counted, less `...`.
        let rest =
            "\0fslog\0".len() + r#"{"level":"WARNING","msg":""}"#.len() + r#" {"k":"v"}"#.len();
        let long = format!("{}...", "L".repeat(512 - 1 - rest - 3));
        let want = vec![
            base("notice", "plain info"),
            with(
                base("warning", "two\nlines"),
                json!({"user": "jé", "ids": [1, 2], "nested": {"ok": true, "none": null}, "7": "seven"}),
            ),
            with(base("error", "it failed"), json!({"inf": 0})),
            base("notice", "level two"),
            base("warning", "level five"),
            with(base("warning", &long), json!({"k": "v"})),
        ];
        assert_eq!(got, want, "{pool:?}\n{}", fpm.log());
        // The context's keys in the application's order.
        assert!(
            fpm.log().contains(r#""context":{"user":"jé","ids":[1,2],"nested":{"ok":true,"none":null},"7":"seven"}"#),
            "{}",
            fpm.log()
        );
        assert!(!fpm.log().contains("debug detail"), "{pool:?}");
    }
}

/// In php-fpm's text log an entry is bounded by `log_limit` as the worker's other
/// lines are (cut, ending in `...`); raw here (`decorate_workers_output = no`), so the
/// master writes the worker's line as it is.
#[test]
fn log_entries_are_bounded_by_log_limit() {
    for pool in POOLS {
        let fpm = start(
            builder(pool)
                .global("log_limit = 512")
                .pool_line("decorate_workers_output = no"),
        );
        probe(&fpm, pool, "do=log&long=2000", &[]);
        let line = format!(
            "WARNING: {}...\n",
            "L".repeat(512 - "WARNING: ".len() - "...\n".len())
        );
        assert_eq!(line.len(), 512);
        ok(fpm.wait_log(&line, DEADLINE));
    }
}
