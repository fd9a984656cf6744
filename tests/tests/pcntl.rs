//! pcntl: libphp8.2 has it built in, php-fpm8.2 has not. A worker's scripts do not see it
//! (no functions, constants, INI entry or module entry) unless the pool sets rfpm's
//! `allow_pcntl = yes`.
#![forbid(unsafe_code)]

use integration::{both, Fpm, HarnessError, Kind};

fn ok<T>(r: Result<T, HarnessError>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}

const ABSENT: &str = r#"{"pcntl_fork":false,"pcntl_signal":false,"loaded":false,"listed":false,"SIGTERM":false,"WNOHANG":false,"ini":false,"posix":true}"#;

both!(pcntl_is_absent_from_worker_scripts, |kind| {
    let fpm = ok(Fpm::builder(kind).start());
    // Twice: a second request on the same worker sees the same.
    for _ in 0..2 {
        let resp = ok(fpm.request("pcntl.php", &[]));
        assert_eq!(String::from_utf8_lossy(resp.body()).trim_end(), ABSENT);
    }
});

#[test]
fn allow_pcntl_shows_it_again_rfpm() {
    let fpm = ok(Fpm::builder(Kind::Rfpm)
        .pool_line("allow_pcntl = yes")
        .start());
    let resp = ok(fpm.request("pcntl.php", &[]));
    assert_eq!(
        String::from_utf8_lossy(resp.body()).trim_end(),
        r#"{"pcntl_fork":true,"pcntl_signal":true,"loaded":true,"listed":true,"SIGTERM":true,"WNOHANG":true,"ini":false,"posix":true}"#
    );
}
