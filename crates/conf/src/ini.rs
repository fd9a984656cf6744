//! Evaluation of one configuration line the way PHP's INI scanner and parser
//! (normal scanner mode) see it when php-fpm hands them a single line.
//!
//! php-fpm passes every line separately (with a `\n` appended) to PHP's INI
//! parser and reacts to the parser's callbacks. This module reproduces the
//! scanner's tokens (longest match, earliest rule on ties), the grammar, the
//! expression evaluation (`E_ALL & ~E_NOTICE`), `${NAME}` expansion, constant
//! substitution and the bison-style syntax error texts.

use std::fmt;

/// One parser callback (or the terminating syntax error), in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IniEvent {
    /// `[name]`: the name keeps the file's bytes (a pool's name need not be UTF-8).
    Section(Vec<u8>),
    /// `key = value` (value `None` for a bare key without `=`). The name is text with
    /// any byte that is not UTF-8 shown through [`rfpm_core::shown::Shown`] (directive
    /// names are ASCII: such a name is unknown, and the message shows its bytes); the
    /// value keeps the file's bytes.
    Entry(String, Option<Vec<u8>>),
    /// `name[key] = value`: key and value keep the file's bytes (the name as
    /// [`IniEvent::Entry`]'s).
    ArrayEntry {
        name: String,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    /// PHP's own syntax error text, e.g.
    /// `syntax error, unexpected '=' in Unknown on line 1`.
    SyntaxError(String),
}

/// Lookups the INI parser performs while evaluating a value.
pub struct IniEnv<'a> {
    /// `${NAME}` lookups.
    pub var: &'a dyn Fn(&[u8]) -> Option<Vec<u8>>,
    /// Bare-word PHP constant lookups.
    pub constant: &'a dyn Fn(&str) -> Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Eof,
    Section,
    Label(Vec<u8>),
    Offset(Vec<u8>),
    DollarCurly,
    VarName(Vec<u8>),
    Quoted(Vec<u8>),
    Raw(Vec<u8>),
    Constant(Vec<u8>),
    Number(Vec<u8>),
    Str(Vec<u8>),
    Whitespace(Vec<u8>),
    BoolTrue,
    BoolFalse,
    EndOfLine,
    Char(u8),
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Tok::Eof => "end of file",
            Tok::Section => "TC_SECTION",
            Tok::Label(_) => "TC_LABEL",
            Tok::Offset(_) => "TC_OFFSET",
            Tok::DollarCurly => "TC_DOLLAR_CURLY",
            Tok::VarName(_) => "TC_VARNAME",
            Tok::Quoted(_) => "TC_QUOTED_STRING",
            Tok::Raw(_) => "TC_RAW",
            Tok::Constant(_) => "TC_CONSTANT",
            Tok::Number(_) => "TC_NUMBER",
            Tok::Str(_) => "TC_STRING",
            Tok::Whitespace(_) => "TC_WHITESPACE",
            Tok::BoolTrue => "BOOL_TRUE",
            Tok::BoolFalse => "BOOL_FALSE",
            Tok::EndOfLine => "END_OF_LINE",
            Tok::Char(c) => return write!(f, "'{}'", *c as char),
        };
        f.write_str(s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    Initial,
    Offset,
    SectionValue,
    Value,
    DoubleQuotes,
    VarName,
}

fn is_label_char(c: u8) -> bool {
    !matches!(
        c,
        b'=' | b'\n'
            | b'\r'
            | b'\t'
            | b';'
            | b'&'
            | b'|'
            | b'^'
            | b'$'
            | b'~'
            | b'('
            | b')'
            | b'{'
            | b'}'
            | b'!'
            | b'"'
            | b'['
            | 0
    )
}

fn is_tab_space(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

struct Scanner<'a> {
    s: &'a [u8],
    pos: usize,
    state: St,
    stack: Vec<St>,
    lineno: u32,
}

fn trim_ws(b: &[u8]) -> Vec<u8> {
    let mut a = 0;
    let mut e = b.len();
    while a < e && matches!(b[a], b' ' | b'\t' | b'\n' | b'\r') {
        a += 1;
    }
    while e > a && matches!(b[e - 1], b' ' | b'\t' | b'\n' | b'\r') {
        e -= 1;
    }
    b[a..e].to_vec()
}

