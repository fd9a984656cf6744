//! Every php-fpm 8.2 directive, one table entry each.
//!
//! # Design
//!
//! A section is declared once, with [`section!`], as one row per directive:
//!
//! ```text
//! /// What the field holds.
//! pm_max_children: Count = Count::new(0)
//!     => "pm.max_children", Int, check(Check::AtLeast(1, Level::Alert, "pm.max_children must be a positive value"));
//! ```
//!
//! that is: the field of the typed struct, its type and its default (the value before the
//! file is read), then the directive's name, its value [`Kind`] and options. From the rows
//! the macro generates both the struct the rest of the program reads ([`GlobalConf`],
//! [`PoolConf`], one public field per row) and the table ([`GLOBAL`], [`POOL`], one
//! [`Directive`] per row, which reaches its field through a pair of accessor functions,
//! a [`Slot`]). Rows are in php-fpm's `-tt` order.
//!
//! Everything about a directive follows from its row:
//! * **parsing** — [`set`] and [`set_array`] find the entry by name (scalars
//!   case-insensitively, arrays exactly, as php-fpm); the entry's [`Kind`] says which
//!   parser runs, with which error text, and stores the value;
//! * **defaults** — the row's default initialises the field; the values php-fpm's
//!   post-processing fills in when a directive is left unset (`syslog.ident = php-fpm`,
//!   `ping.response = pong`, …) are written in `validate.rs` at the point php-fpm does,
//!   and nowhere else (the binary reads them from the validated configuration);
//! * **validation** — an entry's own constraint is its [`Check`], with php-fpm's message
//!   and level; [`check`] runs them in table order, which is php-fpm's order, at the
//!   point of post-processing where php-fpm does. Rules that involve several directives
//!   (`pm.*` consistency, slow log against terminate timeout, paths) are in `validate.rs`;
//! * **the `-tt` dump** — [`dump`] walks the tables; the kind prints the value as php-fpm
//!   does (`undefined`, `yes`/`no`, `10s`, …); `undumped` rows are not printed;
//! * [`render`] (a file that loads back to the same configuration) walks them too.
//!
//! rfpm's own directives (`shutdown.drain`, `pm.max_requests_jitter`, `pm.max_memory`)
//! are rows like the others, marked `rfpm_only(is_set)`: `-tt` prints them (and
//! [`render`] writes them) only when set, so a php-fpm configuration dumps exactly as
//! php-fpm dumps it; php-fpm itself would reject them as `unknown entry`.
//!
//! Integers are held as php-fpm holds them, a C `int` as configured: `-tt` prints
//! `pm.max_requests = -7` when the file says so. The program reads them through
//! [`Count::get`] / [`Secs::get`], which are unsigned (a negative value counts as 0, as it
//! does for php-fpm). Only values whose sign means something stay `i32`
//! (`listen.backlog`, `process.priority`, `rlimit_*` where -1 is unlimited,
//! `syslog.facility`, `systemd_interval`).

use rfpm_core::Level;

use crate::model::{
    expand_pool_bytes, parse_bool, parse_facility, parse_int, parse_pm, parse_rlimit, parse_size,
    parse_time, Bytes, Config, Count, KeyValue, Pm, Secs, BACKLOG_DEFAULT, PRIORITY_UNSET,
    SYSLOG_FACILITIES,
};

/// Which section a directive belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Global,
    Pool,
}

/// Where a directive's value lives in the struct `T`: a getter and a mutable getter.
pub struct Slot<T: 'static, V: 'static> {
    pub get: fn(&T) -> &V,
    pub set: fn(&mut T) -> &mut V,
}

/// A directive's value type: the parser that reads it (and its error text), the field type
/// that holds it, and how `-tt` prints it.
pub enum Kind<T: 'static> {
    /// A string that is text by nature (a mode, a mechanism's name), `$pool` expanded;
    /// a byte that is not UTF-8 is kept through [`rfpm_core::shown::Shown`], so
    /// messages and `-tt` show it as the file has it. `-tt`: the value, or `undefined`.
    Str(Slot<T, Option<String>>),
    /// Like [`Kind::Str`], but the value keeps the file's bytes: what php-fpm hands to
    /// the operating system (a path, a user name). `-tt`: the bytes, or `undefined`.
    Bytes(Slot<T, Option<Bytes>>),
    /// `yes`/`no`/`on`/`1`/… (`invalid boolean value`). `-tt`: `yes` or `no`.
    Bool(Slot<T, bool>),
    /// An integer, optional leading `-` (`is not a valid number …`). `-tt`: as configured.
    Int(Slot<T, Count>),
    /// An integer whose sign means something. `-tt`: the number.
    Signed(Slot<T, i32>),
    /// Like [`Kind::Int`], `None` until set: rfpm's own directives, which `-tt` prints
    /// only when set (so a php-fpm configuration dumps exactly as with php-fpm).
    OptInt(Slot<T, Option<Count>>),
    /// Seconds with an optional `s`/`m`/`h`/`d` suffix. `-tt`: the seconds and `s`.
    Time(Slot<T, Secs>),
    /// Like [`Kind::Time`], but `-tt` prints the seconds without a unit.
    TimeBare(Slot<T, Secs>),
    /// `process.priority`: an integer, [`PRIORITY_UNSET`] when unset. `-tt`: `undefined`.
    Priority(Slot<T, i32>),
    /// `rlimit_core`: an integer ≥ 0 or `unlimited` (-1).
    Rlimit(Slot<T, i32>),
    /// A syslog facility name (`invalid value`), held as its number; -1 = unset.
    Facility(Slot<T, i32>),
    /// `log_level`: a level name. `-tt`: `unknown value` when never set.
    LogLevel(Slot<T, Option<Level>>),
    /// `pm`: `static`, `dynamic` or `ondemand`.
    Pm(Slot<T, Option<Pm>>),
    /// A size in bytes with an optional `K`/`M`/`G` suffix (rfpm only, see
    /// [`parse_size`](crate::model::parse_size)). `-tt`: the bytes.
    Size(Slot<T, u64>),
    /// rfpm: a log format, `plain` (also spelt `text`: php-fpm's lines) or `json`,
    /// stored as `plain` or `json` (`invalid value (plain or json)`). `-tt`: the value.
    LogFormat(Slot<T, Option<String>>),
    /// `systemd_interval`: seconds as configured, -1 = unset; validation turns it into
    /// milliseconds, which `-tt` prints in whole seconds.
    SystemdInterval(Slot<T, i32>),
    /// `env[NAME] = value` (array): a value is required. `-tt`: one line per entry.
    Env(Slot<T, Vec<KeyValue>>),
    /// `php_value[k]`, `php_admin_value[k]` (array). `-tt`: one line per entry.
    Values(Slot<T, Vec<KeyValue>>),
    /// `php_flag[k]`, `php_admin_flag[k]` (array): a boolean stored as `"1"`/`"0"` in
    /// the list of the matching `*_value` directive, which dumps it.
    Flags(Slot<T, Vec<KeyValue>>),
    /// `access.suppress_path[]` (array without keys): absolute paths, the file's bytes.
    Paths(Slot<T, Vec<Bytes>>),
}

