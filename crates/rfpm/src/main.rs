//! rfpm: a FastCGI Process Manager for PHP, a drop-in replacement for php-fpm 8.2.
//!
//! `main` follows php-fpm's start-up order (reference §3.1): signals, PHP module
//! start-up, configuration, daemonisation, sockets, PID file, workers.
//!
//! The binary is an effect shell: decisions and formats live in `rfpm-core`, every
//! `unsafe` system call in `rfpm-sys`, PHP in `sapi`.
#![forbid(unsafe_code)]
// Numeric casts are conversions (`try_from`, `from`) or say why they are right.
#![cfg_attr(
    not(test),
    deny(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_possible_wrap,
        clippy::cast_lossless
    )
)]

#[macro_use]
mod log;
mod daemon;
mod error;
mod master;
mod plan;
mod pool;
mod request_cmd;
mod scoreboard;
mod startup;
mod worker;

use rfpm_core::{access, capture, cli, paths, pm, status, timeouts};
use rfpm_sys::{notify as systemd, signals, title};

use cli::{Parsed, EX_OK, EX_USAGE};
use std::io::Write;

fn main() {
    // The arguments' bytes: a path given on the command line need not be UTF-8, and a
    // reload re-executes exactly what was given.
    let argv: Vec<Vec<u8>> = std::env::args_os()
        .map(std::os::unix::ffi::OsStringExt::into_vec)
        .collect();
    let argv0 = argv.first().map_or_else(
        || "rfpm".to_string(),
        |a| String::from_utf8_lossy(a).into_owned(),
    );
    let code = real_main(&argv0, &argv);
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}

/// `argv`: the whole command line, argv\[0\] included (shown as `argv0`).
fn real_main(argv0: &str, argv: &[Vec<u8>]) -> i32 {
    // Before anything calls into PHP: on a libphp of another version (Debian's all name
    // themselves libphp.so) the first real call would crash.
    if let Err(e) = sapi::check_library() {
        eprintln!("{e}");
        return cli::EX_SOFTWARE;
    }
    match cli::parse(argv0, argv.get(1..).unwrap_or(&[])) {
        Parsed::Request(rest) => request_cmd::main(&rest),
        Parsed::Help => {
            print!("{}{}", cli::usage(argv0), cli::RFPM_USAGE);
            EX_OK
        }
        Parsed::UsageError(msg) => {
            if !msg.is_empty() {
                eprintln!("{msg}");
            }
            print!("{}", cli::usage(argv0));
            EX_USAGE
        }
        Parsed::Version(c) => exit_code(startup::start_engine(&c, argv0).map(|()| {
            // rfpm's own line first, for a person at a terminal (on stderr). Whoever
            // reads the output otherwise gets php-fpm's bytes and nothing else: scripts
            // take PHP's version from its first line, and php-src's tests compare all
            // of it, stderr included.
            if rfpm_sys::fd::isatty(rfpm_sys::fd::Stdio::Err.borrow()) {
                eprintln!(
                    "{}",
                    cli::version_line(env!("CARGO_PKG_VERSION"), env!("RFPM_GIT_DESCRIBE"))
                );
            }
            print!("{}", sapi::version_text());
            EX_OK
        })),
        Parsed::Modules(c) => exit_code(startup::start_engine(&c, argv0).map(|()| {
            sapi::print_modules();
            EX_OK
        })),
        Parsed::Run(c) => exit_code(startup::run(argv0, argv, &c)),
    }
}

/// The one place an error becomes log lines and an exit code. A daemon's launcher
/// hears of the failure after it was logged (the reporter is dropped last).
fn exit_code<E: Into<startup::Failure>>(r: Result<i32, E>) -> i32 {
    match r {
        Ok(code) => code,
        Err(f) => {
            let f = f.into();
            f.error.log();
            let code = f.error.exit_code();
            drop(f.reporter);
            code
        }
    }
}
