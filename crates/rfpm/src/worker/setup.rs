//! A new worker takes its pool's identity (reference §3.2, §3.8, §3.9): output, resource
//! limits, chroot and chdir, priority, user and group, dumpable, AppArmor, environment.
use crate::log::Level;
use crate::pool::Pool;
use rfpm_sys::{fd, identity};

/// The pool's identity and environment (reference §3.2, §3.8, §3.9).
pub(super) fn setup(pool: &Pool) -> Result<(), String> {
    // stdout/stderr: /dev/null unless the master captures them (a worker-mode worker's
    // until its boot ends: `app::run`).
    if !pool.catch_workers_output && pool.worker_script.is_none() {
        let _ = fd::devnull_onto(fd::Stdio::Out);
        let _ = fd::devnull_onto(fd::Stdio::Err);
    }
    identity(pool)?;
    if pool.clear_env {
        for (k, _) in std::env::vars_os() {
            std::env::remove_var(k);
        }
    }
    for (k, v) in &pool.env {
        set_env(k.as_os_str(), v.as_os_str());
    }
    if !pool.env.iter().any(|(k, _)| k == "USER") {
        if let Some(u) = &pool.identity.user {
            std::env::set_var("USER", u);
        }
    }
    if !pool.env.iter().any(|(k, _)| k == "HOME") {
        if let Some(h) = &pool.identity.home {
            std::env::set_var("HOME", h);
        }
    }
    // libphp8.2 has pcntl built in, php-fpm8.2 has not: a script could fork a worker
    // behind the master's back.
    if !pool.allow_pcntl {
        sapi::hide_pcntl();
    }
    for (k, v) in &pool.php_values {
        if !sapi::set_ini(k, v, false) {
            crate::log::log(
                Level::Error,
                "fpm_php_apply_defaults",
                line!(),
                &format!("Unable to set php_value '{k}'"),
                None,
            );
        }
    }
    for (k, v) in &pool.php_admin_values {
        if !sapi::set_ini(k, v, true) {
            crate::log::log(
                Level::Error,
                "fpm_php_apply_defaults",
                line!(),
                &format!("Unable to set php_admin_value '{k}'"),
                None,
            );
        }
    }
    Ok(())
}

/// Limits, root directory, working directory, priority, user and dumpability, in
/// php-fpm's order (reference §3.8). `Err` is a fatal message.
pub(super) fn identity(pool: &Pool) -> Result<(), String> {
    let name = &pool.name;
    for (what, e) in crate::pool::set_rlimits(pool.rlimit_files, pool.rlimit_core) {
        // Only logged: the worker carries on with the inherited limit.
        crate::log::log(
            Level::Error,
            "fpm_unix_init_child",
            line!(),
            &format!("[pool {name}] {what}"),
            e.raw_os_error(),
        );
    }
    if let Some(root) = &pool.chroot {
        identity::chroot(root.as_path()).map_err(|e| {
            format!(
                "[pool {name}] failed to chroot({root}){}",
                rfpm_sys::syserr(&e)
            )
        })?;
    }
    if let Some(dir) = &pool.chdir {
        std::env::set_current_dir(dir).map_err(|e| {
            format!(
                "[pool {name}] failed to chdir({dir}){}",
                rfpm_sys::syserr(&e)
            )
        })?;
    } else if pool.chroot.is_some() {
        if let Err(e) = std::env::set_current_dir("/") {
            crate::log::log(
                Level::Warning,
                "fpm_unix_init_child",
                line!(),
                &format!("[pool {name}] failed to chdir(/)"),
                e.raw_os_error(),
            );
        }
    }
    if let Some(prio) = pool.priority {
        identity::set_priority(prio).map_err(|e| {
            format!(
                "[pool {name}] Unable to set priority for this new process{}",
                rfpm_sys::syserr(&e)
            )
        })?;
    }
    if let Some(uid) = pool.identity.uid {
        let gid = pool.identity.gid.unwrap_or(0);
        identity::switch_user(pool.identity.initgroups_user.as_deref(), uid, gid)
            .map_err(|m| format!("[pool {name}] {m}"))?;
    }
    if pool.dumpable {
        identity::set_dumpable().map_err(|e| {
            format!(
                "[pool {name}] failed to prctl(PR_SET_DUMPABLE){}",
                rfpm_sys::syserr(&e)
            )
        })?;
    }
    if let Some(hat) = &pool.apparmor_hat {
        let (current, attr) = identity::apparmor_current().map_err(|e| {
            format!(
                "[pool {name}] failed to query apparmor confinement. Please check if \"/proc/*/attr/current\" is read and writeable.{}",
                rfpm_sys::syserr(&e)
            )
        })?;
        let new = format!("{current}//{hat}");
        identity::apparmor_change_profile(&attr, &new).map_err(|e| {
            format!(
                "[pool {name}] failed to change to new confinement ({new}). Please check if \"/proc/*/attr/current\" is read and writeable and \"change_profile -> {current}//*\" is allowed.{}",
                rfpm_sys::syserr(&e)
            )
        })?;
    }
    Ok(())
}

/// `env[NAME] = value` as php-fpm's setenv(3) gives it: a name the C library refuses
/// (empty, or holding `=`) is skipped, and a value ends at its first NUL byte (a C
/// string). std's `set_var` would panic on those, and the worker would die at start
/// again and again.
fn set_env(k: &std::ffi::OsStr, v: &std::ffi::OsStr) {
    use std::os::unix::ffi::OsStrExt;
    let name = k.as_bytes();
    if name.is_empty() || name.contains(&b'=') || name.contains(&0) {
        return;
    }
    let value = v.as_bytes();
    let value = &value[..value.iter().position(|&b| b == 0).unwrap_or(value.len())];
    std::env::set_var(k, std::ffi::OsStr::from_bytes(value));
}