/// A constant's name for the lookup (names are ASCII: a lossy one finds nothing).
fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A directive's name as text, any byte that is not UTF-8 kept through
/// [`rfpm_core::shown::Shown`] for the message that names it.
fn shown(b: &[u8]) -> String {
    rfpm_core::shown::Shown(b).to_string()
}

impl<'a> Scanner<'a> {
    fn new(s: &'a [u8]) -> Self {
        Scanner {
            s,
            pos: 0,
            state: St::Initial,
            stack: Vec::new(),
            lineno: 1,
        }
    }

    fn at(&self, i: usize) -> Option<u8> {
        self.s.get(i).copied()
    }

    fn push(&mut self, st: St) {
        self.stack.push(self.state);
        self.state = st;
    }

    fn pop(&mut self) {
        self.state = self.stack.pop().unwrap_or(St::Initial);
    }

    fn spaces_from(&self, mut i: usize) -> usize {
        while self.at(i).is_some_and(is_tab_space) {
            i += 1;
        }
        i
    }

    /// Length of a NEWLINE match at `i` ("\r", "\n" or "\r\n").
    fn newline_at(&self, i: usize) -> usize {
        match self.at(i) {
            Some(b'\r') => {
                if self.at(i + 1) == Some(b'\n') {
                    2
                } else {
                    1
                }
            }
            Some(b'\n') => 1,
            _ => 0,
        }
    }

    /// `{TABS_AND_SPACES}*{NEWLINE}` at pos.
    fn ws_newline_len(&self) -> usize {
        let j = self.spaces_from(self.pos);
        let n = self.newline_at(j);
        if n > 0 {
            j + n - self.pos
        } else {
            0
        }
    }

    /// `{TABS_AND_SPACES}*[;][^\r\n]*{NEWLINE}?` at pos.
    fn comment_len(&self) -> usize {
        let j = self.spaces_from(self.pos);
        if self.at(j) != Some(b';') {
            return 0;
        }
        let mut k = j + 1;
        while let Some(c) = self.at(k) {
            if c == b'\r' || c == b'\n' {
                break;
            }
            k += 1;
        }
        k + self.newline_at(k) - self.pos
    }

    /// Boolean word followed by spaces; returns (len, is_true).
    fn bool_len(&self) -> Option<(usize, bool)> {
        const WORDS: [(&str, bool); 8] = [
            ("true", true),
            ("on", true),
            ("yes", true),
            ("false", false),
            ("off", false),
            ("no", false),
            ("none", false),
            ("null", false),
        ];
        let mut best: Option<(usize, bool)> = None;
        for (w, t) in WORDS {
            let wb = w.as_bytes();
            let end = self.pos + wb.len();
            if end <= self.s.len() && self.s[self.pos..end].eq_ignore_ascii_case(wb) {
                let l = self.spaces_from(end) - self.pos;
                if best.is_none_or(|(bl, _)| l > bl) {
                    best = Some((l, t));
                }
            }
        }
        best
    }

    fn constant_len(&self) -> usize {
        match self.at(self.pos) {
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => {}
            _ => return 0,
        }
        let mut i = self.pos + 1;
        while self
            .at(i)
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
        {
            i += 1;
        }
        i - self.pos
    }

    fn number_len(&self) -> usize {
        // [-]?[0-9]+ | [0-9]*[.][0-9]+ | [0-9]+[.][0-9]*
        let digits = |mut i: usize| {
            let st = i;
            while self.at(i).is_some_and(|c| c.is_ascii_digit()) {
                i += 1;
            }
            i - st
        };
        let mut best = 0;
        let p = self.pos;
        let neg = usize::from(self.at(p) == Some(b'-'));
        let d = digits(p + neg);
        if d > 0 {
            best = neg + d;
        }
        let d1 = digits(p);
        if self.at(p + d1) == Some(b'.') {
            let d2 = digits(p + d1 + 1);
            if d2 > 0 || d1 > 0 {
                best = best.max(d1 + 1 + d2);
            }
        }
        best
    }

    /// `'...'` with at least one character inside.
    fn raw_len(&self) -> usize {
        if self.at(self.pos) != Some(b'\'') {
            return 0;
        }
        let mut i = self.pos + 1;
        while let Some(c) = self.at(i) {
            if c == b'\'' {
                return if i > self.pos + 1 {
                    i + 1 - self.pos
                } else {
                    0
                };
            }
            i += 1;
        }
        0
    }

