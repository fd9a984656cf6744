//! `-t` / `-tt` (reference §1.5, §2): rfpm and php-fpm (of the same PHP) run on the same configurations
//! and must print the same lines (after the timestamp) with the same exit code.
//!
//! The configurations are the corpus of crate `conf` (`crates/conf/tests/corpus/*`:
//! valid files and one per error message; `@DIR@` stands for the temp dir a case is
//! copied to, an optional `args` file holds extra options); stderr, stdout, the exit code and
//! the error log file are compared. Each case runs as root with
//! `-R`, as root without it, and as `nobody` (non-root), with a fixed environment.
//! Debian's stock `/etc/php/{v}/fpm/php-fpm.conf` (with `pool.d/www.conf`) is compared
//! in place.
#![forbid(unsafe_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use integration::{php_fpm_bin, php_mm, rfpm_bin, workspace_dir};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// root, `-R`
    RootR,
    /// root, no `-R`
    Root,
    /// uid/gid 65534 (nobody/nogroup)
    Nobody,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::RootR => "root -R",
            Mode::Root => "root",
            Mode::Nobody => "nobody",
        }
    }
}

/// Every `from` in `b` replaced by `to`, other bytes kept (a Latin-1 case stays
/// Latin-1: configurations and outputs are compared byte for byte).
fn replace(b: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// [`strip_time`] over bytes, then the temp dir written back as `@DIR@`.
fn normalise(line: &[u8], dir: &str) -> Vec<u8> {
    let stamped = line.len() >= 23 && line[0] == b'[' && line[21] == b']' && line[22] == b' ';
    let line = if stamped { &line[23..] } else { line };
    replace(line, dir.as_bytes(), b"@DIR@")
}

/// Removes the `[dd-Mon-yyyy hh:mm:ss] ` prefix of a log line.
fn strip_time(line: &str) -> &str {
    let b = line.as_bytes();
    if b.len() >= 23 && b[0] == b'[' && b[21] == b']' && b[22] == b' ' {
        &line[23..]
    } else {
        line
    }
}

fn copy_case(from: &Path, to: &Path, dir: &str) {
    std::fs::create_dir_all(to).expect("mkdir");
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    for e in std::fs::read_dir(from).expect("read case") {
        let e = e.expect("entry");
        let src = e.path();
        let dst = to.join(e.file_name());
        if src.is_dir() {
            copy_case(&src, &dst, dir);
        } else if !e.file_name().to_string_lossy().starts_with("expected-") {
            let text = std::fs::read(&src).expect("read");
            std::fs::write(&dst, replace(&text, b"@DIR@", dir.as_bytes())).expect("write");
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        }
    }
}

/// Runs `bin -n -tt` on a fresh copy of `case`; returns the normalised output and exit
/// code, as bytes.
fn run(bin: &Path, case: &Path, mode: Mode) -> Vec<u8> {
    let tmp = tempfile::Builder::new()
        .prefix("itest-conf-")
        .tempdir()
        .expect("tempdir");
    let dir = tmp.path().to_string_lossy().into_owned();
    copy_case(case, tmp.path(), &dir);
    let mut args: Vec<String> = std::fs::read_to_string(tmp.path().join("args"))
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if mode == Mode::RootR {
        args.push("-R".into());
    }
    let conf = tmp.path().join("php-fpm.conf");
    let mut cmd = if mode == Mode::Nobody {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
        c.arg(bin);
        c
    } else {
        Command::new(bin)
    };
    cmd.arg("-n")
        .arg("-tt")
        .args(&args)
        .arg("-y")
        .arg(&conf)
        .current_dir(tmp.path())
        .env_clear()
        .envs([
            ("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            ("HOME", "/root"),
            ("TESTVAR", "hello"),
            ("TESTNUM", "7"),
            ("TESTBOOL", "on"),
            ("TMPDIR", "/tmp"),
        ])
        .stdin(Stdio::null());
    let out = cmd.output().expect("run");
    // Both streams: php-fpm writes its log lines to stderr, PHP's own parse errors too.
    let mut text = Vec::new();
    for stream in [&out.stdout, &out.stderr] {
        if stream.is_empty() {
            continue;
        }
        // Line by line (a final newline ends the last line, it does not start another).
        let body = stream.strip_suffix(b"\n").unwrap_or(stream);
        for line in body.split(|&c| c == b'\n') {
            text.extend_from_slice(&normalise(line, &dir));
            text.push(b'\n');
        }
    }
    text.extend_from_slice(format!("rc={}\n", out.status.code().unwrap_or(-1)).as_bytes());
    // What landed in the error log file (most cases use `<dir>/err.log`): before the master
    // is launched every line goes to the file and to stderr, the result line included.
    if let Ok(log) = std::fs::read(tmp.path().join("err.log")) {
        text.extend_from_slice(b"--- err.log\n");
        for line in log.split_inclusive(|&c| c == b'\n') {
            text.extend_from_slice(&normalise(line, &dir));
        }
    }
    text
}

fn corpus() -> Vec<PathBuf> {
    let root = workspace_dir().join("crates/conf/tests/corpus");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("corpus dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    cases
}

fn compare(modes: &[Mode]) {
    let rfpm = rfpm_bin();
    assert!(
        rfpm.exists(),
        "{} missing (cargo build -p rfpm)",
        rfpm.display()
    );
    let cases = corpus();
    assert!(cases.len() >= 40, "corpus too small: {}", cases.len());
    let mut failures = Vec::new();
    let mut compared = 0;
    for case in &cases {
        for &mode in modes {
            let expected = run(&php_fpm_bin(), case, mode);
            let actual = run(&rfpm, case, mode);
            compared += 1;
            if actual != expected {
                failures.push(format!(
                    "=== {} ({})\n--- php-fpm\n{}--- rfpm\n{}",
                    case.display(),
                    mode.name(),
                    String::from_utf8_lossy(&expected),
                    String::from_utf8_lossy(&actual)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {compared} runs differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn corpus_as_root_with_r() {
    compare(&[Mode::RootR]);
}

#[test]
fn corpus_as_root() {
    compare(&[Mode::Root]);
}

#[test]
fn corpus_as_nobody() {
    compare(&[Mode::Nobody]);
}

/// `-t` (not `-tt`) on the stock Debian configuration, and `-tt`: identical output.
#[test]
fn debian_stock_config() {
    let v = php_mm();
    let conf = format!("/etc/php/{v}/fpm/php-fpm.conf");
    if !Path::new(&conf).exists() {
        panic!("{conf} missing (package php{v}-fpm: make deps)");
    }
    let run = |bin: &Path, t: &str| {
        let out = Command::new(bin)
            .args(["-n", t, "-y", &conf])
            .stdin(Stdio::null())
            .output()
            .expect("run");
        let text: String = String::from_utf8_lossy(&out.stderr)
            .lines()
            .flat_map(|l| [strip_time(l), "\n"])
            .collect();
        (text, out.status.code(), out.stdout)
    };
    for t in ["-t", "-tt"] {
        let expected = run(&php_fpm_bin(), t);
        let actual = run(&rfpm_bin(), t);
        assert_eq!(actual, expected, "{t}");
        assert_eq!(expected.1, Some(0), "{t}");
        if t == "-tt" {
            assert!(expected
                .0
                .contains(&format!("NOTICE: \tlisten = /run/php/php{v}-fpm.sock\n")));
        }
    }
}

/// Daemon mode (reference §5.1, §10.2): start-up errors after the fork (an unknown pool
/// user) still reach the launcher's stderr, the launcher exits 70; a master that starts
/// keeps nothing of the launcher's stderr open.
#[test]
fn daemon_start_errors_reach_the_launcher() {
    for bin in [php_fpm_bin(), rfpm_bin()] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let d = tmp.path().display().to_string();
        let conf = tmp.path().join("php-fpm.conf");
        let write_conf = |user: &str| {
            std::fs::write(
                &conf,
                format!(
                    "[global]\nerror_log = {d}/err.log\npid = {d}/fpm.pid\n[www]\nlisten = {d}/s.sock\npm = static\npm.max_children = 1\nuser = {user}\n"
                ),
            )
            .expect("write conf");
        };
        write_conf("nosuchuser");
        let out = Command::new(&bin)
            .args(["-n", "-y"])
            .arg(&conf)
            .stdin(Stdio::null())
            .output()
            .expect("run");
        let err: Vec<String> = String::from_utf8_lossy(&out.stderr)
            .lines()
            .map(|l| strip_time(l).to_string())
            .collect();
        assert_eq!(out.status.code(), Some(70), "{}: {err:?}", bin.display());
        assert_eq!(
            err,
            [
                "ERROR: [pool www] cannot get uid for user 'nosuchuser'",
                "ERROR: FPM initialization failed"
            ],
            "{}",
            bin.display()
        );

        write_conf("nobody");
        let stderr_path = tmp.path().join("launcher.stderr");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
        let status = Command::new(&bin)
            .args(["-n", "-y"])
            .arg(&conf)
            .stdin(Stdio::null())
            .stderr(stderr)
            .status()
            .expect("run");
        assert_eq!(status.code(), Some(0), "{}", bin.display());
        let pid: i32 = std::fs::read_to_string(tmp.path().join("fpm.pid"))
            .expect("pid file")
            .trim()
            .parse()
            .expect("pid");
        let fd2 = std::fs::read_link(format!("/proc/{pid}/fd/2")).ok();
        let _ = rfpm_sys::process::kill(pid, libc::SIGTERM);
        // Gone, or a zombie waiting for whoever adopted it.
        let gone = integration::wait_until(integration::DEADLINE, || {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z')))
                .unwrap_or(true)
        });
        assert!(gone, "daemon {pid} did not exit");
        assert_ne!(fd2, Some(stderr_path.clone()), "{}", bin.display());
        assert_eq!(
            fd2,
            Some(tmp.path().join("err.log")),
            "{}: fd 2 of the daemon",
            bin.display()
        );
    }
}
