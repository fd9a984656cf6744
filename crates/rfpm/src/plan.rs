//! Planning: the command line and the configuration files become a [`Plan`] (crate
//! `conf` parses and validates; this module answers its questions about the system:
//! directories, users, log files). Planning touches nothing that runs: the logger keeps
//! its settings until [`Plan::commit_log`] (start-up commits at once; a reload that
//! finds the new configuration broken never commits and keeps serving).
use crate::cli::Cli;
use crate::error::Error;
use crate::log::{self, Level};
use crate::pool::Pool;
use rfpm_sys::{fd, identity, process};
use std::cell::RefCell;
use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// rfpm's own default configuration file (php-fpm's is `<sysconfdir>/php-fpm.conf`).
pub const DEFAULT_CONFIG: &str = "/etc/rfpm/php-fpm.conf";

/// A configuration ready to run, and what it asks of the logger.
pub struct Plan {
    pub config: conf::Config,
    /// The path as php-fpm shows it in `test is successful`.
    pub path_shown: String,
    /// No `-y` and no file at [`DEFAULT_CONFIG`]: the built-in default runs.
    pub builtin: bool,
    pub daemonize: bool,
    /// The pid file's exact path (a configured path need not be UTF-8).
    pub pid_file: Option<conf::Bytes>,
    pub process_control_timeout: u64,
    /// The error log's new settings, and what validation said (written once they apply).
    pub log: LogPlan,
}

/// What the logger becomes when a plan is committed.
#[derive(Debug, Default)]
pub struct LogPlan {
    /// What loading the files said (written first, at the logger's current level).
    early: Vec<conf::Diag>,
    /// `log_level`, when the configuration sets it.
    level: Option<Level>,
    /// `log_format = json` (rfpm).
    json: bool,
    /// The error log file validation opened.
    file: Option<(File, PathBuf)>,
    /// The master logs to stderr: the file is only held open (and reopened on SIGUSR1).
    file_held: bool,
    /// `log_limit` (php-fpm applies it after validation's messages).
    limit: Option<usize>,
    /// `error_log = syslog`: the ident and facility.
    syslog: Option<(Vec<u8>, i32)>,
    /// Validation's diagnostics, written once the level and the file apply.
    diags: Vec<conf::Diag>,
}

impl LogPlan {
    /// Writes what loading and validating said, changing nothing of the logger (a
    /// reload that will not go through tells why).
    pub fn print_said(&self) {
        print_diags(&self.early);
        print_diags(&self.diags);
    }

    /// Gives the logger its new settings, in php-fpm's order: what loading the files
    /// said, the level and the error
    /// log file, then validation's messages (filtered and written there), then
    /// `log_limit` and syslog.
    pub fn commit(self) {
        print_diags(&self.early);
        log::with(|l| {
            if let Some(level) = self.level {
                l.set_level(level);
            }
            l.set_json(self.json);
            if let Some((file, path)) = self.file {
                if self.file_held {
                    l.hold_file(file, path);
                } else {
                    l.set_dest(log::Dest::File { file, path });
                }
            }
        });
        print_diags(&self.diags);
        log::with(|l| {
            if let Some(limit) = self.limit {
                l.set_limit(limit);
            }
            if let Some((ident, facility)) = &self.syslog {
                l.open_syslog(ident, *facility);
            }
        });
    }
}

/// A configuration that did not plan: the error, and the logger settings php-fpm had
/// already taken when it failed (start-up commits them before logging the error, as
/// php-fpm writes such errors into the configured error log).
pub struct PlanFailure {
    pub error: Error,
    pub log: Box<LogPlan>,
}

impl From<Error> for PlanFailure {
    fn from(error: Error) -> Self {
        PlanFailure {
            error,
            log: Box::default(),
        }
    }
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
    if is_root && !allow_root && identity::user_by_name(b"www-data").is_some() {
        s.push_str("user = www-data\ngroup = www-data\n");
    }
    s
}

/// Writes diagnostics through the logger (PHP's own lines verbatim on stderr).
pub fn print_diags(diags: &[conf::Diag]) {
    for d in diags {
        match d.level {
            Some(level) => crate::log_at!(level, "{}", d.text),
            // PHP's own line (`PHP:  syntax error, …`), verbatim.
            None => {
                let mut line = rfpm_core::shown::unshow(&d.text).into_owned();
                line.push(b'\n');
                let _ = std::io::Write::write_all(&mut std::io::stderr(), &line);
            }
        }
    }
}

fn sys_err(e: &std::io::Error) -> conf::SysError {
    let errno = e.raw_os_error().unwrap_or(0);
    conf::SysError {
        errno,
        text: rfpm_sys::strerror(errno),
    }
}

