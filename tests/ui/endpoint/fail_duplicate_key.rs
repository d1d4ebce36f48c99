use fastagentic::prelude::*;

#[agent_endpoint(retry(max_attempts = 3, max_attempts = 4))]
async fn endpoint(ctx: AgentContext) -> Result<String, AgentError> {
    Ok(ctx.model().to_owned())
}

fn main() {}
