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
    pub pool: &'a str,
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
    strftime: &dyn Fn(i64, &str) -> String,
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
    strftime: &dyn Fn(i64, &str) -> String,
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
        b'n' => put(e.pool),
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
            let f = if arg.is_empty() {
                TIME_FORMAT.to_string()
            } else {
                String::from_utf8_lossy(arg).into_owned()
            };
            put(&strftime(secs, &f));
        }
        b'u' => out.extend_from_slice(e.user),
        _ => {}
    }
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

    fn utc(secs: i64, f: &str) -> String {
        assert_eq!(secs, 1_795_490_083);
        match f {
            TIME_FORMAT => "24/Nov/2026:03:14:43 +0000".into(),
            other => format!("<{other}>"),
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
            pool: "www",
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
