//! The configuration stage of start-up: which file, loading and validating it (crate
//! `conf`, pure) with the effects done here (log files, user lookups), the error log
//! set up, and the pools made ready to run.
use crate::cli::{Cli, EX_CONFIG};
use crate::log;
use crate::pool::Pool;
use rfpm_sys::{fd, identity, process};
use std::cell::Cell;
use std::path::{Path, PathBuf};

/// rfpm's own default configuration file (php-fpm's is `<sysconfdir>/php-fpm.conf`).
pub const DEFAULT_CONFIG: &str = "/etc/rfpm/php-fpm.conf";

/// What `main` needs once the configuration is in.
pub struct Loaded {
    pub config: conf::Config,
    /// The path as php-fpm shows it in `test is successful`.
    pub path_shown: String,
    pub daemonize: bool,
    pub pid_file: Option<String>,
    pub process_control_timeout: u64,
}

/// The configuration used when no `-y` is given and the default file does not exist.
fn builtin(is_root: bool, allow_root: bool) -> String {
    let mut s = String::from(
        "[global]\n\
         daemonize = no\n\
         \n\
         [www]\n\
         listen = 127.0.0.1:9000\n\
         pm = static\n\
         pm.max_children = 4\n",
    );
    if is_root && !allow_root && identity::user_by_name("www-data").is_some() {
        s.push_str("user = www-data\ngroup = www-data\n");
    }
    s
}

fn print_diags(diags: &[conf::Diag]) {
    for d in diags {
        match d.level {
            Some(level) => crate::log_at!(level, "{}", d.text),
            // PHP's own line (`PHP:  syntax error, …`), verbatim.
            None => eprintln!("{}", d.text),
        }
    }
}

fn fail(diags: &[conf::Diag]) -> i32 {
    print_diags(diags);
    crate::error!("FPM initialization failed");
    EX_CONFIG
}

fn sys_err(e: &std::io::Error) -> conf::SysError {
    let errno = e.raw_os_error().unwrap_or(0);
    conf::SysError {
        errno,
        text: rfpm_sys::strerror(errno),
    }
}

/// The operating system for `conf::validate`.
struct OsSys {
    /// Master logs to stderr (foreground and a TTY or `-O`): the error log file is
    /// created but stays unused.
    use_stderr: bool,
    opened_error_log: Cell<bool>,
}

impl conf::Sys for OsSys {
    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }

    fn user_by_name(&self, name: &str) -> Result<conf::UserInfo, conf::SysError> {
        identity::user_by_name(name)
            .map(|u| conf::UserInfo {
                name: u.name,
                uid: u.uid,
                gid: u.gid,
                home: u.home,
            })
            .ok_or_else(conf::SysError::not_found)
    }

    fn user_by_uid(&self, uid: u32) -> Result<conf::UserInfo, conf::SysError> {
        identity::user_by_uid(uid)
            .map(|u| conf::UserInfo {
                name: u.name,
                uid: u.uid,
                gid: u.gid,
                home: u.home,
            })
            .ok_or_else(conf::SysError::not_found)
    }

    fn group_by_name(&self, name: &str) -> Result<u32, conf::SysError> {
        identity::group_by_name(name).ok_or_else(conf::SysError::not_found)
    }

    fn open_log(&self, which: &conf::LogFile, path: &str) -> Result<(), conf::SysError> {
        match which {
            conf::LogFile::ErrorLog => {
                if self.use_stderr {
                    log::open_log_file(Path::new(path))
                        .map(drop)
                        .map_err(|e| sys_err(&e))
                } else {
                    log::with(|l| l.open_file(Path::new(path))).map_err(|e| sys_err(&e))?;
                    self.opened_error_log.set(true);
                    Ok(())
                }
            }
            // Access and slow logs are created now; writing them lands with their issues.
            _ => log::open_log_file(Path::new(path))
                .map(drop)
                .map_err(|e| sys_err(&e)),
        }
    }

    fn current_ids(&self) -> (u32, u32) {
        (process::geteuid(), process::getegid())
    }
}

/// The command line's part of the configuration stage.
fn options(c: &Cli) -> conf::LoadOptions {
    conf::LoadOptions {
        prefix: c.prefix.as_ref().map(PathBuf::from),
        pid_override: c.pid.clone(),
        daemonize_override: c.daemonize,
        is_root: process::geteuid() == 0,
        allow_root: c.allow_root,
        ..conf::LoadOptions::default()
    }
}

