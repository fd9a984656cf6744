//! What a worker becomes (reference §3.8, §3.9, §7.9): user/group with supplementary
//! groups, chroot, chdir, environment (`clear_env`, `env[]` with `$VAR`), admin values,
//! `rlimit_files`, `process.priority`, `process.dumpable`, as PHP reports it from inside
//! the worker. The same expected output for rfpm and php-fpm8.2 (the master runs as root
//! with `-R`, as the harness always does).
#![forbid(unsafe_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use integration::{both, Fpm, Req};

// Prints the worker's identity and settings, one `name=value` line each.
const ID_PHP: &str = r#"<?php
$g = posix_getgroups(); sort($g);
echo "uid=", posix_getuid(), " euid=", posix_geteuid(), "\n";
echo "gid=", posix_getgid(), " egid=", posix_getegid(), "\n";
echo "groups=", implode(",", $g), "\n";
foreach (['DUP', 'FOO', 'FROM_MASTER', 'HOME', 'UNSET_REF', 'USER', 'PATH', 'RFPM_TEST_FROM_MASTER'] as $k)
    echo "getenv($k)=", var_export(getenv($k), true), "\n";
echo "memory_limit=", ini_get('memory_limit'), "\n";
echo "ini_set(memory_limit)=", var_export(ini_set('memory_limit', '300M'), true), "\n";
echo "memory_limit=", ini_get('memory_limit'), "\n";
echo "precision=", ini_get('precision'), "\n";
echo "ini_set(precision)=", var_export(ini_set('precision', '9'), true), "\n";
$l = posix_getrlimit();
echo "openfiles=", $l['soft openfiles'], "/", $l['hard openfiles'], "\n";
echo "root_visible=", var_export(file_exists('/id.php'), true), "\n";
"#;

// A directory readable by www-data (temp dirs are 0700).
fn open_dir(prefix: &str) -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("tempdir");
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    d
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
}

fn jail_request(fpm: &Fpm, script: &str) -> String {
    let req = Req::get(script).param("SCRIPT_FILENAME", &format!("/{script}"));
    let resp = fpm
        .send(&req)
        .unwrap_or_else(|e| panic!("{e}\n{}", fpm.log()));
    String::from_utf8_lossy(resp.body()).into_owned()
}

