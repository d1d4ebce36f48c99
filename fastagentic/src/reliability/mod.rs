//! The five reliability patterns and the pipeline that composes them.
//!
//! Each pattern is a plain value with a builder that validates at construction and a
//! `serde` form; the [`Pipeline`] runs them in SPEC order: rate limit → total timeout →
//! for each model of the fallback chain, a retry loop of breaker → execute.

pub mod circuit_breaker;
pub mod events;
pub(crate) mod execute;
pub mod fallback;
pub mod pipeline;
pub mod rate_limit;
pub mod retry;
pub(crate) mod run;
pub mod timeout;
mod window;

pub use self::circuit_breaker::{
    BreakerKey, BreakerRegistry, BreakerSnapshot, CircuitBreaker, CircuitBreakerPolicy,
    CircuitState,
};
pub use self::events::{EventData, EventKind, EventSink, PipelineEvent, Steering};
pub use self::fallback::{FallbackChain, FallbackStep, StrategyFallback};
pub use self::pipeline::{Pipeline, PipelineBuilder, RequestInfo};
pub use self::rate_limit::{
    LimitScope, LimitType, OnLimit, RateLimitPolicy, RateLimitSnapshot, RateLimiter,
};
pub use self::retry::{
    Backoff, RandomSource, RetryBudget, RetryBudgetPolicy, RetryDecision, RetryPolicy, StopReason,
};
pub use self::timeout::{OnTimeout, Stage, TimeoutPolicy};

pub use fastagentic_policy::keys::Problem;

/// A policy that cannot work as configured. The message names the field and the fix.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A setting outside its allowed values, or settings that contradict each other: the
    /// message names the key, what is wrong and why.
    #[error(transparent)]
    Setting(#[from] Problem),
    /// Settings that contradict each other.
    #[error("{0}")]
    Inconsistent(String),
    /// A feature that exists in the configuration language but not yet in the runtime.
    #[error("{0}")]
    Unsupported(&'static str),
}

/// Serializes a `Duration` as whole milliseconds.
mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// Serializes an optional `Duration` as whole milliseconds or null.
mod millis_opt {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        Option::<u64>::deserialize(d).map(|ms| ms.map(Duration::from_millis))
    }
}
