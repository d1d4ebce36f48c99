//! Circuit breaker: stop calling a dependency that keeps failing, then probe it carefully.
//!
//! The whole state machine lives in one `AtomicU64` (state, generation, half-open probes
//! in flight, probe successes), so every transition is a single compare-and-swap and the
//! closed-state success path is one atomic load. Failures are counted in a fixed-size
//! sliding window of ten buckets, O(1) memory per breaker.

mod fleet;
mod guard;
mod set;

pub(crate) use self::fleet::FleetStore;

pub(crate) use self::guard::BreakerGuard;
pub(crate) use self::set::BreakerSet;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use dashmap::DashMap;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use fastagentic_policy::keys::circuit_breaker::{self as keys, COUNTER_MAX};

use crate::error::{AgentError, ClassSet, ErrorClass, ErrorDetail};
use crate::reliability::PolicyError;
use crate::reliability::window::SlidingWindow;

/// The settings of a circuit breaker (SPEC §3.4).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(
    try_from = "CircuitBreakerPolicyBuilder",
    into = "CircuitBreakerPolicyBuilder"
)]
pub struct CircuitBreakerPolicy {
    settings: CircuitBreakerPolicyBuilder,
}

/// The settings of a [`CircuitBreakerPolicy`] before validation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CircuitBreakerPolicyBuilder {
    failure_threshold: u32,
    #[serde(rename = "failure_window_ms", with = "crate::reliability::millis")]
    failure_window: Duration,
    #[serde(rename = "reset_timeout_ms", with = "crate::reliability::millis")]
    reset_timeout: Duration,
    half_open_requests: u32,
    success_threshold: u32,
    failure_on: ClassSet,
    failure_rate_threshold: Option<f64>,
    minimum_calls: u32,
    #[serde(rename = "slow_call_ms", with = "crate::reliability::millis_opt")]
    slow_call: Option<Duration>,
}

impl Default for CircuitBreakerPolicyBuilder {
    fn default() -> Self {
        CircuitBreakerPolicyBuilder {
            failure_threshold: keys::DEFAULT_FAILURE_THRESHOLD,
            failure_window: Duration::from_millis(keys::DEFAULT_FAILURE_WINDOW_MS),
            reset_timeout: Duration::from_millis(keys::DEFAULT_RESET_TIMEOUT_MS),
            half_open_requests: keys::DEFAULT_HALF_OPEN_REQUESTS,
            success_threshold: keys::DEFAULT_SUCCESS_THRESHOLD,
            failure_on: ErrorClass::DEFAULT_FAILURE_ON,
            failure_rate_threshold: None,
            minimum_calls: keys::DEFAULT_MINIMUM_CALLS,
            slow_call: None,
        }
    }
}

impl CircuitBreakerPolicyBuilder {
    /// Failures inside the window that open the breaker (default 5).
    #[must_use]
    pub fn failure_threshold(mut self, n: u32) -> Self {
        self.failure_threshold = n;
        self
    }

    /// The sliding window failures are counted in (default 60 s).
    #[must_use]
    pub fn failure_window(mut self, window: Duration) -> Self {
        self.failure_window = window;
        self
    }

    /// How long the breaker stays open before probing (default 30 s).
    #[must_use]
    pub fn reset_timeout(mut self, timeout: Duration) -> Self {
        self.reset_timeout = timeout;
        self
    }

    /// Probes allowed at once while half-open (default 2).
    #[must_use]
    pub fn half_open_requests(mut self, n: u32) -> Self {
        self.half_open_requests = n;
        self
    }

    /// Probe successes that close the breaker (default 3).
    #[must_use]
    pub fn success_threshold(mut self, n: u32) -> Self {
        self.success_threshold = n;
        self
    }

    /// Classes that count as failures (default timeout, server_error, overloaded,
    /// connection_error).
    #[must_use]
    pub fn failure_on(mut self, classes: ClassSet) -> Self {
        self.failure_on = classes;
        self
    }

