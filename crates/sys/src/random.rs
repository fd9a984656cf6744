//! Entropy from the kernel.

/// Eight random bytes from `getrandom(2)` (the kernel's generator: no file to open, so it
/// works inside a chroot too); `None` when the call fails or the generator is not ready
/// yet (early boot: the call does not block).
pub fn u64() -> Option<u64> {
    let mut b = [0u8; 8];
    // SAFETY: `b` is ours, writable for `b.len()` bytes, and outlives the call.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), libc::GRND_NONBLOCK) };
    (usize::try_from(n).ok() == Some(b.len())).then(|| u64::from_ne_bytes(b))
}

#[cfg(test)]
mod tests {
    #[test]
    fn draws_differ() {
        let draws: Vec<Option<u64>> = (0..4).map(|_| super::u64()).collect();
        assert!(draws.iter().all(Option::is_some));
        assert!(draws.windows(2).any(|w| w[0] != w[1]));
    }
}
