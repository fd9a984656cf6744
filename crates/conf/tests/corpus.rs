//! Corpus test: every case under `tests/corpus/` goes through
//! `conf::config_test` (load + validate + identity checks + dump) and must
//! print exactly what php-fpm8.2 printed (`expected-R`: `-tt -R`,
//! `expected-root`: `-tt` as root). Regenerate the expectations with
//! `tests/regen.sh` (needs php-fpm8.2, and php-fpm8.4 for the cases named `…-8.4`,
//! which are checked with php-fpm 8.4's behaviour); this test does not need them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use conf::{config_test, LoadOptions, LogFile, Sys, SysError, UserInfo};

/// A fixed passwd/group database; directories and log files from the real
/// (temporary) file system, without creating anything.
pub struct FakeSys;

fn users() -> Vec<UserInfo> {
    let u = |name: &str, uid, gid, home: &str| UserInfo {
        name: name.into(),
        uid,
        gid,
        home: home.into(),
    };
    vec![
        u("root", 0, 0, "/root"),
        u("daemon", 1, 1, "/usr/sbin"),
        u("www-data", 33, 33, "/var/www"),
        u("nobody", 65534, 65534, "/nonexistent"),
    ]
}

impl Sys for FakeSys {
    fn is_dir(&self, p: &Path) -> bool {
        p.is_dir()
    }
    fn user_by_name(&self, n: &[u8]) -> Result<UserInfo, SysError> {
        users()
            .into_iter()
            .find(|u| u.name.as_bytes() == n)
            .ok_or_else(SysError::not_found)
    }
    fn user_by_uid(&self, uid: u32) -> Result<UserInfo, SysError> {
        users()
            .into_iter()
            .find(|u| u.uid == uid)
            .ok_or_else(SysError::not_found)
    }
    fn group_by_name(&self, n: &[u8]) -> Result<u32, SysError> {
        match n {
            b"root" => Ok(0),
            b"daemon" => Ok(1),
            b"www-data" => Ok(33),
            b"nogroup" => Ok(65534),
            _ => Err(SysError::not_found()),
        }
    }
    fn open_log(&self, _w: &LogFile, path: &Path) -> Result<(), SysError> {
        match path.parent() {
            Some(d) if d.is_dir() => Ok(()),
            _ => Err(SysError {
                errno: 2,
                text: "No such file or directory".into(),
            }),
        }
    }
}

fn copy_dir(from: &Path, to: &Path, dir: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let name = e.file_name();
        let src = e.path();
        let dst = to.join(&name);
        if src.is_dir() {
            copy_dir(&src, &dst, dir)?;
        } else if !name.to_string_lossy().starts_with("expected-") {
            let content = std::fs::read(&src)?;
            std::fs::write(&dst, replace(&content, b"@DIR@", dir.as_bytes()))?;
        }
    }
    Ok(())
}

/// Every `from` in `b` replaced by `to`, bytes kept (a Latin-1 case stays Latin-1).
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

fn env_map() -> HashMap<String, String> {
    [
        ("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        ("HOME", "/root"),
        ("TESTVAR", "hello"),
        ("TESTNUM", "7"),
        ("TESTBOOL", "on"),
        ("TMPDIR", "/tmp"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Run one case; returns (actual, expected), byte for byte.
fn run_case(case: &Path, mode: &str) -> (Vec<u8>, Vec<u8>) {
    let expected = std::fs::read(case.join(format!("expected-{mode}")))
        .unwrap_or_else(|e| panic!("{}: {e}", case.display()));
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_string_lossy().into_owned();
    copy_dir(case, tmp.path(), &dir).expect("copy case");
    let env = env_map();
    // A case recorded from another php-fpm than 8.2 says so in its name (`…-8.4`).
    let compat = if case.to_string_lossy().ends_with("-8.4") {
        rfpm_core::compat::Compat::for_version_id(80400)
    } else {
        rfpm_core::compat::Compat::PHP82
    };
    let mut opts = LoadOptions {
        env: Box::new(move |n| {
            std::str::from_utf8(n)
                .ok()
                .and_then(|n| env.get(n))
                .map(|v| v.clone().into_bytes())
        }),
        is_root: true,
        allow_root: mode == "R",
        compat,
        ..LoadOptions::default()
    };
    if let Ok(args) = std::fs::read_to_string(tmp.path().join("args")) {
        let mut it = args.split_whitespace().map(str::to_string);
        while let Some(a) = it.next() {
            match a.as_str() {
                "-p" => opts.prefix = it.next().map(PathBuf::from),
                "-g" => opts.pid_override = it.next().map(String::into_bytes),
                "-F" => opts.daemonize_override = Some(false),
                "-D" => opts.daemonize_override = Some(true),
                "-R" => opts.allow_root = true,
                other => panic!("unsupported arg {other}"),
            }
        }
    }
    let conf = tmp.path().join("php-fpm.conf");
    let (lines, rc) = config_test(&conf, &opts, &FakeSys, true);
    // With `error_log = syslog` php-fpm writes its stderr copy as
    // `[LEVEL] text` (no timestamp) once the log is set up; all lines of the
    // syslog case are emitted after that point.
    let syslog = case.to_string_lossy().contains("syslog");
    let mut out = Vec::new();
    for l in lines {
        let head = match l.level {
            Some(level) if syslog => format!("[{}] ", level.as_str()),
            Some(level) => format!("{}: ", level.as_str()),
            None => String::new(),
        };
        let text = [head.as_bytes(), &l.as_bytes()].concat();
        out.extend_from_slice(&replace(&text, dir.as_bytes(), b"@DIR@"));
        out.push(b'\n');
    }
    out.extend_from_slice(format!("rc={rc}\n").as_bytes());
    (out, expected)
}

#[test]
fn corpus_matches_php_fpm() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("corpus dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 40, "corpus too small: {}", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        for mode in ["R", "root"] {
            let (actual, expected) = run_case(case, mode);
            if actual != expected {
                failures.push(format!(
                    "=== {} ({mode})\n--- expected\n{}--- actual\n{}",
                    case.display(),
                    String::from_utf8_lossy(&expected),
                    String::from_utf8_lossy(&actual)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
