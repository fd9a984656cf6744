//! The server side of one FastCGI connection, as a php-fpm 8.2 worker speaks it
//! (reference §6.4): request framing, lazy request body, buffered response records.
//!
//! Blocking and generic over the stream; no clock (the 5-second first-byte timeout of
//! §6.4 rule 1 belongs to the caller, e.g. a socket read timeout).

use std::fmt;
use std::io::{self, IoSlice, Read, Write};

use crate::params::Params;
use crate::record::{self, Header, HEADER_LEN, MAX_CHUNK_LEN, MAX_CHUNK_LEN_U16, MAX_CONTENT_LEN};

/// Size of the response buffer (headers included), like php-fpm's.
pub const OUT_BUF_LEN: usize = 8192;
/// Initial size of the read buffer; it grows up to one maximal record.
const IN_BUF_LEN: usize = 8192;
/// Largest read buffer: one header plus the largest content + padding.
const IN_BUF_MAX: usize = HEADER_LEN + MAX_CONTENT_LEN;
/// Reads into a caller's buffer at least this large bypass the read buffer.
const DIRECT_READ_MIN: usize = 4096;
/// Default bound on the total bytes of a request's param names and values.
pub const DEFAULT_MAX_PARAMS_LEN: usize = 16 * 1024 * 1024;

/// FastCGI role of a request (BEGIN_REQUEST). All three are served as ordinary requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Responder,
    Authorizer,
    Filter,
}

impl Role {
    pub fn from_code(code: u16) -> Option<Role> {
        match code {
            record::RESPONDER => Some(Role::Responder),
            record::AUTHORIZER => Some(Role::Authorizer),
            record::FILTER => Some(Role::Filter),
            _ => None,
        }
    }

    pub fn code(self) -> u16 {
        match self {
            Role::Responder => record::RESPONDER,
            Role::Authorizer => record::AUTHORIZER,
            Role::Filter => record::FILTER,
        }
    }

    /// The value of the `FCGI_ROLE` param.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Responder => "RESPONDER",
            Role::Authorizer => "AUTHORIZER",
            Role::Filter => "FILTER",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One request's head: everything before the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Request id of BEGIN_REQUEST, echoed in every response record.
    pub id: u16,
    pub role: Role,
    /// FCGI_KEEP_CONN was set.
    pub keep_conn: bool,
    /// Params in arrival order; the first entry is `FCGI_ROLE`, added at BEGIN_REQUEST
    /// exactly as php-fpm does (a received `FCGI_ROLE` param replaces its value).
    pub params: Params,
}

/// Why [`ServerConn::read_request`] returned `Ok(None)`: the connection must be closed
/// without any answer. Useful for debug logs only; php-fpm logs none of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer closed the connection between requests.
    Eof,
    /// The peer closed the connection inside a record.
    Truncated,
    /// A record header with version byte 0.
    BadVersion,
    /// A record whose content + padding exceeds 65535 bytes.
    RecordTooLong,
    /// The first record was neither BEGIN_REQUEST (content length 8) nor GET_VALUES.
    UnexpectedRecord { kind: u8, content_len: u16 },
    /// BEGIN_REQUEST with a role other than 1, 2, 3.
    UnknownRole(u16),
    /// A name-value pair that does not fit its record.
    BadParams,
    /// The params exceed the configured bound ([`ServerConn::set_max_params_len`]). The
    /// request id is known: the request may be answered before the connection closes.
    ParamsTooLarge,
    /// The previous request left a STDIN record partly read (php-fpm 8.2.36 then closes
    /// the connection instead of reading on: this is what stops request smuggling).
    UnreadBody,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Eof => f.write_str("connection closed by peer"),
            CloseReason::Truncated => f.write_str("connection closed inside a record"),
            CloseReason::BadVersion => f.write_str("record with version 0"),
            CloseReason::RecordTooLong => f.write_str("record longer than 65535 bytes"),
            CloseReason::UnexpectedRecord { kind, content_len } => write!(
                f,
                "unexpected {} record ({} bytes) at the start of a request",
                record::type_name(*kind),
                content_len
            ),
            CloseReason::UnknownRole(r) => write!(f, "unknown role {r}"),
            CloseReason::BadParams => f.write_str("malformed name-value pair"),
            CloseReason::ParamsTooLarge => f.write_str("params too large"),
            CloseReason::UnreadBody => f.write_str("request body left partly read"),
        }
    }
}

