//! Issue `harden`: bounds, hostile input and hostile workers (each test names what it
//! guards); differential where php-fpm8.2 is the reference.
#![forbid(unsafe_code)]

use integration::{both, Fpm};

fn ok<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}

// With `cgi.fix_pathinfo = 0`, a long SCRIPT_FILENAME refused by
// `security.limit_extensions`: the message to the web server is php-fpm's one-shot zlog
// buffer (2048 bytes: the first 2045 and `...`), not `log_limit`.
both!(denied_message_cut_at_2048, |kind| {
    let fpm = ok(Fpm::builder(kind).define("cgi.fix_pathinfo", "0").start());
    for total in [2047usize, 2048, 4000] {
        let path = format!("/n/{}.txt", "a".repeat(total - 78));
        let full = format!(
            "Access to the script '{path}' has been denied (see security.limit_extensions)"
        );
        assert_eq!(full.len(), total);
        let resp = ok(fpm.request("hello.php", &[("SCRIPT_FILENAME", &path)]));
        let want = if total < 2048 {
            full
        } else {
            format!("{}...", &full[..2045])
        };
        assert_eq!(resp.stderr_str(), want, "{total} bytes");
        assert_eq!(resp.status(), 403);
        assert_eq!(resp.body(), b"Access denied.\n");
    }
});
