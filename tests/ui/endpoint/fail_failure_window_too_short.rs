use fastagentic::prelude::*;

#[agent_endpoint(circuit_breaker(failure_window_ms = 500))]
async fn endpoint(ctx: AgentContext) -> Result<String, AgentError> {
    Ok(ctx.model().to_owned())
}

fn main() {}
