//! Feeds arbitrary bytes to the php-fpm.conf loader: loading, validation (with a system
//! that answers everything and touches nothing), the `-tt` dump and the rendering must
//! never panic; a configuration that loads and validates renders to a file that loads and
//! validates to the same dump, byte for byte (values that are not UTF-8 included).
#![no_main]

use conf::{dump, dump_bytes, load_str, render, validate, AcceptAllSys, LoadOptions};
use libfuzzer_sys::fuzz_target;

fn opts() -> LoadOptions {
    LoadOptions {
        // A prefix that does not exist: relative `include` patterns glob nothing.
        prefix: None,
        install_prefix: "/nonexistent-rfpm-fuzz".into(),
        env: Box::new(|n| match n {
            b"A" => Some("alpha".into()),
            b"B" => Some("on".into()),
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
    if validate(&mut first.config, &AcceptAllSys, &o).is_err() {
        return;
    }
    let _ = dump(&first.config);
    let d1 = dump_bytes(&first.config);
    let rendered = render(&first.config);
    let shown = String::from_utf8_lossy(&rendered);
    let Ok(mut second) = load_str("rendered.conf", &rendered, &o) else {
        panic!("rendered configuration does not load:\n{shown}");
    };
    if validate(&mut second.config, &AcceptAllSys, &o).is_err() {
        panic!("rendered configuration does not validate:\n{shown}");
    }
    assert_eq!(d1, dump_bytes(&second.config), "rendered:\n{shown}");
});
