use fastagentic::prelude::*;

#[agent_endpoint]
async fn endpoint(ctx: AgentContext) -> String {
    ctx.model().to_owned()
}

fn main() {}
