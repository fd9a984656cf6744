//! The `fpm-fcgi` SAPI: PHP's engine started once in the master, and one PHP request
//! per call of [`run`] in a worker.
//!
//! All PHP state is process-global (NTS build): this module is used from one thread per
//! process only. Every call into PHP that can bail out (longjmp) goes through the C
//! shim's `zend_try` wrappers, so no Rust frame is ever jumped over; every callback PHP
//! makes into Rust is wrapped in [`guard`], so no panic crosses into C.

mod headers;
pub mod stack;
mod vars;

pub use vars::Vars;

use php_sys as sys;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr;

/// Where PHP reads its php.ini from (`-c`, `-n`, `-d`).
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// `-c`: a directory to look in, or the file itself.
    pub ini_path: Option<String>,
    /// `-n`: no php.ini at all (and no scan dir).
    pub no_ini: bool,
    /// `-d` entries as given (`name=value` or `name`), applied last.
    pub defines: Vec<String>,
    /// Where php.ini is looked for when neither `-c` nor `-n` is given, and whose
    /// `conf.d` is scanned (Debian: `/etc/php/8.2/fpm`).
    pub default_ini_dir: String,
    /// The program's `argv[0]`: PHP makes `PHP_BINARY` of it (its real path, or where
    /// `PATH` finds a bare name), as php-fpm8.2 does with its own. `None`: empty.
    pub executable: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("PHP module start-up failed")]
    ModuleStartup,
    #[error("invalid option value (embedded NUL byte)")]
    Nul,
}

pub use rfpm_core::Level;

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

/// A value of `fpm_get_status()`'s array.
#[derive(Debug, Clone, PartialEq)]
pub enum StatusValue {
    Int(i64),
    Float(f64),
    Str(Vec<u8>),
    /// A list of string-keyed arrays (`procs`).
    List(Vec<Vec<(&'static str, StatusValue)>>),
}

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

struct Ctx<'a> {
    conn: *mut (dyn Conn + 'a),
    req: *const Request<'a>,
    /// Buffer for a NUL-terminated value on its way to PHP. Taken out and put back
    /// around each use, so a callback nested inside another (PHP may log while it
    /// registers a variable) simply finds it empty.
    scratch: std::cell::Cell<Vec<u8>>,
    /// A warning for the C side to raise after a callback returned (NUL-terminated).
    /// Only `cb_read_post` touches it (PHP never re-enters that callback), and the C side
    /// reads it right after the callback returned.
    warning: std::cell::UnsafeCell<Vec<u8>>,
}

/// Runs `f`, aborting the process if it panics: no panic may unwind into C.
fn guard<R>(f: impl FnOnce() -> R) -> R {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(_) => std::process::abort(),
    }
}

/// The request being served, from `SG(server_context)`. Shared references only:
/// callbacks nest (PHP logs while it registers a variable), and the context is
/// changed only through its raw `conn` pointer and the `scratch` cell.
///
/// # Safety
/// Only called from PHP callbacks during [`run`], on the thread that called it; the
/// context outlives those callbacks, and `run` does not touch it while PHP runs.
unsafe fn ctx<'a>() -> Option<&'a Ctx<'a>> {
    let p = sys::sapi_globals.server_context as *const Ctx<'a>;
    if p.is_null() {
        None
    } else {
        Some(&*p)
    }
}

static SAPI_NAME: &CStr = c"fpm-fcgi";
static SAPI_PRETTY: &CStr = c"FPM/FastCGI";

type ImportEnv = unsafe extern "C" fn(*mut sys::zval);
static mut ORIGINAL_IMPORT_ENV: Option<ImportEnv> = None;

