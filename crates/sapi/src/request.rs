//! One request through PHP: request start-up, the action, request shutdown; what the
//! worker hands in ([`Request`], [`Conn`]) and gets back ([`Outcome`], [`RequestEnd`]).

use crate::shim;
use crate::{cstr_opt, ini::fpm_ini, Level, Vars};
use php_sys as sys;
use std::cell::{Cell, RefCell, RefMut};
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr;

/// The worker's side of one request: the FastCGI connection and the worker log.
pub trait Conn {
    /// Response bytes (headers block, then body). `false`: the client is gone.
    fn write(&mut self, data: &[u8]) -> bool;
    /// Pushes buffered output to the web server. `false`: the client is gone.
    fn flush(&mut self) -> bool;
    /// Request body bytes (FastCGI STDIN or `REQUEST_BODY_FILE`); 0 at the end.
    /// `Err(text)`: no body, and PHP warns with `text` (`REQUEST_BODY_FILE` not opened).
    fn read_body(&mut self, buf: &mut [u8]) -> Result<usize, String>;
    /// `fastcgi_finish_request()`: sends FCGI_END_REQUEST now (once) and closes the
    /// connection unless kept alive. `false` if the connection is already closed.
    fn finish(&mut self) -> bool;
    /// Whether the FastCGI connection is still open.
    fn is_open(&self) -> bool;
    /// A message of the worker (also PHP's `PHP message: ...`), for the worker log and
    /// the FastCGI stderr stream.
    fn log(&mut self, level: Level, msg: &[u8]);
    /// `frankenphp_log()`: an entry of the application's, `context` a compact JSON
    /// object (`None` when the array was empty). Not for the web server: by default one
    /// line of the worker log, as [`Conn::log`] writes it.
    fn app_log(&mut self, level: Level, message: &[u8], context: Option<&[u8]>) {
        self.log(level, &rfpm_core::applog::text(message, context));
    }
    /// Whether [`Conn::app_log`] writes an entry of `level` (one that would not is not
    /// built: its context is not encoded).
    fn app_log_enabled(&self, _level: Level) -> bool {
        true
    }
    /// PHP started the request; `auth_user` is the user of the Authorization header.
    fn started(&mut self, _auth_user: Option<&[u8]>) {}
    /// The script (and its `fastcgi_finish_request()` tail work) is done, shutdown
    /// functions have not run yet: where php-fpm ends the request and writes the
    /// access log.
    fn ended(&mut self, _end: &RequestEnd<'_>) {}
    /// `fpm_get_status()`: the pool's status array, `None` for `false`.
    fn status(&mut self) -> Option<Vec<(&'static str, StatusValue)>> {
        None
    }
}

/// A value of `fpm_get_status()`'s array (the status page's pure renderer makes them).
pub use rfpm_core::status::StatusValue;

/// What is known when a request ends (for the scoreboard and the access log).
#[derive(Debug, Clone)]
pub struct RequestEnd<'a> {
    /// HTTP status code.
    pub status: i32,
    /// Peak memory of the request (PHP's real peak usage), bytes.
    pub memory: u64,
    /// The response header lines as PHP holds them (`Name: value`).
    pub headers: Vec<&'a [u8]>,
}

/// What the worker decided to do with the request before PHP sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Run the primary script (`path_translated`).
    Execute,
    /// No usable script: 404 `File not found.` (reference §7.5).
    NotFound,
    /// `security.limit_extensions` refused the script: 403 `Access denied.`.
    Denied,
    /// A page the worker answers itself (ping, status): status code, extra headers, body.
    Respond { headers: Vec<String>, body: Vec<u8> },
}

/// One request as PHP will see it. The strings must live until [`run`] returns.
pub struct Request<'a> {
    /// Every variable for `$_SERVER`/`$_ENV`/`getenv()`, in php-fpm's order.
    pub vars: &'a dyn Vars,
    pub method: Option<&'a CStr>,
    pub query: &'a CStr,
    pub content_type: &'a CStr,
    pub content_length: i64,
    /// The effective SCRIPT_NAME.
    pub request_uri: Option<&'a CStr>,
    /// The script to run.
    pub path_translated: Option<&'a CStr>,
    pub auth: Option<&'a CStr>,
    pub cookie: Option<&'a CStr>,
    pub php_self: &'a CStr,
    pub action: Action,
}

/// How the request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// HTTP status code PHP ended with.
    pub status: i32,
    /// `EG(exit_status)`: 255 after a fatal error.
    pub exit_status: i32,
    /// PHP request start-up failed: the worker must exit (php-fpm exits 70).
    pub startup_failed: bool,
}

