//! Typed configuration: every `[global]` and pool directive of php-fpm 8.2,
//! with php-fpm's defaults, value parsers (and their error texts) and the
//! `-tt` dump.

use crate::ini::atoi;
use rfpm_core::Level;

/// Marker php-fpm uses internally for an unset `process.priority`.
pub const PRIORITY_UNSET: i32 = 64;
/// php-fpm's default `listen.backlog` on Linux.
pub const BACKLOG_DEFAULT: i32 = -1;
/// Default `access.format`.
pub const DEFAULT_ACCESS_FORMAT: &str = "%R - %u %t \"%m %r\" %s";
/// Default `security.limit_extensions`.
pub const DEFAULT_LIMIT_EXTENSIONS: &str = ".php .phar";

/// Process manager style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pm {
    Static,
    Dynamic,
    Ondemand,
}

impl Pm {
    pub fn name(self) -> &'static str {
        match self {
            Pm::Static => "static",
            Pm::Dynamic => "dynamic",
            Pm::Ondemand => "ondemand",
        }
    }
}

/// Syslog facilities by name and numeric value (Linux).
pub const SYSLOG_FACILITIES: &[(&str, i32)] = &[
    ("AUTH", 4 << 3),
    ("AUTHPRIV", 10 << 3),
    ("CRON", 9 << 3),
    ("DAEMON", 3 << 3),
    ("FTP", 11 << 3),
    ("KERN", 0),
    ("LOCAL0", 16 << 3),
    ("LOCAL1", 17 << 3),
    ("LOCAL2", 18 << 3),
    ("LOCAL3", 19 << 3),
    ("LOCAL4", 20 << 3),
    ("LOCAL5", 21 << 3),
    ("LOCAL6", 22 << 3),
    ("LOCAL7", 23 << 3),
    ("LPR", 6 << 3),
    ("MAIL", 2 << 3),
    ("NEWS", 7 << 3),
    ("SYSLOG", 5 << 3),
    ("USER", 1 << 3),
    ("UUCP", 8 << 3),
];

/// Event mechanisms compiled into Debian's php-fpm 8.2, in auto-selection order.
pub const EVENT_MECHANISMS: &[&str] = &["epoll", "poll", "select"];

/// The `[global]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalConf {
    /// `pid` (absolute after validation); `None` = no pid file.
    pub pid: Option<String>,
    /// `error_log`; default `log/php-fpm.log` applied by validation; `syslog` = syslog.
    pub error_log: Option<String>,
    pub syslog_ident: Option<String>,
    /// Numeric syslog facility; -1 = unset (validation sets LOG_DAEMON = 24).
    pub syslog_facility: i32,
    pub log_buffering: bool,
    /// `None` = never set (effective level notice; dump prints `unknown value`).
    pub log_level: Option<Level>,
    pub log_limit: i32,
    pub emergency_restart_threshold: i32,
    /// Seconds.
    pub emergency_restart_interval: i32,
    /// Seconds.
    pub process_control_timeout: i32,
    pub process_max: i32,
    /// [`PRIORITY_UNSET`] (64) = unset.
    pub process_priority: i32,
    pub daemonize: bool,
    pub rlimit_files: i32,
    /// -1 = unlimited, 0 = leave as is.
    pub rlimit_core: i32,
    /// As configured; after validation the selected mechanism's name.
    pub events_mechanism: Option<String>,
    /// Seconds as configured; -1 = unset. After validation: milliseconds
    /// (php-fpm converts), dumped as `<ms/1000>s`.
    pub systemd_interval: i32,
    /// Set by validation when systemd's `WATCHDOG_USEC` drives the interval.
    pub systemd_watchdog: bool,
}

impl Default for GlobalConf {
    fn default() -> Self {
        GlobalConf {
            pid: None,
            error_log: None,
            syslog_ident: None,
            syslog_facility: -1,
            log_buffering: true,
            log_level: None,
            log_limit: 1024,
            emergency_restart_threshold: 0,
            emergency_restart_interval: 0,
            process_control_timeout: 0,
            process_max: 0,
            process_priority: PRIORITY_UNSET,
            daemonize: true,
            rlimit_files: 0,
            rlimit_core: 0,
            events_mechanism: None,
            systemd_interval: -1,
            systemd_watchdog: false,
        }
    }
}

/// One `key = value` of an array directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

