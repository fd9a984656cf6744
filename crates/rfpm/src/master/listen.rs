//! Listening sockets (the `listen` forms of reference §6.1 are parsed by
//! `rfpm_core::listen_addr`), created by the master before forking; every worker of the
//! pool accepts on the same descriptor.
use rfpm_core::listen_addr::{parse_inherited, var_name, ListenAddr, MAX_VARS};
use rfpm_sys::{fd, identity};
use socket2::{Domain, Socket, Type};
use std::ffi::OsStr;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A bound, listening socket.
pub struct Listener {
    pub fd: OwnedFd,
    /// The socket file's exact path (a configured path need not be UTF-8).
    pub unix_path: Option<PathBuf>,
    /// `FPM_SOCKETS` key: `ip:port` as inet_ntop prints it, or the path's bytes.
    pub key: Vec<u8>,
}

impl Listener {
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Ownership and mode of a Unix socket file.
#[derive(Debug, Clone, Default)]
pub struct UnixPerms {
    /// The pool, for the messages.
    pub pool: conf::Bytes,
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
    pub key: Vec<u8>,
    pub fd: OwnedFd,
}

/// Reads (and logs) the sockets the previous image handed over.
pub fn take_inherited() -> Vec<Inherited> {
    let mut vars = Vec::new();
    for i in 0..MAX_VARS {
        match std::env::var_os(var_name(i)) {
            Some(v) => vars.push(v.into_encoded_bytes()),
            None => break,
        }
    }
    let mut out = Vec::new();
    for (key, fd) in parse_inherited(&vars) {
        // The key as php-fpm prints it: its bytes (a path need not be UTF-8).
        let mut line = format!("using inherited socket fd={fd}, \"").into_bytes();
        line.extend_from_slice(&key);
        line.push(b'"');
        crate::log::log_bytes(crate::log::Level::Notice, "", 0, &line, None);
        // Only descriptors that really are open are taken over.
        if let Some(fd) = fd::adopt_inherited(fd) {
            out.push(Inherited { key, fd });
        }
    }
    out
}

/// Closes inherited sockets no pool uses any more (and removes their Unix paths).
pub fn close_unused(rest: Vec<Inherited>) {
    for i in rest {
        if i.key.starts_with(b"/") {
            let _ = std::fs::remove_file(OsStr::from_bytes(&i.key));
        }
        drop(i.fd);
    }
}

/// The `FPM_SOCKETS` keys a `listen` value may be bound under (none if it does not
/// parse or resolve).
pub fn keys_for(listen: &[u8]) -> Vec<Vec<u8>> {
    rfpm_core::listen_addr::parse(&String::from_utf8_lossy(listen))
        .map(|a| candidate_keys(&a, listen))
        .unwrap_or_default()
}

/// A pool's socket permissions, as `open` takes them.
pub fn perms_of(p: &crate::pool::Pool) -> UnixPerms {
    UnixPerms {
        pool: p.name.clone(),
        mode: p.socket.mode,
        owner: p.socket.uid,
        group: p.socket.gid,
        acl_users: p.socket.acl_users.clone(),
        acl_groups: p.socket.acl_groups.clone(),
    }
}

/// The admin listener's socket permissions (`admin.listen.owner/group/mode`, rfpm),
/// resolved now (a name that does not resolve is an error, as for a pool).
pub fn admin_perms(g: &conf::GlobalConf) -> Result<UnixPerms, crate::error::Error> {
    let sys = crate::plan::os_sys();
    let p = conf::admin_socket_permissions(g, &sys)
        .map_err(|f| crate::error::Error::Config(f.diags))?;
    Ok(UnixPerms {
        pool: conf::Bytes::from("admin"),
        mode: p.mode,
        owner: p.uid,
        group: p.gid,
        acl_users: Vec::new(),
        acl_groups: Vec::new(),
    })
}

/// Closes sockets a reload opened but did not hand over (and removes their paths).
pub fn discard(opened: Vec<Listener>) {
    for l in opened {
        if let Some(p) = &l.unix_path {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The `FPM_SOCKETS` keys a `listen` value (`raw`, its bytes) may have been bound under.
fn candidate_keys(addr: &ListenAddr, raw: &[u8]) -> Vec<Vec<u8>> {
    match addr {
        ListenAddr::AnyPort(port) => vec![
            format!(":::{port}").into_bytes(),
            format!("0.0.0.0:{port}").into_bytes(),
        ],
        ListenAddr::Tcp { host, port } => match (host.as_str(), *port).to_socket_addrs() {
            Ok(addrs) => addrs
                .map(|a| format!("{}:{}", a.ip(), a.port()).into_bytes())
                .collect(),
            Err(_) => Vec::new(),
        },
        ListenAddr::Unix(_) => vec![raw.to_vec()],
    }
}

/// Creates the socket for `listen` (as written in the config: bytes, which for a Unix
/// socket are its path exactly), or takes over the one the previous image bound for it.
pub fn open(
    listen_bytes: &[u8],
    backlog: i32,
    perms: &UnixPerms,
    inherited: &mut Vec<Inherited>,
    notices: &mut Notices,
) -> Result<Listener, String> {
    // Addresses are parsed as text (the forms are ASCII); a Unix path keeps its bytes.
    let listen = &*String::from_utf8_lossy(listen_bytes);
    let path = Path::new(OsStr::from_bytes(listen_bytes));
    let addr = rfpm_core::listen_addr::parse(listen)?;
    // In messages, the address as configured (bytes, as php-fpm prints them).
    let shown = rfpm_core::shown::Shown(listen_bytes).to_string();
    for key in candidate_keys(&addr, listen_bytes) {
        if let Some(pos) = inherited.iter().position(|i| i.key == key) {
            let i = inherited.swap_remove(pos);
            let unix_path = matches!(addr, ListenAddr::Unix(_)).then(|| path.to_path_buf());
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
                                "unable to bind listening socket for address '{shown}'{}",
                                rfpm_sys::syserr(&e)
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
                "unable to bind listening socket for address '{shown}'{}",
                rfpm_sys::syserr(&e)
            ))
        }
        ListenAddr::Unix(_) => open_unix(path, &shown, backlog, perms),
    }
}

fn tcp_listener(s: Socket, addr: SocketAddr) -> Listener {
    let key = match addr {
        SocketAddr::V4(a) => format!("{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("{}:{}", a.ip(), a.port()),
    }
    .into_bytes();
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

/// Binds the Unix socket at `path` (exact bytes); `shown` is the path in messages and
/// the `FPM_SOCKETS` key.
fn open_unix(
    path: &Path,
    shown: &str,
    backlog: i32,
    perms: &UnixPerms,
) -> Result<Listener, String> {
    let addr = socket2::SockAddr::unix(path).map_err(|e| {
        format!(
            "unable to bind listening socket for address '{shown}'{}",
            rfpm_sys::syserr(&e)
        )
    })?;
    // Another FPM already serving this path?
    if let Ok(probe) = Socket::new(Domain::UNIX, Type::STREAM.cloexec(), None) {
        if probe.connect(&addr).is_ok() {
            return Err(format!(
                "Another FPM instance seems to already listen on {shown}"
            ));
        }
    }
    let _ = std::fs::remove_file(path);
    let s = Socket::new(Domain::UNIX, Type::STREAM.cloexec(), None).map_err(|e| {
        format!(
            "unable to bind listening socket for address '{shown}'{}",
            rfpm_sys::syserr(&e)
        )
    })?;
    let old = identity::umask(0o777 & !perms.mode);
    let bound = s.bind(&addr);
    identity::umask(old);
    bound.map_err(|e| {
        format!(
            "unable to bind listening socket for address '{shown}'{}",
            rfpm_sys::syserr(&e)
        )
    })?;
    let pool = &perms.pool;
    if !perms.acl_users.is_empty() || !perms.acl_groups.is_empty() {
        let acl = rfpm_sys::acl::encode(perms.mode & 0o777, &perms.acl_users, &perms.acl_groups);
        identity::set_access_acl(path, &acl).map_err(|e| {
            format!(
                "[pool {pool}] failed to write the ACL of the socket '{shown}'{}",
                rfpm_sys::syserr(&e)
            )
        })?;
    } else if perms.owner.is_some() || perms.group.is_some() {
        identity::chown(path, perms.owner, perms.group).map_err(|e| {
            format!(
                "[pool {pool}] failed to chown() the socket '{shown}'{}",
                rfpm_sys::syserr(&e)
            )
        })?;
    }
    s.listen(backlog).map_err(|e| {
        format!(
            "failed to listen to address '{shown}'{}",
            rfpm_sys::syserr(&e)
        )
    })?;
    Ok(Listener {
        fd: s.into(),
        unix_path: Some(path.to_path_buf()),
        key: path.as_os_str().as_bytes().to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_port_zero_is_refused_but_unix_works() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.sock");
        let path = path.to_string_lossy().into_owned();
        let mut n = Vec::new();
        let l = open(
            path.as_bytes(),
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
            path.as_bytes(),
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
