//! The access log line (reference §5.5): `access.format` applied to one request.
//! Pure: the time formatter and the parameter lookup are passed in.

/// php-fpm's `access.format` when none is set.
pub const DEFAULT_FORMAT: &str = "%R - %u %t \"%m %r\" %s";

/// Longest line rfpm writes (php-fpm cuts lines at 1024 bytes; rfpm writes them whole
/// up to this bound, then cuts and says so).
pub const LINE_MAX: usize = 65536;

/// Everything a line can show about one request.
pub struct Entry<'a> {
    /// The FastCGI peer's address, `None` for a Unix socket.
    pub remote: Option<std::net::IpAddr>,
    pub user: &'a [u8],
    /// When the request started being read / the line is written: seconds since the epoch.
    pub start_secs: i64,
    pub now_secs: i64,
    pub method: &'a [u8],
    /// The effective SCRIPT_NAME (`%r`).
    pub uri: &'a [u8],
    pub query: &'a [u8],
    pub status: i32,
    pub script: &'a [u8],
    pub content_length: i64,
    pub duration_us: u64,
    pub memory: u64,
    pub cpu_user_us: u64,
    pub cpu_system_us: u64,
    pub pool: &'a [u8],
    pub pid: i32,
    pub ppid: i32,
    /// A FastCGI parameter after the worker's adjustments.
    pub param: &'a dyn Fn(&[u8]) -> Option<Vec<u8>>,
    /// Response header lines (`Name: value`).
    pub headers: &'a [&'a [u8]],
}

/// Default time format of `%t` and `%T`.
pub const TIME_FORMAT: &str = "%d/%b/%Y:%H:%M:%S %z";

/// Formats the line (without the newline). `strftime(secs, fmt)` prints a local time.
/// The format was validated at start; anything unexpected prints nothing.
/// Returns the line and whether it had to be cut at [`LINE_MAX`].
pub fn format(
    fmt: &[u8],
    e: &Entry<'_>,
    strftime: &dyn Fn(i64, &[u8]) -> Vec<u8>,
) -> (Vec<u8>, bool) {
    let mut out: Vec<u8> = Vec::with_capacity(256);
    let mut i = 0;
    while i < fmt.len() {
        let c = fmt[i];
        if c != b'%' {
            out.push(c);
            i += 1;
            continue;
        }
        i += 1;
        let Some(&next) = fmt.get(i) else { break };
        let mut arg: &[u8] = b"";
        let mut tok = next;
        if next == b'{' {
            let start = i + 1;
            let Some(len) = fmt[start..].iter().position(|&b| b == b'}') else {
                break;
            };
            arg = &fmt[start..start + len.min(128)];
            i = start + len + 1;
            let Some(&t) = fmt.get(i) else { break };
            tok = t;
        }
        i += 1;
        token(&mut out, tok, arg, e, strftime);
        if out.len() > LINE_MAX {
            break;
        }
    }
    let cut = out.len() > LINE_MAX;
    out.truncate(LINE_MAX);
    (out, cut)
}

fn percent(cpu_us: u64, duration_us: u64) -> f64 {
    if duration_us == 0 {
        0.0
    } else {
        cpu_us as f64 * 100.0 / duration_us as f64
    }
}

