//! php-fpm's command line (reference §1): option parsing with the semantics of PHP's own
//! getopt, the usage text and the exit codes.
//!
//! Pure: no I/O. `main` prints what [`parse`] decided:
//! * [`Parsed::Help`]: `usage(argv0)` on stdout, exit [`EX_OK`];
//! * [`Parsed::UsageError`]: the message (if not empty) on stderr, then `usage(argv0)` on
//!   **stdout**, exit [`EX_USAGE`] — php-fpm itself prints no message, only the usage;
//! * [`Parsed::Version`] / [`Parsed::Modules`]: start PHP with the options seen so far
//!   (`-n`, `-c`, `-d` before `-v` matter), print, exit [`EX_OK`];
//! * [`Parsed::Run`]: if `cli.info`, print phpinfo() and exit [`EX_OK`] (php-fpm does this even
//!   when positional arguments were left over); otherwise test or start.
//! * [`Parsed::Request`]: rfpm's FastCGI client subcommand (`rfpm request …`).

/// Success.
pub const EX_OK: i32 = 0;
/// Bad command line.
pub const EX_USAGE: i32 = 64;
/// Internal failure (daemon launcher, worker initialisation, reload exec, PHP start-up).
pub const EX_SOFTWARE: i32 = 70;
/// Initialisation failure in the process that parsed the configuration, and `-t` failure.
pub const EX_CONFIG: i32 = 78;

/// Options of a normal run (or of `-v`/`-m`, as far as they were parsed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cli {
    /// `-c`: php.ini directory or file (last one wins). Paths are the argument's bytes
    /// (a path need not be UTF-8).
    pub php_ini: Option<Vec<u8>>,
    /// `-n`: read no php.ini.
    pub no_php_ini: bool,
    /// `-d name[=value]` in command-line order; `-d name` gives `(name, "1")`.
    pub defines: Vec<(Vec<u8>, Vec<u8>)>,
    /// `-e`: extended info for debuggers/profilers.
    pub profile_info: bool,
    /// `-y`: FPM configuration file (last one wins; may be empty: then the default applies).
    pub fpm_config: Option<Vec<u8>>,
    /// Number of `-t` seen (`-tt` or `-t -t` = 2: test and dump).
    pub test: u8,
    /// `-p`: global prefix.
    pub prefix: Option<Vec<u8>>,
    /// `-g`: PID file.
    pub pid: Option<Vec<u8>>,
    /// `-R`: allow pools to run as root.
    pub allow_root: bool,
    /// `-D` = `Some(true)`, `-F` = `Some(false)`, last one wins; `None` = config decides.
    pub daemonize: Option<bool>,
    /// `-O`: log to stderr in the foreground even if stderr is not a TTY.
    pub force_stderr: bool,
    /// `-i`: print phpinfo() (acted on after all options were parsed).
    pub info: bool,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// Start (or test, or print phpinfo() when `info`).
    Run(Cli),
    /// `-h`, `-?`, `--help`, `--usage`: usage on stdout, exit 0.
    Help,
    /// `-v`: version; the options parsed before it.
    Version(Cli),
    /// `-m`: module list; the options parsed before it.
    Modules(Cli),
    /// Unknown option, missing argument or leftover argument: usage on stdout, exit 64.
    /// The string is a message for stderr; empty when php-fpm prints none (always, today).
    UsageError(String),
    /// `rfpm request …`: the arguments after `request`.
    Request(Vec<String>),
}

/// One entry of the option table: short letter, long name, takes an argument.
struct OptDef {
    short: u8,
    long: &'static str,
    has_arg: bool,
}

