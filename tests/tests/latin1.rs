//! Configuration values that are not UTF-8 (issue #19): a file written in Latin-1, with
//! the byte 0xE9 (`é`) in `chdir`, in `listen` (a Unix socket path), in an `env[]` name
//! and value and in a `php_value`. php-fpm8.2 hands the bytes to the operating system and
//! to PHP as they are: the socket appears at the exact byte path and serves, the worker's
//! working directory is the directory whose name holds the byte, `getenv()` returns the
//! bytes. rfpm must give the same answers.
#![forbid(unsafe_code)]

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use integration::fcgi::client::Addr;
use integration::{both, connect, send_on, wait_until, Fpm, FpmBuilder, Kind, Req, DEADLINE};

// Each answer in hex, one per line: env[X], env[Y\xe9] (a name that is not UTF-8),
// env[Z] = $LATIN1 (a master variable that is not UTF-8), env[W] = "${LATIN1}!" (the
// INI expansion of the same variable), php_value[include_path], then
// the worker's working directory. PHP runs a script in
// the script's own directory and goes back to the worker's (the pool's `chdir`) when the
// script ends: a shutdown function sees the worker's.
const SCRIPT: &str = r#"<?php
echo bin2hex((string) getenv('X')), "\n";
echo bin2hex((string) getenv("Y\xe9")), "\n";
echo bin2hex((string) getenv('Z')), "\n";
echo bin2hex((string) getenv('W')), "\n";
echo bin2hex(ini_get('include_path')), "\n";
register_shutdown_function(function () { echo bin2hex(getcwd()), "\n"; });
"#;

fn hex(b: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    b.iter()
        .flat_map(|c| [DIGITS[usize::from(c >> 4)], DIGITS[usize::from(c & 0xf)]])
        .map(char::from)
        .collect()
}