fn token(
    out: &mut Vec<u8>,
    tok: u8,
    arg: &[u8],
    e: &Entry<'_>,
    strftime: &dyn Fn(i64, &[u8]) -> Vec<u8>,
) {
    let lower = String::from_utf8_lossy(arg).to_ascii_lowercase();
    let mut put = |s: &str| out.extend_from_slice(s.as_bytes());
    match tok {
        b'%' => put("%"),
        b'C' => {
            let cpu = match lower.as_str() {
                "user" => e.cpu_user_us,
                "system" => e.cpu_system_us,
                _ => e.cpu_user_us.saturating_add(e.cpu_system_us),
            };
            put(&format!("{:.2}", percent(cpu, e.duration_us)));
        }
        b'd' => match lower.as_str() {
            "milliseconds" | "milli" | "miliseconds" | "mili" => {
                put(&format!("{:.3}", e.duration_us as f64 / 1000.0))
            }
            "microseconds" | "micro" => put(&e.duration_us.to_string()),
            _ => put(&format!("{:.3}", e.duration_us as f64 / 1_000_000.0)),
        },
        b'e' => match (e.param)(arg) {
            Some(v) => out.extend_from_slice(&v),
            None => put("-"),
        },
        b'f' => out.extend_from_slice(if e.script.is_empty() { b"-" } else { e.script }),
        b'l' => put(&e.content_length.to_string()),
        b'm' => out.extend_from_slice(if e.method.is_empty() { b"-" } else { e.method }),
        b'M' => {
            let v = match lower.as_str() {
                "kilobytes" | "kilo" => e.memory / 1024,
                "megabytes" | "mega" => e.memory / (1024 * 1024),
                _ => e.memory,
            };
            put(&v.to_string());
        }
        b'n' => out.extend_from_slice(e.pool),
        b'o' => {
            let found = e.headers.iter().find_map(|h| {
                h.strip_prefix(arg)
                    .and_then(|rest| rest.strip_prefix(b": ".as_slice()))
            });
            match found {
                Some(v) if !arg.is_empty() => out.extend_from_slice(v),
                _ => put("-"),
            }
        }
        b'p' => put(&e.pid.to_string()),
        b'P' => put(&e.ppid.to_string()),
        b'q' => out.extend_from_slice(e.query),
        b'Q' if !e.query.is_empty() => put("?"),
        b'r' => out.extend_from_slice(e.uri),
        b'R' => match e.remote {
            Some(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => put(&v4.to_string()),
                None => put(&v6.to_string()),
            },
            Some(ip) => put(&ip.to_string()),
            None => put("-"),
        },
        b's' => put(&e.status.to_string()),
        b't' | b'T' => {
            let secs = if tok == b't' {
                e.start_secs
            } else {
                e.now_secs
            };
            // The format's bytes as configured (a literal byte that is not UTF-8 too).
            let f = if arg.is_empty() {
                TIME_FORMAT.as_bytes()
            } else {
                arg
            };
            out.extend_from_slice(&strftime(secs, f));
        }
        b'u' => out.extend_from_slice(e.user),
        _ => {}
    }
}

/// Longest value of one string member of a JSON access entry, in bytes before
/// escaping: five such members escape to at most 60 KiB, under [`LINE_MAX`].
pub const JSON_FIELD_MAX: usize = 2048;

/// What a JSON access entry shows beyond [`Entry`].
pub struct JsonEntry<'a> {
    /// When the request started being read, RFC 3339.
    pub time: &'a str,
    pub request_id: &'a [u8],
    /// The URI the client asked for (`REQUEST_URI`, else the effective SCRIPT_NAME).
    pub uri: &'a [u8],
    /// `QUERY_STRING` whole.
    pub query: &'a [u8],
    /// The client's address as the web server reports it (`REMOTE_ADDR`).
    pub remote_addr: Option<&'a [u8]>,
}

/// One request as a JSON object on one line (`access.log_format = json`, without the
/// newline): `time`, `pool`, `pid`, `request_id`, `method`, `uri`, `query`, `status`,
/// `duration_ms`, `cpu_ms`, `memory_bytes` (peak), `script`, `remote_addr`, `user`,
/// `content_length`. Every string is escaped whatever its bytes; one longer than
/// [`JSON_FIELD_MAX`] is cut there, and the entry then says `"truncated":true` (the
/// bool returned).
pub fn format_json<'a>(e: &Entry<'a>, j: &JsonEntry<'a>) -> (Vec<u8>, bool) {
    let mut cut = false;
    let mut bound = |v: &'a [u8]| -> &'a [u8] {
        if v.len() > JSON_FIELD_MAX {
            cut = true;
            &v[..JSON_FIELD_MAX]
        } else {
            v
        }
    };
    let method = bound(e.method);
    let uri = bound(j.uri);
    let query = bound(j.query);
    let script = bound(e.script);
    let user = bound(e.user);
    let remote = j.remote_addr.map(&mut bound);
    let mut out = Vec::with_capacity(320 + uri.len() + query.len() + script.len());
    let mut o = crate::json::Object::new(&mut out);
    o.str("time", j.time.as_bytes())
        .str("pool", e.pool)
        .i64("pid", i64::from(e.pid))
        .str("request_id", j.request_id)
        .opt_str("method", (!method.is_empty()).then_some(method))
        .str("uri", uri)
        .str("query", query)
        .i64("status", i64::from(e.status))
        .milli("duration_ms", e.duration_us)
        .milli("cpu_ms", e.cpu_user_us.saturating_add(e.cpu_system_us))
        .u64("memory_bytes", e.memory)
        .opt_str("script", (!script.is_empty()).then_some(script))
        .opt_str("remote_addr", remote)
        .opt_str("user", (!user.is_empty()).then_some(user))
        .i64("content_length", e.content_length);
    if cut {
        o.raw_true("truncated");
    }
    o.finish();
    (out, cut)
}

