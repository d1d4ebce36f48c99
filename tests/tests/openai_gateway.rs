//! The OpenAI-compatible front door over real HTTP: an app on a loopback port, its
//! providers pointed at a fake upstream on another, and reqwest speaking the Chat
//! Completions wire as an OpenAI client would.

// Test helpers outside #[test] fns may unwrap: a panic is a test failure.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use fastagentic::llm::{Anthropic, OpenAi, Providers};
use fastagentic::prelude::*;
use fastagentic::server::{
    Gateway, GatewayRoute, InvalidGateway, Route as EndpointRoute, ServeError,
};
use fastagentic::{ClassSet, ErrorClass};
use fastagentic_testing::{FakeServer, Reply, Route, json_of, sse_events};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The app under test, served until dropped.
struct Served {
    base: String,
    _stop: oneshot::Sender<()>,
}

impl Served {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

async fn serve(app: App) -> Served {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.serve_with(listener, async move {
        let _ = stopped.await;
    }));
    Served { base, _stop: stop }
}

/// OpenAI and Anthropic, both at `upstream`.
fn providers(upstream: &FakeServer) -> Providers {
    let base = upstream.base_url();
    Providers::new()
        .with(OpenAi::new("sk-upstream-openai").base_url(format!("{base}/v1")))
        .with(Anthropic::new("sk-ant-upstream").base_url(base))
}

fn quick_retry(attempts: u32) -> RetryPolicy {
    RetryPolicy::builder()
        .max_attempts(attempts)
        .initial_delay(Duration::from_millis(1))
        .jitter(false)
        .build()
        .unwrap()
}

/// `smart`: gpt-4o, then Claude on a rate limit; and gpt-4o-mini under its own name.
fn gateway() -> Gateway {
    let smart = FallbackChain::builder("openai/gpt-4o")
        .then(
            "anthropic/claude-sonnet-4-5",
            ClassSet::of(&[ErrorClass::RateLimit, ErrorClass::Overloaded]),
        )
        .build()
        .unwrap();
    Gateway::new()
        .route(GatewayRoute::new("smart", smart).description("gpt-4o, then Claude"))
        .model("openai/gpt-4o-mini")
        .model("anthropic/claude-sonnet-4-5")
        .retry(quick_retry(1))
}

async fn start(upstream: &FakeServer, gateway: Gateway) -> Served {
    let app = App::bare("Gateway")
        .providers(providers(upstream))
        .openai_compatible(gateway);
    serve(app).await
}

async fn chat(served: &Served, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(served.url("/v1/chat/completions"))
        .bearer_auth("sk-anything")
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// The `data:` payloads of an OpenAI stream, `[DONE]` included.
fn data_lines(body: &str) -> Vec<String> {
    sse_events(body).into_iter().map(|(_, data)| data).collect()
}

#[tokio::test]
async fn a_whole_answer_comes_back_as_a_chat_completion() {
    let upstream = FakeServer::start().await.unwrap();
    let served = start(&upstream, gateway()).await;
    let response = chat(
        &served,
        json!({
            "model": "openai/gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Hello?"}]},
            ],
            "max_completion_tokens": 64,
            "temperature": 0.2,
            "stop": ["\n\n"],
            "seed": 7,
        }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let cost = response.headers().get("x-fastagentic-cost-usd").cloned();
    let body = json_of(response).await;
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(body["choices"][0]["message"]["role"], "assistant");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello from the fake provider."
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    let usage = &body["usage"];
    assert_eq!(
        usage["total_tokens"].as_u64(),
        Some(
            usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
        )
    );
    assert!(usage["cost"].as_f64().is_some_and(|c| c > 0.0), "{usage}");
    assert!(cost.is_some(), "the cost header is set for a priced model");

    // What the upstream received: the model's own name, the system message, the limits.
    let sent = upstream.requests()[0].json().unwrap();
    assert_eq!(sent["model"], "gpt-4o-mini");
    assert_eq!(sent["messages"][0]["role"], "system");
    assert_eq!(sent["messages"][1]["content"], "Hello?");
    assert_eq!(sent["temperature"], 0.2);
    assert_eq!(sent["stop"], json!(["\n\n"]));
    let limit = sent.get("max_completion_tokens").or(sent.get("max_tokens"));
    assert_eq!(limit, Some(&json!(64)));
}

