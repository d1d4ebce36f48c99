use fastagentic::prelude::*;

#[agent_endpoint(circuit_breaker(failure_rate_threshold = 1.5))]
async fn endpoint(ctx: AgentContext) -> Result<String, AgentError> {
    Ok(ctx.model().to_owned())
}

fn main() {}
