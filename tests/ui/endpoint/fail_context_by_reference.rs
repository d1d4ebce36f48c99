use fastagentic::prelude::*;

#[agent_endpoint]
async fn endpoint(ctx: &AgentContext) -> Result<String, AgentError> {
    Ok(ctx.model().to_owned())
}

fn main() {}
