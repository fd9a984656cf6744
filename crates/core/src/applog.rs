//! `frankenphp_log()` entries (FrankenPHP's structured logging, its `docs/logging.md`):
//! the level mapping, the entry's one-line text in php-fpm's log, and the record a
//! worker hands the master when the master's error log is JSON. Pure.
//!
//! An entry goes the way every worker log line goes (the worker's stderr, captured by
//! the master with `catch_workers_output`). In php-fpm's text log it is the worker's
//! line `LEVEL: message {context}`. When the master writes JSON (`log_format = json`)
//! the worker writes a [`record`] instead, which the master reads back with [`parse`]
//! and writes as a JSON entry of the entry's own level whose context is a `context`
//! member: an object, the application's keys in its order. (FrankenPHP writes the
//! context's keys beside `level` and `msg`; in rfpm's entries they could collide with
//! rfpm's own members, `level`, `pid`, `request_id`, which log pipelines key on.)
//!
//! The master trusts nothing in a record (any PHP code can write the same bytes to its
//! stderr): it is parsed within `log_limit`, and a record that does not parse is logged
//! as the captured line it is.
use crate::Level;

/// Starts a record on a worker's stderr (a NUL, as the end-of-request marker does, so
/// no text line a worker writes begins with it by chance).
pub const MARK: &[u8] = b"\0fslog\0";

/// rfpm's level of a FrankenPHP level (any integer, as Go's `slog` levels): below 0
/// DEBUG, 0..=3 NOTICE (`FRANKENPHP_LOG_LEVEL_INFO`), 4..=7 WARNING, 8 and above ERROR.
pub fn level_of(level: i64) -> Level {
    match level {
        i64::MIN..=-1 => Level::Debug,
        0..=3 => Level::Notice,
        4..=7 => Level::Warning,
        _ => Level::Error,
    }
}

/// Appends `message` on one line: a line feed is written `\n`, a carriage return `\r`,
/// another control character but tab `\xNN` (a NUL could otherwise fake the worker's
/// end-of-request marker). Every other byte is kept as it is, backslashes and bytes that
/// are not UTF-8 included, as php-fpm's log keeps a script's bytes.
fn one_line(out: &mut Vec<u8>, message: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &b in message {
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.push(b),
            0..=0x1f => out.extend_from_slice(&[
                b'\\',
                b'x',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]),
            _ => out.push(b),
        }
    }
}

/// The entry's text in php-fpm's log: the message on one line, then the context (a
/// compact JSON object) after a space when there is one.
pub fn text(message: &[u8], context: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + context.map_or(0, |c| c.len() + 1));
    one_line(&mut out, message);
    if let Some(c) = context {
        out.push(b' ');
        one_line(&mut out, c);
    }
    out
}

/// Appends `bytes` escaped as the content of a JSON string (see [`crate::json`]) as far
/// as they fit in `room` bytes, a character never cut; `true` when all of them did.
fn escaped_within(out: &mut Vec<u8>, bytes: &[u8], room: usize) -> bool {
    let limit = out.len() + room;
    let mut buf = [0u8; 4];
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            let before = out.len();
            crate::json::escape_into(out, c.encode_utf8(&mut buf).as_bytes());
            if out.len() > limit {
                out.truncate(before);
                return false;
            }
        }
        if !chunk.invalid().is_empty() {
            let before = out.len();
            crate::json::escape_into(out, chunk.invalid());
            if out.len() > limit {
                out.truncate(before);
                return false;
            }
        }
    }
    true
}

