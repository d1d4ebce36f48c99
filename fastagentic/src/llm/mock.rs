//! A scripted provider for examples and tests: no network, no key.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::completion::{Completion, FinishReason, ToolCall, Usage};
use super::prompt::{Prompt, Role};
use super::provider::{BoxFuture, Provider};
use super::stream::{CompletionStream, StreamEvent, completion_events};
use crate::error::{AgentError, ErrorClass};

/// What the mock does for one call.
///
/// ```
/// use std::time::Duration;
/// use fastagentic::llm::{MockProvider, MockReply, Prompt, Provider};
/// use fastagentic::ErrorClass;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let mock = MockProvider::new()
///     .push(MockReply::rate_limited(Duration::from_secs(2)))
///     .push(MockReply::text("second time lucky"));
/// let prompt = Prompt::user("hi");
/// let err = mock.complete("any", &prompt).await.unwrap_err();
/// assert_eq!(err.class(), ErrorClass::RateLimit);
/// assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));
/// let reply = mock.complete("any", &prompt).await.unwrap();
/// assert_eq!(reply.text, "second time lucky");
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct MockReply {
    text: Option<String>,
    reasoning: String,
    usage: Option<Option<Usage>>,
    finish: Option<FinishReason>,
    latency: Duration,
    chunk_delay: Duration,
    error: Option<AgentError>,
    cut_after: Option<usize>,
    tool_calls: Vec<(String, serde_json::Value)>,
}

impl MockReply {
    /// Asks for one call of tool `name` with `arguments` (no text, finish `tool_calls`);
    /// chain [`MockReply::and_call`] for parallel calls.
    pub fn tool_call(name: impl Into<String>, arguments: serde_json::Value) -> Self {
        MockReply::text("").and_call(name, arguments)
    }

    /// Also asks for a call of tool `name` with `arguments`, after the others.
    pub fn and_call(mut self, name: impl Into<String>, arguments: serde_json::Value) -> Self {
        self.tool_calls.push((name.into(), arguments));
        self.finish.get_or_insert(FinishReason::ToolCalls);
        self
    }

    /// Answers `text` (streamed word by word).
    pub fn text(text: impl Into<String>) -> Self {
        MockReply {
            text: Some(text.into()),
            ..MockReply::default()
        }
    }

    /// Fails with `error` before answering (an HTTP error status, in a real provider).
    pub fn error(error: AgentError) -> Self {
        MockReply {
            error: Some(error),
            ..MockReply::default()
        }
    }

    /// A 429 asking to wait `retry_after`.
    pub fn rate_limited(retry_after: Duration) -> Self {
        let err = AgentError::new(ErrorClass::RateLimit, "mock: rate limit reached")
            .with_status(429)
            .with_retry_after(retry_after);
        MockReply::error(err)
    }

    /// A 529 overloaded answer.
    pub fn overloaded() -> Self {
        MockReply::error(
            AgentError::new(ErrorClass::Overloaded, "mock: overloaded").with_status(529),
        )
    }

    /// A 500 answer.
    pub fn server_error() -> Self {
        MockReply::error(
            AgentError::new(ErrorClass::ServerError, "mock: internal error").with_status(500),
        )
    }

    /// A connection reset before any answer.
    pub fn reset() -> Self {
        MockReply::error(AgentError::new(
            ErrorClass::ConnectionError,
            "mock: connection reset by peer",
        ))
    }

    /// A context-window overflow: `input` tokens against a `limit`-token window, with
    /// `requested` output tokens.
    pub fn context_overflow(input: u64, requested: u64, limit: u64) -> Self {
        let detail = crate::error::ErrorDetail::ContextOverflow {
            input_tokens: Some(input),
            context_limit: Some(limit),
            requested_output: Some(requested),
        };
        MockReply::error(
            AgentError::new(
                ErrorClass::ContextOverflow,
                format!("mock: {input} + {requested} > {limit} tokens"),
            )
            .with_status(400)
            .with_detail(detail),
        )
    }