/// Loads, validates and prepares the configuration. `Err` is the exit code (the
/// messages were logged).
pub fn load(c: &Cli) -> Result<Loaded, i32> {
    let opts = options(c);
    let is_root = opts.is_root;
    if let Some(p) = &c.prefix {
        if !Path::new(p).is_dir() {
            return Err(fail(&[conf::Diag::error(format!(
                "the global prefix '{p}' does not exist or is not a directory"
            ))]));
        }
    }

    let given = c
        .fpm_config
        .clone()
        .filter(|s| !s.is_empty())
        .or_else(|| sapi::ini_string("fpm.config").filter(|s| !s.is_empty()));
    let path = match (&given, &c.prefix) {
        (Some(p), _) => p.clone(),
        (None, Some(prefix)) => format!("{prefix}/etc/php-fpm.conf"),
        (None, None) => DEFAULT_CONFIG.to_string(),
    };
    let builtin_default = given.is_none() && c.prefix.is_none() && !Path::new(&path).exists();
    let loaded = if builtin_default {
        crate::notice!(
            "no configuration file '{DEFAULT_CONFIG}': running the built-in default configuration (pool www on 127.0.0.1:9000)"
        );
        conf::load_str(
            DEFAULT_CONFIG,
            builtin(is_root, c.allow_root).as_bytes(),
            &opts,
        )
    } else {
        conf::load(Path::new(&path), &opts)
    };
    let mut loaded = loaded.map_err(|f| fail(&f.diags))?;
    print_diags(&loaded.diags);

    // php-fpm applies log_level first thing in post-processing: validation's own
    // notices are already filtered by it.
    if let Some(level) = loaded.config.global.log_level {
        log::with(|l| l.set_level(level));
    }
    let daemonize = c.daemonize.unwrap_or(loaded.config.global.daemonize);
    let use_stderr =
        builtin_default || (!daemonize && (fd::isatty(fd::Stdio::Err.borrow()) || c.force_stderr));
    let sys = OsSys {
        use_stderr,
        opened_error_log: Cell::new(false),
    };
    let diags = conf::validate(&mut loaded.config, &sys, &opts).map_err(|f| fail(&f.diags))?;
    print_diags(&diags);
    if c.test > 0 {
        conf::test_identities(&loaded.config, &sys).map_err(|f| fail(&f.diags))?;
    }

    let g = &loaded.config.global;
    log::with(|l| {
        l.set_limit(g.log_limit.get());
        if g.error_log
            .as_deref()
            .is_some_and(|e| e.eq_ignore_ascii_case("syslog"))
            && !use_stderr
        {
            let ident = g.syslog_ident.clone().unwrap_or_else(|| "php-fpm".into());
            l.open_syslog(&ident, g.syslog_facility);
        }
    });

    let g = &loaded.config.global;
    Ok(Loaded {
        path_shown: path,
        daemonize: g.daemonize,
        pid_file: g.pid.clone(),
        process_control_timeout: g.process_control_timeout.get(),
        config: loaded.config,
    })
}

/// The global `rlimit_files` / `rlimit_core`, set on the master before it daemonises
/// (reference §2.7); a failure is fatal (exit 78).
pub fn apply_global_limits(g: &conf::GlobalConf) -> Result<(), i32> {
    for (which, value, name, res) in [
        (
            identity::Rlimit::Files,
            g.rlimit_files,
            "rlimit_files",
            "RLIMIT_NOFILE",
        ),
        (
            identity::Rlimit::Core,
            g.rlimit_core,
            "rlimit_core",
            "RLIMIT_CORE",
        ),
    ] {
        if value == 0 {
            continue;
        }
        if let Err(e) = identity::set_rlimit(which, value) {
            crate::error_sys!(
                e,
                "failed to set {name} for this pool. Please check your system limits or decrease {name}. setrlimit({res}, {value})"
            );
            crate::error!("FPM initialization failed");
            return Err(EX_CONFIG);
        }
    }
    Ok(())
}

/// The global `process.priority` (after daemonising): set when root, else php-fpm's
/// notice. `Err` is the exit code (messages logged).
pub fn apply_global_priority(config: &conf::Config, c: &Cli) -> Result<(), i32> {
    let opts = options(c);
    if let Some(d) = conf::global_priority_notice(config, &opts) {
        print_diags(&[d]);
        return Ok(());
    }
    let prio = config.global.process_priority;
    if opts.is_root && prio != conf::model::PRIORITY_UNSET {
        if let Err(e) = identity::set_priority(prio) {
            crate::error_sys!(e, "Unable to set priority for the master process");
            crate::error!("FPM initialization failed");
            return Err(EX_CONFIG);
        }
    }
    Ok(())
}

/// The pools ready to run: every pool's identity first (with the non-root notices),
/// then every pool's socket permissions, as php-fpm resolves them after daemonising.
/// `Err` is the exit code (messages logged).
pub fn pools(config: &conf::Config, c: &Cli) -> Result<Vec<Pool>, i32> {
    let opts = options(c);
    let sys = OsSys {
        use_stderr: true,
        opened_error_log: Cell::new(false),
    };
    let mut identities = Vec::new();
    for pc in &config.pools {
        match conf::resolve_identity(pc, &sys, &opts) {
            Ok((id, diags)) => {
                print_diags(&diags);
                identities.push(id);
            }
            Err(f) => return Err(fail(&f.diags)),
        }
    }
    let env = |n: &str| std::env::var(n).ok();
    let mut pools = Vec::new();
    for (pc, id) in config.pools.iter().zip(identities) {
        let perms = match conf::socket_permissions(pc, &sys) {
            Ok((perms, diags)) => {
                print_diags(&diags);
                perms
            }
            Err(f) => return Err(fail(&f.diags)),
        };
        pools.push(Pool::from_conf(pc, id, perms, opts.is_root, &env));
    }
    Ok(pools)
}
