//! CRC-32 (IEEE 802.3, PHP's `hash('crc32b', ..)`), to check bodies PHP received.

/// The CRC-32 of `data`, as PHP's `hash('crc32b', $data)` prints it (8 lower-case hex digits).
pub fn hex(data: &[u8]) -> String {
    format!("{:08x}", crc32(data))
}

pub fn crc32(data: &[u8]) -> u32 {
    let table = table();
    let mut c = 0xffff_ffffu32;
    for &b in data {
        c = table[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    c ^ 0xffff_ffff
}

fn table() -> [u32; 256] {
    let mut t = [0u32; 256];
    for (n, slot) in t.iter_mut().enumerate() {
        let mut c = n as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
        *slot = c;
    }
    t
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_values() {
        // php -r 'echo hash("crc32b", "The quick brown fox jumps over the lazy dog");'
        assert_eq!(
            super::hex(b"The quick brown fox jumps over the lazy dog"),
            "414fa339"
        );
        assert_eq!(super::hex(b""), "00000000");
        assert_eq!(super::hex(b"123456789"), "cbf43926");
    }
}
