use fastagentic::prelude::*;

/// An error type with no conversion into `AgentError`.
#[derive(Debug)]
struct MyError;

#[agent_endpoint]
async fn endpoint(ctx: AgentContext) -> Result<String, MyError> {
    Ok(ctx.model().to_owned())
}

fn main() {}
