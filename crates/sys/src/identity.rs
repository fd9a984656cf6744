//! Identity: users and groups (NSS), the switch to a pool's user, resource limits,
//! priority, chroot, dumpable, file ownership and ACLs, AppArmor.
use crate::errno::{cvt, syserr};
use std::ffi::{CStr, CString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// A passwd entry.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
}

/// Copies the entry a reentrant passwd lookup returned.
///
/// # Safety
/// `p` is NULL or the result pointer of a successful getpwnam_r/getpwuid_r whose passwd
/// struct and buffer are still alive.
unsafe fn passwd_from(p: *const libc::passwd) -> Option<User> {
    if p.is_null() {
        return None;
    }
    // SAFETY: per the contract, `p` points to the caller's live passwd struct, whose
    // strings are NUL-terminated and point into the caller's live buffer; we copy them
    // before returning.
    unsafe {
        let p = &*p;
        Some(User {
            name: CStr::from_ptr(p.pw_name).to_string_lossy().into_owned(),
            uid: p.pw_uid,
            gid: p.pw_gid,
            home: CStr::from_ptr(p.pw_dir).to_string_lossy().into_owned(),
        })
    }
}

/// Initial buffer for the reentrant passwd/group lookups; it grows on ERANGE (a group
/// with thousands of members does not fit in 16 KiB).
const NSS_BUF: usize = 16 * 1024;
/// The buffer stops growing here: an entry this large is treated as missing.
const NSS_BUF_MAX: usize = 16 * 1024 * 1024;

/// Runs a reentrant NSS lookup with a buffer that doubles while the call answers
/// ERANGE. `lookup` returns the call's error number (0 on success, found or not).
fn nss_lookup<T>(
    initial: usize,
    mut lookup: impl FnMut(&mut [libc::c_char]) -> (libc::c_int, Option<T>),
) -> Option<T> {
    let mut len = initial.max(1);
    loop {
        let mut buf: Vec<libc::c_char> = vec![0; len];
        match lookup(&mut buf) {
            (libc::ERANGE, _) if len < NSS_BUF_MAX => len *= 2,
            (0, found) => return found,
            _ => return None,
        }
    }
}

fn user_by_name_buf(name: &[u8], initial: usize) -> Option<User> {
    let cname = CString::new(name).ok()?;
    nss_lookup(initial, |buf| {
        // SAFETY: all-zero is a valid passwd (a plain C struct); getpwnam_r writes into
        // it and into `buf` (its true length passed), and sets `res` to NULL or to `pw`;
        // `passwd_from` copies what it needs while `pw` and `buf` are alive.
        unsafe {
            let mut pw: libc::passwd = std::mem::zeroed();
            let mut res: *mut libc::passwd = std::ptr::null_mut();
            let rc = libc::getpwnam_r(
                cname.as_ptr(),
                &raw mut pw,
                buf.as_mut_ptr(),
                buf.len(),
                &raw mut res,
            );
            (rc, passwd_from(res))
        }
    })
}

/// getpwnam_r(3) of the name's bytes (NSS takes bytes, UTF-8 or not).
pub fn user_by_name(name: &[u8]) -> Option<User> {
    user_by_name_buf(name, NSS_BUF)
}

pub fn user_by_uid(uid: u32) -> Option<User> {
    nss_lookup(NSS_BUF, |buf| {
        // SAFETY: as in `user_by_name_buf`, with getpwuid_r.
        unsafe {
            let mut pw: libc::passwd = std::mem::zeroed();
            let mut res: *mut libc::passwd = std::ptr::null_mut();
            let rc = libc::getpwuid_r(uid, &raw mut pw, buf.as_mut_ptr(), buf.len(), &raw mut res);
            (rc, passwd_from(res))
        }
    })
}

