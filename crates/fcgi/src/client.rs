//! A small blocking FastCGI client, used by rfpm's own tests, the `rfpm` health-check
//! subcommand and the benchmarks.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use crate::record::{self, Header, HEADER_LEN};

/// Where a FastCGI server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addr {
    /// `host:port` or `[v6]:port`.
    Tcp(String),
    /// A Unix socket path.
    Unix(PathBuf),
}

impl Addr {
    /// A string containing `/` is a Unix socket path; a bare port `9000` means
    /// `127.0.0.1:9000`; anything else is a TCP `host:port`.
    pub fn parse(s: &str) -> Addr {
        if s.contains('/') {
            Addr::Unix(PathBuf::from(s))
        } else if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            Addr::Tcp(format!("127.0.0.1:{s}"))
        } else {
            Addr::Tcp(s.to_string())
        }
    }
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Addr::Tcp(s) => f.write_str(s),
            Addr::Unix(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Errors of the client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The response stopped before FCGI_END_REQUEST; `partial` holds what arrived.
    #[error("connection ended before FCGI_END_REQUEST: {source}")]
    Incomplete {
        partial: Box<Response>,
        source: io::Error,
    },
    /// A name or value too long to be encoded, or a pair larger than one record.
    #[error("param too long to encode in a FastCGI record")]
    ParamTooLong,
    /// The server sent something that is not FastCGI.
    #[error("protocol error: {0}")]
    Protocol(String),
}

impl ClientError {
    /// The output received before the connection ended, if that is what happened.
    pub fn partial(&self) -> Option<&Response> {
        match self {
            ClientError::Incomplete { partial, .. } => Some(partial),
            _ => None,
        }
    }
}

/// Owned name-value pairs, in order.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// One request to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRequest {
    pub id: u16,
    pub keep_conn: bool,
    pub params: Pairs,
    pub stdin: Vec<u8>,
}

impl Default for ClientRequest {
    fn default() -> Self {
        ClientRequest::new()
    }
}

impl ClientRequest {
    /// Request id 1, no keep-alive, no params, empty body.
    pub fn new() -> Self {
        ClientRequest {
            id: 1,
            keep_conn: false,
            params: Vec::new(),
            stdin: Vec::new(),
        }
    }

    pub fn param(mut self, k: impl AsRef<[u8]>, v: impl AsRef<[u8]>) -> Self {
        self.params.push((k.as_ref().to_vec(), v.as_ref().to_vec()));
        self
    }

    pub fn body(mut self, b: Vec<u8>) -> Self {
        self.stdin = b;
        self
    }

    pub fn keep_conn(mut self, k: bool) -> Self {
        self.keep_conn = k;
        self
    }

    pub fn id(mut self, id: u16) -> Self {
        self.id = id;
        self
    }

    /// The request's bytes on the wire: BEGIN_REQUEST, PARAMS records of at most 65535
    /// bytes (pairs never span records), an empty PARAMS record, STDIN records, an empty
    /// STDIN record.
    pub fn encode(&self) -> Result<Vec<u8>, ClientError> {
        let mut out = Vec::with_capacity(64 + self.stdin.len() + 16 * self.params.len());
        let flags = if self.keep_conn { record::KEEP_CONN } else { 0 };
        let role = record::RESPONDER.to_be_bytes();
        let begin = [role[0], role[1], flags, 0, 0, 0, 0, 0];
        push_record(&mut out, record::BEGIN_REQUEST, self.id, &begin);
        let mut chunk = Vec::new();
        for (k, v) in &self.params {
            let n = record::pair_encoded_len(k, v);
            if n > record::MAX_CONTENT_LEN {
                return Err(ClientError::ParamTooLong);
            }
            if chunk.len() + n > record::MAX_CONTENT_LEN {
                push_record(&mut out, record::PARAMS, self.id, &chunk);
                chunk.clear();
            }
            record::encode_pair(&mut chunk, k, v).map_err(|_| ClientError::ParamTooLong)?;
        }
        if !chunk.is_empty() {
            push_record(&mut out, record::PARAMS, self.id, &chunk);
        }
        push_record(&mut out, record::PARAMS, self.id, &[]);
        for part in self.stdin.chunks(record::MAX_CHUNK_LEN) {
            push_record(&mut out, record::STDIN, self.id, part);
        }
        push_record(&mut out, record::STDIN, self.id, &[]);
        Ok(out)
    }
}

