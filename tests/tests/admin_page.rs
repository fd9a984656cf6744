//! The admin listener's status page (`GET /`, share/admin.html) in headless Chromium
//! (issue 15, item 3): two pools, a request kept running past the slowlog timeout, its
//! URI (with `<script>` and a quote) shown as text, durations, ISO dates and MiB; a
//! screenshot in the test run's target tmpdir.
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use integration::helpers::ok;
use integration::{free_port, wait_for_file, wait_until, Fpm, Kind, Req, DEADLINE};

/// `GET path` on the admin listener, `Connection: close`: status code and body.
fn get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(DEADLINE))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((code, body))
}

/// Debian's chromium, headless (as tests/tests/status.rs drives it).
fn chromium(profile: &Path, args: &[&str], url: &str) -> std::process::Output {
    let mut cmd = Command::new("/usr/bin/chromium");
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--virtual-time-budget=5000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(args)
    .arg(url)
    .stdin(std::process::Stdio::null());
    match cmd.output() {
        Ok(o) => o,
        Err(e) => panic!("/usr/bin/chromium (install it: make deps): {e}"),
    }
}

/// The texts of the `<td class="{class}">` cells of a dumped DOM.
fn cells<'a>(html: &'a str, class: &str) -> Vec<&'a str> {
    let open = format!("<td class=\"{class}\">");
    html.match_indices(&open)
        .filter_map(|(i, _)| {
            let rest = &html[i + open.len()..];
            rest.find("</td>").map(|end| &rest[..end])
        })
        .collect()
}

/// Whether `s` holds a date and time in ISO 8601 form, `YYYY-MM-DDTHH:MM:SSZ`.
fn has_iso_date(s: &str) -> bool {
    let pattern = b"dddd-dd-ddTdd:dd:ddZ";
    s.as_bytes().windows(pattern.len()).any(|w| {
        w.iter().zip(pattern).all(|(&c, &p)| match p {
            b'd' => c.is_ascii_digit(),
            p => c == p,
        })
    })
}

/// The running request of `pool` whose URI contains `needle`, from `/status`.
fn running_duration_us(port: u16, pool: &str, needle: &str) -> Option<u64> {
    let (code, body) = get(port, "/status").ok()?;
    if code != 200 {
        return None;
    }
    let doc: serde_json::Value = serde_json::from_str(&body).ok()?;
    doc["pools"]
        .as_array()?
        .iter()
        .find(|p| p["pool"] == pool)?["processes"]
        .as_array()?
        .iter()
        .find(|w| {
            w["state"] == "Running"
                && w["request uri"]
                    .as_str()
                    .is_some_and(|u| u.contains(needle))
        })?["request duration"]
        .as_u64()
}

#[test]
fn admin_page_in_chromium() {
    let port = ok(free_port());
    let logs = ok(tempfile::tempdir());
    let fpm = ok(Fpm::builder(Kind::Rfpm)
        .global(format!("admin.listen = 127.0.0.1:{port}"))
        .pool_line("request_slowlog_timeout = 1")
        .pool_line(format!(
            "slowlog = {}",
            logs.path().join("slow.log").display()
        ))
        .pool("api", &["pm = static", "pm.max_children = 1"])
        .start());
    assert!(
        wait_until(DEADLINE, || get(port, "/health")
            .is_ok_and(|(c, _)| c == 200)),
        "the admin listener does not answer\n{}",
        fpm.log()
    );

    // One request of pool www runs past request_slowlog_timeout while the page loads.
    // Its query string is the client's: markup and a quote that must stay text.
    let started = logs.path().join("started");
    let hostile = "<script>rfpm_xss(\"q\")</script>";
    // 15 s: longer than Chromium needs to start twice on a loaded machine.
    let query = format!("secs=15&started={}&x={hostile}", started.display());
    std::thread::scope(|scope| {
        let running = scope.spawn(|| {
            let mut client = integration::connect(&fpm.fcgi_addr())?;
            client
                .set_timeout(Some(Duration::from_secs(30)))
                .map_err(|e| integration::HarnessError::Other(e.to_string()))?;
            integration::send_on(
                &mut client,
                &fpm.docroot(),
                &Req::get("slices.php").query(&query),
            )
        });
        assert!(
            wait_for_file(&started, DEADLINE),
            "the request did not start\n{}",
            fpm.log()
        );
        assert!(
            wait_until(DEADLINE, || {
                running_duration_us(port, "www", "rfpm_xss").is_some_and(|us| us >= 1_100_000)
            }),
            "/status never showed the request running for over a second: {:?}",
            get(port, "/status")
        );

        let (code, page) = ok(get(port, "/"));
        assert_eq!(code, 200);
        assert!(page.contains("<title>rfpm status</title>"), "{page}");

        let url = format!("http://127.0.0.1:{port}/?refresh=0");
        let profile = logs.path().join("profile");
        let dom = chromium(&profile, &["--dump-dom"], &url);
        let html = String::from_utf8_lossy(&dom.stdout);
        assert!(
            html.contains("data-loaded=\"1\""),
            "the page did not load /status:\n{html}\n{}",
            String::from_utf8_lossy(&dom.stderr)
        );
        // Both pools.
        for pool in ["www", "api"] {
            assert!(html.contains(&format!("data-pool=\"{pool}\"")), "{html}");
        }
        // The URI as text: escaped by the serializer, never a script element.
        assert!(
            html.contains("&lt;script&gt;rfpm_xss(\"q\")&lt;/script&gt;"),
            "{html}"
        );
        assert!(!html.contains("<script>rfpm_xss"), "{html}");
        // Among the slow requests (over request_slowlog_timeout = 1 s).
        let slow_at = html
            .find("class=\"list slow-requests\"")
            .unwrap_or_else(|| panic!("no slow request shown:\n{html}"));
        assert!(html[slow_at..].contains("rfpm_xss"), "{html}");
        // Its duration, in seconds; the others' in ms or s.
        let durations = cells(&html, "num dur");
        assert!(
            durations.iter().any(|d| d
                .strip_suffix(" s")
                .and_then(|n| n.parse::<f64>().ok())
                .is_some_and(|n| n >= 1.0)),
            "no duration in seconds: {durations:?}"
        );
        assert!(
            durations
                .iter()
                .all(|d| d.ends_with(" s") || d.ends_with(" ms")),
            "{durations:?}"
        );
        assert!(has_iso_date(&html), "no ISO date:\n{html}");
        assert!(
            cells(&html, "num")
                .iter()
                .any(|c| c.ends_with(" MiB") && c.trim_end_matches(" MiB").parse::<f64>().is_ok()),
            "no memory in MiB:\n{html}"
        );
        assert!(html.contains("restarts by reason"), "{html}");

        let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("admin-page.png");
        let _ = std::fs::remove_file(&shot);
        let out = chromium(
            &profile,
            &[
                &format!("--screenshot={}", shot.display()),
                "--window-size=1400,1100",
            ],
            &url,
        );
        assert!(
            wait_for_file(&shot, DEADLINE),
            "no screenshot: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("admin page screenshot: {}", shot.display());

        let resp = running.join().expect("the request thread");
        let resp = ok(resp);
        assert!(
            String::from_utf8_lossy(resp.body()).contains("done"),
            "{resp:?}"
        );
    });
}