const OPTIONS: &[OptDef] = &[
    OptDef {
        short: b'c',
        long: "php-ini",
        has_arg: true,
    },
    OptDef {
        short: b'd',
        long: "define",
        has_arg: true,
    },
    OptDef {
        short: b'e',
        long: "profile-info",
        has_arg: false,
    },
    OptDef {
        short: b'h',
        long: "help",
        has_arg: false,
    },
    OptDef {
        short: b'i',
        long: "info",
        has_arg: false,
    },
    OptDef {
        short: b'm',
        long: "modules",
        has_arg: false,
    },
    OptDef {
        short: b'n',
        long: "no-php-ini",
        has_arg: false,
    },
    OptDef {
        short: b'?',
        long: "usage",
        has_arg: false,
    },
    OptDef {
        short: b'v',
        long: "version",
        has_arg: false,
    },
    OptDef {
        short: b'y',
        long: "fpm-config",
        has_arg: true,
    },
    OptDef {
        short: b't',
        long: "test",
        has_arg: false,
    },
    OptDef {
        short: b'p',
        long: "prefix",
        has_arg: true,
    },
    OptDef {
        short: b'g',
        long: "pid",
        has_arg: true,
    },
    OptDef {
        short: b'R',
        long: "allow-to-run-as-root",
        has_arg: false,
    },
    OptDef {
        short: b'D',
        long: "daemonize",
        has_arg: false,
    },
    OptDef {
        short: b'F',
        long: "nodaemonize",
        has_arg: false,
    },
    OptDef {
        short: b'O',
        long: "force-stderr",
        has_arg: false,
    },
];

/// One step of the option scanner.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// An option (its short letter) with its argument if it takes one.
    Opt(u8, Option<Vec<u8>>),
    /// Unknown option or missing argument.
    Error,
    /// No more options; `next` is the index of the first argument not consumed.
    End,
}

/// A scanner with the semantics of PHP's getopt as php-fpm uses it:
/// * scanning stops at the first argument that does not start with `-`, at `-` alone, and
///   after `--` alone (which is consumed);
/// * short options may be glued (`-tt`, `-tdfoo=1`); an option taking an argument takes
///   the rest of the word (one leading `=` skipped: `-y=file`) or else the next word,
///   whatever it looks like (`-y -t` reads `-t` as the file);
/// * long options match their name exactly; `--name=value` (the `=` must not be the last
///   character, `--name=` is an unknown option) or `--name value`; a second `=` is skipped
///   (`--name==v` gives `v`); a value given to a long option without argument is ignored.
struct Scanner<'a> {
    args: &'a [Vec<u8>],
    /// Index of the word being scanned.
    idx: usize,
    /// Byte offset inside a word of glued short options; 0 when between words.
    off: usize,
}

impl<'a> Scanner<'a> {
    fn new(args: &'a [Vec<u8>]) -> Self {
        Scanner {
            args,
            idx: 0,
            off: 0,
        }
    }

    fn find_short(c: u8) -> Option<&'static OptDef> {
        OPTIONS.iter().find(|o| o.short == c)
    }

    fn find_long(name: &[u8]) -> Option<&'static OptDef> {
        OPTIONS.iter().find(|o| o.long.as_bytes() == name)
    }

    /// Takes the next word as an option argument.
    fn next_word(&mut self) -> Option<Vec<u8>> {
        let word = self.args.get(self.idx)?.clone();
        self.idx += 1;
        Some(word)
    }

    fn next(&mut self) -> Step {
        let Some(word) = self.args.get(self.idx) else {
            return Step::End;
        };
        let bytes = word.as_slice();
        if self.off == 0 {
            if bytes.first() != Some(&b'-') || bytes.len() == 1 {
                return Step::End;
            }
            if bytes[1] == b'-' {
                return self.long(word);
            }
            self.off = 1;
        }
        let c = bytes[self.off];
        let Some(def) = Self::find_short(c) else {
            return Step::Error;
        };
        let rest_at = self.off + 1;
        if def.has_arg {
            self.idx += 1;
            self.off = 0;
            let rest = &bytes[rest_at..];
            if rest.is_empty() {
                return match self.next_word() {
                    Some(value) => Step::Opt(def.short, Some(value)),
                    None => Step::Error,
                };
            }
            let start = if rest[0] == b'=' {
                rest_at + 1
            } else {
                rest_at
            };
            let value = word.get(start..).unwrap_or_default().to_vec();
            return Step::Opt(def.short, Some(value));
        }
        if rest_at >= bytes.len() {
            self.idx += 1;
            self.off = 0;
        } else {
            self.off = rest_at;
        }
        Step::Opt(def.short, None)
    }

    fn long(&mut self, word: &[u8]) -> Step {
        let bytes = word;
        if bytes.len() == 2 {
            // `--` alone ends the options.
            self.idx += 1;
            return Step::End;
        }
        // An `=` counts only if it is not the last character.
        let eq = bytes[2..bytes.len() - 1].iter().position(|&b| b == b'=');
        let (name, value_at) = match eq {
            Some(p) => (&bytes[2..2 + p], Some(2 + p + 1)),
            None => (&bytes[2..], None),
        };
        let Some(def) = Self::find_long(name) else {
            return Step::Error;
        };
        self.idx += 1;
        if !def.has_arg {
            return Step::Opt(def.short, None);
        }
        match value_at {
            None => match self.next_word() {
                Some(value) => Step::Opt(def.short, Some(value)),
                None => Step::Error,
            },
            Some(at) => {
                let at = if bytes.get(at) == Some(&b'=') {
                    at + 1
                } else {
                    at
                };
                let value = word.get(at..).unwrap_or_default().to_vec();
                Step::Opt(def.short, Some(value))
            }
        }
    }
}

