use fastagentic::prelude::*;

struct Answer {
    text: String,
}

#[agent_endpoint]
async fn endpoint() -> Result<Answer, AgentError> {
    Ok(Answer {
        text: String::new(),
    })
}

fn main() {}
