//! The request's variables (FastCGI params after FPM's own adjustments), stored
//! NUL-terminated so PHP can borrow them for the whole request.
use std::ffi::{CStr, CString};

#[derive(Debug, Default, Clone)]
pub struct Vars {
    /// (name, value + trailing NUL), in php-fpm's iteration order.
    entries: Vec<(CString, Vec<u8>)>,
}

impl Vars {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Appends a variable; names containing NUL cannot reach PHP and are dropped.
    pub fn push(&mut self, name: &[u8], value: &[u8]) {
        let Ok(name) = CString::new(name) else { return };
        let mut v = Vec::with_capacity(value.len() + 1);
        v.extend_from_slice(value);
        v.push(0);
        self.entries.push((name, v));
    }

    /// (name, value) pairs in order, values without the trailing NUL.
    pub fn params(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.entries
            .iter()
            .map(|(n, v)| (n.to_bytes(), &v[..v.len() - 1]))
    }

    pub(crate) fn params_cstr(&self) -> impl Iterator<Item = (&CStr, &[u8])> {
        self.entries
            .iter()
            .map(|(n, v)| (n.as_c_str(), &v[..v.len() - 1]))
    }

    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|(n, _)| n.to_bytes() == name)
            .map(|(_, v)| &v[..v.len() - 1])
    }

    /// The value as a C string (cut at an embedded NUL, as C would see it).
    pub fn get_param_cstr(&self, name: &[u8]) -> Option<&CStr> {
        self.entries
            .iter()
            .find(|(n, _)| n.to_bytes() == name)
            .and_then(|(_, v)| CStr::from_bytes_until_nul(v).ok())
    }
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

    #[test]
    fn values_keep_order_and_nul() {
        let mut v = Vars::new();
        v.push(b"B", b"2");
        v.push(b"A", b"1\0x");
        v.push(b"BAD\0", b"z");
        let all: Vec<_> = v.params().collect();
        assert_eq!(all, vec![(&b"B"[..], &b"2"[..]), (&b"A"[..], &b"1\0x"[..])]);
        assert_eq!(v.get_param_cstr(b"A").map(CStr::to_bytes), Some(&b"1"[..]));
    }
}
