//! The configuration's types: [`Config`], the value types of directives ([`Count`],
//! [`Secs`], [`Pm`], [`KeyValue`]), php-fpm's value parsers with their error texts, and
//! helpers over a pool. The section structs [`GlobalConf`] and [`PoolConf`] and their
//! directives are declared in [`crate::directives`].

pub use crate::bytes::Bytes;
pub use crate::directives::{dump, render, GlobalConf, PoolConf};
use crate::ini::atoi;

/// Marker php-fpm uses internally for an unset `process.priority`.
pub const PRIORITY_UNSET: i32 = 64;
/// php-fpm's default `listen.backlog` on Linux.
pub const BACKLOG_DEFAULT: i32 = -1;
/// Default `access.format` (the access line's formatter owns it).
pub const DEFAULT_ACCESS_FORMAT: &str = rfpm_core::access::DEFAULT_FORMAT;
/// Default `security.limit_extensions`.
pub const DEFAULT_LIMIT_EXTENSIONS: &str = ".php .phar";

/// Process manager style (the one type the process manager also decides with).
pub use rfpm_core::pm::Pm;

/// Syslog facilities by name and numeric value (Linux).
pub const SYSLOG_FACILITIES: &[(&str, i32)] = &[
    ("AUTH", 4 << 3),
    ("AUTHPRIV", 10 << 3),
    ("CRON", 9 << 3),
    ("DAEMON", 3 << 3),
    ("FTP", 11 << 3),
    ("KERN", 0),
    ("LOCAL0", 16 << 3),
    ("LOCAL1", 17 << 3),
    ("LOCAL2", 18 << 3),
    ("LOCAL3", 19 << 3),
    ("LOCAL4", 20 << 3),
    ("LOCAL5", 21 << 3),
    ("LOCAL6", 22 << 3),
    ("LOCAL7", 23 << 3),
    ("LPR", 6 << 3),
    ("MAIL", 2 << 3),
    ("NEWS", 7 << 3),
    ("SYSLOG", 5 << 3),
    ("USER", 1 << 3),
    ("UUCP", 8 << 3),
];

/// Event mechanisms compiled into Debian's php-fpm 8.2, in auto-selection order.
pub const EVENT_MECHANISMS: &[&str] = &["epoll", "poll", "select"];

/// An integer directive that counts something (children, requests, bytes), held as
/// php-fpm holds it: a C `int` as configured, which may be negative (`-tt` prints
/// `pm.max_requests = -7` when the file says so). The program reads [`Count::get`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Count(i32);

impl Count {
    pub const fn new(configured: i32) -> Self {
        Count(configured)
    }
    /// The value in effect: never negative (a negative count acts as 0 in php-fpm).
    pub fn get(self) -> usize {
        usize::try_from(self.0).unwrap_or(0)
    }
    /// The value as configured (messages, `-tt`).
    pub fn configured(self) -> i32 {
        self.0
    }
}

/// A time directive in seconds (`10s`, `2m`, `1h`, `1d`), held as php-fpm holds it: a C
/// `int` as configured, which may be negative (`-tt` prints it so). The program reads
/// [`Secs::get`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Secs(i32);

impl Secs {
    pub const fn new(configured: i32) -> Self {
        Secs(configured)
    }
    /// The seconds in effect: never negative (a negative time acts as 0 in php-fpm).
    pub fn get(self) -> u64 {
        u64::try_from(self.0).unwrap_or(0)
    }
    /// The value as configured (messages, `-tt`).
    pub fn configured(self) -> i32 {
        self.0
    }
}

/// One `key = value` of an array directive: both the file's bytes (an environment
/// variable, a PHP INI setting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: Bytes,
    pub value: Bytes,
}

impl PoolConf {
    /// Effective worker environment additions in application order (the first
    /// definition of a name in the file wins), with `$NAME` values looked up
    /// in the master environment (missing → empty). Names and values are bytes, the
    /// file's and the master environment's.
    pub fn worker_env(&self, master_env: &dyn Fn(&[u8]) -> Option<Vec<u8>>) -> Vec<(Bytes, Bytes)> {
        let mut out: Vec<(Bytes, Bytes)> = Vec::new();
        for kv in self.env.iter().rev() {
            if out.iter().any(|(k, _)| *k == kv.key) {
                continue;
            }
            let v = match kv.value.strip_prefix(b"$") {
                Some(name) => Bytes::from(master_env(name).unwrap_or_default()),
                None => kv.value.clone(),
            };
            out.push((kv.key.clone(), v));
        }
        out
    }

