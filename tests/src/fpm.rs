//! Starting and stopping one FPM master (rfpm or php-fpm8.2) in a temp dir.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::proc::{children_of, send_signal};
use crate::{fixtures_dir, HarnessError, Kind, DEADLINE};

/// Name of the master's captured stderr (with `-F -O` the master log goes there).
const STDERR_LOG: &str = "stderr.log";

/// Builds the configuration and command line of one FPM master.
#[derive(Debug, Clone)]
pub struct FpmBuilder {
    kind: Kind,
    global: Vec<String>,
    www: Vec<String>,
    pools: Vec<(String, Vec<String>)>,
    defines: Vec<String>,
    args: Vec<String>,
    with_config: bool,
    env: Vec<(std::ffi::OsString, std::ffi::OsString)>,
    log_to_file: bool,
    run_as: Option<(u32, u32)>,
    without_r: bool,
}

impl FpmBuilder {
    /// Starts the master without `-R` (a root master then refuses pools running as root).
    pub fn without_r(mut self) -> Self {
        self.without_r = true;
        self
    }

    /// Runs without `-O`: the master logs into the configured `error_log` file
    /// (`<tmp>/fpm.log`), which [`Fpm::log`] then reads.
    pub fn log_to_file(mut self) -> Self {
        self.log_to_file = true;
        self
    }

    /// Adds a line to the `[global]` section (after the harness' own lines).
    pub fn global(mut self, line: impl Into<String>) -> Self {
        self.global.push(line.into());
        self
    }

    /// Adds a line to the default pool `[www]`. A line whose key is one of the defaults
    /// (`listen`, `pm`, `pm.max_children`) replaces that default.
    pub fn pool_line(mut self, line: impl Into<String>) -> Self {
        self.www.push(line.into());
        self
    }

    /// Adds another pool `[name]`, listening on `<tmp>/<name>.sock` with `pm = static` and
    /// `pm.max_children = 2` unless `lines` set those keys.
    pub fn pool(mut self, name: &str, lines: &[&str]) -> Self {
        self.pools.push((
            name.to_string(),
            lines.iter().map(|l| l.to_string()).collect(),
        ));
        self
    }

    /// A php.ini entry given on the command line (`-d name=value`).
    pub fn define(mut self, name: &str, value: &str) -> Self {
        self.defines.push(format!("{name}={value}"));
        self
    }

    /// Loads and enables OPcache (with `-n` there is no php.ini that would do it); files are
    /// cached even when they were just written.
    pub fn opcache(self) -> Self {
        self.define("zend_extension", "opcache.so")
            .define("opcache.enable", "1")
            .define("opcache.file_update_protection", "0")
    }

    /// An extra command-line argument, appended after the harness' own.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// An extra environment variable for the master.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// An extra environment variable for the master, any bytes (not only UTF-8).
    pub fn env_os(
        mut self,
        name: impl Into<std::ffi::OsString>,
        value: impl Into<std::ffi::OsString>,
    ) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Starts the master as this uid/gid (no supplementary groups) instead of root, and
    /// without `-R`; the temp dir is then world-writable so the master can create its log
    /// and sockets there.
    pub fn run_as(mut self, uid: u32, gid: u32) -> Self {
        self.run_as = Some((uid, gid));
        self
    }

    /// Writes no configuration file and passes no `-y` (the binary's own default applies).
    pub fn no_config(mut self) -> Self {
        self.with_config = false;
        self
    }

    /// Starts the master and waits (with a deadline) until it logs `ready to handle connections`.
    pub fn start(self) -> Result<Fpm, HarnessError> {
        let fpm = self.spawn()?;
        fpm.wait_ready()?;
        Ok(fpm)
    }

