//! A real nginx (Debian's `/usr/sbin/nginx`) in front of an FPM, driven by `curl`.

use std::fs::File;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::fpm::read_lossy;
use crate::proc::send_signal;
use crate::{free_port, wait_until, HarnessError, DEADLINE};

/// Path of Debian's nginx.
pub const NGINX_BIN: &str = "/usr/sbin/nginx";

/// One nginx process (`master_process off`) with its own config and logs in a temp dir.
#[derive(Debug)]
pub struct Nginx {
    child: Option<Child>,
    port: u16,
    // Declared last: removed after nginx is gone.
    dir: tempfile::TempDir,
}

/// What `curl` got back.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    /// Header lines after the status line, as (name, value).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Nginx {
    /// Starts nginx on a free 127.0.0.1 port with `root <docroot>` and every `*.php` passed to
    /// `unix:<fpm_sock>`; returns once it accepts connections.
    pub fn start(fpm_sock: &str, docroot: &Path) -> Result<Nginx, HarnessError> {
        Nginx::start_with(fpm_sock, docroot, "")
    }

    /// [`Nginx::start`] with `extra` lines inside the `server` block, before the PHP
    /// location (e.g. another `location`; `{sock}` in it is replaced by `fpm_sock`).
    pub fn start_with(fpm_sock: &str, docroot: &Path, extra: &str) -> Result<Nginx, HarnessError> {
        Nginx::start_conf(fpm_sock, docroot, extra, false)
    }

    /// nginx with a `server` block of the caller's, made for the port it gets (it
    /// listens on every address: the block's `listen` must name that port).
    pub fn start_server(server: impl Fn(u16) -> String) -> Result<Nginx, HarnessError> {
        let dir = tempfile::Builder::new()
            .prefix("itest-nginx-")
            .tempdir()
            .map_err(|e| HarnessError::io("creating the nginx temp dir", e))?;
        let port = free_port()?;
        let r = dir.path().display().to_string();
        let text = format!(
            "daemon off;\nmaster_process off;\npid {r}/nginx.pid;\nerror_log {r}/error.log info;\n\
             events {{\n    worker_connections 64;\n}}\nhttp {{\n    access_log {r}/access.log;\n\
             client_body_temp_path {r}/client_body;\n    fastcgi_temp_path {r}/fastcgi_temp;\n\
             proxy_temp_path {r}/proxy_temp;\n    uwsgi_temp_path {r}/uwsgi_temp;\n\
             scgi_temp_path {r}/scgi_temp;\n{}\n}}\n",
            server(port)
        );
        Nginx::run(dir, port, &text)
    }

    /// [`Nginx::start`] with FastCGI keep-alive to the FPM, as production setups have it:
    /// an `upstream` with a `keepalive` connection cache and `fastcgi_keep_conn on`, so
    /// nginx sends request after request on the same FPM connection.
    pub fn start_keepalive(fpm_sock: &str, docroot: &Path) -> Result<Nginx, HarnessError> {
        Nginx::start_conf(fpm_sock, docroot, "", true)
    }

    fn start_conf(
        fpm_sock: &str,
        docroot: &Path,
        extra: &str,
        keepalive: bool,
    ) -> Result<Nginx, HarnessError> {
        let dir = tempfile::Builder::new()
            .prefix("itest-nginx-")
            .tempdir()
            .map_err(|e| HarnessError::io("creating the nginx temp dir", e))?;
        let root = dir.path();
        let port = free_port()?;
        let text = config_text(
            root,
            port,
            fpm_sock,
            docroot,
            &extra.replace("{sock}", fpm_sock),
            keepalive,
        );
        Nginx::run(dir, port, &text)
    }

    /// Starts nginx on `text` in `dir`, waits until it accepts on `port`.
    fn run(dir: tempfile::TempDir, port: u16, text: &str) -> Result<Nginx, HarnessError> {
        let root = dir.path();
        let conf = root.join("nginx.conf");
        std::fs::write(&conf, text)
            .map_err(|e| HarnessError::io(format!("writing {}", conf.display()), e))?;
        let stderr = File::create(root.join("stderr.log"))
            .map_err(|e| HarnessError::io("creating nginx stderr.log", e))?;
        let child = Command::new(NGINX_BIN)
            .arg("-p")
            .arg(root)
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(root.join("error.log"))
            .current_dir(root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| HarnessError::io(format!("starting {NGINX_BIN}"), e))?;
        let mut nginx = Nginx {
            child: Some(child),
            port,
            dir,
        };
        nginx.wait_accepting()?;
        Ok(nginx)
    }

    fn wait_accepting(&mut self) -> Result<(), HarnessError> {
        let addr = format!("127.0.0.1:{}", self.port);
        let start = Instant::now();
        loop {
            if TcpStream::connect(&addr).is_ok() {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(HarnessError::Exited {
                        what: format!("nginx to accept on {addr}"),
                        status: status.to_string(),
                        log: self.log(),
                    });
                }
            }
            if start.elapsed() >= DEADLINE {
                return Err(HarnessError::Timeout {
                    what: format!("nginx to accept on {addr}"),
                    deadline: DEADLINE,
                    log: self.log(),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// nginx's stderr and error log.
    pub fn log(&self) -> String {
        let root = self.dir.path();
        format!(
            "{}{}",
            read_lossy(&root.join("stderr.log")),
            read_lossy(&root.join("error.log"))
        )
    }

    /// The access log.
    pub fn access_log(&self) -> String {
        read_lossy(&self.dir.path().join("access.log"))
    }

    /// Runs `curl -sS -i <extra args> <url(path)>` and parses the answer.
    pub fn curl(&self, path: &str, extra: &[&str]) -> Result<HttpResponse, HarnessError> {
        let out = Command::new("curl")
            .args(["-sS", "-i", "--max-time", "10"])
            .args(extra)
            .arg(self.url(path))
            .stdin(Stdio::null())
            .output()
            .map_err(|e| HarnessError::io("running curl", e))?;
        if !out.status.success() {
            return Err(HarnessError::Other(format!(
                "curl {path} failed ({}): {}\n--- nginx log ---\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr),
                self.log()
            )));
        }
        parse_http(&out.stdout)
    }

    /// Graceful stop: SIGQUIT, then wait (with a deadline) for nginx to exit.
    pub fn stop(&mut self) -> Result<(), HarnessError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        send_signal(child.id(), libc::SIGQUIT)
            .map_err(|e| HarnessError::io("sending SIGQUIT to nginx", e))?;
        let exited = wait_until(DEADLINE, || matches!(child.try_wait(), Ok(Some(_))));
        if exited {
            Ok(())
        } else {
            let _ = child.kill();
            let _ = child.wait();
            Err(HarnessError::Timeout {
                what: "nginx to exit after SIGQUIT".into(),
                deadline: DEADLINE,
                log: self.log(),
            })
        }
    }

    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.stop();
        }
    }
}

