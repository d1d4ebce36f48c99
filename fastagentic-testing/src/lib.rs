//! Test support for [fastagentic](https://docs.rs/fastagentic), beside it as `tower-test`
//! sits beside `tower`.
//!
//! - [`FakeServer`]: a scriptable provider server on `127.0.0.1` that speaks the OpenAI,
//!   Anthropic and Gemini wire formats and can fail at the byte level.
//! - Small helpers the project's own tests share ([`fail`], [`retry`], [`providers`],
//!   [`scripted`], [`json_of`], [`sse_events`], [`sse_json_events`], [`fixture`]), so each
//!   is written once.
//!
//! The embedded [`MockProvider`] stays in the runtime crate: it is the default provider of
//! a fresh app, not only a test double.
//!
//! Add it for tests only:
//!
//! ```toml
//! [dev-dependencies]
//! fastagentic-testing = "0.1"
//! ```
//!
//! # The fake provider server
//!
//! [`FakeServer`] is a real HTTP/1.1 server on `127.0.0.1` (an ephemeral port), written on
//! raw [`tokio::net`] sockets so that it can fail at the byte level. It speaks the paths of
//! three providers:
//!
//! | Route | Recognized request |
//! |---|---|
//! | [`Route::OpenAi`] | `POST …/chat/completions` (any prefix, e.g. `/v1/chat/completions`) |
//! | [`Route::Anthropic`] | `POST …/messages` (e.g. `/v1/messages`) |
//! | [`Route::Gemini`] | `POST …/models/{model}:generateContent` and `…:streamGenerateContent` |
//!
//! Any other request gets a 404 with a JSON error body (405 for a known path with a method
//! other than `POST`). The query string is ignored for matching and recorded.
//!
//! Tests script the answers with [`Reply`]s: [`FakeServer::push`] queues one for the next
//! request on any route, [`FakeServer::push_for`] for the next request on one route (those
//! queues are consulted first), [`FakeServer::push_n`] queues a storm. When nothing is queued
//! the server answers a canned success in the provider's own wire format, streamed when the
//! request asked for a stream. Every request, answered or faulted, is recorded first and can be
//! read back with [`FakeServer::requests`].
//!
//! Connections are kept alive (clients such as reqwest pool them). Replies with a known body
//! use `content-length`; stream replies use `transfer-encoding: chunked` with one HTTP chunk
//! per scripted chunk, flushed on its own.
//!
//! ```
//! use fastagentic_testing::{FakeServer, Reply};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = FakeServer::start().await?;
//! server.push(Reply::rate_limited_secs(1));
//!
//! let client = reqwest::Client::new();
//! let url = format!("{}/v1/chat/completions", server.base_url());
//! let body = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}]}"#;
//!
//! let first = client.post(&url).body(body).send().await?;
//! assert_eq!(first.status(), 429);
//! assert_eq!(first.headers()["retry-after"], "1");
//!
//! // Nothing queued any more: the canned chat.completion, echoing the model.
//! let second = client.post(&url).body(body).send().await?;
//! assert_eq!(second.status(), 200);
//! let json: serde_json::Value = serde_json::from_slice(&second.bytes().await?)?;
//! assert_eq!(json["model"], "gpt-4o-mini");
//! assert_eq!(json["choices"][0]["message"]["content"], "Hello from the fake provider.");
//!
//! assert_eq!(server.requests().len(), 2);
//! server.shutdown();
//! # Ok(()) }
//! ```

mod fake_server;

use std::future::Ready;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use fastagentic::llm::{MockProvider, Providers};
use fastagentic::prelude::*;

pub use crate::fake_server::{Chunking, FakeServer, RecordedRequest, Reply, Route};

/// An error of `class` with the message "scripted failure".
pub fn fail(class: ErrorClass) -> AgentError {
    AgentError::new(class, "scripted failure")
}

