//! Breakers shared by every replica through a [`StateStore`]: the open state and the
//! failure window are the fleet's, half-open probes are leased from the store.
//!
//! A closed breaker still admits calls without a round trip. The store is asked only on
//! the paths that are slow already: a counted failure (the call it follows took a
//! provider round trip), a probe, and a refresh of every breaker every
//! [`BREAKER_REFRESH`], which is how a replica that sees no failure learns of an opening.
//! When the store fails, the breaker decides alone, as if it were not shared.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::Instant;

use super::{
    BreakerPermit, BreakerRegistry, CallOutcome, CircuitBreaker, CircuitState, Transition, Word,
    duration_nanos, wall_clock_ms,
};
use crate::error::AgentError;
use crate::metrics::Metrics;
use crate::state::{BREAKER_REFRESH, BreakerOp, FleetBreaker, StateStore, StoreError};

/// A breaker's link to the store.
#[derive(Debug)]
pub(crate) struct Fleet {
    store: Arc<dyn StateStore>,
    key: String,
    metrics: Arc<Metrics>,
}

/// What every breaker of a registry is shared through.
#[derive(Debug, Clone)]
pub(crate) struct FleetStore {
    store: Arc<dyn StateStore>,
    metrics: Arc<Metrics>,
}

impl FleetStore {
    pub(crate) fn new(store: Arc<dyn StateStore>, metrics: Arc<Metrics>) -> Self {
        FleetStore { store, metrics }
    }

    /// The link of the breaker that guards `dependency` for `endpoint`.
    pub(super) fn link(&self, endpoint: &str, dependency: &str) -> Fleet {
        Fleet {
            store: self.store.clone(),
            key: format!("cb:{endpoint}:{dependency}"),
            metrics: self.metrics.clone(),
        }
    }
}

impl BreakerRegistry {
    /// A registry whose breakers are shared through `store` with every process using it
    /// (see [`state`](crate::state)); store errors are counted in
    /// [`metrics::global`](crate::metrics::global). Call it inside a tokio runtime: the
    /// refresh runs there.
    pub fn shared(store: Arc<dyn StateStore>) -> Arc<BreakerRegistry> {
        let registry = Arc::new(BreakerRegistry::new());
        registry.share(FleetStore::new(store, crate::metrics::global().clone()));
        registry
    }

    /// Shares every breaker this registry makes from now on through `store`, and keeps
    /// them in step with the fleet every [`BREAKER_REFRESH`] while the registry lives.
    pub(crate) fn share(self: &Arc<Self>, store: FleetStore) {
        if self.fleet.set(store).is_err() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("no tokio runtime: shared breakers will not be refreshed");
            return;
        };
        runtime.spawn(refresh(Arc::downgrade(self)));
    }
}

/// Reads the fleet's state of every breaker of `registry` until it is dropped.
async fn refresh(registry: Weak<BreakerRegistry>) {
    let mut ticks = tokio::time::interval(BREAKER_REFRESH);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(registry) = registry.upgrade() else {
            return;
        };
        let breakers: Vec<Arc<CircuitBreaker>> = registry
            .breakers
            .iter()
            .map(|entry| entry.value().clone())
            .collect();
        drop(registry);
        for breaker in breakers {
            breaker.refresh().await;
        }
    }
}

impl CircuitBreaker {
    /// This breaker, shared through `fleet`.
    pub(super) fn with_fleet(mut self, fleet: Fleet) -> Self {
        self.fleet = Some(fleet);
        self
    }

    /// Whether the fleet shares this breaker.
    pub(crate) fn is_shared(&self) -> bool {
        self.fleet.is_some()
    }

