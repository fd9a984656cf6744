//! The request's variables (FastCGI params after FPM's own adjustments), stored
//! NUL-terminated so PHP can borrow them for the whole request.
use std::ffi::CStr;

/// One variable: byte offsets and lengths of its name and value in [`Vars::buf`].
#[derive(Debug, Clone, Copy)]
struct Entry {
    name: (usize, usize),
    value: (usize, usize),
}

/// All names and values live in one buffer, each followed by a NUL, so a request costs
/// no allocation per variable and the buffer's capacity is reused by the next request
/// (two heap allocations per param per request showed up in the hello-world profile,
/// bench/RESULTS.md). PHP borrows into the buffer while the request runs; it is only
/// appended to before the request and cleared after it.
#[derive(Debug, Default, Clone)]
pub struct Vars {
    buf: Vec<u8>,
    /// In php-fpm's iteration order.
    entries: Vec<Entry>,
}

impl Vars {
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets every variable, keeping the allocations.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.entries.clear();
    }

    /// Appends a variable; names containing NUL cannot reach PHP and are dropped.
    pub fn push(&mut self, name: &[u8], value: &[u8]) {
        if name.contains(&0) {
            return;
        }
        let n = self.buf.len();
        self.buf.extend_from_slice(name);
        self.buf.push(0);
        let v = self.buf.len();
        self.buf.extend_from_slice(value);
        self.buf.push(0);
        self.entries.push(Entry {
            name: (n, name.len()),
            value: (v, value.len()),
        });
    }

    /// The bytes at `(start, len)`, without the NUL that follows them.
    fn slice(&self, (start, len): (usize, usize)) -> &[u8] {
        self.buf.get(start..start + len).unwrap_or_default()
    }

    /// The bytes at `(start, len)` and the NUL that follows them.
    fn with_nul(&self, (start, len): (usize, usize)) -> &[u8] {
        self.buf.get(start..=start + len).unwrap_or_default()
    }

    /// (name, value) pairs in order, values without the trailing NUL.
    pub fn params(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.entries
            .iter()
            .map(|e| (self.slice(e.name), self.slice(e.value)))
    }

    pub(crate) fn params_cstr(&self) -> impl Iterator<Item = (&CStr, &[u8])> {
        self.entries.iter().filter_map(|e| {
            let name = CStr::from_bytes_with_nul(self.with_nul(e.name)).ok()?;
            Some((name, self.slice(e.value)))
        })
    }

    fn find(&self, name: &[u8]) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.name.1 == name.len() && self.slice(e.name) == name)
    }

    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        self.find(name).map(|e| self.slice(e.value))
    }

    /// The value as a C string (cut at an embedded NUL, as C would see it).
    pub fn get_param_cstr(&self, name: &[u8]) -> Option<&CStr> {
        self.find(name)
            .and_then(|e| CStr::from_bytes_until_nul(self.with_nul(e.value)).ok())
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
        assert_eq!(v.get(b"B"), Some(&b"2"[..]));
        assert_eq!(v.get(b"BAD"), None);
        let names: Vec<_> = v
            .params_cstr()
            .map(|(n, _)| n.to_bytes().to_vec())
            .collect();
        assert_eq!(names, vec![b"B".to_vec(), b"A".to_vec()]);
        v.clear();
        assert_eq!(v.params().count(), 0);
        v.push(b"", b"");
        assert_eq!(v.params().collect::<Vec<_>>(), vec![(&b""[..], &b""[..])]);
        assert_eq!(v.get_param_cstr(b"").map(CStr::to_bytes), Some(&b""[..]));
    }
}
