//! Building a pipeline: each pattern optional but the timeout, the combination checked
//! once, the breakers of the chain looked up once.

use std::sync::Arc;

use super::Pipeline;
use crate::llm::Providers;
use crate::metrics::Metrics;
use crate::pricing::Pricing;
use crate::reliability::PolicyError;
use crate::reliability::circuit_breaker::{BreakerRegistry, BreakerSet, CircuitBreakerPolicy};
use crate::reliability::events::{EventSink, wanted_kinds};
use crate::reliability::fallback::FallbackChain;
use crate::reliability::rate_limit::{LimitScope, RateLimitPolicy, RateLimiter};
use crate::reliability::retry::{RetryBudget, RetryPolicy};
use crate::reliability::run::RunShared;
use crate::reliability::timeout::TimeoutPolicy;
use crate::spend::Ledger;
use crate::state::StateStore;

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
    ledger: Option<Arc<Ledger>>,
    default_max_attempts: Option<u32>,
    durable: bool,
    store: Option<(Arc<dyn StateStore>, Arc<Metrics>)>,
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

    /// Keeps this endpoint's rate-limit cells in `store`, shared by every process that
    /// uses it (see [`state`](crate::state)). Store errors are counted in
    /// [`metrics::global`](crate::metrics::global).
    #[must_use]
    pub fn state_store(mut self, store: Arc<dyn StateStore>) -> Self {
        self.store = Some((store, crate::metrics::global().clone()));
        self
    }

    /// [`PipelineBuilder::state_store`], counting store errors in `metrics`.
    #[cfg_attr(not(feature = "server"), allow(dead_code))] // only the App calls it
    pub(crate) fn state_store_counted_in(
        mut self,
        store: Arc<dyn StateStore>,
        metrics: Arc<Metrics>,
    ) -> Self {
        self.store = Some((store, metrics));
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

    /// The ledger the pipeline's LLM calls are recorded in; [`spend::ledger`] (the
    /// process-wide one) unless set.
    ///
    /// [`spend::ledger`]: crate::spend::ledger
    #[must_use]
    pub fn ledger(mut self, ledger: Arc<Ledger>) -> Self {
        self.ledger = Some(ledger);
        self
    }

    /// The attempt count of a retry policy that sets no `max_attempts` (default 3). An
    /// [`App`](crate::App) passes [`default_max_attempts`], which reads
    /// `FASTAGENTIC_MAX_ATTEMPTS`.
    ///
    /// [`default_max_attempts`]: crate::reliability::default_max_attempts
    #[must_use]
    pub fn default_max_attempts(mut self, attempts: u32) -> Self {
        self.default_max_attempts = Some(attempts);
        self
    }

    /// Marks the endpoint durable: an [`App`](crate::App) then journals its runs (see
    /// [`durable`](crate::durable)), and `on_timeout = checkpoint` is allowed.
    #[must_use]
    pub fn durable(mut self, durable: bool) -> Self {
        self.durable = durable;
        self
    }

    /// Checks the combination and builds the pipeline.
    pub fn build(self) -> Result<Pipeline, PolicyError> {
        let on_timeout = self.timeout.on_timeout();
        fastagentic_policy::keys::timeout::check_on_timeout(on_timeout, self.durable)?;
        let endpoint = self.endpoint.unwrap_or_else(|| "/".into());
        let fallback = match (self.fallback, self.model) {
            (Some(chain), _) => chain,
            (None, Some(model)) => FallbackChain::single(model),
            (None, None) => FallbackChain::single("default"),
        };
        let breakers = BreakerSet::new(
            endpoint.clone(),
            self.circuit_breaker,
            self.breaker_overrides,
            self.registry.unwrap_or_default(),
            &fallback,
        );
        let retry = match (self.retry, self.default_max_attempts) {
            (Some(policy), Some(attempts)) => policy.or_max_attempts(attempts),
            (Some(policy), None) => policy,
            (None, _) => RetryPolicy::none(),
        };
        let budget = retry.budget().map(|policy| RetryBudget::new(*policy));
        let mut limiter = self
            .rate_limit
            .map(|policy| RateLimiter::new(&policy, LimitScope::Endpoint))
            .filter(|limiter| !limiter.is_empty());
        if let (Some(limiter), Some((store, metrics))) = (&mut limiter, self.store) {
            limiter.share(store, &endpoint, metrics);
        }
        let timeout = Arc::new(self.timeout);
        let shared = Arc::new(RunShared {
            endpoint: endpoint.clone(),
            timeouts: timeout.clone(),
            providers: self.providers,
            pricing: self
                .pricing
                .unwrap_or_else(|| crate::pricing::global().clone()),
            ledger: self
                .ledger
                .unwrap_or_else(|| crate::spend::ledger().clone()),
            wanted: wanted_kinds(&self.sinks),
            sinks: self.sinks.into(),
            max_attempts: retry.max_attempts(),
            retry: retry.clone(),
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
