//! Preparing a request for PHP: the paths resolved (`SCRIPT_FILENAME`, `PATH_INFO`,
//! …), the scoreboard told what runs, the action chosen (execute, status page, ping,
//! denied, not found), and the strings PHP reads (borrowed from the params where the
//! params hold them).
use crate::paths::{self, Kind, PathIni};
use crate::scoreboard::{now_us, RequestInfo, WorkerState};
use fcgi::params::Params;
use std::ffi::{CStr, CString};

use super::classic::*;

/// A request ready for PHP: what `sapi::Request` borrows.
pub(super) struct Prepared<'p> {
    /// The params, as the SAPI reads them.
    pub(super) vars: ParamVars<'p>,
    method: Option<&'p CStr>,
    query: &'p CStr,
    content_type: &'p CStr,
    content_length: i64,
    auth: Option<&'p CStr>,
    cookie: Option<&'p CStr>,
    /// The effective SCRIPT_NAME.
    uri: Option<CString>,
    /// The script to run.
    script: Option<CString>,
    php_self: CString,
    action: sapi::Action,
    /// `REQUEST_BODY_FILE`, when the web server sent one.
    pub(super) body_file: Option<Vec<u8>>,
}

impl Prepared<'_> {
    /// The request as the SAPI takes it.
    pub(super) fn request(&self) -> sapi::Request<'_> {
        sapi::Request {
            vars: &self.vars,
            method: self.method,
            query: self.query,
            content_type: self.content_type,
            content_length: self.content_length,
            request_uri: self.uri.as_deref(),
            path_translated: self.script.as_deref(),
            auth: self.auth,
            cookie: self.cookie,
            php_self: &self.php_self,
            action: self.action.clone(),
        }
    }
}