/// Splits a `-d` argument: `name=value`, or `name` meaning `name=1` (bytes: an INI
/// value need not be UTF-8).
fn split_define(arg: &[u8]) -> (Vec<u8>, Vec<u8>) {
    match arg.iter().position(|&b| b == b'=') {
        Some(eq) => (arg[..eq].to_vec(), arg[eq + 1..].to_vec()),
        None => (arg.to_vec(), b"1".to_vec()),
    }
}

/// Parses the arguments (without argv\[0\]) like php-fpm 8.2 does. `-h`, `-?`, `-v`, `-m`
/// and errors decide at once, in the order met (`-t -v` is the version, `-x -h` an error,
/// `-h -x` the help). `_prog` is argv\[0\] (kept for messages; php-fpm prints none).
pub fn parse(_prog: &str, args: &[Vec<u8>]) -> Parsed {
    if args.first().map(Vec::as_slice) == Some(b"request") {
        // `rfpm request` works on text; an argument's bytes that are not UTF-8 (a
        // Latin-1 path or value) ride in it through `Shown` and go out as they came.
        let rest = args[1..]
            .iter()
            .map(|a| crate::shown::Shown(a).to_string())
            .collect();
        return Parsed::Request(rest);
    }
    let mut cli = Cli::default();
    let mut scanner = Scanner::new(args);
    loop {
        match scanner.next() {
            Step::End => break,
            Step::Error => return Parsed::UsageError(String::new()),
            Step::Opt(c, value) => {
                let value = value.unwrap_or_default();
                match c {
                    b'c' => cli.php_ini = Some(value),
                    b'n' => cli.no_php_ini = true,
                    b'd' => cli.defines.push(split_define(&value)),
                    b'e' => cli.profile_info = true,
                    b'h' | b'?' => return Parsed::Help,
                    b'i' => cli.info = true,
                    b'm' => return Parsed::Modules(cli),
                    b'v' => return Parsed::Version(cli),
                    b'y' => cli.fpm_config = Some(value),
                    b't' => cli.test = cli.test.saturating_add(1),
                    b'p' => cli.prefix = Some(value),
                    b'g' => cli.pid = Some(value),
                    b'R' => cli.allow_root = true,
                    b'D' => cli.daemonize = Some(true),
                    b'F' => cli.daemonize = Some(false),
                    b'O' => cli.force_stderr = true,
                    _ => return Parsed::UsageError(String::new()),
                }
            }
        }
    }
    // php-fpm prints phpinfo() before it checks for leftover arguments.
    if cli.info || scanner.idx >= args.len() {
        Parsed::Run(cli)
    } else {
        Parsed::UsageError(String::new())
    }
}

