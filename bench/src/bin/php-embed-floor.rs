//! The in-process floor of libphp8.2, beside `php-cgi8.2 -T`: one script run N times in
//! this process through rfpm's SAPI and Debian's embed library (the PHP rfpm runs), no
//! FastCGI, no worker. Each run is a whole PHP request (start-up, script, shutdown), as
//! with `php-cgi8.2 -T`. The two side by side show what the library costs against
//! Debian's executables for the same PHP work (bench/RESULTS.md).
//!
//! ```text
//! php-embed-floor [-n] [-q] -T COUNT [-d name=value]... SCRIPT
//! ```
//!
//! Prints every response body to stdout (headers left out, like `php-cgi -q`) and
//! `Elapsed time: <seconds> sec` to stderr. Exit status 1 when a request does not end
//! with status 200 or when PHP does not start.
#![forbid(unsafe_code)]

use std::ffi::{CStr, CString};
use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

/// The request's variables: what nginx sends for a plain GET of the script.
struct Vars(Vec<(CString, CString)>);

impl sapi::Vars for Vars {
    fn each(&self, f: &mut dyn FnMut(&CStr, &[u8])) {
        for (name, value) in self.0.iter().rev() {
            f(name, value.to_bytes());
        }
    }

    fn get(&self, name: &[u8]) -> Option<&[u8]> {
        self.get_cstr(name).map(CStr::to_bytes)
    }

    fn get_cstr(&self, name: &[u8]) -> Option<&CStr> {
        self.0
            .iter()
            .find(|(n, _)| n.to_bytes() == name)
            .map(|(_, v)| v.as_c_str())
    }
}

/// Collects each response; keeps the bodies.
#[derive(Default)]
struct Sink {
    response: Vec<u8>,
    bodies: Vec<u8>,
    log: Vec<u8>,
}

impl Sink {
    /// Ends a response: its body (after the header block) goes to the output.
    fn take_body(&mut self) {
        let body = match self.response.windows(4).position(|w| w == b"\r\n\r\n") {
            Some(i) => &self.response[i + 4..],
            None => &self.response[..],
        };
        self.bodies.extend_from_slice(body);
        self.response.clear();
    }
}

impl sapi::Conn for Sink {
    fn write(&mut self, data: &[u8]) -> bool {
        self.response.extend_from_slice(data);
        true
    }

    fn flush(&mut self) -> bool {
        true
    }

    fn read_body(&mut self, _buf: &mut [u8]) -> Result<usize, String> {
        Ok(0)
    }

    fn finish(&mut self) -> bool {
        true
    }

    fn is_open(&self) -> bool {
        true
    }

    fn log(&mut self, _level: sapi::Level, msg: &[u8]) {
        self.log.extend_from_slice(msg);
        self.log.push(b'\n');
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: php-embed-floor [-n] [-q] -T COUNT [-d name=value]... SCRIPT");
    ExitCode::from(2)
}

fn cstring(s: &str) -> Option<CString> {
    CString::new(s).ok()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut count = 0u64;
    let mut defines = Vec::new();
    let mut script = None;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "-T" | "-d" if i + 1 >= args.len() => return usage(),
            "-T" => {
                let Ok(n) = args[i + 1].parse() else {
                    return usage();
                };
                count = n;
                i += 2;
            }
            "-d" => {
                defines.push(args[i + 1].clone());
                i += 2;
            }
            // php-cgi's: no php.ini, no headers. This runner never reads a php.ini and
            // never prints headers.
            "-n" | "-q" => i += 1,
            s if !s.starts_with('-') && script.is_none() => {
                script = Some(s.to_string());
                i += 1;
            }
            _ => return usage(),
        }
    }
    let (Some(script), true) = (script, count > 0) else {
        return usage();
    };
    let opts = sapi::EngineOptions {
        ini_path: None,
        no_ini: true,
        defines: defines.into_iter().map(String::into_bytes).collect(),
        default_ini_dir: String::new(),
        executable: None,
    };
    if let Err(e) = sapi::startup(&opts) {
        eprintln!("php-embed-floor: {e}");
        return ExitCode::FAILURE;
    }
    let dir = std::path::Path::new(&script)
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let name = std::path::Path::new(&script)
        .file_name()
        .map(|n| format!("/{}", n.to_string_lossy()))
        .unwrap_or_default();
    let (Some(script_c), Some(name_c)) = (cstring(&script), cstring(&name)) else {
        return usage();
    };
    let mut vars = Vec::new();
    for (n, v) in [
        ("SCRIPT_FILENAME", script.as_str()),
        ("SCRIPT_NAME", name.as_str()),
        ("REQUEST_URI", name.as_str()),
        ("DOCUMENT_URI", name.as_str()),
        ("DOCUMENT_ROOT", dir.as_str()),
        ("QUERY_STRING", ""),
        ("REQUEST_METHOD", "GET"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("GATEWAY_INTERFACE", "CGI/1.1"),
        ("SERVER_SOFTWARE", "php-embed-floor"),
        ("REMOTE_ADDR", "127.0.0.1"),
        ("SERVER_NAME", "localhost"),
        ("SERVER_PORT", "80"),
    ] {
        let (Some(n), Some(v)) = (cstring(n), cstring(v)) else {
            return usage();
        };
        vars.push((n, v));
    }
    let vars = Vars(vars);
    let req = sapi::Request {
        vars: &vars,
        method: Some(c"GET"),
        query: c"",
        content_type: c"",
        content_length: 0,
        request_uri: Some(&name_c),
        path_translated: Some(&script_c),
        auth: None,
        cookie: None,
        php_self: &name_c,
        action: sapi::Action::Execute,
    };
    let mut sink = Sink::default();
    let t0 = Instant::now();
    for n in 0..count {
        let outcome = sapi::run(&mut sink, &req);
        sink.take_body();
        if outcome.status != 200 || outcome.startup_failed {
            eprintln!(
                "php-embed-floor: request {} ended with status {}: {}",
                n + 1,
                outcome.status,
                String::from_utf8_lossy(&sink.log)
            );
            return ExitCode::FAILURE;
        }
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let out = std::io::stdout().write_all(&sink.bodies);
    eprintln!("\nElapsed time: {elapsed:.6} sec");
    sapi::shutdown();
    if out.is_err() {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
