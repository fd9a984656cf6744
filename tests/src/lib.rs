//! Integration-test harness: starts real FPM binaries (rfpm or php-fpm8.x) with the same
//! configuration in a temp dir and talks real FastCGI to them (through `fcgi::client`), or puts
//! a real nginx in front of them.
//!
//! Every test is written once and instantiated for both kinds with [`both!`]:
//!
//! ```text
//! integration::both!(hello_world, |kind| {
//!     let fpm = integration::Fpm::builder(kind).start().expect("start");
//!     let resp = fpm.request("hello.php", &[]).expect("request");
//!     assert_eq!(resp.body(), b"Hello, world!\n");
//! });
//! ```
//!
//! which produces the tests `hello_world::rfpm` and `hello_world::phpfpm`
//! (`cargo test -p integration -- phpfpm` runs only the php-fpm variants). The reference
//! is the php-fpm of the PHP rfpm was built for ([`php_fpm_bin`]).
#![forbid(unsafe_code)]

mod client;
mod fpm;
mod nginx;
mod proc;
mod util;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

pub mod helpers;

pub use client::{connect, nginx_params, send_on, Req};
pub use fpm::{Fpm, FpmBuilder};
pub use nginx::{HttpResponse, Nginx};
pub use proc::{children_of, fd_links, process_alive, process_title, send_signal};
pub use util::{chromium, free_port, http_get, md5_hex, wait_for_file, wait_until};

/// Re-export so tests only depend on this crate.
pub use fcgi;

/// How long start-up, log lines and files are waited for before a test gives up.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Which FPM binary a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// This project's binary.
    Rfpm,
    /// Debian's php-fpm of the same PHP version ([`php_fpm_bin`]), the reference.
    PhpFpm,
}

/// The PHP version rfpm was built for, in full (`8.4.28`): the first line of `rfpm -v`
/// (`PHP 8.4.28 (fpm-fcgi) …`, php-fpm's), so the tests follow the binary under test.
pub fn php_version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let bin = rfpm_bin();
        let out = std::process::Command::new(&bin)
            .arg("-v")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{}: {e} (build rfpm first)", bin.display()));
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .next()
            .and_then(|l| l.strip_prefix("PHP "))
            .and_then(|l| l.split(' ').next())
            .filter(|v| v.split('.').count() >= 2)
            .unwrap_or_else(|| panic!("{} -v: no PHP version in {text:?}", bin.display()))
            .to_string()
    })
}

/// `major.minor` of [`php_version`] (`8.4`): what Debian's names carry
/// (`php-fpm8.4`, `/etc/php/8.4`, `libphp8.4.so`).
pub fn php_mm() -> &'static str {
    static MM: OnceLock<String> = OnceLock::new();
    MM.get_or_init(|| {
        let v = php_version();
        v.split('.').take(2).collect::<Vec<_>>().join(".")
    })
}

/// Is the PHP rfpm was built for at least `major.minor`? (For the tests of what php-fpm
/// changed between versions, as `rfpm_core::compat` records it.)
pub fn php_at_least(major: u32, minor: u32) -> bool {
    let mut it = php_mm().split('.').map(|n| n.parse::<u32>().unwrap_or(0));
    let v = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    v >= (major, minor)
}

/// The reference FPM: `$RFPM_REFERENCE_FPM`, else Debian's `/usr/sbin/php-fpm{v}` of
/// the PHP version rfpm was built for.
pub fn php_fpm_bin() -> PathBuf {
    match std::env::var_os("RFPM_REFERENCE_FPM") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(format!("/usr/sbin/php-fpm{}", php_mm())),
    }
}

impl Kind {
    /// Short name, as used in test names.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Rfpm => "rfpm",
            Kind::PhpFpm => "phpfpm",
        }
    }

    /// The binary to start for this kind.
    ///
    /// rfpm: `$RFPM_BIN` if set, else `<workspace>/target/debug/rfpm`, else
    /// `<workspace>/target/release/rfpm` (when only that one exists).
    pub fn binary(self) -> PathBuf {
        match self {
            Kind::PhpFpm => php_fpm_bin(),
            Kind::Rfpm => rfpm_bin(),
        }
    }
}

/// The rfpm binary under test (see [`Kind::binary`]).
pub fn rfpm_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("RFPM_BIN") {
        if !p.is_empty() {
            return PathBuf::from(p);
        }
    }
    let debug = workspace_dir().join("target/debug/rfpm");
    let release = workspace_dir().join("target/release/rfpm");
    if !debug.exists() && release.exists() {
        release
    } else {
        debug
    }
}

/// The workspace root (parent of this crate's directory).
pub fn workspace_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// `tests/fixtures`: the PHP scripts the tests request (used in place, as document root).
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Everything that can go wrong in the harness itself (not in the code under test).
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("binary {0} does not exist (build rfpm with `cargo build -p rfpm`, or set RFPM_BIN)")]
    MissingBinary(PathBuf),
    #[error("timed out after {deadline:?} waiting for {what}\n--- log ---\n{log}")]
    Timeout {
        what: String,
        deadline: Duration,
        log: String,
    },
    #[error("process exited ({status}) while waiting for {what}\n--- log ---\n{log}")]
    Exited {
        what: String,
        status: String,
        log: String,
    },
    #[error("FastCGI client: {0}")]
    Client(String),
    #[error("{0}")]
    Other(String),
}

impl HarnessError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        HarnessError::Io {
            what: what.into(),
            source,
        }
    }
}

/// Writes a test body once and instantiates it for both kinds:
/// `both!(name, |kind| { ... })` gives `name::rfpm` and `name::phpfpm`.
#[macro_export]
macro_rules! both {
    ($(#[$meta:meta])* $name:ident, |$kind:ident| $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn body($kind: $crate::Kind) $body

            #[test]
            fn rfpm() {
                body($crate::Kind::Rfpm)
            }

            #[test]
            fn phpfpm() {
                body($crate::Kind::PhpFpm)
            }
        }
    };
}
