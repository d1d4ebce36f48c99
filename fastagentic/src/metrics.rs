//! Prometheus metrics for every pipeline (SPEC §3.8).
//!
//! [`Metrics`] is an [`EventSink`]: attach it to a pipeline and it counts what the
//! pipeline's events report (requests and their outcome, retries, fallbacks, rate
//! limits, timeouts, LLM tokens). What already has a home elsewhere is read at scrape
//! time instead of being counted twice: breaker states and lifetime counters come from
//! the [`BreakerRegistry`]s handed to [`Metrics::observe_breakers`], hook failures from
//! [`hooks::failures`](crate::hooks::failures).
//!
//! [`Metrics::render`] writes the Prometheus text exposition format (`text/plain;
//! version=0.0.4`, [`CONTENT_TYPE`]), which `promtool check metrics` accepts without a
//! warning. [`Metrics::render_openmetrics`] writes the OpenMetrics form of the same
//! samples, for scrapers that ask for it.
//!
//! Every endpoint's own pipeline ([`Endpoint::pipeline`](crate::Endpoint::pipeline))
//! reports to the process-wide [`global`] instance. Build a [`Metrics::new`] for a
//! pipeline you assemble by hand, or to keep a test's numbers apart:
//!
//! ```
//! use std::sync::Arc;
//! use fastagentic::metrics::Metrics;
//! use fastagentic::prelude::*;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let metrics = Arc::new(Metrics::new());
//! let pipeline = Pipeline::builder()
//!     .endpoint("/hello")
//!     .model("mock/hello")
//!     .event_sink(metrics.clone())
//!     .build()?;
//! metrics.observe_breakers(pipeline.breaker_registry().clone());
//! pipeline
//!     .run(RequestInfo::new(), |ctx: AgentContext| async move {
//!         Ok::<_, AgentError>(format!("hello from {}", ctx.model()))
//!     })
//!     .await?;
//! let text = metrics.render();
//! assert!(text.contains("fastagentic_requests_total{endpoint=\"/hello\",outcome=\"success\"} 1\n"));
//! assert!(text.contains("# TYPE fastagentic_request_duration_seconds histogram\n"));
//! # Ok(()) }
//! ```
//!
//! # The metrics
//!
//! | Name | Type | Labels | What it counts |
//! |------|------|--------|----------------|
//! | `fastagentic_requests_total` | counter | `endpoint`, `outcome` | Finished runs; `outcome` is `success`, `checkpointed` (a durable run its deadline stopped, to be resumed) or the final error's class (`rate_limit`, `timeout`, `circuit_open`, …). |
//! | `fastagentic_request_duration_seconds` | histogram | `endpoint` | Run duration, every outcome, sleeps and fallbacks included. |
//! | `fastagentic_retries_total` | counter | `endpoint`, `attempt` | Retries announced; `attempt` is the number of the attempt that failed (`"1"` for the first). |
//! | `fastagentic_retry_exhausted_total` | counter | `endpoint` | Retry loops that used all of `max_attempts` and still failed. |
//! | `fastagentic_circuit_state` | gauge | `endpoint`, `state` | The endpoint's breakers in each state (`closed`, `open`, `half_open`), read at scrape. |
//! | `fastagentic_circuit_failures_total` | counter | `endpoint` | Failures reported to the endpoint's breakers, summed, read at scrape. |
//! | `fastagentic_circuit_opens_total` | counter | `endpoint` | Times the endpoint's breakers opened, summed, read at scrape. |
//! | `fastagentic_fallback_triggered_total` | counter | `endpoint`, `from`, `to` | Moves from one model of the chain to the next. |
//! | `fastagentic_fallback_success_total` | counter | `endpoint`, `model` | Runs answered by a fallback model (`model`), not the primary. |
//! | `fastagentic_fallback_exhausted_total` | counter | `endpoint` | Runs that fell back at least once and still failed. |
//! | `fastagentic_rate_limited_total` | counter | `endpoint`, `limit_type` | Runs refused by a rate limit (`rpm` or `tpm`). |
//! | `fastagentic_tool_calls_total` | counter | `endpoint`, `tool`, `outcome` | Tool call attempts made with `ctx.tool`; `outcome` is `success` or the error's class (`invalid_input` for arguments that do not fit, `other` for a panic). |
//! | `fastagentic_timeouts_total` | counter | `endpoint`, `stage` | Deadlines passed (`total`, `llm_call`, `stream_idle`, `tool_call`, `checkpoint`, `strategy`). |
//! | `fastagentic_llm_tokens_total` | counter | `provider`, `model`, `kind` | Tokens of LLM calls that reported usage; `kind` is `input`, `output`, `reasoning`, `cache_read` or `cache_write`. |
//! | `fastagentic_llm_cost_usd_total` | counter | `provider`, `model` | US dollars of LLM calls, priced from the [pricing tables](crate::pricing). |
//! | `fastagentic_llm_unpriced_calls_total` | counter | `provider`, `model` | Answered LLM calls whose cost is unknown (no usage reported, or no price known for the model) — counted, never priced at zero. |
//! | `fastagentic_hook_errors_total` | counter | `event` | Hooks that failed (error or panic), by event (`on_retry`, …); process-wide. |
//! | `fastagentic_connections_open` | gauge | | HTTP connections an [`App`](crate::App) is serving now. |
//! | `fastagentic_connections_dropped_total` | counter | `reason` | Connections the server closed on its own: `limit` (over [`App::max_connections`](crate::App::max_connections)) or `header_timeout` (no whole request head within [`App::header_read_timeout`](crate::App::header_read_timeout): a slow sender, or a keep-alive connection left idle). |
//!
//! How the less obvious ones are decided:
//!
//! - **Fallback success / exhausted** come from the run's position in its fallback chain
//!   when it ends, not from per-run bookkeeping: a `Response` past the primary is a
//!   fallback success labelled with the model that answered, an `Error` past the primary
//!   is a fallback exhausted (the last model failed, or the run's total deadline passed
//!   while on a fallback). A hook's model override within one chain step is not a
//!   fallback.
//! - **Retry exhausted** is a retry loop stopped by `max_attempts`
//!   ([`StopReason::Exhausted`]); loops stopped for another reason (budget, deadline,
//!   breaker, server, hook) are not counted here, and a policy of one attempt never
//!   exhausts anything.
//! - **Rate limited** counts refusals. A run that waited for its slot (`delay`, `queue`)
//!   and then went ahead is not refused.
//! - **Tokens** are labelled with the model as its provider knows it: `openai/gpt-4o` and
//!   `gpt-4o` both count as `{provider="openai",model="gpt-4o"}`. Calls whose usage never
//!   arrived add nothing (unknown is not zero).
//! - **Breaker** series exist only for endpoints with breakers, and only while their
//!   registry is alive.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::task::{Context, Poll};

