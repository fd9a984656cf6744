//! Reading the main configuration file and its includes.

use std::ffi::OsStr;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use crate::directives::{self, array_needs_key, set_array, SetResult, GLOBAL, POOL};
use crate::ini::{parse_line, IniEnv, IniEvent};
use crate::{Bytes, Config, Diag, Failure, LoadOptions, Loaded, PoolConf};

/// Nesting limit: the main file plus 4 levels of includes.
const MAX_RECURSION: u32 = 5;

/// `strerror(errno) (errno)` for an I/O error, as php-fpm's SYSERR suffix prints it.
pub(crate) fn syserr(e: &std::io::Error) -> String {
    let code = e.raw_os_error().unwrap_or(0);
    let mut text = e.to_string();
    if let Some(i) = text.rfind(" (os error ") {
        text.truncate(i);
    }
    format!("{text} ({code})")
}

struct Loader<'o> {
    opts: &'o LoadOptions,
    cfg: Config,
    current: Option<usize>,
    lineno: u32,
    depth: u32,
    diags: Vec<Diag>,
}

/// Load `path` (and its includes) as php-fpm 8.2 does. `path` is shown in
/// messages exactly as given.
pub fn load(path: &Path, opts: &LoadOptions) -> Result<Loaded, Failure> {
    let mut l = Loader::new(opts);
    if let Some(f) = l.prefix_failure() {
        return Err(f);
    }
    let ok = l.load_file(path);
    l.finish(&shown_path(path), ok)
}

/// Like [`load`], but the main file's content is given (its name is only used
/// in messages). Includes are still read from the file system.
pub fn load_str(name: &str, content: &[u8], opts: &LoadOptions) -> Result<Loaded, Failure> {
    let mut l = Loader::new(opts);
    if let Some(f) = l.prefix_failure() {
        return Err(f);
    }
    l.depth += 1;
    let ok = l.load_bytes(name, content);
    l.depth -= 1;
    l.finish(name, ok)
}

impl<'o> Loader<'o> {
    fn new(opts: &'o LoadOptions) -> Self {
        let mut cfg = Config::default();
        if let Some(p) = opts.pid_override.as_ref().filter(|p| !p.is_empty()) {
            cfg.global.pid = Some(Bytes::from(p.as_slice()));
        }
        Loader {
            opts,
            cfg,
            current: None,
            lineno: 0,
            depth: 0,
            diags: Vec::new(),
        }
    }

    fn prefix_failure(&self) -> Option<Failure> {
        let p = self.opts.prefix.as_ref()?;
        if p.as_os_str().is_empty() || p.is_dir() {
            return None;
        }
        Some(Failure {
            diags: vec![Diag::error(format!(
                "the global prefix '{}' does not exist or is not a directory",
                shown_path(p)
            ))],
        })
    }

    fn finish(mut self, name: &str, ok: bool) -> Result<Loaded, Failure> {
        if ok {
            Ok(Loaded {
                config: self.cfg,
                diags: self.diags,
            })
        } else {
            self.diags.push(Diag::error(format!(
                "failed to load configuration file '{name}'"
            )));
            Err(Failure { diags: self.diags })
        }
    }

    /// Reads the file at `path` (its exact bytes, also in messages).
    fn load_file(&mut self, path: &Path) -> bool {
        let filename = &*shown_path(path);
        self.depth += 1;
        if self.depth > MAX_RECURSION {
            self.diags.push(Diag::error(
                "failed to include more than 5 files recursively",
            ));
            self.depth -= 1;
            return false;
        }
        let ok = match std::fs::read(path) {
            Ok(content) => self.load_bytes(filename, &content),
            Err(e) => {
                self.diags.push(Diag::error(format!(
                    "failed to open configuration file '{filename}': {}",
                    syserr(&e)
                )));
                false
            }
        };
        self.depth -= 1;
        ok
    }

    fn load_bytes(&mut self, filename: &str, content: &[u8]) -> bool {
        self.lineno = 0;
        let env = &self.opts.env;
        let constant = &self.opts.constant;
        for line in content.split(|&c| c == b'\n') {
            self.lineno += 1;
            let events = {
                let var = |n: &[u8]| env(n);
                let cst = |n: &str| constant(n);
                let ienv = IniEnv {
                    var: &var,
                    constant: &cst,
                };
                parse_line(line, &ienv)
            };
            let mut error = false;
            let mut include: Option<Vec<u8>> = None;
            for ev in events {
                if let IniEvent::SyntaxError(msg) = ev {
                    self.diags.push(Diag::raw(format!("PHP:  {msg}")));
                    error = true;
                    break;
                }
                if error {
                    continue;
                }
                if let Some(e) = self.callback(filename, ev, &mut include) {
                    self.diags.push(Diag::error(e));
                    error = true;
                }
            }
            if error {
                return false;
            }
            if let Some(pattern) = include {
                if !self.include(filename, &pattern) {
                    return false;
                }
            }
        }
        true
    }

    fn loc(&self, filename: &str) -> String {
        format!("[{}:{}]", filename, self.lineno)
    }

