//! Descriptors: pipes, reads and writes, close-on-exec, the standard streams. Every
//! descriptor is an `OwnedFd` (its owner closes it) or a `BorrowedFd` (a use of one).
use crate::errno::{cvt, cvt_size};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// The standard streams, the only descriptors addressed by number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdio {
    In,
    Out,
    Err,
}

impl Stdio {
    fn raw(self) -> RawFd {
        match self {
            Stdio::In => 0,
            Stdio::Out => 1,
            Stdio::Err => 2,
        }
    }

    /// The stream as a borrowed descriptor (open for the life of the process: it is
    /// only ever replaced with `dup2`, never closed).
    pub fn borrow(self) -> BorrowedFd<'static> {
        // SAFETY: fds 0, 1 and 2 stay open for the life of the process: rfpm never
        // closes them, it only replaces them (dup2 onto them is atomic).
        unsafe { BorrowedFd::borrow_raw(self.raw()) }
    }
}

/// Two fresh descriptors from a `pipe2` call, owned by the caller.
fn pipe_with(flags: libc::c_int) -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a live array of two ints the kernel writes into.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), flags) })?;
    // SAFETY: pipe2 succeeded: both numbers are fresh descriptors nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A non-blocking, close-on-exec pipe (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    pipe_with(libc::O_CLOEXEC | libc::O_NONBLOCK)
}

/// A close-on-exec pipe whose read end only is non-blocking (worker output capture:
/// the worker's writes block rather than lose data).
pub fn capture_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = pipe_with(libc::O_CLOEXEC)?;
    set_nonblocking(r.as_fd())?;
    Ok((r, w))
}

/// Turns on `O_NONBLOCK`.
pub fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: fcntl F_GETFL/F_SETFL read and set the flags of a descriptor the borrow
    // keeps open; no memory is passed.
    unsafe {
        let fl = cvt(libc::fcntl(fd.as_raw_fd(), libc::F_GETFL))?;
        cvt(libc::fcntl(
            fd.as_raw_fd(),
            libc::F_SETFL,
            fl | libc::O_NONBLOCK,
        ))
        .map(drop)
    }
}

/// write(2) once.
pub fn write(fd: BorrowedFd<'_>, data: &[u8]) -> io::Result<usize> {
    // SAFETY: `data` is a live slice, valid for reads of its length during the call;
    // the borrow keeps the descriptor open.
    cvt_size(unsafe { libc::write(fd.as_raw_fd(), data.as_ptr().cast(), data.len()) })
}

/// read(2) once.
pub fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a live, exclusively borrowed slice, valid for writes of its
    // length during the call; the borrow keeps the descriptor open.
    cvt_size(unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) })
}

/// Makes `target` refer to what `src` refers to (dup2): `target` keeps its number and
/// its owner, who will close it.
pub fn dup_onto(src: BorrowedFd<'_>, target: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: dup2 only changes the process's descriptor table; both descriptors are
    // kept open by their borrows; `target` is replaced atomically (no window in which
    // its number is free for another open).
    cvt(unsafe { libc::dup2(src.as_raw_fd(), target.as_raw_fd()) }).map(drop)
}

/// A duplicate of `fd` (close-on-exec).
pub fn duplicate(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    fd.try_clone_to_owned()
}

/// Sets or clears close-on-exec (cleared only on the sockets handed to the next image).
pub fn set_cloexec(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    // SAFETY: fcntl F_GETFD/F_SETFD read and set a flag of a descriptor the borrow
    // keeps open; no memory is passed.
    unsafe {
        let flags = cvt(libc::fcntl(fd.as_raw_fd(), libc::F_GETFD))?;
        let flags = if on {
            flags | libc::FD_CLOEXEC
        } else {
            flags & !libc::FD_CLOEXEC
        };
        cvt(libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, flags)).map(drop)
    }
}

/// Whether close-on-exec is set.
pub fn is_cloexec(fd: BorrowedFd<'_>) -> io::Result<bool> {
    // SAFETY: fcntl F_GETFD reads a flag of a descriptor the borrow keeps open.
    let flags = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) })?;
    Ok(flags & libc::FD_CLOEXEC != 0)
}

