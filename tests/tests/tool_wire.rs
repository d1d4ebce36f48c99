//! Tool round trips on the wire: each provider's client receives a tool call from the fake
//! server (whole and streamed one byte per chunk), the test answers it, and the follow-up
//! request must carry the model's turn and the tool's answer in that provider's own shape,
//! byte for byte as JSON.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use fastagentic::llm::{Completion, Message, Prompt, Role, ToolCall, ToolSpec};
use fastagentic::{AgentError, ErrorClass};
use fastagentic_testing::{Chunking, FakeServer, Reply, Route, fixture};
use serde_json::{Value, json};

/// Where the conversation sits in `route`'s request body.
fn conversation(route: Route, body: &Value) -> Value {
    match route {
        Route::OpenAi | Route::Anthropic => body["messages"].clone(),
        Route::Gemini => body["contents"].clone(),
    }
}

fn weather_tool() -> ToolSpec {
    ToolSpec {
        name: "get_weather".into(),
        description: "The weather in a city".into(),
        parameters: json!({"type": "object", "properties": {"location": {"type": "string"}}}),
    }
}

/// Sends `prompt` once, streamed or not, with the server answering `reply`.
async fn ask(
    api: Route,
    server: &FakeServer,
    prompt: &Prompt,
    reply: Reply,
    stream: bool,
) -> Completion {
    server.push(reply);
    let client = server.client(api);
    let call = async {
        if stream {
            client.stream(api.model(), prompt).await?.collect().await
        } else {
            client.complete(api.model(), prompt).await
        }
    };
    tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .expect("no answer within 5 s")
        .unwrap()
}

/// Answers every call of `first` (the first with its output, the others with an error),
/// sends the follow-up, and returns the conversation the server received.
async fn follow_up(api: Route, server: &FakeServer, prompt: Prompt, first: &Completion) -> Value {
    let mut next = prompt.answered(first);
    for (n, call) in first.tool_calls.iter().enumerate() {
        next = if n == 0 {
            next.tool_result(call, r#"{"celsius":21}"#)
        } else {
            next.tool_error(call, "no such city")
        };
    }
    let text = match api {
        Route::OpenAi => {
            r#"{"choices":[{"message":{"role":"assistant","content":"Mild."},"finish_reason":"stop"}]}"#
        }
        Route::Anthropic => {
            r#"{"id":"msg_2","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Mild."}],"stop_reason":"end_turn","usage":{"input_tokens":5,"output_tokens":2}}"#
        }
        Route::Gemini => {
            r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"Mild."}]},"finishReason":"STOP"}]}"#
        }
    };
    let done = ask(api, server, &next, Reply::json(200, text), false).await;
    assert_eq!(done.text, "Mild.");
    let requests = server.requests();
    let body = requests.last().unwrap().json().unwrap();
    conversation(api, &body)
}

#[tokio::test]
async fn openai_parallel_calls_streamed_then_answered() {
    let Some(stream) = fixture("openai_chat_stream_parallel_tool_calls.sse") else {
        return;
    };
    for chunking in Chunking::BOTH {
        let server = FakeServer::start().await.unwrap();
        let prompt = Prompt::user("Weather in Paris and Tokyo?").tool(weather_tool());
        let first = ask(
            Route::OpenAi,
            &server,
            &prompt,
            Reply::sse_in(&stream, chunking),
            true,
        )
        .await;
        assert_eq!(first.tool_calls.len(), 2, "{chunking:?}: {first:?}");
        let sent = follow_up(Route::OpenAi, &server, prompt, &first).await;
        let calls: Vec<Value> = first
            .tool_calls
            .iter()
            .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
            .collect();
        assert_eq!(
            sent,
            json!([
                {"role": "user", "content": "Weather in Paris and Tokyo?"},
                {"role": "assistant", "content": null, "tool_calls": calls},
                {"role": "tool", "tool_call_id": first.tool_calls[0].id, "content": "{\"celsius\":21}"},
                {"role": "tool", "tool_call_id": first.tool_calls[1].id, "content": "no such city"},
            ]),
            "{chunking:?}"
        );
    }
}

#[tokio::test]
async fn anthropic_tool_use_streamed_then_answered() {
    let Some(stream) = fixture("anthropic_messages_stream_tool_use.sse") else {
        return;
    };
    for chunking in Chunking::BOTH {
        let server = FakeServer::start().await.unwrap();
        let prompt = Prompt::user("Weather in Paris?")
            .system("Be brief.")
            .tool(weather_tool());
        let first = ask(
            Route::Anthropic,
            &server,
            &prompt,
            Reply::sse_in(&stream, chunking),
            true,
        )
        .await;
        assert_eq!(first.tool_calls.len(), 1, "{chunking:?}: {first:?}");
        let call = &first.tool_calls[0];
        assert_eq!(call.id, "toolu_01NRLabsLyVHZPKxbKvkfSMn");
        let sent = follow_up(Route::Anthropic, &server, prompt, &first).await;
        assert_eq!(
            sent,
            json!([
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": [
                    {"type": "text", "text": first.text},
                    {"type": "tool_use", "id": call.id, "name": "get_weather",
                     "input": call.parse_arguments().unwrap()},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": call.id, "content": "{\"celsius\":21}"},
                ]},
            ]),
            "{chunking:?}"
        );
    }
}

