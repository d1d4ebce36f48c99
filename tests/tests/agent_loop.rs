//! The agent loop as an endpoint body runs it: tools called for the model (a turn's calls
//! concurrently), mistakes told to the model instead of failing the request, the step
//! limit, and a model failure mid-loop falling back to another provider without calling
//! any tool twice — on the mock, and on the wire (OpenAI to Claude) through the fake
//! server.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use fastagentic::error::ErrorDetail;
use fastagentic::llm::{Anthropic, MockProvider, MockReply, OpenAi, Providers, Role, Usage};
use fastagentic::prelude::*;
use fastagentic::tools::{AgentAnswer, Tool, Tools};
use fastagentic_testing::{FakeServer, Reply, Route, providers, retry};
use schemars::JsonSchema;
use serde_json::{Value, json};

#[derive(Deserialize, Serialize, JsonSchema)]
struct Sum {
    terms: Vec<i64>,
}

#[derive(Deserialize, Serialize, JsonSchema)]
struct Nothing {}

/// A calculator and a clock, each counting its calls.
fn toolbox() -> (Arc<AtomicU32>, Arc<AtomicU32>, Tools) {
    let adds = Arc::new(AtomicU32::new(0));
    let reads = Arc::new(AtomicU32::new(0));
    let (a, r) = (adds.clone(), reads.clone());
    let add = Tool::new("add", "Adds integers", move |s: Sum| {
        a.fetch_add(1, Ordering::SeqCst);
        async move { Ok::<_, AgentError>(s.terms.iter().sum::<i64>()) }
    })
    .unwrap();
    let clock = Tool::new("clock", "The time in UTC", move |_: Nothing| {
        r.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, AgentError>("12:00") }
    })
    .unwrap();
    (adds, reads, Tools::new().with(add).with(clock))
}

async fn agent(pipeline: &Pipeline, tools: &Tools) -> Result<AgentAnswer, AgentError> {
    pipeline
        .run(RequestInfo::new(), |ctx: AgentContext| {
            let tools = tools.clone();
            async move {
                ctx.llm()
                    .run("Add 2 and 3, and tell the time", &tools)
                    .await
            }
        })
        .await
}

