//! Preparing a request for PHP: which action (execute, status page, ping, denied, not
//! found), the params as the SAPI reads them, and small C-like helpers.
use crate::paths::Kind;
use std::ffi::{CStr, CString};

use super::classic::*;

impl Worker<'_> {
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
