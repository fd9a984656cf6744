//! What a reloading master hands its next image besides the listening sockets: the
//! generations whose workers still drain (their pools' scoreboards on memfds, the
//! workers' pids, slots and output pipes), as one environment variable.
//!
//! The text is `g=ID;p=HEXNAME,DECORATE,MEMFD,SLOTS;c=PID,POOL,SLOT,STARTED,OUT,ERR;…`:
//! a `g` opens a generation, the `p` and `c` entries after it are its pools and
//! children (`-` for a missing descriptor). Pool names are hex-encoded (a section name
//! may hold any byte but `]`). [`decode`] takes only what is well-formed and within
//! bounds: a child naming a pool or a slot its generation does not have is dropped, and
//! so is every descriptor number that is negative.

use std::fmt::Write;

/// Most generations, pools per generation and children per generation taken.
const MAX_GENERATIONS: usize = 64;
const MAX_POOLS: usize = 4096;
const MAX_CHILDREN: usize = 65536;
/// Most slots a handed scoreboard may have (a pool's `pm.max_children` bound).
const MAX_SLOTS: usize = 1 << 20;

/// A generation that drains in the next image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    pub id: u32,
    pub pools: Vec<Pool>,
    pub children: Vec<Child>,
}

/// One of its pools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    /// The section's name, bytes.
    pub name: Vec<u8>,
    /// `decorate_workers_output`.
    pub decorate: bool,
    /// The scoreboard's memfd (without close-on-exec), if it has one.
    pub memfd: Option<i32>,
    pub slots: usize,
}

/// One of its workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child {
    pub pid: i32,
    /// Index into the generation's pools.
    pub pool: usize,
    pub slot: usize,
    /// Seconds since the epoch of its start.
    pub started: u64,
    /// The read ends of its stdout and stderr pipes (`catch_workers_output`).
    pub stdout: Option<i32>,
    pub stderr: Option<i32>,
}

impl Generation {
    /// Every descriptor the entries name (to clear close-on-exec, or to adopt).
    pub fn fds(&self) -> Vec<i32> {
        let pools = self.pools.iter().filter_map(|p| p.memfd);
        let pipes = self
            .children
            .iter()
            .flat_map(|c| [c.stdout, c.stderr])
            .flatten();
        pools.chain(pipes).collect()
    }
}

fn fd_text(fd: Option<i32>) -> String {
    fd.map_or_else(|| "-".to_string(), |f| f.to_string())
}

