//! Retry: how many attempts, how long between them, and which failures deserve another.

mod attempts;
mod budget;
mod overflow;

pub(crate) use self::attempts::RetryLoop;
pub use self::budget::{RetryBudget, RetryBudgetPolicy};

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use fastagentic_policy::keys::retry as keys;
use fastagentic_policy::keys::retry::DEFAULT_MAX_ATTEMPTS;

use crate::error::{AgentError, ClassSet, ErrorClass};
use crate::reliability::PolicyError;

/// The environment variable that overrides the default `max_attempts`.
pub const MAX_ATTEMPTS_ENV: &str = "FASTAGENTIC_MAX_ATTEMPTS";

pub use fastagentic_policy::Backoff;

/// A source of uniform random numbers in `[0, 1)` for jitter.
///
/// The default draws from a fast thread-local generator; tests inject a fixed sequence so
/// every delay is exact.
pub trait RandomSource: Send + Sync + 'static {
    /// The next number in `[0, 1)`.
    fn next_f64(&self) -> f64;
}

/// The default [`RandomSource`], backed by `fastrand`'s thread-local generator.
#[derive(Clone, Copy, Debug, Default)]
pub struct ThreadRandom;

impl RandomSource for ThreadRandom {
    fn next_f64(&self) -> f64 {
        fastrand::f64()
    }
}

impl<F: Fn() -> f64 + Send + Sync + 'static> RandomSource for F {
    fn next_f64(&self) -> f64 {
        self()
    }
}

/// The retry policy of SPEC §3.5. Build it with [`RetryPolicy::builder`]; it is
/// validated there, and on deserialization.
///
/// ```
/// use std::time::Duration;
/// use fastagentic::reliability::{Backoff, RetryPolicy};
///
/// let policy = RetryPolicy::builder()
///     .max_attempts(4)
///     .backoff(Backoff::Exponential)
///     .initial_delay(Duration::from_millis(500))
///     .build()?;
/// assert_eq!(policy.max_attempts(), 4);
/// # Ok::<(), fastagentic::reliability::PolicyError>(())
/// ```
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "RetryPolicyBuilder", into = "RetryPolicyBuilder")]
pub struct RetryPolicy {
    settings: RetryPolicyBuilder,
    random: Arc<dyn RandomSource>,
}

/// The settings of a [`RetryPolicy`], before validation. Field names match the
/// attribute keys and the serialized form.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicyBuilder {
    // `None` until set, so whoever builds the pipeline (the app, from
    // `FASTAGENTIC_MAX_ATTEMPTS`) can supply the default without the policy reading the
    // environment itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    max_attempts: Option<u32>,
    backoff: Backoff,
    #[serde(rename = "initial_delay_ms", with = "crate::reliability::millis")]
    initial_delay: Duration,
    #[serde(rename = "max_delay_ms", with = "crate::reliability::millis")]
    max_delay: Duration,
    multiplier: f64,
    jitter: bool,
    jitter_factor: f64,
    retry_on: ClassSet,
    no_retry_on: ClassSet,
    #[serde(rename = "max_retry_after_ms", with = "crate::reliability::millis")]
    max_retry_after: Duration,
    overload_limit: u32,
    context_overflow_floor: u32,
    budget: Option<RetryBudgetPolicy>,
    #[serde(skip)]
    random: Option<RandomHandle>,
}

#[derive(Clone)]
struct RandomHandle(Arc<dyn RandomSource>);

impl fmt::Debug for RandomHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RandomSource")
    }
}

impl PartialEq for RandomHandle {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Default for RetryPolicyBuilder {
    fn default() -> Self {
        RetryPolicyBuilder {
            max_attempts: None,
            backoff: Backoff::Exponential,
            initial_delay: Duration::from_millis(keys::DEFAULT_INITIAL_DELAY_MS),
            max_delay: Duration::from_millis(keys::DEFAULT_MAX_DELAY_MS),
            multiplier: keys::DEFAULT_MULTIPLIER,
            jitter: keys::DEFAULT_JITTER,
            jitter_factor: keys::DEFAULT_JITTER_FACTOR,
            retry_on: ErrorClass::DEFAULT_RETRY_ON,
            no_retry_on: ClassSet::EMPTY,
            max_retry_after: Duration::from_millis(keys::DEFAULT_MAX_RETRY_AFTER_MS),
            overload_limit: keys::DEFAULT_OVERLOAD_LIMIT,
            context_overflow_floor: keys::DEFAULT_CONTEXT_OVERFLOW_FLOOR,
            budget: Some(RetryBudgetPolicy::default()),
            random: None,
        }
    }
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty,)+) => {
        $(
            $(#[$doc])*
            #[must_use]
            pub fn $name(mut self, value: $ty) -> Self {
                self.$name = value.into();
                self
            }
        )+
    };
}