    /// One parser callback; returns the error text if it failed.
    fn callback(
        &mut self,
        filename: &str,
        ev: IniEvent,
        include: &mut Option<Vec<u8>>,
    ) -> Option<String> {
        match ev {
            IniEvent::Section(name) => {
                if name.eq_ignore_ascii_case(b"global") {
                    self.current = None;
                } else if let Some(i) = self
                    .cfg
                    .pools
                    .iter()
                    .position(|p| p.name.eq_ignore_ascii_case(&name))
                {
                    self.current = Some(i);
                } else {
                    self.cfg.pools.push(PoolConf::new(&name));
                    self.current = Some(self.cfg.pools.len() - 1);
                }
                None
            }
            IniEvent::Entry(_, None) => Some(format!(
                "{} value is NULL for a ZEND_INI_PARSER_ENTRY",
                self.loc(filename)
            )),
            IniEvent::Entry(name, Some(value)) => {
                if name == "include" {
                    if include.is_some() {
                        return Some(format!(
                            "{} two includes at the same time !",
                            self.loc(filename)
                        ));
                    }
                    *include = Some(value);
                    return None;
                }
                let r = match self.current.and_then(|i| self.cfg.pools.get_mut(i)) {
                    Some(p) => {
                        let pool = p.name.clone();
                        directives::set(POOL, p, &name, &value, Some(&pool))
                    }
                    None => directives::set(GLOBAL, &mut self.cfg.global, &name, &value, None),
                };
                match r {
                    SetResult::Ok => None,
                    SetResult::Unknown => {
                        Some(format!("{} unknown entry '{}'", self.loc(filename), name))
                    }
                    SetResult::Err(canon, reason) => Some(format!(
                        "{} unable to parse value for entry '{}': {}",
                        self.loc(filename),
                        canon,
                        reason
                    )),
                }
            }
            IniEvent::ArrayEntry { name, key, value } => {
                self.array(filename, &name, key.into(), value.into())
            }
            IniEvent::SyntaxError(_) => None,
        }
    }

    fn array(&mut self, filename: &str, name: &str, key: Bytes, value: Bytes) -> Option<String> {
        let loc = self.loc(filename);
        if key.is_empty() && array_needs_key(name) {
            return Some(format!("{loc} You must provide a key for field '{name}'"));
        }
        let Some(pool) = self.current.and_then(|i| self.cfg.pools.get_mut(i)) else {
            return Some(format!("{loc} Array are not allowed in the global section"));
        };
        set_array(pool, name, key, value)
            .err()
            .map(|e| format!("{loc} {e}"))
    }

