//! Post-load processing and validation (§2.10), the `-t` identity checks
//! (§1.5) and the identity resolution of a start as root (§3.8).
//!
//! Every effect goes through [`Sys`], so this stays pure: the rfpm binary
//! implements it with libc (and keeps the log file descriptors it opens).

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::directives::{check, GLOBAL, POOL};
use crate::model::{
    address_is_unix, Config, Count, Pm, PoolConf, BACKLOG_DEFAULT, DEFAULT_ACCESS_FORMAT,
    DEFAULT_LIMIT_EXTENSIONS, EVENT_MECHANISMS, PRIORITY_UNSET,
};
use crate::{Bytes, Diag, Failure, LoadOptions};

/// A failed system call: `strerror(errno)` and `errno`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysError {
    pub errno: i32,
    pub text: String,
}

impl SysError {
    /// php-fpm's SYSERR suffix: `: <text> (<errno>)`.
    pub fn suffix(&self) -> String {
        format!(": {} ({})", self.text, self.errno)
    }
    /// "not found" as getpwnam/getgrnam report it (errno untouched = 0).
    pub fn not_found() -> Self {
        SysError {
            errno: 0,
            text: "Success".into(),
        }
    }
}

/// A passwd entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
}

/// Which log file php-fpm opens during validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogFile {
    /// The global `error_log` (not for `syslog`).
    ErrorLog,
    /// A pool's `access.log`.
    AccessLog { pool: Bytes },
    /// A pool's `slowlog` (only opened/created when `request_slowlog_timeout` is set).
    SlowLog { pool: Bytes },
}

/// A [`Sys`] that says yes to everything and touches nothing (every path is a directory,
/// every user and group exists, every log opens): for property tests and fuzzing, where
/// only the configuration logic itself is under test.
pub struct AcceptAllSys;

impl Sys for AcceptAllSys {
    fn is_dir(&self, _p: &Path) -> bool {
        true
    }
    fn user_by_name(&self, n: &[u8]) -> Result<UserInfo, SysError> {
        Ok(UserInfo {
            name: String::from_utf8_lossy(n).into_owned(),
            uid: 1000,
            gid: 1000,
            home: "/home".into(),
        })
    }
    fn user_by_uid(&self, uid: u32) -> Result<UserInfo, SysError> {
        Ok(UserInfo {
            name: "u".into(),
            uid,
            gid: uid,
            home: "/home".into(),
        })
    }
    fn group_by_name(&self, _n: &[u8]) -> Result<u32, SysError> {
        Ok(1000)
    }
    fn open_log(&self, _w: &LogFile, _p: &Path) -> Result<(), SysError> {
        Ok(())
    }
}

/// The operating system as the configuration stage sees it.
pub trait Sys {
    /// stat(2) says it is a directory.
    fn is_dir(&self, path: &Path) -> bool;
    /// getpwnam(3) of the name's bytes; not found = `Err(SysError::not_found())` (or
    /// the errno set).
    fn user_by_name(&self, name: &[u8]) -> Result<UserInfo, SysError>;
    /// getpwuid(3).
    fn user_by_uid(&self, uid: u32) -> Result<UserInfo, SysError>;
    /// getgrnam(3) of the name's bytes → gid.
    fn group_by_name(&self, name: &[u8]) -> Result<u32, SysError>;
    /// Open (append, create, mode 0600) a log file at this point of the
    /// start-up sequence. The binary keeps the descriptor (for the error log:
    /// starts writing to it); tests just record or fail.
    fn open_log(&self, which: &LogFile, path: &Path) -> Result<(), SysError>;
    /// Available event mechanisms, in auto-selection order.
    fn event_mechanisms(&self) -> &[&'static str] {
        EVENT_MECHANISMS
    }
    /// `worker.script` (rfpm): a regular file that `ids` (uid, gid; `None`: this
    /// process) may read. `Err`: why not, as a SYSERR suffix says it.
    fn readable_by(&self, _path: &Path, _ids: Option<(u32, u32)>) -> Result<(), SysError> {
        Ok(())
    }
    /// Current effective uid/gid (used when not root).
    fn current_ids(&self) -> (u32, u32) {
        (0, 0)
    }
}

/// php-fpm's `fpm_evaluate_full_path`, over bytes (a path need not be UTF-8).
fn full_path(
    value: &[u8],
    pool_prefix: Option<&[u8]>,
    global_prefix: Option<&[u8]>,
    default_prefix: &[u8],
    expand: bool,
    diags: &mut Vec<Diag>,
) -> Bytes {
    const PREFIX: &[u8] = b"$prefix";
    if value.starts_with(b"/") {
        return value.into();
    }
    let use_pool = pool_prefix.is_some();
    let prefix = pool_prefix.or(global_prefix).unwrap_or(default_prefix);
    let mut rest = Some(value);
    if expand {
        if let Some(pos) = value.windows(PREFIX.len()).position(|w| w == PREFIX) {
            if pos != 0 {
                diags.push(Diag::error(
                    "'$prefix' must be use at the beginning of the value",
                ));
                return value.into();
            }
            rest = (value.len() > PREFIX.len()).then(|| &value[PREFIX.len()..]);
        }
    }
    let out = match rest {
        Some(r) => [prefix, b"/", r].concat(),
        None => prefix.to_vec(),
    };
    if !out.starts_with(b"/") && use_pool {
        return full_path(&out, None, global_prefix, default_prefix, expand, diags);
    }
    out.into()
}

/// A numeric user or group id as configured (all ASCII digits; too large: `u32::MAX`).
fn parse_id(digits: &[u8]) -> u32 {
    std::str::from_utf8(digits)
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(u32::MAX)
}

/// PHP INI names whose relative values get the pool prefix.
const INI_TO_EXPAND: &[&str] = &[
    "error_log",
    "extension_dir",
    "mime_magic.magicfile",
    "sendmail_path",
    "session.cookie_path",
    "session_pgsql.sem_file_name",
    "soap.wsdl_cache_dir",
    "uploadprogress.file.filename_template",
    "xdebug.output_dir",
    "xdebug.profiler_output_dir",
    "xdebug.trace_output_dir",
    "xmms.path",
    "axis2.client_home",
    "blenc.key_file",
    "coin_acceptor.device",
];

