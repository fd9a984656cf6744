//! A real Prometheus scrapes the admin listener (issue 15): Debian's `prometheus`, started
//! on loopback with a temp configuration and storage, scrapes `/metrics` every second
//! (it asks for OpenMetrics), and its HTTP API answers the values of the requests sent.
//! `promtool check metrics` finds no problem in the `rfpm_*` families (the exporter's
//! historical `phpfpm_*` names are kept as they are, and promtool says so about them).
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use integration::helpers::ok;
use integration::{free_port, wait_until, Fpm, Kind, DEADLINE};

const PROMETHEUS: &str = "/usr/bin/prometheus";
const PROMTOOL: &str = "/usr/bin/promtool";
/// Prometheus starts, replays its (empty) WAL, then scrapes every second.
const PROM_DEADLINE: Duration = Duration::from_secs(60);
/// Requests sent through FastCGI.
const N: u64 = 7;

/// `GET target` on 127.0.0.1:`port` with `Connection: close`: status code and body.
fn get(port: u16, target: &str, accept: Option<&str>) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(DEADLINE))?;
    let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{accept}Connection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    // Prometheus' API may answer chunked; the admin listener never does.
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((code, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// A query string value, percent-encoded.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// A Prometheus started by the test; killed when dropped (also when the test fails).
struct Prometheus {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Scrapes `target` (host:port) every second.
    fn start(target: &str) -> Prometheus {
        let dir = ok(tempfile::tempdir());
        let port = ok(free_port());
        let conf = dir.path().join("prometheus.yml");
        ok(std::fs::write(
            &conf,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: rfpm\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        ));
        let log = dir.path().join("prometheus.log");
        let out = ok(std::fs::File::create(&log));
        let err = ok(out.try_clone());
        let child = Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", conf.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("{PROMETHEUS} (install it: make deps): {e}"));
        Prometheus {
            child,
            port,
            log,
            _dir: dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The value of an instant query that returns one series (`None`: no answer yet,
    /// or not exactly one series).
    fn query(&self, q: &str) -> Option<String> {
        let (code, body) = get(
            self.port,
            &format!("/api/v1/query?query={}", encode(q)),
            None,
        )
        .ok()?;
        if code != 200 {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let result = v["data"]["result"].as_array()?;
        if result.len() != 1 {
            return None;
        }
        result[0]["value"][1].as_str().map(str::to_string)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// rfpm with its admin listener on a free loopback port, and `N` requests served.
fn rfpm_with_traffic() -> (Fpm, u16) {
    let port = ok(free_port());
    let fpm = ok(Fpm::builder(Kind::Rfpm)
        .global(format!("admin.listen = 127.0.0.1:{port}"))
        .start());
    for _ in 0..N {
        let r = ok(fpm.request("hello.php", &[]));
        assert_eq!(r.body(), b"Hello, world!\n");
    }
    assert!(
        wait_until(DEADLINE, || get(port, "/metrics", None).is_ok_and(
            |(_, body)| {
                body.lines().any(|l| {
                    l == format!("rfpm_request_duration_seconds_count{{pool=\"www\"}} {N}")
                })
            }
        )),
        "/metrics never counted {N} requests: {:?}\n{}",
        get(port, "/metrics", None),
        fpm.log()
    );
    (fpm, port)
}

#[test]
fn prometheus_scrapes_the_admin_listener() {
    let (fpm, port) = rfpm_with_traffic();
    let prom = Prometheus::start(&format!("127.0.0.1:{port}"));
    let n = N.to_string();
    let expected = [
        ("up{job=\"rfpm\"}", "1"),
        ("phpfpm_accepted_connections{pool=\"www\"}", n.as_str()),
        (
            "rfpm_request_duration_seconds_count{pool=\"www\"}",
            n.as_str(),
        ),
        ("phpfpm_up{pool=\"www\"}", "1"),
        (
            "rfpm_requests_total{pool=\"www\",status=\"2xx\"}",
            n.as_str(),
        ),
    ];
    for (q, want) in expected {
        let mut last = None;
        assert!(
            wait_until(PROM_DEADLINE, || {
                last = prom.query(q);
                last.as_deref() == Some(want)
            }),
            "{q}: Prometheus answers {last:?}, expected {want}\n--- targets ---\n{:?}\n--- prometheus ---\n{}\n--- rfpm ---\n{}",
            get(prom.port, "/api/v1/targets", None),
            prom.log(),
            fpm.log()
        );
    }
    // The scrape itself went well: no error on the target, OpenMetrics negotiated.
    let (_, targets) = ok(get(prom.port, "/api/v1/targets", None));
    let t: serde_json::Value = ok(serde_json::from_str(&targets));
    let active = &t["data"]["activeTargets"][0];
    assert_eq!(active["health"], "up", "{targets}");
    assert_eq!(active["lastError"], "", "{targets}");
    let (_, om) = ok(get(
        port,
        "/metrics",
        Some("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"),
    ));
    assert!(om.ends_with("# EOF\n"), "{om}");
}

#[test]
fn promtool_finds_no_problem_in_rfpm_metrics() {
    let (_fpm, port) = rfpm_with_traffic();
    let (code, text) = ok(get(port, "/metrics", None));
    assert_eq!(code, 200);
    let mut child = Command::new(PROMTOOL)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{PROMTOOL} (install it: make deps): {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        ok(stdin.write_all(text.as_bytes()));
    }
    let out = ok(child.wait_with_output());
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // It parsed the exposition (a parse error stops it before any lint)…
    assert!(
        !said.contains("error while linting"),
        "promtool could not parse /metrics ({}):\n{said}\n--- metrics ---\n{text}",
        out.status
    );
    // …and what it reports is about the exporter's historical names only.
    let about_rfpm: Vec<&str> = said.lines().filter(|l| l.contains("rfpm_")).collect();
    assert!(
        about_rfpm.is_empty(),
        "promtool check metrics ({}) complains about rfpm_* metrics:\n{said}",
        out.status
    );
    save_for_reading(&said);
}

/// Keeps promtool's words in the test run's tmpdir (for a reader, not for a check).
fn save_for_reading(said: &str) {
    let p = Path::new(env!("CARGO_TARGET_TMPDIR")).join("promtool-check-metrics.txt");
    let _ = std::fs::write(p, said);
}