fn path_of(bytes: &[u8]) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(bytes))
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A temporary directory others may enter (the workers' user), and its path's bytes.
fn latin1_dir(prefix: &str) -> (tempfile::TempDir, Vec<u8>) {
    let tmp = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("tempdir");
    chmod(tmp.path(), 0o755);
    let dir = tmp.path().as_os_str().as_bytes().to_vec();
    (tmp, dir)
}

/// The lines as one file's bytes, each ended by a line feed.
fn file_of(lines: &[Vec<u8>]) -> Vec<u8> {
    lines
        .iter()
        .flat_map(|l| l.iter().copied().chain([b'\n']))
        .collect()
}

/// An FPM of `kind` on the configuration file at `conf_path` alone (`-y`).
fn with_conf(kind: Kind, conf_path: &Path) -> FpmBuilder {
    Fpm::builder(kind)
        .no_config()
        .arg("-y")
        .arg(conf_path.display().to_string())
}

/// Whether the master's log says twice that it is ready (a reload went through).
fn reloaded(log: &[u8]) -> bool {
    let ready = b"ready to handle connections";
    log.windows(ready.len()).filter(|w| w == ready).count() >= 2
}

/// The master's log as bytes (the harness runs it with -O: its stderr).
fn master_log(fpm: &Fpm) -> Vec<u8> {
    std::fs::read(fpm.dir().join("stderr.log")).unwrap_or_default()
}

both!(latin1_values_keep_their_bytes, |kind| {
    let (tmp, dir) = latin1_dir("itest-latin1-");
    let at = |tail: &[u8]| [&dir[..], b"/", tail].concat();

    let cafe = at(b"caf\xe9");
    std::fs::create_dir(path_of(&cafe)).expect("mkdir caf\\xe9");
    chmod(&path_of(&cafe), 0o755);
    let script = tmp.path().join("bytes.php");
    std::fs::write(&script, SCRIPT).expect("write script");
    chmod(&script, 0o644);
    let sock = at(b"s\xe9.sock");
    let include_path = b".:/usr/share/caf\xe9".to_vec();

    // The whole file as bytes: Latin-1, not UTF-8.
    let conf = file_of(&[
        b"[global]".to_vec(),
        [b"error_log = ", &at(b"fpm.log")[..]].concat(),
        [b"pid = ", &at(b"fpm.pid")[..]].concat(),
        b"daemonize = no".to_vec(),
        b"[www]".to_vec(),
        [b"listen = ", &sock[..]].concat(),
        b"pm = static".to_vec(),
        b"pm.max_children = 1".to_vec(),
        [b"chdir = ", &cafe[..]].concat(),
        b"env[X] = caf\xe9".to_vec(),
        b"env[Y\xe9] = \"\xe9t\xe9\"".to_vec(),
        b"env[Z] = $LATIN1".to_vec(),
        b"env[W] = \"${LATIN1}!\"".to_vec(),
        [b"php_value[include_path] = \"", &include_path[..], b"\""].concat(),
    ]);
    let conf_path = tmp.path().join("latin1.conf");
    std::fs::write(&conf_path, &conf).expect("write conf");

    let fpm = with_conf(kind, &conf_path)
        .env_os("LATIN1", OsStr::from_bytes(b"na\xefve"))
        .start()
        .unwrap_or_else(|e| panic!("start: {e}"));

    // The socket is at the exact byte path (and nowhere under a U+FFFD name).
    let is_socket =
        |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_socket());
    assert!(
        wait_until(DEADLINE, || is_socket(&path_of(&sock))),
        "no socket at {:?}\n{}",
        path_of(&sock),
        fpm.log()
    );
    let lossy = tmp.path().join("s\u{fffd}.sock");
    assert!(!lossy.exists(), "a socket at the lossy path\n{}", fpm.log());

    // It serves; the answers are the configured bytes.
    let mut client = connect(&Addr::Unix(path_of(&sock)))
        .unwrap_or_else(|e| panic!("connect: {e}\n{}", fpm.log()));
    let req = Req::get("bytes.php").param("SCRIPT_FILENAME", &script.display().to_string());
    let resp = send_on(&mut client, &fpm.docroot(), &req)
        .unwrap_or_else(|e| panic!("request: {e}\n{}", fpm.log()));
    let body = String::from_utf8_lossy(resp.body()).into_owned();
    let want = format!(
        "{}\n{}\n{}\n{}\n{}\n{}\n",
        hex(b"caf\xe9"),
        hex(b"\xe9t\xe9"),
        hex(b"na\xefve"),
        hex(b"na\xefve!"),
        hex(&include_path),
        hex(&cafe)
    );
    assert_eq!(body, want, "{}", fpm.log());
    assert_eq!(hex(b"caf\xe9"), "636166e9");
    drop(fpm);
});

/// `-tt` on the same kind of file prints the values' bytes exactly as php-fpm8.2 does.
#[test]
fn test_config_prints_the_bytes_as_php_fpm_does() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().as_os_str().as_bytes().to_vec();
    let at = |tail: &[u8]| [&dir[..], b"/", tail].concat();
    std::fs::create_dir(path_of(&at(b"caf\xe9"))).expect("mkdir");
    let conf = file_of(&[
        b"[global]".to_vec(),
        [b"error_log = ", &at(b"err\xe9.log")[..]].concat(),
        [b"pid = ", &at(b"p\xe9.pid")[..]].concat(),
        b"[www]".to_vec(),
        [b"listen = ", &at(b"s\xe9.sock")[..]].concat(),
        b"pm = static".to_vec(),
        b"pm.max_children = 1".to_vec(),
        [b"chdir = ", &at(b"caf\xe9")[..]].concat(),
        [b"access.log = ", &at(b"a\xe9.log")[..]].concat(),
        [b"slowlog = ", &at(b"sl\xe9.log")[..]].concat(),
        b"env[X] = caf\xe9".to_vec(),
        b"env[Y\xe9] = 1".to_vec(),
        b"php_admin_value[include_path] = '/x\xe9'".to_vec(),
    ]);
    let conf_path = tmp.path().join("php-fpm.conf");
    std::fs::write(&conf_path, &conf).expect("write conf");
    let expected = test_lines(&integration::php_fpm_bin(), "-tt", &conf_path);
    let actual = test_lines(&integration::rfpm_bin(), "-tt", &conf_path);
    assert_eq!(expected.1, Some(0));
    let chdir = [b"NOTICE: \tchdir = ", &at(b"caf\xe9")[..]].concat();
    assert!(
        expected.0.contains(&chdir),
        "php-fpm printed no Latin-1 chdir"
    );
    assert!(expected.0.contains(&b"NOTICE: \tenv[Y\xe9] = 1".to_vec()));
    assert_same_lines("", &actual, &expected);
}