/// What PHP's callbacks find in `SG(server_context)` while [`run`] runs.
pub(crate) struct Ctx<'a> {
    /// The worker's connection. Callbacks borrow it for one `Conn` call at a time (no
    /// `Conn` method calls back into PHP), so a second borrow would be a bug: it
    /// panics, and the callback's guard aborts.
    conn: RefCell<&'a mut (dyn Conn + 'a)>,
    pub(crate) req: &'a Request<'a>,
    /// Buffer for a NUL-terminated value on its way to PHP. Taken out and put back
    /// around each use, so a callback nested inside another (PHP may log while it
    /// registers a variable) simply finds it empty.
    pub(crate) scratch: Cell<Vec<u8>>,
    /// A warning for the C side to raise after a callback returned (NUL-terminated).
    /// Only `rfpm_rs_read_post` touches it, and the C side reads it right after the
    /// callback returned, before any other read_post.
    pub(crate) warning: RefCell<Vec<u8>>,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(conn: &'a mut (dyn Conn + 'a), req: &'a Request<'a>) -> Ctx<'a> {
        Ctx {
            conn: RefCell::new(conn),
            req,
            scratch: Cell::new(Vec::new()),
            warning: RefCell::new(Vec::new()),
        }
    }

    /// The connection, for one call.
    pub(crate) fn conn(&self) -> RefMut<'_, dyn Conn + 'a> {
        RefMut::map(self.conn.borrow_mut(), |c| &mut **c)
    }
}

/// PHP's SAPI globals (`SG()`). Every access through this pointer is one short read or
/// write on PHP's thread; no reference to them is held across a call into PHP, which
/// changes them itself.
pub(crate) fn sapi_globals() -> *mut sys::sapi_globals_struct {
    // Only the address of the static is taken; nothing is read or written.
    &raw mut sys::sapi_globals
}

/// The request being served, from `SG(server_context)`. Shared references only:
/// callbacks nest (PHP logs while it registers a variable), and the context is
/// changed only through its cells.
///
/// # Safety
/// Only called from PHP callbacks, on PHP's one thread: while `SG(server_context)` is
/// set, [`run`] is on the stack below the callback and keeps the context alive, and
/// clears it before it returns. The lifetime `'a` must not outlive that call of `run`:
/// callers use the reference within the callback only.
pub(crate) unsafe fn ctx<'a>() -> Option<&'a Ctx<'a>> {
    // SAFETY: a plain read of this thread's globals (NTS build); PHP is inside the
    // callback that called us and does not write them meanwhile.
    let p = unsafe { (*sapi_globals()).server_context }.cast::<Ctx<'a>>();
    // SAFETY: non-null only during `run`, which set it to its live `Ctx` (the caller's
    // promise); only shared references are made of it.
    unsafe { p.as_ref() }
}

/// Whether `path` exists, through PHP's realpath cache (php-fpm's check of the script
/// path before fixing PATH_INFO; no system call while the entry is cached).
#[must_use]
pub fn path_exists(path: &[u8]) -> bool {
    if path.contains(&0) {
        return false;
    }
    // Paths of up to PATH_MAX bytes (every one the kernel can resolve) are made C
    // strings on the stack, not zeroed first: this runs for every request.
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 4096];
    let owned;
    let p: &CStr = if path.len() < buf.len() {
        // SAFETY: `path.len() + 1 <= buf.len()`; the bytes of `path` and a NUL are
        // written before the slice over exactly them is made; `path` has no NUL.
        unsafe {
            let dst = buf.as_mut_ptr().cast::<u8>();
            std::ptr::copy_nonoverlapping(path.as_ptr(), dst, path.len());
            dst.add(path.len()).write(0);
            CStr::from_bytes_with_nul_unchecked(std::slice::from_raw_parts(dst, path.len() + 1))
        }
    } else {
        owned = match CString::new(path) {
            Ok(c) => c,
            Err(_) => return false,
        };
        &owned
    };
    // SAFETY: a NUL-terminated path that lives for the call; the shim uses a stack buffer.
    unsafe { sys::php_sys_path_exists(p.as_ptr()) }
}

