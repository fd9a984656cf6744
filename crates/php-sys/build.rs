//! Builds the C shim and generates the bindings to libphp8.2 from the headers that
//! `php-config8.2 --includes` names. Only the allowlisted items are generated.
use std::env;
use std::path::PathBuf;
use std::process::Command;

fn php_includes() -> Vec<String> {
    let cfg = env::var("PHP_CONFIG").unwrap_or_else(|_| "php-config8.2".to_string());
    let out = Command::new(&cfg)
        .arg("--includes")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cfg} (install php8.2-dev: `make deps`): {e}"));
    assert!(out.status.success(), "{cfg} --includes failed");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|s| s.strip_prefix("-I").map(str::to_string))
        .collect()
}

fn main() {
    let includes = php_includes();
    println!("cargo:rerun-if-changed=csrc/shim.c");
    println!("cargo:rerun-if-changed=csrc/shim.h");
    println!("cargo:rerun-if-changed=csrc/wrapper.h");
    println!("cargo:rerun-if-env-changed=PHP_CONFIG");

    let mut build = cc::Build::new();
    build
        .file("csrc/shim.c")
        .include("csrc")
        .warnings(true)
        .flag_if_supported("-Wno-unused-parameter");
    for i in &includes {
        build.include(i);
    }
    build.compile("rfpm_shim");
    println!("cargo:rustc-link-lib=dylib=php8.2");

    let mut b = bindgen::Builder::default()
        .header("csrc/wrapper.h")
        .clang_arg("-Icsrc")
        .allowlist_function("php_.*|sapi_.*|zend_.*|rfpm_shim_.*|add_assoc_.*|add_next_index_.*|get_zend_version|_emalloc|_efree|_estrdup|_estrndup")
        .allowlist_var("sapi_module|sapi_globals|executor_globals|core_globals|php_import_environment_variables|php_load_environment_variables|zend_error_cb|SAPI_.*|PARSE_.*|ZEND_INI_.*|PHP_VERSION|ZEND_VERSION|ZEND_MODULE_API_NO|IS_.*|E_.*|rfpm_shim_.*")
        .allowlist_type("sapi_.*|zend_file_handle|zend_llist.*|zend_module_entry|zval|php_sys_.*|rfpm_shim_.*")
        .default_enum_style(bindgen::EnumVariation::Rust { non_exhaustive: false })
        .derive_default(true)
        .layout_tests(true)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
    for i in &includes {
        b = b.clang_arg(format!("-I{i}"));
    }
    let bindings = b.generate().expect("bindgen over the PHP headers failed");
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("write bindings.rs");
}
