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

pub use fastagentic_policy::EventKind;

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