fn valid_path_chars(s: &[u8]) -> bool {
    s.iter()
        .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'/' | b'-' | b'_' | b'.' | b'~'))
}

struct Ctx<'a> {
    sys: &'a dyn Sys,
    opts: &'a LoadOptions,
    diags: Vec<Diag>,
}

impl Ctx<'_> {
    fn global_prefix(&self) -> Option<Vec<u8>> {
        self.opts
            .prefix
            .as_ref()
            .map(|p| p.as_os_str().as_bytes().to_vec())
    }

    fn fail(mut self, d: Diag) -> Failure {
        self.diags.push(d);
        self.diags
            .push(Diag::error("failed to post process the configuration"));
        Failure { diags: self.diags }
    }
}

/// php-fpm's post-processing of a loaded configuration, in php-fpm's order and
/// with its messages (§2.10). Mutates `cfg` (absolute paths, defaults, the
/// hidden status pools of §9.4). Returns the non-fatal lines; on failure the
/// lines end with `failed to post process the configuration`.
pub fn validate(cfg: &mut Config, sys: &dyn Sys, opts: &LoadOptions) -> Result<Vec<Diag>, Failure> {
    let mut cx = Ctx {
        sys,
        opts,
        diags: Vec::new(),
    };
    let gp = cx.global_prefix();
    let lsd = opts.localstatedir.as_os_str().as_bytes();
    let g = &mut cfg.global;

    if let Some(pid) = g.pid.take() {
        g.pid = Some(full_path(
            &pid,
            None,
            gp.as_deref(),
            lsd,
            false,
            &mut cx.diags,
        ));
    }
    if let Some(d) = opts.daemonize_override {
        g.daemonize = d;
    }
    // The directives' own checks (log_limit, process.max, process.priority).
    if let Err((level, msg)) = check(GLOBAL, g) {
        return Err(cx.fail(Diag::new(level, msg)));
    }
    // rfpm: a drain needs time to drain in; without it the workers that are still busy
    // get SIGTERM at the master's next wake-up.
    if g.shutdown_drain && g.process_control_timeout.get() == 0 {
        cx.diags.push(Diag::warning(
            "shutdown.drain has no effect while process_control_timeout is 0 (in-flight requests are cut at once)",
        ));
    }
    let error_log = g
        .error_log
        .take()
        .unwrap_or_else(|| "log/php-fpm.log".into());

    // systemd (Debian builds have systemd support)
    let watchdog = (opts.env)(b"WATCHDOG_USEC").map(|w| String::from_utf8_lossy(&w).into_owned());
    let interval = watchdog
        .as_deref()
        // php-fpm's int of a long, on purpose (a huge WATCHDOG_USEC wraps as there).
        .map(|w| {
            #[allow(clippy::cast_possible_truncation)]
            let ms = (crate::ini::atol(w) / 2000) as i32;
            ms
        })
        .unwrap_or(0);
    if interval > 1000 {
        if g.systemd_interval > 0 {
            cx.diags
                .push(Diag::warning("systemd_interval option ignored"));
        }
        cx.diags.push(Diag::notice(format!(
            "systemd watchdog configured to {}sec",
            fmt_g3(f64::from(interval) / 1000.0)
        )));
        g.systemd_watchdog = true;
        g.systemd_interval = interval;
    } else if g.systemd_interval < 0 {
        g.systemd_interval = 10_000;
    } else {
        g.systemd_interval = g.systemd_interval.wrapping_mul(1000);
    }

    if g.syslog_ident.is_none() {
        g.syslog_ident = Some("php-fpm".into());
    }
    if g.syslog_facility < 0 {
        g.syslog_facility = 3 << 3;
    }
    let is_syslog = error_log.eq_ignore_ascii_case(b"syslog");
    let error_log = if is_syslog {
        error_log
    } else {
        full_path(&error_log, None, gp.as_deref(), lsd, false, &mut cx.diags)
    };
    g.error_log = Some(error_log.clone());
    if !is_syslog {
        if let Err(e) = sys.open_log(&LogFile::ErrorLog, error_log.as_path()) {
            return Err(cx.fail(Diag::error(format!(
                "failed to open error_log ({}){}",
                error_log,
                e.suffix()
            ))));
        }
    }

    // event mechanism
    let available = sys.event_mechanisms();
    match g.events_mechanism.clone() {
        Some(m) => match available.iter().find(|a| a.eq_ignore_ascii_case(&m)) {
            Some(a) => g.events_mechanism = Some((*a).to_string()),
            None => {
                return Err(cx.fail(Diag::error(format!(
                    "event mechanism '{m}' is not available on this system"
                ))))
            }
        },
        None => g.events_mechanism = available.first().map(|s| s.to_string()),
    }
    let edge = matches!(
        g.events_mechanism.as_deref(),
        Some("epoll") | Some("kqueue")
    );

    if cfg.pools.is_empty() {
        return Err(cx.fail(Diag::error(
            "No pool defined. at least one pool section must be specified in config file",
        )));
    }

    let install = opts.install_prefix.as_os_str().as_bytes();
    let mut i = 0;
    while i < cfg.pools.len() {
        if let Err(d) = process_pool(cfg, i, &mut cx, gp.as_deref(), install, edge) {
            return Err(cx.fail(d));
        }
        i += 1;
    }

    // duplicate listen addresses
    for a in 0..cfg.pools.len() {
        for b in a + 1..cfg.pools.len() {
            let (pa, pb) = (&cfg.pools[a], &cfg.pools[b]);
            if let (Some(la), Some(lb)) = (&pa.listen, &pb.listen) {
                if !la.is_empty() && la == lb {
                    let d = Diag::error(format!(
                        "[pool {}] unable to set listen address as it's already used in another pool '{}'",
                        pb.name, pa.name
                    ));
                    return Err(cx.fail(d));
                }
            }
        }
    }

    // rfpm: the admin listener's address parses, a Unix path is made absolute like a
    // pool's, and no pool listens there.
    if let Some(a) = cfg.global.admin_listen.clone() {
        let fail = |t: String| Diag::error(format!("admin.listen: {t}"));
        if a.trim_ascii().is_empty() {
            return Err(cx.fail(fail("an address is required".into())));
        }
        // The form is told from the text; a Unix path keeps its bytes.
        let text = a.to_str_lossy().into_owned();
        if let Err(e) = rfpm_core::listen_addr::parse(&text) {
            return Err(cx.fail(fail(format!("'{a}': {e}"))));
        }
        let a = if address_is_unix(&text) && !a.starts_with(b"/") {
            let gp = gp.as_deref();
            full_path(
                a.as_bytes(),
                Some(gp.unwrap_or(install)),
                gp,
                install,
                false,
                &mut cx.diags,
            )
        } else {
            a
        };
        let taken = |p: &&PoolConf| p.listen.as_ref() == Some(&a);
        if let Some(p) = cfg.pools.iter().find(taken) {
            let d = fail(format!(
                "'{a}' is already the listen address of pool '{}'",
                p.name
            ));
            return Err(cx.fail(d));
        }
        cfg.global.admin_listen = Some(a);
    }

    // access logs
    for p in &cfg.pools {
        if let Some(al) = p.access_log.as_ref() {
            let which = LogFile::AccessLog {
                pool: p.name.clone(),
            };
            if let Err(e) = cx.sys.open_log(&which, al.as_path()) {
                let d = Diag::error(format!("failed to open access log ({}){}", al, e.suffix()));
                return Err(cx.fail(d));
            }
        }
    }
    for p in &cfg.pools {
        if p.access_log.as_ref().is_some_and(|s| !s.is_empty()) {
            let fmt = p
                .access_format
                .as_deref()
                .unwrap_or(DEFAULT_ACCESS_FORMAT.as_bytes());
            if let Err(w) = crate::access::check_format(fmt) {
                cx.diags.push(Diag::warning(w));
                let d = Diag::error(format!(
                    "[pool {}] wrong format for access.format '{}'",
                    p.name,
                    rfpm_core::shown::Shown(fmt)
                ));
                return Err(cx.fail(d));
            }
        }
    }
    Ok(cx.diags)
}