/// Runs one request through PHP: request start-up, the action, request shutdown.
pub fn run(conn: &mut dyn Conn, req: &Request<'_>) -> Outcome {
    let ctx = Ctx {
        conn: RefCell::new(conn),
        req,
        scratch: Cell::new(Vec::new()),
        warning: RefCell::new(Vec::new()),
    };
    let mut outcome = Outcome {
        status: 200,
        exit_status: 0,
        startup_failed: false,
    };
    let sg = sapi_globals();
    // SAFETY: PHP's globals belong to this thread (NTS build, one thread per process)
    // and PHP is not running: plain writes. `ctx` and every string of `req` outlive the
    // request: server_context is cleared before we return, and PHP only reads (or
    // copies) the request_info strings until request shutdown. Callbacks only make
    // shared references of the context (see `ctx()`).
    unsafe {
        (*sg).server_context = ptr::from_ref(&ctx).cast_mut().cast::<c_void>();
        let ri = &mut (*sg).request_info;
        ri.request_method = req.method.map_or(ptr::null(), CStr::as_ptr);
        ri.query_string = req.query.as_ptr().cast_mut();
        ri.content_type = req.content_type.as_ptr();
        ri.content_length = req.content_length;
        ri.request_uri = req
            .request_uri
            .map_or(ptr::null_mut(), |s| s.as_ptr().cast_mut());
        // PHP efree()s path_translated when the script cannot be opened: it must live
        // on PHP's request heap (which request shutdown resets).
        ri.path_translated = req
            .path_translated
            .map_or(ptr::null_mut(), |s| sys::_estrdup(s.as_ptr()));
        (*sg).sapi_headers.http_response_code = 200;
    }
    if let Some(auth) = req.auth {
        // SAFETY: a NUL-terminated header value that lives for the call; PHP decodes
        // it into copies of its own (SG(request_info).auth_*).
        unsafe { sys::php_handle_auth_data(auth.as_ptr()) };
    }

    // SAFETY: on PHP's thread with SG filled above; the shim catches bailouts.
    let started = unsafe { shim::rfpm_shim_request_startup() };
    if started != shim::rfpm_shim_result::RFPM_SHIM_OK {
        outcome.startup_failed = true;
        // SAFETY: plain writes to this thread's globals; PHP is not running.
        unsafe {
            (*sg).request_info.path_translated = ptr::null_mut();
            (*sg).server_context = ptr::null_mut();
        }
        return outcome;
    }

    // SAFETY: PHP's auth_user is NULL or a NUL-terminated string on its request heap,
    // alive until request shutdown; the borrow ends with `started()`.
    let auth = unsafe { cstr_opt((*sg).request_info.auth_user) }.map(CStr::to_bytes);
    ctx.conn().started(auth);
    if req.method.is_some() {
        // SAFETY: inside the request started above.
        unsafe { run_action(&ctx, req) };
        if let Some(h) = fpm_ini().error_header {
            // SAFETY: plain reads of this thread's globals; PHP is not running.
            let fatal = unsafe { sys::php_sys_exit_status() == 255 && (*sg).headers_sent == 0 };
            if fatal {
                // SAFETY: inside the request started above.
                unsafe { set_header(&h) };
            }
        }
    }
    // SAFETY: plain reads of this thread's globals; PHP is not running.
    unsafe {
        outcome.exit_status = sys::php_sys_exit_status();
        outcome.status = (*sg).sapi_headers.http_response_code;
    }
    if req.method.is_some() {
        // SAFETY: PHP's header list, borrowed while PHP is not running: `end` and its
        // lines are dropped before request shutdown frees the list.
        let headers = unsafe { header_lines(&mut (*sg).sapi_headers) };
        // SAFETY: reads PHP's allocator statistics, on PHP's thread.
        let memory = unsafe { sys::zend_memory_peak_usage(true) };
        let end = RequestEnd {
            status: outcome.status,
            memory: u64::try_from(memory).unwrap_or(u64::MAX),
            headers,
        };
        ctx.conn().ended(&end);
    }
    // SAFETY: ends the request started above; the shim catches bailouts.
    unsafe { shim::rfpm_shim_request_shutdown() };
    // SAFETY: plain writes to this thread's globals; PHP is not running.
    unsafe {
        (*sg).server_context = ptr::null_mut();
        // Released with the request heap; nothing may point there any more.
        let ri = &mut (*sg).request_info;
        ri.path_translated = ptr::null_mut();
        ri.auth_user = ptr::null_mut();
        ri.auth_password = ptr::null_mut();
        ri.auth_digest = ptr::null_mut();
    }
    outcome
}

