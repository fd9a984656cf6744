//! Tells the binary which source it was built from: `RFPM_GIT_DESCRIBE` is `git describe`
//! of the checkout (empty when git or the repository is absent, as in a release tarball
//! or a package build; a packager may set `RFPM_GIT_DESCRIBE` itself).
use std::path::Path;
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-env-changed=RFPM_GIT_DESCRIBE");
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let dir = Path::new(&dir);
    let describe = match std::env::var("RFPM_GIT_DESCRIBE") {
        Ok(v) => v,
        Err(_) => {
            // Built again when HEAD moves (a commit, a checkout) or a tag is added.
            for (rev, file) in [
                ("--git-dir", "HEAD"),
                ("--git-dir", "logs/HEAD"),
                ("--git-common-dir", "packed-refs"),
                ("--git-common-dir", "refs/tags"),
            ] {
                if let Some(d) = git(dir, &["rev-parse", "--path-format=absolute", rev]) {
                    let p = Path::new(&d).join(file);
                    if p.exists() {
                        println!("cargo:rerun-if-changed={}", p.display());
                    }
                }
            }
            git(dir, &["describe", "--tags", "--always"]).unwrap_or_default()
        }
    };
    println!("cargo:rustc-env=RFPM_GIT_DESCRIBE={describe}");
}
