//! Listening sockets: the `listen` address forms of reference §6.1, created by the master
//! before forking; every worker of the pool accepts on the same descriptor.
use crate::os;
use socket2::{Domain, Socket, Type};
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// What a `listen` value means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// Digits only: all addresses (`[::]` dual-stack, else `0.0.0.0`).
    AnyPort(u16),
    /// `host:port` (split at the last colon, brackets removed).
    Tcp { host: String, port: u16 },
    /// A Unix socket path.
    Unix(String),
}

/// Parses a `listen` value. `Err` carries php-fpm's message.
pub fn parse(listen: &str) -> Result<ListenAddr, String> {
    if !listen.is_empty() && listen.bytes().all(|b| b.is_ascii_digit()) {
        return port_of(listen).map(ListenAddr::AnyPort);
    }
    if let Some(colon) = listen.rfind(':') {
        // A Unix path may contain ':' too, but php-fpm treats any ':' as TCP.
        let host = &listen[..colon];
        let port = port_of(&listen[colon + 1..])?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        return Ok(ListenAddr::Tcp {
            host: host.to_string(),
            port,
        });
    }
    Ok(ListenAddr::Unix(listen.to_string()))
}

fn port_of(s: &str) -> Result<u16, String> {
    match s.parse::<u32>() {
        Ok(p) if (1..=65535).contains(&p) => Ok(p as u16),
        _ => Err(format!("invalid port value '{s}'")),
    }
}

/// A bound, listening socket.
pub struct Listener {
    pub fd: OwnedFd,
    pub unix_path: Option<String>,
    /// `FPM_SOCKETS` key: `ip:port` as inet_ntop prints it, or the path.
    pub key: String,
}

impl Listener {
    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Ownership and mode of a Unix socket file.
#[derive(Debug, Clone, Default)]
pub struct UnixPerms {
    /// The pool, for the messages.
    pub pool: String,
    pub mode: u32,
    pub owner: Option<u32>,
    pub group: Option<u32>,
    /// `listen.acl_users` / `listen.acl_groups` resolved (reference §6.2); when either is
    /// non-empty an ACL is written instead of changing the owner.
    pub acl_users: Vec<u32>,
    pub acl_groups: Vec<u32>,
}

/// Log lines produced while binding (non-fatal notices).
pub type Notices = Vec<String>;

/// A socket handed over by the previous image through `FPM_SOCKETS` (reference §4.3).
#[derive(Debug)]
pub struct Inherited {
    pub key: String,
    pub fd: OwnedFd,
}

/// Most entries one `FPM_SOCKETS*` variable holds.
const PER_VAR: usize = 128;
/// Most `FPM_SOCKETS*` variables.
const MAX_VARS: usize = 256;

fn var_name(i: usize) -> String {
    if i == 0 {
        "FPM_SOCKETS".to_string()
    } else {
        format!("FPM_SOCKETS_{i}")
    }
}

/// `key=fd,key=fd` entries of `FPM_SOCKETS`, `FPM_SOCKETS_1`, ... (pure).
pub fn parse_inherited(vars: &[String]) -> Vec<(String, i32)> {
    let mut out = Vec::new();
    for v in vars {
        for entry in v.split(',').filter(|e| !e.is_empty()) {
            let Some(eq) = entry.rfind('=') else { continue };
            if let Ok(fd) = entry[eq + 1..].parse::<i32>() {
                if fd >= 0 {
                    out.push((entry[..eq].to_string(), fd));
                }
            }
        }
    }
    out
}

/// The environment variables that hand `listeners` to the next image (pure).
pub fn export_vars(listeners: &[(String, i32)]) -> Vec<(String, String)> {
    listeners
        .chunks(PER_VAR)
        .take(MAX_VARS)
        .enumerate()
        .map(|(i, chunk)| {
            let v: Vec<String> = chunk.iter().map(|(k, fd)| format!("{k}={fd}")).collect();
            (var_name(i), v.join(","))
        })
        .collect()
}

/// Reads (and logs) the sockets the previous image handed over.
pub fn take_inherited() -> Vec<Inherited> {
    let mut vars = Vec::new();
    for i in 0..MAX_VARS {
        match std::env::var(var_name(i)) {
            Ok(v) => vars.push(v),
            Err(_) => break,
        }
    }
    let mut out = Vec::new();
    for (key, fd) in parse_inherited(&vars) {
        crate::notice!("using inherited socket fd={fd}, \"{key}\"");
        // Only descriptors that really are open are taken over.
        // SAFETY: fcntl(F_GETFD) on an arbitrary number only queries it.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            continue;
        }
        let _ = os::set_cloexec(fd, true);
        // SAFETY: the previous image handed this open descriptor to us; we own it now.
        let fd = unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) };
        out.push(Inherited { key, fd });
    }
    out
}

