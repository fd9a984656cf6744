//! The `fpm-fcgi` SAPI: PHP's engine started once in the master, and one PHP request
//! per call of [`run`] in a worker.
//!
//! All PHP state is process-global (NTS build): this module is used from one thread per
//! process only. Every call into PHP that can bail out (longjmp) goes through the C
//! shim's `zend_try` wrappers, so no Rust frame is ever jumped over; every callback PHP
//! makes into Rust is wrapped in [`callbacks::guard`], so no panic crosses into C.
#![deny(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_lossless
)]

mod callbacks;
mod engine;
mod headers;
mod ini;
mod request;
mod shim;
pub mod stack;
mod vars;
pub mod worker;

pub use callbacks::status_reason;
pub use engine::{
    check_library, constant, hide_pcntl, php_version, print_info, print_modules, shutdown, startup,
    version_text, EngineError, EngineOptions,
};
pub use ini::{apply_request_ini, fastcgi_logging, fpm_ini, ini_string, set_ini, FpmIni};
pub use request::{path_exists, run, Action, Conn, Outcome, Request, RequestEnd, StatusValue};
pub use rfpm_core::Level;
pub use vars::Vars;

/// The PHP version rfpm is built for, `major.minor` (`8.4`), from `php-config`.
pub const PHP_MM: &str = php_sys::PHP_MM;
/// The `PHP_VERSION_ID` rfpm is built for (`80428`), from the PHP headers.
pub const PHP_VERSION_ID: u32 = php_sys::PHP_VERSION_ID;
/// php-fpm's behaviour of that PHP version (see [`rfpm_core::compat`]).
pub const COMPAT: rfpm_core::compat::Compat =
    rfpm_core::compat::Compat::for_version_id(PHP_VERSION_ID);

/// Where Debian's php-fpm of this PHP version reads php.ini and scans conf.d:
/// `/etc/php/8.4/fpm`.
#[must_use]
pub fn default_ini_dir() -> String {
    format!("/etc/php/{PHP_MM}/fpm")
}

/// How PHP's own messages (`log_message`) start when they reach [`Conn::log`].
pub const PHP_MESSAGE_PREFIX: &[u8] = b"PHP message: ";

use std::ffi::{c_char, CStr};

/// A C string PHP owns, or `None` for NULL.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that outlives `'a`.
pub(crate) unsafe fn cstr_opt<'a>(p: *const c_char) -> Option<&'a CStr> {
    if p.is_null() {
        None
    } else {
        // SAFETY: not NULL, so a NUL-terminated string alive for `'a` (the caller's
        // promise).
        Some(unsafe { CStr::from_ptr(p) })
    }
}