impl RetryPolicyBuilder {
    setters! {
        /// Attempts in all, the first call included (default 3; an [`App`] or an
        /// endpoint's own pipeline uses `FASTAGENTIC_MAX_ATTEMPTS` instead when it is set,
        /// see [`default_max_attempts`]).
        ///
        /// [`App`]: crate::App
        max_attempts: u32,
        /// How delays grow (default exponential).
        backoff: Backoff,
        /// The first retry's delay (default 1 s).
        initial_delay: Duration,
        /// The longest backoff delay (default 30 s).
        max_delay: Duration,
        /// The growth factor of exponential backoff (default 2).
        multiplier: f64,
        /// Whether to randomize delays (default true).
        jitter: bool,
        /// Jitter spread: a delay `d` becomes uniform in `d × (1 ± factor)` (default 0.25).
        jitter_factor: f64,
        /// Classes worth another attempt (default rate_limit, timeout, server_error,
        /// overloaded, connection_error).
        retry_on: ClassSet,
        /// Classes never retried; wins over `retry_on` and over `x-should-retry: true`.
        no_retry_on: ClassSet,
        /// The longest server-directed delay that will be slept; a longer one sends the
        /// error on to fallback without sleeping (default 60 s).
        max_retry_after: Duration,
        /// Consecutive `overloaded` errors from one model after which it is given up
        /// (default 3).
        overload_limit: u32,
        /// The smallest `max_tokens` context-overflow recovery will lower to (default 3000).
        context_overflow_floor: u32,
    }

    /// Limits retries to a fraction of recent requests; `None` turns the budget off.
    #[must_use]
    pub fn budget(mut self, budget: Option<RetryBudgetPolicy>) -> Self {
        self.budget = budget;
        self
    }

    /// Replaces the random source used for jitter.
    #[must_use]
    pub fn random_source(mut self, random: impl RandomSource) -> Self {
        self.random = Some(RandomHandle(Arc::new(random)));
        self
    }

    /// Validates the settings.
    pub fn build(self) -> Result<RetryPolicy, PolicyError> {
        if let Some(max_attempts) = self.max_attempts {
            keys::MAX_ATTEMPTS.check(u64::from(max_attempts))?;
        }
        keys::MULTIPLIER.check(self.multiplier)?;
        keys::JITTER_FACTOR.check(self.jitter_factor)?;
        keys::OVERLOAD_LIMIT.check(u64::from(self.overload_limit))?;
        keys::check_delays(
            Some(whole_millis(self.initial_delay)),
            Some(whole_millis(self.max_delay)),
        )?;
        if let Some(budget) = &self.budget {
            budget.validate()?;
        }
        let random = match &self.random {
            Some(handle) => handle.0.clone(),
            None => Arc::new(ThreadRandom),
        };
        Ok(RetryPolicy {
            settings: self,
            random,
        })
    }
}

fn whole_millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl TryFrom<RetryPolicyBuilder> for RetryPolicy {
    type Error = PolicyError;

    fn try_from(builder: RetryPolicyBuilder) -> Result<Self, Self::Error> {
        builder.build()
    }
}

impl From<RetryPolicy> for RetryPolicyBuilder {
    fn from(policy: RetryPolicy) -> Self {
        policy.settings
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            settings: RetryPolicyBuilder::default(),
            random: Arc::new(ThreadRandom),
        }
    }
}

impl fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.settings.fmt(f)
    }
}

/// Why the retry loop for one model stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// The class is not in `retry_on`, or is in `no_retry_on`.
    NotRetryable,
    /// The server sent `x-should-retry: false`.
    ServerSaidNo,
    /// `max_attempts` were used.
    Exhausted,
    /// The server asked for a delay above `max_retry_after`.
    RetryAfterTooLong,
    /// `overload_limit` consecutive `overloaded` errors.
    OverloadStorm,
    /// The retry budget is spent.
    BudgetExhausted,
    /// A hook aborted the retries.
    Aborted,
    /// The next delay would outlast the run's total timeout.
    NoTimeLeft,
    /// The failure opened the model's circuit breaker.
    CircuitOpened,
    /// Output had already reached the caller (a stream broke midway); a retry would
    /// silently start the answer over.
    OutputDelivered,
}

