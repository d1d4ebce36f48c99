//! The pipeline's one event interface: everything that happens inside a run is reported
//! here, and a listener may steer the run from some events (which model next, how long to
//! wait, whether to go on at all).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::rate_limit::LimitType;
use super::retry::StopReason;
use super::timeout::Stage;
use crate::error::AgentError;
use crate::llm::Usage;

pub use fastagentic_policy::EventKind;

/// One event: the fields every event of a run shares, once, and what only its kind has
/// in [`data`](Self::data).
///
/// The accessors ([`next_delay`](Self::next_delay), [`usage`](Self::usage), ...) read
/// the payload and return `None` for kinds that do not carry the value.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PipelineEvent {
    /// What happened.
    pub kind: EventKind,
    /// The run's id (0 for app events).
    pub run_id: u64,
    /// The endpoint (path); empty for app events.
    pub endpoint: Arc<str>,
    /// The model the run was on.
    pub model: Arc<str>,
    /// The attempt number on that model (1-based; 0 before the first attempt).
    pub attempt: u32,
    /// The retry policy's `max_attempts`.
    pub max_attempts: u32,
    /// The error that led here, if any.
    pub error: Option<AgentError>,
    /// The user, if known.
    pub user: Option<Arc<str>>,
    /// The tenant, if known.
    pub tenant: Option<Arc<str>>,
    /// What only this kind of event carries.
    pub data: EventData,
    /// What the listeners want changed (read after `Request` and `Retry` events).
    pub steer: Steering,
    /// What listeners keep about the run between its events.
    pub(crate) notes: Option<Arc<RunNotes>>,
}

/// What an event carries beyond the fields all events of a run share.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub enum EventData {
    /// Nothing more: app events, `Request`, the breaker transitions.
    #[default]
    None,
    /// `Retry`: an attempt failed and the next follows after `next_delay`.
    Retry {
        /// The delay before the next attempt.
        next_delay: Duration,
    },
    /// `RetryEnd`: how a retry loop ended.
    RetryEnd {
        /// Whether the loop ended in success.
        succeeded: bool,
        /// Why it stopped, after a failure.
        stop_reason: Option<StopReason>,
    },
    /// `Fallback`: the run leaves `model` for `to`.
    Fallback {
        /// The model the run moves to.
        to: Arc<str>,
    },
    /// `Timeout`: which deadline passed.
    Timeout {
        /// The stage whose limit cut the work.
        stage: Stage,
    },
    /// `RateLimit`: which limit refused the run.
    RateLimit {
        /// The limit, when the error names it.
        limit_type: Option<LimitType>,
    },
    /// `LlmStart` and `LlmEnd`: one call to a provider.
    Llm {
        /// The provider called.
        provider: Arc<str>,
        /// `LlmEnd`: the tokens the call used, when the provider reported them.
        usage: Option<Usage>,
        /// `LlmEnd`: what the call cost in US dollars, when its usage and price are known.
        cost_usd: Option<Decimal>,
    },
    /// `ToolCall` and `ToolResult`: one attempt of one tool call; its error, if it
    /// failed, is the event's `error`.
    Tool {
        /// The tool's name.
        name: Arc<str>,
        /// The input, as JSON.
        input: Arc<Value>,
        /// `ToolResult` after a success: the output, as JSON.
        output: Option<Value>,
        /// `ToolResult`: how long the attempt took.
        elapsed: Option<Duration>,
    },
    /// `Checkpoint` and `Resume`: a durable run stopping at its deadline, or running on.
    Durable {
        /// The durable run's id (`run_…`).
        run_id: Arc<str>,
        /// The steps its journal holds.
        steps: u32,
    },
    /// `Response` and `Error`: how the run ended.
    Outcome {
        /// How long the run took.
        elapsed: Duration,
        /// The run's tokens over all its calls, when it made any.
        usage: Option<Usage>,
        /// What the whole run cost, every model of a fallback chain included.
        cost_usd: Option<Decimal>,
        /// Whether the run left its primary model for one of its fallback chain.
        fell_back: bool,
    },
}

impl PipelineEvent {
    /// An event outside any run (`Startup`, `Shutdown`).
    pub fn app(kind: EventKind) -> Self {
        static EMPTY: OnceLock<Arc<str>> = OnceLock::new();
        let empty = EMPTY.get_or_init(|| Arc::from("")).clone();
        PipelineEvent {
            kind,
            run_id: 0,
            endpoint: empty.clone(),
            model: empty,
            attempt: 0,
            max_attempts: 0,
            error: None,
            user: None,
            tenant: None,
            data: EventData::None,
            steer: Steering::default(),
            notes: None,
        }
    }