/// `access.suppress_path` (reference §5.5): whether the line is skipped.
pub fn suppressed(paths: &[Vec<u8>], e: &Entry<'_>) -> bool {
    !paths.is_empty()
        && e.query.is_empty()
        && (e.method == b"GET" || e.method == b"HEAD")
        && (200..300).contains(&e.status)
        && e.content_length == 0
        && paths.iter().any(|p| p.as_slice() == e.uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(secs: i64, f: &[u8]) -> Vec<u8> {
        assert_eq!(secs, 1_795_490_083);
        if f == TIME_FORMAT.as_bytes() {
            b"24/Nov/2026:03:14:43 +0000".to_vec()
        } else {
            [b"<", f, b">"].concat()
        }
    }

    fn entry<'a>(
        param: &'a dyn Fn(&[u8]) -> Option<Vec<u8>>,
        headers: &'a [&'a [u8]],
    ) -> Entry<'a> {
        Entry {
            remote: Some(
                "::ffff:127.0.0.1"
                    .parse()
                    .unwrap_or(std::net::IpAddr::from([0u8; 4])),
            ),
            user: b"foo",
            start_secs: 1_795_490_083,
            now_secs: 1_795_490_083,
            method: b"GET",
            uri: b"/errs.php",
            query: b"x=1",
            status: 200,
            script: b"/srv/www/errs.php",
            content_length: 0,
            duration_us: 375,
            memory: 2_097_152,
            cpu_user_us: 0,
            cpu_system_us: 0,
            pool: b"www",
            pid: 31013,
            ppid: 31009,
            param,
            headers,
        }
    }

    #[test]
    fn every_token_like_the_reference() {
        let param = |n: &[u8]| (n == b"HTTP_HOST").then(|| b"example.com".to_vec());
        let headers: [&[u8]; 2] = [b"Content-type: text/html; charset=UTF-8", b"X-Foo: bar"];
        let e = entry(&param, &headers);
        let fmt = b"%R|%u|%t|%T|%m|%r|%Q|%q|%s|%f|%l|%{milli}d|%d|%{micro}d|%M|%{kilo}M|%C|%{user}C|%n|%p|%P|%{HTTP_HOST}e|%{Content-Type}o|%{X-Foo}o|%%";
        let (line, cut) = format(fmt, &e, &utc);
        assert!(!cut);
        assert_eq!(
            String::from_utf8_lossy(&line),
            "127.0.0.1|foo|24/Nov/2026:03:14:43 +0000|24/Nov/2026:03:14:43 +0000|GET|/errs.php|?|x=1|200|/srv/www/errs.php|0|0.375|0.000|375|2097152|2048|0.00|0.00|www|31013|31009|example.com|-|bar|%"
        );
    }

    #[test]
    fn default_format_and_modifiers() {
        let param = |_: &[u8]| None;
        let e = Entry {
            user: b"",
            remote: None,
            ..entry(&param, &[])
        };
        let (line, _) = format(DEFAULT_FORMAT.as_bytes(), &e, &utc);
        assert_eq!(
            String::from_utf8_lossy(&line),
            "- -  24/Nov/2026:03:14:43 +0000 \"GET /errs.php\" 200"
        );
        let e = Entry {
            duration_us: 2_000_000,
            cpu_user_us: 500_000,
            cpu_system_us: 1_000_000,
            memory: 3 * 1024 * 1024,
            ..entry(&param, &[])
        };
        let (line, _) = format(
            b"%{SYSTEM}C %{total}C %{seconds}d %{MEGA}M %{bytes}M %{x}e %{%Y}t %",
            &e,
            &utc,
        );
        assert_eq!(
            String::from_utf8_lossy(&line),
            "50.00 75.00 2.000 3 3145728 - <%Y> "
        );
    }

    #[test]
    fn long_lines_are_not_cut_at_1024() {
        let long = vec![b'a'; 5000];
        let param = move |_: &[u8]| Some(long.clone());
        let e = entry(&param, &[]);
        let (line, cut) = format(b"%{X}e", &e, &utc);
        assert_eq!(line.len(), 5000);
        assert!(!cut);
    }

    #[test]
    fn json_entry_escapes_every_field() {
        let param = |_: &[u8]| None;
        let e = Entry {
            user: b"bob\"\\",
            script: b"/srv/\xff.php",
            ..entry(&param, &[])
        };
        let uri = b"/a\"b\\c\x01\n\xc3\x28?x=\"1\"".to_vec();
        let j = JsonEntry {
            time: "2026-11-24T03:14:43.042Z",
            request_id: b"rid-1",
            uri: &uri,
            query: b"x=\"1\"\t\x00",
            remote_addr: Some(b"192.0.2.1"),
        };
        let (line, cut) = format_json(&e, &j);
        assert!(!cut);
        assert!(!line.contains(&b'\n'));
        let v: serde_json::Value = serde_json::from_slice(&line).expect("JSON");
        assert_eq!(v["uri"], String::from_utf8_lossy(&uri).as_ref());
        assert_eq!(v["query"], "x=\"1\"\t\u{0}");
        assert_eq!(v["script"], "/srv/\u{fffd}.php");
        assert_eq!(v["user"], "bob\"\\");
        assert_eq!(v["request_id"], "rid-1");
        assert_eq!(v["remote_addr"], "192.0.2.1");
        assert_eq!(v["status"], 200);
        assert_eq!(v["duration_ms"].as_f64(), Some(0.375));
        assert_eq!(v["cpu_ms"].as_f64(), Some(0.0));
        assert_eq!(v["memory_bytes"], 2_097_152);
        assert_eq!(v["content_length"], 0);
        assert_eq!(
            (v["pool"].as_str(), v["pid"].as_i64()),
            (Some("www"), Some(31013))
        );
        assert_eq!(v["method"], "GET");
        assert_eq!(v.get("truncated"), None);
        // Absent values are null.
        let e = Entry {
            user: b"",
            script: b"",
            method: b"",
            ..entry(&param, &[])
        };
        let j = JsonEntry {
            remote_addr: None,
            ..j
        };
        let v: serde_json::Value = serde_json::from_slice(&format_json(&e, &j).0).expect("JSON");
        for k in ["user", "script", "method", "remote_addr"] {
            assert!(v[k].is_null(), "{k}");
        }
    }

    #[test]
    fn json_entry_is_bounded() {
        let param = |_: &[u8]| None;
        let e = entry(&param, &[]);
        let huge = vec![0x01u8; 1 << 20];
        let j = JsonEntry {
            time: "t",
            request_id: b"r",
            uri: &huge,
            query: &huge,
            remote_addr: Some(&huge),
        };
        let (line, cut) = format_json(&e, &j);
        assert!(cut && line.len() < LINE_MAX);
        let v: serde_json::Value = serde_json::from_slice(&line).expect("JSON");
        assert_eq!(v["truncated"], true);
        assert_eq!(v["uri"].as_str().map(str::len), Some(JSON_FIELD_MAX));
    }

    #[test]
    fn suppress_path_rules() {
        let param = |_: &[u8]| None;
        let paths = vec![b"/ping".to_vec()];
        let base = Entry {
            uri: b"/ping",
            query: b"",
            ..entry(&param, &[])
        };
        assert!(suppressed(&paths, &base));
        assert!(!suppressed(
            &paths,
            &Entry {
                query: b"a",
                ..entry(&param, &[])
            }
        ));
        let e = Entry {
            uri: b"/ping",
            query: b"",
            method: b"POST",
            ..entry(&param, &[])
        };
        assert!(!suppressed(&paths, &e));
        let e = Entry {
            uri: b"/ping",
            query: b"",
            content_length: 100,
            ..entry(&param, &[])
        };
        assert!(!suppressed(&paths, &e));
        let e = Entry {
            uri: b"/ping",
            query: b"",
            status: 404,
            ..entry(&param, &[])
        };
        assert!(!suppressed(&paths, &e));
        let e = Entry {
            uri: b"/ping",
            query: b"",
            method: b"HEAD",
            ..entry(&param, &[])
        };
        assert!(suppressed(&paths, &e));
        assert!(!suppressed(&[], &base));
    }
}