    /// Opens on a failure *rate* instead of a count: once `minimum_calls` calls fall in
    /// the window, the breaker opens when `failures / calls >= rate`.
    #[must_use]
    pub fn failure_rate_threshold(mut self, rate: f64, minimum_calls: u32) -> Self {
        self.failure_rate_threshold = Some(rate);
        self.minimum_calls = minimum_calls;
        self
    }

    /// Counts a success slower than `threshold` as a failure.
    #[must_use]
    pub fn slow_call(mut self, threshold: Duration) -> Self {
        self.slow_call = Some(threshold);
        self
    }

    /// Validates the settings.
    pub fn build(self) -> Result<CircuitBreakerPolicy, PolicyError> {
        keys::FAILURE_THRESHOLD.check(u64::from(self.failure_threshold))?;
        keys::FAILURE_WINDOW.check_duration(self.failure_window)?;
        keys::RESET_TIMEOUT.check_duration(self.reset_timeout)?;
        keys::HALF_OPEN_REQUESTS.check(u64::from(self.half_open_requests))?;
        keys::SUCCESS_THRESHOLD.check(u64::from(self.success_threshold))?;
        if let Some(rate) = self.failure_rate_threshold {
            keys::FAILURE_RATE_THRESHOLD.check(rate)?;
            keys::MINIMUM_CALLS.check(u64::from(self.minimum_calls))?;
        }
        Ok(CircuitBreakerPolicy { settings: self })
    }
}

impl TryFrom<CircuitBreakerPolicyBuilder> for CircuitBreakerPolicy {
    type Error = PolicyError;

    fn try_from(builder: CircuitBreakerPolicyBuilder) -> Result<Self, Self::Error> {
        builder.build()
    }
}

impl From<CircuitBreakerPolicy> for CircuitBreakerPolicyBuilder {
    fn from(policy: CircuitBreakerPolicy) -> Self {
        policy.settings
    }
}

impl CircuitBreakerPolicy {
    /// A builder with the defaults of SPEC §3.4.
    pub fn builder() -> CircuitBreakerPolicyBuilder {
        CircuitBreakerPolicyBuilder::default()
    }

    /// Failures inside the window that open the breaker.
    pub fn failure_threshold(&self) -> u32 {
        self.settings.failure_threshold
    }

    /// The failure-counting window.
    pub fn failure_window(&self) -> Duration {
        self.settings.failure_window
    }

    /// How long the breaker stays open before probing.
    pub fn reset_timeout(&self) -> Duration {
        self.settings.reset_timeout
    }

    /// Probes allowed at once while half-open.
    pub fn half_open_requests(&self) -> u32 {
        self.settings.half_open_requests
    }

    /// Probe successes that close the breaker.
    pub fn success_threshold(&self) -> u32 {
        self.settings.success_threshold
    }

    /// Classes that count as failures.
    pub fn failure_on(&self) -> ClassSet {
        self.settings.failure_on
    }
}

/// The three states of a breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    /// Calls flow; failures are counted.
    Closed,
    /// Calls are refused until the reset timeout has passed.
    Open,
    /// A few probe calls are let through to test the dependency.
    HalfOpen,
}

impl CircuitState {
    /// `"closed"`, `"open"` or `"half_open"`.
    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
        }
    }
}

/// A state change, reported so the pipeline can emit events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    /// The state before.
    pub from: CircuitState,
    /// The state after.
    pub to: CircuitState,
}

/// How a call through the breaker ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallOutcome {
    /// It succeeded, after `elapsed`.
    Success {
        /// How long the call took (for slow-call counting).
        elapsed: Duration,
    },
    /// It failed with this class.
    Failure(ErrorClass),
}

/// The packed state word: `[generation:32][successes:15][in_flight:15][state:2]`.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Word(u64);

impl Word {
    const CLOSED: u64 = 0;
    const OPEN: u64 = 1;
    const HALF_OPEN: u64 = 2;

