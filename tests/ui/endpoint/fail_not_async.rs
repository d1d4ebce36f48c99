use fastagentic::prelude::*;

#[agent_endpoint]
fn endpoint(ctx: AgentContext) -> Result<String, AgentError> {
    Ok(ctx.model().to_owned())
}

fn main() {}