/// `%.3g` as C prints it for the watchdog message.
fn fmt_g3(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    // A finite, non-zero f64 has a decimal exponent within ±324: it fits.
    #[allow(clippy::cast_possible_truncation)]
    let exp = v.abs().log10().floor() as i32;
    if !(-4..3).contains(&exp) {
        let m = v / 10f64.powi(exp);
        let ms = format!("{m:.2}");
        let ms = ms.trim_end_matches('0').trim_end_matches('.');
        return format!("{ms}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    let decimals = usize::try_from(2 - exp).unwrap_or(0);
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn process_pool(
    cfg: &mut Config,
    idx: usize,
    cx: &mut Ctx<'_>,
    gp: Option<&[u8]>,
    install: &[u8],
    edge: bool,
) -> Result<(), Diag> {
    let is_root = cx.opts.is_root;
    let allow_root = cx.opts.allow_root;
    let mut new_pool: Option<PoolConf> = None;
    {
        let p = &mut cfg.pools[idx];
        let name = p.name.clone();
        let err = |t: String| Diag::error(format!("[pool {name}] {t}"));
        let alert = |t: String| Diag::alert(format!("[pool {name}] {t}"));

        // 1. prefix
        if let Some(pre) = p.prefix.clone().filter(|s| !s.is_empty()) {
            let v = full_path(&pre, None, gp, install, false, &mut cx.diags);
            p.prefix = Some(v.clone());
            if !cx.sys.is_dir(v.as_path()) {
                return Err(err(format!(
                    "the prefix '{v}' does not exist or is not a directory"
                )));
            }
        }
        let pp = p.prefix.clone();
        let fp = |v: &[u8], expand: bool, diags: &mut Vec<Diag>| {
            full_path(
                v,
                Some(pp.as_deref().unwrap_or_else(|| gp.unwrap_or(install))),
                gp,
                install,
                expand,
                diags,
            )
        };

        // 2. user
        if p.user.is_none() && is_root && !allow_root {
            return Err(alert("user has not been defined".into()));
        }
        // 3-5. The directives' own checks: listen set, process.priority's range, pm
        // set, pm.max_children positive.
        if let Err((level, msg)) = check(POOL, p) {
            return Err(Diag::new(level, format!("[pool {name}] {msg}")));
        }
        // rfpm: the $_SERVER entry that receives the request id is a plain name.
        if let Some(v) = &p.request_id_server_var {
            if v.is_empty() || !v.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_') {
                return Err(err(format!(
                    "request_id.server_var '{v}' is not a valid variable name ([A-Za-z0-9_]+)"
                )));
            }
        }
        // 3. listen
        if let Some(l) = p.listen.clone() {
            if address_is_unix(&l.to_str_lossy()) && !l.starts_with(b"/") {
                p.listen = Some(fp(&l, false, &mut cx.diags));
            }
        }
        // 6/7.
        match p.pm {
            Some(Pm::Dynamic) => {
                let (min, max, ch) = (
                    p.pm_min_spare_servers.configured(),
                    p.pm_max_spare_servers.configured(),
                    p.pm_max_children.configured(),
                );
                if min <= 0 {
                    return Err(alert(format!(
                        "pm.min_spare_servers({min}) must be a positive value"
                    )));
                }
                if max <= 0 {
                    return Err(alert(format!(
                        "pm.max_spare_servers({max}) must be a positive value"
                    )));
                }
                if min > ch || max > ch {
                    return Err(alert(format!("pm.min_spare_servers({min}) and pm.max_spare_servers({max}) cannot be greater than pm.max_children({ch})")));
                }
                if max < min {
                    return Err(alert(format!(
                        "pm.max_spare_servers({max}) must not be less than pm.min_spare_servers({min})"
                    )));
                }
                let start = p.pm_start_servers.configured();
                if start <= 0 {
                    let start = min + (max - min) / 2;
                    p.pm_start_servers = Count::new(start);
                    cx.diags.push(Diag::notice(format!(
                        "[pool {name}] pm.start_servers is not set. It's been set to {start}."
                    )));
                } else if start < min || start > max {
                    return Err(alert(format!("pm.start_servers({start}) must not be less than pm.min_spare_servers({min}) and not greater than pm.max_spare_servers({max})")));
                }
                if p.pm_max_spawn_rate.configured() < 1 {
                    return Err(alert("pm.max_spawn_rate must be a positive value".into()));
                }
            }
            Some(Pm::Ondemand) => {
                if !edge {
                    return Err(alert("ondemand process manager can ONLY be used when events.mechanism is either epoll (Linux) or kqueue (*BSD).".into()));
                }
                if p.pm_process_idle_timeout.configured() < 1 {
                    return Err(alert(format!(
                        "pm.process_idle_timeout({}s) must be greater than 0s",
                        p.pm_process_idle_timeout.configured()
                    )));
                }
                if p.listen_backlog < BACKLOG_DEFAULT {
                    cx.diags.push(Diag::warning(format!("[pool {name}] listen.backlog({}) was too low for the ondemand process manager. I updated it for you to {}.", p.listen_backlog, BACKLOG_DEFAULT)));
                    p.listen_backlog = BACKLOG_DEFAULT;
                }
                p.pm_start_servers = Count::new(0);
                p.pm_min_spare_servers = Count::new(0);
                p.pm_max_spare_servers = Count::new(0);
            }
            Some(Pm::Static) | None => {}
        }
        // 8. hidden status pool
        if let Some(sl) = p.pm_status_listen.clone() {
            if p.pm_status_path.is_none() {
                p.pm_status_path = Some("/".into());
            }
            let mut s = PoolConf::new(&[name.as_bytes(), b"_status"].concat());
            s.hidden = true;
            s.shared = Some(idx);
            s.listen = Some(sl);
            s.pm = Some(Pm::Ondemand);
            s.pm_max_children = Count::new(2);
            s.user = p.user.clone();
            s.group = p.group.clone();
            s.listen_owner = p.listen_owner.clone();
            s.listen_group = p.listen_group.clone();
            s.listen_mode = p.listen_mode.clone();
            s.listen_acl_users = p.listen_acl_users.clone();
            s.listen_acl_groups = p.listen_acl_groups.clone();
            s.listen_allowed_clients = p.listen_allowed_clients.clone();
            s.pm_status_path = p.pm_status_path.clone();
            s.ping_path = p.ping_path.clone();
            s.ping_response = p.ping_response.clone();
            new_pool = Some(s);
        }
        // 9. status path
        if let Some(st) = p.pm_status_path.clone().filter(|s| !s.is_empty()) {
            if !st.starts_with(b"/") {
                return Err(err(format!("the status path '{st}' must start with a '/'")));
            }
            if p.pm_status_listen.is_none() && p.shared.is_none() && st.len() < 2 {
                return Err(err(format!("the status path '{st}' is not long enough")));
            }
            if !valid_path_chars(&st) {
                return Err(err(format!("the status path '{st}' must contain only the following characters '[alphanum]/_-.~'")));
            }
        }
        // 10. ping
        if let Some(pg) = p.ping_path.clone().filter(|s| !s.is_empty()) {
            if !pg.starts_with(b"/") {
                return Err(err(format!("the ping path '{pg}' must start with a '/'")));
            }
            if pg.len() < 2 {
                return Err(err(format!("the ping path '{pg}' is not long enough")));
            }
            if !valid_path_chars(&pg) {
                return Err(err(format!("the ping path '{pg}' must contain only the following characters '[alphanum]/_-.~'")));
            }
            match &p.ping_response {
                None => p.ping_response = Some("pong".into()),
                Some(r) if r.is_empty() => {
                    return Err(err(format!(
                        "the ping response page '{r}' is not long enough"
                    )))
                }
                Some(_) => {}
            }
        } else {
            p.ping_response = None;
        }
        // 11. access log
        if let Some(al) = p.access_log.clone().filter(|s| !s.is_empty()) {
            p.access_log = Some(fp(&al, false, &mut cx.diags));
            if p.access_format.is_none() {
                p.access_format = Some(DEFAULT_ACCESS_FORMAT.into());
            }
        }
        // 12. slowlog
        if let Some(sl) = p.slowlog.clone().filter(|s| !s.is_empty()) {
            p.slowlog = Some(fp(&sl, false, &mut cx.diags));
        }
        let has_slowlog = p.slowlog.as_ref().is_some_and(|s| !s.is_empty());
        // 13. request_slowlog_timeout
        let (slow, terminate) = (
            p.request_slowlog_timeout.configured(),
            p.request_terminate_timeout.configured(),
        );
        if slow != 0 {
            if !has_slowlog {
                return Err(err(
                    "'slowlog' must be specified for use with 'request_slowlog_timeout'".into(),
                ));
            }
            if let Some(sl) = p.slowlog.clone() {
                let which = crate::validate::LogFile::SlowLog { pool: name.clone() };
                if let Err(e) = cx.sys.open_log(&which, sl.as_path()) {
                    return Err(Diag::error(format!(
                        "Unable to create or open slowlog({sl}){}",
                        e.suffix()
                    )));
                }
            }
            if terminate != 0 && slow > terminate {
                return Err(err(format!(
                    "'request_slowlog_timeout' ({slow}) can't be greater than 'request_terminate_timeout' ({terminate})"
                )));
            }
        }
        // 14. trace depth
        let depth = p.request_slowlog_trace_depth.configured();
        if depth != 0 {
            if !has_slowlog {
                return Err(err(
                    "'slowlog' must be specified for use with 'request_slowlog_trace_depth'".into(),
                ));
            }
            if depth <= 0 {
                return Err(err(format!(
                    "'request_slowlog_trace_depth' ({depth}) must be a positive value"
                )));
            }
        } else {
            p.request_slowlog_trace_depth = Count::new(20);
        }
        // 15. chroot
        if let Some(cr) = p.chroot.clone().filter(|s| !s.is_empty()) {
            let v = fp(&cr, true, &mut cx.diags);
            p.chroot = Some(v.clone());
            if !v.starts_with(b"/") {
                return Err(err(format!("the chroot path '{v}' must start with a '/'")));
            }
            if !cx.sys.is_dir(v.as_path()) {
                return Err(err(format!(
                    "the chroot path '{v}' does not exist or is not a directory"
                )));
            }
        }
        // 16. chdir
        if let Some(cd) = p.chdir.clone().filter(|s| !s.is_empty()) {
            let v = fp(&cd, false, &mut cx.diags);
            p.chdir = Some(v.clone());
            if !v.starts_with(b"/") {
                return Err(err(format!("the chdir path '{v}' must start with a '/'")));
            }
            match &p.chroot {
                Some(r) => {
                    let both = Bytes::from([r.as_bytes(), b"/", v.as_bytes()].concat());
                    if !cx.sys.is_dir(both.as_path()) {
                        return Err(err(format!("the chdir path '{v}' within the chroot path '{r}' ('{both}') does not exist or is not a directory")));
                    }
                }
                None => {
                    if !cx.sys.is_dir(v.as_path()) {
                        return Err(err(format!(
                            "the chdir path '{v}' does not exist or is not a directory"
                        )));
                    }
                }
            }
        }
        // 17. limit extensions
        if p.security_limit_extensions.is_none() {
            p.security_limit_extensions = Some(DEFAULT_LIMIT_EXTENSIONS.into());
        }
        // 18. path-like INI values
        if p.chroot.is_none() {
            let expand = |k: &[u8]| {
                INI_TO_EXPAND
                    .iter()
                    .any(|n| n.as_bytes().eq_ignore_ascii_case(k))
            };
            let mut vals = std::mem::take(&mut p.php_values);
            for kv in vals.iter_mut() {
                if expand(&kv.key) {
                    kv.value = fp(&kv.value, false, &mut cx.diags);
                }
            }
            p.php_values = vals;
            let mut vals = std::mem::take(&mut p.php_admin_values);
            for kv in vals.iter_mut() {
                if kv.key.eq_ignore_ascii_case(b"error_log")
                    && kv.value.eq_ignore_ascii_case(b"syslog")
                {
                    continue;
                }
                if expand(&kv.key) {
                    kv.value = fp(&kv.value, false, &mut cx.diags);
                }
            }
            p.php_admin_values = vals;
        }
        // 19. worker.script (rfpm): a file the pool's user can read.
        if let Some(ws) = p.worker_script.clone().filter(|s| !s.is_empty()) {
            let v = fp(ws.as_bytes(), false, &mut cx.diags);
            p.worker_script = Some(v.clone());
            let on_disk = match &p.chroot {
                Some(r) => Bytes::new([r.as_bytes(), v.as_bytes()].concat()),
                None => v.clone(),
            };
            let ids = if is_root {
                worker_ids(p.user.as_deref(), p.group.as_deref(), cx.sys)
            } else {
                None
            };
            if let Err(e) = cx.sys.readable_by(on_disk.as_path(), ids) {
                return Err(err(format!(
                    "the worker.script '{v}' is not a file the pool's user can read{}",
                    e.suffix()
                )));
            }
        }
    }
    if let Some(s) = new_pool {
        cfg.pools.push(s);
    }
    Ok(())
}

/// The uid and gid a root master's worker of a pool takes (`None`: not resolvable now;
/// start-up reports it).
fn worker_ids(user: Option<&[u8]>, group: Option<&[u8]>, sys: &dyn Sys) -> Option<(u32, u32)> {
    let is_id = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    let number = |s: &[u8]| std::str::from_utf8(s).ok()?.parse::<u32>().ok();
    let user = user.filter(|s| !s.is_empty())?;
    let (uid, mut gid) = if is_id(user) {
        let uid = number(user)?;
        (uid, sys.user_by_uid(uid).map_or(uid, |u| u.gid))
    } else {
        let u = sys.user_by_name(user).ok()?;
        (u.uid, u.gid)
    };
    if let Some(g) = group.filter(|s| !s.is_empty()) {
        gid = if is_id(g) {
            number(g)?
        } else {
            sys.group_by_name(g).ok()?
        };
    }
    Some((uid, gid))
}

/// The extra checks of `-t`/`-tt` (§1.5 item 2), run after [`validate`]:
/// names in `user`, `group`, `listen.owner`, `listen.group` must resolve
/// (numeric values are accepted). On failure the lines are complete (php-fpm
/// adds nothing but `FPM initialization failed`).
pub fn test_identities(cfg: &Config, sys: &dyn Sys) -> Result<(), Failure> {
    let is_id = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    if cfg.global.admin_listen.is_some() {
        admin_socket_permissions(&cfg.global, sys)?;
    }
    for p in &cfg.pools {
        let named = |v: &Option<Bytes>| v.clone().filter(|s| !s.is_empty() && !is_id(s));
        let fail = |t: String| Failure {
            diags: vec![Diag::error(format!("[pool {}] {t}", p.name))],
        };
        if let Some(u) = named(&p.user) {
            if sys.user_by_name(&u).is_err() {
                return Err(fail(format!("cannot get uid for user '{u}'")));
            }
        }
        if let Some(g) = named(&p.group) {
            if sys.group_by_name(&g).is_err() {
                return Err(fail(format!("cannot get gid for group '{g}'")));
            }
        }
        if let Some(u) = named(&p.listen_owner) {
            if let Err(e) = sys.user_by_name(&u) {
                return Err(fail(format!("cannot get uid for user '{u}'{}", e.suffix())));
            }
        }
        if let Some(g) = named(&p.listen_group) {
            if let Err(e) = sys.group_by_name(&g) {
                return Err(fail(format!(
                    "cannot get gid for group '{g}'{}",
                    e.suffix()
                )));
            }
        }
    }
    Ok(())
}

/// What a worker of a pool becomes (§3.8), as resolved by php-fpm at start.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Identity {
    /// uid/gid to switch to (root master only; `None` = keep).
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Name for initgroups(3) (root master with a resolvable user).
    pub initgroups_user: Option<String>,
    /// `USER` / `HOME` for the worker environment (unless `env[USER]`/`env[HOME]`).
    pub user: Option<String>,
    pub home: Option<String>,
}

/// Resolve a pool's identity at start-up (not during `-t`), with php-fpm's
/// notices for a non-root master and its errors for a root one
/// (`cannot get uid …`, `please specify user and group other than root`).
pub fn resolve_identity(
    pool: &PoolConf,
    sys: &dyn Sys,
    opts: &LoadOptions,
) -> Result<(Identity, Vec<Diag>), Failure> {
    let mut id = Identity::default();
    let mut diags = Vec::new();
    let name = &pool.name;
    let is_id = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    let set = |v: &Option<Bytes>| v.clone().filter(|s| !s.is_empty());
    let fail = |t: String| Failure {
        diags: vec![Diag::error(format!("[pool {name}] {t}"))],
    };
    if opts.is_root {
        let mut uid = 0u32;
        let mut gid = 0u32;
        if let Some(u) = set(&pool.user) {
            if is_id(&u) {
                uid = parse_id(&u);
                if let Ok(pw) = sys.user_by_uid(uid) {
                    gid = pw.gid;
                    id.initgroups_user = Some(pw.name.clone());
                    id.user = Some(pw.name);
                    id.home = Some(pw.home);
                }
            } else {
                let pw = sys
                    .user_by_name(&u)
                    .map_err(|_| fail(format!("cannot get uid for user '{u}'")))?;
                uid = pw.uid;
                gid = pw.gid;
                id.initgroups_user = Some(pw.name.clone());
                id.user = Some(pw.name);
                id.home = Some(pw.home);
            }
        }
        if let Some(g) = set(&pool.group) {
            gid = if is_id(&g) {
                parse_id(&g)
            } else {
                sys.group_by_name(&g)
                    .map_err(|_| fail(format!("cannot get gid for group '{g}'")))?
            };
        }
        if !opts.allow_root && (uid == 0 || gid == 0) {
            return Err(fail("please specify user and group other than root".into()));
        }
        id.uid = Some(uid);
        id.gid = Some(gid);
    } else {
        let ignored = |d: &str| {
            Diag::notice(format!(
                "[pool {name}] '{d}' directive is ignored when FPM is not running as root"
            ))
        };
        if set(&pool.user).is_some() {
            diags.push(ignored("user"));
        }
        if set(&pool.group).is_some() {
            diags.push(ignored("group"));
        }
        if set(&pool.chroot).is_some() {
            diags.push(ignored("chroot"));
        }
        if pool.process_priority != PRIORITY_UNSET {
            diags.push(ignored("process.priority"));
        }
        if let Ok(pw) = sys.user_by_uid(sys.current_ids().0) {
            id.user = Some(pw.name);
            id.home = Some(pw.home);
        }
    }
    Ok((id, diags))
}

/// Owner, group, mode and POSIX ACL entries for a pool's Unix socket
/// (`listen.owner`, `listen.group`, `listen.mode`, `listen.acl_users`,
/// `listen.acl_groups`), resolved like php-fpm (errors carry the SYSERR
/// suffix).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SocketPerms {
    /// `None` = leave as created.
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// `listen.mode` parsed as octal (strtoul base 8), default 0o660.
    pub mode: u32,
    /// Users and groups that get an `rw` ACL entry (§6.2); when either list
    /// is non-empty, `uid`/`gid` stay `None`.
    pub acl_users: Vec<u32>,
    pub acl_groups: Vec<u32>,
}