    fn new(state: u64, generation: u32, in_flight: u32, successes: u32) -> Word {
        Word(
            (u64::from(generation) << 32)
                | (u64::from(successes) << 17)
                | (u64::from(in_flight) << 2)
                | state,
        )
    }

    fn state(self) -> CircuitState {
        match self.0 & 0b11 {
            Word::CLOSED => CircuitState::Closed,
            Word::OPEN => CircuitState::Open,
            _ => CircuitState::HalfOpen,
        }
    }

    fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }

    fn in_flight(self) -> u32 {
        ((self.0 >> 2) as u32) & COUNTER_MAX
    }

    fn successes(self) -> u32 {
        ((self.0 >> 17) as u32) & COUNTER_MAX
    }

    fn next(self, state: u64) -> Word {
        Word::new(state, self.generation().wrapping_add(1), 0, 0)
    }
}

/// A live circuit breaker for one dependency.
pub struct CircuitBreaker {
    name: Arc<str>,
    policy: CircuitBreakerPolicy,
    epoch: Instant,
    word: AtomicU64,
    opened_at: AtomicU64,
    opened_at_wall_ms: AtomicU64,
    /// `a`: calls, `b`: failures.
    window: SlidingWindow,
    /// Failures reported since creation (never reset), for metrics. Bumped on the
    /// failure path only, so a healthy closed breaker pays nothing for it.
    failures_total: AtomicU64,
    /// Times the breaker opened since creation (never reset), for metrics.
    opens_total: AtomicU64,
    /// The fleet this breaker is shared with, if any.
    fleet: Option<fleet::Fleet>,
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.name)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

/// Leave to make one call through a breaker. Record its outcome with
/// [`BreakerPermit::record`]; dropping it unrecorded frees a half-open probe slot.
#[must_use = "record the call's outcome, or the breaker learns nothing"]
pub struct BreakerPermit<'a> {
    breaker: &'a CircuitBreaker,
    probe_generation: Option<u32>,
    transition: Option<Transition>,
    /// A probe leased from the fleet: its half-open period and lease id.
    fleet_probe: Option<(u64, u64)>,
}

impl CircuitBreaker {
    /// A closed breaker named `name` (the dependency it guards).
    pub fn new(name: impl Into<Arc<str>>, policy: CircuitBreakerPolicy) -> Self {
        CircuitBreaker {
            name: name.into(),
            window: SlidingWindow::new(policy.failure_window()),
            policy,
            epoch: Instant::now(),
            word: AtomicU64::new(Word::new(Word::CLOSED, 0, 0, 0).0),
            opened_at: AtomicU64::new(0),
            opened_at_wall_ms: AtomicU64::new(0),
            failures_total: AtomicU64::new(0),
            opens_total: AtomicU64::new(0),
            fleet: None,
        }
    }

    /// The dependency this breaker guards.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The policy.
    pub fn policy(&self) -> &CircuitBreakerPolicy {
        &self.policy
    }

    /// The current state (an open breaker whose reset timeout has passed still reads
    /// open until a call moves it to half-open).
    pub fn state(&self) -> CircuitState {
        Word(self.word.load(Ordering::Acquire)).state()
    }

