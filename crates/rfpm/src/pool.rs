//! A pool as the master and its workers use it: the validated configuration turned
//! into ready-to-use values (uids resolved, lists split).
use crate::os;
use conf::PoolConf;

/// The pool's user after lookup.
#[derive(Debug, Clone)]
pub struct Identity {
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pm {
    Static,
    Dynamic,
    Ondemand,
}

#[derive(Debug, Clone)]
pub struct Pool {
    pub name: String,
    pub listen: String,
    pub is_unix: bool,
    pub backlog: i32,
    pub listen_mode: u32,
    pub listen_owner: Option<u32>,
    pub listen_group: Option<u32>,
    pub pm: Pm,
    pub max_children: usize,
    pub start_servers: usize,
    pub min_spare: usize,
    pub max_spare: usize,
    pub max_spawn_rate: usize,
    pub idle_timeout: u64,
    pub max_requests: u64,
    pub identity: Option<Identity>,
    pub clear_env: bool,
    pub env: Vec<(String, String)>,
    pub chdir: Option<String>,
    pub limit_extensions: Vec<Vec<u8>>,
    pub ping: Option<(Vec<u8>, Vec<u8>)>,
    pub catch_workers_output: bool,
    pub decorate_workers_output: bool,
    /// `php_value`/`php_flag` then `php_admin_value`/`php_admin_flag`, in the order
    /// they are applied (the first definition in the file is applied last and wins).
    pub php_values: Vec<(String, String)>,
    /// `listen.allowed_clients` as written (parsed by each worker, TCP pools only).
    pub allowed_clients: Option<String>,
    pub php_admin_values: Vec<(String, String)>,
    /// `request_terminate_timeout`(+`_track_finished`) and `request_slowlog_timeout`.
    pub timeouts: crate::timeouts::TimeoutConf,
    /// The slow-log file and `request_slowlog_trace_depth`.
    pub slowlog: Option<String>,
    pub slowlog_depth: usize,
}

fn lookup_uid(v: &str) -> Option<(u32, Option<os::User>)> {
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        let uid: u32 = v.parse().ok()?;
        return Some((uid, os::user_by_uid(uid)));
    }
    os::user_by_name(v).map(|u| (u.uid, Some(u)))
}

fn lookup_gid(v: &str) -> Option<u32> {
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return v.parse().ok();
    }
    os::group_by_name(v)
}

impl Pool {
    /// Builds the runtime pool; `Err` is php-fpm's message for an unknown user/group or
    /// a root pool without `-R`.
    pub fn from_conf(
        c: &PoolConf,
        is_root: bool,
        allow_root: bool,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Pool, String> {
        let name = c.name.clone();
        let mut identity = None;
        if is_root {
            if let Some(user) = c.user.as_deref().filter(|u| !u.is_empty()) {
                let (uid, pw) = lookup_uid(user)
                    .ok_or_else(|| format!("[pool {name}] cannot get uid for user '{user}'"))?;
                let (mut gid, uname, home) = match pw {
                    Some(p) => (p.gid, p.name, p.home),
                    None => (0, String::new(), String::new()),
                };
                if let Some(group) = c.group.as_deref().filter(|g| !g.is_empty()) {
                    gid = lookup_gid(group).ok_or_else(|| {
                        format!("[pool {name}] cannot get gid for group '{group}'")
                    })?;
                }
                if !allow_root && (uid == 0 || gid == 0) {
                    return Err(format!(
                        "[pool {name}] please specify user and group other than root"
                    ));
                }
                identity = Some(Identity {
                    user: uname,
                    uid,
                    gid,
                    home,
                });
            }
        }
        let listen = c.listen.clone().unwrap_or_default();
        let is_unix = conf::model::address_is_unix(&listen);
        let listen_owner = match c.listen_owner.as_deref().filter(|s| !s.is_empty()) {
            Some(o) => Some(
                lookup_uid(o)
                    .map(|(u, _)| u)
                    .ok_or_else(|| format!("[pool {name}] cannot get uid for user '{o}'"))?,
            ),
            None => None,
        };
        let listen_group = match c.listen_group.as_deref().filter(|s| !s.is_empty()) {
            Some(g) => Some(
                lookup_gid(g)
                    .ok_or_else(|| format!("[pool {name}] cannot get gid for group '{g}'"))?,
            ),
            None => None,
        };
        let listen_mode = c
            .listen_mode
            .as_deref()
            .and_then(|m| u32::from_str_radix(m.trim(), 8).ok())
            .unwrap_or(0o660);
        let pm = match c.pm {
            Some(conf::Pm::Dynamic) => Pm::Dynamic,
            Some(conf::Pm::Ondemand) => Pm::Ondemand,
            _ => Pm::Static,
        };
        let exts = c
            .security_limit_extensions
            .clone()
            .unwrap_or_else(|| ".php .phar".to_string());
        let limit_extensions = exts
            .split([' ', '\t'])
            .filter(|s| !s.is_empty())
            .map(|s| s.as_bytes().to_vec())
            .collect();
        let ping = c.ping_path.as_deref().filter(|p| !p.is_empty()).map(|p| {
            (
                p.as_bytes().to_vec(),
                c.ping_response
                    .clone()
                    .unwrap_or_else(|| "pong".into())
                    .into_bytes(),
            )
        });
        // env[X] = $Y takes the master's variable Y; the first definition wins.
        let mut envs: Vec<(String, String)> = Vec::new();
        for kv in &c.env {
            if envs.iter().any(|(k, _)| *k == kv.key) {
                continue;
            }
            let value = match kv.value.strip_prefix('$') {
                Some(var) => env(var).unwrap_or_default(),
                None => kv.value.clone(),
            };
            envs.push((kv.key.clone(), value));
        }
        Ok(Pool {
            name,
            listen,
            is_unix,
            backlog: c.listen_backlog,
            listen_mode,
            listen_owner,
            listen_group,
            pm,
            max_children: c.pm_max_children.max(0) as usize,
            start_servers: c.pm_start_servers.max(0) as usize,
            min_spare: c.pm_min_spare_servers.max(0) as usize,
            max_spare: c.pm_max_spare_servers.max(0) as usize,
            max_spawn_rate: c.pm_max_spawn_rate.max(1) as usize,
            idle_timeout: c.pm_process_idle_timeout.max(1) as u64,
            max_requests: c.pm_max_requests.max(0) as u64,
            identity,
            clear_env: c.clear_env,
            env: envs,
            chdir: c.chdir.clone().filter(|d| !d.is_empty()),
            limit_extensions,
            ping,
            catch_workers_output: c.catch_workers_output,
            decorate_workers_output: c.decorate_workers_output,
            allowed_clients: c.listen_allowed_clients.clone().filter(|s| !s.is_empty()),
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
                terminate: c.request_terminate_timeout.max(0) as u64,
                track_finished: c.request_terminate_timeout_track_finished,
                slowlog: c.request_slowlog_timeout.max(0) as u64,
            },
            slowlog: c.slowlog.clone().filter(|s| !s.is_empty()),
            // php-fpm's default depth is 20.
            slowlog_depth: match c.request_slowlog_trace_depth {
                d if d > 0 => d as usize,
                _ => 20,
            },
        })
    }

    pub fn pm_conf(&self) -> crate::pm::PmConf {
        crate::pm::PmConf {
            pm: self.pm,
            max_children: self.max_children,
            min_spare: self.min_spare,
            max_spare: self.max_spare,
            max_spawn_rate: self.max_spawn_rate,
            idle_timeout: self.idle_timeout,
        }
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