/// Opens /dev/null onto a standard stream.
pub fn devnull_onto(stream: Stdio) -> io::Result<()> {
    let f = std::fs::OpenOptions::new()
        .read(stream == Stdio::In)
        .write(stream != Stdio::In)
        .open("/dev/null")?;
    dup_onto(f.as_fd(), stream.borrow())
}

/// Whether `fd` is a terminal.
pub fn isatty(fd: BorrowedFd<'_>) -> bool {
    // SAFETY: isatty queries a descriptor the borrow keeps open; no memory is passed.
    unsafe { libc::isatty(fd.as_raw_fd()) == 1 }
}

/// Opens a log for appending (create with mode 0600, close-on-exec). The path is any
/// bytes (a configured path need not be UTF-8).
pub fn open_append(path: impl AsRef<std::path::Path>) -> io::Result<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    Ok(OwnedFd::from(f))
}

/// Takes ownership of a descriptor a previous image of this program left open for us
/// (`FPM_SOCKETS`), if that number is open; it is made close-on-exec again.
pub fn adopt_inherited(fd: RawFd) -> Option<OwnedFd> {
    if fd < 0 {
        return None;
    }
    // SAFETY: F_GETFD only queries a descriptor number; a closed one answers EBADF.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return None;
    }
    // SAFETY: the number is open and was handed to this image by the previous one
    // (its owner before exec); nothing in this image owns it yet, and the caller adopts
    // each number once (FPM_SOCKETS is read once, at start-up).
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let _ = set_cloexec(owned.as_fd(), true);
    Some(owned)
}

/// Waits until `fd` is readable (or at its end), at most `timeout_ms` (-1: forever).
/// `Ok(false)`: the time passed; `Err(Interrupted)`: a signal arrived.
pub fn poll_readable(fd: BorrowedFd<'_>, timeout_ms: i32) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one live pollfd the kernel reads and writes during the call; the borrow
    // keeps the descriptor open.
    let r = cvt(unsafe { libc::poll(&raw mut pfd, 1, timeout_ms) })?;
    Ok(r > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipe_round_trip_and_flags() {
        let (r, w) = pipe().expect("pipe");
        assert_eq!(write(w.as_fd(), b"abc").ok(), Some(3));
        assert_eq!(poll_readable(r.as_fd(), 0).ok(), Some(true));
        let mut buf = [0u8; 8];
        assert_eq!(read(r.as_fd(), &mut buf).ok(), Some(3));
        assert_eq!(&buf[..3], b"abc");
        // Empty and non-blocking: WouldBlock, not a hang.
        let e = read(r.as_fd(), &mut buf).err().map(|e| e.kind());
        assert_eq!(e, Some(io::ErrorKind::WouldBlock));
        assert_eq!(poll_readable(r.as_fd(), 0).ok(), Some(false));
        assert_eq!(is_cloexec(r.as_fd()).ok(), Some(true));
        set_cloexec(r.as_fd(), false).expect("clear");
        assert_eq!(is_cloexec(r.as_fd()).ok(), Some(false));
    }

    #[test]
    fn dup_onto_keeps_the_target_number() {
        let (r1, w1) = pipe().expect("pipe");
        let (r2, w2) = pipe().expect("pipe");
        let n = w2.as_raw_fd();
        dup_onto(w1.as_fd(), w2.as_fd()).expect("dup2");
        assert_eq!(w2.as_raw_fd(), n);
        assert_eq!(write(w2.as_fd(), b"x").ok(), Some(1));
        let mut b = [0u8; 1];
        assert_eq!(read(r1.as_fd(), &mut b).ok(), Some(1));
        drop(r2);
    }

    #[test]
    fn adopt_refuses_closed_numbers() {
        assert!(adopt_inherited(-1).is_none());
        // A number far above anything this test process has open.
        assert!(adopt_inherited(1_000_000).is_none());
    }
}
