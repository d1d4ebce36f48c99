//! What the server serves: the registered `#[agent_endpoint]`s and [`Route`]s added in
//! code, in one shape.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use futures_util::FutureExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::__private::{SchemaFn, unknown_schema};
use crate::context::AgentContext;
use crate::endpoint::{Endpoint, EndpointPolicies};
use crate::error::{AgentError, ErrorClass};
use crate::llm::BoxFuture;
use crate::reliability::{
    CircuitBreakerPolicy, FallbackChain, Pipeline, PipelineBuilder, RateLimitPolicy, RequestInfo,
    RetryPolicy, TimeoutPolicy,
};

/// A code route's JSON handler: decode, run in the pipeline, encode.
type DynHandler = dyn for<'a> Fn(&'a Pipeline, RequestInfo, Value) -> BoxFuture<'a, Result<Value, AgentError>>
    + Send
    + Sync;

fn dyn_handler<F>(f: F) -> Arc<DynHandler>
where
    F: for<'a> Fn(&'a Pipeline, RequestInfo, Value) -> BoxFuture<'a, Result<Value, AgentError>>
        + Send
        + Sync
        + 'static,
{
    Arc::new(f)
}

/// An endpoint added in code, with [`App::route`](super::App::route): a path, an async
/// body and the same policies `#[agent_endpoint]` takes. The app builds its pipeline
/// exactly as for a registered endpoint (with the app's providers, global fallback,
/// global limiter, hooks and metrics).
///
/// ```
/// use fastagentic::prelude::*;
/// use fastagentic::server::Route;
///
/// #[derive(Clone, Deserialize)]
/// struct Ping { text: String }
///
/// # fn main() -> Result<(), fastagentic::reliability::PolicyError> {
/// let route = Route::new("/ping", |ctx: AgentContext, ping: Ping| async move {
///     Ok::<_, AgentError>(format!("{} from {}", ping.text, ctx.model()))
/// })
/// .model("mock/pinger")
/// .description("Answers a ping")
/// .retry(RetryPolicy::builder().max_attempts(2).build()?);
/// let app = App::new("Ping").route(route);
/// # let _ = app; Ok(()) }
/// ```
///
/// The input type must be `Clone` (each attempt gets its own copy) and
/// `Deserialize`; an endpoint without input takes `()`, which accepts an empty body or
/// `null`.
#[derive(Clone)]
pub struct Route {
    pub(crate) path: String,
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) model: Option<String>,
    pub(crate) stream: bool,
    pub(crate) durable: bool,
    pub(crate) policies: EndpointPolicies,
    handler: Arc<DynHandler>,
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Route")
            .field("path", &self.path)
            .field("name", &self.name)
            .field("model", &self.model)
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl Route {
    /// A route at `path` (starting with `/`) running `body` on the decoded input.
    pub fn new<F, Fut, I, O>(path: impl Into<String>, body: F) -> Self
    where
        F: Fn(AgentContext, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, AgentError>> + Send + 'static,
        I: DeserializeOwned + Clone + Send + Sync + 'static,
        O: Serialize + Send + Sync + 'static,
    {
        let path = path.into();
        let body = Arc::new(body);
        let handler = dyn_handler(move |pipeline, request, json| {
            let body = body.clone();
            Box::pin(async move {
                let input: I = crate::__private::decode_input(json)?;
                let output = pipeline
                    .run(request, |ctx| body(ctx, input.clone()))
                    .await?;
                crate::__private::encode_output(&output)
            })
        });
        Route {
            name: path.trim_start_matches('/').replace('/', "_"),
            path,
            description: String::new(),
            model: None,
            stream: false,
            durable: false,
            policies: EndpointPolicies::default(),
            handler,
        }
    }

    /// Its name in the endpoint listing (default: the path without slashes).
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// What it does, for the endpoint listing.
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// The model it uses when no fallback chain names one.
    #[must_use]
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// Whether it always answers `text/event-stream` (like `stream = true`).
    #[must_use]
    pub fn stream(mut self, stream: bool) -> Self {
        self.stream = stream;
        self
    }

    /// Whether its runs are durable (like `durable = true`): journaled step by step,
    /// answered `202` at a checkpoint, resumable at `POST /runs/{id}/resume`. See
    /// [`durable`](crate::durable).
    #[must_use]
    pub fn durable(mut self, durable: bool) -> Self {
        self.durable = durable;
        self
    }

    /// Retries.
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.policies.retry = Some(policy);
        self
    }

    /// A breaker per model.
    #[must_use]
    pub fn circuit_breaker(mut self, policy: CircuitBreakerPolicy) -> Self {
        self.policies.circuit_breaker = Some(policy);
        self
    }

    /// Timeouts.
    #[must_use]
    pub fn timeout(mut self, policy: TimeoutPolicy) -> Self {
        self.policies.timeout = Some(policy);
        self
    }

    /// A fallback chain (replaces the app's global one for this route).
    #[must_use]
    pub fn fallback(mut self, chain: FallbackChain) -> Self {
        self.policies.fallback = Some(chain);
        self
    }

    /// Rate limits of this route, its users and tenants.
    #[must_use]
    pub fn rate_limit(mut self, policy: RateLimitPolicy) -> Self {
        self.policies.rate_limit = Some(policy);
        self
    }
}

