//! The context an endpoint body receives: which model to use, which attempt this is, how
//! much time is left, and who is asking.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::durable::{Journal, StepCursor};
use crate::error::AgentError;
use crate::llm::{Llm, Providers, StreamEvent, default_providers};
use crate::pricing::Pricing;
use crate::reliability::run::{RunShared, RunState};
use crate::reliability::timeout::{self, OnTimeout, Stage, TimeoutPolicy};
use crate::spend::Spend;

/// Handed to an endpoint body on every attempt.
///
/// Cloning is cheap (two reference counts, three in a durable run). The model it names
/// is the one the pipeline chose for this attempt: the primary, a fallback, or a hook's
/// override.
#[derive(Clone, Debug)]
pub struct AgentContext {
    run: Arc<RunState>,
    model: Arc<str>,
    attempt: u32,
    /// Where this attempt is in the run's journal; `None` unless the run is durable.
    steps: Option<Arc<StepCursor>>,
}

impl AgentContext {
    pub(crate) fn new(run: Arc<RunState>, model: Arc<str>, attempt: u32) -> Self {
        let steps = run.journal().map(|_| Arc::default());
        AgentContext {
            run,
            model,
            attempt,
            steps,
        }
    }

    /// The run's journal and this attempt's place in it, when the run is durable.
    pub(crate) fn journal(&self) -> Option<(&Arc<Journal>, &StepCursor)> {
        Some((self.run.journal()?, self.steps.as_deref()?))
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
        self.run.shared.pricing.clone()
    }

    pub(crate) fn run(&self) -> &Arc<RunState> {
        &self.run
    }

    /// Whether the caller reads the run's output as it is produced (an SSE request).
    pub fn is_streaming(&self) -> bool {
        self.run.stream_sink().is_some()
    }

    /// Sends `event` to the caller now, when the caller streams the output; does nothing
    /// otherwise. Returns `false` when the caller is gone.
    ///
    /// Events of `ctx.llm().stream(..)` are forwarded without this; use it for output
    /// the body makes itself, such as progress text between two model calls.
    pub async fn send(&self, event: StreamEvent) -> bool {
        match self.run.stream_sink() {
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
        self.run.record_tokens(total);
    }

    /// The `max_tokens` that context-overflow recovery lowered the next call to, if any.
    pub fn max_tokens_override(&self) -> Option<u32> {
        self.run.max_tokens()
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