impl StopReason {
    /// A short snake_case name, for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::NotRetryable => "not_retryable",
            StopReason::ServerSaidNo => "server_said_no",
            StopReason::Exhausted => "exhausted",
            StopReason::RetryAfterTooLong => "retry_after_too_long",
            StopReason::OverloadStorm => "overload_storm",
            StopReason::BudgetExhausted => "budget_exhausted",
            StopReason::Aborted => "aborted",
            StopReason::NoTimeLeft => "no_time_left",
            StopReason::CircuitOpened => "circuit_opened",
            StopReason::OutputDelivered => "output_delivered",
        }
    }
}

/// Where a retry delay came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DelaySource {
    /// The policy's backoff (with jitter).
    Backoff,
    /// `retry-after-ms` or `Retry-After`.
    Header,
    /// A hint in the error body (Gemini `RetryInfo`).
    Body,
}

/// What the policy says after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryDecision {
    /// Try again after `delay`.
    Retry {
        /// How long to wait.
        delay: Duration,
        /// Where the delay came from.
        source: DelaySource,
    },
    /// Stop retrying this model.
    Stop(StopReason),
}

impl RetryPolicy {
    /// A builder with the defaults of SPEC §3.5.
    pub fn builder() -> RetryPolicyBuilder {
        RetryPolicyBuilder::default()
    }

    /// A policy that makes exactly one attempt.
    pub fn none() -> RetryPolicy {
        RetryPolicy {
            settings: RetryPolicyBuilder::default().max_attempts(1),
            random: Arc::new(ThreadRandom),
        }
    }

    /// Attempts in all, the first call included.
    pub fn max_attempts(&self) -> u32 {
        self.settings.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS)
    }

    /// This policy with `max_attempts` set to `default` unless it sets its own.
    pub(crate) fn or_max_attempts(mut self, default: u32) -> RetryPolicy {
        self.settings.max_attempts.get_or_insert(default);
        self
    }

    /// The backoff kind.
    pub fn backoff(&self) -> Backoff {
        self.settings.backoff
    }

    /// Classes worth another attempt.
    pub fn retry_on(&self) -> ClassSet {
        self.settings.retry_on
    }

    /// Classes never retried.
    pub fn no_retry_on(&self) -> ClassSet {
        self.settings.no_retry_on
    }

    /// The longest server-directed delay that will be slept.
    pub fn max_retry_after(&self) -> Duration {
        self.settings.max_retry_after
    }

    /// Consecutive `overloaded` errors after which a model is given up.
    pub fn overload_limit(&self) -> u32 {
        self.settings.overload_limit
    }

    /// The smallest `max_tokens` context-overflow recovery lowers to.
    pub fn context_overflow_floor(&self) -> u32 {
        self.settings.context_overflow_floor
    }

    /// The retry budget, if any.
    pub fn budget(&self) -> Option<&RetryBudgetPolicy> {
        self.settings.budget.as_ref()
    }

    /// The backoff delay before retry number `retry` (1 for the first retry), jitter
    /// included.
    pub fn backoff_delay(&self, retry: u32) -> Duration {
        let s = &self.settings;
        let initial = s.initial_delay.as_secs_f64();
        let base = match s.backoff {
            Backoff::Fixed => initial,
            Backoff::Linear => initial * f64::from(retry.max(1)),
            Backoff::Exponential => {
                initial * s.multiplier.powi(retry.saturating_sub(1).min(1000) as i32)
            }
        };
        let max = s.max_delay.as_secs_f64();
        let base = base.min(max);
        let jittered = if s.jitter && s.jitter_factor > 0.0 {
            let spread = 2.0 * self.random.next_f64() - 1.0;
            base * (1.0 + s.jitter_factor * spread)
        } else {
            base
        };
        Duration::try_from_secs_f64(jittered.clamp(0.0, max)).unwrap_or(s.max_delay)
    }

    /// Decides what follows a failed `attempt` (1-based) that ended in `error`, when the
    /// model has failed with `overloaded` `consecutive_overloads` times in a row (this
    /// error included).
    ///
    /// The order: `no_retry_on` always wins; a failure after output was delivered is never
    /// retried; then `x-should-retry`; then `retry_on`; then
    /// the overload storm and attempt limits; then the delay — the server's (capped by
    /// `max_retry_after`) or the backoff. The retry budget is the caller's to check.
    pub fn decide(
        &self,
        error: &AgentError,
        attempt: u32,
        consecutive_overloads: u32,
    ) -> RetryDecision {
        let class = error.class();
        let s = &self.settings;
        if s.no_retry_on.contains(class) {
            return RetryDecision::Stop(StopReason::NotRetryable);
        }
        if error.partial().is_some() {
            return RetryDecision::Stop(StopReason::OutputDelivered);
        }
        match error.should_retry() {
            Some(false) => return RetryDecision::Stop(StopReason::ServerSaidNo),
            Some(true) => {}
            // A stream that broke before handing anything out is retried like any
            // call (SPEC §3.5); one that had (caught above) never is.
            None if !s.retry_on.contains(class) && class != ErrorClass::StreamInterrupted => {
                return RetryDecision::Stop(StopReason::NotRetryable);
            }
            None => {}
        }
        if class == ErrorClass::Overloaded && consecutive_overloads >= s.overload_limit {
            return RetryDecision::Stop(StopReason::OverloadStorm);
        }
        if attempt >= self.max_attempts() {
            return RetryDecision::Stop(StopReason::Exhausted);
        }
        let hints = error.hints();
        let server = hints
            .retry_after_header
            .map(|d| (d, DelaySource::Header))
            .or_else(|| hints.retry_after_body.map(|d| (d, DelaySource::Body)));
        match server {
            Some((delay, _)) if delay > s.max_retry_after => {
                RetryDecision::Stop(StopReason::RetryAfterTooLong)
            }
            Some((delay, source)) => RetryDecision::Retry { delay, source },
            None => RetryDecision::Retry {
                delay: self.backoff_delay(attempt),
                source: DelaySource::Backoff,
            },
        }
    }
}

