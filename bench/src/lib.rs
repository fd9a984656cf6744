//! rfpm's benchmarks: a FastCGI load generator that validates every response
//! ([`load`]), the PHP scripts and their expected answers ([`scripts`]), /proc memory
//! readings ([`mem`]), statistics ([`stats`]) and wrk output parsing ([`wrk`]).
//! The driver (`rfpm-bench`) runs rfpm and php-fpm (of the same PHP) side by side; nothing here is a test
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

/// The PHP version (`8.4`) an rfpm binary was built for: the first line of its `-v`
/// (`PHP 8.4.28 (fpm-fcgi) …`); 8.2 when it does not say.
pub fn php_mm_of(rfpm: &std::path::Path) -> String {
    std::process::Command::new(rfpm)
        .arg("-v")
        .stdin(std::process::Stdio::null())
        .output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            let v = text
                .lines()
                .next()?
                .strip_prefix("PHP ")?
                .split(' ')
                .next()?;
            let mm: Vec<&str> = v.split('.').take(2).collect();
            (mm.len() == 2).then(|| mm.join("."))
        })
        .unwrap_or_else(|| "8.2".to_string())
}

/// The reference FPM for an rfpm binary: Debian's php-fpm of the same PHP version.
pub fn reference_fpm(rfpm: &std::path::Path) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("/usr/sbin/php-fpm{}", php_mm_of(rfpm)))
}

/// The name a table shows for a binary (its file name).
pub fn bin_name(bin: &std::path::Path) -> String {
    bin.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| bin.display().to_string())
}
