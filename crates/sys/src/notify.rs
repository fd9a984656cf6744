//! systemd `Type=notify` (reference §10.1): datagrams to the socket named by
//! `NOTIFY_SOCKET`, sent by the master itself (no libsystemd).
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// An open notification socket.
pub struct Notifier {
    fd: OwnedFd,
    addr: libc::sockaddr_un,
    addr_len: libc::socklen_t,
}

impl Notifier {
    /// From `NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace).
    /// `None` when the variable is absent or unusable: nothing is sent then.
    pub fn from_env() -> Option<Notifier> {
        let path = std::env::var_os("NOTIFY_SOCKET")?;
        let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()).to_vec();
        Notifier::new(&bytes).ok()
    }

    pub fn new(path: &[u8]) -> io::Result<Notifier> {
        // SAFETY: all-zero is a valid sockaddr_un (plain integers and bytes).
        let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        addr.sun_family = libc::sa_family_t::try_from(libc::AF_UNIX)
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        if path.is_empty() || path.len() >= addr.sun_path.len() {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let abstract_ns = path[0] == b'@';
        for (dst, &b) in addr.sun_path.iter_mut().zip(path) {
            *dst = libc::c_char::from_ne_bytes([b]);
        }
        if abstract_ns {
            addr.sun_path[0] = 0;
        }
        let base = std::mem::size_of::<libc::sa_family_t>();
        let addr_len = libc::socklen_t::try_from(base + path.len() + usize::from(!abstract_ns))
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: socket takes integers and touches no memory of ours; the result is
        // checked.
        let fd = unsafe {
            libc::socket(
                libc::AF_UNIX,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                0,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Notifier { fd, addr, addr_len })
    }

    /// One datagram.
    pub fn send(&self, msg: &str) -> io::Result<()> {
        // SAFETY: `msg` is a live buffer read for its length; `addr` is our own
        // sockaddr_un, read for `addr_len` bytes (at most its size, checked in `new`);
        // the socket is ours.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                msg.as_ptr().cast(),
                msg.len(),
                libc::MSG_NOSIGNAL,
                std::ptr::from_ref(&self.addr).cast(),
                self.addr_len,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagram_reaches_a_listener() {
        let dir = std::env::temp_dir().join(format!("rfpm-notify-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let Ok(rx) = std::os::unix::net::UnixDatagram::bind(&path) else {
            panic!("bind {}", path.display());
        };
        let n = Notifier::new(std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()));
        let Ok(n) = n else { panic!("notifier") };
        assert!(n.send("READY=1").is_ok());
        let mut buf = [0u8; 64];
        let got = rx.recv(&mut buf).unwrap_or(0);
        assert_eq!(&buf[..got], b"READY=1");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
