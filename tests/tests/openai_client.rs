//! The front door through a Rust OpenAI client (async-openai), its own types decoding our
//! answers: Claude's replies, streamed and whole, tool calls included, behind an app
//! whose providers point at a fake upstream on loopback.

// Test helpers outside #[test] fns may unwrap: a panic is a test failure.
#![allow(clippy::unwrap_used)]

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionMessageToolCalls, ChatCompletionRequestAssistantMessageArgs,
    ChatCompletionRequestToolMessageArgs, ChatCompletionRequestUserMessageArgs,
    ChatCompletionStreamOptions, ChatCompletionTool, ChatCompletionTools,
    CreateChatCompletionRequestArgs, FinishReason, FunctionObject,
};
use fastagentic::llm::{Anthropic, OpenAi, Providers};
use fastagentic::prelude::*;
use fastagentic::server::Gateway;
use fastagentic_testing::{FakeServer, Reply, Route};
use futures_util::StreamExt;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// An app serving Claude and gpt-4o-mini through the front door, and a client for it.
async fn start(upstream: &FakeServer) -> (Client<OpenAIConfig>, oneshot::Sender<()>) {
    let base = upstream.base_url();
    let providers = Providers::new()
        .with(OpenAi::new("sk-upstream").base_url(format!("{base}/v1")))
        .with(Anthropic::new("sk-ant-upstream").base_url(base));
    let gateway = Gateway::new()
        .model("anthropic/claude-sonnet-4-5")
        .model("openai/gpt-4o-mini");
    let app = App::bare("Rust client")
        .providers(providers)
        .openai_compatible(gateway);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.serve_with(listener, async move {
        let _ = stopped.await;
    }));
    let config = OpenAIConfig::new()
        .with_api_base(format!("http://{address}/v1"))
        .with_api_key("unused-here");
    (Client::with_config(config), stop)
}

fn user(text: &str) -> async_openai::types::chat::ChatCompletionRequestMessage {
    ChatCompletionRequestUserMessageArgs::default()
        .content(text)
        .build()
        .unwrap()
        .into()
}

#[tokio::test]
async fn claude_answers_in_the_clients_own_types() {
    let upstream = FakeServer::start().await.unwrap();
    let (client, _stop) = start(&upstream).await;
    let request = CreateChatCompletionRequestArgs::default()
        .model("anthropic/claude-sonnet-4-5")
        .messages([user("Hello?")])
        .max_completion_tokens(64u32)
        .build()
        .unwrap();
    let reply = client.chat().create(request).await.unwrap();
    assert_eq!(reply.model, "claude-sonnet-4-5");
    assert_eq!(
        reply.choices[0].message.content.as_deref(),
        Some("Hello from the fake provider.")
    );
    assert_eq!(reply.choices[0].finish_reason, Some(FinishReason::Stop));
    let usage = reply.usage.unwrap();
    assert_eq!(
        usage.total_tokens,
        usage.prompt_tokens + usage.completion_tokens
    );
    let sent = upstream.requests()[0].json().unwrap();
    assert_eq!(sent["max_tokens"], 64);

    let request = CreateChatCompletionRequestArgs::default()
        .model("anthropic/claude-sonnet-4-5")
        .messages([user("Stream it")])
        .stream_options(ChatCompletionStreamOptions {
            include_usage: Some(true),
            include_obfuscation: None,
        })
        .build()
        .unwrap();
    let mut stream = client.chat().create_stream(request).await.unwrap();
    let (mut text, mut usage, mut finish) = (String::new(), None, None);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        if let Some(choice) = chunk.choices.first() {
            text.push_str(choice.delta.content.as_deref().unwrap_or(""));
            finish = choice.finish_reason.or(finish);
        }
        usage = chunk.usage.or(usage);
    }
    assert_eq!(text, "Hello from the fake provider.");
    assert_eq!(finish, Some(FinishReason::Stop));
    assert!(usage.is_some_and(|u| u.prompt_tokens > 0));
}

#[tokio::test]
async fn a_tool_call_round_trip() {
    let upstream = FakeServer::start().await.unwrap();
    let (client, _stop) = start(&upstream).await;
    let tool_use = json!({
        "id": "msg_tool", "type": "message", "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "tool_use", "id": "toolu_07", "name": "get_weather",
                     "input": {"city": "Oslo"}}],
        "stop_reason": "tool_use", "stop_sequence": null,
        "usage": {"input_tokens": 50, "output_tokens": 12},
    });
    upstream.push_for(Route::Anthropic, Reply::json(200, tool_use.to_string()));
    let tools = vec![ChatCompletionTools::Function(ChatCompletionTool {
        function: FunctionObject {
            name: "get_weather".into(),
            description: Some("The weather in a city".into()),
            parameters: Some(json!({"type": "object",
                "properties": {"city": {"type": "string"}}, "required": ["city"]})),
            strict: None,
        },
    })];
    let request = CreateChatCompletionRequestArgs::default()
        .model("anthropic/claude-sonnet-4-5")
        .messages([user("Weather in Oslo?")])
        .tools(tools.clone())
        .build()
        .unwrap();
    let reply = client.chat().create(request).await.unwrap();
    let choice = &reply.choices[0];
    assert_eq!(choice.finish_reason, Some(FinishReason::ToolCalls));
    let calls = choice.message.tool_calls.clone().unwrap();
    let ChatCompletionMessageToolCalls::Function(call) = &calls[0] else {
        panic!("a function call was expected: {calls:?}");
    };
    assert_eq!(call.function.name, "get_weather");
    assert_eq!(call.function.arguments, r#"{"city":"Oslo"}"#);

    let assistant = ChatCompletionRequestAssistantMessageArgs::default()
        .tool_calls(calls.clone())
        .build()
        .unwrap();
    let result = ChatCompletionRequestToolMessageArgs::default()
        .tool_call_id(call.id.clone())
        .content(r#"{"temp_c": 4}"#)
        .build()
        .unwrap();
    let request = CreateChatCompletionRequestArgs::default()
        .model("anthropic/claude-sonnet-4-5")
        .messages([user("Weather in Oslo?"), assistant.into(), result.into()])
        .tools(tools)
        .build()
        .unwrap();
    let reply = client.chat().create(request).await.unwrap();
    assert_eq!(
        reply.choices[0].message.content.as_deref(),
        Some("Hello from the fake provider.")
    );
    let sent = upstream.requests()[1].json().unwrap();
    let results: Vec<&serde_json::Value> = sent["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["content"].as_array())
        .flatten()
        .filter(|block| block["type"] == "tool_result")
        .collect();
    assert_eq!(results[0]["tool_use_id"], "toolu_07");
}

#[tokio::test]
async fn an_unknown_model_is_an_api_error_the_client_can_read() {
    let upstream = FakeServer::start().await.unwrap();
    let (client, _stop) = start(&upstream).await;
    let request = CreateChatCompletionRequestArgs::default()
        .model("gpt-9")
        .messages([user("hi")])
        .build()
        .unwrap();
    match client.chat().create(request).await {
        Err(OpenAIError::ApiError(err)) => {
            assert_eq!(err.status_code, 404);
            assert_eq!(err.api_error.code.as_deref(), Some("model_not_found"));
            assert_eq!(err.api_error.param.as_deref(), Some("model"));
            assert_eq!(
                err.api_error.r#type.as_deref(),
                Some("invalid_request_error")
            );
        }
        other => panic!("a 404 ApiError was expected: {other:?}"),
    }
    assert!(upstream.requests().is_empty());
}