/// A pool section.
///
/// Array directives (`env`, `php_value`/`php_flag`, `php_admin_value`/
/// `php_admin_flag`) are stored exactly like php-fpm keeps them: newest
/// definition first. Applying them in `Vec` order therefore lets the FIRST
/// definition in the file win for a duplicated key (php-fpm's observable
/// behaviour); admin values are applied after all plain values. Flags are
/// stored as `"1"`/`"0"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConf {
    pub name: String,
    /// Hidden `<pool>_status` pool created for `pm.status_listen` (§9.4); not dumped.
    pub hidden: bool,
    /// For a hidden status pool: index (in `Config::pools`) of the pool whose status it shows.
    pub shared: Option<usize>,
    pub prefix: Option<String>,
    pub user: Option<String>,
    pub group: Option<String>,
    pub listen: Option<String>,
    pub listen_backlog: i32,
    pub listen_acl_users: Option<String>,
    pub listen_acl_groups: Option<String>,
    pub listen_owner: Option<String>,
    pub listen_group: Option<String>,
    /// Octal string as configured (`None` = 0660 at socket creation).
    pub listen_mode: Option<String>,
    pub listen_allowed_clients: Option<String>,
    /// [`PRIORITY_UNSET`] (64) = unset.
    pub process_priority: i32,
    pub process_dumpable: bool,
    pub pm: Option<Pm>,
    pub pm_max_children: i32,
    pub pm_start_servers: i32,
    pub pm_min_spare_servers: i32,
    pub pm_max_spare_servers: i32,
    pub pm_max_spawn_rate: i32,
    /// Seconds.
    pub pm_process_idle_timeout: i32,
    pub pm_max_requests: i32,
    pub pm_status_path: Option<String>,
    pub pm_status_listen: Option<String>,
    pub ping_path: Option<String>,
    pub ping_response: Option<String>,
    pub access_log: Option<String>,
    pub access_format: Option<String>,
    /// In php-fpm's (dump) order.
    pub access_suppress_path: Vec<String>,
    pub slowlog: Option<String>,
    /// Seconds.
    pub request_slowlog_timeout: i32,
    pub request_slowlog_trace_depth: i32,
    /// Seconds.
    pub request_terminate_timeout: i32,
    pub request_terminate_timeout_track_finished: bool,
    pub rlimit_files: i32,
    /// -1 = unlimited, 0 = inherit.
    pub rlimit_core: i32,
    pub chroot: Option<String>,
    pub chdir: Option<String>,
    pub catch_workers_output: bool,
    pub decorate_workers_output: bool,
    pub clear_env: bool,
    pub security_limit_extensions: Option<String>,
    pub apparmor_hat: Option<String>,
    /// `env[K] = V`, newest first; values before `$VAR` lookup (see [`PoolConf::worker_env`]).
    pub env: Vec<KeyValue>,
    /// `php_value` and `php_flag`, newest first.
    pub php_values: Vec<KeyValue>,
    /// `php_admin_value` and `php_admin_flag`, newest first.
    pub php_admin_values: Vec<KeyValue>,
}

impl PoolConf {
    pub fn new(name: &str) -> Self {
        PoolConf {
            name: name.to_string(),
            hidden: false,
            shared: None,
            prefix: None,
            user: None,
            group: None,
            listen: None,
            listen_backlog: BACKLOG_DEFAULT,
            listen_acl_users: None,
            listen_acl_groups: None,
            listen_owner: None,
            listen_group: None,
            listen_mode: None,
            listen_allowed_clients: None,
            process_priority: PRIORITY_UNSET,
            process_dumpable: false,
            pm: None,
            pm_max_children: 0,
            pm_start_servers: 0,
            pm_min_spare_servers: 0,
            pm_max_spare_servers: 0,
            pm_max_spawn_rate: 32,
            pm_process_idle_timeout: 10,
            pm_max_requests: 0,
            pm_status_path: None,
            pm_status_listen: None,
            ping_path: None,
            ping_response: None,
            access_log: None,
            access_format: None,
            access_suppress_path: Vec::new(),
            slowlog: None,
            request_slowlog_timeout: 0,
            request_slowlog_trace_depth: 0,
            request_terminate_timeout: 0,
            request_terminate_timeout_track_finished: false,
            rlimit_files: 0,
            rlimit_core: 0,
            chroot: None,
            chdir: None,
            catch_workers_output: false,
            decorate_workers_output: true,
            clear_env: true,
            security_limit_extensions: None,
            apparmor_hat: None,
            env: Vec::new(),
            php_values: Vec::new(),
            php_admin_values: Vec::new(),
        }
    }