    /// Asks to make a call now.
    pub fn acquire(&self) -> Result<BreakerPermit<'_>, AgentError> {
        // A closed breaker needs no clock: skip the read on the hot path.
        if Word(self.word.load(Ordering::Acquire)).state() == CircuitState::Closed {
            return Ok(self.permit(None, None));
        }
        self.acquire_at(Instant::now())
    }

    /// Whether calls must report their duration (a slow-call threshold is set).
    pub fn measures_latency(&self) -> bool {
        self.policy.settings.slow_call.is_some()
    }

    /// What an outcome says about the dependency: `Some(true)` a failure, `Some(false)` a
    /// success, `None` nothing (a class outside `failure_on`).
    fn health(&self, outcome: CallOutcome) -> Option<bool> {
        let policy = &self.policy.settings;
        match outcome {
            CallOutcome::Success { elapsed } => {
                Some(policy.slow_call.is_some_and(|t| elapsed >= t))
            }
            CallOutcome::Failure(class) if policy.failure_on.contains(class) => Some(true),
            CallOutcome::Failure(_) => None,
        }
    }

    /// Asks to make a call at `now`. Refusals are `circuit_open` errors with
    /// [`ErrorDetail::CircuitOpen`].
    pub fn acquire_at(&self, now: Instant) -> Result<BreakerPermit<'_>, AgentError> {
        let now = self.nanos(now);
        let mut current = Word(self.word.load(Ordering::Acquire));
        loop {
            let (next, transition) = match current.state() {
                CircuitState::Closed => return Ok(self.permit(None, None)),
                CircuitState::Open => {
                    let ready_at = self
                        .opened_at
                        .load(Ordering::Acquire)
                        .saturating_add(duration_nanos(self.policy.reset_timeout()));
                    if now < ready_at {
                        return Err(self.open_error(Duration::from_nanos(ready_at - now)));
                    }
                    let next =
                        Word::new(Word::HALF_OPEN, current.generation().wrapping_add(1), 1, 0);
                    let transition = Transition {
                        from: CircuitState::Open,
                        to: CircuitState::HalfOpen,
                    };
                    (next, Some(transition))
                }
                CircuitState::HalfOpen => {
                    if current.in_flight() >= self.policy.half_open_requests() {
                        return Err(self.open_error(self.policy.reset_timeout()));
                    }
                    let next = Word::new(
                        Word::HALF_OPEN,
                        current.generation(),
                        current.in_flight() + 1,
                        current.successes(),
                    );
                    (next, None)
                }
            };
            match self.swap(current, next) {
                Ok(()) => return Ok(self.permit(Some(next.generation()), transition)),
                Err(actual) => current = actual,
            }
        }
    }

    fn permit(
        &self,
        probe_generation: Option<u32>,
        transition: Option<Transition>,
    ) -> BreakerPermit<'_> {
        BreakerPermit {
            breaker: self,
            probe_generation,
            transition,
            fleet_probe: None,
        }
    }

    fn swap(&self, current: Word, next: Word) -> Result<(), Word> {
        self.word
            .compare_exchange(current.0, next.0, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
            .map_err(Word)
    }

    fn open_error(&self, retry_after: Duration) -> AgentError {
        let wall_ms = self.opened_at_wall_ms.load(Ordering::Acquire);
        let opened_at = SystemTime::UNIX_EPOCH + Duration::from_millis(wall_ms);
        AgentError::new(
            ErrorClass::CircuitOpen,
            format!(
                "the circuit breaker for `{}` is open; retry in {} ms",
                self.name,
                retry_after.as_millis()
            ),
        )
        .with_model(self.name.clone())
        .with_retry_after(retry_after)
        .with_detail(ErrorDetail::CircuitOpen {
            dependency: self.name.clone(),
            opened_at,
            retry_after,
        })
    }

    fn record_closed(&self, failed: bool, now: u64) -> Option<Transition> {
        let rate = self.policy.settings.failure_rate_threshold;
        if !failed && rate.is_none() {
            return None;
        }
        self.window.add(now, 1, u64::from(failed));
        if !failed {
            return None;
        }
        let sums = self.window.sums(now);
        let trips = match rate {
            None => sums.b >= u64::from(self.policy.failure_threshold()),
            Some(rate) => {
                sums.a >= u64::from(self.policy.settings.minimum_calls)
                    && sums.b as f64 >= rate * sums.a as f64
            }
        };
        if !trips {
            return None;
        }
        let current = Word(self.word.load(Ordering::Acquire));
        if current.state() != CircuitState::Closed {
            return None;
        }
        self.open(current, now).then_some(Transition {
            from: CircuitState::Closed,
            to: CircuitState::Open,
        })
    }

    /// Moves `current` to open; `false` if another thread changed the state first.
    fn open(&self, current: Word, now: u64) -> bool {
        // Written before the swap: nobody reads these unless the state is open, and a
        // racing opener writes the same instant give or take.
        self.opened_at.store(now, Ordering::Release);
        self.opened_at_wall_ms
            .store(wall_clock_ms(), Ordering::Release);
        let opened = self.swap(current, current.next(Word::OPEN)).is_ok();
        if opened {
            // Only the thread that won the swap counts it, so each opening counts once.
            self.opens_total.fetch_add(1, Ordering::Relaxed);
        }
        opened
    }

    fn record_probe(&self, generation: u32, failed: Option<bool>, now: u64) -> Option<Transition> {
        let mut current = Word(self.word.load(Ordering::Acquire));
        loop {
            if current.state() != CircuitState::HalfOpen || current.generation() != generation {
                return None; // A stale probe from an earlier half-open period.
            }
            let (next, transition) = match failed {
                Some(true) => {
                    if self.open(current, now) {
                        let to_open = Transition {
                            from: CircuitState::HalfOpen,
                            to: CircuitState::Open,
                        };
                        return Some(to_open);
                    }
                    current = Word(self.word.load(Ordering::Acquire));
                    continue;
                }
                Some(false) if current.successes() + 1 >= self.policy.success_threshold() => {
                    let closed = Transition {
                        from: CircuitState::HalfOpen,
                        to: CircuitState::Closed,
                    };
                    (current.next(Word::CLOSED), Some(closed))
                }
                Some(false) => (
                    Word::new(
                        Word::HALF_OPEN,
                        generation,
                        current.in_flight().saturating_sub(1),
                        current.successes() + 1,
                    ),
                    None,
                ),
                None => (
                    Word::new(
                        Word::HALF_OPEN,
                        generation,
                        current.in_flight().saturating_sub(1),
                        current.successes(),
                    ),
                    None,
                ),
            };
            match self.swap(current, next) {
                Ok(()) => {
                    if next.state() == CircuitState::Closed {
                        self.window.clear();
                    }
                    return transition;
                }
                Err(actual) => current = actual,
            }
        }
    }

    /// A point-in-time view for metrics and status pages.
    pub fn snapshot(&self) -> BreakerSnapshot {
        let now = Instant::now();
        let nanos = self.nanos(now);
        let sums = self.window.sums(nanos);
        let word = Word(self.word.load(Ordering::Acquire));
        let state = word.state();
        let (opened_at, retry_after) = if state == CircuitState::Open {
            let ready_at = self
                .opened_at
                .load(Ordering::Acquire)
                .saturating_add(duration_nanos(self.policy.reset_timeout()));
            let wall = SystemTime::UNIX_EPOCH
                + Duration::from_millis(self.opened_at_wall_ms.load(Ordering::Acquire));
            (
                Some(wall),
                Some(Duration::from_nanos(ready_at.saturating_sub(nanos))),
            )
        } else {
            (None, None)
        };
        BreakerSnapshot {
            name: self.name.clone(),
            state,
            failures_in_window: sums.b,
            calls_in_window: sums.a,
            probes_in_flight: word.in_flight(),
            opened_at,
            retry_after,
            failures_total: self.failures_total.load(Ordering::Relaxed),
            opens_total: self.opens_total.load(Ordering::Relaxed),
        }
    }

    fn nanos(&self, now: Instant) -> u64 {
        duration_nanos(now.saturating_duration_since(self.epoch))
    }
}

