//! fcgi-load: a FastCGI load generator that validates every response.
//!
//! fcgi-load --addr SOCK|HOST:PORT --script /abs/path.php [-c CONC] [-n COUNT] [-d SECS] [-k]
//!           [--method M] [--body-file F] [--content-type T]
//!           [--status CODE] (--expect BODY | --contains TEXT)
//!
//! Prints requests, errors, req/s, p50, p99 and the first error. Exit status 1 when any
//! response was wrong or nothing was answered.
#![forbid(unsafe_code)]

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use bench::load::{self, BodyCheck, Expect, Spec};
use bench::scripts;
use bench::stats::fmt_us;
use fcgi::client::Addr;

fn usage() -> ExitCode {
    eprintln!(
        "usage: fcgi-load --addr SOCK|HOST:PORT --script /abs/path.php [-c CONC] [-n COUNT] [-d SECS] [-k]\n\
         \x20                [--method M] [--body-file F] [--content-type T] [--status CODE]\n\
         \x20                (--expect BODY | --contains TEXT)"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut addr, mut script) = (None, None);
    let (mut conc, mut count, mut secs, mut keep) = (1usize, None, None, false);
    let (mut method, mut body, mut ctype) = ("GET".to_string(), Vec::new(), String::new());
    let (mut status, mut check) = (200u16, None);
    let mut i = 0;
    while i < args.len() {
        let flag = args[i].as_str();
        if flag == "-k" {
            keep = true;
            i += 1;
            continue;
        }
        let Some(val) = args.get(i + 1) else {
            return usage();
        };
        let ok = match flag {
            "--addr" => {
                addr = Some(Addr::parse(val));
                true
            }
            "--script" => {
                script = Some(val.clone());
                true
            }
            "-c" => val.parse().map(|v| conc = v).is_ok(),
            "-n" => val.parse().map(|v| count = Some(v)).is_ok(),
            "-d" => val
                .parse::<f64>()
                .map(|v| secs = Some(Duration::from_secs_f64(v.clamp(0.0, 120.0))))
                .is_ok(),
            "--method" => {
                method = val.clone();
                true
            }
            "--body-file" => match std::fs::read(val) {
                Ok(b) => {
                    body = b;
                    true
                }
                Err(e) => {
                    eprintln!("fcgi-load: {val}: {e}");
                    return ExitCode::from(2);
                }
            },
            "--content-type" => {
                ctype = val.clone();
                true
            }
            "--status" => val.parse().map(|v| status = v).is_ok(),
            "--expect" => {
                check = Some(BodyCheck::Exact(val.clone().into_bytes()));
                true
            }
            "--contains" => {
                check = Some(BodyCheck::Contains(val.clone().into_bytes()));
                true
            }
            _ => false,
        };
        if !ok {
            return usage();
        }
        i += 2;
    }
    let (Some(addr), Some(script), Some(check)) = (addr, script, check) else {
        return usage();
    };
    if count.is_none() && secs.is_none() {
        count = Some(1000);
    }
    let path = Path::new(&script);
    let (root, name) = match (path.parent(), path.file_name()) {
        (Some(r), Some(n)) => (r, n.to_string_lossy().into_owned()),
        _ => return usage(),
    };
    let spec = Spec {
        addr,
        concurrency: conc,
        count,
        duration: secs,
        keep_alive: keep,
        request: scripts::request(root, &name, &method, &ctype, body),
        expect: Expect {
            status,
            body: check,
        },
        timeout: Duration::from_secs(30),
    };
    let o = load::run(&spec);
    println!(
        "requests {} ok {} errors {} in {:.2}s: {:.0} req/s, p50 {}, p99 {}",
        o.ok + o.errors,
        o.ok,
        o.errors,
        o.elapsed.as_secs_f64(),
        o.rps(),
        fmt_us(f64::from(o.p(50.0))),
        fmt_us(f64::from(o.p(99.0)))
    );
    if let Some(e) = &o.first_error {
        println!("first error: {e}");
    }
    if o.errors > 0 || o.ok == 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
