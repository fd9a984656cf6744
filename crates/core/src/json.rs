//! A small JSON writer for log lines (RFC 8259), pure and allocation-light: the error
//! log and the access log in `json` format are written with it on the hot path.
//!
//! Strings are bytes as they come (a URI, a worker's stderr): every byte is handled.
//! Valid UTF-8 is copied as it is; each invalid sequence becomes U+FFFD, exactly where
//! `String::from_utf8_lossy` puts one (the maximal-subpart rule). `"` and `\` are
//! escaped, and every control character (U+0000 to U+001F) is escaped as RFC 8259 asks:
//! `\b \f \n \r \t` by name, the others as `\u00XX`. DEL (0x7F) and U+2028/U+2029 need
//! no escape in JSON and are kept.

/// The UTF-8 bytes of U+FFFD, written for each invalid sequence.
const REPLACEMENT: &[u8] = "\u{fffd}".as_bytes();
const HEX: &[u8; 16] = b"0123456789abcdef";

/// Whether a byte of valid UTF-8 text goes out unchanged.
fn plain(b: u8) -> bool {
    b >= 0x20 && b != b'"' && b != b'\\'
}

/// Escapes valid UTF-8 `s` into `out` (no quotes).
fn escape_valid(out: &mut Vec<u8>, s: &[u8]) {
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        if plain(b) {
            continue;
        }
        out.extend_from_slice(&s[start..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]),
        }
        start = i + 1;
    }
    out.extend_from_slice(&s[start..]);
}

/// Whether every byte of `s` is printable ASCII that JSON takes as it is (no `"`, no
/// `\`, no control character): the common case of a log field, copied whole. Eight
/// bytes at a time (the exact "has a byte below n" and "has a zero byte" tests).
fn is_plain_ascii(s: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH != 0;
    let mut chunks = s.chunks_exact(8);
    for c in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(c);
        let x = u64::from_le_bytes(word);
        if x & HIGH != 0
            || x.wrapping_sub(ONES * 0x20) & !x & HIGH != 0
            || has_zero(x ^ (ONES * u64::from(b'"')))
            || has_zero(x ^ (ONES * u64::from(b'\\')))
        {
            return false;
        }
    }
    chunks
        .remainder()
        .iter()
        .all(|&b| (0x20..0x80).contains(&b) && b != b'"' && b != b'\\')
}

/// Appends the escaped content of `bytes` (without the surrounding quotes).
pub fn escape_into(out: &mut Vec<u8>, bytes: &[u8]) {
    if is_plain_ascii(bytes) {
        out.extend_from_slice(bytes);
        return;
    }
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                escape_valid(out, s.as_bytes());
                return;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                escape_valid(out, valid);
                out.extend_from_slice(REPLACEMENT);
                match e.error_len() {
                    // An invalid sequence: skip it and go on.
                    Some(n) => rest = &after[n.min(after.len())..],
                    // A sequence cut short by the end of the input.
                    None => return,
                }
            }
        }
    }
}

/// Appends `bytes` as a JSON string, quotes included.
pub fn string_into(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    escape_into(out, bytes);
    out.push(b'"');
}

/// `bytes` as a JSON string, quotes included.
pub fn string(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 2);
    string_into(&mut out, bytes);
    out
}