fn config_text(
    root: &Path,
    port: u16,
    fpm_sock: &str,
    docroot: &Path,
    extra: &str,
    keepalive: bool,
) -> String {
    let r = root.display();
    let (upstream, pass, keep_conn) = if keepalive {
        (
            format!("    upstream fpm {{\n        server unix:{fpm_sock};\n        keepalive 4;\n    }}\n"),
            "fpm".to_string(),
            "            fastcgi_keep_conn on;\n",
        )
    } else {
        (String::new(), format!("unix:{fpm_sock}"), "")
    };
    format!(
        "daemon off;
master_process off;
pid {r}/nginx.pid;
error_log {r}/error.log info;
events {{
    worker_connections 64;
}}
http {{
    access_log {r}/access.log;
    client_body_temp_path {r}/client_body;
    fastcgi_temp_path {r}/fastcgi_temp;
    proxy_temp_path {r}/proxy_temp;
    uwsgi_temp_path {r}/uwsgi_temp;
    scgi_temp_path {r}/scgi_temp;
{upstream}    server {{
        listen 127.0.0.1:{port};
        server_name localhost;
        root {docroot};
{extra}
        location ~ \\.php$ {{
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
{keep_conn}            fastcgi_pass {pass};
        }}
    }}
}}
",
        docroot = docroot.display()
    )
}

/// Splits `curl -i` output into status, headers and body.
fn parse_http(raw: &[u8]) -> Result<HttpResponse, HarnessError> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| {
            HarnessError::Other(format!(
                "no end of headers in curl output: {:?}",
                String::from_utf8_lossy(raw)
            ))
        })?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| HarnessError::Other(format!("bad status line {status_line:?}")))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.to_string(), v.trim().to_string()))
        .collect();
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}
