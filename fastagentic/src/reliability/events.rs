//! The pipeline's one event interface: everything that happens inside a run is reported
//! here, and a listener may steer the run from some events (which model next, how long to
//! wait, whether to go on at all).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::rate_limit::LimitType;
use super::retry::StopReason;
use super::timeout::Stage;
use crate::error::AgentError;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// An attempt failed and another will follow after `next_delay` (steerable).
    Retry,
    /// A retry loop that retried at least once, or was stopped by the server, a hook, the
    /// budget or the deadline, has ended (see `succeeded` and `stop_reason`).
    RetryEnd,
    /// A breaker opened.
    CircuitOpen,
    /// A breaker let its first probe through.
    CircuitHalfOpen,
    /// A breaker closed again.
    CircuitClose,
    /// The run moved from `model` to `fallback_to`.
    Fallback,
    /// A deadline passed: the run's total, or a stage (`ctx.within`) that cut an attempt
    /// (`stage` says which).
    Timeout,
    /// A rate limit refused the run (`limit_type` says which; a run that waited for its
    /// slot in `delay` or `queue` mode and then went ahead raises no event).
    RateLimit,
}

impl EventKind {
    /// The hook event name, e.g. `"on_retry"`.
    pub fn hook_name(self) -> &'static str {
        match self {
            EventKind::Retry => "on_retry",
            EventKind::RetryEnd => "on_retry_end",
            EventKind::CircuitOpen => "on_circuit_open",
            EventKind::CircuitHalfOpen => "on_circuit_half_open",
            EventKind::CircuitClose => "on_circuit_close",
            EventKind::Fallback => "on_fallback",
            EventKind::Timeout => "on_timeout",
            EventKind::RateLimit => "on_rate_limit",
        }
    }
}

/// One event, with everything known at that moment.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PipelineEvent {
    /// What happened.
    pub kind: EventKind,
    /// The run's id.
    pub run_id: u64,
    /// The endpoint (path).
    pub endpoint: Arc<str>,
    /// The model the run was on.
    pub model: Arc<str>,
    /// The attempt number on that model (1-based; 0 before the first attempt).
    pub attempt: u32,
    /// The retry policy's `max_attempts`.
    pub max_attempts: u32,
    /// The error that led here, if any.
    pub error: Option<AgentError>,
    /// For `Retry`: the delay before the next attempt.
    pub next_delay: Option<Duration>,
    /// For `Fallback`: the model the run moves to.
    pub fallback_to: Option<Arc<str>>,
    /// For `RetryEnd`: whether the loop ended in success.
    pub succeeded: Option<bool>,
    /// For `RetryEnd` after a failure: why it stopped.
    pub stop_reason: Option<StopReason>,
    /// For `Timeout`: which stage.
    pub stage: Option<Stage>,
    /// For `RateLimit`: which limit.
    pub limit_type: Option<LimitType>,
    /// The user, if known.
    pub user: Option<Arc<str>>,
    /// The tenant, if known.
    pub tenant: Option<Arc<str>>,
    /// What the listeners want changed (read after `Retry` events).
    pub steer: Steering,
}

/// A listener's requests to change the run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Steering {
    model_override: Option<Arc<str>>,
    delay_override: Option<Duration>,
    abort: bool,
}

impl Steering {
    /// Use `model` from the next attempt on.
    pub fn set_model_override(&mut self, model: impl Into<Arc<str>>) {
        self.model_override = Some(model.into());
    }

    /// Wait `delay` before the next attempt instead of the computed delay.
    pub fn set_delay(&mut self, delay: Duration) {
        self.delay_override = Some(delay);
    }

    /// Stop retrying; the run fails with the current error (or falls back).
    pub fn abort(&mut self) {
        self.abort = true;
    }

    /// The model override, if set.
    pub fn model_override(&self) -> Option<&Arc<str>> {
        self.model_override.as_ref()
    }

    /// The delay override, if set.
    pub fn delay_override(&self) -> Option<Duration> {
        self.delay_override
    }

    /// Whether a listener aborted the retries.
    pub fn is_aborted(&self) -> bool {
        self.abort
    }
}

/// A boxed future returned by an [`EventSink`].
pub type EventFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Receives every [`PipelineEvent`]. Hooks and metrics are sinks.
///
/// Any `Fn(&mut PipelineEvent) + Send + Sync` closure is a sink.
pub trait EventSink: Send + Sync + 'static {
    /// Handles one event; may change `event.steer`.
    fn on_event<'a>(&'a self, event: &'a mut PipelineEvent) -> EventFuture<'a>;
}

impl<F> EventSink for F
where
    F: Fn(&mut PipelineEvent) + Send + Sync + 'static,
{
    fn on_event<'a>(&'a self, event: &'a mut PipelineEvent) -> EventFuture<'a> {
        self(event);
        Box::pin(std::future::ready(()))
    }
}