/// Starts PHP once (module start-up: php.ini, extensions, OPcache's shared memory).
/// Call in the master before forking, after installing every signal handler the
/// workers need (PHP restores at each request only the handlers that existed when
/// `zend_signal_startup()` ran).
pub fn startup(opts: &EngineOptions) -> Result<(), EngineError> {
    // SAFETY: single-threaded start-up; the module struct is leaked, so it lives as
    // long as PHP keeps pointers to it; every string handed over is leaked too.
    unsafe {
        sys::zend_signal_startup();
        let module: &'static mut sys::sapi_module_struct = Box::leak(Box::default());
        module.name = SAPI_NAME.as_ptr() as *mut c_char;
        module.pretty_name = SAPI_PRETTY.as_ptr() as *mut c_char;
        module.activate = Some(cb_activate);
        module.ub_write = Some(sys::rfpm_shim_ub_write);
        module.flush = Some(sys::rfpm_shim_flush);
        module.getenv = Some(cb_getenv);
        module.sapi_error = Some(sys::zend_error);
        module.send_headers = Some(cb_send_headers);
        module.read_post = Some(sys::rfpm_shim_read_post);
        module.read_cookies = Some(cb_read_cookies);
        module.register_server_variables = Some(cb_register_variables);
        module.log_message = Some(cb_log_message);

        sys::sapi_startup(module);
        // sapi_startup() resets these: set them after it.
        module.php_ini_ignore_cwd = 1;
        module.php_ini_ignore = c_int::from(opts.no_ini);
        let scan_dir_was_set = std::env::var_os("PHP_INI_SCAN_DIR").is_some();
        if !opts.no_ini {
            let path = opts
                .ini_path
                .clone()
                .unwrap_or_else(|| opts.default_ini_dir.clone());
            let path = CString::new(path).map_err(|_| EngineError::Nul)?;
            module.php_ini_path_override = path.into_raw();
            if !scan_dir_was_set {
                // The embed library would scan its own conf.d; a drop-in scans FPM's.
                std::env::set_var(
                    "PHP_INI_SCAN_DIR",
                    format!("{}/conf.d", opts.default_ini_dir),
                );
            }
        }
        let defines: Vec<CString> = opts
            .defines
            .iter()
            .map(|d| CString::new(d.as_str()))
            .collect::<Result<_, _>>()
            .map_err(|_| EngineError::Nul)?;
        let ptrs: Vec<*const c_char> = defines.iter().map(|d| d.as_ptr()).collect();
        module.ini_entries = sys::php_sys_ini_entries(ptrs.as_ptr(), ptrs.len());
        if let Some(exe) = &opts.executable {
            let exe = CString::new(exe.as_str()).map_err(|_| EngineError::Nul)?;
            module.executable_location = exe.into_raw();
        }

        let ok = sys::rfpm_shim_module_startup(module as *mut _ as *mut c_void);
        if !opts.no_ini && !scan_dir_was_set {
            std::env::remove_var("PHP_INI_SCAN_DIR");
        }
        if ok != sys::rfpm_shim_result::RFPM_SHIM_OK {
            return Err(EngineError::ModuleStartup);
        }
        ORIGINAL_IMPORT_ENV = sys::php_import_environment_variables;
        sys::php_import_environment_variables = Some(cb_import_env);
        sys::php_load_environment_variables = Some(cb_load_env);
    }
    Ok(())
}

/// Shuts PHP down (master exit).
pub fn shutdown() {
    // SAFETY: called once, after startup, when no request runs.
    unsafe {
        sys::php_module_shutdown();
        sys::sapi_shutdown();
    }
}

/// `-v`: `PHP 8.2.x (fpm-fcgi) (built: ...)`, copyright, Zend Engine line(s).
pub fn version_text() -> String {
    let version = CStr::from_bytes_until_nul(sys::PHP_VERSION)
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_default();
    // SAFETY: get_zend_version returns a static, NUL-terminated string.
    let zend = unsafe { cstr_opt(sys::get_zend_version()) }
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(
        "PHP {version} (fpm-fcgi) (built: {})\nCopyright (c) The PHP Group\n{zend}",
        build_date()
    )
}

/// When libphp was built (the library's modification time), as `Mon DD YYYY HH:MM:SS`.
fn build_date() -> String {
    let t = std::fs::metadata("/usr/lib/libphp8.2.so")
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as libc::time_t);
    let mut buf = [0u8; 64];
    // SAFETY: gmtime_r fills a zeroed tm; strftime writes at most buf.len() bytes.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        libc::gmtime_r(&t, &mut tm);
        let n = libc::strftime(
            buf.as_mut_ptr() as *mut c_char,
            buf.len(),
            c"%b %d %Y %H:%M:%S".as_ptr(),
            &tm,
        );
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

/// `-m`: the module list, php-fpm's format, on stdout.
pub fn print_modules() {
    // SAFETY: after startup, outside any request.
    unsafe { sys::rfpm_shim_cli_info(0) }
}

/// `-i`: phpinfo() as text on stdout.
pub fn print_info() {
    // SAFETY: after startup, outside any request.
    unsafe { sys::rfpm_shim_cli_info(1) }
}

