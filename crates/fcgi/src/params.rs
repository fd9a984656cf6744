//! FastCGI params of one request: byte names and values in arrival order.

use std::collections::HashMap;
use std::fmt;

/// Above this many entries, lookups go through a hash index instead of a linear scan.
const INDEX_THRESHOLD: usize = 32;

#[derive(Clone, Copy)]
struct Entry {
    name: (usize, usize),
    value: (usize, usize),
}

/// Params in arrival order. A name set again keeps its first position and takes the
/// new value (php-fpm's rule); a removed name set again goes to the end.
///
/// Names and values live in one byte arena, so decoding a request does not allocate per
/// pair. [`Params::iter_lifo`] yields php-fpm's order (most recently added first, §7.10).
#[derive(Clone, Default)]
pub struct Params {
    arena: Vec<u8>,
    entries: Vec<Entry>,
    index: Option<HashMap<Vec<u8>, usize>>,
    /// One bit per name shape ([`fingerprint`]) of every name added: a name whose bit is
    /// clear is absent without a scan (most lookups: every new param's duplicate check,
    /// and the optional params a request does not carry).
    seen: u64,
}

/// A bit standing for a name's length, first and last byte.
fn fingerprint(name: &[u8]) -> u64 {
    let (first, last) = match (name.first(), name.last()) {
        (Some(&f), Some(&l)) => (usize::from(f), usize::from(l)),
        _ => (0, 0),
    };
    1u64 << ((name.len().wrapping_mul(31) + first * 7 + last) % 64)
}

impl Params {
    pub fn new() -> Params {
        Params::default()
    }

    /// Room for `entries` params totalling `bytes` bytes of names and values.
    pub fn with_capacity(entries: usize, bytes: usize) -> Params {
        Params {
            arena: Vec::with_capacity(bytes),
            entries: Vec::with_capacity(entries),
            index: None,
            seen: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes of all names and values (including values replaced since).
    pub fn arena_len(&self) -> usize {
        self.arena.len()
    }

    fn slice(&self, (start, len): (usize, usize)) -> &[u8] {
        &self.arena[start..start + len]
    }

    fn position(&mut self, name: &[u8]) -> Option<usize> {
        if self.entries.len() > INDEX_THRESHOLD {
            if self.index.is_none() {
                let mut m = HashMap::with_capacity(self.entries.len() * 2);
                for (i, e) in self.entries.iter().enumerate() {
                    m.insert(self.slice(e.name).to_vec(), i);
                }
                self.index = Some(m);
            }
            return self.index.as_ref().and_then(|m| m.get(name).copied());
        }
        self.find(name)
    }

    fn find(&self, name: &[u8]) -> Option<usize> {
        if let Some(m) = &self.index {
            return m.get(name).copied();
        }
        if self.seen & fingerprint(name) == 0 {
            return None;
        }
        // Many CGI names share a length (REMOTE_ADDR, SERVER_PORT, ...): comparing the
        // last byte first spares most memcmp calls of the duplicate check on every set.
        let last = name.last().copied();
        self.entries.iter().position(|e| {
            e.name.1 == name.len()
                && match last {
                    Some(b) => self.arena[e.name.0 + e.name.1 - 1] == b,
                    None => true,
                }
                && self.slice(e.name) == name
        })
    }

    fn push_bytes(&mut self, b: &[u8]) -> (usize, usize) {
        let start = self.arena.len();
        self.arena.extend_from_slice(b);
        (start, b.len())
    }

    /// The value of `name` (case-sensitive).
    pub fn get(&self, name: impl AsRef<[u8]>) -> Option<&[u8]> {
        self.find(name.as_ref())
            .map(|i| self.slice(self.entries[i].value))
    }

    /// The value of `name` as UTF-8 text, if it is valid UTF-8.
    pub fn get_str(&self, name: impl AsRef<[u8]>) -> Option<&str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    pub fn contains(&self, name: impl AsRef<[u8]>) -> bool {
        self.find(name.as_ref()).is_some()
    }

    /// Sets `name` to `value`: replaces the value in place (keeping the position) or
    /// appends a new entry. Returns the previous value.
    pub fn insert(&mut self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Option<Vec<u8>> {
        let (name, value) = (name.as_ref(), value.as_ref());
        match self.position(name) {
            Some(i) => {
                let old_range = self.entries[i].value;
                let old = self.slice(old_range).to_vec();
                if value.len() <= old_range.1 {
                    let start = old_range.0;
                    self.arena[start..start + value.len()].copy_from_slice(value);
                    self.entries[i].value = (start, value.len());
                } else {
                    self.entries[i].value = self.push_bytes(value);
                }
                Some(old)
            }
            None => {
                self.append_new(name, value);
                None
            }
        }
    }

    /// Like [`Params::insert`], without returning the old value.
    pub fn set(&mut self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        let (name, value) = (name.as_ref(), value.as_ref());
        match self.position(name) {
            Some(i) => {
                let old = self.entries[i].value;
                if value.len() <= old.1 {
                    self.arena[old.0..old.0 + value.len()].copy_from_slice(value);
                    self.entries[i].value = (old.0, value.len());
                } else {
                    self.entries[i].value = self.push_bytes(value);
                }
            }
            None => self.append_new(name, value),
        }
    }

    fn append_new(&mut self, name: &[u8], value: &[u8]) {
        let n = self.push_bytes(name);
        let v = self.push_bytes(value);
        if let Some(m) = &mut self.index {
            m.insert(name.to_vec(), self.entries.len());
        }
        self.seen |= fingerprint(name);
        self.entries.push(Entry { name: n, value: v });
    }

    /// Removes `name`, returning its value.
    pub fn remove(&mut self, name: impl AsRef<[u8]>) -> Option<Vec<u8>> {
        let i = self.position(name.as_ref())?;
        let e = self.entries.remove(i);
        self.index = None;
        Some(self.slice(e.value).to_vec())
    }

    /// Removes every entry (keeps the allocations).
    pub fn clear(&mut self) {
        self.arena.clear();
        self.entries.clear();
        self.index = None;
        self.seen = 0;
    }

    /// (name, value) in arrival order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            params: self,
            inner: self.entries.iter(),
        }
    }

    /// (name, value) in php-fpm's order: most recently added name first.
    pub fn iter_lifo(&self) -> std::iter::Rev<Iter<'_>> {
        self.iter().rev()
    }
}