/// The program name php-fpm shows: the part of argv\[0\] after its last `/`, or `php` when
/// argv\[0\] has no `/`.
pub fn program_name(argv0: &str) -> &str {
    match argv0.rfind('/') {
        Some(p) => &argv0[p + 1..],
        None => "php",
    }
}

/// The install prefix shown in the usage text (php-fpm8.2 on Debian shows `/usr`).
pub const INSTALL_PREFIX: &str = "/usr";

/// The usage text (reference §1.2), printed on stdout by `-h` and on usage errors.
pub fn usage(argv0: &str) -> String {
    let prog = program_name(argv0);
    format!(
        "Usage: {prog} [-n] [-e] [-h] [-i] [-m] [-v] [-t] [-p <prefix>] [-g <pid>] [-c <file>] [-d foo[=bar]] [-y <file>] [-D] [-F [-O]]\n\
         \x20 -c <path>|<file> Look for php.ini file in this directory\n\
         \x20 -n               No php.ini file will be used\n\
         \x20 -d foo[=bar]     Define INI entry foo with value 'bar'\n\
         \x20 -e               Generate extended information for debugger/profiler\n\
         \x20 -h               This help\n\
         \x20 -i               PHP information\n\
         \x20 -m               Show compiled in modules\n\
         \x20 -v               Version number\n\
         \x20 -p, --prefix <dir>\n\
         \x20                  Specify alternative prefix path to FastCGI process manager (default: {INSTALL_PREFIX}).\n\
         \x20 -g, --pid <file>\n\
         \x20                  Specify the PID file location.\n\
         \x20 -y, --fpm-config <file>\n\
         \x20                  Specify alternative path to FastCGI process manager config file.\n\
         \x20 -t, --test       Test FPM configuration and exit\n\
         \x20 -D, --daemonize  force to run in background, and ignore daemonize option from config file\n\
         \x20 -F, --nodaemonize\n\
         \x20                  force to stay in foreground, and ignore daemonize option from config file\n\
         \x20 -O, --force-stderr\n\
         \x20                  force output to stderr in nodaemonize even if stderr is not a TTY\n\
         \x20 -R, --allow-to-run-as-root\n\
         \x20                  Allow pool to run as root (disabled by default)\n"
    )
}

/// What `-h` prints after php-fpm's usage text: rfpm's own command.
pub const RFPM_USAGE: &str = "\n\
rfpm also has:\n\
\x20 request ADDR SCRIPT [options]\n\
\x20                  Send one FastCGI request and print the response (rfpm request --help)\n";

