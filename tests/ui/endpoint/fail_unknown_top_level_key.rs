use fastagentic::prelude::*;

#[agent_endpoint(retyr(max_attempts = 3))]
async fn endpoint(ctx: AgentContext) -> Result<String, AgentError> {
    Ok(ctx.model().to_owned())
}

fn main() {}
