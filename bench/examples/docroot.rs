//! Writes the bench's document root (every scenario script and the framework's class
//! files) into a directory, for profiling one FPM by hand (bench/RESULTS.md):
//!
//! ```text
//! cargo run --release -p bench --example docroot -- /tmp/root
//! ```
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1) else {
        eprintln!("usage: docroot DIR");
        return ExitCode::from(2);
    };
    let dir = std::path::PathBuf::from(dir);
    match bench::scripts::write_docroot(&dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("docroot: {}: {e}", dir.display());
            ExitCode::FAILURE
        }
    }
}