    /// Streams the first `chunks` words of the answer, then breaks
    /// (`stream_interrupted`); a whole-answer call fails the same way.
    pub fn cut_after(mut self, chunks: usize) -> Self {
        self.cut_after = Some(chunks);
        self
    }

    /// Reasoning text sent before the answer.
    pub fn reasoning(mut self, text: impl Into<String>) -> Self {
        self.reasoning = text.into();
        self
    }

    /// Reports `usage` instead of the estimate (about four characters a token).
    pub fn usage(mut self, usage: Usage) -> Self {
        self.usage = Some(Some(usage));
        self
    }

    /// Reports no usage at all, like a stream cut before its usage chunk.
    pub fn no_usage(mut self) -> Self {
        self.usage = Some(None);
        self
    }

    /// Ends with `reason` instead of `stop`.
    pub fn finish(mut self, reason: FinishReason) -> Self {
        self.finish = Some(reason);
        self
    }

    /// Waits `latency` before answering (time to first byte).
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Waits `delay` between streamed chunks.
    pub fn chunk_delay(mut self, delay: Duration) -> Self {
        self.chunk_delay = delay;
        self
    }
}

/// The embedded default provider: answers from a script, then with a default reply.
///
/// Serves models addressed as `mock/<anything>`. Every call takes the next scripted
/// [`MockReply`]; when the script is empty it answers the default reply (by default a
/// short text naming the model and echoing the prompt). Sleeps use tokio's clock, so
/// tests under a paused clock run instantly.
#[derive(Debug)]
pub struct MockProvider {
    name: Arc<str>,
    script: Mutex<VecDeque<MockReply>>,
    responder: Option<Responder>,
    default: MockReply,
    calls: AtomicU64,
    last: Mutex<Option<(String, Prompt)>>,
}

impl Default for MockProvider {
    fn default() -> Self {
        MockProvider::new()
    }
}

impl MockProvider {
    /// A mock called `mock` with an empty script.
    pub fn new() -> Self {
        MockProvider::named("mock")
    }

    /// A mock routed by `name` (`name/<model>`), for several independent mocks.
    pub fn named(name: impl Into<Arc<str>>) -> Self {
        MockProvider {
            name: name.into(),
            script: Mutex::new(VecDeque::new()),
            responder: None,
            default: MockReply::default(),
            calls: AtomicU64::new(0),
            last: Mutex::new(None),
        }
    }

    /// Queues `reply` for the next call.
    pub fn push(self, reply: MockReply) -> Self {
        self.push_n(reply, 1)
    }

    /// Queues `reply` for the next `n` calls (a 529 storm, say).
    pub fn push_n(self, reply: MockReply, n: usize) -> Self {
        self.enqueue(reply, n);
        self
    }

    /// Queues `reply` on a shared mock.
    pub fn enqueue(&self, reply: MockReply, n: usize) {
        let mut script = self.script.lock().unwrap_or_else(PoisonError::into_inner);
        script.extend(std::iter::repeat_n(reply, n));
    }

    /// Decides the reply from the call itself whenever the script is empty: `Some(reply)`
    /// answers with it, `None` leaves it to the default reply. A demo agent on the mock
    /// can so ask for the tools a prompt offers, on every request.
    ///
    /// ```
    /// use fastagentic::llm::{MockProvider, MockReply, Prompt, Provider, Role};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let mock = MockProvider::new().responder(|_model, prompt: &Prompt| {
    ///     let answered = prompt.messages().iter().any(|m| m.role == Role::Tool);
    ///     (!answered).then(|| MockReply::tool_call("clock", serde_json::json!({})))
    /// });
    /// let first = mock.complete("m", &Prompt::user("time?")).await.unwrap();
    /// assert_eq!(first.tool_calls[0].name, "clock");
    /// # }
    /// ```
    pub fn responder<F>(mut self, respond: F) -> Self
    where
        F: Fn(&str, &Prompt) -> Option<MockReply> + Send + Sync + 'static,
    {
        self.responder = Some(Responder(Arc::new(respond)));
        self
    }

    /// Answers `reply` whenever the script is empty.
    pub fn default_reply(mut self, reply: MockReply) -> Self {
        self.default = reply;
        self
    }

