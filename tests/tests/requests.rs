//! The `requests` issue, differentially: a table of request shapes (reference §6.4, §7, §8.1,
//! §8.3, §9.2) sent as raw FastCGI bytes to php-fpm8.2 and to rfpm started with the same
//! configuration; every record that comes back (type, content, padding) must be the same,
//! after the instance's temp dir is replaced by `<TMP>`. END_REQUEST's three reserved bytes
//! are not compared (php-fpm 8.2 leaves them unzeroed, reference §6.4).
//!
//! Each configuration runs one worker (`pm.max_children = 1`), so the shapes reach the same
//! worker in the same order on both sides: settings that persist in a worker (`PHP_VALUE`,
//! reference §7.8) are part of what is compared.
#![forbid(unsafe_code)]

use std::io::Write;
use std::path::Path;

use integration::fcgi::client::{Client, ClientRequest};
use integration::fcgi::record;
use integration::{connect, nginx_params, Fpm, HarnessError, Kind};

fn ok<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}

/// One thing sent on a fresh connection: raw bytes (one or several requests, or garbage).
struct Shape {
    name: String,
    bytes: Vec<u8>,
}

/// What came back: every record until the server closed the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reply {
    /// (type, content, padding); `None` padding when the content was normalised.
    records: Vec<(u8, Vec<u8>, Option<u8>)>,
    /// How the exchange ended ("closed", or an I/O error kind).
    end: String,
}

fn exchange(fpm: &Fpm, bytes: &[u8]) -> Result<Reply, HarnessError> {
    let mut client: Client = connect(&fpm.fcgi_addr())?;
    let tmp = fpm.dir().display().to_string();
    let mut records = Vec::new();
    // A write may fail when the server closes early on bad input: what it answered counts.
    let _ = client.send_raw(bytes);
    let _ = client.shutdown_write();
    let end = loop {
        match client.read_record() {
            Ok(Some((h, mut content))) => {
                let mut padding = Some(h.padding_len);
                if h.kind == record::END_REQUEST && content.len() == 8 {
                    content.truncate(5);
                }
                let replaced = replace(&content, tmp.as_bytes(), b"<TMP>");
                if replaced != content {
                    padding = None;
                    content = replaced;
                }
                records.push((h.kind, content, padding));
            }
            // php-fpm reads records header by header and closes on bad input with the rest
            // unread (the client sees a reset); rfpm reads ahead: both are "closed".
            Ok(None) => break "closed".to_string(),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                break "closed".to_string()
            }
            Err(e) => break format!("{:?}", e.kind()),
        }
    };
    Ok(Reply { records, end })
}

fn replace(hay: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    if needle.is_empty() {
        return hay.to_vec();
    }
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

/// With `REQUESTS_DUMP=<dir>`, both replies of a differing shape are written there (one
/// file each, records concatenated) for `diff`.
fn dump(config: &str, name: &str, want: &Reply, got: &Reply) {
    let Some(dir) = std::env::var_os("REQUESTS_DUMP") else {
        return;
    };
    let base: String = format!("{config}-{name}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    for (suffix, r) in [("phpfpm", want), ("rfpm", got)] {
        let mut out = Vec::new();
        for (kind, content, padding) in &r.records {
            let _ = writeln!(out, "\n=== record {kind} padding {padding:?}");
            out.extend_from_slice(content);
        }
        let _ = writeln!(out, "\n=== end {}", r.end);
        let _ = std::fs::write(Path::new(&dir).join(format!("{base}.{suffix}")), out);
    }
}

fn show(r: &Reply) -> String {
    let mut s = String::new();
    for (kind, content, padding) in &r.records {
        let shown = if content.len() > 600 {
            format!(
                "{:?}…({} bytes)",
                String::from_utf8_lossy(&content[..600]),
                content.len()
            )
        } else {
            format!("{:?}", String::from_utf8_lossy(content))
        };
        s.push_str(&format!("\n    [{kind} pad {padding:?}] {shown}"));
    }
    s.push_str(&format!("\n    end: {}", r.end));
    s
}

/// Runs every shape against php-fpm8.2 and rfpm built by `builder`, returns the differences.
fn differential(
    config: &str,
    builder: impl Fn(Kind) -> integration::FpmBuilder,
    shapes: &[Shape],
) -> Vec<String> {
    let reference = ok(builder(Kind::PhpFpm).start());
    let rfpm = ok(builder(Kind::Rfpm).start());
    let mut diffs = Vec::new();
    for shape in shapes {
        let want = ok(exchange(&reference, &shape.bytes));
        let got = ok(exchange(&rfpm, &shape.bytes));
        if want != got {
            dump(config, &shape.name, &want, &got);
            diffs.push(format!(
                "[{config}] {}\n  php-fpm:{}\n  rfpm:{}",
                shape.name,
                show(&want),
                show(&got)
            ));
        }
    }
    diffs
}

fn builder(kind: Kind, defines: &[(&str, &str)], pool: &[&str]) -> integration::FpmBuilder {
    let mut b = Fpm::builder(kind)
        .pool_line("pm.max_children = 1")
        .pool_line("ping.path = /ping")
        .pool_line("ping.response = pong-ok");
    for (k, v) in defines {
        b = b.define(k, v);
    }
    for l in pool {
        b = b.pool_line(*l);
    }
    b
}

// ---------------------------------------------------------------------------------------
// Building requests.

type Params = Vec<(String, String)>;

fn doc() -> String {
    integration::fixtures_dir().display().to_string()
}

/// nginx's params for `<method> /<script>?<query>`.
fn nginx(method: &str, script: &str, query: &str) -> Params {
    nginx_params(Path::new(&doc()), script, method, query, "", "")
}

/// nginx's params without the path ones (SCRIPT_FILENAME, SCRIPT_NAME, DOCUMENT_ROOT,
/// DOCUMENT_URI): the caller adds its own.
fn no_paths(method: &str) -> Params {
    nginx(method, "x", "")
        .into_iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "SCRIPT_FILENAME" | "SCRIPT_NAME" | "DOCUMENT_ROOT" | "DOCUMENT_URI"
            )
        })
        .collect()
}

fn set(mut p: Params, k: &str, v: &str) -> Params {
    p.retain(|(n, _)| n != k);
    p.push((k.into(), v.into()));
    p
}

