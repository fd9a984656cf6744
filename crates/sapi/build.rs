//! Builds FPM's C shim (`csrc/shim.c`: FPM's PHP module, `.user.ini`, the `zend_try`
//! wrappers of the request cycle) against the PHP headers php-sys found
//! (`DEP_PHP_INCLUDE`), and generates the Rust view of its interface (`csrc/shim.h`).
use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=csrc/shim.c");
    println!("cargo:rerun-if-changed=csrc/shim.h");
    let includes = env::var_os("DEP_PHP_INCLUDE")
        .expect("php-sys hands on PHP's include directories (DEP_PHP_INCLUDE)");

    let mut build = cc::Build::new();
    build
        .file("csrc/shim.c")
        .include("csrc")
        .warnings(true)
        .flag_if_supported("-Wno-unused-parameter");
    for i in env::split_paths(&includes) {
        build.include(i);
    }
    build.compile("rfpm_shim");

    // shim.h needs no PHP header: only our own types and functions are generated.
    let bindings = bindgen::Builder::default()
        .header("csrc/shim.h")
        .allowlist_function("rfpm_shim_.*")
        .allowlist_var("rfpm_shim_.*")
        .allowlist_type("rfpm_shim_.*")
        .default_enum_style(bindgen::EnumVariation::Rust {
            non_exhaustive: false,
        })
        .derive_default(true)
        .layout_tests(true)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .expect("bindgen over csrc/shim.h failed");
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    bindings
        .write_to_file(out.join("shim.rs"))
        .expect("write shim.rs");
}
