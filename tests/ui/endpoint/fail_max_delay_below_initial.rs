use fastagentic::prelude::*;

#[agent_endpoint(retry(initial_delay_ms = 5000, max_delay_ms = 1000))]
async fn endpoint(ctx: AgentContext) -> Result<String, AgentError> {
    Ok(ctx.model().to_owned())
}

fn main() {}
