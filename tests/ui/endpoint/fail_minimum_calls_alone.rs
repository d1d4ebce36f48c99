use fastagentic::prelude::*;

#[agent_endpoint(circuit_breaker(minimum_calls = 10))]
async fn endpoint(ctx: AgentContext) -> Result<String, AgentError> {
    Ok(ctx.model().to_owned())
}

fn main() {}