both!(worker_identity_in_chroot, |kind| {
    let jail = open_dir("itest-jail-");
    std::fs::create_dir(jail.path().join("work")).expect("mkdir");
    std::fs::set_permissions(
        jail.path().join("work"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    write(&jail.path().join("id.php"), ID_PHP);
    let fpm = Fpm::builder(kind)
        .define("extension", "posix")
        .env("RFPM_TEST_FROM_MASTER", "from-master")
        .pool_line("user = www-data")
        .pool_line(format!("chroot = {}", jail.path().display()))
        .pool_line("chdir = /work")
        .pool_line("clear_env = yes")
        .pool_line("env[FOO] = bar")
        .pool_line("env[DUP] = first")
        .pool_line("env[DUP] = second")
        .pool_line("env[FROM_MASTER] = $RFPM_TEST_FROM_MASTER")
        .pool_line("env[UNSET_REF] = $RFPM_TEST_NOT_SET")
        .pool_line("php_admin_value[memory_limit] = 77M")
        .pool_line("php_value[memory_limit] = 99M")
        .pool_line("php_value[precision] = 7")
        .pool_line("rlimit_files = 1000")
        .start()
        .expect("start");
    let body = jail_request(&fpm, "id.php");
    let expected = "uid=33 euid=33\n\
        gid=33 egid=33\n\
        groups=33\n\
        getenv(DUP)='first'\n\
        getenv(FOO)='bar'\n\
        getenv(FROM_MASTER)='from-master'\n\
        getenv(HOME)='/var/www'\n\
        getenv(UNSET_REF)=''\n\
        getenv(USER)='www-data'\n\
        getenv(PATH)=false\n\
        getenv(RFPM_TEST_FROM_MASTER)=false\n\
        memory_limit=77M\n\
        ini_set(memory_limit)=false\n\
        memory_limit=77M\n\
        precision=7\n\
        ini_set(precision)='7'\n\
        openfiles=1000/1000\n\
        root_visible=true\n";
    assert_eq!(body, expected, "{}", fpm.log());
    // PHP works in the script's directory during a request and goes back afterwards:
    // between requests the workers sit in `chdir` inside the chroot.
    let jail_path = jail.path().to_path_buf();
    let settled = integration::wait_until(integration::DEADLINE, || {
        let pids = fpm.worker_pids();
        !pids.is_empty()
            && pids.iter().all(|pid| {
                let link = |what: &str| std::fs::read_link(format!("/proc/{pid}/{what}")).ok();
                link("root") == Some(jail_path.clone())
                    && link("cwd") == Some(jail_path.join("work"))
            })
    });
    assert!(
        settled,
        "workers not in {}/work: {}",
        jail_path.display(),
        fpm.log()
    );
});

// `group` overrides the primary group; initgroups gives the user's supplementary groups
// for that gid; `clear_env = no` keeps the master's environment; no chroot and no
// `chdir`: the worker stays in the master's working directory.
both!(worker_group_and_inherited_env, |kind| {
    let dir = open_dir("itest-docroot-");
    write(&dir.path().join("id.php"), ID_PHP);
    let fpm = Fpm::builder(kind)
        .define("extension", "posix")
        .env("RFPM_TEST_FROM_MASTER", "from-master")
        .pool_line("user = www-data")
        .pool_line("group = nogroup")
        .pool_line("clear_env = no")
        .pool_line("env[USER] = someone")
        .start()
        .expect("start");
    let script = dir.path().join("id.php");
    let req = Req::get("id.php").param("SCRIPT_FILENAME", &script.display().to_string());
    let body = String::from_utf8_lossy(fpm.send(&req).expect("request").body()).into_owned();
    let line = |name: &str| -> String {
        body.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(line("uid="), "uid=33 euid=33", "{body}");
    assert_eq!(line("gid="), "gid=65534 egid=65534", "{body}");
    assert_eq!(line("groups="), "groups=65534", "{body}");
    assert_eq!(line("getenv(USER)="), "getenv(USER)='someone'", "{body}");
    assert_eq!(line("getenv(HOME)="), "getenv(HOME)='/var/www'", "{body}");
    assert_eq!(
        line("getenv(RFPM_TEST_FROM_MASTER)="),
        "getenv(RFPM_TEST_FROM_MASTER)='from-master'",
        "{body}"
    );
    assert!(
        line("getenv(PATH)=").starts_with("getenv(PATH)='/"),
        "{body}"
    );
    // Without chroot and chdir the workers stay in the master's working directory (the
    // harness starts it in its temp dir) between requests.
    let dir = fpm.dir().to_path_buf();
    let settled = integration::wait_until(integration::DEADLINE, || {
        let pids = fpm.worker_pids();
        !pids.is_empty()
            && pids
                .iter()
                .all(|pid| std::fs::read_link(format!("/proc/{pid}/cwd")).ok() == Some(dir.clone()))
    });
    assert!(settled, "workers not in {}", dir.display());
});

// `process.priority`, `process.dumpable` and `rlimit_core` of the workers (read from
// /proc: a non-dumpable process's /proc files belong to root).
both!(worker_priority_dumpable_core, |kind| {
    let dir = open_dir("itest-docroot-");
    let php = r#"<?php
$stat = file_get_contents('/proc/self/stat');
$f = explode(' ', substr($stat, strrpos($stat, ')') + 2));
echo "nice=", $f[16], "\n";
echo "proc_owner=", fileowner('/proc/self/stat'), "\n";
$l = posix_getrlimit();
echo "core=", $l['soft core'], "/", $l['hard core'], "\n";
"#;
    write(&dir.path().join("p.php"), php);
    let script = dir.path().join("p.php").display().to_string();
    let fpm = Fpm::builder(kind)
        .define("extension", "posix")
        .pool_line("user = www-data")
        .pool_line("process.priority = 7")
        .pool_line("process.dumpable = yes")
        .pool_line("rlimit_core = unlimited")
        .pool("plain", &["user = www-data", "rlimit_core = 0"])
        .start()
        .expect("start");
    let req = Req::get("p.php").param("SCRIPT_FILENAME", &script);
    let body = String::from_utf8_lossy(fpm.send(&req).expect("request").body()).into_owned();
    assert_eq!(
        body,
        "nice=7\nproc_owner=33\ncore=unlimited/unlimited\n",
        "{}",
        fpm.log()
    );
    let mut client =
        integration::connect(&fcgi::client::Addr::parse(&fpm.pool_addr("plain"))).expect("connect");
    let plain = integration::send_on(&mut client, &fpm.docroot(), &req).expect("request");
    let plain = String::from_utf8_lossy(plain.body()).into_owned();
    assert!(plain.starts_with("nice=0\nproc_owner=0\n"), "{plain}");
});

// `listen.acl_users` / `listen.acl_groups` (reference §6.2): the socket's ACL as
// `getfacl` shows it, and owner/group ignored with php-fpm's warnings.
both!(listen_acl, |kind| {
    if which("getfacl").is_none() {
        panic!("getfacl is missing (package acl: make deps)");
    }
    let fpm = Fpm::builder(kind)
        .pool_line("listen.mode = 0600")
        .pool_line("listen.owner = nobody")
        .pool_line("listen.acl_users = nobody,www-data,daemon")
        .pool_line("listen.acl_groups = nogroup,www-data")
        .start()
        .expect("start");
    let out = std::process::Command::new("getfacl")
        .args(["-cp", &fpm.addr()])
        .output()
        .expect("getfacl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text,
        "user::rw-\nuser:daemon:rw-\nuser:www-data:rw-\nuser:nobody:rw-\ngroup::---\n\
         group:www-data:rw-\ngroup:nogroup:rw-\nmask::rw-\nother::---\n\n",
        "{}",
        fpm.log()
    );
    assert!(
        fpm.log_contains("WARNING: [pool www] ACL set, listen.owner = 'nobody' is ignored"),
        "{}",
        fpm.log()
    );
});

// listen.owner / listen.group / listen.mode on the socket file.
both!(listen_owner_group_mode, |kind| {
    use std::os::unix::fs::MetadataExt;
    let fpm = Fpm::builder(kind)
        .pool_line("listen.mode = 0640")
        .pool_line("listen.owner = www-data")
        .pool_line("listen.group = nogroup")
        .start()
        .expect("start");
    let md = std::fs::metadata(fpm.addr()).expect("stat");
    assert_eq!(
        (md.uid(), md.gid(), md.mode() & 0o777),
        (33, 65534, 0o640),
        "{}",
        fpm.log()
    );
});

fn which(cmd: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(cmd))
            .find(|p| p.exists())
    })
}

