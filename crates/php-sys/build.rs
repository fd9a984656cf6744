//! Builds the generic C helpers (`csrc/php_sys.c`) and generates the bindings to
//! Debian's PHP embed library (libphp8.2, libphp8.4, …) from the headers that
//! `php-config --includes` names. Only the allowlisted items are generated.
//!
//! The PHP version comes from one place: the `php-config` chosen here (`$PHP_CONFIG`, else
//! the first of [`PHP_CONFIGS`] found). It names the headers, the library to link
//! (`libphp{major}.{minor}.so`), and is exported to the Rust code (`RFPM_PHP_MM`,
//! `RFPM_PHP_VERSION`, `RFPM_PHP_EXTENSION_DIR`; the headers' `PHP_VERSION_ID` through
//! bindgen). The include directories are handed on to dependents' build scripts as
//! `DEP_PHP_INCLUDE` (this crate `links = "php"`), so a crate with C of its own over PHP
//! (sapi) compiles it against the same headers.
use std::env;
use std::path::PathBuf;
use std::process::Command;

/// Looked for in this order when `PHP_CONFIG` is not set: the newest PHP first, so a
/// machine with several picks the one with the longest support.
const PHP_CONFIGS: &[&str] = &["php-config8.4", "php-config8.2", "php-config"];

/// The `php-config` of the PHP to build against, and what it says.
struct PhpConfig {
    cmd: String,
    /// `8.4.28`
    version: String,
    /// `8.4`
    major_minor: String,
}

impl PhpConfig {
    fn query(&self, arg: &str) -> String {
        let out = Command::new(&self.cmd)
            .arg(arg)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {} {arg}: {e}", self.cmd));
        assert!(out.status.success(), "{} {arg} failed", self.cmd);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn find() -> PhpConfig {
        println!("cargo:rerun-if-env-changed=PHP_CONFIG");
        let candidates: Vec<String> = match env::var("PHP_CONFIG") {
            Ok(c) if !c.is_empty() => vec![c],
            _ => PHP_CONFIGS.iter().map(|s| (*s).to_string()).collect(),
        };
        let cmd = candidates
            .iter()
            .find(|c| {
                Command::new(c)
                    .arg("--version")
                    .output()
                    .is_ok_and(|o| o.status.success())
            })
            .unwrap_or_else(|| {
                panic!(
                    "none of {} runs: install the PHP development package (php8.x-dev, \
                     `make deps`) or set PHP_CONFIG",
                    candidates.join(", ")
                )
            })
            .clone();
        let mut c = PhpConfig {
            cmd,
            version: String::new(),
            major_minor: String::new(),
        };
        c.version = c.query("--version");
        let mut parts = c.version.split('.');
        c.major_minor = match (parts.next(), parts.next()) {
            (Some(major), Some(minor)) => format!("{major}.{minor}"),
            _ => panic!("{} --version: unexpected {:?}", c.cmd, c.version),
        };
        c
    }

    fn includes(&self) -> Vec<String> {
        self.query("--includes")
            .split_whitespace()
            .filter_map(|s| s.strip_prefix("-I").map(str::to_string))
            .collect()
    }
}

/// Debian's `libphp8.x.so` names itself `libphp.so` (its SONAME), so a binary linked
/// against it would need `libphp.so`, a link `ldconfig` makes to whichever PHP embed
/// library it finds: with several PHP versions installed, which one loads is up to it.
/// The linker is given a copy of the library without its SONAME instead, found as
/// `-lphp8.x`: the binary then needs `libphp8.x.so` by that name, and the dynamic loader
/// loads exactly it (at run time the real file is used, the copy only at link time).
fn link_versioned(php: &PhpConfig) {
    let name = format!("php{}", php.major_minor);
    let prefix = Some(php.query("--prefix"))
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "/usr".into());
    let lib = PathBuf::from(prefix).join(format!("lib/lib{name}.so"));
    println!("cargo:rerun-if-changed={}", lib.display());
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR")).join("link");
    let bytes = std::fs::read(&lib).unwrap_or_else(|e| {
        panic!(
            "cannot read {} (install lib{name}-embed: `make deps`): {e}",
            lib.display()
        )
    });
    let stub = without_soname(bytes).unwrap_or_else(|| {
        panic!(
            "{}: not a 64-bit little-endian ELF shared library with a dynamic section",
            lib.display()
        )
    });
    std::fs::create_dir_all(&out).expect("create the link directory");
    std::fs::write(out.join(format!("lib{name}.so")), stub)
        .expect("write the link copy of the PHP library");
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-lib=dylib={name}");
    println!("cargo:rustc-env=RFPM_PHP_LIBRARY={}", lib.display());
}