    /// Effective worker environment additions in application order (the first
    /// definition of a name in the file wins), with `$NAME` values looked up
    /// in the master environment (missing → empty).
    pub fn worker_env(&self, master_env: &dyn Fn(&str) -> Option<String>) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for kv in self.env.iter().rev() {
            if out.iter().any(|(k, _)| *k == kv.key) {
                continue;
            }
            let v = match kv.value.strip_prefix('$') {
                Some(name) => master_env(name).unwrap_or_default(),
                None => kv.value.clone(),
            };
            out.push((kv.key.clone(), v));
        }
        out
    }

    /// Is `listen` a Unix socket path (php-fpm's rule: no ':' and not all digits)?
    pub fn listen_is_unix(&self) -> bool {
        self.listen.as_deref().is_some_and(address_is_unix)
    }

    /// `security.limit_extensions` split on spaces/tabs (empty = allow all).
    pub fn limit_extensions(&self) -> Vec<String> {
        self.security_limit_extensions
            .as_deref()
            .unwrap_or(DEFAULT_LIMIT_EXTENSIONS)
            .split([' ', '\t'])
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// php-fpm's address classification.
pub fn address_is_unix(a: &str) -> bool {
    !(a.contains(':') || a.bytes().all(|c| c.is_ascii_digit()))
}

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    pub global: GlobalConf,
    /// Pools in order of first appearance, then hidden status pools as validation adds them.
    pub pools: Vec<PoolConf>,
}

// ---------------------------------------------------------------- value parsers

pub(crate) const ERR_NUMBER: &str = "is not a valid number (greater or equal than zero)";
pub(crate) const ERR_BOOL: &str = "invalid boolean value";

pub(crate) fn parse_int(v: &str) -> Result<i32, &'static str> {
    for (i, c) in v.bytes().enumerate() {
        if i == 0 && c == b'-' {
            continue;
        }
        if !c.is_ascii_digit() {
            return Err(ERR_NUMBER);
        }
    }
    Ok(atoi(v))
}

pub(crate) fn parse_time(v: &str) -> Result<i32, &'static str> {
    let Some(&last) = v.as_bytes().last() else {
        return Err("invalid time value");
    };
    let head = &v[..v.len() - 1];
    let mult = match last {
        b'm' => 60,
        b'h' => 3600,
        b'd' => 86400,
        b's' => return Ok(atoi(head)),
        b'0'..=b'9' => return Ok(atoi(v)),
        _ => return Err("unknown suffix used in time value"),
    };
    Ok(atoi(head).wrapping_mul(mult))
}

pub(crate) fn parse_bool(v: &str) -> Result<bool, &'static str> {
    match v {
        "1" | "yes" | "true" | "on" => Ok(true),
        "" | "0" | "no" | "none" | "false" | "off" => Ok(false),
        _ => Err(ERR_BOOL),
    }
}

fn parse_log_level(v: &str) -> Result<Level, &'static str> {
    Level::parse(v).ok_or("invalid value for 'log_level'")
}

fn parse_facility(v: &str) -> Result<i32, &'static str> {
    SYSLOG_FACILITIES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(v))
        .map(|(_, f)| *f)
        .ok_or("invalid value")
}

fn parse_rlimit(v: &str) -> Result<i32, &'static str> {
    if v.eq_ignore_ascii_case("unlimited") {
        return Ok(-1);
    }
    let n = parse_int(v)?;
    if n < 0 {
        return Err("must be greater than zero or 'unlimited'");
    }
    Ok(n)
}

fn parse_pm(v: &str) -> Result<Pm, &'static str> {
    Ok(match v.to_ascii_lowercase().as_str() {
        "static" => Pm::Static,
        "dynamic" => Pm::Dynamic,
        "ondemand" => Pm::Ondemand,
        _ => return Err("invalid process manager (static, dynamic or ondemand)"),
    })
}

/// Outcome of setting one directive.
pub(crate) enum SetResult {
    Ok,
    Unknown,
    /// (canonical directive name, reason)
    Err(&'static str, &'static str),
}

/// `$pool` expansion of string values; `None` pool = in `[global]`.
pub(crate) fn expand_pool(v: &str, pool: Option<&str>) -> Result<String, &'static str> {
    if !v.contains("$pool") {
        return Ok(v.to_string());
    }
    match pool {
        Some(p) => Ok(v.replace("$pool", p)),
        None => Err("Can't use '$pool' when the pool is not defined"),
    }
}