impl SocketPerms {
    /// Whether POSIX ACL entries are to be written.
    pub fn has_acl(&self) -> bool {
        !self.acl_users.is_empty() || !self.acl_groups.is_empty()
    }
}

/// Resolves [`SocketPerms`]; the `Vec` holds php-fpm's warnings (owner/group
/// ignored because ACLs are set).
pub fn socket_permissions(
    pool: &PoolConf,
    sys: &dyn Sys,
) -> Result<(SocketPerms, Vec<Diag>), Failure> {
    let names = SocketNames {
        prefix: format!("[pool {}] ", pool.name),
        owner: &pool.listen_owner,
        group: &pool.listen_group,
        mode: &pool.listen_mode,
        acl_users: &pool.listen_acl_users,
        acl_groups: &pool.listen_acl_groups,
    };
    resolve_socket(&names, sys)
}

/// rfpm: the admin listener's Unix socket (`admin.listen.owner`, `.group`, `.mode`),
/// resolved like a pool's; errors start with `admin.listen: `.
pub fn admin_socket_permissions(
    g: &crate::GlobalConf,
    sys: &dyn Sys,
) -> Result<SocketPerms, Failure> {
    let names = SocketNames {
        prefix: "admin.listen: ".to_string(),
        owner: &g.admin_listen_owner,
        group: &g.admin_listen_group,
        mode: &g.admin_listen_mode,
        acl_users: &None,
        acl_groups: &None,
    };
    resolve_socket(&names, sys).map(|(perms, _)| perms)
}

