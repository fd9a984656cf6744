//! rfpm: a FastCGI Process Manager for PHP, a drop-in replacement for php-fpm 8.2.
//!
//! `main` follows php-fpm's start-up order (reference §3.1): signals, PHP module
//! start-up, configuration, daemonisation, sockets, PID file, workers.
//!
//! The binary is an effect shell: decisions and formats live in `rfpm-core`, every
//! `unsafe` system call in `rfpm-sys`, PHP in `sapi`.
#![forbid(unsafe_code)]

#[macro_use]
mod log;
mod master;
mod plan;
mod pool;
mod request_cmd;
mod scoreboard;
mod worker;

use rfpm_core::{access, capture, cli, paths, pm, status, timeouts};
use rfpm_sys::{fd, notify as systemd, process, signals, title};

use cli::{Cli, Parsed, EX_CONFIG, EX_OK, EX_SOFTWARE, EX_USAGE};
use std::io::Write;
use std::time::Duration;

/// Debian's php-fpm8.2 reads php.ini (and conf.d) from here; so does rfpm by default.
const DEFAULT_INI_DIR: &str = "/etc/php/8.2/fpm";

fn main() {
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let argv0 = argv.first().cloned().unwrap_or_else(|| "rfpm".to_string());
    let code = real_main(&argv0, argv.get(1..).unwrap_or(&[]));
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}

fn real_main(argv0: &str, args: &[String]) -> i32 {
    match cli::parse(argv0, args) {
        Parsed::Request(rest) => request_cmd::main(&rest),
        Parsed::Help => {
            print!("{}", cli::usage(argv0));
            EX_OK
        }
        Parsed::UsageError(msg) => {
            if !msg.is_empty() {
                eprintln!("{msg}");
            }
            print!("{}", cli::usage(argv0));
            EX_USAGE
        }
        Parsed::Version(c) => {
            if start_engine(&c, argv0).is_err() {
                return EX_SOFTWARE;
            }
            print!("{}", sapi::version_text());
            EX_OK
        }
        Parsed::Modules(c) => {
            if start_engine(&c, argv0).is_err() {
                return EX_SOFTWARE;
            }
            sapi::print_modules();
            EX_OK
        }
        Parsed::Run(c) => run(argv0, args, c),
    }
}

fn start_engine(c: &Cli, argv0: &str) -> Result<(), ()> {
    let opts = sapi::EngineOptions {
        ini_path: c.php_ini.clone(),
        no_ini: c.no_php_ini,
        defines: c.defines.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        default_ini_dir: DEFAULT_INI_DIR.to_string(),
        executable: Some(argv0.to_string()),
    };
    sapi::startup(&opts).map_err(|e| {
        error!("{e}");
    })
}

