//! rfpm only: with no `-y` and no file at rfpm's default config path, the built-in default
//! runs pool `www` on 127.0.0.1:9000, and `rfpm request` can talk to it. It logs to stderr
//! and opens no file, so a user who may not write `/var/log` runs it too (when the tests
//! run as root, the server runs as `nobody`).
//!
//! Port 9000 is fixed here by definition; the test is skipped (with a message, not failed)
//! when the port is busy or when `/etc/rfpm/php-fpm.conf` exists.
#![forbid(unsafe_code)]

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use integration::{fixtures_dir, rfpm_bin, Fpm, Kind};

const DEFAULT_CONF: &str = "/etc/rfpm/php-fpm.conf";
/// Debian's `nobody` and `nogroup`.
const NOBODY: u32 = 65534;

#[test]
fn builtin_default_config_test_says_so() {
    use std::os::unix::process::CommandExt;
    if Path::new(DEFAULT_CONF).exists() {
        eprintln!("SKIPPED builtin_default_config_test_says_so: {DEFAULT_CONF} exists");
        return;
    }
    let mut cmd = Command::new(rfpm_bin());
    cmd.args(["-n", "-t"]).current_dir("/");
    if rfpm_sys::process::geteuid() == 0 {
        cmd.uid(NOBODY).gid(NOBODY);
    }
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) => panic!("running rfpm -t: {e}"),
    };
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "rfpm -t: {}: {err}", out.status);
    let lines: Vec<&str> = err.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(
        lines[0].ends_with("NOTICE: no configuration file '/etc/rfpm/php-fpm.conf': running the built-in default configuration (pool www on 127.0.0.1:9000)"),
        "{err}"
    );
    assert!(
        lines[1].ends_with("NOTICE: the built-in default configuration test is successful"),
        "{err}"
    );
}

#[test]
fn builtin_default_config_rfpm() {
    if Path::new(DEFAULT_CONF).exists() {
        eprintln!("SKIPPED builtin_default_config_rfpm: {DEFAULT_CONF} exists, so the built-in default does not apply");
        return;
    }
    match TcpListener::bind("127.0.0.1:9000") {
        Ok(l) => drop(l),
        Err(e) => {
            eprintln!("SKIPPED builtin_default_config_rfpm: 127.0.0.1:9000 is busy ({e})");
            return;
        }
    }
    let mut builder = Fpm::builder(Kind::Rfpm).no_config();
    if rfpm_sys::process::geteuid() == 0 {
        builder = builder.run_as(NOBODY, NOBODY);
    }
    let fpm = match builder.start() {
        Ok(f) => f,
        Err(e) => panic!("starting rfpm without -y: {e}"),
    };
    let log = fpm.log();
    assert!(
        log.lines()
            .any(|l| l.contains("NOTICE:") && l.contains("127.0.0.1:9000")),
        "no NOTICE about the built-in default on 127.0.0.1:9000:\n{log}"
    );
    assert!(log.contains("ready to handle connections"));
    assert!(!log.contains("error_log"), "{log}");

    let script = fixtures_dir().join("hello.php");
    let out = match Command::new(rfpm_bin())
        .arg("request")
        .arg("127.0.0.1:9000")
        .arg(&script)
        .args(["--timeout", "10"])
        .current_dir(fpm.dir())
        .env("HOME", fpm.dir())
        .output()
    {
        Ok(o) => o,
        Err(e) => panic!("running rfpm request: {e}"),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "rfpm request exited with {}: stdout {stdout:?} stderr {:?}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Hello, world!\n"),
        "rfpm request printed {stdout:?}"
    );
}
