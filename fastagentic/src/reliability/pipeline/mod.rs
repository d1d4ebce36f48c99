//! The pipeline: the five patterns composed in the order of SPEC §3.
//!
//! ```text
//! request → rate limit → total timeout → [ for each model in the fallback chain:
//!                                          [ retry loop: circuit breaker → execute ] ]
//!         → response | classified error
//! ```
//!
//! Each step lives with its pattern: admission in `rate_limit`, the deadline in
//! `timeout`, the chain walk in `fallback`, the attempt loop in `retry`, the breaker's
//! guard in `circuit_breaker`, the body's call in `execute`. This module only wires
//! them, and reports how the run began and ended.

mod builder;
mod request;

pub use self::builder::PipelineBuilder;
pub use self::request::RequestInfo;

use std::future::Future;
use std::sync::Arc;

use tokio::time::Instant;

use crate::context::AgentContext;
use crate::error::{AgentError, ErrorDetail};
use crate::reliability::circuit_breaker::{BreakerRegistry, BreakerSet};
use crate::reliability::events::{EventData, EventKind};
use crate::reliability::execute::in_span;
use crate::reliability::fallback::FallbackChain;
use crate::reliability::rate_limit::{self, RateLimiter};
use crate::reliability::retry::{RetryBudget, RetryLoop, RetryPolicy};
use crate::reliability::run::{RunShared, RunState};
use crate::reliability::timeout::{self, OnTimeout, Stage, TimeoutPolicy, deadline_after};