// A master that is not root ignores user, group, chroot and both priorities, with
// php-fpm's notices, in php-fpm's order (global first); workers keep its uid and get its
// USER/HOME.
both!(non_root_master_notices, |kind| {
    let dir = open_dir("itest-docroot-");
    write(&dir.path().join("id.php"), ID_PHP);
    let fpm = Fpm::builder(kind)
        .define("extension", "posix")
        .run_as(65534, 65534)
        .global("process.priority = 3")
        .pool_line("user = www-data")
        .pool_line("group = www-data")
        .pool_line("chroot = /")
        .pool_line("process.priority = 5")
        .start()
        .expect("start");
    let notices: Vec<String> = fpm
        .log()
        .lines()
        .filter(|l| l.contains("is ignored"))
        .map(|l| l.split_once("] ").map_or(l, |(_, r)| r).to_string())
        .collect();
    assert_eq!(
        notices,
        [
            "NOTICE: 'process.priority' directive is ignored when FPM is not running as root",
            "NOTICE: [pool www] 'user' directive is ignored when FPM is not running as root",
            "NOTICE: [pool www] 'group' directive is ignored when FPM is not running as root",
            "NOTICE: [pool www] 'chroot' directive is ignored when FPM is not running as root",
            "NOTICE: [pool www] 'process.priority' directive is ignored when FPM is not running as root",
        ],
        "{}",
        fpm.log()
    );
    let script = dir.path().join("id.php").display().to_string();
    let req = Req::get("id.php").param("SCRIPT_FILENAME", &script);
    let body = String::from_utf8_lossy(fpm.send(&req).expect("request").body()).into_owned();
    assert!(
        body.starts_with("uid=65534 euid=65534\ngid=65534 egid=65534\ngroups=\n"),
        "{body}"
    );
    assert!(body.contains("getenv(USER)='nobody'\n"), "{body}");
    assert!(body.contains("getenv(HOME)='/nonexistent'\n"), "{body}");
});

// The master's own rlimit_files is set before anything else; failing is fatal (78).
both!(global_rlimit_failure_is_fatal, |kind| {
    let fpm = Fpm::builder(kind)
        .global("rlimit_files = 100000000")
        .spawn()
        .expect("spawn");
    let status = fpm.wait_exit(integration::DEADLINE).expect("exit");
    assert_eq!(status.code(), Some(78), "{}", fpm.log());
    let lines: Vec<String> = fpm
        .log()
        .lines()
        .map(|l| l.split_once("] ").map_or(l, |(_, r)| r).to_string())
        .collect();
    assert_eq!(
        lines,
        [
            "ERROR: failed to set rlimit_files for this pool. Please check your system limits or decrease rlimit_files. setrlimit(RLIMIT_NOFILE, 100000000): Operation not permitted (1)",
            "ERROR: FPM initialization failed",
        ]
    );
});

