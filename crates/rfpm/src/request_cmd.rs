//! `rfpm request`: a FastCGI client for users and health checks (instead of `cgi-fcgi`).
//!
//! ```text
//! rfpm request ADDR SCRIPT [--method M] [--body FILE|-] [--param K=V]... [--query Q]
//!              [--header 'Name: value']... [--docroot DIR] [--header-only] [--timeout SECS]
//!              [--any-status] [--expect TEXT]
//! ```
//! Prints the raw CGI response (headers, blank line, body) on stdout and the FastCGI stderr
//! stream on stderr, each of its lines as a line of its own prefixed `stderr: `; rfpm's own
//! messages are prefixed `rfpm request: `. Exit status: 0 when the response completed with a
//! status below 400 (`Status:` header, 200 when absent), 1 for a status of 400 or more (any
//! status with `--any-status`) or a body without the `--expect`ed text, 2 for a connection
//! or protocol failure or a timeout, 64 for bad usage.

use std::io::{self, Read, Write};
use std::time::Duration;

use fcgi::client::{Addr, Client, ClientError, ClientRequest, Response};
use rfpm_core::shown::unshow;

/// An argument's bytes (see [`rfpm_core::cli::parse`]: arguments that are not UTF-8
/// arrive through `Shown`), as a path.
fn path_of(arg: &str) -> std::path::PathBuf {
    use std::os::unix::ffi::OsStringExt;
    std::ffi::OsString::from_vec(unshow(arg).into_owned()).into()
}

/// Writes one line of rfpm's own, the arguments it names as the bytes they were.
fn say(err: &mut dyn Write, line: &str) {
    let mut b = unshow(line).into_owned();
    b.push(b'\n');
    let _ = err.write_all(&b);
}

/// The response completed with a status below 400 (and had the expected text).
pub const EXIT_OK: i32 = 0;
/// The response completed with a status of 400 or more, or without the expected text.
pub const EXIT_BAD_RESPONSE: i32 = 1;
/// Connection or protocol failure, or timeout.
pub const EXIT_FAILURE: i32 = 2;
/// Bad usage.
pub const EXIT_USAGE: i32 = 64;

/// Default timeout in seconds (per read or write without progress).
pub const DEFAULT_TIMEOUT_SECS: f64 = 30.0;

/// The subcommand's usage text.
pub fn usage() -> String {
    format!(
        "Usage: rfpm request ADDR SCRIPT [options]\n\
         Send one FastCGI request to a FastCGI server (rfpm, php-fpm) and print the response.\n\
         \x20 ADDR                host:port, [v6]:port, a port (on 127.0.0.1) or a Unix socket path (containing '/')\n\
         \x20 SCRIPT              absolute path of the script (SCRIPT_FILENAME)\n\
         \x20 --method M          REQUEST_METHOD (default GET)\n\
         \x20 --query Q           QUERY_STRING\n\
         \x20 --body FILE|-       request body read from FILE or stdin (sets CONTENT_LENGTH, CONTENT_TYPE)\n\
         \x20 --param K=V         FastCGI parameter, repeatable; replaces a parameter of the same name\n\
         \x20 --header 'N: V'     HTTP request header, repeatable; sent as the parameter HTTP_N\n\
         \x20 --docroot DIR       DOCUMENT_ROOT; SCRIPT_NAME is then SCRIPT's path below DIR\n\
         \x20 --header-only       print only the response headers\n\
         \x20 --timeout SECS      give up after SECS seconds without progress (default {DEFAULT_TIMEOUT_SECS}, 0 = never)\n\
         \x20 --any-status        exit 0 whatever the response's status (a 404 or a 500 included)\n\
         \x20 --expect TEXT       exit 1 unless the response body contains TEXT (e.g. 'pong' from ping.path)\n\
         \x20 -h, --help          this help\n\
         The FastCGI stderr stream is printed on stderr, each line prefixed 'stderr: ';\n\
         rfpm's own messages there are prefixed 'rfpm request: '.\n\
         Exit status: 0 response status 2xx or 3xx (1xx too), 1 status 4xx or 5xx or the --expect text missing,\n\
         2 no answer (connection or protocol failure, timeout), 64 bad usage.\n"
    )
}

/// Where the body comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodySource {
    Stdin,
    File(String),
}

/// Parsed arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Opts {
    pub addr: String,
    pub script: String,
    pub method: String,
    pub query: String,
    pub body: Option<BodySource>,
    pub params: Vec<(String, String)>,
    pub docroot: Option<String>,
    pub header_only: bool,
    /// `None` = no timeout.
    pub timeout: Option<Duration>,
    /// Exit 0 whatever the status.
    pub any_status: bool,
    /// Text the body must contain.
    pub expect: Option<String>,
}