fn group_by_name_buf(name: &[u8], initial: usize) -> Option<u32> {
    let cname = CString::new(name).ok()?;
    nss_lookup(initial, |buf| {
        // SAFETY: all-zero is a valid group (a plain C struct); getgrnam_r writes into it
        // and into `buf` (its true length passed) and sets `res` to NULL or to `gr`; only
        // the gid, a plain integer, is read, while `gr` is alive.
        unsafe {
            let mut gr: libc::group = std::mem::zeroed();
            let mut res: *mut libc::group = std::ptr::null_mut();
            let rc = libc::getgrnam_r(
                cname.as_ptr(),
                &raw mut gr,
                buf.as_mut_ptr(),
                buf.len(),
                &raw mut res,
            );
            (rc, (!res.is_null()).then(|| (*res).gr_gid))
        }
    })
}

/// getgrnam_r(3) of the name's bytes.
pub fn group_by_name(name: &[u8]) -> Option<u32> {
    group_by_name_buf(name, NSS_BUF)
}

/// setgid (when `gid` is not 0) + initgroups (when a user name is known) + setuid (when
/// `uid` is not 0), in that order, like php-fpm's worker (reference §3.8). `Err` is
/// php-fpm's message with the SYSERR suffix.
pub fn switch_user(initgroups_user: Option<&str>, uid: u32, gid: u32) -> Result<(), String> {
    if gid != 0 {
        // SAFETY: setgid takes an integer and touches no memory of ours.
        if unsafe { libc::setgid(gid) } < 0 {
            return Err(format!(
                "failed to setgid({gid}){}",
                syserr(&io::Error::last_os_error())
            ));
        }
    }
    if let Some(name) = initgroups_user {
        let cname =
            CString::new(name).map_err(|_| format!("failed to initgroups({name}, {gid})"))?;
        // SAFETY: `cname` is a NUL-terminated string alive during the call; initgroups
        // keeps no pointer to it.
        if unsafe { libc::initgroups(cname.as_ptr(), gid) } < 0 {
            return Err(format!(
                "failed to initgroups({name}, {gid}){}",
                syserr(&io::Error::last_os_error())
            ));
        }
    }
    if uid != 0 {
        // SAFETY: setuid takes an integer and touches no memory of ours.
        if unsafe { libc::setuid(uid) } < 0 {
            return Err(format!(
                "failed to setuid({uid}){}",
                syserr(&io::Error::last_os_error())
            ));
        }
    }
    Ok(())
}

/// Which limit [`set_rlimit`] sets.
#[derive(Debug, Clone, Copy)]
pub enum Rlimit {
    Files,
    Core,
}

/// setrlimit with soft = hard = `value` (`-1` = unlimited, for `rlimit_core`).
pub fn set_rlimit(which: Rlimit, value: i32) -> io::Result<()> {
    // Negative means unlimited; otherwise the value fits (rlim_t is 64-bit unsigned).
    let v = libc::rlim_t::try_from(value).unwrap_or(libc::RLIM_INFINITY);
    let lim = libc::rlimit {
        rlim_cur: v,
        rlim_max: v,
    };
    let res = match which {
        Rlimit::Files => libc::RLIMIT_NOFILE,
        Rlimit::Core => libc::RLIMIT_CORE,
    };
    // SAFETY: `lim` is a live local setrlimit reads during the call.
    cvt(unsafe { libc::setrlimit(res, &raw const lim) }).map(drop)
}

/// setpriority(PRIO_PROCESS, 0, prio): the nice value of this process.
pub fn set_priority(prio: i32) -> io::Result<()> {
    // SAFETY: setpriority takes integers and touches no memory of ours.
    cvt(unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, prio) }).map(drop)
}

pub fn chroot(path: &Path) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `c` is a NUL-terminated path alive during the call.
    cvt(unsafe { libc::chroot(c.as_ptr()) }).map(drop)
}

/// prctl(PR_SET_DUMPABLE, 1).
pub fn set_dumpable() -> io::Result<()> {
    // SAFETY: PR_SET_DUMPABLE takes integer arguments only; no memory is passed.
    cvt(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) }).map(drop)
}

