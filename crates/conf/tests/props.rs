//! Property tests: the loader never panics, and a configuration that loads
//! and validates renders (`conf::render`) to a file that loads and validates
//! to the same `-tt` dump.

use conf::{dump, dump_bytes, load_str, render, validate, AcceptAllSys, LoadOptions};
use proptest::prelude::*;

fn opts() -> LoadOptions {
    LoadOptions {
        env: Box::new(|n| match n {
            b"A" => Some(b"alpha".to_vec()),
            b"B" => Some(b"on".to_vec()),
            _ => None,
        }),
        ..LoadOptions::default()
    }
}

/// Every directive a generated line may use: each scalar of the tables by name, each
/// array with a key (`access.suppress_path[]` without), and `include`.
fn directives() -> Vec<String> {
    let global = conf::directives::GLOBAL
        .iter()
        .map(|d| (d.name, d.is_array()));
    let pool = conf::directives::POOL
        .iter()
        .map(|d| (d.name, d.is_array()));
    global
        .chain(pool)
        .map(|(name, array)| match (array, name) {
            (false, _) => name.to_string(),
            (true, "access.suppress_path") => format!("{name}[]"),
            (true, _) => format!("{name}[k]"),
        })
        .chain(["include".to_string()])
        .collect()
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("on".to_string()),
        Just("off".to_string()),
        Just("null".to_string()),
        Just("E_ALL & ~E_NOTICE".to_string()),
        Just("static".to_string()),
        Just("dynamic".to_string()),
        Just("ondemand".to_string()),
        Just("unlimited".to_string()),
        Just("\"${A}/x\"".to_string()),
        Just("${B}".to_string()),
        Just("/$pool/x".to_string()),
        Just("'raw ${A}'".to_string()),
        (0i32..2000).prop_map(|n| n.to_string()),
        (-30i32..30).prop_map(|n| n.to_string()),
        "[0-9]{1,3}[smhd]",
        "/[a-z/._~-]{0,12}",
        "[ -~]{0,16}",
    ]
}

/// Pool directives whose values keep the file's bytes (absolute paths, so that
/// validation keeps them as written).
const BYTE_DIRECTIVES: &[&str] = &[
    "chdir",
    "chroot",
    "access.log",
    "slowlog",
    "env[X]",
    "env[Y\u{e9}]",
    "php_value[k]",
    "php_admin_value[error_log]",
];

/// An absolute path with bytes that are not UTF-8.
fn raw_value() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop_oneof![0x80u8..=0xff, b'a'..=b'z'], 1..10).prop_map(|mut v| {
        v.insert(0, b'/');
        v
    })
}

fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (prop::sample::select(directives()), value()).prop_map(|(d, v)| format!("{d} = {v}")),
        1 => "[a-c]{1,2}".prop_map(|s| format!("[{s}]")),
        1 => Just("[global]".to_string()),
        1 => "[ -~]{0,30}",
    ]
}

fn valid_pool() -> impl Strategy<Value = String> {
    ("[a-z]{1,6}", 1i32..20).prop_map(|(name, ch)| {
        format!("[{name}]\nlisten = /tmp/{name}.sock\npm = static\npm.max_children = {ch}\n")
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn no_panic_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let o = opts();
        if let Ok(mut l) = load_str("fuzz.conf", &bytes, &o) {
            let _ = validate(&mut l.config, &AcceptAllSys, &o);
            let _ = dump(&l.config);
            let _ = render(&l.config);
        }
    }

    #[test]
    fn no_panic_on_lines(lines in prop::collection::vec(line(), 0..30)) {
        let text = lines.join("\n");
        let o = opts();
        if let Ok(mut l) = load_str("fuzz.conf", text.as_bytes(), &o) {
            let _ = validate(&mut l.config, &AcceptAllSys, &o);
            let _ = dump(&l.config);
        }
    }

    #[test]
    fn render_roundtrip(pool in valid_pool(), lines in prop::collection::vec(line(), 0..20)) {
        let lines: Vec<String> = lines.into_iter().filter(|l| !l.starts_with("include")).collect();
        let text = format!("{pool}{}\n", lines.join("\n"));
        let o = opts();
        let Ok(mut first) = load_str("a.conf", text.as_bytes(), &o) else { return Ok(()); };
        if validate(&mut first.config, &AcceptAllSys, &o).is_err() {
            return Ok(());
        }
        let d1 = dump_bytes(&first.config);
        // A value with a newline or NUL (php-fpm keeps the newline of `prefix = $`) has no
        // form in the line-based format: render writes it truncated (see its doc).
        if d1.iter().any(|l| l.contains(&b'\n') || l.contains(&0)) {
            return Ok(());
        }
        let rendered = render(&first.config);
        let shown = String::from_utf8_lossy(&rendered).into_owned();
        let mut second = load_str("b.conf", &rendered, &o)
            .map_err(|f| TestCaseError::fail(format!("{shown}\n{:?}", f.diags)))?;
        validate(&mut second.config, &AcceptAllSys, &o)
            .map_err(|f| TestCaseError::fail(format!("{shown}\n{:?}", f.diags)))?;
        prop_assert_eq!(d1, dump_bytes(&second.config), "rendered:\n{}", shown);
    }

    /// Values that are not UTF-8 (any byte from 0x80) in the directives that keep the
    /// file's bytes reach the configuration exactly, `-tt` prints them exactly, and they
    /// render to a file that loads back to the same bytes.
    #[test]
    fn bytes_are_kept_and_render_back(
        pool in valid_pool(),
        values in prop::collection::vec((prop::sample::select(BYTE_DIRECTIVES), raw_value()), 1..8),
    ) {
        let mut text = pool.into_bytes();
        for (d, v) in &values {
            text.extend_from_slice(d.as_bytes());
            text.extend_from_slice(b" = \"");
            text.extend_from_slice(v);
            text.extend_from_slice(b"\"\n");
        }
        let o = opts();
        let mut first = load_str("a.conf", &text, &o)
            .map_err(|f| TestCaseError::fail(format!("{:?}", f.diags)))?;
        if validate(&mut first.config, &AcceptAllSys, &o).is_err() {
            return Ok(());
        }
        let d1 = dump_bytes(&first.config);
        // The last value of a directive is the one kept (an array keeps each key's).
        for (d, v) in &values {
            let last = values.iter().rev().find(|(e, _)| e == d).map(|(_, w)| w);
            if last == Some(v) && !d.contains('[') {
                let mut want = format!("\t{d} = ").into_bytes();
                want.extend_from_slice(v);
                prop_assert!(d1.contains(&want), "{} = {:?} not in the dump", d, v);
            }
        }
        let rendered = render(&first.config);
        let mut second = load_str("b.conf", &rendered, &o)
            .map_err(|f| TestCaseError::fail(format!("{:?}", f.diags)))?;
        validate(&mut second.config, &AcceptAllSys, &o)
            .map_err(|f| TestCaseError::fail(format!("{:?}", f.diags)))?;
        prop_assert_eq!(d1, dump_bytes(&second.config));
    }
}
