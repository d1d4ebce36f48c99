//! The error model: one error type, [`AgentError`], tagged with an [`ErrorClass`].
//!
//! Errors are classified from data — HTTP status, the provider's error type and code,
//! headers, and the `source()` chain — and from the words of a message only where the
//! provider offers nothing else (Anthropic's and Gemini's context-overflow messages,
//! OpenAI's "Request too large" 429, which shares its code with ordinary rate limits). The
//! pipeline decides everything (retry, breaker, fallback) on the class alone.

mod chain;
mod class;
mod hints;
mod http;

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub use self::chain::classify_chain;
pub use self::class::{ClassSet, ErrorClass, UnknownName};
pub use self::hints::RetryHints;

use crate::llm::Prompt;
use fastagentic_policy::{LimitScope, LimitType, Stage};

/// The one error type every endpoint, provider and policy reports.
///
/// It carries a [class](ErrorClass), a message, and whatever the failure told us: the
/// HTTP status, the provider and model, a server-directed retry delay, the partial output
/// of a broken stream, the models tried, and the original error as its source.
///
/// Any `std::error::Error + Send + Sync + 'static` converts into it with `?`; the
/// conversion walks the source chain, so an I/O timeout wrapped three levels deep in your
/// own error type still arrives as [`ErrorClass::Timeout`]. Like `anyhow::Error`, it does
/// not itself implement `std::error::Error` (that would collide with the blanket
/// conversion); [`AgentError::source`] and [`AgentError::chain`] give the chain.
#[derive(Clone)]
pub struct AgentError {
    inner: Box<Inner>,
}

#[derive(Clone)]
struct Inner {
    class: ErrorClass,
    message: Cow<'static, str>,
    status: Option<u16>,
    provider: Option<Arc<str>>,
    model: Option<Arc<str>>,
    hints: RetryHints,
    detail: Option<ErrorDetail>,
    partial: Option<PartialOutput>,
    attempted: Vec<Arc<str>>,
    source: Option<Arc<dyn StdError + Send + Sync>>,
}

/// Structured facts that come with some classes of error.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ErrorDetail {
    /// A deadline of ours expired.
    Timeout {
        /// Which deadline.
        stage: Stage,
        /// How long the stage had run when it was cut.
        elapsed: Duration,
        /// The configured limit of the stage.
        limit: Duration,
    },
    /// A circuit breaker refused the call.
    CircuitOpen {
        /// The dependency (model or provider) whose breaker is open.
        dependency: Arc<str>,
        /// Wall-clock time at which the breaker opened.
        opened_at: SystemTime,
        /// How long until the breaker will admit a probe.
        retry_after: Duration,
    },
    /// One of our rate limits refused the request.
    RateLimited {
        /// Requests or tokens per minute.
        limit_type: LimitType,
        /// Which limit (global, endpoint, user or tenant).
        scope: LimitScope,
        /// Units used in the current window, including this request's.
        current: u64,
        /// The configured limit per minute.
        limit: u64,
        /// How long until the request would be admitted.
        retry_after: Duration,
    },
    /// The prompt did not fit the model's context window.
    ContextOverflow {
        /// Tokens in the input, when the provider said so.
        input_tokens: Option<u64>,
        /// The model's context window, when the provider said so.
        context_limit: Option<u64>,
        /// The output tokens that were requested, when the provider said so.
        requested_output: Option<u64>,
    },
    /// An agent loop used all of its steps and the model still asked for tools.
    MaxSteps {
        /// The loop's `max_steps`.
        max_steps: u32,
        /// The conversation so far, the model's last turn (with its unanswered calls)
        /// included.
        transcript: Box<Prompt>,
    },
    /// The store that shares rate limits across replicas could not be reached, and it
    /// fails closed.
    StateStore {
        /// The store's name (`redis`).
        store: &'static str,
    },
    /// An endpoint's input did not match its type.
    InvalidInput {
        /// Where in the input, as a path (`items[2].name`); `.` for the whole input.
        field: String,
    },
}

/// What a stream had produced before it failed.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct PartialOutput {
    /// The text delivered so far.
    pub text: String,
    /// The usage the provider had reported when the stream failed, if any.
    pub usage: Option<crate::llm::Usage>,
}

impl PartialOutput {
    /// Partial output holding `text`.
    pub fn new(text: impl Into<String>) -> Self {
        PartialOutput {
            text: text.into(),
            usage: None,
        }
    }
}

