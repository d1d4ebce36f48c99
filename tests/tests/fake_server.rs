//! The fake provider server, driven by a real HTTP client (reqwest) through real sockets.
#![allow(clippy::unwrap_used)]

// Real sockets need real time: a paused tokio clock would auto-advance while the test waits
// on IO. Every test stays well under a second.

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use fastagentic_testing::{FakeServer, Reply, Route, json_of, sse_events};
use futures_util::StreamExt;
use serde_json::{Value, json};

const OPENAI: &str = "/v1/chat/completions";
const ANTHROPIC: &str = "/v1/messages";
const GEMINI: &str = "/v1beta/models/gemini-2.0-flash:generateContent";
const GEMINI_STREAM: &str = "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse";
const TEXT: &str = "Hello from the fake provider.";

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn post(
    client: &reqwest::Client,
    server: &FakeServer,
    path: &str,
    body: &Value,
) -> reqwest::Result<reqwest::Response> {
    client
        .post(format!("{}{path}", server.base_url()))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
}

fn openai_body(stream: bool) -> Value {
    let mut body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]});
    if stream {
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

fn anthropic_body(stream: bool) -> Value {
    json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": stream,
    })
}

fn gemini_body() -> Value {
    json!({"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]})
}
/// The kind of the first `io::Error` in `error`'s source chain.
fn io_error_kind(error: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        next = error.source();
    }
    None
}

fn content_type(response: &reqwest::Response) -> String {
    response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn openai_canned_success() {
    let server = FakeServer::start().await.unwrap();
    let client = client();
    let response = post(&client, &server, OPENAI, &openai_body(false))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(content_type(&response).starts_with("application/json"));
    assert!(response.headers().contains_key("x-request-id"));
    let json = json_of(response).await;
    assert_eq!(json["object"], "chat.completion");
    assert_eq!(json["model"], "gpt-4o-mini");
    assert_eq!(json["choices"][0]["message"]["role"], "assistant");
    assert_eq!(json["choices"][0]["message"]["content"], TEXT);
    assert_eq!(json["choices"][0]["finish_reason"], "stop");
    assert_eq!(json["usage"]["prompt_tokens"], 12);
    assert_eq!(json["usage"]["completion_tokens"], 7);
    assert_eq!(json["usage"]["total_tokens"], 19);
}

#[tokio::test]
async fn openai_canned_stream() {
    let server = FakeServer::start().await.unwrap();
    let client = client();
    let response = post(&client, &server, OPENAI, &openai_body(true))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(content_type(&response).starts_with("text/event-stream"));
    assert!(response.headers().get("content-length").is_none());
    let text = response.text().await.unwrap();
    let events = sse_events(&text);
    assert!(events.iter().all(|(name, _)| name.is_none()));
    let (last, chunks) = events.split_last().unwrap();
    assert_eq!(last.1, "[DONE]");
    let chunks: Vec<Value> = chunks
        .iter()
        .map(|(_, data)| serde_json::from_str(data).unwrap())
        .collect();
    assert!(chunks.len() >= 5, "role + 2 content + finish + usage");
    assert!(
        chunks
            .iter()
            .all(|chunk| chunk["object"] == "chat.completion.chunk"
                && chunk["model"] == "gpt-4o-mini")
    );
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let (usage, rest) = chunks.split_last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["prompt_tokens"], 12);
    assert_eq!(usage["usage"]["completion_tokens"], 7);
    assert_eq!(usage["usage"]["total_tokens"], 19);
    let (finish, content) = rest.split_last().unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert_eq!(finish["choices"][0]["delta"], json!({}));
    let text: String = content
        .iter()
        .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, TEXT);
    assert!(content[1..].len() >= 2);
    assert!(
        content
            .iter()
            .all(|chunk| chunk["choices"][0]["finish_reason"].is_null())
    );

    // Without include_usage there is no usage chunk.
    let mut body = openai_body(true);
    body.as_object_mut().unwrap().remove("stream_options");
    let text = post(&client, &server, OPENAI, &body)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events = sse_events(&text);
    assert_eq!(events.last().unwrap().1, "[DONE]");
    let finish: Value = serde_json::from_str(&events[events.len() - 2].1).unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert!(!text.contains("\"usage\""));
}

