//! Worker mode (`worker.script`): the worker script runs once as one long PHP request
//! (the boot); each call of its `frankenphp_handle_request($handler)` asks the worker
//! ([`Host`]) for the next FastCGI request, which [`Host::handle`] serves through the
//! closure it is given: the request's state is set up as at a request start, the
//! handler runs, the response ends (the C shim's worker section).
//!
//! A fatal error in the handler is caught in C around the handler, the response is
//! ended, and the bailout is raised again by `frankenphp_handle_request()` once no Rust
//! frame is left between it and the boot's `zend_try`.

use crate::request::{sapi_globals, Ctx};
use crate::shim;
use crate::{Conn, Outcome, Request, RequestEnd};
use php_sys as sys;
use std::cell::{Cell, RefCell};
use std::ffi::{c_char, c_void, CStr};
use std::ptr;

/// How one served request ended, as the worker's loop needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Served {
    pub outcome: Outcome,
    /// The handler called `exit()`: the script ends after this request.
    pub exited: bool,
    /// A fatal error ended the handler: the script ends after this request.
    pub fatal: bool,
}

/// The worker's side of worker mode: where requests come from.
pub trait Host {
    /// Waits for the next request and serves it by calling `serve` once with its
    /// connection and request; `false` (without calling `serve`) when the worker must
    /// stop (graceful stop, reload, `pm.max_requests`).
    fn handle(&mut self, serve: &mut dyn FnMut(&mut dyn Conn, &Request<'_>) -> Served) -> bool;
}

/// How the worker script ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScriptEnd {
    /// Calls of `frankenphp_handle_request()` (0: the boot failed).
    pub calls: u64,
    /// The script could not be opened (errno).
    pub open_errno: Option<i32>,
    /// `EG(exit_status)`: 255 after a fatal error.
    pub exit_status: i32,
    /// A fatal error ended the script (in the boot or in a handler).
    pub fatal: bool,
    /// `exit()` in a handler ended it.
    pub exited_in_request: bool,
    /// PHP's request start-up failed.
    pub startup_failed: bool,
}

/// The running worker script: its host and what the served requests reported.
struct Running {
    host: *mut (dyn Host + 'static),
    calls: u64,
    exited: bool,
    fatal: bool,
}

thread_local! {
    /// Set while [`run`] runs the worker script.
    static RUNNING: RefCell<Option<Running>> = const { RefCell::new(None) };
}

/// Runs the worker script `boot.path_translated` as one PHP request whose output and
/// messages go to `boot_conn`, serving requests from `host` when it asks for them.
pub fn run(boot_conn: &mut dyn Conn, boot: &Request<'_>, host: &mut dyn Host) -> ScriptEnd {
    let mut end = ScriptEnd {
        calls: 0,
        open_errno: None,
        exit_status: 0,
        fatal: false,
        exited_in_request: false,
        startup_failed: false,
    };
    let ctx = Ctx::new(boot_conn, boot);
    let sg = sapi_globals();
    // SAFETY: PHP's globals belong to this thread and PHP is not running: plain
    // writes. `ctx` and `boot`'s strings outlive the request (server_context is
    // cleared before we return); path_translated is copied onto PHP's request heap.
    unsafe {
        (*sg).server_context = ptr::from_ref(&ctx).cast_mut().cast::<c_void>();
        let ri = &mut (*sg).request_info;
        ri.request_method = ptr::null();
        ri.query_string = boot.query.as_ptr().cast_mut();
        ri.content_type = boot.content_type.as_ptr();
        ri.content_length = 0;
        ri.request_uri = boot
            .request_uri
            .map_or(ptr::null_mut(), |s| s.as_ptr().cast_mut());
        ri.path_translated = boot
            .path_translated
            .map_or(ptr::null_mut(), |s| sys::_estrdup(s.as_ptr()));
        (*sg).sapi_headers.http_response_code = 200;
    }
    // SAFETY: on PHP's thread with SG filled above; the shim catches bailouts.
    let started = unsafe { shim::rfpm_shim_request_startup() };
    if started != shim::rfpm_shim_result::RFPM_SHIM_OK {
        end.startup_failed = true;
        // SAFETY: plain writes to this thread's globals; PHP is not running.
        unsafe {
            (*sg).request_info.path_translated = ptr::null_mut();
            (*sg).server_context = ptr::null_mut();
        }
        return end;
    }
    // The host lives for this call; the pointer is dropped before we return.
    let host: *mut (dyn Host + '_) = host;
    // SAFETY: only the lifetime is erased; RUNNING is cleared before `host`'s borrow
    // ends (below), and nothing else keeps the pointer.
    let host: *mut (dyn Host + 'static) = unsafe { std::mem::transmute(host) };
    RUNNING.with(|r| {
        *r.borrow_mut() = Some(Running {
            host,
            calls: 0,
            exited: false,
            fatal: false,
        });
    });
    // SAFETY: inside the request started above, on PHP's thread.
    unsafe { shim::rfpm_shim_worker_enter() };
    let mut err = 0;
    // SAFETY: inside the request; `err` is ours; the shim catches bailouts.
    let r = unsafe { shim::rfpm_shim_execute_primary(&raw mut err) };
    // SAFETY: as above.
    unsafe { shim::rfpm_shim_worker_leave() };
    if r == shim::rfpm_shim_result::RFPM_SHIM_FAILED {
        end.open_errno = Some(err);
    }
    let running = RUNNING.with(|r| r.borrow_mut().take());
    if let Some(running) = running {
        end.calls = running.calls;
        end.exited_in_request = running.exited;
        end.fatal = running.fatal;
    }
    if r == shim::rfpm_shim_result::RFPM_SHIM_BAILOUT {
        end.fatal = true;
    }
    // SAFETY: plain reads and writes of this thread's globals; PHP is not running. The
    // boot's context is the one that takes the output of the shutdown.
    unsafe {
        end.exit_status = sys::php_sys_exit_status();
        (*sg).server_context = ptr::from_ref(&ctx).cast_mut().cast::<c_void>();
    }
    // SAFETY: ends the request started above; the shim catches bailouts.
    unsafe { shim::rfpm_shim_request_shutdown() };
    // SAFETY: plain writes to this thread's globals; PHP is not running.
    unsafe {
        (*sg).server_context = ptr::null_mut();
        let ri = &mut (*sg).request_info;
        ri.path_translated = ptr::null_mut();
        ri.query_string = ptr::null_mut();
        ri.content_type = ptr::null();
        ri.request_uri = ptr::null_mut();
        ri.auth_user = ptr::null_mut();
        ri.auth_password = ptr::null_mut();
        ri.auth_digest = ptr::null_mut();
    }
    end
}

/// `frankenphp_handle_request()`: the next request from the host, served.
#[no_mangle]
extern "C" fn rfpm_rs_worker_handle(
    fci: *mut c_void,
    fcc: *mut c_void,
) -> shim::rfpm_shim_worker_status {
    crate::callbacks::guard(|| {
        let Some(host) = RUNNING.with(|r| {
            r.borrow_mut().as_mut().map(|run| {
                run.calls += 1;
                run.host
            })
        }) else {
            return shim::rfpm_shim_worker_status::RFPM_SHIM_WORKER_STOP;
        };
        let result = Cell::new(None::<Served>);
        let mut serve = |conn: &mut dyn Conn, req: &Request<'_>| {
            // SAFETY: called by the host from within this call, on PHP's thread, in
            // the worker script's request; fci/fcc are the caller's, alive for it.
            let served = unsafe { serve_one(conn, req, fci, fcc) };
            result.set(Some(served));
            served
        };
        // SAFETY: RUNNING holds the host of the `run` below us on this stack, whose
        // borrow outlives this call; no other reference to it is live (it is only
        // used here, and this function does not nest: a handler cannot call it).
        let got = unsafe { (*host).handle(&mut serve) };
        let Some(served) = result.get().filter(|_| got) else {
            return shim::rfpm_shim_worker_status::RFPM_SHIM_WORKER_STOP;
        };
        RUNNING.with(|r| {
            if let Some(run) = r.borrow_mut().as_mut() {
                run.exited |= served.exited;
                run.fatal |= served.fatal;
            }
        });
        if served.fatal {
            shim::rfpm_shim_worker_status::RFPM_SHIM_WORKER_BAILOUT
        } else if served.exited {
            shim::rfpm_shim_worker_status::RFPM_SHIM_WORKER_EXIT
        } else {
            shim::rfpm_shim_worker_status::RFPM_SHIM_WORKER_SERVED
        }
    })
}

/// The request_info fields a served request sets, saved to be put back after it.
struct Saved {
    server_context: *mut c_void,
    method: *const c_char,
    query: *mut c_char,
    content_type: *const c_char,
    content_length: i64,
    request_uri: *mut c_char,
}

/// One request through the handler.
///
/// # Safety
/// Inside the worker script's request, on PHP's thread, from `frankenphp_handle_request`;
/// `fci`/`fcc` are its handler's.
unsafe fn serve_one(
    conn: &mut dyn Conn,
    req: &Request<'_>,
    fci: *mut c_void,
    fcc: *mut c_void,
) -> Served {
    let ctx = Ctx::new(conn, req);
    let sg = sapi_globals();
    // SAFETY: plain reads and writes of this thread's globals while PHP waits for us.
    // `ctx` and the strings of `req` outlive the request: everything is put back
    // before we return.
    let saved = unsafe {
        let ri = &mut (*sg).request_info;
        let saved = Saved {
            server_context: (*sg).server_context,
            method: ri.request_method,
            query: ri.query_string,
            content_type: ri.content_type,
            content_length: ri.content_length,
            request_uri: ri.request_uri,
        };
        (*sg).server_context = ptr::from_ref(&ctx).cast_mut().cast::<c_void>();
        ri.request_method = req.method.map_or(ptr::null(), CStr::as_ptr);
        ri.query_string = req.query.as_ptr().cast_mut();
        ri.content_type = req.content_type.as_ptr();
        ri.content_length = req.content_length;
        ri.request_uri = req
            .request_uri
            .map_or(ptr::null_mut(), |s| s.as_ptr().cast_mut());
        (*sg).sapi_headers.http_response_code = 200;
        saved
    };
    if let Some(auth) = req.auth {
        // SAFETY: a NUL-terminated value alive for the call; PHP copies what it keeps
        // (freed by the request's end, sapi_deactivate).
        unsafe { sys::php_handle_auth_data(auth.as_ptr()) };
    }
    // SAFETY: PHP's auth_user is NULL or a string on its heap until the request ends;
    // the borrow ends with `started()`.
    let auth = unsafe { crate::cstr_opt((*sg).request_info.auth_user) }.map(CStr::to_bytes);
    ctx.conn().started(auth);
    // SAFETY: in the worker script's request; the shim catches bailouts.
    let r = unsafe { shim::rfpm_shim_worker_call(fci, fcc) };
    let mut served = Served {
        outcome: Outcome {
            status: 200,
            exit_status: 0,
            startup_failed: false,
        },
        exited: r == shim::rfpm_shim_result::RFPM_SHIM_FAILED,
        fatal: r == shim::rfpm_shim_result::RFPM_SHIM_BAILOUT,
    };
    // SAFETY: plain reads of this thread's globals; PHP is not running.
    unsafe {
        served.outcome.exit_status = sys::php_sys_exit_status();
        served.outcome.status = (*sg).sapi_headers.http_response_code;
    }
    {
        // SAFETY: PHP's header list, borrowed while PHP is not running; `end` is
        // dropped before the request's end frees the list.
        let headers = unsafe { crate::request::header_lines(&mut (*sg).sapi_headers) };
        // SAFETY: reads PHP's allocator statistics, on PHP's thread.
        let memory = unsafe { sys::zend_memory_peak_usage(true) };
        let end = RequestEnd {
            status: served.outcome.status,
            memory: u64::try_from(memory).unwrap_or(u64::MAX),
            headers,
        };
        ctx.conn().ended(&end);
    }
    // SAFETY: in the worker script's request; the shim guards what can bail out.
    unsafe { shim::rfpm_shim_worker_end() };
    // SAFETY: plain writes of this thread's globals; PHP is not running.
    unsafe {
        let ri = &mut (*sg).request_info;
        ri.request_method = saved.method;
        ri.query_string = saved.query;
        ri.content_type = saved.content_type;
        ri.content_length = saved.content_length;
        ri.request_uri = saved.request_uri;
        ri.auth_user = ptr::null_mut();
        ri.auth_password = ptr::null_mut();
        ri.auth_digest = ptr::null_mut();
        (*sg).server_context = saved.server_context;
    }
    served
}
