//! The master's event loop: one level-triggered epoll instance (edge-triggered where a
//! watch asks for it), tokens chosen by the caller.
use crate::errno::cvt;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// Events one `wait` returns at most.
const BATCH: usize = 32;
const BATCH_C: libc::c_int = 32;

/// An epoll instance. A forked worker closes its copy of the master's (`close`); after
/// that every call answers `EBADF`.
pub struct Epoll(Option<OwnedFd>);

/// How a descriptor is watched: readable, level- or edge-triggered; or writable
/// (level-triggered), for a connection with output the kernel could not take yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Level,
    Edge,
    Writable,
}

/// An epoll flag as the `events` field holds it (libc declares them `c_int`; EPOLLET
/// is bit 31, negative as an int): the same bits.
fn flag(bits: libc::c_int) -> u32 {
    u32::from_ne_bytes(bits.to_ne_bytes())
}

fn event(token: u64, trigger: Trigger) -> libc::epoll_event {
    let events = match trigger {
        Trigger::Level => flag(libc::EPOLLIN),
        Trigger::Edge => flag(libc::EPOLLIN) | flag(libc::EPOLLET),
        Trigger::Writable => flag(libc::EPOLLOUT),
    };
    libc::epoll_event { events, u64: token }
}

impl Epoll {
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: epoll_create1 takes a flag and touches no memory of ours.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: epoll_create1 succeeded: `fd` is fresh and nothing else owns it.
        Ok(Epoll(Some(unsafe { OwnedFd::from_raw_fd(fd) })))
    }

    /// Closes the instance (a forked child lets go of its parent's event loop).
    pub fn close(&mut self) {
        self.0 = None;
    }

    fn raw(&self) -> io::Result<libc::c_int> {
        self.0
            .as_ref()
            .map(AsRawFd::as_raw_fd)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EBADF))
    }

    fn ctl(
        &self,
        op: libc::c_int,
        fd: BorrowedFd<'_>,
        ev: Option<libc::epoll_event>,
    ) -> io::Result<()> {
        let ep = self.raw()?;
        let mut ev = ev.unwrap_or(libc::epoll_event { events: 0, u64: 0 });
        // SAFETY: `ev` is a live local the kernel reads during the call (ignored for
        // EPOLL_CTL_DEL); both descriptors are kept open by their owners.
        cvt(unsafe { libc::epoll_ctl(ep, op, fd.as_raw_fd(), &raw mut ev) }).map(drop)
    }

    /// Watches `fd` for reading; `token` comes back from `wait`. The watch ends when
    /// `delete` is called or when every descriptor of `fd`'s open file is closed.
    pub fn add(&self, fd: BorrowedFd<'_>, token: u64, trigger: Trigger) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, Some(event(token, trigger)))
    }

    /// Changes the token or trigger of a watched descriptor.
    pub fn modify(&self, fd: BorrowedFd<'_>, token: u64, trigger: Trigger) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, Some(event(token, trigger)))
    }

    /// Stops watching `fd`.
    pub fn delete(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, None)
    }

    /// Waits up to `timeout_ms` (-1: forever); `out` gets the tokens that are ready
    /// (none when a signal interrupted the wait).
    pub fn wait(&self, timeout_ms: i32, out: &mut Vec<u64>) -> io::Result<()> {
        out.clear();
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; BATCH];
        let ep = self.raw()?;
        // SAFETY: `evs` is a live array of BATCH events the kernel writes at most BATCH
        // of; the epoll descriptor is ours.
        let n = unsafe { libc::epoll_wait(ep, evs.as_mut_ptr(), BATCH_C, timeout_ms) };
        let Ok(n) = usize::try_from(n) else {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(())
            } else {
                Err(e)
            };
        };
        out.extend(evs[..n.min(BATCH)].iter().map(|e| e.u64));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn add_modify_delete() {
        let ep = Epoll::new().expect("epoll");
        let (r, w) = crate::fd::pipe().expect("pipe");
        ep.add(r.as_fd(), 7, Trigger::Level).expect("add");
        let mut out = Vec::new();
        ep.wait(0, &mut out).expect("wait");
        assert!(out.is_empty());
        crate::fd::write(w.as_fd(), b"x").expect("write");
        ep.wait(100, &mut out).expect("wait");
        assert_eq!(out, vec![7]);
        ep.modify(r.as_fd(), 9, Trigger::Level).expect("modify");
        ep.wait(100, &mut out).expect("wait");
        assert_eq!(out, vec![9]);
        ep.delete(r.as_fd()).expect("delete");
        ep.wait(0, &mut out).expect("wait");
        assert!(out.is_empty());
        // An empty pipe's write end is writable at once.
        ep.add(w.as_fd(), 11, Trigger::Writable).expect("add");
        ep.wait(100, &mut out).expect("wait");
        assert_eq!(out, vec![11]);
    }
}
