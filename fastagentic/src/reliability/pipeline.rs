//! The pipeline: the five patterns composed in the order of SPEC §3.
//!
//! ```text
//! request → rate limit → total timeout → [ for each model in the fallback chain:
//!                                          [ retry loop: circuit breaker → execute ] ]
//!         → response | classified error
//! ```

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures_util::future::Either;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::PolicyError;
use super::circuit_breaker::{
    BreakerKey, BreakerPermit, BreakerRegistry, CallOutcome, CircuitBreaker, CircuitBreakerPolicy,
    CircuitState, Transition,
};
use super::events::{EventData, EventKind, EventSink, PipelineEvent, Steering};
use super::fallback::FallbackChain;
use super::rate_limit::{Admission, Identity, LimitScope, RateLimitPolicy, RateLimiter};
use super::retry::{RetryDecision, RetryPolicy, StopReason};
use super::retry_budget::RetryBudget;
use super::run::{RunShared, RunState};
use super::timeout::{OnTimeout, Stage, TimeoutPolicy, deadline_after, timeout_error};
use crate::context::AgentContext;
use crate::error::{AgentError, ErrorClass, ErrorDetail};
use crate::llm::{Providers, StreamSink};
use crate::pricing::Pricing;
use crate::spend::Spend;

/// Who is calling and with what, for one run.
#[derive(Clone, Debug, Default)]
pub struct RequestInfo {
    user: Option<Arc<str>>,
    tenant: Option<Arc<str>>,
    estimated_tokens: Option<u32>,
    cancel: Option<CancellationToken>,
    stream: Option<StreamSink>,
    spend: Option<Arc<Spend>>,
}

impl RequestInfo {
    /// An anonymous request.
    pub fn new() -> Self {
        RequestInfo::default()
    }

