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

/// Writes a type's JSON Schema into a generator (its named parts as definitions) and
/// returns the schema to use where the type appears.
pub type SchemaFn = fn(&mut schemars::SchemaGenerator) -> Value;

/// Picks a type's [`SchemaFn`] by autoref specialization: `(&&SchemaOf::<T>(PhantomData))
/// .schema_fn()` is [`SchemaFromJsonSchema`]'s when `T: JsonSchema`, else
/// [`SchemaUnknown`]'s, so an endpoint whose types do not derive `JsonSchema` still
/// compiles and is documented as taking any JSON.
pub struct SchemaOf<T: ?Sized>(pub core::marker::PhantomData<T>);

/// The schema of a `JsonSchema` type (the specialized case).
pub trait SchemaFromJsonSchema {
    fn schema_fn(&self) -> SchemaFn;
}

impl<T: schemars::JsonSchema + ?Sized> SchemaFromJsonSchema for &SchemaOf<T> {
    fn schema_fn(&self) -> SchemaFn {
        |generator| generator.subschema_for::<T>().to_value()
    }
}

/// Any JSON, for a type without `JsonSchema` (the fallback).
pub trait SchemaUnknown {
    fn schema_fn(&self) -> SchemaFn;
}

impl<T: ?Sized> SchemaUnknown for SchemaOf<T> {
    fn schema_fn(&self) -> SchemaFn {
        unknown_schema
    }
}

/// The schema of a type that does not say its shape.
pub(crate) fn unknown_schema(_: &mut schemars::SchemaGenerator) -> Value {
    serde_json::json!({
        "description": "Any JSON: the Rust type does not implement `schemars::JsonSchema`; derive it for a typed schema."
    })
}

/// What `#[agent_endpoint]` knows of an endpoint, turned into an [`Endpoint`] by a const
/// fn so the registration is a `static`.
pub struct EndpointParts {
    pub path: &'static str,
    pub name: &'static str,
    pub rust_path: &'static str,
    pub description: &'static str,
    pub model: Option<&'static str>,
    pub stream: bool,
    pub durable: bool,
    pub policies: fn() -> Result<EndpointPolicies, PolicyError>,
    pub handler: Handler,
    pub pipeline: &'static OnceLock<Result<Pipeline, PolicyError>>,
    pub input_schema: Option<SchemaFn>,
    pub output_schema: SchemaFn,
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
            durable: self.durable,
            policies: self.policies,
            handler: self.handler,
            pipeline: self.pipeline,
            input_schema: self.input_schema,
            output_schema: self.output_schema,
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
        let inner = err.inner().to_string();
        let path = field_path(&err.path().to_string(), &inner);
        let message = if path == "." {
            format!("the input does not match: {inner}")
        } else {
            format!("the input's `{path}` does not match: {inner}")
        };
        AgentError::new(ErrorClass::InvalidInput, message)
            .with_detail(ErrorDetail::InvalidInput { field: path })
    })
}

/// The path of the field at fault. A missing field is reported by serde at its parent
/// (`.` for the top level), naming the field only in the message it formats
/// (`missing field `prompt``, serde's own `Error::missing_field` wording): the field is
/// appended, so the client is told `prompt`, or `items[2].name`, not `.`.
pub(crate) fn field_path(parent: &str, message: &str) -> String {
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(field, _)| field);
    match (missing, parent) {
        (Some(field), ".") => field.to_owned(),
        (Some(field), parent) => format!("{parent}.{field}"),
        (None, parent) => parent.to_owned(),
    }
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

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize)]
    struct Item {
        #[allow(dead_code)]
        name: String,
    }

    #[derive(Debug, Deserialize)]
    struct Order {
        #[allow(dead_code)]
        prompt: String,
        #[allow(dead_code)]
        #[serde(default)]
        items: Vec<Item>,
    }

    fn field_of(input: serde_json::Value) -> String {
        match decode_input::<Order>(input).map_err(|e| e.detail().cloned()) {
            Err(Some(ErrorDetail::InvalidInput { field })) => field,
            other => panic!("an invalid_input detail was expected: {other:?}"),
        }
    }

    #[test]
    fn a_missing_field_is_named_with_its_path() {
        assert_eq!(field_of(json!({})), "prompt");
        assert_eq!(
            field_of(json!({"prompt": "p", "items": [{"name": "a"}, {}]})),
            "items[1].name"
        );
        assert_eq!(field_of(json!({"prompt": 3})), "prompt");
        assert_eq!(field_of(json!(null)), ".");
    }
}
