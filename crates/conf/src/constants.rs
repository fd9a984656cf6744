//! PHP constants that the INI parser substitutes for bare words, for this crate's own
//! tests and tools, which run without libphp.
//!
//! The rfpm binary does not use this table: it passes a lookup that asks the embedded
//! PHP (`sapi::constant`), which knows every constant of every loaded extension, with
//! the values of the PHP version it runs (`E_ALL` is 30719 on PHP 8.4). This table is
//! PHP 8.2's, the version the crate's corpus was recorded with.

/// Value of a well-known PHP 8.2 constant (Debian build), as the string the INI
/// parser would substitute. Case-sensitive, like PHP 8.
pub fn lookup(name: &str) -> Option<String> {
    let v: &str = match name {
        "E_ERROR" => "1",
        "E_WARNING" => "2",
        "E_PARSE" => "4",
        "E_NOTICE" => "8",
        "E_CORE_ERROR" => "16",
        "E_CORE_WARNING" => "32",
        "E_COMPILE_ERROR" => "64",
        "E_COMPILE_WARNING" => "128",
        "E_USER_ERROR" => "256",
        "E_USER_WARNING" => "512",
        "E_USER_NOTICE" => "1024",
        "E_STRICT" => "2048",
        "E_RECOVERABLE_ERROR" => "4096",
        "E_DEPRECATED" => "8192",
        "E_USER_DEPRECATED" => "16384",
        "E_ALL" => "32767",
        "PHP_VERSION" => "8.2.36",
        "PHP_MAJOR_VERSION" => "8",
        "PHP_MINOR_VERSION" => "2",
        "PHP_RELEASE_VERSION" => "36",
        "PHP_VERSION_ID" => "80236",
        "PHP_EXTRA_VERSION" => "",
        "PHP_OS" => "Linux",
        "PHP_OS_FAMILY" => "Linux",
        "PHP_EOL" => "\n",
        "PHP_INT_MAX" => "9223372036854775807",
        "PHP_INT_MIN" => "-9223372036854775808",
        "PHP_INT_SIZE" => "8",
        "PHP_FLOAT_DIG" => "15",
        "PHP_MAXPATHLEN" => "4096",
        "PHP_DEBUG" => "0",
        "PHP_ZTS" => "0",
        "PHP_FD_SETSIZE" => "1024",
        "DIRECTORY_SEPARATOR" => "/",
        "PATH_SEPARATOR" => ":",
        "PHP_PREFIX" => "/usr",
        "PHP_BINDIR" => "/usr/bin",
        "PHP_LIBDIR" => "/usr/lib/php",
        "PHP_DATADIR" => "/usr/share/php/8.2",
        "PHP_SYSCONFDIR" => "/etc",
        "PHP_MANDIR" => "/usr/share/man",
        "PHP_EXTENSION_DIR" => "/usr/lib/php/20220829",
        "PEAR_INSTALL_DIR" => "/usr/share/php",
        "PEAR_EXTENSION_DIR" => "/usr/lib/php/20220829",
        "DEFAULT_INCLUDE_PATH" => ".:/usr/share/php",
        "PHP_SHLIB_SUFFIX" => "so",
        "PHP_OUTPUT_HANDLER_STDFLAGS" => "112",
        "PHP_SAPI" => "fpm-fcgi",
        "PHP_BINARY" => "/usr/sbin/php-fpm8.2",
        _ => return None,
    };
    Some(v.to_string())
}

/// Boxed form of [`lookup`] for [`crate::LoadOptions::constant`].
pub fn default_constants() -> crate::Lookup {
    Box::new(lookup)
}
