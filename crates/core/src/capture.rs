//! What workers write to their stdout/stderr, cut into log entries like php-fpm
//! (reference §3.10). Pure: bytes in, entries out.
//!
//! An entry ends at `\n`, when the output switches between stdout and stderr, at the
//! end-of-request marker the worker writes to stderr after every request, and when it
//! reaches the longest text that fits `log_limit`.

/// Written by a worker to its stderr after every request.
pub const MARKER: &[u8] = b"\0fscf\0";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One log entry: the text (without newline), and whether it is the last words of a
/// pipe that closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub stream: Stream,
    pub text: Vec<u8>,
    pub pipe_closed: bool,
    /// End-of-request markers seen before this entry ended: the entry was written
    /// during (or after) the worker's `markers + 1`-th request.
    pub markers: u64,
}

/// The assembler of one worker (both its streams).
#[derive(Debug)]
pub struct Capture {
    max_text: usize,
    pending: Vec<u8>,
    stream: Stream,
    /// Bytes of a possible marker at the end of the last stderr read.
    held: Vec<u8>,
    emitted: bool,
    markers: u64,
}

impl Capture {
    /// `max_text`: the longest text of one entry (log_limit minus decoration and newline).
    pub fn new(max_text: usize) -> Capture {
        Capture {
            max_text: max_text.max(1),
            pending: Vec::new(),
            stream: Stream::Stderr,
            held: Vec::new(),
            emitted: false,
            markers: 0,
        }
    }

    fn emit(&mut self, out: &mut Vec<Entry>) {
        if !self.pending.is_empty() {
            out.push(Entry {
                stream: self.stream,
                text: std::mem::take(&mut self.pending),
                pipe_closed: false,
                markers: self.markers,
            });
            self.emitted = true;
        }
    }