    /// Starts the master without waiting for it to become ready.
    pub fn spawn(self) -> Result<Fpm, HarnessError> {
        let bin = self.kind.binary();
        if !bin.exists() {
            return Err(HarnessError::MissingBinary(bin));
        }
        let dir = tempfile::Builder::new()
            .prefix(&format!("itest-{}-", self.kind.name()))
            .tempdir()
            .map_err(|e| HarnessError::io("creating the temp dir", e))?;
        let root = dir.path().to_path_buf();
        let conf_path = root.join("php-fpm.conf");
        let listen = root.join("fpm.sock");

        let mut cmd = Command::new(&bin);
        cmd.arg("-n");
        for d in &self.defines {
            cmd.arg("-d").arg(d);
        }
        if let Some((uid, gid)) = self.run_as {
            use std::os::unix::fs::PermissionsExt;
            use std::os::unix::process::CommandExt;
            std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o777))
                .map_err(|e| HarnessError::io("chmod of the temp dir", e))?;
            // std drops the supplementary groups when a root parent sets the uid.
            cmd.uid(uid).gid(gid);
        } else if !self.without_r {
            cmd.arg("-R");
        }
        cmd.arg("-F");
        if !self.log_to_file {
            cmd.arg("-O");
        }
        if self.with_config {
            std::fs::write(&conf_path, self.config_text(&root))
                .map_err(|e| HarnessError::io(format!("writing {}", conf_path.display()), e))?;
            cmd.arg("-y").arg(&conf_path);
        }
        cmd.args(&self.args);

        let stdout = File::create(root.join("stdout.log"))
            .map_err(|e| HarnessError::io("creating stdout.log", e))?;
        let stderr = File::create(root.join(STDERR_LOG))
            .map_err(|e| HarnessError::io("creating stderr.log", e))?;
        cmd.current_dir(&root)
            .env("HOME", &root)
            .env_remove("NOTIFY_SOCKET")
            .env_remove("FPM_SOCKETS")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .map_err(|e| HarnessError::io(format!("starting {}", bin.display()), e))?;
        Ok(Fpm {
            kind: self.kind,
            pid: child.id(),
            child: Mutex::new(Some(child)),
            conf_path,
            listen,
            log_name: if self.log_to_file {
                "fpm.log"
            } else {
                STDERR_LOG
            },
            dir,
        })
    }

    /// The text of `php-fpm.conf` for a temp dir `root`.
    pub fn config_text(&self, root: &Path) -> String {
        let mut text = String::from("[global]\n");
        text.push_str(&format!("error_log = {}\n", root.join("fpm.log").display()));
        text.push_str("daemonize = no\n");
        text.push_str(&format!("pid = {}\n", root.join("fpm.pid").display()));
        for l in &self.global {
            text.push_str(l);
            text.push('\n');
        }
        text.push('\n');
        pool_text(&mut text, "www", &root.join("fpm.sock"), &self.www);
        for (name, lines) in &self.pools {
            let sock = root.join(format!("{name}.sock"));
            pool_text(&mut text, name, &sock, lines);
        }
        text
    }
}

fn key_of(line: &str) -> &str {
    line.split('=').next().unwrap_or("").trim()
}

fn pool_text(out: &mut String, name: &str, sock: &Path, lines: &[String]) {
    out.push_str(&format!("[{name}]\n"));
    let defaults = [
        ("listen", sock.display().to_string()),
        ("pm", "static".to_string()),
        ("pm.max_children", "2".to_string()),
    ];
    for (k, v) in defaults {
        if !lines.iter().any(|l| key_of(l) == k) {
            out.push_str(&format!("{k} = {v}\n"));
        }
    }
    for l in lines {
        out.push_str(l);
        out.push('\n');
    }
    out.push('\n');
}

/// One running FPM master with its temp dir. Dropping it stops the master (SIGTERM, then
/// SIGKILL after a deadline) and removes the temp dir.
#[derive(Debug)]
pub struct Fpm {
    kind: Kind,
    pid: u32,
    child: Mutex<Option<Child>>,
    conf_path: PathBuf,
    listen: PathBuf,
    /// The file the master log goes to (in the temp dir).
    log_name: &'static str,
    // Declared last: removed after the processes are gone.
    dir: tempfile::TempDir,
}

