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
pub fn set_ini(name: &str, value: &str, admin: bool) -> bool {
    let Ok(v) = CString::new(value) else {
        return false;
    };
    // SAFETY: valid pointers and lengths for the call; PHP copies what it keeps.
    unsafe {
        shim::rfpm_shim_ini_set_master(
            name.as_ptr() as *const c_char,
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
    // back as its context and only runs during the call.
    unsafe {
        shim::rfpm_shim_parse_ini_string(
            text.as_ptr(),
            Some(cb_request_ini_entry),
            &mut state as *mut IniApply<'_> as *mut c_void,
        );
    }
}

struct IniApply<'a> {
    admin: bool,
    on_error: &'a mut dyn FnMut(String),
}

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
        let st = &mut *(ctx as *mut IniApply<'_>);
        const PREFIX: &str = "Passing INI directive through FastCGI: ";
        if !classic {
            (st.on_error)(format!("{PREFIX}only classic entries are allowed"));
            return;
        }
        let key = if key.is_null() {
            &[][..]
        } else {
            std::slice::from_raw_parts(key as *const u8, key_len)
        };
        let shown = String::from_utf8_lossy(key);
        if key.is_empty() {
            (st.on_error)(format!("{PREFIX}empty key"));
            return;
        }
        if !has_value || value.is_null() {
            (st.on_error)(format!("{PREFIX}empty value for key '{shown}'"));
            return;
        }
        let ok = shim::rfpm_shim_ini_set_master(
            key.as_ptr() as *const c_char,
            key.len(),
            value,
            value_len,
            st.admin,
        );
        if !ok {
            (st.on_error)(format!("{PREFIX}unable to set '{shown}'"));
        }
    })
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
pub fn fpm_ini() -> FpmIni {
    // SAFETY: the INI struct is plain data written by PHP's INI handlers on this thread.
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
pub fn fastcgi_logging() -> bool {
    // SAFETY: plain data written by PHP's INI handlers on this thread.
    unsafe { (*ptr::addr_of!(shim::rfpm_shim_ini)).fastcgi_logging }
}

/// php.ini's `doc_root`, if set.
pub fn ini_string(name: &str) -> Option<String> {
    let cname = CString::new(name).ok()?;
    // SAFETY: zend_ini_string_ex returns a pointer into PHP's INI storage or NULL.
    unsafe {
        let mut exists = false;
        let p = sys::zend_ini_string_ex(cname.as_ptr(), name.len(), 0, &mut exists);
        if !exists {
            return None;
        }
        cstr_opt(p).map(|s| s.to_string_lossy().into_owned())
    }
}
