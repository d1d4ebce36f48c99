use fastagentic::prelude::*;

struct Agent;

impl Agent {
    #[agent_endpoint]
    async fn endpoint(&self, ctx: AgentContext) -> Result<String, AgentError> {
        Ok(ctx.model().to_owned())
    }
}

fn main() {}
