//! The context an endpoint body receives: which model to use, which attempt this is, how
//! much time is left, and who is asking.

use std::future::Future;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

use crate::error::AgentError;
use crate::llm::{Llm, Providers, StreamEvent, StreamSink, default_providers};
use crate::pricing::Pricing;
use crate::reliability::events::{EventKind, PipelineEvent, Sinks};
use crate::reliability::timeout::{self, OnTimeout, Stage, TimeoutPolicy};
use crate::spend::{CallRecord, Spend};

const UNKNOWN_TOKENS: u64 = u64::MAX;

/// What every run of one pipeline shares: set once when the pipeline is built.
pub(crate) struct RunShared {
    pub(crate) endpoint: Arc<str>,
    pub(crate) timeouts: Arc<TimeoutPolicy>,
    pub(crate) providers: Option<Arc<Providers>>,
    pub(crate) pricing: Option<Arc<Pricing>>,
    pub(crate) sinks: Sinks,
    /// The kinds of event some sink wants ([`EventKind::bit`]s); others are never built.
    pub(crate) wanted: u32,
    pub(crate) max_attempts: u32,
}

impl std::fmt::Debug for RunShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunShared")
            .field("endpoint", &self.endpoint)
            .field("listeners", &self.sinks.len())
            .finish_non_exhaustive()
    }
}

impl RunShared {
    /// Runs outside any pipeline: default timeouts, no listeners.
    pub(crate) fn detached() -> Arc<RunShared> {
        static DETACHED: std::sync::OnceLock<Arc<RunShared>> = std::sync::OnceLock::new();
        DETACHED
            .get_or_init(|| {
                Arc::new(RunShared {
                    endpoint: "".into(),
                    timeouts: Arc::new(TimeoutPolicy::default()),
                    providers: None,
                    pricing: None,
                    sinks: Arc::from(Vec::new()),
                    wanted: 0,
                    max_attempts: 1,
                })
            })
            .clone()
    }
}

/// What one run shares across its attempts and fallbacks.
#[derive(Debug)]
pub(crate) struct RunState {
    pub(crate) run_id: u64,
    pub(crate) shared: Arc<RunShared>,
    pub(crate) started: Instant,
    pub(crate) deadline: Instant,
    pub(crate) user: Option<Arc<str>>,
    pub(crate) tenant: Option<Arc<str>>,
    tokens_used: AtomicU64,
    max_tokens: AtomicU32,
    chain_position: AtomicU32,
    /// What hooks keep about the run between its events (see `HookContext::metadata`).
    pub(crate) metadata: Mutex<serde_json::Map<String, serde_json::Value>>,
    /// Where the run's output goes as it is produced, when the caller streams it.
    stream: Option<StreamSink>,
    /// What the run spent; made on the first priced call unless the caller gave one.
    spend: OnceLock<Arc<Spend>>,
}

impl RunState {
    pub(crate) fn new(
        shared: Arc<RunShared>,
        started: Instant,
        deadline: Instant,
        user: Option<Arc<str>>,
        tenant: Option<Arc<str>>,
    ) -> Self {
        static NEXT_RUN_ID: AtomicU64 = AtomicU64::new(1);
        RunState {
            run_id: NEXT_RUN_ID.fetch_add(1, Ordering::Relaxed),
            shared,
            started,
            deadline,
            user,
            tenant,
            tokens_used: AtomicU64::new(UNKNOWN_TOKENS),
            max_tokens: AtomicU32::new(0),
            chain_position: AtomicU32::new(0),
            metadata: Mutex::new(serde_json::Map::new()),
            stream: None,
            spend: OnceLock::new(),
        }
    }

    /// Sets where the run's output and spending go.
    pub(crate) fn with_output(
        mut self,
        stream: Option<StreamSink>,
        spend: Option<Arc<Spend>>,
    ) -> Self {
        self.stream = stream;
        if let Some(spend) = spend {
            self.spend = OnceLock::from(spend);
        }
        self
    }

    pub(crate) fn stream_sink(&self) -> Option<&StreamSink> {
        self.stream.as_ref()
    }

    pub(crate) fn spend(&self) -> &Arc<Spend> {
        self.spend.get_or_init(Default::default)
    }