    /// LITERAL_DOLLAR at i: "$" ([^{\0] | "\\" ANY)
    fn literal_dollar(&self, i: usize) -> usize {
        match self.at(i + 1) {
            Some(b'\\') if self.at(i + 2).is_some() => 3,
            Some(b'{') | Some(0) | None => 0,
            Some(_) => 2,
        }
    }

    fn value_chars_len(&self) -> usize {
        let mut i = self.pos;
        while let Some(c) = self.at(i) {
            match c {
                b'$' => {
                    let l = self.literal_dollar(i);
                    if l == 0 {
                        break;
                    }
                    i += l;
                }
                b'=' | b' ' | b'\t' | b'\n' | b'\r' | b';' | b'&' | b'|' | b'^' | b'~' | b'('
                | b')' | b'!' | b'"' | b'\'' | 0 => break,
                _ => i += 1,
            }
        }
        i - self.pos
    }

    fn section_value_chars_len(&self) -> usize {
        let mut i = self.pos;
        while let Some(c) = self.at(i) {
            match c {
                b'$' => {
                    let l = self.literal_dollar(i);
                    if l == 0 {
                        break;
                    }
                    i += l;
                }
                b'\\' => {
                    if self.at(i + 1).is_some() {
                        i += 2;
                    } else {
                        break;
                    }
                }
                b'\n' | b'\r' | b';' | b'"' | b'\'' | b']' => break,
                _ => i += 1,
            }
        }
        i - self.pos
    }

    fn label_len(&self) -> usize {
        let mut i = self.pos;
        while self.at(i).is_some_and(is_label_char) {
            i += 1;
        }
        i - self.pos
    }

    fn next(&mut self) -> Tok {
        loop {
            if let Some(t) = self.next_inner() {
                return t;
            }
        }
    }

    /// One scanner step; `None` means "restart" (whitespace eaten).
    fn next_inner(&mut self) -> Option<Tok> {
        let p = self.pos;
        if p >= self.s.len() {
            return Some(match self.state {
                St::Value => {
                    self.state = St::Initial;
                    Tok::EndOfLine
                }
                _ => Tok::Eof,
            });
        }
        Some(match self.state {
            St::Initial => self.scan_initial(),
            St::Value => self.scan_value(),
            St::Offset | St::SectionValue => self.scan_offset_or_section(),
            St::DoubleQuotes => self.scan_dq(),
            St::VarName => {
                let c = self.s[p];
                if c == b'}' {
                    self.pos += 1;
                    self.pop();
                    Tok::Char(b'}')
                } else {
                    let l = self.label_len();
                    if l > 0 {
                        self.pos += l;
                        Tok::VarName(trim_ws(&self.s[p..p + l]))
                    } else {
                        self.pos += 1;
                        Tok::Eof
                    }
                }
            }
        })
        .and_then(|t| match t {
            Tok::Whitespace(ref w) if w.is_empty() => None,
            t => Some(t),
        })
    }

    fn scan_initial(&mut self) -> Tok {
        let p = self.pos;
        let c = self.s[p];
        if c == b'[' {
            self.pos += 1;
            self.state = St::SectionValue;
            return Tok::Section;
        }
        // Candidates in rule order: offset label, bools, label, '=', newline, tokens, spaces, comment.
        let label = self.label_len();
        let offset = if label > 0 && self.at(p + label) == Some(b'[') {
            self.spaces_from(p + label + 1) - p
        } else {
            0
        };
        let boolean = self.bool_len();
        let eq = {
            let j = self.spaces_from(p);
            if self.at(j) == Some(b'=') {
                self.spaces_from(j + 1) - p
            } else {
                0
            }
        };
        let nl = self.ws_newline_len();
        let spaces = self.spaces_from(p) - p;
        let comment = self.comment_len();
        let token = usize::from(b":,.[]\"'()&|^+-/*=%$!~<>?@{}".contains(&c));

        let mut best = 0usize;
        let mut rule = 0u8;
        let mut consider = |len: usize, r: u8| {
            if len > best {
                best = len;
                rule = r;
            }
        };
        consider(offset, 1);
        if let Some((l, _)) = boolean {
            consider(l, 2);
        }
        consider(label, 3);
        consider(eq, 4);
        consider(nl, 5);
        consider(token, 6);
        consider(spaces, 7);
        consider(comment, 8);
        if best == 0 {
            self.pos += 1;
            return Tok::Eof;
        }
        self.pos += best;
        match rule {
            1 => {
                self.state = St::Offset;
                Tok::Offset(trim_ws(&self.s[p..p + label]))
            }
            2 => {
                if boolean.is_some_and(|(_, t)| t) {
                    Tok::BoolTrue
                } else {
                    Tok::BoolFalse
                }
            }
            3 => Tok::Label(trim_ws(&self.s[p..p + label])),
            4 => {
                self.state = St::Value;
                Tok::Char(b'=')
            }
            5 | 8 => {
                self.lineno += 1;
                Tok::EndOfLine
            }
            6 => Tok::Char(c),
            _ => Tok::Whitespace(Vec::new()), // restart
        }
    }