/// Iterator over params in arrival order (reversible).
pub struct Iter<'a> {
    params: &'a Params,
    inner: std::slice::Iter<'a, Entry>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        let e = self.inner.next()?;
        Some((self.params.slice(e.name), self.params.slice(e.value)))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let e = self.inner.next_back()?;
        Some((self.params.slice(e.name), self.params.slice(e.value)))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a Params {
    type Item = (&'a [u8], &'a [u8]);
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl<N: AsRef<[u8]>, V: AsRef<[u8]>> FromIterator<(N, V)> for Params {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Params {
        let mut p = Params::new();
        for (n, v) in iter {
            p.set(n, v);
        }
        p
    }
}

impl PartialEq for Params {
    fn eq(&self, other: &Params) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Params {}

impl fmt::Debug for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.iter()
                    .map(|(n, v)| (String::from_utf8_lossy(n), String::from_utf8_lossy(v))),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(p: &Params) -> Vec<&[u8]> {
        p.iter().map(|(n, _)| n).collect()
    }

    #[test]
    fn order_and_replacement() {
        let mut p = Params::new();
        p.set("A", "1");
        p.set("B", "2");
        p.set("C", "3");
        assert_eq!(p.insert("A", "longer value"), Some(b"1".to_vec()));
        assert_eq!(p.get("A"), Some(&b"longer value"[..]));
        assert_eq!(names(&p), [b"A", b"B", b"C"]);
        let lifo: Vec<_> = p.iter_lifo().map(|(n, _)| n).collect();
        assert_eq!(lifo, [b"C", b"B", b"A"]);
        p.set("B", "");
        assert_eq!(p.get("B"), Some(&b""[..]));
        assert_eq!(p.remove("A"), Some(b"longer value".to_vec()));
        assert_eq!(p.get("A"), None);
        p.set("A", "again");
        assert_eq!(names(&p), [b"B", b"C", b"A"]);
        assert_eq!(p.len(), 3);
        assert!(p.get("a").is_none(), "names are case-sensitive");
        assert_eq!(p.get_str("C"), Some("3"));
    }

    #[test]
    fn many_params_use_the_index() {
        let mut p = Params::new();
        for i in 0..1000 {
            p.set(format!("N{i}"), format!("{i}"));
        }
        for i in (0..1000).step_by(7) {
            p.set(format!("N{i}"), "x");
        }
        assert_eq!(p.len(), 1000);
        assert_eq!(p.get("N14"), Some(&b"x"[..]));
        assert_eq!(p.get("N15"), Some(&b"15"[..]));
        assert_eq!(p.remove("N500"), Some(b"500".to_vec()));
        assert_eq!(p.get("N501"), Some(&b"501"[..]));
        assert_eq!(p.get("N500"), None);
        p.set("N500", "back");
        assert_eq!(p.iter().next_back(), Some((&b"N500"[..], &b"back"[..])));
        assert_eq!(p.iter().next(), Some((&b"N0"[..], &b"x"[..])));
    }
}