use dashmap::DashMap;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::reliability::circuit_breaker::{BreakerRegistry, CircuitState};
use crate::reliability::events::{EventData, EventFuture, EventKind, EventSink, PipelineEvent};
use crate::reliability::retry::StopReason;

/// The `Content-Type` of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The `Content-Type` of [`Metrics::render_openmetrics`]'s text.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds (seconds) of the request-duration buckets: from a cache hit to the
/// default 120 s total timeout, dense where LLM calls usually land (1–30 s).
const DURATION_BUCKETS: [f64; 12] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0,
];

/// The Prometheus metrics of a set of pipelines. Attach it to each with
/// [`PipelineBuilder::event_sink`](crate::reliability::PipelineBuilder::event_sink), hand
/// it their breaker registries with [`Metrics::observe_breakers`], and serve
/// [`Metrics::render`].
///
/// Counting costs one read-locked map lookup and an atomic add per metric an event
/// touches; the pipeline builds events only when it has listeners, so a pipeline without
/// metrics pays nothing.
pub struct Metrics {
    registry: Registry,
    requests: Family<OutcomeLabels, Counter>,
    duration: Family<EndpointLabels, Histogram, fn() -> Histogram>,
    retries: Family<AttemptLabels, Counter>,
    retry_exhausted: Family<EndpointLabels, Counter>,
    fallback_triggered: Family<FallbackLabels, Counter>,
    fallback_success: Family<ModelLabels, Counter>,
    fallback_exhausted: Family<EndpointLabels, Counter>,
    rate_limited: Family<LimitLabels, Counter>,
    timeouts: Family<StageLabels, Counter>,
    llm_tokens: Family<TokenLabels, Counter>,
    llm_cost: Family<ProviderModelLabels, Counter<f64, AtomicU64>>,
    llm_unpriced: Family<ProviderModelLabels, Counter>,
    tool_calls: Family<ToolLabels, Counter>,
    state_store_errors: Family<StoreLabels, Counter>,
    #[cfg_attr(not(feature = "server"), allow(dead_code))] // only the server reads it
    connections_open: Gauge,
    #[cfg_attr(not(feature = "server"), allow(dead_code))] // only the server reads it
    connections_dropped: Family<DropLabels, Counter>,
    llm_series: DashMap<Arc<str>, Arc<LlmSeries>, foldhash::fast::RandomState>,
    observed: Arc<Observed>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("breaker_registries", &self.observed.live().len())
            .finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// The process-wide metrics: every endpoint's own pipeline reports to it, and it is
/// what a `/metrics` route serves.
pub fn global() -> &'static Arc<Metrics> {
    static GLOBAL: OnceLock<Arc<Metrics>> = OnceLock::new();
    GLOBAL.get_or_init(|| Arc::new(Metrics::new()))
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

impl Metrics {
    /// Metrics of their own, apart from [`global`] (for a pipeline built by hand, or a
    /// test).
    pub fn new() -> Self {
        // `register` ends each help text with a period itself.
        let mut registry = Registry::with_prefix("fastagentic");
        let requests = Family::default();
        registry.register(
            "requests",
            "Finished runs, by outcome: success, checkpointed or the final error's class",
            Family::clone(&requests),
        );
        let duration = Family::new_with_constructor(duration_histogram as fn() -> Histogram);
        registry.register(
            "request_duration_seconds",
            "Run duration in seconds, every outcome, retries and fallbacks included",
            Family::clone(&duration),
        );
        let retries = Family::default();
        registry.register(
            "retries",
            "Retries, by the number of the attempt that failed",
            Family::clone(&retries),
        );
        let retry_exhausted = Family::default();
        registry.register(
            "retry_exhausted",
            "Retry loops that used every attempt and still failed",
            Family::clone(&retry_exhausted),
        );
        let fallback_triggered = Family::default();
        registry.register(
            "fallback_triggered",
            "Moves from one model of the fallback chain to another",
            Family::clone(&fallback_triggered),
        );
        let fallback_success = Family::default();
        registry.register(
            "fallback_success",
            "Runs answered by a fallback model rather than the primary",
            Family::clone(&fallback_success),
        );
        let fallback_exhausted = Family::default();
        registry.register(
            "fallback_exhausted",
            "Runs that fell back at least once and still failed",
            Family::clone(&fallback_exhausted),
        );
        let rate_limited = Family::default();
        registry.register(
            "rate_limited",
            "Runs refused by a rate limit, by limit type (rpm or tpm)",
            Family::clone(&rate_limited),
        );
        let tool_calls = Family::default();
        registry.register(
            "tool_calls",
            "Tool call attempts, by tool and outcome (success or the error's class)",
            Family::clone(&tool_calls),
        );
        let timeouts = Family::default();
        registry.register(
            "timeouts",
            "Deadlines passed, by stage",
            Family::clone(&timeouts),
        );
        let llm_tokens = Family::default();
        registry.register(
            "llm_tokens",
            "Tokens of LLM calls that reported usage, by kind",
            Family::clone(&llm_tokens),
        );
        let llm_cost = Family::default();
        registry.register(
            "llm_cost_usd",
            "US dollars spent on LLM calls, priced from the pricing tables",
            Family::clone(&llm_cost),
        );
        let llm_unpriced = Family::default();
        registry.register(
            "llm_unpriced_calls",
            "LLM calls whose cost is unknown: no usage reported, or no price for the model",
            Family::clone(&llm_unpriced),
        );
        let state_store_errors = Family::default();
        registry.register(
            "state_store_errors",
            "Operations on the state store shared by replicas that failed (timeout, connection, protocol), by store and operation (take or adjust)",
            Family::clone(&state_store_errors),
        );
        let connections_open = Gauge::default();
        registry.register(
            "connections_open",
            "HTTP connections being served now",
            Gauge::clone(&connections_open),
        );
        let connections_dropped = Family::default();
        registry.register(
            "connections_dropped",
            "Connections the server closed on its own, by reason (limit or header_timeout)",
            Family::clone(&connections_dropped),
        );
        let observed = Arc::new(Observed::default());
        registry.register_collector(Box::new(Arc::clone(&observed)));
        Metrics {
            registry,
            requests,
            duration,
            retries,
            retry_exhausted,
            fallback_triggered,
            fallback_success,
            fallback_exhausted,
            rate_limited,
            timeouts,
            llm_tokens,
            llm_cost,
            llm_unpriced,
            tool_calls,
            state_store_errors,
            connections_open,
            connections_dropped,
            llm_series: DashMap::default(),
            observed,
        }
    }

