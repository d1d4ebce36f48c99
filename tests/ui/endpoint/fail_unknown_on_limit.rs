use fastagentic::prelude::*;

#[agent_endpoint(rate_limit(requests_per_minute = 10, on_limit = "drop"))]
async fn endpoint(ctx: AgentContext) -> Result<String, AgentError> {
    Ok(ctx.model().to_owned())
}

fn main() {}
