//! The OpenAI-compatible front door: existing OpenAI clients (the official SDKs,
//! LangChain, anything with a `base_url`) get the pipeline's limits, breakers, retries,
//! fallbacks and prices without a code change.
//!
//! ```
//! use fastagentic::prelude::*;
//! use fastagentic::server::{Gateway, GatewayRoute};
//! use fastagentic::{ClassSet, ErrorClass};
//!
//! # fn main() -> Result<(), fastagentic::reliability::PolicyError> {
//! let smart = FallbackChain::builder("openai/gpt-4o")
//!     .then(
//!         "anthropic/claude-sonnet-4-5",
//!         ClassSet::of(&[ErrorClass::RateLimit, ErrorClass::Overloaded]),
//!     )
//!     .build()?;
//! let gateway = Gateway::new()
//!     .route(GatewayRoute::new("smart", smart).description("gpt-4o, then Claude"))
//!     .model("openai/gpt-4o-mini")
//!     .retry(RetryPolicy::builder().max_attempts(3).build()?);
//! let app = App::new("Gateway").openai_compatible(gateway);
//! # let _ = app; Ok(()) }
//! ```
//!
//! # The HTTP surface
//!
//! | Request | Answer |
//! |---|---|
//! | `POST /v1/chat/completions` | a `chat.completion`, or with `"stream": true` `chat.completion.chunk` events ending in `data: [DONE]` |
//! | `GET /v1/models` | `{"object": "list", "data": [{"id", "object": "model", "created", "owned_by"}]}`: every route and model |
//! | `GET /v1/models/{id}` | one of them, or 404 `model_not_found` |
//!
//! The request's `model` names a [route](GatewayRoute) (a fallback chain with its own
//! policies) or a [model](Gateway::model) listed as served; any other is refused with 404
//! `model_not_found`, so the front door is not an open relay to every model the
//! providers know. Callers are identified as on every route of the app (API keys,
//! identity headers: see [`identity`](super::identity)); the body's `user` field names the
//! user where identity headers are believed, and is ignored where the key decides.
//!
//! Read from the body: `messages` (`system`/`developer`, `user`, `assistant` with
//! `tool_calls`, `tool`; text content, as a string or text parts), `tools`,
//! `tool_choice`, `max_completion_tokens` (or `max_tokens`), `temperature`, `stop`,
//! `n` (1 only), `user`, `stream`, `stream_options.include_usage` and `response_format`
//! (see [`ResponseFormat`](crate::llm::ResponseFormat) for what each provider does with
//! it). Other fields (`top_p`, `seed`, `logprobs`, `metadata`, ...) are accepted and not
//! forwarded. Image and audio parts are refused with 400.
//!
//! Tool calls pass through: the model's `tool_calls` come back in OpenAI's shape,
//! whichever provider answered, and the client runs the tools and sends `tool` messages
//! back, as it would to OpenAI.
//!
//! # What comes back
//!
//! - `model` is the model that answered, as its provider names it: after a fallback it
//!   is not the one the route starts with.
//! - `usage` is the answering call's tokens in OpenAI's meaning (`prompt_tokens` with
//!   cached ones inside, `completion_tokens` with reasoning inside), whatever provider
//!   answered, plus `cost`, its price in US dollars when known.
//! - `X-Fastagentic-Cost-Usd` and `X-Fastagentic-Tokens` are the whole request's (every
//!   attempt), as on every endpoint ([`cost`](super::cost)); a stream carries its usage in
//!   the last chunk when `stream_options.include_usage` is set.
//!
//! # Errors
//!
//! Every refusal is OpenAI's error shape, `{"error": {"message", "type", "code",
//! "param"}}`, with fastagentic's own fields beside them (`class`, `retry_after_ms`,
//! `attempted`, ...). The statuses are those of every endpoint
//! ([`status`](super::status)), but for an invalid request, which is 400 as at OpenAI.
//! `x-should-retry` tells the SDKs (which obey it before their own rules) what we
//! decided, so a client does not retry what the pipeline already retried:
//!
//! | Answer | `type` | `code` | `x-should-retry` |
//! |---|---|---|---|
//! | 400 bad request | `invalid_request_error` | `invalid_input`, `context_length_exceeded`, ... | `false` |
//! | 401 / 403 | `authentication_error` / `permission_error` | the class | `false` |
//! | 404 unknown model | `invalid_request_error` | `model_not_found` | `false` |
//! | 429 from our own limiter | `rate_limit_error` | `rate_limit_exceeded` | `true`, with `Retry-After` and `retry-after-ms` |
//! | 503 circuit open | `server_error` | `circuit_open` | `true`, with `Retry-After` and `retry-after-ms` |
//! | 503 cancelled (shutdown) | `server_error` | `cancelled` | `true` (another replica may answer) |
//! | 502 / 504 upstream failure | `server_error` | the class (`server_error`, `timeout`, ...) | `false`: every retry and fallback was spent |
//!
//! A stream that fails after its first chunk ends with `data: {"error": {...}}` (the SDKs
//! raise it as an `APIError`) and no `[DONE]`.