fn with(mut p: Params, extra: &[(&str, &str)]) -> Params {
    for (k, v) in extra {
        p = set(p, k, v);
    }
    p
}

fn encode(params: &Params, body: &[u8], keep: bool) -> Vec<u8> {
    let mut r = ClientRequest::new().keep_conn(keep);
    for (k, v) in params {
        r = r.param(k, v);
    }
    ok(r.body(body.to_vec()).encode())
}

fn shape(name: impl Into<String>, params: Params) -> Shape {
    Shape {
        name: name.into(),
        bytes: encode(&params, b"", false),
    }
}

fn post(name: &str, params: Params, content_type: &str, body: &[u8]) -> Shape {
    let params = with(
        params,
        &[
            ("REQUEST_METHOD", "POST"),
            ("CONTENT_TYPE", content_type),
            ("CONTENT_LENGTH", &body.len().to_string()),
        ],
    );
    Shape {
        name: name.into(),
        bytes: encode(&params, body, false),
    }
}

fn header(kind: u8, id: u16, len: usize, pad: u8) -> Vec<u8> {
    let l = (len as u16).to_be_bytes();
    let i = id.to_be_bytes();
    vec![1, kind, i[0], i[1], l[0], l[1], pad, 0]
}

// ---------------------------------------------------------------------------------------
// The shapes.

