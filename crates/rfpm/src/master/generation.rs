//! A generation: the pools of one configuration, running. Each pool holds what the
//! master keeps for it at run time: its listening socket, its scoreboard, the process
//! manager's memory and its access log. The master holds its generations in
//! [`Generations`]: the current one serves and is replenished; older ones, handed over
//! by the image that reloaded into this one, only finish what their workers are doing
//! ([`Draining`]: no socket, no process manager, their scoreboards kept for the slots).
//! Children name their generation, so each finds its pool.
use crate::master::listen::Listener;
use crate::pm::PmMemory;
use crate::pool::Pool;
use crate::scoreboard::Scoreboard;
use rfpm_core::lifecycle::Sig;
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
    /// rfpm: workers of the pool that ended while it served, by
    /// `rfpm_core::metrics::EndReason` (the admin listener's metrics).
    pub ended: [u64; rfpm_core::metrics::EndReason::ALL.len()],
    /// Worker mode (`worker.script`): how the application's boots went. A readiness
    /// check reads [`BootState::not_spawning`] (the pool gave up until the next reload)
    /// and [`BootState::failures`].
    pub boot: BootState,
}

/// Worker mode: the boots of a pool's worker script, as the master counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BootState {
    /// Boots that failed in a row (a worker exited before its script's first
    /// `frankenphp_handle_request()`); 0 again after any other exit.
    pub failures: u32,
    /// The next worker starts when `Timer::BootRetry` is due, not before.
    pub retry_pending: bool,
    /// After [`BOOT_FAILURES_MAX`] failed boots in a row, the pool starts no worker
    /// until the next reload.
    pub not_spawning: bool,
}

/// Failed boots in a row after which a worker pool stops starting workers.
pub const BOOT_FAILURES_MAX: u32 = 10;

impl BootState {
    /// The delay before the next boot after `failures` failed ones in a row: 100 ms,
    /// doubled each time, at most 5 s.
    pub fn delay(failures: u32) -> std::time::Duration {
        let ms = 100u64.saturating_mul(1 << failures.saturating_sub(1).min(16));
        std::time::Duration::from_millis(ms.min(5000))
    }

    /// No worker may start now (backing off, or given up).
    pub fn blocks_spawn(&self) -> bool {
        self.retry_pending || self.not_spawning
    }
}

impl Generation {
    /// Pool `i`, if it exists.
    pub fn pool(&self, i: usize) -> Option<&PoolRuntime> {
        self.pools.get(i)
    }
}

/// A generation handed over by the previous image: its workers finish and exit.
pub struct Draining {
    pub id: GenerationId,
    pub pools: Vec<DrainingPool>,
    /// The last signal sent to make its workers go (QUIT was sent before the hand-over).
    pub sent: Sig,
}

/// One pool of a draining generation.
pub struct DrainingPool {
    pub name: conf::Bytes,
    pub decorate_workers_output: bool,
    /// Its scoreboard, mapped again from the memfd the previous image handed over.
    pub scoreboard: Option<Scoreboard>,
}

/// What the master needs of any child's pool, whatever its generation.
pub struct PoolInfo<'a> {
    pub name: &'a conf::Bytes,
    pub decorate_workers_output: bool,
    pub scoreboard: Option<&'a Scoreboard>,
}

/// The master's generations: the current one and those that drain.
pub struct Generations {
    current: Generation,
    draining: Vec<Draining>,
}

impl Generations {
    pub fn new(current: Generation, draining: Vec<Draining>) -> Generations {
        Generations { current, draining }
    }

    /// The generation that serves and is replenished.
    pub fn current(&self) -> &Generation {
        &self.current
    }

    pub fn current_mut(&mut self) -> &mut Generation {
        &mut self.current
    }

    /// Pool `pool` of the current generation, if `id` is the current generation.
    pub fn pool(&self, id: GenerationId, pool: usize) -> Option<&PoolRuntime> {
        (id == self.current.id)
            .then(|| self.current.pool(pool))
            .flatten()
    }

    /// What the master needs of pool `pool` of generation `id`, current or draining.
    pub fn info(&self, id: GenerationId, pool: usize) -> Option<PoolInfo<'_>> {
        if id == self.current.id {
            let p = self.current.pool(pool)?;
            return Some(PoolInfo {
                name: &p.spec.name,
                decorate_workers_output: p.spec.decorate_workers_output,
                scoreboard: Some(&p.scoreboard),
            });
        }
        let p = self.draining(id)?.pools.get(pool)?;
        Some(PoolInfo {
            name: &p.name,
            decorate_workers_output: p.decorate_workers_output,
            scoreboard: p.scoreboard.as_ref(),
        })
    }

    /// The pools of the current generation.
    pub fn pools(&self) -> impl Iterator<Item = &PoolRuntime> {
        self.current.pools.iter()
    }

    /// Every scoreboard, of every generation.
    pub fn scoreboards(&self) -> impl Iterator<Item = &Scoreboard> {
        let draining = self
            .draining
            .iter()
            .flat_map(|d| d.pools.iter().filter_map(|p| p.scoreboard.as_ref()));
        self.current
            .pools
            .iter()
            .map(|p| &p.scoreboard)
            .chain(draining)
    }

    pub fn draining(&self, id: GenerationId) -> Option<&Draining> {
        self.draining.iter().find(|d| d.id == id)
    }

    pub fn draining_mut(&mut self, id: GenerationId) -> Option<&mut Draining> {
        self.draining.iter_mut().find(|d| d.id == id)
    }

    /// A generation handed over by the previous image starts draining here.
    pub fn add_draining(&mut self, d: Draining) {
        self.draining.push(d);
    }

    pub fn all_draining(&self) -> &[Draining] {
        &self.draining
    }

    /// Forgets a draining generation whose last worker is gone (its scoreboards are
    /// unmapped and their memfds closed).
    pub fn retire(&mut self, id: GenerationId) {
        self.draining.retain(|d| d.id != id);
    }

    /// A forked worker takes the current generation's pools and the draining
    /// generations' scoreboards of pool `name` (its status page lists their workers);
    /// everything else of the draining generations is dropped (unmapped) in it.
    pub fn take_for_worker(&mut self, name: &[u8]) -> (Vec<PoolRuntime>, Vec<Scoreboard>) {
        let draining = std::mem::take(&mut self.draining)
            .into_iter()
            .flat_map(|d| d.pools)
            .filter(|p| p.name.as_bytes() == name)
            .filter_map(|p| p.scoreboard)
            .collect();
        (std::mem::take(&mut self.current.pools), draining)
    }
}
