//! Start-up in php-fpm's order (reference §3.1): signals, PHP module start-up, the
//! configuration, resource limits, daemonisation, priority, the pools, sockets, access
//! logs, pid file, launch; then the master runs.
use crate::cli::{Cli, EX_OK};
use crate::daemon::{self, Reporter, Side};
use crate::error::Error;
use crate::log;
use crate::master::{self, listen};
use crate::plan::{self, Plan};
use rfpm_sys::{fd, identity, process, signals, title};
use std::time::Duration;

/// A start-up that failed, with the daemon's report to its launcher still pending: it
/// is sent (failure) when this is dropped, after `main` has logged the error.
pub struct Failure {
    pub error: Error,
    pub reporter: Option<Reporter>,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure {
            error,
            reporter: None,
        }
    }
}

/// Starts PHP's engine with the command line's php.ini options.
pub fn start_engine(c: &Cli, argv0: &str) -> Result<(), Error> {
    let opts = sapi::EngineOptions {
        ini_path: c.php_ini.clone(),
        no_ini: c.no_php_ini,
        defines: c
            .defines
            .iter()
            .map(|(k, v)| [&k[..], b"=", &v[..]].concat())
            .collect(),
        // Where Debian's php-fpm of the same PHP reads php.ini (and conf.d).
        default_ini_dir: sapi::default_ini_dir(),
        executable: Some(argv0.to_string()),
    };
    sapi::startup(&opts)?;
    Ok(())
}

/// `rfpm [options]`: test the configuration (`-t`), print phpinfo (`-i`), or run.
/// `Ok` is the exit code.
/// `argv`: the whole command line as given (re-executed on reload).
pub fn run(argv0: &str, argv: &[Vec<u8>], c: &Cli) -> Result<i32, Failure> {
    // 1. Signals first: PHP captures the handlers that exist at its start-up.
    let signal_pipe =
        signals::install().map_err(|e| Error::sys("failed to install signal handlers", e))?;
    // 2. PHP.
    start_engine(c, argv0)?;
    if c.info {
        sapi::print_info();
        return Ok(EX_OK);
    }
    // 3. stdin/stdout to /dev/null, also in the foreground.
    let _ = fd::devnull_onto(fd::Stdio::In);
    let _ = fd::devnull_onto(fd::Stdio::Out);

    // 4. Configuration: planned, then committed (the error log takes its settings).
    let mut plan = match plan::load(c) {
        Ok(p) => p,
        Err(f) => {
            f.log.commit();
            return Err(f.error.into());
        }
    };
    std::mem::take(&mut plan.log).commit();
    if c.test > 0 {
        if c.test > 1 {
            // Byte for byte: a configured path that is not UTF-8 prints as php-fpm's.
            for line in conf::dump_bytes(&plan.config) {
                let function = crate::__rfpm_fn_name!();
                log::log_bytes(log::Level::Notice, function, line!(), &line, None);
            }
        }
        let what = if plan.builtin {
            "the built-in default configuration".to_string()
        } else {
            format!("configuration file {}", plan.path_shown)
        };
        notice!("{}", conf::test_successful(&what, &sapi::COMPAT));
        return Ok(EX_OK);
    }

    // 5. The master's resource limits (before daemonising: a failure exits 78).
    apply_global_limits(&plan.config.global)?;

    // 6. Daemonise (after the configuration was read, so its errors reach the terminal);
    // an image re-executed by a reload already is the daemon and keeps its PID.
    let reexec = std::env::var_os(master::handoff::REEXEC_ENV).is_some();
    std::env::remove_var(master::handoff::REEXEC_ENV);
    let reporter = if plan.daemonize && !reexec {
        match daemon::daemonize()? {
            Side::Launcher(code) => return Ok(code),
            Side::Master(r) => {
                // JSON entries name the daemon from now on, not the launcher.
                log::with(log::Logger::refresh_pid);
                Some(r)
            }
        }
    } else {
        None
    };
    match launch(argv, c, plan, signal_pipe, reporter) {
        Ok(code) => Ok(code),
        Err((error, reporter)) => Err(Failure { error, reporter }),
    }
}

/// The admin listener's accept queue (its connections are few and short).
pub const ADMIN_BACKLOG: i32 = 128;