/// Every row of reference §7.3's table and its neighbours, as nginx, Apache (mod_proxy_fcgi,
/// Action) and IIS send them. Run with `cgi.fix_pathinfo` 1 and 0.
fn path_shapes() -> Vec<Shape> {
    let d = doc();
    let g = || no_paths("GET");
    let sf = |v: &str| format!("{d}{v}");
    let mut v = vec![
        shape(
            "table: plain script",
            with(
                g(),
                &[
                    ("SCRIPT_FILENAME", &sf("/env.php")),
                    ("SCRIPT_NAME", "/env.php"),
                    ("DOCUMENT_ROOT", &d),
                ],
            ),
        ),
        shape(
            "table: path info inside SCRIPT_FILENAME",
            with(
                g(),
                &[
                    ("SCRIPT_FILENAME", &sf("/env.php/foo/bar")),
                    ("SCRIPT_NAME", "/env.php/foo/bar"),
                    ("DOCUMENT_ROOT", &d),
                ],
            ),
        ),
        shape(
            "table: path info inside SCRIPT_FILENAME and PATH_INFO (CVE-2019-11043 guard: not longer)",
            with(
                g(),
                &[
                    ("SCRIPT_FILENAME", &sf("/env.php/foo/bar")),
                    ("SCRIPT_NAME", "/env.php/foo/bar"),
                    ("PATH_INFO", "/foo/bar"),
                    ("DOCUMENT_ROOT", &d),
                ],
            ),
        ),
        shape(
            "table: nginx fastcgi_split_path_info",
            with(
                g(),
                &[
                    ("SCRIPT_FILENAME", &sf("/env.php")),
                    ("SCRIPT_NAME", "/env.php"),
                    ("PATH_INFO", "/foo/bar"),
                    ("DOCUMENT_ROOT", &d),
                ],
            ),
        ),
        shape(
            "table: apache proxy:fcgi:// with query",
            with(
                g(),
                &[
                    (
                        "SCRIPT_FILENAME",
                        &format!("proxy:fcgi://127.0.0.1:9000{d}/env.php/foo?x=1"),
                    ),
                    ("SCRIPT_NAME", "/env.php/foo"),
                    ("DOCUMENT_ROOT", &d),
                ],
            ),
        ),
        shape(
            "table: path info, no DOCUMENT_ROOT",
            with(
                g(),
                &[
                    ("SCRIPT_FILENAME", &sf("/env.php/foo")),
                    ("SCRIPT_NAME", "/env.php/foo"),
                ],
            ),
        ),
        shape(
            "table: missing script",
            with(
                g(),
                &[
                    ("SCRIPT_FILENAME", &sf("/nope.php")),
                    ("SCRIPT_NAME", "/nope.php"),
                    ("DOCUMENT_ROOT", &d),
                ],
            ),
        ),
        shape(
            "table: directory with slash",
            with(
                g(),
                &[
                    ("SCRIPT_FILENAME", &sf("/")),
                    ("SCRIPT_NAME", "/"),
                    ("DOCUMENT_ROOT", &d),
                ],
            ),
        ),
        shape(
            "directory without slash (extension check)",
            with(g(), &[("SCRIPT_FILENAME", &d), ("SCRIPT_NAME", "/")]),
        ),
        shape(
            "directory named x.php (No input file specified)",
            with(
                g(),
                &[
                    ("SCRIPT_FILENAME", &sf("/dir.php")),
                    ("SCRIPT_NAME", "/dir.php"),
                    ("DOCUMENT_ROOT", &d),
                ],
            ),
        ),
        shape(
            "extension refused",
            with(
                g(),
                &[
                    ("SCRIPT_FILENAME", &sf("/plain.txt")),
                    ("SCRIPT_NAME", "/plain.txt"),
                    ("DOCUMENT_ROOT", &d),
                ],
            ),
        ),
        shape(
            "empty SCRIPT_FILENAME",
            with(g(), &[("SCRIPT_FILENAME", ""), ("SCRIPT_NAME", "/env.php")]),
        ),
        shape(
            "dotdot segment",
            with(
                g(),
                &[
                    ("SCRIPT_FILENAME", &format!("{d}/../fixtures/env.php")),
                    ("SCRIPT_NAME", "/../fixtures/env.php"),
                    ("DOCUMENT_ROOT", &d),
                ],
            ),
        ),
        shape(
            "dotdot-like names are fine",
            with(
                g(),
                &[
                    ("SCRIPT_FILENAME", &sf("/env.php/..x/y..")),
                    ("SCRIPT_NAME", "/env.php/..x/y.."),
                    ("PATH_INFO", "/a/..x/y.."),
                    ("DOCUMENT_ROOT", &d),
                ],
            ),
        ),
        shape(
            "PATH_TRANSLATED only",
            with(
                g(),
                &[
                    ("PATH_TRANSLATED", &sf("/env.php")),
                    ("SCRIPT_NAME", "/env.php"),
                ],
            ),
        ),
        shape(
            "PATH_TRANSLATED replaces SCRIPT_FILENAME (discard_path)",
            with(
                g(),
                &[
                    ("SCRIPT_FILENAME", &sf("/hello.php")),
                    ("PATH_TRANSLATED", &sf("/env.php")),
                    ("SCRIPT_NAME", "/hello.php"),
                    ("DOCUMENT_ROOT", &d),
                ],
            ),
        ),
        shape(
            "no script path at all",
            with(g(), &[("SCRIPT_NAME", "/env.php"), ("PATH_INFO", "/x")]),
        ),
        shape(
            "apache Action (PATH_TRANSLATED + REDIRECT_URL)",
            with(
                g(),
                &[
                    ("SCRIPT_FILENAME", "/usr/lib/cgi-bin/php-fpm"),
                    ("PATH_TRANSLATED", &sf("/env.php")),
                    ("REDIRECT_URL", "/env.php"),
                    ("SCRIPT_NAME", "/cgi-bin/php-fpm"),
                    ("PATH_INFO", "/env.php"),
                    ("DOCUMENT_ROOT", &d),
                ],
            ),
        ),
        shape(
            "REDIRECT_URL with an existing script",
            with(
                g(),
                &[
                    ("SCRIPT_FILENAME", &sf("/env.php")),
                    ("REDIRECT_URL", "/env.php"),
                    ("SCRIPT_NAME", "/env.php"),
                    ("PATH_INFO", "/p"),
                    ("PATH_TRANSLATED", &sf("/p")),
                    ("DOCUMENT_ROOT", &d),
                ],
            ),
        ),
        shape(
            "IIS path info repeating SCRIPT_NAME",
            with(
                g(),
                &[
                    ("SERVER_SOFTWARE", "Microsoft-IIS/10.0"),
                    ("SCRIPT_FILENAME", &sf("/env.php")),
                    ("SCRIPT_NAME", "/env.php"),
                    ("PATH_INFO", "/env.php/extra"),
                    ("DOCUMENT_ROOT", &d),
                ],
            ),
        ),
        shape(
            "apache proxy:balancer:// upper case",
            with(
                g(),
                &[
                    (
                        "SCRIPT_FILENAME",
                        &format!("PROXY:BALANCER://mycluster{d}/env.php/a/b"),
                    ),
                    ("SCRIPT_NAME", "/env.php/a/b"),
                    ("DOCUMENT_ROOT", &d),
                ],
            ),
        ),
        shape(
            "apache proxy, no path info",
            with(
                g(),
                &[
                    (
                        "SCRIPT_FILENAME",
                        &format!("proxy:fcgi://localhost{d}/env.php"),
                    ),
                    ("SCRIPT_NAME", "/env.php"),
                    ("DOCUMENT_ROOT", &d),
                ],
            ),
        ),
        shape(
            "apache ProxyPass, SCRIPT_NAME percent-encoded",
            with(
                g(),
                &[
                    (
                        "SCRIPT_FILENAME",
                        &format!("proxy:fcgi://localhost{d}/env.php/a b/c"),
                    ),
                    ("SCRIPT_NAME", "/env.php/a%20b/c"),
                    ("DOCUMENT_ROOT", &d),
                ],
            ),
        ),
        shape(
            "apache ProxyPass, SCRIPT_NAME decoded",
            with(
                g(),
                &[
                    (
                        "SCRIPT_FILENAME",
                        &format!("proxy:fcgi://localhost{d}/env.php/a%20b"),
                    ),
                    ("SCRIPT_NAME", "/env.php/a b"),
                    ("DOCUMENT_ROOT", &d),
                ],
            ),
        ),
        shape(
            "apache ProxyPass, plus sign",
            with(
                g(),
                &[
                    (
                        "SCRIPT_FILENAME",
                        &format!("proxy:fcgi://localhost{d}/env.php/a+b"),
                    ),
                    ("SCRIPT_NAME", "/env.php/a+b"),
                    ("DOCUMENT_ROOT", &d),
                ],
            ),
        ),
        shape(
            "apache proxy with PATH_INFO sent",
            with(
                g(),
                &[
                    (
                        "SCRIPT_FILENAME",
                        &format!("proxy:fcgi://localhost{d}/env.php/x/y"),
                    ),
                    ("SCRIPT_NAME", "/env.php"),
                    ("PATH_INFO", "/x/y"),
                    ("DOCUMENT_ROOT", &d),
                ],
            ),
        ),
        // A PATH_INFO other than the stripped tail: php-fpm keeps it whole as SCRIPT_NAME.
        // Shorter than the tail it used to panic rfpm's worker (found by fuzz/paths).
        shape(
            "apache proxy with a PATH_INFO shorter than the tail",
            with(
                g(),
                &[
                    (
                        "SCRIPT_FILENAME",
                        &format!("proxy:fcgi://localhost{d}/env.php/foo/bar"),
                    ),
                    ("SCRIPT_NAME", "/s/env.php/foo/bar"),
                    ("PATH_INFO", "/z"),
                    ("DOCUMENT_ROOT", &d),
                ],
            ),
        ),
        shape(
            "apache proxy with a PATH_INFO longer than the tail",
            with(
                g(),
                &[
                    (
                        "SCRIPT_FILENAME",
                        &format!("proxy:fcgi://localhost{d}/env.php/foo/bar"),
                    ),
                    ("SCRIPT_NAME", "/s/env.php/foo/bar"),
                    ("PATH_INFO", "/a/b/c/d/e/f/g/h"),
                ],
            ),
        ),
        // CVE-2019-11043 rows, compared byte for byte with php-fpm8.2 (with
        // cgi.fix_pathinfo 1 and 0); the named regression test, through nginx's
        // fastcgi_split_path_info with a %0a and the exploit's shapes, is
        // cve.rs's cve_2019_11043_path_info_underflow.
        shape(
            "CVE-2019-11043: empty PATH_INFO",
            with(
                g(),
                &[
                    ("SCRIPT_FILENAME", &sf("/env.php/PHP_VALUE%0Aauto_prepend_file=x")),
                    ("SCRIPT_NAME", "/env.php/PHP_VALUE%0Aauto_prepend_file=x"),
                    ("PATH_INFO", ""),
                    ("DOCUMENT_ROOT", &d),
                ],
            ),
        ),
        shape(
            "CVE-2019-11043: PATH_INFO shorter than the stripped part",
            with(
                g(),
                &[
                    ("SCRIPT_FILENAME", &sf("/env.php/a/long/tail")),
                    ("SCRIPT_NAME", "/env.php/a/long/tail"),
                    ("PATH_INFO", "/x"),
                    ("DOCUMENT_ROOT", &d),
                ],
            ),
        ),
        shape(
            "PATH_INFO longer than the stripped part",
            with(
                g(),
                &[
                    ("SCRIPT_FILENAME", &sf("/env.php/tail")),
                    ("SCRIPT_NAME", "/env.php"),
                    ("PATH_INFO", "/head/tail"),
                    ("DOCUMENT_ROOT", &d),
                ],
            ),
        ),
        shape(
            "DOCUMENT_ROOT with trailing slash",
            with(
                g(),
                &[
                    ("SCRIPT_FILENAME", &sf("/env.php/p")),
                    ("SCRIPT_NAME", "/env.php"),
                    ("PATH_INFO", "/q/p"),
                    ("DOCUMENT_ROOT", &format!("{d}/")),
                ],
            ),
        ),
        shape("ping", nginx("GET", "ping", "")),
        shape("ping with HEAD", nginx("HEAD", "ping", "")),
        shape("ping with a query string", nginx("POST", "ping", "a=1")),
        shape("ping/ is not ping", nginx("GET", "ping/", "")),
        shape(
            "ping without a script path",
            with(no_paths("GET"), &[("SCRIPT_NAME", "/ping")]),
        ),
    ];
    v.push(shape(
        "script missing below a file",
        with(
            g(),
            &[
                ("SCRIPT_FILENAME", &sf("/hello.php/../env.php")),
                ("SCRIPT_NAME", "/hello.php/../env.php"),
                ("DOCUMENT_ROOT", &d),
            ],
        ),
    ));
    v
}