/// Sets an INI entry for the rest of this worker's life (pool `php_value` and
/// `php_admin_value`, reference §7.9); `admin` also locks it. `false` when PHP does not
/// know the entry or refuses the value.
pub fn set_ini(name: &str, value: &str, admin: bool) -> bool {
    let Ok(v) = CString::new(value) else {
        return false;
    };
    // SAFETY: valid pointers and lengths for the call; PHP copies what it keeps.
    unsafe {
        sys::rfpm_shim_ini_set_master(
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
        sys::rfpm_shim_parse_ini_string(
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
        let ok = sys::rfpm_shim_ini_set_master(
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

/// Whether `path` exists, through PHP's realpath cache (php-fpm's check of the script
/// path before fixing PATH_INFO; no system call while the entry is cached).
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
        let ini = &*ptr::addr_of!(sys::rfpm_shim_ini);
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
    unsafe { (*ptr::addr_of!(sys::rfpm_shim_ini)).fastcgi_logging }
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

/// A C string PHP owns, or `None` for NULL.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that outlives `'a`.
unsafe fn cstr_opt<'a>(p: *const c_char) -> Option<&'a CStr> {
    if p.is_null() {
        None
    } else {
        Some(CStr::from_ptr(p))
    }
}

/// Runs one request through PHP: request start-up, the action, request shutdown.
pub fn run(conn: &mut dyn Conn, req: &Request<'_>) -> Outcome {
    let ctx = Ctx {
        conn: conn as *mut dyn Conn,
        req: req as *const Request<'_>,
        scratch: std::cell::Cell::new(Vec::new()),
        warning: std::cell::UnsafeCell::new(Vec::new()),
    };
    let mut outcome = Outcome {
        status: 200,
        exit_status: 0,
        startup_failed: false,
    };
    // SAFETY: PHP's globals are only touched from this thread; `ctx` and every string
    // of `req` outlive the PHP calls below (SG(server_context) is cleared before
    // returning); the request_info pointers are only read by PHP.
    unsafe {
        let sg = &mut *ptr::addr_of_mut!(sys::sapi_globals);
        // Callbacks only ever take shared references to it (see `ctx()`).
        sg.server_context = &ctx as *const Ctx<'_> as *mut c_void;
        let ri = &mut sg.request_info;
        ri.request_method = req.method.map_or(ptr::null(), CStr::as_ptr);
        ri.query_string = req.query.as_ptr() as *mut c_char;
        ri.content_type = req.content_type.as_ptr();
        ri.content_length = req.content_length;
        ri.request_uri = req
            .request_uri
            .map_or(ptr::null_mut(), |s| s.as_ptr() as *mut c_char);
        // PHP efree()s path_translated when the script cannot be opened: it must live
        // on PHP's request heap (which request shutdown resets).
        ri.path_translated = req
            .path_translated
            .map_or(ptr::null_mut(), |s| sys::_estrdup(s.as_ptr()));
        sg.sapi_headers.http_response_code = 200;
        if let Some(auth) = req.auth {
            sys::php_handle_auth_data(auth.as_ptr());
        }

        if sys::rfpm_shim_request_startup() != sys::rfpm_shim_result::RFPM_SHIM_OK {
            outcome.startup_failed = true;
            sg.request_info.path_translated = ptr::null_mut();
            sg.server_context = ptr::null_mut();
            return outcome;
        }

        let auth = cstr_opt(sg.request_info.auth_user).map(CStr::to_bytes);
        (*ctx.conn).started(auth);
        if req.method.is_some() {
            run_action(&ctx, req);
            if let Some(h) = fpm_ini().error_header {
                if sys::php_sys_exit_status() == 255 && sg.headers_sent == 0 {
                    set_header(&h);
                }
            }
        }
        outcome.exit_status = sys::php_sys_exit_status();
        outcome.status = (*ptr::addr_of!(sys::sapi_globals))
            .sapi_headers
            .http_response_code;
        if req.method.is_some() {
            let sg = &mut *ptr::addr_of_mut!(sys::sapi_globals);
            let headers = header_lines(&mut sg.sapi_headers);
            let end = RequestEnd {
                status: outcome.status,
                memory: sys::zend_memory_peak_usage(true) as u64,
                headers,
            };
            (*ctx.conn).ended(&end);
        }
        sys::rfpm_shim_request_shutdown();
        let sg = &mut *ptr::addr_of_mut!(sys::sapi_globals);
        sg.server_context = ptr::null_mut();
        // Released with the request heap; nothing may point there any more.
        sg.request_info.path_translated = ptr::null_mut();
        sg.request_info.auth_user = ptr::null_mut();
        sg.request_info.auth_password = ptr::null_mut();
        sg.request_info.auth_digest = ptr::null_mut();
    }
    outcome
}

/// # Safety
/// Inside an active PHP request, from [`run`].
unsafe fn run_action(ctx: &Ctx<'_>, req: &Request<'_>) {
    let sg = &mut *ptr::addr_of_mut!(sys::sapi_globals);
    match &req.action {
        Action::NotFound => {
            (*ctx.conn).log(Level::Debug, b"Primary script unknown");
            sg.sapi_headers.http_response_code = 404;
            output(b"File not found.\n");
        }
        Action::Denied => {
            let path = req
                .path_translated
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            let msg = format!(
                "Access to the script '{path}' has been denied (see security.limit_extensions)"
            );
            (*ctx.conn).log(Level::Notice, msg.as_bytes());
            sg.sapi_headers.http_response_code = 403;
            output(b"Access denied.\n");
        }
        Action::Respond { headers, body } => {
            for h in headers {
                set_header(h);
            }
            if !sg.request_info.headers_only {
                output(body);
            }
        }
        Action::Execute => {
            let mut err: c_int = 0;
            if sys::rfpm_shim_execute_primary(&mut err) == sys::rfpm_shim_result::RFPM_SHIM_FAILED {
                let path = req
                    .path_translated
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let msg = format!(
                    "Unable to open primary script: {} ({})",
                    path,
                    std::io::Error::from_raw_os_error(err)
                )
                .replace(&format!(" (os error {err})"), "");
                (*ctx.conn).log(Level::Error, msg.as_bytes());
                if err == libc::EACCES {
                    sg.sapi_headers.http_response_code = 403;
                    output(b"Access denied.\n");
                } else {
                    sg.sapi_headers.http_response_code = 404;
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
    sys::sapi_header_op(
        sys::sapi_header_op_enum::SAPI_HEADER_REPLACE,
        &line as *const _ as *mut c_void,
    );
}

/// Writes through PHP's output layer (guarded: output handlers may bail out).
fn output(data: &[u8]) {
    // SAFETY: data is valid for the call; the shim catches bailouts.
    unsafe {
        sys::php_sys_output_write(data.as_ptr() as *const c_char, data.len());
    }
}

// ---------------------------------------------------------------------------------
// Callbacks from PHP.

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
unsafe extern "C" fn cb_activate() -> c_int {
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
        sys::rfpm_shim_activate_dir_config(
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

unsafe extern "C" fn cb_getenv(name: *const c_char, len: usize) -> *mut c_char {
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

/// The header lines PHP holds for the response.
///
/// # Safety
/// `sh` is PHP's live header structure; the lines borrow PHP's memory and must not
/// outlive the next change to the headers.
unsafe fn header_lines<'a>(sh: &mut sys::sapi_headers_struct) -> Vec<&'a [u8]> {
    let mut lines: Vec<&[u8]> = Vec::new();
    let mut pos: sys::zend_llist_position = ptr::null_mut();
    let mut h =
        sys::zend_llist_get_first_ex(&mut sh.headers, &mut pos) as *const sys::sapi_header_struct;
    while !h.is_null() {
        let hs = &*h;
        if !hs.header.is_null() {
            lines.push(std::slice::from_raw_parts(
                hs.header as *const u8,
                hs.header_len,
            ));
        }
        h = sys::zend_llist_get_next_ex(&mut sh.headers, &mut pos)
            as *const sys::sapi_header_struct;
    }
    lines
}

unsafe extern "C" fn cb_send_headers(sh: *mut sys::sapi_headers_struct) -> c_int {
    guard(|| {
        let Some(ctx) = ctx() else {
            return sys::SAPI_HEADER_SENT_SUCCESSFULLY as c_int;
        };
        let sh = &mut *sh;
        let lines = header_lines(sh);
        let ini = &*ptr::addr_of!(sys::rfpm_shim_ini);
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

unsafe extern "C" fn cb_read_cookies() -> *mut c_char {
    guard(|| match ctx() {
        Some(ctx) => (*ctx.req)
            .cookie
            .map_or(ptr::null_mut(), |c| c.as_ptr() as *mut c_char),
        None => ptr::null_mut(),
    })
}

unsafe extern "C" fn cb_log_message(msg: *const c_char, _syslog_type: c_int) {
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
unsafe extern "C" fn cb_import_env(arr: *mut sys::zval) {
    guard(|| {
        // The other array of $_SERVER/$_ENV is already built: this one is its copy.
        if sys::rfpm_shim_import_env_copy(arr as *mut c_void) {
            return;
        }
        if let Some(orig) = ORIGINAL_IMPORT_ENV {
            orig(arr);
        }
        let Some(ctx) = ctx() else { return };
        let req = &*ctx.req;
        // $_ENV's params pass the input filter as PARSE_ENV: ext/filter stores what it
        // is given under PARSE_SERVER in $_SERVER's array, not in `arr`.
        let filter = if sys::rfpm_shim_is_env_array(arr as *const c_void) {
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
unsafe extern "C" fn cb_load_env(arr: *mut sys::zval) {
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

unsafe extern "C" fn cb_register_variables(arr: *mut sys::zval) {
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