/// What the arguments ask for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Help,
    Request(Box<Opts>),
}

/// Parses the subcommand's arguments (after `request`). Options may be written
/// `--name value` or `--name=value` and mixed with the two positional arguments; `--` ends
/// the options.
pub fn parse_args(args: &[String]) -> Result<Command, String> {
    let mut positional = Vec::new();
    let mut method = None;
    let mut query = None;
    let mut body = None;
    let mut params: Vec<(String, String)> = Vec::new();
    let mut docroot = None;
    let mut header_only = false;
    let mut any_status = false;
    let mut expect = None;
    let mut timeout = Some(Duration::from_secs_f64(DEFAULT_TIMEOUT_SECS));
    let mut i = 0;
    let mut options_done = false;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        // A word is an option when it starts with '-' and is not "-" alone.
        let is_option = arg.starts_with('-') && arg.len() > 1;
        if options_done || !is_option {
            positional.push(arg.clone());
            continue;
        }
        if arg == "--" {
            options_done = true;
            continue;
        }
        if arg == "-h" || arg == "--help" {
            return Ok(Command::Help);
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (arg.as_str(), None),
        };
        let flag = |inline: &Option<String>| -> Result<(), String> {
            match inline {
                Some(_) => Err(format!("option '{name}' takes no value")),
                None => Ok(()),
            }
        };
        let mut value = |inline: Option<String>| -> Result<String, String> {
            if let Some(v) = inline {
                return Ok(v);
            }
            let v = args
                .get(i)
                .cloned()
                .ok_or_else(|| format!("option '{name}' requires a value"))?;
            i += 1;
            Ok(v)
        };
        match name {
            "--method" => {
                let m = value(inline)?;
                if m.is_empty() || !m.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(format!("invalid method '{m}'"));
                }
                method = Some(m);
            }
            "--query" => query = Some(value(inline)?),
            "--body" => {
                let v = value(inline)?;
                body = Some(if v == "-" {
                    BodySource::Stdin
                } else {
                    BodySource::File(v)
                });
            }
            "--param" => {
                let v = value(inline)?;
                match v.split_once('=') {
                    Some((k, val)) if !k.is_empty() => {
                        set_param(&mut params, k, val);
                    }
                    _ => return Err(format!("--param needs NAME=VALUE, got '{v}'")),
                }
            }
            "--header" => {
                let v = value(inline)?;
                match header_param(&v) {
                    Some((k, val)) => set_param(&mut params, &k, &val),
                    None => return Err(format!("--header needs 'Name: value', got '{v}'")),
                }
            }
            "--docroot" => {
                let d = value(inline)?;
                if !d.starts_with('/') {
                    return Err(format!("--docroot must be an absolute path, got '{d}'"));
                }
                docroot = Some(d);
            }
            "--header-only" => {
                flag(&inline)?;
                header_only = true;
            }
            "--any-status" => {
                flag(&inline)?;
                any_status = true;
            }
            "--expect" => {
                let t = value(inline)?;
                if t.is_empty() {
                    return Err("--expect needs a non-empty TEXT".to_string());
                }
                expect = Some(t);
            }
            "--timeout" => {
                let v = value(inline)?;
                let secs: f64 = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s >= 0.0 && *s < 1e9)
                    .ok_or_else(|| format!("invalid timeout '{v}'"))?;
                timeout = if secs == 0.0 {
                    None
                } else {
                    Some(Duration::from_secs_f64(secs))
                };
            }
            _ => return Err(format!("unknown option '{name}'")),
        }
    }
    let mut positional = positional.into_iter();
    let (Some(addr), Some(script)) = (positional.next(), positional.next()) else {
        return Err("ADDR and SCRIPT are required".to_string());
    };
    if let Some(extra) = positional.next() {
        return Err(format!("unexpected argument '{extra}'"));
    }
    if addr.is_empty() {
        return Err("empty ADDR".to_string());
    }
    if !script.starts_with('/') {
        return Err(format!("SCRIPT must be an absolute path, got '{script}'"));
    }
    if let Some(d) = &docroot {
        if script_below(&script, d).is_none() {
            return Err(format!("SCRIPT '{script}' is not below --docroot '{d}'"));
        }
    }
    Ok(Command::Request(Box::new(Opts {
        addr,
        script,
        method: method.unwrap_or_else(|| "GET".to_string()),
        query: query.unwrap_or_default(),
        body,
        params,
        docroot,
        header_only,
        timeout,
        any_status,
        expect,
    })))
}

/// Sets a parameter, replacing one of the same name (case-sensitive, like FastCGI).
fn set_param(params: &mut Vec<(String, String)>, name: &str, value: &str) {
    match params.iter_mut().find(|(k, _)| k == name) {
        Some(slot) => slot.1 = value.to_string(),
        None => params.push((name.to_string(), value.to_string())),
    }
}