    fn scan_value(&mut self) -> Tok {
        let p = self.pos;
        let c = self.s[p];
        let raw = self.raw_len();
        let dollar_curly = if c == b'$' && self.at(p + 1) == Some(b'{') {
            2
        } else {
            0
        };
        let boolean = self.bool_len();
        let nl = self.ws_newline_len();
        let constant = self.constant_len();
        let number = self.number_len();
        let op = if b"&|^~()!".contains(&c) {
            self.spaces_from(p + 1) - p
        } else {
            0
        };
        let eq = usize::from(c == b'=');
        let vchars = self.value_chars_len();
        let dq = {
            let j = self.spaces_from(p);
            if self.at(j) == Some(b'"') {
                j + 1 - p
            } else {
                0
            }
        };
        let ws = self.spaces_from(p) - p;
        let comment = self.comment_len();

        let mut best = 0usize;
        let mut rule = 0u8;
        let mut consider = |len: usize, r: u8| {
            if len > best {
                best = len;
                rule = r;
            }
        };
        consider(raw, 1);
        consider(dollar_curly, 2);
        if let Some((l, _)) = boolean {
            consider(l, 3);
        }
        consider(nl, 4);
        consider(constant, 5);
        consider(number, 6);
        consider(op, 7);
        consider(eq, 8);
        consider(vchars, 9);
        consider(dq, 10);
        consider(ws, 11);
        consider(comment, 12);
        if best == 0 {
            if c == b'\'' && self.at(p + 1) == Some(b'\'') {
                // Observed php-fpm 8.2 behaviour: an empty '' ends the value and the
                // rest of the line is scanned again as a new statement.
                self.pos += 1;
                self.state = St::Initial;
                return Tok::EndOfLine;
            }
            self.pos = self.s.len();
            return Tok::Eof;
        }
        if rule == 8 {
            // '=' inside a value: not consumed, ends the value.
            self.state = St::Initial;
            return Tok::EndOfLine;
        }
        self.pos += best;
        let text = || self.s[p..p + best].to_vec();
        match rule {
            1 => Tok::Raw(self.s[p + 1..p + best - 1].to_vec()),
            2 => {
                self.push(St::VarName);
                Tok::DollarCurly
            }
            3 => {
                if boolean.is_some_and(|(_, t)| t) {
                    Tok::BoolTrue
                } else {
                    Tok::BoolFalse
                }
            }
            4 | 12 => {
                self.state = St::Initial;
                self.lineno += 1;
                Tok::EndOfLine
            }
            5 => Tok::Constant(text()),
            6 => Tok::Number(text()),
            7 => Tok::Char(c),
            9 => Tok::Str(text()),
            10 => {
                self.push(St::DoubleQuotes);
                Tok::Char(b'"')
            }
            _ => Tok::Whitespace(text()),
        }
    }

