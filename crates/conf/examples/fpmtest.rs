//! `fpmtest [-R] [-p PREFIX] [-g PID] [-t|-tt] -y FILE`: the conf crate's
//! rendition of `php-fpm8.2 -n -t[t] …` on stderr (for comparing by hand).
use std::path::{Path, PathBuf};

use conf::{config_test, LoadOptions, LogFile, Sys, SysError, UserInfo};

struct StdSys;

fn passwd_lookup(field: usize, key: &str) -> Option<UserInfo> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 7 && f[field] == key).then(|| UserInfo {
            name: f[0].into(),
            uid: f[2].parse().unwrap_or(0),
            gid: f[3].parse().unwrap_or(0),
            home: f[5].into(),
        })
    })
}

impl Sys for StdSys {
    fn is_dir(&self, p: &Path) -> bool {
        p.is_dir()
    }
    fn user_by_name(&self, n: &[u8]) -> Result<UserInfo, SysError> {
        passwd_lookup(0, &String::from_utf8_lossy(n)).ok_or_else(SysError::not_found)
    }
    fn user_by_uid(&self, uid: u32) -> Result<UserInfo, SysError> {
        passwd_lookup(2, &uid.to_string()).ok_or_else(SysError::not_found)
    }
    fn group_by_name(&self, n: &[u8]) -> Result<u32, SysError> {
        let n = &*String::from_utf8_lossy(n);
        let text = std::fs::read_to_string("/etc/group").map_err(|_| SysError::not_found())?;
        text.lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 3 && f[0] == n).then(|| f[2].parse().unwrap_or(0))
            })
            .ok_or_else(SysError::not_found)
    }
    fn open_log(&self, _w: &LogFile, path: &Path) -> Result<(), SysError> {
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .map(|_| ())
            .map_err(|e| SysError {
                errno: e.raw_os_error().unwrap_or(0),
                text: {
                    let t = e.to_string();
                    t.split(" (os error").next().unwrap_or("").to_string()
                },
            })
    }
}

fn main() {
    let mut opts = LoadOptions {
        is_root: std::fs::metadata("/proc/self")
            .map(|_| true)
            .unwrap_or(false)
            && std::env::var("USER").map(|u| u == "root").unwrap_or(true),
        ..LoadOptions::default()
    };
    let mut path = PathBuf::from("/etc/php/8.2/fpm/php-fpm.conf");
    let mut full = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "-R" => opts.allow_root = true,
            "-p" => opts.prefix = args.next().map(PathBuf::from),
            "-g" => opts.pid_override = args.next(),
            "-y" => path = args.next().map(PathBuf::from).unwrap_or(path),
            "-D" => opts.daemonize_override = Some(true),
            "-F" => opts.daemonize_override = Some(false),
            "-t" => {}
            "-tt" => full = true,
            _ => {}
        }
    }
    let (lines, rc) = config_test(&path, &opts, &StdSys, full);
    for l in lines {
        eprintln!("{l}");
    }
    std::process::exit(rc);
}