/// The composed reliability pipeline of one endpoint. Build it once and share it.
///
/// ```
/// use std::time::Duration;
/// use fastagentic::{AgentContext, AgentError, ErrorClass};
/// use fastagentic::reliability::{Pipeline, RequestInfo, RetryPolicy};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pipeline = Pipeline::builder()
///     .endpoint("/echo")
///     .model("mock/echo")
///     .retry(RetryPolicy::builder().max_attempts(2).initial_delay(Duration::from_millis(1)).build()?)
///     .build()?;
/// let answer = pipeline
///     .run(RequestInfo::new(), |ctx: AgentContext| async move {
///         if ctx.attempt() == 1 {
///             return Err(AgentError::new(ErrorClass::ServerError, "flaky"));
///         }
///         Ok::<_, AgentError>(format!("answered by {} on attempt {}", ctx.model(), ctx.attempt()))
///     })
///     .await?;
/// assert_eq!(answer, "answered by mock/echo on attempt 2");
/// # Ok(()) }
/// ```
pub struct Pipeline {
    endpoint: Arc<str>,
    global_limiter: Option<Arc<RateLimiter>>,
    limiter: Option<RateLimiter>,
    timeout: Arc<TimeoutPolicy>,
    breakers: BreakerSet,
    retry: RetryPolicy,
    budget: Option<RetryBudget>,
    fallback: FallbackChain,
    shared: Arc<RunShared>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("endpoint", &self.endpoint)
            .field("fallback", &self.fallback)
            .field("retry", &self.retry)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Pipeline {
    /// A builder with no patterns but the default timeout.
    pub fn builder() -> PipelineBuilder {
        PipelineBuilder::default()
    }

    /// The endpoint this pipeline serves.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The breaker registry (for metrics and status pages).
    pub fn breaker_registry(&self) -> &Arc<BreakerRegistry> {
        self.breakers.registry()
    }

    /// The retry policy, with its defaults resolved (one attempt when none was set).
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// The timeout policy.
    pub fn timeout_policy(&self) -> &TimeoutPolicy {
        &self.timeout
    }

    /// The endpoint's own rate limiter, if it has limits.
    pub fn rate_limiter(&self) -> Option<&RateLimiter> {
        self.limiter.as_ref()
    }

    /// Runs `op` through every pattern. `op` is called once per attempt with a context
    /// naming the model to use.
    pub async fn run<T, E, F, Fut>(&self, request: RequestInfo, mut op: F) -> Result<T, AgentError>
    where
        F: FnMut(AgentContext) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Into<AgentError>,
    {
        let run = Arc::new(self.start(&request));
        let span = tracing::info_span!(
            "fastagentic.request",
            endpoint = %self.endpoint,
            run_id = run.run_id,
            error_class = tracing::field::Empty,
        );
        // Pinned where it is built: the run's future holds the endpoint's whole body (kilobytes
        // once an LLM call is inside), and moving it into the span wrapper, then into the
        // `select!`, copied all of it twice per request.
        let admitted = std::pin::pin!(self.run_admitted(&request, &run, &mut op));
        let work = in_span(admitted, &span);
        let result = match &request.cancel {
            Some(token) => tokio::select! {
                biased;
                () = token.cancelled() => Err(AgentError::cancelled()),
                result = work => result,
            },
            None => work.await,
        };
        if let Err(err) = &result {
            span.record("error_class", err.class().as_str());
        }
        self.finish(&run, &result).await;
        result
    }

    /// Rate limit → total timeout → fallback chain → retry loop → breaker → execute.
    async fn run_admitted<T, E, F, Fut>(
        &self,
        request: &RequestInfo,
        run: &Arc<RunState>,
        op: &mut F,
    ) -> Result<T, AgentError>
    where
        F: FnMut(AgentContext) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Into<AgentError>,
    {
        if run.listens_to(EventKind::Request) {
            Box::pin(self.request_event(run)).await?;
        }
        if let Some(journal) = run.journal().filter(|j| j.resumed())
            && run.listens_to(EventKind::Resume)
        {
            let (run_id, steps) = (journal.run_id().clone(), journal.replayable());
            let event = run.report(EventKind::Resume, self.fallback.primary(), |event| {
                event.data = EventData::Durable { run_id, steps };
            });
            Box::pin(event).await;
        }
        let limiters = [self.global_limiter.as_deref(), self.limiter.as_ref()];
        let (identity, tokens) = (request.identity(), request.estimated_tokens);
        let primary = self.fallback.primary();
        let admissions = rate_limit::admit(limiters, identity, tokens, run, primary, run.started);
        let admissions = admissions.await?;
        if let Some(seen) = &request.limits_seen {
            seen.record(admissions.iter().flatten());
        }
        if let Some(budget) = &self.budget {
            budget.deposit_at(run.started);
        }
        let retries = RetryLoop {
            policy: &self.retry,
            budget: self.budget.as_ref(),
            breakers: &self.breakers,
        };
        let chain = self.fallback.walk(run, &retries, op);
        let result = timeout::bound_total(chain, run, &self.timeout, &self.fallback).await;
        if let Some(used) = run.tokens_used() {
            rate_limit::reconcile(admissions, used);
        }
        result
    }

    /// The run's state: its deadline counted from now, who asks, where its output goes.
    fn start(&self, request: &RequestInfo) -> RunState {
        let start = Instant::now();
        let deadline = deadline_after(start, self.timeout.limit(Stage::Total));
        let (user, tenant) = (request.user.clone(), request.tenant.clone());
        RunState::new(self.shared.clone(), start, deadline, user, tenant)
            .with_output(request.stream.clone(), request.spend.clone())
            .with_journal(request.journal.clone())
    }

    /// Lets listeners see, and maybe refuse, the run before any limit is checked.
    async fn request_event(&self, run: &RunState) -> Result<(), AgentError> {
        let mut steer = run
            .report(EventKind::Request, self.fallback.primary(), |_| {})
            .await;
        match steer.take_rejection() {
            Some(rejection) => Err(rejection),
            None => Ok(()),
        }
    }

    /// Reports how the run ended: `Response` or `Error`, with what it took and spent.
    ///
    /// A durable run its deadline cut with `on_timeout = checkpoint` has not failed: it
    /// reports `Checkpoint` instead of `Error`.
    async fn finish<T>(&self, run: &RunState, result: &Result<T, AgentError>) {
        let kind = match result {
            Ok(_) => EventKind::Response,
            Err(err) if run.journal().is_some() && self.checkpoints(err) => EventKind::Checkpoint,
            Err(_) => EventKind::Error,
        };
        if !run.listens_to(kind) {
            return;
        }
        // Boxed so the common no-listener path does not carry this state in its future.
        Box::pin(self.outcome_event(kind, run, result)).await;
    }

    /// Whether `err` stops a durable run at a checkpoint rather than failing it: the
    /// run's total deadline passed and the endpoint says `on_timeout = checkpoint`.
    pub(crate) fn checkpoints(&self, err: &AgentError) -> bool {
        self.timeout.on_timeout() == OnTimeout::Checkpoint
            && matches!(
                err.detail(),
                Some(ErrorDetail::Timeout {
                    stage: Stage::Total,
                    ..
                })
            )
    }

    async fn outcome_event<T>(
        &self,
        kind: EventKind,
        run: &RunState,
        result: &Result<T, AgentError>,
    ) {
        let position = run.chain_position();
        let model = self.fallback.model_at(position);
        if let (EventKind::Checkpoint, Some(journal)) = (kind, run.journal()) {
            let (run_id, steps) = (journal.run_id().clone(), journal.len());
            run.report(kind, model, |event| {
                event.error = result.as_ref().err().cloned();
                event.data = EventData::Durable { run_id, steps };
            })
            .await;
            return;
        }
        let spend = run.spend();
        let (usage, cost_usd) = match spend.calls() {
            0 => (None, None),
            _ => (spend.usage(), spend.cost_usd()),
        };
        run.report(kind, model, |event| {
            event.error = result.as_ref().err().cloned();
            event.data = EventData::Outcome {
                elapsed: run.started.elapsed(),
                usage,
                cost_usd,
                fell_back: position > 0,
            };
        })
        .await;
    }
}