/// Closes inherited sockets no pool uses any more (and removes their Unix paths).
pub fn close_unused(rest: Vec<Inherited>) {
    for i in rest {
        if i.key.starts_with('/') {
            let _ = std::fs::remove_file(&i.key);
        }
        drop(i.fd);
    }
}

/// The `FPM_SOCKETS` keys a `listen` value may have been bound under.
fn candidate_keys(addr: &ListenAddr) -> Vec<String> {
    match addr {
        ListenAddr::AnyPort(port) => vec![format!(":::{port}"), format!("0.0.0.0:{port}")],
        ListenAddr::Tcp { host, port } => match (host.as_str(), *port).to_socket_addrs() {
            Ok(addrs) => addrs.map(|a| format!("{}:{}", a.ip(), a.port())).collect(),
            Err(_) => Vec::new(),
        },
        ListenAddr::Unix(path) => vec![path.clone()],
    }
}

/// Creates the socket for `listen` (as written in the config), or takes over the one
/// the previous image bound for it.
pub fn open(
    listen: &str,
    backlog: i32,
    perms: &UnixPerms,
    inherited: &mut Vec<Inherited>,
    notices: &mut Notices,
) -> Result<Listener, String> {
    let addr = parse(listen)?;
    for key in candidate_keys(&addr) {
        if let Some(pos) = inherited.iter().position(|i| i.key == key) {
            let i = inherited.swap_remove(pos);
            let unix_path = matches!(addr, ListenAddr::Unix(_)).then(|| key.clone());
            return Ok(Listener {
                fd: i.fd,
                unix_path,
                key,
            });
        }
    }
    match addr {
        ListenAddr::AnyPort(port) => {
            let v6: SocketAddr = SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port));
            match bind_tcp(v6, backlog, true) {
                Ok(s) => Ok(tcp_listener(s, v6)),
                Err(_) => {
                    notices
                        .push("Failed implicitly binding to ::, retrying with 0.0.0.0".to_string());
                    let v4: SocketAddr = SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, port));
                    bind_tcp(v4, backlog, false)
                        .map(|s| tcp_listener(s, v4))
                        .map_err(|e| {
                            format!(
                                "unable to bind listening socket for address '{listen}'{}",
                                os::syserr(&e)
                            )
                        })
                }
            }
        }
        ListenAddr::Tcp { host, port } => {
            let addrs: Vec<SocketAddr> = match (host.as_str(), port).to_socket_addrs() {
                Ok(a) => a.collect(),
                Err(e) => return Err(format!("getaddrinfo: {e}\n")),
            };
            let mut last_err = None;
            for (i, addr) in addrs.iter().enumerate() {
                match bind_tcp(*addr, backlog, false) {
                    Ok(s) => {
                        for other in &addrs[i + 1..] {
                            notices.push(format!(
                                "Found multiple addresses for {host}, {} ignored",
                                other.ip()
                            ));
                        }
                        return Ok(tcp_listener(s, *addr));
                    }
                    Err(e) => last_err = Some(e),
                }
            }
            let e =
                last_err.unwrap_or_else(|| std::io::Error::from_raw_os_error(libc::EADDRNOTAVAIL));
            Err(format!(
                "unable to bind listening socket for address '{listen}'{}",
                os::syserr(&e)
            ))
        }
        ListenAddr::Unix(path) => open_unix(&path, backlog, perms),
    }
}

fn tcp_listener(s: Socket, addr: SocketAddr) -> Listener {
    let key = match addr {
        SocketAddr::V4(a) => format!("{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("{}:{}", a.ip(), a.port()),
    };
    Listener {
        fd: s.into(),
        unix_path: None,
        key,
    }
}

fn bind_tcp(addr: SocketAddr, backlog: i32, dual_stack: bool) -> std::io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM.cloexec(), None)?;
    s.set_reuse_address(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(!dual_stack && !addr.ip().is_unspecified())?;
    }
    s.bind(&addr.into())?;
    s.listen(backlog)?;
    Ok(s)
}

