//! Engine start-up and shutdown (once, in the master), and the engine's own texts
//! (`-v`, `-m`, `-i`).

use crate::callbacks::{
    cb_activate, cb_getenv, cb_import_env, cb_load_env, cb_log_message, cb_read_cookies,
    cb_register_variables, cb_send_headers, ORIGINAL_IMPORT_ENV,
};
use crate::cstr_opt;
use crate::shim;
use php_sys as sys;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr;

/// Where PHP reads its php.ini from (`-c`, `-n`, `-d`).
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// `-c`: a directory to look in, or the file itself (the argument's bytes).
    pub ini_path: Option<Vec<u8>>,
    /// `-n`: no php.ini at all (and no scan dir).
    pub no_ini: bool,
    /// `-d` entries as given (`name=value` or `name`), applied last.
    pub defines: Vec<Vec<u8>>,
    /// Where php.ini is looked for when neither `-c` nor `-n` is given, and whose
    /// `conf.d` is scanned (Debian: `/etc/php/8.x/fpm`, see [`crate::default_ini_dir`]).
    pub default_ini_dir: String,
    /// The program's `argv[0]`: PHP makes `PHP_BINARY` of it (its real path, or where
    /// `PATH` finds a bare name), as php-fpm does with its own. `None`: empty.
    pub executable: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("PHP module start-up failed")]
    ModuleStartup,
    #[error("invalid option value (embedded NUL byte)")]
    Nul,
}

static SAPI_NAME: &CStr = c"fpm-fcgi";
static SAPI_PRETTY: &CStr = c"FPM/FastCGI";