/// Variables, bodies, uploads, PHP_VALUE, responses, errors, bad input (fix_pathinfo 1).
fn request_shapes(shared: &Path) -> Vec<Shape> {
    let n = |script: &str, q: &str| nginx("GET", script, q);
    let mut v = vec![
        shape("hello", n("hello.php", "")),
        shape("env", n("env.php", "a=1")),
        shape(
            "repeated param keeps its first position",
            with(n("env.php", ""), &[("HTTP_X_A", "1"), ("HTTP_X_B", "2")])
                .into_iter()
                .chain([("HTTP_X_A".to_string(), "3".to_string())])
                .collect(),
        ),
        shape(
            "odd param names (input filter)",
            with(
                n("env.php", ""),
                &[
                    ("HTTP_A.B C", "dots"),
                    ("HTTP_ARR[x]", "bracket"),
                    ("HTTP_EMPTY", ""),
                    ("HTTP_BIN", "a\u{1}b"),
                ],
            ),
        ),
        shape(
            "httpoxy",
            with(
                n("env.php", ""),
                &[("HTTP_PROXY", "http://evil:3128"), ("HTTP_FOO", "bar")],
            ),
        ),
        shape(
            "HTTPS and REMOTE_USER",
            with(
                n("env.php", ""),
                &[("HTTPS", "on"), ("REMOTE_USER", "alice")],
            ),
        ),
        shape(
            "auth basic",
            with(
                n("env.php", ""),
                &[("HTTP_AUTHORIZATION", "Basic dXNlcjpwYXNzOndvcmQ=")],
            ),
        ),
        shape(
            "auth basic, no colon",
            with(
                n("env.php", ""),
                &[("HTTP_AUTHORIZATION", "Basic dXNlcg==")],
            ),
        ),
        shape(
            "auth digest",
            with(
                n("env.php", ""),
                &[(
                    "HTTP_AUTHORIZATION",
                    "Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"/\", response=\"x\"",
                )],
            ),
        ),
        shape(
            "auth bearer",
            with(
                n("env.php", ""),
                &[("HTTP_AUTHORIZATION", "Bearer abc.def")],
            ),
        ),
        shape(
            "auth without a script path is ignored",
            with(
                no_paths("GET"),
                &[
                    ("HTTP_AUTHORIZATION", "Basic dXNlcjpwYXNz"),
                    ("SCRIPT_NAME", "/env.php"),
                ],
            ),
        ),
        shape(
            "cookies",
            with(
                n("cookies.php", "q=1"),
                &[("HTTP_COOKIE", "a=1; b=hello%20world; c[]=x; c[]=y; a=2;; d")],
            ),
        ),
        shape(
            "query arrays",
            n("query.php", "a=1&b=hello%20world&c[]=x&c[]=y&d[k]=z&e&f=%00x"),
        ),
        shape(
            "request headers",
            with(
                n("headers_in.php", ""),
                &[
                    ("HTTP_X_FOO_BAR", "1"),
                    ("HTTP_ACCEPT", "*/*"),
                    ("CONTENT_TYPE", "text/plain"),
                    ("CONTENT_LENGTH", "0"),
                    ("HTTP_", "empty name"),
                ],
            ),
        ),
        shape("no REQUEST_METHOD", {
            let mut p = n("env.php", "");
            p.retain(|(k, _)| k != "REQUEST_METHOD");
            p
        }),
        shape("no params at all", Vec::new()),
        shape("HEAD", nginx("HEAD", "hello.php", "")),
        shape("HEAD with headers", nginx("HEAD", "status.php", "code=404")),
        shape("method OPTIONS", nginx("OPTIONS", "env.php", "")),
        // Responses.
        shape("status 404 via header line", n("status.php", "h[]=HTTP/1.1%20404%20Not%20Found")),
        shape("status 418", n("status.php", "code=418")),
        shape("status 599", n("status.php", "code=599")),
        shape("status 201 created", n("status.php", "code=201&h[]=Location:%20/new")),
        shape("Status header", n("status.php", "h[]=Status:%20299%20Custom&h[]=X-A:%201")),
        shape(
            "two Status headers",
            n("status.php", "h[]=Status:%20201%20A&h[]=Status:%20202%20B"),
        ),
        shape("304", n("status.php", "code=304&h[]=Content-Type:%20text/css")),
        shape("Location", n("status.php", "h[]=Location:%20/x")),
        shape("Location with 301", n("status.php", "h[]=Location:%20/x&code=301")),
        shape("content types", n("status.php", "h[]=Content-Type:%20text/plain")),
        shape("json", n("status.php", "h[]=Content-Type:%20application/json")),
        shape("nph", n("status.php", "nph=1")),
        shape("nph 404", n("status.php", "nph=1&code=404")),
        shape(
            "rfc2616 headers",
            n("status.php", "rfc=1&h[]=HTTP/1.0%20403%20Nope"),
        ),
        shape(
            "status line of 2000 bytes",
            n(
                "status.php",
                &format!("h[]=HTTP/1.1%20500%20{}", "r".repeat(2000)),
            ),
        ),
        shape("headers with many lines", {
            let q: Vec<String> = (0..50).map(|i| format!("h[]=X-H{i}:%20v{i}")).collect();
            n("status.php", &q.join("&"))
        }),
        shape("empty output", n("out.php", "n=0")),
        shape("8 KiB - 1", n("out.php", "n=8191&c=8191")),
        shape("8 KiB exactly", n("out.php", "n=8192&c=8192")),
        shape("8 KiB + 1 in small writes", n("out.php", "n=8193&c=100")),
        shape("64 KiB in one write", n("out.php", "n=65536&c=65536")),
        shape("1 MiB in one write", n("out.php", "n=1048576&c=1048576")),
        shape("1 MiB in 1000-byte writes", n("out.php", "n=1048576&c=1000")),
        shape("flush after each write", n("out.php", "n=20000&c=3000&flush=1")),
        shape("ob_start", n("out.php", "n=200000&c=7000&ob=1")),
        shape("implicit flush", n("out.php", "n=10000&c=2500&implicit=1")),
        // Errors (FastCGI stderr).
        shape("warnings joined", n("errors.php", "m=warnings")),
        shape("warnings displayed", n("errors.php", "m=warnings&display=1")),
        shape("error_log", n("errors.php", "m=error_log")),
        shape("long message cut at log_limit", n("errors.php", "m=long")),
        shape("user notice/deprecated", n("errors.php", "m=notice")),
        shape("fatal error", n("errors.php", "m=fatal")),
        shape("fatal error displayed", n("errors.php", "m=fatal&display=1")),
        shape("fatal error, output buffered", n("errors.php", "m=fatal_buffered")),
        shape("exit(3), output buffered", n("errors.php", "m=exit3")),
        shape("uncaught exception", n("errors.php", "m=exception")),
        shape("shutdown function", n("errors.php", "m=shutdown")),
        shape("memory limit", n("errors.php", "m=memory")),
        shape("fastcgi_finish_request", n("finish2.php", "")),
        // PHP_VALUE / PHP_ADMIN_VALUE (persist in the worker).
        shape(
            "PHP_VALUE several entries",
            with(
                n("ini.php", "n[]=memory_limit&n[]=date.timezone&n[]=precision"),
                &[(
                    "PHP_VALUE",
                    "memory_limit=77M\ndate.timezone=\"Europe/Paris\" ; comment\nprecision=E_ALL",
                )],
            ),
        ),
        shape(
            "PHP_VALUE persists",
            n("ini.php", "n[]=memory_limit&n[]=date.timezone&n[]=precision"),
        ),
        shape(
            "PHP_VALUE errors",
            with(
                n("ini.php", "n[]=memory_limit&n[]=display_errors"),
                &[(
                    "PHP_VALUE",
                    "[sect]\nmemory_limit=80M\narr[]=1\nno_such.directive=1\nbare\ndisplay_errors=0\nmemory_limit=-5x",
                )],
            ),
        ),
        shape(
            "PHP_VALUE empty value and empty key",
            with(
                n("ini.php", "n[]=max_execution_time&n[]=html_errors"),
                &[("PHP_VALUE", "max_execution_time=\nhtml_errors=\"\"\n=3")],
            ),
        ),
        shape(
            "PHP_VALUE syntax error",
            with(
                n("ini.php", "n[]=default_charset&n[]=y2k"),
                &[("PHP_VALUE", "default_charset=\"x\nbroken = (\ny2k=1")],
            ),
        ),
        shape(
            "PHP_VALUE system-level directive",
            with(
                n("ini.php", "n[]=upload_max_filesize&n[]=max_input_time"),
                &[("PHP_VALUE", "upload_max_filesize=3M\nmax_input_time=7")],
            ),
        ),
        shape(
            "PHP_ADMIN_VALUE locks",
            with(
                n("ini.php", "n[]=precision&set[precision]=9&set[serialize_precision]=5&n[]=serialize_precision"),
                &[("PHP_ADMIN_VALUE", "precision=11\nserialize_precision=12")],
            ),
        ),
        shape(
            "PHP_ADMIN_VALUE lock persists",
            n("ini.php", "set[precision]=9&n[]=precision"),
        ),
        shape(
            "PHP_VALUE without a script path",
            with(
                no_paths("GET"),
                &[("SCRIPT_NAME", "/ini.php"), ("PHP_VALUE", "html_errors=0")],
            ),
        ),
        shape(
            "PHP_VALUE applied before start-up (auto_prepend_file)",
            with(
                n("hello.php", ""),
                &[("PHP_VALUE", &format!("auto_prepend_file={}/sapi.php", doc()))],
            ),
        ),
        shape(
            "PHP_VALUE prepend persists; reset",
            with(
                n("hello.php", ""),
                &[("PHP_VALUE", "auto_prepend_file=\ndisplay_errors=1")],
            ),
        ),
        // Bodies and uploads.
        post(
            "urlencoded POST",
            n("post.php", ""),
            "application/x-www-form-urlencoded",
            b"name=J%C3%B6rg&empty=&sum=1%2B1%3D2&arr[]=1&arr[]=2",
        ),
        post(
            "raw body",
            n("input.php", ""),
            "application/json",
            &b"{\"k\":1}".repeat(20000),
        ),
        post(
            "too many input vars",
            n("post.php", ""),
            "application/x-www-form-urlencoded",
            (0..1005)
                .map(|i| format!("v{i}=1"))
                .collect::<Vec<_>>()
                .join("&")
                .as_bytes(),
        ),
        post(
            "multipart upload",
            n("upload.php", ""),
            "multipart/form-data; boundary=XyZ",
            &multipart("XyZ", 3000),
        ),
        post(
            "multipart upload of 300 KiB",
            n("upload.php", ""),
            "multipart/form-data; boundary=XyZ",
            &multipart("XyZ", 300 * 1024),
        ),
        post(
            "multipart, too many parts",
            n("post.php", ""),
            "multipart/form-data; boundary=B",
            &many_parts("B", 1025),
        ),
        post(
            "body larger than post_max_size",
            with(n("post.php", ""), &[]),
            "application/x-www-form-urlencoded",
            &vec![b'a'; 9 * 1024 * 1024],
        ),
        Shape {
            name: "body shorter than CONTENT_LENGTH".into(),
            bytes: encode(
                &with(
                    n("input.php", ""),
                    &[
                        ("REQUEST_METHOD", "POST"),
                        ("CONTENT_TYPE", "application/octet-stream"),
                        ("CONTENT_LENGTH", "100"),
                    ],
                ),
                b"only forty bytes of body, not a hundred.",
                false,
            ),
        },
        Shape {
            name: "body longer than CONTENT_LENGTH".into(),
            bytes: encode(
                &with(
                    n("input.php", ""),
                    &[
                        ("REQUEST_METHOD", "POST"),
                        ("CONTENT_TYPE", "application/octet-stream"),
                        ("CONTENT_LENGTH", "10"),
                    ],
                ),
                b"0123456789 and more",
                false,
            ),
        },
    ];
    // REQUEST_BODY_FILE.
    let body_file = shared.join("body.bin");
    let form = shared.join("form.txt");
    ok(std::fs::write(
        &body_file,
        b"file body \x00\x01 bytes".repeat(1000),
    ));
    ok(std::fs::write(&form, b"from=file&x=1&ignored=beyond"));
    let bf = body_file.display().to_string();
    let ff = form.display().to_string();
    v.push(Shape {
        name: "REQUEST_BODY_FILE raw".into(),
        bytes: encode(
            &with(
                n("input.php", ""),
                &[
                    ("REQUEST_METHOD", "POST"),
                    ("CONTENT_TYPE", "application/octet-stream"),
                    ("CONTENT_LENGTH", "19000"),
                    ("REQUEST_BODY_FILE", &bf),
                ],
            ),
            b"",
            false,
        ),
    });
    v.push(Shape {
        name: "REQUEST_BODY_FILE form, cut at CONTENT_LENGTH".into(),
        bytes: encode(
            &with(
                n("post.php", ""),
                &[
                    ("REQUEST_METHOD", "POST"),
                    ("CONTENT_TYPE", "application/x-www-form-urlencoded"),
                    ("CONTENT_LENGTH", "15"),
                    ("REQUEST_BODY_FILE", &ff),
                ],
            ),
            b"",
            false,
        ),
    });
    v.push(Shape {
        name: "REQUEST_BODY_FILE missing".into(),
        bytes: encode(
            &with(
                n("input.php", ""),
                &[
                    ("REQUEST_METHOD", "POST"),
                    ("CONTENT_TYPE", "application/octet-stream"),
                    ("CONTENT_LENGTH", "10"),
                    (
                        "REQUEST_BODY_FILE",
                        &format!("{}/missing", shared.display()),
                    ),
                ],
            ),
            b"0123456789",
            false,
        ),
    });
    v.push(Shape {
        name: "REQUEST_BODY_FILE missing, form".into(),
        bytes: encode(
            &with(
                n("post.php", ""),
                &[
                    ("REQUEST_METHOD", "POST"),
                    ("CONTENT_TYPE", "application/x-www-form-urlencoded"),
                    ("CONTENT_LENGTH", "3"),
                    (
                        "REQUEST_BODY_FILE",
                        &format!("{}/missing", shared.display()),
                    ),
                ],
            ),
            b"a=1",
            false,
        ),
    });
    v.push(Shape {
        name: "REQUEST_BODY_FILE empty param: body from STDIN".into(),
        bytes: encode(
            &with(
                n("input.php", ""),
                &[
                    ("REQUEST_METHOD", "POST"),
                    ("CONTENT_TYPE", "application/octet-stream"),
                    ("CONTENT_LENGTH", "5"),
                    ("REQUEST_BODY_FILE", ""),
                ],
            ),
            b"stdin",
            false,
        ),
    });
    // Keep-alive: several requests on one connection, an unread body in between.
    let mut keep = Vec::new();
    keep.extend(encode(&n("hello.php", ""), b"", true));
    keep.extend(encode(
        &with(
            n("hello.php", ""),
            &[
                ("REQUEST_METHOD", "POST"),
                ("CONTENT_TYPE", "application/octet-stream"),
                ("CONTENT_LENGTH", "70000"),
            ],
        ),
        &vec![b'u'; 70000],
        true,
    ));
    keep.extend(encode(&n("query.php", "k=1"), b"", true));
    keep.extend(encode(&n("finish2.php", ""), b"", true));
    keep.extend(encode(&n("query.php", "k=2"), b"", false));
    v.push(Shape {
        name: "keep-alive with an unread body and fastcgi_finish_request".into(),
        bytes: keep,
    });
    // Bad input: the request ends, the next shape proves the worker still serves.
    let mut version0 = header(record::BEGIN_REQUEST, 1, 8, 0);
    version0[0] = 0;
    version0.extend([0, 1, 0, 0, 0, 0, 0, 0]);
    v.push(Shape {
        name: "version 0 record".into(),
        bytes: version0,
    });
    v.push(shape("after version 0", n("hello.php", "")));
    let mut not_begin = header(record::PARAMS, 1, 0, 0);
    not_begin.extend(encode(&n("hello.php", ""), b"", false));
    v.push(Shape {
        name: "first record not BEGIN_REQUEST".into(),
        bytes: not_begin,
    });
    let mut role = header(record::BEGIN_REQUEST, 1, 8, 0);
    role.extend([0, 9, 0, 0, 0, 0, 0, 0]);
    v.push(Shape {
        name: "unknown role".into(),
        bytes: role,
    });
    let mut authorizer = ok(ClientRequest::new().encode());
    authorizer.clear();
    let mut b = header(record::BEGIN_REQUEST, 7, 8, 0);
    b.extend([0, 2, 0, 0, 0, 0, 0, 0]);
    authorizer.extend(b);
    let params = n("env.php", "");
    let mut content = Vec::new();
    for (k, val) in &params {
        ok(record::encode_pair(
            &mut content,
            k.as_bytes(),
            val.as_bytes(),
        ));
    }
    authorizer.extend(header(record::PARAMS, 7, content.len(), 0));
    authorizer.extend(&content);
    authorizer.extend(header(record::PARAMS, 7, 0, 0));
    authorizer.extend(header(record::STDIN, 7, 0, 0));
    v.push(Shape {
        name: "AUTHORIZER role, request id 7, no padding".into(),
        bytes: authorizer,
    });
    let mut bad_pair = header(record::BEGIN_REQUEST, 1, 8, 0);
    bad_pair.extend([0, 1, 0, 0, 0, 0, 0, 0]);
    bad_pair.extend(header(record::PARAMS, 1, 4, 4));
    bad_pair.extend([5, 100, b'A', b'B', 0, 0, 0, 0]);
    bad_pair.extend(header(record::PARAMS, 1, 0, 0));
    v.push(Shape {
        name: "pair longer than its record".into(),
        bytes: bad_pair,
    });
    v.push(Shape {
        name: "oversized param (70 000 bytes)".into(),
        bytes: {
            let mut out = header(record::BEGIN_REQUEST, 1, 8, 0);
            out.extend([0, 1, 0, 0, 0, 0, 0, 0]);
            let mut pair = Vec::new();
            ok(record::encode_pair(
                &mut pair,
                b"HTTP_BIG",
                &vec![b'x'; 70_000],
            ));
            // Split over two PARAMS records: the pair does not fit in one.
            out.extend(header(record::PARAMS, 1, 65_000, 0));
            out.extend(&pair[..65_000]);
            out.extend(header(record::PARAMS, 1, pair.len() - 65_000, 0));
            out.extend(&pair[65_000..]);
            out.extend(header(record::PARAMS, 1, 0, 0));
            out
        },
    });
    v.push(Shape {
        name: "truncated request".into(),
        bytes: {
            let full = encode(&n("hello.php", ""), b"", false);
            full[..full.len() / 2].to_vec()
        },
    });
    v.push(shape("after bad input", n("env.php", "")));
    v
}