impl Worker<'_> {
    /// Resolves the request's paths (the params are completed as php-fpm completes
    /// them), records it in the slot (state Running) and decides what to do with it.
    pub(super) fn prepare<'p>(&self, params: &'p mut Params) -> Prepared<'p> {
        let fpm_ini = sapi::fpm_ini();
        let has_script_param =
            params.contains("SCRIPT_FILENAME") || params.contains("PATH_TRANSLATED");
        let path_ini = PathIni {
            // Worker mode: the application sees the paths as the web server sent them
            // (no file on disk has to match them).
            fix_pathinfo: fpm_ini.fix_pathinfo && self.pool.worker_script.is_none(),
            discard_path: fpm_ini.discard_path,
            // Only read (a hash lookup and two allocations) when resolve would use it.
            doc_root: if fpm_ini.fix_pathinfo && !params.contains("DOCUMENT_ROOT") {
                sapi::ini_string("doc_root")
                    .filter(|s| !s.is_empty())
                    .map(String::into_bytes)
            } else {
                None
            },
            proxy_decodes_path_info: sapi::COMPAT.apache_proxy_decodes_path,
        };
        let resolved = paths::resolve(params, &path_ini, &probe, &sapi::path_exists);
        // The request's strings as PHP reads them: borrowed from the params (their
        // arena keeps a NUL after every value) or made from the resolved paths.
        let p: &'p Params = params;
        let method = p.get_cstr("REQUEST_METHOD");
        let (query, content_type, content_length, auth) = if has_script_param {
            (
                p.get_cstr("QUERY_STRING").unwrap_or_default(),
                p.get_cstr("CONTENT_TYPE").unwrap_or_default(),
                p.get_str("CONTENT_LENGTH").map(atol).unwrap_or(0),
                p.get_cstr("HTTP_AUTHORIZATION"),
            )
        } else {
            (c"", c"", 0, None)
        };
        let uri = resolved.uri.map(c_string);
        let script = resolved.script.map(c_string);
        let php_self = c_string(resolved.php_self);

        self.slot.request_info(
            &RequestInfo {
                method: method.map_or(b"", CStr::to_bytes),
                uri: uri.as_deref().map_or(b"", CStr::to_bytes),
                query: query.to_bytes(),
                content_length,
            },
            now_us(),
        );
        // The worker is Running while it produces its own status page (reference §9.1).
        self.slot.set_state(WorkerState::Running, now_us());
        let head = method.is_some_and(|m| m.to_bytes() == b"HEAD");
        let action = self.action(
            method.is_some(),
            has_script_param,
            uri.as_deref(),
            script.as_deref(),
            query,
            head,
        );
        if action == sapi::Action::Execute {
            if let Some(s) = &script {
                self.slot.set_script(s.to_bytes());
            }
        }
        let body_file = p
            .get("REQUEST_BODY_FILE")
            .filter(|f| !f.is_empty())
            .map(<[u8]>::to_vec);
        Prepared {
            vars: ParamVars(p),
            method,
            query,
            content_type,
            content_length,
            auth,
            cookie: p.get_cstr("HTTP_COOKIE"),
            uri,
            script,
            php_self,
            action,
            body_file,
        }
    }

    pub(super) fn action(
        &self,
        has_method: bool,
        has_script_param: bool,
        uri: Option<&CStr>,
        script: Option<&CStr>,
        query: &CStr,
        head: bool,
    ) -> sapi::Action {
        let uri = uri.map(CStr::to_bytes);
        if !has_method {
            return sapi::Action::Execute;
        }
        if has_script_param {
            if let (Some(uri), Some((path, response))) = (uri, &self.pool.ping) {
                if uri == &path[..] {
                    return sapi::Action::Respond {
                        headers: vec![
                            "Content-Type: text/plain".into(),
                            "Expires: Thu, 01 Jan 1970 00:00:00 GMT".into(),
                            "Cache-Control: no-cache, no-store, must-revalidate, max-age=0".into(),
                        ],
                        body: response.clone(),
                    };
                }
            }
            if let (Some(uri), Some(path)) = (uri, &self.pool.status_path) {
                if uri == &path[..] {
                    return self.status_page(query.to_bytes(), head);
                }
            }
        }
        if self.pool.worker_script.is_some() {
            // Worker mode: the application serves every request (front controller).
            return sapi::Action::Execute;
        }
        let Some(script) = script.map(CStr::to_bytes) else {
            return sapi::Action::NotFound;
        };
        if !self.pool.limit_extensions.is_empty()
            && !self
                .pool
                .limit_extensions
                .iter()
                .any(|ext| script.len() > ext.len() && script.ends_with(ext))
        {
            return sapi::Action::Denied;
        }
        sapi::Action::Execute
    }
}

/// A C string of `v` up to its first NUL (as C would read it), without copying it.
pub(super) fn c_string(mut v: Vec<u8>) -> CString {
    if let Some(i) = v.iter().position(|&b| b == 0) {
        v.truncate(i);
    }
    CString::new(v).unwrap_or_default()
}

/// The request's params as the SAPI reads them.
pub(super) struct ParamVars<'a>(pub(super) &'a fcgi::params::Params);

impl sapi::Vars for ParamVars<'_> {
    fn each(&self, f: &mut dyn FnMut(&CStr, &[u8])) {
        for (name, value) in self.0.iter_lifo_cstr() {
            f(name, value);
        }
    }
    fn get(&self, name: &[u8]) -> Option<&[u8]> {
        self.0.get(name)
    }
    fn get_cstr(&self, name: &[u8]) -> Option<&CStr> {
        self.0.get_cstr(name)
    }
}

/// C `atol`: optional sign and leading digits, 0 otherwise.
pub(super) fn atol(s: &str) -> i64 {
    let s = s.trim_start();
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut n: i64 = 0;
    for b in digits.bytes().take_while(u8::is_ascii_digit) {
        n = n.saturating_mul(10).saturating_add(i64::from(b - b'0'));
    }
    if neg {
        -n
    } else {
        n
    }
}

pub(super) fn probe(path: &[u8]) -> Kind {
    use std::os::unix::ffi::OsStrExt;
    match std::fs::metadata(std::ffi::OsStr::from_bytes(path)) {
        Ok(m) if m.is_file() => Kind::File,
        Ok(_) => Kind::Other,
        Err(_) => Kind::Missing,
    }
}
