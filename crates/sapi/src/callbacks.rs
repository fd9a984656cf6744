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
/// PHP's own `php_import_environment_variables`, saved by [`crate::startup`] before it
/// installs [`cb_import_env`]; written once, before any request, read by the callbacks.
pub(crate) static mut ORIGINAL_IMPORT_ENV: Option<ImportEnv> = None;

/// PHP's import of the real environment, if start-up saved it.
fn original_import_env() -> Option<ImportEnv> {
    // SAFETY: written once by start-up in the master before any request (and before the
    // fork that made this worker); PHP's callbacks, the only readers, run on this one
    // thread afterwards: no write can race this read.
    unsafe { *ptr::addr_of!(ORIGINAL_IMPORT_ENV) }
}

/// SAPI `ub_write` (through `rfpm_shim_ub_write`, which aborts the script from C when
/// this returns `false`): response bytes, or stdout outside a request.
#[no_mangle]
extern "C" fn rfpm_rs_write(s: *const c_char, len: usize) -> bool {
    guard(|| {
        if len == 0 {
            return true;
        }
        // SAFETY: PHP's output layer hands us `len` readable bytes at `s`, its own
        // buffer, valid until we return; the slice does not outlive this call.
        let data = unsafe { std::slice::from_raw_parts(s.cast::<u8>(), len) };
        // SAFETY: PHP calls us on its one thread (see `ctx`).
        match unsafe { ctx() } {
            Some(ctx) => ctx.conn().write(data),
            None => {
                // Outside a request (-m, -i, start-up messages): stdout.
                let mut out = std::io::stdout().lock();
                std::io::Write::write_all(&mut out, data).is_ok()
            }
        }
    })
}

/// SAPI `flush` (through `rfpm_shim_flush`): pushes buffered output to the web server.
#[no_mangle]
extern "C" fn rfpm_rs_flush() -> bool {
    guard(|| {
        // SAFETY: PHP calls us on its one thread (see `ctx`).
        let Some(ctx) = (unsafe { ctx() }) else {
            return true;
        };
        // SAFETY: PHP's globals belong to this thread (NTS build); PHP is inside this
        // callback and does not change them until it returns. A plain read.
        let headers_sent = unsafe { (*ptr::addr_of!(sys::sapi_globals)).headers_sent };
        if headers_sent == 0 {
            // PHP sends the headers on its own before the first output.
            return true;
        }
        ctx.conn().flush()
    })
}

/// `fastcgi_finish_request()`: whether the connection is still open.
#[no_mangle]
extern "C" fn rfpm_rs_connection_open() -> bool {
    // SAFETY: PHP calls us on its one thread (see `ctx`).
    guard(|| unsafe { ctx() }.is_some_and(|c| c.conn().is_open()))
}

/// `fastcgi_finish_request()`: ends the response now.
#[no_mangle]
extern "C" fn rfpm_rs_finish_request() -> bool {
    // SAFETY: PHP calls us on its one thread (see `ctx`).
    guard(|| unsafe { ctx() }.is_some_and(|c| c.conn().finish()))
}

/// `apache_request_headers()`: the `HTTP_*` params as header names into `arr`.
#[no_mangle]
extern "C" fn rfpm_rs_request_headers(arr: *mut c_void) {
    guard(|| {
        // SAFETY: PHP calls us on its one thread (see `ctx`).
        let Some(ctx) = (unsafe { ctx() }) else {
            return;
        };
        ctx.req.vars.each(&mut |name, value| {
            let Some(header) = vars::header_name(name.to_bytes()) else {
                return;
            };
            // SAFETY: `arr` is the function's return value, which the shim has just
            // initialised as an array; PHP owns it and nothing else holds it during
            // this call. add_assoc_stringl_ex copies key and value into zend_strings of
            // its own, so the borrowed bytes need only live for the call.
            unsafe {
                sys::add_assoc_stringl_ex(
                    arr.cast::<sys::zval>(),
                    header.as_ptr().cast::<c_char>(),
                    header.len(),
                    value.as_ptr().cast::<c_char>(),
                    value.len(),
                );
            }
        });
    });
}

/// `frankenphp_log()`: whether an entry of this FrankenPHP level is written.
#[no_mangle]
extern "C" fn rfpm_rs_app_log_enabled(level: i64) -> bool {
    guard(|| {
        let level = rfpm_core::applog::level_of(level);
        // SAFETY: PHP calls us on its one thread (see `ctx`).
        unsafe { ctx() }.is_some_and(|c| c.conn().app_log_enabled(level))
    })
}