    /// Sets the user, for per-user limits.
    #[must_use]
    pub fn user(mut self, user: impl Into<Arc<str>>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Sets the tenant, for per-tenant limits.
    #[must_use]
    pub fn tenant(mut self, tenant: impl Into<Arc<str>>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// Sets the token estimate reserved against token limits.
    #[must_use]
    pub fn estimated_tokens(mut self, tokens: u32) -> Self {
        self.estimated_tokens = Some(tokens);
        self
    }

    /// Forwards the run's output to `sink` as it is produced: every event of every
    /// [`ctx.llm().stream(..)`](crate::llm::Llm::stream) the body reads, and whatever it
    /// sends with [`AgentContext::send`]. The server uses this to answer
    /// `text/event-stream`.
    ///
    /// Output that reached the sink cannot be taken back, so a stream that fails after
    /// it forwarded something is not retried: its error carries the partial output.
    #[must_use]
    pub fn stream_to(mut self, sink: StreamSink) -> Self {
        self.stream = Some(sink);
        self
    }

    /// Records what the run spends (tokens and dollars, per model) into `spend`, for the
    /// caller to read once the run is over.
    #[must_use]
    pub fn spend(mut self, spend: Arc<Spend>) -> Self {
        self.spend = Some(spend);
        self
    }

    /// Cancels the run (sleeps and calls stop at once) when `token` is cancelled.
    #[must_use]
    pub fn cancel_on(mut self, token: CancellationToken) -> Self {
        self.cancel = Some(token);
        self
    }

    fn identity(&self) -> Identity<'_> {
        Identity {
            user: self.user.as_ref(),
            tenant: self.tenant.as_ref(),
        }
    }
}

/// Builds a [`Pipeline`]. Every pattern is optional except the timeout, which defaults to
/// SPEC §3.3's limits so no run is unbounded.
#[derive(Default)]
pub struct PipelineBuilder {
    endpoint: Option<Arc<str>>,
    model: Option<Arc<str>>,
    rate_limit: Option<RateLimitPolicy>,
    global_limiter: Option<Arc<RateLimiter>>,
    timeout: TimeoutPolicy,
    circuit_breaker: Option<CircuitBreakerPolicy>,
    breaker_overrides: Vec<(Arc<str>, CircuitBreakerPolicy)>,
    registry: Option<Arc<BreakerRegistry>>,
    retry: Option<RetryPolicy>,
    fallback: Option<FallbackChain>,
    sinks: Vec<Arc<dyn EventSink>>,
    providers: Option<Arc<Providers>>,
    pricing: Option<Arc<Pricing>>,
    durable: bool,
}

impl PipelineBuilder {
    /// The endpoint this pipeline serves (its path); names breakers and events.
    #[must_use]
    pub fn endpoint(mut self, endpoint: impl Into<Arc<str>>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// The model to use when there is no fallback chain.
    #[must_use]
    pub fn model(mut self, model: impl Into<Arc<str>>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// Limits for this endpoint, its users and tenants.
    #[must_use]
    pub fn rate_limit(mut self, policy: RateLimitPolicy) -> Self {
        self.rate_limit = Some(policy);
        self
    }

    /// An app-wide limiter shared with other pipelines, checked before the endpoint's.
    #[must_use]
    pub fn global_rate_limiter(mut self, limiter: Arc<RateLimiter>) -> Self {
        self.global_limiter = Some(limiter);
        self
    }

    /// Timeouts (default: SPEC §3.3's).
    #[must_use]
    pub fn timeout(mut self, policy: TimeoutPolicy) -> Self {
        self.timeout = policy;
        self
    }

    /// A breaker per model with this policy.
    #[must_use]
    pub fn circuit_breaker(mut self, policy: CircuitBreakerPolicy) -> Self {
        self.circuit_breaker = Some(policy);
        self
    }

    /// A different breaker policy for one dependency (a model name).
    #[must_use]
    pub fn circuit_breaker_for(
        mut self,
        dependency: impl Into<Arc<str>>,
        policy: CircuitBreakerPolicy,
    ) -> Self {
        self.breaker_overrides.push((dependency.into(), policy));
        self
    }

    /// The registry breakers are kept in (default: a new one for this pipeline).
    #[must_use]
    pub fn breaker_registry(mut self, registry: Arc<BreakerRegistry>) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Retries (default: one attempt).
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// A fallback chain of models.
    #[must_use]
    pub fn fallback(mut self, chain: FallbackChain) -> Self {
        self.fallback = Some(chain);
        self
    }

    /// Adds a listener for the pipeline's events.
    #[must_use]
    pub fn event_sink(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.sinks.push(sink);
        self
    }

    /// The providers `ctx.llm()` routes models to (default:
    /// [`default_providers`](crate::llm::default_providers), read from the environment).
    #[must_use]
    pub fn providers(mut self, providers: Arc<Providers>) -> Self {
        self.providers = Some(providers);
        self
    }

    /// The prices the pipeline's LLM calls are charged at; [`pricing::global`] (the
    /// shipped tables, or `FASTAGENTIC_PRICING_DIR`) unless set.
    ///
    /// [`pricing::global`]: crate::pricing::global
    #[must_use]
    pub fn pricing(mut self, pricing: Arc<Pricing>) -> Self {
        self.pricing = Some(pricing);
        self
    }

    /// Marks the endpoint durable. Durable runs do not exist yet, so this is refused at
    /// build time with a clear error.
    #[must_use]
    pub fn durable(mut self, durable: bool) -> Self {
        self.durable = durable;
        self
    }

    /// Checks the combination and builds the pipeline.
    pub fn build(self) -> Result<Pipeline, PolicyError> {
        if self.durable {
            return Err(PolicyError::Unsupported(
                "durable endpoints are not available yet; remove `durable = true`",
            ));
        }
        if self.timeout.on_timeout() == OnTimeout::Checkpoint {
            return Err(PolicyError::Unsupported(
                "`on_timeout = \"checkpoint\"` needs a durable endpoint, and durable runs are not available yet; use \"fail\" or \"warn\"",
            ));
        }
        let endpoint = self.endpoint.unwrap_or_else(|| "/".into());
        let fallback = match (self.fallback, self.model) {
            (Some(chain), _) => chain,
            (None, Some(model)) => FallbackChain::single(model),
            (None, None) => FallbackChain::single("default"),
        };
        let registry = self.registry.unwrap_or_default();
        let breakers = BreakerSet {
            default_policy: self.circuit_breaker,
            overrides: self.breaker_overrides,
            registry,
            chain: Vec::new(),
        };
        let breakers = breakers.with_chain(&endpoint, &fallback);
        let retry = self.retry.unwrap_or_else(RetryPolicy::none);
        let budget = retry.budget().map(|policy| RetryBudget::new(*policy));
        let limiter = self
            .rate_limit
            .map(|policy| RateLimiter::new(&policy, LimitScope::Endpoint))
            .filter(|limiter| !limiter.is_empty());
        let timeout = Arc::new(self.timeout);
        let shared = Arc::new(RunShared {
            endpoint: endpoint.clone(),
            timeouts: timeout.clone(),
            providers: self.providers,
            pricing: self.pricing,
            wanted: super::events::wanted_kinds(&self.sinks),
            sinks: self.sinks.into(),
            max_attempts: retry.max_attempts(),
        });
        Ok(Pipeline {
            endpoint,
            global_limiter: self.global_limiter,
            limiter,
            timeout,
            breakers,
            retry,
            budget,
            fallback,
            shared,
        })
    }
}

/// The breakers of one pipeline: one per model of the chain, looked up once at build
/// time, plus registry lookups for models a hook switches to.
struct BreakerSet {
    default_policy: Option<CircuitBreakerPolicy>,
    overrides: Vec<(Arc<str>, CircuitBreakerPolicy)>,
    registry: Arc<BreakerRegistry>,
    chain: Vec<Option<Arc<CircuitBreaker>>>,
}

impl BreakerSet {
    fn with_chain(mut self, endpoint: &Arc<str>, chain: &FallbackChain) -> Self {
        let models: Vec<Arc<str>> = std::iter::once(chain.primary().clone())
            .chain(chain.steps().iter().map(|s| s.model.clone()))
            .collect();
        self.chain = models.iter().map(|m| self.lookup(endpoint, m)).collect();
        self
    }

    fn policy_for(&self, model: &str) -> Option<CircuitBreakerPolicy> {
        self.overrides
            .iter()
            .find(|(name, _)| &**name == model)
            .map(|(_, policy)| policy.clone())
            .or_else(|| self.default_policy.clone())
    }

    fn lookup(&self, endpoint: &Arc<str>, model: &Arc<str>) -> Option<Arc<CircuitBreaker>> {
        let policy = self.policy_for(model)?;
        let key = BreakerKey {
            endpoint: endpoint.clone(),
            dependency: model.clone(),
        };
        Some(self.registry.get_or_create(key, || policy))
    }
}

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

/// Attaches `span` to `future` only when a subscriber listens: even a disabled span,
/// wrapped around every poll, cost the success path about 120 ns per run (criterion,
/// `full_success_in_task`: 636 → 513 ns).
pub(crate) fn in_span<F: Future>(
    future: F,
    span: &tracing::Span,
) -> Either<F, tracing::instrument::Instrumented<F>> {
    if span.is_disabled() {
        Either::Left(future)
    } else {
        Either::Right(future.instrument(span.clone()))
    }
}

/// Whether sleeping `delay` still leaves the run time to make its next attempt.
fn fits(run: &RunState, delay: Duration) -> bool {
    delay < run.deadline.saturating_duration_since(Instant::now())
}

/// Where the retry loop for one model is.
struct Attempt {
    model: Arc<str>,
    breaker: Option<Arc<CircuitBreaker>>,
    number: u32,
    consecutive_overloads: u32,
    overflow_recovered: bool,
}

/// A failed attempt, and whether its failure opened the model's breaker.
struct Failed {
    error: AgentError,
    opened_breaker: bool,
}

/// Whether a failure counts against the model's breaker: everything but our own
/// deadlines for work that is not the model's (tools, checkpoints, strategies, the run).
fn blames_the_model(err: &AgentError) -> bool {
    match err.detail() {
        Some(ErrorDetail::Timeout { stage, .. }) => {
            matches!(stage, Stage::LlmCall | Stage::StreamIdle)
        }
        _ => true,
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
        &self.breakers.registry
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
        let start = Instant::now();
        let total = self.timeout.limit(Stage::Total);
        let deadline = deadline_after(start, total);
        let run = Arc::new(
            RunState::new(
                self.shared.clone(),
                start,
                deadline,
                request.user.clone(),
                request.tenant.clone(),
            )
            .with_output(request.stream.clone(), request.spend.clone()),
        );
        let span = tracing::info_span!(
            "fastagentic.request",
            endpoint = %self.endpoint,
            run_id = run.run_id,
            error_class = tracing::field::Empty,
        );
        let work = self.run_admitted(&request, &run, &mut op, start);
        let work = in_span(work, &span);
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
        let outcome = if result.is_ok() {
            EventKind::Response
        } else {
            EventKind::Error
        };
        if run.listens_to(outcome) {
            // Boxed so the common no-listener path does not carry this state in its future.
            Box::pin(self.outcome_event(&run, &result)).await;
        }
        result
    }

    /// Reports how the run ended: `Response` or `Error`.
    async fn outcome_event<T>(&self, run: &Arc<RunState>, result: &Result<T, AgentError>) {
        let kind = match result {
            Ok(_) => EventKind::Response,
            Err(_) => EventKind::Error,
        };
        let model = self.chain_model(run.chain_position());
        if let Some(mut event) = self.event(kind, run, &model) {
            event.error = result.as_ref().err().cloned();
            let spend = run.spend();
            let (usage, cost_usd) = match spend.calls() {
                0 => (None, None),
                _ => (spend.usage(), spend.cost_usd()),
            };
            event.data = EventData::Outcome {
                elapsed: run.started.elapsed(),
                usage,
                cost_usd,
                fell_back: run.chain_position() > 0,
            };
            self.emit(&mut event).await;
        }
    }

    /// Lets listeners see, and maybe refuse, the run before any limit is checked.
    async fn request_event(&self, run: &Arc<RunState>) -> Result<(), AgentError> {
        let Some(mut event) = self.event(EventKind::Request, run, self.fallback.primary()) else {
            return Ok(());
        };
        self.emit(&mut event).await;
        match event.steer.take_rejection() {
            Some(rejection) => Err(rejection),
            None => Ok(()),
        }
    }

    /// Everything after the run's state exists: admission, then the bounded chain, then
    /// token reconciliation.
    async fn run_admitted<T, E, F, Fut>(
        &self,
        request: &RequestInfo,
        run: &Arc<RunState>,
        op: &mut F,
        start: Instant,
    ) -> Result<T, AgentError>
    where
        F: FnMut(AgentContext) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Into<AgentError>,
    {
        if run.listens_to(EventKind::Request) {
            Box::pin(self.request_event(run)).await?;
        }
        let admissions = self.admit(request, run, start).await?;
        if let Some(budget) = &self.budget {
            budget.deposit_at(start);
        }
        let result = self.bounded(self.run_chain(run, op), run, start).await;
        if let Some(used) = run.tokens_used() {
            for admission in admissions.into_iter().flatten() {
                admission.reconcile(used);
            }
        }
        result
    }

    /// Applies the total timeout to the whole chain.
    async fn bounded<T>(
        &self,
        chain: impl Future<Output = Result<T, AgentError>>,
        run: &Arc<RunState>,
        start: Instant,
    ) -> Result<T, AgentError> {
        let total = self.timeout.limit(Stage::Total);
        let mut chain = std::pin::pin!(chain);
        // A chain that finishes on its first poll (a cache hit, a mock) never needs the
        // timer, so arm it only once the chain has to wait.
        let first = std::future::poll_fn(|cx| Poll::Ready(chain.as_mut().poll(cx))).await;
        if let Poll::Ready(result) = first {
            return result;
        }
        if let Ok(result) = tokio::time::timeout_at(run.deadline, chain.as_mut()).await {
            return result;
        }
        let position = run.chain_position();
        let tried: Vec<Arc<str>> = (0..=position).map(|i| self.chain_model(i)).collect();
        let err = timeout_error(Stage::Total, start.elapsed(), total)
            .with_model(self.chain_model(position))
            .with_attempted(tried);
        if let Some(mut event) = self.event(EventKind::Timeout, run, &self.chain_model(position)) {
            event.data = EventData::Timeout {
                stage: Stage::Total,
            };
            event.error = Some(err.clone());
            self.emit(&mut event).await;
        }
        match self.timeout.on_timeout() {
            OnTimeout::Warn => {
                tracing::warn!(endpoint = %self.endpoint, "run passed its total timeout; finishing anyway (on_timeout = warn)");
                chain.await
            }
            OnTimeout::Fail | OnTimeout::Checkpoint => Err(err),
        }
    }

    /// Passes the app-wide limiter, then the endpoint's. The common case — a slot free
    /// now — stays synchronous; only a wait in `delay`/`queue` mode awaits.
    async fn admit<'a>(
        &'a self,
        request: &'a RequestInfo,
        run: &Arc<RunState>,
        mut now: Instant,
    ) -> Result<[Option<Admission<'a>>; 2], AgentError> {
        let mut admissions = [None, None];
        let limiters = [self.global_limiter.as_deref(), self.limiter.as_ref()];
        for (slot, limiter) in admissions.iter_mut().zip(limiters) {
            let Some(limiter) = limiter else { continue };
            let admitted = match limiter.reserve(
                request.identity(),
                request.estimated_tokens,
                now,
                run.deadline,
            ) {
                Ok(reservation) => match reservation.ready() {
                    Ok(admission) => Ok(admission),
                    Err(pending) => {
                        let admitted = pending.wait().await;
                        now = Instant::now(); // the wait moved the clock on
                        admitted
                    }
                },
                Err(err) => Err(err),
            };
            match admitted {
                // Armed until every limiter has admitted: a cancellation while a later
                // limiter makes the run wait hands this slot back too.
                Ok(admission) => *slot = Some(admission.armed()),
                Err(err) => {
                    self.rate_limit_event(run, &err).await;
                    for admission in admissions.into_iter().flatten() {
                        admission.release();
                    }
                    return Err(err);
                }
            }
        }
        Ok(admissions.map(|admission| admission.map(Admission::commit)))
    }

    async fn rate_limit_event(&self, run: &Arc<RunState>, err: &AgentError) {
        if let Some(mut event) = self.event(EventKind::RateLimit, run, self.fallback.primary()) {
            let limit_type = match err.detail() {
                Some(ErrorDetail::RateLimited { limit_type, .. }) => Some(*limit_type),
                _ => None,
            };
            event.data = EventData::RateLimit { limit_type };
            event.error = Some(err.clone());
            self.emit(&mut event).await;
        }
    }

    /// The model at `position` in the fallback chain (0 is the primary).
    fn chain_model(&self, position: usize) -> Arc<str> {
        match position.checked_sub(1) {
            None => self.fallback.primary().clone(),
            Some(step) => self
                .fallback
                .steps()
                .get(step)
                .map_or_else(|| self.fallback.primary().clone(), |s| s.model.clone()),
        }
    }

    /// Walks the fallback chain: each model gets its own breaker and retry loop.
    async fn run_chain<T, E, F, Fut>(
        &self,
        run: &Arc<RunState>,
        op: &mut F,
    ) -> Result<T, AgentError>
    where
        F: FnMut(AgentContext) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Into<AgentError>,
    {
        let steps = self.fallback.steps();
        let mut model = self.fallback.primary().clone();
        let mut position = 0;
        let mut tried: Vec<Arc<str>> = Vec::new();
        loop {
            let breaker = self.breakers.chain.get(position).cloned().flatten();
            let err = match self.run_model(run, model.clone(), breaker, op).await {
                Ok(value) => return Ok(value),
                Err(err) => err,
            };
            tried.push(model.clone());
            // Output already reached the caller: another model would start the answer
            // over, so the error (with the partial output) is final.
            let next = steps
                .iter()
                .enumerate()
                .skip(position)
                .filter(|_| err.partial().is_none())
                .find(|(_, step)| step.triggers_on(err.class()));
            let Some((index, step)) = next else {
                // A lone model keeps any list the body itself reported (strategies tried).
                if tried.len() > 1 || err.attempted().is_empty() {
                    return Err(err.with_attempted(tried));
                }
                return Err(err);
            };
            if let Some(mut event) = self.event(EventKind::Fallback, run, &model) {
                event.data = EventData::Fallback {
                    to: step.model.clone(),
                };
                event.error = Some(err.clone());
                self.emit(&mut event).await;
            }
            model = step.model.clone();
            position = index + 1;
            run.set_chain_position(position);
            run.set_max_tokens(0); // sized for the previous model's window
        }
    }

    /// The retry loop for one model: breaker → execute, until success or a stop.
    async fn run_model<T, E, F, Fut>(
        &self,
        run: &Arc<RunState>,
        model: Arc<str>,
        breaker: Option<Arc<CircuitBreaker>>,
        op: &mut F,
    ) -> Result<T, AgentError>
    where
        F: FnMut(AgentContext) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Into<AgentError>,
    {
        let mut attempt = Attempt {
            model,
            breaker,
            number: 0,
            consecutive_overloads: 0,
            overflow_recovered: false,
        };
        loop {
            attempt.number += 1;
            let (err, opened_breaker) = match self.execute(run, &attempt, op).await {
                Ok(value) => {
                    if attempt.number > 1 {
                        self.retry_end(run, &attempt, None, None).await;
                    }
                    return Ok(value);
                }
                Err(failed) => (failed.error, failed.opened_breaker),
            };
            self.stage_timeout_event(run, &attempt, &err).await;
            if err.class() == ErrorClass::CircuitOpen {
                return Err(err); // fail fast; the chain decides about fallback
            }
            if let Some(breaker) = attempt.breaker.as_deref().filter(|_| opened_breaker) {
                // This failure opened the breaker: the remaining attempts would fail
                // fast, so skip them (and their sleeps) and let the chain fall back.
                self.end_retries(run, &attempt, &err, StopReason::CircuitOpened)
                    .await;
                return Err(breaker.refusal().with_cause(err));
            }
            if err.class() == ErrorClass::Overloaded {
                attempt.consecutive_overloads += 1;
            } else {
                attempt.consecutive_overloads = 0;
            }
            if self.recover_context_overflow(run, &mut attempt, &err) {
                continue;
            }
            let delay = match self.next_delay(run, &attempt, &err) {
                Ok(delay) => delay,
                Err(reason) => {
                    self.end_retries(run, &attempt, &err, reason).await;
                    return Err(err);
                }
            };
            let steer = self.announce_retry(run, &attempt, &err, delay).await;
            if steer.is_aborted() {
                self.end_retries(run, &attempt, &err, StopReason::Aborted)
                    .await;
                return Err(err);
            }
            let delay = steer.delay_override().unwrap_or(delay);
            if let Some(model) = steer.model_override()
                && *model != attempt.model
            {
                attempt.breaker = self.breakers.lookup(&self.endpoint, model);
                attempt.model = model.clone();
                attempt.consecutive_overloads = 0;
                run.set_max_tokens(0); // sized for the old model's window
            }
            if !fits(run, delay) {
                self.end_retries(run, &attempt, &err, StopReason::NoTimeLeft)
                    .await;
                return Err(err);
            }
            tokio::time::sleep(delay).await;
        }
    }

    /// The delay before the next attempt, or why there is none. The budget is charged
    /// last, so a retry that will not happen costs nothing.
    fn next_delay(
        &self,
        run: &RunState,
        attempt: &Attempt,
        err: &AgentError,
    ) -> Result<Duration, StopReason> {
        let delay = match self
            .retry
            .decide(err, attempt.number, attempt.consecutive_overloads)
        {
            RetryDecision::Retry { delay, .. } => delay,
            RetryDecision::Stop(reason) => return Err(reason),
        };
        // A delay that outlasts the run is not slept: the error moves on now.
        if !fits(run, delay) {
            return Err(StopReason::NoTimeLeft);
        }
        if self.budget.as_ref().is_some_and(|b| !b.withdraw()) {
            return Err(StopReason::BudgetExhausted);
        }
        Ok(delay)
    }

    /// Reports the end of a retry loop, unless nothing was retried for the plain reason
    /// that the error is not retryable or there were no retries to make.
    async fn end_retries(
        &self,
        run: &Arc<RunState>,
        attempt: &Attempt,
        err: &AgentError,
        reason: StopReason,
    ) {
        let uneventful = matches!(reason, StopReason::NotRetryable | StopReason::Exhausted);
        if attempt.number > 1 || !uneventful {
            self.retry_end(run, attempt, Some(err), Some(reason)).await;
        }
    }

    /// Reports a stage deadline (an LLM call, a tool call) that cut this attempt.
    async fn stage_timeout_event(&self, run: &Arc<RunState>, attempt: &Attempt, err: &AgentError) {
        let Some(ErrorDetail::Timeout { stage, .. }) = err.detail() else {
            return;
        };
        if let Some(mut event) = self.event(EventKind::Timeout, run, &attempt.model) {
            event.attempt = attempt.number;
            event.data = EventData::Timeout { stage: *stage };
            event.error = Some(err.clone());
            self.emit(&mut event).await;
        }
    }

    /// One attempt: admitted and recorded by the model's breaker.
    async fn execute<T, E, F, Fut>(
        &self,
        run: &Arc<RunState>,
        attempt: &Attempt,
        op: &mut F,
    ) -> Result<T, Failed>
    where
        F: FnMut(AgentContext) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Into<AgentError>,
    {
        let permit = match attempt.breaker.as_deref().map(CircuitBreaker::acquire) {
            Some(Err(err)) => {
                return Err(Failed {
                    error: err,
                    opened_breaker: false,
                });
            }
            Some(Ok(permit)) => {
                self.circuit_event(run, &attempt.model, permit.transition(), None)
                    .await;
                Some(permit)
            }
            None => None,
        };
        // Only a slow-call threshold needs the call's duration; skip the clock otherwise.
        let started = permit
            .as_ref()
            .filter(|_| {
                attempt
                    .breaker
                    .as_deref()
                    .is_some_and(CircuitBreaker::measures_latency)
            })
            .map(|_| Instant::now());
        let ctx = AgentContext::new(run.clone(), attempt.model.clone(), attempt.number);
        let span = tracing::info_span!(
            "fastagentic.attempt",
            model = %attempt.model,
            attempt = attempt.number,
            error_class = tracing::field::Empty,
        );
        let result = in_span(op(ctx), &span).await.map_err(|e| {
            let err: AgentError = e.into();
            match err.model() {
                Some(_) => err,
                None => err.with_model(attempt.model.clone()),
            }
        });
        if let Err(err) = &result {
            span.record("error_class", err.class().as_str());
        }
        let opened_breaker = self
            .record(run, &attempt.model, permit, &result, started)
            .await;
        result.map_err(|error| Failed {
            error,
            opened_breaker,
        })
    }

    async fn record<T>(
        &self,
        run: &Arc<RunState>,
        model: &Arc<str>,
        permit: Option<BreakerPermit<'_>>,
        result: &Result<T, AgentError>,
        started: Option<Instant>,
    ) -> bool {
        let Some(permit) = permit else { return false };
        let outcome = match result {
            Ok(_) => CallOutcome::Success {
                elapsed: started.map_or(Duration::ZERO, |t| t.elapsed()),
            },
            // Our own deadlines for tools, checkpoints, strategies or the whole run say
            // nothing about the model's health: leave the breaker out of it.
            Err(err) if !blames_the_model(err) => return false,
            Err(err) => CallOutcome::Failure(err.class()),
        };
        let transition = permit.record(outcome);
        self.circuit_event(run, model, transition, result.as_ref().err())
            .await;
        transition.is_some_and(|t| t.to == CircuitState::Open)
    }

    /// Lowers `max_tokens` and retries at once, once, when the error says by how much.
    fn recover_context_overflow(
        &self,
        run: &RunState,
        attempt: &mut Attempt,
        err: &AgentError,
    ) -> bool {
        if err.class() != ErrorClass::ContextOverflow
            || attempt.overflow_recovered
            || self
                .retry
                .no_retry_on()
                .contains(ErrorClass::ContextOverflow)
            || err.should_retry() == Some(false)
            || !fits(run, Duration::ZERO)
        {
            return false;
        }
        let Some(ErrorDetail::ContextOverflow {
            input_tokens: Some(input),
            context_limit: Some(limit),
            ..
        }) = err.detail()
        else {
            return false;
        };
        let room = limit.saturating_sub(*input);
        let floor = u64::from(self.retry.context_overflow_floor());
        if room < floor {
            return false;
        }
        run.set_max_tokens(u32::try_from(room).unwrap_or(u32::MAX));
        attempt.overflow_recovered = true;
        true
    }

    async fn announce_retry(
        &self,
        run: &Arc<RunState>,
        attempt: &Attempt,
        err: &AgentError,
        delay: Duration,
    ) -> Steering {
        let Some(mut event) = self.event(EventKind::Retry, run, &attempt.model) else {
            return Steering::default();
        };
        event.attempt = attempt.number;
        event.error = Some(err.clone());
        event.data = EventData::Retry { next_delay: delay };
        self.emit(&mut event).await;
        event.steer
    }

    async fn retry_end(
        &self,
        run: &Arc<RunState>,
        attempt: &Attempt,
        err: Option<&AgentError>,
        reason: Option<StopReason>,
    ) {
        if let Some(mut event) = self.event(EventKind::RetryEnd, run, &attempt.model) {
            event.attempt = attempt.number;
            event.data = EventData::RetryEnd {
                succeeded: err.is_none(),
                stop_reason: reason,
            };
            event.error = err.cloned();
            self.emit(&mut event).await;
        }
    }

    async fn circuit_event(
        &self,
        run: &Arc<RunState>,
        model: &Arc<str>,
        transition: Option<Transition>,
        cause: Option<&AgentError>,
    ) {
        let Some(transition) = transition else { return };
        let kind = match transition.to {
            CircuitState::Open => EventKind::CircuitOpen,
            CircuitState::HalfOpen => EventKind::CircuitHalfOpen,
            CircuitState::Closed => EventKind::CircuitClose,
        };
        if let Some(mut event) = self.event(kind, run, model) {
            // The failure that opened (or re-opened) the breaker.
            event.error = cause.cloned();
            self.emit(&mut event).await;
        }
    }

    /// A fresh event, or `None` when nobody listens (so nothing is built).
    fn event(
        &self,
        kind: EventKind,
        run: &Arc<RunState>,
        model: &Arc<str>,
    ) -> Option<PipelineEvent> {
        run.event(kind, model)
    }

    async fn emit(&self, event: &mut PipelineEvent) {
        for sink in self.shared.sinks.iter() {
            sink.on_event(event).await;
        }
    }
}