    /// Is `listen` a Unix socket path (php-fpm's rule: no ':' and not all digits)?
    pub fn listen_is_unix(&self) -> bool {
        self.listen
            .as_ref()
            .is_some_and(|l| address_is_unix(&l.to_str_lossy()))
    }

    /// `security.limit_extensions` split on spaces/tabs (empty = allow all), as bytes
    /// (they are compared with the script's name, bytes too).
    pub fn limit_extensions(&self) -> Vec<Vec<u8>> {
        self.security_limit_extensions
            .as_deref()
            .unwrap_or(DEFAULT_LIMIT_EXTENSIONS.as_bytes())
            .split(|&b| b == b' ' || b == b'\t')
            .filter(|s| !s.is_empty())
            .map(<[u8]>::to_vec)
            .collect()
    }
}

/// php-fpm's address classification.
pub fn address_is_unix(a: &str) -> bool {
    !(a.contains(':') || a.bytes().all(|c| c.is_ascii_digit()))
}

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    pub global: GlobalConf,
    /// Pools in order of first appearance, then hidden status pools as validation adds them.
    pub pools: Vec<PoolConf>,
}

// ---------------------------------------------------------------- value parsers

pub(crate) const ERR_NUMBER: &str = "is not a valid number (greater or equal than zero)";
pub(crate) const ERR_BOOL: &str = "invalid boolean value";

pub(crate) fn parse_int(v: &str) -> Result<i32, &'static str> {
    for (i, c) in v.bytes().enumerate() {
        if i == 0 && c == b'-' {
            continue;
        }
        if !c.is_ascii_digit() {
            return Err(ERR_NUMBER);
        }
    }
    Ok(atoi(v))
}

pub(crate) fn parse_time(v: &str) -> Result<i32, &'static str> {
    let Some(&last) = v.as_bytes().last() else {
        return Err("invalid time value");
    };
    let mult = match last {
        b's' => 1,
        b'm' => 60,
        b'h' => 3600,
        b'd' => 86400,
        b'0'..=b'9' => return Ok(atoi(v)),
        _ => return Err("unknown suffix used in time value"),
    };
    // Cut only after matching: the suffix is then one ASCII byte, so this is a char
    // boundary (a value ending in a multi-byte character is refused above).
    let head = &v[..v.len() - 1];
    Ok(atoi(head).wrapping_mul(mult))
}

pub(crate) const ERR_SIZE: &str = "is not a valid size (greater or equal than zero)";
pub(crate) const ERR_SIZE_SUFFIX: &str = "unknown suffix used in size value (K, M or G)";
pub(crate) const ERR_SIZE_RANGE: &str = "size value is too large";

/// An rfpm size in bytes (`pm.max_memory`): digits, then at most one suffix `K`, `M` or
/// `G` (either case, powers of 1024, as PHP reads `memory_limit`). Empty (also `off`,
/// `no`, which the INI scanner turns into an empty string) is 0. Unlike `atoi`, nothing
/// is dropped silently: `1.5G`, `-1`, `10 MB` are errors.
pub fn parse_size(v: &str) -> Result<u64, &'static str> {
    let (digits, shift) = match v.as_bytes().last() {
        None => return Ok(0),
        Some(b'k' | b'K') => (&v[..v.len() - 1], 10),
        Some(b'm' | b'M') => (&v[..v.len() - 1], 20),
        Some(b'g' | b'G') => (&v[..v.len() - 1], 30),
        Some(b'0'..=b'9') => (v, 0),
        Some(_)
            if v.bytes()
                .all(|c| c.is_ascii_digit() || c.is_ascii_alphabetic()) =>
        {
            return Err(ERR_SIZE_SUFFIX);
        }
        Some(_) => return Err(ERR_SIZE),
    };
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return Err(ERR_SIZE);
    }
    let n: u64 = digits.parse().map_err(|_| ERR_SIZE_RANGE)?;
    n.checked_mul(1 << shift).ok_or(ERR_SIZE_RANGE)
}