impl Fpm {
    /// A builder with the default configuration (one pool `www`, static, 2 children).
    pub fn builder(kind: Kind) -> FpmBuilder {
        FpmBuilder {
            kind,
            global: Vec::new(),
            www: Vec::new(),
            pools: Vec::new(),
            defines: Vec::new(),
            args: Vec::new(),
            with_config: true,
            env: Vec::new(),
            log_to_file: false,
            run_as: None,
            without_r: false,
        }
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The temp dir holding config, socket, logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Path of the generated `php-fpm.conf`.
    pub fn conf_path(&self) -> &Path {
        &self.conf_path
    }

    /// Listen address of pool `www` (a Unix socket path), as written in the config.
    pub fn addr(&self) -> String {
        self.listen.display().to_string()
    }

    /// Listen address of another pool added with [`FpmBuilder::pool`] (default socket path).
    pub fn pool_addr(&self, pool: &str) -> String {
        self.dir()
            .join(format!("{pool}.sock"))
            .display()
            .to_string()
    }

    /// The document root the requests use (the fixtures directory).
    pub fn docroot(&self) -> PathBuf {
        fixtures_dir()
    }

    /// Everything the master logged so far (its stderr, or the error log file with
    /// [`FpmBuilder::log_to_file`]).
    pub fn log(&self) -> String {
        read_lossy(&self.dir().join(self.log_name))
    }

    /// The configured `error_log` file (unused with `-O`, but created).
    pub fn error_log_file(&self) -> PathBuf {
        self.dir().join("fpm.log")
    }

    /// The configured `pid` file.
    pub fn pid_file(&self) -> PathBuf {
        self.dir().join("fpm.pid")
    }

    pub fn log_contains(&self, pattern: &str) -> bool {
        self.log().contains(pattern)
    }

    /// Waits until the log contains `pattern`; fails early when the master exits first.
    pub fn wait_log(&self, pattern: &str, deadline: Duration) -> Result<(), HarnessError> {
        let start = Instant::now();
        loop {
            if self.log_contains(pattern) {
                return Ok(());
            }
            if let Some(status) = self.exited()? {
                // One last look: the line may have been written just before exiting.
                if self.log_contains(pattern) {
                    return Ok(());
                }
                return Err(HarnessError::Exited {
                    what: format!("log line {pattern:?}"),
                    status: status.to_string(),
                    log: self.log(),
                });
            }
            if start.elapsed() >= deadline {
                return Err(HarnessError::Timeout {
                    what: format!("log line {pattern:?}"),
                    deadline,
                    log: self.log(),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for `ready to handle connections` (10 s deadline).
    pub fn wait_ready(&self) -> Result<(), HarnessError> {
        self.wait_log("ready to handle connections", DEADLINE)
    }

    /// Sends `sig` (e.g. `libc::SIGQUIT`) to the master.
    pub fn signal(&self, sig: i32) -> Result<(), HarnessError> {
        send_signal(self.master_pid(), sig)
            .map_err(|e| HarnessError::io(format!("kill({}, {sig})", self.master_pid()), e))
    }

    /// Pid of the master (the process the harness started).
    pub fn master_pid(&self) -> u32 {
        self.pid
    }

    /// Pids of the master's children (its workers), from /proc, sorted.
    pub fn worker_pids(&self) -> Vec<u32> {
        children_of(self.pid)
    }

    fn child(&self) -> MutexGuard<'_, Option<Child>> {
        self.child
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `Some(status)` once the master has exited (it is reaped here).
    pub fn exited(&self) -> Result<Option<ExitStatus>, HarnessError> {
        let mut guard = self.child();
        let Some(child) = guard.as_mut() else {
            return Err(HarnessError::Other("master already reaped".into()));
        };
        child
            .try_wait()
            .map_err(|e| HarnessError::io(format!("waitpid({})", self.pid), e))
    }

    /// Waits (with a deadline) for the master to exit and returns its exit status.
    pub fn wait_exit(&self, deadline: Duration) -> Result<ExitStatus, HarnessError> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.exited()? {
                return Ok(status);
            }
            if start.elapsed() >= deadline {
                return Err(HarnessError::Timeout {
                    what: format!("master {} to exit", self.pid),
                    deadline,
                    log: self.log(),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Fpm {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // The test failed: show what the master said, it is usually the explanation.
            eprintln!(
                "--- {} master log ({}) ---\n{}--- end of master log ---",
                self.kind.name(),
                self.dir().display(),
                self.log()
            );
        }
        let Some(mut child) = self.child().take() else {
            return;
        };
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        let pid = child.id();
        let workers = children_of(pid);
        let _ = send_signal(pid, libc::SIGTERM);
        let start = Instant::now();
        while start.elapsed() < DEADLINE {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        for w in workers {
            let _ = send_signal(w, libc::SIGKILL);
        }
        let _ = child.wait();
    }
}

pub(crate) fn read_lossy(path: &Path) -> String {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_overrides() {
        let b = Fpm::builder(Kind::PhpFpm)
            .global("log_level = debug")
            .pool_line("pm.max_children = 1")
            .pool_line("pm.max_requests = 5")
            .pool("second", &["listen = 127.0.0.1:0"]);
        let text = b.config_text(Path::new("/t"));
        assert_eq!(
            text,
            "[global]\nerror_log = /t/fpm.log\ndaemonize = no\npid = /t/fpm.pid\nlog_level = debug\n\n\
             [www]\nlisten = /t/fpm.sock\npm = static\npm.max_children = 1\npm.max_requests = 5\n\n\
             [second]\npm = static\npm.max_children = 2\nlisten = 127.0.0.1:0\n\n"
        );
    }
}