/// The tool answers in the transcript: (content, is_error) per tool message.
fn answers(answer: &AgentAnswer) -> Vec<(String, bool)> {
    answer
        .transcript
        .messages()
        .iter()
        .filter(|m| m.role == Role::Tool)
        .map(|m| {
            let failed = m.tool_result.as_ref().is_some_and(|r| r.is_error);
            (m.content.clone(), failed)
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn parallel_calls_are_answered_and_the_model_finishes() {
    let (adds, reads, tools) = toolbox();
    let mock = Arc::new(
        MockProvider::new().push(
            MockReply::tool_call("add", json!({"terms": [2, 3]}))
                .and_call("clock", json!({}))
                .usage(Usage::new(100, 10)),
        ),
    );
    let pipeline = Pipeline::builder()
        .model("mock/agent")
        .providers(providers(&mock))
        .build()
        .unwrap();
    let answer = agent(&pipeline, &tools).await.unwrap();
    assert_eq!(
        answer.text(),
        "Mock answer from agent: the tools said 5, 12:00."
    );
    assert_eq!(
        answers(&answer),
        [("5".into(), false), ("12:00".into(), false)]
    );
    assert_eq!(
        (adds.load(Ordering::SeqCst), reads.load(Ordering::SeqCst)),
        (1, 1)
    );
    assert_eq!(answer.steps.len(), 2);
    assert_eq!(answer.steps[0].tool_calls, ["add", "clock"]);
    assert!(answer.steps[1].tool_calls.is_empty());
    // The model saw both tools offered, and the whole conversation on its second call.
    let (_, sent) = mock.last_call().unwrap();
    let offered: Vec<&str> = sent.tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(offered, ["add", "clock"]);
    assert_eq!(sent.messages().len(), 4);
    // Usage adds up over the steps: the scripted first, the mock's estimate second.
    assert_eq!(answer.steps[0].usage, Some(Usage::new(100, 10)));
    let second = answer.steps[1].usage.unwrap();
    assert_eq!(answer.usage(), Some(Usage::new(100, 10) + second));
}

#[tokio::test(start_paused = true)]
async fn mistakes_are_told_to_the_model_not_thrown() {
    let (_, _, tools) = toolbox();
    let boom = Tool::new("boom", "Panics", |_: Nothing| async {
        if true {
            panic!("kaboom");
        }
        Ok::<_, AgentError>(())
    })
    .unwrap();
    let tools = tools.with(boom);
    let mock = Arc::new(
        MockProvider::new().push(
            MockReply::tool_call("weather", json!({"city": "Paris"}))
                .and_call("add", json!({"terms": "two"}))
                .and_call("boom", json!({})),
        ),
    );
    let metrics = Arc::new(fastagentic::metrics::Metrics::new());
    let pipeline = Pipeline::builder()
        .endpoint("/agent/mistakes")
        .model("mock/agent")
        .providers(providers(&mock))
        .event_sink(metrics.clone())
        .build()
        .unwrap();
    let answer = agent(&pipeline, &tools).await.unwrap();
    let told = answers(&answer);
    assert_eq!(told.len(), 3);
    assert!(told.iter().all(|(_, failed)| *failed), "{told:?}");
    assert_eq!(
        told[0].0,
        "there is no tool named `weather`; the tools are: add, clock, boom"
    );
    assert!(
        told[1]
            .0
            .starts_with("the input of tool `add` does not match its schema at `terms`"),
        "{}",
        told[1].0
    );
    assert_eq!(told[2].0, "tool `boom` panicked: kaboom");
    let text = metrics.render();
    for (tool, outcome) in [
        ("weather", "invalid_input"),
        ("add", "invalid_input"),
        ("boom", "other"),
    ] {
        let series = format!(
            "fastagentic_tool_calls_total{{endpoint=\"/agent/mistakes\",tool=\"{tool}\",outcome=\"{outcome}\"}} 1"
        );
        assert!(text.contains(&series), "{series} in\n{text}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_model_that_never_stops_asking_runs_out_of_steps() {
    let (_, reads, tools) = toolbox();
    let tools = tools.max_steps(3);
    let mock =
        Arc::new(MockProvider::new().default_reply(MockReply::tool_call("clock", json!({}))));
    let pipeline = Pipeline::builder()
        .model("mock/agent")
        .providers(providers(&mock))
        .retry(retry(3))
        .build()
        .unwrap();
    let err = agent(&pipeline, &tools).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Other);
    assert!(
        err.message().starts_with(
            "the agent loop used all of its 3 steps and the model still asks for tools (clock)"
        ),
        "{err}"
    );
    let Some(ErrorDetail::MaxSteps { transcript, .. }) = err.detail() else {
        panic!("{err:?}");
    };
    // The prompt, three turns, and the answers to the first two.
    assert_eq!(transcript.messages().len(), 6);
    // Three model calls, two clock reads, and no second run of the body.
    assert_eq!(mock.calls(), 3);
    assert_eq!(reads.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_fallback_mid_loop_continues_the_conversation() {
    let (adds, reads, tools) = toolbox();
    let primary = MockProvider::named("primary")
        .push(MockReply::tool_call("add", json!({"terms": [2, 3]})))
        .push(MockReply::tool_call("clock", json!({})))
        .push(MockReply::overloaded());
    let backup = Arc::new(MockProvider::named("backup"));
    let chain = FallbackChain::builder("primary/a")
        .then("backup/b", ClassSet::of(&[ErrorClass::Overloaded]))
        .build()
        .unwrap();
    let pipeline = Pipeline::builder()
        .fallback(chain)
        .retry(retry(1))
        .providers(Arc::new(
            Providers::new().with(primary).with_shared(backup.clone()),
        ))
        .build()
        .unwrap();
    let answer = agent(&pipeline, &tools).await.unwrap();
    assert_eq!(answer.text(), "Mock answer from b: the tools said 12:00.");
    // Each tool ran once; the backup got the two tool steps the primary had done.
    assert_eq!(
        (adds.load(Ordering::SeqCst), reads.load(Ordering::SeqCst)),
        (1, 1)
    );
    let (_, sent) = backup.last_call().unwrap();
    assert_eq!(sent.messages().len(), 5);
    let providers: Vec<&str> = answer.steps.iter().map(|s| &*s.provider).collect();
    assert_eq!(providers, ["primary", "primary", "backup"]);
}

#[tokio::test]
async fn an_openai_loop_falls_back_to_claude_with_the_transcript_in_claudes_shape() {
    let server = FakeServer::start().await.unwrap();
    let call = r#"{"id":"chatcmpl-1","model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":null,
        "tool_calls":[{"id":"call_sum","type":"function","function":{"name":"add","arguments":"{\"terms\":[2,3]}"}}]},
        "finish_reason":"tool_calls"}],"usage":{"prompt_tokens":50,"completion_tokens":9,"total_tokens":59}}"#;
    server.push_for(Route::OpenAi, Reply::json(200, call));
    server.push_for(Route::OpenAi, Reply::rate_limited_secs(30));
    server.push_for(
        Route::Anthropic,
        Reply::json(
            200,
            r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5",
            "content":[{"type":"text","text":"2 + 3 = 5."}],"stop_reason":"end_turn",
            "usage":{"input_tokens":80,"output_tokens":7}}"#,
        ),
    );
    let base = server.base_url();
    let providers = Providers::new()
        .with(OpenAi::new("test-key").base_url(format!("{base}/v1")))
        .with(Anthropic::new("test-key").base_url(base));
    let chain = FallbackChain::builder("gpt-4o")
        .then("claude-sonnet-4-5", ClassSet::of(&[ErrorClass::RateLimit]))
        .build()
        .unwrap();
    let pipeline = Pipeline::builder()
        .fallback(chain)
        .retry(retry(1))
        .providers(Arc::new(providers))
        .build()
        .unwrap();
    let (adds, _, tools) = toolbox();
    let answer = tokio::time::timeout(Duration::from_secs(10), agent(&pipeline, &tools))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer.text(), "2 + 3 = 5.");
    assert_eq!(adds.load(Ordering::SeqCst), 1);
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    let claude: Value = requests[2].json().unwrap();
    assert_eq!(
        claude["messages"],
        json!([
            {"role": "user", "content": "Add 2 and 3, and tell the time"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "call_sum", "name": "add", "input": {"terms": [2, 3]}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_sum", "content": "5"},
            ]},
        ])
    );
    let offered: Vec<&str> = claude["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(offered, ["add", "clock"]);
    let providers: Vec<&str> = answer.steps.iter().map(|s| &*s.provider).collect();
    assert_eq!(providers, ["openai", "anthropic"]);
}