    /// An operation on the shared state store failed: counted, and logged as a warning.
    #[cold]
    pub(crate) fn state_store_error(
        &self,
        store: &dyn crate::state::StateStore,
        operation: &'static str,
        err: &crate::state::StoreError,
    ) {
        let store = store.name();
        self.state_store_errors
            .get_or_create(&StoreLabels { store, operation })
            .inc();
        tracing::warn!(store, operation, error = %err, "state store error");
    }

    /// A connection is being served (until [`Metrics::connection_closed`]).
    #[cfg(feature = "server")]
    pub(crate) fn connection_opened(&self) {
        self.connections_open.inc();
    }

    /// A connection served by [`Metrics::connection_opened`] ended.
    #[cfg(feature = "server")]
    pub(crate) fn connection_closed(&self) {
        self.connections_open.dec();
    }

    /// The server closed a connection on its own, for `reason`.
    #[cfg(feature = "server")]
    pub(crate) fn connection_dropped(&self, reason: &'static str) {
        self.connections_dropped
            .get_or_create(&DropLabels { reason })
            .inc();
    }

    /// Reports the breakers of `registry` (states and lifetime counters, by endpoint) on
    /// every scrape. Registering one registry twice counts it once.
    ///
    /// Only a weak reference is kept: a registry dropped with its pipelines leaves the
    /// output (its counters then read as a reset, which Prometheus handles).
    pub fn observe_breakers(&self, registry: Arc<BreakerRegistry>) {
        let mut registries = self.observed.lock();
        registries.retain(|weak| weak.strong_count() > 0);
        let known = registries
            .iter()
            .any(|weak| std::ptr::eq(weak.as_ptr(), Arc::as_ptr(&registry)));
        if !known {
            registries.push(Arc::downgrade(&registry));
        }
    }