    /// How many calls it has answered.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// The model and prompt of the latest call, for tests to check what was sent.
    pub fn last_call(&self) -> Option<(String, Prompt)> {
        self.last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn next_reply(&self, model: &str, prompt: &Prompt) -> MockReply {
        self.calls.fetch_add(1, Ordering::Relaxed);
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((model.to_owned(), prompt.clone()));
        let scripted = {
            let mut script = self.script.lock().unwrap_or_else(PoisonError::into_inner);
            script.pop_front()
        };
        scripted
            .or_else(|| self.responder.as_ref().and_then(|r| (r.0)(model, prompt)))
            .unwrap_or_else(|| self.default.clone())
    }

    fn answer(&self, reply: &MockReply, model: &str, prompt: &Prompt) -> Completion {
        let text = reply
            .text
            .clone()
            .unwrap_or_else(|| default_text(model, prompt));
        let usage = reply
            .usage
            .unwrap_or_else(|| Some(estimate(prompt, &reply.reasoning, &text)));
        let mut completion = Completion::new(self.name.clone(), model, text);
        completion.reasoning = reply.reasoning.clone();
        completion.usage = usage;
        completion.finish_reason = Some(reply.finish.clone().unwrap_or(FinishReason::Stop));
        completion.id = Some(format!("mock-{}", self.calls()));
        completion.tool_calls = (reply.tool_calls.iter().enumerate())
            .map(|(n, (name, arguments))| ToolCall {
                id: format!("mock_call_{}_{n}", self.calls()),
                name: name.clone(),
                arguments: arguments.to_string(),
                signature: None,
            })
            .collect();
        completion
    }

    fn label(&self, err: AgentError, model: &str) -> AgentError {
        err.with_provider(self.name.clone())
            .with_model(model.to_owned())
    }
}

/// A [`MockProvider::responder`] function.
#[derive(Clone)]
struct Responder(Arc<RespondFn>);

type RespondFn = dyn Fn(&str, &Prompt) -> Option<MockReply> + Send + Sync;

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Responder")
    }
}

fn default_text(model: &str, prompt: &Prompt) -> String {
    // After tools answered, say what they said: a scripted agent's last step then reads
    // like an answer built from its tools.
    let answers: Vec<&str> = (prompt.messages.iter().rev())
        .take_while(|m| m.role == Role::Tool)
        .map(|m| m.content.as_str())
        .collect();
    if !answers.is_empty() {
        let said: Vec<&str> = answers.into_iter().rev().collect();
        return format!(
            "Mock answer from {model}: the tools said {}.",
            said.join(", ")
        );
    }
    let asked = prompt
        .messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .map_or("", |m| m.content.as_str());
    format!("Mock answer from {model}: you asked \"{asked}\".")
}

/// About four characters a token, never zero for a non-empty text.
fn estimate(prompt: &Prompt, reasoning: &str, text: &str) -> Usage {
    let tokens = |s: &str| (s.chars().count() as u64).div_ceil(4);
    let input = prompt.messages.iter().map(|m| tokens(&m.content)).sum();
    let reasoning = tokens(reasoning);
    let mut usage = Usage::new(input, tokens(text) + reasoning);
    usage.reasoning = reasoning;
    usage
}

/// Splits `text` after each space, so the pieces join back to it exactly.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split_inclusive(' ')
}