// A worker that cannot set the pool's rlimit_files says so and serves anyway.
both!(worker_rlimit_failure_is_logged, |kind| {
    let fpm = Fpm::builder(kind)
        .pool_line("rlimit_files = 100000000")
        .pool_line("catch_workers_output = yes")
        .start()
        .expect("start");
    fpm.wait_log(
        "said into stderr: \"ERROR: [pool www] failed to set rlimit_files for this pool. Please check your system limits or decrease rlimit_files. setrlimit(RLIMIT_NOFILE, 100000000): Operation not permitted (1)\"",
        integration::DEADLINE,
    )
    .expect("rlimit error");
    let resp = fpm.request("hello.php", &[]).expect("request");
    assert_eq!(resp.body(), b"Hello, world!\n");
});

// `listen.backlog` reaches listen(2) (ss shows it as the listening socket's Send-Q) and the
// global `process.priority` is the master's nice value, inherited by workers of a pool
// without its own.
both!(backlog_and_master_priority, |kind| {
    let fpm = Fpm::builder(kind)
        .global("process.priority = 4")
        .pool_line("listen.backlog = 7")
        .start()
        .expect("start");
    let nice = |pid: u32| -> Option<String> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let rest = &stat[stat.rfind(')')? + 2..];
        rest.split(' ').nth(16).map(str::to_string)
    };
    assert_eq!(
        nice(fpm.master_pid()).as_deref(),
        Some("4"),
        "{}",
        fpm.log()
    );
    let workers_ok = integration::wait_until(integration::DEADLINE, || {
        let pids = fpm.worker_pids();
        !pids.is_empty() && pids.iter().all(|&p| nice(p).as_deref() == Some("4"))
    });
    assert!(workers_ok, "worker nice values");
    let out = std::process::Command::new("ss")
        .args(["-xln"])
        .output()
        .expect("ss (package iproute2)");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains(&fpm.addr()))
        .unwrap_or_default();
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields.get(3), Some(&"7"), "{text}");
});

// `chroot = $prefix/...` takes the pool prefix (reference §2.11).
both!(chroot_with_prefix, |kind| {
    let base = open_dir("itest-prefix-");
    let jail = base.path().join("jail");
    std::fs::create_dir(&jail).expect("mkdir");
    write(
        &jail.join("id.php"),
        "<?php echo file_exists('/id.php') ? 'in jail' : 'outside';",
    );
    let fpm = Fpm::builder(kind)
        .pool_line(format!("prefix = {}", base.path().display()))
        .pool_line("chroot = $prefix/jail")
        .pool_line("user = www-data")
        .start()
        .expect("start");
    assert_eq!(jail_request(&fpm, "id.php"), "in jail", "{}", fpm.log());
    // php-fpm joins prefix and the rest with '/': `<prefix>//jail`, the same directory.
    let want = jail.canonicalize().expect("canonical");
    let settled = integration::wait_until(integration::DEADLINE, || {
        let pids = fpm.worker_pids();
        !pids.is_empty()
            && pids.iter().all(|pid| {
                std::fs::read_link(format!("/proc/{pid}/root"))
                    .ok()
                    .and_then(|r| r.canonicalize().ok())
                    == Some(want.clone())
            })
    });
    assert!(settled, "workers not chrooted to {}", want.display());
});

// `apparmor_hat` on a kernel without AppArmor: the worker cannot query its confinement and
// fails to initialise (exit 70), as php-fpm8.2 (built with AppArmor support) does.
both!(apparmor_hat_without_apparmor, |kind| {
    if std::fs::read_to_string("/proc/self/attr/current").is_ok() {
        eprintln!("SKIPPED apparmor_hat_without_apparmor: this kernel has an LSM attribute");
        return;
    }
    let fpm = Fpm::builder(kind)
        .pool_line("apparmor_hat = hat")
        .pool_line("catch_workers_output = yes")
        .start()
        .expect("start");
    fpm.wait_log(
        "said into stderr: \"ERROR: [pool www] failed to query apparmor confinement. Please check if \"/proc/*/attr/current\" is read and writeable.: Invalid argument (22)\"",
        integration::DEADLINE,
    )
    .expect("apparmor error");
    fpm.wait_log("exited with code 70", integration::DEADLINE)
        .expect("worker exit 70");
});

