//! [`Bytes`]: a configuration value kept as the bytes the file holds.
//!
//! php-fpm hands paths, socket addresses, user and group names, environment variables
//! and PHP INI values to the operating system (or to PHP) as C strings: whatever bytes
//! the file holds, UTF-8 or not (a Latin-1 `é` in `chdir` is the byte 0xE9, and the
//! directory is the one whose name holds that byte). Such directives are held as
//! [`Bytes`]; messages show them exactly ([`std::fmt::Display`] through
//! [`rfpm_core::shown`], undone by the logger), `-tt` prints them exactly
//! ([`crate::dump_bytes`]).

use std::borrow::Cow;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::ops::Deref;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

/// A byte string from the configuration file (see the module documentation).
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bytes(Vec<u8>);

impl Bytes {
    pub fn new(v: impl Into<Vec<u8>>) -> Self {
        Bytes(v.into())
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }
    /// The value as the OS takes it (a path, an environment variable).
    pub fn as_os_str(&self) -> &OsStr {
        OsStr::from_bytes(&self.0)
    }
    pub fn as_path(&self) -> &Path {
        Path::new(self.as_os_str())
    }
    pub fn to_os_string(&self) -> OsString {
        OsString::from_vec(self.0.clone())
    }
    /// The value as text, U+FFFD for bytes that are not UTF-8 (messages, and values
    /// that are text by nature: a TCP address, a number).
    pub fn to_str_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.0)
    }
    /// The value as text if it is UTF-8.
    pub fn to_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }
}

impl Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<OsStr> for Bytes {
    fn as_ref(&self) -> &OsStr {
        self.as_os_str()
    }
}

impl AsRef<Path> for Bytes {
    fn as_ref(&self) -> &Path {
        self.as_path()
    }
}

impl From<&str> for Bytes {
    fn from(s: &str) -> Self {
        Bytes(s.as_bytes().to_vec())
    }
}

impl From<String> for Bytes {
    fn from(s: String) -> Self {
        Bytes(s.into_bytes())
    }
}

impl From<&[u8]> for Bytes {
    fn from(s: &[u8]) -> Self {
        Bytes(s.to_vec())
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Self {
        Bytes(v)
    }
}

impl From<&Path> for Bytes {
    fn from(p: &Path) -> Self {
        Bytes(p.as_os_str().as_bytes().to_vec())
    }
}

impl From<Bytes> for OsString {
    fn from(b: Bytes) -> Self {
        OsString::from_vec(b.0)
    }
}

impl From<Bytes> for std::path::PathBuf {
    fn from(b: Bytes) -> Self {
        OsString::from_vec(b.0).into()
    }
}

impl PartialEq<str> for Bytes {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for Bytes {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl fmt::Display for Bytes {
    /// For messages: exact once the logger writes them (see [`rfpm_core::shown`]);
    /// [`Bytes::to_str_lossy`] for text that must be UTF-8.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&rfpm_core::shown::Shown(&self.0), f)
    }
}

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_str() {
            Some(s) => fmt::Debug::fmt(s, f),
            None => write!(f, "b\"{}\"", self.0.escape_ascii()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_bytes_and_shows_them_exactly() {
        let b = Bytes::new(b"/tmp/caf\xe9".to_vec());
        assert_eq!(b.as_bytes(), b"/tmp/caf\xe9");
        assert_eq!(b.as_path().as_os_str().as_bytes(), b"/tmp/caf\xe9");
        assert_eq!(&*rfpm_core::shown::unshow(&b.to_string()), b"/tmp/caf\xe9");
        assert_eq!(b.to_str_lossy(), "/tmp/caf\u{fffd}");
        assert_eq!(format!("{b:?}"), "b\"/tmp/caf\\xe9\"");
        assert_eq!(Bytes::from("/x"), "/x");
        assert_eq!(format!("{:?}", Bytes::from("/x")), "\"/x\"");
    }
}
