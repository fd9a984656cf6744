//! php-fpm's behaviour by PHP version: rfpm copies the php-fpm of the PHP it embeds, and
//! where php-fpm changed between versions, the difference is one named switch here. The
//! code that behaves differently asks its switch, never a version number, so supporting a
//! further PHP version is one more row in [`TABLE`].
//!
//! What needs no switch because it comes from the embedded PHP itself: the INI constants
//! of php-fpm.conf (`E_ALL` is 32767 in 8.2 and 30719 in 8.4, where `E_STRICT` left it;
//! `PHP_VERSION`, `PHP_EXTENSION_DIR`, …: the rfpm binary asks libphp), and the engine's
//! own messages.
//!
//! Checked and the same in php-fpm 8.2.36 and 8.4.28, so no switch: `-tt` lists
//! `access.suppress_path[]` last line first in both (php-src's `config-array` test
//! fails on 8.4 for its `E_ALL` value, not for the order).
//!
//! Also here: the check that the PHP library loaded at run time is the one rfpm was built
//! for ([`check_loaded`]), as every Debian libphp8.x names itself `libphp.so`.

/// php-fpm's behaviour where it differs between the supported PHP versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compat {
    /// `-t`/`-tt` end `configuration file … test is successful` with an empty line
    /// (php-fpm ≤ 8.3 logged the message with a trailing `\n`; 8.4 dropped it).
    pub test_successful_blank_line: bool,
    /// The status page (every format) and `fpm_get_status()` show the pool's
    /// `memory peak`: the highest peak memory of a request (added in php-fpm 8.4, with
    /// the scoreboard's memory_peak).
    pub status_memory_peak: bool,
    /// The status page's query keys (`json`, `full`, `html`, …) match a prefix of the
    /// word, so `?j&f` is json and full (php-fpm ≤ 8.3, which compared with `strstr` on
    /// the query string); 8.4 parses the query and needs the whole key.
    pub status_query_prefix_match: bool,
    /// Behind Apache's ProxyPass (`SCRIPT_FILENAME` starting `proxy:fcgi://`) the
    /// `%XX` escapes of the path are decoded for `PATH_INFO` and `PATH_TRANSLATED`
    /// (php-fpm 8.4, which url-decodes the script path it takes from the proxy URL; 8.2
    /// kept the escapes).
    pub apache_proxy_decodes_path: bool,
    /// `-v` is the library's own version text (`php_get_version()`, new in PHP 8.4, with
    /// `(NTS)` and Debian's `Built by` line); before 8.4 the SAPI assembled it.
    pub version_text_from_library: bool,
}

/// One row per PHP version (its `PHP_VERSION_ID` from `major.minor.0`), oldest first: a
/// version takes the row of the newest version not above it.
pub const TABLE: &[(u32, Compat)] = &[
    (
        80200,
        Compat {
            test_successful_blank_line: true,
            status_memory_peak: false,
            status_query_prefix_match: true,
            apache_proxy_decodes_path: false,
            version_text_from_library: false,
        },
    ),
    (
        80400,
        Compat {
            test_successful_blank_line: false,
            status_memory_peak: true,
            status_query_prefix_match: false,
            apache_proxy_decodes_path: true,
            version_text_from_library: true,
        },
    ),
];

impl Compat {
    /// php-fpm 8.2's behaviour: what the pure tests recorded from php-fpm8.2 expect.
    pub const PHP82: Compat = TABLE[0].1;

    /// The behaviour for a `PHP_VERSION_ID` (`80428`): the row of the newest version not
    /// above it; the oldest row for an older PHP.
    #[must_use]
    pub const fn for_version_id(id: u32) -> Compat {
        let mut i = TABLE.len() - 1;
        while i > 0 && TABLE[i].0 > id {
            i -= 1;
        }
        TABLE[i].1
    }
}

/// A PHP `major.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhpVersion {
    pub major: u32,
    pub minor: u32,
}

impl std::fmt::Display for PhpVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl PhpVersion {
    /// From a version text (`8.4`, `8.4.28`, `8.4.0-dev`).
    #[must_use]
    pub fn parse(text: &str) -> Option<PhpVersion> {
        let mut parts = text.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor: String = parts
            .next()?
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        Some(PhpVersion {
            major,
            minor: minor.parse().ok()?,
        })
    }
}

