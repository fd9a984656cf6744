//! Sockets beyond what std offers: accept that reports EINTR, non-blocking peeks, the
//! listen queue of a TCP socket.
use crate::errno::{cvt, cvt_size};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// accept(2) that returns EINTR to the caller (std retries it, which would hide
/// SIGQUIT from an idle worker). The new descriptor is close-on-exec.
pub fn accept(listener: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: NULL address pointers ask for no peer address; the borrow keeps the
    // listening descriptor open during the call.
    let r = cvt(unsafe {
        libc::accept4(
            listener.as_raw_fd(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_CLOEXEC,
        )
    })?;
    // SAFETY: accept4 succeeded: `r` is a fresh descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(r) })
}

/// accept(2) of a non-blocking listener for the master's event loop: the new
/// descriptor is non-blocking and close-on-exec; `WouldBlock` when none is waiting.
pub fn accept_nonblocking(listener: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: NULL address pointers ask for no peer address; the borrow keeps the
    // listening descriptor open during the call.
    let r = cvt(unsafe {
        libc::accept4(
            listener.as_raw_fd(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
        )
    })?;
    // SAFETY: accept4 succeeded: `r` is a fresh descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(r) })
}

/// send(2) that never blocks and never raises SIGPIPE; `WouldBlock` when the send
/// buffer is full.
pub fn send_nowait(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a live slice valid for reads of its length during the call;
    // the borrow keeps the descriptor open.
    cvt_size(unsafe {
        libc::send(
            fd.as_raw_fd(),
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    })
}

/// recv(2) that never blocks (`MSG_DONTWAIT`); `WouldBlock` when nothing is there.
pub fn recv_nowait(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a live, exclusively borrowed slice valid for writes of its
    // length during the call; the borrow keeps the descriptor open.
    cvt_size(unsafe {
        libc::recv(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
        )
    })
}

/// Bytes queued for reading on a socket (`FIONREAD`); `None` if the kernel cannot say.
pub fn readable_bytes(fd: BorrowedFd<'_>) -> Option<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer to the live local `n`; the
    // borrow keeps the descriptor open.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, std::ptr::from_mut(&mut n)) };
    (r == 0).then(|| usize::try_from(n).ok()).flatten()
}

/// Bytes written to a socket that the peer has not yet acknowledged or read
/// (`TIOCOUTQ`, the send queue); `None` if the kernel cannot say.
pub fn unsent_bytes(fd: BorrowedFd<'_>) -> Option<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: TIOCOUTQ writes one int through the pointer to the live local `n`; the
    // borrow keeps the descriptor open.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCOUTQ, &raw mut n) };
    (r == 0).then(|| usize::try_from(n).ok()).flatten()
}

/// Half-closes a connection (no more writes from us).
pub fn shutdown_write(fd: BorrowedFd<'_>) {
    // SAFETY: shutdown takes a descriptor the borrow keeps open and an integer.
    unsafe {
        libc::shutdown(fd.as_raw_fd(), libc::SHUT_WR);
    }
}

/// A listening TCP socket's accept queue: (waiting connections, capacity), from
/// `TCP_INFO` (Linux reports them in `tcpi_unacked` and `tcpi_sacked` for a socket in
/// LISTEN state). `None` for other sockets.
pub fn listen_queue(fd: BorrowedFd<'_>) -> Option<(u64, u64)> {
    // SAFETY: all-zero is a valid tcp_info (plain integers).
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = libc::socklen_t::try_from(std::mem::size_of::<libc::tcp_info>()).ok()?;
    // SAFETY: getsockopt writes at most `len` bytes into the live local `info` and the
    // actual length into `len`; the borrow keeps the descriptor open.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            std::ptr::from_mut(&mut info).cast(),
            &raw mut len,
        )
    };
    // TCP_LISTEN is state 10 in the kernel's numbering.
    if r != 0 || info.tcpi_state != 10 {
        return None;
    }
    Some((u64::from(info.tcpi_unacked), u64::from(info.tcpi_sacked)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn listen_queue_of_a_tcp_listener() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let q = listen_queue(l.as_fd());
        assert_eq!(q.map(|(waiting, _)| waiting), Some(0));
        let (a, _b) = std::os::unix::net::UnixStream::pair().expect("pair");
        assert_eq!(listen_queue(a.as_fd()), None);
    }

    #[test]
    fn peeks_do_not_block() {
        let (a, b) = std::os::unix::net::UnixStream::pair().expect("pair");
        let mut buf = [0u8; 4];
        let e = recv_nowait(a.as_fd(), &mut buf).err().map(|e| e.kind());
        assert_eq!(e, Some(io::ErrorKind::WouldBlock));
        std::io::Write::write_all(&mut &b, b"hi").expect("write");
        assert_eq!(readable_bytes(a.as_fd()), Some(2));
        assert!(unsent_bytes(b.as_fd()).is_some());
        shutdown_write(b.as_fd());
        assert_eq!(recv_nowait(a.as_fd(), &mut buf).ok(), Some(2));
        assert_eq!(recv_nowait(a.as_fd(), &mut buf).ok(), Some(0));
    }
}
