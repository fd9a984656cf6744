//! Memory of a process tree from /proc: PSS (`/proc/PID/smaps_rollup`) and RSS
//! (`/proc/PID/status`), in KiB.

use std::fs;

/// The `Pss:` line of an smaps_rollup text, KiB.
pub fn parse_pss_kib(smaps_rollup: &str) -> Option<u64> {
    kib_field(smaps_rollup, "Pss:")
}

/// The `VmRSS:` line of a status text, KiB.
pub fn parse_rss_kib(status: &str) -> Option<u64> {
    kib_field(status, "VmRSS:")
}

/// A `Name:   123 kB` line of a /proc text, KiB.
pub fn parse_kib_line(text: &str, name: &str) -> Option<u64> {
    kib_field(text, name)
}

fn kib_field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// The parent pid from a `/proc/PID/stat` text (the field after the `)` of the name).
pub fn parse_ppid(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

pub fn pss_kib(pid: u32) -> Option<u64> {
    parse_pss_kib(&fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?)
}

pub fn rss_kib(pid: u32) -> Option<u64> {
    parse_rss_kib(&fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// The direct children of `pid` (scan of /proc).
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out: Vec<u32> = dir
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|&p| {
            fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| parse_ppid(&s))
                == Some(pid)
        })
        .collect();
    out.sort_unstable();
    out
}

/// Memory of a master and its workers.
#[derive(Debug, Clone, Default)]
pub struct TreeMem {
    pub workers: usize,
    /// PSS of master + workers, KiB.
    pub pss_total_kib: u64,
    pub master_rss_kib: u64,
    /// Mean RSS of one worker, KiB.
    pub worker_rss_mean_kib: u64,
    pub worker_rss_max_kib: u64,
}

pub fn tree(master: u32) -> TreeMem {
    let workers = children(master);
    let rss: Vec<u64> = workers.iter().filter_map(|&p| rss_kib(p)).collect();
    let pss_total_kib =
        pss_kib(master).unwrap_or(0) + workers.iter().filter_map(|&p| pss_kib(p)).sum::<u64>();
    TreeMem {
        workers: workers.len(),
        pss_total_kib,
        master_rss_kib: rss_kib(master).unwrap_or(0),
        worker_rss_mean_kib: if rss.is_empty() {
            0
        } else {
            rss.iter().sum::<u64>() / rss.len() as u64
        },
        worker_rss_max_kib: rss.iter().copied().max().unwrap_or(0),
    }
}

/// A process's user + system time, clock ticks (`/proc/PID/stat` fields 14 and 15).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    Some(field(14)? + field(15)?)
}

/// The clock ticks of a master and its current workers (a process gone counts 0).
pub fn tree_ticks(master: u32) -> u64 {
    cpu_ticks(master).unwrap_or(0)
        + children(master)
            .into_iter()
            .filter_map(cpu_ticks)
            .sum::<u64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_texts() {
        let rollup = "55d0-7ffd [rollup]\nRss:               12345 kB\nPss:                4321 kB\nPss_Anon:            100 kB\n";
        assert_eq!(parse_pss_kib(rollup), Some(4321));
        assert_eq!(parse_rss_kib("Name:\tx\nVmRSS:\t   2048 kB\n"), Some(2048));
        assert_eq!(parse_ppid("42 (php-fpm: pool (x)) S 7 42 42 0"), Some(7));
        assert_eq!(parse_ppid("garbage"), None);
    }

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        assert!(pss_kib(me).is_some_and(|k| k > 0));
        assert!(rss_kib(me).is_some_and(|k| k > 0));
    }
}
