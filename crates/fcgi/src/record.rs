//! FastCGI record layer: constants, the 8-byte header, padding and name-value pairs.
//!
//! Everything here works on byte slices and never allocates more than the input it is
//! given justifies: a length read from the wire is checked against the bytes actually
//! present before any use.

/// Version byte written in every record header.
pub const VERSION_1: u8 = 1;
/// Size of a record header.
pub const HEADER_LEN: usize = 8;
/// Largest content (+ padding) a record may carry.
pub const MAX_CONTENT_LEN: usize = 0xffff;
/// Largest content length used when a big output write is split into records (65528).
pub const MAX_CHUNK_LEN: usize = MAX_CHUNK_LEN_U16 as usize;
/// [`MAX_CHUNK_LEN`] as a record header holds it.
pub const MAX_CHUNK_LEN_U16: u16 = 0xfff8;

/// Record types.
pub const BEGIN_REQUEST: u8 = 1;
pub const ABORT_REQUEST: u8 = 2;
pub const END_REQUEST: u8 = 3;
pub const PARAMS: u8 = 4;
pub const STDIN: u8 = 5;
pub const STDOUT: u8 = 6;
pub const STDERR: u8 = 7;
pub const DATA: u8 = 8;
pub const GET_VALUES: u8 = 9;
pub const GET_VALUES_RESULT: u8 = 10;
pub const UNKNOWN_TYPE: u8 = 11;

/// Roles carried by BEGIN_REQUEST.
pub const RESPONDER: u16 = 1;
pub const AUTHORIZER: u16 = 2;
pub const FILTER: u16 = 3;

/// BEGIN_REQUEST flag bit 0: keep the connection open after the request.
pub const KEEP_CONN: u8 = 1;

/// END_REQUEST protocol statuses.
pub const REQUEST_COMPLETE: u8 = 0;
pub const CANT_MPX_CONN: u8 = 1;
pub const OVERLOADED: u8 = 2;
pub const UNKNOWN_ROLE: u8 = 3;

/// Management variable names (GET_VALUES).
pub const MAX_CONNS: &[u8] = b"FCGI_MAX_CONNS";
pub const MAX_REQS: &[u8] = b"FCGI_MAX_REQS";
pub const MPXS_CONNS: &[u8] = b"FCGI_MPXS_CONNS";

/// Human name of a record type, for logs and test output.
pub fn type_name(t: u8) -> &'static str {
    match t {
        BEGIN_REQUEST => "BEGIN_REQUEST",
        ABORT_REQUEST => "ABORT_REQUEST",
        END_REQUEST => "END_REQUEST",
        PARAMS => "PARAMS",
        STDIN => "STDIN",
        STDOUT => "STDOUT",
        STDERR => "STDERR",
        DATA => "DATA",
        GET_VALUES => "GET_VALUES",
        GET_VALUES_RESULT => "GET_VALUES_RESULT",
        UNKNOWN_TYPE => "UNKNOWN_TYPE",
        _ => "UNKNOWN",
    }
}

/// A record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub version: u8,
    pub kind: u8,
    pub request_id: u16,
    pub content_len: u16,
    pub padding_len: u8,
    pub reserved: u8,
}

impl Header {
    /// A version-1 header whose padding rounds `content_len` up to a multiple of 8.
    pub fn new(kind: u8, request_id: u16, content_len: u16) -> Header {
        Header {
            version: VERSION_1,
            kind,
            request_id,
            content_len,
            padding_len: padding_for(content_len as usize),
            reserved: 0,
        }
    }

    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let id = self.request_id.to_be_bytes();
        let len = self.content_len.to_be_bytes();
        [
            self.version,
            self.kind,
            id[0],
            id[1],
            len[0],
            len[1],
            self.padding_len,
            self.reserved,
        ]
    }

    pub fn decode(b: &[u8; HEADER_LEN]) -> Header {
        Header {
            version: b[0],
            kind: b[1],
            request_id: u16::from_be_bytes([b[2], b[3]]),
            content_len: u16::from_be_bytes([b[4], b[5]]),
            padding_len: b[6],
            reserved: b[7],
        }
    }

    /// Content plus padding: the bytes that follow the header.
    pub fn body_len(&self) -> usize {
        self.content_len as usize + self.padding_len as usize
    }
}

