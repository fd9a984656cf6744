//! Reading the main configuration file and its includes.

use std::path::Path;

use crate::directives::{self, array_needs_key, set_array, SetResult, GLOBAL, POOL};
use crate::ini::{parse_line, IniEnv, IniEvent};
use crate::{Config, Diag, Failure, LoadOptions, Loaded, PoolConf};

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
    let name = path.to_string_lossy().into_owned();
    let ok = l.load_file(&name);
    l.finish(&name, ok)
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
            cfg.global.pid = Some(p.clone());
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
                p.display()
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

    fn load_file(&mut self, filename: &str) -> bool {
        self.depth += 1;
        if self.depth > MAX_RECURSION {
            self.diags.push(Diag::error(
                "failed to include more than 5 files recursively",
            ));
            self.depth -= 1;
            return false;
        }
        let ok = match std::fs::read(filename) {
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
                let var = |n: &str| env(n);
                let cst = |n: &str| constant(n);
                let ienv = IniEnv {
                    var: &var,
                    constant: &cst,
                };
                parse_line(line, &ienv)
            };
            let mut error = false;
            let mut include: Option<String> = None;
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
        include: &mut Option<String>,
    ) -> Option<String> {
        match ev {
            IniEvent::Section(name) => {
                if name.eq_ignore_ascii_case("global") {
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
            IniEvent::ArrayEntry { name, key, value } => self.array(filename, &name, key, value),
            IniEvent::SyntaxError(_) => None,
        }
    }

    fn array(&mut self, filename: &str, name: &str, key: String, value: String) -> Option<String> {
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

    fn include(&mut self, filename: &str, pattern: &str) -> bool {
        let full = if pattern.starts_with('/') {
            pattern.to_string()
        } else {
            let prefix = self
                .opts
                .prefix
                .as_ref()
                .unwrap_or(&self.opts.install_prefix);
            format!("{}/{}", prefix.display(), pattern)
        };
        match crate::load::glob(&full) {
            Err(GlobError::NoMatch) => {
                self.diags.push(Diag::warning(format!(
                    "Nothing matches the include pattern '{}' from {} at line {}.",
                    full, filename, self.lineno
                )));
                true
            }
            Err(GlobError::Aborted) => {
                self.diags.push(Diag::error(format!(
                    "Unable to globalize '{}' (ret=2) from {} at line {}.",
                    full, filename, self.lineno
                )));
                false
            }
            Ok(paths) => {
                for p in paths {
                    if p.ends_with('/') || p.is_empty() {
                        continue;
                    }
                    if !self.load_file(&p) {
                        self.diags.push(Diag::error(format!(
                            "Unable to include {} from {} at line {}",
                            p, filename, self.lineno
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

fn has_magic(s: &str) -> bool {
    s.bytes().any(|c| matches!(c, b'*' | b'?' | b'['))
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

/// glob(3) with GLOB_ERR | GLOB_MARK: sorted matches, directories marked with
/// a trailing '/'.
pub(crate) fn glob(pattern: &str) -> Result<Vec<String>, GlobError> {
    if !has_magic(pattern) {
        let meta = std::fs::metadata(pattern);
        return match meta {
            Ok(m) => {
                let mut p = pattern.to_string();
                if m.is_dir() && !p.ends_with('/') {
                    p.push('/');
                }
                Ok(vec![p])
            }
            Err(_) => {
                if std::fs::symlink_metadata(pattern).is_ok() {
                    Ok(vec![pattern.to_string()])
                } else {
                    Err(GlobError::NoMatch)
                }
            }
        };
    }
    let absolute = pattern.starts_with('/');
    let comps: Vec<&str> = pattern.split('/').filter(|c| !c.is_empty()).collect();
    let mut bases: Vec<String> = vec![if absolute { "/".into() } else { String::new() }];
    for (i, comp) in comps.iter().enumerate() {
        let last = i + 1 == comps.len();
        let mut next = Vec::new();
        for base in &bases {
            if !has_magic(comp) {
                let p = format!("{base}{comp}");
                if last {
                    if std::fs::symlink_metadata(&p).is_ok() {
                        next.push(p);
                    }
                } else {
                    next.push(format!("{p}/"));
                }
                continue;
            }
            let dir = if base.is_empty() { "." } else { base.as_str() };
            let Ok(rd) = std::fs::read_dir(dir) else {
                return Err(GlobError::Aborted);
            };
            let mut names: Vec<Vec<u8>> = Vec::new();
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned().into_bytes();
                if fnmatch(comp.as_bytes(), &n) {
                    names.push(n);
                }
            }
            names.sort();
            for n in names {
                let n = String::from_utf8_lossy(&n).into_owned();
                if last {
                    next.push(format!("{base}{n}"));
                } else {
                    let p = format!("{base}{n}");
                    if std::path::Path::new(&p).is_dir() {
                        next.push(format!("{p}/"));
                    }
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
        .map(|p| {
            if std::path::Path::new(&p).is_dir() && !p.ends_with('/') {
                format!("{p}/")
            } else {
                p
            }
        })
        .collect())
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
