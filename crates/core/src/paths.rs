//! Which script a request runs, and how FPM rewrites the path params on the way
//! (reference §7.2–§7.3: `cgi.fix_pathinfo`, the Apache proxy prefix, the
//! CVE-2019-11043 length guard, `..` segments). Pure: the file system is asked through
//! a probe the caller passes in.
use fcgi::params::Params;

/// What a path is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Missing,
    File,
    Other,
}

/// The INI settings path fixing depends on.
#[derive(Debug, Clone, Default)]
pub struct PathIni {
    pub fix_pathinfo: bool,
    pub discard_path: bool,
    /// php.ini `doc_root`, when set (only read by `resolve` with `fix_pathinfo` and no
    /// DOCUMENT_ROOT param, so a caller may leave it `None` otherwise).
    pub doc_root: Option<Vec<u8>>,
    /// Behind Apache's ProxyPass, a PATH_INFO taken from the script path's tail (no
    /// PATH_INFO param, a SCRIPT_NAME given) is `%XX`-decoded, as php-fpm 8.4 does
    /// ([`crate::compat::Compat::apache_proxy_decodes_path`]); php-fpm 8.2 keeps the
    /// escapes.
    pub proxy_decodes_path_info: bool,
}

/// The outcome: the script to open, the effective SCRIPT_NAME, PHP_SELF.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    /// `None`: the script is unknown (404 `File not found.`).
    pub script: Option<Vec<u8>>,
    /// The effective SCRIPT_NAME (`SG(request_info).request_uri`; `%r`; ping/status match).
    pub uri: Option<Vec<u8>>,
    pub php_self: Vec<u8>,
}

fn owned(p: &Params, name: &str) -> Option<Vec<u8>> {
    p.get(name).map(<[u8]>::to_vec)
}

fn strip_apache_proxy(sf: &[u8]) -> Option<Vec<u8>> {
    let lower: Vec<u8> = sf.iter().take(20).map(u8::to_ascii_lowercase).collect();
    let prefix_len = if lower.starts_with(b"proxy:fcgi://") {
        "proxy:fcgi://".len()
    } else if lower.starts_with(b"proxy:balancer://") {
        "proxy:balancer://".len()
    } else {
        return None;
    };
    let rest = &sf[prefix_len..];
    let path = match rest.iter().position(|&b| b == b'/') {
        Some(i) => &rest[i..],
        None => &rest[rest.len()..],
    };
    let path = match path.iter().position(|&b| b == b'?') {
        Some(q) => &path[..q],
        None => path,
    };
    Some(path.to_vec())
}

fn has_dotdot_segment(path: &[u8]) -> bool {
    path.split(|&b| b == b'/').any(|seg| seg == b"..")
}