/// Writes one JSON object member by member into a buffer: `{"a":1,"b":"x"}`. Keys are
/// the program's own names (escaped all the same).
pub struct Object<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Object<'a> {
    /// Starts an object at the end of `out`.
    pub fn new(out: &'a mut Vec<u8>) -> Object<'a> {
        out.push(b'{');
        Object { out, first: true }
    }

    fn key(&mut self, key: &str) -> &mut Vec<u8> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        string_into(self.out, key.as_bytes());
        self.out.push(b':');
        self.out
    }

    /// A number member, its digits written straight into the buffer.
    fn number(&mut self, key: &str, negative: bool, value: u64) -> &mut Self {
        let out = self.key(key);
        if negative {
            out.push(b'-');
        }
        push_decimal(out, value);
        self
    }

    /// A string member (any bytes).
    pub fn str(&mut self, key: &str, value: &[u8]) -> &mut Self {
        let out = self.key(key);
        string_into(out, value);
        self
    }

    /// A string member, or `null`.
    pub fn opt_str(&mut self, key: &str, value: Option<&[u8]>) -> &mut Self {
        match value {
            Some(v) => self.str(key, v),
            None => self.raw(key, "null"),
        }
    }

    /// An unsigned integer member.
    pub fn u64(&mut self, key: &str, value: u64) -> &mut Self {
        self.number(key, false, value)
    }

    /// A signed integer member.
    pub fn i64(&mut self, key: &str, value: i64) -> &mut Self {
        self.number(key, value < 0, value.unsigned_abs())
    }

    /// A number of thousandths (`1234` → `1.234`): milliseconds from microseconds,
    /// without going through floating point.
    pub fn milli(&mut self, key: &str, thousandths: u64) -> &mut Self {
        let out = self.key(key);
        push_decimal(out, thousandths / 1000);
        out.push(b'.');
        push_padded(out, thousandths % 1000, 3);
        self
    }

    /// A member whose value is JSON text the caller has validated (an object read back
    /// from a worker, see [`crate::applog::parse`]), copied as it is.
    pub fn json(&mut self, key: &str, json: &[u8]) -> &mut Self {
        let out = self.key(key);
        out.extend_from_slice(json);
        self
    }

    /// A `true` member.
    pub fn raw_true(&mut self, key: &str) -> &mut Self {
        self.raw(key, "true")
    }

    /// A member whose value is already JSON (a number, `null`, `true`).
    fn raw(&mut self, key: &str, json: &str) -> &mut Self {
        let out = self.key(key);
        out.extend_from_slice(json.as_bytes());
        self
    }

    /// Closes the object.
    pub fn finish(self) {
        self.out.push(b'}');
    }
}

