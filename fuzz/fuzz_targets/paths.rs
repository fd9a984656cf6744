//! The paths resolver: which script a request runs and how SCRIPT_NAME, PATH_INFO,
//! PATH_TRANSLATED and SCRIPT_FILENAME are rewritten (cgi.fix_pathinfo, the Apache
//! proxy prefix, the CVE-2019-11043 length guard, `..` segments). The params come from
//! the web server, so from anyone: arbitrary params and INI settings, against a made-up
//! file system, must never panic, and the script chosen is never longer than the paths
//! it was made from.
#![no_main]

use fcgi::params::Params;
use libfuzzer_sys::fuzz_target;
use rfpm_core::paths::{resolve, Kind, PathIni};

const NAMES: [&str; 8] = [
    "SCRIPT_FILENAME",
    "PATH_TRANSLATED",
    "SCRIPT_NAME",
    "PATH_INFO",
    "DOCUMENT_ROOT",
    "REQUEST_URI",
    "SERVER_SOFTWARE",
    "ORIG_PATH_INFO",
];

/// A file system where `*.php` names are files, names ending in `/` or without a dot
/// in their last segment are directories, and the rest does not exist.
fn probe(path: &[u8]) -> Kind {
    let last = path.rsplit(|&b| b == b'/').next().unwrap_or_default();
    if path.ends_with(b".php") {
        Kind::File
    } else if path.ends_with(b"/") || !last.contains(&b'.') {
        Kind::Other
    } else {
        Kind::Missing
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    // The rest: values separated by NUL, in the order of NAMES; a value of a single
    // 0xff byte leaves that param out. One more value, when present, is doc_root.
    let mut p = Params::new();
    let mut values = rest.split(|&b| b == 0);
    let mut total = 0;
    for name in NAMES {
        let Some(v) = values.next() else { break };
        total += v.len();
        if v != [0xff] {
            p.insert(name, v);
        }
    }
    let doc_root = values.next().map(<[u8]>::to_vec);
    total += doc_root.as_ref().map_or(0, Vec::len);
    let ini = PathIni {
        fix_pathinfo: flags & 1 != 0,
        discard_path: flags & 2 != 0,
        doc_root,
        proxy_decodes_path_info: flags & 4 != 0,
    };
    let exists = |path: &[u8]| probe(path) != Kind::Missing;
    let r = resolve(&mut p, &ini, &probe, &exists);
    if let Some(script) = &r.script {
        // Made by joining at most two of the inputs (and a '/').
        assert!(script.len() <= total + 1, "script longer than its sources");
    }
});