#[tokio::test]
async fn anthropic_canned_success() {
    let server = FakeServer::start().await.unwrap();
    let client = client();
    let response = post(&client, &server, ANTHROPIC, &anthropic_body(false))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("request-id"));
    let json = json_of(response).await;
    assert_eq!(json["type"], "message");
    assert_eq!(json["role"], "assistant");
    assert_eq!(json["model"], "claude-sonnet-4-5");
    assert_eq!(json["content"][0]["type"], "text");
    assert_eq!(json["content"][0]["text"], TEXT);
    assert_eq!(json["stop_reason"], "end_turn");
    assert_eq!(json["usage"]["input_tokens"], 12);
    assert_eq!(json["usage"]["output_tokens"], 7);
}

#[tokio::test]
async fn anthropic_canned_stream() {
    let server = FakeServer::start().await.unwrap();
    let response = post(&client(), &server, ANTHROPIC, &anthropic_body(true))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(content_type(&response).starts_with("text/event-stream"));
    let events = sse_events(&response.text().await.unwrap());
    let names: Vec<&str> = events
        .iter()
        .map(|(name, _)| name.as_deref().unwrap())
        .collect();
    let deltas = names
        .iter()
        .filter(|name| **name == "content_block_delta")
        .count();
    assert!(deltas >= 2);
    let mut expected = vec!["message_start", "content_block_start"];
    expected.extend(std::iter::repeat_n("content_block_delta", deltas));
    expected.extend(["content_block_stop", "message_delta", "message_stop"]);
    assert_eq!(names, expected);
    let data: Vec<Value> = events
        .iter()
        .map(|(_, data)| serde_json::from_str(data).unwrap())
        .collect();
    for (name, data) in names.iter().zip(&data) {
        assert_eq!(data["type"], *name);
    }
    assert_eq!(data[0]["message"]["model"], "claude-sonnet-4-5");
    assert_eq!(data[0]["message"]["usage"]["input_tokens"], 12);
    let text: String = data
        .iter()
        .filter_map(|event| event["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, TEXT);
    let delta = &data[data.len() - 2];
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], 7);
}

#[tokio::test]
async fn gemini_canned_success() {
    let server = FakeServer::start().await.unwrap();
    let response = post(&client(), &server, GEMINI, &gemini_body())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let json = json_of(response).await;
    let candidate = &json["candidates"][0];
    assert_eq!(candidate["content"]["role"], "model");
    assert_eq!(candidate["content"]["parts"][0]["text"], TEXT);
    assert_eq!(candidate["finishReason"], "STOP");
    assert_eq!(json["modelVersion"], "gemini-2.0-flash");
    assert_eq!(json["usageMetadata"]["promptTokenCount"], 12);
    assert_eq!(json["usageMetadata"]["candidatesTokenCount"], 7);
    assert_eq!(json["usageMetadata"]["totalTokenCount"], 19);
}

