//! POSIX access ACLs for Unix sockets (`listen.acl_users` / `listen.acl_groups`,
//! reference §6.2), encoded in the Linux kernel's `system.posix_acl_access` attribute
//! format so no libacl is needed: a little-endian `u32` version (2), then one 8-byte
//! entry per line (`u16` tag, `u16` permissions, `u32` id), sorted by tag and id.
//!
//! Like php-fpm, the ACL starts from the file's mode (owner, group and other entries),
//! gives every listed user and group `rw`, and adds the mask (union of the group class).
//! The kernel rejects an invalid ACL (e.g. a user listed twice) with `EINVAL`.

const VERSION: u32 = 2;
const USER_OBJ: u16 = 0x01;
const USER: u16 = 0x02;
const GROUP_OBJ: u16 = 0x04;
const GROUP: u16 = 0x08;
const MASK: u16 = 0x10;
const OTHER: u16 = 0x20;
const UNDEFINED_ID: u32 = u32::MAX;
const RW: u16 = 0o6;

/// The attribute value for a file of `mode` with `rw` entries for `users` and `groups`.
pub fn encode(mode: u32, users: &[u32], groups: &[u32]) -> Vec<u8> {
    let bits = |shift: u32| ((mode >> shift) & 0o7) as u16;
    let mut users = users.to_vec();
    users.sort_unstable();
    let mut groups = groups.to_vec();
    groups.sort_unstable();
    let group_obj = bits(3);
    let mut entries = vec![(USER_OBJ, bits(6), UNDEFINED_ID)];
    entries.extend(users.iter().map(|&u| (USER, RW, u)));
    entries.push((GROUP_OBJ, group_obj, UNDEFINED_ID));
    entries.extend(groups.iter().map(|&g| (GROUP, RW, g)));
    let mask = if users.is_empty() && groups.is_empty() {
        group_obj
    } else {
        group_obj | RW
    };
    entries.push((MASK, mask, UNDEFINED_ID));
    entries.push((OTHER, bits(0), UNDEFINED_ID));
    let mut out = Vec::with_capacity(4 + 8 * entries.len());
    out.extend_from_slice(&VERSION.to_le_bytes());
    for (tag, perm, id) in entries {
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&perm.to_le_bytes());
        out.extend_from_slice(&id.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(b: &[u8]) -> Vec<(u16, u16, u32)> {
        b[4..]
            .chunks(8)
            .map(|e| {
                (
                    u16::from_le_bytes([e[0], e[1]]),
                    u16::from_le_bytes([e[2], e[3]]),
                    u32::from_le_bytes([e[4], e[5], e[6], e[7]]),
                )
            })
            .collect()
    }

    #[test]
    fn sorted_with_mask() {
        let b = encode(0o600, &[65534, 33], &[7]);
        assert_eq!(&b[..4], &[2, 0, 0, 0]);
        let u = UNDEFINED_ID;
        assert_eq!(
            entries(&b),
            vec![
                (USER_OBJ, 6, u),
                (USER, 6, 33),
                (USER, 6, 65534),
                (GROUP_OBJ, 0, u),
                (GROUP, 6, 7),
                (MASK, 6, u),
                (OTHER, 0, u),
            ]
        );
        let g = encode(0o754, &[], &[1]);
        assert_eq!(
            entries(&g),
            vec![
                (USER_OBJ, 7, u),
                (GROUP_OBJ, 5, u),
                (GROUP, 6, 1),
                (MASK, 7, u),
                (OTHER, 4, u)
            ]
        );
    }
}
