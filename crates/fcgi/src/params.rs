//! FastCGI params of one request: byte names and values in arrival order.

use std::collections::HashMap;
use std::ffi::CStr;
use std::fmt;

/// Slots of the small open-addressed index (a power of two).
const SLOTS: usize = 128;
/// Above this many entries, lookups go through a `HashMap` instead of the small index
/// (kept at most half full, so probes stay short).
const INDEX_THRESHOLD: usize = SLOTS / 2;

#[derive(Clone, Copy)]
struct Entry {
    name: (usize, usize),
    value: (usize, usize),
}

/// Params in arrival order. A name set again keeps its first position and takes the
/// new value (php-fpm's rule); a removed name set again goes to the end.
///
/// Names and values live in one byte arena, each followed by a NUL, so decoding a
/// request does not allocate per pair and C code can borrow every name and value as a
/// C string for as long as the params live ([`Params::get_cstr`],
/// [`Params::iter_lifo_cstr`]). [`Params::iter_lifo`] yields php-fpm's order (most
/// recently added first, §7.10).
#[derive(Clone)]
pub struct Params {
    arena: Vec<u8>,
    entries: Vec<Entry>,
    /// Open addressing over [`hash`]: entry index + 1 per slot, 0 = free. Every name
    /// check of a typical request (~30 params: one per param received, for duplicates,
    /// and the lookups of path fixing) costs one hash and usually one comparison.
    slots: [u16; SLOTS],
    /// Beyond [`INDEX_THRESHOLD`] entries.
    index: Option<HashMap<Vec<u8>, usize>>,
}

impl Default for Params {
    fn default() -> Params {
        Params {
            arena: Vec::new(),
            entries: Vec::new(),
            slots: [0; SLOTS],
            index: None,
        }
    }
}

/// A cheap hash of a name: its length and a few of its bytes. CGI names share
/// prefixes (`HTTP_`, `REQUEST_`, `SERVER_`), so the tail and the middle carry most of
/// the difference.
fn hash(name: &[u8]) -> usize {
    let n = name.len();
    let (first, mid, last2, last) = match name {
        [] => (0, 0, 0, 0),
        [only] => (*only, 0, 0, *only),
        [first, .., last] => (*first, name[n / 2], name[n - 2], *last),
    };
    let h = n
        .wrapping_mul(0x9e37)
        .wrapping_add(usize::from(first) * 31)
        .wrapping_add(usize::from(mid) * 0x2f1)
        .wrapping_add(usize::from(last2) * 0x61)
        .wrapping_add(usize::from(last) * 0x3b5);
    (h ^ (h >> 7)) & (SLOTS - 1)
}

impl Params {
    pub fn new() -> Params {
        Params::default()
    }