#[tokio::test]
async fn gemini_canned_stream() {
    let server = FakeServer::start().await.unwrap();
    let client = client();
    let response = post(&client, &server, GEMINI_STREAM, &gemini_body())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(content_type(&response).starts_with("text/event-stream"));
    let text = response.text().await.unwrap();
    assert!(text.contains("\r\n\r\n"), "the Gemini API uses CRLF");
    let chunks: Vec<Value> = sse_events(&text)
        .iter()
        .map(|(_, data)| serde_json::from_str(data).unwrap())
        .collect();
    assert!(chunks.len() >= 2);
    let text: String = chunks
        .iter()
        .map(|chunk| {
            chunk["candidates"][0]["content"]["parts"][0]["text"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(text, TEXT);
    assert!(chunks.iter().all(|chunk| {
        chunk["usageMetadata"].is_object() && chunk["modelVersion"] == "gemini-2.0-flash"
    }));
    let (last, earlier) = chunks.split_last().unwrap();
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert!(
        earlier
            .iter()
            .all(|chunk| chunk["candidates"][0]["finishReason"].is_null())
    );
    assert_eq!(last["usageMetadata"]["candidatesTokenCount"], 7);
    assert_eq!(last["usageMetadata"]["totalTokenCount"], 19);

    // Without alt=sse the stream is one JSON array.
    let path = GEMINI_STREAM.trim_end_matches("?alt=sse");
    let array = json_of(post(&client, &server, path, &gemini_body()).await.unwrap()).await;
    let array = array.as_array().unwrap();
    assert_eq!(array.len(), chunks.len());
    assert_eq!(
        array.last().unwrap()["candidates"][0]["finishReason"],
        "STOP"
    );
}

#[tokio::test]
async fn scripted_json_status_and_headers() {
    let server = FakeServer::start().await.unwrap();
    server.push(
        Reply::json(400, r#"{"error":{"code":"context_length_exceeded"}}"#)
            .header("x-should-retry", "false")
            .header("x-custom", "yes"),
    );
    server.push(Reply::canned().status(503).header("retry-after", "2"));
    let client = client();
    let response = post(&client, &server, OPENAI, &openai_body(false))
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.headers()["x-should-retry"], "false");
    assert_eq!(response.headers()["x-custom"], "yes");
    assert_eq!(content_type(&response), "application/json");
    assert_eq!(
        json_of(response).await["error"]["code"],
        "context_length_exceeded"
    );
    // `canned()` keeps the route's body under a scripted status.
    let response = post(&client, &server, OPENAI, &openai_body(false))
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "2");
    assert_eq!(json_of(response).await["object"], "chat.completion");
}

#[tokio::test]
async fn rate_limited_replies_carry_retry_hints() {
    let server = FakeServer::start().await.unwrap();
    let client = client();
    let until = SystemTime::now() + Duration::from_secs(30);
    server.push(Reply::rate_limited_secs(7));
    server.push(Reply::rate_limited_ms(250));
    server.push(Reply::rate_limited_until(until));

    let response = post(&client, &server, OPENAI, &openai_body(false))
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");
    assert_eq!(
        json_of(response).await["error"]["code"],
        "rate_limit_exceeded"
    );

    let response = post(&client, &server, ANTHROPIC, &anthropic_body(false))
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after-ms"], "250");
    assert!(response.headers().get("retry-after").is_none());
    // The body follows the route it landed on.
    assert_eq!(json_of(response).await["error"]["type"], "rate_limit_error");

    let response = post(&client, &server, GEMINI, &gemini_body())
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let date = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .to_owned();
    let parsed = httpdate::parse_http_date(&date).unwrap();
    let skew = parsed
        .duration_since(until)
        .unwrap_or_else(|error| error.duration());
    assert!(skew < Duration::from_secs(1), "{date}");
    let json = json_of(response).await;
    assert_eq!(json["error"]["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(json["error"]["code"], 429);
    assert_eq!(
        json["error"]["details"][0]["@type"],
        "type.googleapis.com/google.rpc.RetryInfo"
    );
}

#[tokio::test]
async fn overloaded_storm_then_canned_success() {
    let server = FakeServer::start().await.unwrap();
    let client = client();
    server.push_n(Reply::overloaded(), 3);
    assert_eq!(server.queued(), 3);
    for _ in 0..3 {
        let response = post(&client, &server, ANTHROPIC, &anthropic_body(false))
            .await
            .unwrap();
        assert_eq!(response.status(), 529);
        let json = json_of(response).await;
        assert_eq!(json["type"], "error");
        assert_eq!(json["error"]["type"], "overloaded_error");
    }
    let response = post(&client, &server, ANTHROPIC, &anthropic_body(false))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(server.queued(), 0);
    assert_eq!(server.requests().len(), 4);
}

#[tokio::test]
async fn server_errors_follow_the_route() {
    let server = FakeServer::start().await.unwrap();
    let client = client();
    server.push_n(Reply::server_error(503), 3);
    let openai = post(&client, &server, OPENAI, &openai_body(false))
        .await
        .unwrap();
    assert_eq!(openai.status(), 503);
    assert_eq!(json_of(openai).await["error"]["type"], "server_error");
    let anthropic = post(&client, &server, ANTHROPIC, &anthropic_body(false))
        .await
        .unwrap();
    assert_eq!(anthropic.status(), 503);
    assert_eq!(json_of(anthropic).await["error"]["type"], "api_error");
    let gemini = post(&client, &server, GEMINI, &gemini_body())
        .await
        .unwrap();
    assert_eq!(gemini.status(), 503);
    assert_eq!(json_of(gemini).await["error"]["status"], "UNAVAILABLE");
}

#[tokio::test]
async fn route_queue_is_consulted_before_shared_queue() {
    let server = FakeServer::start().await.unwrap();
    let client = client();
    server.push(Reply::server_error(500));
    server.push_for(Route::Anthropic, Reply::rate_limited_secs(1));
    let anthropic = post(&client, &server, ANTHROPIC, &anthropic_body(false))
        .await
        .unwrap();
    assert_eq!(anthropic.status(), 429);
    let openai = post(&client, &server, OPENAI, &openai_body(false))
        .await
        .unwrap();
    assert_eq!(openai.status(), 500);
    // Both queues are empty now.
    let anthropic = post(&client, &server, ANTHROPIC, &anthropic_body(false))
        .await
        .unwrap();
    assert_eq!(anthropic.status(), 200);
    // A route queue does not serve other routes.
    server.push_for(Route::Gemini, Reply::server_error(502));
    let openai = post(&client, &server, OPENAI, &openai_body(false))
        .await
        .unwrap();
    assert_eq!(openai.status(), 200);
    let gemini = post(&client, &server, GEMINI, &gemini_body())
        .await
        .unwrap();
    assert_eq!(gemini.status(), 502);
}

#[tokio::test]
async fn requests_are_recorded() {
    let server = FakeServer::start().await.unwrap();
    let client = client();
    client
        .post(format!("{}{OPENAI}", server.base_url()))
        .bearer_auth("sk-test")
        .body(openai_body(false).to_string())
        .send()
        .await
        .unwrap();
    client
        .post(format!("{}{ANTHROPIC}", server.base_url()))
        .header("x-api-key", "ak-test")
        .header("anthropic-version", "2023-06-01")
        .body(anthropic_body(true).to_string())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    server.push(Reply::reset());
    let _ = client
        .post(format!("{}{GEMINI_STREAM}", server.base_url()))
        .header("x-goog-api-key", "gk-test")
        .body(gemini_body().to_string())
        .send()
        .await;

    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    let openai = &requests[0];
    assert_eq!(openai.route, Some(Route::OpenAi));
    assert_eq!(openai.method, "POST");
    assert_eq!(openai.path, OPENAI);
    assert_eq!(openai.query, None);
    assert_eq!(openai.headers["authorization"], "Bearer sk-test");
    assert_eq!(openai.json().unwrap()["model"], "gpt-4o-mini");

    let anthropic = &requests[1];
    assert_eq!(anthropic.route, Some(Route::Anthropic));
    assert_eq!(anthropic.header("x-api-key"), Some("ak-test"));
    assert_eq!(anthropic.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(anthropic.json().unwrap()["stream"], true);

    // Recorded even though it was answered with a fault.
    let gemini = &requests[2];
    assert_eq!(gemini.route, Some(Route::Gemini));
    assert_eq!(
        gemini.path,
        "/v1beta/models/gemini-2.0-flash:streamGenerateContent"
    );
    assert_eq!(gemini.query.as_deref(), Some("alt=sse"));
    assert_eq!(gemini.headers["x-goog-api-key"], "gk-test");
    assert_eq!(gemini.json().unwrap(), gemini_body());
}

#[tokio::test]
async fn chunked_request_bodies_are_decoded() {
    let server = FakeServer::start().await.unwrap();
    let body = openai_body(false).to_string();
    let (left, right) = body.split_at(10);
    let parts: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(Bytes::copy_from_slice(left.as_bytes())),
        Ok(Bytes::copy_from_slice(right.as_bytes())),
    ];
    let response = client()
        .post(format!("{}{OPENAI}", server.base_url()))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            parts,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(json_of(response).await["model"], "gpt-4o-mini");
    let recorded = &server.requests()[0];
    assert_eq!(recorded.headers["transfer-encoding"], "chunked");
    assert_eq!(recorded.body, body.as_bytes());
}

#[tokio::test]
async fn reset_is_a_request_error() {
    let server = FakeServer::start().await.unwrap();
    let client = client();
    server.push(Reply::reset());
    let error = post(&client, &server, OPENAI, &openai_body(false))
        .await
        .unwrap_err();
    assert!(error.is_request() || error.is_connect(), "{error:?}");
    assert!(!error.is_timeout());
    // A real TCP reset, not an orderly close.
    assert_eq!(
        io_error_kind(&error),
        Some(std::io::ErrorKind::ConnectionReset),
        "{error:?}"
    );
    assert_eq!(server.requests().len(), 1);
    // The next request gets a fresh connection and the canned success.
    let response = post(&client, &server, OPENAI, &openai_body(false))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn garbage_is_a_request_error() {
    let server = FakeServer::start().await.unwrap();
    let client = client();
    server.push(Reply::garbage("SSH-2.0-OpenSSH_9.6\r\nnot http at all\r\n"));
    let error = post(&client, &server, OPENAI, &openai_body(false))
        .await
        .unwrap_err();
    assert!(error.is_request(), "{error:?}");
    let response = post(&client, &server, OPENAI, &openai_body(false))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn cut_after_ends_the_stream_with_an_error() {
    let server = FakeServer::start().await.unwrap();
    let client = client();
    let first = "data: {\"n\":1}\n\n";
    let second = "data: {\"n\":2}\n\n";
    server.push(Reply::sse_chunks([first, second, "data: [DONE]\n\n"]).cut_after(first.len() + 5));
    let response = post(&client, &server, OPENAI, &openai_body(true))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream();
    let mut received = Vec::new();
    let error = loop {
        match stream.next().await {
            Some(Ok(bytes)) => received.extend_from_slice(&bytes),
            Some(Err(error)) => break error,
            None => panic!("the stream ended cleanly after {received:?}"),
        }
    };
    assert!(
        error.is_body() || error.is_decode() || error.is_request(),
        "{error:?}"
    );
    assert_eq!(received, format!("{first}{}", &second[..5]).as_bytes());
    assert_eq!(
        io_error_kind(&error),
        Some(std::io::ErrorKind::UnexpectedEof),
        "{error:?}"
    );

    // A content-length body cut short fails too.
    server.push(Reply::json(200, r#"{"a":"0123456789"}"#).cut_after(4));
    let response = post(&client, &server, OPENAI, &openai_body(false))
        .await
        .unwrap();
    assert_eq!(response.headers()["content-length"], "18");
    assert!(response.bytes().await.is_err());
}

#[tokio::test]
async fn stall_after_keeps_the_stream_silent() {
    let server = FakeServer::start().await.unwrap();
    let first = "data: {\"n\":1}\n\n";
    server.push(Reply::sse_chunks([first, "data: {\"n\":2}\n\n"]).stall_after(first.len()));
    let response = post(&client(), &server, OPENAI, &openai_body(true))
        .await
        .unwrap();
    let mut stream = response.bytes_stream();
    let got = stream.next().await.unwrap().unwrap();
    assert_eq!(got, first.as_bytes());
    let started = Instant::now();
    let waited = tokio::time::timeout(Duration::from_millis(200), stream.next()).await;
    assert!(waited.is_err(), "expected silence, got {waited:?}");
    assert!(started.elapsed() >= Duration::from_millis(200));

    // Shutdown closes the stalled connection: the body ends with an error.
    server.shutdown();
    let after = tokio::time::timeout(Duration::from_millis(500), stream.next())
        .await
        .unwrap();
    assert!(matches!(after, Some(Err(_))), "{after:?}");
}

#[tokio::test]
async fn stall_never_answers() {
    let server = FakeServer::start().await.unwrap();
    server.push(Reply::stall());
    let waited = tokio::time::timeout(
        Duration::from_millis(200),
        post(&client(), &server, OPENAI, &openai_body(false)),
    )
    .await;
    assert!(waited.is_err());
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn chunk_delay_sends_chunks_separately() {
    let server = FakeServer::start().await.unwrap();
    let chunks = [
        "data: {\"n\":1}\n\n",
        "data: {\"n\":2}\n\n",
        "data: {\"n\":3}\n\n",
    ];
    let delay = Duration::from_millis(100);
    server.push(Reply::sse_chunks(chunks).chunk_delay(delay));
    let started = Instant::now();
    let response = post(&client(), &server, OPENAI, &openai_body(true))
        .await
        .unwrap();
    let mut stream = response.bytes_stream();
    let mut arrivals = Vec::new();
    while let Some(bytes) = stream.next().await {
        arrivals.push((Instant::now(), bytes.unwrap()));
    }
    // One body item per scripted chunk, in order.
    let received: Vec<&[u8]> = arrivals.iter().map(|(_, bytes)| bytes.as_ref()).collect();
    let expected: Vec<&[u8]> = chunks.iter().map(|chunk| chunk.as_bytes()).collect();
    assert_eq!(received, expected);
    // The server sleeps twice between chunks. Bounds that hold even when this task is
    // scheduled late on a loaded machine: the whole stream takes two delays, and the first
    // chunk was readable at least one delay before the last.
    let (first, last) = (arrivals[0].0, arrivals[2].0);
    assert!(last - started >= 2 * delay, "{:?}", last - started);
    assert!(last - first >= delay, "{:?}", last - first);
}

#[tokio::test]
async fn first_byte_delay_slows_the_response() {
    let server = FakeServer::start().await.unwrap();
    server.push(Reply::canned().first_byte_delay(Duration::from_millis(150)));
    let started = Instant::now();
    let response = post(&client(), &server, GEMINI, &gemini_body())
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(response.status(), 200);

    server.push(Reply::canned().first_byte_delay(Duration::from_millis(300)));
    let waited = tokio::time::timeout(
        Duration::from_millis(100),
        post(&client(), &server, GEMINI, &gemini_body()),
    )
    .await;
    assert!(waited.is_err(), "time to first byte beat the delay");
}

#[tokio::test]
async fn connections_are_kept_alive() {
    let server = FakeServer::start().await.unwrap();
    let client = client();
    for _ in 0..2 {
        let response = post(&client, &server, OPENAI, &openai_body(true))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.text().await.unwrap().ends_with("data: [DONE]\n\n"));
        let response = post(&client, &server, ANTHROPIC, &anthropic_body(false))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
    }
    assert_eq!(server.requests().len(), 4);
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn unknown_paths_get_404() {
    let server = FakeServer::start().await.unwrap();
    let client = client();
    server.push(Reply::server_error(500));
    let response = post(&client, &server, "/v1/embeddings", &json!({}))
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert!(
        json_of(response).await["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/v1/embeddings")
    );
    let response = client
        .get(format!("{}{OPENAI}", server.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    // Neither consumed the scripted reply.
    assert_eq!(server.queued(), 1);
    let recorded = server.requests();
    assert_eq!(recorded.len(), 2);
    assert!(recorded.iter().all(|request| request.route.is_none()));
}

/// Polls until a fresh connection to `url` is refused.
async fn wait_until_refused(url: &str) {
    for _ in 0..50 {
        match reqwest::Client::new().post(url).body("{}").send().await {
            Err(error) if error.is_connect() => return,
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    panic!("the server still accepts connections");
}

#[tokio::test]
async fn shutdown_and_drop_stop_the_server() {
    let server = FakeServer::start().await.unwrap();
    let url = format!("{}{OPENAI}", server.base_url());
    let clone = server.clone();
    post(&client(), &server, OPENAI, &openai_body(false))
        .await
        .unwrap();
    // Dropping a clone leaves the server running.
    drop(clone);
    post(&client(), &server, OPENAI, &openai_body(false))
        .await
        .unwrap();
    server.shutdown();
    wait_until_refused(&url).await;

    let server = FakeServer::start().await.unwrap();
    let url = format!("{}{OPENAI}", server.base_url());
    drop(server);
    wait_until_refused(&url).await;
}

/// Writes `request` on a fresh connection and reads until the server closes it.
async fn raw_exchange(server: &FakeServer, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    socket.write_all(request).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(
        Duration::from_millis(500),
        socket.read_to_end(&mut response),
    )
    .await
    .unwrap()
    .unwrap();
    String::from_utf8(response).unwrap()
}

#[tokio::test]
async fn wire_framing_on_a_raw_socket() {
    let server = FakeServer::start().await.unwrap();
    // Two pipelined requests in one write; the second asks to close.
    let plain = openai_body(false).to_string();
    let streaming = anthropic_body(true).to_string();
    let request = format!(
        "POST {OPENAI} HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n{plain}\
         POST {ANTHROPIC} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{streaming}",
        plain.len(),
        streaming.len(),
    );
    let response = raw_exchange(&server, request.as_bytes()).await;
    let (first, second) = response.split_at(response.rfind("HTTP/1.1 200 OK\r\n").unwrap());
    assert!(first.starts_with("HTTP/1.1 200 OK\r\n"));
    let (head, body) = first.split_once("\r\n\r\n").unwrap();
    assert!(head.contains(&format!("content-length: {}", body.len())));
    assert!(!head.contains("connection: close"));
    assert!(second.contains("transfer-encoding: chunked\r\n"));
    assert!(second.contains("connection: close\r\n"));
    assert!(second.contains("\r\nevent: message_start\n"));
    assert!(second.ends_with("\r\n0\r\n\r\n"));
    assert_eq!(server.connections(), 1);
    assert_eq!(server.requests().len(), 2);

    // A request the server cannot parse gets a 400 and a closed connection.
    let response = raw_exchange(&server, b"NONSENSE\r\n\r\n").await;
    assert!(
        response.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{response}"
    );
    assert!(response.contains("connection: close\r\n"));
}