    fn scan_offset_or_section(&mut self) -> Tok {
        let p = self.pos;
        let c = self.s[p];
        let raw = self.raw_len();
        let close = if self.state == St::SectionValue {
            if c == b']' {
                let j = self.spaces_from(p + 1);
                j + self.newline_at(j) - p
            } else {
                0
            }
        } else {
            let j = self.spaces_from(p);
            if self.at(j) == Some(b']') {
                j + 1 - p
            } else {
                0
            }
        };
        let dollar_curly = if c == b'$' && self.at(p + 1) == Some(b'{') {
            2
        } else {
            0
        };
        let constant = self.constant_len();
        let number = self.number_len();
        let schars = self.section_value_chars_len();
        let dq = {
            let j = self.spaces_from(p);
            if self.at(j) == Some(b'"') {
                j + 1 - p
            } else {
                0
            }
        };
        let ws = self.spaces_from(p) - p;

        let mut best = 0usize;
        let mut rule = 0u8;
        let mut consider = |len: usize, r: u8| {
            if len > best {
                best = len;
                rule = r;
            }
        };
        consider(raw, 1);
        consider(close, 2);
        consider(dollar_curly, 3);
        consider(constant, 4);
        consider(number, 5);
        consider(schars, 6);
        consider(dq, 7);
        consider(ws, 8);
        if best == 0 {
            self.pos += 1;
            return Tok::Eof;
        }
        self.pos += best;
        let text = self.s[p..p + best].to_vec();
        match rule {
            1 => Tok::Raw(text[1..text.len() - 1].to_vec()),
            2 => {
                if self.state == St::SectionValue {
                    self.lineno += 1;
                }
                self.state = St::Initial;
                Tok::Char(b']')
            }
            3 => {
                self.push(St::VarName);
                Tok::DollarCurly
            }
            4 => Tok::Constant(text),
            5 => Tok::Number(text),
            6 => Tok::Str(text),
            7 => {
                self.push(St::DoubleQuotes);
                Tok::Char(b'"')
            }
            _ => Tok::Whitespace(text),
        }
    }

