//! What crosses `exec` on a reload: the `RFPM_HANDOFF` description of the running
//! generations (pools, slots, children, descriptors) and the `FPM_SOCKETS*` variables
//! naming the inherited listening sockets. Both are read from the environment, so they
//! are parsed as untrusted text: decoding must never panic, must stay within its bounds,
//! and whatever decodes must encode back to text that decodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rfpm_core::{handoff, listen_addr};

fuzz_target!(|data: &[u8]| {
    // FPM_SOCKETS, FPM_SOCKETS_1, ...: the input's bytes split on NUL into variables.
    let vars: Vec<Vec<u8>> = data.split(|&b| b == 0).map(<[u8]>::to_vec).collect();
    let socks = listen_addr::parse_inherited(&vars);
    assert!(socks.iter().all(|(_, fd)| *fd >= 0));
    if socks.iter().all(|(k, _)| !k.contains(&b',') && !k.is_empty()) {
        let exported: Vec<Vec<u8>> = listen_addr::export_vars(&socks)
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        assert_eq!(listen_addr::parse_inherited(&exported), socks, "FPM_SOCKETS round trip");
    }

    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    let gens = handoff::decode(text);
    let again = handoff::decode(&handoff::encode(&gens));
    assert_eq!(gens, again, "RFPM_HANDOFF round trip");
    for g in &gens {
        // Every descriptor named is a plain non-negative number, and every child refers
        // to a pool and a slot of its own generation.
        assert!(g.fds().iter().all(|&fd| fd >= 0));
        for c in &g.children {
            let pool = g.pools.get(c.pool).expect("child names a pool of its generation");
            assert!(c.slot < pool.slots.max(1), "child slot inside its pool");
        }
    }

});
