use fastagentic::prelude::*;

#[agent_endpoint(fallback(primary = "gpt-4o", then("gpt-4o-mini", onn = ["rate_limit"])))]
async fn endpoint(ctx: AgentContext) -> Result<String, AgentError> {
    Ok(ctx.model().to_owned())
}

fn main() {}
