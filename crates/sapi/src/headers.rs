//! The CGI header block FPM sends to the web server (reference §7.6). Pure.

/// What PHP decided about the response head, read out of `SG(sapi_headers)`.
pub struct Head<'a> {
    pub code: i32,
    /// The status line the script gave with `header("HTTP/1.1 404 Not Found")`.
    pub status_line: Option<&'a [u8]>,
    /// Every header line in PHP's order (`X-Powered-By`, script headers, `Content-type`).
    pub headers: Vec<&'a [u8]>,
    /// php.ini `cgi.rfc2616_headers`.
    pub rfc2616: bool,
    /// php.ini `cgi.nph`.
    pub nph: bool,
}

/// A header line is at most this long (php-fpm formats it into a 1024-byte buffer).
const STATUS_LINE_MAX: usize = 1023;

fn starts_with_ci(line: &[u8], prefix: &[u8]) -> bool {
    line.len() >= prefix.len() && line[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// Builds `Status:` (if needed), the headers and the empty line, in php-fpm's order.
/// `reason` gives the standard reason phrase of a code (PHP's table).
pub fn build(head: &Head<'_>, reason: impl Fn(i32) -> Option<String>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let mut has_status = false;

    if head.code != 200 || head.nph {
        match head.status_line {
            Some(line) if head.rfc2616 => {
                out.extend_from_slice(line);
                out.extend_from_slice(b"\r\n");
                has_status = true;
            }
            Some(line) => {
                // "HTTP/1.1 404 Not Found" -> "Status: 404 Not Found" (from the first space on).
                if let Some(sp) = line.iter().position(|&b| b == b' ') {
                    let mut status = b"Status:".to_vec();
                    status.extend_from_slice(&line[sp..]);
                    status.truncate(STATUS_LINE_MAX);
                    out.extend_from_slice(&status);
                    out.extend_from_slice(b"\r\n");
                    has_status = true;
                }
            }
            None => {}
        }
        if !has_status {
            let script_status = head.headers.iter().any(|h| starts_with_ci(h, b"status:"));
            if !script_status {
                let line = match reason(head.code) {
                    Some(r) => format!("Status: {} {}", head.code, r),
                    None => format!("Status: {}", head.code),
                };
                out.extend_from_slice(line.as_bytes());
                out.extend_from_slice(b"\r\n");
                has_status = true;
            }
        }
    }

    for h in &head.headers {
        if head.code == 304 && starts_with_ci(h, b"content-type") {
            continue;
        }
        if starts_with_ci(h, b"status:") {
            if has_status {
                continue;
            }
            has_status = true;
        }
        out.extend_from_slice(h);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(code: i32) -> Option<String> {
        match code {
            200 => Some("OK".into()),
            302 => Some("Found".into()),
            304 => Some("Not Modified".into()),
            404 => Some("Not Found".into()),
            500 => Some("Internal Server Error".into()),
            _ => None,
        }
    }

    fn head<'a>(code: i32, status_line: Option<&'a [u8]>, headers: Vec<&'a [u8]>) -> Head<'a> {
        Head {
            code,
            status_line,
            headers,
            rfc2616: false,
            nph: false,
        }
    }

    const XP: &[u8] = b"X-Powered-By: PHP/8.2";
    const CT: &[u8] = b"Content-type: text/html; charset=UTF-8";

    #[test]
    fn ok_has_no_status() {
        let out = build(&head(200, None, vec![XP, CT]), reason);
        assert_eq!(
            out,
            b"X-Powered-By: PHP/8.2\r\nContent-type: text/html; charset=UTF-8\r\n\r\n"
        );
    }

    #[test]
    fn status_line_from_script() {
        let out = build(
            &head(404, Some(b"HTTP/1.1 404 Not Found"), vec![XP, CT]),
            reason,
        );
        assert!(out.starts_with(b"Status: 404 Not Found\r\nX-Powered-By"));
    }

    #[test]
    fn unknown_code_has_bare_status() {
        let out = build(&head(418, None, vec![XP, CT]), reason);
        assert!(out.starts_with(b"Status: 418\r\nX-Powered-By"));
    }

    #[test]
    fn script_status_header_kept_in_place() {
        let out = build(
            &head(299, None, vec![XP, b"Status: 299 Custom", CT]),
            reason,
        );
        assert_eq!(
            out,
            b"X-Powered-By: PHP/8.2\r\nStatus: 299 Custom\r\nContent-type: text/html; charset=UTF-8\r\n\r\n"
        );
    }

    #[test]
    fn not_modified_drops_content_type() {
        let out = build(&head(304, None, vec![XP, CT]), reason);
        assert_eq!(
            out,
            b"Status: 304 Not Modified\r\nX-Powered-By: PHP/8.2\r\n\r\n"
        );
    }

    #[test]
    fn long_status_line_is_capped() {
        let mut line = b"HTTP/1.1 201 ".to_vec();
        line.extend(std::iter::repeat_n(b'A', 1014));
        let out = build(&head(201, Some(&line), vec![]), reason);
        let first = out.split(|&b| b == b'\r').next().unwrap_or_default();
        assert_eq!(first.len(), 1023);
        assert!(first.starts_with(b"Status: 201 AAA"));
    }

    #[test]
    fn nph_sends_ok_status() {
        let mut h = head(200, None, vec![CT]);
        h.nph = true;
        assert!(build(&h, reason).starts_with(b"Status: 200 OK\r\n"));
    }

    #[test]
    fn rfc2616_sends_line_verbatim() {
        let mut h = head(404, Some(b"HTTP/1.1 404 Not Found"), vec![CT]);
        h.rfc2616 = true;
        assert!(build(&h, reason).starts_with(b"HTTP/1.1 404 Not Found\r\nContent-type"));
    }
}