/// Writes the access ACL of a file (the `system.posix_acl_access` attribute, the
/// kernel's own format; see [`crate::acl`]).
pub fn set_access_acl(path: &Path, xattr: &[u8]) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `c` and the attribute name are NUL-terminated strings alive during the
    // call; `xattr` is a live slice read for its true length.
    cvt(unsafe {
        libc::setxattr(
            c.as_ptr(),
            c"system.posix_acl_access".as_ptr(),
            xattr.as_ptr().cast(),
            xattr.len(),
            0,
        )
    })
    .map(drop)
}

/// Sets the file mode creation mask; returns the previous one.
pub fn umask(mask: u32) -> u32 {
    // SAFETY: umask takes an integer and cannot fail; mode_t is u32 on Linux.
    unsafe { libc::umask(mask) }
}

pub fn chown(path: &Path, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `c` is a NUL-terminated path alive during the call; -1 (u32::MAX) means
    // "leave unchanged".
    cvt(unsafe { libc::chown(c.as_ptr(), uid.unwrap_or(u32::MAX), gid.unwrap_or(u32::MAX)) })
        .map(drop)
}

/// This task's AppArmor attribute file (`current`): the AppArmor-specific one where the
/// kernel has it, else the shared LSM one, like libapparmor.
fn apparmor_attr(tid: libc::pid_t) -> io::Result<(String, String)> {
    let specific = format!("/proc/{tid}/attr/apparmor/current");
    match std::fs::read_to_string(&specific) {
        Ok(text) => Ok((specific, text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let shared = format!("/proc/{tid}/attr/current");
            std::fs::read_to_string(&shared).map(|text| (shared, text))
        }
        Err(e) => Err(e),
    }
}

/// The current AppArmor label (without the ` (mode)` suffix) and the file to write a
/// profile change to.
pub fn apparmor_current() -> io::Result<(String, String)> {
    // SAFETY: gettid takes no arguments and cannot fail.
    let tid = unsafe { libc::gettid() };
    let (path, text) = apparmor_attr(tid)?;
    Ok((apparmor_label(&text).to_string(), path))
}

/// `profile (enforce)\n` → `profile`; `unconfined\n` → `unconfined`.
fn apparmor_label(text: &str) -> &str {
    let label = text.trim_end_matches(['\n', '\0']);
    match label
        .strip_suffix(')')
        .and_then(|l| l.rfind(" (").map(|i| &l[..i]))
    {
        Some(l) => l,
        None => label,
    }
}

/// Asks AppArmor to move this task to `profile` (`changeprofile <profile>`).
pub fn apparmor_change_profile(attr_path: &str, profile: &str) -> io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().write(true).open(attr_path)?;
    f.write_all(format!("changeprofile {profile}").as_bytes())
}

#[cfg(test)]
mod tests {
    #[test]
    fn apparmor_labels() {
        assert_eq!(super::apparmor_label("php-fpm (enforce)\n"), "php-fpm");
        assert_eq!(super::apparmor_label("unconfined\n"), "unconfined");
        assert_eq!(super::apparmor_label("a (b) (complain)"), "a (b)");
    }

    #[test]
    fn lookups_grow_their_buffer_on_erange() {
        // A 1-byte buffer cannot hold any entry: the lookup must retry with a larger one.
        let root = super::user_by_name_buf(b"root", 1);
        assert_eq!(root.as_ref().map(|u| u.uid), Some(0), "{root:?}");
        assert_eq!(super::group_by_name_buf(b"root", 1), Some(0));
        assert!(super::user_by_name_buf(b"no-such-user-rfpm", 1).is_none());
        assert!(super::group_by_name_buf(b"no-such-group-rfpm", 1).is_none());
        assert_eq!(
            super::user_by_uid(0).map(|u| u.name),
            Some("root".to_string())
        );
    }
}