/// The `max_attempts` of retry policies that set none, as the environment asks: 3, or
/// `FASTAGENTIC_MAX_ATTEMPTS` when it holds a positive integer. A bad value is reported
/// once with a warning and ignored.
///
/// The variable is read once per process, when the first [`App`] is created or the first
/// endpoint's own pipeline is built; they apply it. [`RetryPolicy::default`] and
/// [`RetryPolicy::builder`] never read the environment: a pipeline built by hand gets 3
/// unless given [`PipelineBuilder::default_max_attempts`].
///
/// [`App`]: crate::App
/// [`PipelineBuilder::default_max_attempts`]: crate::reliability::PipelineBuilder::default_max_attempts
pub fn default_max_attempts() -> u32 {
    static DEFAULT: OnceLock<u32> = OnceLock::new();
    *DEFAULT.get_or_init(|| {
        let raw = std::env::var(MAX_ATTEMPTS_ENV).ok();
        match parse_max_attempts(raw.as_deref()) {
            Ok(value) => value.unwrap_or(DEFAULT_MAX_ATTEMPTS),
            Err(reason) => {
                tracing::warn!(
                    variable = MAX_ATTEMPTS_ENV,
                    reason,
                    default = DEFAULT_MAX_ATTEMPTS,
                    "ignoring invalid override; using the default"
                );
                DEFAULT_MAX_ATTEMPTS
            }
        }
    })
}

