//! Feeds arbitrary bytes to the php-fpm.conf loader: loading, validation (with a system
//! that answers everything and touches nothing), the `-tt` dump and the rendering must
//! never panic; a configuration that loads and validates renders to a file that loads and
//! validates to the same dump.
#![no_main]

use std::path::Path;

use conf::{dump, load_str, render, validate, LoadOptions, LogFile, Sys, SysError, UserInfo};
use libfuzzer_sys::fuzz_target;

struct OkSys;

impl Sys for OkSys {
    fn is_dir(&self, _p: &Path) -> bool {
        true
    }
    fn user_by_name(&self, n: &str) -> Result<UserInfo, SysError> {
        Ok(UserInfo {
            name: n.into(),
            uid: 1000,
            gid: 1000,
            home: "/home".into(),
        })
    }
    fn user_by_uid(&self, uid: u32) -> Result<UserInfo, SysError> {
        Ok(UserInfo {
            name: "u".into(),
            uid,
            gid: uid,
            home: "/home".into(),
        })
    }
    fn group_by_name(&self, _n: &str) -> Result<u32, SysError> {
        Ok(1000)
    }
    fn open_log(&self, _w: &LogFile, _p: &str) -> Result<(), SysError> {
        Ok(())
    }
}

fn opts() -> LoadOptions {
    LoadOptions {
        // A prefix that does not exist: relative `include` patterns glob nothing.
        prefix: None,
        install_prefix: "/nonexistent-rfpm-fuzz".into(),
        env: Box::new(|n| match n {
            "A" => Some("alpha".into()),
            "B" => Some("on".into()),
            _ => None,
        }),
        ..LoadOptions::default()
    }
}

fuzz_target!(|data: &[u8]| {
    // Absolute includes would read the real file system: not what this target is about.
    if data.windows(7).any(|w| w.eq_ignore_ascii_case(b"include")) {
        return;
    }
    let o = opts();
    let Ok(mut first) = load_str("fuzz.conf", data, &o) else {
        return;
    };
    if validate(&mut first.config, &OkSys, &o).is_err() {
        return;
    }
    let d1 = dump(&first.config);
    let rendered = render(&first.config);
    let Ok(mut second) = load_str("rendered.conf", rendered.as_bytes(), &o) else {
        panic!("rendered configuration does not load:\n{rendered}");
    };
    if validate(&mut second.config, &OkSys, &o).is_err() {
        panic!("rendered configuration does not validate:\n{rendered}");
    }
    assert_eq!(d1, dump(&second.config), "rendered:\n{rendered}");
});