    /// [`CircuitBreaker::acquire`] for a shared breaker: closed, no round trip; open
    /// before its reset timeout, refused locally; otherwise a probe leased from the fleet.
    pub(crate) async fn acquire_fleet(&self) -> Result<BreakerPermit<'_>, AgentError> {
        let Some(fleet) = &self.fleet else {
            return self.acquire();
        };
        let current = Word(self.word.load(Ordering::Acquire));
        match current.state() {
            CircuitState::Closed => return Ok(self.permit(None, None)),
            CircuitState::Open => {
                let now = self.nanos(Instant::now());
                let ready_at = (self.opened_at.load(Ordering::Acquire))
                    .saturating_add(duration_nanos(self.policy.reset_timeout()));
                if now < ready_at {
                    return Err(self.open_error(Duration::from_nanos(ready_at - now)));
                }
            }
            CircuitState::HalfOpen => {}
        }
        let id = fastrand::u64(..);
        let op = BreakerOp::Probe {
            reset_timeout: self.policy.reset_timeout(),
            max_probes: self.policy.half_open_requests(),
            // A replica that dies mid-probe frees its slot after this long.
            lease: self.policy.reset_timeout().max(Duration::from_secs(1)),
            id,
        };
        let answer = match fleet.store.breaker(&fleet.key, op).await {
            Ok(answer) => answer,
            Err(err) => {
                fleet.failed("breaker_probe", &err);
                return self.acquire_at(Instant::now());
            }
        };
        if answer.probe_granted {
            let mut permit = self.permit(None, self.enter_half_open());
            permit.fleet_probe = Some((answer.generation, id));
            return Ok(permit);
        }
        match answer.state {
            CircuitState::Closed => Ok(self.permit(None, self.follow(&answer))),
            _ => {
                self.follow(&answer);
                Err(self.open_error(answer.retry_after))
            }
        }
    }

    /// Records a shared breaker's call: a probe's end goes to the fleet; a counted
    /// failure goes into the fleet's window, and may open the breaker for everyone.
    pub(crate) async fn record_fleet(
        &self,
        mut permit: BreakerPermit<'_>,
        outcome: CallOutcome,
    ) -> Option<Transition> {
        let Some(fleet) = &self.fleet else {
            return permit.record(outcome);
        };
        let failed = self.health(outcome);
        if let Some((generation, id)) = permit.fleet_probe.take() {
            if failed == Some(true) {
                self.failures_total.fetch_add(1, Ordering::Relaxed);
            }
            let op = BreakerOp::ProbeDone {
                generation,
                id,
                failed,
                success_threshold: self.policy.success_threshold(),
            };
            return match fleet.store.breaker(&fleet.key, op).await {
                Ok(answer) => self.follow(&answer),
                Err(err) => {
                    // The lease expires by itself; until then the fleet stays half-open.
                    fleet.failed("breaker_probe", &err);
                    None
                }
            };
        }
        let local = permit.record(outcome);
        if failed != Some(true) {
            return local;
        }
        let opened_here = local.is_some_and(|t| t.to == CircuitState::Open);
        let op = BreakerOp::Failure {
            window: self.policy.failure_window(),
            // A failure-rate breaker decides on its own window (successes are not sent
            // to the fleet); its opening is the fleet's.
            threshold: match self.policy.settings.failure_rate_threshold {
                Some(_) => u32::MAX,
                None => self.policy.failure_threshold(),
            },
            force: opened_here,
            id: fastrand::u64(..),
        };
        match fleet.store.breaker(&fleet.key, op).await {
            Ok(answer) => local.or(self.follow(&answer)),
            Err(err) => {
                fleet.failed("breaker_failure", &err);
                local
            }
        }
    }

    /// Brings this breaker in step with the fleet (the periodic refresh).
    pub(crate) async fn refresh(&self) {
        let Some(fleet) = &self.fleet else { return };
        match fleet.store.breaker(&fleet.key, BreakerOp::Read).await {
            Ok(answer) => {
                self.follow(&answer);
            }
            Err(err) => fleet.failed("breaker_read", &err),
        }
    }

    /// Takes the fleet's state: open (since when) or closed; half-open stays as it is
    /// here, since probes are leased from the fleet anyway.
    fn follow(&self, fleet: &FleetBreaker) -> Option<Transition> {
        match fleet.state {
            CircuitState::Open => self.force_open(fleet.since_opened),
            CircuitState::Closed => self.force_state(Word::CLOSED),
            CircuitState::HalfOpen => None,
        }
    }

    /// Opens this breaker as of `since_opened` ago, or moves its opening to that instant.
    fn force_open(&self, since_opened: Duration) -> Option<Transition> {
        let opened_at = self
            .nanos(Instant::now())
            .saturating_sub(duration_nanos(since_opened));
        let wall_ms = wall_clock_ms().saturating_sub(duration_millis(since_opened));
        self.opened_at.store(opened_at, Ordering::Release);
        self.opened_at_wall_ms.store(wall_ms, Ordering::Release);
        let transition = self.force_state(Word::OPEN);
        if transition.is_some() {
            self.opens_total.fetch_add(1, Ordering::Relaxed);
        }
        transition
    }

    /// Moves from open to half-open for a probe the fleet granted.
    fn enter_half_open(&self) -> Option<Transition> {
        self.force_state(Word::HALF_OPEN)
    }

    /// Moves to `state` unless already there; the transition, if any.
    fn force_state(&self, state: u64) -> Option<Transition> {
        let mut current = Word(self.word.load(Ordering::Acquire));
        loop {
            if current.0 & 0b11 == state {
                return None;
            }
            let next = current.next(state);
            match self.swap(current, next) {
                Ok(()) => {
                    if state == Word::CLOSED {
                        self.window.clear();
                    }
                    return Some(Transition {
                        from: current.state(),
                        to: next.state(),
                    });
                }
                Err(actual) => current = actual,
            }
        }
    }
}

impl Fleet {
    fn failed(&self, operation: &'static str, err: &StoreError) {
        self.metrics.state_store_error(&*self.store, operation, err);
    }

    /// Gives back a probe lease whose call never reported (the permit was dropped).
    pub(super) fn release_probe(&self, generation: u64, id: u64, success_threshold: u32) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (store, key, metrics) = (self.store.clone(), self.key.clone(), self.metrics.clone());
        runtime.spawn(async move {
            let op = BreakerOp::ProbeDone {
                generation,
                id,
                failed: None,
                success_threshold,
            };
            if let Err(err) = store.breaker(&key, op).await {
                metrics.state_store_error(&*store, "breaker_probe", &err);
            }
        });
    }
}

fn duration_millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
