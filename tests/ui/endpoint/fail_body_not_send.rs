use std::rc::Rc;

use fastagentic::prelude::*;

/// The body holds an `Rc` across an `.await`, so its future is not `Send`.
#[agent_endpoint]
async fn endpoint(ctx: AgentContext) -> Result<String, AgentError> {
    let count = Rc::new(1);
    let reply = ctx.llm().complete(Prompt::user("hi")).await?;
    Ok(format!("{count} {}", reply.text))
}

fn main() {}