impl fmt::Debug for BreakerPermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerPermit")
            .field("breaker", &self.breaker.name)
            .field("probe", &self.probe_generation.is_some())
            .field("transition", &self.transition)
            .finish()
    }
}

impl BreakerPermit<'_> {
    /// `Some` when taking this permit moved the breaker from open to half-open.
    pub fn transition(&self) -> Option<Transition> {
        self.transition
    }

    /// Whether this call is a half-open probe.
    pub fn is_probe(&self) -> bool {
        self.probe_generation.is_some() || self.fleet_probe.is_some()
    }

    /// Records how the call ended; returns the state change it caused, if any.
    pub fn record(self, outcome: CallOutcome) -> Option<Transition> {
        // A closed-state call that changes no count needs no clock.
        if self.probe_generation.is_none() {
            let counts_calls = self
                .breaker
                .policy
                .settings
                .failure_rate_threshold
                .is_some();
            match self.breaker.health(outcome) {
                None => return None,
                Some(false) if !counts_calls => return None,
                Some(_) => {}
            }
        }
        self.record_at(outcome, Instant::now())
    }

    /// Records how the call ended, at `now`.
    pub fn record_at(mut self, outcome: CallOutcome, now: Instant) -> Option<Transition> {
        let breaker = self.breaker;
        let failed = breaker.health(outcome);
        if failed == Some(true) {
            // The metrics counter: one relaxed add, on the failure path only.
            breaker.failures_total.fetch_add(1, Ordering::Relaxed);
        }
        let now = breaker.nanos(now);
        match self.probe_generation.take() {
            Some(generation) => breaker.record_probe(generation, failed, now),
            None => failed.and_then(|failed| breaker.record_closed(failed, now)),
        }
    }
}

