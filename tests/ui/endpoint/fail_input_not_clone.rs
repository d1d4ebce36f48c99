use fastagentic::prelude::*;

/// Deserialize, but not Clone: each attempt needs its own copy.
#[derive(Deserialize)]
struct Question {
    text: String,
}

#[agent_endpoint]
async fn endpoint(question: Question) -> Result<String, AgentError> {
    Ok(question.text)
}

fn main() {}