#[tokio::test]
async fn anthropic_errors_are_marked_and_answers_share_one_user_turn() {
    let server = FakeServer::start().await.unwrap();
    let reply = r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5",
        "content":[
          {"type":"tool_use","id":"toolu_a","name":"get_weather","input":{"location":"Paris"}},
          {"type":"tool_use","id":"toolu_b","name":"get_weather","input":{"location":"Atlantis"}}],
        "stop_reason":"tool_use","usage":{"input_tokens":10,"output_tokens":20}}"#;
    let prompt = Prompt::user("Paris and Atlantis?").tool(weather_tool());
    let first = ask(
        Route::Anthropic,
        &server,
        &prompt,
        Reply::json(200, reply),
        false,
    )
    .await;
    let sent = follow_up(Route::Anthropic, &server, prompt, &first).await;
    assert_eq!(
        sent[1],
        json!({"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {"location": "Paris"}},
            {"type": "tool_use", "id": "toolu_b", "name": "get_weather", "input": {"location": "Atlantis"}},
        ]})
    );
    assert_eq!(
        sent[2],
        json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_a", "content": "{\"celsius\":21}"},
            {"type": "tool_result", "tool_use_id": "toolu_b", "content": "no such city", "is_error": true},
        ]})
    );
    assert_eq!(sent.as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn gemini_function_calls_streamed_then_answered() {
    // Gemini streams whole parts: two calls in one chunk, then the finish with usage.
    let stream = concat!(
        "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[",
        "{\"functionCall\":{\"name\":\"get_weather\",\"args\":{\"location\":\"Paris\"}},",
        "\"thoughtSignature\":\"c2lnLTE=\"},",
        "{\"functionCall\":{\"name\":\"get_weather\",\"args\":{\"location\":\"Atlantis\"}}}]}}],",
        "\"modelVersion\":\"gemini-2.0-flash\"}\r\n\r\n",
        "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"\"}]},",
        "\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":30,",
        "\"candidatesTokenCount\":12,\"totalTokenCount\":42}}\r\n\r\n",
    );
    for chunking in Chunking::BOTH {
        let server = FakeServer::start().await.unwrap();
        let prompt = Prompt::user("Paris and Atlantis?")
            .system("Be brief.")
            .tool(weather_tool());
        let first = ask(
            Route::Gemini,
            &server,
            &prompt,
            Reply::sse_in(stream.as_bytes(), chunking),
            true,
        )
        .await;
        assert_eq!(first.tool_calls.len(), 2, "{chunking:?}: {first:?}");
        let sent = follow_up(Route::Gemini, &server, prompt, &first).await;
        assert_eq!(
            sent,
            json!([
                {"role": "user", "parts": [{"text": "Paris and Atlantis?"}]},
                {"role": "model", "parts": [
                    {"functionCall": {"name": "get_weather", "args": {"location": "Paris"}},
                     "thoughtSignature": "c2lnLTE="},
                    {"functionCall": {"name": "get_weather", "args": {"location": "Atlantis"}}},
                ]},
                {"role": "user", "parts": [
                    {"functionResponse": {"name": "get_weather", "response": {"output": {"celsius": 21}}}},
                    {"functionResponse": {"name": "get_weather", "response": {"error": "no such city"}}},
                ]},
            ]),
            "{chunking:?}"
        );
    }
}

#[tokio::test]
async fn a_plain_text_tool_output_and_a_cut_call_still_make_a_valid_history() {
    // A call cut short by max_tokens has arguments that are not JSON: Anthropic and Gemini
    // still get an object, so the answer that follows refers to a call the turn holds.
    let cut = ToolCall::new("call_cut", "get_weather", "{\"locati");
    let prompt = Prompt::from_messages([
        Message::new(Role::User, "?"),
        Message::assistant("", vec![cut.clone()]),
        Message::tool_result(&cut, "sunny"),
    ]);
    let server = FakeServer::start().await.unwrap();
    let reply = r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"ok"}]},"finishReason":"STOP"}]}"#;
    ask(
        Route::Gemini,
        &server,
        &prompt,
        Reply::json(200, reply),
        false,
    )
    .await;
    let sent = conversation(Route::Gemini, &server.requests()[0].json().unwrap());
    assert_eq!(sent[1]["parts"][0]["functionCall"]["args"], json!({}));
    assert_eq!(
        sent[2]["parts"][0]["functionResponse"]["response"],
        json!({"output": "sunny"})
    );
}

#[tokio::test]
async fn a_tool_message_without_its_call_is_refused_before_sending() {
    let server = FakeServer::start().await.unwrap();
    let prompt = Prompt::from_messages([
        Message::new(Role::User, "?"),
        Message::new(Role::Tool, "orphan"),
    ]);
    for api in Route::ALL {
        let err: AgentError = server
            .client(api)
            .complete(api.model(), &prompt)
            .await
            .unwrap_err();
        assert_eq!(err.class(), ErrorClass::InvalidInput, "{api:?}");
        assert!(
            err.to_string().contains("Message::tool_result"),
            "{api:?}: {err}"
        );
    }
    assert!(server.requests().is_empty());
}
