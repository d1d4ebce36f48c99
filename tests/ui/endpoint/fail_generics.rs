use fastagentic::prelude::*;

#[agent_endpoint]
async fn endpoint<T: Clone>(ctx: AgentContext, input: T) -> Result<String, AgentError> {
    let _ = input.clone();
    Ok(ctx.model().to_owned())
}

fn main() {}
