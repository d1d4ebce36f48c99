//! What `#[agent_endpoint]` and `#[hook]` expand to. Not a public API: names here may
//! change in any release.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use inventory;
pub use linkme;

// Every path the macros' generated code names (see fastagentic-macros' `paths.rs`).
pub use crate::endpoint::{Endpoint, EndpointPolicies};
pub use crate::error::{AgentError, ClassSet, ErrorClass};
// For the SSE benchmark, which compares it with `eventsource-stream`.
pub use crate::hooks::{HookContext, HookFuture, IntoHookResult};
pub use crate::llm::sse::{SseDecoder, SseEnd, SseEvent};
pub use crate::reliability::{
    Backoff, CircuitBreakerPolicy, EventKind, FallbackChain, OnLimit, OnTimeout, Pipeline,
    PolicyError, RateLimitPolicy, RequestInfo, RetryBudgetPolicy, RetryPolicy, TimeoutPolicy,
};

use std::sync::OnceLock;

use crate::endpoint::Handler;

use crate::context::AgentContext;
use crate::error::ErrorDetail;
use crate::hooks::{Hook, HookFn};

/// What `#[agent_endpoint]` knows of an endpoint, turned into an [`Endpoint`] by a const
/// fn so the registration is a `static`.
pub struct EndpointParts {
    pub path: &'static str,
    pub name: &'static str,
    pub rust_path: &'static str,
    pub description: &'static str,
    pub model: Option<&'static str>,
    pub stream: bool,
    pub policies: fn() -> Result<EndpointPolicies, PolicyError>,
    pub handler: Handler,
    pub pipeline: &'static OnceLock<Result<Pipeline, PolicyError>>,
}

impl EndpointParts {
    /// The endpoint these parts describe.
    pub const fn into_endpoint(self) -> Endpoint {
        Endpoint {
            path: self.path,
            name: self.name,
            rust_path: self.rust_path,
            description: self.description,
            model: self.model,
            stream: self.stream,
            policies: self.policies,
            handler: self.handler,
            pipeline: self.pipeline,
        }
    }
}

/// Every `#[agent_endpoint]`.
#[linkme::distributed_slice]
pub static ENDPOINTS: [Endpoint];

/// One `#[hook]`, collected by `inventory`.
#[derive(Debug)]
pub struct HookRegistration {
    /// The event.
    pub event: EventKind,
    /// The fn's name.
    pub name: &'static str,
    /// `endpoint = "/path"`, if scoped.
    pub endpoint: Option<&'static str>,
    /// `priority = n`.
    pub priority: i32,
    /// The shim that runs the fn.
    pub hook: HookFn,
}

inventory::collect!(HookRegistration);

impl HookRegistration {
    pub(crate) fn to_hook(&self) -> Hook {
        let hook = Hook::new(self.event, self.name, self.hook).priority(self.priority);
        match self.endpoint {
            Some(path) => hook.endpoint(path),
            None => hook,
        }
    }
}

/// Decodes an endpoint's input; a mismatch is `invalid_input` naming the field.
pub fn decode_input<T: DeserializeOwned>(input: Value) -> Result<T, AgentError> {
    serde_path_to_error::deserialize(input).map_err(|err| {
        let path = err.path().to_string();
        let message = if path == "." {
            format!("the input does not match: {}", err.inner())
        } else {
            format!("the input's `{path}` does not match: {}", err.inner())
        };
        AgentError::new(ErrorClass::InvalidInput, message)
            .with_detail(ErrorDetail::InvalidInput { field: path })
    })
}

/// Encodes an endpoint's output.
pub fn encode_output<T: Serialize>(output: &T) -> Result<Value, AgentError> {
    serde_json::to_value(output).map_err(|err| {
        AgentError::new(
            ErrorClass::Other,
            format!("the endpoint's output could not be encoded as JSON: {err}"),
        )
    })
}

/// The request a direct call makes: the caller's identity, carried by its context.
pub fn request_from(ctx: &AgentContext) -> RequestInfo {
    let mut request = RequestInfo::new();
    if let Some(user) = ctx.user() {
        request = request.user(user);
    }
    if let Some(tenant) = ctx.tenant() {
        request = request.tenant(tenant);
    }
    request
}

/// What an expression-form policy (`retry = my_policy()`) may evaluate to: the policy,
/// its builder (built here), or the `Result` of building it. The macro converts the
/// expression with `IntoPolicy::<RetryPolicy>::into_policy(expr)?` inside the endpoint's
/// policies fn, so a build error surfaces from `Endpoint::policies()`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a `{P}`",
    label = "expected a `{P}`, its builder, or `Result<{P}, PolicyError>`",
    note = "an expression-form policy (`retry = <expression>`) is evaluated when the endpoint's policies are built"
)]
pub trait IntoPolicy<P> {
    /// The policy, or why it could not be built.
    fn into_policy(self) -> Result<P, PolicyError>;
}

macro_rules! into_policy {
    ($($policy:ty => $builder:ty,)+) => {
        $(
            impl IntoPolicy<$policy> for $policy {
                fn into_policy(self) -> Result<$policy, PolicyError> {
                    Ok(self)
                }
            }

            impl IntoPolicy<$policy> for Result<$policy, PolicyError> {
                fn into_policy(self) -> Result<$policy, PolicyError> {
                    self
                }
            }

            impl IntoPolicy<$policy> for $builder {
                fn into_policy(self) -> Result<$policy, PolicyError> {
                    self.build()
                }
            }
        )+
    };
}

into_policy! {
    RetryPolicy => crate::reliability::RetryPolicyBuilder,
    CircuitBreakerPolicy => crate::reliability::CircuitBreakerPolicyBuilder,
    TimeoutPolicy => crate::reliability::TimeoutPolicyBuilder,
    RateLimitPolicy => crate::reliability::RateLimitPolicyBuilder,
    FallbackChain => crate::reliability::FallbackChainBuilder,
}
