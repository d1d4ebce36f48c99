use fastagentic::prelude::*;

#[agent_endpoint(timeout(on_timeout = "checkpoint"))]
async fn endpoint(ctx: AgentContext) -> Result<String, AgentError> {
    Ok(ctx.model().to_owned())
}

fn main() {}
