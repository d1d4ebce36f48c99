//! Endpoints: what `#[agent_endpoint]` registers, and how to list and call them.

use std::fmt;
use std::sync::OnceLock;

use serde_json::Value;

use crate::error::{AgentError, ErrorClass};
use crate::hooks::Hooks;
use crate::llm::BoxFuture;
use crate::reliability::{
    CircuitBreakerPolicy, FallbackChain, Pipeline, PipelineBuilder, PolicyError, RateLimitPolicy,
    RequestInfo, RetryPolicy, TimeoutPolicy,
};

/// Runs an endpoint on JSON: decodes the input, runs the body in `pipeline`, encodes the
/// output.
pub type Handler =
    for<'a> fn(&'a Pipeline, RequestInfo, Value) -> BoxFuture<'a, Result<Value, AgentError>>;

/// The policies an endpoint declared; `None` where it declared none.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct EndpointPolicies {
    /// `retry(...)`.
    pub retry: Option<RetryPolicy>,
    /// `circuit_breaker(...)`: the policy of every model's breaker.
    pub circuit_breaker: Option<CircuitBreakerPolicy>,
    /// `circuit_breakers(model = (...), ...)`: policies for particular models.
    pub circuit_breakers: Vec<(String, CircuitBreakerPolicy)>,
    /// `timeout(...)`.
    pub timeout: Option<TimeoutPolicy>,
    /// `fallback(...)`.
    pub fallback: Option<FallbackChain>,
    /// `rate_limit(...)`.
    pub rate_limit: Option<RateLimitPolicy>,
}

impl EndpointPolicies {
    /// A pipeline builder for the endpoint at `path` on `model` with these policies.
    pub(crate) fn builder(self, path: &str, model: Option<&str>) -> PipelineBuilder {
        let mut builder = Pipeline::builder().endpoint(path);
        if let Some(model) = model {
            builder = builder.model(model);
        }
        if let Some(policy) = self.retry {
            builder = builder.retry(policy);
        }
        if let Some(policy) = self.circuit_breaker {
            builder = builder.circuit_breaker(policy);
        }
        for (model, policy) in self.circuit_breakers {
            builder = builder.circuit_breaker_for(model, policy);
        }
        if let Some(policy) = self.timeout {
            builder = builder.timeout(policy);
        }
        if let Some(chain) = self.fallback {
            builder = builder.fallback(chain);
        }
        if let Some(policy) = self.rate_limit {
            builder = builder.rate_limit(policy);
        }
        builder
    }
}

/// A registered endpoint: its address, its description and its policies.
///
/// `#[agent_endpoint]` creates one per annotated fn; [`endpoints`] lists them all.
pub struct Endpoint {
    pub(crate) path: &'static str,
    pub(crate) name: &'static str,
    pub(crate) rust_path: &'static str,
    pub(crate) description: &'static str,
    pub(crate) model: Option<&'static str>,
    pub(crate) stream: bool,
    pub(crate) durable: bool,
    pub(crate) policies: fn() -> Result<EndpointPolicies, PolicyError>,
    pub(crate) handler: Handler,
    pub(crate) pipeline: &'static OnceLock<Result<Pipeline, PolicyError>>,
    // Read by the server's OpenAPI document.
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    pub(crate) input_schema: Option<crate::__private::SchemaFn>,
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    pub(crate) output_schema: crate::__private::SchemaFn,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("path", &self.path)
            .field("name", &self.name)
            .field("rust_path", &self.rust_path)
            .field("model", &self.model)
            .field("stream", &self.stream)
            .field("durable", &self.durable)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// Where it is served (`"/analyze"`).
    pub fn path(&self) -> &'static str {
        self.path
    }

    /// Its name (the fn's, unless `name = "..."` was given).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The Rust path of the annotated fn (`my_crate::api::analyze`).
    pub fn rust_path(&self) -> &'static str {
        self.rust_path
    }

    /// What it does (`description = "..."`, else the fn's doc comment).
    pub fn description(&self) -> &'static str {
        self.description
    }

    /// The model it uses when no fallback chain names one.
    pub fn model(&self) -> Option<&'static str> {
        self.model
    }

    /// Whether it streams its answer.
    pub fn stream(&self) -> bool {
        self.stream
    }

    /// Whether its runs are durable (`durable = true`): journaled step by step when an
    /// [`App`](crate::App) serves it, resumable after a checkpoint, a failure or a crash.
    pub fn durable(&self) -> bool {
        self.durable
    }

    /// The declared policies, built (expression-form policies run here).
    pub fn policies(&self) -> Result<EndpointPolicies, PolicyError> {
        (self.policies)()
    }

    /// A pipeline builder with the endpoint's path, model and policies; add listeners,
    /// providers or a global limiter, then build.
    pub fn pipeline_builder(&self) -> Result<PipelineBuilder, PolicyError> {
        Ok(self
            .policies()?
            .builder(self.path, self.model)
            .durable(self.durable))
    }

    /// The pipeline a direct call of the annotated fn runs in: the endpoint's policies,
    /// every registered hook, the global metrics, prices and ledger, and the
    /// `FASTAGENTIC_MAX_ATTEMPTS` default. Built once, on first use.
    pub fn pipeline(&'static self) -> Result<&'static Pipeline, AgentError> {
        let built = self.pipeline.get_or_init(|| {
            let metrics = crate::metrics::global();
            let mut builder = self
                .pipeline_builder()?
                .default_max_attempts(crate::reliability::default_max_attempts());
            // An empty hook set would still make the pipeline build every event.
            let hooks = Hooks::registered();
            if !hooks.is_empty() {
                builder = builder.event_sink(std::sync::Arc::new(hooks));
            }
            let pipeline = builder.event_sink(metrics.clone()).build()?;
            metrics.observe_breakers(pipeline.breaker_registry().clone());
            Ok(pipeline)
        });
        built.as_ref().map_err(|err| {
            AgentError::new(
                ErrorClass::InvalidInput,
                format!("endpoint {} has invalid policies: {err}", self.path),
            )
        })
    }

    /// Runs the endpoint on a JSON input in `pipeline` (the server's way in).
    pub async fn call_json(
        &self,
        pipeline: &Pipeline,
        request: RequestInfo,
        input: Value,
    ) -> Result<Value, AgentError> {
        (self.handler)(pipeline, request, input).await
    }
}

/// Every endpoint registered with `#[agent_endpoint]` in the program, across modules and
/// crates, in no particular order.
pub fn endpoints() -> &'static [Endpoint] {
    &crate::__private::ENDPOINTS
}

/// The registered endpoint served at `path`.
pub fn find(path: &str) -> Option<&'static Endpoint> {
    endpoints().iter().find(|e| e.path == path)
}

/// Two endpoints claim one path.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "two endpoints are served at `{path}`: `{first}` and `{second}`; give one of them another `path`"
)]
pub struct DuplicatePath {
    /// The path.
    pub path: String,
    /// One endpoint's Rust path.
    pub first: String,
    /// The other's.
    pub second: String,
}

/// Checks that no two of `list` share a path.
pub fn check_unique<'a>(list: impl IntoIterator<Item = &'a Endpoint>) -> Result<(), DuplicatePath> {
    let mut seen: Vec<&Endpoint> = Vec::new();
    for endpoint in list {
        if let Some(first) = seen.iter().find(|e| e.path == endpoint.path) {
            return Err(DuplicatePath {
                path: endpoint.path.to_owned(),
                first: first.rust_path.to_owned(),
                second: endpoint.rust_path.to_owned(),
            });
        }
        seen.push(endpoint);
    }
    Ok(())
}