// A reload hands a Latin-1 socket path over by its bytes (`FPM_SOCKETS`): the pool
// that stays takes its socket over (the notice names the path's bytes), and the socket
// of a pool the new configuration dropped is closed and its file removed.
both!(latin1_sockets_cross_a_reload_by_their_bytes, |kind| {
    let (tmp, dir) = latin1_dir("itest-latin1-reload-");
    let at = |tail: &[u8]| [&dir[..], b"/", tail].concat();
    let (kept, dropped, log) = (at(b"s\xe9.sock"), at(b"t\xe9.sock"), at(b"fpm.log"));
    let conf = |with_second: bool| {
        let mut lines = vec![
            b"[global]".to_vec(),
            [b"error_log = ", &log[..]].concat(),
            b"daemonize = no".to_vec(),
            b"[www]".to_vec(),
            [b"listen = ", &kept[..]].concat(),
            b"pm = static".to_vec(),
            b"pm.max_children = 1".to_vec(),
        ];
        if with_second {
            lines.extend([
                b"[second]".to_vec(),
                [b"listen = ", &dropped[..]].concat(),
                b"pm = static".to_vec(),
                b"pm.max_children = 1".to_vec(),
            ]);
        }
        file_of(&lines)
    };
    let conf_path = tmp.path().join("latin1.conf");
    std::fs::write(&conf_path, conf(true)).expect("write conf");
    let fpm = with_conf(kind, &conf_path)
        .start()
        .unwrap_or_else(|e| panic!("start: {e}"));
    assert!(wait_until(DEADLINE, || path_of(&dropped).exists()));
    std::fs::write(&conf_path, conf(false)).expect("rewrite conf");
    fpm.signal(libc::SIGUSR2).expect("SIGUSR2");
    // The master's log as bytes (the harness runs it with -O: on its stderr).
    let log_bytes = || master_log(&fpm);
    assert!(
        wait_until(DEADLINE, || reloaded(&log_bytes())),
        "{}",
        String::from_utf8_lossy(&log_bytes())
    );
    let notice = [&b"using inherited socket fd="[..]].concat();
    let text = log_bytes();
    let named = text
        .split(|&b| b == b'\n')
        .filter(|l| l.windows(notice.len()).any(|w| w == &notice[..]))
        .any(|l| l.ends_with(&[b"\"", &kept[..], b"\""].concat()));
    assert!(named, "{}", String::from_utf8_lossy(&text));
    assert!(
        wait_until(DEADLINE, || !path_of(&dropped).exists()),
        "the dropped pool's socket is still there\n{}",
        String::from_utf8_lossy(&log_bytes())
    );
    let mut client =
        connect(&Addr::Unix(path_of(&kept))).unwrap_or_else(|e| panic!("connect: {e}"));
    let script = tmp.path().join("hello.php");
    std::fs::write(&script, "<?php echo 'hello';").expect("write script");
    chmod(&script, 0o644);
    let req = Req::get("hello.php").param("SCRIPT_FILENAME", &script.display().to_string());
    let resp = send_on(&mut client, &fpm.docroot(), &req).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.body(), b"hello");
    drop(fpm);
});

