//! Parsing wrk's report (`wrk --latency` plus the `bad_responses:` line our Lua script
//! prints), and the Lua script that validates every response.

/// What one wrk run reported.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub requests: u64,
    pub rps: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    /// Non-2xx/3xx responses + socket errors + bodies that failed the check.
    pub errors: u64,
}

/// A Lua script for `wrk -s`: counts responses whose status is not 200 or whose body does
/// not contain `needle`, and prints `bad_responses: N` at the end.
pub fn lua_script(needle: &str) -> String {
    let quoted = needle.bytes().fold(String::new(), |mut s, b| {
        s.push('\\');
        s.push_str(&b.to_string());
        s
    });
    format!(
        "local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0 end
function response(status, headers, body)
  if status ~= 200 or not string.find(body, \"{quoted}\", 1, true) then bad = bad + 1 end
end
function done(summary, latency, requests)
  local t = 0
  for _, th in ipairs(threads) do t = t + th:get(\"bad\") end
  io.write(\"bad_responses: \" .. t .. \"\\n\")
end
"
    )
}

fn duration_us(s: &str) -> Option<f64> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix("ms") {
        (n, 1e3)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60e6)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1e6)
    } else {
        return None;
    };
    num.trim().parse::<f64>().ok().map(|v| v * mult)
}

/// Parses wrk's stdout; `None` when it has no `Requests/sec` line.
pub fn parse(out: &str) -> Option<Report> {
    let mut r = Report::default();
    let mut seen_rps = false;
    let mut in_dist = false;
    for line in out.lines() {
        let t = line.trim();
        if t.starts_with("Latency Distribution") {
            in_dist = true;
            continue;
        }
        if in_dist {
            if let Some((pct, val)) = t.split_once('%') {
                match pct.trim() {
                    "50" => r.p50_us = duration_us(val).unwrap_or(f64::NAN),
                    "99" => r.p99_us = duration_us(val).unwrap_or(f64::NAN),
                    _ => {}
                }
                continue;
            }
            in_dist = false;
        }
        if let Some(v) = t.strip_prefix("Requests/sec:") {
            r.rps = v.trim().parse().ok()?;
            seen_rps = true;
        } else if let Some(v) = t.strip_prefix("Non-2xx or 3xx responses:") {
            r.errors += v.trim().parse::<u64>().unwrap_or(1);
        } else if let Some(v) = t.strip_prefix("Socket errors:") {
            for part in v.split(',') {
                if let Some(n) = part.split_whitespace().nth(1) {
                    r.errors += n.parse::<u64>().unwrap_or(1);
                }
            }
        } else if let Some(v) = t.strip_prefix("bad_responses:") {
            r.errors += v.trim().parse::<u64>().unwrap_or(1);
        } else if t.contains(" requests in ") {
            r.requests = t.split_whitespace().next()?.parse().ok()?;
        }
    }
    seen_rps.then_some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: &str = "Running 3s test @ http://127.0.0.1:8080/hello.php
  2 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.12ms  400.00us   8.00ms   90.00%
    Req/Sec     3.50k   200.00     4.00k    70.00%
  Latency Distribution
     50%  850.00us
     75%    1.20ms
     90%    1.50ms
     99%    2.50ms
  21000 requests in 3.00s, 3.10MB read
  Non-2xx or 3xx responses: 2
  Socket errors: connect 0, read 1, write 0, timeout 3
Requests/sec:   7000.00
Transfer/sec:      1.03MB
bad_responses: 2
";

    #[test]
    fn parses_a_report() {
        let r = parse(OUT).unwrap_or_default();
        assert_eq!(r.requests, 21000);
        assert_eq!(r.rps, 7000.0);
        assert_eq!(r.p50_us, 850.0);
        assert_eq!(r.p99_us, 2500.0);
        assert_eq!(r.errors, 2 + 1 + 3 + 2);
        assert!(parse("wrk: connection refused").is_none());
    }

    #[test]
    fn lua_escapes_the_needle() {
        let s = lua_script("a\"b");
        assert!(s.contains("\\97\\34\\98"));
    }
}