/// rfpm's own line, printed by `-v` on stderr (when it is a terminal) before PHP's banner
/// on stdout: `rfpm 0.1.0` and, when built from a git checkout, `(git describe)`.
pub fn version_line(version: &str, describe: &str) -> String {
    if describe.is_empty() {
        format!("rfpm {version}")
    } else {
        format!("rfpm {version} ({describe})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<Vec<u8>> {
        list.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    fn run(list: &[&str]) -> Cli {
        match parse("rfpm", &args(list)) {
            Parsed::Run(cli) => cli,
            other => panic!("{list:?}: expected Run, got {other:?}"),
        }
    }

    fn usage_error(list: &[&str]) {
        assert_eq!(
            parse("rfpm", &args(list)),
            Parsed::UsageError(String::new()),
            "{list:?}"
        );
    }

    #[test]
    fn no_arguments_runs_with_defaults() {
        assert_eq!(run(&[]), Cli::default());
    }

    #[test]
    fn flags_short_and_long() {
        type Check = fn(&Cli) -> bool;
        let cases: &[(&[&str], Check)] = &[
            (&["-n"], |c| c.no_php_ini),
            (&["--no-php-ini"], |c| c.no_php_ini),
            (&["-e"], |c| c.profile_info),
            (&["--profile-info"], |c| c.profile_info),
            (&["-i"], |c| c.info),
            (&["--info"], |c| c.info),
            (&["-t"], |c| c.test == 1),
            (&["--test"], |c| c.test == 1),
            (&["-R"], |c| c.allow_root),
            (&["--allow-to-run-as-root"], |c| c.allow_root),
            (&["-D"], |c| c.daemonize == Some(true)),
            (&["--daemonize"], |c| c.daemonize == Some(true)),
            (&["-F"], |c| c.daemonize == Some(false)),
            (&["--nodaemonize"], |c| c.daemonize == Some(false)),
            (&["-O"], |c| c.force_stderr),
            (&["--force-stderr"], |c| c.force_stderr),
        ];
        for (list, check) in cases {
            assert!(check(&run(list)), "{list:?}");
        }
    }

    #[test]
    fn options_with_argument_all_forms() {
        type Get = fn(&Cli) -> Option<&[u8]>;
        let opts: &[(&str, &str, Get)] = &[
            ("c", "php-ini", |c| c.php_ini.as_deref()),
            ("y", "fpm-config", |c| c.fpm_config.as_deref()),
            ("p", "prefix", |c| c.prefix.as_deref()),
            ("g", "pid", |c| c.pid.as_deref()),
        ];
        for (short, long, get) in opts {
            let s = format!("-{short}");
            let l = format!("--{long}");
            let forms: Vec<Vec<String>> = vec![
                vec![s.clone(), "/x".into()],
                vec![format!("{s}/x")],
                vec![format!("{s}=/x")],
                vec![l.clone(), "/x".into()],
                vec![format!("{l}=/x")],
                vec![format!("{l}==/x")],
            ];
            for form in forms {
                let form: Vec<Vec<u8>> = form.into_iter().map(String::into_bytes).collect();
                match parse("rfpm", &form) {
                    Parsed::Run(cli) => assert_eq!(get(&cli), Some(&b"/x"[..]), "{form:?}"),
                    other => panic!("{form:?}: {other:?}"),
                }
            }
            // Missing argument.
            usage_error(&[&s]);
            usage_error(&[&l]);
            // `--name=` with the `=` last is an unknown option.
            usage_error(&[&format!("{l}="), "/x"]);
            // `-y=` gives an empty value.
            match parse("rfpm", &[format!("{s}=").into_bytes()]) {
                Parsed::Run(cli) => assert_eq!(get(&cli), Some(&b""[..]), "{s}="),
                other => panic!("{s}=: {other:?}"),
            }
        }
    }

    #[test]
    fn argument_is_the_next_word_whatever_it_is() {
        let cli = run(&["-t", "-y", "-t"]);
        assert_eq!(cli.fpm_config.as_deref(), Some(&b"-t"[..]));
        assert_eq!(cli.test, 1);
        let cli = run(&["--fpm-config", "--test"]);
        assert_eq!(cli.fpm_config.as_deref(), Some(&b"--test"[..]));
        assert_eq!(cli.test, 0);
    }

    #[test]
    fn last_value_wins() {
        let cli = run(&["-y", "a", "-y", "b", "-c", "x", "--php-ini=y", "-DF"]);
        assert_eq!(cli.fpm_config.as_deref(), Some(&b"b"[..]));
        assert_eq!(cli.php_ini.as_deref(), Some(&b"y"[..]));
        assert_eq!(cli.daemonize, Some(false));
        assert_eq!(run(&["-F", "-D"]).daemonize, Some(true));
    }

    #[test]
    fn defines() {
        let cli = run(&[
            "-dfoo=1",
            "-d",
            "bar",
            "-d=baz=2",
            "--define",
            "a=b=c",
            "--define=x=",
            "--define==y",
            "-tdq",
        ]);
        let want: Vec<(Vec<u8>, Vec<u8>)> = [
            ("foo", "1"),
            ("bar", "1"),
            ("baz", "2"),
            ("a", "b=c"),
            ("x", ""),
            ("y", "1"),
            ("q", "1"),
        ]
        .iter()
        .map(|(a, b)| (a.as_bytes().to_vec(), b.as_bytes().to_vec()))
        .collect();
        assert_eq!(cli.defines, want);
        let latin1 = match parse("rfpm", &[b"-dinclude_path=/caf\xe9".to_vec()]) {
            Parsed::Run(cli) => cli.defines,
            other => panic!("{other:?}"),
        };
        assert_eq!(latin1, [(b"include_path".to_vec(), b"/caf\xe9".to_vec())]);
        assert_eq!(cli.test, 1);
        usage_error(&["-d"]);
        usage_error(&["--define"]);
    }

    #[test]
    fn test_counting() {
        assert_eq!(run(&["-t"]).test, 1);
        assert_eq!(run(&["-tt"]).test, 2);
        assert_eq!(run(&["-t", "-t"]).test, 2);
        assert_eq!(run(&["--test", "-t"]).test, 2);
        // A value given to a long option without argument is ignored.
        assert_eq!(run(&["--test=foo"]).test, 1);
        let many: Vec<Vec<u8>> = (0..300).map(|_| b"-t".to_vec()).collect();
        match parse("rfpm", &many) {
            Parsed::Run(cli) => assert_eq!(cli.test, u8::MAX),
            other => panic!("{other:?}"),
        }
    }

    /// A path argument keeps its bytes (a Latin-1 file name is not UTF-8).
    #[test]
    fn path_arguments_keep_their_bytes() {
        let cli = match parse(
            "rfpm",
            &[
                b"-y".to_vec(),
                b"/etc/caf\xe9.conf".to_vec(),
                b"-p\xe9".to_vec(),
            ],
        ) {
            Parsed::Run(cli) => cli,
            other => panic!("{other:?}"),
        };
        assert_eq!(cli.fpm_config.as_deref(), Some(&b"/etc/caf\xe9.conf"[..]));
        assert_eq!(cli.prefix.as_deref(), Some(&b"\xe9"[..]));
    }

    #[test]
    fn glued_short_options() {
        let cli = run(&["-nteRDO"]);
        assert!(cli.no_php_ini && cli.profile_info && cli.allow_root && cli.force_stderr);
        assert_eq!(cli.test, 1);
        assert_eq!(cli.daemonize, Some(true));
        let cli = run(&["-ty/etc/x.conf"]);
        assert_eq!(cli.fpm_config.as_deref(), Some(&b"/etc/x.conf"[..]));
        let cli = run(&["-ty", "/etc/x.conf"]);
        assert_eq!(cli.fpm_config.as_deref(), Some(&b"/etc/x.conf"[..]));
        usage_error(&["-tx"]);
        usage_error(&["-t-"]);
        usage_error(&["-t="]);
    }

    #[test]
    fn immediate_actions_in_order() {
        assert_eq!(parse("p", &args(&["-h"])), Parsed::Help);
        assert_eq!(parse("p", &args(&["-?"])), Parsed::Help);
        assert_eq!(parse("p", &args(&["--help"])), Parsed::Help);
        assert_eq!(parse("p", &args(&["--usage"])), Parsed::Help);
        assert_eq!(parse("p", &args(&["-h", "-x"])), Parsed::Help);
        assert_eq!(parse("p", &args(&["-h", "extra"])), Parsed::Help);
        usage_error(&["-x", "-h"]);
        usage_error(&["-xv"]);
        assert_eq!(
            parse("p", &args(&["-t", "-v"])),
            Parsed::Version(Cli {
                test: 1,
                ..Cli::default()
            })
        );
        assert_eq!(parse("p", &args(&["-vx"])), Parsed::Version(Cli::default()));
        assert_eq!(
            parse("p", &args(&["-i", "--version"])),
            Parsed::Version(Cli {
                info: true,
                ..Cli::default()
            })
        );
        let want = Cli {
            no_php_ini: true,
            defines: vec![("a".into(), "b".into())],
            php_ini: Some("/etc".into()),
            ..Cli::default()
        };
        assert_eq!(
            parse("p", &args(&["-n", "-da=b", "-c/etc", "-m", "-y", "z"])),
            Parsed::Modules(want.clone())
        );
        assert_eq!(
            parse("p", &args(&["-n", "-da=b", "-c/etc", "--modules"])),
            Parsed::Modules(want)
        );
    }

    #[test]
    fn unknown_options() {
        for bad in [
            "-x", "-C", "-:", "--bogus", "--he", "--test=", "---test", "-é",
        ] {
            usage_error(&[bad]);
        }
    }

    #[test]
    fn leftover_arguments() {
        usage_error(&["foo"]);
        usage_error(&["foo", "-v"]);
        usage_error(&["-t", "foo"]);
        usage_error(&["-t", "-"]);
        usage_error(&["-t", ""]);
        usage_error(&["--", "-t"]);
        usage_error(&["-t", "--", "-t"]);
        // `--` alone at the end is consumed.
        assert_eq!(run(&["-t", "--"]).test, 1);
        // -i is acted on before the leftover check.
        assert!(run(&["-i", "foo"]).info);
        // ...but only if it was reached.
        usage_error(&["foo", "-i"]);
    }

    #[test]
    fn request_subcommand() {
        assert_eq!(
            parse("rfpm", &args(&["request", "/s", "/x.php", "-t"])),
            Parsed::Request(vec!["/s".into(), "/x.php".into(), "-t".into()])
        );
        assert_eq!(parse("rfpm", &args(&["request"])), Parsed::Request(vec![]));
        usage_error(&["-t", "request"]);
    }

    #[test]
    fn version_line_with_and_without_git() {
        assert_eq!(version_line("0.1.0", ""), "rfpm 0.1.0");
        assert_eq!(
            version_line("0.1.0", "v0.1.0-3-gabc1234"),
            "rfpm 0.1.0 (v0.1.0-3-gabc1234)"
        );
        assert!(RFPM_USAGE.starts_with('\n') && RFPM_USAGE.contains("  request ADDR SCRIPT"));
    }

    #[test]
    fn program_name_rules() {
        assert_eq!(program_name("/usr/sbin/rfpm"), "rfpm");
        assert_eq!(program_name("./rfpm"), "rfpm");
        assert_eq!(program_name("rfpm"), "php");
        assert_eq!(program_name("dir/"), "");
    }

    /// The usage text of php-fpm 8.2 (Debian), with the program name `php-fpm8.2`.
    const PHP_FPM_USAGE: &str = "\
Usage: php-fpm8.2 [-n] [-e] [-h] [-i] [-m] [-v] [-t] [-p <prefix>] [-g <pid>] [-c <file>] [-d foo[=bar]] [-y <file>] [-D] [-F [-O]]
  -c <path>|<file> Look for php.ini file in this directory
  -n               No php.ini file will be used
  -d foo[=bar]     Define INI entry foo with value 'bar'
  -e               Generate extended information for debugger/profiler
  -h               This help
  -i               PHP information
  -m               Show compiled in modules
  -v               Version number
  -p, --prefix <dir>
                   Specify alternative prefix path to FastCGI process manager (default: /usr).
  -g, --pid <file>
                   Specify the PID file location.
  -y, --fpm-config <file>
                   Specify alternative path to FastCGI process manager config file.
  -t, --test       Test FPM configuration and exit
  -D, --daemonize  force to run in background, and ignore daemonize option from config file
  -F, --nodaemonize
                   force to stay in foreground, and ignore daemonize option from config file
  -O, --force-stderr
                   force output to stderr in nodaemonize even if stderr is not a TTY
  -R, --allow-to-run-as-root
                   Allow pool to run as root (disabled by default)
";

    #[test]
    fn usage_text_matches_php_fpm() {
        assert_eq!(usage("/usr/sbin/php-fpm8.2"), PHP_FPM_USAGE);
        assert!(usage("rfpm").starts_with("Usage: php [-n]"));
    }

    /// Byte-for-byte against the installed binary, when there is one.
    #[test]
    fn usage_text_matches_installed_php_fpm() {
        let bin = "/usr/sbin/php-fpm8.2";
        if !std::path::Path::new(bin).exists() {
            return;
        }
        let Ok(out) = std::process::Command::new(bin).arg("-h").output() else {
            return;
        };
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(String::from_utf8_lossy(&out.stdout), usage(bin));
    }
}