fn multipart(boundary: &str, size: usize) -> Vec<u8> {
    let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
    let mut body = Vec::new();
    let _ = write!(
        body,
        "--{boundary}\r\nContent-Disposition: form-data; name=\"field\"\r\n\r\nvalue\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"upload\"; filename=\"f.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    );
    body.extend(data);
    let _ = write!(body, "\r\n--{boundary}--\r\n");
    body
}

fn many_parts(boundary: &str, n: usize) -> Vec<u8> {
    let mut body = Vec::new();
    for i in 0..n {
        let _ = write!(
            body,
            "--{boundary}\r\nContent-Disposition: form-data; name=\"p{i}\"\r\n\r\n{i}\r\n"
        );
    }
    let _ = write!(body, "--{boundary}--\r\n");
    body
}

/// Shapes for a configuration with `fastcgi.error_header`, `expose_php = 0`.
fn extra_shapes() -> Vec<Shape> {
    let n = |script: &str, q: &str| nginx("GET", script, q);
    vec![
        shape("error_header on a fatal error", n("errors.php", "m=fatal")),
        shape(
            "error_header on a buffered fatal error",
            n("errors.php", "m=fatal_buffered"),
        ),
        shape("error_header not after exit(3)", n("errors.php", "m=exit3")),
        shape(
            "error_header after output",
            n("errors.php", "m=fatal&display=1"),
        ),
        shape("error_header not on exit", n("errors.php", "m=shutdown")),
        shape("error_header, next request normal", n("hello.php", "")),
        shape("no X-Powered-By", n("status.php", "code=404")),
        shape("no X-Powered-By on ping", n("ping", "")),
        shape("no X-Powered-By on 404", n("nope.php", "")),
        shape("denied", n("plain.txt", "")),
        shape(
            "discard_path",
            with(
                n("hello.php", ""),
                &[("PATH_TRANSLATED", &format!("{}/env.php", doc()))],
            ),
        ),
        shape(
            "fastcgi.logging off: no stderr",
            n("errors.php", "m=warnings"),
        ),
    ]
}

fn report(diffs: Vec<String>, total: usize) {
    assert!(
        diffs.is_empty(),
        "{} of {total} shapes differ:\n{}",
        diffs.len(),
        diffs.join("\n\n")
    );
}

#[test]
fn differential_paths_fix_pathinfo_1() {
    let shapes = path_shapes();
    let diffs = differential("fix_pathinfo=1", |k| builder(k, &[], &[]), &shapes);
    report(diffs, shapes.len());
}

#[test]
fn differential_paths_fix_pathinfo_0() {
    let shapes = path_shapes();
    let diffs = differential(
        "fix_pathinfo=0",
        |k| builder(k, &[("cgi.fix_pathinfo", "0")], &[]),
        &shapes,
    );
    report(diffs, shapes.len());
}

#[test]
fn differential_requests() {
    let shared = ok(tempfile::tempdir());
    let shapes = request_shapes(shared.path());
    let diffs = differential("requests", |k| builder(k, &[], &[]), &shapes);
    report(diffs, shapes.len());
}

#[test]
fn differential_error_header_expose_php_discard_path() {
    let shapes = extra_shapes();
    let diffs = differential(
        "error_header",
        |k| {
            builder(
                k,
                &[
                    ("fastcgi.error_header", "\"HTTP/1.1 550 PHP Error\""),
                    ("expose_php", "0"),
                    ("cgi.fix_pathinfo", "0"),
                    ("cgi.discard_path", "1"),
                ],
                &[],
            )
        },
        &shapes,
    );
    report(diffs, shapes.len());
}

#[test]
fn differential_no_fastcgi_logging() {
    let shapes = vec![
        shape("warnings", nginx("GET", "errors.php", "m=warnings")),
        shape("404", nginx("GET", "nope.php", "")),
        shape("denied", nginx("GET", "plain.txt", "")),
    ];
    let diffs = differential(
        "fastcgi.logging=0",
        |k| builder(k, &[("fastcgi.logging", "0")], &[]),
        &shapes,
    );
    report(diffs, shapes.len());
}

/// The number of shapes the differential tests cover (the issue asks for at least 60).
#[test]
fn differential_shape_count() {
    let shared = ok(tempfile::tempdir());
    let total =
        2 * path_shapes().len() + request_shapes(shared.path()).len() + extra_shapes().len();
    assert!(total >= 60, "{total}");
}

// ---------------------------------------------------------------------------------------
// Facts the differential tests cannot show by themselves (values seen inside the script
// after the response, and a few checks that the shapes above mean what they say).

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

integration::both!(fastcgi_finish_request_semantics, |kind| {
    let fpm = ok(builder(kind, &[], &[]).start());
    let dir = ok(tempfile::tempdir());
    // Without keep-alive: the second call returns false; output and headers after the
    // first call are discarded; buffers are closed; the client did not "abort".
    let out = dir.path().join("closed.json");
    let q = format!("out={}", out.display());
    let resp = ok(fpm.send(&integration::Req::get("finish2.php").query(&q)));
    assert_eq!(text(resp.body()), "before\n");
    assert_eq!(resp.header("X-Before").as_deref(), Some("1"));
    assert_eq!(resp.header("X-After"), None);
    assert_eq!(
        resp.stderr, b"",
        "log lines after the finish do not reach the client"
    );
    assert!(integration::wait_for_file(&out, integration::DEADLINE));
    assert_eq!(
        std::fs::read_to_string(&out).unwrap_or_default(),
        "[true,false,true,0,0]"
    );
    // With keep-alive the connection stays open: the second call returns true again, and
    // the next request on the connection is served.
    let mut client = ok(fpm.client());
    let out = dir.path().join("kept.json");
    let q = format!("out={}", out.display());
    let req = integration::Req::get("finish2.php")
        .query(&q)
        .keep_conn(true);
    let resp = ok(integration::send_on(&mut client, &fpm.docroot(), &req));
    assert_eq!(text(resp.body()), "before\n");
    assert!(integration::wait_for_file(&out, integration::DEADLINE));
    assert_eq!(
        std::fs::read_to_string(&out).unwrap_or_default(),
        "[true,true,true,0,0]"
    );
    let next = integration::Req::get("hello.php").keep_conn(true);
    let resp = ok(integration::send_on(&mut client, &fpm.docroot(), &next));
    assert_eq!(text(resp.body()), "Hello, world!\n");
});

// With `E` in variables_order, $_ENV built first (named first in the script) holds the
// params, and $_SERVER, copied from it, too (reference §7.10).
integration::both!(env_built_before_server, |kind| {
    let fpm = ok(builder(kind, &[("variables_order", "EGPCS")], &[]).start());
    let r = ok(fpm.send(&integration::Req::get("env_first.php").query("a=1")));
    assert_eq!(
        text(r.body()),
        "ENV[REQUEST_METHOD]=GET SERVER[REQUEST_METHOD]=GET\n\
         ENV[SCRIPT_NAME]=/env_first.php SERVER[SCRIPT_NAME]=/env_first.php\n\
         ENV[QUERY_STRING]=a=1 SERVER[QUERY_STRING]=a=1\n"
    );
});

integration::both!(php_value_facts, |kind| {
    let fpm = ok(builder(kind, &[], &[]).start());
    let ini = |extra: &[(&str, &str)], q: &str| {
        let mut r = integration::Req::get("ini.php").query(q);
        for (k, v) in extra {
            r = r.param(k, v);
        }
        ok(fpm.send(&r))
    };
    let r = ini(
        &[("PHP_VALUE", "memory_limit=77M\ndate.timezone=Europe/Paris")],
        "n[]=memory_limit&n[]=date.timezone",
    );
    assert_eq!(
        text(r.body()),
        "memory_limit='77M'\ndate.timezone='Europe/Paris'\n"
    );
    // One worker: the next request without PHP_VALUE still sees the values.
    let r = ini(&[], "n[]=memory_limit");
    assert_eq!(text(r.body()), "memory_limit='77M'\n");
    let r = ini(
        &[("PHP_VALUE", "[s]\nx[]=1\nbare\nno.such=1\n=")],
        "n[]=memory_limit",
    );
    assert_eq!(
        text(&r.stderr),
        "Passing INI directive through FastCGI: only classic entries are allowed; \
         Passing INI directive through FastCGI: only classic entries are allowed; \
         Passing INI directive through FastCGI: empty value for key 'bare'; \
         Passing INI directive through FastCGI: unable to set 'no.such'"
    );
    let r = ini(
        &[("PHP_ADMIN_VALUE", "precision=11")],
        "set[precision]=5&n[]=precision",
    );
    assert_eq!(text(r.body()), "ini_set(precision)=false\nprecision='11'\n");
});

integration::both!(request_body_file_facts, |kind| {
    let fpm = ok(builder(kind, &[], &[]).start());
    let dir = ok(tempfile::tempdir());
    let missing = dir.path().join("nope");
    let r = ok(fpm.send(
        &integration::Req::post("input.php", "application/octet-stream", b"abc".to_vec())
            .param("REQUEST_BODY_FILE", &missing.display().to_string()),
    ));
    let body = text(r.body());
    let warning = format!(
        "REQUEST_BODY_FILE: open('{}') failed: No such file or directory (2)",
        missing.display()
    );
    assert!(body.contains(&warning), "{body}");
    assert!(
        body.ends_with("0 d41d8cd98f00b204e9800998ecf8427e\n"),
        "{body}"
    );
    let file = dir.path().join("body");
    ok(std::fs::write(&file, b"0123456789"));
    let r = ok(fpm.send(
        &integration::Req::post("input.php", "application/octet-stream", b"abc".to_vec())
            .param("REQUEST_BODY_FILE", &file.display().to_string()),
    ));
    // CONTENT_LENGTH (3) bounds what is read from the file.
    assert_eq!(
        text(r.body()),
        format!("3 {}\n", ok(integration::md5_hex(b"012")))
    );
});

integration::both!(error_header_facts, |kind| {
    let fpm = ok(builder(
        kind,
        &[
            ("fastcgi.error_header", "\"HTTP/1.1 550 PHP Error\""),
            ("expose_php", "0"),
        ],
        &[],
    )
    .start());
    // die.php buffers its output, so the headers are not sent when the fatal error hits.
    let r = ok(fpm.send(&integration::Req::get("die.php").query("mode=fatal")));
    assert_eq!(r.header("Status").as_deref(), Some("550 PHP Error"));
    assert_eq!(r.header("X-Powered-By"), None);
    let r = ok(fpm.send(&integration::Req::get("hello.php")));
    assert_eq!(r.header("Status"), None);
    let r = ok(fpm.send(&integration::Req::get("ping")));
    assert_eq!(text(r.body()), "pong-ok");
});