/// A passwd entry as `conf` reads it.
fn user_info(u: identity::User) -> conf::UserInfo {
    conf::UserInfo {
        name: u.name,
        uid: u.uid,
        gid: u.gid,
        home: u.home,
    }
}

/// The operating system for `conf::validate`: it answers and opens, it changes
/// nothing that runs.
struct OsSys {
    /// The error log file, opened for the plan.
    error_log: RefCell<Option<(File, PathBuf)>>,
    /// The built-in default logs to stderr only: its error log is not opened (a user
    /// who may not write `/var/log` runs it too).
    no_error_log: bool,
}

/// The operating system as `conf` asks it, for resolving names at run time.
pub fn os_sys() -> impl conf::Sys {
    OsSys {
        error_log: RefCell::new(None),
        no_error_log: false,
    }
}

impl conf::Sys for OsSys {
    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }

    fn user_by_name(&self, name: &[u8]) -> Result<conf::UserInfo, conf::SysError> {
        identity::user_by_name(name)
            .map(user_info)
            .ok_or_else(conf::SysError::not_found)
    }

    fn user_by_uid(&self, uid: u32) -> Result<conf::UserInfo, conf::SysError> {
        identity::user_by_uid(uid)
            .map(user_info)
            .ok_or_else(conf::SysError::not_found)
    }

    fn group_by_name(&self, name: &[u8]) -> Result<u32, conf::SysError> {
        identity::group_by_name(name).ok_or_else(conf::SysError::not_found)
    }

    fn open_log(&self, which: &conf::LogFile, path: &Path) -> Result<(), conf::SysError> {
        match which {
            conf::LogFile::ErrorLog if self.no_error_log => Ok(()),
            conf::LogFile::ErrorLog => {
                let file = log::open_log_file(path).map_err(|e| sys_err(&e))?;
                *self.error_log.borrow_mut() = Some((file, path.to_path_buf()));
                Ok(())
            }
            // Access and slow logs are created now; writing them lands with their issues.
            _ => log::open_log_file(path).map(drop).map_err(|e| sys_err(&e)),
        }
    }

    fn current_ids(&self) -> (u32, u32) {
        (process::geteuid(), process::getegid())
    }

    fn readable_by(&self, path: &Path, ids: Option<(u32, u32)>) -> Result<(), conf::SysError> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).map_err(|e| sys_err(&e))?;
        if !meta.is_file() {
            return Err(sys_err(&std::io::Error::from_raw_os_error(
                if meta.is_dir() {
                    libc::EISDIR
                } else {
                    libc::EINVAL
                },
            )));
        }
        let readable = match ids {
            // This process: open it.
            None => return std::fs::File::open(path).map(drop).map_err(|e| sys_err(&e)),
            Some((0, _)) => true,
            Some((uid, _)) if meta.uid() == uid => meta.mode() & 0o400 != 0,
            Some((_, gid)) if meta.gid() == gid => meta.mode() & 0o040 != 0,
            Some(_) => meta.mode() & 0o004 != 0,
        };
        if readable {
            Ok(())
        } else {
            Err(sys_err(&std::io::Error::from_raw_os_error(libc::EACCES)))
        }
    }
}

/// The command line's part of the configuration stage.
pub fn options(c: &Cli) -> conf::LoadOptions {
    conf::LoadOptions {
        prefix: c
            .prefix
            .as_deref()
            .map(|p| PathBuf::from(OsStr::from_bytes(p))),
        pid_override: c.pid.clone(),
        daemonize_override: c.daemonize,
        is_root: process::geteuid() == 0,
        allow_root: c.allow_root,
        // Bare words are the embedded PHP's constants (`E_ALL` differs between PHP
        // versions), as in php-fpm, which parses its configuration after PHP started.
        constant: Box::new(sapi::constant),
        compat: sapi::COMPAT,
        ..conf::LoadOptions::default()
    }
}

