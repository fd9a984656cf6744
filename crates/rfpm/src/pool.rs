//! A pool as the master and its workers use it: the validated configuration turned
//! into ready-to-use values (identity and socket permissions resolved by `conf`, lists
//! split, the worker environment computed).
use conf::PoolConf;
pub use rfpm_core::pm::Pm;

#[derive(Debug, Clone)]
pub struct Pool {
    /// The section's name, the file's bytes (shown in messages through its `Display`).
    pub name: conf::Bytes,
    /// `listen` as configured: its bytes are the Unix socket's path (shown lossily).
    pub listen: conf::Bytes,
    pub is_unix: bool,
    pub backlog: i32,
    /// `listen.mode`, `listen.owner`/`listen.group`, `listen.acl_*` resolved.
    pub socket: conf::SocketPerms,
    pub pm: Pm,
    pub max_children: usize,
    pub start_servers: usize,
    pub min_spare: usize,
    pub max_spare: usize,
    pub max_spawn_rate: usize,
    pub idle_timeout: u64,
    pub max_requests: u64,
    /// `request.max_params_size` (rfpm only): a request whose params exceed it is refused.
    pub max_params_size: usize,
    /// `allow_pcntl` (rfpm only): the scripts see pcntl (hidden otherwise, as php-fpm8.2
    /// has none).
    pub allow_pcntl: bool,
    /// `pm.max_requests_jitter` (rfpm): each worker adds a random 0..=N to `max_requests`.
    pub max_requests_jitter: u64,
    /// `pm.max_memory` (rfpm): resident bytes above which the master recycles a worker;
    /// 0 = off.
    pub max_memory: u64,
    /// `request_read_timeout` (rfpm): seconds a connection has to deliver a request's
    /// params (and the body read before the script starts); 0 = off.
    pub read_timeout: u64,
    /// `worker.script` (rfpm): worker mode; each worker boots this script once and
    /// serves the pool's requests through its `frankenphp_handle_request()` calls.
    pub worker_script: Option<conf::Bytes>,
    /// What the worker switches to (uid/gid only when the master is root) and its
    /// `USER`/`HOME`.
    pub identity: conf::Identity,
    /// `rlimit_files` / `rlimit_core` for each worker (0 = inherit, core -1 = unlimited).
    pub rlimit_files: i32,
    pub rlimit_core: i32,
    /// `chroot` (root master only; `$prefix` already resolved).
    pub chroot: Option<conf::Bytes>,
    pub chdir: Option<conf::Bytes>,
    /// `process.priority` (root master only).
    pub priority: Option<i32>,
    pub dumpable: bool,
    /// `apparmor_hat`: the worker changes to `<current profile>//<hat>`.
    pub apparmor_hat: Option<conf::Bytes>,
    pub clear_env: bool,
    /// `env[]` in application order, `$VAR` values already taken from the master.
    pub env: Vec<(conf::Bytes, conf::Bytes)>,
    pub limit_extensions: Vec<Vec<u8>>,
    pub ping: Option<(Vec<u8>, Vec<u8>)>,
    pub catch_workers_output: bool,
    pub decorate_workers_output: bool,
    /// `php_value`/`php_flag` then `php_admin_value`/`php_admin_flag`, in the order
    /// they are applied (the first definition in the file is applied last and wins).
    pub php_values: Vec<(conf::Bytes, conf::Bytes)>,
    /// `listen.allowed_clients` as written (parsed by each worker, TCP pools only).
    pub allowed_clients: Option<String>,
    pub php_admin_values: Vec<(conf::Bytes, conf::Bytes)>,
    /// `request_terminate_timeout`(+`_track_finished`) and `request_slowlog_timeout`.
    pub timeouts: crate::timeouts::TimeoutConf,
    /// The slow-log file and `request_slowlog_trace_depth`.
    pub slowlog: Option<conf::Bytes>,
    pub slowlog_depth: usize,
    /// `pm.status_path` (reference §9).
    pub status_path: Option<Vec<u8>>,
    /// A hidden `pm.status_listen` pool: index of the pool whose status it shows.
    pub shared: Option<usize>,
    /// `access.log` (resolved path) and `access.format`.
    pub access_log: Option<conf::Bytes>,
    pub access_format: Vec<u8>,
    /// `access.suppress_path[]`.
    pub suppress_paths: Vec<Vec<u8>>,
    /// `access.log_format = json` (rfpm): one JSON object per request.
    pub access_json: bool,
    /// `request_id.server_var` (rfpm): the `$_SERVER` entry that receives the id.
    pub request_id_var: Option<Vec<u8>>,
    /// Whether the pool's requests get an id (rfpm): when a JSON log or
    /// `request_id.server_var` shows it. Off for a php-fpm configuration, which then
    /// costs nothing.
    pub request_ids: bool,
}