/// The record of one entry for a master whose log is JSON, as the worker writes it on
/// its stderr: `\n`, [`MARK`], `{"level":"NOTICE","msg":"…"}`, then ` ` and the context
/// when there is one, and `\n`. The leading line feed ends a line the script left
/// unfinished on its stderr, so the record starts a captured entry of its own.
///
/// The master cuts captured entries at `log_limit - 1` bytes, and a cut record would
/// not parse: so the record is made to fit. The message is cut first (ending in
/// `...`); a context too long for any message to fit goes into the message as text (as
/// in php-fpm's log), cut there. `None` when not even that fits (a tiny `log_limit`):
/// the entry is then written as the worker's text line.
pub fn record(
    level: Level,
    message: &[u8],
    context: Option<&[u8]>,
    limit: usize,
) -> Option<Vec<u8>> {
    const CUT: &[u8] = b"...";
    let budget = limit.checked_sub(1)?;
    let head = |out: &mut Vec<u8>| {
        out.push(b'\n');
        out.extend_from_slice(MARK);
        out.extend_from_slice(b"{\"level\":\"");
        out.extend_from_slice(level.as_str().as_bytes());
        out.extend_from_slice(b"\",\"msg\":\"");
    };
    // The bytes of the record that are not the message's: its head (less the leading
    // line feed, which ends the line before), `"}`, and ` context`.
    let fixed = |ctx: Option<&[u8]>| {
        MARK.len()
            + "{\"level\":\"\",\"msg\":\"\"}".len()
            + level.as_str().len()
            + ctx.map_or(0, |c| c.len() + 1)
    };
    let finish = |mut out: Vec<u8>, ctx: Option<&[u8]>| {
        out.extend_from_slice(b"\"}");
        if let Some(c) = ctx {
            out.push(b' ');
            out.extend_from_slice(c);
        }
        out.push(b'\n');
        out
    };
    let mut out = Vec::with_capacity(budget.min(message.len() + 64) + 2);
    head(&mut out);
    let start = out.len();
    // Whole, context and all.
    if let Some(room) = budget.checked_sub(fixed(context)) {
        if escaped_within(&mut out, message, room) {
            return Some(finish(out, context));
        }
        // The message cut, the context kept, if some of the message fits.
        out.truncate(start);
        if let Some(room) = room.checked_sub(CUT.len()) {
            if room > 0 {
                escaped_within(&mut out, message, room);
                out.extend_from_slice(CUT);
                return Some(finish(out, context));
            }
        }
        out.truncate(start);
    }
    // The context as text in the message, cut there.
    let room = budget.checked_sub(fixed(None))?;
    let text = text(message, context);
    if !escaped_within(&mut out, &text, room) {
        out.truncate(start);
        escaped_within(&mut out, &text, room.checked_sub(CUT.len())?);
        out.extend_from_slice(CUT);
    }
    Some(finish(out, None))
}

/// A record read back by the master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<'a> {
    pub level: Level,
    pub msg: String,
    /// The context: a JSON object, the bytes as the worker wrote them (validated).
    pub context: Option<&'a [u8]>,
}

impl Parsed<'_> {
    /// The entry as the worker's text line says it (`NOTICE: message {context}`): for
    /// a master whose log is not JSON (a record written before a reload changed
    /// `log_format`).
    pub fn line(&self) -> Vec<u8> {
        let mut out = self.level.as_str().as_bytes().to_vec();
        out.extend_from_slice(b": ");
        out.extend_from_slice(&text(self.msg.as_bytes(), self.context));
        out
    }
}

