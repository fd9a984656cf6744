//! Property tests of the codec: no panic on any input, name-value round trip, output
//! records decode back to the written bytes.

use std::io::{self, Cursor, Read, Write};

use fcgi::record::{self, Header};
use fcgi::ServerConn;
use proptest::prelude::*;

/// Reads in chunks whose sizes cycle through `chunks`; collects writes.
struct Chunky {
    input: Cursor<Vec<u8>>,
    chunks: Vec<usize>,
    i: usize,
    output: Vec<u8>,
}

impl Read for Chunky {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let c = self.chunks[self.i % self.chunks.len()].max(1);
        self.i += 1;
        let n = buf.len().min(c);
        self.input.read(&mut buf[..n])
    }
}

impl Write for Chunky {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn chunky(input: Vec<u8>, chunks: Vec<usize>) -> Chunky {
    Chunky {
        input: Cursor::new(input),
        chunks,
        i: 0,
        output: Vec::new(),
    }
}

/// Bytes that look like records often enough to get past the first checks.
fn recordish() -> impl Strategy<Value = Vec<u8>> {
    let one = (
        prop_oneof![Just(1u8), Just(0u8), any::<u8>()],
        prop_oneof![1u8..=11, any::<u8>()],
        any::<u16>(),
        prop::collection::vec(any::<u8>(), 0..300),
        prop_oneof![Just(0u8), any::<u8>()],
        any::<bool>(),
    )
        .prop_map(|(v, t, id, content, pad, lie)| {
            let len = if lie {
                content.len() as u16 ^ 0x0100
            } else {
                content.len() as u16
            };
            let mut b = Header {
                version: v,
                kind: t,
                request_id: id,
                content_len: len,
                padding_len: pad,
                reserved: 0,
            }
            .encode()
            .to_vec();
            b.extend(content);
            b.extend(std::iter::repeat_n(0u8, pad as usize));
            b
        });
    let begin = (any::<u16>(), 0u16..5, any::<u8>()).prop_map(|(id, role, flags)| {
        let r = role.to_be_bytes();
        let mut v = Vec::new();
        record::write_record(
            &mut v,
            record::BEGIN_REQUEST,
            id,
            &[r[0], r[1], flags, 0, 0, 0, 0, 0],
        )
        .unwrap();
        v
    });
    prop::collection::vec(prop_oneof![one, begin], 0..12).prop_map(|v| v.concat())
}

fn exercise(input: Vec<u8>, chunks: Vec<usize>, bufsize: usize, mode: u8) {
    let mut c = ServerConn::new(chunky(input, chunks));
    let mut buf = vec![0u8; bufsize.max(1)];
    for _ in 0..8 {
        match c.read_request() {
            Ok(Some(r)) => {
                assert!(r.params.get("FCGI_ROLE").is_some());
                let mut total = 0;
                loop {
                    let n = match mode % 3 {
                        0 => c.read_stdin(&mut buf).unwrap_or(0),
                        1 => c.fill_stdin(&mut buf).unwrap_or(0),
                        _ => {
                            let _ = c.drain_stdin();
                            0
                        }
                    };
                    assert!(n <= buf.len());
                    total += n;
                    if n == 0 || total > 10_000_000 {
                        break;
                    }
                }
                let _ = c.write_stdout(b"x");
                let _ = c.end_request(0, 0);
                if !c.keep_alive() && mode & 1 == 0 {
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
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn no_panic_on_arbitrary_bytes(
        input in prop::collection::vec(any::<u8>(), 0..2000),
        chunks in prop::collection::vec(1usize..50, 1..4),
        bufsize in 1usize..5000,
        mode in any::<u8>(),
    ) {
        exercise(input, chunks, bufsize, mode);
    }

    #[test]
    fn no_panic_on_recordish_bytes(
        input in recordish(),
        chunks in prop::collection::vec(1usize..5000, 1..4),
        bufsize in 1usize..5000,
        mode in any::<u8>(),
    ) {
        exercise(input, chunks, bufsize, mode);
    }

}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn name_value_round_trip(
        pairs in prop::collection::vec(
            (prop::collection::vec(any::<u8>(), 0..300), prop::collection::vec(any::<u8>(), 0..300)),
            0..20,
        ),
    ) {
        let mut enc = Vec::new();
        for (n, v) in &pairs {
            record::encode_pair(&mut enc, n, v).unwrap();
        }
        let expect_len: usize = pairs.iter().map(|(n, v)| record::pair_encoded_len(n, v)).sum();
        prop_assert_eq!(enc.len(), expect_len);
        let dec: Vec<(Vec<u8>, Vec<u8>)> = record::pairs(&enc)
            .map(|p| p.map(|(n, v)| (n.to_vec(), v.to_vec())))
            .collect::<Result<_, _>>()
            .unwrap();
        prop_assert_eq!(dec, pairs);
    }

    #[test]
    fn params_survive_the_server(
        pairs in prop::collection::vec(
            (prop::collection::vec(any::<u8>(), 0..200), prop::collection::vec(any::<u8>(), 0..3000)),
            0..30,
        ),
        chunks in prop::collection::vec(1usize..3000, 1..4),
    ) {
        let req = pairs.iter().fold(fcgi::client::ClientRequest::new(), |r, (n, v)| r.param(n, v));
        let bytes = req.encode().unwrap();
        let mut c = ServerConn::new(chunky(bytes, chunks));
        let r = c.read_request().unwrap().unwrap();
        let mut model = fcgi::Params::new();
        model.set("FCGI_ROLE", "RESPONDER");
        for (n, v) in &pairs {
            // A value ends at its first NUL (C strings, as php-fpm reads it).
            let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
            model.set(n, &v[..end]);
        }
        prop_assert_eq!(r.params, model);
    }

    #[test]
    fn output_decodes_to_the_written_bytes(
        ops in prop::collection::vec(
            prop_oneof![
                4 => (0usize..20_000).prop_map(|n| (0u8, n)),
                1 => (60_000usize..200_000).prop_map(|n| (0u8, n)),
                2 => (0usize..3000).prop_map(|n| (1u8, n)),
                1 => Just((2u8, 0usize)),
            ],
            0..20,
        ),
        id in any::<u16>(),
    ) {
        let mut input = Vec::new();
        record::write_record(&mut input, record::BEGIN_REQUEST, id, &[0, 1, 0, 0, 0, 0, 0, 0]).unwrap();
        record::write_record(&mut input, record::PARAMS, id, &[]).unwrap();
        let mut c = ServerConn::new(chunky(input, vec![usize::MAX]));
        c.read_request().unwrap().unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut k = 0u8;
        for (op, n) in ops {
            let d: Vec<u8> = (0..n).map(|_| { k = k.wrapping_add(7); k }).collect();
            match op {
                0 => { c.write_stdout(&d).unwrap(); out.extend(d); }
                1 => { c.write_stderr(&d).unwrap(); err.extend(d); }
                _ => c.flush().unwrap(),
            }
        }
        c.end_request(0, 0).unwrap();
        let wire = c.into_inner().output;
        let (mut got_out, mut got_err) = (Vec::new(), Vec::new());
        let mut p = 0;
        let mut ended = false;
        while p < wire.len() {
            prop_assert!(!ended, "nothing after END_REQUEST");
            let h = Header::decode(wire[p..p + 8].try_into().unwrap());
            prop_assert_eq!(h.version, 1);
            prop_assert_eq!(h.request_id, id);
            prop_assert_eq!(h.padding_len, record::padding_for(h.content_len as usize));
            prop_assert!(h.body_len() <= 65535);
            let c = &wire[p + 8..p + 8 + h.content_len as usize];
            prop_assert!(wire[p + 8 + c.len()..p + 8 + h.body_len()].iter().all(|&b| b == 0));
            match h.kind {
                record::STDOUT => { prop_assert!(!c.is_empty()); got_out.extend_from_slice(c) }
                record::STDERR => { prop_assert!(!c.is_empty()); got_err.extend_from_slice(c) }
                record::END_REQUEST => { prop_assert_eq!(c, &[0u8; 8][..]); ended = true }
                t => prop_assert!(false, "unexpected record type {}", t),
            }
            p += 8 + h.body_len();
        }
        prop_assert!(ended);
        prop_assert_eq!(got_out, out);
        prop_assert_eq!(got_err, err);
    }

    #[test]
    fn body_round_trip(
        parts in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..3000), 0..10),
        chunks in prop::collection::vec(1usize..5000, 1..4),
        bufsize in 1usize..10_000,
        fill in any::<bool>(),
    ) {
        let mut input = Vec::new();
        record::write_record(&mut input, record::BEGIN_REQUEST, 1, &[0, 1, 1, 0, 0, 0, 0, 0]).unwrap();
        record::write_record(&mut input, record::PARAMS, 1, &[]).unwrap();
        for p in &parts {
            record::write_record(&mut input, record::STDIN, 1, p).unwrap();
        }
        record::write_record(&mut input, record::STDIN, 1, &[]).unwrap();
        let mut c = ServerConn::new(chunky(input, chunks));
        c.read_request().unwrap().unwrap();
        let mut got = Vec::new();
        let mut buf = vec![0u8; bufsize];
        loop {
            let n = if fill { c.fill_stdin(&mut buf).unwrap() } else { c.read_stdin(&mut buf).unwrap() };
            got.extend_from_slice(&buf[..n]);
            if n == 0 || (fill && n < buf.len()) {
                break;
            }
        }
        prop_assert_eq!(got, parts.concat());
        prop_assert!(c.keep_alive());
    }
}