/// Padding that brings `len` to a multiple of 8.
pub fn padding_for(len: usize) -> u8 {
    // 0..=7.
    u8::try_from((8 - (len & 7)) & 7).unwrap_or(0)
}

/// Zero bytes used for padding.
pub const ZEROS: [u8; 8] = [0; 8];

/// Appends one complete record (header, content, zero padding) to `out`.
/// `content` must be at most 65535 bytes; longer content is an error.
pub fn write_record(
    out: &mut Vec<u8>,
    kind: u8,
    request_id: u16,
    content: &[u8],
) -> Result<(), NvError> {
    let len = u16::try_from(content.len()).map_err(|_| NvError::TooLong)?;
    let h = Header::new(kind, request_id, len);
    out.extend_from_slice(&h.encode());
    out.extend_from_slice(content);
    out.extend_from_slice(&ZEROS[..h.padding_len as usize]);
    Ok(())
}

/// An error in name-value pair data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NvError {
    /// A length field or the name/value bytes run past the end of the record content.
    #[error("malformed name-value pair")]
    Truncated,
    /// A name or value longer than 2^31 - 1 bytes, or a record longer than 65535 bytes.
    #[error("name-value pair too long")]
    TooLong,
}

/// Appends the length encoding of `len`: one byte below 128, else four bytes with the high bit set.
pub fn encode_len(out: &mut Vec<u8>, len: usize) -> Result<(), NvError> {
    if len < 0x80 {
        out.push(u8::try_from(len).unwrap_or(0x7f));
        Ok(())
    } else if let Some(l) = u32::try_from(len).ok().filter(|&l| l <= 0x7fff_ffff) {
        out.extend_from_slice(&(l | 0x8000_0000).to_be_bytes());
        Ok(())
    } else {
        Err(NvError::TooLong)
    }
}

/// Appends one encoded name-value pair.
pub fn encode_pair(out: &mut Vec<u8>, name: &[u8], value: &[u8]) -> Result<(), NvError> {
    encode_len(out, name.len())?;
    encode_len(out, value.len())?;
    out.extend_from_slice(name);
    out.extend_from_slice(value);
    Ok(())
}

/// Size of the encoding of one pair.
pub fn pair_encoded_len(name: &[u8], value: &[u8]) -> usize {
    let l = |n: usize| if n < 0x80 { 1 } else { 4 };
    l(name.len()) + l(value.len()) + name.len() + value.len()
}

/// Iterator over the name-value pairs of one record's content.
///
/// Yields `Err` once (and then stops) when a pair does not fit the content, following
/// php-fpm's rules exactly: a 4-byte length needs its three further bytes *and* at least
/// one more byte of content after the first length byte (so a 4-byte value length ending
/// exactly at the end of the content is rejected even when both lengths are zero).
pub struct PairIter<'a> {
    rest: &'a [u8],
    failed: bool,
}

/// Decodes the pairs in `content`.
pub fn pairs(content: &[u8]) -> PairIter<'_> {
    PairIter {
        rest: content,
        failed: false,
    }
}

impl<'a> PairIter<'a> {
    fn read_len(&mut self) -> Option<usize> {
        let (&first, after) = self.rest.split_first()?;
        if first < 0x80 {
            self.rest = after;
            return Some(first as usize);
        }
        // Three more length bytes, and something must follow them.
        if after.len() <= 3 {
            return None;
        }
        let n = u32::from_be_bytes([first & 0x7f, after[0], after[1], after[2]]) as usize;
        self.rest = &after[3..];
        Some(n)
    }

    fn next_pair(&mut self) -> Option<(&'a [u8], &'a [u8])> {
        let name_len = self.read_len()?;
        if self.rest.is_empty() {
            return None;
        }
        let value_len = self.read_len()?;
        if name_len > self.rest.len() || value_len > self.rest.len() - name_len {
            return None;
        }
        let (name, after) = self.rest.split_at(name_len);
        let (value, after) = after.split_at(value_len);
        self.rest = after;
        Some((name, value))
    }
}