/// Appends `v` in decimal.
fn push_decimal(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = digit(v % 10);
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Appends the last `width` decimal digits of `v`, zero-padded.
fn push_padded(out: &mut Vec<u8>, mut v: u64, width: usize) {
    let start = out.len();
    out.resize(start + width, b'0');
    for b in out[start..].iter_mut().rev() {
        *b = digit(v % 10);
        v /= 10;
    }
}

/// The ASCII digit of `d` (0..=9).
fn digit(d: u64) -> u8 {
    b'0' + u8::try_from(d % 10).unwrap_or(0)
}

/// Days since 1970-01-01 → (year, month 1..=12, day 1..=31), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // Both are small and positive by construction.
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

/// RFC 3339 time in UTC with milliseconds: `2026-12-05T08:09:07.123Z`.
pub fn rfc3339_utc(unix_ms: u64) -> String {
    let secs = i64::try_from(unix_ms / 1000).unwrap_or(i64::MAX);
    let ms = unix_ms % 1000;
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let (h, mi, s) = (sod / 3600, sod / 60 % 60, sod % 60);
    let year = u64::try_from(y).ok().filter(|&y| y <= 9999);
    let Some(year) = year else {
        // Outside four digits (not this millennium's clocks): the general formatter.
        return format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z");
    };
    // Written digit by digit (an access log entry takes one per request).
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    let mut out = Vec::with_capacity(24);
    push_padded(&mut out, year, 4);
    out.push(b'-');
    push_padded(&mut out, u64::from(mo), 2);
    out.push(b'-');
    push_padded(&mut out, u64::from(d), 2);
    out.push(b'T');
    push_padded(&mut out, n(h), 2);
    out.push(b':');
    push_padded(&mut out, n(mi), 2);
    out.push(b':');
    push_padded(&mut out, n(s), 2);
    out.push(b'.');
    push_padded(&mut out, ms, 3);
    out.push(b'Z');
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn esc(b: &[u8]) -> String {
        String::from_utf8(string(b)).expect("the output is UTF-8")
    }

    #[test]
    fn plain_text_is_copied() {
        assert_eq!(esc(b"hello /x.php?a=1"), r#""hello /x.php?a=1""#);
        assert_eq!(esc(b""), r#""""#);
        assert_eq!(esc("été ✓ 🐘".as_bytes()), "\"été ✓ 🐘\"");
    }

    #[test]
    fn quotes_backslashes_and_controls() {
        assert_eq!(esc(br#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(esc(b"\n\r\t\x08\x0c"), r#""\n\r\t\b\f""#);
        assert_eq!(esc(b"\0\x01\x1f\x7f"), "\"\\u0000\\u0001\\u001f\x7f\"");
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters() {
        assert_eq!(esc(b"a\xffb"), "\"a\u{fffd}b\"");
        // A truncated 3-byte sequence is one replacement, as from_utf8_lossy.
        assert_eq!(esc(b"x\xe2\x82"), "\"x\u{fffd}\"");
        assert_eq!(esc(b"\xe2\x82y"), "\"\u{fffd}y\"");
        // Surrogates encoded in UTF-8 are invalid: one replacement per byte.
        assert_eq!(esc(b"\xed\xa0\x80"), "\"\u{fffd}\u{fffd}\u{fffd}\"");
        assert_eq!(esc(b"\xc0\x80\""), "\"\u{fffd}\u{fffd}\\\"\"");
    }

    #[test]
    fn objects() {
        let mut out = Vec::new();
        let mut o = Object::new(&mut out);
        o.str("msg", b"a\"b")
            .u64("n", 7)
            .i64("s", -3)
            .milli("ms", 1234)
            .milli("z", 5)
            .opt_str("none", None)
            .opt_str("some", Some(b"x"))
            .json("obj", br#"{"k":[1]}"#);
        o.finish();
        assert_eq!(
            String::from_utf8_lossy(&out),
            r#"{"msg":"a\"b","n":7,"s":-3,"ms":1.234,"z":0.005,"none":null,"some":"x","obj":{"k":[1]}}"#
        );
        let mut empty = Vec::new();
        Object::new(&mut empty).finish();
        assert_eq!(empty, b"{}");
    }

    #[test]
    fn rfc3339() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_utc(1_795_490_083_042), "2026-11-24T03:14:43.042Z");
        // A leap day, and the last millisecond of a year.
        assert_eq!(rfc3339_utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339_utc(1_704_067_199_999), "2023-12-31T23:59:59.999Z");
        // Beyond four digits of year: the general formatter.
        assert_eq!(
            rfc3339_utc(253_402_300_800_000),
            "10000-01-01T00:00:00.000Z"
        );
    }

    proptest! {
        /// Whatever the bytes, the output is one JSON string that a real parser reads
        /// back as the lossy UTF-8 of the input.
        #[test]
        fn any_bytes_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let out = string(&bytes);
            let parsed: String = serde_json::from_slice(&out).expect("valid JSON");
            prop_assert_eq!(parsed, String::from_utf8_lossy(&bytes).into_owned());
            // One line: no raw control character is left.
            prop_assert!(out.iter().all(|&b| b >= 0x20));
        }

        /// Text made of characters (not just bytes), which exercises the multi-byte paths.
        #[test]
        fn any_text_round_trips(s in "\\PC*|[\\x00-\\x1f\"\\\\]*") {
            let parsed: String = serde_json::from_slice(&string(s.as_bytes())).expect("valid JSON");
            prop_assert_eq!(parsed, s);
        }

        /// The eight-bytes-at-a-time test says what a byte-by-byte one says (ASCII-heavy
        /// inputs, so that both answers occur).
        #[test]
        fn plain_ascii_as_byte_by_byte(bytes in proptest::collection::vec(
            prop_oneof![8 => 0x20u8..0x7f, 1 => any::<u8>()], 0..40)) {
            let slow = bytes.iter().all(|&b| (0x20..0x80).contains(&b) && b != b'"' && b != b'\\');
            prop_assert_eq!(is_plain_ascii(&bytes), slow);
        }

        /// Numbers are written as Rust's formatter writes them.
        #[test]
        fn numbers_as_the_formatter(u in any::<u64>(), i in any::<i64>(), m in any::<u64>()) {
            let mut out = Vec::new();
            let mut o = Object::new(&mut out);
            o.u64("u", u).i64("i", i).milli("m", m);
            o.finish();
            let want = format!("{{\"u\":{u},\"i\":{i},\"m\":{}.{:03}}}", m / 1000, m % 1000);
            prop_assert_eq!(String::from_utf8(out).expect("ASCII"), want);
        }

        #[test]
        fn dates_agree_with_counting_days(ms in 0u64..4_102_444_800_000) {
            let t = rfc3339_utc(ms);
            prop_assert_eq!(t.len(), 24);
            let mut days = ms / 86_400_000;
            let (mut y, mut m) = (1970u64, 1u64);
            let leap = |y: u64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            loop {
                let len = if leap(y) { 366 } else { 365 };
                if days < len { break; }
                days -= len;
                y += 1;
            }
            loop {
                let len = match m {
                    2 if leap(y) => 29,
                    2 => 28,
                    4 | 6 | 9 | 11 => 30,
                    _ => 31,
                };
                if days < len { break; }
                days -= len;
                m += 1;
            }
            let expected = format!("{y:04}-{m:02}-{:02}T", days + 1);
            prop_assert!(t.starts_with(&expected), "{} vs {}", t, expected);
        }
    }
}