    /// The Prometheus text exposition format (version 0.0.4, [`CONTENT_TYPE`]).
    ///
    /// Families with no sample yet are left out.
    pub fn render(&self) -> String {
        to_classic(&self.encode(prometheus_client::encoding::text::encode_registry))
    }

    /// The OpenMetrics text format ([`OPENMETRICS_CONTENT_TYPE`]), ending in `# EOF`.
    pub fn render_openmetrics(&self) -> String {
        self.encode(prometheus_client::encoding::text::encode)
    }

    fn encode(&self, encoder: fn(&mut String, &Registry) -> fmt::Result) -> String {
        let mut text = String::new();
        // Writing to a `String` cannot fail, and our collector only forwards writer
        // errors; should an encoder fail anyway, the scrape still gets what was written.
        if encoder(&mut text, &self.registry).is_err() {
            tracing::error!("encoding the metrics failed; the output is incomplete");
        }
        text
    }

    fn record(&self, event: &PipelineEvent) {
        let endpoint = &event.endpoint;
        match event.kind {
            EventKind::Response | EventKind::Error | EventKind::Checkpoint => {
                self.record_outcome(event);
            }
            EventKind::Retry => {
                self.retries
                    .get_or_create(&AttemptLabels {
                        endpoint: endpoint.clone(),
                        attempt: event.attempt,
                    })
                    .inc();
            }
            EventKind::RetryEnd if event.stop_reason() == Some(StopReason::Exhausted) => {
                self.retry_exhausted
                    .get_or_create(&EndpointLabels::of(endpoint))
                    .inc();
            }
            EventKind::Fallback => {
                let to = event.fallback_to().cloned().unwrap_or_else(|| "".into());
                self.fallback_triggered
                    .get_or_create(&FallbackLabels {
                        endpoint: endpoint.clone(),
                        from: event.model.clone(),
                        to,
                    })
                    .inc();
            }
            EventKind::RateLimit => {
                let limit_type = event.limit_type().map_or("unknown", |t| t.as_str());
                self.rate_limited
                    .get_or_create(&LimitLabels {
                        endpoint: endpoint.clone(),
                        limit_type,
                    })
                    .inc();
            }
            EventKind::Timeout => {
                let stage = event.stage().map_or("unknown", |s| s.as_str());
                self.timeouts
                    .get_or_create(&StageLabels {
                        endpoint: endpoint.clone(),
                        stage,
                    })
                    .inc();
            }
            EventKind::LlmEnd => self.record_llm_call(event),
            EventKind::ToolResult => {
                let outcome = event
                    .error
                    .as_ref()
                    .map_or("success", |e| e.class().as_str());
                self.tool_calls
                    .get_or_create(&ToolLabels {
                        endpoint: endpoint.clone(),
                        tool: Arc::from(event.tool_name().unwrap_or_default()),
                        outcome,
                    })
                    .inc();
            }
            // Circuit transitions are read from the breakers at scrape time; the other
            // events carry nothing §3.8 counts.
            _ => {}
        }
    }