#[tokio::test]
async fn a_stream_is_chunks_with_usage_last_then_done() {
    let upstream = FakeServer::start().await.unwrap();
    let served = start(&upstream, gateway()).await;
    let response = chat(
        &served,
        json!({
            "model": "openai/gpt-4o-mini",
            "messages": [{"role": "user", "content": "Stream please"}],
            "stream": true,
            "stream_options": {"include_usage": true},
        }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let lines = data_lines(&response.text().await.unwrap());
    assert_eq!(lines.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = lines[..lines.len() - 1]
        .iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    assert!(chunks.iter().all(|c| c["id"] == chunks[0]["id"]));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Hello from the fake provider.");
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let usage = &chunks[chunks.len() - 1];
    assert_eq!(usage["choices"], json!([]));
    assert!(
        usage["usage"]["prompt_tokens"]
            .as_u64()
            .is_some_and(|n| n > 0)
    );
    assert_eq!(chunks[1]["model"], "gpt-4o-mini");
}

#[tokio::test]
async fn a_rate_limited_primary_falls_back_to_claude_in_openai_shape() {
    let upstream = FakeServer::start().await.unwrap();
    let served = start(&upstream, gateway()).await;
    upstream.push_for(Route::OpenAi, Reply::rate_limited_ms(20));
    let response = chat(
        &served,
        json!({"model": "smart", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json_of(response).await;
    assert_eq!(body["model"], "claude-sonnet-4-5");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello from the fake provider."
    );
    assert!(
        body["usage"]["prompt_tokens"]
            .as_u64()
            .is_some_and(|n| n > 0)
    );
    let paths: Vec<String> = upstream.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, ["/v1/chat/completions", "/v1/messages"]);

    // Streamed, the chunks name the model that answered.
    upstream.push_for(Route::OpenAi, Reply::rate_limited_ms(20));
    let response = chat(
        &served,
        json!({"model": "smart", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let lines = data_lines(&response.text().await.unwrap());
    let first: Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(first["model"], "claude-sonnet-4-5");
    assert_eq!(lines.last().map(String::as_str), Some("[DONE]"));
}

#[tokio::test]
async fn tool_calls_round_trip_through_claude() {
    let upstream = FakeServer::start().await.unwrap();
    let served = start(&upstream, gateway()).await;
    let tool_use = json!({
        "id": "msg_tool", "type": "message", "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "tool_use", "id": "toolu_01", "name": "get_weather",
                     "input": {"city": "Oslo"}}],
        "stop_reason": "tool_use", "stop_sequence": null,
        "usage": {"input_tokens": 50, "output_tokens": 12},
    });
    upstream.push_for(Route::Anthropic, Reply::json(200, tool_use.to_string()));
    let tools = json!([{"type": "function", "function": {
        "name": "get_weather", "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]}}}]);
    let question = json!({"role": "user", "content": "Weather in Oslo?"});
    let response = chat(
        &served,
        json!({"model": "anthropic/claude-sonnet-4-5", "messages": [question],
               "tools": tools, "tool_choice": "required"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json_of(response).await;
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["id"], "toolu_01");
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let arguments: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(arguments, json!({"city": "Oslo"}));
    let sent = upstream.requests()[0].json().unwrap();
    assert_eq!(sent["tools"][0]["name"], "get_weather");
    assert_eq!(sent["tool_choice"], json!({"type": "any"}));

    // The client ran the tool and sends its result back, as it would to OpenAI.
    let response = chat(
        &served,
        json!({"model": "anthropic/claude-sonnet-4-5", "tools": tools, "messages": [
            question,
            {"role": "assistant", "content": null, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "toolu_01", "content": "{\"temp_c\": 4}"},
        ]}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json_of(response).await;
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello from the fake provider."
    );
    let sent = upstream.requests()[1].json().unwrap();
    let messages = sent["messages"].as_array().unwrap();
    let blocks: Vec<&Value> = messages
        .iter()
        .filter_map(|m| m["content"].as_array())
        .flatten()
        .collect();
    let used = blocks.iter().find(|b| b["type"] == "tool_use").unwrap();
    assert_eq!(used["id"], "toolu_01");
    assert_eq!(used["input"], json!({"city": "Oslo"}));
    let result = blocks.iter().find(|b| b["type"] == "tool_result").unwrap();
    assert_eq!(result["tool_use_id"], "toolu_01");
}

#[tokio::test]
async fn our_own_limit_is_a_429_the_sdks_wait_out() {
    let upstream = FakeServer::start().await.unwrap();
    let limit = RateLimitPolicy::builder()
        .requests_per_minute(1)
        .build()
        .unwrap();
    let served = start(&upstream, gateway().rate_limit(limit)).await;
    let body =
        json!({"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]});
    let first = chat(&served, body.clone()).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(first.headers()["x-ratelimit-limit"], "1");
    let second = chat(&served, body).await;
    assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
    let headers = second.headers().clone();
    assert_eq!(headers["x-should-retry"], "true");
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    let retry_after_ms: u64 = headers["retry-after-ms"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert!(retry_after_ms > 0 && retry_after_ms <= retry_after * 1000);
    let error = &json_of(second).await["error"];
    assert_eq!(error["type"], "rate_limit_error");
    assert_eq!(error["code"], "rate_limit_exceeded");
    assert_eq!(error["param"], Value::Null);
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(
        upstream.requests().len(),
        1,
        "a refused request never reaches the upstream"
    );
}

#[tokio::test]
async fn an_upstream_failure_after_every_retry_is_a_502_not_to_retry() {
    let upstream = FakeServer::start().await.unwrap();
    let served = start(&upstream, gateway().retry(quick_retry(2))).await;
    upstream.push_n(Reply::server_error(500), 2);
    let response = chat(
        &served,
        json!({"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(response.headers()["x-should-retry"], "false");
    let error = &json_of(response).await["error"];
    assert_eq!(error["type"], "server_error");
    assert_eq!(error["code"], "server_error");
    assert_eq!(upstream.requests().len(), 2);
}

#[tokio::test]
async fn bad_requests_name_the_parameter() {
    let upstream = FakeServer::start().await.unwrap();
    let served = start(&upstream, gateway()).await;
    let hi = json!([{"role": "user", "content": "hi"}]);
    let cases = [
        (
            json!({"model": "gpt-5-turbo-ultra", "messages": hi}),
            404,
            "model_not_found",
            "model",
        ),
        (
            json!({"model": "smart", "messages": hi, "n": 2}),
            400,
            "invalid_input",
            "n",
        ),
        (json!({"model": "smart"}), 400, "invalid_input", "messages"),
        (
            json!({"model": "smart", "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]}),
            400,
            "invalid_input",
            "messages[0].content[0]",
        ),
    ];
    for (body, status, code, param) in cases {
        let response = chat(&served, body.clone()).await;
        assert_eq!(response.status().as_u16(), status, "{body}");
        assert_eq!(response.headers()["x-should-retry"], "false");
        let error = &json_of(response).await["error"];
        assert_eq!(error["type"], "invalid_request_error", "{body}");
        assert_eq!(error["code"], code, "{body}");
        assert_eq!(error["param"], param, "{body}");
    }
    let not_json = reqwest::Client::new()
        .post(served.url("/v1/chat/completions"))
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        json_of(not_json).await["error"]["type"],
        "invalid_request_error"
    );
    assert!(upstream.requests().is_empty());
}

#[tokio::test]
async fn the_models_listing_names_every_route_and_model() {
    let upstream = FakeServer::start().await.unwrap();
    let served = start(&upstream, gateway()).await;
    let client = reqwest::Client::new();
    let list = json_of(client.get(served.url("/v1/models")).send().await.unwrap()).await;
    assert_eq!(list["object"], "list");
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["smart", "openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5"]
    );
    assert_eq!(list["data"][0]["owned_by"], "fastagentic");
    assert_eq!(list["data"][1]["owned_by"], "openai");
    let one = client
        .get(served.url("/v1/models/openai/gpt-4o-mini"))
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), StatusCode::OK);
    assert_eq!(json_of(one).await["object"], "model");
    let missing = client
        .get(served.url("/v1/models/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(json_of(missing).await["error"]["code"], "model_not_found");
    let wrong = client
        .get(served.url("/v1/chat/completions"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn a_gateway_can_live_in_a_config_file() {
    let config = json!({
        "routes": [{
            "name": "cheap",
            "fallback": {"primary": "openai/gpt-4o-mini",
                         "then": [{"model": "anthropic/claude-sonnet-4-5", "on": ["overloaded"]}]},
            "policies": {"retry": {"max_attempts": 1}},
        }],
    });
    let gateway: Gateway = serde_json::from_value(config).unwrap();
    let upstream = FakeServer::start().await.unwrap();
    upstream.push_for(Route::OpenAi, Reply::overloaded());
    let served = start(&upstream, gateway).await;
    let response = chat(
        &served,
        json!({"model": "cheap", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_of(response).await["model"], "claude-sonnet-4-5");
    let typo = json!({"routes": [], "modles": []});
    let err = serde_json::from_value::<Gateway>(typo).unwrap_err();
    assert!(err.to_string().contains("modles"), "{err}");
}

#[test]
fn a_gateway_that_cannot_be_served_is_refused_at_build() {
    let empty = App::bare("Empty")
        .openai_compatible(Gateway::new())
        .router();
    assert!(matches!(
        empty,
        Err(ServeError::InvalidGateway(InvalidGateway::Empty))
    ));
    let twice = Gateway::new().model("openai/gpt-4o").model("openai/gpt-4o");
    let twice = App::bare("Twice").openai_compatible(twice).router();
    assert!(
        matches!(&twice, Err(ServeError::InvalidGateway(InvalidGateway::Duplicate(name))) if name == "openai/gpt-4o")
    );
    let clash = EndpointRoute::new("/v1/chat/completions", |_: AgentContext, (): ()| async {
        Ok::<_, AgentError>(())
    });
    let clash = App::bare("Clash")
        .route(clash)
        .openai_compatible(Gateway::new().model("openai/gpt-4o"))
        .router();
    assert!(
        matches!(clash, Err(ServeError::InvalidPath { .. })),
        "{clash:?}"
    );
}

#[tokio::test]
async fn an_open_breaker_is_a_503_the_sdks_may_wait_out() {
    let upstream = FakeServer::start().await.unwrap();
    let breaker = CircuitBreakerPolicy::builder()
        .failure_threshold(2)
        .build()
        .unwrap();
    let served = start(&upstream, gateway().circuit_breaker(breaker)).await;
    upstream.push_n(Reply::server_error(500), 2);
    let body =
        json!({"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]});
    for _ in 0..2 {
        let failed = chat(&served, body.clone()).await;
        assert!(failed.status().is_server_error(), "{}", failed.status());
    }
    let refused = chat(&served, body).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    let headers = refused.headers().clone();
    assert_eq!(headers["x-should-retry"], "true");
    assert!(headers.contains_key("retry-after"));
    assert!(headers.contains_key("retry-after-ms"));
    let error = &json_of(refused).await["error"];
    assert_eq!(error["type"], "server_error");
    assert_eq!(error["code"], "circuit_open");
    assert_eq!(
        upstream.requests().len(),
        2,
        "an open breaker sends nothing upstream"
    );
}

#[tokio::test]
async fn a_stream_cut_mid_answer_ends_with_an_error_chunk_and_no_done() {
    let upstream = FakeServer::start().await.unwrap();
    let served = start(&upstream, gateway()).await;
    // Enough of the canned stream for the first deltas, then the connection drops.
    upstream.push_for(Route::OpenAi, Reply::canned().cut_after(700));
    let response = chat(
        &served,
        json!({"model": "openai/gpt-4o-mini", "stream": true,
               "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let lines = data_lines(&response.text().await.unwrap());
    assert!(lines.len() >= 2, "{lines:?}");
    assert!(!lines.contains(&"[DONE]".to_owned()), "{lines:?}");
    let last: Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert_eq!(last["error"]["type"], "server_error", "{last}");
    let first: Value = serde_json::from_str(&lines[0]).unwrap();
    assert!(
        first["choices"][0]["delta"]["content"].is_string(),
        "{first}"
    );
}

#[tokio::test]
async fn a_stream_refused_before_it_started_is_a_plain_error() {
    let upstream = FakeServer::start().await.unwrap();
    let limit = RateLimitPolicy::builder()
        .requests_per_minute(1)
        .build()
        .unwrap();
    let served = start(&upstream, gateway().rate_limit(limit)).await;
    let body = json!({"model": "openai/gpt-4o-mini", "stream": true,
                      "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(chat(&served, body.clone()).await.status(), StatusCode::OK);
    let refused = chat(&served, body).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()["x-should-retry"], "true");
    assert_eq!(
        json_of(refused).await["error"]["code"],
        "rate_limit_exceeded"
    );
}

#[tokio::test]
async fn with_keys_the_key_decides_who_calls_not_the_body() {
    let upstream = FakeServer::start().await.unwrap();
    let per_user = RateLimitPolicy::builder().per_user_rpm(1).build().unwrap();
    let app = App::bare("Keys")
        .providers(providers(&upstream))
        .user_key("sk-ann", "acme", "ann")
        .require_api_key(true)
        .openai_compatible(gateway().rate_limit(per_user));
    let served = serve(app).await;
    let client = reqwest::Client::new();
    let send = |key: Option<&'static str>, user: &'static str| {
        let mut request = client
            .post(served.url("/v1/chat/completions"))
            .json(&json!({
                "model": "openai/gpt-4o-mini", "user": user,
                "messages": [{"role": "user", "content": "hi"}],
            }));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        request.send()
    };
    assert_eq!(
        send(Some("sk-ann"), "first").await.unwrap().status(),
        StatusCode::OK
    );
    // Another `user` in the body is still ann, whose one request a minute is spent.
    let second = send(Some("sk-ann"), "someone-else").await.unwrap();
    assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
    let anonymous = send(None, "first").await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.headers()["x-should-retry"], "false");
    let error = &json_of(anonymous).await["error"];
    assert_eq!(error["type"], "authentication_error");
    let unknown = send(Some("sk-wrong"), "first").await.unwrap();
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
}