/// The CGI parameter for an HTTP header line `Name: value`: `HTTP_NAME` (upper case, `-`
/// as `_`), except `Content-Type`/`Content-Length` which become `CONTENT_TYPE`/`CONTENT_LENGTH`.
fn header_param(line: &str) -> Option<(String, String)> {
    let (name, value) = line.split_once(':')?;
    let name = name.trim();
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return None;
    }
    let upper = name.to_ascii_uppercase().replace('-', "_");
    let key = match upper.as_str() {
        "CONTENT_TYPE" | "CONTENT_LENGTH" => upper,
        _ => format!("HTTP_{upper}"),
    };
    Some((key, value.trim().to_string()))
}

/// SCRIPT's path below `docroot`, with a leading `/`; `None` when it is not below it.
fn script_below(script: &str, docroot: &str) -> Option<String> {
    let root = docroot.trim_end_matches('/');
    let rest = script.strip_prefix(root)?;
    if rest.starts_with('/') && rest.len() > 1 {
        Some(rest.to_string())
    } else {
        None
    }
}

/// The FastCGI parameters of the request, in order (user `--param`s last, replacing the
/// defaults of the same name).
pub fn build_params(opts: &Opts, body_len: Option<usize>) -> Vec<(String, String)> {
    let (docroot, script_name) = match &opts.docroot {
        Some(d) => (
            d.trim_end_matches('/').to_string(),
            script_below(&opts.script, d).unwrap_or_else(|| opts.script.clone()),
        ),
        None => {
            let cut = opts.script.rfind('/').unwrap_or(0);
            (
                opts.script[..cut].to_string(),
                opts.script[cut..].to_string(),
            )
        }
    };
    let docroot = if docroot.is_empty() {
        "/".to_string()
    } else {
        docroot
    };
    let request_uri = if opts.query.is_empty() {
        script_name.clone()
    } else {
        format!("{script_name}?{}", opts.query)
    };
    let mut params: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: &str| set_param(&mut params, k, v);
    set("GATEWAY_INTERFACE", "CGI/1.1");
    set(
        "SERVER_SOFTWARE",
        &format!("rfpm/{}", env!("CARGO_PKG_VERSION")),
    );
    set("SERVER_PROTOCOL", "HTTP/1.1");
    set("REQUEST_METHOD", &opts.method);
    set("SCRIPT_FILENAME", &opts.script);
    set("SCRIPT_NAME", &script_name);
    set("DOCUMENT_ROOT", &docroot);
    set("DOCUMENT_URI", &script_name);
    set("REQUEST_URI", &request_uri);
    set("QUERY_STRING", &opts.query);
    set("REMOTE_ADDR", "127.0.0.1");
    if let Some(len) = body_len {
        set("CONTENT_LENGTH", &len.to_string());
        set("CONTENT_TYPE", "application/x-www-form-urlencoded");
    }
    for (k, v) in &opts.params {
        set(k, v);
    }
    params
}