// A configuration file whose path is not UTF-8, given with `-y`: both FPMs read it, and
// a reload re-executes the command line as given (the same bytes), so the master comes
// back and serves.
both!(a_latin1_config_path_on_the_command_line, |kind| {
    let (tmp, dir) = latin1_dir("itest-latin1-argv-");
    let at = |tail: &[u8]| [&dir[..], b"/", tail].concat();
    let sock = at(b"argv.sock");
    let conf = [
        b"[global]\ndaemonize = no\n[www]\nlisten = ".to_vec(),
        sock.clone(),
        b"\npm = static\npm.max_children = 1\n".to_vec(),
    ]
    .concat();
    let conf_path = path_of(&at(b"caf\xe9.conf"));
    std::fs::write(&conf_path, conf).expect("write conf");
    let fpm = Fpm::builder(kind)
        .no_config()
        .arg("-y")
        .arg(conf_path.as_os_str())
        .start()
        .unwrap_or_else(|e| panic!("start: {e}"));
    let script = tmp.path().join("hello.php");
    std::fs::write(&script, "<?php echo getmypid();").expect("write script");
    chmod(&script, 0o644);
    let ask = || {
        let mut client = connect(&Addr::Unix(path_of(&sock))).ok()?;
        let req = Req::get("hello.php").param("SCRIPT_FILENAME", &script.display().to_string());
        send_on(&mut client, &fpm.docroot(), &req).ok()
    };
    let first = ask().unwrap_or_else(|| panic!("no answer\n{}", fpm.log()));
    fpm.signal(libc::SIGUSR2).expect("SIGUSR2");
    // The re-executed master serves with new workers.
    assert!(
        wait_until(DEADLINE, || ask()
            .is_some_and(|r| !r.body().is_empty() && r.body() != first.body())),
        "{}",
        fpm.log()
    );
    assert!(fpm.exited().ok().flatten().is_none(), "{}", fpm.log());
});

// `-d name=value` with a value that is not UTF-8: PHP gets its bytes (php-fpm8.2 too).
both!(a_latin1_define_on_the_command_line, |kind| {
    let tmp = tempfile::Builder::new()
        .prefix("itest-latin1-define-")
        .tempdir()
        .expect("tempdir");
    chmod(tmp.path(), 0o755);
    let script = tmp.path().join("ini.php");
    std::fs::write(&script, "<?php echo bin2hex(ini_get('include_path'));").expect("script");
    chmod(&script, 0o644);
    let fpm = Fpm::builder(kind)
        .arg("-d")
        .arg(OsStr::from_bytes(b"include_path=.:/usr/share/caf\xe9"))
        .start()
        .unwrap_or_else(|e| panic!("start: {e}"));
    let req = Req::get("ini.php").param("SCRIPT_FILENAME", &script.display().to_string());
    let resp = fpm
        .send(&req)
        .unwrap_or_else(|e| panic!("{e}\n{}", fpm.log()));
    assert_eq!(
        resp.body(),
        hex(b".:/usr/share/caf\xe9").as_bytes(),
        "{}",
        fpm.log()
    );
});

/// The lines `-t`/`-tt` print (stamps cut) and the exit code, for a binary.
fn test_lines(bin: &Path, flag: &str, conf_path: &Path) -> (Vec<Vec<u8>>, Option<i32>) {
    let out = std::process::Command::new(bin)
        .args(["-n", flag, "-R", "-y"])
        .arg(conf_path)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run");
    let lines = out
        .stderr
        .split(|&c| c == b'\n')
        .map(|l| {
            l.get(23..)
                .filter(|_| l.first() == Some(&b'['))
                .unwrap_or(l)
                .to_vec()
        })
        .collect();
    (lines, out.status.code())
}

/// `-t`'s lines and exit code are php-fpm8.2's (`what` names the case).
fn assert_same_lines(
    what: &str,
    actual: &(Vec<Vec<u8>>, Option<i32>),
    expected: &(Vec<Vec<u8>>, Option<i32>),
) {
    assert_eq!(
        actual,
        expected,
        "{what}: rfpm:\n{}\nphp-fpm:\n{}",
        shown_lines(&actual.0),
        shown_lines(&expected.0)
    );
}

