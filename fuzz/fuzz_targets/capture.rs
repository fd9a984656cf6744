//! The master's capture of worker output (`catch_workers_output`): everything a worker
//! writes to its stdout and stderr pipes, the end-of-request marker included, is
//! untrusted. Whatever the bytes and however the reads split them, the assembler must
//! not panic, no entry may hold a newline or exceed its limit, and the entries must not
//! depend on where the reads were cut.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rfpm_core::capture::{Capture, Entry, Stream};

/// `data`: the entry limit, then chunks, each a header byte (bit 7: stderr, the rest:
/// length) followed by that many bytes.
fn chunks(data: &[u8]) -> Option<(usize, Vec<(Stream, &[u8])>)> {
    let (&limit, mut rest) = data.split_first()?;
    let mut out = Vec::new();
    while let Some((&h, tail)) = rest.split_first() {
        let stream = if h & 0x80 != 0 { Stream::Stderr } else { Stream::Stdout };
        let n = usize::from(h & 0x7f).min(tail.len());
        out.push((stream, &tail[..n]));
        rest = &tail[n..];
    }
    Some((usize::from(limit) + 1, out))
}

fn run(limit: usize, reads: &[(Stream, Vec<u8>)]) -> Vec<Entry> {
    let mut c = Capture::new(limit);
    let mut out = Vec::new();
    for (s, d) in reads {
        c.feed(*s, d, &mut out);
    }
    c.close(Stream::Stdout, &mut out);
    c.close(Stream::Stderr, &mut out);
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((limit, split)) = chunks(data) else {
        return;
    };
    let reads: Vec<(Stream, Vec<u8>)> = split.iter().map(|(s, d)| (*s, d.to_vec())).collect();
    // The same bytes with consecutive reads of one stream joined into one read.
    let mut joined: Vec<(Stream, Vec<u8>)> = Vec::new();
    for (s, d) in &reads {
        match joined.last_mut() {
            Some((ls, ld)) if ls == s => ld.extend_from_slice(d),
            _ => joined.push((*s, d.clone())),
        }
    }
    let got = run(limit, &reads);
    for e in &got {
        assert!(!e.text.is_empty() && e.text.len() <= limit, "entry size");
        assert!(!e.text.contains(&b'\n'), "newline inside an entry");
    }
    assert_eq!(got, run(limit, &joined), "entries depend on the read boundaries");
});