/// The loaded PHP library is not the one rfpm was built for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadedPhpError {
    #[error("rfpm was built for PHP {built} but the loaded libphp is PHP {loaded}")]
    Other { built: String, loaded: PhpVersion },
    #[error("rfpm was built for PHP {built} but the loaded libphp is older than PHP 8.4")]
    Older { built: PhpVersion },
}

/// Checks that the library rfpm runs on is the PHP it was built for: Debian's libphp8.2
/// and libphp8.4 both name themselves `libphp.so`, and a binary on the wrong one would
/// crash on its first call (their structures differ). `built`: the version built against
/// (`8.2`); `loaded`: what the loaded library's `php_version()` says (`8.4.28`), `None`
/// when it has no such function (PHP before 8.4, which can tell its version only after
/// start-up: accepted for a build older than 8.4, as Debian has no PHP 8.3).
pub fn check_loaded(built: &str, loaded: Option<&str>) -> Result<(), LoadedPhpError> {
    let built_v = PhpVersion::parse(built);
    match (loaded, built_v) {
        (Some(text), _) => match PhpVersion::parse(text) {
            Some(v) if Some(v) == built_v => Ok(()),
            Some(v) => Err(LoadedPhpError::Other {
                built: built.to_string(),
                loaded: v,
            }),
            // A php_version() that says nothing sensible: not a PHP we know.
            None => Err(LoadedPhpError::Other {
                built: built.to_string(),
                loaded: PhpVersion { major: 0, minor: 0 },
            }),
        },
        (None, Some(b)) if (b.major, b.minor) >= (8, 4) => Err(LoadedPhpError::Older { built: b }),
        (None, _) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_version_takes_its_row() {
        assert_eq!(Compat::for_version_id(80236), Compat::PHP82);
        assert_eq!(Compat::for_version_id(80200), Compat::PHP82);
        // 8.3 behaves as 8.2 in every switch here (no row: none is tested).
        assert_eq!(Compat::for_version_id(80315), Compat::PHP82);
        let v84 = Compat::for_version_id(80428);
        assert!(!v84.test_successful_blank_line && v84.status_memory_peak);
        assert!(!v84.status_query_prefix_match && v84.apache_proxy_decodes_path);
        assert_eq!(Compat::for_version_id(80500), v84);
        assert_eq!(Compat::for_version_id(70400), Compat::PHP82);
        // Rows are ordered, so "the newest not above" is the last one that matches.
        assert!(TABLE.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn versions_parse() {
        let v = |major, minor| Some(PhpVersion { major, minor });
        assert_eq!(PhpVersion::parse("8.4"), v(8, 4));
        assert_eq!(PhpVersion::parse("8.2.36"), v(8, 2));
        assert_eq!(PhpVersion::parse("8.5.0-dev"), v(8, 5));
        assert_eq!(PhpVersion::parse("8"), None);
        assert_eq!(PhpVersion::parse("x.y"), None);
    }

    #[test]
    fn a_library_of_another_version_is_refused_with_a_clear_message() {
        assert_eq!(check_loaded("8.4", Some("8.4.28")), Ok(()));
        // 8.2 has no php_version(): accepted (checked by the dynamic loader's
        // libphp8.2.so name and symbols).
        assert_eq!(check_loaded("8.2", None), Ok(()));
        let e = check_loaded("8.2", Some("8.4.28")).expect_err("8.4 library, 8.2 build");
        assert_eq!(
            e.to_string(),
            "rfpm was built for PHP 8.2 but the loaded libphp is PHP 8.4"
        );
        let e = check_loaded("8.4", Some("8.5.1")).expect_err("8.5 library, 8.4 build");
        assert_eq!(
            e.to_string(),
            "rfpm was built for PHP 8.4 but the loaded libphp is PHP 8.5"
        );
        let e = check_loaded("8.4", None).expect_err("8.2 library, 8.4 build");
        assert_eq!(
            e.to_string(),
            "rfpm was built for PHP 8.4 but the loaded libphp is older than PHP 8.4"
        );
        assert!(check_loaded("8.4", Some("garbage")).is_err());
    }
}