    /// Records one LLM call's usage and cost in the run and in the global ledger.
    pub(crate) fn record_call(
        &self,
        model: &Arc<str>,
        provider: &str,
        usage: Option<crate::llm::Usage>,
        cost_usd: Option<rust_decimal::Decimal>,
    ) {
        let call = CallRecord {
            endpoint: &self.shared.endpoint,
            model,
            provider,
            user: self.user.as_deref(),
            tenant: self.tenant.as_deref(),
            usage,
            cost_usd,
        };
        self.spend().record(&call);
        crate::spend::ledger().record(&call);
    }

    /// The run's timeouts.
    pub(crate) fn timeouts(&self) -> &TimeoutPolicy {
        &self.shared.timeouts
    }

    /// An event about this run on `model`, or `None` when no listener wants its kind.
    pub(crate) fn event(
        self: &Arc<Self>,
        kind: EventKind,
        model: &Arc<str>,
    ) -> Option<PipelineEvent> {
        if !self.listens_to(kind) {
            return None;
        }
        Some(PipelineEvent::new(kind, self, model.clone()))
    }

    /// Whether any listener wants events of `kind`.
    pub(crate) fn listens_to(&self, kind: EventKind) -> bool {
        self.shared.wanted & kind.bit() != 0
    }

    /// Hands `event` to every listener, in order.
    pub(crate) async fn emit(&self, event: &mut PipelineEvent) {
        for sink in self.shared.sinks.iter() {
            sink.on_event(event).await;
        }
    }

    /// Tokens reported by the body, `None` if it reported none.
    pub(crate) fn tokens_used(&self) -> Option<u64> {
        match self.tokens_used.load(Ordering::Acquire) {
            UNKNOWN_TOKENS => None,
            n => Some(n),
        }
    }

    /// Adds a call's tokens to the run's count.
    pub(crate) fn add_tokens(&self, tokens: u64) {
        let _ = self
            .tokens_used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(match used {
                    UNKNOWN_TOKENS => tokens.min(UNKNOWN_TOKENS - 1),
                    n => n.saturating_add(tokens).min(UNKNOWN_TOKENS - 1),
                })
            });
    }

    /// Sets the `max_tokens` override; 0 clears it.
    pub(crate) fn set_max_tokens(&self, max_tokens: u32) {
        self.max_tokens.store(max_tokens, Ordering::Release);
    }

    /// Where in the fallback chain the run is (0: the primary).
    pub(crate) fn chain_position(&self) -> usize {
        self.chain_position.load(Ordering::Acquire) as usize
    }

    pub(crate) fn set_chain_position(&self, position: usize) {
        let position = u32::try_from(position).unwrap_or(u32::MAX);
        self.chain_position.store(position, Ordering::Release);
    }
}

/// Handed to an endpoint body on every attempt.
///
/// Cloning is cheap (two reference counts). The model it names is the one the pipeline
/// chose for this attempt: the primary, a fallback, or a hook's override.
#[derive(Clone, Debug)]
pub struct AgentContext {
    run: Arc<RunState>,
    model: Arc<str>,
    attempt: u32,
}

impl AgentContext {
    pub(crate) fn new(run: Arc<RunState>, model: Arc<str>, attempt: u32) -> Self {
        AgentContext {
            run,
            model,
            attempt,
        }
    }

    /// A context outside any pipeline, for tests and for calling a body by hand: default
    /// timeouts, the deadline two minutes from now, no identity.
    pub fn detached(model: impl Into<Arc<str>>) -> Self {
        let shared = RunShared::detached();
        let now = Instant::now();
        let deadline = timeout::deadline_after(now, shared.timeouts.limit(Stage::Total));
        let run = RunState::new(shared, now, deadline, None, None);
        AgentContext::new(Arc::new(run), model.into(), 1)
    }

    /// The model to use for this attempt.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The model as a shared string.
    pub fn model_arc(&self) -> &Arc<str> {
        &self.model
    }

    /// The attempt number on the current model (1-based).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The run's id, unique within the process.
    pub fn run_id(&self) -> u64 {
        self.run.run_id
    }

