//! The one log level of rfpm: the master's error log, the SAPI's messages and the
//! configuration's diagnostics all speak it.

/// php-fpm's log levels, in increasing severity (`log_level` filters below one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Debug,
    Notice,
    Warning,
    Error,
    Alert,
}

impl Level {
    /// Parses a `log_level` value: `debug`, `notice`, `warning`, `warn`, `error`, `alert`,
    /// in any case.
    pub fn parse(value: &str) -> Option<Level> {
        match value.to_ascii_lowercase().as_str() {
            "debug" => Some(Level::Debug),
            "notice" => Some(Level::Notice),
            "warning" | "warn" => Some(Level::Warning),
            "error" => Some(Level::Error),
            "alert" => Some(Level::Alert),
            _ => None,
        }
    }

    /// The name written in log lines (`NOTICE`, `ERROR`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Notice => "NOTICE",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
            Level::Alert => "ALERT",
        }
    }

    /// The syslog priority of this level (`LOG_DEBUG` … `LOG_ALERT` of `<syslog.h>`,
    /// whose values POSIX fixes).
    pub fn syslog_priority(self) -> i32 {
        match self {
            Level::Debug => 7,
            Level::Notice => 5,
            Level::Warning => 4,
            Level::Error => 3,
            Level::Alert => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Level;

    #[test]
    fn parse_accepts_php_fpm_spellings() {
        assert_eq!(Level::parse("WARN"), Some(Level::Warning));
        assert_eq!(Level::parse("Notice"), Some(Level::Notice));
        assert_eq!(Level::parse("info"), None);
    }

    #[test]
    fn order_is_severity() {
        assert!(Level::Debug < Level::Notice && Level::Error < Level::Alert);
    }

    #[test]
    fn syslog_priorities_match_libc() {
        assert_eq!(Level::Debug.syslog_priority(), 7);
        assert_eq!(Level::Notice.syslog_priority(), 5);
        assert_eq!(Level::Warning.syslog_priority(), 4);
        assert_eq!(Level::Error.syslog_priority(), 3);
        assert_eq!(Level::Alert.syslog_priority(), 1);
    }
}
