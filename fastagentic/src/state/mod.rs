//! State shared by every replica of a service: rate-limit cells and circuit breakers kept
//! outside the process.
//!
//! By default each [`RateLimiter`](crate::reliability::RateLimiter) keeps its cells in
//! memory, lock-free, so three replicas with `requests_per_minute = 50` let 150 through.
//! Give the [`App`](crate::App) a [`StateStore`] and every replica takes from the same
//! cells instead: `RedisStore` (feature `redis`) keeps them in Redis, where one script
//! per admission checks and takes every limit that applies (global, endpoint, user,
//! tenant) at once.
//!
//! A store speaks GCRA: a cell is one number, its theoretical arrival time (TAT), and the
//! store's own clock decides what "now" is, so replicas with skewed clocks agree.
//!
//! Breakers are shared too: a counted failure on any replica goes into one fleet-wide
//! window, the open state is the fleet's, and half-open probes are leased from the store
//! so at most `half_open_requests` are in flight in the whole fleet. A closed breaker
//! still admits a call without asking anyone: replicas learn of an opening from their own
//! failures' round trips, or from a refresh every [`BREAKER_REFRESH`].

#[cfg(feature = "redis")]
mod redis;

#[cfg(feature = "redis")]
pub use self::redis::{REDIS_URL_ENV, RedisStore, RedisStoreBuilder};

use std::fmt;
use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::reliability::CircuitState;

/// How often an [`App`](crate::App) with a store reads the fleet's state of its breakers:
/// the longest a replica that sees no failure of its own admits calls through a breaker
/// another replica opened.
pub const BREAKER_REFRESH: Duration = Duration::from_millis(200);

/// Where rate-limit cells live when they are shared across processes.
///
/// [`StateStore::take`] must be atomic across all its cells: either every cell takes its
/// units or none does (one Lua script, one transaction). Implementations must never hang:
/// each operation is bounded by the store's own timeout and fails with a [`StoreError`].
pub trait StateStore: Send + Sync + fmt::Debug + 'static {
    /// A short name for metrics and errors (`redis`).
    fn name(&self) -> &'static str;

    /// What a replica does while the store cannot be reached.
    fn fail_mode(&self) -> FailMode;

    /// Takes `units` from every cell of `takes`, all or none, at the store's clock.
    fn take<'a>(&'a self, takes: &'a [CellTake]) -> BoxFuture<'a, Result<TakeOutcome, StoreError>>;

    /// Moves cells unconditionally: refunds of unused reservations (negative units) and
    /// charges for usage above them (positive units).
    fn adjust<'a>(&'a self, adjustments: &'a [CellAdjust])
    -> BoxFuture<'a, Result<(), StoreError>>;

    /// Runs `op` on the fleet-wide breaker `key`, atomically, and says where it stands.
    fn breaker<'a>(
        &'a self,
        key: &'a str,
        op: BreakerOp,
    ) -> BoxFuture<'a, Result<FleetBreaker, StoreError>>;
}

/// An operation on a fleet-wide breaker (see [`StateStore::breaker`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakerOp {
    /// A counted failure while closed: opens at `threshold` failures within `window`,
    /// or at once with `force` (the replica's own failure-rate window tripped).
    Failure {
        /// The failure window.
        window: Duration,
        /// Failures in the window that open the breaker.
        threshold: u32,
        /// Open now, whatever the count.
        force: bool,
        /// A unique id for this failure.
        id: u64,
    },
    /// Asks for a half-open probe: granted while fewer than `max_probes` leases are live.
    Probe {
        /// How long the breaker stays open before probing.
        reset_timeout: Duration,
        /// Probes allowed in flight at once, fleet-wide.
        max_probes: u32,
        /// How long a probe's lease lasts if its replica never reports back.
        lease: Duration,
        /// The lease's id.
        id: u64,
    },
    /// A probe ended.
    ProbeDone {
        /// The half-open period the probe was granted in.
        generation: u64,
        /// The lease's id.
        id: u64,
        /// `Some(true)` a failure, `Some(false)` a success, `None` neither.
        failed: Option<bool>,
        /// Successes that close the breaker.
        success_threshold: u32,
    },
    /// Reads the state, changing nothing.
    Read,
}

/// A fleet-wide breaker after an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FleetBreaker {
    /// Its state.
    pub state: CircuitState,
    /// How long ago it opened (zero when closed).
    pub since_opened: Duration,
    /// Counts every change of state: tells a probe of this half-open period from an
    /// older one.
    pub generation: u64,
    /// Whether a [`BreakerOp::Probe`] was granted.
    pub probe_granted: bool,
    /// How long until a refused probe could be granted.
    pub retry_after: Duration,
}

/// What a replica does while its [`StateStore`] is unreachable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailMode {
    /// Keep serving, each replica enforcing the limits on its own in-memory cells: the
    /// provider is still protected, the fleet-wide total is `replicas ×` the limit.
    #[default]
    Open,
    /// Refuse every request that has a shared limit with 503 `connection_error` until the
    /// store is back: no request goes past a limit nobody can check.
    Closed,
}

/// One cell to take from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CellTake {
    /// The cell's key in the store.
    pub key: String,
    /// Units allowed per window.
    pub limit: u64,
    /// The window (a minute for every limit fastagentic has).
    pub window: Duration,
    /// Units this request takes: 1 for a request limit, its tokens for a token limit.
    pub units: u64,
    /// How long the request may wait for its units (zero in `reject` mode).
    pub max_wait: Duration,
}

/// One cell to move without a check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CellAdjust {
    /// The cell's key in the store.
    pub key: String,
    /// Units allowed per window.
    pub limit: u64,
    /// The window.
    pub window: Duration,
    /// Units to charge (positive) or refund (negative).
    pub units: i64,
}

/// What a [`StateStore::take`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TakeOutcome {
    /// Every cell took its units; one state per cell, in the order of the takes.
    Taken(Vec<CellState>),
    /// Nothing was taken: the cell at `index` would conform only after `wait`.
    Refused {
        /// The index of the refusing cell among the takes.
        index: usize,
        /// How long until it would admit the request.
        wait: Duration,
        /// Units left in that cell now.
        remaining: u64,
    },
}

/// A cell right after a take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CellState {
    /// How long the request must wait for its slot (zero unless a wait was allowed).
    pub wait: Duration,
    /// Units left for the next request.
    pub remaining: u64,
    /// Time until the cell is full again.
    pub reset: Duration,
}

/// A store operation that failed. The request it served is then handled by the store's
/// [`FailMode`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No answer within the store's timeout.
    #[error("the {store} state store did not answer within {} ms", timeout.as_millis())]
    Timeout {
        /// The store's name.
        store: &'static str,
        /// The timeout that passed.
        timeout: Duration,
    },
    /// The store could not be reached or refused the operation.
    #[error("the {store} state store failed: {message}")]
    Unavailable {
        /// The store's name.
        store: &'static str,
        /// What the client said.
        message: String,
    },
    /// The store answered something this version does not understand.
    #[error("the {store} state store answered {answer}; expected a GCRA script's reply")]
    Protocol {
        /// The store's name.
        store: &'static str,
        /// What came back, abridged.
        answer: String,
    },
}
