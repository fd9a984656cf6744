//! Waiting with deadlines, free ports, digests.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::HarnessError;

/// Polls `cond` every 10 ms until it holds (true) or `deadline` passes (false).
pub fn wait_until(deadline: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until `path` exists.
pub fn wait_for_file(path: &Path, deadline: Duration) -> bool {
    wait_until(deadline, || path.exists())
}

/// A TCP port on 127.0.0.1 that was free a moment ago (bind port 0, read it, close).
pub fn free_port() -> Result<u16, HarnessError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| HarnessError::io("binding 127.0.0.1:0", e))?;
    let port = l
        .local_addr()
        .map_err(|e| HarnessError::io("getsockname", e))?
        .port();
    Ok(port)
}

/// MD5 of `data` as lowercase hex, computed by coreutils' `md5sum` (independent of PHP).
pub fn md5_hex(data: &[u8]) -> Result<String, HarnessError> {
    let mut child = Command::new("md5sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| HarnessError::io("starting md5sum", e))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(data)
            .map_err(|e| HarnessError::io("writing to md5sum", e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| HarnessError::io("waiting for md5sum", e))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let hex = text.split_whitespace().next().unwrap_or("").to_string();
    if hex.len() != 32 {
        return Err(HarnessError::Other(format!("md5sum printed {text:?}")));
    }
    Ok(hex)
}

/// Debian's chromium, headless (`--dump-dom`, `--screenshot=…` in `args`) on `url`, with
/// its profile in `profile`; its output. Panics when chromium is not installed.
pub fn chromium(profile: &Path, args: &[&str], url: &str) -> std::process::Output {
    let mut cmd = Command::new("/usr/bin/chromium");
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--virtual-time-budget=5000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(args)
    .arg(url)
    .stdin(Stdio::null());
    match cmd.output() {
        Ok(o) => o,
        Err(e) => panic!("/usr/bin/chromium (install it: make deps): {e}"),
    }
}

/// `GET target` on 127.0.0.1:`port` over HTTP/1.1 with `Connection: close` (and an
/// `Accept` header when given): the status code and the body (a chunked body joined).
pub fn http_get(port: u16, target: &str, accept: Option<&str>) -> std::io::Result<(u16, String)> {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(crate::DEADLINE))?;
    let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{accept}Connection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    Ok((
        code,
        if chunked {
            dechunk(body)
        } else {
            body.to_string()
        },
    ))
}

/// A chunked HTTP body's data.
fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}
