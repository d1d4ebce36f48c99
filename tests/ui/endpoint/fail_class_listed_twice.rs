use fastagentic::prelude::*;

#[agent_endpoint(retry(retry_on = ["timeout", "timeout"]))]
async fn endpoint(ctx: AgentContext) -> Result<String, AgentError> {
    Ok(ctx.model().to_owned())
}

fn main() {}
