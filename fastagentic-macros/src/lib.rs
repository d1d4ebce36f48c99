//! Procedural macros for `fastagentic`. Use them through the `fastagentic` crate
//! (`use fastagentic::prelude::*;`), which re-exports them; the guide's chapters
//! "Endpoints and attributes" and "Hooks" document every key, its default and the
//! compile errors you get.

use proc_macro::TokenStream;

mod attr;
mod endpoint;
mod hook;
mod paths;

/// Wraps an `async fn` in the reliability pipeline and registers it as an endpoint.
///
/// The fn keeps its name and stays callable: a call runs the body through the
/// endpoint's pipeline (rate limit, total timeout, then for each model of the fallback
/// chain a retry loop of circuit breaker and body). Keys: `path`, `name`, `description`,
/// `model`, `stream`, `durable`, and the policies `retry(...)`, `circuit_breaker(...)`,
/// `circuit_breaker_for("model", ...)`, `timeout(...)`, `fallback(...)`,
/// `rate_limit(...)`, each also as an expression (`retry = my_policy()`). Mistakes are
/// compile errors on the offending token. See the guide's "Endpoints and attributes".
#[proc_macro_attribute]
pub fn agent_endpoint(attr: TokenStream, item: TokenStream) -> TokenStream {
    endpoint::expand(attr.into(), item.into()).into()
}

/// Registers a fn as a hook for one pipeline event:
/// `#[hook("on_retry", endpoint = "/path", priority = 10)]` on an `async fn` or `fn`
/// taking `&mut HookContext`. The event names are those of `EventKind::hook_name`; a
/// misspelt one is a compile error suggesting the nearest. See the guide's "Hooks".
#[proc_macro_attribute]
pub fn hook(attr: TokenStream, item: TokenStream) -> TokenStream {
    hook::expand(attr.into(), item.into()).into()
}