impl Drop for BreakerPermit<'_> {
    fn drop(&mut self) {
        if let Some(generation) = self.probe_generation.take() {
            // Releasing a slot reads no time.
            self.breaker.record_probe(generation, None, 0);
        }
        if let (Some((generation, id)), Some(fleet)) = (self.fleet_probe, &self.breaker.fleet) {
            fleet.release_probe(generation, id, self.breaker.policy.success_threshold());
        }
    }
}

/// A breaker's state at one moment.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct BreakerSnapshot {
    /// The dependency the breaker guards.
    pub name: Arc<str>,
    /// Its state.
    pub state: CircuitState,
    /// Failures counted in the current window.
    pub failures_in_window: u64,
    /// Calls counted in the current window (only tracked with a failure-rate threshold).
    pub calls_in_window: u64,
    /// Half-open probes in flight.
    pub probes_in_flight: u32,
    /// When it opened, if open.
    pub opened_at: Option<SystemTime>,
    /// How long until it admits a probe, if open.
    pub retry_after: Option<Duration>,
    /// Failures reported to the breaker since it was created (classes in `failure_on`
    /// and slow calls), whatever its state; never reset, so it suits a Prometheus counter.
    pub failures_total: u64,
    /// Times the breaker opened since it was created (from closed or from a failed
    /// half-open probe); never reset.
    pub opens_total: u64,
}

/// Every breaker of a process, keyed by endpoint and dependency.
#[derive(Debug, Default)]
pub struct BreakerRegistry {
    breakers: DashMap<BreakerKey, Arc<CircuitBreaker>, foldhash::fast::RandomState>,
    /// Set once, before any breaker is made, when the app shares its breakers.
    fleet: std::sync::OnceLock<FleetStore>,
}

/// Identifies a breaker: the endpoint it belongs to and the dependency it guards.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct BreakerKey {
    /// The endpoint (its path).
    pub endpoint: Arc<str>,
    /// The dependency (a model or provider name).
    pub dependency: Arc<str>,
}