impl Pool {
    /// Builds the runtime pool from its configuration and what the master resolved at
    /// start (`conf::resolve_identity`, `conf::socket_permissions`).
    pub fn from_conf(
        c: &PoolConf,
        identity: conf::Identity,
        socket: conf::SocketPerms,
        is_root: bool,
        env: &dyn Fn(&[u8]) -> Option<Vec<u8>>,
    ) -> Pool {
        let listen = c.listen.clone().unwrap_or_default();
        // The classification looks at ASCII only (':', digits): lossy text is exact.
        let is_unix = conf::model::address_is_unix(&listen.to_str_lossy());
        let pm = c.pm.unwrap_or(Pm::Static);
        let limit_extensions = c.limit_extensions();
        // Validation gives a pool with a ping path its response (`pong` by default).
        let ping = c
            .ping_path
            .as_deref()
            .filter(|p| !p.is_empty())
            .zip(c.ping_response.as_deref())
            .map(|(p, r)| (p.to_vec(), r.to_vec()));
        let priority = (is_root && c.process_priority != conf::model::PRIORITY_UNSET)
            .then_some(c.process_priority);
        Pool {
            name: c.name.clone(),
            listen,
            is_unix,
            backlog: c.listen_backlog,
            socket,
            pm,
            max_children: c.pm_max_children.get(),
            start_servers: c.pm_start_servers.get(),
            min_spare: c.pm_min_spare_servers.get(),
            max_spare: c.pm_max_spare_servers.get(),
            max_spawn_rate: c.pm_max_spawn_rate.get().max(1),
            idle_timeout: c.pm_process_idle_timeout.get().max(1),
            max_requests: c.pm_max_requests.get() as u64,
            max_params_size: c
                .request_max_params_size
                .map_or(fcgi::server::DEFAULT_MAX_PARAMS_LEN, conf::Count::get),
            allow_pcntl: c.allow_pcntl,
            max_requests_jitter: c.pm_max_requests_jitter.get() as u64,
            max_memory: c.pm_max_memory,
            read_timeout: c.request_read_timeout.get(),
            worker_script: c.worker_script.clone().filter(|s| !s.is_empty()),
            identity,
            rlimit_files: c.rlimit_files,
            rlimit_core: c.rlimit_core,
            chroot: c.chroot.clone().filter(|d| is_root && !d.is_empty()),
            chdir: c.chdir.clone().filter(|d| !d.is_empty()),
            priority,
            dumpable: c.process_dumpable,
            apparmor_hat: c.apparmor_hat.clone().filter(|h| !h.is_empty()),
            clear_env: c.clear_env,
            env: c.worker_env(env),
            limit_extensions,
            ping,
            catch_workers_output: c.catch_workers_output,
            decorate_workers_output: c.decorate_workers_output,
            // Addresses are text; a byte that is not UTF-8 makes an address that does not
            // parse, and the warning shows it as the file has it.
            allowed_clients: c
                .listen_allowed_clients
                .as_ref()
                .filter(|s| !s.is_empty())
                .map(ToString::to_string),
            php_values: c
                .php_values
                .iter()
                .map(|kv| (kv.key.clone(), kv.value.clone()))
                .collect(),
            php_admin_values: c
                .php_admin_values
                .iter()
                .map(|kv| (kv.key.clone(), kv.value.clone()))
                .collect(),
            timeouts: crate::timeouts::TimeoutConf {
                terminate: c.request_terminate_timeout.get(),
                track_finished: c.request_terminate_timeout_track_finished,
                slowlog: c.request_slowlog_timeout.get(),
            },
            slowlog: c.slowlog.clone().filter(|s| !s.is_empty()),
            // Validation fills in php-fpm's default depth, 20.
            slowlog_depth: c.request_slowlog_trace_depth.get(),
            status_path: c
                .pm_status_path
                .as_deref()
                .filter(|p| !p.is_empty())
                .map(<[u8]>::to_vec),
            shared: c.shared,
            access_log: c.access_log.clone().filter(|s| !s.is_empty()),
            // Validation fills in the default format for a pool with an access log.
            access_format: c.access_format.clone().unwrap_or_default().into_vec(),
            suppress_paths: c
                .access_suppress_path
                .iter()
                .map(|p| p.as_bytes().to_vec())
                .collect(),
            access_json: c.access_log_format.as_deref() == Some("json"),
            request_id_var: c
                .request_id_server_var
                .as_ref()
                .map(|v| v.as_bytes().to_vec()),
            request_ids: c.access_log_format.as_deref() == Some("json")
                || c.request_id_server_var.is_some(),
        }
    }

    pub fn pm_conf(&self) -> rfpm_core::pm::PmConf {
        rfpm_core::pm::PmConf {
            pm: self.pm,
            max_children: self.max_children,
            min_spare: self.min_spare,
            max_spare: self.max_spare,
            max_spawn_rate: self.max_spawn_rate,
            idle_timeout: self.idle_timeout,
        }
    }

    /// The process manager's name on the status page.
    pub fn pm_name(&self) -> &'static str {
        self.pm.name()
    }

    /// How many workers to start at boot.
    pub fn initial_workers(&self) -> usize {
        match self.pm {
            Pm::Static => self.max_children,
            Pm::Dynamic => self.start_servers,
            Pm::Ondemand => 0,
        }
    }
}

/// `rlimit_files` and `rlimit_core` (0: left alone), set like php-fpm sets them, for the
/// master (`[global]`) and for a pool's workers. Returns each failure with php-fpm's
/// message (without the SYSERR suffix, which the logger adds from the error).
pub fn set_rlimits(files: i32, core: i32) -> Vec<(String, std::io::Error)> {
    use rfpm_sys::identity::{self, Rlimit};
    let mut failed = Vec::new();
    for (which, value, name, res) in [
        (Rlimit::Files, files, "rlimit_files", "RLIMIT_NOFILE"),
        (Rlimit::Core, core, "rlimit_core", "RLIMIT_CORE"),
    ] {
        if value == 0 {
            continue;
        }
        if let Err(e) = identity::set_rlimit(which, value) {
            failed.push((
                format!("failed to set {name} for this pool. Please check your system limits or decrease {name}. setrlimit({res}, {value})"),
                e,
            ));
        }
    }
    failed
}