fn shown_lines(l: &[Vec<u8>]) -> String {
    l.iter()
        .map(|x| x.escape_ascii().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A pool whose name is Latin-1 and the text directives that hold such bytes: `-tt`
/// prints them as php-fpm8.2 does (the section, `$pool` expanded in `listen`, the
/// access format and suppressed path, the ping response, the limit extensions, the
/// syslog ident).
#[test]
fn test_config_prints_latin1_pool_names_and_text_directives() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().as_os_str().as_bytes().to_vec();
    let at = |tail: &[u8]| [&dir[..], b"/", tail].concat();
    let conf = file_of(&[
        b"[global]".to_vec(),
        [b"error_log = ", &at(b"err.log")[..]].concat(),
        b"syslog.ident = fpm\xe9".to_vec(),
        b"[caf\xe9]".to_vec(),
        [b"listen = ", &at(b"$pool.sock")[..]].concat(),
        b"pm = static".to_vec(),
        b"pm.max_children = 1".to_vec(),
        [b"access.log = ", &at(b"$pool.access")[..]].concat(),
        b"access.format = \"%n caf\xe9 %s\"".to_vec(),
        b"access.suppress_path[] = /h\xe9".to_vec(),
        b"pm.status_path = /status".to_vec(),
        b"ping.path = /ping".to_vec(),
        b"ping.response = pong\xe9".to_vec(),
        b"security.limit_extensions = .php .ph\xe9".to_vec(),
        b"env[POOL] = $pool".to_vec(),
    ]);
    let conf_path = tmp.path().join("php-fpm.conf");
    std::fs::write(&conf_path, &conf).expect("write conf");
    let expected = test_lines(&integration::php_fpm_bin(), "-tt", &conf_path);
    let actual = test_lines(&integration::rfpm_bin(), "-tt", &conf_path);
    assert_eq!(expected.1, Some(0), "{}", shown_lines(&expected.0));
    assert!(
        expected.0.contains(&b"NOTICE: [caf\xe9]".to_vec()),
        "php-fpm printed no Latin-1 section:\n{}",
        shown_lines(&expected.0)
    );
    assert_same_lines("", &actual, &expected);
}

/// `-t`'s error messages show a value's bytes exactly, as php-fpm8.2 prints its C
/// strings: a Latin-1 pool name, chdir, directive name, access format, status and ping
/// path each make a configuration fail with the same lines and exit code.
#[test]
fn test_config_errors_show_the_bytes_as_php_fpm_does() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().as_os_str().as_bytes().to_vec();
    let at = |tail: &[u8]| [&dir[..], b"/", tail].concat();
    let head = |pool: &[u8]| {
        vec![
            b"[global]".to_vec(),
            [b"error_log = ", &at(b"err.log")[..]].concat(),
            [b"[", pool, b"]"].concat(),
            [b"listen = ", &at(b"s.sock")[..]].concat(),
            b"pm = static".to_vec(),
            b"pm.max_children = 1".to_vec(),
        ]
    };
    let cases: Vec<(&str, Vec<Vec<u8>>)> = vec![
        ("chdir", {
            let mut c = head(b"caf\xe9");
            c.push([b"chdir = ", &at(b"nowhere\xe9")[..]].concat());
            c
        }),
        ("unknown entry", {
            let mut c = head(b"www");
            c.push(b"caf\xe9 = 1".to_vec());
            c
        }),
        ("access.format", {
            let mut c = head(b"caf\xe9");
            c.push([b"access.log = ", &at(b"a.log")[..]].concat());
            c.push(b"access.format = \"%R %\xe9\"".to_vec());
            c
        }),
        ("status path", {
            let mut c = head(b"caf\xe9");
            c.push(b"pm.status_path = /st\xe9".to_vec());
            c
        }),
        ("ping path", {
            let mut c = head(b"www");
            c.push(b"ping.path = /p\xe9".to_vec());
            c
        }),
        ("include", {
            let mut c = head(b"www");
            c.insert(2, [b"include = ", &at(b"no\xe9/*.conf")[..]].concat());
            c
        }),
        ("user", {
            let mut c = head(b"caf\xe9");
            c.push(b"user = nob\xe9dy".to_vec());
            c
        }),
        ("access.log", {
            let mut c = head(b"caf\xe9");
            c.push([b"access.log = ", &at(b"no\xe9/dir/a.log")[..]].concat());
            c
        }),
    ];
    for (what, lines) in cases {
        let conf = file_of(&lines);
        let conf_path = tmp.path().join("php-fpm.conf");
        std::fs::write(&conf_path, &conf).expect("write conf");
        let expected = test_lines(&integration::php_fpm_bin(), "-t", &conf_path);
        let actual = test_lines(&integration::rfpm_bin(), "-t", &conf_path);
        assert!(
            expected.0.iter().any(|l| l.contains(&0xe9)),
            "{what}: php-fpm named no Latin-1 byte:\n{}",
            shown_lines(&expected.0)
        );
        assert_same_lines(what, &actual, &expected);
    }
}