impl<'a> Iterator for PairIter<'a> {
    type Item = Result<(&'a [u8], &'a [u8]), NvError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        match self.next_pair() {
            Some(p) => Some(Ok(p)),
            None => {
                self.failed = true;
                Some(Err(NvError::Truncated))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_roundtrip() {
        let h = Header {
            version: 1,
            kind: STDOUT,
            request_id: 0x1234,
            content_len: 0xabcd,
            padding_len: 3,
            reserved: 9,
        };
        let e = h.encode();
        assert_eq!(e, [1, 6, 0x12, 0x34, 0xab, 0xcd, 3, 9]);
        assert_eq!(Header::decode(&e), h);
    }

    #[test]
    fn padding() {
        assert_eq!(padding_for(0), 0);
        assert_eq!(padding_for(1), 7);
        assert_eq!(padding_for(7), 1);
        assert_eq!(padding_for(8), 0);
        assert_eq!(padding_for(73), 7);
        assert_eq!(padding_for(65528), 0);
        assert_eq!(padding_for(65535), 1);
        let mut v = Vec::new();
        write_record(&mut v, STDOUT, 1, b"abc").unwrap();
        assert_eq!(v, [1, 6, 0, 1, 0, 3, 5, 0, b'a', b'b', b'c', 0, 0, 0, 0, 0]);
        assert_eq!(
            write_record(&mut v, STDOUT, 1, &[0; 65536]),
            Err(NvError::TooLong)
        );
    }

    #[test]
    fn short_and_long_lengths() {
        let mut v = Vec::new();
        encode_pair(&mut v, b"A", &[b'x'; 127]).unwrap();
        assert_eq!(&v[..2], &[1, 127]);
        v.clear();
        let big = vec![b'y'; 128];
        encode_pair(&mut v, b"B", &big).unwrap();
        assert_eq!(&v[..5], &[1, 0x80, 0, 0, 128]);
        assert_eq!(v.len(), pair_encoded_len(b"B", &big));
        let got: Vec<_> = pairs(&v).collect();
        assert_eq!(got, vec![Ok((&b"B"[..], &big[..]))]);
        let mut long_name = Vec::new();
        encode_pair(&mut long_name, &[b'n'; 300], b"v").unwrap();
        assert_eq!(&long_name[..5], &[0x80, 0, 1, 44, 1]);
        assert_eq!(pairs(&long_name).count(), 1);
    }

    #[test]
    fn malformed_pairs() {
        // Name length larger than the content.
        assert_eq!(
            pairs(&[5, 0, b'a']).collect::<Vec<_>>(),
            vec![Err(NvError::Truncated)]
        );
        // Only a name length.
        assert_eq!(
            pairs(&[0]).collect::<Vec<_>>(),
            vec![Err(NvError::Truncated)]
        );
        // Truncated 4-byte length.
        assert_eq!(
            pairs(&[0x80, 0, 0]).collect::<Vec<_>>(),
            vec![Err(NvError::Truncated)]
        );
        // 4-byte name length followed by nothing: rejected.
        assert_eq!(
            pairs(&[0x80, 0, 0, 0]).collect::<Vec<_>>(),
            vec![Err(NvError::Truncated)]
        );
        // 4-byte value length that ends the content exactly: rejected like php-fpm does.
        assert_eq!(
            pairs(&[0, 0x80, 0, 0, 0]).collect::<Vec<_>>(),
            vec![Err(NvError::Truncated)]
        );
        // Huge lengths never allocate nor overflow.
        let g: Vec<_> = pairs(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0]).collect();
        assert_eq!(g, vec![Err(NvError::Truncated)]);
        // A good pair then garbage: the good pair is reported, then the error, then nothing.
        let g: Vec<_> = pairs(&[1, 1, b'a', b'b', 3]).collect();
        assert_eq!(g, vec![Ok((&b"a"[..], &b"b"[..])), Err(NvError::Truncated)]);
        // Empty name and value are fine.
        assert_eq!(
            pairs(&[0, 0]).collect::<Vec<_>>(),
            vec![Ok((&b""[..], &b""[..]))]
        );
    }
}