    /// Room for `entries` params totalling `bytes` bytes of names and values.
    pub fn with_capacity(entries: usize, bytes: usize) -> Params {
        Params {
            arena: Vec::with_capacity(bytes + 2 * entries),
            entries: Vec::with_capacity(entries),
            ..Params::default()
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes of all names and values (including values replaced since and the NUL after
    /// each).
    pub fn arena_len(&self) -> usize {
        self.arena.len()
    }

    /// Bytes the arena can hold without growing.
    pub fn arena_capacity(&self) -> usize {
        self.arena.capacity()
    }

    fn slice(&self, (start, len): (usize, usize)) -> &[u8] {
        &self.arena[start..start + len]
    }

    /// The bytes at `(start, len)` and the NUL after them.
    fn with_nul(&self, (start, len): (usize, usize)) -> &[u8] {
        &self.arena[start..=start + len]
    }

    /// Indexes every entry again: the small index up to [`INDEX_THRESHOLD`] entries,
    /// a `HashMap` beyond.
    fn reindex(&mut self) {
        self.slots = [0; SLOTS];
        self.index = None;
        if self.entries.len() > INDEX_THRESHOLD {
            let mut m = HashMap::with_capacity(self.entries.len() * 2);
            for (i, e) in self.entries.iter().enumerate() {
                m.insert(self.slice(e.name).to_vec(), i);
            }
            self.index = Some(m);
            return;
        }
        for i in 0..self.entries.len() {
            // Names are unique: the probe ends at a free slot.
            if let Err(slot) = self.probe(self.slice(self.entries[i].name)) {
                // i < INDEX_THRESHOLD: fits in u16.
                #[allow(clippy::cast_possible_truncation)]
                let n = (i + 1) as u16;
                self.slots[slot] = n;
            }
        }
    }

    fn find(&self, name: &[u8]) -> Option<usize> {
        match &self.index {
            Some(m) => m.get(name).copied(),
            None => self.probe(name).ok(),
        }
    }

    /// The small index's probe sequence for `name`: `Ok(entry)` where it is, or
    /// `Err(slot)`, the free slot it would go to.
    fn probe(&self, name: &[u8]) -> Result<usize, usize> {
        let mut h = hash(name);
        loop {
            let i = usize::from(self.slots[h]);
            if i == 0 {
                return Err(h);
            }
            let e = self.entries[i - 1].name;
            if e.1 == name.len() && self.slice(e) == name {
                return Ok(i - 1);
            }
            h = (h + 1) & (SLOTS - 1);
        }
    }

    /// Appends `b` and a NUL; the range excludes the NUL.
    fn push_bytes(&mut self, b: &[u8]) -> (usize, usize) {
        let start = self.arena.len();
        self.arena.reserve(b.len() + 1);
        self.arena.extend_from_slice(b);
        self.arena.push(0);
        (start, b.len())
    }

    /// Entry `i` takes `value`: written over the old one when it fits (its NUL moves
    /// up), appended otherwise.
    fn replace_value(&mut self, i: usize, value: &[u8]) {
        let old = self.entries[i].value;
        if value.len() <= old.1 {
            self.arena[old.0..old.0 + value.len()].copy_from_slice(value);
            self.arena[old.0 + value.len()] = 0;
            self.entries[i].value = (old.0, value.len());
        } else {
            self.entries[i].value = self.push_bytes(value);
        }
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

    /// The value of `name` as a C string: cut at its first NUL, as C code reads it.
    pub fn get_cstr(&self, name: impl AsRef<[u8]>) -> Option<&CStr> {
        let i = self.find(name.as_ref())?;
        CStr::from_bytes_until_nul(self.with_nul(self.entries[i].value)).ok()
    }

    /// (name, value) in php-fpm's order like [`Params::iter_lifo`], both as C reads
    /// them: the name as a C string and the value, each cut at its first NUL (a NUL also
    /// follows the value in memory). php-fpm registers `$_SERVER` this way: a param named
    /// `Y\0Z` becomes `$_SERVER['Y']`, while lookups by name (`getenv('Y')`) miss it.
    pub fn iter_lifo_cstr(&self) -> impl Iterator<Item = (&CStr, &[u8])> {
        self.entries.iter().rev().filter_map(|e| {
            let name = CStr::from_bytes_until_nul(self.with_nul(e.name)).ok()?;
            let value = CStr::from_bytes_until_nul(self.with_nul(e.value)).ok()?;
            Some((name, value.to_bytes()))
        })
    }

    /// Sets `name` to `value`: replaces the value in place (keeping the position) or
    /// appends a new entry. Returns the previous value.
    pub fn insert(&mut self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Option<Vec<u8>> {
        let name = name.as_ref();
        let old = self
            .find(name)
            .map(|i| self.slice(self.entries[i].value).to_vec());
        self.set(name, value);
        old
    }

    /// Like [`Params::insert`], without returning the old value.
    pub fn set(&mut self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        let (name, value) = (name.as_ref(), value.as_ref());
        if self.index.is_some() {
            match self.find(name) {
                Some(i) => self.replace_value(i, value),
                None => {
                    let i = self.push_entry(name, value);
                    if let Some(m) = &mut self.index {
                        m.insert(name.to_vec(), i);
                    }
                }
            }
            return;
        }
        // One probe sequence finds the name or the free slot it goes to (every param
        // of a request is set once while it is decoded).
        match self.probe(name) {
            Ok(i) => self.replace_value(i, value),
            Err(slot) => {
                let i = self.push_entry(name, value);
                if i < INDEX_THRESHOLD {
                    // i < INDEX_THRESHOLD: fits in u16.
                    #[allow(clippy::cast_possible_truncation)]
                    let n = (i + 1) as u16;
                    self.slots[slot] = n;
                } else {
                    self.reindex();
                }
            }
        }
    }

    /// Appends the entry's bytes (each followed by a NUL) and the entry; its index.
    fn push_entry(&mut self, name: &[u8], value: &[u8]) -> usize {
        let name = self.push_bytes(name);
        let value = self.push_bytes(value);
        self.entries.push(Entry { name, value });
        self.entries.len() - 1
    }

    /// Removes `name`, returning its value.
    pub fn remove(&mut self, name: impl AsRef<[u8]>) -> Option<Vec<u8>> {
        let i = self.find(name.as_ref())?;
        let e = self.entries.remove(i);
        // Later entries moved down (rare: path fixing only).
        self.reindex();
        Some(self.slice(e.value).to_vec())
    }

    /// Removes every entry (keeps the allocations).
    pub fn clear(&mut self) {
        self.arena.clear();
        self.entries.clear();
        self.index = None;
        self.slots = [0; SLOTS];
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
    fn c_strings_borrow_the_arena() {
        let mut p = Params::new();
        p.set("A", "long value");
        p.set("B\0x", "hidden");
        p.set("C", "v\0after");
        p.set("", "");
        assert_eq!(
            p.get_cstr("A").map(CStr::to_bytes),
            Some(&b"long value"[..])
        );
        // A shorter value written over a longer one ends at its own length.
        p.set("A", "s");
        assert_eq!(p.get_cstr("A").map(CStr::to_bytes), Some(&b"s"[..]));
        assert_eq!(p.get("A"), Some(&b"s"[..]));
        // C sees a value up to its first NUL; the byte API sees all of it.
        assert_eq!(p.get_cstr("C").map(CStr::to_bytes), Some(&b"v"[..]));
        assert_eq!(p.get("C"), Some(&b"v\0after"[..]));
        assert_eq!(p.get_cstr(""), Some(c""));
        assert_eq!(p.get_cstr("missing"), None);
        let all: Vec<(Vec<u8>, Vec<u8>)> = p
            .iter_lifo_cstr()
            .map(|(n, v)| (n.to_bytes().to_vec(), v.to_vec()))
            .collect();
        assert_eq!(
            all,
            vec![
                (b"".to_vec(), b"".to_vec()),
                (b"C".to_vec(), b"v".to_vec()),
                (b"B".to_vec(), b"hidden".to_vec()),
                (b"A".to_vec(), b"s".to_vec()),
            ],
            "names and values end at their first NUL, as php-fpm registers $_SERVER"
        );
        assert_eq!(
            p.get("B"),
            None,
            "a lookup by the cut name misses (as php-fpm's)"
        );
        p.clear();
        assert!(p.is_empty());
        assert_eq!(p.get("A"), None);
        assert_eq!(p.iter_lifo_cstr().count(), 0);
    }

    #[test]
    fn colliding_names_and_removal_keep_lookups_right() {
        // Same length, same first, middle and last bytes: one hash slot for all.
        let names: Vec<String> = (0..40).map(|i| format!("X{:02}QQZ", i)).collect();
        let mut p = Params::new();
        for (i, n) in names.iter().enumerate() {
            p.set(n, i.to_string());
        }
        for (i, n) in names.iter().enumerate() {
            assert_eq!(p.get_str(n), Some(i.to_string().as_str()), "{n}");
        }
        assert_eq!(p.remove(&names[3]), Some(b"3".to_vec()));
        for (i, n) in names.iter().enumerate() {
            let want = (i != 3).then(|| i.to_string());
            assert_eq!(p.get_str(n).map(str::to_string), want, "{n}");
        }
        p.set(&names[3], "back");
        assert_eq!(
            p.iter().next_back(),
            Some((names[3].as_bytes(), &b"back"[..]))
        );
        assert_eq!(p.len(), 40);
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
