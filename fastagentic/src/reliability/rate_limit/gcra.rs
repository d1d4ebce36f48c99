//! The generic cell rate algorithm on one `AtomicU64`.
//!
//! A cell stores its theoretical arrival time (TAT) in nanoseconds since the limiter's
//! epoch. Taking `n` units moves the TAT `n × interval` forward from `max(TAT, now)`; the
//! take conforms when the new TAT is at most `now + limit × interval`, so a fresh cell
//! admits exactly `limit` units at once and then one unit per interval. Unlike a token
//! bucket with a refill task there is nothing to tick, and unlike `governor` a cell can
//! be refunded, which token reservations need.

use std::sync::atomic::{AtomicU64, Ordering};

/// The rate of one limit: `limit` units per window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rate {
    limit: u64,
    interval: u64,
    tolerance: u64,
}

/// The outcome of a take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Take {
    /// Taken; the caller may go after `wait` nanoseconds (zero unless a wait was allowed).
    /// `tat` is the cell's arrival time right after this take, so what is left *for this
    /// caller* can be told without a second read another caller could race.
    Taken { wait: u64, tat: u64 },
    /// Refused; it would conform after `wait` nanoseconds.
    Refused { wait: u64 },
    /// More units than the limit: it can never conform.
    TooLarge,
}

impl Rate {
    /// `limit` units per `window_nanos`; `limit` must be non-zero.
    pub(crate) fn new(limit: u64, window_nanos: u64) -> Rate {
        // Rounded up, so a limit is never exceeded (large limits may fall short of it by
        // less than one unit per interval instead).
        let interval = window_nanos.div_ceil(limit.max(1)).max(1);
        Rate {
            limit,
            interval,
            tolerance: interval.saturating_mul(limit),
        }
    }

    pub(crate) fn limit(self) -> u64 {
        self.limit
    }

    /// Units a cell whose arrival time is `tat` still admits at `now`.
    pub(crate) fn remaining(self, tat: u64, now: u64) -> u64 {
        now.saturating_add(self.tolerance)
            .saturating_sub(tat.max(now))
            / self.interval
    }
}

/// One GCRA cell.
#[derive(Debug, Default)]
pub(crate) struct Cell {
    tat: AtomicU64,
}

impl Cell {
    /// Takes `units` at `now`, allowing a wait of up to `max_wait` nanoseconds (the wait
    /// reserves a slot in the future, so waiters are served in arrival order).
    pub(crate) fn take(&self, rate: Rate, now: u64, units: u64, max_wait: u64) -> Take {
        if units > rate.limit {
            return Take::TooLarge;
        }
        let cost = units.saturating_mul(rate.interval);
        let mut tat = self.tat.load(Ordering::Acquire);
        loop {
            let next = tat.max(now).saturating_add(cost);
            let wait = next.saturating_sub(now.saturating_add(rate.tolerance));
            if wait > max_wait {
                return Take::Refused { wait };
            }
            match self
                .tat
                .compare_exchange_weak(tat, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Take::Taken { wait, tat: next },
                Err(actual) => tat = actual,
            }
        }
    }

    /// Charges `units` unconditionally (for usage above a reservation). The debt is capped
    /// at one window beyond an exhausted cell, so one outsized report cannot lock a limit
    /// for longer than that.
    pub(crate) fn charge(&self, rate: Rate, now: u64, units: u64) {
        let cost = units.saturating_mul(rate.interval);
        let cap = now.saturating_add(rate.tolerance.saturating_mul(2));
        self.update(|tat| tat.max(now).saturating_add(cost).min(cap));
    }

    /// Gives back `units` (a reservation that was not used), never below a full cell.
    pub(crate) fn refund(&self, rate: Rate, now: u64, units: u64) {
        let cost = units.saturating_mul(rate.interval);
        self.update(|tat| {
            if tat <= now {
                tat
            } else {
                tat.saturating_sub(cost).max(now)
            }
        });
    }

    fn update(&self, f: impl Fn(u64) -> u64) {
        let mut tat = self.tat.load(Ordering::Acquire);
        loop {
            match self
                .tat
                .compare_exchange_weak(tat, f(tat), Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                Err(actual) => tat = actual,
            }
        }
    }

    /// Units still available at `now`.
    pub(crate) fn remaining(&self, rate: Rate, now: u64) -> u64 {
        rate.remaining(self.tat.load(Ordering::Acquire), now)
    }

    /// Nanoseconds until the cell is full again.
    pub(crate) fn reset_in(&self, now: u64) -> u64 {
        self.tat.load(Ordering::Acquire).saturating_sub(now)
    }

    /// Whether the cell is full at `now`, i.e. indistinguishable from a fresh one.
    pub(crate) fn is_idle(&self, now: u64) -> bool {
        self.tat.load(Ordering::Acquire) <= now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wait of a take that was admitted, `None` otherwise.
    fn waited(take: Take) -> Option<u64> {
        match take {
            Take::Taken { wait, .. } => Some(wait),
            _ => None,
        }
    }

    const MIN: u64 = 60_000_000_000;

    #[test]
    fn a_fresh_cell_admits_the_limit_then_one_per_interval() {
        let rate = Rate::new(50, MIN);
        let cell = Cell::default();
        let admitted = (0..80)
            .filter(|_| matches!(cell.take(rate, 0, 1, 0), Take::Taken { .. }))
            .count();
        assert_eq!(admitted, 50);
        assert_eq!(
            cell.take(rate, 0, 1, 0),
            Take::Refused {
                wait: 1_200_000_000
            }
        );
        assert_eq!(waited(cell.take(rate, 1_200_000_000, 1, 0)), Some(0));
        assert_eq!(cell.remaining(rate, 1_200_000_000), 0);
        assert_eq!(cell.remaining(rate, MIN + 1_200_000_000), 50);
    }

    #[test]
    fn refunds_give_back_unused_units() {
        let rate = Rate::new(1000, MIN);
        let cell = Cell::default();
        assert_eq!(waited(cell.take(rate, 0, 800, 0)), Some(0));
        assert_eq!(cell.remaining(rate, 0), 200);
        cell.refund(rate, 0, 500);
        assert_eq!(cell.remaining(rate, 0), 700);
        cell.refund(rate, 0, 5000);
        assert_eq!(cell.remaining(rate, 0), 1000);
        cell.charge(rate, 0, 1200);
        assert_eq!(cell.remaining(rate, 0), 0);
        cell.charge(rate, 0, u64::MAX);
        assert_eq!(
            cell.reset_in(0),
            2 * MIN,
            "debt is capped at one more window"
        );
        assert_eq!(cell.take(rate, 0, 1001, 0), Take::TooLarge);
    }

    #[test]
    fn waits_reserve_slots_in_order() {
        let rate = Rate::new(2, 2_000);
        let cell = Cell::default();
        assert_eq!(waited(cell.take(rate, 0, 1, u64::MAX)), Some(0));
        assert_eq!(waited(cell.take(rate, 0, 1, u64::MAX)), Some(0));
        assert_eq!(waited(cell.take(rate, 0, 1, u64::MAX)), Some(1000));
        assert_eq!(waited(cell.take(rate, 0, 1, u64::MAX)), Some(2000));
        assert_eq!(cell.take(rate, 0, 1, 2500), Take::Refused { wait: 3000 });
    }
}