/// `frankenphp_log()`: the entry, to the worker's connection (which knows the log).
#[no_mangle]
extern "C" fn rfpm_rs_app_log(
    level: i64,
    msg: *const c_char,
    len: usize,
    context: *const c_char,
    context_len: usize,
) {
    guard(|| {
        // SAFETY: PHP calls us on its one thread (see `ctx`).
        let Some(ctx) = (unsafe { ctx() }) else {
            return;
        };
        // SAFETY: the shim hands us the message's `len` bytes (a PHP string it holds
        // for the call); the slice does not outlive it.
        let message = unsafe { std::slice::from_raw_parts(msg.cast::<u8>(), len) };
        let context = if context.is_null() {
            None
        } else {
            // SAFETY: as above, the shim's `context_len` bytes of JSON, alive for the call.
            Some(unsafe { std::slice::from_raw_parts(context.cast::<u8>(), context_len) })
        };
        ctx.conn()
            .app_log(rfpm_core::applog::level_of(level), message, context);
    });
}

/// `fpm_get_status()`: fills the initialised array, `false` when there is no status.
#[no_mangle]
extern "C" fn rfpm_rs_status(arr: *mut c_void) -> bool {
    guard(|| {
        // SAFETY: PHP calls us on its one thread (see `ctx`).
        let Some(ctx) = (unsafe { ctx() }) else {
            return false;
        };
        let Some(fields) = ctx.conn().status() else {
            return false;
        };
        // SAFETY: `arr` is the function's return value, initialised as an array by the
        // shim just before this call and owned by PHP.
        unsafe { fill_array(arr.cast::<sys::zval>(), &fields) };
        true
    })
}

