use fastagentic::prelude::*;

#[agent_endpoint]
async fn endpoint(ctx: AgentContext, text: String, language: String) -> Result<String, AgentError> {
    Ok(format!("{} {text} {language}", ctx.model()))
}

fn main() {}
