use fastagentic::prelude::*;

#[agent_endpoint(durable = true, stream = true)]
async fn endpoint(ctx: AgentContext) -> Result<String, AgentError> {
    Ok(ctx.model().to_owned())
}

fn main() {}
