//! The acceptor: connections from the pool's socket, ready to read FastCGI from. It
//! accepts (reporting EINTR so SIGQUIT is seen), drops peers `listen.allowed_clients`
//! refuses, waits for the first byte (dropping a connection silent for 5 s), and hands
//! out a `ServerConn` whose buffers come from the previous connection. A worker loop
//! (`classic`, or an application's loop in worker mode) pulls connections from it and
//! serves their requests (several on a kept-alive connection); `close_gracefully` ends
//! one as php-fpm does.
use crate::log::Level;
use crate::signals;
use fcgi::server::ServerConn;
use rfpm_sys::{fd, net};
use std::io::{self, Read, Write};
use std::net::{IpAddr, TcpStream};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// An accepted socket.
pub(super) enum Socket {
    Unix(UnixStream),
    Tcp(TcpStream),
}

/// An accepted connection, with the deadline its reads must meet
/// (`request_read_timeout`).
pub(super) struct Connection {
    socket: Socket,
    deadline: Option<Instant>,
    /// A read timeout is set on the socket (cleared when the deadline goes).
    timed: bool,
}

impl Connection {
    fn new(socket: Socket) -> Connection {
        Connection {
            socket,
            deadline: None,
            timed: false,
        }
    }

    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        match &self.socket {
            Socket::Unix(s) => s.as_fd(),
            Socket::Tcp(s) => s.as_fd(),
        }
    }

    pub(super) fn is_unix(&self) -> bool {
        matches!(self.socket, Socket::Unix(_))
    }

    /// Reads must be done by `deadline` (`None`: no deadline): a read past it fails
    /// with `TimedOut`, so a client that trickles its request cannot hold the worker.
    pub(super) fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match &self.socket {
            Socket::Unix(s) => s.set_read_timeout(t),
            Socket::Tcp(s) => s.set_read_timeout(t),
        }
    }
}

impl Read for Connection {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.deadline {
            Some(at) => {
                let left = at.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::ErrorKind::TimedOut.into());
                }
                self.set_read_timeout(Some(left))?;
                self.timed = true;
            }
            None if self.timed => {
                self.set_read_timeout(None)?;
                self.timed = false;
            }
            None => {}
        }
        let r = match &mut self.socket {
            Socket::Unix(s) => s.read(buf),
            Socket::Tcp(s) => s.read(buf),
        };
        match r {
            // SO_RCVTIMEO expired: the deadline passed.
            Err(e) if self.timed && e.kind() == io::ErrorKind::WouldBlock => {
                Err(io::ErrorKind::TimedOut.into())
            }
            r => r,
        }
    }
}

impl Write for Connection {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.socket {
            Socket::Unix(s) => s.write(buf),
            Socket::Tcp(s) => s.write(buf),
        }
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match &mut self.socket {
            Socket::Unix(s) => s.write_vectored(bufs),
            Socket::Tcp(s) => s.write_vectored(bufs),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A connection ready for its first FastCGI request.
pub(super) struct Accepted {
    pub(super) conn: ServerConn<Connection>,
    /// The FastCGI peer (TCP only).
    pub(super) peer: Option<IpAddr>,
}

/// Connections from one pool's listening socket.
pub(super) struct Acceptor<'a> {
    listener: BorrowedFd<'a>,
    is_unix: bool,
    /// `listen.allowed_clients`, parsed (TCP only).
    allowed: Option<Vec<IpAddr>>,
    /// The previous connection's buffers, reused by the next one.
    bufs: Option<fcgi::server::Buffers>,
}

impl<'a> Acceptor<'a> {
    pub(super) fn new(
        listener: BorrowedFd<'a>,
        is_unix: bool,
        allowed: Option<Vec<IpAddr>>,
    ) -> Acceptor<'a> {
        Acceptor {
            listener,
            is_unix,
            allowed,
            bufs: None,
        }
    }