impl AgentError {
    /// A new error of `class` with `message`.
    pub fn new(class: ErrorClass, message: impl Into<Cow<'static, str>>) -> Self {
        AgentError {
            inner: Box::new(Inner {
                class,
                message: message.into(),
                status: None,
                provider: None,
                model: None,
                hints: RetryHints::default(),
                detail: None,
                partial: None,
                attempted: Vec::new(),
                source: None,
            }),
        }
    }

    /// Wraps any error, classifying it by its source chain (see [`classify_chain`]).
    ///
    /// An `AgentError` found in the chain (one that went through `Box<dyn Error>` and
    /// into your own error type) comes back whole: class, hints and detail, with the
    /// outer error's message and the outer error as source.
    pub fn from_error<E: StdError + Send + Sync + 'static>(error: E) -> Self {
        let message = error.to_string();
        if let Some(inner) = find_agent_error(&error) {
            let mut recovered = inner.clone();
            recovered.inner.message = message.into();
            return recovered.with_source(error);
        }
        let class = classify_chain(&error).unwrap_or(ErrorClass::Other);
        AgentError::new(class, message).with_source(error)
    }

    /// Converts a boxed error, recovering an `AgentError` that was boxed earlier.
    pub fn from_boxed(error: Box<dyn StdError + Send + Sync + 'static>) -> Self {
        match error.downcast::<StdAgentError>() {
            Ok(agent) => agent.0,
            Err(other) => {
                let class = classify_chain(&*other).unwrap_or(ErrorClass::Other);
                let mut err = AgentError::new(class, other.to_string());
                err.inner.source = Some(Arc::from(other));
                err
            }
        }
    }

    /// Classifies a failed HTTP response from its status, headers and body.
    ///
    /// The body may be any of the providers' error envelopes (OpenAI, Anthropic, Gemini,
    /// including Gemini's one-element list); the class comes from the error type or code
    /// in it, then from the status. Retry hints come from `retry-after-ms`, `Retry-After`,
    /// `x-should-retry` and Gemini's `RetryInfo`. Unparseable parts are ignored.
    ///
    /// A context overflow comes back as [`ErrorClass::ContextOverflow`] with
    /// [`ErrorDetail::ContextOverflow`] holding the token counts the message gave.
    pub fn from_http(status: u16, headers: &::http::HeaderMap, body: &[u8]) -> Self {
        http::classify_response(status, headers, body, SystemTime::now())
    }

    /// Classifies an error that arrived inside a stream, after the response had started
    /// with HTTP 200.
    ///
    /// `payload` is the JSON the provider sent for the error: the data of an OpenAI
    /// `data: {"error": {…}}` event, of an Anthropic `event: error`, or Gemini's raw
    /// `{"error": {…}}` object (a one-element list is unwrapped). Use it in a custom
    /// provider's stream decoder when it meets such an event.
    ///
    /// The class comes from the envelope's code, type or Google status, then from Gemini's
    /// numeric `code` read as an HTTP status, else it is
    /// [`ErrorClass::StreamInterrupted`]; a payload that is not JSON is
    /// `StreamInterrupted` too. The error has no [`status`](AgentError::status), since the
    /// response's was 200; body hints such as Gemini's `RetryInfo` are kept. Attach what
    /// the stream had delivered with [`with_partial`](AgentError::with_partial).
    pub fn from_stream_error(payload: &[u8]) -> Self {
        http::classify_stream_error(payload)
    }

    /// The error's class.
    pub fn class(&self) -> ErrorClass {
        self.inner.class
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// The HTTP status the provider answered with, if any.
    pub fn status(&self) -> Option<u16> {
        self.inner.status
    }

    /// The provider that failed, if known.
    pub fn provider(&self) -> Option<&str> {
        self.inner.provider.as_deref()
    }

    /// The model that failed, if known.
    pub fn model(&self) -> Option<&str> {
        self.inner.model.as_deref()
    }

    /// The delay the server asked for before a retry, if it asked.
    pub fn retry_after(&self) -> Option<Duration> {
        self.inner.hints.retry_after()
    }

    /// The server's explicit retry verdict (`x-should-retry`), if it gave one.
    pub fn should_retry(&self) -> Option<bool> {
        self.inner.hints.should_retry
    }

    /// Every retry hint the failure carried.
    pub fn hints(&self) -> &RetryHints {
        &self.inner.hints
    }

    /// Structured facts for timeouts, open circuits, rate limits and context overflows.
    pub fn detail(&self) -> Option<&ErrorDetail> {
        self.inner.detail.as_ref()
    }

    /// What a broken stream had delivered before it failed.
    pub fn partial(&self) -> Option<&PartialOutput> {
        self.inner.partial.as_ref()
    }

    /// The models or strategies tried before giving up, in order.
    pub fn attempted(&self) -> &[Arc<str>] {
        &self.inner.attempted
    }

    /// The underlying error, if this one wraps another.
    pub fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }

    /// The source chain, starting with the wrapped error.
    pub fn chain(&self) -> impl Iterator<Item = &(dyn StdError + 'static)> {
        fn next<'a>(e: &&'a (dyn StdError + 'static)) -> Option<&'a (dyn StdError + 'static)> {
            let e: &'a (dyn StdError + 'static) = *e;
            e.source()
        }
        std::iter::successors(self.source(), next)
    }

    /// Sets the HTTP status.
    #[must_use]
    pub fn with_status(mut self, status: u16) -> Self {
        self.inner.status = Some(status);
        self
    }

    /// Sets the provider name.
    #[must_use]
    pub fn with_provider(mut self, provider: impl Into<Arc<str>>) -> Self {
        self.inner.provider = Some(provider.into());
        self
    }

    /// Sets the model name.
    #[must_use]
    pub fn with_model(mut self, model: impl Into<Arc<str>>) -> Self {
        self.inner.model = Some(model.into());
        self
    }

    /// Sets a server-directed retry delay (it wins over any body hint).
    #[must_use]
    pub fn with_retry_after(mut self, delay: Duration) -> Self {
        self.inner.hints.retry_after_header = Some(delay);
        self
    }

    /// Sets the server's explicit retry verdict.
    #[must_use]
    pub fn with_should_retry(mut self, should_retry: bool) -> Self {
        self.inner.hints.should_retry = Some(should_retry);
        self
    }

    /// Replaces the retry hints.
    #[must_use]
    pub fn with_hints(mut self, hints: RetryHints) -> Self {
        self.inner.hints = hints;
        self
    }

    /// Attaches structured detail.
    #[must_use]
    pub fn with_detail(mut self, detail: ErrorDetail) -> Self {
        self.inner.detail = Some(detail);
        self
    }

    /// Attaches the partial output of a broken stream.
    #[must_use]
    pub fn with_partial(mut self, partial: PartialOutput) -> Self {
        self.inner.partial = Some(partial);
        self
    }

    /// Attaches the underlying error.
    #[must_use]
    pub fn with_source<E: StdError + Send + Sync + 'static>(mut self, source: E) -> Self {
        self.inner.source = Some(Arc::new(source));
        self
    }

    /// Records the models or strategies tried, in order.
    #[must_use]
    pub fn with_attempted(mut self, attempted: Vec<Arc<str>>) -> Self {
        self.inner.attempted = attempted;
        self
    }

    /// Replaces the class, keeping everything else.
    #[must_use]
    pub fn with_class(mut self, class: ErrorClass) -> Self {
        self.inner.class = class;
        self
    }

    /// Replaces the message when `rewrite` returns a new one.
    pub(crate) fn rewrite_message(mut self, rewrite: impl FnOnce(&str) -> Option<String>) -> Self {
        if let Some(message) = rewrite(&self.inner.message) {
            self.inner.message = message.into();
        }
        self
    }

    /// A `cancelled` error.
    pub fn cancelled() -> Self {
        AgentError::new(ErrorClass::Cancelled, "the run was cancelled")
    }
}