pub(crate) fn parse_bool(v: &str) -> Result<bool, &'static str> {
    match v {
        "1" | "yes" | "true" | "on" => Ok(true),
        "" | "0" | "no" | "none" | "false" | "off" => Ok(false),
        _ => Err(ERR_BOOL),
    }
}

pub(crate) fn parse_facility(v: &str) -> Result<i32, &'static str> {
    SYSLOG_FACILITIES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(v))
        .map(|(_, f)| *f)
        .ok_or("invalid value")
}

pub(crate) fn parse_rlimit(v: &str) -> Result<i32, &'static str> {
    if v.eq_ignore_ascii_case("unlimited") {
        return Ok(-1);
    }
    let n = parse_int(v)?;
    if n < 0 {
        return Err("must be greater than zero or 'unlimited'");
    }
    Ok(n)
}

pub(crate) fn parse_pm(v: &str) -> Result<Pm, &'static str> {
    Ok(match v.to_ascii_lowercase().as_str() {
        "static" => Pm::Static,
        "dynamic" => Pm::Dynamic,
        "ondemand" => Pm::Ondemand,
        _ => return Err("invalid process manager (static, dynamic or ondemand)"),
    })
}

/// `$pool` expansion of a value kept as bytes; `None` pool = in `[global]`.
pub(crate) fn expand_pool_bytes(v: &[u8], pool: Option<&[u8]>) -> Result<Bytes, &'static str> {
    const POOL: &[u8] = b"$pool";
    if !v.windows(POOL.len()).any(|w| w == POOL) {
        return Ok(Bytes::from(v));
    }
    let Some(p) = pool else {
        return Err("Can't use '$pool' when the pool is not defined");
    };
    let mut out = Vec::with_capacity(v.len() + p.len());
    let mut rest = v;
    while let Some(i) = rest.windows(POOL.len()).position(|w| w == POOL) {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(p);
        rest = &rest[i + POOL.len()..];
    }
    out.extend_from_slice(rest);
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert_eq!(parse_int("-12"), Ok(-12));
        assert_eq!(parse_int(""), Ok(0));
        assert_eq!(parse_int("+3"), Err(ERR_NUMBER));
        assert_eq!(parse_time("1ms"), Ok(1));
        assert_eq!(parse_time("2m"), Ok(120));
        assert_eq!(parse_time("1.5m"), Ok(60));
        assert_eq!(parse_time(""), Err("invalid time value"));
        assert_eq!(parse_time("5x"), Err("unknown suffix used in time value"));
        // Found by `make chaos` (a mutated config): a value ending in a multi-byte
        // character panicked on the cut instead of being refused as php-fpm refuses it.
        assert_eq!(
            parse_time("\u{e9}t\u{e9}"),
            Err("unknown suffix used in time value")
        );
        assert_eq!(
            parse_time("5\u{e9}"),
            Err("unknown suffix used in time value")
        );
        assert_eq!(parse_bool("yes"), Ok(true));
        assert_eq!(parse_bool("True"), Err(ERR_BOOL));
        assert_eq!(parse_rlimit("Unlimited"), Ok(-1));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size(""), Ok(0));
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("128M"), Ok(128 << 20));
        assert_eq!(parse_size("128m"), Ok(128 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("M"), Err(ERR_SIZE));
        assert_eq!(parse_size("-1"), Err(ERR_SIZE));
        assert_eq!(parse_size("+1"), Err(ERR_SIZE));
        assert_eq!(parse_size("1.5G"), Err(ERR_SIZE));
        assert_eq!(parse_size("10 M"), Err(ERR_SIZE));
        assert_eq!(parse_size("10MB"), Err(ERR_SIZE_SUFFIX));
        assert_eq!(parse_size("10T"), Err(ERR_SIZE_SUFFIX));
        assert_eq!(parse_size("99999999999999999999"), Err(ERR_SIZE_RANGE));
        assert_eq!(parse_size("17179869184G"), Err(ERR_SIZE_RANGE));
    }
}