/// The directives that set a Unix socket's permissions, and the prefix of messages.
struct SocketNames<'a> {
    prefix: String,
    owner: &'a Option<Bytes>,
    group: &'a Option<Bytes>,
    mode: &'a Option<String>,
    acl_users: &'a Option<Bytes>,
    acl_groups: &'a Option<Bytes>,
}

fn resolve_socket(n: &SocketNames<'_>, sys: &dyn Sys) -> Result<(SocketPerms, Vec<Diag>), Failure> {
    let prefix = &n.prefix;
    let is_id = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    let fail = |t: String| Failure {
        diags: vec![Diag::error(format!("{prefix}{t}"))],
    };
    let set = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let set_bytes = |v: &Option<Bytes>| v.clone().filter(|s| !s.is_empty());
    let mut warnings = Vec::new();
    let mut perms = SocketPerms {
        mode: 0o660,
        ..SocketPerms::default()
    };
    if let Some(m) = set(n.mode) {
        let digits: String = m
            .trim_start()
            .chars()
            .take_while(|c| ('0'..='7').contains(c))
            .collect();
        perms.mode = u32::from_str_radix(&digits, 8).unwrap_or(0);
    }
    let acl_users = set_bytes(n.acl_users);
    let acl_groups = set_bytes(n.acl_groups);
    if acl_users.is_some() || acl_groups.is_some() {
        // ACLs replace ownership; every entry is a name (split at ',', no trimming).
        for (what, v) in [("owner", n.owner), ("group", n.group)] {
            if let Some(v) = set_bytes(v) {
                warnings.push(Diag::warning(format!(
                    "{prefix}ACL set, listen.{what} = '{v}' is ignored"
                )));
            }
        }
        for u in acl_users.iter().flat_map(|l| l.split(|&c| c == b',')) {
            let shown = rfpm_core::shown::Shown(u);
            let pw = sys
                .user_by_name(u)
                .map_err(|e| fail(format!("cannot get uid for user '{shown}'{}", e.suffix())))?;
            perms.acl_users.push(pw.uid);
        }
        for g in acl_groups.iter().flat_map(|l| l.split(|&c| c == b',')) {
            let shown = rfpm_core::shown::Shown(g);
            let gid = sys
                .group_by_name(g)
                .map_err(|e| fail(format!("cannot get gid for group '{shown}'{}", e.suffix())))?;
            perms.acl_groups.push(gid);
        }
        return Ok((perms, warnings));
    }
    if let Some(o) = set_bytes(n.owner) {
        if is_id(&o) {
            perms.uid = Some(parse_id(&o));
        } else {
            let pw = sys
                .user_by_name(&o)
                .map_err(|e| fail(format!("cannot get uid for user '{o}'{}", e.suffix())))?;
            perms.uid = Some(pw.uid);
            perms.gid = Some(pw.gid);
        }
    }
    if let Some(g) = set_bytes(n.group) {
        if is_id(&g) {
            perms.gid = Some(parse_id(&g));
        } else {
            perms.gid = Some(
                sys.group_by_name(&g)
                    .map_err(|e| fail(format!("cannot get gid for group '{g}'{}", e.suffix())))?,
            );
        }
    }
    Ok((perms, warnings))
}

