//! Time as the logs show it: local time (`TZ`, `/etc/localtime`), `strftime`, and the
//! process's CPU time.
use std::ffi::CString;

pub use rfpm_core::logline::Tm;

/// `localtime_r`; `None` when the time cannot be represented.
fn localtime(secs: i64) -> Option<libc::tm> {
    let t: libc::time_t = secs;
    // SAFETY: all-zero is a valid tm (plain integers and a pointer that may be NULL).
    let mut out: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: `t` and `out` are live locals; localtime_r is the reentrant form and
    // writes only into `out`.
    let res = unsafe { libc::localtime_r(&raw const t, &raw mut out) };
    (!res.is_null()).then_some(out)
}

/// Seconds since the epoch as local time (the epoch itself when it cannot be shown).
pub fn local_time(secs: i64, usec: u32) -> Tm {
    let field = |v: libc::c_int| u32::try_from(v).unwrap_or(0);
    match localtime(secs) {
        Some(tm) => Tm {
            year: tm.tm_year.saturating_add(1900),
            month: field(tm.tm_mon.saturating_add(1)),
            day: field(tm.tm_mday),
            hour: field(tm.tm_hour),
            min: field(tm.tm_min),
            sec: field(tm.tm_sec),
            usec,
        },
        None => Tm {
            year: 1970,
            month: 1,
            day: 1,
            usec,
            ..Tm::default()
        },
    }
}

/// The current local time.
pub fn now() -> Tm {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    local_time(
        i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        since.subsec_micros(),
    )
}

thread_local! {
    /// The last answer of [`strftime_local`]: an access log asks for the same second in
    /// the same format request after request (localtime and strftime cost thousands of
    /// instructions each time).
    static LAST_STRFTIME: std::cell::RefCell<(i64, Vec<u8>, Vec<u8>)> =
        const { std::cell::RefCell::new((i64::MIN, Vec::new(), Vec::new())) };
}

/// `strftime(fmt)` of a Unix time in local time, bytes as the C library writes them; at
/// most 256 bytes of output, empty when the format produces nothing or more.
pub fn strftime_local(secs: i64, fmt: &[u8]) -> Vec<u8> {
    LAST_STRFTIME.with(|last| {
        if let Ok(mut last) = last.try_borrow_mut() {
            if last.0 != secs || last.1 != fmt {
                *last = (secs, fmt.to_vec(), strftime_local_now(secs, fmt));
            }
            return last.2.clone();
        }
        strftime_local_now(secs, fmt)
    })
}

fn strftime_local_now(secs: i64, fmt: &[u8]) -> Vec<u8> {
    let Ok(cfmt) = CString::new(fmt) else {
        return Vec::new();
    };
    let Some(tm) = localtime(secs) else {
        return Vec::new();
    };
    let mut buf = [0u8; 256];
    // SAFETY: strftime writes at most buf.len() bytes into the live local `buf` and
    // returns how many; `cfmt` is NUL-terminated and `tm` a live local.
    let n = unsafe {
        libc::strftime(
            buf.as_mut_ptr().cast(),
            buf.len(),
            cfmt.as_ptr(),
            &raw const tm,
        )
    };
    buf[..n.min(buf.len())].to_vec()
}

/// The clock tick of times(2) and `/proc/PID/stat` (`_SC_CLK_TCK`, usually 100).
pub fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf is a query without memory arguments.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(tick).ok().filter(|&t| t > 0).unwrap_or(100)
}

/// CPU time used by this process and its reaped children, µs: (user, system), at the
/// clock-tick resolution of times(2) (as php-fpm measures it).
pub fn cpu_times_us() -> (u64, u64) {
    // SAFETY: all-zero is a valid tms (plain integers).
    let mut tms: libc::tms = unsafe { std::mem::zeroed() };
    // SAFETY: times writes only into the live local `tms`.
    unsafe { libc::times(&raw mut tms) };
    let tick = clock_ticks_per_sec();
    let us = |t: libc::clock_t| u64::try_from(t).unwrap_or(0).saturating_mul(1_000_000) / tick;
    (
        us(tms.tms_utime) + us(tms.tms_cutime),
        us(tms.tms_stime) + us(tms.tms_cstime),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_time_matches_libc_epoch() {
        // Whatever the zone, the year of the epoch is 1969 or 1970.
        let tm = local_time(0, 7);
        assert!(tm.year == 1969 || tm.year == 1970);
        assert_eq!(tm.usec, 7);
        let now = now();
        assert!((1..=12).contains(&now.month) && now.year >= 2024);
        assert!(!strftime_local(0, b"%Y").is_empty());
        assert_eq!(strftime_local(0, b""), b"");
        // The cache answers only for the same second and format.
        let a = strftime_local(86_400 * 365, b"%Y-%m-%d %H");
        assert_eq!(strftime_local(86_400 * 365, b"%Y-%m-%d %H"), a);
        assert_ne!(strftime_local(0, b"%Y-%m-%d %H"), a);
        assert_ne!(strftime_local(86_400 * 365, b"%m/%d %H"), a);
        // A format's byte that is not UTF-8 is written as it is.
        assert_eq!(strftime_local(0, b"\xe9"), b"\xe9");
    }

    #[test]
    fn cpu_time_moves_forward() {
        let (u0, s0) = cpu_times_us();
        let (u1, s1) = cpu_times_us();
        assert!(u1 >= u0 && s1 >= s0);
    }
}
