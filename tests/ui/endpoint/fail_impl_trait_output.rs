use fastagentic::prelude::*;

#[agent_endpoint]
async fn endpoint(ctx: AgentContext) -> Result<impl Serialize, AgentError> {
    Ok(ctx.model().to_owned())
}

fn main() {}
