//! `access.format` validation (§5.5), as php-fpm performs it at start-up.

use rfpm_core::shown::Shown;

/// Check an `access.format`. On failure returns the WARNING text php-fpm logs
/// (it is followed by `[pool <p>] wrong format for access.format '<fmt>'`). The format
/// is bytes; the text shows them through [`Shown`], as php-fpm prints its C string.
pub fn check_format(fmt: &[u8]) -> Result<(), String> {
    let s = fmt;
    let mut i = 0;
    let mut token = false;
    let mut format: Vec<u8> = Vec::new();
    while i < s.len() {
        let c = s[i];
        if !token {
            if c == b'%' {
                token = true;
                format.clear();
            }
            i += 1;
            continue;
        }
        token = false;
        let fs = Shown(&format).to_string();
        let lower = fs.to_ascii_lowercase();
        let ch = Shown(std::slice::from_ref(&c));
        match c {
            b'%' | b'f' | b'l' | b'm' | b'n' | b'p' | b'P' | b'q' | b'Q' | b'r' | b'R' | b's'
            | b'u' => {}
            b'C' => {
                if !(fs.is_empty() || matches!(lower.as_str(), "total" | "user" | "system")) {
                    return Err(format!(
                        "only 'total', 'user' or 'system' are allowed as a modifier for %{ch} ('{fs}')"
                    ));
                }
                format.clear();
            }
            b'd' => {
                if !(fs.is_empty()
                    || matches!(
                        lower.as_str(),
                        "seconds"
                            | "milliseconds"
                            | "milli"
                            | "miliseconds"
                            | "mili"
                            | "microseconds"
                            | "micro"
                    ))
                {
                    return Err(format!("only 'seconds', 'milli', 'milliseconds', 'micro' or 'microseconds' are allowed as a modifier for %{ch} ('{fs}')"));
                }
                format.clear();
            }
            b'e' => {
                if fs.is_empty() {
                    return Err(format!(
                        "the name of the environment variable must be set between embraces for %{ch}"
                    ));
                }
                format.clear();
            }
            b'M' => {
                if !(fs.is_empty()
                    || matches!(
                        lower.as_str(),
                        "bytes" | "kilobytes" | "kilo" | "megabytes" | "mega"
                    ))
                {
                    return Err(format!("only 'bytes', 'kilo', 'kilobytes', 'mega' or 'megabytes' are allowed as a modifier for %{ch} ('{fs}')"));
                }
                format.clear();
            }
            b'o' => {
                if fs.is_empty() {
                    return Err(format!(
                        "the name of the header must be set between embraces for %{ch}"
                    ));
                }
                format.clear();
            }
            b't' | b'T' => {
                format.clear();
            }
            b'{' => {
                token = true;
                let start = i + 1;
                let mut j = start;
                while j < s.len() && s[j] != b'}' {
                    j += 1;
                }
                if j >= s.len() || j + 1 >= s.len() {
                    return Err("missing closing embrace in the access.format".to_string());
                }
                format = s[start..j.min(start + 128)].to_vec();
                i = j;
            }
            _ => {
                return Err(format!("Invalid token in the access.format (%{ch})"));
            }
        }
        if s[i] != b'}' && !format.is_empty() {
            return Err(format!("embrace is not allowed for modifier %{ch}"));
        }
        i += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert!(check_format(crate::model::DEFAULT_ACCESS_FORMAT.as_bytes()).is_ok());
        assert!(check_format(b"%R|%u|%t|%T|%m|%r|%Q|%q|%s|%f|%l|%{milli}d|%d|%{micro}d|%M|%{kilo}M|%C|%{user}C|%n|%p|%P|%{HTTP_HOST}e|%{Content-Type}o|%{X-Foo}o|%%").is_ok());
        assert_eq!(
            check_format(b"%{x}f").unwrap_err(),
            "embrace is not allowed for modifier %f"
        );
        assert_eq!(
            check_format(b"%z").unwrap_err(),
            "Invalid token in the access.format (%z)"
        );
        assert_eq!(
            check_format(b"%{x}").unwrap_err(),
            "missing closing embrace in the access.format"
        );
        assert_eq!(
            check_format(b"%e").unwrap_err(),
            "the name of the environment variable must be set between embraces for %e"
        );
        assert!(check_format(b"abc %").is_ok());
        // A byte that is not UTF-8 is named as the byte it is (php-fpm prints it raw).
        let e = check_format(b"%\xe9").unwrap_err();
        assert_eq!(
            &*rfpm_core::shown::unshow(&e),
            b"Invalid token in the access.format (%\xe9)"
        );
    }
}
