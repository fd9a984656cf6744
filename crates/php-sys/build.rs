//! Builds the generic C helpers (`csrc/php_sys.c`) and generates the bindings to
//! libphp8.2 from the headers that `php-config8.2 --includes` names. Only the allowlisted
//! items are generated. The include directories are handed on to dependents' build
//! scripts as `DEP_PHP8.2_INCLUDE` (this crate `links = "php8.2"`), so a crate with C of
//! its own over PHP (sapi) compiles it against the same headers.
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
    println!("cargo:rerun-if-changed=csrc/php_sys.c");
    println!("cargo:rerun-if-changed=csrc/php_sys.h");
    println!("cargo:rerun-if-changed=csrc/wrapper.h");
    println!("cargo:rerun-if-env-changed=PHP_CONFIG");

    let mut build = cc::Build::new();
    build
        .file("csrc/php_sys.c")
        .include("csrc")
        .warnings(true)
        .flag_if_supported("-Wno-unused-parameter");
    for i in &includes {
        build.include(i);
    }
    build.compile("php_sys_c");
    println!("cargo:rustc-link-lib=dylib=php8.2");
    let joined = env::join_paths(&includes).expect("PHP include directories");
    println!("cargo:include={}", joined.to_string_lossy());

    let mut b = bindgen::Builder::default()
        .header("csrc/wrapper.h")
        .clang_arg("-Icsrc")
        .allowlist_function("php_.*|sapi_.*|zend_.*|add_assoc_.*|add_next_index_.*|get_zend_version|_emalloc|_efree|_estrdup|_estrndup")
        .allowlist_var("sapi_module|sapi_globals|executor_globals|core_globals|php_import_environment_variables|php_load_environment_variables|zend_error_cb|SAPI_.*|PARSE_.*|ZEND_INI_.*|PHP_VERSION|ZEND_VERSION|ZEND_MODULE_API_NO|IS_.*|E_.*")
        .allowlist_type("sapi_.*|zend_file_handle|zend_llist.*|zend_module_entry|zval|php_sys_.*")
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