/// The ELF shared library without its `DT_SONAME` entry (the later entries move up one;
/// the array still ends with `DT_NULL`). `None` when it is not a 64-bit little-endian ELF
/// with a well-formed dynamic segment.
fn without_soname(mut elf: Vec<u8>) -> Option<Vec<u8>> {
    const PT_DYNAMIC: u32 = 2;
    const DT_NULL: u64 = 0;
    const DT_SONAME: u64 = 14;
    let u16_at = |b: &[u8], o: usize| Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |b: &[u8], o: usize| Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |b: &[u8], o: usize| Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?));
    if elf.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let phoff = usize::try_from(u64_at(&elf, 0x20)?).ok()?;
    let phentsize = usize::from(u16_at(&elf, 0x36)?);
    let phnum = usize::from(u16_at(&elf, 0x38)?);
    let (dyn_off, dyn_size) = (0..phnum).find_map(|i| {
        let ph = phoff + i * phentsize;
        (u32_at(&elf, ph)? == PT_DYNAMIC).then_some(())?;
        Some((
            usize::try_from(u64_at(&elf, ph + 8)?).ok()?,
            usize::try_from(u64_at(&elf, ph + 32)?).ok()?,
        ))
    })?;
    let end = dyn_off.checked_add(dyn_size)?;
    elf.get(dyn_off..end)?;
    let mut at = dyn_off;
    while at + 16 <= end {
        match u64_at(&elf, at)? {
            // No SONAME: the linker records the name it found the file by already.
            DT_NULL => return Some(elf),
            DT_SONAME => {
                elf.copy_within(at + 16..end, at);
                elf[end - 16..end].fill(0);
                return Some(elf);
            }
            _ => at += 16,
        }
    }
    None
}

fn main() {
    let php = PhpConfig::find();
    let includes = php.includes();
    println!("cargo:rerun-if-changed=csrc/php_sys.c");
    println!("cargo:rerun-if-changed=csrc/php_sys.h");
    println!("cargo:rerun-if-changed=csrc/wrapper.h");
    println!("cargo:rustc-env=RFPM_PHP_MM={}", php.major_minor);
    println!("cargo:rustc-env=RFPM_PHP_VERSION={}", php.version);
    println!(
        "cargo:rustc-env=RFPM_PHP_EXTENSION_DIR={}",
        php.query("--extension-dir")
    );
    println!("cargo:version={}", php.major_minor);

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
    link_versioned(&php);
    let joined = env::join_paths(&includes).expect("PHP include directories");
    println!("cargo:include={}", joined.to_string_lossy());

    let mut b = bindgen::Builder::default()
        .header("csrc/wrapper.h")
        .clang_arg("-Icsrc")
        .allowlist_function("php_.*|sapi_.*|zend_.*|add_assoc_.*|add_next_index_.*|get_zend_version|_emalloc|_efree|_estrdup|_estrndup")
        .allowlist_var("sapi_module|sapi_globals|executor_globals|core_globals|php_import_environment_variables|php_load_environment_variables|zend_error_cb|SAPI_.*|PARSE_.*|ZEND_INI_.*|PHP_VERSION|PHP_VERSION_ID|ZEND_VERSION|ZEND_MODULE_API_NO|IS_.*|E_.*")
        .allowlist_type("sapi_.*|zend_file_handle|zend_llist.*|zend_module_entry|zval|php_sys_.*")
        .default_enum_style(bindgen::EnumVariation::Rust { non_exhaustive: false })
        // zend_startup() (php_module_startup calls it; rfpm never does) takes PHP 8.4's
        // zend_utility_functions, whose insecure-random-bytes state is a union with
        // max_align_t (a u128 to bindgen, not FFI-safe): left out, so improper_ctypes
        // stays quiet on 8.4 and the struct is not generated at all.
        .blocklist_function("zend_startup")
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
