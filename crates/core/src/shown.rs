//! Bytes that are not UTF-8, carried through Rust's text formatting into a log line.
//!
//! php-fpm writes configured values into its messages as the C strings they are: a
//! Latin-1 `é` in a path is the byte 0xE9 in `-t`'s error line and in the log. rfpm builds
//! its messages with `format!`, which only handles text; so a value that is bytes is
//! shown through [`Shown`], which writes each byte that is not part of valid UTF-8 as one
//! of 256 reserved characters (the last 256 code points of plane 16's private use area,
//! U+10FF00 + byte), and the logger turns the message back into bytes with [`unshow`]
//! before it writes it. A character of that range in the value itself is written
//! byte by byte the same way, so the round trip is exact for any bytes.
//!
//! Text that never went through [`Shown`] and holds one of those 256 code points would
//! come out as a raw byte: they are private-use characters nobody writes into a
//! configuration or a message.

use std::borrow::Cow;
use std::fmt;

/// The first of the 256 reserved code points.
const BASE: u32 = 0x10_FF00;

/// The UTF-8 lead byte of every reserved code point (U+10FF00..=U+10FFFF is
/// `F4 8F BC 80`..=`F4 8F BF BF`): a message without it needs no [`unshow`] work.
const LEAD: u8 = 0xF4;

fn reserved(c: char) -> bool {
    (BASE..=BASE + 0xFF).contains(&u32::from(c))
}

fn escaped(b: u8) -> char {
    char::from_u32(BASE + u32::from(b)).unwrap_or(char::REPLACEMENT_CHARACTER)
}

/// Shows bytes in a message exactly (see the module documentation):
/// `format!("[pool {}] …", Shown(name))`.
#[derive(Clone, Copy)]
pub struct Shown<'a>(pub &'a [u8]);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;
        for chunk in self.0.utf8_chunks() {
            let valid = chunk.valid();
            if valid.contains(reserved) {
                for c in valid.chars() {
                    if reserved(c) {
                        let mut buf = [0; 4];
                        for &b in c.encode_utf8(&mut buf).as_bytes() {
                            f.write_char(escaped(b))?;
                        }
                    } else {
                        f.write_char(c)?;
                    }
                }
            } else {
                f.write_str(valid)?;
            }
            for &b in chunk.invalid() {
                f.write_char(escaped(b))?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0.escape_ascii())
    }
}

/// A message's bytes: every reserved character (written by [`Shown`]) becomes its byte.
pub fn unshow(message: &str) -> Cow<'_, [u8]> {
    if !message.as_bytes().contains(&LEAD) {
        return Cow::Borrowed(message.as_bytes());
    }
    let mut out = Vec::with_capacity(message.len());
    for c in message.chars() {
        if reserved(c) {
            // In range by the check: the low byte is the byte shown.
            out.push(u8::try_from(u32::from(c) - BASE).unwrap_or(b'?'));
        } else {
            let mut buf = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    Cow::Owned(out)
}

/// Text for places that must be UTF-8 (JSON, Prometheus labels, HTML): the bytes that
/// [`Shown`] reserved become U+FFFD, as any other invalid byte.
pub fn lossy(message: &str) -> Cow<'_, str> {
    match unshow(message) {
        Cow::Borrowed(_) => Cow::Borrowed(message),
        Cow::Owned(v) => Cow::Owned(String::from_utf8_lossy(&v).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn latin1_is_shown_exactly() {
        let msg = format!(
            "[pool {}] the chdir path '{}' does not exist",
            Shown(b"caf\xe9"),
            Shown(b"/x\xff")
        );
        assert_eq!(
            &*unshow(&msg),
            b"[pool caf\xe9] the chdir path '/x\xff' does not exist"
        );
        assert_eq!(
            lossy(&msg),
            "[pool caf\u{fffd}] the chdir path '/x\u{fffd}' does not exist"
        );
    }

    #[test]
    fn utf8_is_written_as_is() {
        let msg = format!("{}", Shown("café ☕".as_bytes()));
        assert_eq!(msg, "café ☕");
        assert!(matches!(unshow(&msg), Cow::Borrowed(_)));
    }

    #[test]
    fn a_reserved_character_in_the_value_survives() {
        let v = "a\u{10FF41}b\u{10FFFF}".as_bytes();
        assert_eq!(&*unshow(&Shown(v).to_string()), v);
    }

    proptest! {
        #[test]
        fn any_bytes_round_trip(v in proptest::collection::vec(any::<u8>(), 0..64)) {
            let shown = Shown(&v).to_string();
            prop_assert_eq!(&*unshow(&shown), &v[..]);
            let text = format!("<{}|{}>", Shown(&v), Shown(&v));
            let mut want = b"<".to_vec();
            want.extend_from_slice(&v);
            want.push(b'|');
            want.extend_from_slice(&v);
            want.push(b'>');
            prop_assert_eq!(&*unshow(&text), &want[..]);
        }
    }
}
