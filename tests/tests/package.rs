//! The Debian package (`make deb`): built from the tree with the binary under test,
//! extracted into a temp root with `dpkg -x`; its file list, its dependency on the exact
//! libphp8.x-embed of the PHP it was built for, the unit (`systemd-analyze verify`), the
//! logrotate file
//! (`logrotate -d`) and the man page (`man -l`).
#![forbid(unsafe_code)]

use std::path::Path;
use std::process::{Command, Output};

use integration::{php_mm, rfpm_bin, workspace_dir};

fn run(cmd: &mut Command) -> Output {
    match cmd.output() {
        Ok(o) => o,
        Err(e) => panic!("running {cmd:?}: {e}"),
    }
}

fn ok(cmd: &mut Command) -> String {
    let o = run(cmd);
    assert!(
        o.status.success(),
        "{cmd:?}: {}\n{}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The package's files; `{v}`: the PHP version.
const FILES: &[&str] = &[
    "etc/logrotate.d/rfpm",
    "etc/rfpm/php-fpm.conf",
    "etc/rfpm/pool.d/www.conf",
    "lib/systemd/system/rfpm.service",
    "usr/lib/tmpfiles.d/rfpm.conf",
    "usr/sbin/rfpm",
    "usr/share/doc/rfpm/CHANGELOG.md.gz",
    "usr/share/doc/rfpm/README.md.gz",
    "usr/share/doc/rfpm/changelog.gz",
    "usr/share/doc/rfpm/copyright",
    "usr/share/doc/rfpm/examples/php{v}-fpm.service.d/rfpm.conf",
    "usr/share/man/man8/rfpm.8.gz",
];

#[test]
fn debian_package_installs_and_checks() {
    let tmp = match tempfile::tempdir() {
        Ok(t) => t,
        Err(e) => panic!("temp dir: {e}"),
    };
    let out = tmp.path().join("out");
    let printed = ok(Command::new("make")
        .arg("-s")
        .arg("-C")
        .arg(workspace_dir())
        .arg("deb")
        .arg(format!("BIN={}", rfpm_bin().display()))
        .arg(format!("DEB_OUT={}", out.display())));
    let deb = printed
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_string();
    assert!(
        deb.ends_with(".deb") && Path::new(&deb).exists(),
        "{printed}"
    );

    // The exact libphp8.x-embed it was built against.
    let v = php_mm();
    let lib = format!("libphp{v}-embed");
    let php = ok(Command::new("dpkg-query").args(["-W", "-f=${Version}", &lib]));
    let depends = ok(Command::new("dpkg-deb").args(["-f", &deb, "Depends"]));
    assert!(depends.contains(&format!("{lib} (= {php})")), "{depends}");
    let conffiles = ok(Command::new("dpkg-deb").args(["-I", &deb, "conffiles"]));
    assert_eq!(
        conffiles,
        "/etc/logrotate.d/rfpm\n/etc/rfpm/php-fpm.conf\n/etc/rfpm/pool.d/www.conf\n"
    );

    // /run/rfpm right after installation, also without systemd: the maintainer script
    // is valid sh and makes it (tmpfiles.d makes it at each boot).
    let postinst = ok(Command::new("dpkg-deb").args(["-I", &deb, "postinst"]));
    assert!(postinst.contains("mkdir -p /run/rfpm"), "{postinst}");
    assert!(
        postinst.contains("systemd-tmpfiles --create rfpm.conf"),
        "{postinst}"
    );
    ok(Command::new("sh").args(["-n", "-c", &postinst]));

    let root = tmp.path().join("root");
    ok(Command::new("dpkg").arg("-x").arg(&deb).arg(&root));
    let listing = ok(Command::new("dpkg-deb").args(["-c", &deb]));
    let mut files: Vec<&str> = listing
        .lines()
        .filter(|l| l.starts_with('-'))
        .filter_map(|l| l.split_whitespace().nth(5))
        .map(|p| p.trim_start_matches("./"))
        .collect();
    files.sort_unstable();
    let expected: Vec<String> = FILES.iter().map(|f| f.replace("{v}", v)).collect();
    assert_eq!(files, expected);
    assert!(root.join("var/log/rfpm").is_dir(), "no /var/log/rfpm");
    let tmpfiles =
        std::fs::read_to_string(root.join("usr/lib/tmpfiles.d/rfpm.conf")).unwrap_or_default();
    assert!(
        tmpfiles
            .lines()
            .any(|l| l == "d /run/rfpm 0755 root root -"),
        "{tmpfiles}"
    );

    // The packaged binary runs (its libphp8.x found).
    let out = ok(Command::new(root.join("usr/sbin/rfpm")).arg("-v"));
    assert!(out.starts_with(&format!("PHP {v}.")), "{out}");
    // The sample configuration is valid as it stands (the pid file's and the error
    // log's directories are those of the temp root).
    let conf = std::fs::read_to_string(root.join("etc/rfpm/php-fpm.conf")).unwrap_or_default();
    let conf = conf
        .replace("/run/rfpm", &root.join("run").display().to_string())
        .replace(
            "/var/log/rfpm",
            &root.join("var/log/rfpm").display().to_string(),
        )
        .replace("/etc/rfpm", &root.join("etc/rfpm").display().to_string());
    let _ = std::fs::create_dir_all(root.join("run"));
    let test_conf = root.join("test.conf");
    if let Err(e) = std::fs::write(&test_conf, conf) {
        panic!("{e}");
    }
    ok(Command::new(root.join("usr/sbin/rfpm"))
        .args(["-n", "-t", "-y"])
        .arg(&test_conf));

    // The unit, with its program where the temp root has it; its man page found there.
    let unit =
        std::fs::read_to_string(root.join("lib/systemd/system/rfpm.service")).unwrap_or_default();
    for want in [
        "Documentation=man:rfpm(8)",
        "RuntimeDirectory=rfpm",
        "ExecStart=/usr/sbin/rfpm --nodaemonize --fpm-config /etc/rfpm/php-fpm.conf",
        "ExecReload=/bin/kill -USR2 $MAINPID",
        "ProtectSystem=full",
        "PrivateTmp=true",
    ] {
        assert!(unit.lines().any(|l| l == want), "no {want} in the unit");
    }
    let vdir = tmp.path().join("verify");
    let _ = std::fs::create_dir_all(&vdir);
    let sbin = root.join("usr/sbin/rfpm").display().to_string();
    if let Err(e) = std::fs::write(
        vdir.join("rfpm.service"),
        unit.replace("/usr/sbin/rfpm", &sbin),
    ) {
        panic!("{e}");
    }
    let o = run(Command::new("systemd-analyze")
        .arg("verify")
        .arg(vdir.join("rfpm.service"))
        .env("MANPATH", root.join("usr/share/man")));
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&o.stderr)
    );

    // logrotate reads it (dry run); its postrotate signals the pid file's process,
    // no systemctl.
    let lr = root.join("etc/logrotate.d/rfpm");
    let o = run(Command::new("logrotate")
        .arg("-d")
        .arg("-s")
        .arg(tmp.path().join("logrotate.state"))
        .arg(&lr));
    let said = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "logrotate -d: {said}");
    assert!(said.contains("/var/log/rfpm/*.log"), "{said}");
    let text = std::fs::read_to_string(&lr).unwrap_or_default();
    assert!(
        !text.contains("systemctl") && text.contains("kill -USR1"),
        "{text}"
    );

    // The man page formats without warnings and says what it must.
    let o = run(Command::new("man")
        .arg("--warnings")
        .arg("-l")
        .arg(root.join("usr/share/man/man8/rfpm.8.gz"))
        .env("MANWIDTH", "80")
        .env("MAN_KEEP_FORMATTING", "0"));
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "man -l: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Without a terminal man prints bold as overstrikes (X, backspace, X).
    let mut page = String::new();
    for c in String::from_utf8_lossy(&o.stdout).chars() {
        if c == '\u{8}' {
            page.pop();
        } else {
            page.push(c);
        }
    }
    for want in [
        "SIGNALS",
        "EXIT STATUS",
        "allow_pcntl",
        "shutdown.drain",
        "log_format",
        "request_id.server_var",
        "rfpm request",
    ] {
        assert!(page.contains(want), "the man page lacks {want}");
    }
}
