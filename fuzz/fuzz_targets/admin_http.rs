//! The admin listener's HTTP heads (rfpm_core::admin): whatever a client sends, the
//! parser answers with a request, "more bytes", or a refusal; it never panics, never
//! claims more bytes than it was given, never asks for more past its bound; and the
//! answer built for a request is well formed (its Content-Length is its body's).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rfpm_core::admin::{parse, response, route, Parse, MAX_HEAD};
use rfpm_core::metrics::negotiate;

fuzz_target!(|data: &[u8]| {
    match parse(data) {
        Parse::Request(r) => {
            assert!(r.len <= data.len() && r.len <= MAX_HEAD);
            let _ = route(&r.path);
            let _ = negotiate(r.accept.as_deref());
            let body = r.path.as_bytes();
            let out = response(200, "text/plain", body, false, r.keep_alive);
            let head_end = out
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .expect("a head")
                + 4;
            assert_eq!(out.len() - head_end, body.len());
        }
        Parse::Incomplete => assert!(data.len() < MAX_HEAD),
        Parse::Refuse(code) => assert!(code == 400 || code == 431),
    }
});
