//! Property tests: the loader never panics, and a configuration that loads
//! and validates renders (`conf::render`) to a file that loads and validates
//! to the same `-tt` dump.

use conf::{dump, load_str, render, validate, AcceptAllSys, LoadOptions};
use proptest::prelude::*;

fn opts() -> LoadOptions {
    LoadOptions {
        env: Box::new(|n| match n {
            "A" => Some("alpha".into()),
            "B" => Some("on".into()),
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
        let d1 = dump(&first.config);
        // A value with a newline or NUL (php-fpm keeps the newline of `prefix = $`) has no
        // form in the line-based format: render writes it truncated (see its doc).
        if d1.iter().any(|l| l.contains(['\n', '\0'])) {
            return Ok(());
        }
        let rendered = render(&first.config);
        let mut second = load_str("b.conf", rendered.as_bytes(), &o)
            .map_err(|f| TestCaseError::fail(format!("{rendered}\n{:?}", f.diags)))?;
        validate(&mut second.config, &AcceptAllSys, &o)
            .map_err(|f| TestCaseError::fail(format!("{rendered}\n{:?}", f.diags)))?;
        prop_assert_eq!(d1, dump(&second.config), "rendered:\n{}", rendered);
    }
}