// A pool named in Latin-1 runs: `$pool` puts the name's bytes into the socket's path,
// the access log's `%n` and a literal byte of `access.format` are written raw, the status
// page names the pool by its bytes, the ping answers its configured bytes, a worker's
// decorated output, its process title, the slow log's entry and the master's warning
// about a slow request carry the name's bytes.
both!(a_latin1_pool_name_runs_as_its_bytes, |kind| {
    let (tmp, dir) = latin1_dir("itest-latin1-pool-");
    let at = |tail: &[u8]| [&dir[..], b"/", tail].concat();
    let script = tmp.path().join("say.php");
    std::fs::write(
        &script,
        "<?php file_put_contents('php://stderr', \"said\\n\"); echo 'ok';",
    )
    .expect("write script");
    chmod(&script, 0o644);
    let access = at(b"access.log");
    let slowlog = at(b"slow.log");
    let slow = tmp.path().join("slow.php");
    std::fs::write(
        &slow,
        "<?php $t = microtime(true); while (microtime(true) - $t < 2.5) usleep(20000); echo 'slow';",
    )
    .expect("write script");
    chmod(&slow, 0o644);
    let conf = file_of(&[
        b"[global]".to_vec(),
        b"daemonize = no".to_vec(),
        b"[caf\xe9]".to_vec(),
        [b"listen = ", &at(b"$pool.sock")[..]].concat(),
        b"pm = static".to_vec(),
        b"pm.max_children = 1".to_vec(),
        b"catch_workers_output = yes".to_vec(),
        [b"access.log = ", &access[..]].concat(),
        b"access.format = \"%n|caf\xe9|%s\"".to_vec(),
        b"pm.status_path = /status".to_vec(),
        b"ping.path = /ping".to_vec(),
        b"ping.response = pong\xe9".to_vec(),
        b"request_slowlog_timeout = 1".to_vec(),
        [b"slowlog = ", &slowlog[..]].concat(),
    ]);
    let conf_path = tmp.path().join("latin1.conf");
    std::fs::write(&conf_path, &conf).expect("write conf");
    let fpm = with_conf(kind, &conf_path)
        .start()
        .unwrap_or_else(|e| panic!("start: {e}"));
    let sock = path_of(&at(b"caf\xe9.sock"));
    assert!(
        wait_until(DEADLINE, || sock.exists()),
        "no socket at {sock:?}\n{}",
        fpm.log()
    );
    let send = |req: &Req| {
        let mut client = connect(&Addr::Unix(sock.clone()))
            .unwrap_or_else(|e| panic!("connect: {e}\n{}", fpm.log()));
        send_on(&mut client, &fpm.docroot(), req)
            .unwrap_or_else(|e| panic!("request: {e}\n{}", fpm.log()))
    };

    let ping = send(&Req::get("ping"));
    assert_eq!(ping.body(), b"pong\xe9", "{}", fpm.log());
    let status = send(&Req::get("status"));
    assert!(
        contains(status.body(), b"pool:                 caf\xe9\n"),
        "{}",
        String::from_utf8_lossy(status.body()).escape_debug()
    );
    let json = send(&Req::get("status").query("json"));
    assert!(
        json.body().starts_with(b"{\"pool\":\"caf\xe9\","),
        "{}",
        json.body().escape_ascii()
    );
    let said = send(&Req::get("say.php").param("SCRIPT_FILENAME", &script.display().to_string()));
    assert_eq!(said.body(), b"ok");

    // The access log: `%n` and the format's own byte, raw.
    let line = b"caf\xe9|caf\xe9|200";
    assert!(
        wait_until(DEADLINE, || std::fs::read(path_of(&access))
            .is_ok_and(|a| contains(&a, line))),
        "{}",
        std::fs::read(path_of(&access))
            .unwrap_or_default()
            .escape_ascii()
    );
    // The master's log (on its stderr): the worker's output, decorated with the name.
    let log_bytes = || master_log(&fpm);
    let decorated = b"[pool caf\xe9] child ";
    assert!(
        wait_until(DEADLINE, || contains(&log_bytes(), decorated)
            && contains(&log_bytes(), b"said into stderr: \"said\"")),
        "{}",
        log_bytes().escape_ascii()
    );
    // A slow request: the master's warning and the slow log's entry name the pool.
    let r = send(&Req::get("slow.php").param("SCRIPT_FILENAME", &slow.display().to_string()));
    assert_eq!(r.body(), b"slow");
    let warned = b"WARNING: [pool caf\xe9] child ";
    assert!(
        wait_until(DEADLINE, || contains(&log_bytes(), warned)
            && contains(&log_bytes(), b"executing too slow")),
        "{}",
        log_bytes().escape_ascii()
    );
    assert!(
        wait_until(DEADLINE, || std::fs::read(path_of(&slowlog))
            .is_ok_and(|s| contains(&s, b"]  [pool caf\xe9] pid "))),
        "{}",
        std::fs::read(path_of(&slowlog))
            .unwrap_or_default()
            .escape_ascii()
    );
    // The worker's process title.
    let pids = fpm.worker_pids();
    assert!(!pids.is_empty(), "no worker\n{}", fpm.log());
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", pids[0])).unwrap_or_default();
    assert!(
        cmdline.starts_with(b"php-fpm: pool caf\xe9"),
        "{}",
        cmdline.escape_ascii()
    );
    drop(fpm);
});

