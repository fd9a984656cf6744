//! Small process helpers: signals and the process tree from /proc.

use std::io;

/// Sends `sig` to `pid` (refuses a pid that would name a group or every process).
pub fn send_signal(pid: u32, sig: i32) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pid out of range"))?;
    if pid <= 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "refusing pid <= 0",
        ));
    }
    rfpm_sys::process::kill(pid, sig)
}

/// `(ppid, state)` of a process, from `/proc/<pid>/stat`.
fn stat_of(pid: u32) -> Option<(u32, char)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain anything: parse after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((ppid, state))
}

/// Whether `pid` exists and is not a zombie.
pub fn process_alive(pid: u32) -> bool {
    matches!(stat_of(pid), Some((_, state)) if state != 'Z' && state != 'X')
}

/// Live (non-zombie) children of `pid`, sorted.
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in entries.flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some((ppid, state)) = stat_of(child) {
            if ppid == pid && state != 'Z' && state != 'X' {
                out.push(child);
            }
        }
    }
    out.sort_unstable();
    out
}

/// The process title as `ps` shows it: `/proc/<pid>/cmdline` up to the first NUL (a title set
/// by rewriting the argv area is NUL-padded). Empty if the process is gone.
pub fn process_title(pid: u32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let first = raw.split(|&b| b == 0).next().unwrap_or(&[]);
    String::from_utf8_lossy(first).into_owned()
}

/// Where each of a process's open descriptors points (`/proc/PID/fd` links:
/// `socket:[inode]`, `pipe:[inode]`, paths); empty if the process is gone.
pub fn fd_links(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .map(|l| l.to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}
