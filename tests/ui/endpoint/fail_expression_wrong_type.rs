use fastagentic::prelude::*;

#[agent_endpoint(retry = 5)]
async fn endpoint(ctx: AgentContext) -> Result<String, AgentError> {
    Ok(ctx.model().to_owned())
}

fn main() {}