#[tokio::test(start_paused = true)]
async fn the_calls_of_one_turn_run_concurrently() {
    let slow = |name: &str| {
        Tool::new(name, "Takes a second", |_: Nothing| async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok::<_, AgentError>("done")
        })
        .unwrap()
    };
    let tools = Tools::new().with(slow("first")).with(slow("second"));
    let mock = Arc::new(
        MockProvider::new()
            .push(MockReply::tool_call("first", json!({})).and_call("second", json!({}))),
    );
    let pipeline = Pipeline::builder()
        .model("mock/agent")
        .providers(providers(&mock))
        .build()
        .unwrap();
    let started = tokio::time::Instant::now();
    let answer = agent(&pipeline, &tools).await.unwrap();
    assert_eq!(answers(&answer).len(), 2);
    // Side by side: one second, not two.
    assert_eq!(started.elapsed(), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn a_finished_loop_is_not_paid_again_when_the_body_fails_after_it() {
    let (_, reads, tools) = toolbox();
    let mock = Arc::new(MockProvider::new().push(MockReply::tool_call("clock", json!({}))));
    let pipeline = Pipeline::builder()
        .model("mock/agent")
        .providers(providers(&mock))
        .retry(retry(2))
        .build()
        .unwrap();
    let answer = pipeline
        .run(RequestInfo::new(), |ctx: AgentContext| {
            let tools = tools.clone();
            async move {
                let answer = ctx.llm().run("What time is it?", &tools).await?;
                // Whatever the body does after the loop fails once.
                if ctx.attempt() == 1 {
                    return Err(AgentError::new(ErrorClass::ServerError, "storage hiccup"));
                }
                Ok(answer)
            }
        })
        .await
        .unwrap();
    assert_eq!(
        answer.text(),
        "Mock answer from agent: the tools said 12:00."
    );
    assert_eq!(
        mock.calls(),
        2,
        "the second attempt reused the finished loop"
    );
    assert_eq!(reads.load(Ordering::SeqCst), 1);
}
