//! The `listen` forms (reference §6.1) and the `FPM_SOCKETS` encoding with which a
//! reloading master hands its listening sockets to its next image (reference §4.3).

/// What a `listen` value means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// Digits only: all addresses (`[::]` dual-stack, else `0.0.0.0`).
    AnyPort(u16),
    /// `host:port` (split at the last colon, brackets removed).
    Tcp { host: String, port: u16 },
    /// A Unix socket path.
    Unix(String),
}

/// Parses a `listen` value. `Err` carries php-fpm's message.
pub fn parse(listen: &str) -> Result<ListenAddr, String> {
    if !listen.is_empty() && listen.bytes().all(|b| b.is_ascii_digit()) {
        return port_of(listen).map(ListenAddr::AnyPort);
    }
    if let Some(colon) = listen.rfind(':') {
        // A Unix path may contain ':' too, but php-fpm treats any ':' as TCP.
        let host = &listen[..colon];
        let port = port_of(&listen[colon + 1..])?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        return Ok(ListenAddr::Tcp {
            host: host.to_string(),
            port,
        });
    }
    Ok(ListenAddr::Unix(listen.to_string()))
}

fn port_of(s: &str) -> Result<u16, String> {
    match s.parse::<u16>() {
        Ok(p) if p >= 1 => Ok(p),
        _ => Err(format!("invalid port value '{s}'")),
    }
}

/// Most entries one `FPM_SOCKETS*` variable holds.
pub const PER_VAR: usize = 128;
/// Most `FPM_SOCKETS*` variables.
pub const MAX_VARS: usize = 256;

pub fn var_name(i: usize) -> String {
    if i == 0 {
        "FPM_SOCKETS".to_string()
    } else {
        format!("FPM_SOCKETS_{i}")
    }
}

/// `key=fd,key=fd` entries of `FPM_SOCKETS`, `FPM_SOCKETS_1`, .... The values are
/// bytes, as the environment holds them: a key is a Unix socket's path exactly.
pub fn parse_inherited(vars: &[Vec<u8>]) -> Vec<(Vec<u8>, i32)> {
    let mut out = Vec::new();
    for v in vars {
        for entry in v.split(|&b| b == b',').filter(|e| !e.is_empty()) {
            let Some(eq) = entry.iter().rposition(|&b| b == b'=') else {
                continue;
            };
            let fd = std::str::from_utf8(&entry[eq + 1..])
                .ok()
                .and_then(|f| f.parse::<i32>().ok());
            if let Some(fd) = fd.filter(|&fd| fd >= 0) {
                out.push((entry[..eq].to_vec(), fd));
            }
        }
    }
    out
}

/// The environment variables that hand `listeners` to the next image.
pub fn export_vars(listeners: &[(Vec<u8>, i32)]) -> Vec<(String, Vec<u8>)> {
    listeners
        .chunks(PER_VAR)
        .take(MAX_VARS)
        .enumerate()
        .map(|(i, chunk)| {
            let mut v = Vec::new();
            for (n, (k, fd)) in chunk.iter().enumerate() {
                if n > 0 {
                    v.push(b',');
                }
                v.extend_from_slice(k);
                v.extend_from_slice(format!("={fd}").as_bytes());
            }
            (var_name(i), v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fpm_sockets_round_trip() {
        let socks: Vec<(Vec<u8>, i32)> = (0..300)
            .map(|i| (format!("/tmp/s{i}").into_bytes(), i + 3))
            .chain([(b"/tmp/caf\xe9.sock".to_vec(), 400)])
            .collect();
        let vars = export_vars(&socks);
        assert_eq!(vars.len(), 3);
        assert_eq!(vars[0].0, "FPM_SOCKETS");
        assert_eq!(vars[2].0, "FPM_SOCKETS_2");
        let values: Vec<Vec<u8>> = vars.into_iter().map(|(_, v)| v).collect();
        assert_eq!(parse_inherited(&values), socks);
        let two = parse_inherited(&[b"127.0.0.1:9000=7,:::9001=8".to_vec()]);
        assert_eq!(
            two,
            vec![(b"127.0.0.1:9000".to_vec(), 7), (b":::9001".to_vec(), 8)]
        );
    }

    #[test]
    fn forms() {
        assert_eq!(parse("9000"), Ok(ListenAddr::AnyPort(9000)));
        assert_eq!(
            parse("127.0.0.1:9000"),
            Ok(ListenAddr::Tcp {
                host: "127.0.0.1".into(),
                port: 9000
            })
        );
        assert_eq!(
            parse("[::1]:9000"),
            Ok(ListenAddr::Tcp {
                host: "::1".into(),
                port: 9000
            })
        );
        assert_eq!(
            parse("/run/php.sock"),
            Ok(ListenAddr::Unix("/run/php.sock".into()))
        );
        assert_eq!(
            parse("127.0.0.1:69002"),
            Err("invalid port value '69002'".into())
        );
        assert_eq!(parse("0"), Err("invalid port value '0'".into()));
    }
}