/// A directive's own constraint, checked during post-processing, with php-fpm's message
/// (prefixed with `[pool NAME] ` in a pool).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The value must be set and not empty.
    Required(Level, &'static str),
    /// The value must not be below the bound.
    AtLeast(i32, Level, &'static str),
    /// The value, when set, must lie in the range (inclusive).
    Range(i32, i32, Level, &'static str),
}

/// One directive: everything the program knows about it.
pub struct Directive<T: 'static> {
    /// The canonical name, as messages and `-tt` show it.
    pub name: &'static str,
    pub section: Section,
    /// Value type and field.
    pub kind: Kind<T>,
    /// The directive's own constraint.
    pub check: Option<Check>,
    /// Printed by `-tt` (php-fpm leaves out `apparmor_hat`).
    pub dumped: bool,
    /// `-tt` prints the directive only when this holds: rfpm's own directives, printed
    /// only when set, so that a php-fpm configuration dumps exactly as php-fpm dumps it.
    pub dump_if: Option<fn(&T) -> bool>,
    /// [`render`] writes the value only when this holds (a value validation filled in
    /// that would not load back).
    pub render_if: Option<fn(&T) -> bool>,
}

impl<T: 'static> Directive<T> {
    pub const fn new(name: &'static str, section: Section, kind: Kind<T>) -> Self {
        Directive {
            name,
            section,
            kind,
            check: None,
            dumped: true,
            dump_if: None,
            render_if: None,
        }
    }
    const fn check(mut self, c: Check) -> Self {
        self.check = Some(c);
        self
    }
    const fn undumped(mut self) -> Self {
        self.dumped = false;
        self
    }
    const fn render_if(mut self, f: fn(&T) -> bool) -> Self {
        self.render_if = Some(f);
        self
    }
    /// An rfpm-only directive: `-tt` prints it and [`render`] writes it only when `set`
    /// holds (php-fpm knows no such directive).
    const fn rfpm_only(mut self, set: fn(&T) -> bool) -> Self {
        self.dump_if = Some(set);
        self.render_if = Some(set);
        self
    }

    /// `name[key] = value` rather than `name = value`.
    pub fn is_array(&self) -> bool {
        matches!(
            self.kind,
            Kind::Env(_) | Kind::Values(_) | Kind::Flags(_) | Kind::Paths(_)
        )
    }

    /// Parses and stores a scalar value; the error is php-fpm's reason text.
    fn parse(&self, t: &mut T, raw: &[u8], pool: Option<&[u8]>) -> Result<(), &'static str> {
        if let Kind::Bytes(s) = &self.kind {
            *(s.set)(t) = Some(expand_pool_bytes(raw, pool)?);
            return Ok(());
        }
        if let Kind::Str(s) = &self.kind {
            let v = expand_pool_bytes(raw, pool)?;
            *(s.set)(t) = Some(rfpm_core::shown::Shown(&v).to_string());
            return Ok(());
        }
        // Every other kind is a number or a keyword: not UTF-8, it is refused anyway.
        let v = &*String::from_utf8_lossy(raw);
        match &self.kind {
            // Stored above, before the text conversion.
            Kind::Str(_) | Kind::Bytes(_) => {}
            Kind::Bool(s) => *(s.set)(t) = parse_bool(v)?,
            Kind::Int(s) => *(s.set)(t) = Count::new(parse_int(v)?),
            Kind::OptInt(s) => *(s.set)(t) = Some(Count::new(parse_int(v)?)),
            Kind::Signed(s) | Kind::Priority(s) => *(s.set)(t) = parse_int(v)?,
            Kind::Time(s) | Kind::TimeBare(s) => *(s.set)(t) = Secs::new(parse_time(v)?),
            Kind::Rlimit(s) => *(s.set)(t) = parse_rlimit(v)?,
            Kind::Facility(s) => *(s.set)(t) = parse_facility(v)?,
            Kind::LogLevel(s) => {
                *(s.set)(t) = Some(Level::parse(v).ok_or("invalid value for 'log_level'")?);
            }
            Kind::Pm(s) => *(s.set)(t) = Some(parse_pm(v)?),
            Kind::Size(s) => *(s.set)(t) = parse_size(v)?,
            Kind::LogFormat(s) => *(s.set)(t) = Some(parse_log_format(v)?.to_string()),
            Kind::SystemdInterval(s) => *(s.set)(t) = parse_time(v)?,
            Kind::Env(_) | Kind::Values(_) | Kind::Flags(_) | Kind::Paths(_) => {}
        }
        Ok(())
    }

    /// Stores one array entry; the error is the whole message after the location.
    fn parse_array(&self, t: &mut T, key: Bytes, value: Bytes, pool: &[u8]) -> Result<(), String> {
        let name = self.name;
        let (list, parsed) = match &self.kind {
            Kind::Paths(s) => {
                if !key.is_empty() {
                    return Err(format!("Keys provided to field '{name}' are ignored"));
                }
                if !value.starts_with(b"/") {
                    return Err(format!(
                        "Values provided to field '{name}' must begin with '/'"
                    ));
                }
                (s.set)(t).insert(0, value);
                return Ok(());
            }
            Kind::Env(s) => {
                if value.is_empty() {
                    return Err("empty value".into());
                }
                ((s.set)(t), expand_pool_bytes(&value, Some(pool)))
            }
            Kind::Values(s) => ((s.set)(t), expand_pool_bytes(&value, Some(pool))),
            Kind::Flags(s) => (
                (s.set)(t),
                parse_bool(&value.to_str_lossy()).map(|b| Bytes::from(if b { "1" } else { "0" })),
            ),
            _ => return Err(format!("unknown directive '{name}'")),
        };
        match parsed {
            Ok(value) => {
                // Newest first, as php-fpm keeps them (see `PoolConf`).
                list.insert(0, KeyValue { key, value });
                Ok(())
            }
            Err(e) => Err(format!("error while parsing '{name}[{key}]' : {e}")),
        }
    }

    /// The `-tt` lines of this directive (none, one, or one per array entry), as the
    /// bytes php-fpm prints.
    fn dump(&self, t: &T, o: &mut Vec<Vec<u8>>) {
        if !self.dumped || self.dump_if.is_some_and(|set| !set(t)) {
            return;
        }
        let name = self.name;
        let value = match &self.kind {
            Kind::Str(s) => {
                let v = rfpm_core::shown::unshow(s2s((s.get)(t)));
                o.push([b"\t", name.as_bytes(), b" = ", &v].concat());
                return;
            }
            Kind::Bytes(s) => {
                let v = (s.get)(t).as_deref().unwrap_or(b"undefined");
                o.push([b"\t", name.as_bytes(), b" = ", v].concat());
                return;
            }
            Kind::Bool(s) => yes_no(*(s.get)(t)).to_string(),
            Kind::Int(s) => (s.get)(t).configured().to_string(),
            Kind::OptInt(s) => match (s.get)(t) {
                Some(n) => n.configured().to_string(),
                None => return,
            },
            Kind::Signed(s) | Kind::Rlimit(s) | Kind::Facility(s) => (s.get)(t).to_string(),
            Kind::Time(s) => format!("{}s", (s.get)(t).configured()),
            Kind::TimeBare(s) => (s.get)(t).configured().to_string(),
            Kind::Priority(s) => match *(s.get)(t) {
                PRIORITY_UNSET => "undefined".to_string(),
                p => p.to_string(),
            },
            Kind::LogLevel(s) => (s.get)(t)
                .map_or("unknown value", Level::as_str)
                .to_string(),
            // `pm` is always set after validation.
            Kind::Pm(s) => (s.get)(t).map_or("dynamic", Pm::name).to_string(),
            Kind::Size(s) => (s.get)(t).to_string(),
            Kind::LogFormat(s) => s2s((s.get)(t)).to_string(),
            Kind::SystemdInterval(s) => format!("{}s", (s.get)(t) / 1000),
            Kind::Env(s) | Kind::Values(s) => {
                for kv in (s.get)(t) {
                    let (k, v) = (kv.key.as_bytes(), kv.value.as_bytes());
                    o.push([b"\t", name.as_bytes(), b"[", k, b"] = ", v].concat());
                }
                return;
            }
            // Dumped with the `*_value` list they share.
            Kind::Flags(_) => return,
            Kind::Paths(s) => {
                for p in (s.get)(t) {
                    o.push([b"\t", name.as_bytes(), b"[] = ", p].concat());
                }
                return;
            }
        };
        o.push(format!("\t{name} = {value}").into_bytes());
    }

    /// This directive's lines of a configuration file that loads back to `t`.
    fn render(&self, t: &T, o: &mut Vec<u8>) {
        if self.render_if.is_some_and(|f| !f(t)) {
            return;
        }
        let name = self.name;
        let b = |x: bool| if x { "1" } else { "" };
        match &self.kind {
            Kind::Str(s) => {
                if let Some(v) = (s.get)(t) {
                    line(o, name, &*rfpm_core::shown::unshow(v));
                }
            }
            Kind::Bytes(s) => {
                if let Some(v) = (s.get)(t) {
                    line(o, name, v);
                }
            }
            Kind::Bool(s) => line(o, name, b(*(s.get)(t))),
            Kind::Int(s) => line(o, name, &(s.get)(t).configured().to_string()),
            Kind::OptInt(s) => {
                if let Some(n) = (s.get)(t) {
                    line(o, name, &n.configured().to_string());
                }
            }
            Kind::Time(s) | Kind::TimeBare(s) => {
                line(o, name, &(s.get)(t).configured().to_string());
            }
            Kind::Signed(s) => line(o, name, &(s.get)(t).to_string()),
            Kind::Priority(s) => {
                if *(s.get)(t) != PRIORITY_UNSET {
                    line(o, name, &(s.get)(t).to_string());
                }
            }
            Kind::Rlimit(s) => match *(s.get)(t) {
                -1 => line(o, name, "unlimited"),
                n => line(o, name, &n.to_string()),
            },
            Kind::Facility(s) => {
                let f = *(s.get)(t);
                if let Some((n, _)) = SYSLOG_FACILITIES.iter().find(|(_, v)| *v == f) {
                    line(o, name, n);
                }
            }
            Kind::LogLevel(s) => {
                if let Some(l) = (s.get)(t) {
                    line(o, name, &l.as_str().to_ascii_lowercase());
                }
            }
            Kind::Pm(s) => {
                if let Some(pm) = (s.get)(t) {
                    line(o, name, pm.name());
                }
            }
            Kind::Size(s) => line(o, name, &(s.get)(t).to_string()),
            Kind::LogFormat(s) => {
                if let Some(v) = (s.get)(t) {
                    line(o, name, v);
                }
            }
            Kind::SystemdInterval(s) => {
                // Milliseconds after validation, except a value that was too small.
                let ms = *(s.get)(t);
                if ms >= 0 {
                    let secs = if ms >= 1000 || ms == 0 { ms / 1000 } else { ms };
                    line(o, name, &secs.to_string());
                }
            }
            Kind::Env(s) | Kind::Values(s) => {
                for kv in (s.get)(t).iter().rev() {
                    let mut key = format!("{name}[").into_bytes();
                    key.extend_from_slice(&quote(&kv.key));
                    key.push(b']');
                    line(o, &key, &kv.value);
                }
            }
            // Written as the `*_value` they are stored as.
            Kind::Flags(_) => {}
            Kind::Paths(s) => {
                for p in (s.get)(t).iter().rev() {
                    line(o, &format!("{name}[]"), p);
                }
            }
        }
    }

    /// This directive's own constraint: `Err` is (level, message).
    fn verify(&self, t: &T) -> Result<(), (Level, &'static str)> {
        let Some(check) = self.check else {
            return Ok(());
        };
        let ok = match (check, &self.kind) {
            (Check::Required(..), Kind::Str(s)) => {
                (s.get)(t).as_ref().is_some_and(|v| !v.is_empty())
            }
            (Check::Required(..), Kind::Bytes(s)) => {
                (s.get)(t).as_ref().is_some_and(|v| !v.is_empty())
            }
            (Check::Required(..), Kind::Pm(s)) => (s.get)(t).is_some(),
            (Check::AtLeast(min, ..), Kind::Int(s)) => (s.get)(t).configured() >= min,
            (Check::AtLeast(min, ..), Kind::OptInt(s)) => {
                (s.get)(t).is_none_or(|n| n.configured() >= min)
            }
            (Check::Range(lo, hi, ..), Kind::Priority(s)) => {
                let p = *(s.get)(t);
                p == PRIORITY_UNSET || (lo..=hi).contains(&p)
            }
            // A check that does not apply to the kind (a unit test rules it out).
            _ => true,
        };
        if ok {
            return Ok(());
        }
        match check {
            Check::Required(level, msg)
            | Check::AtLeast(_, level, msg)
            | Check::Range(_, _, level, msg) => Err((level, msg)),
        }
    }
}

