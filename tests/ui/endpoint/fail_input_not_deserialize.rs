use fastagentic::prelude::*;

/// Clone, but not Deserialize.
#[derive(Clone)]
struct Question {
    text: String,
}

#[agent_endpoint]
async fn endpoint(question: Question) -> Result<String, AgentError> {
    Ok(question.text)
}

fn main() {}
