//! Where limit cells live: one cell for an unkeyed limit, a sharded map for keyed ones.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;

use super::gcra::Cell;

/// The cells of one limit.
#[derive(Debug)]
pub(crate) enum Cells {
    /// Global or per-endpoint: one cell for everyone.
    Single(Cell),
    /// Per user or per tenant: one cell per identity.
    Keyed(KeyedCells),
}

/// Cells keyed by identity, in a sharded map so there is no global lock, with idle cells
/// swept out so a million one-off users do not stay in memory.
#[derive(Debug)]
pub(crate) struct KeyedCells {
    map: DashMap<Arc<str>, Cell, foldhash::fast::RandomState>,
    sweep_every: u64,
    last_sweep: AtomicU64,
}

impl KeyedCells {
    /// A map that sweeps idle cells at most once per `sweep_every` nanoseconds.
    pub(crate) fn new(sweep_every: u64) -> Self {
        KeyedCells {
            map: DashMap::default(),
            sweep_every,
            last_sweep: AtomicU64::new(0),
        }
    }

    /// Runs `f` on the cell for `key`, creating it (and maybe sweeping) when missing.
    pub(crate) fn with<R>(&self, key: &Arc<str>, now: u64, f: impl FnOnce(&Cell) -> R) -> R {
        if let Some(cell) = self.map.get(&**key) {
            return f(&cell);
        }
        self.maybe_sweep(now);
        let cell = self.map.entry(key.clone()).or_default();
        f(&cell)
    }

    /// Runs `f` on the cell for `key` if it exists.
    pub(crate) fn get<R>(&self, key: &str, f: impl FnOnce(&Cell) -> R) -> Option<R> {
        self.map.get(key).map(|cell| f(&cell))
    }

    /// Drops every cell that is full at `now`: a full cell is the same as no cell.
    pub(crate) fn sweep(&self, now: u64) {
        self.map.retain(|_, cell| !cell.is_idle(now));
    }

    fn maybe_sweep(&self, now: u64) {
        let last = self.last_sweep.load(Ordering::Relaxed);
        if now.saturating_sub(last) < self.sweep_every {
            return;
        }
        if self
            .last_sweep
            .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            self.sweep(now);
        }
    }

    /// Live cells.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}