mod error;
mod handler;
mod request;
mod response;

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::endpoint::EndpointPolicies;
use crate::reliability::{
    CircuitBreakerPolicy, FallbackChain, RateLimitPolicy, RetryPolicy, TimeoutPolicy,
};

pub(crate) use self::handler::{GatewayState, RouteState, router};

/// The path of the chat completions route.
pub(crate) const CHAT_COMPLETIONS: &str = "/v1/chat/completions";
/// The path of the model listing.
pub(crate) const MODELS: &str = "/v1/models";

/// The policies of a [`GatewayRoute`]; `None` where the route takes the gateway's
/// default ([`Gateway::retry`] and the like).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RoutePolicies {
    /// Retries of each model of the chain (default: 3 attempts, or the app's
    /// [`default_max_attempts`](super::App::default_max_attempts)).
    pub retry: Option<RetryPolicy>,
    /// A breaker per model of the chain.
    pub circuit_breaker: Option<CircuitBreakerPolicy>,
    /// Timeouts.
    pub timeout: Option<TimeoutPolicy>,
    /// Limits of the route, its users and its tenants.
    pub rate_limit: Option<RateLimitPolicy>,
}

impl RoutePolicies {
    /// These policies, with `defaults` where these set none.
    fn or(&self, defaults: &RoutePolicies) -> RoutePolicies {
        RoutePolicies {
            retry: self.retry.clone().or_else(|| defaults.retry.clone()),
            circuit_breaker: (self.circuit_breaker.clone())
                .or_else(|| defaults.circuit_breaker.clone()),
            timeout: self.timeout.clone().or_else(|| defaults.timeout.clone()),
            rate_limit: (self.rate_limit.clone()).or_else(|| defaults.rate_limit.clone()),
        }
    }
}

/// A name clients put in `model`, standing for a fallback chain run under its own
/// policies: `"smart"` for "gpt-4o, then Claude on a rate limit".
///
/// Deserializes from `{"name", "description"?, "fallback": {"primary", "then": [{"model",
/// "on"}]}, "policies"?: {"retry", "circuit_breaker", "timeout", "rate_limit"}}`, the
/// policies in the shape of their builders.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayRoute {
    name: String,
    #[serde(default)]
    description: String,
    fallback: FallbackChain,
    #[serde(default)]
    policies: RoutePolicies,
    /// Made by [`Gateway::model`]: a model served under its own name.
    #[serde(skip)]
    model: bool,
}

impl GatewayRoute {
    /// The route `name`, running `chain`.
    pub fn new(name: impl Into<String>, chain: FallbackChain) -> Self {
        GatewayRoute {
            name: name.into(),
            description: String::new(),
            fallback: chain,
            policies: RoutePolicies::default(),
            model: false,
        }
    }

    /// What it is, for `GET /endpoints`.
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Retries of each model of the chain.
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.policies.retry = Some(policy);
        self
    }

    /// A breaker per model of the chain.
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

    /// Limits of the route, its users and its tenants.
    #[must_use]
    pub fn rate_limit(mut self, policy: RateLimitPolicy) -> Self {
        self.policies.rate_limit = Some(policy);
        self
    }

    /// The name clients call it by.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What it is.
    pub(crate) fn description_text(&self) -> &str {
        &self.description
    }

    /// Whether this is a model served under its own name.
    pub(crate) fn is_model(&self) -> bool {
        self.model
    }

    /// The model its pipeline starts with: the chain's primary.
    pub(crate) fn primary(&self) -> &str {
        self.fallback.primary()
    }

    /// The policies as an endpoint's, for the pipeline builder.
    fn endpoint_policies(&self, defaults: &RoutePolicies) -> EndpointPolicies {
        let policies = self.policies.or(defaults);
        EndpointPolicies {
            retry: Some(policies.retry.unwrap_or_default()),
            circuit_breaker: policies.circuit_breaker,
            timeout: policies.timeout,
            // A model served by name has nothing to fall back to: it runs as an endpoint's
            // model does, without walking a chain of one.
            fallback: (!self.model).then(|| self.fallback.clone()),
            rate_limit: policies.rate_limit,
            ..EndpointPolicies::default()
        }
    }
}

