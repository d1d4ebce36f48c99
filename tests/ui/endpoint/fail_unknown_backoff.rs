use fastagentic::prelude::*;

#[agent_endpoint(retry(backoff = "exponentail"))]
async fn endpoint(ctx: AgentContext) -> Result<String, AgentError> {
    Ok(ctx.model().to_owned())
}

fn main() {}