// `rfpm request` takes arguments that are not UTF-8 as their bytes: a socket path, a
// script path and a param value in Latin-1 reach the server exactly, and `--expect`
// looks for its bytes in the body.
both!(rfpm_request_sends_latin1_arguments_as_their_bytes, |kind| {
    let (tmp, dir) = latin1_dir("itest-latin1-req-");
    let at = |tail: &[u8]| [&dir[..], b"/", tail].concat();
    let sock = at(b"r\xe9.sock");
    let script = at(b"caf\xe9.php");
    std::fs::write(
        path_of(&script),
        "<?php echo bin2hex($_SERVER['X']), ' ', bin2hex($_SERVER['SCRIPT_FILENAME']), ' ', \"\\xe9t\\xe9\";",
    )
    .expect("write script");
    chmod(&path_of(&script), 0o644);
    let conf = file_of(&[
        b"[global]".to_vec(),
        b"daemonize = no".to_vec(),
        b"[www]".to_vec(),
        [b"listen = ", &sock[..]].concat(),
        b"pm = static".to_vec(),
        b"pm.max_children = 1".to_vec(),
    ]);
    let conf_path = tmp.path().join("latin1.conf");
    std::fs::write(&conf_path, &conf).expect("write conf");
    let fpm = with_conf(kind, &conf_path)
        .start()
        .unwrap_or_else(|e| panic!("start: {e}"));
    assert!(
        wait_until(DEADLINE, || path_of(&sock).exists()),
        "{}",
        fpm.log()
    );
    let out = std::process::Command::new(integration::rfpm_bin())
        .arg("request")
        .arg(OsStr::from_bytes(&sock))
        .arg(OsStr::from_bytes(&script))
        .arg("--param")
        .arg(OsStr::from_bytes(b"X=caf\xe9"))
        .arg("--expect")
        .arg(OsStr::from_bytes(b"\xe9t\xe9"))
        .output()
        .expect("run rfpm request");
    let want = format!("{} {} ", hex(b"caf\xe9"), hex(&script));
    assert!(
        contains(&out.stdout, want.as_bytes()) && out.stdout.ends_with(b"\xe9t\xe9"),
        "{}\n{}",
        out.stdout.escape_ascii(),
        out.stderr.escape_ascii()
    );
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr.escape_ascii());
    // A body file that does not exist is named by its bytes.
    let missing = at(b"no\xe9.body");
    let out = std::process::Command::new(integration::rfpm_bin())
        .arg("request")
        .arg(OsStr::from_bytes(&sock))
        .arg(OsStr::from_bytes(&script))
        .arg("--body")
        .arg(OsStr::from_bytes(&missing))
        .output()
        .expect("run rfpm request");
    let said = [b"cannot read the body from '", &missing[..], b"'"].concat();
    assert!(
        contains(&out.stderr, &said),
        "{}",
        out.stderr.escape_ascii()
    );
    drop(fpm);
});

