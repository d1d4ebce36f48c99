use fastagentic::prelude::*;

#[agent_endpoint(fallback(primary = "gpt-4o", then("gpt-4o-mini", on = ["timeout"]), then("gpt-4o-mini", on = ["server_error"])))]
async fn endpoint(ctx: AgentContext) -> Result<String, AgentError> {
    Ok(ctx.model().to_owned())
}

fn main() {}