/// Appends a record; content must be at most 65535 bytes. The padding rounds the
/// content up to a multiple of 8 unless content + padding would exceed 65535.
fn push_record(out: &mut Vec<u8>, kind: u8, id: u16, content: &[u8]) {
    let len = content.len().min(record::MAX_CONTENT_LEN);
    let mut h = Header::new(kind, id, u16::try_from(len).unwrap_or(u16::MAX));
    if len + h.padding_len as usize > record::MAX_CONTENT_LEN {
        h.padding_len = 0;
    }
    out.extend_from_slice(&h.encode());
    out.extend_from_slice(&content[..len]);
    out.extend_from_slice(&record::ZEROS[..h.padding_len as usize]);
}

/// A response as received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub app_status: u32,
    pub protocol_status: u8,
    /// Every record received, in order: (type, content length, padding length).
    pub records: Vec<(u8, u16, u8)>,
}

impl Response {
    /// Splits stdout into the header block and the body.
    fn split(&self) -> (&[u8], &[u8]) {
        let s = &self.stdout;
        let mut i = 0;
        while i < s.len() {
            if s[i] == b'\n' {
                if s.get(i + 1) == Some(&b'\n') {
                    return (&s[..i], &s[i + 2..]);
                }
                if s.get(i + 1) == Some(&b'\r') && s.get(i + 2) == Some(&b'\n') {
                    return (&s[..i], &s[i + 3..]);
                }
            }
            i += 1;
        }
        (s, &[])
    }

    /// The CGI header lines of stdout, in order (name, value without leading blanks).
    pub fn headers(&self) -> Vec<(String, String)> {
        let (head, _) = self.split();
        head.split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .filter(|l| !l.is_empty())
            .map(|l| {
                let l = String::from_utf8_lossy(l);
                match l.split_once(':') {
                    Some((n, v)) => (n.to_string(), v.trim_start().to_string()),
                    None => (l.to_string(), String::new()),
                }
            })
            .collect()
    }

    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers()
            .into_iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The status code from the `Status:` header, 200 if there is none.
    pub fn status(&self) -> u16 {
        self.header("Status")
            .and_then(|v| v.get(..3).and_then(|c| c.parse().ok()))
            .unwrap_or(200)
    }

    /// Stdout after the blank line that ends the headers.
    pub fn body(&self) -> &[u8] {
        self.split().1
    }

    /// Stdout as (lossy) text.
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Stderr as (lossy) text.
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

#[derive(Debug)]
enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A blocking FastCGI connection.
#[derive(Debug)]
pub struct Client {
    conn: BufReader<Stream>,
}

impl Client {
    pub fn connect(addr: &Addr) -> io::Result<Client> {
        let s = match addr {
            Addr::Tcp(a) => {
                let s = TcpStream::connect(a.as_str())?;
                s.set_nodelay(true)?;
                Stream::Tcp(s)
            }
            Addr::Unix(p) => Stream::Unix(UnixStream::connect(p)?),
        };
        Ok(Client {
            conn: BufReader::with_capacity(64 * 1024, s),
        })
    }

    /// Wraps an already connected Unix stream (e.g. one end of a socketpair).
    pub fn from_unix(s: UnixStream) -> Client {
        Client {
            conn: BufReader::with_capacity(64 * 1024, Stream::Unix(s)),
        }
    }

