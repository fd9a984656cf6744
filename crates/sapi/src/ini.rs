//! INI entries: pool and per-request values (`php_value`, `PHP_VALUE`), and the values
//! of FPM's own entries (`cgi.*`, `fastcgi.*`).

use crate::shim;
use crate::{callbacks::guard, cstr_opt};
use php_sys as sys;
use std::ffi::{c_char, c_void, CString};
use std::ptr;

/// Sets an INI entry for the rest of this worker's life (pool `php_value` and
/// `php_admin_value`, reference §7.9); `admin` also locks it. `false` when PHP does not
/// know the entry or refuses the value.
/// Name and value are bytes: PHP INI values are byte strings (a Latin-1 path stays one).
pub fn set_ini(name: &[u8], value: &[u8], admin: bool) -> bool {
    let Ok(v) = CString::new(value) else {
        return false;
    };
    // SAFETY: on PHP's thread, outside PHP; `name` is (pointer, length) and `v` is
    // NUL-terminated with `value.len()` bytes, both ours and alive for the call; PHP
    // copies what it keeps (a persistent zend_string of the value).
    unsafe {
        shim::rfpm_shim_ini_set_master(
            name.as_ptr().cast::<c_char>(),
            name.len(),
            v.as_ptr(),
            value.len(),
            admin,
        )
    }
}

/// `PHP_VALUE` / `PHP_ADMIN_VALUE` of a request (reference §7.8): `value` plus a newline
/// through PHP's INI parser; every `name=value` entry changes the worker's master value
/// (it persists for the worker's later requests), `admin` also locks it. Each problem is
/// handed to `on_error` with php-fpm's wording; a syntax error (printed by PHP on the
/// worker's stderr) ends the parse.
pub fn apply_request_ini(value: &[u8], admin: bool, on_error: &mut dyn FnMut(String)) {
    let mut text = Vec::with_capacity(value.len() + 2);
    text.extend(value.iter().copied().take_while(|&b| b != 0));
    text.push(b'\n');
    let Ok(text) = CString::new(text) else {
        return;
    };
    let mut state = IniApply { admin, on_error };
    // SAFETY: `text` is NUL-terminated and outlives the call; the callback gets `state`
    // back as its context, only during the call, and is its only user meanwhile.
    unsafe {
        shim::rfpm_shim_parse_ini_string(
            text.as_ptr(),
            Some(cb_request_ini_entry),
            ptr::from_mut(&mut state).cast::<c_void>(),
        );
    }
}

struct IniApply<'a> {
    admin: bool,
    on_error: &'a mut dyn FnMut(String),
}

/// One entry of the parsed `PHP_VALUE`, from `rfpm_shim_parse_ini_string`.
///
/// # Safety
/// `ctx` is the `IniApply` given to the parse; `key` is NULL or `key_len` readable
/// bytes, `value` NULL or a NUL-terminated string of `value_len` bytes, all alive for
/// the call.
unsafe extern "C" fn cb_request_ini_entry(
    ctx: *mut c_void,
    classic: bool,
    key: *const c_char,
    key_len: usize,
    value: *const c_char,
    value_len: usize,
    has_value: bool,
) {
    guard(|| {
        const PREFIX: &str = "Passing INI directive through FastCGI: ";
        // SAFETY: `ctx` is `apply_request_ini`'s `state`, alive and otherwise untouched
        // while the parse runs (the caller's promise): the only reference for this call.
        let st = unsafe { &mut *ctx.cast::<IniApply<'_>>() };
        if !classic {
            (st.on_error)(format!("{PREFIX}only classic entries are allowed"));
            return;
        }
        let key = if key.is_null() {
            &[][..]
        } else {
            // SAFETY: PHP's parser owns the key, `key_len` readable bytes alive for the
            // call (the caller's promise); the slice does not outlive it.
            unsafe { std::slice::from_raw_parts(key.cast::<u8>(), key_len) }
        };
        let shown = rfpm_core::shown::Shown(key);
        if key.is_empty() {
            (st.on_error)(format!("{PREFIX}empty key"));
            return;
        }
        if !has_value || value.is_null() {
            (st.on_error)(format!("{PREFIX}empty value for key '{shown}'"));
            return;
        }
        // SAFETY: key and value are PHP's parser's, alive for the call (above); PHP
        // copies what it keeps.
        let ok = unsafe {
            shim::rfpm_shim_ini_set_master(
                key.as_ptr().cast::<c_char>(),
                key.len(),
                value,
                value_len,
                st.admin,
            )
        };
        if !ok {
            (st.on_error)(format!("{PREFIX}unable to set '{shown}'"));
        }
    });
}

/// Values of our INI entries that the worker's path logic needs.
#[derive(Debug, Clone, Default)]
pub struct FpmIni {
    pub fix_pathinfo: bool,
    pub discard_path: bool,
    pub fastcgi_logging: bool,
    pub error_header: Option<String>,
}

/// The current values of `cgi.fix_pathinfo`, `cgi.discard_path`, `fastcgi.logging`,
/// `fastcgi.error_header`.
#[must_use]
pub fn fpm_ini() -> FpmIni {
    // SAFETY: our INI struct is plain data that only PHP's INI handlers write, on this
    // thread and never while we read it; its strings are NULL or NUL-terminated and
    // owned by PHP's INI storage, copied here before anything can change them.
    unsafe {
        let ini = &*ptr::addr_of!(shim::rfpm_shim_ini);
        FpmIni {
            fix_pathinfo: ini.fix_pathinfo,
            discard_path: ini.discard_path,
            fastcgi_logging: ini.fastcgi_logging,
            error_header: cstr_opt(ini.error_header).map(|s| s.to_string_lossy().into_owned()),
        }
    }
}

/// `fastcgi.logging`: whether worker messages also go to FastCGI stderr (read at each
/// message, as a request's `PHP_VALUE` may change it).
#[must_use]
pub fn fastcgi_logging() -> bool {
    // SAFETY: a plain read of our INI struct, which only PHP's INI handlers write, on
    // this thread and never while we read it.
    unsafe { (*ptr::addr_of!(shim::rfpm_shim_ini)).fastcgi_logging }
}

/// The value of the INI entry `name` (php.ini's `doc_root`, ...), `None` when PHP does
/// not know the entry or it has no value.
#[must_use]
pub fn ini_string(name: &str) -> Option<String> {
    let cname = CString::new(name).ok()?;
    // SAFETY: `cname` is NUL-terminated and `exists` ours, both alive for the call;
    // the result is NULL or a NUL-terminated string in PHP's INI storage, copied into a
    // String before anything can change it.
    unsafe {
        let mut exists = false;
        let p = sys::zend_ini_string_ex(cname.as_ptr(), name.len(), 0, &raw mut exists);
        if !exists {
            return None;
        }
        cstr_opt(p).map(|s| s.to_string_lossy().into_owned())
    }
}
