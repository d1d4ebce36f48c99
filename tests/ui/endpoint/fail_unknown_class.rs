use fastagentic::prelude::*;

#[agent_endpoint(retry(retry_on = ["rate_limit", "rate_limited"]))]
async fn endpoint(ctx: AgentContext) -> Result<String, AgentError> {
    Ok(ctx.model().to_owned())
}

fn main() {}
