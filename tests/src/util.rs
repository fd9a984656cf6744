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