    /// Read and write timeouts (None = block forever).
    pub fn set_timeout(&mut self, t: Option<Duration>) -> io::Result<()> {
        match self.conn.get_ref() {
            Stream::Tcp(s) => {
                s.set_read_timeout(t)?;
                s.set_write_timeout(t)
            }
            Stream::Unix(s) => {
                s.set_read_timeout(t)?;
                s.set_write_timeout(t)
            }
        }
    }

    /// Shuts down the sending side (the server then sees end of stream).
    pub fn shutdown_write(&self) -> io::Result<()> {
        match self.conn.get_ref() {
            Stream::Tcp(s) => s.shutdown(Shutdown::Write),
            Stream::Unix(s) => s.shutdown(Shutdown::Write),
        }
    }

    /// Sends the request and reads the response up to its END_REQUEST.
    pub fn request(&mut self, req: &ClientRequest) -> Result<Response, ClientError> {
        let bytes = req.encode()?;
        self.send_raw(&bytes)?;
        self.read_response(req.id)
    }

    /// Sends FCGI_GET_VALUES asking for `names` and returns the pairs of the
    /// FCGI_GET_VALUES_RESULT answer.
    pub fn get_values(&mut self, names: &[&str]) -> Result<Pairs, ClientError> {
        let mut content = Vec::new();
        for n in names {
            record::encode_pair(&mut content, n.as_bytes(), b"")
                .map_err(|_| ClientError::ParamTooLong)?;
        }
        if content.len() > record::MAX_CONTENT_LEN {
            return Err(ClientError::ParamTooLong);
        }
        let mut out = Vec::with_capacity(content.len() + 16);
        push_record(&mut out, record::GET_VALUES, 0, &content);
        self.send_raw(&out)?;
        loop {
            let Some((h, body)) = self.read_record()? else {
                return Err(ClientError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed before FCGI_GET_VALUES_RESULT",
                )));
            };
            if h.kind == record::GET_VALUES_RESULT {
                let mut v = Vec::new();
                for p in record::pairs(&body) {
                    let (n, val) = p.map_err(|e| ClientError::Protocol(e.to_string()))?;
                    v.push((n.to_vec(), val.to_vec()));
                }
                return Ok(v);
            }
        }
    }

    /// Writes bytes as they are (for malformed-input tests).
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        let s = self.conn.get_mut();
        s.write_all(bytes)?;
        s.flush()
    }

    /// Reads one record: header and content (padding consumed). `Ok(None)` on a clean end
    /// of stream before a header.
    pub fn read_record(&mut self) -> io::Result<Option<(Header, Vec<u8>)>> {
        let mut hb = [0u8; HEADER_LEN];
        if self.conn.fill_buf()?.is_empty() {
            return Ok(None);
        }
        self.conn.read_exact(&mut hb)?;
        let h = Header::decode(&hb);
        let mut content = vec![0u8; h.content_len as usize];
        self.conn.read_exact(&mut content)?;
        let mut pad = [0u8; 255];
        self.conn.read_exact(&mut pad[..h.padding_len as usize])?;
        Ok(Some((h, content)))
    }

    /// Reads records until FCGI_END_REQUEST for `id`. STDOUT/STDERR records of other ids
    /// are listed in `records` but not collected.
    pub fn read_response(&mut self, id: u16) -> Result<Response, ClientError> {
        let mut r = Response::default();
        loop {
            let rec = match self.read_record() {
                Ok(Some(rec)) => rec,
                Ok(None) => {
                    return Err(ClientError::Incomplete {
                        partial: Box::new(r),
                        source: io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "connection closed by the server",
                        ),
                    })
                }
                Err(e) => {
                    return Err(ClientError::Incomplete {
                        partial: Box::new(r),
                        source: e,
                    })
                }
            };
            let (h, content) = rec;
            if h.version != record::VERSION_1 {
                return Err(ClientError::Protocol(format!(
                    "record version {} (type {})",
                    h.version, h.kind
                )));
            }
            r.records.push((h.kind, h.content_len, h.padding_len));
            if h.request_id != id {
                continue;
            }
            match h.kind {
                record::STDOUT => r.stdout.extend_from_slice(&content),
                record::STDERR => r.stderr.extend_from_slice(&content),
                record::END_REQUEST => {
                    if content.len() < 5 {
                        return Err(ClientError::Protocol(format!(
                            "FCGI_END_REQUEST with {} bytes of content",
                            content.len()
                        )));
                    }
                    r.app_status =
                        u32::from_be_bytes([content[0], content[1], content[2], content[3]]);
                    r.protocol_status = content[4];
                    return Ok(r);
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addr_parse() {
        assert_eq!(Addr::parse("9000"), Addr::Tcp("127.0.0.1:9000".into()));
        assert_eq!(Addr::parse("[::1]:9000"), Addr::Tcp("[::1]:9000".into()));
        assert_eq!(
            Addr::parse("localhost:9000"),
            Addr::Tcp("localhost:9000".into())
        );
        assert_eq!(
            Addr::parse("/run/php.sock"),
            Addr::Unix("/run/php.sock".into())
        );
        assert_eq!(Addr::parse("./x.sock"), Addr::Unix("./x.sock".into()));
    }

    #[test]
    fn encode_request() {
        let r = ClientRequest::new()
            .id(3)
            .keep_conn(true)
            .param("A", "bc")
            .body(b"hello".to_vec());
        let b = r.encode().unwrap();
        let expect: Vec<u8> = [
            &[1, 1, 0, 3, 0, 8, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0][..],
            &[1, 4, 0, 3, 0, 5, 3, 0, 1, 2, b'A', b'b', b'c', 0, 0, 0],
            &[1, 4, 0, 3, 0, 0, 0, 0],
            &[
                1, 5, 0, 3, 0, 5, 3, 0, b'h', b'e', b'l', b'l', b'o', 0, 0, 0,
            ],
            &[1, 5, 0, 3, 0, 0, 0, 0],
        ]
        .concat();
        assert_eq!(b, expect);
    }

    #[test]
    fn big_params_split_without_spanning() {
        let v = vec![b'v'; 40000];
        let r = ClientRequest::new()
            .param("A", &v)
            .param("B", &v)
            .param("C", "x");
        let b = r.encode().unwrap();
        // BEGIN(16) + PARAMS(A) + PARAMS(B, C) + empty PARAMS + empty STDIN
        let mut pos = 16;
        let mut lens = Vec::new();
        while pos < b.len() {
            let h = Header::decode(b[pos..pos + 8].try_into().unwrap());
            assert!(h.body_len() <= record::MAX_CONTENT_LEN);
            lens.push((h.kind, h.content_len));
            pos += 8 + h.body_len();
        }
        let a = record::pair_encoded_len(b"A", &v) as u16;
        let c = record::pair_encoded_len(b"C", b"x") as u16;
        assert_eq!(lens, vec![(4, a), (4, a + c), (4, 0), (5, 0)]);
        let too_big = ClientRequest::new().param("A", vec![0; 70000]);
        assert!(matches!(too_big.encode(), Err(ClientError::ParamTooLong)));
    }

    #[test]
    fn response_parsing() {
        let r = Response {
            stdout: b"Status: 404 Not Found\r\nContent-type: text/html; charset=UTF-8\r\n\r\nFile not found.\n".to_vec(),
            ..Default::default()
        };
        assert_eq!(r.status(), 404);
        assert_eq!(
            r.header("content-TYPE").as_deref(),
            Some("text/html; charset=UTF-8")
        );
        assert_eq!(r.body(), b"File not found.\n");
        assert_eq!(r.headers().len(), 2);
        let r = Response {
            stdout: b"X-A: 1\n\nbody\r\n\r\nmore".to_vec(),
            ..Default::default()
        };
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers(), vec![("X-A".to_string(), "1".to_string())]);
        assert_eq!(r.body(), b"body\r\n\r\nmore");
    }
}