    fn scan_dq(&mut self) -> Tok {
        let p = self.pos;
        let c = self.s[p];
        if c == b'"' {
            self.pos = self.spaces_from(p + 1);
            self.pop();
            return Tok::Char(b'"');
        }
        if c == b'$' && self.at(p + 1) == Some(b'{') {
            self.pos += 2;
            self.push(St::VarName);
            return Tok::DollarCurly;
        }
        let lim = self.s.len();
        let mut s = p;
        while s < lim {
            let ch = self.s[s];
            s += 1;
            match ch {
                b'"' => {
                    s -= 1;
                    break;
                }
                b'$' if s < lim && self.s[s] == b'{' => {
                    s -= 1;
                    break;
                }
                b'\\' if s < lim => {
                    let esc = self.s[s];
                    s += 1;
                    if esc == b'"' && (s >= lim || self.s[s] == b'\n' || self.s[s] == b'\r') {
                        s -= 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        self.pos = s;
        let raw = &self.s[p..s];
        // escape handling: \" \\ \$ lose the backslash
        let mut out = Vec::with_capacity(raw.len());
        let mut i = 0;
        while i < raw.len() {
            let ch = raw[i];
            if ch == b'\\' {
                i += 1;
                match raw.get(i) {
                    None => {
                        out.push(b'\\');
                        continue;
                    }
                    Some(&e) if e == b'"' || e == b'\\' || e == b'$' => out.push(e),
                    Some(&e) => {
                        out.push(b'\\');
                        out.push(e);
                    }
                }
            } else {
                out.push(ch);
            }
            let cur = raw[i];
            if cur == b'\n' || (cur == b'\r' && raw.get(i + 1) != Some(&b'\n')) {
                self.lineno += 1;
            }
            i += 1;
        }
        Tok::Quoted(out)
    }
}

/// Parser over the token stream, with one token of lookahead.
struct Parser<'a, 'e> {
    sc: Scanner<'a>,
    la: Option<Tok>,
    env: &'e IniEnv<'e>,
    events: Vec<IniEvent>,
}

type PResult<T> = Result<T, String>;
type Value = Vec<u8>;

fn syntax(tok: &Tok, expecting: &str, line: u32) -> String {
    if expecting.is_empty() {
        format!("syntax error, unexpected {tok} in Unknown on line {line}")
    } else {
        format!("syntax error, unexpected {tok}, expecting {expecting} in Unknown on line {line}")
    }
}

/// C `atoi`: leading whitespace, optional sign, digits; saturates like
/// glibc's strtol and then truncates to int.
#[allow(clippy::cast_possible_truncation)] // C's conversion of the long to int, on purpose
pub fn atoi(s: &str) -> i32 {
    atoi_bytes(s.as_bytes())
}

/// [`atoi`] over bytes.
#[allow(clippy::cast_possible_truncation)] // C's conversion of the long to int, on purpose
pub fn atoi_bytes(b: &[u8]) -> i32 {
    atol_bytes(b) as i32
}

/// C `strtol(s, NULL, 10)` with saturation.
pub fn atol(s: &str) -> i64 {
    atol_bytes(s.as_bytes())
}

fn atol_bytes(b: &[u8]) -> i64 {
    let mut i = 0;
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        i += 1;
    }
    let mut neg = false;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        neg = b[i] == b'-';
        i += 1;
    }
    let mut v: i64 = 0;
    let mut overflow = false;
    while i < b.len() && b[i].is_ascii_digit() {
        let d = i64::from(b[i] - b'0');
        match v.checked_mul(10).and_then(|x| x.checked_add(d)) {
            Some(n) => v = n,
            None => overflow = true,
        }
        i += 1;
    }
    if overflow {
        return if neg { i64::MIN } else { i64::MAX };
    }
    if neg {
        -v
    } else {
        v
    }
}

impl Parser<'_, '_> {
    fn peek(&mut self) -> &Tok {
        if self.la.is_none() {
            self.la = Some(self.sc.next());
        }
        self.la.as_ref().unwrap_or(&Tok::Eof)
    }

    fn bump(&mut self) -> Tok {
        match self.la.take() {
            Some(t) => t,
            None => self.sc.next(),
        }
    }

    fn err(&mut self, expecting: &str) -> String {
        let t = self.bump();
        syntax(&t, expecting, self.sc.lineno)
    }

    fn run(&mut self) -> PResult<()> {
        loop {
            match self.bump() {
                Tok::Eof => return Ok(()),
                Tok::EndOfLine => {}
                Tok::Section => {
                    let name = self.section_value()?;
                    match self.peek() {
                        Tok::Char(b']') => {
                            self.bump();
                        }
                        _ => return Err(self.err("']'")),
                    }
                    self.events.push(IniEvent::Section(name));
                }
                Tok::Label(l) => {
                    if matches!(self.peek(), Tok::Char(b'=')) {
                        self.bump();
                        let v = self.string_or_value()?;
                        self.events.push(IniEvent::Entry(shown(&l), Some(v)));
                    } else {
                        self.events.push(IniEvent::Entry(shown(&l), None));
                    }
                }
                Tok::Offset(name) => {
                    let key = if self.starts_var_string(false) {
                        self.var_string_list(true)?
                    } else {
                        Vec::new()
                    };
                    if !matches!(self.peek(), Tok::Char(b']')) {
                        return Err(self.err("']'"));
                    }
                    self.bump();
                    if !matches!(self.peek(), Tok::Char(b'=')) {
                        return Err(self.err("'='"));
                    }
                    self.bump();
                    let value = self.string_or_value()?;
                    self.events.push(IniEvent::ArrayEntry {
                        name: shown(&name),
                        key,
                        value,
                    });
                }
                t => {
                    return Err(syntax(&t, "", self.sc.lineno));
                }
            }
        }
    }

    fn starts_var_string(&mut self, _section: bool) -> bool {
        matches!(
            self.peek(),
            Tok::DollarCurly
                | Tok::Constant(_)
                | Tok::Raw(_)
                | Tok::Number(_)
                | Tok::Str(_)
                | Tok::Whitespace(_)
                | Tok::Char(b'"')
        )
    }

    fn section_value(&mut self) -> PResult<Value> {
        let mut out = Vec::new();
        while self.starts_var_string(true) {
            match self.bump() {
                Tok::DollarCurly => out.extend_from_slice(&self.var_ref()?),
                Tok::Char(b'"') => out.extend_from_slice(&self.encapsed()?),
                Tok::Constant(s)
                | Tok::Raw(s)
                | Tok::Number(s)
                | Tok::Str(s)
                | Tok::Whitespace(s) => out.extend_from_slice(&s),
                _ => {}
            }
        }
        Ok(out)
    }

    fn var_ref(&mut self) -> PResult<Value> {
        let name = match self.peek() {
            Tok::VarName(_) => match self.bump() {
                Tok::VarName(n) => n,
                _ => Vec::new(),
            },
            _ => return Err(self.err("TC_VARNAME")),
        };
        if !matches!(self.peek(), Tok::Char(b'}')) {
            return Err(self.err("'}'"));
        }
        self.bump();
        Ok((self.env.var)(&name).unwrap_or_default())
    }

    fn encapsed(&mut self) -> PResult<Value> {
        let mut out = Vec::new();
        loop {
            match self.peek() {
                Tok::Char(b'"') => {
                    self.bump();
                    return Ok(out);
                }
                Tok::DollarCurly => {
                    self.bump();
                    out.extend_from_slice(&self.var_ref()?);
                }
                Tok::Quoted(_) => {
                    if let Tok::Quoted(s) = self.bump() {
                        out.extend_from_slice(&s);
                    }
                }
                _ => return Err(self.err("TC_DOLLAR_CURLY or TC_QUOTED_STRING or '\"'")),
            }
        }
    }

    /// var_string_list with constant lookup.
    fn var_string_list(&mut self, _offset: bool) -> PResult<Value> {
        let mut out = Vec::new();
        while self.starts_var_string(false) {
            match self.bump() {
                Tok::DollarCurly => out.extend_from_slice(&self.var_ref()?),
                Tok::Char(b'"') => out.extend_from_slice(&self.encapsed()?),
                Tok::Constant(s) => match (self.env.constant)(&lossy(&s)) {
                    Some(v) => out.extend_from_slice(v.as_bytes()),
                    None => out.extend_from_slice(&s),
                },
                Tok::Raw(s) | Tok::Number(s) | Tok::Str(s) | Tok::Whitespace(s) => {
                    out.extend_from_slice(&s);
                }
                _ => {}
            }
        }
        Ok(out)
    }

    fn string_or_value(&mut self) -> PResult<Value> {
        match self.peek() {
            Tok::BoolTrue => {
                self.bump();
                Ok(b"1".to_vec())
            }
            Tok::BoolFalse => {
                self.bump();
                Ok(Vec::new())
            }
            Tok::EndOfLine => {
                self.bump();
                Ok(Vec::new())
            }
            _ => self.expr(),
        }
    }

    /// expr: binary operators, all left-associative with equal precedence.
    fn expr(&mut self) -> PResult<Value> {
        let mut lhs = self.unary()?;
        loop {
            let op = match self.peek() {
                Tok::Char(c @ (b'|' | b'&' | b'^')) => *c,
                _ => return Ok(lhs),
            };
            self.bump();
            let rhs = self.unary()?;
            let (a, b) = (atoi_bytes(&lhs), atoi_bytes(&rhs));
            let r = match op {
                b'|' => a | b,
                b'&' => a & b,
                _ => a ^ b,
            };
            lhs = r.to_string().into_bytes();
        }
    }

    fn unary(&mut self) -> PResult<Value> {
        match self.peek() {
            Tok::Char(b'~') => {
                self.bump();
                let v = self.unary()?;
                Ok((!atoi_bytes(&v)).to_string().into_bytes())
            }
            Tok::Char(b'!') => {
                self.bump();
                let v = self.unary()?;
                Ok(i32::from(atoi_bytes(&v) == 0).to_string().into_bytes())
            }
            Tok::Char(b'(') => {
                self.bump();
                let v = self.expr()?;
                if !matches!(self.peek(), Tok::Char(b')')) {
                    return Err(self.err("'^' or '|' or '&' or ')'"));
                }
                self.bump();
                Ok(v)
            }
            _ => {
                if self.starts_var_string(false) {
                    self.var_string_list(false)
                } else {
                    Err(self.err(""))
                }
            }
        }
    }
}

/// Evaluate one line (without its trailing newline). php-fpm appends `\n`
/// and stops at a NUL byte (C string), both reproduced here.
pub fn parse_line(line: &[u8], env: &IniEnv<'_>) -> Vec<IniEvent> {
    let mut buf: Vec<u8> = Vec::with_capacity(line.len() + 1);
    if let Some(nul) = line.iter().position(|&c| c == 0) {
        buf.extend_from_slice(&line[..nul]);
    } else {
        buf.extend_from_slice(line);
        buf.push(b'\n');
    }
    let mut p = Parser {
        sc: Scanner::new(&buf),
        la: None,
        env,
        events: Vec::new(),
    };
    if let Err(e) = p.run() {
        p.events.push(IniEvent::SyntaxError(e));
    }
    p.events
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(line: &str) -> Vec<IniEvent> {
        let var = |n: &[u8]| {
            if n == b"HOME" {
                Some(b"/root".to_vec())
            } else {
                None
            }
        };
        let constant = |n: &str| crate::constants::lookup(n);
        let env = IniEnv {
            var: &var,
            constant: &constant,
        };
        parse_line(line.as_bytes(), &env)
    }

    fn entry(k: &str, v: &str) -> Vec<IniEvent> {
        vec![IniEvent::Entry(k.into(), Some(v.as_bytes().to_vec()))]
    }

    #[test]
    fn basics() {
        assert_eq!(ev("a = b"), entry("a", "b"));
        assert_eq!(ev("  a  =   b c  ; x"), entry("a", "b c"));
        assert_eq!(ev("a = on"), entry("a", "1"));
        assert_eq!(ev("a = Off"), entry("a", ""));
        assert_eq!(ev("a = yesterday"), entry("a", "yesterday"));
        assert_eq!(ev("a = E_ALL & ~E_NOTICE"), entry("a", "32759"));
        assert_eq!(ev("a = \"x;y\" 'z${HOME}'"), entry("a", "x;yz${HOME}"));
        assert_eq!(ev("a = \"${HOME}/x\""), entry("a", "/root/x"));
        assert_eq!(ev("a = ${HOME}"), entry("a", "/root"));
        assert_eq!(ev("a = $"), entry("a", "$\n"));
        assert_eq!(ev("; comment"), vec![]);
        assert_eq!(ev(""), vec![]);
        assert_eq!(ev("[www]"), vec![IniEvent::Section("www".into())]);
        assert_eq!(
            ev("php_value[ x y  ] = 1"),
            vec![IniEvent::ArrayEntry {
                name: "php_value".into(),
                key: b"x y  ".to_vec(),
                value: b"1".to_vec()
            }]
        );
        assert_eq!(ev("# x"), vec![IniEvent::Entry("# x".into(), None)]);
    }

    /// Bytes that are not UTF-8 (Latin-1 here) reach the events exactly, in every
    /// form a value takes: bare, quoted, raw, and array keys and values.
    #[test]
    fn values_keep_their_bytes() {
        let var = |_: &[u8]| None;
        let constant = |_: &str| None;
        let env = IniEnv {
            var: &var,
            constant: &constant,
        };
        let one = |line: &[u8]| parse_line(line, &env);
        let v = |b: &[u8]| vec![IniEvent::Entry("chdir".into(), Some(b.to_vec()))];
        assert_eq!(one(b"chdir = /tmp/caf\xe9"), v(b"/tmp/caf\xe9"));
        assert_eq!(one(b"chdir = \"/tmp/caf\xe9 x\""), v(b"/tmp/caf\xe9 x"));
        assert_eq!(one(b"chdir = '\xe9\xff'"), v(b"\xe9\xff"));
        assert_eq!(one(b"chdir = a\xe9 b\xe9 ; c\xe9"), v(b"a\xe9 b\xe9"));
        assert_eq!(
            one(b"env[Y\xe9] = caf\xe9"),
            vec![IniEvent::ArrayEntry {
                name: "env".into(),
                key: b"Y\xe9".to_vec(),
                value: b"caf\xe9".to_vec()
            }]
        );
        assert_eq!(
            one(b"[caf\xe9]"),
            vec![IniEvent::Section(b"caf\xe9".to_vec())]
        );
        // A directive's name that is not UTF-8 is named exactly in the message.
        let IniEvent::Entry(name, _) = &one(b"caf\xe9 = 1")[0] else {
            panic!("an entry")
        };
        assert_eq!(&*rfpm_core::shown::unshow(name), b"caf\xe9");
    }

    #[test]
    fn errors() {
        assert_eq!(
            ev("a = \"foo"),
            vec![IniEvent::SyntaxError("syntax error, unexpected end of file, expecting TC_DOLLAR_CURLY or TC_QUOTED_STRING or '\"' in Unknown on line 2".into())]
        );
        assert_eq!(
            ev("x = on off")[1],
            IniEvent::SyntaxError(
                "syntax error, unexpected BOOL_FALSE in Unknown on line 1".into()
            )
        );
        assert_eq!(
            ev("x = (1"),
            vec![IniEvent::SyntaxError("syntax error, unexpected END_OF_LINE, expecting '^' or '|' or '&' or ')' in Unknown on line 2".into())]
        );
        assert_eq!(
            ev("[foo"),
            vec![IniEvent::SyntaxError(
                "syntax error, unexpected end of file, expecting ']' in Unknown on line 1".into()
            )]
        );
        assert_eq!(
            ev("x = ${"),
            vec![IniEvent::SyntaxError(
                "syntax error, unexpected end of file, expecting TC_VARNAME in Unknown on line 1"
                    .into()
            )]
        );
        assert_eq!(
            ev("x = 1 | "),
            vec![IniEvent::SyntaxError(
                "syntax error, unexpected END_OF_LINE in Unknown on line 2".into()
            )]
        );
    }
}
