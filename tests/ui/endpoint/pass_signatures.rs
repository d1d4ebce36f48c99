//! The four accepted shapes — context and input, context only, input only, neither —
//! each called directly (through its pipeline) and as JSON (through its handler).

use fastagentic::prelude::*;
use serde_json::json;

#[derive(Deserialize, Clone)]
struct Question {
    text: String,
}

#[derive(Serialize, Debug, PartialEq)]
struct Answer {
    text: String,
}

#[agent_endpoint(path = "/both", model = "mock/both")]
async fn both(ctx: AgentContext, q: Question) -> Result<Answer, AgentError> {
    let reply = ctx.llm().complete(Prompt::user(&q.text)).await?;
    Ok(Answer { text: reply.text })
}

#[agent_endpoint(path = "/context_only", model = "mock/ctx")]
async fn context_only(ctx: AgentContext) -> Result<String, AgentError> {
    Ok(format!("{} on attempt {}", ctx.model(), ctx.attempt()))
}

#[agent_endpoint(path = "/input_only")]
async fn input_only(q: Question) -> Result<usize, AgentError> {
    Ok(q.text.len())
}

#[agent_endpoint(path = "/neither")]
async fn neither() -> Result<&'static str, AgentError> {
    Ok("pong")
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), AgentError> {
    let q = Question { text: "hi".into() };
    let answer = both(AgentContext::detached("ignored"), q.clone()).await?;
    assert_eq!(answer.text, "Mock answer from both: you asked \"hi\".");
    let text = context_only(AgentContext::detached("ignored")).await?;
    assert_eq!(text, "mock/ctx on attempt 1");
    assert_eq!(input_only(q).await?, 2);
    assert_eq!(neither().await?, "pong");

    for (path, input, expected) in [
        (
            "/both",
            json!({"text": "hi"}),
            json!({"text": "Mock answer from both: you asked \"hi\"."}),
        ),
        ("/context_only", json!(null), json!("mock/ctx on attempt 1")),
        ("/input_only", json!({"text": "four"}), json!(4)),
        ("/neither", json!({"ignored": true}), json!("pong")),
    ] {
        let endpoint = fastagentic::endpoint::find(path).expect("registered");
        let pipeline = endpoint.pipeline()?;
        let output = endpoint
            .call_json(pipeline, RequestInfo::new(), input)
            .await?;
        assert_eq!(output, expected, "{path}");
    }
    Ok(())
}