/// `%XX` decoded (`+` kept), for the ProxyPass SCRIPT_NAME comparison.
fn percent_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' && i + 2 < s.len() {
            let hex = |c: u8| (c as char).to_digit(16).and_then(|d| u8::try_from(d).ok());
            if let (Some(h), Some(l)) = (hex(s[i + 1]), hex(s[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

/// `exists` answers whether the script path exists at all (php-fpm asks PHP's realpath
/// cache); `probe` tells what a prefix is while trailing components are stripped.
///
/// Applies php-fpm's path fixing to `p` (in place, as php-fpm does: `ORIG_*` entries,
/// new `SCRIPT_NAME`/`PATH_INFO`/`PATH_TRANSLATED`/`SCRIPT_FILENAME`).
pub fn resolve(
    p: &mut Params,
    ini: &PathIni,
    probe: &dyn Fn(&[u8]) -> Kind,
    exists: &dyn Fn(&[u8]) -> bool,
) -> Resolved {
    match resolve_plain(p, ini, exists) {
        Some(r) => r,
        None => resolve_general(p, ini, probe, exists),
    }
}

/// [`resolve`] for every case.
fn resolve_general(
    p: &mut Params,
    ini: &PathIni,
    probe: &dyn Fn(&[u8]) -> Kind,
    exists: &dyn Fn(&[u8]) -> bool,
) -> Resolved {
    let mut sf = owned(p, "SCRIPT_FILENAME");
    let pt_param = owned(p, "PATH_TRANSLATED");
    let sn_orig = owned(p, "SCRIPT_NAME");

    let mut candidate = sf.clone().or_else(|| pt_param.clone());
    let Some(_) = candidate else {
        // No script path at all: unknown script; PHP_SELF from what there is.
        let pi = owned(p, "PATH_INFO");
        let php_self = if ini.fix_pathinfo {
            [sn_orig.clone().unwrap_or_default(), pi.unwrap_or_default()].concat()
        } else {
            pi.or_else(|| sn_orig.clone()).unwrap_or_default()
        };
        return Resolved {
            script: None,
            uri: None,
            php_self,
        };
    };

    // IIS: PATH_INFO that repeats SCRIPT_NAME.
    if p.get("SERVER_SOFTWARE")
        .is_some_and(|s| s.starts_with(b"Microsoft-IIS"))
    {
        if let (Some(pi), Some(sn)) = (owned(p, "PATH_INFO"), sn_orig.clone()) {
            if pi.starts_with(&sn) {
                p.set("ORIG_PATH_INFO", &pi);
                let rest = &pi[sn.len()..];
                if rest.is_empty() {
                    p.remove("PATH_INFO");
                } else {
                    p.set("PATH_INFO", rest);
                }
            }
        }
    }

    // Apache mod_proxy_fcgi prefix.
    let mut apache_proxy = false;
    if let Some(s) = &sf {
        if let Some(stripped) = strip_apache_proxy(s) {
            apache_proxy = true;
            p.set("SCRIPT_FILENAME", &stripped);
            sf = Some(stripped.clone());
            candidate = Some(stripped);
        }
    }
    let mut candidate = candidate.unwrap_or_default();

    let pi_orig = owned(p, "PATH_INFO");
    let mut script: Option<Vec<u8>>;
    let uri: Option<Vec<u8>>;

    if ini.fix_pathinfo {
        if !p.contains("DOCUMENT_ROOT") {
            if let Some(dr) = &ini.doc_root {
                p.set("DOCUMENT_ROOT", dr);
            }
        }
        let dr = owned(p, "DOCUMENT_ROOT");
        let mut effective_sn = sn_orig.clone();
        let ru = owned(p, "REDIRECT_URL");
        if !apache_proxy {
            if let (Some(pt), Some(ru)) = (&pt_param, &ru) {
                if *pt != candidate {
                    candidate = pt.clone();
                    effective_sn = Some(ru.clone());
                }
            }
        }

        let mut chosen_uri: Option<Vec<u8>> = None;
        if !candidate.is_empty() && (candidate.ends_with(b"/") || !exists(&candidate)) {
            // Strip trailing components until a regular file remains.
            let mut found: Option<usize> = None;
            let mut end = candidate.len();
            while let Some(slash) = candidate[..end].iter().rposition(|&b| b == b'/') {
                end = slash;
                if end == 0 {
                    break;
                }
                if probe(&candidate[..end]) == Kind::File {
                    found = Some(end);
                    break;
                }
            }
            match found {
                Some(ptlen) => {
                    let pt = candidate[..ptlen].to_vec();
                    let slen = candidate.len() - ptlen;
                    let tail = candidate[ptlen..].to_vec();
                    let new_pi: Option<Vec<u8>> = if apache_proxy {
                        (slen > 0 && pi_orig.as_deref() != Some(&tail[..])).then(|| tail.clone())
                    } else {
                        match &pi_orig {
                            Some(pi) if pi.len() > slen => Some(pi[pi.len() - slen..].to_vec()),
                            _ => None,
                        }
                    };
                    if let Some(mut new_pi) = new_pi {
                        if let Some(pi) = &pi_orig {
                            p.set("ORIG_PATH_INFO", pi);
                            // What PATH_INFO held before its tail: without the Apache
                            // prefix the new PATH_INFO is that tail (longer than slen, so
                            // the cut is in bounds); behind Apache it came from the script
                            // path instead, and the old PATH_INFO stays whole.
                            let head = if apache_proxy {
                                &pi[..]
                            } else {
                                &pi[..pi.len() - slen]
                            };
                            if effective_sn.as_deref() != Some(head) {
                                if let Some(sn) = &effective_sn {
                                    p.set("ORIG_SCRIPT_NAME", sn);
                                }
                                p.set("SCRIPT_NAME", head);
                                chosen_uri = Some(head.to_vec());
                            } else {
                                chosen_uri = effective_sn.clone();
                            }
                        } else if apache_proxy {
                            if let Some(sn) = &effective_sn {
                                let decoded = percent_decode(&new_pi);
                                let cut = if sn.len() > new_pi.len() && sn.ends_with(&new_pi) {
                                    Some(sn.len() - new_pi.len())
                                } else if sn.len() > decoded.len() && sn.ends_with(&decoded) {
                                    Some(sn.len() - decoded.len())
                                } else {
                                    None
                                };
                                if let Some(cut) = cut {
                                    p.set("ORIG_SCRIPT_NAME", sn);
                                    p.set("SCRIPT_NAME", &sn[..cut]);
                                    effective_sn = Some(sn[..cut].to_vec());
                                    chosen_uri = effective_sn.clone();
                                }
                                if ini.proxy_decodes_path_info {
                                    new_pi = decoded;
                                }
                            }
                        }
                        p.set("PATH_INFO", &new_pi);
                    }
                    if sf.as_deref() != Some(&pt[..]) {
                        if let Some(sf) = &sf {
                            p.set("ORIG_SCRIPT_FILENAME", sf);
                        }
                        p.set("SCRIPT_FILENAME", &pt);
                    }
                    let cur_pi = owned(p, "PATH_INFO").unwrap_or_default();
                    let new_pt = if let Some(dr) = &dr {
                        let dr = dr.strip_suffix(b"/").unwrap_or(dr);
                        Some([dr, &cur_pi[..]].concat())
                    } else if let Some(sn) = effective_sn.as_ref().filter(|sn| !sn.is_empty()) {
                        contains(&pt, sn)
                            .then(|| [&pt[..pt.len() - sn.len()], &cur_pi[..]].concat())
                    } else {
                        None
                    };
                    if let Some(new_pt) = new_pt {
                        if let Some(old) = &pt_param {
                            p.set("ORIG_PATH_TRANSLATED", old);
                        }
                        p.set("PATH_TRANSLATED", &new_pt);
                    }
                    script = Some(pt);
                }
                None => {
                    if let Some(sf) = &sf {
                        p.set("ORIG_SCRIPT_FILENAME", sf);
                    }
                    p.remove("SCRIPT_FILENAME");
                    script = None;
                }
            }
            if chosen_uri.is_none() {
                if effective_sn != sn_orig {
                    if let Some(o) = &sn_orig {
                        p.set("ORIG_SCRIPT_NAME", o);
                    }
                    if let Some(e) = &effective_sn {
                        p.set("SCRIPT_NAME", e);
                    }
                }
                chosen_uri = owned(p, "SCRIPT_NAME");
            }
            uri = chosen_uri;
        } else {
            if sf.as_deref() != Some(&candidate[..]) {
                if let Some(sf) = &sf {
                    p.set("ORIG_SCRIPT_FILENAME", sf);
                }
                p.set("SCRIPT_FILENAME", &candidate);
            }
            if !apache_proxy && ru.is_some() {
                if let Some(pi) = p.remove("PATH_INFO") {
                    p.set("ORIG_PATH_INFO", &pi);
                }
                if let Some(pt) = p.remove("PATH_TRANSLATED") {
                    p.set("ORIG_PATH_TRANSLATED", &pt);
                }
            }
            if effective_sn != sn_orig {
                if let Some(o) = &sn_orig {
                    p.set("ORIG_SCRIPT_NAME", o);
                }
                if let Some(e) = &effective_sn {
                    p.set("SCRIPT_NAME", e);
                }
            }
            uri = owned(p, "SCRIPT_NAME");
            script = Some(candidate.clone());
        }
    } else {
        uri = pi_orig.clone().or_else(|| sn_orig.clone());
        script = sf.clone();
        if let Some(pt) = &pt_param {
            if !ini.discard_path {
                script = Some(pt.clone());
            }
        }
        if script.is_none() {
            script = pt_param.clone();
        }
    }

    if script.as_deref().is_some_and(has_dotdot_segment) {
        script = None;
    }

    let php_self = if ini.fix_pathinfo {
        let sn = owned(p, "SCRIPT_NAME").unwrap_or_default();
        let pi = owned(p, "PATH_INFO").unwrap_or_default();
        [sn, pi].concat()
    } else {
        uri.clone().unwrap_or_default()
    };
    Resolved {
        script,
        uri,
        php_self,
    }
}

/// The common case, without a copy of every path param: `cgi.fix_pathinfo` on and a
/// SCRIPT_FILENAME that names an existing file, with nothing for path fixing to do (no
/// Apache proxy prefix, no IIS, no REDIRECT_URL, no doc_root to fill in). `None` when
/// any of that does not hold: [`resolve`]'s general path then decides, and the result
/// is the same as it would give (the tests check both on every case).
fn resolve_plain(p: &Params, ini: &PathIni, exists: &dyn Fn(&[u8]) -> bool) -> Option<Resolved> {
    if !ini.fix_pathinfo || p.contains("REDIRECT_URL") {
        return None;
    }
    let sf = p.get("SCRIPT_FILENAME").filter(|sf| {
        !sf.is_empty()
            && !sf.ends_with(b"/")
            && !sf
                .get(..6)
                .is_some_and(|h| h.eq_ignore_ascii_case(b"proxy:"))
    })?;
    if ini.doc_root.is_some() && !p.contains("DOCUMENT_ROOT") {
        return None;
    }
    if p.get("SERVER_SOFTWARE")
        .is_some_and(|s| s.starts_with(b"Microsoft-IIS"))
    {
        return None;
    }
    if !exists(sf) {
        return None;
    }
    // One spare byte each: the worker turns these into C strings without growing them.
    let with_room = |v: &[u8]| {
        let mut o = Vec::with_capacity(v.len() + 1);
        o.extend_from_slice(v);
        o
    };
    let sn = p.get("SCRIPT_NAME");
    let pi = p.get("PATH_INFO").unwrap_or_default();
    let mut php_self = Vec::with_capacity(sn.map_or(0, <[u8]>::len) + pi.len() + 1);
    php_self.extend_from_slice(sn.unwrap_or_default());
    php_self.extend_from_slice(pi);
    Some(Resolved {
        script: (!has_dotdot_segment(sf)).then(|| with_room(sf)),
        uri: sn.map(with_room),
        php_self,
    })
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fs(path: &[u8]) -> Kind {
        match path {
            b"/w/env.php" | b"/w/hello.php" => Kind::File,
            b"/w" | b"/" => Kind::Other,
            _ => Kind::Missing,
        }
    }

    fn run(params: &[(&str, &str)], fix: bool) -> (Resolved, Params) {
        let ini = PathIni {
            fix_pathinfo: fix,
            discard_path: false,
            doc_root: None,
            proxy_decodes_path_info: false,
        };
        run_ini(params, &ini)
    }

    fn run_ini(params: &[(&str, &str)], ini: &PathIni) -> (Resolved, Params) {
        let ini = ini.clone();
        let mut p: Params = params
            .iter()
            .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
            .collect();
        let exists = |p: &[u8]| fs(p) != Kind::Missing;
        // The shortcut, where it applies, must agree with the general path.
        let mut general = p.clone();
        let want = resolve_general(&mut general, &ini, &fs, &exists);
        let r = resolve(&mut p, &ini, &fs, &exists);
        assert_eq!(r, want, "resolve vs the general path: {params:?}");
        assert_eq!(p, general, "params after resolve vs the general path");
        (r, p)
    }

    fn get(p: &Params, k: &str) -> Option<String> {
        p.get(k).map(|v| String::from_utf8_lossy(v).into_owned())
    }

    #[test]
    fn shortcut_agrees_with_the_general_path() {
        let base = [
            ("SCRIPT_FILENAME", "/w/env.php"),
            ("SCRIPT_NAME", "/env.php"),
            ("DOCUMENT_ROOT", "/w"),
        ];
        let extras: [&[(&str, &str)]; 10] = [
            &[],
            &[("PATH_INFO", "/x/y")],
            &[("PATH_TRANSLATED", "/w/x/y")],
            &[("REDIRECT_URL", "/r.php")],
            &[("PATH_TRANSLATED", "/w/hello.php"), ("REDIRECT_URL", "/r")],
            &[
                ("SERVER_SOFTWARE", "Microsoft-IIS/10"),
                ("PATH_INFO", "/env.php/a"),
            ],
            &[("SCRIPT_FILENAME", "PROXY:fcgi://h:9000/w/env.php")],
            &[("SCRIPT_FILENAME", "/w/../w/env.php")],
            &[("SCRIPT_FILENAME", "/w/env.php\0junk")],
            &[("SCRIPT_NAME", "")],
        ];
        for extra in extras {
            for drop_docroot in [false, true] {
                for doc_root in [None, Some(b"/w".to_vec())] {
                    for fix_pathinfo in [true, false] {
                        let mut params: Vec<(&str, &str)> = base
                            .iter()
                            .filter(|(k, _)| !(drop_docroot && *k == "DOCUMENT_ROOT"))
                            .copied()
                            .collect();
                        for &(k, v) in extra {
                            params.retain(|(n, _)| *n != k);
                            params.push((k, v));
                        }
                        let ini = PathIni {
                            fix_pathinfo,
                            discard_path: false,
                            doc_root: doc_root.clone(),
                            proxy_decodes_path_info: false,
                        };
                        // run_ini compares resolve with the general path.
                        run_ini(&params, &ini);
                    }
                }
            }
        }
    }

    #[test]
    fn plain_script() {
        let (r, p) = run(
            &[
                ("SCRIPT_FILENAME", "/w/env.php"),
                ("SCRIPT_NAME", "/env.php"),
                ("DOCUMENT_ROOT", "/w"),
            ],
            true,
        );
        assert_eq!(r.script.as_deref(), Some(&b"/w/env.php"[..]));
        assert_eq!(r.php_self, b"/env.php");
        assert_eq!(get(&p, "PATH_TRANSLATED"), None);
    }

    #[test]
    fn nginx_style_path_info_in_filename() {
        let (r, p) = run(
            &[
                ("SCRIPT_FILENAME", "/w/env.php/foo/bar"),
                ("SCRIPT_NAME", "/env.php/foo/bar"),
                ("DOCUMENT_ROOT", "/w"),
            ],
            true,
        );
        assert_eq!(r.script.as_deref(), Some(&b"/w/env.php"[..]));
        assert_eq!(get(&p, "SCRIPT_NAME").as_deref(), Some("/env.php/foo/bar"));
        assert_eq!(get(&p, "PATH_INFO"), None);
        assert_eq!(get(&p, "PATH_TRANSLATED").as_deref(), Some("/w"));
        assert_eq!(
            get(&p, "ORIG_SCRIPT_FILENAME").as_deref(),
            Some("/w/env.php/foo/bar")
        );
        assert_eq!(r.php_self, b"/env.php/foo/bar");
    }

    #[test]
    fn path_info_not_longer_than_stripped_part_is_kept() {
        let (r, p) = run(
            &[
                ("SCRIPT_FILENAME", "/w/env.php/foo/bar"),
                ("SCRIPT_NAME", "/env.php/foo/bar"),
                ("PATH_INFO", "/foo/bar"),
                ("DOCUMENT_ROOT", "/w"),
            ],
            true,
        );
        assert_eq!(get(&p, "PATH_INFO").as_deref(), Some("/foo/bar"));
        assert_eq!(get(&p, "PATH_TRANSLATED").as_deref(), Some("/w/foo/bar"));
        assert_eq!(r.php_self, b"/env.php/foo/bar/foo/bar");
    }

    #[test]
    fn apache_proxy_prefix() {
        let (r, p) = run(
            &[
                (
                    "SCRIPT_FILENAME",
                    "proxy:fcgi://127.0.0.1:9000/w/env.php/foo?x=1",
                ),
                ("SCRIPT_NAME", "/env.php/foo"),
                ("DOCUMENT_ROOT", "/w"),
            ],
            true,
        );
        assert_eq!(r.script.as_deref(), Some(&b"/w/env.php"[..]));
        assert_eq!(get(&p, "SCRIPT_NAME").as_deref(), Some("/env.php"));
        assert_eq!(get(&p, "PATH_INFO").as_deref(), Some("/foo"));
        assert_eq!(get(&p, "PATH_TRANSLATED").as_deref(), Some("/w/foo"));
        assert_eq!(get(&p, "ORIG_SCRIPT_NAME").as_deref(), Some("/env.php/foo"));
        assert_eq!(
            get(&p, "ORIG_SCRIPT_FILENAME").as_deref(),
            Some("/w/env.php/foo")
        );
        assert_eq!(r.php_self, b"/env.php/foo");
    }

    /// What php-fpm 8.4.28 answers and 8.2.36 does not: behind ProxyPass, PATH_INFO
    /// from the script path's escaped tail is decoded when a SCRIPT_NAME is given
    /// (`%XX` only, `+` and bad escapes kept); a PATH_INFO param or no SCRIPT_NAME
    /// keeps the escapes.
    #[test]
    fn apache_proxy_decoding_of_path_info_by_version() {
        let shape = |sf: &str, sn: Option<&str>, pi: Option<&str>, decode: bool| {
            let mut params = vec![
                ("SCRIPT_FILENAME", sf.to_string()),
                ("DOCUMENT_ROOT", "/w".to_string()),
            ];
            params.extend(sn.map(|s| ("SCRIPT_NAME", s.to_string())));
            params.extend(pi.map(|s| ("PATH_INFO", s.to_string())));
            let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let ini = PathIni {
                fix_pathinfo: true,
                proxy_decodes_path_info: decode,
                ..PathIni::default()
            };
            let (r, p) = run_ini(&params, &ini);
            (
                get(&p, "SCRIPT_NAME").unwrap_or_default(),
                get(&p, "PATH_INFO").unwrap_or_default(),
                get(&p, "PATH_TRANSLATED").unwrap_or_default(),
                String::from_utf8_lossy(&r.php_self).into_owned(),
            )
        };
        let s = |a: &str, b: &str, c: &str, d: &str| {
            (a.to_string(), b.to_string(), c.to_string(), d.to_string())
        };
        let sf = "proxy:fcgi://localhost/w/env.php/a%20b";
        for sn in ["/env.php/a b", "/env.php/a%20b"] {
            assert_eq!(
                shape(sf, Some(sn), None, false),
                s("/env.php", "/a%20b", "/w/a%20b", "/env.php/a%20b")
            );
            assert_eq!(
                shape(sf, Some(sn), None, true),
                s("/env.php", "/a b", "/w/a b", "/env.php/a b")
            );
        }
        assert_eq!(
            shape(sf, Some("/x"), None, true),
            s("/x", "/a b", "/w/a b", "/x/a b")
        );
        let double = "proxy:fcgi://localhost/w/env.php/a%2520b";
        assert_eq!(
            shape(double, Some("/env.php/a%20b"), None, true).1,
            "/a%20b"
        );
        let plus = "proxy:fcgi://localhost/w/env.php/a+b%zz";
        assert_eq!(
            shape(plus, Some("/env.php/a+b%zz"), None, true).1,
            "/a+b%zz"
        );
        // Not decoded without a SCRIPT_NAME, nor with a PATH_INFO param.
        assert_eq!(shape(sf, None, None, true).1, "/a%20b");
        assert_eq!(shape(sf, Some("/env.php"), Some("/a b"), true).1, "/a%20b");
    }

    #[test]
    fn apache_proxy_with_another_path_info_keeps_it_whole() {
        // As php-fpm8.2 answers: the old PATH_INFO becomes SCRIPT_NAME whatever its
        // length (shorter than the stripped tail used to panic).
        for pi in ["/z", "/a/b/c/d/e/f/g/h"] {
            let (r, p) = run(
                &[
                    (
                        "SCRIPT_FILENAME",
                        "proxy:fcgi://localhost/w/env.php/foo/bar",
                    ),
                    ("SCRIPT_NAME", "/s/env.php/foo/bar"),
                    ("PATH_INFO", pi),
                ],
                true,
            );
            assert_eq!(r.script.as_deref(), Some(&b"/w/env.php"[..]));
            assert_eq!(get(&p, "SCRIPT_NAME").as_deref(), Some(pi));
            assert_eq!(get(&p, "PATH_INFO").as_deref(), Some("/foo/bar"));
            assert_eq!(get(&p, "ORIG_PATH_INFO").as_deref(), Some(pi));
            assert_eq!(
                get(&p, "ORIG_SCRIPT_NAME").as_deref(),
                Some("/s/env.php/foo/bar")
            );
            assert_eq!(r.php_self, format!("{pi}/foo/bar").into_bytes());
        }
    }

    #[test]
    fn missing_and_directory_are_unknown() {
        assert_eq!(
            run(&[("SCRIPT_FILENAME", "/w/nope.php")], true).0.script,
            None
        );
        assert_eq!(run(&[("SCRIPT_FILENAME", "/w/")], true).0.script, None);
        assert_eq!(run(&[], true).0.script, None);
    }

    #[test]
    fn dotdot_is_refused() {
        assert_eq!(
            run(&[("SCRIPT_FILENAME", "/w/../w/env.php")], true)
                .0
                .script,
            None
        );
    }

    #[test]
    fn no_fix_pathinfo() {
        let (r, _) = run(
            &[
                ("SCRIPT_FILENAME", "/w/env.php"),
                ("PATH_INFO", "/foo/bar"),
                ("SCRIPT_NAME", "/env.php"),
            ],
            false,
        );
        assert_eq!(r.php_self, b"/foo/bar");
        let (r, _) = run(
            &[
                ("SCRIPT_FILENAME", "/w/env.php"),
                ("PATH_TRANSLATED", "/w/hello.php"),
            ],
            false,
        );
        assert_eq!(r.script.as_deref(), Some(&b"/w/hello.php"[..]));
    }
}
