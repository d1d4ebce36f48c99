use fastagentic::prelude::*;

#[agent_endpoint(
    path = "x",
    retry(max_attempts = 0, backof = "fixed"),
    timeout(total_ms = "10s")
)]
async fn endpoint(ctx: AgentContext) -> Result<String, AgentError> {
    Ok(ctx.model().to_owned())
}

fn main() {}
