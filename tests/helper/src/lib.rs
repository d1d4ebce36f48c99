//! Endpoints (and hooks) defined in a crate of their own, so the integration tests can
//! check that `#[agent_endpoint]` and `#[hook]` register across crates.
//!
//! `linkme` and `inventory` only see crates the linker keeps: a test must use an item of
//! this crate (call [`link`], or an endpoint fn) for its registrations to appear.

use fastagentic::prelude::*;

/// The input and output of `/helper/echo`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Echo {
    /// The text to echo.
    pub text: String,
}

/// Echoes its input, naming the model that answered.
#[agent_endpoint(path = "/helper/echo", model = "mock/helper", retry(max_attempts = 2))]
pub async fn echo(ctx: AgentContext, input: Echo) -> Result<Echo, AgentError> {
    Ok(Echo {
        text: format!("{} (via {})", input.text, ctx.model()),
    })
}

// Hooks: the `#[hook]` tests add theirs here. Scope them to this crate's endpoints
// (`endpoint = "/helper/echo"`) so they do not steer the endpoints of other tests.

/// Notes in the run's metadata that a hook from this crate saw the request
/// (`tests/tests/hooks.rs` checks it is registered and runs).
#[hook("on_request", endpoint = "/helper/echo")]
fn tag_helper_echo(ctx: &mut HookContext) {
    ctx.metadata
        .insert("helper_hook".into(), "on_request".into());
}

/// Does nothing; calling it keeps this crate, and so its registrations, in the test
/// binary.
pub fn link() {}
