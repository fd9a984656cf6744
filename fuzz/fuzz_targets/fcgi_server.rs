//! Feeds arbitrary bytes to a FastCGI server connection: request framing, body reads
//! (record-bounded, php-style and drain) and responses must never panic nor loop.
#![no_main]

use std::io::{self, Cursor, Read, Write};

use fcgi::ServerConn;
use libfuzzer_sys::fuzz_target;

struct Mem {
    input: Cursor<Vec<u8>>,
    chunk: usize,
    written: usize,
}

impl Read for Mem {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.chunk);
        self.input.read(&mut buf[..n])
    }
}

impl Write for Mem {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    // First byte: read chunk size and body-read mode; the rest is the connection's input.
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let chunk = 1 + (ctl as usize & 0x3f) * 97;
    let mode = ctl >> 6;
    let mut c = ServerConn::new(Mem {
        input: Cursor::new(rest.to_vec()),
        chunk,
        written: 0,
    });
    // Half of the inputs read with the hold-back of the last queued byte (as on a Unix
    // socket in the worker).
    if ctl & 1 == 1 {
        c.set_queued_probe(|m: &Mem| {
            let len = m.input.get_ref().len() as u64;
            usize::try_from(len.saturating_sub(m.input.position())).ok()
        });
    }
    let mut buf = vec![0u8; 1 + (ctl as usize * 37) % 9000];
    for _ in 0..16 {
        match c.read_request() {
            Ok(Some(req)) => {
                let _ = req.params.iter_lifo().count();
                let _ = req.params.iter_lifo_cstr().count();
                let _ = req.params.get_cstr("SCRIPT_FILENAME");
                c.recycle_params(req.params);
                let mut total = 0usize;
                loop {
                    let n = match mode {
                        0 => c.read_stdin(&mut buf).unwrap_or(0),
                        1 => c.fill_stdin(&mut buf).unwrap_or(0),
                        2 => {
                            let _ = c.drain_stdin();
                            0
                        }
                        _ => 0,
                    };
                    assert!(n <= buf.len());
                    total += n;
                    if n == 0 {
                        break;
                    }
                }
                assert!(total <= rest.len());
                let _ = c.write_stdout(&buf[..buf.len().min(total + 1)]);
                let _ = c.write_stderr(b"e");
                let _ = c.end_request(0, 0);
                if !c.keep_alive() && mode == 3 {
                    break;
                }
            }
            Ok(None) => {
                assert!(c.close_reason().is_some());
                break;
            }
            Err(_) => break,
        }
    }
});