fn open_unix(path: &str, backlog: i32, perms: &UnixPerms) -> Result<Listener, String> {
    let addr = socket2::SockAddr::unix(path).map_err(|e| {
        format!(
            "unable to bind listening socket for address '{path}'{}",
            os::syserr(&e)
        )
    })?;
    // Another FPM already serving this path?
    if let Ok(probe) = Socket::new(Domain::UNIX, Type::STREAM.cloexec(), None) {
        if probe.connect(&addr).is_ok() {
            return Err(format!(
                "Another FPM instance seems to already listen on {path}"
            ));
        }
    }
    let _ = std::fs::remove_file(path);
    let s = Socket::new(Domain::UNIX, Type::STREAM.cloexec(), None).map_err(|e| {
        format!(
            "unable to bind listening socket for address '{path}'{}",
            os::syserr(&e)
        )
    })?;
    let old = os::umask(0o777 & !perms.mode);
    let bound = s.bind(&addr);
    os::umask(old);
    bound.map_err(|e| {
        format!(
            "unable to bind listening socket for address '{path}'{}",
            os::syserr(&e)
        )
    })?;
    let pool = &perms.pool;
    if !perms.acl_users.is_empty() || !perms.acl_groups.is_empty() {
        let acl = crate::acl::encode(perms.mode & 0o777, &perms.acl_users, &perms.acl_groups);
        os::set_access_acl(path, &acl).map_err(|e| {
            format!(
                "[pool {pool}] failed to write the ACL of the socket '{path}'{}",
                os::syserr(&e)
            )
        })?;
    } else if perms.owner.is_some() || perms.group.is_some() {
        os::chown(path, perms.owner, perms.group).map_err(|e| {
            format!(
                "[pool {pool}] failed to chown() the socket '{path}'{}",
                os::syserr(&e)
            )
        })?;
    }
    s.listen(backlog)
        .map_err(|e| format!("failed to listen to address '{path}'{}", os::syserr(&e)))?;
    Ok(Listener {
        fd: s.into(),
        unix_path: Some(path.to_string()),
        key: path.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fpm_sockets_round_trip() {
        let socks: Vec<(String, i32)> = (0..300).map(|i| (format!("/tmp/s{i}"), i + 3)).collect();
        let vars = export_vars(&socks);
        assert_eq!(vars.len(), 3);
        assert_eq!(vars[0].0, "FPM_SOCKETS");
        assert_eq!(vars[2].0, "FPM_SOCKETS_2");
        let values: Vec<String> = vars.into_iter().map(|(_, v)| v).collect();
        assert_eq!(parse_inherited(&values), socks);
        let two = parse_inherited(&["127.0.0.1:9000=7,:::9001=8".into()]);
        assert_eq!(
            two,
            vec![
                ("127.0.0.1:9000".to_string(), 7),
                (":::9001".to_string(), 8)
            ]
        );
    }

    #[test]
    fn forms() {
        assert_eq!(parse("9000"), Ok(ListenAddr::AnyPort(9000)));
        assert_eq!(
            parse("127.0.0.1:9000"),
            Ok(ListenAddr::Tcp {
                host: "127.0.0.1".into(),
                port: 9000
            })
        );
        assert_eq!(
            parse("[::1]:9000"),
            Ok(ListenAddr::Tcp {
                host: "::1".into(),
                port: 9000
            })
        );
        assert_eq!(
            parse("/run/php.sock"),
            Ok(ListenAddr::Unix("/run/php.sock".into()))
        );
        assert_eq!(
            parse("127.0.0.1:69002"),
            Err("invalid port value '69002'".into())
        );
        assert_eq!(parse("0"), Err("invalid port value '0'".into()));
    }

    #[test]
    fn binds_port_zero_is_refused_but_unix_works() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.sock");
        let path = path.to_string_lossy().into_owned();
        let mut n = Vec::new();
        let l = open(
            &path,
            16,
            &UnixPerms {
                mode: 0o660,
                ..UnixPerms::default()
            },
            &mut Vec::new(),
            &mut n,
        )
        .expect("bind");
        assert!(l.unix_path.is_some());
        // A second bind on the same live path is refused like php-fpm.
        let err = open(
            &path,
            16,
            &UnixPerms {
                mode: 0o660,
                ..UnixPerms::default()
            },
            &mut Vec::new(),
            &mut n,
        )
        .err();
        assert_eq!(
            err,
            Some(format!(
                "Another FPM instance seems to already listen on {path}"
            ))
        );
    }
}
