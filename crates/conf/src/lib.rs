//! The php-fpm.conf dialect, exactly as php-fpm 8.2 reads it.
//!
//! * [`load`] reads the main file and its includes line by line through an
//!   emulation of PHP's INI scanner ([`ini`]) and fills a typed [`Config`].
//! * [`validate`] performs php-fpm's post-load processing (§2.10 of the
//!   reference) in order, with php-fpm's messages, using a [`Sys`] for every
//!   effect (directory checks, opening log files).
//! * [`test_identities`] is the extra user/group resolution done by `-t`.
//! * [`directives`] is the table of every directive (name, section, value type,
//!   default, own validation, `-tt` order) from which parsing, defaults, checks,
//!   [`dump`] (the `-tt` lines) and [`render`] follow.
//!
//! Every message is a [`Diag`]: the text of one php-fpm log line without the
//! timestamp and level prefix; the caller prints them.
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

pub mod access;
pub mod bytes;
pub mod constants;
pub mod directives;
pub mod ini;
mod load;
pub mod model;
pub mod validate;

use std::path::PathBuf;

pub use bytes::Bytes;
pub use constants::default_constants;
pub use directives::{dump, dump_bytes, render, GlobalConf, PoolConf};
pub use load::{load, load_str};
pub use model::{Config, Count, KeyValue, Pm, Secs};
/// The one log level of rfpm (`log_level`, and the level of every [`Diag`]).
pub use rfpm_core::Level;
pub use validate::{
    admin_socket_permissions, global_priority_notice, resolve_identity, socket_permissions,
    test_identities, validate, AcceptAllSys, Identity, LogFile, SocketPerms, Sys, SysError,
    UserInfo,
};

/// One php-fpm log line without timestamp and level prefix, or one line PHP itself
/// prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diag {
    /// `None`: not a php-fpm log line but PHP's own, printed verbatim on stderr
    /// (`PHP:  syntax error, … in Unknown on line N`): no timestamp, no level, not
    /// written to the error log and not subject to `log_level`.
    pub level: Option<Level>,
    /// The line as text; bytes that are not UTF-8 (a `-tt` line showing a Latin-1
    /// path) are in it through [`rfpm_core::shown::Shown`]: [`Diag::as_bytes`] gives
    /// them back, as the logger does.
    pub text: String,
}

impl Diag {
    pub fn new(level: Level, text: impl Into<String>) -> Self {
        Diag {
            level: Some(level),
            text: text.into(),
        }
    }
    /// A line of these exact bytes.
    pub fn from_bytes(level: Level, line: Vec<u8>) -> Self {
        match String::from_utf8(line) {
            Ok(text) => Diag::new(level, text),
            Err(e) => Diag::new(level, rfpm_core::shown::Shown(e.as_bytes()).to_string()),
        }
    }
    /// A line PHP prints itself (see [`Diag::level`]).
    pub fn raw(text: impl Into<String>) -> Self {
        Diag {
            level: None,
            text: text.into(),
        }
    }
    /// The line's exact bytes.
    pub fn as_bytes(&self) -> std::borrow::Cow<'_, [u8]> {
        rfpm_core::shown::unshow(&self.text)
    }
    pub fn error(text: impl Into<String>) -> Self {
        Diag::new(Level::Error, text)
    }
    pub fn notice(text: impl Into<String>) -> Self {
        Diag::new(Level::Notice, text)
    }
    pub fn warning(text: impl Into<String>) -> Self {
        Diag::new(Level::Warning, text)
    }
    pub fn alert(text: impl Into<String>) -> Self {
        Diag::new(Level::Alert, text)
    }
}

impl std::fmt::Display for Diag {
    /// `LEVEL: text` (or the raw text of PHP's own line).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.level {
            Some(level) => write!(f, "{}: {}", level.as_str(), self.text),
            None => f.write_str(&self.text),
        }
    }
}

/// A name → value lookup (PHP constants).
pub type Lookup = Box<dyn Fn(&str) -> Option<String>>;

/// The master's environment by name: a value's bytes as the environment holds them
/// (they need not be UTF-8).
pub type EnvLookup = Box<dyn Fn(&[u8]) -> Option<Vec<u8>>>;