    /// The next connection that has data to read; `None` when the worker must stop
    /// (SIGQUIT, or accept failed). `idle` runs before every wait for a connection.
    pub(super) fn next(&mut self, mut idle: impl FnMut()) -> Option<Accepted> {
        loop {
            if signals::worker_quit() {
                return None;
            }
            idle();
            let fd = match net::accept(self.listener) {
                Ok(fd) => fd,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EAGAIN) | Some(libc::ECONNABORTED)
                    ) =>
                {
                    continue
                }
                Err(e) => {
                    crate::log::log(
                        Level::Error,
                        "accept_loop",
                        line!(),
                        "failed to accept a connection",
                        e.raw_os_error(),
                    );
                    return None;
                }
            };
            if let Some(a) = self.ready(fd) {
                return Some(a);
            }
        }
    }

    /// An accepted descriptor, if its peer is allowed and it sends its first byte.
    fn ready(&mut self, fd: OwnedFd) -> Option<Accepted> {
        let (stream, peer) = if let Some(allowed) = &self.allowed {
            let s = TcpStream::from(fd);
            let ip = s.peer_addr().ok()?.ip();
            if !client_allowed(allowed, ip) {
                let shown = match ip {
                    IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
                    v4 => v4,
                };
                crate::error!("Connection disallowed: IP address '{shown}' has been dropped.");
                return None;
            }
            (Socket::Tcp(s), Some(ip))
        } else if self.is_unix {
            (Socket::Unix(UnixStream::from(fd)), None)
        } else {
            let s = TcpStream::from(fd);
            let ip = s.peer_addr().ok().map(|a| a.ip());
            (Socket::Tcp(s), ip)
        };
        let stream = Connection::new(stream);
        let unix = stream.is_unix();
        // A web server writes the request as soon as its connect() returns, so it is
        // usually queued by the time accept() does: look (the probe below needs the
        // figure anyway) and wait only when nothing is there yet.
        let queued = if unix {
            net::readable_bytes(stream.fd()).filter(|&n| n > 0)
        } else {
            None
        };
        if queued.is_none() && !wait_readable(stream.fd(), FIRST_BYTE_TIMEOUT_MS, Quit::KeepWaiting)
        {
            return None;
        }
        let mut conn = ServerConn::with_buffers(stream, self.bufs.take().unwrap_or_default());
        if unix {
            // Keeps the request's last record queued while the script runs, so the web
            // server waiting for the answer is not woken for nothing (a context switch
            // on both sides per request: hello went from 0.86 to ~1.0 of php-fpm8.2;
            // bench/RESULTS.md).
            conn.set_queued_probe(|s| net::readable_bytes(s.fd()));
            if let Some(n) = queued {
                conn.set_queued_hint(n);
            }
        }
        Some(Accepted { conn, peer })
    }

    /// A served connection is closed; its buffers serve the next one.
    pub(super) fn recycle(&mut self, conn: ServerConn<Connection>) {
        self.bufs = Some(conn.into_parts().1);
    }
}

/// How long a fresh connection may stay silent before it is dropped (php-fpm: 5 s).
pub(super) const FIRST_BYTE_TIMEOUT_MS: u16 = 5000;

/// `listen.allowed_clients` (reference §6.3): split at `,` without trimming, literal
/// addresses only. `None`: everybody is allowed. Logs php-fpm's errors.
pub(super) fn parse_allowed_clients(list: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for entry in list.split(',') {
        match entry.parse::<IpAddr>() {
            Ok(ip) => out.push(ip),
            Err(_) => crate::error!("Wrong IP address '{entry}' in listen.allowed_clients"),
        }
    }
    if out.is_empty() {
        crate::error!("There are no allowed addresses");
    }
    out
}

/// Whether a TCP peer may talk to this pool: IPv4 against IPv4 entries (also when it
/// arrives IPv4-mapped on a `[::]` socket), IPv6 against IPv6 entries, all 16 bytes.
pub(super) fn client_allowed(allowed: &[IpAddr], peer: IpAddr) -> bool {
    let peer = match peer {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    allowed.contains(&peer)
}

/// Waits until `fd` is readable (or at end of stream), at most `timeout_ms` in all.
pub(super) fn wait_readable(fd: BorrowedFd<'_>, timeout_ms: u16, on_quit: Quit) -> bool {
    let deadline =
        std::time::Instant::now() + std::time::Duration::from_millis(u64::from(timeout_ms));
    let mut wait = i32::from(timeout_ms);
    loop {
        match fd::poll_readable(fd, wait) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                if on_quit == Quit::GiveUp && signals::worker_quit() {
                    return false;
                }
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                wait = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
            }
            Ok(ready) => return ready,
            Err(_) => return false,
        }
    }
}

/// What [`wait_readable`] does when a graceful stop (SIGQUIT) interrupts it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Quit {
    /// Stop waiting.
    GiveUp,
    /// Keep waiting: an accepted connection is served even during a graceful stop or a
    /// reload (php-fpm retries its poll too); dropping it would lose the request.
    KeepWaiting,
}

/// After the last response: stop sending, then discard what the peer still sends until
/// it closes (php-fpm's close), bounded so a silent peer cannot hold the worker.
pub(super) fn close_gracefully(conn: &mut ServerConn<Connection>, buf: &mut [u8]) {
    let _ = conn.flush();
    net::shutdown_write(conn.get_ref().fd());
    let mut budget = 64;
    // The peer has often closed already: look before waiting (saves the poll).
    while budget > 0 {
        match net::recv_nowait(conn.get_ref().fd(), buf) {
            Ok(0) => return,
            Ok(_) => budget -= 1,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(_) => return,
        }
    }
    while budget > 0 && wait_readable(conn.get_ref().fd(), 1000, Quit::GiveUp) {
        match conn.get_mut().read(buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => budget -= 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_clients_match_like_php_fpm() {
        let list = parse_allowed_clients("127.0.0.1,::1");
        assert!(client_allowed(
            &list,
            "127.0.0.1".parse().unwrap_or(IpAddr::V4([0; 4].into()))
        ));
        assert!(client_allowed(
            &list,
            "::ffff:127.0.0.1"
                .parse()
                .unwrap_or(IpAddr::V4([0; 4].into()))
        ));
        assert!(client_allowed(
            &list,
            "::1".parse().unwrap_or(IpAddr::V4([0; 4].into()))
        ));
        assert!(!client_allowed(
            &list,
            "::2".parse().unwrap_or(IpAddr::V4([0; 4].into()))
        ));
        // No trimming: " ::1" is not an address.
        assert_eq!(parse_allowed_clients("127.0.0.1, ::1").len(), 1);
        assert!(parse_allowed_clients("xxx").is_empty());
    }
}