/// A param value as php-fpm keeps it: every consumer of a value (`$_SERVER`, `getenv()`,
/// the paths, the access log, the status page) reads it as a C string, so it ends at its
/// first NUL byte.
fn c_value(v: &[u8]) -> &[u8] {
    match v.iter().position(|&b| b == 0) {
        Some(i) => &v[..i],
        None => v,
    }
}

/// Errors of [`ServerConn::read_request`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing the connection failed (timeouts included).
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Outcome of moving to the next STDIN record.
#[derive(Clone, Copy, PartialEq, Eq)]
enum NextRec {
    /// A STDIN record with content.
    Data,
    /// An empty STDIN record: the normal end of the body.
    End,
    /// A record of another type, version 0, or end of stream: the body is cut.
    Cut,
}

/// What happened while reading a header.
enum Got {
    Header(Header),
    Closed(CloseReason),
}

/// The input and output buffers of a connection, kept from one connection to the next.
#[derive(Debug)]
pub struct Buffers {
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    params: Option<Params>,
}

impl Default for Buffers {
    fn default() -> Self {
        Buffers {
            rbuf: vec![0; IN_BUF_LEN],
            wbuf: Vec::with_capacity(OUT_BUF_LEN + 32),
            params: None,
        }
    }
}

/// A recycled [`Params`] is kept only up to this many arena bytes.
const SPARE_PARAMS_MAX: usize = 64 * 1024;

/// The server side of one FastCGI connection.
pub struct ServerConn<S: Read + Write> {
    stream: S,
    /// Read buffer: bytes `rpos..rend` are received and not yet consumed.
    rbuf: Vec<u8>,
    rpos: usize,
    rend: usize,
    /// Response buffer: complete records, possibly followed by one open record.
    wbuf: Vec<u8>,
    /// Offset of the open record's header in `wbuf`, and its type.
    open: Option<(usize, u8)>,
    /// Request id of the current request.
    id: u16,
    /// The connection may be kept after this request.
    keep: bool,
    /// Content bytes left in the current STDIN record, and its padding.
    in_rem: usize,
    in_pad: usize,
    /// The body of the current request has ended (or there is no request).
    body_ended: bool,
    /// END_REQUEST was sent for the current request.
    ended: bool,
    /// A write failed: the connection is unusable.
    broken: bool,
    close_reason: Option<CloseReason>,
    max_params_len: usize,
    /// A finished request's params, for the next request to decode into.
    spare_params: Option<Params>,
    /// See [`ServerConn::set_queued_probe`].
    queued: Option<fn(&S) -> Option<usize>>,
    /// See [`ServerConn::set_queued_hint`].
    queued_hint: Option<usize>,
}

impl<S: Read + Write> fmt::Debug for ServerConn<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConn")
            .field("id", &self.id)
            .field("keep", &self.keep)
            .field("buffered_in", &(self.rend - self.rpos))
            .field("buffered_out", &self.wbuf.len())
            .field("body_ended", &self.body_ended)
            .field("ended", &self.ended)
            .finish()
    }
}

fn broken_pipe() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "FastCGI connection is broken")
}

impl<S: Read + Write> ServerConn<S> {
    pub fn new(stream: S) -> Self {
        Self::with_buffers(stream, Buffers::default())
    }

