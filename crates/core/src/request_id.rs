//! Request ids: taken from the web server (`X-Request-Id`, the FastCGI param
//! `HTTP_X_REQUEST_ID`) when it sends a usable one, generated otherwise.
//!
//! The param is untrusted (a client may send any header through a web server that
//! passes it on): it is used only when it is 1 to [`MAX_LEN`] bytes of
//! `[A-Za-z0-9._:+/=-]` (hex, UUIDs, base64 and the usual tracing ids), so that it can
//! go into any log line, and into the scoreboard, without escaping; anything else is
//! ignored and an id is generated.
//!
//! Generated ids are 32 lowercase hex digits (128 bits, nginx's `$request_id` form)
//! from a per-worker generator seeded once at the worker's start: no system call per
//! request. They tell requests apart in logs; they are not secrets.

/// The FastCGI param a web server sends the id in.
pub const PARAM: &str = "HTTP_X_REQUEST_ID";
/// Longest id accepted from a request (and stored in the scoreboard).
pub const MAX_LEN: usize = 64;

/// A request id: at most [`MAX_LEN`] bytes of the accepted characters.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RequestId {
    len: u8,
    bytes: [u8; MAX_LEN],
}

impl Default for RequestId {
    fn default() -> Self {
        RequestId {
            len: 0,
            bytes: [0; MAX_LEN],
        }
    }
}

impl std::fmt::Debug for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RequestId({})", String::from_utf8_lossy(self.as_bytes()))
    }
}

/// Whether `b` may appear in a request id.
pub fn allowed(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'+' | b'/' | b'=' | b'-')
}

impl RequestId {
    /// `v` as an id, if it is one (see the module documentation).
    pub fn parse(v: &[u8]) -> Option<RequestId> {
        if v.is_empty() || v.len() > MAX_LEN || !v.iter().all(|&b| allowed(b)) {
            return None;
        }
        let mut id = RequestId::default();
        id.bytes[..v.len()].copy_from_slice(v);
        id.len = u8::try_from(v.len()).ok()?;
        Some(id)
    }

    /// The id read back from untrusted memory (the scoreboard): cut to [`MAX_LEN`],
    /// and any byte outside the charset replaced by `.` so it stays safe in any line.
    pub fn sanitized(v: &[u8]) -> RequestId {
        let v = &v[..v.len().min(MAX_LEN)];
        let mut id = RequestId::default();
        for (dst, &b) in id.bytes.iter_mut().zip(v) {
            *dst = if allowed(b) { b } else { b'.' };
        }
        id.len = u8::try_from(v.len()).unwrap_or(0);
        id
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len).min(MAX_LEN)]
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A per-worker id generator: xoshiro256++ over a seed given once.
#[derive(Debug, Clone)]
pub struct Generator {
    s: [u64; 4],
}

/// splitmix64, to spread a seed over the generator's state.
fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Generator {
    /// A generator from a seed (the worker draws it from the OS once, and mixes in its
    /// pid, so that two workers never share a sequence even if the draw failed).
    pub fn new(seed: u64) -> Generator {
        let mut x = seed;
        Generator {
            s: [
                splitmix(&mut x),
                splitmix(&mut x),
                splitmix(&mut x),
                splitmix(&mut x),
            ],
        }
    }

    fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// A new id: 32 lowercase hex digits.
    pub fn next_id(&mut self) -> RequestId {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut id = RequestId {
            len: 32,
            ..RequestId::default()
        };
        for half in 0..2 {
            let v = self.next_u64();
            for i in 0..16 {
                let nibble = (v >> (60 - 4 * i)) & 0xf;
                id.bytes[half * 16 + i] = HEX[usize::try_from(nibble).unwrap_or(0)];
            }
        }
        id
    }
}

/// The request's id: the web server's `HTTP_X_REQUEST_ID` when it is a usable one,
/// otherwise a new one from `gen`.
pub fn choose(param: Option<&[u8]>, gen: &mut Generator) -> RequestId {
    param
        .and_then(RequestId::parse)
        .unwrap_or_else(|| gen.next_id())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepted_forms() {
        for ok in [
            "0123456789abcdef0123456789abcdef",
            "f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
            "Root=1-5759e988-bd862e3fe1be46a994272793",
            "abc.def_ghi:1+2/3=",
        ] {
            assert_eq!(
                RequestId::parse(ok.as_bytes()).map(|i| i.as_bytes().to_vec()),
                Some(ok.as_bytes().to_vec())
            );
        }
        assert!(RequestId::parse(&[b'a'; MAX_LEN]).is_some());
    }

    #[test]
    fn refused_forms() {
        for bad in [
            &b""[..],
            b"a b",
            b"a\"b",
            b"a\nb",
            b"\xff",
            b"a\\b",
            b"<script>",
            &[b'a'; MAX_LEN + 1],
        ] {
            assert_eq!(RequestId::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn generated_ids_are_hex_and_differ() {
        let mut g = Generator::new(42);
        let a = g.next_id();
        let b = g.next_id();
        assert_ne!(a, b);
        assert_eq!(a.as_bytes().len(), 32);
        assert!(a
            .as_bytes()
            .iter()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        // Another seed, another sequence; the same seed, the same one.
        assert_ne!(Generator::new(43).next_id(), a);
        assert_eq!(Generator::new(42).next_id(), a);
    }

    #[test]
    fn choose_prefers_a_valid_param() {
        let mut g = Generator::new(1);
        assert_eq!(choose(Some(b"req-1"), &mut g).as_bytes(), b"req-1");
        let generated = choose(Some(b"bad id"), &mut g);
        assert_eq!(generated.as_bytes().len(), 32);
        assert_eq!(choose(None, &mut g).as_bytes().len(), 32);
    }

    proptest! {
        #[test]
        fn sanitized_is_always_safe(v in proptest::collection::vec(any::<u8>(), 0..200)) {
            let id = RequestId::sanitized(&v);
            prop_assert!(id.as_bytes().len() <= MAX_LEN);
            prop_assert!(id.as_bytes().iter().all(|&b| allowed(b)));
            if let Some(p) = RequestId::parse(&v) {
                prop_assert_eq!(p, id);
            }
        }
    }
}
