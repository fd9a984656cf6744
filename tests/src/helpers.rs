//! Small helpers the test files share: unwrap with the error's text, the body of a
//! response as text, the `pid=N` line, how often the master logged something.

use crate::{Fpm, FpmBuilder};

/// The value, or a panic with the error's text (the harness's errors say what failed).
pub fn ok<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}

/// Starts the FPM and waits for `ready to handle connections`.
pub fn start(b: FpmBuilder) -> Fpm {
    ok(b.start())
}

/// A response's body as text.
pub fn text_of(resp: &fcgi::client::Response) -> String {
    String::from_utf8_lossy(resp.body()).into_owned()
}

/// The `pid=N` line of a pid.php / wait.php / slow.php / memory.php response (0 if none).
pub fn pid_of(resp: &fcgi::client::Response) -> u32 {
    text_of(resp)
        .lines()
        .find_map(|l| l.strip_prefix("pid=").and_then(|p| p.parse().ok()))
        .unwrap_or(0)
}

/// How often `pattern` occurs in the master's log.
pub fn count(fpm: &Fpm, pattern: &str) -> usize {
    fpm.log().matches(pattern).count()
}
