use fastagentic::prelude::*;

#[agent_endpoint(retry(jitter = true, jitter_factor = 1.5))]
async fn endpoint(ctx: AgentContext) -> Result<String, AgentError> {
    Ok(ctx.model().to_owned())
}

fn main() {}
