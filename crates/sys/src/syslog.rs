//! syslog(3): an open connection and one message per call.
use std::ffi::CString;

/// An open syslog connection; `openlog` keeps a pointer to the ident, so it lives here.
#[derive(Debug)]
pub struct Syslog {
    _ident: CString,
}

impl Syslog {
    /// `openlog(ident, LOG_PID|LOG_CONS, facility)`.
    pub fn open(ident: &[u8], facility: libc::c_int) -> Syslog {
        let ident: Vec<u8> = ident.iter().copied().filter(|&b| b != 0).collect();
        let ident = CString::new(ident).unwrap_or_default();
        // SAFETY: `ident` is NUL-terminated; openlog keeps a pointer to it, and the
        // returned value owns it until `Drop` has called closelog.
        unsafe { libc::openlog(ident.as_ptr(), libc::LOG_PID | libc::LOG_CONS, facility) };
        Syslog { _ident: ident }
    }

    /// One message (NUL bytes dropped) at `priority`.
    pub fn send(&self, priority: libc::c_int, text: &[u8]) {
        let bytes: Vec<u8> = text.iter().copied().filter(|&b| b != 0).collect();
        let Ok(msg) = CString::new(bytes) else {
            return;
        };
        // SAFETY: the format is a static NUL-terminated "%s" that consumes exactly one
        // string argument, `msg`, a NUL-terminated string alive during the call.
        unsafe { libc::syslog(priority, c"%s".as_ptr(), msg.as_ptr()) };
    }
}

impl Drop for Syslog {
    fn drop(&mut self) {
        // SAFETY: closelog has no preconditions; after it syslog no longer uses the
        // ident, which is freed only after this.
        unsafe { libc::closelog() };
    }
}
