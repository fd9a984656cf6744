//! rfpm only: what a new user meets first — `rfpm -v` (rfpm's line on stderr, then PHP's
//! banner on stdout as php-fpm prints it), `rfpm -h`, and `rfpm request` as a
//! health probe (its exit codes, `--any-status`, `--expect`, FastCGI stderr kept apart
//! from its own messages).
#![forbid(unsafe_code)]

use std::process::{Command, Output};

use integration::{php_fpm_bin, php_mm, rfpm_bin, Fpm, Kind};

fn run(bin: &std::path::Path, args: &[&str]) -> Output {
    match Command::new(bin)
        .args(args)
        .env_remove("PHP_INI_SCAN_DIR")
        .output()
    {
        Ok(o) => o,
        Err(e) => panic!("running {} {args:?}: {e}", bin.display()),
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn version_is_rfpm_line_then_php_banner() {
    let version = env!("CARGO_PKG_VERSION");
    let is_rfpm_line = |l: &str| {
        l == format!("rfpm {version}")
            || (l.starts_with(&format!("rfpm {version} (")) && l.ends_with(')'))
    };
    for flag in ["-v", "--version"] {
        for extra in [&[][..], &["-n"][..]] {
            let mut args = extra.to_vec();
            args.push(flag);
            // Not at a terminal: php-fpm's output alone, byte for byte (php-src's tests
            // compare stdout and stderr together).
            let ours = run(&rfpm_bin(), &args);
            let theirs = run(&php_fpm_bin(), &args);
            assert!(
                ours.status.success(),
                "rfpm {args:?}: {}",
                text(&ours.stderr)
            );
            assert_eq!(text(&ours.stdout), text(&theirs.stdout), "rfpm {args:?}");
            assert_eq!(text(&ours.stderr), "", "rfpm {args:?}");

            // At a terminal (script(1) gives it one): rfpm's line first, then the same
            // banner (the terminal writes CR LF).
            let cmd = format!("{} {}", rfpm_bin().display(), args.join(" "));
            let tty = match Command::new("script")
                .args(["-qec", &cmd, "/dev/null"])
                .output()
            {
                Ok(o) => o,
                Err(e) => panic!("running script: {e}"),
            };
            assert!(tty.status.success(), "script: {}", text(&tty.stderr));
            let shown = text(&tty.stdout).replace("\r\n", "\n");
            let (first, rest) = shown.split_once('\n').unwrap_or((&shown, ""));
            assert!(
                is_rfpm_line(first),
                "at a terminal, rfpm {args:?}: {shown:?}"
            );
            assert_eq!(rest, text(&theirs.stdout), "at a terminal, rfpm {args:?}");
        }
    }
}

#[test]
fn help_is_php_fpm_usage_then_the_request_command() {
    let ours = text(&run(&rfpm_bin(), &["-h"]).stdout);
    let theirs = text(&run(&php_fpm_bin(), &["-h"]).stdout);
    // php-fpm shows its own name after `Usage: `; the rest is byte for byte.
    let name = rfpm_bin()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let reference = php_fpm_bin()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let theirs = theirs.replacen(
        &format!("Usage: {reference} "),
        &format!("Usage: {name} "),
        1,
    );
    let Some(tail) = ours.strip_prefix(&theirs) else {
        panic!("rfpm -h does not start with {reference}'s usage text:\n{ours}");
    };
    assert!(tail.contains("\n  request ADDR SCRIPT"), "{tail}");
}

/// `rfpm request` against rfpm, from the command line.
fn request(addr: &str, script: &std::path::Path, extra: &[&str]) -> (i32, String, String) {
    let out = match Command::new(rfpm_bin())
        .arg("request")
        .arg(addr)
        .arg(script)
        .args(["--timeout", "10"])
        .args(extra)
        .output()
    {
        Ok(o) => o,
        Err(e) => panic!("running rfpm request: {e}"),
    };
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

#[test]
fn request_exit_codes_and_expect() {
    let fpm = match Fpm::builder(Kind::Rfpm).start() {
        Ok(f) => f,
        Err(e) => panic!("starting rfpm: {e}"),
    };
    let dir = fpm.dir();
    let write = |name: &str, body: &str| {
        let p = dir.join(name);
        if let Err(e) = std::fs::write(&p, body) {
            panic!("writing {}: {e}", p.display());
        }
        p
    };
    let ok = write("ok.php", "<?php echo 'pong';\n");
    let moved = write(
        "moved.php",
        "<?php header('Location: /elsewhere', true, 302);\n",
    );
    let fail = write(
        "fail.php",
        "<?php http_response_code(500); error_log(\"first\\nsecond\"); echo 'down';\n",
    );
    let missing = dir.join("missing.php");
    let addr = fpm.addr();

    let (code, out, err) = request(&addr, &ok, &[]);
    assert_eq!((code, err.as_str()), (0, ""), "{out}");
    assert!(out.ends_with("\r\n\r\npong"), "{out}");
    assert_eq!(request(&addr, &moved, &[]).0, 0);

    let (code, out, err) = request(&addr, &missing, &[]);
    assert_eq!(code, 1, "404: {out}");
    assert!(out.starts_with("Status: 404 Not Found\r\n"), "{out}");
    assert_eq!(
        err,
        "stderr: Primary script unknown\nrfpm request: the response's status is 404\n"
    );

    let (code, out, err) = request(&addr, &fail, &[]);
    assert_eq!(code, 1, "500: {out}");
    assert!(out.ends_with("down"), "{out}");
    // Each FastCGI stderr line on its own, then rfpm's own message on its own line.
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines.len() >= 3, "{err:?}");
    assert!(
        lines[..lines.len() - 1]
            .iter()
            .all(|l| l.starts_with("stderr: ")),
        "{err:?}"
    );
    assert!(err.contains("first") && err.contains("second"), "{err:?}");
    assert_eq!(
        lines[lines.len() - 1],
        "rfpm request: the response's status is 500"
    );
    assert!(err.ends_with('\n'));

    assert_eq!(request(&addr, &missing, &["--any-status"]).0, 0);
    assert_eq!(request(&addr, &fail, &["--any-status"]).0, 0);

    assert_eq!(request(&addr, &ok, &["--expect", "pong"]).0, 0);
    let (code, _, err) = request(&addr, &ok, &["--expect", "pang"]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "rfpm request: the response's body does not contain 'pang'\n"
    );

    // No answer: nothing listens there.
    let nobody = dir.join("nobody.sock").display().to_string();
    let (code, _, err) = request(&nobody, &ok, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.starts_with("rfpm request: "), "{err}");

    let (code, out, _) = request(&addr, &ok, &["--help"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("--any-status") && out.contains("--expect TEXT"),
        "{out}"
    );
    assert!(out.contains("1 status 4xx or 5xx"), "{out}");
}

/// The binary needs `libphp8.x.so` by that name, not `libphp.so` (the SONAME of Debian's
/// library, a link `ldconfig` points at whichever PHP embed library it finds).
#[test]
fn links_the_versioned_php_library() {
    let out = run(
        std::path::Path::new("readelf"),
        &["-d", &rfpm_bin().display().to_string()],
    );
    assert!(out.status.success(), "readelf: {}", text(&out.stderr));
    let needed: Vec<String> = text(&out.stdout)
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| {
            l.split_once('[')
                .and_then(|(_, r)| r.split_once(']'))
                .map(|(n, _)| n.to_string())
        })
        .collect();
    let versioned = format!("libphp{}.so", php_mm());
    assert!(needed.contains(&versioned), "{needed:?}");
    assert!(!needed.iter().any(|n| n == "libphp.so"), "{needed:?}");
}
