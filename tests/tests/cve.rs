//! Regression tests named after php-fpm's CVEs (issue 19). Each runs against php-fpm8.2
//! (which has the fixes) and rfpm, and each comment says what reintroducing the flaw in
//! rfpm would look like and why the test would then fail.
#![forbid(unsafe_code)]

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use integration::fcgi::client::Addr;
use integration::{both, connect, send_on, Fpm, Nginx, Req};

fn ok<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The `KEY=value` line of env.php's `$_SERVER` dump, if any.
fn server_var(body: &str, key: &str) -> Option<String> {
    body.lines()
        .take_while(|l| *l != "--")
        .find_map(|l| l.strip_prefix(&format!("{key}=")).map(str::to_string))
}

// ---------------------------------------------------------------------------------------
// CVE-2019-11043: PATH_INFO underflow. nginx's `fastcgi_split_path_info ^(.+?\.php)(/.*)$`
// does not match a URI holding a newline (`%0a`), so nginx sends an empty PATH_INFO with a
// SCRIPT_FILENAME that still carries the path info. php-fpm (< 7.3.11) stripped the tail
// off SCRIPT_FILENAME (slen bytes) and pointed PATH_INFO at `env_path_info + pilen - slen`
// without checking `pilen > slen`: a pointer before the buffer, then written to, which let
// the query string overwrite the request's params (PHP_VALUE injection, remote code
// execution through phuip-fpizdam).
//
// In rfpm the guard is `Some(pi) if pi.len() > slen` in `rfpm_core::paths`. Reintroducing
// the flaw (dropping the guard, or `pi.len() - slen` computed with saturating or wrapping
// arithmetic) either panics the worker on the slice (the request is lost and the worker
// replaced: the pid checks below fail) or sets a PATH_INFO/SCRIPT_NAME that php-fpm8.2
// does not (the `$_SERVER` checks below fail). The raw FastCGI rows of the same shapes are
// also compared byte for byte with php-fpm8.2 in requests.rs
// ("CVE-2019-11043: empty PATH_INFO", "… shorter than the stripped part").

/// nginx as the CVE's advisory configured it: split path info, PATH_INFO passed, no
/// `try_files` guard.
const VULNERABLE_NGINX: &str = r#"
        location ~ [^/]\.php(/|$) {
            fastcgi_split_path_info ^(.+?\.php)(/.*)$;
            include /etc/nginx/fastcgi_params;
            fastcgi_param PATH_INFO $fastcgi_path_info;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            fastcgi_pass unix:{sock};
        }
"#;

both!(cve_2019_11043_path_info_underflow, |kind| {
    let fpm = ok(Fpm::builder(kind).start());
    let workers = fpm.worker_pids();
    let docroot = fpm.docroot();
    let nginx = ok(Nginx::start_with(&fpm.addr(), &docroot, VULNERABLE_NGINX));
    let doc = docroot.display().to_string();

    // The split works without a newline: PATH_INFO is the tail (the control case).
    let resp = ok(nginx.curl("/env.php/foo/bar", &[]));
    assert_eq!(resp.status, 200, "{}", resp.body_str());
    let body = resp.body_str();
    assert_eq!(server_var(&body, "PATH_INFO").as_deref(), Some("/foo/bar"));

    // phuip-fpizdam's shapes: `PHP_VALUE\n<ini>` in the path, query strings of growing
    // length (the exploit moves the underflowed pointer onto the params buffer with them).
    for (i, q) in [1usize, 100, 1500, 1700, 1800, 1900, 1950, 2000]
        .iter()
        .enumerate()
    {
        let path = format!(
            "/env.php/PHP_VALUE%0Aauto_prepend_file=/etc/passwd;;;?{}",
            "Q".repeat(*q)
        );
        let resp = ok(nginx.curl(&path, &["-H", "D-Pisos: 8=D", "-H", "Ebut: mamku tvoyu"]));
        let body = resp.body_str();
        assert_eq!(resp.status, 200, "shape {i}: {body}");
        assert!(!body.contains("root:x:0:0"), "shape {i}: prepended\n{body}");
        // The newline kept nginx from splitting: PATH_INFO stays empty, SCRIPT_FILENAME
        // is the script found by stripping, SCRIPT_NAME is nginx's.
        assert_eq!(
            server_var(&body, "PATH_INFO").as_deref(),
            Some(""),
            "shape {i}: {body}"
        );
        assert_eq!(
            server_var(&body, "SCRIPT_FILENAME"),
            Some(format!("{doc}/env.php")),
            "shape {i}: {body}"
        );
        assert!(
            body.contains("\nSCRIPT_NAME=/env.php/PHP_VALUE\nauto_prepend_file=/etc/passwd;;;\n"),
            "shape {i}: {body}"
        );
        assert_eq!(server_var(&body, "ORIG_PATH_INFO"), None, "shape {i}");
    }
    // Nothing was injected into the workers' settings, and no worker died on the way.
    for _ in 0..4 {
        let resp = ok(fpm.send(&Req::get("ini.php").query("n[]=auto_prepend_file")));
        assert_eq!(text(resp.body()), "auto_prepend_file=''\n");
    }
    assert_eq!(fpm.worker_pids(), workers, "a worker died on the way");
});

