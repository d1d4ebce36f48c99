//! `crate = path`: the generated code reaches the runtime through the path given, as
//! when fastagentic is re-exported by another crate of the user's.

mod platform {
    pub use ::fastagentic::*;
}

use fastagentic::prelude::*;

#[agent_endpoint(crate = crate::platform, path = "/through_reexport", model = "mock/re")]
async fn through_reexport(ctx: AgentContext) -> Result<String, AgentError> {
    Ok(ctx.model().to_owned())
}

#[hook("on_request", crate = crate::platform, endpoint = "/through_reexport")]
fn seen(ctx: &mut HookContext) {
    ctx.metadata.insert("seen".into(), true.into());
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let model = through_reexport(AgentContext::detached("mock/re")).await.unwrap();
    assert_eq!(model, "mock/re");
    assert!(fastagentic::endpoint::find("/through_reexport").is_some());
}
