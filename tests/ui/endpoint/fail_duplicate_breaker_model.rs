use fastagentic::prelude::*;

#[agent_endpoint(
    circuit_breaker_for("gpt-4o", failure_threshold = 3),
    circuit_breaker_for("gpt-4o", reset_timeout_ms = 1000)
)]
async fn endpoint(ctx: AgentContext) -> Result<String, AgentError> {
    Ok(ctx.model().to_owned())
}

fn main() {}