impl<E: StdError + Send + Sync + 'static> From<E> for AgentError {
    fn from(error: E) -> Self {
        AgentError::from_error(error)
    }
}

/// `AgentError` seen as a `std::error::Error`, so `?` works in functions that return
/// `Box<dyn Error>` (the same arrangement as `anyhow`).
pub(crate) struct StdAgentError(AgentError);

/// The first `AgentError` in `error`'s chain that was boxed as a `std::error::Error`.
pub(crate) fn find_agent_error<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a AgentError> {
    let mut current = Some(error);
    while let Some(err) = current {
        if let Some(agent) = err.downcast_ref::<StdAgentError>() {
            return Some(&agent.0);
        }
        current = err.source();
    }
    None
}

impl fmt::Debug for StdAgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for StdAgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl StdError for StdAgentError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0.source()
    }
}

impl From<AgentError> for Box<dyn StdError + Send + Sync + 'static> {
    fn from(error: AgentError) -> Self {
        Box::new(StdAgentError(error))
    }
}

impl From<AgentError> for Box<dyn StdError + 'static> {
    fn from(error: AgentError) -> Self {
        Box::new(StdAgentError(error))
    }
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.inner.class, self.inner.message)?;
        if let Some(model) = &self.inner.model {
            write!(f, " (model {model})")?;
        }
        Ok(())
    }
}