/// Command-line and environment inputs of the configuration stage.
pub struct LoadOptions {
    /// `-p`
    pub prefix: Option<PathBuf>,
    /// Install prefix (`/usr` on Debian) for includes, pool prefixes and pool paths.
    pub install_prefix: PathBuf,
    /// `localstatedir` (`/var` on Debian) for `pid` and `error_log`.
    pub localstatedir: PathBuf,
    /// `-g`
    pub pid_override: Option<Vec<u8>>,
    /// `-D` (Some(true)) / `-F` (Some(false)).
    pub daemonize_override: Option<bool>,
    /// Master environment: `${NAME}` in values, `env[X] = $Y`, `WATCHDOG_USEC`.
    pub env: EnvLookup,
    /// PHP constants for bare words (`E_ALL`); see [`default_constants`].
    pub constant: Lookup,
    /// Effective uid is 0.
    pub is_root: bool,
    /// `-R`
    pub allow_root: bool,
    /// php-fpm's behaviour of the PHP version rfpm embeds (`-t`'s last line).
    pub compat: rfpm_core::compat::Compat,
}

impl Default for LoadOptions {
    /// Debian paths, the process environment, the built-in constant table, not root.
    fn default() -> Self {
        LoadOptions {
            prefix: None,
            install_prefix: PathBuf::from("/usr"),
            localstatedir: PathBuf::from("/var"),
            pid_override: None,
            daemonize_override: None,
            env: Box::new(|n| {
                use std::os::unix::ffi::{OsStrExt, OsStringExt};
                std::env::var_os(std::ffi::OsStr::from_bytes(n)).map(std::ffi::OsString::into_vec)
            }),
            constant: default_constants(),
            is_root: false,
            allow_root: false,
            // What the crate's tests recorded from php-fpm8.2 expect.
            compat: rfpm_core::compat::Compat::PHP82,
        }
    }
}

/// A configuration that loaded, with the non-fatal lines printed while loading.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub diags: Vec<Diag>,
}

/// Everything php-fpm prints before giving up, in order, ending with its own
/// failure lines (`failed to load configuration file '…'`, `failed to post
/// process the configuration`) but not `FPM initialization failed`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .diags.last().map(|d| d.text.as_str()).unwrap_or("configuration failed"))]
pub struct Failure {
    pub diags: Vec<Diag>,
}

impl Config {
    /// The effective log level (php-fpm uses NOTICE when `log_level` is unset).
    pub fn log_level(&self) -> Level {
        self.global.log_level.unwrap_or(Level::Notice)
    }
}

/// Is a line of this level printed under `log_level`? (PHP's own lines, level `None`,
/// always are.)
pub fn level_enabled(line: Option<Level>, log_level: Level) -> bool {
    line.is_none_or(|l| l >= log_level)
}

/// `-t`'s last line: `{what} test is successful` (`what`: `configuration file …` or
/// `the built-in default configuration`), with the empty line after it of php-fpm
/// before 8.4.
pub fn test_successful(what: &str, compat: &rfpm_core::compat::Compat) -> String {
    let end = if compat.test_successful_blank_line {
        "\n"
    } else {
        ""
    };
    format!("{what} test is successful{end}")
}

/// The whole `-t` (`full == false`) / `-tt` (`full == true`) sequence of
/// php-fpm: load, validate, identity checks, dump, result line. Returns every
/// line php-fpm prints (already filtered by `log_level` from the moment
/// php-fpm applies it), including the final `FPM initialization failed` on
/// failure, and the exit code (0 or 78).
pub fn config_test(
    path: &std::path::Path,
    opts: &LoadOptions,
    sys: &dyn Sys,
    full: bool,
) -> (Vec<Diag>, i32) {
    let mut out = Vec::new();
    let failed = |mut out: Vec<Diag>| {
        out.push(Diag::error("FPM initialization failed"));
        (out, 78)
    };
    let mut loaded = match load(path, opts) {
        Ok(l) => l,
        Err(f) => {
            out.extend(f.diags);
            return failed(out);
        }
    };
    out.append(&mut loaded.diags);
    let level = loaded.config.log_level();
    let keep = |d: &Diag| level_enabled(d.level, level);
    match validate(&mut loaded.config, sys, opts) {
        Ok(d) => out.extend(d.into_iter().filter(keep)),
        Err(f) => {
            out.extend(f.diags.into_iter().filter(keep));
            return failed(out);
        }
    }
    if let Err(f) = test_identities(&loaded.config, sys) {
        out.extend(f.diags.into_iter().filter(keep));
        return failed(out);
    }
    if full {
        out.extend(
            dump_bytes(&loaded.config)
                .into_iter()
                .map(|l| Diag::from_bytes(Level::Notice, l))
                .filter(keep),
        );
    }
    out.extend(
        [Diag::notice(test_successful(
            &format!("configuration file {}", crate::load::shown_path(path)),
            &opts.compat,
        ))]
        .into_iter()
        .filter(keep),
    );
    (out, 0)
}