/// # Safety
/// Inside an active PHP request, from [`run`].
unsafe fn run_action(ctx: &Ctx<'_>, req: &Request<'_>) {
    let sg = sapi_globals();
    // Each `unsafe` below that sets the status: a plain write to this thread's
    // globals, while PHP is not running.
    match &req.action {
        Action::NotFound => {
            ctx.conn().log(Level::Debug, b"Primary script unknown");
            // SAFETY: see above.
            unsafe { (*sg).sapi_headers.http_response_code = 404 };
            output(b"File not found.\n");
        }
        Action::Denied => {
            // The path's bytes, as php-fpm prints its C string.
            let path = req.path_translated.map_or(&b""[..], CStr::to_bytes);
            let msg = [
                b"Access to the script '",
                path,
                b"' has been denied (see security.limit_extensions)",
            ]
            .concat();
            ctx.conn().log(Level::Notice, &msg);
            // SAFETY: see above.
            unsafe { (*sg).sapi_headers.http_response_code = 403 };
            output(b"Access denied.\n");
        }
        Action::Respond { headers, body } => {
            for h in headers {
                // SAFETY: inside the request (the caller's promise).
                unsafe { set_header(h) };
            }
            // SAFETY: a plain read of this thread's globals; PHP is not running.
            if !unsafe { (*sg).request_info.headers_only } {
                output(body);
            }
        }
        Action::Execute => {
            let mut err: c_int = 0;
            // SAFETY: inside the request (the caller's promise); `err` is ours and
            // writable; the shim catches bailouts.
            let r = unsafe { shim::rfpm_shim_execute_primary(&raw mut err) };
            if r == shim::rfpm_shim_result::RFPM_SHIM_FAILED {
                let path = req.path_translated.map_or(&b""[..], CStr::to_bytes);
                let why = std::io::Error::from_raw_os_error(err)
                    .to_string()
                    .replace(&format!(" (os error {err})"), "");
                let msg = [
                    b"Unable to open primary script: ",
                    path,
                    b" (",
                    why.as_bytes(),
                    b")",
                ]
                .concat();
                ctx.conn().log(Level::Error, &msg);
                let code = if err == libc::EACCES { 403 } else { 404 };
                // SAFETY: see above.
                unsafe { (*sg).sapi_headers.http_response_code = code };
                if err == libc::EACCES {
                    output(b"Access denied.\n");
                } else {
                    output(b"No input file specified.\n");
                }
            }
        }
    }
}

/// `header($line)` as a script would call it (replacing a header of the same name;
/// an `HTTP/x.y NNN` line sets the status).
///
/// # Safety
/// Inside an active PHP request.
unsafe fn set_header(h: &str) {
    let Ok(h) = CString::new(h) else { return };
    let line = sys::sapi_header_line {
        line: h.as_ptr(),
        line_len: h.as_bytes().len(),
        response_code: 0,
    };
    // SAFETY: inside a request (the caller's promise); `line` and its text live for the
    // call, and PHP copies the header (sapi_header_op takes its argument as void*, but
    // only reads it for SAPI_HEADER_REPLACE).
    unsafe {
        sys::sapi_header_op(
            sys::sapi_header_op_enum::SAPI_HEADER_REPLACE,
            ptr::from_ref(&line).cast_mut().cast::<c_void>(),
        );
    }
}

/// Writes through PHP's output layer (guarded: output handlers may bail out).
fn output(data: &[u8]) {
    // SAFETY: `data` is readable for the call and PHP copies it into its output
    // buffers; the C helper catches bailouts, so no longjmp crosses this frame.
    unsafe {
        sys::php_sys_output_write(data.as_ptr().cast::<c_char>(), data.len());
    }
}

/// The header lines PHP holds for the response.
///
/// # Safety
/// `sh` is PHP's live header structure; the lines borrow PHP's memory and must not
/// outlive the next change to the headers.
pub(crate) unsafe fn header_lines<'a>(sh: &mut sys::sapi_headers_struct) -> Vec<&'a [u8]> {
    let mut lines: Vec<&[u8]> = Vec::new();
    let mut pos: sys::zend_llist_position = ptr::null_mut();
    // SAFETY: `sh.headers` is PHP's live list (the caller's promise); `pos` is our
    // cursor. The elements are sapi_header_struct, as SAPI.c stores them.
    let mut h = unsafe { sys::zend_llist_get_first_ex(&raw mut sh.headers, &raw mut pos) }
        .cast::<sys::sapi_header_struct>()
        .cast_const();
    // SAFETY: `h` is NULL or an element of the list, alive while the list is unchanged.
    while let Some(hs) = unsafe { h.as_ref() } {
        if !hs.header.is_null() {
            // SAFETY: PHP keeps `header_len` bytes at `header`, alive until the headers
            // change (the caller's promise bounds `'a` by that).
            let line = unsafe { std::slice::from_raw_parts(hs.header.cast::<u8>(), hs.header_len) };
            lines.push(line);
        }
        // SAFETY: as for the first element.
        h = unsafe { sys::zend_llist_get_next_ex(&raw mut sh.headers, &raw mut pos) }
            .cast::<sys::sapi_header_struct>()
            .cast_const();
    }
    lines
}