macro_rules! set {
    ($name:expr, $e:expr) => {
        match $e {
            Ok(()) => SetResult::Ok,
            Err(r) => SetResult::Err($name, r),
        }
    };
}

/// Every `[global]` directive, in `-tt` order.
pub const GLOBAL_DIRECTIVES: &[&str] = &[
    "pid",
    "error_log",
    "syslog.ident",
    "syslog.facility",
    "log_buffering",
    "log_level",
    "log_limit",
    "emergency_restart_threshold",
    "emergency_restart_interval",
    "process_control_timeout",
    "process.max",
    "process.priority",
    "daemonize",
    "rlimit_files",
    "rlimit_core",
    "events.mechanism",
    "systemd_interval",
];

pub(crate) fn set_global(g: &mut GlobalConf, name: &str, v: &str) -> SetResult {
    let Some(canon) = GLOBAL_DIRECTIVES
        .iter()
        .find(|d| d.eq_ignore_ascii_case(name))
    else {
        return SetResult::Unknown;
    };
    let s = |f: &mut Option<String>| -> Result<(), &'static str> {
        *f = Some(expand_pool(v, None)?);
        Ok(())
    };
    let c: &'static str = canon;
    match c {
        "pid" => set!(c, s(&mut g.pid)),
        "error_log" => set!(c, s(&mut g.error_log)),
        "syslog.ident" => set!(c, s(&mut g.syslog_ident)),
        "events.mechanism" => set!(c, s(&mut g.events_mechanism)),
        "syslog.facility" => set!(c, parse_facility(v).map(|x| g.syslog_facility = x)),
        "log_buffering" => set!(c, parse_bool(v).map(|x| g.log_buffering = x)),
        "daemonize" => set!(c, parse_bool(v).map(|x| g.daemonize = x)),
        "log_level" => set!(c, parse_log_level(v).map(|x| g.log_level = Some(x))),
        "log_limit" => set!(c, parse_int(v).map(|x| g.log_limit = x)),
        "emergency_restart_threshold" => {
            set!(c, parse_int(v).map(|x| g.emergency_restart_threshold = x))
        }
        "emergency_restart_interval" => {
            set!(c, parse_time(v).map(|x| g.emergency_restart_interval = x))
        }
        "process_control_timeout" => set!(c, parse_time(v).map(|x| g.process_control_timeout = x)),
        "process.max" => set!(c, parse_int(v).map(|x| g.process_max = x)),
        "process.priority" => set!(c, parse_int(v).map(|x| g.process_priority = x)),
        "rlimit_files" => set!(c, parse_int(v).map(|x| g.rlimit_files = x)),
        "rlimit_core" => set!(c, parse_rlimit(v).map(|x| g.rlimit_core = x)),
        "systemd_interval" => set!(c, parse_time(v).map(|x| g.systemd_interval = x)),
        _ => SetResult::Unknown,
    }
}

/// Every scalar pool directive, in `-tt` order (array directives are not listed).
pub const POOL_DIRECTIVES: &[&str] = &[
    "prefix",
    "user",
    "group",
    "listen",
    "listen.backlog",
    "listen.acl_users",
    "listen.acl_groups",
    "listen.owner",
    "listen.group",
    "listen.mode",
    "listen.allowed_clients",
    "process.priority",
    "process.dumpable",
    "pm",
    "pm.max_children",
    "pm.start_servers",
    "pm.min_spare_servers",
    "pm.max_spare_servers",
    "pm.max_spawn_rate",
    "pm.process_idle_timeout",
    "pm.max_requests",
    "pm.status_path",
    "pm.status_listen",
    "ping.path",
    "ping.response",
    "access.log",
    "access.format",
    "slowlog",
    "request_slowlog_timeout",
    "request_slowlog_trace_depth",
    "request_terminate_timeout",
    "request_terminate_timeout_track_finished",
    "rlimit_files",
    "rlimit_core",
    "chroot",
    "chdir",
    "catch_workers_output",
    "decorate_workers_output",
    "clear_env",
    "security.limit_extensions",
    "apparmor_hat",
];

