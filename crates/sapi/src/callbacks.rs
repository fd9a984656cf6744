//! What PHP calls: the SAPI module's callbacks and the `rfpm_rs_*` functions the C
//! shim calls. Each runs inside [`guard`], so no panic unwinds into C.

use crate::request::{ctx, header_lines};
use crate::shim;
use crate::{cstr_opt, headers, vars, Level, StatusValue};
use php_sys as sys;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr;

/// Runs `f`, aborting the process if it panics: no panic may unwind into C.
pub(crate) fn guard<R>(f: impl FnOnce() -> R) -> R {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(_) => std::process::abort(),
    }
}

type ImportEnv = unsafe extern "C" fn(*mut sys::zval);
pub(crate) static mut ORIGINAL_IMPORT_ENV: Option<ImportEnv> = None;

#[no_mangle]
extern "C" fn rfpm_rs_write(s: *const c_char, len: usize) -> bool {
    guard(|| {
        // SAFETY: PHP passes a buffer of `len` bytes; the context is valid during run().
        unsafe {
            if len == 0 {
                return true;
            }
            let Some(ctx) = ctx() else {
                // Outside a request (-m, -i, start-up messages): stdout.
                let mut out = std::io::stdout().lock();
                return std::io::Write::write_all(
                    &mut out,
                    std::slice::from_raw_parts(s as *const u8, len),
                )
                .is_ok();
            };
            (*ctx.conn).write(std::slice::from_raw_parts(s as *const u8, len))
        }
    })
}

#[no_mangle]
extern "C" fn rfpm_rs_flush() -> bool {
    guard(|| {
        // SAFETY: see rfpm_rs_write.
        unsafe {
            match ctx() {
                Some(ctx) => {
                    if (*ptr::addr_of!(sys::sapi_globals)).headers_sent == 0 {
                        // PHP sends the headers on its own before the first output.
                        return true;
                    }
                    (*ctx.conn).flush()
                }
                None => true,
            }
        }
    })
}

#[no_mangle]
extern "C" fn rfpm_rs_connection_open() -> bool {
    // SAFETY: see rfpm_rs_write.
    guard(|| unsafe { ctx().is_some_and(|c| (*c.conn).is_open()) })
}

#[no_mangle]
extern "C" fn rfpm_rs_finish_request() -> bool {
    // SAFETY: see rfpm_rs_write.
    guard(|| unsafe { ctx().is_some_and(|c| (*c.conn).finish()) })
}

#[no_mangle]
extern "C" fn rfpm_rs_request_headers(arr: *mut c_void) {
    guard(|| {
        // SAFETY: `arr` is the initialised return-value array of apache_request_headers().
        unsafe {
            let Some(ctx) = ctx() else { return };
            let req = &*ctx.req;
            req.vars.each(&mut |name, value| {
                let Some(header) = vars::header_name(name.to_bytes()) else {
                    return;
                };
                sys::add_assoc_stringl_ex(
                    arr as *mut sys::zval,
                    header.as_ptr() as *const c_char,
                    header.len(),
                    value.as_ptr() as *const c_char,
                    value.len(),
                );
            });
        }
    })
}

/// `fpm_get_status()`: fills the initialised array, `false` when there is no status.
#[no_mangle]
extern "C" fn rfpm_rs_status(arr: *mut c_void) -> bool {
    guard(|| {
        // SAFETY: `arr` is the initialised return-value array of fpm_get_status(); the
        // context is valid during run().
        unsafe {
            let Some(ctx) = ctx() else { return false };
            let Some(fields) = (*ctx.conn).status() else {
                return false;
            };
            fill_array(arr as *mut sys::zval, &fields);
            true
        }
    })
}