/// A log format's value: `plain` (or `text`) or `json`, any case.
fn parse_log_format(v: &str) -> Result<&'static str, &'static str> {
    match v.to_ascii_lowercase().as_str() {
        "plain" | "text" => Ok("plain"),
        "json" => Ok("json"),
        _ => Err("invalid value (plain or json)"),
    }
}

fn s2s(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("undefined")
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// A double-quoted INI string of the bytes.
fn quote(v: &[u8]) -> Vec<u8> {
    let mut o = Vec::with_capacity(v.len() + 2);
    o.push(b'"');
    for &c in v {
        if matches!(c, b'"' | b'\\' | b'$') {
            o.push(b'\\');
        }
        o.push(c);
    }
    o.push(b'"');
    o
}

/// `name = "value"`, the value cut at the first newline or NUL (which php-fpm's
/// line-based format cannot hold).
fn line<N, V>(o: &mut Vec<u8>, name: &N, v: &V)
where
    N: AsRef<[u8]> + ?Sized,
    V: AsRef<[u8]> + ?Sized,
{
    let v = v.as_ref();
    let end = v
        .iter()
        .position(|c| matches!(c, b'\n' | b'\r' | 0))
        .unwrap_or(v.len());
    o.extend_from_slice(name.as_ref());
    o.extend_from_slice(b" = ");
    o.extend_from_slice(&quote(&v[..end]));
    o.push(b'\n');
}

/// Declares a section: its struct (extra fields, then one field per directive row) and its
/// table (one [`Directive`] per row, then the aliases that share a row's field). See the
/// module documentation.
macro_rules! section {
    (
        $(#[$smeta:meta])*
        pub struct $S:ident;
        $(#[$tmeta:meta])*
        pub const $TABLE:ident = $section:expr;
        fields {
            $( $(#[$emeta:meta])* $efield:ident : $ety:ty = $edef:expr; )*
        }
        directives {
            $(
                $(#[$dmeta:meta])*
                $field:ident : $ty:ty = $def:expr
                    => $name:literal, $kind:ident $(, $opt:ident $(($arg:expr))? )* ;
            )*
        }
        aliases {
            $( $aname:literal => $afield:ident, $akind:ident; )*
        }
    ) => {
        $(#[$smeta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $S {
            $( $(#[$emeta])* pub $efield: $ety, )*
            $( $(#[$dmeta])* #[doc = concat!("\n\n`", $name, "`")] pub $field: $ty, )*
        }

        impl $S {
            /// Every field at its default: php-fpm's values before the file is read.
            pub(crate) fn defaults() -> Self {
                $S {
                    $( $efield: $edef, )*
                    $( $field: $def, )*
                }
            }
        }

        $(#[$tmeta])*
        pub const $TABLE: &[Directive<$S>] = &[
            $(
                Directive::new(
                    $name,
                    $section,
                    Kind::$kind(Slot {
                        get: |s: &$S| &s.$field,
                        set: |s: &mut $S| &mut s.$field,
                    }),
                ) $( .$opt($($arg)?) )*,
            )*
            $(
                Directive::new(
                    $aname,
                    $section,
                    Kind::$akind(Slot {
                        get: |s: &$S| &s.$afield,
                        set: |s: &mut $S| &mut s.$afield,
                    }),
                )
                .undumped(),
            )*
        ];
    };
}

section! {
    /// The `[global]` section.
    pub struct GlobalConf;
    /// Every `[global]` directive, in `-tt` order.
    pub const GLOBAL = Section::Global;
    fields {
        /// Set by validation when systemd's `WATCHDOG_USEC` drives the interval.
        systemd_watchdog: bool = false;
    }
    directives {
        /// Absolute after validation; `None` = no pid file.
        pid: Option<Bytes> = None => "pid", Bytes;
        /// `syslog` = syslog; validation fills in `log/php-fpm.log` and makes it absolute.
        error_log: Option<Bytes> = None => "error_log", Bytes;
        /// Validation fills in `php-fpm`.
        syslog_ident: Option<Bytes> = None => "syslog.ident", Bytes;
        /// Numeric syslog facility; -1 = unset (validation fills in LOG_DAEMON = 24).
        syslog_facility: i32 = -1 => "syslog.facility", Facility;
        log_buffering: bool = true => "log_buffering", Bool;
        /// `None` = never set (effective level notice; `-tt` prints `unknown value`).
        log_level: Option<Level> = None => "log_level", LogLevel;
        /// Bytes.
        log_limit: Count = Count::new(1024) => "log_limit", Int,
            check(Check::AtLeast(512, Level::Error, "log_limit must be greater than 512"));
        /// rfpm: `json` writes every error log line (to a file or stderr) as one JSON
        /// object; `plain` (`None`) is php-fpm's lines.
        log_format: Option<String> = None => "log_format", LogFormat, rfpm_only(has_log_format);
        emergency_restart_interval: Secs = Secs::new(0) => "emergency_restart_interval", Time;
        emergency_restart_threshold: Count = Count::new(0) => "emergency_restart_threshold", Int;
        process_control_timeout: Secs = Secs::new(0) => "process_control_timeout", Time;
        process_max: Count = Count::new(0) => "process.max", Int,
            check(Check::AtLeast(0, Level::Error, "process_max can't be negative"));
        /// [`PRIORITY_UNSET`] (64) = unset.
        process_priority: i32 = PRIORITY_UNSET => "process.priority", Priority,
            check(Check::Range(-19, 20, Level::Error, "process.priority must be included into [-19,20]"));
        daemonize: bool = true => "daemonize", Bool;
        /// 0 = leave as is (a negative value is passed on as unlimited).
        rlimit_files: i32 = 0 => "rlimit_files", Signed;
        /// -1 = unlimited, 0 = leave as is.
        rlimit_core: i32 = 0 => "rlimit_core", Rlimit;
        /// As configured; after validation the selected mechanism's name.
        events_mechanism: Option<String> = None => "events.mechanism", Str;
        /// Seconds as configured; -1 = unset. After validation: milliseconds (php-fpm
        /// converts), read through [`GlobalConf::systemd_interval_ms`].
        systemd_interval: i32 = -1 => "systemd_interval", SystemdInterval;
        /// rfpm: SIGTERM drains like SIGQUIT (workers finish their request within
        /// `process_control_timeout`) instead of php-fpm's fast stop.
        shutdown_drain: bool = false => "shutdown.drain", Bool, rfpm_only(drains);
        /// rfpm: the admin listener's address (`listen`'s forms); `None` = no listener.
        admin_listen: Option<Bytes> = None => "admin.listen", Bytes, rfpm_only(has_admin);
        /// rfpm: owner, group and mode of the admin listener's Unix socket.
        admin_listen_owner: Option<Bytes> = None => "admin.listen.owner", Bytes,
            rfpm_only(has_admin_owner);
        admin_listen_group: Option<Bytes> = None => "admin.listen.group", Bytes,
            rfpm_only(has_admin_group);
        admin_listen_mode: Option<String> = None => "admin.listen.mode", Str,
            rfpm_only(has_admin_mode);
    }
    aliases {}
}

/// `log_format` is set (rfpm only).
fn has_log_format(g: &GlobalConf) -> bool {
    g.log_format.is_some()
}

/// `access.log_format` is set (rfpm only).
fn has_access_log_format(p: &PoolConf) -> bool {
    p.access_log_format.is_some()
}

/// `request_id.server_var` is set (rfpm only).
fn has_request_id_var(p: &PoolConf) -> bool {
    p.request_id_server_var.is_some()
}

/// `shutdown.drain` is set (rfpm only).
fn drains(g: &GlobalConf) -> bool {
    g.shutdown_drain
}

/// `admin.listen` and its socket's permissions are set (rfpm only).
fn has_admin(g: &GlobalConf) -> bool {
    g.admin_listen.is_some()
}
fn has_admin_owner(g: &GlobalConf) -> bool {
    g.admin_listen_owner.is_some()
}
fn has_admin_group(g: &GlobalConf) -> bool {
    g.admin_listen_group.is_some()
}
fn has_admin_mode(g: &GlobalConf) -> bool {
    g.admin_listen_mode.is_some()
}

/// `pm.max_requests_jitter` is set (rfpm only).
fn has_jitter(p: &PoolConf) -> bool {
    p.pm_max_requests_jitter.configured() != 0
}

/// `allow_pcntl` is set (rfpm only).
fn allows_pcntl(p: &PoolConf) -> bool {
    p.allow_pcntl
}

/// `worker.script` is set (rfpm only).
fn has_worker_script(p: &PoolConf) -> bool {
    p.worker_script.as_ref().is_some_and(|s| !s.is_empty())
}

/// `pm.max_memory` is set (rfpm only).
fn has_max_memory(p: &PoolConf) -> bool {
    p.pm_max_memory != 0
}

/// `request_read_timeout` is set (rfpm only).
fn has_read_timeout(p: &PoolConf) -> bool {
    p.request_read_timeout.configured() != 0
}

/// A pool has a slow log: `request_slowlog_trace_depth` may be set.
fn has_slowlog(p: &PoolConf) -> bool {
    p.slowlog.as_ref().is_some_and(|s| !s.is_empty())
}

section! {
    /// A pool section.
    ///
    /// Array directives (`env`, `php_value`/`php_flag`, `php_admin_value`/
    /// `php_admin_flag`) are stored exactly like php-fpm keeps them: newest
    /// definition first. Applying them in `Vec` order therefore lets the FIRST
    /// definition in the file win for a duplicated key (php-fpm's observable
    /// behaviour); admin values are applied after all plain values. Flags are
    /// stored as `"1"`/`"0"`.
    pub struct PoolConf;
    /// Every pool directive, in `-tt` order, then `php_flag` and `php_admin_flag` (which
    /// share the lists of `php_value` and `php_admin_value`).
    pub const POOL = Section::Pool;
    fields {
        /// The section's name as the file holds it (bytes: php-fpm shows them raw).
        name: Bytes = Bytes::default();
        /// Hidden `<pool>_status` pool created for `pm.status_listen` (§9.4); not dumped.
        hidden: bool = false;
        /// For a hidden status pool: index (in `Config::pools`) of the pool whose status it shows.
        shared: Option<usize> = None;
    }
    directives {
        prefix: Option<Bytes> = None => "prefix", Bytes;
        user: Option<Bytes> = None => "user", Bytes;
        group: Option<Bytes> = None => "group", Bytes;
        listen: Option<Bytes> = None => "listen", Bytes,
            check(Check::Required(Level::Alert, "no listen address have been defined!"));
        listen_backlog: i32 = BACKLOG_DEFAULT => "listen.backlog", Signed;
        listen_acl_users: Option<Bytes> = None => "listen.acl_users", Bytes;
        listen_acl_groups: Option<Bytes> = None => "listen.acl_groups", Bytes;
        listen_owner: Option<Bytes> = None => "listen.owner", Bytes;
        listen_group: Option<Bytes> = None => "listen.group", Bytes;
        /// Octal string as configured (`None` = 0660 at socket creation).
        listen_mode: Option<String> = None => "listen.mode", Str;
        listen_allowed_clients: Option<Bytes> = None => "listen.allowed_clients", Bytes;
        /// [`PRIORITY_UNSET`] (64) = unset.
        process_priority: i32 = PRIORITY_UNSET => "process.priority", Priority,
            check(Check::Range(-19, 20, Level::Error, "process.priority must be included into [-19,20]"));
        process_dumpable: bool = false => "process.dumpable", Bool;
        pm: Option<Pm> = None => "pm", Pm,
            check(Check::Required(Level::Alert, "the process manager is missing (static, dynamic or ondemand)"));
        pm_max_children: Count = Count::new(0) => "pm.max_children", Int,
            check(Check::AtLeast(1, Level::Alert, "pm.max_children must be a positive value"));
        /// Validation fills it in for `dynamic` and zeroes it for `ondemand`.
        pm_start_servers: Count = Count::new(0) => "pm.start_servers", Int;
        pm_min_spare_servers: Count = Count::new(0) => "pm.min_spare_servers", Int;
        pm_max_spare_servers: Count = Count::new(0) => "pm.max_spare_servers", Int;
        pm_max_spawn_rate: Count = Count::new(32) => "pm.max_spawn_rate", Int;
        pm_process_idle_timeout: Secs = Secs::new(10) => "pm.process_idle_timeout", TimeBare;
        pm_max_requests: Count = Count::new(0) => "pm.max_requests", Int;
        /// rfpm: each worker's request limit is `pm.max_requests` plus a random 0..=N
        /// chosen at its start.
        pm_max_requests_jitter: Count = Count::new(0) => "pm.max_requests_jitter", Int,
            check(Check::AtLeast(0, Level::Error, "pm.max_requests_jitter can't be negative")),
            rfpm_only(has_jitter);
        /// rfpm: bytes of resident memory above which a worker is recycled; 0 = off.
        pm_max_memory: u64 = 0 => "pm.max_memory", Size, rfpm_only(has_max_memory);
        /// Validation fills in `/` for a pool with `pm.status_listen`.
        pm_status_path: Option<Bytes> = None => "pm.status_path", Bytes;
        pm_status_listen: Option<Bytes> = None => "pm.status_listen", Bytes;
        ping_path: Option<Bytes> = None => "ping.path", Bytes;
        /// Validation fills in `pong` when `ping.path` is set, and clears it otherwise.
        ping_response: Option<Bytes> = None => "ping.response", Bytes;
        access_log: Option<Bytes> = None => "access.log", Bytes;
        /// Validation fills in [`DEFAULT_ACCESS_FORMAT`](crate::model::DEFAULT_ACCESS_FORMAT)
        /// when `access.log` is set.
        access_format: Option<Bytes> = None => "access.format", Bytes;
        /// rfpm: `json` writes one JSON object per request instead of `access.format`'s
        /// line; `plain` (`None`) is `access.format`.
        access_log_format: Option<String> = None => "access.log_format", LogFormat,
            rfpm_only(has_access_log_format);
        /// `access.suppress_path[]`, in php-fpm's (dump) order.
        access_suppress_path: Vec<Bytes> = Vec::new() => "access.suppress_path", Paths;
        slowlog: Option<Bytes> = None => "slowlog", Bytes;
        request_slowlog_timeout: Secs = Secs::new(0) => "request_slowlog_timeout", Time;
        /// Validation fills in 20 when unset (0).
        request_slowlog_trace_depth: Count = Count::new(0) => "request_slowlog_trace_depth", Int,
            render_if(has_slowlog);
        request_terminate_timeout: Secs = Secs::new(0) => "request_terminate_timeout", Time;
        request_terminate_timeout_track_finished: bool = false
            => "request_terminate_timeout_track_finished", Bool;
        /// rfpm only: a connection must deliver a request's params (and the body PHP
        /// reads before the script starts) within this time, else it is closed; 0: off.
        request_read_timeout: Secs = Secs::new(0) => "request_read_timeout", Time,
            rfpm_only(has_read_timeout);
        /// 0 = inherit (a negative value is passed on as unlimited).
        rlimit_files: i32 = 0 => "rlimit_files", Signed;
        /// -1 = unlimited, 0 = inherit.
        rlimit_core: i32 = 0 => "rlimit_core", Rlimit;
        chroot: Option<Bytes> = None => "chroot", Bytes;
        chdir: Option<Bytes> = None => "chdir", Bytes;
        catch_workers_output: bool = false => "catch_workers_output", Bool;
        decorate_workers_output: bool = true => "decorate_workers_output", Bool;
        clear_env: bool = true => "clear_env", Bool;
        /// Validation fills in [`DEFAULT_LIMIT_EXTENSIONS`](crate::model::DEFAULT_LIMIT_EXTENSIONS).
        security_limit_extensions: Option<Bytes> = None => "security.limit_extensions", Bytes;
        /// php-fpm does not print it in `-tt`.
        apparmor_hat: Option<Bytes> = None => "apparmor_hat", Bytes, undumped;
        /// `env[K] = V`, newest first; values before `$VAR` lookup (see [`PoolConf::worker_env`]).
        env: Vec<KeyValue> = Vec::new() => "env", Env;
        /// `php_value` and `php_flag`, newest first.
        php_values: Vec<KeyValue> = Vec::new() => "php_value", Values;
        /// `php_admin_value` and `php_admin_flag`, newest first.
        php_admin_values: Vec<KeyValue> = Vec::new() => "php_admin_value", Values;
        /// rfpm only: the bound on a request's FastCGI params, bytes (`None`: the
        /// FastCGI server's built-in 16 MiB).
        request_max_params_size: Option<Count> = None => "request.max_params_size", OptInt,
            check(Check::AtLeast(1, Level::Alert, "request.max_params_size must be a positive value"));
        /// rfpm only: the pool's scripts see the pcntl extension (`pcntl_fork()`, …),
        /// which libphp8.2 has and php-fpm8.2 has not; hidden by default.
        allow_pcntl: bool = false => "allow_pcntl", Bool, rfpm_only(allows_pcntl);
        /// rfpm only: the `$_SERVER` entry (a param of this name) that receives the
        /// request's id; `None`: `$_SERVER` is php-fpm's.
        request_id_server_var: Option<Bytes> = None => "request_id.server_var", Bytes,
            rfpm_only(has_request_id_var);
        /// rfpm only: worker mode. Each worker runs this PHP script once (it boots the
        /// application) and serves every request of the pool through its
        /// `frankenphp_handle_request()` calls.
        worker_script: Option<Bytes> = None => "worker.script", Bytes, rfpm_only(has_worker_script);
    }
    aliases {
        "php_flag" => php_values, Flags;
        "php_admin_flag" => php_admin_values, Flags;
    }
}

impl Default for GlobalConf {
    fn default() -> Self {
        GlobalConf::defaults()
    }
}

impl GlobalConf {
    /// The systemd notification interval after validation, in milliseconds (0 = none).
    pub fn systemd_interval_ms(&self) -> u64 {
        u64::try_from(self.systemd_interval).unwrap_or(0)
    }
}

impl PoolConf {
    /// A pool as php-fpm creates it for a new section: every directive at its default.
    pub fn new(name: &[u8]) -> Self {
        PoolConf {
            name: Bytes::from(name),
            ..PoolConf::defaults()
        }
    }
}

/// Outcome of setting one scalar directive.
pub(crate) enum SetResult {
    Ok,
    Unknown,
    /// (canonical directive name, reason)
    Err(&'static str, &'static str),
}

/// `name = value` in a section: `pool` is the pool's name (`None` in `[global]`), for
/// `$pool`. Scalar names are matched case-insensitively.
pub(crate) fn set<T>(
    table: &[Directive<T>],
    t: &mut T,
    name: &str,
    v: impl AsRef<[u8]>,
    pool: Option<&[u8]>,
) -> SetResult {
    let Some(d) = table
        .iter()
        .find(|d| !d.is_array() && d.name.eq_ignore_ascii_case(name))
    else {
        return SetResult::Unknown;
    };
    match d.parse(t, v.as_ref(), pool) {
        Ok(()) => SetResult::Ok,
        Err(reason) => SetResult::Err(d.name, reason),
    }
}

/// Does `name[…]` need a key? (Unknown names do; `access.suppress_path[]` does not.)
pub(crate) fn array_needs_key(name: &str) -> bool {
    !POOL
        .iter()
        .any(|d| d.name == name && matches!(d.kind, Kind::Paths(_)))
}

/// `name[key] = value` in a pool (array names are matched exactly). The error is the
/// message after the location.
pub(crate) fn set_array(
    p: &mut PoolConf,
    name: &str,
    key: Bytes,
    value: Bytes,
) -> Result<(), String> {
    let Some(d) = POOL.iter().find(|d| d.is_array() && d.name == name) else {
        return Err(format!("unknown directive '{name}'"));
    };
    let pool = p.name.clone();
    d.parse_array(p, key, value, &pool)
}

/// The table's own checks of one section, in table order; the first that fails gives
/// php-fpm's (level, message).
pub(crate) fn check<T>(table: &[Directive<T>], t: &T) -> Result<(), (Level, &'static str)> {
    table.iter().try_for_each(|d| d.verify(t))
}

/// The `-tt` dump (§2.9): one NOTICE text per element, without the final
/// "test is successful" line, shown lossily (see [`dump_bytes`] for what php-fpm
/// prints). Call it on a validated configuration.
pub fn dump(cfg: &Config) -> Vec<String> {
    dump_bytes(cfg)
        .into_iter()
        .map(|l| String::from_utf8_lossy(&l).into_owned())
        .collect()
}

/// The `-tt` dump as php-fpm prints it: values that are not UTF-8 (a Latin-1 path)
/// byte for byte.
pub fn dump_bytes(cfg: &Config) -> Vec<Vec<u8>> {
    let mut o = vec![b"[global]".to_vec()];
    for d in GLOBAL {
        d.dump(&cfg.global, &mut o);
    }
    o.push(b" ".to_vec());
    for p in cfg.pools.iter().filter(|p| !p.hidden) {
        o.push([b"[", p.name.as_bytes(), b"]"].concat());
        for d in POOL {
            d.dump(p, &mut o);
        }
        o.push(b" ".to_vec());
    }
    o
}

/// Write a configuration file that loads back (through [`crate::load`] and
/// [`crate::validate`]) to the same configuration: every set directive,
/// double-quoted, array entries in file order, hidden status pools left out
/// (validation recreates them). Values containing a newline or NUL cannot be
/// represented in php-fpm's line-based format and are written truncated.
pub fn render(cfg: &Config) -> Vec<u8> {
    let mut o = b"[global]\n".to_vec();
    for d in GLOBAL {
        d.render(&cfg.global, &mut o);
    }
    for p in cfg.pools.iter().filter(|p| !p.hidden) {
        o.extend_from_slice(&[b"[", p.name.as_bytes(), b"]\n"].concat());
        for d in POOL {
            d.render(p, &mut o);
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{load_str, validate, AcceptAllSys, LoadOptions};

    fn opts() -> LoadOptions {
        LoadOptions {
            env: Box::new(|_| None),
            ..LoadOptions::default()
        }
    }

    /// Loads and validates `text` (no effects: every path exists, every log opens).
    fn validated(text: &str) -> Config {
        let o = opts();
        let mut loaded = match load_str("t.conf", text.as_bytes(), &o) {
            Ok(l) => l,
            Err(f) => panic!("load: {:?}", f.diags),
        };
        if let Err(f) = validate(&mut loaded.config, &AcceptAllSys, &o) {
            panic!("validate: {:?}", f.diags);
        }
        loaded.config
    }

    const MINIMAL: &str = "[global]\nerror_log = /tmp/m.log\n[www]\nlisten = /tmp/m.sock\npm = static\npm.max_children = 1\n";

    /// `php-fpm8.2 -n -tt -R` on [`MINIMAL`] (without the timestamps and `NOTICE: `).
    const PHP_FPM_TT_MINIMAL: &str = "[global]
\tpid = undefined
\terror_log = /tmp/m.log
\tsyslog.ident = php-fpm
\tsyslog.facility = 24
\tlog_buffering = yes
\tlog_level = unknown value
\tlog_limit = 1024
\temergency_restart_interval = 0s
\temergency_restart_threshold = 0
\tprocess_control_timeout = 0s
\tprocess.max = 0
\tprocess.priority = undefined
\tdaemonize = yes
\trlimit_files = 0
\trlimit_core = 0
\tevents.mechanism = epoll
\tsystemd_interval = 10s
 
[www]
\tprefix = undefined
\tuser = undefined
\tgroup = undefined
\tlisten = /tmp/m.sock
\tlisten.backlog = -1
\tlisten.acl_users = undefined
\tlisten.acl_groups = undefined
\tlisten.owner = undefined
\tlisten.group = undefined
\tlisten.mode = undefined
\tlisten.allowed_clients = undefined
\tprocess.priority = undefined
\tprocess.dumpable = no
\tpm = static
\tpm.max_children = 1
\tpm.start_servers = 0
\tpm.min_spare_servers = 0
\tpm.max_spare_servers = 0
\tpm.max_spawn_rate = 32
\tpm.process_idle_timeout = 10
\tpm.max_requests = 0
\tpm.status_path = undefined
\tpm.status_listen = undefined
\tping.path = undefined
\tping.response = undefined
\taccess.log = undefined
\taccess.format = undefined
\tslowlog = undefined
\trequest_slowlog_timeout = 0s
\trequest_slowlog_trace_depth = 20
\trequest_terminate_timeout = 0s
\trequest_terminate_timeout_track_finished = no
\trlimit_files = 0
\trlimit_core = 0
\tchroot = undefined
\tchdir = undefined
\tcatch_workers_output = no
\tdecorate_workers_output = yes
\tclear_env = yes
\tsecurity.limit_extensions = .php .phar
 ";

    #[test]
    fn defaults_match_what_php_fpm_prints_for_an_empty_pool() {
        let got = dump(&validated(MINIMAL));
        let want: Vec<&str> = PHP_FPM_TT_MINIMAL.lines().collect();
        assert_eq!(got, want);
    }

    /// rfpm's own directives: absent from `-tt` at their defaults (so a php-fpm
    /// configuration dumps as php-fpm dumps it), printed when set, in bytes for a size.
    #[test]
    fn rfpm_only_directives_print_only_when_set() {
        let rfpm_only: Vec<&str> = GLOBAL
            .iter()
            .filter(|d| d.dump_if.is_some())
            .map(|d| d.name)
            .chain(POOL.iter().filter(|d| d.dump_if.is_some()).map(|d| d.name))
            .collect();
        assert_eq!(
            rfpm_only,
            [
                "log_format",
                "shutdown.drain",
                "admin.listen",
                "admin.listen.owner",
                "admin.listen.group",
                "admin.listen.mode",
                "pm.max_requests_jitter",
                "pm.max_memory",
                "access.log_format",
                "request_read_timeout",
                "allow_pcntl",
                "request_id.server_var",
                "worker.script"
            ]
        );
        let cfg = validated(&format!(
            "{MINIMAL}pm.max_requests = 500\npm.max_requests_jitter = 50\npm.max_memory = 128M\n"
        ));
        let d = dump(&cfg);
        let at = |l: &str| d.iter().position(|x| x == l);
        assert_eq!(
            at("\tpm.max_requests_jitter = 50"),
            at("\tpm.max_requests = 500").map(|i| i + 1)
        );
        assert_eq!(
            at("\tpm.max_memory = 134217728"),
            at("\tpm.max_requests = 500").map(|i| i + 2)
        );
        assert!(at("\tshutdown.drain = no").is_none());
        let cfg = validated(&format!("{MINIMAL}request_read_timeout = 1m\n"));
        assert!(dump(&cfg)
            .iter()
            .any(|l| l == "\trequest_read_timeout = 60s"));
        let cfg = validated(&MINIMAL.replace("[www]", "shutdown.drain = yes\n[www]"));
        assert!(dump(&cfg).iter().any(|l| l == "\tshutdown.drain = yes"));
        let cfg = validated(&format!("{MINIMAL}allow_pcntl = yes\n"));
        let d = dump(&cfg);
        let at = |l: &str| d.iter().position(|x| x == l);
        // Last of the pool's directives (with no env or php values set, after security.limit_extensions).
        assert_eq!(
            at("\tallow_pcntl = yes"),
            at("\tsecurity.limit_extensions = .php .phar").map(|i| i + 1)
        );
        // Set to their defaults they are as good as unset.
        let cfg = validated(&format!(
            "{MINIMAL}pm.max_requests_jitter = 0\npm.max_memory = 0\nallow_pcntl = no\n"
        ));
        let want: Vec<&str> = PHP_FPM_TT_MINIMAL.lines().collect();
        assert_eq!(dump(&cfg), want);
    }

    #[test]
    fn rfpm_only_values_are_checked() {
        let mut p = PoolConf::new(b"www");
        assert!(matches!(
            set(POOL, &mut p, "pm.max_memory", "1.5G", Some(b"www")),
            SetResult::Err("pm.max_memory", crate::model::ERR_SIZE)
        ));
        assert!(matches!(
            set(POOL, &mut p, "pm.max_memory", "64MB", Some(b"www")),
            SetResult::Err("pm.max_memory", crate::model::ERR_SIZE_SUFFIX)
        ));
        assert!(matches!(
            set(POOL, &mut p, "pm.max_requests_jitter", "many", Some(b"www")),
            SetResult::Err("pm.max_requests_jitter", crate::model::ERR_NUMBER)
        ));
        let mut g = GlobalConf::default();
        assert!(matches!(
            set(GLOBAL, &mut g, "shutdown.drain", "maybe", None),
            SetResult::Err("shutdown.drain", crate::model::ERR_BOOL)
        ));
        p.listen = Some("/s".into());
        p.pm = Some(Pm::Static);
        p.pm_max_children = Count::new(1);
        p.pm_max_requests_jitter = Count::new(-1);
        assert_eq!(
            check(POOL, &p),
            Err((Level::Error, "pm.max_requests_jitter can't be negative"))
        );
    }

    #[test]
    fn names_are_unique_and_sections_match_their_table() {
        fn unique<T>(table: &[Directive<T>], section: Section) {
            for (i, d) in table.iter().enumerate() {
                assert_eq!(d.section, section, "{}", d.name);
                for e in &table[i + 1..] {
                    assert!(
                        !d.name.eq_ignore_ascii_case(e.name),
                        "{} twice in {section:?}",
                        d.name
                    );
                }
            }
        }
        unique(GLOBAL, Section::Global);
        unique(POOL, Section::Pool);
        assert!(
            GLOBAL.iter().all(|d| !d.is_array()),
            "no arrays in [global]"
        );
    }

    /// Every directive has its place in the `-tt` dump (the table's order), except the
    /// ones php-fpm does not print.
    #[test]
    fn every_directive_has_a_dump_position() {
        let undumped: Vec<&str> = GLOBAL
            .iter()
            .map(|d| (d.name, d.dumped))
            .chain(POOL.iter().map(|d| (d.name, d.dumped)))
            .filter(|(_, dumped)| !dumped)
            .map(|(n, _)| n)
            .collect();
        assert_eq!(undumped, ["apparmor_hat", "php_flag", "php_admin_flag"]);

        // One entry in every array: each dumped directive prints at its place.
        // And every rfpm-only directive set, so that it prints.
        let cfg = validated(&format!(
            "{}env[A] = 1\nphp_value[b] = 2\nphp_flag[c] = on\n\
             php_admin_value[d] = 3\nphp_admin_flag[e] = off\naccess.suppress_path[] = /x\n\
             pm.max_requests_jitter = 3\npm.max_memory = 1M\nrequest.max_params_size = 65536\n\
             request_read_timeout = 5s\nallow_pcntl = yes\naccess.log_format = json\n\
             request_id.server_var = REQUEST_ID\nworker.script = /w.php\n",
            MINIMAL.replace(
                "[www]",
                "shutdown.drain = yes\nlog_format = json\nadmin.listen = 127.0.0.1:9100\n\
                 admin.listen.owner = 0\nadmin.listen.group = 0\nadmin.listen.mode = 0600\n[www]"
            )
        ));
        let printed: Vec<String> = dump(&cfg)
            .iter()
            .filter_map(|l| l.strip_prefix('\t'))
            .map(|l| l.split([' ', '[']).next().unwrap_or_default().to_string())
            .collect();
        let mut want: Vec<&str> = GLOBAL.iter().filter(|d| d.dumped).map(|d| d.name).collect();
        for d in POOL.iter().filter(|d| d.dumped) {
            // The flags print in the list of the value directive they share.
            let n = if d.name.starts_with("php_") { 2 } else { 1 };
            want.extend(std::iter::repeat_n(d.name, n));
        }
        assert_eq!(printed, want);
    }

    #[test]
    fn checks_apply_to_their_kind() {
        fn applies<T>(table: &[Directive<T>]) {
            for d in table {
                let ok = matches!(
                    (d.check, &d.kind),
                    (None, _)
                        | (
                            Some(Check::Required(..)),
                            Kind::Str(_) | Kind::Bytes(_) | Kind::Pm(_)
                        )
                        | (Some(Check::AtLeast(..)), Kind::Int(_) | Kind::OptInt(_))
                        | (Some(Check::Range(..)), Kind::Priority(_))
                );
                assert!(ok, "{}: check does not apply to its kind", d.name);
            }
        }
        applies(GLOBAL);
        applies(POOL);
    }

    /// A valid value of each kind sets every scalar directive, its name in any case.
    #[test]
    fn every_scalar_parses_by_name_in_any_case() {
        fn sample<T>(k: &Kind<T>) -> &'static str {
            match k {
                Kind::Str(_) | Kind::Bytes(_) => "/x",
                Kind::Bool(_) => "yes",
                Kind::Int(_)
                | Kind::OptInt(_)
                | Kind::Signed(_)
                | Kind::Priority(_)
                | Kind::Rlimit(_) => "5",
                Kind::Time(_) | Kind::TimeBare(_) | Kind::SystemdInterval(_) => "2m",
                Kind::Facility(_) => "local0",
                Kind::LogLevel(_) => "warn",
                Kind::Pm(_) => "ondemand",
                Kind::Size(_) => "2M",
                Kind::LogFormat(_) => "JSON",
                Kind::Env(_) | Kind::Values(_) | Kind::Flags(_) | Kind::Paths(_) => "",
            }
        }
        fn all<T>(table: &[Directive<T>], t: &mut T, pool: Option<&[u8]>) {
            for d in table.iter().filter(|d| !d.is_array()) {
                let upper = d.name.to_ascii_uppercase();
                let r = set(table, t, &upper, sample(&d.kind), pool);
                assert!(matches!(r, SetResult::Ok), "{}", d.name);
            }
        }
        let mut g = GlobalConf::default();
        all(GLOBAL, &mut g, None);
        assert_eq!(g.process_control_timeout.get(), 120);
        assert_eq!(g.log_level, Some(Level::Warning));
        let mut p = PoolConf::new(b"www");
        all(POOL, &mut p, Some(b"www"));
        assert_eq!((p.pm_max_children.get(), p.pm), (5, Some(Pm::Ondemand)));
        assert!(matches!(
            set(POOL, &mut p, "env", "x", Some(b"www")),
            SetResult::Unknown
        ));
    }

    #[test]
    fn errors_name_the_canonical_directive() {
        let mut p = PoolConf::new(b"www");
        let r = set(POOL, &mut p, "PM.Max_Children", "ten", Some(b"www"));
        assert!(matches!(
            r,
            SetResult::Err("pm.max_children", crate::model::ERR_NUMBER)
        ));
        let mut g = GlobalConf::default();
        let r = set(GLOBAL, &mut g, "pid", "/run/$pool.pid", None);
        assert!(matches!(
            r,
            SetResult::Err("pid", "Can't use '$pool' when the pool is not defined")
        ));
    }

    /// rfpm's own `request.max_params_size`: `-tt` prints it only when set (a php-fpm
    /// configuration dumps as with php-fpm), `-t` refuses a value that is not positive.
    #[test]
    fn max_params_size_dumps_only_when_set_and_must_be_positive() {
        let name = "request.max_params_size";
        let unset = validated(MINIMAL);
        assert_eq!(unset.pools[0].request_max_params_size, None);
        assert!(!dump(&unset).iter().any(|l| l.contains(name)));
        let rendered = |c: &Config| String::from_utf8_lossy(&render(c)).into_owned();
        assert!(!rendered(&unset).contains(name));
        let set_ = validated(&format!(
            "{MINIMAL}{name} = 20000000
"
        ));
        let got = set_.pools[0].request_max_params_size.map(Count::get);
        assert_eq!(got, Some(20_000_000));
        assert!(dump(&set_)
            .iter()
            .any(|l| l == "\trequest.max_params_size = 20000000"));
        assert!(rendered(&set_).contains("request.max_params_size = \"20000000\"\n"));
        let mut p = set_.pools[0].clone();
        p.request_max_params_size = Some(Count::new(0));
        let msg = "request.max_params_size must be a positive value";
        assert_eq!(check(POOL, &p), Err((Level::Alert, msg)));
        let r = set(POOL, &mut p, name, "16M", Some(b"www"));
        assert!(matches!(r, SetResult::Err(_, crate::model::ERR_NUMBER)));
    }

    /// rfpm's log formats: `plain` (or `text`) and `json` in any case, `-tt` prints them
    /// only when set, anything else is refused while parsing.
    #[test]
    fn log_formats() {
        let unset = validated(MINIMAL);
        assert_eq!(unset.global.log_format, None);
        assert!(!dump(&unset).iter().any(|l| l.contains("log_format")));
        let cfg = validated(&format!(
            "{}access.log = /dev/null\naccess.log_format = JSON\n",
            MINIMAL.replace("[www]", "log_format = Text\n[www]")
        ));
        assert_eq!(cfg.global.log_format.as_deref(), Some("plain"));
        assert_eq!(cfg.pools[0].access_log_format.as_deref(), Some("json"));
        let d = dump(&cfg);
        let at = |l: &str| d.iter().position(|x| x == l);
        assert_eq!(
            at("	log_format = plain"),
            at("	log_limit = 1024").map(|i| i + 1)
        );
        assert_eq!(
            at("	access.log_format = json"),
            at(&format!(
                "\taccess.format = {}",
                crate::model::DEFAULT_ACCESS_FORMAT
            ))
            .map(|i| i + 1)
        );
        let rendered = String::from_utf8_lossy(&render(&cfg)).into_owned();
        assert!(rendered.contains("access.log_format = \"json\"\n"));
        let mut g = GlobalConf::default();
        assert!(matches!(
            set(GLOBAL, &mut g, "log_format", "yaml", None),
            SetResult::Err("log_format", "invalid value (plain or json)")
        ));
    }

    /// php-fpm keeps a negative count as configured and prints it; the program reads 0.
    #[test]
    fn negative_values_dump_as_configured_and_read_as_zero() {
        let cfg = validated(&format!(
            "{MINIMAL}pm.max_requests = -7\nrequest_terminate_timeout = -2m\n"
        ));
        let p = &cfg.pools[0];
        assert_eq!(
            (p.pm_max_requests.get(), p.request_terminate_timeout.get()),
            (0, 0)
        );
        let d = dump(&cfg);
        assert!(d.iter().any(|l| l == "\tpm.max_requests = -7"));
        assert!(d.iter().any(|l| l == "\trequest_terminate_timeout = -120s"));
    }

    #[test]
    fn table_checks_fail_with_php_fpm_messages_in_order() {
        let mut p = PoolConf::new(b"www");
        p.process_priority = 30;
        // listen comes first in the table, then process.priority, pm, pm.max_children.
        assert_eq!(
            check(POOL, &p),
            Err((Level::Alert, "no listen address have been defined!"))
        );
        p.listen = Some("/s".into());
        assert_eq!(
            check(POOL, &p),
            Err((
                Level::Error,
                "process.priority must be included into [-19,20]"
            ))
        );
        p.process_priority = PRIORITY_UNSET;
        p.pm = Some(Pm::Static);
        assert_eq!(
            check(POOL, &p),
            Err((Level::Alert, "pm.max_children must be a positive value"))
        );
        let g = GlobalConf {
            log_limit: Count::new(511),
            ..GlobalConf::default()
        };
        assert_eq!(
            check(GLOBAL, &g),
            Err((Level::Error, "log_limit must be greater than 512"))
        );
    }
}