impl fmt::Debug for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        let mut s = f.debug_struct("AgentError");
        s.field("class", &inner.class)
            .field("message", &inner.message);
        if let Some(status) = inner.status {
            s.field("status", &status);
        }
        if let Some(provider) = &inner.provider {
            s.field("provider", provider);
        }
        if let Some(model) = &inner.model {
            s.field("model", model);
        }
        if inner.hints != RetryHints::default() {
            s.field("hints", &inner.hints);
        }
        if let Some(detail) = &inner.detail {
            s.field("detail", detail);
        }
        if let Some(partial) = &inner.partial {
            s.field("partial", partial);
        }
        if !inner.attempted.is_empty() {
            s.field("attempted", &inner.attempted);
        }
        if let Some(source) = &inner.source {
            s.field("source", source);
        }
        s.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("agent step failed")]
    struct StepFailed(#[source] ToolFailed);

    #[derive(Debug, thiserror::Error)]
    #[error("tool failed")]
    struct ToolFailed(#[source] std::io::Error);

    #[test]
    fn wrapped_io_timeout_classifies_as_timeout() {
        let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "read timed out");
        let err: AgentError = StepFailed(ToolFailed(io)).into();
        assert_eq!(err.class(), ErrorClass::Timeout);
        assert_eq!(err.message(), "agent step failed");
        assert_eq!(err.chain().count(), 3);
    }

    #[test]
    fn wrapped_connection_reset_classifies_as_connection_error() {
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let err: AgentError = StepFailed(ToolFailed(io)).into();
        assert_eq!(err.class(), ErrorClass::ConnectionError);
    }

    #[test]
    fn unrelated_error_is_other() {
        let err: AgentError = "x".parse::<u32>().unwrap_err().into();
        assert_eq!(err.class(), ErrorClass::Other);
    }

    #[test]
    fn question_mark_into_a_boxed_error_keeps_the_chain() {
        fn run() -> Result<(), Box<dyn StdError + Send + Sync>> {
            let io = std::io::Error::from(std::io::ErrorKind::TimedOut);
            Err(AgentError::from(io))?
        }
        let boxed = run().unwrap_err();
        assert_eq!(boxed.to_string(), "timeout: timed out");
        assert!(boxed.source().is_some());
    }

    #[derive(Debug, thiserror::Error)]
    #[error("the planner gave up")]
    struct PlannerFailed(#[source] Box<dyn StdError + Send + Sync>);

    #[test]
    fn an_agent_error_survives_a_trip_through_box_dyn_error() {
        let original = AgentError::new(ErrorClass::RateLimit, "slow down")
            .with_retry_after(Duration::from_secs(3));
        let boxed: Box<dyn StdError + Send + Sync> = original.into();
        let back: AgentError = PlannerFailed(boxed).into();
        assert_eq!(back.class(), ErrorClass::RateLimit);
        assert_eq!(back.retry_after(), Some(Duration::from_secs(3)));
        assert_eq!(back.message(), "the planner gave up");

        let boxed: Box<dyn StdError + Send + Sync> =
            AgentError::new(ErrorClass::Overloaded, "busy").into();
        assert_eq!(
            AgentError::from_boxed(boxed).class(),
            ErrorClass::Overloaded
        );
        let plain: Box<dyn StdError + Send + Sync> =
            Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert_eq!(
            AgentError::from_boxed(plain).class(),
            ErrorClass::ConnectionError
        );
    }

    #[test]
    fn error_is_one_pointer_wide() {
        assert_eq!(
            std::mem::size_of::<AgentError>(),
            std::mem::size_of::<usize>()
        );
    }
}