/// Starts PHP once (module start-up: php.ini, extensions, OPcache's shared memory).
/// Call in the master before forking, after installing every signal handler the
/// workers need (PHP restores at each request only the handlers that existed when
/// `zend_signal_startup()` ran).
pub fn startup(opts: &EngineOptions) -> Result<(), EngineError> {
    // SAFETY: start-up runs once, in the master, single-threaded, before any other call
    // into PHP, after the process's own signal handlers are installed.
    unsafe { sys::zend_signal_startup() };
    // Leaked: PHP copies the struct, and keeps using the strings it points to for the
    // life of the process.
    let module: &'static mut sys::sapi_module_struct = Box::leak(Box::default());
    // PHP only reads the names.
    module.name = SAPI_NAME.as_ptr().cast_mut();
    module.pretty_name = SAPI_PRETTY.as_ptr().cast_mut();
    module.activate = Some(cb_activate);
    module.ub_write = Some(shim::rfpm_shim_ub_write);
    module.flush = Some(shim::rfpm_shim_flush);
    module.getenv = Some(cb_getenv);
    module.sapi_error = Some(sys::zend_error);
    module.send_headers = Some(cb_send_headers);
    module.read_post = Some(shim::rfpm_shim_read_post);
    module.read_cookies = Some(cb_read_cookies);
    module.register_server_variables = Some(cb_register_variables);
    module.log_message = Some(cb_log_message);

    // SAFETY: `module` is ours, filled above, and lives forever; sapi_startup copies it
    // into PHP's sapi_module and resets a few of its fields (set again below).
    unsafe { sys::sapi_startup(module) };
    // sapi_startup() resets these: set them after it.
    module.php_ini_ignore_cwd = 1;
    module.php_ini_ignore = c_int::from(opts.no_ini);
    let scan_dir_was_set = std::env::var_os("PHP_INI_SCAN_DIR").is_some();
    if !opts.no_ini {
        let path = opts
            .ini_path
            .clone()
            .unwrap_or_else(|| opts.default_ini_dir.clone().into_bytes());
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
        .map(|d| CString::new(d.as_slice()))
        .collect::<Result<_, _>>()
        .map_err(|_| EngineError::Nul)?;
    let ptrs: Vec<*const c_char> = defines.iter().map(|d| d.as_ptr()).collect();
    // SAFETY: `ptrs` holds `ptrs.len()` NUL-terminated strings owned by `defines`,
    // alive for the call; the result is a malloc'ed string PHP reads from now on.
    module.ini_entries = unsafe { sys::php_sys_ini_entries(ptrs.as_ptr(), ptrs.len()) };
    if let Some(exe) = &opts.executable {
        let exe = CString::new(exe.as_str()).map_err(|_| EngineError::Nul)?;
        module.executable_location = exe.into_raw();
    }

    // SAFETY: `module` is complete and lives forever; module start-up copies it into
    // PHP's sapi_module and runs one activate/deactivate cycle without a server
    // context, which every callback accepts. Still single-threaded.
    let ok = unsafe { shim::rfpm_shim_module_startup(ptr::from_mut(module).cast::<c_void>()) };
    if !opts.no_ini && !scan_dir_was_set {
        std::env::remove_var("PHP_INI_SCAN_DIR");
    }
    if ok != shim::rfpm_shim_result::RFPM_SHIM_OK {
        return Err(EngineError::ModuleStartup);
    }
    // SAFETY: PHP's exported hooks and our copy of the original, written once here,
    // single-threaded, before any request can read them.
    unsafe {
        ORIGINAL_IMPORT_ENV = sys::php_import_environment_variables;
        sys::php_import_environment_variables = Some(cb_import_env);
        sys::php_load_environment_variables = Some(cb_load_env);
    }
    Ok(())
}

/// Shuts PHP down (master exit).
pub fn shutdown() {
    // SAFETY: called once, after startup, when no request runs, on PHP's thread.
    unsafe {
        sys::php_module_shutdown();
        sys::sapi_shutdown();
    }
}

/// Hides the pcntl extension, which libphp8.2 has built in and php-fpm8.2 has not:
/// its functions, constants and INI entries are gone and `extension_loaded('pcntl')` is
/// false, as in php-fpm8.2. Call it outside any request (a worker before its first one;
/// `-m` and `-i`, which show what a worker sees by default). Idempotent.
pub fn hide_pcntl() {
    // SAFETY: a NUL-terminated literal; outside any request, on PHP's only thread, after
    // module start-up (the registry and tables exist; nothing refers to the removed
    // entries while no script runs).
    let _ = unsafe { shim::rfpm_shim_hide_extension(c"pcntl".as_ptr()) };
}

/// The embedded PHP's version (`8.2.29`).
#[must_use]
pub fn php_version() -> String {
    CStr::from_bytes_until_nul(sys::PHP_VERSION)
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `-v`: `PHP 8.x.y (fpm-fcgi) (built: ...)`, copyright, Zend Engine line(s); from PHP
/// 8.4 on the library's own text (with `(NTS)` and Debian's `Built by` line), as
/// php-fpm 8.4 prints it.
#[must_use]
pub fn version_text() -> String {
    if crate::COMPAT.version_text_from_library {
        // SAFETY: after start-up, on PHP's thread; the shim returns a malloc'ed copy
        // or NULL.
        let p = unsafe { shim::rfpm_shim_version_text() };
        // SAFETY: NULL or a NUL-terminated string of ours, read before it is freed.
        if let Some(text) = unsafe { cstr_opt(p) } {
            let text = text.to_string_lossy().into_owned();
            // SAFETY: malloc'ed by the shim, not used after this.
            unsafe { sys::php_sys_free(p.cast()) };
            return text;
        }
    }
    let version = php_version();
    // SAFETY: get_zend_version returns a static, NUL-terminated string of the library,
    // copied here.
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
    let t: libc::time_t = std::fs::metadata(sys::PHP_LIBRARY)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| libc::time_t::try_from(d.as_secs()).ok())
        .unwrap_or(0);
    let mut buf = [0u8; 64];
    // SAFETY: libc::tm is integers and one pointer (tm_zone), for which all-zero
    // (NULL) is a valid value.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: `t` and `tm` are ours and valid for the call; gmtime_r only writes `tm`
    // (left zeroed if it fails).
    unsafe { libc::gmtime_r(&raw const t, &raw mut tm) };
    // SAFETY: strftime writes at most `buf.len()` bytes into our buffer, reads the
    // NUL-terminated format and `tm`, and returns how many bytes it wrote.
    let n = unsafe {
        libc::strftime(
            buf.as_mut_ptr().cast::<c_char>(),
            buf.len(),
            c"%b %d %Y %H:%M:%S".as_ptr(),
            &raw const tm,
        )
    };
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// `-m`: the module list, php-fpm's format, on stdout.
pub fn print_modules() {
    hide_pcntl();
    // SAFETY: after start-up, outside any request, on PHP's thread; the shim runs the
    // request-less activation inside zend_try.
    unsafe { shim::rfpm_shim_cli_info(0) }
}

/// `-i`: phpinfo() as text on stdout.
pub fn print_info() {
    hide_pcntl();
    // SAFETY: as for `print_modules`.
    unsafe { shim::rfpm_shim_cli_info(1) }
}

/// The PHP constant `name` (the engine's or a loaded extension's) as the string the INI
/// parser substitutes for a bare word in php-fpm.conf (`E_ALL` → `30719` on PHP 8.4),
/// or `None` when PHP has no such constant. After start-up, outside a request.
#[must_use]
pub fn constant(name: &str) -> Option<String> {
    // SAFETY: after start-up, on PHP's thread; PHP reads `len` bytes of `name` (no NUL
    // needed) and the helper returns a malloc'ed copy or NULL.
    let p = unsafe { sys::php_sys_constant_string(name.as_ptr().cast(), name.len()) };
    // SAFETY: NULL or a NUL-terminated string of ours, read before it is freed.
    let value = unsafe { cstr_opt(p) }.map(|c| c.to_string_lossy().into_owned());
    if !p.is_null() {
        // SAFETY: malloc'ed by the helper, not used after this.
        unsafe { sys::php_sys_free(p.cast()) };
    }
    value
}

/// Checks that the PHP library loaded at run time is the PHP rfpm was built for (both
/// Debian libraries name themselves `libphp.so`; on the wrong one rfpm would crash).
/// Safe before start-up: it only asks the library's `php_version()` (PHP ≥ 8.4; looked
/// up by name, so a library without it is not an error of the dynamic loader), which
/// returns a constant string.
pub fn check_library() -> Result<(), rfpm_core::compat::LoadedPhpError> {
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only looks the symbol up.
    let f = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"php_version".as_ptr()) };
    let loaded = if f.is_null() {
        None
    } else {
        // SAFETY: `php_version` is PHP's `const char *php_version(void)` (main/main.c,
        // PHP ≥ 8.4): a C function without arguments.
        let php_version: extern "C" fn() -> *const c_char = unsafe { std::mem::transmute(f) };
        // SAFETY: it returns PHP_VERSION, a static NUL-terminated string.
        unsafe { cstr_opt(php_version()) }.map(|c| c.to_string_lossy().into_owned())
    };
    rfpm_core::compat::check_loaded(sys::PHP_MM, loaded.as_deref())
}