/// Parses the `FASTAGENTIC_MAX_ATTEMPTS` override: `Ok(None)` when unset or blank.
pub(crate) fn parse_max_attempts(raw: Option<&str>) -> Result<Option<u32>, &'static str> {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    match raw.parse::<i64>() {
        Ok(n) if n <= 0 => Err("must be a positive integer (it counts the first call)"),
        Ok(n) => u32::try_from(n)
            .map(Some)
            .map_err(|_| "is too large for an attempt count"),
        Err(_) => Err("is not an integer"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(backoff: Backoff, jitter: bool) -> RetryPolicy {
        RetryPolicy::builder()
            .max_attempts(10)
            .backoff(backoff)
            .initial_delay(Duration::from_millis(1000))
            .max_delay(Duration::from_millis(30_000))
            .jitter(jitter)
            .random_source(|| 0.5)
            .build()
            .unwrap()
    }

    fn delays(policy: &RetryPolicy) -> Vec<u128> {
        (1..=7)
            .map(|n| policy.backoff_delay(n).as_millis())
            .collect()
    }

    #[test]
    fn exact_delay_sequences() {
        assert_eq!(
            delays(&policy(Backoff::Fixed, false)),
            [1000, 1000, 1000, 1000, 1000, 1000, 1000]
        );
        assert_eq!(
            delays(&policy(Backoff::Linear, false)),
            [1000, 2000, 3000, 4000, 5000, 6000, 7000]
        );
        assert_eq!(
            delays(&policy(Backoff::Exponential, false)),
            [1000, 2000, 4000, 8000, 16000, 30000, 30000]
        );
    }

    #[test]
    fn jitter_spreads_by_the_factor() {
        let low = RetryPolicy::builder()
            .backoff(Backoff::Fixed)
            .random_source(|| 0.0)
            .build()
            .unwrap();
        let high = RetryPolicy::builder()
            .backoff(Backoff::Fixed)
            .random_source(|| 0.999_999)
            .build()
            .unwrap();
        assert_eq!(low.backoff_delay(1), Duration::from_millis(750));
        assert_eq!(high.backoff_delay(1).as_millis(), 1249);
        // Jitter at the cap never exceeds max_delay.
        let capped = policy(Backoff::Exponential, true);
        assert!(capped.backoff_delay(9) <= Duration::from_secs(30));
    }

    #[test]
    fn construction_errors_name_the_field() {
        let err = RetryPolicy::builder().max_attempts(0).build().unwrap_err();
        assert!(err.to_string().contains("max_attempts"), "{err}");
        let err = RetryPolicy::builder()
            .jitter_factor(1.5)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("jitter_factor"), "{err}");
        assert!(err.to_string().contains("0.0..=1.0"), "{err}");
    }

    #[test]
    fn serde_round_trip_and_validation() {
        let policy: RetryPolicy = serde_json::from_str(
            r#"{"max_attempts": 5, "backoff": "linear", "initial_delay_ms": 200,
                "retry_on": ["timeout"]}"#,
        )
        .unwrap();
        assert_eq!(policy.max_attempts(), 5);
        assert_eq!(policy.backoff(), Backoff::Linear);
        assert_eq!(policy.retry_on(), ClassSet::of(&[ErrorClass::Timeout]));
        let json = serde_json::to_value(&policy).unwrap();
        assert_eq!(json["initial_delay_ms"], 200);
        let back: RetryPolicy = serde_json::from_value(json).unwrap();
        assert_eq!(back.settings, policy.settings);

        let err = serde_json::from_str::<RetryPolicy>(r#"{"max_attempts": 0}"#).unwrap_err();
        assert!(err.to_string().contains("max_attempts"), "{err}");
        let err = serde_json::from_str::<RetryPolicy>(r#"{"max_atempts": 2}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    #[test]
    fn max_attempts_override_is_validated() {
        assert_eq!(parse_max_attempts(None), Ok(None));
        assert_eq!(parse_max_attempts(Some(" 5 ")), Ok(Some(5)));
        assert!(parse_max_attempts(Some("0")).is_err());
        assert!(parse_max_attempts(Some("-2")).is_err());
        assert!(parse_max_attempts(Some("three")).is_err());
        assert!(parse_max_attempts(Some("99999999999")).is_err());
    }

    fn error(class: ErrorClass) -> AgentError {
        AgentError::new(class, "boom")
    }

    #[test]
    fn decisions_follow_the_server_first() {
        let p = policy(Backoff::Fixed, false);
        let stop = |r| RetryDecision::Stop(r);
        // x-should-retry: false stops a retryable 503.
        let e = error(ErrorClass::Overloaded).with_should_retry(false);
        assert_eq!(p.decide(&e, 1, 1), stop(StopReason::ServerSaidNo));
        // x-should-retry: true retries a class not in retry_on.
        let e = error(ErrorClass::InvalidInput).with_should_retry(true);
        assert!(matches!(p.decide(&e, 1, 0), RetryDecision::Retry { .. }));
        // ... but no_retry_on wins over it.
        let p2 = RetryPolicy::builder()
            .no_retry_on(ClassSet::of(&[ErrorClass::InvalidInput]))
            .build()
            .unwrap();
        assert_eq!(p2.decide(&e, 1, 0), stop(StopReason::NotRetryable));
        // A Retry-After above the cap is not slept.
        let e = error(ErrorClass::RateLimit).with_retry_after(Duration::from_secs(61));
        assert_eq!(p.decide(&e, 1, 0), stop(StopReason::RetryAfterTooLong));
        let e = error(ErrorClass::RateLimit).with_retry_after(Duration::from_secs(7));
        assert_eq!(
            p.decide(&e, 1, 0),
            RetryDecision::Retry {
                delay: Duration::from_secs(7),
                source: DelaySource::Header
            }
        );
        assert_eq!(p.decide(&e, 10, 0), stop(StopReason::Exhausted));
        assert_eq!(
            p.decide(&error(ErrorClass::Overloaded), 3, 3),
            stop(StopReason::OverloadStorm)
        );
        for class in [
            ErrorClass::InvalidInput,
            ErrorClass::AuthError,
            ErrorClass::PermissionDenied,
            ErrorClass::NotFound,
            ErrorClass::QuotaExceeded,
            ErrorClass::RequestTooLarge,
            ErrorClass::ContentPolicy,
        ] {
            assert_eq!(
                p.decide(&error(class), 1, 0),
                stop(StopReason::NotRetryable),
                "{class}"
            );
        }
    }
}
