//! A retry budget: retries are limited to a fraction of recent requests, so a failing
//! dependency sees at most `1 + ratio` times its normal load instead of `max_attempts`
//! times (the Finagle / tower `TpsBudget` idea).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use fastagentic_policy::keys::retry as keys;

use crate::reliability::PolicyError;
use crate::reliability::window::SlidingWindow;

/// Settings of a [`RetryBudget`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryBudgetPolicy {
    /// How long a request or retry is remembered (default 10 s).
    #[serde(rename = "ttl_ms", with = "crate::reliability::millis")]
    pub ttl: Duration,
    /// Retries per second always allowed, however few requests there were (default 10).
    pub min_retries_per_sec: u32,
    /// Extra retries allowed per request seen (default 0.2: one retry per five requests).
    pub retry_ratio: f64,
}

impl Default for RetryBudgetPolicy {
    fn default() -> Self {
        RetryBudgetPolicy {
            ttl: Duration::from_millis(keys::DEFAULT_BUDGET_TTL_MS),
            min_retries_per_sec: keys::DEFAULT_BUDGET_MIN_RETRIES_PER_SEC,
            retry_ratio: keys::DEFAULT_BUDGET_RETRY_RATIO,
        }
    }
}

impl RetryBudgetPolicy {
    pub(crate) fn validate(&self) -> Result<(), PolicyError> {
        keys::BUDGET_TTL.check_duration(self.ttl)?;
        keys::BUDGET_RETRY_RATIO.check(self.retry_ratio)?;
        Ok(())
    }
}

/// The live budget: deposits (requests) and withdrawals (retries) over a sliding window.
#[derive(Debug)]
pub struct RetryBudget {
    policy: RetryBudgetPolicy,
    epoch: Instant,
    /// `a`: requests deposited, `b`: retries withdrawn.
    window: SlidingWindow,
}

impl RetryBudget {
    /// A fresh budget.
    pub fn new(policy: RetryBudgetPolicy) -> Self {
        RetryBudget {
            policy,
            epoch: Instant::now(),
            window: SlidingWindow::new(policy.ttl),
        }
    }

    /// Records one request.
    pub fn deposit(&self) {
        self.deposit_at(Instant::now());
    }

    /// Records one request made at `now`.
    pub fn deposit_at(&self, now: Instant) {
        self.window.add(self.nanos(now), 1, 0);
    }

    /// Takes one retry from the budget; `false` when it is spent.
    pub fn withdraw(&self) -> bool {
        let now = self.nanos(Instant::now());
        let floor = f64::from(self.policy.min_retries_per_sec) * self.policy.ttl.as_secs_f64();
        let ratio = self.policy.retry_ratio;
        self.window.add_if(now, 0, 1, |sums| {
            (sums.b as f64) < floor + ratio * sums.a as f64
        })
    }

    fn nanos(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn retries_are_a_fraction_of_requests() {
        let budget = RetryBudget::new(RetryBudgetPolicy {
            ttl: Duration::from_secs(10),
            min_retries_per_sec: 0,
            retry_ratio: 0.2,
        });
        for _ in 0..50 {
            budget.deposit();
        }
        let granted = (0..100).filter(|_| budget.withdraw()).count();
        assert_eq!(granted, 10);
        // Once the window has passed, the old requests no longer pay for retries.
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(!budget.withdraw());
    }

    #[tokio::test(start_paused = true)]
    async fn the_floor_allows_retries_at_low_volume() {
        let budget = RetryBudget::new(RetryBudgetPolicy {
            ttl: Duration::from_secs(10),
            min_retries_per_sec: 1,
            retry_ratio: 0.0,
        });
        let granted = (0..100).filter(|_| budget.withdraw()).count();
        assert_eq!(granted, 10);
    }
}
