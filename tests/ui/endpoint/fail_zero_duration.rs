use fastagentic::prelude::*;

#[agent_endpoint(timeout(total_ms = 0))]
async fn endpoint(ctx: AgentContext) -> Result<String, AgentError> {
    Ok(ctx.model().to_owned())
}

fn main() {}