// ---------------------------------------------------------------------------------------
// CVE-2021-21703: php-fpm (< 8.0.12) kept pointers in the scoreboard, which every worker
// can write; a worker that overwrote them made the root master write where it chose
// (local privilege escalation). rfpm's master reads the scoreboard as untrusted input: no
// pointer, indexes and pids from its own records, every length bounded, and a slot's timing
// believed only for the child spawned for that slot and bounded by what the master saw
// (`rfpm_core::timeouts::bound`).
//
// The hostile script (fixtures/hostile_shm.php, FFI) rewrites every worker pid it finds in
// its writable shared mappings into the pid of a canary process running as root, marks the
// slot Running, and dates every timestamp to 1970. Reintroducing the flaw — the master
// signalling the pid a slot names, or believing a slot's start time without checking its
// owner (`bound` returning the forged view) — makes the master end the canary or a sibling
// worker through `request_terminate_timeout` within a second or two: the canary and
// worker checks below fail. Trusting a slot's text lengths would read past the slot
// (a crash of the master: the liveness checks fail).

/// Uid (real) of a process from /proc, if it still exists.
fn uid_of(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A root process the master has no business signalling.
struct Canary(Child);

impl Canary {
    fn start() -> Canary {
        Canary(ok(Command::new("sleep")
            .arg("60")
            .stdin(Stdio::null())
            .spawn()))
    }

    fn alive(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Cumulative CPU time (user + system clock ticks) of a process.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some(close) = stat.rfind(')') else {
        return 0;
    };
    let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    // After the name: state is field 0, utime 11, stime 12.
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    get(11) + get(12)
}

both!(cve_2021_21703_scoreboard_written_by_a_worker, |kind| {
    let mut canary = Canary::start();
    let canary_pid = canary.0.id();
    let fpm = ok(Fpm::builder(kind)
        .define("extension", "ffi")
        .define("ffi.enable", "1")
        .pool_line("user = nobody")
        .pool_line("group = nogroup")
        .pool_line("pm.max_children = 3")
        .pool_line("request_terminate_timeout = 3s")
        .pool_line("pm.status_path = /status")
        .pool_line("pm.status_listen = ${HOME}/status.sock")
        .start());
    let master = fpm.master_pid();
    let before: BTreeSet<u32> = fpm.worker_pids().into_iter().collect();
    // Every worker serves a request first, so that every slot holds a request start to
    // forge (three at once, on three connections, reach the three workers).
    let warm: Vec<_> = (0..3)
        .map(|_| {
            let mut c = ok(fpm.client());
            let docroot = fpm.docroot();
            std::thread::spawn(move || {
                send_on(&mut c, &docroot, &Req::get("slices.php").query("secs=0.5"))
            })
        })
        .collect();
    let mut served = BTreeSet::new();
    for t in warm {
        let Ok(resp) = t.join() else {
            panic!("request thread panicked")
        };
        served.insert(text(ok(resp).body()));
    }
    assert_eq!(served.len(), 3, "{served:?}");
    let resp =
        ok(fpm
            .send(&Req::get("hostile_shm.php").query(&format!("mode=forge&canary={canary_pid}"))));
    let said = text(resp.body());
    assert!(said.starts_with("mappings="), "{said}{}", resp.stderr_str());
    assert!(
        !said.contains("pids=0 "),
        "the script forged nothing: {said}"
    );
    let cpu0 = cpu_ticks(master);
    // Give a master that trusts the slots several timeout checks (one a second) to act.
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        canary.alive(),
        "the master killed a process it did not spawn ({said})"
    );
    assert!(integration::process_alive(master), "the master died");
    let after: BTreeSet<u32> = fpm.worker_pids().into_iter().collect();
    assert_eq!(
        after, before,
        "the master ended workers on forged slots ({said})"
    );
    let spent = cpu_ticks(master).saturating_sub(cpu0);
    assert!(spent < 200, "the master spun: {spent} ticks in 4 s");
    // Only unprivileged children.
    let children = fpm.worker_pids();
    assert!(!children.is_empty());
    for c in &children {
        assert_ne!(uid_of(*c), Some(0), "child {c} runs as root");
    }
    // The status page answers, with whatever the slots say (bounded).
    let mut s = ok(connect(&Addr::Unix(fpm.dir().join("status.sock"))));
    let page = ok(send_on(
        &mut s,
        &fpm.docroot(),
        &Req::get("status").query("full&json"),
    ));
    assert!(
        text(page.body()).contains("\"pool\":\"www\""),
        "{}",
        text(page.body())
    );
    // And the pool serves.
    for _ in 0..6 {
        let resp = ok(fpm.request("hello.php", &[]));
        assert_eq!(resp.body(), b"Hello, world!\n");
    }
    assert!(canary.alive());
});

// ---------------------------------------------------------------------------------------
// GHSA-7qg2 (php-fpm's status page XSS, fixed in 8.0.x/8.1.x): the html status page
// (`?html&full`) printed the request URI, query and script of each process unescaped, so a
// request to `/<script>…` ran script in the browser of whoever opened the status page.
// rfpm's html page escapes every text field (`escape_html` in `rfpm_core::status`).
// Reintroducing the flaw (writing a field's bytes as they are) puts the raw `<script>` and
// `<img onerror>` of the requests below into the page: the checks below fail.

both!(ghsa_7qg2_status_html_escapes_request_fields, |kind| {
    let fpm = ok(Fpm::builder(kind)
        .pool_line("pm.max_children = 1")
        .pool_line("pm.status_path = /status")
        .pool_line("pm.status_listen = ${HOME}/status.sock")
        .start());
    // php-fpm shows SCRIPT_NAME and the query string as the request uri.
    let resp = ok(fpm.send(
        &Req::get("hello.php")
            .query("a=<script>alert(1)</script>&b=\"'><img src=x onerror=alert(2)>")
            .param("REQUEST_URI", "/<svg onload=alert(3)>"),
    ));
    assert_eq!(resp.body(), b"Hello, world!\n");
    let mut s = ok(connect(&Addr::Unix(fpm.dir().join("status.sock"))));
    let page = ok(send_on(
        &mut s,
        &fpm.docroot(),
        &Req::get("status").query("html&full"),
    ));
    let page = text(page.body());
    assert!(page.contains("<table"), "not the html page:\n{page}");
    for raw in ["<script", "<img", "<svg", "alert(2)>", "\"'>"] {
        assert!(!page.contains(raw), "unescaped {raw:?} in:\n{page}");
    }
    // The one worker's last request is shown, escaped.
    assert!(
        page.contains(
            "<td>/hello.php?a=&lt;script&gt;alert(1)&lt;/script&gt;&amp;b=&quot;'&gt;\
             &lt;img src=x onerror=alert(2)&gt;</td>"
        ),
        "{page}"
    );
});