/// The exit status for a completed response, and why it is not 0.
pub fn verdict(resp: &Response, opts: &Opts) -> (i32, Option<String>) {
    let status = resp.status();
    if status >= 400 && !opts.any_status {
        return (
            EXIT_BAD_RESPONSE,
            Some(format!("the response's status is {status}")),
        );
    }
    if let Some(text) = &opts.expect {
        if !contains(resp.body(), &unshow(text)) {
            return (
                EXIT_BAD_RESPONSE,
                Some(format!("the response's body does not contain '{text}'")),
            );
        }
    }
    (EXIT_OK, None)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// The FastCGI stderr stream as lines of their own, each prefixed `stderr: ` (a last line
/// without its newline gets one), so it neither runs into rfpm's messages nor is taken for
/// one.
pub fn stderr_lines(stderr: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(stderr.len() + 16);
    if stderr.is_empty() {
        return out;
    }
    let body = stderr.strip_suffix(b"\n").unwrap_or(stderr);
    for line in body.split(|&b| b == b'\n') {
        out.extend_from_slice(b"stderr: ");
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out
}

/// The header block of a CGI response, including the blank line that ends it (all of
/// stdout when there is no blank line).
pub fn header_block(stdout: &[u8]) -> &[u8] {
    let mut i = 0;
    while i < stdout.len() {
        if stdout[i] == b'\n' {
            if stdout.get(i + 1) == Some(&b'\n') {
                return &stdout[..i + 2];
            }
            if stdout.get(i + 1) == Some(&b'\r') && stdout.get(i + 2) == Some(&b'\n') {
                return &stdout[..i + 3];
            }
        }
        i += 1;
    }
    stdout
}

/// One line describing an I/O error, timeouts named as such.
fn describe_io(e: &io::Error, timeout: Option<Duration>) -> String {
    match (e.kind(), timeout) {
        (io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut, Some(t)) => {
            format!("timed out after {} s", t.as_secs_f64())
        }
        _ => match e.raw_os_error() {
            Some(errno) => format!("{} ({errno})", rfpm_sys::strerror(errno)),
            None => e.to_string(),
        },
    }
}

/// Runs the subcommand with explicit streams (for tests); [`main`] uses the process's.
pub fn run(args: &[String], stdin: &mut dyn Read, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let opts = match parse_args(args) {
        Ok(Command::Help) => {
            let _ = out.write_all(usage().as_bytes());
            return EXIT_OK;
        }
        Ok(Command::Request(opts)) => opts,
        Err(msg) => {
            say(err, &format!("rfpm request: {msg}"));
            let _ = err.write_all(usage().as_bytes());
            return EXIT_USAGE;
        }
    };
    let body = match &opts.body {
        None => None,
        Some(BodySource::Stdin) => {
            let mut b = Vec::new();
            if let Err(e) = stdin.read_to_end(&mut b) {
                let _ = writeln!(err, "rfpm request: cannot read the body from stdin: {e}");
                return EXIT_USAGE;
            }
            Some(b)
        }
        Some(BodySource::File(path)) => match std::fs::read(path_of(path)) {
            Ok(b) => Some(b),
            Err(e) => {
                say(
                    err,
                    &format!(
                        "rfpm request: cannot read the body from '{path}': {}",
                        describe_io(&e, None)
                    ),
                );
                return EXIT_USAGE;
            }
        },
    };
    let mut req = ClientRequest::new();
    for (k, v) in build_params(&opts, body.as_ref().map(Vec::len)) {
        req = req.param(unshow(&k), unshow(&v));
    }
    if let Some(b) = body {
        req = req.body(b);
    }
    let (addr, addr_shown) = match Addr::parse(&opts.addr) {
        // A socket's path is the argument's bytes.
        Addr::Unix(_) => (Addr::Unix(path_of(&opts.addr)), opts.addr.clone()),
        a => {
            let shown = a.to_string();
            (a, shown)
        }
    };
    let fail = |err: &mut dyn Write, what: String| {
        say(err, &format!("rfpm request: {addr_shown}: {what}"));
        EXIT_FAILURE
    };
    let mut client = match Client::connect(&addr) {
        Ok(c) => c,
        Err(e) => return fail(err, format!("cannot connect: {}", describe_io(&e, None))),
    };
    if let Err(e) = client.set_timeout(opts.timeout) {
        return fail(
            err,
            format!("cannot set the timeout: {}", describe_io(&e, None)),
        );
    }
    let result = client.request(&req);
    let print = |resp: &Response, out: &mut dyn Write, err: &mut dyn Write| {
        let shown = if opts.header_only {
            header_block(&resp.stdout)
        } else {
            &resp.stdout[..]
        };
        let _ = out.write_all(shown);
        let _ = out.flush();
        let _ = err.write_all(&stderr_lines(&resp.stderr));
        let _ = err.flush();
    };
    match result {
        Ok(resp) => {
            print(&resp, out, err);
            if resp.protocol_status != fcgi::record::REQUEST_COMPLETE {
                return fail(
                    err,
                    format!(
                        "request not completed: protocol status {}",
                        resp.protocol_status
                    ),
                );
            }
            let (code, why) = verdict(&resp, &opts);
            if let Some(why) = why {
                say(err, &format!("rfpm request: {why}"));
            }
            code
        }
        Err(ClientError::Incomplete { partial, source }) => {
            print(&partial, out, err);
            let what = match source.kind() {
                io::ErrorKind::UnexpectedEof => {
                    "connection closed before the end of the response".to_string()
                }
                _ => describe_io(&source, opts.timeout),
            };
            fail(err, what)
        }
        Err(ClientError::Io(e)) => fail(err, describe_io(&e, opts.timeout)),
        Err(e) => fail(err, e.to_string()),
    }
}

/// `rfpm request …` (arguments after `request`); returns the exit status.
pub fn main(args: &[String]) -> i32 {
    let stdin = io::stdin();
    let stdout = io::stdout();
    let stderr = io::stderr();
    run(
        args,
        &mut stdin.lock(),
        &mut stdout.lock(),
        &mut stderr.lock(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command as Cmd, Stdio};
    use std::time::Instant;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn opts(list: &[&str]) -> Opts {
        match parse_args(&args(list)) {
            Ok(Command::Request(o)) => *o,
            other => panic!("{list:?}: {other:?}"),
        }
    }

    fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn parse_minimal_and_defaults() {
        let o = opts(&["/run/x.sock", "/var/www/index.php"]);
        assert_eq!(o.addr, "/run/x.sock");
        assert_eq!(o.script, "/var/www/index.php");
        assert_eq!(o.method, "GET");
        assert_eq!(o.query, "");
        assert_eq!(o.body, None);
        assert!(!o.header_only);
        assert_eq!(o.timeout, Some(Duration::from_secs(30)));
    }

    #[test]
    fn parse_all_options_both_forms() {
        let o = opts(&[
            "--method",
            "POST",
            "127.0.0.1:9000",
            "--body=-",
            "--param",
            "HTTP_HOST=example.org",
            "--param=A=b=c",
            "--query",
            "a=1&b=2",
            "/srv/app/public/x/index.php",
            "--docroot=/srv/app/public/",
            "--header-only",
            "--timeout",
            "2.5",
        ]);
        assert_eq!(o.method, "POST");
        assert_eq!(o.addr, "127.0.0.1:9000");
        assert_eq!(o.body, Some(BodySource::Stdin));
        assert_eq!(
            o.params,
            vec![
                ("HTTP_HOST".to_string(), "example.org".to_string()),
                ("A".to_string(), "b=c".to_string())
            ]
        );
        assert_eq!(o.query, "a=1&b=2");
        assert_eq!(o.docroot.as_deref(), Some("/srv/app/public/"));
        assert!(o.header_only);
        assert_eq!(o.timeout, Some(Duration::from_millis(2500)));
        assert_eq!(opts(&["9000", "/x.php", "--timeout", "0"]).timeout, None);
        assert_eq!(
            opts(&["9000", "/x.php", "--body", "f.txt"]).body,
            Some(BodySource::File("f.txt".into()))
        );
        assert_eq!(opts(&["--", "-weird", "/x.php"]).addr, "-weird");
    }

    #[test]
    fn parse_errors() {
        for bad in [
            &[][..],
            &["9000"],
            &["9000", "x.php"],
            &["9000", "/x.php", "extra"],
            &["9000", "/x.php", "--bogus"],
            &["9000", "/x.php", "--method"],
            &["9000", "/x.php", "--method", ""],
            &["9000", "/x.php", "--param", "novalue"],
            &["9000", "/x.php", "--param", "=v"],
            &["9000", "/x.php", "--timeout", "-1"],
            &["9000", "/x.php", "--timeout", "abc"],
            &["9000", "/x.php", "--timeout", "NaN"],
            &["9000", "/x.php", "--header-only=yes"],
            &["9000", "/x.php", "--docroot", "rel"],
            &["9000", "/x.php", "--docroot", "/other"],
            &["9000", "/srv/www", "--docroot", "/srv/www"],
            &["", "/x.php"],
        ] {
            assert!(parse_args(&args(bad)).is_err(), "{bad:?}");
        }
        assert_eq!(parse_args(&args(&["-h"])), Ok(Command::Help));
        assert_eq!(parse_args(&args(&["9000", "--help"])), Ok(Command::Help));
    }

    #[test]
    fn params_without_docroot() {
        let o = opts(&["9000", "/var/www/html/info.php", "--query", "x=1"]);
        let p = build_params(&o, None);
        let get = |n| param(&p, n);
        assert_eq!(get("SCRIPT_FILENAME"), Some("/var/www/html/info.php"));
        assert_eq!(get("SCRIPT_NAME"), Some("/info.php"));
        assert_eq!(get("DOCUMENT_ROOT"), Some("/var/www/html"));
        assert_eq!(get("DOCUMENT_URI"), Some("/info.php"));
        assert_eq!(get("REQUEST_URI"), Some("/info.php?x=1"));
        assert_eq!(get("QUERY_STRING"), Some("x=1"));
        assert_eq!(get("REQUEST_METHOD"), Some("GET"));
        assert_eq!(get("GATEWAY_INTERFACE"), Some("CGI/1.1"));
        assert_eq!(get("SERVER_PROTOCOL"), Some("HTTP/1.1"));
        assert_eq!(get("REMOTE_ADDR"), Some("127.0.0.1"));
        assert_eq!(
            get("SERVER_SOFTWARE").map(|s| s.starts_with("rfpm/")),
            Some(true)
        );
        assert_eq!(get("CONTENT_LENGTH"), None);
        assert_eq!(get("CONTENT_TYPE"), None);
        let p = build_params(&opts(&["9000", "/x.php"]), Some(0));
        assert_eq!(param(&p, "DOCUMENT_ROOT"), Some("/"));
        assert_eq!(param(&p, "REQUEST_URI"), Some("/x.php"));
        assert_eq!(param(&p, "CONTENT_LENGTH"), Some("0"));
    }

    #[test]
    fn params_with_docroot_and_overrides() {
        let o = opts(&[
            "9000",
            "/srv/app/public/api/v1.php",
            "--docroot",
            "/srv/app/public/",
            "--param",
            "CONTENT_TYPE=application/json",
            "--param",
            "REMOTE_ADDR=10.0.0.1",
            "--param",
            "HTTPS=on",
        ]);
        let p = build_params(&o, Some(12));
        let get = |n| param(&p, n);
        assert_eq!(get("SCRIPT_NAME"), Some("/api/v1.php"));
        assert_eq!(get("DOCUMENT_ROOT"), Some("/srv/app/public"));
        assert_eq!(get("REQUEST_URI"), Some("/api/v1.php"));
        assert_eq!(get("CONTENT_LENGTH"), Some("12"));
        assert_eq!(get("CONTENT_TYPE"), Some("application/json"));
        assert_eq!(get("REMOTE_ADDR"), Some("10.0.0.1"));
        assert_eq!(get("HTTPS"), Some("on"));
        assert_eq!(p.iter().filter(|(k, _)| k == "REMOTE_ADDR").count(), 1);
    }

    #[test]
    fn headers_become_params() {
        assert_eq!(
            header_param("Host: example.org"),
            Some(("HTTP_HOST".into(), "example.org".into()))
        );
        assert_eq!(
            header_param("x-forwarded-for:  10.1.2.3 "),
            Some(("HTTP_X_FORWARDED_FOR".into(), "10.1.2.3".into()))
        );
        assert_eq!(
            header_param("Content-Type: text/plain"),
            Some(("CONTENT_TYPE".into(), "text/plain".into()))
        );
        assert_eq!(header_param("no colon"), None);
        assert_eq!(header_param(": v"), None);
        assert_eq!(header_param("a b: v"), None);
        let o = opts(&["9000", "/x.php", "--header", "Host: a", "--header=host: b"]);
        assert_eq!(o.params, vec![("HTTP_HOST".to_string(), "b".to_string())]);
        assert!(parse_args(&args(&["9000", "/x.php", "--header", "bad"])).is_err());
    }

    #[test]
    fn header_block_split() {
        assert_eq!(header_block(b"A: 1\r\n\r\nbody"), b"A: 1\r\n\r\n");
        assert_eq!(header_block(b"A: 1\n\nbody\n\nmore"), b"A: 1\n\n");
        assert_eq!(header_block(b"no blank line"), b"no blank line");
    }

    #[test]
    fn status_to_exit() {
        let resp = |s: &[u8]| Response {
            stdout: s.to_vec(),
            ..Response::default()
        };
        let plain = opts(&["9000", "/x.php"]);
        let code = |s: &[u8], o: &Opts| verdict(&resp(s), o).0;
        assert_eq!(code(b"Content-type: text/html\r\n\r\nx", &plain), 0);
        assert_eq!(code(b"Status: 302 Found\r\nLocation: /\r\n\r\n", &plain), 0);
        assert_eq!(code(b"Status: 399 X\r\n\r\n", &plain), 0);
        assert_eq!(code(b"Status: 400 Bad Request\r\n\r\n", &plain), 1);
        assert_eq!(code(b"Status: 404 Not Found\r\n\r\n", &plain), 1);
        assert_eq!(
            code(b"Status: 500 Internal Server Error\r\n\r\n", &plain),
            1
        );
        assert_eq!(
            verdict(&resp(b"Status: 503 Service Unavailable\r\n\r\n"), &plain).1,
            Some("the response's status is 503".to_string())
        );
        let any = opts(&["9000", "/x.php", "--any-status"]);
        assert_eq!(code(b"Status: 404 Not Found\r\n\r\n", &any), 0);
        assert_eq!(code(b"Status: 503 Service Unavailable\r\n\r\n", &any), 0);
        let pong = opts(&["9000", "/x.php", "--expect", "pong"]);
        assert_eq!(code(b"Content-Type: text/plain\r\n\r\npong", &pong), 0);
        assert_eq!(code(b"Content-Type: text/plain\r\n\r\nping", &pong), 1);
        // In the headers is not in the body.
        assert_eq!(code(b"X-Pong: pong\r\n\r\nping", &pong), 1);
        // The status is checked first.
        assert_eq!(code(b"Status: 500 X\r\n\r\npong", &pong), 1);
        assert!(parse_args(&args(&["9000", "/x.php", "--expect", ""])).is_err());
        assert!(parse_args(&args(&["9000", "/x.php", "--any-status=1"])).is_err());
    }

    #[test]
    fn stderr_as_lines() {
        assert_eq!(stderr_lines(b""), b"");
        assert_eq!(
            stderr_lines(b"Primary script unknown"),
            b"stderr: Primary script unknown\n"
        );
        assert_eq!(stderr_lines(b"a\nb\n"), b"stderr: a\nstderr: b\n");
        assert_eq!(stderr_lines(b"a\n\nb"), b"stderr: a\nstderr: \nstderr: b\n");
    }

    struct Outcome {
        code: i32,
        out: Vec<u8>,
        err: Vec<u8>,
    }

    fn call(list: &[&str], stdin: &[u8]) -> Outcome {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut input = stdin;
        let code = run(&args(list), &mut input, &mut out, &mut err);
        Outcome { code, out, err }
    }

    #[test]
    fn usage_and_connection_failures() {
        let o = call(&["9000"], b"");
        assert_eq!(o.code, EXIT_USAGE);
        let err = String::from_utf8_lossy(&o.err);
        assert!(err.starts_with("rfpm request: ADDR and SCRIPT are required\nUsage: rfpm request"));
        let o = call(&["--help"], b"");
        assert_eq!(o.code, EXIT_OK);
        assert_eq!(String::from_utf8_lossy(&o.out), usage());
        let o = call(&["/nonexistent-rfpm/sock", "/x.php"], b"");
        assert_eq!(o.code, EXIT_FAILURE);
        assert_eq!(
            String::from_utf8_lossy(&o.err),
            "rfpm request: /nonexistent-rfpm/sock: cannot connect: No such file or directory (2)\n"
        );
        let o = call(&["9000", "/x.php", "--body", "/nonexistent-rfpm/body"], b"");
        assert_eq!(o.code, EXIT_USAGE);
    }

    #[test]
    fn timeout_and_early_close_against_a_silent_server() {
        let dir = TempDir::new("silent");
        let sock = dir.path().join("sock");
        let listener = match std::os::unix::net::UnixListener::bind(&sock) {
            Ok(l) => l,
            Err(e) => panic!("bind: {e}"),
        };
        let sock_s = sock.to_string_lossy().into_owned();
        // Nobody accepts: the connection sits in the backlog, the read times out.
        let o = call(&[&sock_s, "/x.php", "--timeout", "0.2"], b"");
        assert_eq!(o.code, EXIT_FAILURE);
        assert!(
            String::from_utf8_lossy(&o.err).ends_with(": timed out after 0.2 s\n"),
            "{}",
            String::from_utf8_lossy(&o.err)
        );
        drop(listener);
        // A server that closes the connection at once: EOF (or EPIPE) before END_REQUEST.
        let sock2 = dir.path().join("sock2");
        let listener = match std::os::unix::net::UnixListener::bind(&sock2) {
            Ok(l) => l,
            Err(e) => panic!("bind: {e}"),
        };
        let t = std::thread::spawn(move || {
            if let Ok((conn, _)) = listener.accept() {
                drop(conn);
            }
        });
        let sock2_s = sock2.to_string_lossy().into_owned();
        let o = call(&[&sock2_s, "/x.php", "--timeout", "5"], b"");
        let _ = t.join();
        assert_eq!(o.code, EXIT_FAILURE);
    }

    /// A temp directory removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static N: AtomicUsize = AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let p = std::env::temp_dir().join(format!("rfpm-req-{tag}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            if let Err(e) = std::fs::create_dir_all(&p) {
                panic!("temp dir {}: {e}", p.display());
            }
            TempDir(p)
        }
        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Debian's php-fpm of the PHP rfpm is built for, on a temp Unix socket; stopped
    /// (SIGQUIT, then SIGKILL) on drop.
    struct PhpFpm {
        child: Child,
        dir: TempDir,
    }

    fn php_fpm() -> String {
        std::env::var("RFPM_REFERENCE_FPM")
            .ok()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| format!("/usr/sbin/php-fpm{}", sapi::PHP_MM))
    }

    impl PhpFpm {
        fn start() -> PhpFpm {
            // A test that skips without saying so asserts nothing: php-fpm is one of
            // `make test`'s dependencies (`make deps` installs it).
            let php_fpm = php_fpm();
            assert!(
                Path::new(&php_fpm).exists(),
                "{php_fpm} is not installed (run `make deps`)"
            );
            let dir = TempDir::new("fpm");
            let d = dir.path().display().to_string();
            let conf = format!(
                "[global]\nerror_log = {d}/log\ndaemonize = no\n\
                 [www]\nlisten = {d}/sock\npm = static\npm.max_children = 1\n"
            );
            let write = |name: &str, text: &str| {
                if let Err(e) = std::fs::write(dir.path().join(name), text) {
                    panic!("write {name}: {e}");
                }
            };
            write("fpm.conf", &conf);
            write(
                "echo.php",
                "<?php header('X-Test: yes'); echo $_SERVER['REQUEST_METHOD'], ' ', \
                 $_SERVER['SCRIPT_NAME'], ' ', $_SERVER['QUERY_STRING'], ' ', \
                 $_SERVER['SERVER_SOFTWARE'], ' [', file_get_contents('php://input'), '] ', \
                 $_SERVER['HTTP_X_EXTRA'] ?? '-';\n",
            );
            write(
                "fail.php",
                "<?php http_response_code(503); error_log('boom'); echo 'down';\n",
            );
            let child = match Cmd::new(&php_fpm)
                .args(["-n", "-R", "-F", "-y"])
                .arg(dir.path().join("fpm.conf"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
            {
                Ok(c) => c,
                Err(e) => panic!("spawn {php_fpm}: {e}"),
            };
            let mut fpm = PhpFpm { child, dir };
            let sock = fpm.sock();
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if std::os::unix::net::UnixStream::connect(&sock).is_ok() {
                    return fpm;
                }
                if let Ok(Some(status)) = fpm.child.try_wait() {
                    let log =
                        std::fs::read_to_string(fpm.dir.path().join("log")).unwrap_or_default();
                    panic!("php-fpm exited early ({status}): {log}");
                }
                if Instant::now() > deadline {
                    panic!("php-fpm did not listen on {} in time", sock.display());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }

        fn sock(&self) -> PathBuf {
            self.dir.path().join("sock")
        }

        fn script(&self, name: &str) -> String {
            self.dir.path().join(name).display().to_string()
        }
    }

    impl Drop for PhpFpm {
        fn drop(&mut self) {
            // Our own child, not reaped yet: the pid cannot have been reused.
            if let Ok(pid) = i32::try_from(self.child.id()) {
                let _ = rfpm_sys::process::kill(pid, libc::SIGQUIT);
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    #[test]
    fn against_php_fpm() {
        let fpm = PhpFpm::start();
        let sock = fpm.sock().display().to_string();
        let echo = fpm.script("echo.php");

        // Plain GET.
        let o = call(&[&sock, &echo, "--query", "a=1"], b"");
        let out = String::from_utf8_lossy(&o.out).into_owned();
        assert_eq!(
            o.code,
            EXIT_OK,
            "{out} / {}",
            String::from_utf8_lossy(&o.err)
        );
        assert!(out.contains("X-Test: yes\r\n"), "{out}");
        let version = env!("CARGO_PKG_VERSION");
        assert!(
            out.ends_with(&format!("\r\n\r\nGET /echo.php a=1 rfpm/{version} [] -")),
            "{out}"
        );
        assert!(o.err.is_empty());

        // POST with a body from stdin, an extra param and the docroot form.
        let docroot = fpm.dir.path().display().to_string();
        let o = call(
            &[
                &sock,
                &echo,
                "--method",
                "POST",
                "--body",
                "-",
                "--header",
                "X-Extra: hi",
                "--docroot",
                &docroot,
            ],
            b"payload",
        );
        let out = String::from_utf8_lossy(&o.out).into_owned();
        assert_eq!(o.code, EXIT_OK);
        assert!(
            out.ends_with(&format!(
                "\r\n\r\nPOST /echo.php  rfpm/{version} [payload] hi"
            )),
            "{out}"
        );

        // Header only.
        let o = call(&[&sock, &echo, "--header-only"], b"");
        let out = String::from_utf8_lossy(&o.out).into_owned();
        assert_eq!(o.code, EXIT_OK);
        assert!(out.contains("X-Test: yes\r\n"), "{out}");
        assert!(out.ends_with("\r\n\r\n"), "{out}");

        // A 503 with something on FastCGI stderr.
        let o = call(&[&sock, &fpm.script("fail.php")], b"");
        let out = String::from_utf8_lossy(&o.out).into_owned();
        assert_eq!(o.code, EXIT_BAD_RESPONSE, "{out}");
        assert!(
            out.starts_with("Status: 503 Service Unavailable\r\n"),
            "{out}"
        );
        assert!(out.ends_with("down"), "{out}");
        assert!(
            String::from_utf8_lossy(&o.err).contains("boom"),
            "{}",
            String::from_utf8_lossy(&o.err)
        );

        // A missing script: php-fpm answers 404, a completed request a probe must not
        // take for a success.
        let missing = fpm.script("missing.php");
        let o = call(&[&sock, &missing], b"");
        let out = String::from_utf8_lossy(&o.out).into_owned();
        assert_eq!(o.code, EXIT_BAD_RESPONSE, "{out}");
        assert!(out.starts_with("Status: 404 Not Found\r\n"), "{out}");
        assert!(out.ends_with("File not found.\n"), "{out}");
        assert_eq!(
            String::from_utf8_lossy(&o.err),
            "stderr: Primary script unknown\nrfpm request: the response's status is 404\n"
        );
        let o = call(&[&sock, &missing, "--any-status"], b"");
        assert_eq!(o.code, EXIT_OK);
    }
}