    fn record_outcome(&self, event: &PipelineEvent) {
        let endpoint = &event.endpoint;
        let outcome = match (&event.kind, &event.error) {
            (EventKind::Response, _) => "success",
            (EventKind::Checkpoint, _) => "checkpointed",
            (_, Some(err)) => err.class().as_str(),
            (_, None) => "other",
        };
        self.requests
            .get_or_create(&OutcomeLabels {
                endpoint: endpoint.clone(),
                outcome,
            })
            .inc();
        if let Some(elapsed) = event.elapsed() {
            self.duration
                .get_or_create(&EndpointLabels::of(endpoint))
                .observe(elapsed.as_secs_f64());
        }
        // The chain position says whether the run left its primary: no per-run state to
        // keep, and a run that ends is never seen again.
        let fell_back = matches!(
            event.data,
            EventData::Outcome {
                fell_back: true,
                ..
            }
        );
        if !fell_back {
            return;
        }
        if event.kind == EventKind::Response {
            // The outcome event names the chain position's model: the one that answered.
            self.fallback_success
                .get_or_create(&ModelLabels {
                    endpoint: endpoint.clone(),
                    model: event.model.clone(),
                })
                .inc();
        } else {
            self.fallback_exhausted
                .get_or_create(&EndpointLabels::of(endpoint))
                .inc();
        }
    }

    fn record_llm_call(&self, event: &PipelineEvent) {
        let Some(provider) = event.provider() else {
            return;
        };
        let series = self.llm_series_of(&event.model, provider);
        // A failed call reports no usage and is billed nothing: only calls that answered
        // can be unpriced.
        match (event.cost_usd(), event.error.is_none()) {
            (Some(cost), _) => {
                series
                    .cost
                    .get_or_init(|| Counter::clone(&self.llm_cost.get_or_create(&series.labels)))
                    .inc_by(f64::try_from(cost).unwrap_or(0.0));
            }
            (None, true) => {
                series
                    .unpriced
                    .get_or_init(|| {
                        Counter::clone(&self.llm_unpriced.get_or_create(&series.labels))
                    })
                    .inc();
            }
            (None, false) => {}
        }
        let Some(usage) = event.usage() else {
            return;
        };
        let tokens = series.tokens.get_or_init(|| {
            TOKEN_KINDS.map(|kind| {
                Counter::clone(&self.llm_tokens.get_or_create(&TokenLabels {
                    provider: series.labels.provider.clone(),
                    model: series.labels.model.clone(),
                    kind,
                }))
            })
        });
        let counts = [
            usage.input,
            usage.output,
            usage.reasoning,
            usage.cache_read,
            usage.cache_write,
        ];
        for (counter, count) in tokens.iter().zip(counts) {
            counter.inc_by(count);
        }
    }

