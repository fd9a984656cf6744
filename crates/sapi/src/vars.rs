//! The request's variables (FastCGI params after FPM's own adjustments), as PHP reads
//! them: `$_SERVER`, `$_ENV`, `getenv()`, `apache_request_headers()`.
use std::ffi::CStr;

/// The request's variables, borrowed by PHP for the whole request: the worker hands
/// over the decoded params themselves (no copy per request; copying every param showed
/// up in the hello-world profile, bench/RESULTS.md).
pub trait Vars {
    /// Every variable in php-fpm's order (most recently set first), the name as a C
    /// string. Names that cannot be C strings are left out.
    fn each(&self, f: &mut dyn FnMut(&CStr, &[u8]));
    /// The value of `name` (case-sensitive).
    fn get(&self, name: &[u8]) -> Option<&[u8]>;
    /// The value of `name` as C reads it (cut at its first NUL).
    fn get_cstr(&self, name: &[u8]) -> Option<&CStr>;
}

/// `apache_request_headers()` name of a param (reference §8.3): `HTTP_X_FOO_BAR` →
/// `X-Foo-Bar`, `CONTENT_TYPE` → `Content-Type`, `CONTENT_LENGTH` → `Content-Length`;
/// `None` for every other param.
pub fn header_name(name: &[u8]) -> Option<Vec<u8>> {
    match name {
        b"CONTENT_TYPE" => return Some(b"Content-Type".to_vec()),
        b"CONTENT_LENGTH" => return Some(b"Content-Length".to_vec()),
        _ => {}
    }
    // `HTTP_` alone names no header (php-fpm skips it).
    let rest = name.strip_prefix(b"HTTP_").filter(|r| !r.is_empty())?;
    let mut out = Vec::with_capacity(rest.len());
    let mut keep_next = true;
    for &c in rest {
        if c == b'_' {
            out.push(b'-');
            keep_next = true;
        } else if keep_next {
            out.push(c);
            keep_next = false;
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names() {
        assert_eq!(
            header_name(b"HTTP_X_FOO_BAR").as_deref(),
            Some(&b"X-Foo-Bar"[..])
        );
        assert_eq!(header_name(b"HTTP_FOO").as_deref(), Some(&b"Foo"[..]));
        assert_eq!(
            header_name(b"CONTENT_TYPE").as_deref(),
            Some(&b"Content-Type"[..])
        );
        assert_eq!(header_name(b"SCRIPT_NAME"), None);
        assert_eq!(header_name(b"HTTP_"), None);
    }
}