impl BreakerRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        BreakerRegistry::default()
    }

    /// The breaker for `key`, created with `policy` if it does not exist yet.
    pub fn get_or_create(
        &self,
        key: BreakerKey,
        policy: impl FnOnce() -> CircuitBreakerPolicy,
    ) -> Arc<CircuitBreaker> {
        if let Some(existing) = self.breakers.get(&key) {
            return existing.clone();
        }
        let dependency = key.dependency.clone();
        let fleet = self
            .fleet
            .get()
            .map(|fleet| fleet.link(&key.endpoint, &key.dependency));
        self.breakers
            .entry(key)
            .or_insert_with(|| {
                let breaker = CircuitBreaker::new(dependency, policy());
                Arc::new(match fleet {
                    Some(fleet) => breaker.with_fleet(fleet),
                    None => breaker,
                })
            })
            .clone()
    }

    /// The breaker for `key`, if it exists.
    pub fn get(&self, key: &BreakerKey) -> Option<Arc<CircuitBreaker>> {
        self.breakers.get(key).map(|b| b.clone())
    }

    /// Every breaker's state, sorted by key.
    pub fn snapshot(&self) -> Vec<(BreakerKey, BreakerSnapshot)> {
        let mut all: Vec<_> = self
            .breakers
            .iter()
            .map(|entry| (entry.key().clone(), entry.value().snapshot()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn wall_clock_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAIL: CallOutcome = CallOutcome::Failure(ErrorClass::ServerError);
    const OK: CallOutcome = CallOutcome::Success {
        elapsed: Duration::ZERO,
    };

    fn breaker() -> CircuitBreaker {
        CircuitBreaker::new("gpt-4o", CircuitBreakerPolicy::default())
    }

    fn fail(b: &CircuitBreaker) -> Option<Transition> {
        b.acquire().unwrap().record(FAIL)
    }

    #[tokio::test(start_paused = true)]
    async fn opens_on_the_fifth_failure_inside_the_window() {
        let b = breaker();
        for _ in 0..4 {
            assert_eq!(fail(&b), None);
            tokio::time::advance(Duration::from_secs(5)).await;
        }
        assert_eq!(
            fail(&b),
            Some(Transition {
                from: CircuitState::Closed,
                to: CircuitState::Open
            })
        );
        let err = b.acquire().err().unwrap();
        assert_eq!(err.class(), ErrorClass::CircuitOpen);
        match err.detail() {
            Some(ErrorDetail::CircuitOpen { retry_after, .. }) => {
                assert_eq!(*retry_after, Duration::from_secs(30));
            }
            other => panic!("unexpected detail {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn five_failures_over_two_windows_do_not_open() {
        let b = breaker();
        for _ in 0..3 {
            fail(&b);
        }
        tokio::time::advance(Duration::from_secs(61)).await;
        for _ in 0..2 {
            assert_eq!(fail(&b), None);
        }
        assert_eq!(b.state(), CircuitState::Closed);
        assert_eq!(b.snapshot().failures_in_window, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_400_never_opens_the_breaker() {
        let b = breaker();
        for _ in 0..100 {
            let permit = b.acquire().unwrap();
            assert_eq!(
                permit.record(CallOutcome::Failure(ErrorClass::InvalidInput)),
                None
            );
        }
        assert_eq!(b.state(), CircuitState::Closed);
        assert_eq!(b.snapshot().failures_in_window, 0);
    }

    async fn opened(b: &CircuitBreaker) {
        for _ in 0..5 {
            fail(b);
        }
        assert_eq!(b.state(), CircuitState::Open);
        tokio::time::advance(Duration::from_secs(30)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn half_open_admits_exactly_n_concurrent_probes() {
        let b = breaker();
        opened(&b).await;
        let first = b.acquire().unwrap();
        assert_eq!(
            first.transition(),
            Some(Transition {
                from: CircuitState::Open,
                to: CircuitState::HalfOpen
            })
        );
        let second = b.acquire().unwrap();
        assert!(first.is_probe() && second.is_probe());
        assert_eq!(b.acquire().err().unwrap().class(), ErrorClass::CircuitOpen);
        // A probe that finishes frees its slot for another.
        assert_eq!(first.record(OK), None);
        let third = b.acquire().unwrap();
        assert_eq!(b.acquire().err().unwrap().class(), ErrorClass::CircuitOpen);
        // A dropped (cancelled) probe frees its slot too.
        drop(third);
        let fourth = b.acquire().unwrap();
        assert_eq!(second.record(OK), None);
        assert_eq!(
            fourth.record(OK),
            Some(Transition {
                from: CircuitState::HalfOpen,
                to: CircuitState::Closed
            })
        );
        assert_eq!(b.state(), CircuitState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn lifetime_counters_count_failures_and_openings() {
        let b = breaker();
        b.acquire().unwrap().record(OK);
        b.acquire()
            .unwrap()
            .record(CallOutcome::Failure(ErrorClass::InvalidInput));
        opened(&b).await; // five failures, one opening
        let probe = b.acquire().unwrap();
        assert!(probe.record(FAIL).is_some(), "the failed probe reopens");
        let snap = b.snapshot();
        assert_eq!((snap.failures_total, snap.opens_total), (6, 2));
        // Refusals while open are neither failures nor openings.
        assert!(b.acquire().is_err());
        assert_eq!(b.snapshot().failures_total, 6);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_reopens() {
        let b = breaker();
        opened(&b).await;
        let probe = b.acquire().unwrap();
        assert_eq!(
            probe.record(FAIL),
            Some(Transition {
                from: CircuitState::HalfOpen,
                to: CircuitState::Open
            })
        );
        assert_eq!(b.acquire().err().unwrap().class(), ErrorClass::CircuitOpen);
    }

    /// Opens when half of at least ten calls in the window failed.
    fn rate_breaker() -> CircuitBreaker {
        let policy = CircuitBreakerPolicy::builder()
            .failure_rate_threshold(0.5, 10)
            .build()
            .unwrap();
        CircuitBreaker::new("m", policy)
    }

    #[tokio::test(start_paused = true)]
    async fn failure_rate_needs_minimum_calls() {
        let b = rate_breaker();
        for _ in 0..9 {
            fail(&b);
        }
        assert_eq!(
            b.state(),
            CircuitState::Closed,
            "9 calls are below the minimum"
        );
        assert!(fail(&b).is_some());
        let b = rate_breaker();
        for i in 0..20 {
            let p = b.acquire().unwrap();
            p.record(if i % 3 == 0 { FAIL } else { OK });
        }
        assert_eq!(
            b.state(),
            CircuitState::Closed,
            "a third failing is below 50 %"
        );
        // Half of ten calls failing reaches 50 %: successes are counted, and it opens.
        let b = rate_breaker();
        for i in 0..10 {
            let p = b.acquire().unwrap();
            p.record(if i % 2 == 1 { FAIL } else { OK });
        }
        assert_eq!(b.state(), CircuitState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn slow_calls_count_as_failures() {
        let policy = CircuitBreakerPolicy::builder()
            .failure_threshold(2)
            .slow_call(Duration::from_secs(10))
            .build()
            .unwrap();
        let b = CircuitBreaker::new("m", policy);
        let slow = CallOutcome::Success {
            elapsed: Duration::from_secs(11),
        };
        assert_eq!(b.acquire().unwrap().record(slow), None);
        assert!(b.acquire().unwrap().record(slow).is_some());
    }

    #[test]
    fn construction_errors() {
        let err = CircuitBreakerPolicy::builder()
            .half_open_requests(0)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("half_open_requests"), "{err}");
        let err = CircuitBreakerPolicy::builder()
            .failure_window(Duration::ZERO)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("failure_window_ms"), "{err}");
        let err = serde_json::from_str::<CircuitBreakerPolicy>(r#"{"half_open_requests": 0}"#)
            .unwrap_err();
        assert!(err.to_string().contains("half_open_requests"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn registry_keys_by_endpoint_and_dependency() {
        let registry = BreakerRegistry::new();
        let key = |e: &str, d: &str| BreakerKey {
            endpoint: e.into(),
            dependency: d.into(),
        };
        let a = registry.get_or_create(key("/a", "gpt-4o"), CircuitBreakerPolicy::default);
        let again = registry.get_or_create(key("/a", "gpt-4o"), CircuitBreakerPolicy::default);
        assert!(Arc::ptr_eq(&a, &again));
        registry.get_or_create(key("/b", "gpt-4o"), CircuitBreakerPolicy::default);
        for _ in 0..5 {
            fail(&a);
        }
        let snap = registry.snapshot();
        assert_eq!(snap.len(), 2);
        assert_eq!(snap[0].1.state, CircuitState::Open);
        assert_eq!(snap[1].1.state, CircuitState::Closed);
    }
}