/// From the daemon's side on: pools, sockets, logs, pid file; then the master runs.
fn launch(
    argv: &[Vec<u8>],
    c: &Cli,
    plan: Plan,
    signal_pipe: std::os::fd::OwnedFd,
    reporter: Option<Reporter>,
) -> Result<i32, (Error, Option<Reporter>)> {
    macro_rules! fail_with {
        ($e:expr) => {
            match $e {
                Ok(v) => v,
                Err(e) => return Err((e, reporter)),
            }
        };
    }
    process::setsid();
    fail_with!(apply_global_priority(&plan.config, c));
    // 7. The pools: identities and socket permissions.
    let (pools, said) = fail_with!(plan::pools(&plan.config, c));
    plan::print_diags(&said);

    // 8. The master's title.
    let title_area = title::init();
    if let Some(area) = title_area {
        title::set(
            area,
            &format!("php-fpm: master process ({})", plan.path_shown),
        );
    }

    // 9. Sockets: those the previous image handed over first.
    let mut inherited = listen::take_inherited();
    let mut listeners = Vec::new();
    for p in &pools {
        let mut notices = Vec::new();
        let perms = listen::perms_of(p);
        let res = listen::open(&p.listen, p.backlog, &perms, &mut inherited, &mut notices);
        for n in notices {
            notice!("{n}");
        }
        listeners.push(fail_with!(res.map_err(|msg| Error::init(msg, None))));
    }
    // The admin listener (rfpm), taken over on reload like the pools' sockets.
    let admin = match plan.config.global.admin_listen.as_deref() {
        Some(addr) => {
            let perms = fail_with!(listen::admin_perms(&plan.config.global));
            let mut notices = Vec::new();
            let res = listen::open(addr, ADMIN_BACKLOG, &perms, &mut inherited, &mut notices);
            for n in notices {
                notice!("{n}");
            }
            Some(fail_with!(res.map_err(|msg| Error::init(msg, None))))
        }
        None => None,
    };
    listen::close_unused(inherited);

    // Access logs: opened by the master now, written by the workers (reference §5.5).
    let mut access_logs = Vec::new();
    for p in &pools {
        let opened = p.access_log.as_ref().map(|path| {
            fd::open_append(path).map_err(|source| Error::File {
                what: format!("failed to open access log ({path})"),
                source,
            })
        });
        access_logs.push(fail_with!(opened.transpose()));
    }

    // 10. PID file.
    if let Some(pid) = &plan.pid_file {
        fail_with!(daemon::write_pid_file(pid));
    }

    // 11. stderr tied to the error log; from now on the master is "launched". A daemon
    // keeps nothing of the launching terminal open (GH-9754).
    let daemonized = reporter.is_some();
    log::with(|l| {
        if daemonized && !matches!(l.dest(), log::Dest::Stderr) {
            let _ = fd::devnull_onto(fd::Stdio::Err);
        }
        let _ = l.tie_stderr();
        l.set_launched(true);
    });
    notice!("fpm is running, pid {}", process::getpid());
    if let Some(r) = reporter {
        r.started();
    }
    let argv = argv.to_vec();

    let master = master::Master {
        cli: c.clone(),
        argv,
        title_area,
        pools,
        listeners,
        pid_file: plan.pid_file,
        process_control_timeout: Duration::from_secs(plan.process_control_timeout),
        global: plan.config.global.clone(),
        signal_pipe,
        access_logs,
        admin,
    };
    let ran = master.run();
    sapi::shutdown();
    ran.map_err(|e| (e, None))
}

/// The global `rlimit_files` / `rlimit_core`, set on the master before it daemonises
/// (reference §2.7); a failure is fatal (exit 78).
fn apply_global_limits(g: &conf::GlobalConf) -> Result<(), Error> {
    match crate::pool::set_rlimits(g.rlimit_files, g.rlimit_core)
        .into_iter()
        .next()
    {
        Some((what, e)) => Err(Error::init(what, Some(e))),
        None => Ok(()),
    }
}

/// The global `process.priority` (after daemonising): set when root, else php-fpm's
/// notice.
fn apply_global_priority(config: &conf::Config, c: &Cli) -> Result<(), Error> {
    let opts = plan::options(c);
    if let Some(d) = conf::global_priority_notice(config, &opts) {
        plan::print_diags(&[d]);
        return Ok(());
    }
    let prio = config.global.process_priority;
    if opts.is_root && prio != conf::model::PRIORITY_UNSET {
        identity::set_priority(prio)
            .map_err(|e| Error::init("Unable to set priority for the master process", Some(e)))?;
    }
    Ok(())
}