    /// The LLM series of the model the pipeline names `model`, served by `provider`: the
    /// label lookups are done once per model, not on every call.
    fn llm_series_of(&self, model: &Arc<str>, provider: &Arc<str>) -> Arc<LlmSeries> {
        if let Some(series) = self.llm_series.get(&**model)
            && series.labels.provider == *provider
        {
            return series.clone();
        }
        // `openai/gpt-4o` and `gpt-4o` are one model: label it as the provider knows it,
        // the name the pricing tables use too.
        let label: Arc<str> = model
            .strip_prefix(&**provider)
            .and_then(|rest| rest.strip_prefix('/'))
            .map_or_else(|| model.clone(), Arc::from);
        let series = Arc::new(LlmSeries {
            labels: ProviderModelLabels {
                provider: provider.clone(),
                model: label,
            },
            tokens: OnceLock::new(),
            cost: OnceLock::new(),
            unpriced: OnceLock::new(),
        });
        self.llm_series.insert(model.clone(), series.clone());
        series
    }
}

/// The `kind` label of each token counter, in the order of [`LlmSeries::tokens`].
const TOKEN_KINDS: [&str; 5] = ["input", "output", "reasoning", "cache_read", "cache_write"];

/// One model's LLM counters, each made (and so exported) on its first use, never as a
/// zero that would read as "this model cost nothing".
struct LlmSeries {
    labels: ProviderModelLabels,
    tokens: OnceLock<[Counter; 5]>,
    cost: OnceLock<Counter<f64, AtomicU64>>,
    unpriced: OnceLock<Counter>,
}

impl EventSink for Metrics {
    fn on_event<'a>(&'a self, event: &'a mut PipelineEvent) -> EventFuture<'a> {
        self.record(event);
        Box::pin(Done)
    }

    fn listens_to(&self, kind: EventKind) -> bool {
        // Exactly the kinds `record` counts.
        matches!(
            kind,
            EventKind::Response
                | EventKind::Error
                | EventKind::Checkpoint
                | EventKind::Retry
                | EventKind::RetryEnd
                | EventKind::Fallback
                | EventKind::RateLimit
                | EventKind::Timeout
                | EventKind::LlmEnd
                | EventKind::ToolResult
        )
    }
}

/// An already finished future of size zero, so boxing it allocates nothing.
struct Done;

impl Future for Done {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Ready(())
    }
}

/// What the metrics read at scrape time: breaker registries and the hook failure
/// counters.
#[derive(Debug, Default)]
struct Observed {
    registries: Mutex<Vec<Weak<BreakerRegistry>>>,
}