// PHP works in the script's directory (relative includes and file names resolve there)
// and the worker goes back to `chdir` after the script, before the shutdown functions,
// whatever the script did: moved elsewhere, ended in a fatal error; a chdir() after the
// script (a shutdown function) moves the worker's home, as in PHP.
both!(script_directory_during_and_home_after, |kind| {
    let dir = open_dir("itest-cwd-");
    let home = dir.path().join("home");
    let app = dir.path().join("app");
    for d in [&home, &app] {
        std::fs::create_dir(d).expect("mkdir");
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    write(
        &app.join("inc.php"),
        "<?php echo 'included from ', basename(getcwd()), \"\\n\";\n",
    );
    write(
        &app.join("cwd.php"),
        r#"<?php
register_shutdown_function(function () { echo "shutdown cwd=", getcwd(), "\n"; });
echo "cwd=", getcwd(), "\n";
include 'inc.php';
echo "relative file: ", file_get_contents('inc.php') !== false ? 'read' : 'missing', "\n";
chdir('/');
echo "moved to ", getcwd(), "\n";
"#,
    );
    write(
        &dir.path().join("fatal.php"),
        "<?php chdir('/usr'); echo 'in ', getcwd(), \"\\n\"; undefined_function();\n",
    );
    let fpm = Fpm::builder(kind)
        .pool_line("pm.max_children = 1")
        .pool_line(format!("chdir = {}", home.display()))
        .start()
        .expect("start");
    let get = |path: &Path| -> String {
        let req = Req::get("x.php").param("SCRIPT_FILENAME", &path.display().to_string());
        let resp = fpm
            .send(&req)
            .unwrap_or_else(|e| panic!("{e}\n{}", fpm.log()));
        String::from_utf8_lossy(resp.body()).into_owned()
    };
    let expected = format!(
        "cwd={app}\nincluded from app\nrelative file: read\nmoved to /\nshutdown cwd={home}\n",
        app = app.display(),
        home = home.display()
    );
    assert_eq!(get(&app.join("cwd.php")), expected, "{}", fpm.log());
    let fatal = get(&dir.path().join("fatal.php"));
    assert!(fatal.starts_with("in /usr\n"), "{fatal}");
    assert!(fatal.contains("undefined_function"), "{fatal}");
    // The same worker, after the fatal error: the script's directory again, then home.
    assert_eq!(get(&app.join("cwd.php")), expected, "{}", fpm.log());
    let pids = fpm.worker_pids();
    assert_eq!(pids.len(), 1);
    let cwd_of_worker = || std::fs::read_link(format!("/proc/{}/cwd", pids[0])).ok();
    assert_eq!(cwd_of_worker(), Some(home.clone()));
    // A shutdown function's chdir() outlives the request: PHP saves that directory before
    // the next script and returns to it.
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).expect("mkdir");
    write(
        &dir.path().join("leave.php"),
        &format!(
            "<?php register_shutdown_function(function () {{ chdir('{}'); }}); echo \"left\\n\";\n",
            elsewhere.display()
        ),
    );
    assert_eq!(get(&dir.path().join("leave.php")), "left\n");
    assert_eq!(cwd_of_worker(), Some(elsewhere.clone()));
    let moved_home = format!(
        "cwd={app}\nincluded from app\nrelative file: read\nmoved to /\nshutdown cwd={home}\n",
        app = app.display(),
        home = elsewhere.display()
    );
    assert_eq!(get(&app.join("cwd.php")), moved_home, "{}", fpm.log());
    assert_eq!(cwd_of_worker(), Some(elsewhere.clone()));
});

// `env[A=B] = 1`: a name setenv(3) refuses. php-fpm8.2 skips it and serves; the worker
// must not die at start (it did, over and over: std's set_var panics on `=`). The
// entries around it are set.
both!(env_name_with_an_equals_sign_is_skipped, |kind| {
    let fpm = Fpm::builder(kind)
        .pool_line("env[BEFORE] = b")
        .pool_line("env[A=B] = 1")
        .pool_line("env[HTTP_FOO] = after")
        .start()
        .expect("start");
    let body = String::from_utf8_lossy(fpm.send(&Req::get("env.php")).expect("request").body())
        .into_owned();
    assert!(body.contains("getenv(HTTP_FOO)='after'"), "{body}");
    assert!(!body.contains("A=B"), "{body}");
    assert!(!fpm.log().contains("exited with code"), "{}", fpm.log());
});
