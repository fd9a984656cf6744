//! A generation: the pools of one configuration, running. Each pool holds what the
//! master keeps for it at run time: its listening socket, its scoreboard, the process
//! manager's memory and its access log. The master holds its generations in
//! [`Generations`]: the newest is the current one, which serves and is replenished; an
//! older one (a reload that starts a new generation beside the draining old one) only
//! finishes what its workers are doing. Today's reload re-executes the master, so there
//! is one generation per image; children name theirs, so each finds its pool.
use crate::master::listen::Listener;
use crate::pm::PmMemory;
use crate::pool::Pool;
use crate::scoreboard::Scoreboard;
use std::os::fd::OwnedFd;

/// Which generation: 1 for the master's first, one more at every re-execution (the
/// number crosses `exec`, see `handoff`).
pub type GenerationId = u32;

/// The pools of one configuration, running.
pub struct Generation {
    pub id: GenerationId,
    pub pools: Vec<PoolRuntime>,
}

/// One pool of a generation.
pub struct PoolRuntime {
    /// The pool as configured (identity and socket permissions resolved).
    pub spec: Pool,
    pub listener: Listener,
    pub scoreboard: Scoreboard,
    /// What the process manager remembers between its passes.
    pub pm: PmMemory,
    /// The access log, opened by the master, written by the workers (reference §5.5).
    pub access_log: Option<OwnedFd>,
}

impl Generation {
    /// Pool `i`, if it exists.
    pub fn pool(&self, i: usize) -> Option<&PoolRuntime> {
        self.pools.get(i)
    }
}

/// The master's generations, oldest first; the last is the current one.
pub struct Generations {
    list: Vec<Generation>,
}

impl Generations {
    /// The master's first (or, after a re-execution, only) generation.
    pub fn new(first: Generation) -> Generations {
        Generations { list: vec![first] }
    }

    /// The generation that serves and is replenished.
    pub fn current(&self) -> &Generation {
        // `list` is never empty: made with one, never shrunk but by `take_all`.
        &self.list[self.list.len() - 1]
    }

    pub fn current_mut(&mut self) -> &mut Generation {
        let last = self.list.len() - 1;
        &mut self.list[last]
    }

    /// Generation `id`, if the master still holds it.
    pub fn get(&self, id: GenerationId) -> Option<&Generation> {
        self.list.iter().find(|g| g.id == id)
    }

    /// Pool `pool` of generation `id`.
    pub fn pool(&self, id: GenerationId, pool: usize) -> Option<&PoolRuntime> {
        self.get(id).and_then(|g| g.pool(pool))
    }

    /// Every pool of every generation.
    pub fn pools(&self) -> impl Iterator<Item = &PoolRuntime> {
        self.list.iter().flat_map(|g| g.pools.iter())
    }

    /// A forked worker takes them all apart (it keeps only its own pool).
    pub fn take_all(&mut self) -> Vec<Generation> {
        std::mem::take(&mut self.list)
    }
}
