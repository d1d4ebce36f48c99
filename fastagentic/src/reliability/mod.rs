//! The five reliability patterns and the pipeline that composes them.
//!
//! Each pattern is a plain value with a builder that validates at construction and a
//! `serde` form; the [`Pipeline`] runs them in SPEC order: rate limit → total timeout →
//! for each model of the fallback chain, a retry loop of breaker → execute.

// The patterns' modules are private: every public type has one path, flat at
// `reliability::`, so a type's home can move without breaking anyone.
pub(crate) mod circuit_breaker;
pub(crate) mod events;
pub(crate) mod execute;
pub(crate) mod fallback;
pub(crate) mod pipeline;
pub(crate) mod rate_limit;
pub(crate) mod retry;
pub(crate) mod run;
pub(crate) mod timeout;
mod window;

pub use self::circuit_breaker::{
    BreakerKey, BreakerPermit, BreakerRegistry, BreakerSnapshot, CallOutcome, CircuitBreaker,
    CircuitBreakerPolicy, CircuitBreakerPolicyBuilder, CircuitState, Transition,
};
pub use self::events::{EventData, EventFuture, EventKind, EventSink, PipelineEvent, Steering};
pub use self::fallback::{FallbackChain, FallbackChainBuilder, FallbackStep, StrategyFallback};
pub use self::pipeline::{Pipeline, PipelineBuilder, RequestInfo};
pub use self::rate_limit::{
    Admission, Identity, LimitScope, LimitType, OnLimit, RateLimitPolicy, RateLimitPolicyBuilder,
    RateLimitSnapshot, RateLimiter,
};
pub use self::retry::{
    Backoff, DelaySource, MAX_ATTEMPTS_ENV, RandomSource, RetryBudget, RetryBudgetPolicy,
    RetryDecision, RetryPolicy, RetryPolicyBuilder, StopReason, ThreadRandom, default_max_attempts,
};
pub use self::timeout::{OnTimeout, Stage, TimeoutPolicy, TimeoutPolicyBuilder};

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
