//! rfpm's benchmarks: a FastCGI load generator that validates every response
//! ([`load`]), the PHP scripts and their expected answers ([`scripts`]), /proc memory
//! readings ([`mem`]), statistics ([`stats`]) and wrk output parsing ([`wrk`]).
//! The driver (`rfpm-bench`) runs rfpm and php-fpm8.2 side by side; nothing here is a test
//! of speed — the unit tests check the arithmetic and the parsers only.
#![forbid(unsafe_code)]

pub mod crc32;
pub mod load;
pub mod mem;
pub mod scripts;
pub mod stats;
pub mod wrk;

/// Prints a bench binary's Markdown table and, with `--out FILE`, writes it there too
/// (the `make bench-*` targets keep it next to the hand-written analysis).
pub fn print_and_save(text: &str, out: Option<&std::path::Path>) -> std::process::ExitCode {
    print!("{text}");
    if let Some(p) = out {
        if let Err(e) = std::fs::write(p, text) {
            eprintln!("{}: {e}", p.display());
            return std::process::ExitCode::FAILURE;
        }
    }
    std::process::ExitCode::SUCCESS
}