    /// `Retry`: the delay before the next attempt.
    pub fn next_delay(&self) -> Option<Duration> {
        match self.data {
            EventData::Retry { next_delay } => Some(next_delay),
            _ => None,
        }
    }

    /// `Checkpoint` and `Resume`: the durable run's id and the steps its journal holds.
    pub fn durable_run(&self) -> Option<(&str, u32)> {
        match &self.data {
            EventData::Durable { run_id, steps } => Some((run_id, *steps)),
            _ => None,
        }
    }

    /// `Fallback`: the model the run moves to.
    pub fn fallback_to(&self) -> Option<&Arc<str>> {
        match &self.data {
            EventData::Fallback { to } => Some(to),
            _ => None,
        }
    }

    /// `RetryEnd`: whether the loop ended in success.
    pub fn succeeded(&self) -> Option<bool> {
        match self.data {
            EventData::RetryEnd { succeeded, .. } => Some(succeeded),
            _ => None,
        }
    }

    /// `RetryEnd` after a failure: why the loop stopped.
    pub fn stop_reason(&self) -> Option<StopReason> {
        match self.data {
            EventData::RetryEnd { stop_reason, .. } => stop_reason,
            _ => None,
        }
    }

    /// `Timeout`: which deadline passed.
    pub fn stage(&self) -> Option<Stage> {
        match self.data {
            EventData::Timeout { stage } => Some(stage),
            _ => None,
        }
    }

    /// `RateLimit`: which limit refused the run.
    pub fn limit_type(&self) -> Option<LimitType> {
        match self.data {
            EventData::RateLimit { limit_type } => limit_type,
            _ => None,
        }
    }

    /// `LlmStart` / `LlmEnd`: the provider called.
    pub fn provider(&self) -> Option<&Arc<str>> {
        match &self.data {
            EventData::Llm { provider, .. } => Some(provider),
            _ => None,
        }
    }

    /// `LlmEnd`: the call's tokens; `Response` / `Error`: the run's, over all its calls.
    pub fn usage(&self) -> Option<Usage> {
        match self.data {
            EventData::Llm { usage, .. } | EventData::Outcome { usage, .. } => usage,
            _ => None,
        }
    }

    /// `LlmEnd`: what the call cost in US dollars; `Response` / `Error`: what the whole
    /// run cost. `None` when a usage or a price is unknown.
    pub fn cost_usd(&self) -> Option<Decimal> {
        match self.data {
            EventData::Llm { cost_usd, .. } | EventData::Outcome { cost_usd, .. } => cost_usd,
            _ => None,
        }
    }

    /// `Response` / `Error`: how long the run took; `ToolResult`: how long the tool ran.
    pub fn elapsed(&self) -> Option<Duration> {
        match self.data {
            EventData::Outcome { elapsed, .. } => Some(elapsed),
            EventData::Tool { elapsed, .. } => elapsed,
            _ => None,
        }
    }

    /// `ToolCall` / `ToolResult`: the tool's name.
    pub fn tool_name(&self) -> Option<&str> {
        match &self.data {
            EventData::Tool { name, .. } => Some(name),
            _ => None,
        }
    }

    /// `ToolCall` / `ToolResult`: the tool's input.
    pub fn tool_input(&self) -> Option<&Value> {
        match &self.data {
            EventData::Tool { input, .. } => Some(input),
            _ => None,
        }
    }

    /// `ToolResult` after a success: the tool's output.
    pub fn tool_output(&self) -> Option<&Value> {
        match &self.data {
            EventData::Tool { output, .. } => output.as_ref(),
            _ => None,
        }
    }

    /// A copy of the notes listeners keep about the run (empty outside a run).
    pub(crate) fn read_notes(&self) -> Map<String, Value> {
        self.notes
            .as_ref()
            .map_or_else(Map::new, |notes| notes.read())
    }

    /// Replaces the run's notes (nothing outside a run).
    pub(crate) fn write_notes(&self, map: Map<String, Value>) {
        if let Some(notes) = &self.notes {
            notes.write(map);
        }
    }
}

/// What hooks keep about one run between its events (`HookContext::metadata`): made on
/// the first event a listener gets, so a run nobody listens to never allocates it.
#[derive(Debug, Default)]
pub(crate) struct RunNotes(Mutex<Map<String, Value>>);

impl RunNotes {
    fn read(&self) -> Map<String, Value> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn write(&self, map: Map<String, Value>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = map;
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
