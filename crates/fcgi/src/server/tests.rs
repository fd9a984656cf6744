use super::*;
use crate::record::*;
use std::io::Cursor;

/// In-memory stream: reads from `input` at most `chunk` bytes at a time, collects writes.
struct Duplex {
    input: Cursor<Vec<u8>>,
    chunk: usize,
    output: Vec<u8>,
    writes: usize,
}

impl Duplex {
    fn new(input: Vec<u8>) -> Duplex {
        Duplex::chunked(input, usize::MAX)
    }
    fn chunked(input: Vec<u8>, chunk: usize) -> Duplex {
        Duplex {
            input: Cursor::new(input),
            chunk,
            output: Vec::new(),
            writes: 0,
        }
    }
}

impl Read for Duplex {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.chunk);
        self.input.read(&mut buf[..n])
    }
}

impl Write for Duplex {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writes += 1;
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn rec(kind: u8, id: u16, content: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    write_record(&mut v, kind, id, content).unwrap();
    v
}

fn raw(version: u8, kind: u8, id: u16, content: &[u8], pad: u8) -> Vec<u8> {
    let h = Header {
        version,
        kind,
        request_id: id,
        content_len: content.len() as u16,
        padding_len: pad,
        reserved: 0,
    };
    let mut v = h.encode().to_vec();
    v.extend_from_slice(content);
    v.extend(std::iter::repeat_n(0xAA, pad as usize));
    v
}

fn begin(id: u16, role: u16, flags: u8) -> Vec<u8> {
    let r = role.to_be_bytes();
    rec(BEGIN_REQUEST, id, &[r[0], r[1], flags, 0, 0, 0, 0, 0])
}

fn params(id: u16, pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut c = Vec::new();
    for (n, v) in pairs {
        encode_pair(&mut c, n, v).unwrap();
    }
    rec(PARAMS, id, &c)
}

fn simple_request(id: u16, flags: u8, body: &[u8]) -> Vec<u8> {
    let mut v = begin(id, RESPONDER, flags);
    v.extend(params(id, &[(b"SCRIPT_FILENAME", b"/x.php"), (b"A", b"1")]));
    v.extend(rec(PARAMS, id, b""));
    for c in body.chunks(1000) {
        v.extend(rec(STDIN, id, c));
    }
    v.extend(rec(STDIN, id, b""));
    v
}

/// Decodes output records: (header, content); checks padding bytes are zero.
fn records(out: &[u8]) -> Vec<(Header, Vec<u8>)> {
    let mut v = Vec::new();
    let mut p = 0;
    while p < out.len() {
        let h = Header::decode(out[p..p + 8].try_into().unwrap());
        let c = out[p + 8..p + 8 + h.content_len as usize].to_vec();
        let pad = &out[p + 8 + h.content_len as usize..p + 8 + h.body_len()];
        assert!(pad.iter().all(|&b| b == 0), "padding not zero");
        assert_eq!(h.version, 1);
        assert_eq!(h.reserved, 0);
        assert_eq!(h.padding_len, padding_for(h.content_len as usize));
        v.push((h, c));
        p += 8 + h.body_len();
    }
    v
}

fn shape(out: &[u8]) -> Vec<(u8, u16, u8)> {
    records(out)
        .iter()
        .map(|(h, _)| (h.kind, h.content_len, h.padding_len))
        .collect()
}

fn read_all_stdin<S: Read + Write>(c: &mut ServerConn<S>) -> Vec<u8> {
    let mut body = Vec::new();
    let mut buf = [0u8; 777];
    loop {
        let n = c.read_stdin(&mut buf).unwrap();
        if n == 0 {
            return body;
        }
        body.extend_from_slice(&buf[..n]);
    }
}

fn names(p: &Params) -> Vec<String> {
    p.iter()
        .map(|(n, _)| String::from_utf8_lossy(n).into_owned())
        .collect()
}

#[test]
fn simple_request_and_response_bytes() {
    for chunk in [1, 3, 8, 100, usize::MAX] {
        let mut c = ServerConn::new(Duplex::chunked(simple_request(7, 0, b"hello"), chunk));
        let r = c.read_request().unwrap().unwrap();
        assert_eq!(r.id, 7);
        assert_eq!(r.role, Role::Responder);
        assert!(!r.keep_conn);
        assert_eq!(names(&r.params), ["FCGI_ROLE", "SCRIPT_FILENAME", "A"]);
        assert_eq!(r.params.get("FCGI_ROLE"), Some(&b"RESPONDER"[..]));
        assert_eq!(read_all_stdin(&mut c), b"hello");
        assert!(c.stdin_ended());
        c.write_stdout(b"abc").unwrap();
        c.end_request(0, REQUEST_COMPLETE).unwrap();
        let out = &c.get_ref().output;
        assert_eq!(
            out[..],
            [
                &[1, 6, 0, 7, 0, 3, 5, 0, b'a', b'b', b'c', 0, 0, 0, 0, 0][..],
                &[1, 3, 0, 7, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            ]
            .concat()
        );
        assert_eq!(c.read_request().unwrap(), None);
        assert_eq!(c.close_reason(), Some(CloseReason::Eof));
    }
}

#[test]
fn end_request_status_and_no_terminator() {
    let mut c = ServerConn::new(Duplex::new(simple_request(0x0102, KEEP_CONN, b"")));
    let r = c.read_request().unwrap().unwrap();
    assert!(r.keep_conn);
    assert!(c.keep_alive());
    c.write_stderr(b"err").unwrap();
    c.end_request(0x01020304, OVERLOADED).unwrap();
    let recs = records(&c.get_ref().output);
    assert_eq!(recs.len(), 2, "no empty STDOUT/STDERR terminator");
    assert_eq!(recs[0].0.kind, STDERR);
    assert_eq!(recs[0].0.request_id, 0x0102);
    assert_eq!(recs[1].0.kind, END_REQUEST);
    assert_eq!(recs[1].0.request_id, 0x0102);
    assert_eq!(recs[1].1, [1, 2, 3, 4, OVERLOADED, 0, 0, 0]);
    // A second end is a no-op; writes after the end are refused.
    c.end_request(0, 0).unwrap();
    assert_eq!(records(&c.get_ref().output).len(), 2);
    assert!(c.request_ended());
    assert!(c.write_stdout(b"late").is_err());
}

#[test]
fn empty_response_is_only_end_request() {
    let mut c = ServerConn::new(Duplex::new(simple_request(1, 0, b"")));
    c.read_request().unwrap().unwrap();
    c.write_stdout(b"").unwrap();
    c.flush().unwrap();
    c.end_request(0, 0).unwrap();
    assert_eq!(shape(&c.get_ref().output), [(END_REQUEST, 8, 0)]);
}

#[test]
fn get_values_then_request_then_get_values() {
    let mut q = Vec::new();
    encode_pair(&mut q, b"FCGI_MAX_CONNS", b"").unwrap();
    encode_pair(&mut q, b"FCGI_MAX_REQS", b"").unwrap();
    encode_pair(&mut q, b"FCGI_MPXS_CONNS", b"").unwrap();
    let mut input = rec(GET_VALUES, 0, &q);
    input.extend(simple_request(1, KEEP_CONN, b"x"));
    input.extend(rec(GET_VALUES, 0, &q));
    let mut c = ServerConn::new(Duplex::new(input));
    let r = c.read_request().unwrap().unwrap();
    let expected_result = [
        &[1, 10, 0, 0, 0, 18, 6, 0, 15, 1][..],
        b"FCGI_MPXS_CONNS0",
        &[0; 6],
    ]
    .concat();
    assert_eq!(c.get_ref().output, expected_result);
    assert_eq!(r.id, 1);
    assert_eq!(read_all_stdin(&mut c), b"x");
    c.write_stdout(b"1").unwrap();
    c.end_request(0, 0).unwrap();
    assert!(c.keep_alive());
    c.get_mut().output.clear();
    assert_eq!(c.read_request().unwrap(), None);
    assert_eq!(c.close_reason(), Some(CloseReason::Eof));
    assert_eq!(c.get_ref().output, expected_result);
}

#[test]
fn get_values_unknown_names_only() {
    let mut q = Vec::new();
    encode_pair(&mut q, b"FCGI_MAX_CONNS", b"").unwrap();
    encode_pair(&mut q, b"fcgi_mpxs_conns", b"").unwrap();
    let mut c = ServerConn::new(Duplex::new(rec(GET_VALUES, 5, &q)));
    assert_eq!(c.read_request().unwrap(), None);
    assert_eq!(c.get_ref().output, [1, 10, 0, 0, 0, 0, 0, 0]);
    // Asked twice: answered once.
    let mut q = Vec::new();
    encode_pair(&mut q, b"FCGI_MPXS_CONNS", b"").unwrap();
    encode_pair(&mut q, b"FCGI_MPXS_CONNS", b"1").unwrap();
    let mut c = ServerConn::new(Duplex::new(rec(GET_VALUES, 0, &q)));
    assert_eq!(c.read_request().unwrap(), None);
    assert_eq!(shape(&c.get_ref().output), [(GET_VALUES_RESULT, 18, 6)]);
    // Malformed GET_VALUES closes without an answer.
    let mut c = ServerConn::new(Duplex::new(rec(GET_VALUES, 0, &[9, 0, b'a'])));
    assert_eq!(c.read_request().unwrap(), None);
    assert_eq!(c.close_reason(), Some(CloseReason::BadParams));
    assert!(c.get_ref().output.is_empty());
}

#[test]
fn begin_request_must_be_exactly_8_bytes() {
    for len in [0usize, 7, 9, 16] {
        let mut input = rec(BEGIN_REQUEST, 1, &vec![0u8; len]);
        input.extend(simple_request(1, 0, b""));
        let mut c = ServerConn::new(Duplex::new(input));
        assert_eq!(c.read_request().unwrap(), None, "len {len}");
        assert_eq!(
            c.close_reason(),
            Some(CloseReason::UnexpectedRecord {
                kind: BEGIN_REQUEST,
                content_len: len as u16
            })
        );
        assert!(c.get_ref().output.is_empty());
    }
    // BEGIN_REQUEST with padding is fine.
    let mut input = raw(1, BEGIN_REQUEST, 1, &[0, 1, 0, 0, 0, 0, 0, 0], 200);
    input.extend(rec(PARAMS, 1, b""));
    let mut c = ServerConn::new(Duplex::new(input));
    assert!(c.read_request().unwrap().is_some());
}

#[test]
fn first_record_of_other_types_closes() {
    for kind in [
        ABORT_REQUEST,
        END_REQUEST,
        PARAMS,
        STDOUT,
        STDERR,
        DATA,
        GET_VALUES_RESULT,
        UNKNOWN_TYPE,
        0,
        200,
    ] {
        let mut input = rec(kind, 1, b"abc");
        input.extend(simple_request(1, 0, b""));
        let mut c = ServerConn::new(Duplex::new(input));
        assert_eq!(c.read_request().unwrap(), None);
        assert!(matches!(
            c.close_reason(),
            Some(CloseReason::UnexpectedRecord { .. })
        ));
        assert!(c.get_ref().output.is_empty());
    }
    // A non-empty STDIN record first is not skipped.
    let mut input = rec(STDIN, 1, b"abc");
    input.extend(simple_request(1, 0, b""));
    let mut c = ServerConn::new(Duplex::new(input));
    assert_eq!(c.read_request().unwrap(), None);
}

#[test]
fn version_zero_closes_and_higher_versions_are_accepted() {
    let mut input = simple_request(1, 0, b"");
    input[0] = 0;
    let mut c = ServerConn::new(Duplex::new(input));
    assert_eq!(c.read_request().unwrap(), None);
    assert_eq!(c.close_reason(), Some(CloseReason::BadVersion));

    // Version 0 in a params record.
    let mut input = begin(1, RESPONDER, 0);
    input.extend(raw(0, PARAMS, 1, &[1, 1, b'a', b'b'], 4));
    let mut c = ServerConn::new(Duplex::new(input));
    assert_eq!(c.read_request().unwrap(), None);
    assert_eq!(c.close_reason(), Some(CloseReason::BadVersion));

    // Version 0 after leading empty STDIN records.
    let mut input = rec(STDIN, 1, b"");
    input.extend(raw(0, BEGIN_REQUEST, 1, &[0, 1, 0, 0, 0, 0, 0, 0], 0));
    let mut c = ServerConn::new(Duplex::new(input));
    assert_eq!(c.read_request().unwrap(), None);
    assert_eq!(c.close_reason(), Some(CloseReason::BadVersion));

    // Any version >= 1 is accepted, everywhere.
    let mut input = raw(2, BEGIN_REQUEST, 1, &[0, 1, 0, 0, 0, 0, 0, 0], 0);
    input.extend(raw(255, PARAMS, 1, &[1, 1, b'a', b'b'], 4));
    input.extend(raw(7, PARAMS, 1, b"", 0));
    input.extend(raw(9, STDIN, 1, b"body", 4));
    input.extend(raw(3, STDIN, 1, b"", 0));
    let mut c = ServerConn::new(Duplex::new(input));
    let r = c.read_request().unwrap().unwrap();
    assert_eq!(r.params.get("a"), Some(&b"b"[..]));
    assert_eq!(read_all_stdin(&mut c), b"body");

    // Version 0 while reading the body ends it and disables keep-alive.
    let mut input = simple_request(1, KEEP_CONN, b"");
    let n = input.len();
    input.truncate(n - 8);
    input.extend(raw(1, STDIN, 1, b"ab", 6));
    input.extend(raw(0, STDIN, 1, b"cd", 6));
    let mut c = ServerConn::new(Duplex::new(input));
    c.read_request().unwrap().unwrap();
    assert_eq!(read_all_stdin(&mut c), b"ab");
    assert!(!c.keep_alive());
}

#[test]
fn roles() {
    for (role, name, r) in [
        (RESPONDER, "RESPONDER", Role::Responder),
        (AUTHORIZER, "AUTHORIZER", Role::Authorizer),
        (FILTER, "FILTER", Role::Filter),
    ] {
        let mut input = begin(3, role, 0);
        input.extend(rec(PARAMS, 3, b""));
        let mut c = ServerConn::new(Duplex::new(input));
        let req = c.read_request().unwrap().unwrap();
        assert_eq!(req.role, r);
        assert_eq!(req.params.get_str("FCGI_ROLE"), Some(name));
    }
    for role in [0u16, 4, 11, 0x0101, 0xffff] {
        let mut input = begin(3, role, KEEP_CONN);
        input.extend(rec(PARAMS, 3, b""));
        let mut c = ServerConn::new(Duplex::new(input));
        assert_eq!(c.read_request().unwrap(), None);
        assert_eq!(c.close_reason(), Some(CloseReason::UnknownRole(role)));
        assert!(c.get_ref().output.is_empty(), "no FCGI_UNKNOWN_ROLE answer");
    }
}

#[test]
fn keep_conn_flag_is_bit_0() {
    for (flags, keep) in [(0u8, false), (1, true), (0xfe, false), (0xff, true)] {
        let mut c = ServerConn::new(Duplex::new(simple_request(1, flags, b"")));
        let r = c.read_request().unwrap().unwrap();
        assert_eq!(r.keep_conn, keep);
    }
}

#[test]
fn leading_empty_stdin_records_are_skipped() {
    let mut input = Vec::new();
    for _ in 0..5 {
        input.extend(rec(STDIN, 9, b""));
    }
    input.extend(simple_request(2, 0, b"zz"));
    let mut c = ServerConn::new(Duplex::new(input));
    let r = c.read_request().unwrap().unwrap();
    assert_eq!(r.id, 2, "the id of BEGIN_REQUEST is used");
    assert_eq!(read_all_stdin(&mut c), b"zz");
    // Only leading empty STDIN records: peer closes → clean close.
    let mut c = ServerConn::new(Duplex::new(rec(STDIN, 1, b"")));
    assert_eq!(c.read_request().unwrap(), None);
    assert_eq!(c.close_reason(), Some(CloseReason::Eof));
}

#[test]
fn params_end_at_any_other_record_whose_content_is_not_consumed() {
    // PARAMS then a STDIN record directly: its header ends the params; its content
    // is then read as the next header (here a valid STDIN header carrying "hi").
    let mut input = begin(1, RESPONDER, KEEP_CONN);
    input.extend(params(1, &[(b"A", b"1")]));
    input.extend(rec(STDIN, 1, &[1, 5, 0, 1, 0, 2, 6, 0]));
    input.extend(b"hi\0\0\0\0\0\0");
    input.extend(rec(STDIN, 1, b""));
    let mut c = ServerConn::new(Duplex::new(input));
    let r = c.read_request().unwrap().unwrap();
    assert_eq!(names(&r.params), ["FCGI_ROLE", "A"]);
    assert_eq!(read_all_stdin(&mut c), b"hi");

    // A second BEGIN_REQUEST ends the first request's params (rule 11); its content
    // then desynchronises the body: here it does not look like STDIN → end of body.
    let mut input = begin(1, RESPONDER, KEEP_CONN);
    input.extend(params(1, &[(b"A", b"1")]));
    input.extend(begin(2, RESPONDER, 0));
    input.extend(params(2, &[(b"B", b"2")]));
    let mut c = ServerConn::new(Duplex::new(input));
    let r = c.read_request().unwrap().unwrap();
    assert_eq!(r.id, 1);
    assert_eq!(names(&r.params), ["FCGI_ROLE", "A"]);
    assert_eq!(read_all_stdin(&mut c), b"");
    assert!(!c.keep_alive());

    // An empty PARAMS record is the normal end.
    let mut input = begin(1, RESPONDER, 0);
    input.extend(rec(PARAMS, 1, b""));
    input.extend(rec(STDIN, 1, b"data"));
    input.extend(rec(STDIN, 1, b""));
    let mut c = ServerConn::new(Duplex::new(input));
    let r = c.read_request().unwrap().unwrap();
    assert_eq!(names(&r.params), ["FCGI_ROLE"]);
    assert_eq!(read_all_stdin(&mut c), b"data");
}

#[test]
fn request_ids_of_other_records_are_not_checked() {
    let mut input = begin(5, RESPONDER, 0);
    input.extend(params(77, &[(b"A", b"1")]));
    input.extend(rec(PARAMS, 0, b""));
    input.extend(rec(STDIN, 1234, b"b"));
    input.extend(rec(STDIN, 9, b""));
    let mut c = ServerConn::new(Duplex::new(input));
    let r = c.read_request().unwrap().unwrap();
    assert_eq!(r.id, 5);
    assert_eq!(read_all_stdin(&mut c), b"b");
    c.write_stdout(b"x").unwrap();
    c.end_request(0, 0).unwrap();
    assert!(records(&c.get_ref().output)
        .iter()
        .all(|(h, _)| h.request_id == 5));
}

#[test]
fn repeated_name_keeps_first_position_with_last_value() {
    let mut input = begin(1, RESPONDER, 0);
    input.extend(params(1, &[(b"A", b"1"), (b"B", b"2"), (b"A", b"3")]));
    input.extend(params(
        1,
        &[(b"C", b"4"), (b"B", b"5"), (b"FCGI_ROLE", b"X")],
    ));
    input.extend(rec(PARAMS, 1, b""));
    let mut c = ServerConn::new(Duplex::new(input));
    let r = c.read_request().unwrap().unwrap();
    let got: Vec<(Vec<u8>, Vec<u8>)> = r
        .params
        .iter()
        .map(|(n, v)| (n.to_vec(), v.to_vec()))
        .collect();
    let want: Vec<(Vec<u8>, Vec<u8>)> = [("FCGI_ROLE", "X"), ("A", "3"), ("B", "5"), ("C", "4")]
        .iter()
        .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect();
    assert_eq!(got, want);
    let lifo: Vec<&[u8]> = r.params.iter_lifo().map(|(n, _)| n).collect();
    assert_eq!(lifo, [&b"C"[..], b"B", b"A", b"FCGI_ROLE"]);
}

#[test]
fn large_params_with_four_byte_lengths() {
    let name = vec![b'N'; 200];
    let value = vec![b'v'; 60000];
    let mut input = begin(1, RESPONDER, 0);
    input.extend(params(1, &[(&name, &value), (b"S", b"short")]));
    input.extend(params(1, &[(b"V", &vec![b'w'; 65000])]));
    input.extend(rec(PARAMS, 1, b""));
    for chunk in [1, 1000, usize::MAX] {
        let mut c = ServerConn::new(Duplex::chunked(input.clone(), chunk));
        let r = c.read_request().unwrap().unwrap();
        assert_eq!(r.params.get(&name), Some(&value[..]));
        assert_eq!(r.params.get("S"), Some(&b"short"[..]));
        assert_eq!(r.params.get("V").map(|v| v.len()), Some(65000));
    }
}

#[test]
fn pair_not_fitting_its_record_closes() {
    let cases: Vec<Vec<u8>> = vec![
        vec![5, 1, b'a', b'b'],                // name longer than the record
        vec![0x80, 0, 0x10, 0, 0, b'a'],       // 4-byte name length, too long
        vec![1, 0xff, 0xff, 0xff, 0xff, b'a'], // huge value length
        vec![1],                               // no value length
        vec![0x80, 0, 0],                      // truncated 4-byte length
        vec![1, 1, b'a', b'b', 2, 2, b'c'],    // good pair then a truncated one
        vec![0, 0x80, 0, 0, 0],                // 4-byte zero value length at the end
    ];
    for content in cases {
        // The pair spans into the next record: still an error (pairs never span records).
        let mut input = begin(1, RESPONDER, 0);
        input.extend(rec(PARAMS, 1, &content));
        input.extend(rec(PARAMS, 1, b"bcdefghijkl"));
        input.extend(rec(PARAMS, 1, b""));
        let mut c = ServerConn::new(Duplex::new(input));
        assert_eq!(c.read_request().unwrap(), None, "{content:?}");
        assert_eq!(c.close_reason(), Some(CloseReason::BadParams));
        assert!(c.get_ref().output.is_empty());
    }
}

#[test]
fn record_longer_than_65535_closes() {
    let mut input = begin(1, RESPONDER, 0);
    input.extend(raw(1, PARAMS, 1, &vec![0u8; 65530], 6));
    let mut c = ServerConn::new(Duplex::new(input));
    assert_eq!(c.read_request().unwrap(), None);
    assert_eq!(c.close_reason(), Some(CloseReason::RecordTooLong));

    let mut c = ServerConn::new(Duplex::new(raw(1, GET_VALUES, 0, &vec![0u8; 65535], 1)));
    assert_eq!(c.read_request().unwrap(), None);
    assert_eq!(c.close_reason(), Some(CloseReason::RecordTooLong));

    // Exactly 65535 is fine (here: one pair with a 65530-byte value, padding 0).
    let mut content = Vec::new();
    encode_pair(&mut content, b"", &vec![b'x'; 65529]).unwrap();
    assert_eq!(content.len(), 65534);
    let mut input = begin(1, RESPONDER, 0);
    input.extend(raw(1, PARAMS, 1, &content, 1));
    input.extend(rec(PARAMS, 1, b""));
    let mut c = ServerConn::new(Duplex::new(input));
    let r = c.read_request().unwrap().unwrap();
    assert_eq!(r.params.get("").map(|v| v.len()), Some(65529));
}

#[test]
fn truncated_input_closes() {
    let full = simple_request(1, 0, b"");
    let params_end = full.len() - 8;
    for cut in 1..params_end {
        let mut c = ServerConn::new(Duplex::new(full[..cut].to_vec()));
        assert_eq!(c.read_request().unwrap(), None, "cut at {cut}");
        assert!(matches!(
            c.close_reason(),
            Some(CloseReason::Truncated) | Some(CloseReason::Eof)
        ));
    }
    let mut c = ServerConn::new(Duplex::new(vec![1, 1, 0]));
    assert_eq!(c.read_request().unwrap(), None);
    assert_eq!(c.close_reason(), Some(CloseReason::Truncated));
}

#[test]
fn param_values_end_at_their_first_nul() {
    let mut input = begin(1, RESPONDER, 0);
    input.extend(params(1, &[(b"X", b"ab\0cd"), (b"Y\0Z", b"1")]));
    input.extend(rec(PARAMS, 1, b""));
    let mut c = ServerConn::new(Duplex::new(input));
    let req = c.read_request().unwrap().unwrap();
    assert_eq!(req.params.get("X"), Some(&b"ab"[..]));
    // Names stay whole (lookups by the cut name miss, as php-fpm's hash does).
    assert_eq!(req.params.get("Y\0Z"), Some(&b"1"[..]));
    assert_eq!(req.params.get("Y"), None);
}

#[test]
fn params_size_bound() {
    let mut input = begin(1, RESPONDER, 0);
    for i in 0..10 {
        input.extend(params(1, &[(format!("N{i}").as_bytes(), &[b'x'; 1000])]));
    }
    input.extend(rec(PARAMS, 1, b""));
    let mut c = ServerConn::new(Duplex::new(input));
    c.set_max_params_len(5000);
    assert_eq!(c.read_request().unwrap(), None);
    assert_eq!(c.close_reason(), Some(CloseReason::ParamsTooLarge));
    // The refusal can still be told to the web server, under the request's id.
    assert_eq!(c.request_id(), 1);
    c.write_stderr(b"refused").unwrap();
    c.end_request(0, 0).unwrap();
    let out = &c.get_ref().output;
    assert_eq!(out[0..2], [1, STDERR]);
    assert_eq!(u16::from_be_bytes([out[2], out[3]]), 1);
}

#[test]
fn body_streams_record_by_record() {
    let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let mut input = begin(1, RESPONDER, KEEP_CONN);
    input.extend(rec(PARAMS, 1, b""));
    for c in body.chunks(65528) {
        input.extend(rec(STDIN, 1, c));
    }
    for c in body.chunks(13) {
        input.extend(rec(STDIN, 1, c));
    }
    input.extend(rec(STDIN, 1, b""));
    let expected = [&body[..], &body[..]].concat();
    for chunk in [1, 5, 4096, usize::MAX] {
        for bufsize in [1usize, 7, 4096, 100_000] {
            if chunk == 1 && bufsize < 4096 {
                continue; // slow, covered by the others
            }
            let mut c = ServerConn::new(Duplex::chunked(input.clone(), chunk));
            c.read_request().unwrap().unwrap();
            let mut got = Vec::new();
            let mut buf = vec![0u8; bufsize];
            loop {
                let n = c.read_stdin(&mut buf).unwrap();
                assert!(n <= 65528, "never more than one record");
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            assert_eq!(got, expected);
            assert!(c.keep_alive());
            // Further reads keep returning 0 without reading.
            assert_eq!(c.read_stdin(&mut buf).unwrap(), 0);
        }
    }
}

#[test]
fn body_ended_by_other_record_disables_keep_alive() {
    for kind in [ABORT_REQUEST, PARAMS, BEGIN_REQUEST, DATA, 99] {
        let mut input = begin(1, RESPONDER, KEEP_CONN);
        input.extend(rec(PARAMS, 1, b""));
        input.extend(rec(STDIN, 1, b"part"));
        input.extend(rec(kind, 1, b""));
        input.extend(rec(STDIN, 1, b"more"));
        input.extend(rec(STDIN, 1, b""));
        let mut c = ServerConn::new(Duplex::new(input));
        c.read_request().unwrap().unwrap();
        assert!(c.keep_alive());
        assert_eq!(read_all_stdin(&mut c), b"part");
        assert!(!c.keep_alive(), "kind {kind}");
        // The response can still be written.
        c.write_stdout(b"ok").unwrap();
        c.end_request(0, 0).unwrap();
        assert_eq!(
            shape(&c.get_ref().output),
            [(STDOUT, 2, 6), (END_REQUEST, 8, 0)]
        );
    }
}

#[test]
fn body_eof_inside_a_record() {
    let mut input = begin(1, RESPONDER, KEEP_CONN);
    input.extend(rec(PARAMS, 1, b""));
    input.extend(&rec(STDIN, 1, b"abcdef")[..8 + 3]);
    let mut c = ServerConn::new(Duplex::new(input));
    c.read_request().unwrap().unwrap();
    assert_eq!(read_all_stdin(&mut c), b"abc");
    assert!(!c.keep_alive());
}

#[test]
fn drain_then_next_request_on_kept_connection() {
    let body = vec![b'q'; 100_000];
    let mut input = simple_request(1, KEEP_CONN, &body);
    input.extend(simple_request(2, KEEP_CONN, b"second"));
    input.extend(simple_request(3, 0, &body));
    input.extend(simple_request(4, 0, b""));
    let mut c = ServerConn::new(Duplex::chunked(input, 3000));
    let r = c.read_request().unwrap().unwrap();
    assert_eq!(r.id, 1);
    let mut buf = [0u8; 10];
    assert_eq!(c.read_stdin(&mut buf).unwrap(), 10);
    c.drain_stdin().unwrap();
    assert!(c.stdin_ended());
    assert!(c.keep_alive());
    c.end_request(0, 0).unwrap();
    let r = c.read_request().unwrap().unwrap();
    assert_eq!(r.id, 2);
    assert_eq!(read_all_stdin(&mut c), b"second");
    c.drain_stdin().unwrap(); // nothing left: no effect
    c.end_request(0, 0).unwrap();
    let r = c.read_request().unwrap().unwrap();
    assert_eq!(r.id, 3);
    c.drain_stdin().unwrap();
    c.end_request(0, 0).unwrap();
    let r = c.read_request().unwrap().unwrap();
    assert_eq!(r.id, 4);
    assert!(!r.keep_conn);
    let ids: Vec<u16> = records(&c.get_ref().output)
        .iter()
        .map(|(h, _)| h.request_id)
        .collect();
    assert_eq!(ids, [1, 2, 3]);
}

// The next tests replay raw exchanges observed with php-fpm 8.2.36 (keep-alive
// connection, a script reading CONTENT_LENGTH bytes of body, then a second request).

fn keep_req(body_records: &[&[u8]], tail: &[u8]) -> Vec<u8> {
    let mut v = begin(1, RESPONDER, KEEP_CONN);
    v.extend(rec(PARAMS, 1, b""));
    for b in body_records {
        v.extend(rec(STDIN, 1, b));
    }
    v.extend(tail);
    v
}

fn second() -> Vec<u8> {
    simple_request(2, 0, b"yo")
}

/// Serves the first request reading `cl` body bytes like PHP does (one fill_stdin per
/// 16 KiB block), then tries the next request. Returns (body, kept, next request id).
fn php_like(input: Vec<u8>, cl: usize, drain: bool) -> (Vec<u8>, bool, Option<u16>) {
    let mut c = ServerConn::new(Duplex::new(input));
    c.read_request().unwrap().unwrap();
    let mut body = Vec::new();
    while body.len() < cl {
        let mut block = vec![0u8; (cl - body.len()).min(16384)];
        let n = c.fill_stdin(&mut block).unwrap();
        if n == 0 {
            break;
        }
        body.extend_from_slice(&block[..n]);
        if n < block.len() {
            break;
        }
    }
    if drain {
        c.drain_stdin().unwrap();
    }
    c.end_request(0, 0).unwrap();
    let kept = c.keep_alive();
    let next = c.read_request().unwrap().map(|r| r.id);
    (body, kept, next)
}

#[test]
fn php_fpm_8_2_36_body_leftovers() {
    let term = rec(STDIN, 1, b"");
    // Body read to its end at a record boundary: the terminator is skipped as a
    // leading empty STDIN record; the next request is served.
    let input = keep_req(&[b"hi"], &[&term[..], &second()].concat());
    assert_eq!(php_like(input, 2, false), (b"hi".to_vec(), true, Some(2)));
    // Same without any terminator.
    let input = keep_req(&[b"hi"], &second());
    assert_eq!(php_like(input, 2, false), (b"hi".to_vec(), true, Some(2)));
    // Two records, exactly CONTENT_LENGTH.
    let (a, b) = (vec![b'a'; 10000], vec![b'b'; 10000]);
    let input = keep_req(&[&a, &b], &[&term[..], &second()].concat());
    let (body, kept, next) = php_like(input, 20000, false);
    assert_eq!(body, [a.clone(), b.clone()].concat());
    assert_eq!((kept, next), (true, Some(2)));
    // A record left partly read: the connection is closed (php-fpm: reset).
    let input = keep_req(&[b"hello"], &[&term[..], &second()].concat());
    assert_eq!(php_like(input, 2, false), (b"he".to_vec(), false, None));
    // ... which is what stops a request smuggled inside the body.
    let input = keep_req(&[&[&b"hi"[..], &second()].concat()], &term);
    assert_eq!(php_like(input, 2, false), (b"hi".to_vec(), false, None));
    // Leftover STDIN records are read as the next request, which fails.
    let input = keep_req(&[b"hi", b"xx"], &[&term[..], &second()].concat());
    let mut c = ServerConn::new(Duplex::new(input.clone()));
    c.read_request().unwrap().unwrap();
    let mut two = [0u8; 2];
    assert_eq!(c.fill_stdin(&mut two).unwrap(), 2);
    assert!(c.keep_alive());
    assert_eq!(c.read_request().unwrap(), None);
    assert!(matches!(
        c.close_reason(),
        Some(CloseReason::UnexpectedRecord { kind: STDIN, .. })
    ));
    // drain_stdin (beyond php-fpm) serves the next request in all these cases.
    assert_eq!(php_like(input, 2, true), (b"hi".to_vec(), true, Some(2)));
    let input = keep_req(&[b"hello"], &[&term[..], &second()].concat());
    assert_eq!(php_like(input, 2, true), (b"he".to_vec(), true, Some(2)));
    let input = keep_req(
        &[&[&b"hi"[..], &second()].concat()],
        &[&term[..], &second()].concat(),
    );
    assert_eq!(php_like(input, 2, true), (b"hi".to_vec(), true, Some(2)));
}

#[test]
fn php_fpm_drops_the_bytes_of_a_read_cut_by_another_record() {
    // CONTENT_LENGTH 4, body "hi" then GET_VALUES: php-fpm's script sees an empty body.
    let gv = rec(GET_VALUES, 0, &[15, 0]);
    let input = keep_req(&[b"hi"], &[&gv[..], &second()].concat());
    assert_eq!(php_like(input.clone(), 4, false), (Vec::new(), false, None));
    // read_stdin does not lose them.
    let mut c = ServerConn::new(Duplex::new(input));
    c.read_request().unwrap().unwrap();
    assert_eq!(read_all_stdin(&mut c), b"hi");
    assert!(!c.keep_alive());
    // "hi", "hi", ABORT_REQUEST with CONTENT_LENGTH 4: the body is complete; the
    // ABORT record then fails as the start of the next request.
    let abort = rec(ABORT_REQUEST, 1, b"");
    let input = keep_req(&[b"hi", b"hi"], &[&abort[..], &second()].concat());
    assert_eq!(php_like(input, 4, false), (b"hihi".to_vec(), true, None));
}

#[test]
fn fill_stdin_semantics() {
    let mut input = begin(1, RESPONDER, KEEP_CONN);
    input.extend(rec(PARAMS, 1, b""));
    for part in [&b"abc"[..], b"defgh", b"ij"] {
        input.extend(rec(STDIN, 1, part));
    }
    input.extend(rec(STDIN, 1, b""));
    let mut c = ServerConn::new(Duplex::chunked(input, 2));
    c.read_request().unwrap().unwrap();
    let mut b = [0u8; 7];
    assert_eq!(c.fill_stdin(&mut b).unwrap(), 7);
    assert_eq!(&b, b"abcdefg");
    assert_eq!(
        c.fill_stdin(&mut b).unwrap(),
        3,
        "short at the empty STDIN record"
    );
    assert_eq!(&b[..3], b"hij");
    assert_eq!(c.fill_stdin(&mut b).unwrap(), 0);
    assert!(c.keep_alive());
}

#[test]
fn abort_request_is_not_acted_upon_during_params() {
    // ABORT_REQUEST arriving in the params ends them like any other record.
    let mut input = begin(1, RESPONDER, 0);
    input.extend(params(1, &[(b"A", b"1")]));
    input.extend(rec(ABORT_REQUEST, 1, b""));
    input.extend(rec(STDIN, 1, b""));
    let mut c = ServerConn::new(Duplex::new(input));
    let r = c.read_request().unwrap().unwrap();
    assert_eq!(r.params.get("A"), Some(&b"1"[..]));
    assert_eq!(read_all_stdin(&mut c), b"");
    c.write_stdout(b"still answered").unwrap();
    c.end_request(0, 0).unwrap();
    assert_eq!(records(&c.get_ref().output).len(), 2);
}

// ------------------------------------------------------------------ output layout
//
// Expected record layouts below were observed from php-fpm 8.2.36 (output_buffering
// off) for a PHP script whose first output is preceded by the 68-byte header block
// `X-Powered-By: PHP/8.2.36\r\nContent-type: text/html; charset=UTF-8\r\n\r\n`, written
// as one stdout write.

enum Op {
    Out(usize),
    Err(usize),
    Flush,
}

fn run_ops(ops: &[Op]) -> (Vec<(u8, u16, u8)>, Duplex) {
    let mut c = ServerConn::new(Duplex::new(simple_request(1, 0, b"")));
    c.read_request().unwrap().unwrap();
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let mut n = 0u8;
    for op in ops {
        match op {
            Op::Out(k) => {
                let d: Vec<u8> = (0..*k)
                    .map(|_| {
                        n = n.wrapping_add(1);
                        n
                    })
                    .collect();
                c.write_stdout(&d).unwrap();
                stdout.extend(d);
            }
            Op::Err(k) => {
                let d = vec![b'e'; *k];
                c.write_stderr(&d).unwrap();
                stderr.extend(d);
            }
            Op::Flush => c.flush().unwrap(),
        }
    }
    c.end_request(0, 0).unwrap();
    let d = c.into_inner();
    let recs = records(&d.output);
    let got_out: Vec<u8> = recs
        .iter()
        .filter(|(h, _)| h.kind == STDOUT)
        .flat_map(|(_, c)| c.clone())
        .collect();
    let got_err: Vec<u8> = recs
        .iter()
        .filter(|(h, _)| h.kind == STDERR)
        .flat_map(|(_, c)| c.clone())
        .collect();
    assert_eq!(got_out, stdout);
    assert_eq!(got_err, stderr);
    (shape(&d.output), d)
}

type Shape = (u8, u16, u8);

const END: Shape = (END_REQUEST, 8, 0);

#[test]
fn output_layout_matches_php_fpm() {
    use Op::*;
    let cases: Vec<(Vec<Op>, Vec<Shape>)> = vec![
        (vec![Out(68), Out(5)], vec![(STDOUT, 73, 7), END]),
        (
            vec![Out(68), Out(10000)],
            vec![(STDOUT, 8184, 0), (STDOUT, 1884, 4), END],
        ),
        (
            vec![
                Out(68),
                Out(10000),
                Err(18),
                Out(3),
                Flush,
                Out(70000),
                Out(8190),
            ],
            vec![
                (STDOUT, 8184, 0),
                (STDOUT, 1884, 4),
                (STDERR, 18, 6),
                (STDOUT, 3, 5),
                (STDOUT, 65528, 0),
                (STDOUT, 4472, 0),
                (STDOUT, 8184, 0),
                (STDOUT, 6, 2),
                END,
            ],
        ),
        (
            vec![Out(68), Out(65535)],
            vec![(STDOUT, 68, 4), (STDOUT, 65528, 0), (STDOUT, 7, 1), END],
        ),
        (
            vec![Out(68), Out(8124)],
            vec![(STDOUT, 8184, 0), (STDOUT, 8, 0), END],
        ),
        (
            vec![Out(68), Out(8123), Out(1)],
            vec![(STDOUT, 8184, 0), (STDOUT, 8, 0), END],
        ),
        (vec![Out(68), Out(8116)], vec![(STDOUT, 8184, 0), END]),
        (
            vec![Out(68), Out(8115), Err(23), Out(7)],
            vec![(STDOUT, 8183, 1), (STDERR, 23, 1), (STDOUT, 7, 1), END],
        ),
        (
            vec![Flush, Out(68), Out(65535), Out(3), Err(213), Err(1017)],
            vec![
                (STDOUT, 68, 4),
                (STDOUT, 65528, 0),
                (STDOUT, 10, 6),
                (STDERR, 1230, 2),
                END,
            ],
        ),
    ];
    for (i, (ops, want)) in cases.iter().enumerate() {
        let (got, _) = run_ops(ops);
        assert_eq!(&got, want, "case {i}");
    }
}

#[test]
fn output_is_sent_when_the_buffer_fills() {
    let mut c = ServerConn::new(Duplex::new(simple_request(1, 0, b"")));
    c.read_request().unwrap().unwrap();
    c.write_stdout(&[b'a'; 8000]).unwrap();
    assert!(c.get_ref().output.is_empty(), "buffered");
    c.write_stdout(&[b'a'; 8000]).unwrap();
    assert_eq!(c.get_ref().output.len(), 8192, "one full record sent");
    c.flush().unwrap();
    assert_eq!(
        shape(&c.get_ref().output),
        [(STDOUT, 8184, 0), (STDOUT, 7816, 0)]
    );
    c.write_stdout(&[b'b'; 200_000]).unwrap();
    // 3 records of 65528 sent, then 3416 sent, 0 bytes left since 3416 % 8 == 0.
    assert_eq!(
        shape(&c.get_ref().output)[2..],
        [
            (STDOUT, 65528, 0),
            (STDOUT, 65528, 0),
            (STDOUT, 65528, 0),
            (STDOUT, 3416, 0)
        ]
    );
    let writes_before = c.get_ref().writes;
    c.end_request(0, 0).unwrap();
    assert_eq!(
        c.get_ref().writes,
        writes_before + 1,
        "END_REQUEST in one write"
    );
}

#[test]
fn write_failure_breaks_the_connection() {
    struct Failing(Cursor<Vec<u8>>);
    impl Read for Failing {
        fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
            self.0.read(b)
        }
    }
    impl Write for Failing {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut c = ServerConn::new(Failing(Cursor::new(simple_request(1, KEEP_CONN, b""))));
    c.read_request().unwrap().unwrap();
    c.write_stdout(b"small").unwrap();
    assert!(c.flush().is_err());
    assert!(!c.keep_alive());
    assert!(c.write_stdout(b"more").is_err());
    assert!(c.end_request(0, 0).is_err());
    assert!(c.read_request().is_err());
}

#[test]
fn interrupted_reads_are_retried() {
    struct Interrupting(Cursor<Vec<u8>>, bool);
    impl Read for Interrupting {
        fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
            self.1 = !self.1;
            if self.1 {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let n = b.len().min(3);
            self.0.read(&mut b[..n])
        }
    }
    impl Write for Interrupting {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut c = ServerConn::new(Interrupting(
        Cursor::new(simple_request(1, 0, &[7u8; 10_000])),
        false,
    ));
    c.read_request().unwrap().unwrap();
    assert_eq!(read_all_stdin(&mut c), vec![7u8; 10_000]);
}

// ------------------------------------------------------------------ round trip

#[test]
fn round_trip_with_the_client_over_a_socketpair() {
    use crate::client::{Client, ClientRequest};
    use std::os::unix::net::UnixStream;

    let (a, b) = UnixStream::pair().unwrap();
    let server = std::thread::spawn(move || {
        let mut c = ServerConn::new(a);
        let mut served = 0;
        while let Some(r) = c.read_request().unwrap() {
            served += 1;
            let body = read_all_stdin(&mut c);
            let mut head = String::from("Content-type: text/plain\r\n");
            if let Some(s) = r.params.get_str("WANT_STATUS") {
                head.push_str(&format!("Status: {s}\r\n"));
            }
            head.push_str("\r\n");
            c.write_stdout(head.as_bytes()).unwrap();
            for (n, v) in r.params.iter() {
                c.write_stdout(n).unwrap();
                c.write_stdout(b"=").unwrap();
                c.write_stdout(&v[..v.len().min(20)]).unwrap();
                c.write_stdout(b"\n").unwrap();
            }
            c.write_stdout(&body).unwrap();
            c.write_stderr(b"log line").unwrap();
            c.end_request(0, 0).unwrap();
            if !c.keep_alive() {
                break;
            }
        }
        served
    });
    let mut cl = Client::from_unix(b);
    let v = cl
        .get_values(&["FCGI_MPXS_CONNS", "FCGI_MAX_REQS"])
        .unwrap();
    assert_eq!(v, vec![(b"FCGI_MPXS_CONNS".to_vec(), b"0".to_vec())]);
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 256) as u8).collect();
    let r = cl
        .request(
            &ClientRequest::new()
                .id(9)
                .keep_conn(true)
                .param("WANT_STATUS", "404 Not Found")
                .param("BIG", vec![b'z'; 60_000])
                .body(big.clone()),
        )
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.header("content-type").as_deref(), Some("text/plain"));
    assert_eq!(r.stderr, b"log line");
    let text = String::from_utf8_lossy(r.body());
    assert!(text.starts_with("FCGI_ROLE=RESPONDER\nWANT_STATUS=404 Not Found\nBIG=zzzz"));
    assert!(r.body().ends_with(&big));
    assert!(r
        .records
        .iter()
        .all(|&(_, l, p)| l as usize + p as usize <= 65535));
    assert_eq!(r.records.last(), Some(&(END_REQUEST, 8, 0)));
    for i in 0..3 {
        let r = cl
            .request(
                &ClientRequest::new()
                    .keep_conn(i < 2)
                    .param("I", i.to_string()),
            )
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(String::from_utf8_lossy(r.body()).contains(&format!("I={i}\n")));
    }
    assert_eq!(server.join().unwrap(), 4);
}

#[test]
fn client_reports_partial_output_when_the_server_closes() {
    use crate::client::{Client, ClientRequest};
    use std::os::unix::net::UnixStream;

    let (a, b) = UnixStream::pair().unwrap();
    let server = std::thread::spawn(move || {
        let mut c = ServerConn::new(a);
        let _ = c.read_request().unwrap().unwrap();
        c.write_stdout(b"Status: 500\r\n\r\npartial").unwrap();
        c.flush().unwrap();
        // Dropped without END_REQUEST.
    });
    let mut cl = Client::from_unix(b);
    let e = cl.request(&ClientRequest::new()).unwrap_err();
    server.join().unwrap();
    let p = e.partial().expect("partial response");
    assert_eq!(p.body(), b"partial");
    assert_eq!(p.status(), 500);
}

#[test]
fn recycled_params_start_empty_on_the_next_request_and_connection() {
    let mut first = begin(1, RESPONDER, KEEP_CONN);
    first.extend(params(
        1,
        &[
            (b"ONLY_FIRST", b"a long value of the first request"),
            (b"A", b"1"),
        ],
    ));
    first.extend(rec(PARAMS, 1, b""));
    first.extend(rec(STDIN, 1, b""));
    let mut input = first;
    input.extend(simple_request(2, KEEP_CONN, b""));
    let mut c = ServerConn::new(Duplex::new(input));
    let r1 = c.read_request().unwrap().unwrap();
    assert_eq!(names(&r1.params), ["FCGI_ROLE", "ONLY_FIRST", "A"]);
    c.end_request(0, 0).unwrap();
    c.recycle_params(r1.params);
    let r2 = c.read_request().unwrap().unwrap();
    assert_eq!(names(&r2.params), ["FCGI_ROLE", "SCRIPT_FILENAME", "A"]);
    assert_eq!(r2.params.get("ONLY_FIRST"), None);
    assert_eq!(r2.params.get_cstr("A"), Some(c"1"));
    c.end_request(0, 0).unwrap();
    c.recycle_params(r2.params);
    // The spare params travel with the buffers to the next connection.
    let (_, bufs) = c.into_parts();
    let mut c = ServerConn::with_buffers(Duplex::new(simple_request(3, 0, b"")), bufs);
    let r3 = c.read_request().unwrap().unwrap();
    assert_eq!(names(&r3.params), ["FCGI_ROLE", "SCRIPT_FILENAME", "A"]);
    assert_eq!(r3.id, 3);
}

fn queued(d: &Duplex) -> Option<usize> {
    let total = d.input.get_ref().len() as u64;
    usize::try_from(total - d.input.position()).ok()
}

#[test]
fn queued_probe_leaves_the_last_byte_until_it_is_needed() {
    // A GET: its head is read without taking the last byte of the empty STDIN record.
    let input = simple_request(1, 0, b"");
    let len = input.len();
    let mut c = ServerConn::new(Duplex::new(input));
    c.set_queued_probe(queued);
    let r = c.read_request().unwrap().unwrap();
    assert_eq!(r.params.get("A"), Some(&b"1"[..]));
    assert_eq!(queued(c.get_ref()), Some(1), "of {len} bytes");
    // The body read takes it when it needs it: the empty STDIN record ends the body.
    assert_eq!(read_all_stdin(&mut c), b"");
    assert!(c.stdin_ended());
    assert_eq!(queued(c.get_ref()), Some(0));

    // Bodies of every size and read pattern come out whole, and keep-alive still works.
    for body_len in [0, 1, 7, 4095, 4096, 70_000] {
        let body: Vec<u8> = (0..body_len).map(|i| (i * 7 % 251) as u8).collect();
        let mut input = simple_request(1, KEEP_CONN, &body);
        input.extend(simple_request(2, 0, b"second"));
        for chunk in [1, 5, 8, 1000, usize::MAX] {
            let mut c = ServerConn::new(Duplex::chunked(input.clone(), chunk));
            c.set_queued_probe(queued);
            let r = c.read_request().unwrap().unwrap();
            assert_eq!(r.id, 1);
            assert_eq!(
                read_all_stdin(&mut c),
                body,
                "body {body_len}, chunk {chunk}"
            );
            c.end_request(0, 0).unwrap();
            let r2 = c.read_request().unwrap().unwrap();
            assert_eq!(r2.id, 2);
            assert_eq!(read_all_stdin(&mut c), b"second");
        }
    }
}

thread_local! {
    static PROBES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn counted_queued(d: &Duplex) -> Option<usize> {
    PROBES.with(|p| p.set(p.get() + 1));
    queued(d)
}

#[test]
fn queued_hint_replaces_the_first_probe_and_is_safe_when_low() {
    let input = simple_request(1, 0, b"");
    // Exact: the head is read with one probe fewer, still leaving the last byte.
    let mut c = ServerConn::new(Duplex::new(input.clone()));
    c.set_queued_probe(counted_queued);
    PROBES.with(|p| p.set(0));
    let _ = c.read_request().unwrap().unwrap();
    let with_probe_only = PROBES.with(|p| p.get());
    let mut c = ServerConn::new(Duplex::new(input.clone()));
    c.set_queued_probe(counted_queued);
    c.set_queued_hint(input.len());
    PROBES.with(|p| p.set(0));
    let r = c.read_request().unwrap().unwrap();
    assert_eq!(PROBES.with(|p| p.get()), with_probe_only - 1);
    assert_eq!(r.params.get("A"), Some(&b"1"[..]));
    assert_eq!(queued(c.get_ref()), Some(1));
    assert_eq!(read_all_stdin(&mut c), b"");

    // Low (more arrived after the caller looked): reads stop earlier, nothing is lost,
    // and the last byte still stays queued.
    for hint in [0, 1, 2, 9, input.len() / 2] {
        let mut c = ServerConn::new(Duplex::new(input.clone()));
        c.set_queued_probe(queued);
        c.set_queued_hint(hint);
        let r = c.read_request().unwrap().unwrap();
        assert_eq!(r.params.get("A"), Some(&b"1"[..]), "hint {hint}");
        assert_eq!(queued(c.get_ref()), Some(1), "hint {hint}");
        assert_eq!(read_all_stdin(&mut c), b"", "hint {hint}");
    }

    // Without a probe the hint changes nothing.
    let mut c = ServerConn::new(Duplex::new(input));
    c.set_queued_hint(3);
    let _ = c.read_request().unwrap().unwrap();
    assert_eq!(queued(c.get_ref()), Some(0));
}