/// # Safety
/// `arr` is an initialised PHP array zval.
unsafe fn fill_array(arr: *mut sys::zval, fields: &[(&'static str, StatusValue)]) {
    for (key, v) in fields {
        let k = key.as_ptr() as *const c_char;
        match v {
            StatusValue::Int(n) => {
                sys::add_assoc_long_ex(arr, k, key.len(), *n as sys::zend_long);
            }
            StatusValue::Float(f) => {
                sys::add_assoc_double_ex(arr, k, key.len(), *f);
            }
            StatusValue::Str(s) => {
                sys::add_assoc_stringl_ex(arr, k, key.len(), s.as_ptr() as *const c_char, s.len());
            }
            StatusValue::List(items) => {
                let mut list: sys::zval = std::mem::zeroed();
                sys::php_sys_array_init(&mut list as *mut sys::zval as *mut c_void);
                for item in items {
                    let mut one: sys::zval = std::mem::zeroed();
                    sys::php_sys_array_init(&mut one as *mut sys::zval as *mut c_void);
                    fill_array(&mut one, item);
                    sys::php_sys_add_next_index_zval(
                        &mut list as *mut sys::zval as *mut c_void,
                        &mut one as *mut sys::zval as *mut c_void,
                    );
                }
                sys::add_assoc_zval_ex(arr, k, key.len(), &mut list);
            }
        }
    }
}

/// Request activation: php.ini `[PATH=]`/`[HOST=]` sections and `.user.ini` files for
/// the script's directory (reference §7.12).
pub(crate) unsafe extern "C" fn cb_activate() -> c_int {
    guard(|| {
        let Some(ctx) = ctx() else { return 0 };
        let req = &*ctx.req;
        let Some(script) = req.path_translated else {
            return 0;
        };
        let script = script.to_bytes();
        let dir = match script.iter().rposition(|&b| b == b'/') {
            Some(0) => &script[..1],
            Some(i) => &script[..i],
            None => return 0,
        };
        let doc_root = req.vars.get(b"DOCUMENT_ROOT").unwrap_or_default();
        let host = req.vars.get(b"SERVER_NAME").unwrap_or_default();
        shim::rfpm_shim_activate_dir_config(
            dir.as_ptr() as *const c_char,
            dir.len(),
            doc_root.as_ptr() as *const c_char,
            doc_root.len(),
            host.as_ptr() as *const c_char,
            host.len(),
        );
        0
    })
}

pub(crate) unsafe extern "C" fn cb_getenv(name: *const c_char, len: usize) -> *mut c_char {
    guard(|| {
        let Some(ctx) = ctx() else {
            return ptr::null_mut();
        };
        let name = std::slice::from_raw_parts(name as *const u8, len);
        // httpoxy: never hand out the web server's HTTP_PROXY (nor a prefix of it).
        if !name.is_empty()
            && b"HTTP_PROXY".len() >= name.len()
            && b"HTTP_PROXY"[..name.len()].eq_ignore_ascii_case(name)
        {
            return ptr::null_mut();
        }
        (*ctx.req)
            .vars
            .get_cstr(name)
            .map_or(ptr::null_mut(), |v| v.as_ptr() as *mut c_char)
    })
}

pub(crate) unsafe extern "C" fn cb_send_headers(sh: *mut sys::sapi_headers_struct) -> c_int {
    guard(|| {
        let Some(ctx) = ctx() else {
            return sys::SAPI_HEADER_SENT_SUCCESSFULLY as c_int;
        };
        let sh = &mut *sh;
        let lines = header_lines(sh);
        let ini = &*ptr::addr_of!(shim::rfpm_shim_ini);
        let head = headers::Head {
            code: sh.http_response_code,
            status_line: cstr_opt(sh.http_status_line).map(CStr::to_bytes),
            headers: lines,
            rfc2616: ini.rfc2616_headers,
            nph: ini.nph,
        };
        let block = headers::build(&head, status_reason);
        (*ctx.conn).write(&block);
        sys::SAPI_HEADER_SENT_SUCCESSFULLY as c_int
    })
}

/// Reason phrase of an HTTP status from PHP's own table.
pub fn status_reason(code: i32) -> Option<String> {
    // SAFETY: returns a static string or NULL.
    unsafe { cstr_opt(sys::php_sys_status_reason(code)).map(|s| s.to_string_lossy().into_owned()) }
}

/// SAPI read_post, through the shim (`rfpm_shim_read_post`), which raises the PHP
/// warning handed back in `*warning` once this function has returned.
#[no_mangle]
extern "C" fn rfpm_rs_read_post(
    buf: *mut c_char,
    count: usize,
    warning: *mut *const c_char,
) -> usize {
    guard(|| {
        // SAFETY: PHP passes a buffer of `count` bytes; the context is valid during run();
        // `warning` is a valid out-pointer from the shim.
        unsafe {
            *warning = ptr::null();
            let Some(ctx) = ctx() else { return 0 };
            let req = &*ctx.req;
            let sg = &*ptr::addr_of!(sys::sapi_globals);
            // Never more than CONTENT_LENGTH.
            let left = (req.content_length - sg.read_post_bytes).max(0) as usize;
            let want = count.min(left);
            if want == 0 {
                return 0;
            }
            let out = std::slice::from_raw_parts_mut(buf as *mut u8, want);
            let mut got = 0;
            while got < want {
                match (*ctx.conn).read_body(&mut out[got..]) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(text) => {
                        // SAFETY: see `Ctx::warning`: no other reference to it exists.
                        let w = &mut *ctx.warning.get();
                        w.clear();
                        w.extend(text.bytes().filter(|&b| b != 0));
                        w.push(0);
                        *warning = w.as_ptr() as *const c_char;
                        break;
                    }
                }
            }
            got
        }
    })
}

pub(crate) unsafe extern "C" fn cb_read_cookies() -> *mut c_char {
    guard(|| match ctx() {
        Some(ctx) => (*ctx.req)
            .cookie
            .map_or(ptr::null_mut(), |c| c.as_ptr() as *mut c_char),
        None => ptr::null_mut(),
    })
}

pub(crate) unsafe extern "C" fn cb_log_message(msg: *const c_char, _syslog_type: c_int) {
    guard(|| {
        if msg.is_null() {
            return;
        }
        let text = CStr::from_ptr(msg).to_bytes();
        let mut line = Vec::with_capacity(text.len() + 13);
        line.extend_from_slice(b"PHP message: ");
        line.extend_from_slice(text);
        match ctx() {
            Some(ctx) => (*ctx.conn).log(Level::Notice, &line),
            None => {
                // Outside a request (start-up): the worker's or master's stderr.
                line.push(b'\n');
                let mut s = b"NOTICE: ".to_vec();
                s.extend_from_slice(&line);
                libc::write(2, s.as_ptr() as *const c_void, s.len());
            }
        }
    })
}

/// `$_SERVER` (and `$_ENV`): the worker's environment, then every FastCGI param.
pub(crate) unsafe extern "C" fn cb_import_env(arr: *mut sys::zval) {
    guard(|| {
        // The other array of $_SERVER/$_ENV is already built: this one is its copy.
        if shim::rfpm_shim_import_env_copy(arr as *mut c_void) {
            return;
        }
        if let Some(orig) = ORIGINAL_IMPORT_ENV {
            orig(arr);
        }
        let Some(ctx) = ctx() else { return };
        let req = &*ctx.req;
        // $_ENV's params pass the input filter as PARSE_ENV: ext/filter stores what it
        // is given under PARSE_SERVER in $_SERVER's array, not in `arr`.
        let filter = if shim::rfpm_shim_is_env_array(arr as *const c_void) {
            sys::PARSE_ENV
        } else {
            sys::PARSE_SERVER
        };
        req.vars.each(&mut |name, value| {
            if name.to_bytes() != b"HTTP_PROXY" {
                register(&ctx.scratch, filter, name, value, arr);
            }
        });
    })
}

/// `getenv()` without arguments: the real environment, then every param, unfiltered.
pub(crate) unsafe extern "C" fn cb_load_env(arr: *mut sys::zval) {
    guard(|| {
        // The real environment only (PHP's own import, not ours: no copy of $_SERVER).
        if let Some(orig) = ORIGINAL_IMPORT_ENV {
            orig(arr);
        }
        let Some(ctx) = ctx() else { return };
        let req = &*ctx.req;
        let mut buf = ctx.scratch.take();
        req.vars.each(&mut |name, value| {
            buf.clear();
            buf.extend_from_slice(value);
            buf.push(0);
            sys::php_register_variable_safe(
                name.as_ptr(),
                buf.as_ptr() as *const c_char,
                value.len(),
                arr,
            );
        });
        ctx.scratch.set(buf);
    })
}

pub(crate) unsafe extern "C" fn cb_register_variables(arr: *mut sys::zval) {
    guard(|| {
        if let Some(import) = sys::php_import_environment_variables {
            import(arr);
        }
        let Some(ctx) = ctx() else { return };
        let req = &*ctx.req;
        register(
            &ctx.scratch,
            sys::PARSE_SERVER,
            c"PHP_SELF",
            req.php_self.to_bytes(),
            arr,
        );
    })
}

/// One variable through PHP's input filter (`filter`: `PARSE_SERVER` or `PARSE_ENV`,
/// matching `arr`) into `arr`.
///
/// # Safety
/// Inside an active request; `arr` is the array PHP is filling (`$_SERVER`/`$_ENV`).
unsafe fn register(
    scratch: &std::cell::Cell<Vec<u8>>,
    filter_arg: u32,
    name: &CStr,
    value: &[u8],
    arr: *mut sys::zval,
) {
    let mut buf = scratch.take();
    buf.clear();
    buf.extend_from_slice(value);
    buf.push(0);
    let mut val = buf.as_mut_ptr() as *mut c_char;
    let mut new_len: usize = 0;
    let filter = (*ptr::addr_of!(sys::sapi_module)).input_filter;
    let keep = match filter {
        Some(f) => {
            f(
                filter_arg as c_int,
                name.as_ptr(),
                &mut val,
                value.len(),
                &mut new_len,
            ) != 0
        }
        None => {
            new_len = value.len();
            true
        }
    };
    if keep {
        sys::php_register_variable_safe(name.as_ptr(), val, new_len, arr);
    }
    scratch.set(buf);
}