/// What [`App::openai_compatible`](super::App::openai_compatible) serves: the
/// [routes](GatewayRoute) and models clients may name, and the policies of those that
/// set none. See the [module docs](self) for the HTTP surface.
///
/// Deserializes from `{"routes": [...], "models": ["openai/gpt-4o-mini", ...],
/// "defaults": {"retry", "circuit_breaker", "timeout", "rate_limit"}}`, so it can live in
/// a configuration file.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Gateway {
    routes: Vec<GatewayRoute>,
    models: Vec<String>,
    defaults: RoutePolicies,
}

/// Why a [`Gateway`] cannot be served.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidGateway {
    /// A route or model has an empty name.
    #[error(
        "a gateway route has an empty name; give every route and model a name clients can send as `model`"
    )]
    EmptyName,
    /// Two routes or models share a name.
    #[error("the gateway serves `{0}` twice; route names and model names must be distinct")]
    Duplicate(String),
    /// Nothing to serve.
    #[error(
        "the gateway serves no route and no model; add one with `Gateway::route` or `Gateway::model`"
    )]
    Empty,
}

impl Gateway {
    /// A gateway serving nothing yet.
    pub fn new() -> Self {
        Gateway::default()
    }

    /// Serves a route.
    #[must_use]
    pub fn route(mut self, route: GatewayRoute) -> Self {
        self.routes.push(route);
        self
    }

    /// Serves `model` under its own name (`"openai/gpt-4o-mini"`), with the gateway's
    /// default policies and no fallback.
    #[must_use]
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.models.push(model.into());
        self
    }

    /// The retry policy of routes that set none (default: 3 attempts, or the app's
    /// [`default_max_attempts`](super::App::default_max_attempts)).
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.defaults.retry = Some(policy);
        self
    }

    /// The breaker policy of routes that set none (default: no breaker).
    #[must_use]
    pub fn circuit_breaker(mut self, policy: CircuitBreakerPolicy) -> Self {
        self.defaults.circuit_breaker = Some(policy);
        self
    }

    /// The timeouts of routes that set none (default: none).
    #[must_use]
    pub fn timeout(mut self, policy: TimeoutPolicy) -> Self {
        self.defaults.timeout = Some(policy);
        self
    }

    /// The limits of routes that set none (default: none; the app's own
    /// [`rate_limit`](super::App::rate_limit) applies to every request anyway).
    #[must_use]
    pub fn rate_limit(mut self, policy: RateLimitPolicy) -> Self {
        self.defaults.rate_limit = Some(policy);
        self
    }

    /// Every route, models included as routes of one model, checked.
    pub(crate) fn resolved(&self) -> Result<Vec<(GatewayRoute, EndpointPolicies)>, InvalidGateway> {
        let models = self.models.iter().map(|model| GatewayRoute {
            model: true,
            ..GatewayRoute::new(model.clone(), FallbackChain::single(model.as_str()))
        });
        let all: Vec<GatewayRoute> = self.routes.iter().cloned().chain(models).collect();
        if all.is_empty() {
            return Err(InvalidGateway::Empty);
        }
        let mut seen: HashMap<&str, ()> = HashMap::with_capacity(all.len());
        for route in &all {
            if route.name.trim().is_empty() {
                return Err(InvalidGateway::EmptyName);
            }
            if seen.insert(route.name.as_str(), ()).is_some() {
                return Err(InvalidGateway::Duplicate(route.name.clone()));
            }
        }
        Ok(all
            .iter()
            .map(|route| (route.clone(), route.endpoint_policies(&self.defaults)))
            .collect())
    }
}

/// The label of a route's pipeline (breakers, metrics, hooks): the path and the name.
pub(crate) fn label(route: &str) -> String {
    format!("{CHAT_COMPLETIONS}#{route}")
}

/// Whether the app answers `path` itself when the gateway is on.
pub(crate) fn claims(path: &str) -> bool {
    path == CHAT_COMPLETIONS || path == MODELS || path.starts_with("/v1/models/")
}

/// The served routes, by the name clients send as `model`.
pub(crate) type Routes = HashMap<String, Arc<RouteState>>;