fn hex(s: &[u8]) -> String {
    s.iter()
        .fold(String::with_capacity(s.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || s.len() > 2 * 4096 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect();
    bytes
}

/// The environment variable's value for `gens`.
pub fn encode(gens: &[Generation]) -> String {
    let mut out = String::new();
    for g in gens {
        let _ = write!(out, "g={};", g.id);
        for p in &g.pools {
            let _ = write!(
                out,
                "p={},{},{},{};",
                hex(&p.name),
                u8::from(p.decorate),
                fd_text(p.memfd),
                p.slots
            );
        }
        for c in &g.children {
            let _ = write!(
                out,
                "c={},{},{},{},{},{};",
                c.pid,
                c.pool,
                c.slot,
                c.started,
                fd_text(c.stdout),
                fd_text(c.stderr)
            );
        }
    }
    out
}

fn fd_of(s: &str) -> Option<Option<i32>> {
    if s == "-" {
        return Some(None);
    }
    s.parse::<i32>().ok().filter(|&f| f >= 0).map(Some)
}

fn pool_of(v: &str) -> Option<Pool> {
    let f: Vec<&str> = v.split(',').collect();
    let [name, decorate, memfd, slots] = f.as_slice() else {
        return None;
    };
    Some(Pool {
        name: unhex(name)?,
        decorate: *decorate == "1",
        memfd: fd_of(memfd)?,
        slots: slots.parse().ok().filter(|&n| n <= MAX_SLOTS)?,
    })
}

fn child_of(v: &str, pools: &[Pool]) -> Option<Child> {
    let f: Vec<&str> = v.split(',').collect();
    let [pid, pool, slot, started, stdout, stderr] = f.as_slice() else {
        return None;
    };
    let pool: usize = pool.parse().ok()?;
    let slot: usize = slot.parse().ok()?;
    // The pool and the slot must exist: the new image indexes its tables with them.
    if slot >= pools.get(pool)?.slots.max(1) {
        return None;
    }
    Some(Child {
        pid: pid.parse().ok().filter(|&p: &i32| p > 0)?,
        pool,
        slot,
        started: started.parse().ok()?,
        stdout: fd_of(stdout)?,
        stderr: fd_of(stderr)?,
    })
}

/// The generations in `text`; malformed entries are skipped.
pub fn decode(text: &str) -> Vec<Generation> {
    let mut gens: Vec<Generation> = Vec::new();
    for entry in text.split(';').filter(|e| !e.is_empty()) {
        let Some((kind, value)) = entry.split_once('=') else {
            continue;
        };
        match kind {
            "g" => {
                if gens.len() >= MAX_GENERATIONS {
                    break;
                }
                if let Ok(id) = value.parse() {
                    gens.push(Generation {
                        id,
                        pools: Vec::new(),
                        children: Vec::new(),
                    });
                }
            }
            "p" => {
                if let (Some(g), Some(p)) = (gens.last_mut(), pool_of(value)) {
                    if g.pools.len() < MAX_POOLS && g.children.is_empty() {
                        g.pools.push(p);
                    }
                }
            }
            "c" => {
                if let Some(g) = gens.last_mut() {
                    if let Some(c) = child_of(value, &g.pools) {
                        if g.children.len() < MAX_CHILDREN {
                            g.children.push(c);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    gens
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Generation> {
        vec![
            Generation {
                id: 3,
                pools: vec![
                    Pool {
                        name: b"www".to_vec(),
                        decorate: true,
                        memfd: Some(9),
                        slots: 4,
                    },
                    Pool {
                        name: b"a;b=c,d \xe9".to_vec(),
                        decorate: false,
                        memfd: None,
                        slots: 1,
                    },
                ],
                children: vec![
                    Child {
                        pid: 100,
                        pool: 0,
                        slot: 3,
                        started: 1_700_000_000,
                        stdout: Some(11),
                        stderr: Some(12),
                    },
                    Child {
                        pid: 101,
                        pool: 1,
                        slot: 0,
                        started: 5,
                        stdout: None,
                        stderr: None,
                    },
                ],
            },
            Generation {
                id: 4,
                pools: vec![],
                children: vec![],
            },
        ]
    }

    #[test]
    fn round_trip() {
        let gens = sample();
        assert_eq!(decode(&encode(&gens)), gens);
        assert_eq!(gens[0].fds(), vec![9, 11, 12]);
        assert!(decode("").is_empty());
    }

    #[test]
    fn what_does_not_hold_is_dropped() {
        let text = "g=1;p=777777,1,5,2;c=10,0,1,0,-,-;c=11,0,2,0,-,-;c=12,1,0,0,-,-;\
                    c=0,0,0,0,-,-;c=13,0,0,0,-3,-;p=zz,1,-,1;garbage;x=1;c=14,0,0,0,-,-";
        let gens = decode(text);
        assert_eq!(gens.len(), 1);
        let g = &gens[0];
        assert_eq!(
            g.pools.len(),
            1,
            "a pool after children and a bad name are dropped"
        );
        let pids: Vec<i32> = g.children.iter().map(|c| c.pid).collect();
        // slot 2 of 2 slots, pool 1 of 1 pool, pid 0 and fd -3 are refused.
        assert_eq!(pids, vec![10, 14]);
        // Entries before any generation belong to none.
        assert!(decode("p=00,1,-,1;c=1,0,0,0,-,-").is_empty());
        // Slot counts beyond any pool are refused.
        assert!(decode("g=1;p=61,1,-,99999999999")
            .first()
            .is_some_and(|g| g.pools.is_empty()));
    }
}