/// Loads and validates the configuration. Messages of the files' own parsing are
/// logged at once; validation's wait in the plan's [`LogPlan`].
pub fn load(c: &Cli) -> Result<Plan, PlanFailure> {
    let opts = options(c);
    let is_root = opts.is_root;
    if let Some(p) = &c.prefix {
        if !Path::new(OsStr::from_bytes(p)).is_dir() {
            return Err(Error::Config(vec![conf::Diag::error(format!(
                "the global prefix '{}' does not exist or is not a directory",
                rfpm_core::shown::Shown(p)
            ))])
            .into());
        }
    }

    // The configuration file's path: the argument's bytes (a path need not be UTF-8).
    let given = c.fpm_config.clone().filter(|s| !s.is_empty()).or_else(|| {
        sapi::ini_string("fpm.config")
            .filter(|s| !s.is_empty())
            .map(String::into_bytes)
    });
    let path: Vec<u8> = match (&given, &c.prefix) {
        (Some(p), _) => p.clone(),
        (None, Some(prefix)) => [&prefix[..], b"/etc/php-fpm.conf"].concat(),
        (None, None) => DEFAULT_CONFIG.as_bytes().to_vec(),
    };
    let file = Path::new(OsStr::from_bytes(&path));
    let builtin_default = given.is_none() && c.prefix.is_none() && !file.exists();
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
        conf::load(file, &opts)
    };
    let mut loaded = loaded.map_err(|f| Error::Config(f.diags))?;

    // php-fpm applies log_level first thing in post-processing: validation's own
    // notices are already filtered by it.
    let mut log = LogPlan {
        early: std::mem::take(&mut loaded.diags),
        level: loaded.config.global.log_level,
        json: loaded.config.global.log_format.as_deref() == Some("json"),
        ..LogPlan::default()
    };
    let daemonize = c.daemonize.unwrap_or(loaded.config.global.daemonize);
    let use_stderr =
        builtin_default || (!daemonize && (fd::isatty(fd::Stdio::Err.borrow()) || c.force_stderr));
    let sys = OsSys {
        error_log: RefCell::new(None),
        no_error_log: builtin_default,
    };
    let validated = conf::validate(&mut loaded.config, &sys, &opts);
    log.file = sys.error_log.take();
    // Master logs to stderr (foreground and a TTY or `-O`): the error log file is opened
    // but unused; only SIGUSR1 reopens it, as php-fpm's.
    log.file_held = use_stderr;
    let diags = match validated {
        Ok(d) => d,
        Err(f) => {
            return Err(PlanFailure {
                error: Error::Config(f.diags),
                log: Box::new(log),
            })
        }
    };
    log.diags = diags;
    if c.test > 0 {
        if let Err(f) = conf::test_identities(&loaded.config, &sys) {
            return Err(PlanFailure {
                error: Error::Config(f.diags),
                log: Box::new(log),
            });
        }
    }

    let g = &loaded.config.global;
    log.limit = Some(g.log_limit.get());
    if g.error_log
        .as_deref()
        .is_some_and(|e| e.eq_ignore_ascii_case(b"syslog"))
        && !use_stderr
    {
        let ident = g
            .syslog_ident
            .clone()
            .unwrap_or_else(|| "php-fpm".into())
            .into_vec();
        log.syslog = Some((ident, g.syslog_facility));
    }
    Ok(Plan {
        path_shown: rfpm_core::shown::Shown(&path).to_string(),
        builtin: builtin_default,
        daemonize: g.daemonize,
        pid_file: g.pid.clone(),
        process_control_timeout: g.process_control_timeout.get(),
        config: loaded.config,
        log,
    })
}

/// The pools ready to run: every pool's identity first (with the non-root notices),
/// then every pool's socket permissions, as php-fpm resolves them after daemonising.
/// Returns them with the notices to log; `Err` carries those that came before the error.
pub fn pools(config: &conf::Config, c: &Cli) -> Result<(Vec<Pool>, Vec<conf::Diag>), Error> {
    let opts = options(c);
    let sys = OsSys {
        error_log: RefCell::new(None),
        no_error_log: false,
    };
    let mut said = Vec::new();
    let failed = |said: &mut Vec<conf::Diag>, f: conf::Failure| {
        said.extend(f.diags);
        Error::Config(std::mem::take(said))
    };
    let mut identities = Vec::new();
    for pc in &config.pools {
        match conf::resolve_identity(pc, &sys, &opts) {
            Ok((id, diags)) => {
                said.extend(diags);
                identities.push(id);
            }
            Err(f) => return Err(failed(&mut said, f)),
        }
    }
    // `env[X] = $Y`: the master's variable as bytes (UTF-8 or not), as php-fpm's getenv.
    let env = |n: &[u8]| {
        use std::os::unix::ffi::{OsStrExt, OsStringExt};
        std::env::var_os(std::ffi::OsStr::from_bytes(n)).map(std::ffi::OsString::into_vec)
    };
    let mut pools = Vec::new();
    for (pc, id) in config.pools.iter().zip(identities) {
        let perms = match conf::socket_permissions(pc, &sys) {
            Ok((perms, diags)) => {
                said.extend(diags);
                perms
            }
            Err(f) => return Err(failed(&mut said, f)),
        };
        let mut pool = Pool::from_conf(pc, id, perms, opts.is_root, &env);
        // With JSON error logs, every request has an id for the lines it causes.
        pool.request_ids |= config.global.log_format.as_deref() == Some("json");
        pools.push(pool);
    }
    Ok((pools, said))
}