    /// The endpoint (its path), empty for a detached context.
    pub fn endpoint(&self) -> &str {
        &self.run.shared.endpoint
    }

    /// The user making the request, if known.
    pub fn user(&self) -> Option<&str> {
        self.run.user.as_deref()
    }

    /// The tenant making the request, if known.
    pub fn tenant(&self) -> Option<&str> {
        self.run.tenant.as_deref()
    }

    /// When the whole run must be done.
    pub fn deadline(&self) -> Instant {
        self.run.deadline
    }

    /// Time left before the run's deadline.
    pub fn time_left(&self) -> Duration {
        self.run.deadline.saturating_duration_since(Instant::now())
    }

    /// The run's timeout policy.
    pub fn timeouts(&self) -> &TimeoutPolicy {
        self.run.timeouts()
    }

    /// The LLM client for this attempt: it calls the model the pipeline chose, bounded
    /// by the run's `llm_call` and `stream_idle` limits, and counts the tokens used.
    ///
    /// ```
    /// use fastagentic::llm::Prompt;
    /// use fastagentic::AgentContext;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), fastagentic::AgentError> {
    /// let ctx = AgentContext::detached("mock/fast");
    /// let reply = ctx.llm().complete(Prompt::user("hello")).await?;
    /// assert_eq!(reply.provider.as_ref(), "mock");
    /// # Ok(()) }
    /// ```
    pub fn llm(&self) -> Llm<'_> {
        Llm::new(self)
    }

    /// The providers this run routes models to.
    pub fn providers(&self) -> Arc<Providers> {
        self.run
            .shared
            .providers
            .clone()
            .unwrap_or_else(default_providers)
    }

    pub(crate) fn add_tokens(&self, tokens: u64) {
        self.run.add_tokens(tokens);
    }

    /// The prices this run's calls are charged at.
    pub(crate) fn pricing(&self) -> Arc<Pricing> {
        self.run
            .shared
            .pricing
            .clone()
            .unwrap_or_else(|| crate::pricing::global().clone())
    }

    pub(crate) fn run(&self) -> &Arc<RunState> {
        &self.run
    }

    /// Whether the caller reads the run's output as it is produced (an SSE request).
    pub fn is_streaming(&self) -> bool {
        self.run.stream.is_some()
    }

    /// Sends `event` to the caller now, when the caller streams the output; does nothing
    /// otherwise. Returns `false` when the caller is gone.
    ///
    /// Events of `ctx.llm().stream(..)` are forwarded without this; use it for output
    /// the body makes itself, such as progress text between two model calls.
    pub async fn send(&self, event: StreamEvent) -> bool {
        match &self.run.stream {
            Some(sink) => sink.send(event).await.is_ok(),
            None => true,
        }
    }

    /// What the run has spent so far: tokens and dollars per model used.
    pub fn spend(&self) -> Arc<Spend> {
        self.run.spend().clone()
    }

    /// Reports tokens used so far by the run; token rate limits are reconciled with the
    /// last value reported.
    pub fn record_tokens(&self, total: u64) {
        self.run
            .tokens_used
            .store(total.min(UNKNOWN_TOKENS - 1), Ordering::Release);
    }

    /// The `max_tokens` that context-overflow recovery lowered the next call to, if any.
    pub fn max_tokens_override(&self) -> Option<u32> {
        match self.run.max_tokens.load(Ordering::Acquire) {
            0 => None,
            n => Some(n),
        }
    }

    /// Runs `future` bounded by the `stage` limit and the run's deadline; a cut is a
    /// `timeout` error naming the stage.
    pub async fn within<F, T>(&self, stage: Stage, future: F) -> Result<T, AgentError>
    where
        F: Future<Output = Result<T, AgentError>>,
    {
        let timeouts = self.run.timeouts();
        // With `on_timeout = warn` the run may outlive its deadline, so stages are held
        // to their own limits only.
        let deadline = match timeouts.on_timeout() {
            OnTimeout::Warn => None,
            OnTimeout::Fail | OnTimeout::Checkpoint => Some(self.run.deadline),
        };
        timeout::run_stage(
            stage,
            timeouts.limit(stage),
            deadline,
            timeouts.limit(Stage::Total),
            future,
        )
        .await
    }
}