    /// Text bytes: an entry ends at each `\n` and whenever it reaches `max_text`. Works
    /// on runs of bytes, not byte by byte (a worker may write megabytes).
    fn push_data(&mut self, mut data: &[u8], out: &mut Vec<Entry>) {
        while !data.is_empty() {
            // `pending` is emitted as soon as it reaches `max_text`: there is room.
            let room = self.max_text - self.pending.len();
            let window = &data[..data.len().min(room)];
            match window.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.pending.extend_from_slice(&window[..i]);
                    self.emit(out);
                    data = &data[i + 1..];
                }
                None => {
                    self.pending.extend_from_slice(window);
                    data = &data[window.len()..];
                    if self.pending.len() >= self.max_text {
                        self.emit(out);
                    }
                }
            }
        }
    }

    /// Bytes read from one of the worker's pipes.
    pub fn feed(&mut self, stream: Stream, data: &[u8], out: &mut Vec<Entry>) {
        if stream != self.stream {
            if self.stream == Stream::Stderr && !self.held.is_empty() {
                let held = std::mem::take(&mut self.held);
                self.push_data(&held, out);
            }
            self.emit(out);
            self.stream = stream;
        }
        if stream == Stream::Stdout {
            self.push_data(data, out);
            return;
        }
        let joined;
        let buf: &[u8] = if self.held.is_empty() {
            data
        } else {
            let mut b = std::mem::take(&mut self.held);
            b.extend_from_slice(data);
            joined = b;
            &joined
        };
        let mut i = 0;
        while i < buf.len() {
            // Text up to the next NUL, which may start a marker.
            let Some(off) = buf[i..].iter().position(|&b| b == 0) else {
                self.push_data(&buf[i..], out);
                return;
            };
            self.push_data(&buf[i..i + off], out);
            i += off;
            let rest = &buf[i..];
            if rest.len() >= MARKER.len() {
                if rest.starts_with(MARKER) {
                    self.emit(out);
                    self.markers += 1;
                    i += MARKER.len();
                    continue;
                }
            } else if MARKER.starts_with(rest) {
                // Maybe a marker split across reads: decide with the next read.
                self.held = rest.to_vec();
                return;
            }
            self.push_data(&buf[i..=i], out);
            i += 1;
        }
    }

    /// The pipe of `stream` closed (the worker is gone).
    pub fn close(&mut self, stream: Stream, out: &mut Vec<Entry>) {
        if stream == Stream::Stderr && !self.held.is_empty() {
            let held = std::mem::take(&mut self.held);
            self.push_data(&held, out);
        }
        if self.stream == stream && !self.pending.is_empty() {
            let first = !self.emitted;
            out.push(Entry {
                stream,
                text: std::mem::take(&mut self.pending),
                pipe_closed: first,
                markers: self.markers,
            });
            self.emitted = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(entries: &[Entry]) -> Vec<String> {
        entries
            .iter()
            .map(|e| String::from_utf8_lossy(&e.text).into_owned())
            .collect()
    }

    #[test]
    fn lines_and_marker_flush() {
        let mut c = Capture::new(1023);
        let mut out = Vec::new();
        c.feed(Stream::Stderr, b"msg 1 - ", &mut out);
        c.feed(Stream::Stderr, b"msg 2 - ", &mut out);
        c.feed(Stream::Stderr, b"msg 3", &mut out);
        assert!(out.is_empty());
        c.feed(Stream::Stderr, MARKER, &mut out);
        assert_eq!(texts(&out), vec!["msg 1 - msg 2 - msg 3"]);
        out.clear();
        c.feed(Stream::Stderr, b"a\nb\nc", &mut out);
        assert_eq!(texts(&out), vec!["a", "b"]);
    }

    #[test]
    fn stream_switch_ends_entry() {
        let mut c = Capture::new(100);
        let mut out = Vec::new();
        c.feed(Stream::Stdout, b"msg 1 - ", &mut out);
        c.feed(Stream::Stderr, b"msg 2 - msg 3\n", &mut out);
        assert_eq!(out[0].stream, Stream::Stdout);
        assert_eq!(texts(&out), vec!["msg 1 - ", "msg 2 - msg 3"]);
    }

    #[test]
    fn long_text_is_wrapped() {
        let mut c = Capture::new(1023);
        let mut out = Vec::new();
        c.feed(Stream::Stderr, &[b'a'; 100], &mut out);
        let mut b = vec![b'b'; 2500];
        b.push(b'\n');
        c.feed(Stream::Stderr, &b, &mut out);
        let lens: Vec<usize> = out.iter().map(|e| e.text.len()).collect();
        assert_eq!(lens, vec![1023, 1023, 554]);
        assert!(out[0].text.starts_with(&[b'a'; 100]));
    }

    #[test]
    fn entries_count_the_requests_before_them() {
        let mut c = Capture::new(100);
        let mut out = Vec::new();
        c.feed(Stream::Stderr, b"one\npartial", &mut out);
        c.feed(Stream::Stderr, MARKER, &mut out);
        c.feed(Stream::Stdout, b"two\n", &mut out);
        let mut split = b"three\0fs".to_vec();
        c.feed(Stream::Stderr, &split, &mut out);
        split = b"cf\0four\n".to_vec();
        c.feed(Stream::Stderr, &split, &mut out);
        let got: Vec<(String, u64)> = out
            .iter()
            .map(|e| (String::from_utf8_lossy(&e.text).into_owned(), e.markers))
            .collect();
        let want = [
            ("one", 0),
            ("partial", 0),
            ("two", 1),
            ("three", 1),
            ("four", 2),
        ];
        assert_eq!(got, want.map(|(t, n)| (t.to_string(), n)).to_vec());
    }

    #[test]
    fn marker_split_across_reads() {
        let mut c = Capture::new(1023);
        let mut out = Vec::new();
        let mut first = vec![b'a'; 1022];
        first.extend_from_slice(b"\0fs");
        c.feed(Stream::Stderr, &first, &mut out);
        c.feed(Stream::Stderr, b"cf\0", &mut out);
        assert_eq!(texts(&out), vec!["a".repeat(1022)]);
    }

    #[test]
    fn marker_prefix_that_is_not_one_is_data() {
        let mut c = Capture::new(1023);
        let mut out = Vec::new();
        let mut first = vec![b'a'; 1021];
        first.extend_from_slice(b"\0f");
        c.feed(Stream::Stderr, &first, &mut out);
        c.feed(Stream::Stderr, b"abc", &mut out);
        c.feed(Stream::Stderr, MARKER, &mut out);
        let mut expected = "a".repeat(1021);
        expected.push_str("\0f");
        assert_eq!(texts(&out), vec![expected, "abc".to_string()]);
    }

    #[test]
    fn marker_in_the_middle() {
        let mut c = Capture::new(1023);
        let mut out = Vec::new();
        let mut data = vec![b'a'; 1013];
        data.extend_from_slice(b"Quarkslab\0fscf\0Quarkslab");
        c.feed(Stream::Stderr, &data, &mut out);
        c.feed(Stream::Stderr, MARKER, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].text.len(), 1022);
        assert_eq!(texts(&out)[1], "Quarkslab");
    }

    #[test]
    fn closed_pipe_flushes_with_flag() {
        let mut c = Capture::new(100);
        let mut out = Vec::new();
        c.feed(Stream::Stderr, b"dying words", &mut out);
        c.close(Stream::Stderr, &mut out);
        assert_eq!(
            out,
            vec![Entry {
                stream: Stream::Stderr,
                text: b"dying words".to_vec(),
                pipe_closed: true,
                markers: 0,
            }]
        );
    }
}