/// The master-level notice for a global `process.priority` when not root.
pub fn global_priority_notice(cfg: &Config, opts: &LoadOptions) -> Option<Diag> {
    (!opts.is_root && cfg.global.process_priority != PRIORITY_UNSET).then(|| {
        Diag::notice("'process.priority' directive is ignored when FPM is not running as root")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoSys;
    impl Sys for NoSys {
        fn is_dir(&self, _p: &Path) -> bool {
            true
        }
        fn user_by_name(&self, n: &[u8]) -> Result<UserInfo, SysError> {
            if n == b"www-data" {
                Ok(UserInfo {
                    name: "www-data".into(),
                    uid: 33,
                    gid: 33,
                    home: "/var/www".into(),
                })
            } else {
                Err(SysError::not_found())
            }
        }
        fn user_by_uid(&self, uid: u32) -> Result<UserInfo, SysError> {
            if uid == 33 {
                self.user_by_name(b"www-data")
            } else {
                Err(SysError::not_found())
            }
        }
        fn group_by_name(&self, _n: &[u8]) -> Result<u32, SysError> {
            Err(SysError::not_found())
        }
        fn open_log(&self, _w: &LogFile, _p: &Path) -> Result<(), SysError> {
            Ok(())
        }
    }

    /// `shutdown.drain` without `process_control_timeout` is a warning, not an error.
    #[test]
    fn a_drain_without_time_is_a_warning() {
        let text = |extra: &str| {
            format!("[global]\nerror_log = /tmp/e.log\n{extra}\n[www]\nlisten = /tmp/s\npm = static\npm.max_children = 1\n")
        };
        let warned = |extra: &str| {
            let o = LoadOptions {
                env: Box::new(|_| None),
                ..LoadOptions::default()
            };
            let mut l = match crate::load_str("t.conf", text(extra).as_bytes(), &o) {
                Ok(l) => l,
                Err(f) => panic!("load: {:?}", f.diags),
            };
            let d = validate(&mut l.config, &crate::AcceptAllSys, &o).unwrap_or_default();
            d.iter().any(|d| {
                d.level == Some(crate::Level::Warning) && d.text.starts_with("shutdown.drain ")
            })
        };
        assert!(warned("shutdown.drain = yes"));
        assert!(!warned(
            "shutdown.drain = yes\nprocess_control_timeout = 20s"
        ));
        assert!(!warned(""));
    }

    /// `admin.listen` (rfpm): a valid address, made absolute like a pool's socket, never
    /// a pool's own address; its owner resolves like `listen.owner`.
    #[test]
    fn admin_listen_is_checked() {
        let o = LoadOptions {
            env: Box::new(|_| None),
            ..LoadOptions::default()
        };
        let run = |extra: &str| {
            let text = format!("[global]\nerror_log = /tmp/e.log\n{extra}\n[www]\nlisten = /tmp/s\npm = static\npm.max_children = 1\n");
            let mut l = match crate::load_str("t.conf", text.as_bytes(), &o) {
                Ok(l) => l,
                Err(f) => panic!("load: {:?}", f.diags),
            };
            validate(&mut l.config, &crate::AcceptAllSys, &o)
                .map(|_| l.config)
                .map_err(|f| f.diags.iter().map(|d| d.text.clone()).collect::<Vec<_>>())
        };
        let ok = run("admin.listen = 127.0.0.1:9100").expect("valid");
        assert_eq!(
            ok.global.admin_listen.as_deref(),
            Some(&b"127.0.0.1:9100"[..])
        );
        let rel = run("admin.listen = admin.sock").expect("valid");
        assert!(rel
            .global
            .admin_listen
            .is_some_and(|a| a.starts_with(b"/") && a.ends_with(b"/admin.sock")));
        let e = run("admin.listen = 127.0.0.1:0").expect_err("port 0");
        assert!(
            e.iter()
                .any(|t| t == "admin.listen: '127.0.0.1:0': invalid port value '0'"),
            "{e:?}"
        );
        let e = run("admin.listen = /tmp/s").expect_err("a pool's address");
        assert!(
            e.iter()
                .any(|t| t == "admin.listen: '/tmp/s' is already the listen address of pool 'www'"),
            "{e:?}"
        );
        let mut g = crate::GlobalConf {
            admin_listen: Some("/tmp/a".into()),
            admin_listen_owner: Some("nobody-here".into()),
            admin_listen_mode: Some("0600".into()),
            ..Default::default()
        };
        let e = admin_socket_permissions(&g, &NoSys)
            .err()
            .map(|f| f.diags[0].text.clone());
        assert_eq!(
            e.as_deref(),
            Some("admin.listen: cannot get uid for user 'nobody-here': Success (0)")
        );
        g.admin_listen_owner = Some("www-data".into());
        let p = admin_socket_permissions(&g, &NoSys).ok();
        assert_eq!(
            p.map(|p| (p.uid, p.gid, p.mode)),
            Some((Some(33), Some(33), 0o600))
        );
    }

    #[test]
    fn request_id_server_var_is_a_name() {
        let result = |var: &str| {
            let text = format!(
                "[global]\nerror_log = /tmp/e.log\n[www]\nlisten = /tmp/s\npm = static\npm.max_children = 1\nrequest_id.server_var = {var}\n"
            );
            let o = LoadOptions {
                env: Box::new(|_| None),
                ..LoadOptions::default()
            };
            let mut l = match crate::load_str("t.conf", text.as_bytes(), &o) {
                Ok(l) => l,
                Err(f) => panic!("load: {:?}", f.diags),
            };
            validate(&mut l.config, &crate::AcceptAllSys, &o)
                .map(|_| ())
                .map_err(|f| f.diags.first().map(|d| d.text.clone()).unwrap_or_default())
        };
        assert_eq!(result("REQUEST_ID"), Ok(()));
        assert_eq!(result("x_1"), Ok(()));
        assert_eq!(
            result("\"A B\""),
            Err("[pool www] request_id.server_var 'A B' is not a valid variable name ([A-Za-z0-9_]+)".into())
        );
    }

    #[test]
    fn identities() {
        let mut p = PoolConf::new(b"www");
        p.user = Some("www-data".into());
        let root = LoadOptions {
            is_root: true,
            ..LoadOptions::default()
        };
        let (id, d) = resolve_identity(&p, &NoSys, &root).unwrap_or_default();
        assert_eq!(
            (id.uid, id.gid, id.home.as_deref()),
            (Some(33), Some(33), Some("/var/www"))
        );
        assert!(d.is_empty());
        p.group = Some("0".into());
        let e = resolve_identity(&p, &NoSys, &root)
            .err()
            .map(|f| f.diags[0].text.clone());
        assert_eq!(
            e.as_deref(),
            Some("[pool www] please specify user and group other than root")
        );
        p.group = Some("nosuch".into());
        let e = resolve_identity(&p, &NoSys, &root)
            .err()
            .map(|f| f.diags[0].text.clone());
        assert_eq!(
            e.as_deref(),
            Some("[pool www] cannot get gid for group 'nosuch'")
        );
        let user = LoadOptions::default();
        let (_, d) = resolve_identity(&p, &NoSys, &user).unwrap_or_default();
        assert_eq!(d.len(), 2);
        assert_eq!(
            d[0].text,
            "[pool www] 'user' directive is ignored when FPM is not running as root"
        );
        p.listen_owner = Some("bob".into());
        let e = socket_permissions(&p, &NoSys)
            .err()
            .map(|f| f.diags[0].text.clone());
        assert_eq!(
            e.as_deref(),
            Some("[pool www] cannot get uid for user 'bob': Success (0)")
        );
        p.listen_owner = Some("www-data".into());
        p.listen_group = None;
        p.listen_mode = Some("0666".into());
        let sp = socket_permissions(&p, &NoSys).ok();
        assert_eq!(
            sp,
            Some((
                SocketPerms {
                    uid: Some(33),
                    gid: Some(33),
                    mode: 0o666,
                    ..SocketPerms::default()
                },
                vec![]
            ))
        );
        // ACLs: owner/group ignored with a warning; names only, split without trimming.
        p.listen_acl_users = Some("www-data".into());
        let (sp, w) = socket_permissions(&p, &NoSys).unwrap_or_default();
        assert_eq!((sp.uid, sp.has_acl()), (None, true));
        assert_eq!(sp.acl_users, vec![33]);
        assert_eq!(
            w.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
            ["WARNING: [pool www] ACL set, listen.owner = 'www-data' is ignored"]
        );
        p.listen_acl_users = Some("www-data, www-data".into());
        let e = socket_permissions(&p, &NoSys)
            .err()
            .map(|f| f.diags[0].text.clone());
        assert_eq!(
            e.as_deref(),
            Some("[pool www] cannot get uid for user ' www-data': Success (0)")
        );
    }

    #[test]
    fn g3() {
        assert_eq!(fmt_g3(15.0), "15");
        assert_eq!(fmt_g3(1.5), "1.5");
        assert_eq!(fmt_g3(1234.0), "1.23e+03");
    }

    #[test]
    fn paths() {
        let mut d = Vec::new();
        let srv = Some(&b"/srv"[..]);
        assert_eq!(
            full_path(b"a", None, None, b"/var", false, &mut d),
            "/var/a"
        );
        assert_eq!(full_path(b"", None, None, b"/var", false, &mut d), "/var/");
        assert_eq!(
            full_path(b"$prefix/j", srv, None, b"/usr", true, &mut d),
            "/srv//j"
        );
        assert_eq!(
            full_path(b"$prefix", srv, None, b"/usr", true, &mut d),
            "/srv"
        );
        assert!(d.is_empty());
        assert_eq!(
            full_path(b"x$prefix", srv, None, b"/usr", true, &mut d),
            "x$prefix"
        );
        assert_eq!(d.len(), 1);
        // Bytes that are not UTF-8 stay as they are, in the value and in the prefix.
        let latin1 = Some(&b"/srv/caf\xe9"[..]);
        let v = full_path(b"$prefix/d\xe9", latin1, None, b"/usr", true, &mut d);
        assert_eq!(v.as_bytes(), b"/srv/caf\xe9//d\xe9");
    }
}
