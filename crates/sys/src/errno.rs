//! Error numbers: php-fpm's `SYSERR` suffix and `strerror`.
use std::io;

/// A C return value: negative means `errno` says what went wrong.
pub(crate) fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A byte count from `read`, `write`, `recv`: negative means `errno`.
pub(crate) fn cvt_size(r: libc::ssize_t) -> io::Result<usize> {
    usize::try_from(r).map_err(|_| io::Error::last_os_error())
}

/// Text of an errno (`strerror`), e.g. `No such file or directory`.
pub fn strerror(code: i32) -> String {
    rfpm_core::logline::strerror(code)
}

/// php-fpm's "SYSERR suffix": `: <strerror> (<errno>)`.
pub fn syserr(e: &io::Error) -> String {
    rfpm_core::logline::syserr_suffix(e.raw_os_error().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    #[test]
    fn texts() {
        assert_eq!(super::strerror(libc::ENOENT), "No such file or directory");
        let e = std::io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(super::syserr(&e), ": Permission denied (13)");
    }
}