pub(crate) fn set_pool(p: &mut PoolConf, name: &str, v: &str) -> SetResult {
    let Some(canon) = POOL_DIRECTIVES
        .iter()
        .find(|d| d.eq_ignore_ascii_case(name))
    else {
        return SetResult::Unknown;
    };
    let pool_name = p.name.clone();
    let sv = || expand_pool(v, Some(&pool_name));
    let c: &'static str = canon;
    macro_rules! st {
        ($f:expr) => {
            set!(c, sv().map(|x| $f = Some(x)))
        };
    }
    macro_rules! int {
        ($f:expr) => {
            set!(c, parse_int(v).map(|x| $f = x))
        };
    }
    macro_rules! time {
        ($f:expr) => {
            set!(c, parse_time(v).map(|x| $f = x))
        };
    }
    macro_rules! boolean {
        ($f:expr) => {
            set!(c, parse_bool(v).map(|x| $f = x))
        };
    }
    match c {
        "prefix" => st!(p.prefix),
        "user" => st!(p.user),
        "group" => st!(p.group),
        "listen" => st!(p.listen),
        "listen.backlog" => int!(p.listen_backlog),
        "listen.acl_users" => st!(p.listen_acl_users),
        "listen.acl_groups" => st!(p.listen_acl_groups),
        "listen.owner" => st!(p.listen_owner),
        "listen.group" => st!(p.listen_group),
        "listen.mode" => st!(p.listen_mode),
        "listen.allowed_clients" => st!(p.listen_allowed_clients),
        "process.priority" => int!(p.process_priority),
        "process.dumpable" => boolean!(p.process_dumpable),
        "pm" => set!(c, parse_pm(v).map(|x| p.pm = Some(x))),
        "pm.max_children" => int!(p.pm_max_children),
        "pm.start_servers" => int!(p.pm_start_servers),
        "pm.min_spare_servers" => int!(p.pm_min_spare_servers),
        "pm.max_spare_servers" => int!(p.pm_max_spare_servers),
        "pm.max_spawn_rate" => int!(p.pm_max_spawn_rate),
        "pm.process_idle_timeout" => time!(p.pm_process_idle_timeout),
        "pm.max_requests" => int!(p.pm_max_requests),
        "pm.status_path" => st!(p.pm_status_path),
        "pm.status_listen" => st!(p.pm_status_listen),
        "ping.path" => st!(p.ping_path),
        "ping.response" => st!(p.ping_response),
        "access.log" => st!(p.access_log),
        "access.format" => st!(p.access_format),
        "slowlog" => st!(p.slowlog),
        "request_slowlog_timeout" => time!(p.request_slowlog_timeout),
        "request_slowlog_trace_depth" => int!(p.request_slowlog_trace_depth),
        "request_terminate_timeout" => time!(p.request_terminate_timeout),
        "request_terminate_timeout_track_finished" => {
            boolean!(p.request_terminate_timeout_track_finished)
        }
        "rlimit_files" => int!(p.rlimit_files),
        "rlimit_core" => set!(c, parse_rlimit(v).map(|x| p.rlimit_core = x)),
        "chroot" => st!(p.chroot),
        "chdir" => st!(p.chdir),
        "catch_workers_output" => boolean!(p.catch_workers_output),
        "decorate_workers_output" => boolean!(p.decorate_workers_output),
        "clear_env" => boolean!(p.clear_env),
        "security.limit_extensions" => st!(p.security_limit_extensions),
        "apparmor_hat" => st!(p.apparmor_hat),
        _ => SetResult::Unknown,
    }
}

// ---------------------------------------------------------------- dump

fn s2s(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("undefined")
}

