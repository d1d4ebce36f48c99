use fastagentic::prelude::*;

#[agent_endpoint(model = "gpt-4o", fallback(primary = "gpt-4o-mini", then("gpt-4o", on = ["timeout"])))]
async fn endpoint(ctx: AgentContext) -> Result<String, AgentError> {
    Ok(ctx.model().to_owned())
}

fn main() {}