    /// Like [`ServerConn::new`], reusing the buffers of a finished connection
    /// ([`ServerConn::into_parts`]): a worker serving one connection after another then
    /// allocates (and zeroes) nothing per connection.
    pub fn with_buffers(stream: S, bufs: Buffers) -> Self {
        let Buffers {
            mut rbuf,
            mut wbuf,
            params,
        } = bufs;
        if rbuf.len() != IN_BUF_LEN {
            rbuf = vec![0; IN_BUF_LEN];
        }
        wbuf.clear();
        ServerConn {
            stream,
            rbuf,
            rpos: 0,
            rend: 0,
            wbuf,
            open: None,
            id: 0,
            keep: false,
            in_rem: 0,
            in_pad: 0,
            body_ended: true,
            ended: true,
            broken: false,
            close_reason: None,
            max_params_len: DEFAULT_MAX_PARAMS_LEN,
            spare_params: params,
            queued: None,
            queued_hint: None,
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// The stream. Buffered but unread input and unflushed output are dropped.
    pub fn into_inner(self) -> S {
        self.stream
    }

    /// The stream and the buffers, for [`ServerConn::with_buffers`]. Unsent output is
    /// dropped: flush or end the request first.
    pub fn into_parts(self) -> (S, Buffers) {
        (
            self.stream,
            Buffers {
                rbuf: self.rbuf,
                wbuf: self.wbuf,
                params: self.spare_params,
            },
        )
    }

    /// Reads into the connection's own buffer leave the last byte the peer sent in the
    /// stream unless it is all there is; `probe` tells how many bytes are queued.
    ///
    /// For a Unix socket: reading the last byte of a peer's write frees it, and the
    /// kernel then wakes every thread sleeping on the peer's socket, including one that
    /// sent a whole request and waits in `recv()` for the answer. Holding one byte back
    /// leaves the request's final record queued until it is needed (php-fpm reads record
    /// by record and leaves the empty STDIN record unread for the same effect). Reads of
    /// body bytes straight into the caller's buffer never go past the current record, so
    /// they need no probe.
    pub fn set_queued_probe(&mut self, probe: fn(&S) -> Option<usize>) {
        self.queued = Some(probe);
    }

    /// What the caller's own probe just saw queued on the stream: the next read into the
    /// connection's buffer uses it instead of probing again (one system call less when
    /// the caller looked before deciding whether to wait for the first byte). Bytes only
    /// arrive until that read, so the figure can be low, never high. No effect without a
    /// probe ([`ServerConn::set_queued_probe`]).
    pub fn set_queued_hint(&mut self, avail: usize) {
        self.queued_hint = Some(avail);
    }

    /// Where a read into the connection's buffer starting at `from` may end.
    fn read_ahead_end(&mut self, from: usize) -> usize {
        let cap = self.rbuf.len();
        let Some(probe) = self.queued else {
            return cap;
        };
        // A hint of 0 or 1 says nothing a read could use: probe.
        let avail = match self.queued_hint.take() {
            Some(n) if n > 1 => Some(n),
            _ => probe(&self.stream),
        };
        match avail {
            Some(avail) if avail > 1 => cap.min(from + avail - 1),
            _ => cap,
        }
    }

    /// Hands a finished request's params back: the next request on this connection (or
    /// on the next one, through [`ServerConn::into_parts`]) decodes into its allocations.
    pub fn recycle_params(&mut self, params: Params) {
        if params.arena_capacity() <= SPARE_PARAMS_MAX {
            self.spare_params = Some(params);
        }
    }

    /// Bound on the total size of a request's param names and values (php-fpm has
    /// none; rfpm bounds everything it buffers). Exceeding it closes the connection.
    pub fn set_max_params_len(&mut self, n: usize) {
        self.max_params_len = n;
    }

    /// Received bytes not consumed yet. A caller that waits for the next request with
    /// `poll()` on the socket must check this first: the next request may already be here.
    pub fn has_buffered_input(&self) -> bool {
        self.rend > self.rpos
    }

    /// Why the last `read_request` returned `Ok(None)`.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.close_reason
    }

    /// Request id of the current request.
    pub fn request_id(&self) -> u16 {
        self.id
    }

    /// Whether the connection can serve another request after this one (ask at the end of
    /// the request): FCGI_KEEP_CONN was set and nothing disabled it since — a body ended by
    /// a record of another type, an I/O error, or (php-fpm 8.2.36) a STDIN record left
    /// partly read.
    pub fn keep_alive(&self) -> bool {
        self.keep && !self.broken && (self.body_ended || self.in_rem == 0)
    }

    /// Forgets FCGI_KEEP_CONN for this request (e.g. `pm.max_requests` reached).
    pub fn disable_keep_alive(&mut self) {
        self.keep = false;
    }

    /// END_REQUEST has been sent for the current request.
    pub fn request_ended(&self) -> bool {
        self.ended
    }

    /// The request body has been read to its end.
    pub fn stdin_ended(&self) -> bool {
        self.body_ended
    }

    // ---------------------------------------------------------------- reading

    /// Makes at least `n` bytes (n <= IN_BUF_MAX) available in the read buffer unless the
    /// stream ends first. Returns the number of bytes available.
    fn fill(&mut self, n: usize) -> io::Result<usize> {
        if self.rend - self.rpos >= n {
            return Ok(self.rend - self.rpos);
        }
        if self.rpos + n > self.rbuf.len() {
            if n > self.rbuf.len() {
                let want = n.max(self.rbuf.len() * 2).min(IN_BUF_MAX).max(n);
                self.rbuf.resize(want, 0);
            }
            self.rbuf.copy_within(self.rpos..self.rend, 0);
            self.rend -= self.rpos;
            self.rpos = 0;
        }
        while self.rend - self.rpos < n {
            let end = self.read_ahead_end(self.rend);
            match self.stream.read(&mut self.rbuf[self.rend..end]) {
                Ok(0) => break,
                Ok(k) => self.rend += k.min(self.rbuf.len() - self.rend),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.rend - self.rpos)
    }

    /// Discards up to `n` bytes; returns how many were discarded (fewer at end of stream).
    fn skip(&mut self, mut n: usize) -> io::Result<usize> {
        let total = n;
        while n > 0 {
            if self.rpos == self.rend {
                self.rpos = 0;
                self.rend = 0;
                let end = self.read_ahead_end(0);
                match self.stream.read(&mut self.rbuf[..end]) {
                    Ok(0) => return Ok(total - n),
                    Ok(k) => self.rend = k.min(end),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            }
            let k = n.min(self.rend - self.rpos);
            self.rpos += k;
            n -= k;
        }
        Ok(total)
    }

    /// Reads a record header; end of stream or version 0 close the connection.
    fn header(&mut self) -> io::Result<Got> {
        let avail = self.fill(HEADER_LEN)?;
        if avail < HEADER_LEN {
            self.rpos = self.rend;
            return Ok(Got::Closed(if avail == 0 {
                CloseReason::Eof
            } else {
                CloseReason::Truncated
            }));
        }
        let mut b = [0u8; HEADER_LEN];
        b.copy_from_slice(&self.rbuf[self.rpos..self.rpos + HEADER_LEN]);
        self.rpos += HEADER_LEN;
        let h = Header::decode(&b);
        if h.version == 0 {
            return Ok(Got::Closed(CloseReason::BadVersion));
        }
        Ok(Got::Header(h))
    }

    /// Buffers the content + padding of a record; false if the stream ended first.
    fn body(&mut self, h: &Header) -> io::Result<bool> {
        let n = h.body_len();
        Ok(self.fill(n)? >= n)
    }

    fn close(&mut self, reason: CloseReason) -> Result<Option<Request>, Error> {
        self.close_reason = Some(reason);
        self.keep = false;
        self.body_ended = true;
        Ok(None)
    }

    /// Reads the next request's head (BEGIN_REQUEST and params), answering GET_VALUES
    /// records met on the way (§6.4 rules 2–9).
    ///
    /// `Ok(None)`: the connection must be closed silently; [`ServerConn::close_reason`]
    /// says why.
    ///
    /// Like php-fpm 8.2.36, the previous request's body is not drained: if one of its
    /// STDIN records was left partly read the connection is closed
    /// ([`CloseReason::UnreadBody`]); otherwise reading simply goes on, so the empty STDIN
    /// record that ends a body read exactly to its end is skipped by rule 2, and leftover
    /// STDIN records close the connection. Call [`ServerConn::drain_stdin`] first to
    /// serve the next request in those cases too.
    pub fn read_request(&mut self) -> Result<Option<Request>, Error> {
        if self.broken {
            return Err(Error::Io(broken_pipe()));
        }
        if !self.body_ended {
            if self.in_rem > 0 {
                return self.close(CloseReason::UnreadBody);
            }
            if self.in_pad > 0 {
                let pad = self.in_pad;
                self.in_pad = 0;
                if self.skip(pad)? < pad {
                    return self.close(CloseReason::Truncated);
                }
            }
        }
        self.close_reason = None;
        self.keep = false;
        self.id = 0;
        self.in_rem = 0;
        self.in_pad = 0;
        self.body_ended = true;
        self.ended = false;
        self.wbuf.clear();
        self.open = None;
        let begin = loop {
            let mut h = match self.header()? {
                Got::Header(h) => h,
                Got::Closed(r) => return self.close(r),
            };
            // Rule 2: leading empty STDIN records are tolerated (their padding is not read).
            while h.kind == record::STDIN && h.content_len == 0 {
                h = match self.header()? {
                    Got::Header(h) => h,
                    Got::Closed(r) => return self.close(r),
                };
            }
            // Rule 4.
            if h.body_len() > MAX_CONTENT_LEN {
                return self.close(CloseReason::RecordTooLong);
            }
            // Rule 5.
            if h.kind == record::BEGIN_REQUEST && h.content_len == 8 {
                break h;
            }
            if h.kind != record::GET_VALUES {
                return self.close(CloseReason::UnexpectedRecord {
                    kind: h.kind,
                    content_len: h.content_len,
                });
            }
            // Rule 9: answer GET_VALUES and keep reading.
            if !self.body(&h)? {
                return self.close(CloseReason::Truncated);
            }
            let content = &self.rbuf[self.rpos..self.rpos + h.content_len as usize];
            let mut mpxs = false;
            for p in record::pairs(content) {
                match p {
                    Ok((name, _)) => mpxs |= name == record::MPXS_CONNS,
                    Err(_) => return self.close(CloseReason::BadParams),
                }
            }
            self.rpos += h.body_len();
            let mut out = [0u8; HEADER_LEN + 24];
            let len = if mpxs {
                let pair = b"\x0f\x01FCGI_MPXS_CONNS0";
                out[HEADER_LEN..HEADER_LEN + pair.len()].copy_from_slice(pair);
                pair.len()
            } else {
                0
            };
            let rh = Header::new(
                record::GET_VALUES_RESULT,
                0,
                u16::try_from(len).unwrap_or(u16::MAX),
            );
            out[..HEADER_LEN].copy_from_slice(&rh.encode());
            let total = HEADER_LEN + len + rh.padding_len as usize;
            if let Err(e) = self.stream.write_all(&out[..total]) {
                self.broken = true;
                return Err(Error::Io(e));
            }
            self.stream.flush()?;
        };
        // Rule 6: BEGIN_REQUEST.
        if !self.body(&begin)? {
            return self.close(CloseReason::Truncated);
        }
        let b = &self.rbuf[self.rpos..self.rpos + 8];
        let role_code = u16::from_be_bytes([b[0], b[1]]);
        let keep_conn = b[2] & record::KEEP_CONN != 0;
        self.rpos += begin.body_len();
        let Some(role) = Role::from_code(role_code) else {
            return self.close(CloseReason::UnknownRole(role_code));
        };
        // Typical web-server params: ~30 pairs, 1-2 KiB.
        let mut params = match self.spare_params.take() {
            Some(mut p) => {
                p.clear();
                p
            }
            None => Params::with_capacity(40, 2048),
        };
        params.set("FCGI_ROLE", role.as_str());
        // Rule 7: PARAMS while type is PARAMS and length > 0; any other record ends them
        // (its header is consumed, its content is not).
        loop {
            let h = match self.header()? {
                Got::Header(h) => h,
                Got::Closed(r) => return self.close(r),
            };
            if h.kind != record::PARAMS || h.content_len == 0 {
                break;
            }
            if h.body_len() > MAX_CONTENT_LEN {
                return self.close(CloseReason::RecordTooLong);
            }
            if !self.body(&h)? {
                return self.close(CloseReason::Truncated);
            }
            let content = &self.rbuf[self.rpos..self.rpos + h.content_len as usize];
            for p in record::pairs(content) {
                match p {
                    Ok((name, value)) => params.set(name, c_value(value)),
                    Err(_) => return self.close(CloseReason::BadParams),
                }
            }
            self.rpos += h.body_len();
            if params.arena_len() > self.max_params_len {
                // The request can still be answered (STDERR, END_REQUEST) before the
                // connection closes.
                self.id = begin.request_id;
                return self.close(CloseReason::ParamsTooLarge);
            }
        }
        self.id = begin.request_id;
        self.keep = keep_conn;
        self.body_ended = false;
        Ok(Some(Request {
            id: begin.request_id,
            role,
            keep_conn,
            params,
        }))
    }

    /// Ends the body: `keep_alive_ok` false means the stream got out of step.
    fn end_body(&mut self, keep_alive_ok: bool) {
        self.body_ended = true;
        self.in_rem = 0;
        self.in_pad = 0;
        if !keep_alive_ok {
            self.keep = false;
        }
    }

    /// Moves to the next STDIN record (skipping the padding of the current one).
    fn next_stdin_record(&mut self) -> io::Result<NextRec> {
        if self.body_ended {
            return Ok(NextRec::End);
        }
        if self.in_pad > 0 {
            let pad = self.in_pad;
            self.in_pad = 0;
            match self.skip(pad) {
                Ok(k) if k == pad => {}
                Ok(_) => {
                    self.end_body(false);
                    return Ok(NextRec::Cut);
                }
                Err(e) => {
                    self.end_body(false);
                    return Err(e);
                }
            }
        }
        let h = match self.header() {
            Ok(Got::Header(h)) => h,
            Ok(Got::Closed(_)) => {
                self.end_body(false);
                return Ok(NextRec::Cut);
            }
            Err(e) => {
                self.end_body(false);
                return Err(e);
            }
        };
        if h.kind != record::STDIN {
            // Rule 10: a record of another type ends the body and disables keep-alive.
            self.end_body(false);
            return Ok(NextRec::Cut);
        }
        if h.content_len == 0 {
            self.end_body(true);
            return Ok(NextRec::End);
        }
        self.in_rem = h.content_len as usize;
        self.in_pad = h.padding_len as usize;
        Ok(NextRec::Data)
    }

    /// Copies up to `want` (<= in_rem) body bytes of the current record into `buf`;
    /// 0 means the stream ended inside the record.
    fn read_current(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf.len().min(self.in_rem);
        let n = if self.rpos < self.rend {
            let n = want.min(self.rend - self.rpos);
            buf[..n].copy_from_slice(&self.rbuf[self.rpos..self.rpos + n]);
            self.rpos += n;
            n
        } else if want >= DIRECT_READ_MIN {
            loop {
                match self.stream.read(&mut buf[..want]) {
                    Ok(k) => break k.min(want),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        self.end_body(false);
                        return Err(e);
                    }
                }
            }
        } else {
            match self.fill(1) {
                Ok(avail) => {
                    let n = want.min(avail);
                    buf[..n].copy_from_slice(&self.rbuf[self.rpos..self.rpos + n]);
                    self.rpos += n;
                    n
                }
                Err(e) => {
                    self.end_body(false);
                    return Err(e);
                }
            }
        };
        if n == 0 {
            self.end_body(false);
        } else {
            self.in_rem -= n;
        }
        Ok(n)
    }

    /// Reads request body bytes from STDIN records. `Ok(0)` is the end of the body: an
    /// empty STDIN record, a record of another type (keep-alive is then disabled), or
    /// the end of the stream. Returns at most the rest of the current record; no byte is
    /// ever lost.
    pub fn read_stdin(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.in_rem == 0 && self.next_stdin_record()? != NextRec::Data {
            return Ok(0);
        }
        self.read_current(buf)
    }

    /// php-fpm's body read (what its SAPI `read_post` does with one call): fills `buf`
    /// across STDIN records and returns `buf.len()`, or fewer bytes when an empty STDIN
    /// record or the end of the stream inside a record comes first. When the body is cut
    /// by a record of another type (or version 0, or the stream ends at a header) it
    /// returns 0 and the bytes read by this call are dropped, exactly as php-fpm does;
    /// keep-alive is disabled.
    pub fn fill_stdin(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            if self.in_rem == 0 {
                match self.next_stdin_record()? {
                    NextRec::Data => {}
                    NextRec::End => return Ok(n),
                    NextRec::Cut => return Ok(0),
                }
            }
            let k = self.read_current(&mut buf[n..])?;
            if k == 0 {
                return Ok(n);
            }
            n += k;
        }
        Ok(n)
    }

    /// Discards the rest of the request body, up to and including its empty STDIN
    /// record, so that the next request on a kept connection is served even when the
    /// script left body bytes unread. This goes beyond php-fpm 8.2.36, which instead
    /// closes the connection when a STDIN record was left partly read and fails on
    /// leftover STDIN records (see [`ServerConn::read_request`]).
    pub fn drain_stdin(&mut self) -> io::Result<()> {
        loop {
            if self.in_rem == 0 && self.next_stdin_record()? != NextRec::Data {
                return Ok(());
            }
            let n = match self.skip(self.in_rem) {
                Ok(n) => n,
                Err(e) => {
                    self.end_body(false);
                    return Err(e);
                }
            };
            if n < self.in_rem {
                self.end_body(false);
                return Ok(());
            }
            self.in_rem = 0;
        }
    }

    // ---------------------------------------------------------------- writing

    fn open_record(&mut self, kind: u8) {
        self.open = Some((self.wbuf.len(), kind));
        self.wbuf.extend_from_slice(&[0u8; HEADER_LEN]);
    }

    /// Completes the open record: header and zero padding.
    fn close_record(&mut self) {
        if let Some((pos, kind)) = self.open.take() {
            let len = self.wbuf.len() - pos - HEADER_LEN;
            // A record is closed before it holds more than MAX_CONTENT_LEN bytes.
            let h = Header::new(kind, self.id, u16::try_from(len).unwrap_or(u16::MAX));
            self.wbuf[pos..pos + HEADER_LEN].copy_from_slice(&h.encode());
            self.wbuf
                .extend_from_slice(&record::ZEROS[..h.padding_len as usize]);
        }
    }

    fn fail<T>(&mut self, e: io::Error) -> io::Result<T> {
        self.broken = true;
        self.keep = false;
        self.wbuf.clear();
        self.open = None;
        Err(e)
    }

    /// Writes the response buffer and then `extra` (one vectored write when possible).
    fn send(&mut self, extra: &[u8]) -> io::Result<()> {
        self.close_record();
        let r = write_all_two(&mut self.stream, &self.wbuf, extra);
        self.wbuf.clear();
        match r {
            Ok(()) => Ok(()),
            Err(e) => self.fail(e),
        }
    }

    fn write_record_data(&mut self, kind: u8, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        if self.broken {
            return Err(broken_pipe());
        }
        if self.ended {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "FastCGI request already ended",
            ));
        }
        if matches!(self.open, Some((_, k)) if k != kind) {
            self.close_record();
        }
        let mut limit = OUT_BUF_LEN.saturating_sub(self.wbuf.len());
        if self.open.is_none() {
            limit = limit.saturating_sub(HEADER_LEN);
        }
        let len = data.len();
        if len < limit {
            // Fits in the buffer.
            if self.open.is_none() {
                self.open_record(kind);
            }
            self.wbuf.extend_from_slice(data);
        } else if len - limit < OUT_BUF_LEN - HEADER_LEN {
            // Fill the buffer, send it, keep the rest buffered.
            if limit > 0 {
                if self.open.is_none() {
                    self.open_record(kind);
                }
                self.wbuf.extend_from_slice(&data[..limit]);
            }
            self.send(&[])?;
            if len > limit {
                self.open_record(kind);
                self.wbuf.extend_from_slice(&data[limit..]);
            }
        } else {
            // Large write: records of 65528 bytes, then the remainder rounded down to a
            // multiple of 8 sent directly; its last len % 8 bytes stay buffered.
            self.close_record();
            let mut pos = 0;
            while len - pos > MAX_CONTENT_LEN {
                let h = Header::new(kind, self.id, MAX_CHUNK_LEN_U16);
                self.wbuf.extend_from_slice(&h.encode());
                self.send(&data[pos..pos + MAX_CHUNK_LEN])?;
                pos += MAX_CHUNK_LEN;
            }
            let rest = len - pos;
            let tail = rest % 8;
            // rest <= MAX_CONTENT_LEN here (the loop above).
            let h = Header::new(
                kind,
                self.id,
                u16::try_from(rest - tail).unwrap_or(u16::MAX),
            );
            self.wbuf.extend_from_slice(&h.encode());
            self.send(&data[pos..len - tail])?;
            if tail > 0 {
                self.open_record(kind);
                self.wbuf.extend_from_slice(&data[len - tail..]);
            }
        }
        Ok(())
    }

    /// Queues response bytes on FCGI_STDOUT (8 KiB buffer, php-fpm's record layout).
    pub fn write_stdout(&mut self, data: &[u8]) -> io::Result<()> {
        self.write_record_data(record::STDOUT, data)
    }

    /// Queues bytes on FCGI_STDERR (same buffer and layout as stdout).
    pub fn write_stderr(&mut self, data: &[u8]) -> io::Result<()> {
        self.write_record_data(record::STDERR, data)
    }

    /// Sends everything buffered.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.broken {
            return Err(broken_pipe());
        }
        if !self.wbuf.is_empty() {
            self.send(&[])?;
        }
        match self.stream.flush() {
            Ok(()) => Ok(()),
            Err(e) => self.fail(e),
        }
    }

    /// Sends the buffered output followed by FCGI_END_REQUEST, in one write. No empty
    /// STDOUT/STDERR record is sent. A second call for the same request does nothing.
    pub fn end_request(&mut self, app_status: u32, protocol_status: u8) -> io::Result<()> {
        if self.ended {
            return Ok(());
        }
        self.ended = true;
        if self.broken {
            return Err(broken_pipe());
        }
        self.close_record();
        let h = Header::new(record::END_REQUEST, self.id, 8);
        self.wbuf.extend_from_slice(&h.encode());
        self.wbuf.extend_from_slice(&app_status.to_be_bytes());
        self.wbuf.extend_from_slice(&[protocol_status, 0, 0, 0]);
        self.send(&[])?;
        match self.stream.flush() {
            Ok(()) => Ok(()),
            Err(e) => self.fail(e),
        }
    }
}

/// `write_all` of `a` then `b`, using vectored writes.
fn write_all_two<W: Write>(w: &mut W, mut a: &[u8], mut b: &[u8]) -> io::Result<()> {
    while !a.is_empty() || !b.is_empty() {
        let r = if a.is_empty() {
            w.write(b)
        } else if b.is_empty() {
            w.write(a)
        } else {
            w.write_vectored(&[IoSlice::new(a), IoSlice::new(b)])
        };
        match r {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(mut n) => {
                let k = n.min(a.len());
                a = &a[k..];
                n -= k;
                b = &b[n.min(b.len())..];
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