/// Whether `b` holds one of the private-use characters rfpm carries a non-UTF-8 byte in
/// inside its own text (U+10FF00..U+10FFFF: F4 8F BC..BF xx): none may leave rfpm.
fn has_carried_byte(b: &[u8]) -> bool {
    b.windows(3)
        .any(|w| w[0] == 0xf4 && w[1] == 0x8f && (0xbc..=0xbf).contains(&w[2]))
}

/// rfpm only: a Latin-1 pool seen through the admin listener (text formats: the name's
/// bytes that are not UTF-8 become U+FFFD in Prometheus labels and JSON) and across a
/// reload (the name crosses exec hex-encoded); no carried byte leaks into any output.
#[test]
fn a_latin1_pool_name_in_metrics_json_and_across_a_reload() {
    let (tmp, dir) = latin1_dir("itest-latin1-admin-");
    let at = |tail: &[u8]| [&dir[..], b"/", tail].concat();
    let port = integration::free_port().expect("port");
    let conf = file_of(&[
        b"[global]".to_vec(),
        b"daemonize = no".to_vec(),
        format!("admin.listen = 127.0.0.1:{port}").into_bytes(),
        b"[caf\xe9]".to_vec(),
        [b"listen = ", &at(b"$pool.sock")[..]].concat(),
        b"pm = static".to_vec(),
        b"pm.max_children = 1".to_vec(),
    ]);
    let conf_path = tmp.path().join("latin1.conf");
    std::fs::write(&conf_path, &conf).expect("write conf");
    let fpm = with_conf(integration::Kind::Rfpm, &conf_path)
        .start()
        .unwrap_or_else(|e| panic!("start: {e}"));
    let get = |path: &str| {
        integration::http_get(port, path, None).unwrap_or_else(|e| panic!("GET {path}: {e}"))
    };
    assert!(
        wait_until(DEADLINE, || get("/ready").0 == 200),
        "{}",
        fpm.log()
    );
    let (_, metrics) = get("/metrics");
    assert!(
        metrics.contains("phpfpm_up{pool=\"caf\u{fffd}\",scrape_uri=\"unix://"),
        "{metrics}"
    );
    let (_, status) = get("/status");
    let v: serde_json::Value =
        serde_json::from_str(&status).unwrap_or_else(|e| panic!("{e}: {status}"));
    assert_eq!(v["pools"][0]["pool"], "caf\u{fffd}", "{v}");
    for text in [&metrics, &status] {
        assert!(!has_carried_byte(text.as_bytes()), "{text}");
    }

    // A reload: the pool comes back under the same name, its socket taken over.
    fpm.signal(libc::SIGUSR2).expect("SIGUSR2");
    let log_bytes = || master_log(&fpm);
    assert!(
        wait_until(DEADLINE, || reloaded(&log_bytes())),
        "{}",
        log_bytes().escape_ascii()
    );
    assert!(wait_until(DEADLINE, || get("/ready").0 == 200));
    let pids = fpm.worker_pids();
    assert!(
        wait_until(DEADLINE, || fpm.worker_pids().iter().any(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| c.starts_with(b"php-fpm: pool caf\xe9"))
        })),
        "{pids:?}"
    );
    let master = std::fs::read(format!("/proc/{}/cmdline", fpm.master_pid())).unwrap_or_default();
    for out in [log_bytes(), master, get("/metrics").1.into_bytes()] {
        assert!(!has_carried_byte(&out), "{}", out.escape_ascii());
    }
    drop(fpm);
}
