//! Process titles (reference §3.11): `php-fpm: master process (<config>)` and
//! `php-fpm: pool <name>`, as `ps` and `/proc/PID/cmdline` show them.
//!
//! Linux shows the memory that held the original argv (and, past it, the environment
//! strings). The environment is first moved to the heap (every variable set again), so
//! the whole area is ours to overwrite; the command line itself was copied by `main`
//! before (`std::env::args` must not be used afterwards).

/// The writable area: address and length of the original argv + environment strings.
#[derive(Debug, Clone, Copy)]
pub struct Area {
    start: usize,
    len: usize,
}

/// Fields `arg_start` and `env_end` of `/proc/self/stat` (pure).
fn parse_stat(stat: &str) -> Option<(usize, usize)> {
    // Fields after the command name (which may contain spaces) start at field 3.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<usize>().ok());
    let (arg_start, env_end) = (field(48)?, field(51)?);
    (env_end > arg_start).then_some((arg_start, env_end))
}

/// Prepares the area; `None` where the kernel does not say where it is.
pub fn init() -> Option<Area> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let (start, end) = parse_stat(&stat)?;
    // Re-setting every variable makes libc copy it to the heap and point `environ` there.
    for (k, v) in std::env::vars_os() {
        std::env::set_var(k, v);
    }
    Some(Area {
        start,
        len: end - start,
    })
}

/// Writes `title` (cut to fit), NUL-padded over the whole area.
/// Bytes shown in `title` through [`rfpm_core::shown::Shown`] (a pool name or a path
/// that is not UTF-8) are written as the bytes they are, as php-fpm's titles hold them.
pub fn set(area: Area, title: &str) {
    let bytes = &*rfpm_core::shown::unshow(title);
    let n = bytes.len().min(area.len.saturating_sub(1));
    let p = std::ptr::with_exposed_provenance_mut::<u8>(area.start);
    // SAFETY: [start, start+len) is this process's original argv/environment block, as
    // the kernel reports it: writable memory at the top of the main stack that lives as
    // long as the process. Nothing reads it any more: `init` moved the environment to
    // the heap and `main` copied the arguments before. `n < len`, and `bytes` (our own
    // string) cannot overlap it.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, n);
        std::ptr::write_bytes(p.add(n), 0, area.len - n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields() {
        let mut fields: Vec<String> = (3..=52).map(|i| i.to_string()).collect();
        fields[48 - 3] = "1000".into();
        fields[51 - 3] = "1800".into();
        let stat = format!("42 (a (b) c) {}", fields.join(" "));
        assert_eq!(parse_stat(&stat), Some((1000, 1800)));
        assert_eq!(parse_stat("42 (x) S 1"), None);
    }
}
