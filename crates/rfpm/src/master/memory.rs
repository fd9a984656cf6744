//! `pm.max_memory` (rfpm): once a second the master reads the resident memory of each
//! worker of a pool with a limit from `/proc` — what the kernel says, never a figure the
//! worker wrote — and asks a worker over the limit to finish (SIGQUIT: it completes its
//! request and exits 0; the pool replaces it), with a notice that gives the figure. The
//! decision is `rfpm_core::recycle::memory_check`: the worker's slot saying it is idle
//! only chooses the moment.
use super::Supervisor;
use crate::scoreboard::WorkerState;
use rfpm_core::recycle::{memory_check, memory_figures, MemoryCheck};
use rfpm_sys::{process, procfs};

impl Supervisor {
    /// The `pm.max_memory` pass over every worker not already asked to stop.
    pub(super) fn check_memory(&mut self) {
        let mut recycle = Vec::new();
        for c in self.children.iter_mut() {
            if c.asked_to_stop || c.recycling {
                continue;
            }
            let Some(p) = self.generations.pool(c.generation, c.pool) else {
                continue;
            };
            let limit = p.spec.max_memory;
            if limit == 0 {
                continue;
            }
            // A worker not yet reaped cannot have given its pid away; a zombie reads 0.
            let Some(rss) = procfs::rss_bytes(c.pid) else {
                continue;
            };
            let idle = p
                .scoreboard
                .slot(c.slot)
                .is_some_and(|s| s.state() == WorkerState::Idle);
            match memory_check(limit, rss, idle, c.memory_over) {
                MemoryCheck::Fine => c.memory_over = 0,
                MemoryCheck::Wait => c.memory_over = c.memory_over.saturating_add(1),
                MemoryCheck::Recycle => {
                    c.recycling = true;
                    recycle.push((c.pid, p.spec.name.clone(), rss, limit));
                }
            }
        }
        for (pid, name, rss, limit) in recycle {
            let (rss, limit) = memory_figures(rss, limit);
            crate::notice!(
                "[pool {name}] child {pid} exceeded pm.max_memory ({rss} > {limit}), recycling"
            );
            let _ = process::kill(pid, libc::SIGQUIT);
        }
    }
}
