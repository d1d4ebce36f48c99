use fastagentic::prelude::*;

#[agent_endpoint(path = "analyze")]
async fn endpoint(ctx: AgentContext) -> Result<String, AgentError> {
    Ok(ctx.model().to_owned())
}

fn main() {}
