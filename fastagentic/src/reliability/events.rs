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
use crate::context::RunState;
use crate::error::AgentError;
use crate::llm::Usage;

/// What happened. The names are the hook event names of SPEC §3.7 (`on_retry`, …).
///
/// The pipeline fires the request, retry, circuit, fallback, timeout and rate-limit
/// events, and `ctx.llm()` the LLM ones. The others are defined so hooks can be
/// registered for them; they fire once their subsystems exist (tool calls with tools,
/// startup and shutdown with the server, checkpoint and resume with durable runs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum EventKind {
    /// The app started.
    Startup,
    /// The app is shutting down.
    Shutdown,
    /// A run starts, before any limit is checked; a listener may reject it.
    Request,
    /// A run ended in success.
    Response,
    /// A run ended in an error (after every retry and fallback).
    Error,
    /// An LLM call starts.
    LlmStart,
    /// An LLM call ended.
    LlmEnd,
    /// A tool call starts.
    ToolCall,
    /// A tool call returned.
    ToolResult,
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
    /// A durable run saved a checkpoint.
    Checkpoint,
    /// A durable run resumed from a checkpoint.
    Resume,
}

impl EventKind {
    /// Every event, in SPEC order.
    pub const ALL: &'static [EventKind] = &[
        EventKind::Startup,
        EventKind::Shutdown,
        EventKind::Request,
        EventKind::Response,
        EventKind::Error,
        EventKind::LlmStart,
        EventKind::LlmEnd,
        EventKind::ToolCall,
        EventKind::ToolResult,
        EventKind::Retry,
        EventKind::RetryEnd,
        EventKind::CircuitOpen,
        EventKind::CircuitHalfOpen,
        EventKind::CircuitClose,
        EventKind::Fallback,
        EventKind::Timeout,
        EventKind::RateLimit,
        EventKind::Checkpoint,
        EventKind::Resume,
    ];

    /// The event's bit in a set of kinds (there are fewer than 32).
    pub(crate) fn bit(self) -> u32 {
        1 << (self as u32)
    }

    /// The hook event name, e.g. `"on_retry"`.
    pub fn hook_name(self) -> &'static str {
        match self {
            EventKind::Startup => "on_startup",
            EventKind::Shutdown => "on_shutdown",
            EventKind::Request => "on_request",
            EventKind::Response => "on_response",
            EventKind::Error => "on_error",
            EventKind::LlmStart => "on_llm_start",
            EventKind::LlmEnd => "on_llm_end",
            EventKind::ToolCall => "on_tool_call",
            EventKind::ToolResult => "on_tool_result",
            EventKind::Retry => "on_retry",
            EventKind::RetryEnd => "on_retry_end",
            EventKind::CircuitOpen => "on_circuit_open",
            EventKind::CircuitHalfOpen => "on_circuit_half_open",
            EventKind::CircuitClose => "on_circuit_close",
            EventKind::Fallback => "on_fallback",
            EventKind::Timeout => "on_timeout",
            EventKind::RateLimit => "on_rate_limit",
            EventKind::Checkpoint => "on_checkpoint",
            EventKind::Resume => "on_resume",
        }
    }
}

impl std::str::FromStr for EventKind {
    type Err = UnknownEvent;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventKind::ALL
            .iter()
            .copied()
            .find(|kind| kind.hook_name() == s)
            .ok_or_else(|| UnknownEvent(s.to_owned()))
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.hook_name())
    }
}

/// A name that is not one of the hook event names.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown hook event `{0}`; expected one of: {valid}", valid = EventKind::ALL.iter().map(|k| k.hook_name()).collect::<Vec<_>>().join(", "))]
pub struct UnknownEvent(pub String);

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
    /// For `Response` and `Error`: how long the run took.
    pub elapsed: Option<Duration>,
    /// For `LlmEnd`: the tokens the call used, when the provider reported them.
    pub usage: Option<Usage>,
    /// What an LLM call cost in US dollars (`LlmEnd`), when its usage and price are known.
    pub cost_usd: Option<rust_decimal::Decimal>,
    /// For `LlmStart` and `LlmEnd`: the provider called.
    pub provider: Option<Arc<str>>,
    /// What the listeners want changed (read after `Retry` events).
    pub steer: Steering,
    /// The run, for what listeners keep about it between events.
    pub(crate) run: Option<Arc<RunState>>,
}

impl PipelineEvent {
    /// A `kind` event of `run` on `model`, every optional field empty.
    pub(crate) fn new(kind: EventKind, run: &Arc<RunState>, model: Arc<str>) -> Self {
        PipelineEvent {
            kind,
            run_id: run.run_id,
            endpoint: run.shared.endpoint.clone(),
            model,
            attempt: 0,
            max_attempts: run.shared.max_attempts,
            error: None,
            next_delay: None,
            fallback_to: None,
            succeeded: None,
            stop_reason: None,
            stage: None,
            limit_type: None,
            user: run.user.clone(),
            tenant: run.tenant.clone(),
            elapsed: None,
            usage: None,
            cost_usd: None,
            provider: None,
            steer: Steering::default(),
            run: Some(run.clone()),
        }
    }

    /// An event outside any run (`Startup`, `Shutdown`).
    pub fn app(kind: EventKind) -> Self {
        PipelineEvent {
            kind,
            run_id: 0,
            endpoint: "".into(),
            model: "".into(),
            attempt: 0,
            max_attempts: 0,
            error: None,
            next_delay: None,
            fallback_to: None,
            succeeded: None,
            stop_reason: None,
            stage: None,
            limit_type: None,
            user: None,
            tenant: None,
            elapsed: None,
            usage: None,
            cost_usd: None,
            provider: None,
            steer: Steering::default(),
            run: None,
        }
    }
}

/// The listeners of one pipeline, shared by its runs.
pub(crate) type Sinks = Arc<[Arc<dyn EventSink>]>;

/// A listener's requests to change the run.
#[derive(Clone, Debug, Default)]
pub struct Steering {
    model_override: Option<Arc<str>>,
    delay_override: Option<Duration>,
    abort: bool,
    rejection: Option<AgentError>,
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

    /// Refuses the run with `error` (read after `Request` events, before any limit is
    /// checked or any model called).
    pub fn reject(&mut self, error: AgentError) {
        self.rejection = Some(error);
    }

    /// The rejection, if a listener refused the run.
    pub fn rejection(&self) -> Option<&AgentError> {
        self.rejection.as_ref()
    }

    /// Takes the rejection out, if any.
    pub(crate) fn take_rejection(&mut self) -> Option<AgentError> {
        self.rejection.take()
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

    /// Whether the sink wants events of `kind` (all, unless it says otherwise). Asked
    /// once, when a pipeline is built: a kind no sink wants is never built at all.
    fn listens_to(&self, kind: EventKind) -> bool {
        let _ = kind;
        true
    }
}

/// The kinds of event at least one of `sinks` wants, as a set of [`EventKind::bit`]s.
pub(crate) fn wanted_kinds(sinks: &[Arc<dyn EventSink>]) -> u32 {
    EventKind::ALL
        .iter()
        .filter(|kind| sinks.iter().any(|sink| sink.listens_to(**kind)))
        .fold(0, |set, kind| set | kind.bit())
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
