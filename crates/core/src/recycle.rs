//! Recycling workers without a spike (rfpm only, issue 14): when a worker's request
//! limit is reached (`pm.max_requests` staggered by `pm.max_requests_jitter`) and when
//! its resident memory is too large (`pm.max_memory`). Pure: the entropy and the memory
//! figures are parameters, read by the binary (the worker draws its entropy at start,
//! the master reads each worker's RSS from `/proc`).

/// A worker's request limit: `max_requests` plus `entropy` reduced to `0..=jitter`,
/// chosen once at the worker's start, so the workers of a pool started together do not
/// all reach their limit (and restart) in the same second. 0 = no limit: a jitter alone
/// does not make one.
pub fn request_limit(max_requests: u64, jitter: u64, entropy: u64) -> u64 {
    if max_requests == 0 {
        return 0;
    }
    let extra = match jitter.checked_add(1) {
        Some(span) => entropy % span,
        None => entropy,
    };
    max_requests.saturating_add(extra)
}

/// Passes in a row a busy worker may stay over `pm.max_memory` before it is asked to
/// finish anyway (see [`memory_check`]).
pub const MEMORY_PATIENCE: u32 = 10;

/// What the master does with a worker on its once-a-second `pm.max_memory` pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryCheck {
    /// Within the limit (or no limit): nothing; the count of passes over it restarts.
    Fine,
    /// Over the limit but busy: wait for it to be idle (count this pass).
    Wait,
    /// Ask it to finish (SIGQUIT: an idle worker exits at once, a busy one after its
    /// request) and replace it.
    Recycle,
}

/// `pm.max_memory`'s decision for one worker. `rss`: its resident memory in bytes, as the
/// kernel tells the master (never a figure the worker wrote); `idle`: its scoreboard slot
/// says it waits for a connection — a hint of *when* to ask, not of *whether*: a worker
/// over the limit is asked when it is next seen idle, so the signal does not interrupt
/// what its request is blocked in (SIGQUIT cuts a `sleep()` short, and a read without
/// `SA_RESTART`); one that is never seen idle for [`MEMORY_PATIENCE`] passes (a saturated
/// pool, or a slot that lies) is asked anyway. `over`: the passes in a row it was over
/// the limit before this one. `limit` 0 = off.
pub fn memory_check(limit: u64, rss: u64, idle: bool, over: u32) -> MemoryCheck {
    if limit == 0 || rss <= limit {
        MemoryCheck::Fine
    } else if idle || over.saturating_add(1) >= MEMORY_PATIENCE {
        MemoryCheck::Recycle
    } else {
        MemoryCheck::Wait
    }
}

/// The figures of the recycling notice, `rss > limit`: both in the unit of the limit
/// (KiB, MiB, GiB; bytes below 1 KiB), with one decimal unless whole (`150 MiB`,
/// `128.4 MiB`); in bytes when that would print the same figure twice.
pub fn memory_figures(rss: u64, limit: u64) -> (String, String) {
    let unit = [(30, "GiB"), (20, "MiB"), (10, "KiB")]
        .into_iter()
        .find(|&(shift, _)| limit >> shift > 0);
    let Some((shift, name)) = unit else {
        return (format!("{rss} bytes"), format!("{limit} bytes"));
    };
    let show = |n: u64| {
        // Tenths of the unit, rounded to the nearest.
        let tenths = (u128::from(n) * 10 + (1u128 << shift) / 2) >> shift;
        let (whole, tenth) = (tenths / 10, tenths % 10);
        if tenth == 0 {
            format!("{whole} {name}")
        } else {
            format!("{whole}.{tenth} {name}")
        }
    };
    let (r, l) = (show(rss), show(limit));
    if r == l {
        (format!("{rss} bytes"), format!("{limit} bytes"))
    } else {
        (r, l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_max_requests_no_limit_whatever_the_jitter() {
        assert_eq!(request_limit(0, 0, 7), 0);
        assert_eq!(request_limit(0, 50, 7), 0);
    }

    #[test]
    fn no_jitter_is_php_fpm_s_limit() {
        for e in [0, 1, 12345, u64::MAX] {
            assert_eq!(request_limit(500, 0, e), 500);
        }
    }

    #[test]
    fn the_jitter_spans_zero_to_n_inclusive() {
        let limits: std::collections::BTreeSet<u64> =
            (0..1000).map(|e| request_limit(5, 50, e)).collect();
        assert_eq!(limits.first(), Some(&5));
        assert_eq!(limits.last(), Some(&55));
        assert_eq!(limits.len(), 51, "every value of 5..=55 is reachable");
        // Large inputs neither overflow nor leave the range.
        assert_eq!(request_limit(5, 50, u64::MAX), 5);
        assert_eq!(request_limit(5, 50, u64::MAX - 1), 55);
        assert_eq!(request_limit(u64::MAX, 3, 3), u64::MAX);
        assert_eq!(request_limit(1, u64::MAX, 9), 10);
    }

    #[test]
    fn memory_within_the_limit_or_without_one_is_fine() {
        assert_eq!(memory_check(0, u64::MAX, true, 99), MemoryCheck::Fine);
        assert_eq!(memory_check(100, 100, true, 3), MemoryCheck::Fine);
        assert_eq!(memory_check(100, 1, false, 3), MemoryCheck::Fine);
    }

    #[test]
    fn memory_over_the_limit_recycles_when_idle_or_after_patience() {
        assert_eq!(memory_check(100, 101, true, 0), MemoryCheck::Recycle);
        assert_eq!(memory_check(100, 101, false, 0), MemoryCheck::Wait);
        assert_eq!(
            memory_check(100, 101, false, MEMORY_PATIENCE - 2),
            MemoryCheck::Wait
        );
        assert_eq!(
            memory_check(100, 101, false, MEMORY_PATIENCE - 1),
            MemoryCheck::Recycle
        );
        assert_eq!(
            memory_check(100, 101, false, u32::MAX),
            MemoryCheck::Recycle
        );
    }

    #[test]
    fn memory_figures_in_the_limit_s_unit() {
        let mib = 1 << 20;
        assert_eq!(
            memory_figures(150 * mib, 128 * mib),
            ("150 MiB".into(), "128 MiB".into())
        );
        assert_eq!(
            memory_figures(128 * mib + 400 * 1024, 128 * mib),
            ("128.4 MiB".into(), "128 MiB".into())
        );
        assert_eq!(
            memory_figures(3 << 30, 2 << 30),
            ("3 GiB".into(), "2 GiB".into())
        );
        assert_eq!(
            memory_figures(2 * mib, 512 * 1024),
            ("2048 KiB".into(), "512 KiB".into())
        );
        assert_eq!(
            memory_figures(900, 800),
            ("900 bytes".into(), "800 bytes".into())
        );
        // Figures that would read the same are given in bytes.
        assert_eq!(
            memory_figures(128 * mib + 1000, 128 * mib),
            (
                format!("{} bytes", 128 * mib + 1000),
                format!("{} bytes", 128 * mib)
            )
        );
    }
}