/// # Safety
/// `arr` is an initialised PHP array zval that nothing else uses during the call.
unsafe fn fill_array(arr: *mut sys::zval, fields: &[(&'static str, StatusValue)]) {
    // Every unsafe call below: `arr` is an initialised array nothing else uses (the
    // caller's promise); PHP copies the key and the string bytes, which live for the
    // call; `list` and `one` are zvals of our own, made arrays by php_sys_array_init
    // before any other use, then moved into their parent (add_next_index_zval,
    // add_assoc_zval_ex), which owns them from then on.
    for (key, v) in fields {
        let k = key.as_ptr().cast::<c_char>();
        match v {
            StatusValue::Int(n) => {
                // SAFETY: see above.
                unsafe { sys::add_assoc_long_ex(arr, k, key.len(), *n) };
            }
            StatusValue::Float(f) => {
                // SAFETY: see above.
                unsafe { sys::add_assoc_double_ex(arr, k, key.len(), *f) };
            }
            StatusValue::Str(s) => {
                let v = s.as_ptr().cast::<c_char>();
                // SAFETY: see above.
                unsafe { sys::add_assoc_stringl_ex(arr, k, key.len(), v, s.len()) };
            }
            StatusValue::List(items) => {
                let mut list = sys::zval::default();
                // SAFETY: see above.
                unsafe { sys::php_sys_array_init(ptr::from_mut(&mut list).cast::<c_void>()) };
                for item in items {
                    let mut one = sys::zval::default();
                    // SAFETY: see above.
                    unsafe {
                        sys::php_sys_array_init(ptr::from_mut(&mut one).cast::<c_void>());
                        fill_array(&raw mut one, item);
                        sys::php_sys_add_next_index_zval(
                            ptr::from_mut(&mut list).cast::<c_void>(),
                            ptr::from_mut(&mut one).cast::<c_void>(),
                        );
                    }
                }
                // SAFETY: see above.
                unsafe { sys::add_assoc_zval_ex(arr, k, key.len(), &raw mut list) };
            }
        }
    }
}

/// Request activation: php.ini `[PATH=]`/`[HOST=]` sections and `.user.ini` files for
/// the script's directory (reference §7.12).
///
/// # Safety
/// Called by PHP as the SAPI's `activate`, on PHP's thread.
pub(crate) unsafe extern "C" fn cb_activate() -> c_int {
    guard(|| {
        // SAFETY: PHP calls us on its one thread (see `ctx`).
        let Some(ctx) = (unsafe { ctx() }) else {
            return 0;
        };
        let req = ctx.req;
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
        // SAFETY: three (pointer, length) pairs over bytes the request owns, alive for
        // the call; the shim copies what it keeps (the cache key, the lower-cased host).
        unsafe {
            shim::rfpm_shim_activate_dir_config(
                dir.as_ptr().cast::<c_char>(),
                dir.len(),
                doc_root.as_ptr().cast::<c_char>(),
                doc_root.len(),
                host.as_ptr().cast::<c_char>(),
                host.len(),
            );
        }
        0
    })
}

/// SAPI `getenv`: a param of the request, borrowed.
///
/// # Safety
/// Called by PHP as the SAPI's `getenv`: `name` points to `len` readable bytes.
pub(crate) unsafe extern "C" fn cb_getenv(name: *const c_char, len: usize) -> *mut c_char {
    guard(|| {
        // SAFETY: PHP calls us on its one thread (see `ctx`).
        let Some(ctx) = (unsafe { ctx() }) else {
            return ptr::null_mut();
        };
        // SAFETY: PHP's `name` is `len` readable bytes (the caller's promise), valid
        // for the call; the slice does not outlive it.
        let name = unsafe { std::slice::from_raw_parts(name.cast::<u8>(), len) };
        // httpoxy: never hand out the web server's HTTP_PROXY (nor a prefix of it).
        if !name.is_empty()
            && b"HTTP_PROXY".len() >= name.len()
            && b"HTTP_PROXY"[..name.len()].eq_ignore_ascii_case(name)
        {
            return ptr::null_mut();
        }
        // PHP only reads the value (and copies it); it lives as long as the request.
        ctx.req
            .vars
            .get_cstr(name)
            .map_or(ptr::null_mut(), |v| v.as_ptr().cast_mut())
    })
}

/// SAPI `send_headers`: the status line and header lines as one block to the client.
///
/// # Safety
/// Called by PHP as the SAPI's `send_headers`: `sh` is PHP's live header structure.
pub(crate) unsafe extern "C" fn cb_send_headers(sh: *mut sys::sapi_headers_struct) -> c_int {
    #[allow(clippy::cast_possible_wrap)] // a small enum constant (1) for PHP's c_int
    const SENT: c_int = sys::SAPI_HEADER_SENT_SUCCESSFULLY as c_int;
    guard(|| {
        // SAFETY: PHP calls us on its one thread (see `ctx`).
        let Some(ctx) = (unsafe { ctx() }) else {
            return SENT;
        };
        // SAFETY: PHP owns `sh` and lends it to us for this call; it does not touch it
        // until we return, so one exclusive reference for the call is sound.
        let sh = unsafe { &mut *sh };
        // SAFETY: the lines borrow PHP's header list, which does not change during this
        // call; `head` and `lines` are dropped before we return.
        let lines = unsafe { header_lines(sh) };
        // SAFETY: our INI struct, written only by PHP's INI handlers on this thread,
        // never while this callback runs; read through a shared reference here.
        let ini = unsafe { &*ptr::addr_of!(shim::rfpm_shim_ini) };
        // SAFETY: PHP's status line is NULL or a NUL-terminated string it owns, alive
        // for the call.
        let status_line = unsafe { cstr_opt(sh.http_status_line) };
        let head = headers::Head {
            code: sh.http_response_code,
            status_line: status_line.map(CStr::to_bytes),
            headers: lines,
            rfc2616: ini.rfc2616_headers,
            nph: ini.nph,
        };
        let block = headers::build(&head, status_reason);
        ctx.conn().write(&block);
        SENT
    })
}

/// Reason phrase of an HTTP status from PHP's own table.
#[must_use]
pub fn status_reason(code: i32) -> Option<String> {
    // SAFETY: PHP's status table is static: the result is NULL or a NUL-terminated
    // string that lives as long as the process; it is copied into a String here.
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
        // SAFETY: `warning` is the shim's out-pointer to a local of its own, valid and
        // writable for the call.
        unsafe { *warning = ptr::null() };
        // SAFETY: PHP calls us on its one thread (see `ctx`).
        let Some(ctx) = (unsafe { ctx() }) else {
            return 0;
        };
        // SAFETY: PHP's globals belong to this thread (NTS build); PHP does not change
        // them while it waits for this callback. A plain read.
        let read = unsafe { (*ptr::addr_of!(sys::sapi_globals)).read_post_bytes };
        // Never more than CONTENT_LENGTH.
        let left = usize::try_from(ctx.req.content_length - read).unwrap_or(0);
        let want = count.min(left);
        if want == 0 {
            return 0;
        }
        // SAFETY: PHP's buffer has room for `count >= want` bytes; it is PHP's, lent to
        // us for the call and not read by PHP until we return; the slice dies here.
        let out = unsafe { std::slice::from_raw_parts_mut(buf.cast::<u8>(), want) };
        let mut got = 0;
        while got < want {
            match ctx.conn().read_body(&mut out[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(text) => {
                    let mut w = ctx.warning.borrow_mut();
                    w.clear();
                    w.extend(rfpm_core::shown::unshow(&text).iter().filter(|&&b| b != 0));
                    w.push(0);
                    // SAFETY: as above; the text stays in `ctx.warning`, untouched until
                    // the next read_post, while the shim raises it right after we return.
                    unsafe { *warning = w.as_ptr().cast::<c_char>() };
                    break;
                }
            }
        }
        got
    })
}

/// SAPI `read_cookies`: the Cookie header, borrowed for the request.
///
/// # Safety
/// Called by PHP as the SAPI's `read_cookies`, on PHP's thread.
pub(crate) unsafe extern "C" fn cb_read_cookies() -> *mut c_char {
    guard(|| {
        // SAFETY: PHP calls us on its one thread (see `ctx`).
        match unsafe { ctx() } {
            // The request owns the string for its whole life, as PHP requires; PHP
            // copies it before it parses it.
            Some(ctx) => ctx
                .req
                .cookie
                .map_or(ptr::null_mut(), |c| c.as_ptr().cast_mut()),
            None => ptr::null_mut(),
        }
    })
}

/// SAPI `log_message`: `PHP message: ...` to the worker log (stderr outside a request).
///
/// # Safety
/// Called by PHP as the SAPI's `log_message`: `msg` is NULL or a NUL-terminated string.
pub(crate) unsafe extern "C" fn cb_log_message(msg: *const c_char, _syslog_type: c_int) {
    guard(|| {
        if msg.is_null() {
            return;
        }
        // SAFETY: PHP owns `msg`, a NUL-terminated string valid for the duration of the
        // callback; we copy it into `line` before returning.
        let text = unsafe { CStr::from_ptr(msg) }.to_bytes();
        let mut line = Vec::with_capacity(text.len() + 13);
        line.extend_from_slice(crate::PHP_MESSAGE_PREFIX);
        line.extend_from_slice(text);
        // SAFETY: PHP calls us on its one thread (see `ctx`).
        match unsafe { ctx() } {
            Some(ctx) => ctx.conn().log(Level::Notice, &line),
            None => {
                // Outside a request (start-up): the worker's or master's stderr.
                line.push(b'\n');
                let mut s = b"NOTICE: ".to_vec();
                s.extend_from_slice(&line);
                // SAFETY: fd 2 is the process's stderr, never closed by us; `s` is our
                // own buffer, readable for its whole length. A short write is ignored,
                // as before.
                unsafe { libc::write(2, s.as_ptr().cast::<c_void>(), s.len()) };
            }
        }
    });
}

/// `$_SERVER` (and `$_ENV`): the worker's environment, then every FastCGI param.
///
/// # Safety
/// Called by PHP as `php_import_environment_variables`: `arr` is the array it builds.
pub(crate) unsafe extern "C" fn cb_import_env(arr: *mut sys::zval) {
    guard(|| {
        // The other array of $_SERVER/$_ENV is already built: this one is its copy.
        // SAFETY: `arr` is the array PHP is building, lent to us for the call (the
        // caller's promise); the shim only reads PHP's globals besides it.
        if unsafe { shim::rfpm_shim_import_env_copy(arr.cast::<c_void>()) } {
            return;
        }
        if let Some(orig) = original_import_env() {
            // SAFETY: PHP's own import, called as PHP would with the array it builds.
            unsafe { orig(arr) };
        }
        // SAFETY: PHP calls us on its one thread (see `ctx`).
        let Some(ctx) = (unsafe { ctx() }) else {
            return;
        };
        // $_ENV's params pass the input filter as PARSE_ENV: ext/filter stores what it
        // is given under PARSE_SERVER in $_SERVER's array, not in `arr`.
        // SAFETY: only compares `arr` with PHP's $_ENV array; `arr` is valid (above).
        let filter = if unsafe { shim::rfpm_shim_is_env_array(arr.cast_const().cast::<c_void>()) } {
            sys::PARSE_ENV
        } else {
            sys::PARSE_SERVER
        };
        ctx.req.vars.each(&mut |name, value| {
            if name.to_bytes() != b"HTTP_PROXY" {
                // SAFETY: inside a request, `arr` is the array PHP is filling and
                // `filter` matches it.
                unsafe { register(&ctx.scratch, filter, name, value, arr) };
            }
        });
    });
}

/// `getenv()` without arguments: the real environment, then every param, unfiltered.
///
/// # Safety
/// Called by PHP as `php_load_environment_variables`: `arr` is the array it builds.
pub(crate) unsafe extern "C" fn cb_load_env(arr: *mut sys::zval) {
    guard(|| {
        // The real environment only (PHP's own import, not ours: no copy of $_SERVER).
        if let Some(orig) = original_import_env() {
            // SAFETY: PHP's own import, called as PHP would with the array it builds.
            unsafe { orig(arr) };
        }
        // SAFETY: PHP calls us on its one thread (see `ctx`).
        let Some(ctx) = (unsafe { ctx() }) else {
            return;
        };
        let mut buf = ctx.scratch.take();
        ctx.req.vars.each(&mut |name, value| {
            buf.clear();
            buf.extend_from_slice(value);
            buf.push(0);
            // SAFETY: `arr` is the array PHP builds (the caller's promise); `name` and
            // `buf` are NUL-terminated and live for the call; PHP copies both.
            unsafe {
                sys::php_register_variable_safe(
                    name.as_ptr(),
                    buf.as_ptr().cast::<c_char>(),
                    value.len(),
                    arr,
                );
            }
        });
        ctx.scratch.set(buf);
    });
}

/// SAPI `register_server_variables`: the environment and params (through
/// `php_import_environment_variables`, i.e. [`cb_import_env`]), then `PHP_SELF`.
///
/// # Safety
/// Called by PHP as the SAPI's `register_server_variables`: `arr` is `$_SERVER`'s
/// array being built.
pub(crate) unsafe extern "C" fn cb_register_variables(arr: *mut sys::zval) {
    guard(|| {
        // SAFETY: PHP's exported hook, set once at start-up (to cb_import_env) and only
        // read afterwards, on this one thread.
        let import = unsafe { sys::php_import_environment_variables };
        if let Some(import) = import {
            // SAFETY: called as PHP would, with the array PHP is building.
            unsafe { import(arr) };
        }
        // SAFETY: PHP calls us on its one thread (see `ctx`).
        let Some(ctx) = (unsafe { ctx() }) else {
            return;
        };
        // SAFETY: inside a request; `arr` is $_SERVER's array, filtered as PARSE_SERVER.
        unsafe {
            register(
                &ctx.scratch,
                sys::PARSE_SERVER,
                c"PHP_SELF",
                ctx.req.php_self.to_bytes(),
                arr,
            );
        }
    });
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
    let mut val = buf.as_mut_ptr().cast::<c_char>();
    let mut new_len: usize = 0;
    // SAFETY: the exported sapi_module, filled by module start-up and not changed
    // afterwards; read on PHP's thread.
    let filter = unsafe { (*ptr::addr_of!(sys::sapi_module)).input_filter };
    let keep = match filter {
        Some(f) => {
            #[allow(clippy::cast_possible_wrap)] // PARSE_SERVER/PARSE_ENV: 4 and 5
            let arg = filter_arg as c_int;
            // SAFETY: PHP's input filter, called as PHP calls it: `name` and the value in
            // `buf` are NUL-terminated and ours for the call; the filter may change the
            // value in place (within its length) and tells the new length.
            unsafe {
                f(
                    arg,
                    name.as_ptr(),
                    &raw mut val,
                    value.len(),
                    &raw mut new_len,
                ) != 0
            }
        }
        None => {
            new_len = value.len();
            true
        }
    };
    if keep {
        // SAFETY: `arr` is the array PHP is filling (the caller's promise); `val` is
        // `new_len` bytes (the filter's result) and PHP copies name and value.
        unsafe { sys::php_register_variable_safe(name.as_ptr(), val, new_len, arr) };
    }
    scratch.set(buf);
}