fn b2s(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn prio(p: i32) -> String {
    if p == PRIORITY_UNSET {
        "undefined".to_string()
    } else {
        p.to_string()
    }
}

/// The `-tt` dump (§2.9): one NOTICE text per element, without the final
/// "test is successful" line. Call it on a validated configuration.
pub fn dump(cfg: &Config) -> Vec<String> {
    let g = &cfg.global;
    let mut o = vec![
        "[global]".to_string(),
        format!("\tpid = {}", s2s(&g.pid)),
        format!("\terror_log = {}", s2s(&g.error_log)),
        format!("\tsyslog.ident = {}", s2s(&g.syslog_ident)),
        format!("\tsyslog.facility = {}", g.syslog_facility),
        format!("\tlog_buffering = {}", b2s(g.log_buffering)),
        format!(
            "\tlog_level = {}",
            g.log_level.map_or("unknown value", Level::as_str)
        ),
        format!("\tlog_limit = {}", g.log_limit),
        format!(
            "\temergency_restart_interval = {}s",
            g.emergency_restart_interval
        ),
        format!(
            "\temergency_restart_threshold = {}",
            g.emergency_restart_threshold
        ),
        format!("\tprocess_control_timeout = {}s", g.process_control_timeout),
        format!("\tprocess.max = {}", g.process_max),
        format!("\tprocess.priority = {}", prio(g.process_priority)),
        format!("\tdaemonize = {}", b2s(g.daemonize)),
        format!("\trlimit_files = {}", g.rlimit_files),
        format!("\trlimit_core = {}", g.rlimit_core),
        format!("\tevents.mechanism = {}", s2s(&g.events_mechanism)),
        format!("\tsystemd_interval = {}s", g.systemd_interval / 1000),
        " ".to_string(),
    ];
    for p in cfg.pools.iter().filter(|p| !p.hidden) {
        o.push(format!("[{}]", p.name));
        o.push(format!("\tprefix = {}", s2s(&p.prefix)));
        o.push(format!("\tuser = {}", s2s(&p.user)));
        o.push(format!("\tgroup = {}", s2s(&p.group)));
        o.push(format!("\tlisten = {}", s2s(&p.listen)));
        o.push(format!("\tlisten.backlog = {}", p.listen_backlog));
        o.push(format!("\tlisten.acl_users = {}", s2s(&p.listen_acl_users)));
        o.push(format!(
            "\tlisten.acl_groups = {}",
            s2s(&p.listen_acl_groups)
        ));
        o.push(format!("\tlisten.owner = {}", s2s(&p.listen_owner)));
        o.push(format!("\tlisten.group = {}", s2s(&p.listen_group)));
        o.push(format!("\tlisten.mode = {}", s2s(&p.listen_mode)));
        o.push(format!(
            "\tlisten.allowed_clients = {}",
            s2s(&p.listen_allowed_clients)
        ));
        o.push(format!("\tprocess.priority = {}", prio(p.process_priority)));
        o.push(format!("\tprocess.dumpable = {}", b2s(p.process_dumpable)));
        o.push(format!(
            "\tpm = {}",
            p.pm.map_or("dynamic", Pm::name) // unreachable after validation
        ));
        o.push(format!("\tpm.max_children = {}", p.pm_max_children));
        o.push(format!("\tpm.start_servers = {}", p.pm_start_servers));
        o.push(format!(
            "\tpm.min_spare_servers = {}",
            p.pm_min_spare_servers
        ));
        o.push(format!(
            "\tpm.max_spare_servers = {}",
            p.pm_max_spare_servers
        ));
        o.push(format!("\tpm.max_spawn_rate = {}", p.pm_max_spawn_rate));
        o.push(format!(
            "\tpm.process_idle_timeout = {}",
            p.pm_process_idle_timeout
        ));
        o.push(format!("\tpm.max_requests = {}", p.pm_max_requests));
        o.push(format!("\tpm.status_path = {}", s2s(&p.pm_status_path)));
        o.push(format!("\tpm.status_listen = {}", s2s(&p.pm_status_listen)));
        o.push(format!("\tping.path = {}", s2s(&p.ping_path)));
        o.push(format!("\tping.response = {}", s2s(&p.ping_response)));
        o.push(format!("\taccess.log = {}", s2s(&p.access_log)));
        o.push(format!("\taccess.format = {}", s2s(&p.access_format)));
        for s in &p.access_suppress_path {
            o.push(format!("\taccess.suppress_path[] = {s}"));
        }
        o.push(format!("\tslowlog = {}", s2s(&p.slowlog)));
        o.push(format!(
            "\trequest_slowlog_timeout = {}s",
            p.request_slowlog_timeout
        ));
        o.push(format!(
            "\trequest_slowlog_trace_depth = {}",
            p.request_slowlog_trace_depth
        ));
        o.push(format!(
            "\trequest_terminate_timeout = {}s",
            p.request_terminate_timeout
        ));
        o.push(format!(
            "\trequest_terminate_timeout_track_finished = {}",
            b2s(p.request_terminate_timeout_track_finished)
        ));
        o.push(format!("\trlimit_files = {}", p.rlimit_files));
        o.push(format!("\trlimit_core = {}", p.rlimit_core));
        o.push(format!("\tchroot = {}", s2s(&p.chroot)));
        o.push(format!("\tchdir = {}", s2s(&p.chdir)));
        o.push(format!(
            "\tcatch_workers_output = {}",
            b2s(p.catch_workers_output)
        ));
        o.push(format!(
            "\tdecorate_workers_output = {}",
            b2s(p.decorate_workers_output)
        ));
        o.push(format!("\tclear_env = {}", b2s(p.clear_env)));
        o.push(format!(
            "\tsecurity.limit_extensions = {}",
            s2s(&p.security_limit_extensions)
        ));
        for kv in &p.env {
            o.push(format!("\tenv[{}] = {}", kv.key, kv.value));
        }
        for kv in &p.php_values {
            o.push(format!("\tphp_value[{}] = {}", kv.key, kv.value));
        }
        for kv in &p.php_admin_values {
            o.push(format!("\tphp_admin_value[{}] = {}", kv.key, kv.value));
        }
        o.push(" ".to_string());
    }
    o
}

// ---------------------------------------------------------------- render

fn quote(v: &str) -> String {
    let mut o = String::with_capacity(v.len() + 2);
    o.push('"');
    for c in v.chars() {
        if matches!(c, '"' | '\\' | '$') {
            o.push('\\');
        }
        o.push(c);
    }
    o.push('"');
    o
}

/// Write a configuration file that loads back (through [`crate::load`] and
/// [`crate::validate`]) to the same configuration: every set directive,
/// double-quoted, array entries in file order, hidden status pools left out
/// (validation recreates them). Values containing a newline or NUL cannot be
/// represented in php-fpm's line-based format and are written truncated.
pub fn render(cfg: &Config) -> String {
    let mut o = String::from("[global]\n");
    let line = |o: &mut String, k: &str, v: &str| {
        let v: String = v
            .chars()
            .take_while(|c| !matches!(c, '\n' | '\r' | '\0'))
            .collect();
        o.push_str(&format!("{k} = {}\n", quote(&v)));
    };
    let opt = |o: &mut String, k: &str, v: &Option<String>| {
        if let Some(v) = v {
            line(o, k, v);
        }
    };
    let b = |x: bool| if x { "1" } else { "" };
    let rl = |x: i32| {
        if x == -1 {
            "unlimited".to_string()
        } else {
            x.to_string()
        }
    };
    let g = &cfg.global;
    opt(&mut o, "pid", &g.pid);
    opt(&mut o, "error_log", &g.error_log);
    opt(&mut o, "syslog.ident", &g.syslog_ident);
    if let Some((n, _)) = SYSLOG_FACILITIES
        .iter()
        .find(|(_, f)| *f == g.syslog_facility)
    {
        line(&mut o, "syslog.facility", n);
    }
    line(&mut o, "log_buffering", b(g.log_buffering));
    if let Some(l) = g.log_level {
        line(&mut o, "log_level", &l.as_str().to_ascii_lowercase());
    }
    line(&mut o, "log_limit", &g.log_limit.to_string());
    line(
        &mut o,
        "emergency_restart_threshold",
        &g.emergency_restart_threshold.to_string(),
    );
    line(
        &mut o,
        "emergency_restart_interval",
        &g.emergency_restart_interval.to_string(),
    );
    line(
        &mut o,
        "process_control_timeout",
        &g.process_control_timeout.to_string(),
    );
    line(&mut o, "process.max", &g.process_max.to_string());
    if g.process_priority != PRIORITY_UNSET {
        line(&mut o, "process.priority", &g.process_priority.to_string());
    }
    line(&mut o, "daemonize", b(g.daemonize));
    line(&mut o, "rlimit_files", &g.rlimit_files.to_string());
    line(&mut o, "rlimit_core", &rl(g.rlimit_core));
    opt(&mut o, "events.mechanism", &g.events_mechanism);
    if g.systemd_interval >= 0 {
        let secs = if g.systemd_interval >= 1000 || g.systemd_interval == 0 {
            g.systemd_interval / 1000
        } else {
            g.systemd_interval
        };
        line(&mut o, "systemd_interval", &secs.to_string());
    }
    for p in cfg.pools.iter().filter(|p| !p.hidden) {
        o.push_str(&format!("[{}]\n", p.name));
        opt(&mut o, "prefix", &p.prefix);
        opt(&mut o, "user", &p.user);
        opt(&mut o, "group", &p.group);
        opt(&mut o, "listen", &p.listen);
        line(&mut o, "listen.backlog", &p.listen_backlog.to_string());
        opt(&mut o, "listen.acl_users", &p.listen_acl_users);
        opt(&mut o, "listen.acl_groups", &p.listen_acl_groups);
        opt(&mut o, "listen.owner", &p.listen_owner);
        opt(&mut o, "listen.group", &p.listen_group);
        opt(&mut o, "listen.mode", &p.listen_mode);
        opt(&mut o, "listen.allowed_clients", &p.listen_allowed_clients);
        if p.process_priority != PRIORITY_UNSET {
            line(&mut o, "process.priority", &p.process_priority.to_string());
        }
        line(&mut o, "process.dumpable", b(p.process_dumpable));
        if let Some(pm) = p.pm {
            line(&mut o, "pm", pm.name());
        }
        line(&mut o, "pm.max_children", &p.pm_max_children.to_string());
        line(&mut o, "pm.start_servers", &p.pm_start_servers.to_string());
        line(
            &mut o,
            "pm.min_spare_servers",
            &p.pm_min_spare_servers.to_string(),
        );
        line(
            &mut o,
            "pm.max_spare_servers",
            &p.pm_max_spare_servers.to_string(),
        );
        line(
            &mut o,
            "pm.max_spawn_rate",
            &p.pm_max_spawn_rate.to_string(),
        );
        line(
            &mut o,
            "pm.process_idle_timeout",
            &p.pm_process_idle_timeout.to_string(),
        );
        line(&mut o, "pm.max_requests", &p.pm_max_requests.to_string());
        opt(&mut o, "pm.status_path", &p.pm_status_path);
        opt(&mut o, "pm.status_listen", &p.pm_status_listen);
        opt(&mut o, "ping.path", &p.ping_path);
        opt(&mut o, "ping.response", &p.ping_response);
        opt(&mut o, "access.log", &p.access_log);
        opt(&mut o, "access.format", &p.access_format);
        for s in p.access_suppress_path.iter().rev() {
            line(&mut o, "access.suppress_path[]", s);
        }
        opt(&mut o, "slowlog", &p.slowlog);
        line(
            &mut o,
            "request_slowlog_timeout",
            &p.request_slowlog_timeout.to_string(),
        );
        if p.slowlog.as_ref().is_some_and(|s| !s.is_empty()) {
            // otherwise validation resets it to 20 and would reject it when given
            line(
                &mut o,
                "request_slowlog_trace_depth",
                &p.request_slowlog_trace_depth.to_string(),
            );
        }
        line(
            &mut o,
            "request_terminate_timeout",
            &p.request_terminate_timeout.to_string(),
        );
        line(
            &mut o,
            "request_terminate_timeout_track_finished",
            b(p.request_terminate_timeout_track_finished),
        );
        line(&mut o, "rlimit_files", &p.rlimit_files.to_string());
        line(&mut o, "rlimit_core", &rl(p.rlimit_core));
        opt(&mut o, "chroot", &p.chroot);
        opt(&mut o, "chdir", &p.chdir);
        line(&mut o, "catch_workers_output", b(p.catch_workers_output));
        line(
            &mut o,
            "decorate_workers_output",
            b(p.decorate_workers_output),
        );
        line(&mut o, "clear_env", b(p.clear_env));
        opt(
            &mut o,
            "security.limit_extensions",
            &p.security_limit_extensions,
        );
        opt(&mut o, "apparmor_hat", &p.apparmor_hat);
        for (name, list) in [
            ("env", &p.env),
            ("php_value", &p.php_values),
            ("php_admin_value", &p.php_admin_values),
        ] {
            for kv in list.iter().rev() {
                line(&mut o, &format!("{name}[{}]", quote(&kv.key)), &kv.value);
            }
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert_eq!(parse_int("-12"), Ok(-12));
        assert_eq!(parse_int(""), Ok(0));
        assert_eq!(parse_int("+3"), Err(ERR_NUMBER));
        assert_eq!(parse_time("1ms"), Ok(1));
        assert_eq!(parse_time("2m"), Ok(120));
        assert_eq!(parse_time("1.5m"), Ok(60));
        assert_eq!(parse_time(""), Err("invalid time value"));
        assert_eq!(parse_time("5x"), Err("unknown suffix used in time value"));
        assert_eq!(parse_bool("yes"), Ok(true));
        assert_eq!(parse_bool("True"), Err(ERR_BOOL));
        assert_eq!(parse_rlimit("Unlimited"), Ok(-1));
    }
}