impl Provider for MockProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn complete<'a>(
        &'a self,
        model: &'a str,
        prompt: &'a Prompt,
    ) -> BoxFuture<'a, Result<Completion, AgentError>> {
        Box::pin(async move {
            let reply = self.next_reply(model, prompt);
            wait(reply.latency).await;
            if let Some(err) = reply.error {
                return Err(self.label(err, model));
            }
            if reply.cut_after.is_some() {
                let err = AgentError::new(ErrorClass::StreamInterrupted, "mock: stream cut");
                return Err(self.label(err, model));
            }
            Ok(self.answer(&reply, model, prompt))
        })
    }

    fn stream<'a>(
        &'a self,
        model: &'a str,
        prompt: &'a Prompt,
    ) -> BoxFuture<'a, Result<CompletionStream, AgentError>> {
        Box::pin(async move {
            let reply = self.next_reply(model, prompt);
            wait(reply.latency).await;
            if let Some(err) = reply.error.clone() {
                return Err(self.label(err, model));
            }
            let completion = self.answer(&reply, model, prompt);
            let events = self.stream_events(&reply, &completion);
            let delay = reply.chunk_delay;
            let stream =
                futures_util::stream::unfold(events.into_iter(), move |mut events| async move {
                    let item = events.next()?;
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    Some((item, events))
                });
            Ok(CompletionStream::new(self.name.clone(), model, stream))
        })
    }
}

/// Waits out a scripted latency. No latency means no timer at all: tokio rounds every
/// sleep, even a zero one, up to its 1 ms tick, which made "instant" replies cost 1 ms.
async fn wait(latency: Duration) {
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
}

impl MockProvider {
    /// The answer as a provider would stream it: text word by word, then usage and the
    /// finish reason, or a cut after `cut_after` words.
    fn stream_events(
        &self,
        reply: &MockReply,
        completion: &Completion,
    ) -> Vec<Result<StreamEvent, AgentError>> {
        let mut whole = completion.clone();
        whole.text.clear();
        let mut events = completion_events(&whole);
        let tail = events.split_off(
            events
                .len()
                .min(1 + usize::from(!whole.reasoning.is_empty())),
        );
        let mut out: Vec<Result<StreamEvent, AgentError>> = events.into_iter().map(Ok).collect();
        for (n, word) in words(&completion.text).enumerate() {
            if reply.cut_after == Some(n) {
                let err = AgentError::new(ErrorClass::StreamInterrupted, "mock: stream cut");
                out.push(Err(self.label(err, &completion.model)));
                return out;
            }
            out.push(Ok(StreamEvent::Text(word.to_owned())));
        }
        out.extend(tail.into_iter().map(Ok));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn streams_word_by_word_then_usage_and_finish() {
        let mock =
            MockProvider::new().push(MockReply::text("one two three").usage(Usage::new(3, 3)));
        let mut stream = mock.stream("m", &Prompt::user("q")).await.unwrap();
        let mut texts = Vec::new();
        while let Some(event) = stream.next().await {
            if let StreamEvent::Text(t) = event.unwrap() {
                texts.push(t);
            }
        }
        assert_eq!(texts, ["one ", "two ", "three"]);
        let done = stream.into_completion();
        assert_eq!(done.text, "one two three");
        assert_eq!(done.usage, Some(Usage::new(3, 3)));
        assert_eq!(done.finish_reason, Some(FinishReason::Stop));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cut_stream_fails_after_its_words_with_the_partial_text() {
        let mock = MockProvider::new().push(MockReply::text("a b c").cut_after(2));
        let mut stream = mock.stream("m", &Prompt::user("q")).await.unwrap();
        let mut last = None;
        while let Some(event) = stream.next().await {
            last = Some(event);
        }
        let err = last.unwrap().unwrap_err();
        assert_eq!(err.class(), ErrorClass::StreamInterrupted);
        assert_eq!(err.partial().unwrap().text, "a b ");
    }

    #[tokio::test(start_paused = true)]
    async fn the_default_reply_echoes_and_estimates_usage() {
        let mock = MockProvider::new();
        let done = mock
            .complete("fast", &Prompt::user("hello there"))
            .await
            .unwrap();
        assert_eq!(
            done.text,
            "Mock answer from fast: you asked \"hello there\"."
        );
        let usage = done.usage.unwrap();
        assert_eq!(usage.input, 3);
        assert_eq!(usage.total, usage.input + usage.output);
        assert_eq!(mock.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn latency_runs_on_tokio_time() {
        let mock = MockProvider::new().push(MockReply::text("x").latency(Duration::from_secs(5)));
        let started = tokio::time::Instant::now();
        mock.complete("m", &Prompt::user("q")).await.unwrap();
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }
}