fn run(argv0: &str, args: &[String], c: Cli) -> i32 {
    // 1. Signals first: PHP captures the handlers that exist at its start-up.
    let signal_pipe = match signals::install() {
        Ok(p) => p,
        Err(e) => {
            error_sys!(e, "failed to install signal handlers");
            return EX_SOFTWARE;
        }
    };
    // 2. PHP.
    if start_engine(&c, argv0).is_err() {
        return EX_SOFTWARE;
    }
    if c.info {
        sapi::print_info();
        return EX_OK;
    }
    // 3. stdin/stdout to /dev/null, also in the foreground.
    let _ = fd::devnull_onto(fd::Stdio::In);
    let _ = fd::devnull_onto(fd::Stdio::Out);

    // 4. Configuration.
    let loaded = match plan::load(&c) {
        Ok(l) => l,
        Err(code) => return code,
    };
    if c.test > 0 {
        if c.test > 1 {
            for line in conf::dump(&loaded.config) {
                notice!("{line}");
            }
        }
        notice!(
            "configuration file {} test is successful\n",
            loaded.path_shown
        );
        return EX_OK;
    }

    // 5. The master's resource limits (before daemonising: a failure exits 78).
    if let Err(code) = plan::apply_global_limits(&loaded.config.global) {
        return code;
    }

    // 6. Daemonise (after the configuration was read, so its errors reach the terminal);
    // an image re-executed by a reload already is the daemon and keeps its PID.
    let reexec = std::env::var_os(master::REEXEC_ENV).is_some();
    std::env::remove_var(master::REEXEC_ENV);
    let daemon_pipe = if loaded.daemonize && !reexec {
        match daemonize() {
            Ok(p) => p,
            Err(code) => return code,
        }
    } else {
        None
    };
    process::setsid();
    if let Err(code) = plan::apply_global_priority(&loaded.config, &c) {
        return daemon_failed(daemon_pipe, code);
    }
    // 7. The pools: identities and socket permissions.
    let pools = match plan::pools(&loaded.config, &c) {
        Ok(p) => p,
        Err(code) => return daemon_failed(daemon_pipe, code),
    };

    // 8. The master's title.
    let title_area = title::init();
    if let Some(area) = title_area {
        title::set(
            area,
            &format!("php-fpm: master process ({})", loaded.path_shown),
        );
    }

    // 9. Sockets: those the previous image handed over first.
    let mut inherited = master::listen::take_inherited();
    let mut listeners = Vec::new();
    for p in &pools {
        let mut notices = Vec::new();
        let perms = master::listen::UnixPerms {
            pool: p.name.clone(),
            mode: p.socket.mode,
            owner: p.socket.uid,
            group: p.socket.gid,
            acl_users: p.socket.acl_users.clone(),
            acl_groups: p.socket.acl_groups.clone(),
        };
        let res = master::listen::open(&p.listen, p.backlog, &perms, &mut inherited, &mut notices);
        for n in notices {
            notice!("{n}");
        }
        match res {
            Ok(l) => listeners.push(l),
            Err(msg) => {
                error!("{msg}");
                error!("FPM initialization failed");
                return daemon_failed(daemon_pipe, EX_CONFIG);
            }
        }
    }

    master::listen::close_unused(inherited);

    // Access logs: opened by the master now, written by the workers (reference §5.5).
    let mut access_logs = Vec::new();
    for p in &pools {
        match p.access_log.as_deref().map(fd::open_append) {
            None => access_logs.push(None),
            Some(Ok(fd)) => access_logs.push(Some(fd)),
            Some(Err(e)) => {
                error_sys!(
                    e,
                    "failed to open access log ({})",
                    p.access_log.as_deref().unwrap_or_default()
                );
                return daemon_failed(daemon_pipe, EX_CONFIG);
            }
        }
    }

    // 10. PID file.
    if let Some(pid) = &loaded.pid_file {
        if let Err(code) = write_pid_file(pid) {
            return daemon_failed(daemon_pipe, code);
        }
    }

    // 11. stderr tied to the error log; from now on the master is "launched". A daemon
    // keeps nothing of the launching terminal open (GH-9754).
    let daemonized = daemon_pipe.is_some();
    log::with(|l| {
        if daemonized && !matches!(l.dest(), log::Dest::Stderr) {
            let _ = fd::devnull_onto(fd::Stdio::Err);
        }
        let _ = l.tie_stderr();
        l.set_launched(true);
    });
    notice!("fpm is running, pid {}", process::getpid());
    if let Some(pipe) = daemon_pipe {
        let _ = fd::write(std::os::fd::AsFd::as_fd(&pipe), b"1");
    }
    let mut argv = vec![argv0.to_string()];
    argv.extend(args.iter().cloned());

    let master = master::Master {
        argv,
        title_area,
        pools,
        listeners,
        pid_file: loaded.pid_file,
        process_control_timeout: Duration::from_secs(loaded.process_control_timeout),
        global: loaded.config.global.clone(),
        signal_pipe: Some(signal_pipe),
        access_logs,
    };
    let code = master.run();
    sapi::shutdown();
    code
}

fn daemon_failed(pipe: Option<std::os::fd::OwnedFd>, code: i32) -> i32 {
    if let Some(pipe) = pipe {
        let _ = fd::write(std::os::fd::AsFd::as_fd(&pipe), b"0");
    }
    code
}

/// Forks; the launcher waits (10 s at most) for the master to report and exits 0 or 70.
/// In the master, returns the pipe to report on.
fn daemonize() -> Result<Option<std::os::fd::OwnedFd>, i32> {
    use std::os::fd::AsFd;
    let (r, w) = match fd::pipe() {
        Ok(p) => p,
        Err(e) => {
            error_sys!(e, "failed to create pipe");
            return Err(EX_SOFTWARE);
        }
    };
    match process::fork_single_threaded() {
        Ok(process::Fork::Child) => {
            drop(r);
            // Until it is launched the master still writes every line to the launching
            // stderr too, like php-fpm (start-up errors such as an unknown pool user reach
            // the caller); at launch fd 2 is let go (GH-9754), see `run`.
            Ok(Some(w))
        }
        Ok(process::Fork::Parent(_)) => {
            drop(w);
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            let mut buf = [0u8; 1];
            loop {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    error!("the master process didn't send back its status (via the pipe to the calling process)");
                    std::process::exit(EX_SOFTWARE);
                }
                let wait = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
                if !fd::poll_readable(r.as_fd(), wait).unwrap_or(false) {
                    continue;
                }
                let code = match fd::read(r.as_fd(), &mut buf) {
                    Ok(1) if buf[0] == b'1' => EX_OK,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    _ => EX_SOFTWARE,
                };
                std::process::exit(code);
            }
        }
        Err(e) => {
            error_sys!(e, "failed to daemonize");
            Err(EX_SOFTWARE)
        }
    }
}

fn write_pid_file(path: &str) -> Result<(), i32> {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut f = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
    {
        Ok(f) => f,
        Err(e) => {
            error_sys!(e, "Unable to create the PID file ({path}).");
            return Err(EX_CONFIG);
        }
    };
    if let Err(e) = write!(f, "{}", process::getpid()) {
        error_sys!(e, "Unable to write to the PID file.");
        return Err(EX_CONFIG);
    }
    Ok(())
}