/// A retry policy of `max_attempts` with the defaults otherwise and jitter off, so the
/// delays a test waits out are the exact schedule.
///
/// # Panics
/// If `max_attempts` is outside the policy's range (a mistake in the test).
pub fn retry(max_attempts: u32) -> RetryPolicy {
    match RetryPolicy::builder()
        .max_attempts(max_attempts)
        .jitter(false)
        .build()
    {
        Ok(policy) => policy,
        Err(e) => panic!("retry({max_attempts}) in a test: {e}"),
    }
}

/// A provider registry holding only `mock`, shared so the test can read its calls back.
pub fn providers(mock: &Arc<MockProvider>) -> Arc<Providers> {
    Arc::new(Providers::new().with_shared(mock.clone()))
}

/// The body a scripted test runs: one call of it per attempt.
pub type ScriptedBody = Box<dyn FnMut(AgentContext) -> Ready<Result<String, AgentError>> + Send>;

/// A body that fails with `script[n]` on call `n` and answers with the model's name after,
/// and the count of its calls.
pub fn scripted(script: Vec<AgentError>) -> (Arc<AtomicU32>, ScriptedBody) {
    let calls = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&calls);
    let body = move |ctx: AgentContext| {
        let n = counter.fetch_add(1, Ordering::SeqCst) as usize;
        std::future::ready(match script.get(n) {
            Some(err) => Err(err.clone()),
            None => Ok(ctx.model().to_owned()),
        })
    };
    (calls, Box::new(body))
}

/// The body of `response` as JSON.
///
/// # Panics
/// If the body cannot be read or is not JSON; the message shows the text.
pub async fn json_of(response: reqwest::Response) -> serde_json::Value {
    let text = match response.text().await {
        Ok(text) => text,
        Err(e) => panic!("reading the response body: {e}"),
    };
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The events of a whole SSE body, each as `(event name if given, data lines joined
/// with `\n`)`: a reader simple enough to trust in a test, for bodies a test produced
/// itself (CRLF or LF line ends, one optional space after the colon, comments skipped).
pub fn sse_events(body: &str) -> Vec<(Option<String>, String)> {
    body.replace("\r\n", "\n")
        .split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut name = None;
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(value) = field(line, "event") {
                    name = Some(value.to_owned());
                } else if let Some(value) = field(line, "data") {
                    data.push(value);
                }
            }
            (name, data.join("\n"))
        })
        .collect()
}

/// The events of an SSE body that carry data, as `(name, data parsed as JSON)`; an event
/// without a name is a `"message"`, as the SSE standard has it.
///
/// # Panics
/// If an event's data is not JSON.
pub fn sse_json_events(body: &str) -> Vec<(String, serde_json::Value)> {
    sse_events(body)
        .into_iter()
        .filter(|(_, data)| !data.is_empty())
        .map(|(name, data)| {
            let value = serde_json::from_str(&data)
                .unwrap_or_else(|e| panic!("event data is not JSON ({e}): {data}"));
            (name.unwrap_or_else(|| "message".to_owned()), value)
        })
        .collect()
}

/// The value of an SSE `name:` line, one leading space dropped.
fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let value = line.strip_prefix(name)?.strip_prefix(':')?;
    Some(value.strip_prefix(' ').unwrap_or(value))
}

/// The recorded provider answers (`shared/fixtures/llm-wire/`, beside the repository).
pub const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/fixtures/llm-wire"
);

/// Whether the [`FIXTURES`] folder is there; says so plainly when it is not, so a test that
/// returns early for want of it reports why.
pub fn fixtures_present() -> bool {
    if std::path::Path::new(FIXTURES).is_dir() {
        return true;
    }
    eprintln!("SKIPPED: fixtures folder {FIXTURES} not found");
    false
}

/// The bytes of fixture `name`, or `None` (after saying so) when the folder is absent.
///
/// # Panics
/// If the folder is there but the file cannot be read (a mistake in the test).
pub fn fixture(name: &str) -> Option<Vec<u8>> {
    if !fixtures_present() {
        return None;
    }
    let path = format!("{FIXTURES}/{name}");
    Some(std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
}
