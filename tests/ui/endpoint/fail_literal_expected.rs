use fastagentic::prelude::*;

#[agent_endpoint(retry(max_attempts = ATTEMPTS))]
async fn endpoint(ctx: AgentContext) -> Result<String, AgentError> {
    Ok(ctx.model().to_owned())
}

const ATTEMPTS: u32 = 3;

fn main() {}