impl Observed {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Weak<BreakerRegistry>>> {
        // The list stays valid whatever panicked while it was held.
        self.registries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn live(&self) -> Vec<Arc<BreakerRegistry>> {
        self.lock().iter().filter_map(Weak::upgrade).collect()
    }
}

/// One endpoint's breakers, summed.
#[derive(Default)]
struct BreakerTotals {
    closed: u64,
    open: u64,
    half_open: u64,
    failures: u64,
    opens: u64,
}

impl Collector for Observed {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let mut by_endpoint: BTreeMap<Arc<str>, BreakerTotals> = BTreeMap::new();
        for registry in self.live() {
            for (key, snapshot) in registry.snapshot() {
                let totals = by_endpoint.entry(key.endpoint).or_default();
                match snapshot.state {
                    CircuitState::Closed => totals.closed += 1,
                    CircuitState::Open => totals.open += 1,
                    CircuitState::HalfOpen => totals.half_open += 1,
                }
                totals.failures += snapshot.failures_total;
                totals.opens += snapshot.opens_total;
            }
        }
        if !by_endpoint.is_empty() {
            let mut family = encoder.encode_descriptor(
                "circuit_state",
                "Circuit breakers of the endpoint in each state (an open breaker whose reset timeout has passed reads open until a call probes it).",
                None,
                MetricType::Gauge,
            )?;
            for (endpoint, totals) in &by_endpoint {
                for (state, count) in [
                    (CircuitState::Closed, totals.closed),
                    (CircuitState::Open, totals.open),
                    (CircuitState::HalfOpen, totals.half_open),
                ] {
                    let labels = StateLabels {
                        endpoint: endpoint.clone(),
                        state: state.as_str(),
                    };
                    ConstGauge::new(count).encode(family.encode_family(&labels)?)?;
                }
            }
            encode_endpoint_counter(
                &mut encoder,
                "circuit_failures",
                "Failures reported to the endpoint's circuit breakers.",
                &by_endpoint,
                |t| t.failures,
            )?;
            encode_endpoint_counter(
                &mut encoder,
                "circuit_opens",
                "Times the endpoint's circuit breakers opened.",
                &by_endpoint,
                |t| t.opens,
            )?;
        }
        let mut family = encoder.encode_descriptor(
            "hook_errors",
            "Hooks that failed (returned an error or panicked), by event, process-wide.",
            None,
            MetricType::Counter,
        )?;
        for &kind in EventKind::ALL {
            let labels = HookLabels {
                event: kind.hook_name(),
            };
            ConstCounter::new(crate::hooks::failures(kind))
                .encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// Writes one counter family with a sample per endpoint.
fn encode_endpoint_counter(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    by_endpoint: &BTreeMap<Arc<str>, BreakerTotals>,
    value: impl Fn(&BreakerTotals) -> u64,
) -> fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (endpoint, totals) in by_endpoint {
        let labels = EndpointLabels::of(endpoint);
        ConstCounter::new(value(totals)).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Rewrites prometheus-client's OpenMetrics text in the classic text format.
///
/// The two differ where it matters to `promtool` and to scrapers that ask for
/// `text/plain`: OpenMetrics names a counter family without `_total` in its `# HELP` and
/// `# TYPE` lines (the samples carry it), the classic format names the family after its
/// samples. Everything else prometheus-client writes for our metrics (no units, no
/// exemplars, no created timestamps) is the same in both, but the `# EOF` marker.
fn to_classic(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len() + 256);
    let mut lines = openmetrics.lines().peekable();
    while let Some(line) = lines.next() {
        if let Some(help) = line.strip_prefix("# HELP ") {
            // prometheus-client writes a family's `# TYPE` right after its `# HELP`.
            let (name, text) = help.split_once(' ').unwrap_or((help, ""));
            let counter = lines.peek().is_some_and(|next| {
                next.strip_prefix("# TYPE ")
                    .and_then(|t| t.strip_prefix(name))
                    == Some(" counter")
            });
            out.push_str("# HELP ");
            out.push_str(name);
            if counter {
                out.push_str("_total");
            }
            out.push(' ');
            out.push_str(text);
            out.push('\n');
        } else if let Some(name) = line
            .strip_prefix("# TYPE ")
            .and_then(|t| t.strip_suffix(" counter"))
        {
            out.push_str("# TYPE ");
            out.push_str(name);
            out.push_str("_total counter\n");
        } else if line != "# EOF" && !line.starts_with("# UNIT ") {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: Arc<str>,
}

impl EndpointLabels {
    fn of(endpoint: &Arc<str>) -> Self {
        EndpointLabels {
            endpoint: endpoint.clone(),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabels {
    store: &'static str,
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DropLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolLabels {
    endpoint: Arc<str>,
    tool: Arc<str>,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    endpoint: Arc<str>,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttemptLabels {
    endpoint: Arc<str>,
    attempt: u32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FallbackLabels {
    endpoint: Arc<str>,
    from: Arc<str>,
    to: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderModelLabels {
    provider: Arc<str>,
    model: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    endpoint: Arc<str>,
    model: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    endpoint: Arc<str>,
    limit_type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    endpoint: Arc<str>,
    stage: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    provider: Arc<str>,
    model: Arc<str>,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    endpoint: Arc<str>,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HookLabels {
    event: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_named_after_their_samples() {
        let om = "# HELP fastagentic_retries Retries.\n\
                  # TYPE fastagentic_retries counter\n\
                  fastagentic_retries_total{endpoint=\"/a\",attempt=\"1\"} 2\n\
                  # HELP fastagentic_circuit_state States.\n\
                  # TYPE fastagentic_circuit_state gauge\n\
                  fastagentic_circuit_state{endpoint=\"/a\",state=\"open\"} 1\n\
                  # EOF\n";
        assert_eq!(
            to_classic(om),
            "# HELP fastagentic_retries_total Retries.\n\
             # TYPE fastagentic_retries_total counter\n\
             fastagentic_retries_total{endpoint=\"/a\",attempt=\"1\"} 2\n\
             # HELP fastagentic_circuit_state States.\n\
             # TYPE fastagentic_circuit_state gauge\n\
             fastagentic_circuit_state{endpoint=\"/a\",state=\"open\"} 1\n"
        );
    }

    #[test]
    fn a_fresh_instance_renders_only_the_hook_counters_and_open_connections() {
        let text = Metrics::new().render();
        assert!(
            text.contains("\nfastagentic_connections_open 0\n"),
            "{text}"
        );
        assert!(
            text.contains("\n# HELP fastagentic_hook_errors_total "),
            "{text}"
        );
        assert_eq!(text.lines().count(), 2 + EventKind::ALL.len() + 3, "{text}");
    }
}
