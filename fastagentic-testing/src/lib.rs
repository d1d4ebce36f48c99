//! Test support for [fastagentic](https://docs.rs/fastagentic), beside it as `tower-test`
//! sits beside `tower`.
//!
//! - [`FakeServer`]: a scriptable provider server on `127.0.0.1` that speaks the OpenAI,
//!   Anthropic and Gemini wire formats and can fail at the byte level.
//! - Small helpers the project's own tests share ([`fail`], [`retry`], [`providers`],
//!   [`scripted`], [`json_of`]), so each is written once.
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

pub mod fake_server;

use std::future::Ready;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use fastagentic::llm::{MockProvider, Providers};
use fastagentic::prelude::*;

pub use crate::fake_server::{FakeServer, Reply, Route};

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
