//! A generation: the pools of one configuration, running. Each pool holds what the
//! master keeps for it at run time: its listening socket, its scoreboard, the process
//! manager's memory and its access log. Today a master runs one generation; a reload
//! that starts a new one beside the draining old one names them by their id.
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

    /// The pool whose status page pool `i` shows: its own, or for a hidden
    /// `pm.status_listen` pool the owner's (reference §9.4).
    pub fn status_owner(&self, i: usize) -> usize {
        self.pools
            .get(i)
            .and_then(|p| p.spec.shared)
            .filter(|&o| o < self.pools.len())
            .unwrap_or(i)
    }
}