/// How a served endpoint runs.
#[derive(Clone)]
pub(crate) enum Call {
    Registered(&'static Endpoint),
    Code(Arc<DynHandler>),
}

/// One endpoint as the server sees it.
#[derive(Clone)]
pub(crate) struct Served {
    pub(crate) path: String,
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) model: Option<String>,
    pub(crate) stream: bool,
    pub(crate) durable: bool,
    pub(crate) policies: EndpointPolicies,
    pub(crate) call: Call,
}

impl Served {
    pub(crate) fn registered(
        endpoint: &'static Endpoint,
    ) -> Result<Served, crate::reliability::PolicyError> {
        Ok(Served {
            path: endpoint.path().to_owned(),
            name: endpoint.name().to_owned(),
            description: endpoint.description().to_owned(),
            model: endpoint.model().map(str::to_owned),
            stream: endpoint.stream(),
            durable: endpoint.durable(),
            policies: endpoint.policies()?,
            call: Call::Registered(endpoint),
        })
    }

    pub(crate) fn code(route: Route) -> Served {
        Served {
            path: route.path,
            name: route.name,
            description: route.description,
            model: route.model,
            stream: route.stream,
            durable: route.durable,
            policies: route.policies,
            call: Call::Code(route.handler),
        }
    }

    /// The schemas of its input (if it takes one) and output: the Rust types' for a
    /// registered endpoint, any JSON for a route built in code.
    pub(crate) fn schemas(&self) -> (Option<SchemaFn>, SchemaFn) {
        match &self.call {
            Call::Registered(endpoint) => (endpoint.input_schema, endpoint.output_schema),
            Call::Code(_) => (Some(unknown_schema), unknown_schema),
        }
    }

    /// The Rust path, or `route <path>`, for error messages.
    pub(crate) fn origin(&self) -> String {
        match &self.call {
            Call::Registered(endpoint) => endpoint.rust_path().to_owned(),
            Call::Code(_) => format!("App::route(\"{}\")", self.path),
        }
    }

    /// Runs the endpoint on `input`.
    pub(crate) async fn call(
        &self,
        pipeline: &Pipeline,
        request: RequestInfo,
        input: Value,
    ) -> Result<Value, AgentError> {
        let run = async {
            match &self.call {
                Call::Registered(endpoint) => endpoint.call_json(pipeline, request, input).await,
                Call::Code(handler) => handler(pipeline, request, input).await,
            }
        };
        // A body that panics is a bug in it, not a reason to drop the connection: the
        // client still gets a classified error (500 `other`), with its request id.
        match std::panic::AssertUnwindSafe(run).catch_unwind().await {
            Ok(result) => result,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(endpoint = %self.path, panic = %what, "endpoint body panicked");
                Err(AgentError::new(
                    ErrorClass::Other,
                    format!("endpoint `{}` failed unexpectedly (it panicked)", self.path),
                ))
            }
        }
    }

    /// A pipeline builder with the path, model and policies; `global_fallback` stands in
    /// for a fallback chain the endpoint did not declare (after the endpoint's own model,
    /// if it names one).
    pub(crate) fn pipeline_builder(
        &self,
        global_fallback: Option<&FallbackChain>,
    ) -> PipelineBuilder {
        let mut policies = self.policies.clone();
        if policies.fallback.is_none() {
            policies.fallback = global_fallback.map(|chain| self.adopt(chain));
        }
        (policies.builder(&self.path, self.model.as_deref())).durable(self.durable)
    }

    /// The app's chain for this endpoint: as is when the endpoint names no model; else
    /// the endpoint's model first, then the chain's fallback steps.
    fn adopt(&self, global: &FallbackChain) -> FallbackChain {
        let Some(model) = &self.model else {
            return global.clone();
        };
        if **global.primary() == **model {
            return global.clone();
        }
        let builder = global
            .steps()
            .iter()
            .filter(|step| *step.model != **model)
            .fold(FallbackChain::builder(model.as_str()), |b, step| {
                b.then(step.model.clone(), step.on)
            });
        builder
            .build()
            .unwrap_or_else(|_| FallbackChain::single(model.as_str()))
    }

    /// The listing entry: path, name, description, model, stream, policies.
    pub(crate) fn describe(&self) -> Value {
        let p = &self.policies;
        let breakers: serde_json::Map<String, Value> = p
            .circuit_breakers
            .iter()
            .map(|(model, policy)| (model.clone(), json!(policy)))
            .collect();
        json!({
            "path": self.path,
            "name": self.name,
            "description": self.description,
            "model": self.model,
            "stream": self.stream,
            "policies": {
                "retry": p.retry,
                "circuit_breaker": p.circuit_breaker,
                "circuit_breakers": breakers,
                "timeout": p.timeout,
                "fallback": p.fallback,
                "rate_limit": p.rate_limit,
            },
        })
    }
}