    /// `include = pattern`: the pattern's bytes, relative to the prefix, globbed.
    fn include(&mut self, filename: &str, pattern: &[u8]) -> bool {
        let full = if pattern.starts_with(b"/") {
            pattern.to_vec()
        } else {
            let prefix = self
                .opts
                .prefix
                .as_ref()
                .unwrap_or(&self.opts.install_prefix);
            [prefix.as_os_str().as_bytes(), b"/", pattern].concat()
        };
        let full_shown = rfpm_core::shown::Shown(&full).to_string();
        let full_shown = &full_shown;
        match crate::load::glob(&full) {
            Err(GlobError::NoMatch) => {
                self.diags.push(Diag::warning(format!(
                    "Nothing matches the include pattern '{}' from {} at line {}.",
                    full_shown, filename, self.lineno
                )));
                true
            }
            Err(GlobError::Aborted) => {
                self.diags.push(Diag::error(format!(
                    "Unable to globalize '{}' (ret=2) from {} at line {}.",
                    full_shown, filename, self.lineno
                )));
                false
            }
            Ok(paths) => {
                for p in paths {
                    if p.ends_with(b"/") || p.is_empty() {
                        continue;
                    }
                    if !self.load_file(os_path(&p)) {
                        self.diags.push(Diag::error(format!(
                            "Unable to include {} from {} at line {}",
                            rfpm_core::shown::Shown(&p),
                            filename,
                            self.lineno
                        )));
                        return false;
                    }
                }
                true
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum GlobError {
    /// GLOB_NOMATCH (3)
    NoMatch,
    /// GLOB_ABORTED (2)
    Aborted,
}

fn has_magic(s: &[u8]) -> bool {
    s.iter().any(|c| matches!(c, b'*' | b'?' | b'['))
}

/// fnmatch(3) without flags except that a leading '.' must be matched explicitly.
pub(crate) fn fnmatch(pat: &[u8], name: &[u8]) -> bool {
    if name.first() == Some(&b'.') && pat.first() != Some(&b'.') {
        return false;
    }
    fn m(p: &[u8], n: &[u8]) -> bool {
        let (mut pi, mut ni) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        while ni < n.len() {
            if pi < p.len() {
                match p[pi] {
                    b'*' => {
                        star = Some((pi, ni));
                        pi += 1;
                        continue;
                    }
                    b'?' => {
                        pi += 1;
                        ni += 1;
                        continue;
                    }
                    b'[' => {
                        if let Some((matched, len)) = class(&p[pi..], n[ni]) {
                            if matched {
                                pi += len;
                                ni += 1;
                                continue;
                            }
                        } else if n[ni] == b'[' {
                            pi += 1;
                            ni += 1;
                            continue;
                        }
                    }
                    b'\\' if pi + 1 < p.len() => {
                        if p[pi + 1] == n[ni] {
                            pi += 2;
                            ni += 1;
                            continue;
                        }
                    }
                    c => {
                        if c == n[ni] {
                            pi += 1;
                            ni += 1;
                            continue;
                        }
                    }
                }
            }
            match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            }
        }
        while pi < p.len() && p[pi] == b'*' {
            pi += 1;
        }
        pi == p.len()
    }
    /// Bracket expression at p[0]=='['; returns (matched, length) or None if unterminated.
    fn class(p: &[u8], c: u8) -> Option<(bool, usize)> {
        let mut i = 1;
        let negate = matches!(p.get(i), Some(b'!') | Some(b'^'));
        if negate {
            i += 1;
        }
        let mut matched = false;
        let mut first = true;
        loop {
            let ch = *p.get(i)?;
            if ch == b']' && !first {
                return Some((matched != negate, i + 1));
            }
            first = false;
            if p.get(i + 1) == Some(&b'-') && p.get(i + 2).is_some_and(|&e| e != b']') {
                let hi = p[i + 2];
                if ch <= c && c <= hi {
                    matched = true;
                }
                i += 3;
            } else {
                if ch == c {
                    matched = true;
                }
                i += 1;
            }
        }
    }
    m(pat, name)
}

/// A path from the bytes of the configuration.
fn os_path(b: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(b))
}

/// glob(3) with GLOB_ERR | GLOB_MARK over bytes (names need not be UTF-8): sorted
/// matches, directories marked with a trailing '/'.
pub(crate) fn glob(pattern: &[u8]) -> Result<Vec<Vec<u8>>, GlobError> {
    if !has_magic(pattern) {
        return match std::fs::metadata(os_path(pattern)) {
            Ok(m) => {
                let mut p = pattern.to_vec();
                if m.is_dir() && !p.ends_with(b"/") {
                    p.push(b'/');
                }
                Ok(vec![p])
            }
            Err(_) => {
                if std::fs::symlink_metadata(os_path(pattern)).is_ok() {
                    Ok(vec![pattern.to_vec()])
                } else {
                    Err(GlobError::NoMatch)
                }
            }
        };
    }
    let absolute = pattern.starts_with(b"/");
    let comps: Vec<&[u8]> = pattern
        .split(|&c| c == b'/')
        .filter(|c| !c.is_empty())
        .collect();
    let mut bases: Vec<Vec<u8>> = vec![if absolute { b"/".to_vec() } else { Vec::new() }];
    let join = |base: &[u8], name: &[u8]| [base, name].concat();
    for (i, comp) in comps.iter().enumerate() {
        let last = i + 1 == comps.len();
        let mut next = Vec::new();
        for base in &bases {
            if !has_magic(comp) {
                let p = join(base, comp);
                if last {
                    if std::fs::symlink_metadata(os_path(&p)).is_ok() {
                        next.push(p);
                    }
                } else {
                    next.push(join(&p, b"/"));
                }
                continue;
            }
            let dir: &[u8] = if base.is_empty() { b"." } else { base };
            let Ok(rd) = std::fs::read_dir(os_path(dir)) else {
                return Err(GlobError::Aborted);
            };
            let mut names: Vec<Vec<u8>> = Vec::new();
            for e in rd.flatten() {
                let n = e.file_name().into_vec();
                if fnmatch(comp, &n) {
                    names.push(n);
                }
            }
            names.sort();
            for n in names {
                let p = join(base, &n);
                if last {
                    next.push(p);
                } else if os_path(&p).is_dir() {
                    next.push(join(&p, b"/"));
                }
            }
        }
        bases = next;
        if bases.is_empty() {
            break;
        }
    }
    if bases.is_empty() {
        return Err(GlobError::NoMatch);
    }
    bases.sort();
    Ok(bases
        .into_iter()
        .map(|mut p| {
            if os_path(&p).is_dir() && !p.ends_with(b"/") {
                p.push(b'/');
            }
            p
        })
        .collect())
}

/// A path in a message: its bytes, through [`rfpm_core::shown::Shown`].
pub(crate) fn shown_path(p: &Path) -> String {
    rfpm_core::shown::Shown(p.as_os_str().as_bytes()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnmatch_basics() {
        assert!(fnmatch(b"*.conf", b"www.conf"));
        assert!(!fnmatch(b"*.conf", b".hidden.conf"));
        assert!(fnmatch(b"w?w.[a-c]onf", b"www.conf"));
        assert!(!fnmatch(b"w[!w]w.conf", b"www.conf"));
        assert!(fnmatch(b"*", b"x"));
    }

    #[test]
    fn syserr_text() {
        let e = std::io::Error::from_raw_os_error(2);
        assert_eq!(syserr(&e), "No such file or directory (2)");
    }
}
