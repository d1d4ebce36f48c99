//! The one interface every provider implements.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use super::completion::Completion;
use super::prompt::Prompt;
use super::stream::CompletionStream;
use crate::error::AgentError;

/// A boxed, sendable future, as trait objects need.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A model vendor or gateway: answers a [`Prompt`] whole or as a stream.
///
/// Implementations make one attempt per call and classify what went wrong into an
/// [`AgentError`]; retrying, timeouts and fallback belong to the pipeline, so there is
/// one place that decides.
///
/// ```
/// use fastagentic::llm::{BoxFuture, Completion, CompletionStream, Prompt, Provider};
/// use fastagentic::AgentError;
///
/// /// Answers every prompt with its own text.
/// #[derive(Debug)]
/// struct Echo;
///
/// impl Provider for Echo {
///     fn name(&self) -> &str {
///         "echo"
///     }
///
///     fn complete<'a>(&'a self, model: &'a str, prompt: &'a Prompt)
///         -> BoxFuture<'a, Result<Completion, AgentError>>
///     {
///         let text = prompt.messages().last().map(|m| m.content.clone()).unwrap_or_default();
///         Box::pin(async move { Ok(Completion::new("echo", model, text)) })
///     }
///
///     fn stream<'a>(&'a self, model: &'a str, prompt: &'a Prompt)
///         -> BoxFuture<'a, Result<CompletionStream, AgentError>>
///     {
///         Box::pin(async move {
///             let whole = self.complete(model, prompt).await?;
///             Ok(CompletionStream::from_completion(whole))
///         })
///     }
/// }
/// ```
pub trait Provider: Send + Sync + fmt::Debug {
    /// The name models are routed by (`"openai"` for `openai/gpt-4o`). Also the
    /// `provider` label of metrics.
    fn name(&self) -> &str;

    /// Whether this provider serves `model` when it comes without a `provider/` prefix
    /// (`gpt-*` for OpenAI, `claude-*` for Anthropic, ...).
    fn serves(&self, model: &str) -> bool {
        let _ = model;
        false
    }

    /// Asks `model` for a whole answer.
    fn complete<'a>(
        &'a self,
        model: &'a str,
        prompt: &'a Prompt,
    ) -> BoxFuture<'a, Result<Completion, AgentError>>;

    /// Asks `model` for a streamed answer. The future resolves once the provider
    /// accepted the request (HTTP 200); failures after that arrive in the stream.
    fn stream<'a>(
        &'a self,
        model: &'a str,
        prompt: &'a Prompt,
    ) -> BoxFuture<'a, Result<CompletionStream, AgentError>>;
}