/// Reads a captured entry as a [`record`] (without its line feeds); `None` when it is
/// not one, or not a well-formed one: the head an object with `level` (one of the four
/// levels a record carries) and `msg` strings, then at most a context that is a JSON
/// object with no control character outside its strings.
pub fn parse(entry: &[u8]) -> Option<Parsed<'_>> {
    use serde_json::Value;
    let body = entry.strip_prefix(MARK)?;
    let mut values = serde_json::Deserializer::from_slice(body).into_iter::<Value>();
    let Some(Ok(Value::Object(head))) = values.next() else {
        return None;
    };
    let head_end = values.byte_offset();
    let context = match values.next() {
        None => None,
        Some(Ok(Value::Object(_))) => {
            let raw = body.get(head_end..values.byte_offset())?.trim_ascii();
            if raw.iter().any(|&b| b < 0x20) {
                return None;
            }
            Some(raw)
        }
        Some(_) => return None,
    };
    if values.next().is_some() {
        return None;
    }
    let level = match head.get("level")?.as_str()? {
        "DEBUG" => Level::Debug,
        "NOTICE" => Level::Notice,
        "WARNING" => Level::Warning,
        "ERROR" => Level::Error,
        _ => return None,
    };
    let msg = head.get("msg")?.as_str()?.to_string();
    Some(Parsed {
        level,
        msg,
        context,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn levels_map_as_frankenphp_names_them() {
        assert_eq!(level_of(-4), Level::Debug);
        assert_eq!(level_of(-1), Level::Debug);
        assert_eq!(level_of(i64::MIN), Level::Debug);
        assert_eq!(level_of(0), Level::Notice);
        assert_eq!(level_of(3), Level::Notice);
        assert_eq!(level_of(4), Level::Warning);
        assert_eq!(level_of(7), Level::Warning);
        assert_eq!(level_of(8), Level::Error);
        assert_eq!(level_of(i64::MAX), Level::Error);
    }

    #[test]
    fn text_is_one_line() {
        assert_eq!(text(b"hello", None), b"hello");
        assert_eq!(
            text(b"two\nlines\r\0x\t\\n \xff", Some(br#"{"a":1}"#)),
            b"two\\nlines\\r\\x00x\t\\n \xff {\"a\":1}"
        );
        // The end-of-request marker cannot be written through a message.
        assert!(!text(b"a\0fscf\0b", None).contains(&0));
    }

    fn body(rec: &[u8]) -> &[u8] {
        rec.strip_prefix(b"\n")
            .and_then(|r| r.strip_suffix(b"\n"))
            .unwrap_or_default()
    }

    #[test]
    fn record_round_trips() {
        let ctx = br#"{"user":"j\u00e9","ids":[1,2],"n":{"x":null}}"#;
        let rec = record(Level::Warning, b"disk \"low\"\n", Some(ctx), 1024).expect("fits");
        assert!(rec
            .starts_with(b"\n\0fslog\0{\"level\":\"WARNING\",\"msg\":\"disk \\\"low\\\"\\n\"} {"));
        let p = parse(body(&rec)).expect("a record");
        assert_eq!(p.level, Level::Warning);
        assert_eq!(p.msg, "disk \"low\"\n");
        assert_eq!(p.context, Some(&ctx[..]));
        assert_eq!(
            p.line(),
            b"WARNING: disk \"low\"\\n {\"user\":\"j\\u00e9\",\"ids\":[1,2],\"n\":{\"x\":null}}"
        );
        let rec = record(Level::Debug, b"\xff\xfe ok", None, 1024).unwrap_or_default();
        let p = parse(body(&rec)).expect("a record");
        assert_eq!(
            (p.level, p.msg.as_str(), p.context),
            (Level::Debug, "\u{fffd}\u{fffd} ok", None)
        );
    }

    #[test]
    fn a_long_message_is_cut_and_the_context_kept() {
        let msg = "é".repeat(600);
        let ctx = br#"{"k":"v"}"#;
        let rec = record(Level::Notice, msg.as_bytes(), Some(ctx), 1024).unwrap_or_default();
        assert!(body(&rec).len() <= 1023, "{}", rec.len());
        let p = parse(body(&rec)).expect("a record");
        assert!(p.msg.ends_with("é..."), "{}", p.msg);
        assert!(msg.starts_with(p.msg.trim_end_matches("...")));
        assert_eq!(p.context, Some(&ctx[..]));
    }

    #[test]
    fn a_context_too_long_becomes_text() {
        let ctx = format!("{{\"big\":\"{}\"}}", "x".repeat(2000));
        let rec = record(Level::Error, b"m", Some(ctx.as_bytes()), 1024).unwrap_or_default();
        assert_eq!(body(&rec).len(), 1023);
        let p = parse(body(&rec)).expect("a record");
        assert_eq!(p.context, None);
        assert!(p.msg.starts_with("m {\"big\":\"xxx"), "{}", p.msg);
        assert!(p.msg.ends_with("x..."));
        // Too small a log_limit for any record.
        assert_eq!(record(Level::Error, b"m", None, 20), None);
        assert_eq!(record(Level::Error, b"m", None, 0), None);
    }

    #[test]
    fn forged_or_cut_records_are_refused() {
        for bad in [
            &b"{\"level\":\"NOTICE\",\"msg\":\"x\"}"[..],
            b"\0fslog\0{\"level\":\"NOTICE\",\"msg\":\"x\"",
            b"\0fslog\0{\"level\":\"ALERT\",\"msg\":\"x\"}",
            b"\0fslog\0{\"level\":\"NOTICE\",\"msg\":1}",
            b"\0fslog\0{\"level\":\"NOTICE\"}",
            b"\0fslog\0[1]",
            b"\0fslog\0{\"level\":\"NOTICE\",\"msg\":\"x\"} [1]",
            b"\0fslog\0{\"level\":\"NOTICE\",\"msg\":\"x\"} {\"a\":1} {}",
            b"\0fslog\0{\"level\":\"NOTICE\",\"msg\":\"x\"} {\"a\":\r1}",
            b"\0fslog\0{\"level\":\"NOTICE\",\"msg\":\"\xff\"}",
        ] {
            assert_eq!(parse(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        let deep = format!(
            "\0fslog\0{{\"level\":\"NOTICE\",\"msg\":\"x\"}} {}{}",
            "[".repeat(500),
            "]".repeat(500)
        );
        assert_eq!(parse(deep.as_bytes()), None);
    }

    proptest! {
        /// Whatever the message and the limit, a record fits `log_limit - 1` bytes
        /// between its line feeds and reads back as a prefix of the message.
        #[test]
        fn records_fit_and_parse(msg in proptest::collection::vec(any::<u8>(), 0..3000), limit in 40usize..4000, with_ctx: bool) {
            let ctx: &[u8] = br#"{"a":[1,"two"]}"#;
            let context = with_ctx.then_some(ctx);
            let Some(rec) = record(Level::Notice, &msg, context, limit) else {
                return Err(TestCaseError::fail("no record"));
            };
            let b = body(&rec);
            prop_assert!(b.len() < limit);
            prop_assert!(!b.contains(&b'\n'));
            let p = parse(b).expect("a record");
            let lossy = String::from_utf8_lossy(&msg).into_owned();
            if p.msg != lossy || p.context != context {
                // Cut: what is left of the message (or of its text with the context)
                // is where it started, and says it was cut.
                let full = String::from_utf8_lossy(&text(&msg, context)).into_owned();
                let kept = p.msg.strip_suffix("...");
                prop_assert!(kept.is_some_and(|k| lossy.starts_with(k) || full.starts_with(k)), "{:?}", p.msg);
            }
        }
    }
}
